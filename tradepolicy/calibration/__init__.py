"""Calibration: from public data to market files (balancing, estimation, draws)."""

from tradepolicy.calibration.balancing import (
    BalancedMatrix,
    GravityFit,
    balance,
    build_matrix,
    gravity_prior,
)

__all__ = ["BalancedMatrix", "GravityFit", "balance", "build_matrix", "gravity_prior"]
