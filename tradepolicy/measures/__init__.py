"""Measures (DESIGN §4): one module per family; each registers itself."""

from tradepolicy.measures import shocks, trade  # noqa: F401 - registration side effects
from tradepolicy.measures.base import (
    MEASURES,
    WELFARE_ENTRIES,
    ApplyContext,
    BookContext,
    Measure,
    measure_types,
    register,
)
from tradepolicy.measures.shocks import DemandShift, SupplyShock
from tradepolicy.measures.trade import ExportTax, Tariff

__all__ = [
    "MEASURES",
    "WELFARE_ENTRIES",
    "ApplyContext",
    "BookContext",
    "DemandShift",
    "ExportTax",
    "Measure",
    "SupplyShock",
    "Tariff",
    "measure_types",
    "register",
]
