"""Pathways: years, capacity and investment decisions under price risk (docs/investment.md)."""
