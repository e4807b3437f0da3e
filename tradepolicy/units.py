"""Unit registry: pint with currencies and `year` so every `units` attribute parses.

Use ``tradepolicy.units.ureg`` with pint or pint-xarray::

    ds.pint.quantify(unit_registry=tradepolicy.units.ureg)
"""

from __future__ import annotations

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
