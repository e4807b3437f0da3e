"""Markets and scenarios built in code, shared by the theory and measure tests."""

from __future__ import annotations

import tradepolicy as tp

# CHN dominates; EU produces nothing; CHN imports only from AUS; USA has a small own output.
FOUR = {
    "CHN": {"CHN": 400.0, "USA": 30.0, "EU": 40.0, "ROW": 30.0},
    "AUS": {"CHN": 50.0, "USA": 10.0, "AUS": 1.0},
    "USA": {"USA": 5.0, "EU": 2.0},
    "ROW": {"ROW": 20.0, "EU": 5.0, "USA": 3.0},
}
#: the elasticities and prices of the ``four`` fixture
ELASTICITIES = {
    "supply": {"default": 1.0, "CHN": 0.8, "USA": 1.5},
    "demand": {"default": 0.5, "EU": 0.7},
    "sigma": {"default": 4.0, "USA": 2.5},
    "price": {"default": 100.0, "AUS": 104.0},
}


def market(
    flows: dict[str, dict[str, float]],
    *,
    supply=None,
    demand=None,
    sigma=None,
    price=None,
    tariffs=None,
    market_id: str = "test",
) -> tp.Market:
    """A market built in code (regions sorted: AUS, CHN, EU, ROW, USA for ``FOUR``)."""
    regions = sorted({r for e, row in flows.items() for r in (e, *row)})
    return tp.Market.from_dict(
        {
            "id": market_id,
            "commodity": "test good",
            "base_year": 2024,
            "regions": regions,
            "base_price": price or {"default": 100.0},
            "elasticities": {
                "supply": supply or {"default": 1.0},
                "demand": demand or {"default": 0.5},
                "substitution": sigma or {"default": 4.0},
            },
            "base_tariffs": tariffs or {},
            "flows": flows,
            "region_info": abstract_regions(regions),
        },
        source=f"{market_id}-test",
    )


def abstract_regions(codes) -> dict:
    """``[region_info]`` for abstract test regions (``A``, ``R0``) the regions table lacks."""
    return {c: {"name": f"Region {c}"} for c in codes if not tp.regions.known(c)}


def solve1(*args, **kwargs):
    """Solve and drop the single commodity."""
    return tp.solve(*args, **kwargs).isel(commodity=0)


def scen(name, *measures):
    return tp.Scenario(name=name, measures=list(measures))
