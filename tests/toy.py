"""A small valid market (DESIGN §6 format) and TOML helpers, shared by tests and fixtures.

A plain module (not ``conftest``) so test files can import it whatever other ``conftest``
modules pytest loads (``tests/ui`` has its own)."""

from __future__ import annotations

import math
from typing import Any

REGIONS = ["CHN", "USA", "EU", "AUS", "ROW"]

TOY_MARKET: dict[str, Any] = {
    "id": "toy",
    "commodity": "Toy oxide",
    "stage": "refined",
    "description": "A small five-region market for tests.",
    "base_year": 2024,
    "quantity_unit": "t",
    "currency": "USD",
    "regions": REGIONS,
    "base_price": {"default": 50000.0, "AUS": 52000.0},
    "elasticities": {
        "supply": {"default": 1.0, "CHN": 0.8},
        "demand": {"default": 0.5},
        "substitution": {"default": 4.0, "EU": 1.0},
    },
    "base_tariffs": {"CHN": {"USA": 0.25}},
    "flows": {
        "CHN": {"CHN": 40000.0, "USA": 3000.0, "EU": 4000.0, "ROW": 3000.0},
        "USA": {"USA": 1000.0},
        "AUS": {"CHN": 5000.0, "USA": 500.0, "EU": 500.0, "AUS": 200.0},
        "ROW": {"ROW": 2000.0, "EU": 1000.0},
    },
    "sources": {"flows": "invented for tests"},
}

TOY_SCENARIOS_TOML = """\
market = "toy.toml"
target_share = 0.6

[[scenario]]
name = "us_tariff"
description = "US tariff on China"
[[scenario.measure]]
type = "tariff"
importers = ["USA"]
exporters = ["CHN"]
rate = 0.5

[[scenario]]
name = "chn_export_tax"
description = "China taxes exports, the EU taxes Chinese imports"
[[scenario.measure]]
type = "export_tax"
exporter = "CHN"
rate = 0.2
[[scenario.measure]]
type = "tariff"
importers = ["EU"]
exporters = ["CHN"]
rate = 0.1

[[scenario]]
name = "shock"
description = "Supply disruption in Australia, demand growth in the EU"
[[scenario.measure]]
type = "supply_shock"
region = "AUS"
fraction = 0.3
[[scenario.measure]]
type = "demand_shift"
region = "EU"
fraction = 0.2
"""


# -- a tiny TOML serializer (tomli_w is not a dependency) ------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        if isinstance(v, float) and not math.isfinite(v):
            return ("-inf" if v < 0 else "inf") if math.isinf(v) else "nan"
        return repr(v)
    if isinstance(v, str):
        escaped = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _key(k: str) -> str:
    ok = k and all(c.isalnum() or c in "_-" for c in k)
    return k if ok else _toml_value(k)


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Serialise a dict: scalars first, then tables (nested dicts) and arrays of tables."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for k, v in data.items():
        if isinstance(v, dict) or _is_table_array(v):
            tables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_toml_value(v)}")
    for k, v in tables:
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        if isinstance(v, dict):
            lines += ["", f"[{name}]", to_toml(v, name)]
        else:
            for item in v:
                lines += ["", f"[[{name}]]", to_toml(item, name)]
    return "\n".join(line for line in lines if line is not None).strip("\n") + "\n"
