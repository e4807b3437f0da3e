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


#: the State fields the kernel and the reference are compared on
STATE = ("p", "P", "D", "A", "q", "X", "S", "support", "covered", "p_marginal", "lam", "g", "F")


def every_measure_batch(seed: int, n_regions: int, n_scen: int):
    """A random market's calibration and the instruments of a baseline plus ``n_scen``
    scenarios with every measure type."""
    import numpy as np

    from tradepolicy import api
    from tradepolicy.testing import every_measure_scenarios, random_market

    rng = np.random.default_rng(seed)
    mkt = random_market(rng, n_regions)
    measures = [[], *every_measure_scenarios(rng, mkt, n_scen)]
    inst, _ = api.build_instruments(mkt, mkt.calibration, measures)
    return mkt.calibration, inst


def jacobian_error(cal, inst, rng):
    """Largest relative gap per row between the analytic Jacobian and central finite
    differences, at base prices moved by a random 10% (log)."""
    import numpy as np

    from tradepolicy.model.levels import evaluate, initial_guess

    u = initial_guess(cal, inst)
    u[:, : cal.N] += rng.normal(0.0, 0.1, (inst.B, cal.N))
    J = evaluate(cal, inst, u).J
    assert J is not None
    h = 1e-7
    num = np.empty_like(J)
    for j in range(u.shape[1]):
        up, um = u.copy(), u.copy()
        up[:, j] += h
        um[:, j] -= h
        num[:, :, j] = (
            evaluate(cal, inst, up, jacobian=False).F - evaluate(cal, inst, um, jacobian=False).F
        ) / (2 * h)
    return (np.abs(J - num) / (1.0 + np.abs(num))).max(axis=(1, 2))


#: short-run elasticities of the toy risk market (tests of events and stockpiles)
SHORT_RUN = {"supply": {"default": 0.1}, "demand": {"default": 0.2}}


def toy_short_run(source: str = "toy-stock") -> tp.Market:
    """The toy market (tests/toy.py) with short-run elasticities, for risk sets."""
    import copy

    from toy import TOY_MARKET

    d = copy.deepcopy(TOY_MARKET)
    d["elasticities"]["short_run"] = copy.deepcopy(SHORT_RUN)
    return tp.Market.from_dict(d, source=source)


def stockpile_policy(**kw):
    """A 90-day stockpile of the toy market's USA and EU, built 2024-2026, released in events."""
    from tradepolicy.measures import MEASURES

    args = dict(
        regions=["USA", "EU"],
        payers={"USA": 0.5, "EU": 0.5},
        target_days=90.0,
        build_years=[2024, 2026],
        build_rate=0.5,
        release="event",
        release_rate=1.0,
        coordinated=False,
        financing_rate=0.05,
        storage_cost=300.0,
    )
    return MEASURES["stockpile_policy"](**(args | kw))
