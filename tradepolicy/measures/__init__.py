"""Measures (docs/measures.md): one module per family; each registers itself."""

from tradepolicy.measures import (  # noqa: F401 - registration side effects
    diversification,
    floors,
    investment,
    quotas,
    shocks,
    stocks,
    subsidies,
    trade,
)
from tradepolicy.measures.base import (
    MEASURES,
    WELFARE_ENTRIES,
    ApplyContext,
    BookContext,
    Measure,
    Region,
    measure_types,
    register,
)
from tradepolicy.measures.diversification import DiversificationCap
from tradepolicy.measures.floors import PriceFloor
from tradepolicy.measures.investment import CapexGrant, LoanGuarantee, PublicEquity
from tradepolicy.measures.quotas import ExportQuota, ImportQuota, TariffRateQuota
from tradepolicy.measures.shocks import DemandShift, SupplyShock
from tradepolicy.measures.stocks import StockpilePolicy, StockpilePurchase, StockpileRelease
from tradepolicy.measures.subsidies import Offtake, PriceGapSubsidy
from tradepolicy.measures.trade import ExportTax, Tariff
from tradepolicy.model.instruments import PairSpec

__all__ = [
    "MEASURES",
    "WELFARE_ENTRIES",
    "ApplyContext",
    "BookContext",
    "CapexGrant",
    "DemandShift",
    "DiversificationCap",
    "ExportQuota",
    "ExportTax",
    "ImportQuota",
    "LoanGuarantee",
    "Measure",
    "Offtake",
    "PairSpec",
    "PriceFloor",
    "PriceGapSubsidy",
    "PublicEquity",
    "Region",
    "StockpilePolicy",
    "StockpilePurchase",
    "StockpileRelease",
    "SupplyShock",
    "Tariff",
    "TariffRateQuota",
    "measure_types",
    "register",
]
