"""Unit registry: pint with currencies and `year` so every `units` attribute parses.

Use ``tradepolicy.units.ureg`` with pint or pint-xarray::

    ds.pint.quantify(unit_registry=tradepolicy.units.ureg)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pint

CURRENCIES = ("USD", "EUR", "JPY", "GBP", "AUD", "CAD", "CNY", "KRW")

ureg: pint.UnitRegistry = pint.UnitRegistry(
    autoconvert_offset_to_baseunit=True, force_ndarray_like=True
)
# Currencies are independent base dimensions; no exchange rates are implied.
for _code in CURRENCIES:
    ureg.define(f"{_code} = [currency_{_code.lower()}]")
# Quantity bases used by mineral statistics.
ureg.define("LCE = 1 = lithium_carbonate_equivalent")
ureg.define("REO = 1 = rare_earth_oxide_equivalent")


def parse(unit: str) -> pint.Unit:
    """Parse a unit string with the tradepolicy registry (raises on failure)."""
    return ureg.Unit(unit)


def is_valid(unit: str) -> bool:
    """Whether ``unit`` parses with the tradepolicy registry."""
    try:
        parse(unit)
    except Exception:  # pint raises several error types
        return False
    return True


#: prices are shown per kg from this many currency units per kg of median base price upward
PER_KG_FROM = 1.0


@dataclass(frozen=True)
class PriceDisplay:
    """The unit a market's prices are shown in, in every view (dashboard, briefs).

    Attributes
    ----------
    currency
        Currency code (``USD``).
    quantity_unit
        The market's quantity unit (``t``).
    per
        Quantity unit of displayed prices (``kg`` or the market's own unit).
    factor
        Market price units in one display unit (``1000`` for USD/t shown per kg):
        ``market = display * factor``.
    """

    currency: str
    quantity_unit: str
    per: str
    factor: float = 1.0

    @property
    def unit(self) -> str:
        """Displayed price unit (``USD/kg``)."""
        return f"{self.currency}/{self.per}"


def kg_per_unit(unit: str) -> float | None:
    """Kilograms in one ``unit`` when it is a mass (``t`` -> 1000, via pint), else None.

    Examples
    --------
    >>> kg_per_unit("t")
    1000.0
    >>> kg_per_unit("LCE") is None
    True
    """
    try:
        q = ureg.Quantity(1.0, unit)
        if q.dimensionality != ureg.kilogram.dimensionality:
            return None
        return float(q.to("kg").magnitude)
    except Exception:  # pint raises several error types for unknown units
        return None


def price_display(
    currency: str, quantity_unit: str, base_prices: float | Sequence[float] | np.ndarray
) -> PriceDisplay:
    """Return the display price unit of a market: one rule for the dashboard and the briefs.

    Per kg when the market counts mass in a unit larger than a kilogram and the median base
    price is at least :data:`PER_KG_FROM` currency units per kg (NdPr oxide at 55,000 USD/t is
    shown as 55 USD/kg); otherwise the market's own unit (gallium stays in USD/kg; a unit that
    is not a mass, such as ``LCE``, stays as it is).

    Parameters
    ----------
    currency, quantity_unit
        The market's currency code and quantity unit.
    base_prices
        Base producer prices in currency per quantity unit (one per region, or one number);
        non-finite values are ignored.

    Examples
    --------
    >>> d = price_display("USD", "t", [55_000.0, 60_000.0])
    >>> d.unit, d.factor
    ('USD/kg', 1000.0)
    >>> price_display("USD", "kg", 300.0).unit
    'USD/kg'
    """
    prices = np.asarray(base_prices, dtype=float).ravel()
    prices = prices[np.isfinite(prices)]
    median = float(np.median(prices)) if prices.size else math.nan
    kg = kg_per_unit(quantity_unit)
    if kg is not None and kg > 1.0 and math.isfinite(median) and median / kg >= PER_KG_FROM:
        return PriceDisplay(currency, quantity_unit, "kg", kg)
    return PriceDisplay(currency, quantity_unit, quantity_unit, 1.0)
