"""Number formatting for briefs: one documented rounding rule per kind of number.

The rules (also in ``docs/briefs.md``):

- **prices**: 3 significant figures in the display unit (:class:`DisplayUnits`), the unit the
  dashboard shows (:func:`tradepolicy.units.price_display`): per kg when the market counts
  mass in a unit larger than a kilogram and its median base price is at least 1 currency unit
  per kg, otherwise the market's own unit (``55,000 USD/t`` -> ``55.0`` per kg);
- **money**: million currency units per year (``M USD/yr``), 3 significant figures and at most
  one decimal (``352,257,100`` -> ``352``; ``1,444,659`` -> ``1.4``); changes carry a sign;
- **percentage changes**: one decimal with a sign (``+72.9%``, ``−1.6%``, ``0.0%``);
- **shares**: percent with one decimal (``37.6%``);
- **percentage points** of dependence: one decimal with a sign (``+0.9``, ``−15.1``);
- **quantities**: 3 significant figures in the market's quantity unit per year.

Negative numbers use the minus sign (U+2212); missing values print as an en dash.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tradepolicy.units import price_display

MINUS = "\u2212"
MISSING = "\u2013"
#: money is shown in millions
MILLION = 1e6


def _missing(x: float | None) -> bool:
    return x is None or not math.isfinite(float(x))


def round_sig(x: float, digits: int = 3) -> float:
    """``x`` rounded to ``digits`` significant figures."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def fmt_sig(
    x: float | None, digits: int = 3, max_decimals: int | None = None, signed: bool = False
) -> str:
    """``digits`` significant figures with thousands separators (``11,800``, ``55.0``).

    ``max_decimals`` caps the decimals shown (rounding further); ``signed`` adds ``+`` to
    positive numbers. Zero prints without a sign.

    Examples
    --------
    >>> fmt_sig(11_812.3), fmt_sig(55.04), fmt_sig(0.123456, signed=True)
    ('11,800', '55.0', '+0.123')
    """
    if x is None or _missing(x):
        return MISSING
    r = round_sig(float(x), digits)
    if max_decimals is not None:
        r = round(r, max_decimals)
    decimals = 0 if r == 0 else max(0, digits - 1 - math.floor(math.log10(abs(r))))
    if max_decimals is not None:
        decimals = min(decimals, max_decimals)
    if r == 0:
        return f"{0.0:.{decimals}f}" if max_decimals is None else "0"
    body = f"{abs(r):,.{decimals}f}"
    if r < 0:
        return MINUS + body
    return ("+" if signed else "") + body


def fmt_money(x: float | None, signed: bool = True) -> str:
    """Money in millions: 3 significant figures, at most one decimal (``+352``, ``−1.4``).

    Examples
    --------
    >>> fmt_money(352_300_000), fmt_money(-1_400_000), fmt_money(None)
    ('+352', '−1.4', '–')
    """
    if x is None or _missing(x):
        return MISSING
    return fmt_millions(float(x) / MILLION, signed=signed)


def fmt_millions(x: float | None, signed: bool = True) -> str:
    """Money already in the display unit (millions per year, ``ds.tp.money``): the rule of
    :func:`fmt_money` (``352.3`` -> ``+352``)."""
    if x is None or _missing(x):
        return MISSING
    return fmt_sig(float(x), 3, max_decimals=1, signed=signed)


def fmt_points(x: float | None) -> str:
    """Percentage points with one decimal and a sign (``+0.9``, ``−15.1``, ``0.0``).

    Examples
    --------
    >>> fmt_points(0.94), fmt_points(-15.06), fmt_points(0.01)
    ('+0.9', '−15.1', '0.0')
    """
    if x is None or _missing(x):
        return MISSING
    r = round(float(x), 1)
    if r == 0:
        return "0.0"
    return f"{MINUS if r < 0 else '+'}{abs(r):.1f}"


def fmt_pct(x: float | None, signed: bool = True) -> str:
    """A percentage change with one decimal and a sign (``+72.9%``, ``−1.6%``, ``0.0%``)."""
    if x is None or _missing(x):
        return MISSING
    r = round(float(x), 1)
    if r == 0:
        return "0.0%"
    sign = MINUS if r < 0 else ("+" if signed else "")
    return f"{sign}{abs(r):.1f}%"


def fmt_share(x: float | None) -> str:
    """A share (0–1) as percent with one decimal (``37.6%``).

    Examples
    --------
    >>> fmt_share(0.3761)
    '37.6%'
    """
    if x is None or _missing(x):
        return MISSING
    return f"{100.0 * float(x):.1f}%"


def fmt_range(lo: str, hi: str) -> str:
    """A 5–95% range of two formatted numbers (``+60.1 to +85.2``)."""
    return f"{lo} to {hi}"


@dataclass(frozen=True)
class DisplayUnits:
    """How a market's prices, quantities and money are shown.

    Attributes
    ----------
    currency : str
        Currency code (``USD``).
    quantity_unit : str
        The market's quantity unit (``t``).
    price_factor : float
        Multiplies a model price (currency per quantity unit) into the display unit.
    price_per : str
        Display quantity of prices (``kg`` or the market's unit).
    """

    currency: str
    quantity_unit: str
    price_factor: float = 1.0
    price_per: str = ""

    @classmethod
    def for_market(
        cls, currency: str, quantity_unit: str, base_price: float | Sequence[float] | np.ndarray
    ) -> DisplayUnits:
        """The dashboard's display unit (:func:`tradepolicy.units.price_display`) for a market
        with these base prices (one number or one per region)."""
        shown = price_display(currency, quantity_unit, base_price)
        return cls(currency, quantity_unit, 1.0 / shown.factor, shown.per)

    @property
    def symbol(self) -> str:
        """``US$`` for USD, else the code and a space (``EUR ``)."""
        return "US$" if self.currency == "USD" else f"{self.currency} "

    @property
    def price_unit(self) -> str:
        """Unit of displayed prices for table headings (``US$/kg``)."""
        return f"{self.symbol.strip()}/{self.price_per}"

    @property
    def money_unit(self) -> str:
        """Unit of displayed money for table headings, as every view writes it (``M USD/yr``,
        ``ds.tp.money_unit()``)."""
        return f"M {self.currency}/yr"

    def price_value(self, x: float) -> float:
        """A model price in the display unit."""
        return float(x) * self.price_factor

    def price(self, x: float | None) -> str:
        """A price in the display unit, 3 significant figures, no unit (``110``)."""
        return MISSING if x is None or _missing(x) else fmt_sig(self.price_value(float(x)))

    def price_text(self, x: float) -> str:
        """A price inside a sentence (``US$110/kg``)."""
        return f"{self.symbol}{self.price(x)}/{self.price_per}"

    def money_text(self, x: float) -> str:
        """An amount of money inside a sentence, unsigned (``US$352m/yr``)."""
        return f"{self.symbol}{fmt_money(abs(x), signed=False)}m/yr"

    def quantity_text(self, x: float) -> str:
        """A quantity inside a sentence (``1,400 t/yr``)."""
        return f"{fmt_sig(x)} {self.quantity_unit}/yr"


#: present values of a pathway are shown in billions (``bn USD``), as ``tradepolicy run`` does
BILLION = 1e9


def fmt_bn(x: float | None) -> str:
    """A present value in billions, one decimal and a sign, ``0`` below 0.05 bn (``+18.7``,
    ``−6.1``): the rule of the pathway tables that ``tradepolicy run`` prints."""
    if x is None or _missing(x):
        return MISSING
    v = float(x) / BILLION
    if abs(v) < 0.05:
        return "0"
    return f"{MINUS if v < 0 else '+'}{abs(v):,.1f}"


def fmt_bn2(x: float | None) -> str:
    """Billions with two decimals and no plus sign (``1.32``, ``−0.57``), as the pathway and
    risk tables of ``tradepolicy run`` print cost per point and disruption losses."""
    return fmt_scaled2(x, BILLION)


def fmt_scaled2(x: float | None, scale: float) -> str:
    """``x / scale`` with two decimals and no plus sign (the risk table's bn or M)."""
    if x is None or _missing(x):
        return MISSING
    v = float(x) / scale
    if abs(v) < 0.005:
        v = 0.0
    return f"{MINUS if v < 0 else ''}{abs(v):,.2f}"


def fmt_prob(p: float | None) -> str:
    """A probability as a whole percent (``73%``)."""
    if p is None or _missing(p):
        return MISSING
    return f"{float(p):.0%}"
