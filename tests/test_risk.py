"""Disruption risk in pathway sets (docs/risk.md): theory tests of the events and the loss.

- an event of probability 0 changes nothing and costs nothing;
- a certain one-year event in the base year equals the static short-run scenario;
- common random numbers: every option of a draw has the same events;
- bad ``[[risk]]`` entries and a static set with ``[[risk]]`` are refused, naming the field.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from toy import TOY_MARKET, to_toml
from typer.testing import CliRunner

import tradepolicy as tp
from tradepolicy.errors import InputError
from tradepolicy.measures import MEASURES
from tradepolicy.pathway.risk import RiskEvent, Severity
from tradepolicy.pathway.spec import PathwaySet

SHORT = {"supply": {"default": 0.1}, "demand": {"default": 0.2}}
QUOTA = {"type": "export_quota", "exporter": "CHN", "destinations": ["USA", "EU"]}
TARIFF = {"type": "tariff", "importers": ["USA"], "exporters": ["CHN"], "rate": 0.1}


def toy() -> tp.Market:
    d = copy.deepcopy(TOY_MARKET)
    d["elasticities"]["short_run"] = copy.deepcopy(SHORT)
    return tp.Market.from_dict(d, source="toy-risk")


def event(p: float, share: float = 0.5, **kw) -> RiskEvent:
    m = MEASURES["export_quota"](**{**QUOTA, "quantity_share": share})
    return RiskEvent(name="cut", measure=m, annual_probability=p, **kw)


def pset(market, risk, years=(2024, 2026)) -> PathwaySet:
    scen = [tp.Scenario(name="tariff", measure=[TARIFF])]
    return PathwaySet(market=market, scenarios=scen, years=years, risk=risk)


def test_zero_probability_event_changes_nothing_and_costs_nothing():
    m = toy()
    with_risk = tp.solve(pset(m, [event(0.0)]), draws=4, seed=3)
    without = tp.solve(pset(m, []), draws=4, seed=3)
    assert int(with_risk["event_active"].sum()) == 0
    assert float(with_risk["cost_of_inaction"]) == 0.0
    np.testing.assert_array_equal(with_risk["disruption_loss"].values, 0.0)
    for var in ("producer_price", "consumer_price", "welfare_change", "pv_budget_cost"):
        np.testing.assert_array_equal(with_risk[var].values, without[var].values)


def test_certain_one_year_event_equals_the_static_short_run_scenario():
    from tradepolicy.pathway.loop import run_years
    from tradepolicy.pathway.results import build

    m = toy()
    ev = event(1.0, share=0.4, first_year=2024, last_year=2024)
    ps = pset(m, [ev])
    run = run_years(ps, draws=2, seed=1)
    ds = build(run, ps)
    act = ds["event_active"].sel(risk="cut")
    assert act.sel(draw=0).sum() == 0  # the central run has no event
    assert (act.sel(draw=slice(1, None), year=2024) == 1).all()
    assert (act.sel(year=slice(2025, None)) == 0).all()
    # the static set: the base year's market with the quota, at the short-run horizon
    want = _static_short_run_quota(m)
    # draw 1's baseline row in 2024 (the toy market has no elasticity errors: draws are
    # central)
    S = len(run.names)
    got = run.per_year[0][0]
    for var in ("producer_price", "consumer_price", "production"):
        np.testing.assert_allclose(
            np.nan_to_num(got[var][S]), np.nan_to_num(want[var].values), rtol=1e-8, atol=1e-6
        )
    # the loss is what the quota costs the bloc against the no-event base year
    members = [r for r in ds.attrs["target_bloc"].split() if r in want.region.values]
    w = float(want["welfare_change"].sel(region=members).sum())
    loss = float(ds["disruption_loss"].sel(scenario="baseline", draw=1))
    assert loss > 0
    np.testing.assert_allclose(loss, -w, rtol=1e-7)


def test_common_random_numbers_same_events_in_every_option():
    m = toy()
    ev = event(0.3, severity=Severity(distribution="beta", a=2.0, b=3.0))
    ps = pset(m, [ev], years=(2024, 2030))
    ds = tp.solve(ps, draws=40, seed=7)
    act = ds["event_active"].sel(risk="cut").values
    assert 0 < act[1:].mean() < 1  # events happen in some draws and years
    loss = ds["disruption_loss"]
    hit = act[1:].any(axis=1)
    # every option loses in exactly the draws with an event
    for scen in ds.scenario.values:
        lost = loss.sel(scenario=scen).values[1:] != 0
        np.testing.assert_array_equal(lost, hit)
    sev = ds["severity"].sel(risk="cut").values
    assert sev[0] == 0 and np.all((sev[1:] > 0) & (sev[1:] < 1))
    # the event stream is spawned from the seed: the same seed, the same events
    again = tp.solve(pset(m, [ev], years=(2024, 2030)), draws=40, seed=7)
    np.testing.assert_array_equal(again["event_active"].values, ds["event_active"].values)


def test_risk_entries_are_validated(tmp_path):
    base = {
        "market": "toy.toml",
        "years": [2024, 2026],
        "scenario": [{"name": "t", "measure": [TARIFF]}],
    }
    d = copy.deepcopy(TOY_MARKET)
    d["elasticities"]["short_run"] = copy.deepcopy(SHORT)
    (tmp_path / "toy.toml").write_text(to_toml(d))
    good = {"name": "cut", **QUOTA, "quantity_share": 0.3, "annual_probability": 0.2}
    cases = {
        "risk[0].annual_probability": {**good, "annual_probability": 1.5},
        "risk[0].duration_years": {**good, "duration_years": 0},
        "risk[0].severity": {**good, "severity": {"distribution": "lognormal"}},
        "risk[0].first_year": {**good, "first_year": 2030},
        "risk[0].quantity_share": {**good, "quantity_share": 1.5},
    }
    for fld, entry in cases.items():
        p = tmp_path / "r.toml"
        p.write_text(to_toml({**base, "risk": [entry]}))
        with pytest.raises(InputError) as exc:
            tp.load_scenarios(p)
        assert fld in str(exc.value), (fld, str(exc.value))
        assert "r.toml" in str(exc.value)
    static = {k: v for k, v in base.items() if k != "years"}
    p = tmp_path / "s.toml"
    p.write_text(to_toml({**static, "risk": [good]}))
    with pytest.raises(InputError) as exc:
        tp.load_scenarios(p)
    assert "risk" in str(exc.value) and "years" in str(exc.value)
    p.write_text(to_toml({**base, "risk": [good]}))
    ps = tp.load_scenarios(p)
    assert ps.risk[0].measure.quantity_share == 0.3
    with pytest.raises(InputError, match="draws"):
        tp.solve(ps)


def test_cli_prints_cost_of_inaction_and_risk_table(tmp_path):
    from tradepolicy.cli import app

    d = copy.deepcopy(TOY_MARKET)
    d["elasticities"]["short_run"] = copy.deepcopy(SHORT)
    (tmp_path / "toy.toml").write_text(to_toml(d))
    spec = {
        "market": "toy.toml",
        "years": [2024, 2027],
        "target": {"bloc": ["USA", "EU"], "max_share": 0.6},
        "risk": [{"name": "cut", **QUOTA, "quantity_share": 0.3, "annual_probability": 0.3}],
        "scenario": [
            {
                "name": "stock",
                "measure": [
                    {
                        "type": "stockpile_policy",
                        "regions": ["USA", "EU"],
                        "payers": {"USA": 0.5, "EU": 0.5},
                        "target_days": 90.0,
                        "build_years": [2024, 2027],
                        "build_rate": 0.5,
                        "release": "event",
                        "release_rate": 1.0,
                        "coordinated": True,
                        "financing_rate": 0.03,
                        "storage_cost": 200.0,
                    }
                ],
            }
        ],
    }
    p = tmp_path / "risk.toml"
    p.write_text(to_toml(spec))
    res = CliRunner().invoke(app, ["run", str(p), "--draws", "20", "--seed", "2"])
    assert res.exit_code == 0, res.output
    assert "Cost of inaction" in res.output
    assert "Disruption risk" in res.output and "cost, > 0" in res.output
    assert "20 of 20 draws solved every year" in res.output
    flat = " ".join(res.output.split())  # the unit in the header (the toy's: billions)
    assert "(bn USD; cost, > 0)" in flat and "Cost of inaction: 1.36 bn USD" in flat
    res = CliRunner().invoke(app, ["run", str(p)])
    assert res.exit_code != 0 and "draws" in res.output


def test_a_start_of_the_wrong_width_is_refused():
    """The kernel does not check bounds: a start narrower than the batch's unknowns (last
    year's solution in an event year whose quota adds a pair) is refused, not read past."""
    from tradepolicy.api import build_instruments
    from tradepolicy.solver.newton import map_unknowns, solve_batch

    m = toy()
    quota = MEASURES["export_quota"](**{**QUOTA, "quantity_share": 0.4})
    inst, _ = build_instruments(m, m.calibration, [[], [quota]])
    N = m.calibration.N
    assert inst.K >= 1
    with pytest.raises(ValueError, match="map a start"):
        solve_batch(m.calibration, inst, u0=np.zeros((2, N)))
    # mapped: prices kept, the new pair at its lower bound
    u = np.arange(2.0 * N).reshape(2, N)
    lo = np.full((2, inst.K), 0.5)
    got = map_unknowns(u, N, [0, 0], [0, inst.K], fill=lo)
    np.testing.assert_array_equal(got[:, :N], u)
    np.testing.assert_array_equal(got[:, N:], 0.5)
    back = map_unknowns(got, N, [0, inst.K], [0, 0])
    np.testing.assert_array_equal(back, u)


def test_quota_event_after_the_base_year_equals_the_static_short_run_scenario():
    """An event year after the first: the quota's pair widens the unknowns against last
    year's start; the event year is the static short-run solve, and the year after continues
    from the no-event state (equals the run without events)."""
    from tradepolicy.pathway.loop import run_years

    m = toy()
    ev = event(1.0, share=0.4, first_year=2025, last_year=2025)
    ps = pset(m, [ev])
    run = run_years(ps, draws=2, seed=1)
    plain = run_years(pset(m, []), draws=2, seed=1)
    want = _static_short_run_quota(m)
    S = len(run.names)
    assert all(c.all() for c in run.converged)
    for d in (1, 2):  # both draws' baseline rows in the event year
        got = run.per_year[1][0]
        for var in ("producer_price", "consumer_price", "production"):
            np.testing.assert_allclose(
                np.nan_to_num(got[var][d * S]),
                np.nan_to_num(want[var].values),
                rtol=1e-8,
                atol=1e-6,
            )
    for var in ("producer_price", "consumer_price"):  # the year after: as without events
        np.testing.assert_allclose(
            run.per_year[2][0][var], plain.per_year[2][0][var], rtol=1e-9, atol=1e-9
        )


def test_random_quota_events_run_at_a_few_draws():
    m = toy()
    ev = event(0.4, severity=Severity(distribution="uniform", low=0.2, high=0.9))
    ds = tp.solve(pset(m, [ev], years=(2024, 2030)), draws=6, seed=11)
    act = ds["event_active"].sel(risk="cut").values
    assert act[1:, 1:].any()  # events after the first year
    assert bool(ds["converged"].all())
    assert np.isfinite(ds["disruption_loss"].values).all()


def test_shipped_cobalt_risk_set_runs_with_quota_events():
    """The DRC quota widens the chain's unknowns in its event years (it crashed in
    solve_warm)."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scenarios" / "cobalt_risk.toml"
    ds = tp.solve(tp.load_scenarios(path), draws=20, seed=1)
    assert int(ds["event_active"].sum()) > 0
    assert np.isfinite(float(ds["cost_of_inaction"]))


def test_risk_table_money_unit_follows_the_magnitude():
    import pandas as pd

    from tradepolicy.pathway.views import risk_money_unit as _money_unit

    cols = ["expected_loss", "loss_p05", "loss_p95", "loss_reduction"]
    cols += ["pv_stockpile_cost", "pv_budget_cost"]
    small = pd.DataFrame({c: [3.6e7, -2e6] for c in cols})
    assert _money_unit(small, "USD") == (1e6, "M USD")
    big = small.assign(loss_p95=[4.6e9, 0.0])
    assert _money_unit(big, "USD") == (1e9, "bn USD")


def _static_short_run_quota(m):
    """The static short-run solve of the base-year market with the quota at 40% of base
    exports (what a certain one-year event must equal in its year)."""
    quota = MEASURES["export_quota"](**{**QUOTA, "quantity_share": 0.4})
    ref = tp.solve(
        tp.ScenarioSet(
            market=m, scenarios=[tp.Scenario(name="quota", measure=[quota])], horizon="short"
        )
    )
    return ref.sel(scenario="quota").isel(commodity=0)


def test_event_rows_that_stall_are_followed_from_the_medium_run():
    """ree_magnets_risk, seed 2030, 40 draws: in 2028 draw 17 (Dy/Tb export tax, severity
    0.32) stockpile_60, stockpile_60_coordinated and combination stalled from last year's
    solution and from the default start (magnet makers' value added near 0 on the short-run
    capacity curve); followed from the medium-run elasticities they solve, to the same
    tolerance."""
    from pathlib import Path

    from tradepolicy.pathway.loop import run_years

    path = Path(__file__).resolve().parents[1] / "scenarios" / "ree_magnets_risk.toml"
    run = run_years(tp.load_scenarios(path), draws=40, seed=2030)
    S = len(run.names)
    y = list(run.years).index(2028)
    assert run.event_active is not None and run.event_active[17, y].any()
    assert run.converged[y].reshape(-1, S)[17].all()
    assert max(m for m in (0, *[int((~c).sum()) for c in run.converged])) <= 1
