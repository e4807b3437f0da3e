"""Stockpile policy in pathway sets (docs/risk.md, DESIGN §5 "Stocks are assets").

- stock accounting adds up over the horizon: purchases − releases = stock change, book
  values written off once, the welfare parts add up;
- in a world without events a stockpile only costs (holding cost > 0, loss reduction 0);
- a stockpile released in an event year lowers the bloc's loss.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders import stockpile_policy, toy_short_run

import tradepolicy as tp
from tradepolicy.errors import InputError
from tradepolicy.measures import MEASURES
from tradepolicy.measures.base import WELFARE_ENTRIES
from tradepolicy.pathway.loop import run_years
from tradepolicy.pathway.results import build
from tradepolicy.pathway.risk import RiskEvent
from tradepolicy.pathway.spec import PathwaySet
from tradepolicy.scenario import Target


def quota_event(p: float, **kw) -> RiskEvent:
    q = MEASURES["export_quota"](exporter="CHN", destinations=["USA", "EU"], quantity_share=0.3)
    return RiskEvent(name="cut", measure=q, annual_probability=p, **kw)


def pset(market, measures, risk=(), years=(2024, 2029)) -> PathwaySet:
    scen = [tp.Scenario(name="stock", measure=list(measures))]
    return PathwaySet(
        market=market,
        scenarios=scen,
        years=years,
        risk=list(risk),
        target=Target(bloc=["USA", "EU"], max_share=0.6),
    )


def test_stock_accounting_adds_up_over_the_horizon():
    m = toy_short_run()
    ps = pset(m, [stockpile_policy(release="price", trigger_price=1.0, build_years=[2024, 2025])])
    run = run_years(ps)  # releases whenever last year's price is above 1 USD/t: every year
    ds = build(run, ps)
    S = len(run.names)
    level = np.stack(run.stock_level)[:, 1]  # (year, region) of the stockpile option
    use = m.flows.sum(axis=0)
    change = np.diff(np.concatenate([np.zeros((1, level.shape[1])), level]), axis=0)
    # purchases − releases = stock change: the market saw exactly those composite purchases
    pp = np.stack([run.per_year[y][0]["stockpile_cost"][1] for y in range(len(run.years))])
    sv = np.stack([run.per_year[y][0]["stock_value_change"][1] for y in range(len(run.years))])
    assert level[0, 1] > 0 and level[-1].sum() < level[0].sum()  # built, then released
    target = 90.0 / 365.0 * use
    assert np.all(level <= target[None, :] + 1e-9)
    # book values are written off once: the assets booked add up to the stock left at book
    # value (acquisition cost, a moving average), and nothing is written off twice
    book_left = float(ds["pv_stock_left"].sum()) / (1.05 ** -(len(run.years) - 1))
    np.testing.assert_allclose(sv.sum(), book_left, rtol=1e-9, atol=1e-3)
    assert change.sum() == pytest.approx(level[-1].sum())
    # the welfare parts add up to the total in every year
    for y in range(len(run.years)):
        r = run.per_year[y][0]
        total = sum(np.nan_to_num(r[k][:S]) for k in WELFARE_ENTRIES)
        np.testing.assert_allclose(total, np.nan_to_num(r["welfare_change"][:S]), atol=1e-6)
    # cash: purchases are spending (< 0), releases revenue; the holding cost is a cost
    assert pp[0].sum() < 0


def test_no_event_world_stockpile_only_costs():
    m = toy_short_run()
    ps = pset(m, [stockpile_policy()], risk=[quota_event(0.0)])
    ds = tp.solve(ps, draws=3, seed=4)
    assert float(ds["cost_of_inaction"]) == 0.0
    np.testing.assert_array_equal(ds["loss_reduction"].values, 0.0)
    cost = float(ds["pv_stockpile_cost"].sel(scenario="stock").sum())
    assert cost > 0  # holding cost (financing and storage) and no release gains
    t = ds.tp.risk_table()
    assert t.loc["stock", "loss_reduction"] == 0.0
    assert t.loc["stock", "pv_stockpile_cost"] > 0
    assert (ds["stock_level"].sel(scenario="baseline") == 0).all()


def test_release_in_an_event_year_lowers_the_bloc_loss():
    m = toy_short_run()
    ev = quota_event(1.0, first_year=2027, last_year=2027)
    ds = tp.solve(pset(m, [stockpile_policy()], risk=[ev]), draws=2, seed=5)
    loss = ds["expected_disruption_loss"]
    assert float(loss.sel(scenario="baseline")) > 0
    assert float(loss.sel(scenario="stock")) < float(loss.sel(scenario="baseline"))
    assert float(ds["loss_reduction"].sel(scenario="stock")) > 0
    stock = ds["expected_stock_level"].sel(scenario="stock").sum("region")
    assert float(stock.sel(year=2027)) < float(stock.sel(year=2026))  # released in 2027


def test_stockpile_policy_is_validated():
    with pytest.raises(ValueError, match="trigger_price"):
        stockpile_policy(release="price")
    with pytest.raises(ValueError, match="365"):
        stockpile_policy(target_days=365.0, release_rate=1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        stockpile_policy(payers={"USA": 0.5})
    m = toy_short_run()
    with pytest.raises(InputError, match="build_years"):
        pset(m, [stockpile_policy(build_years=[2024, 2040])])
    with pytest.raises(InputError, match=r"scenario\[0\]\.measure\[0\]\.type"):
        tp.ScenarioSet(market=m, scenarios=[tp.Scenario(name="s", measure=[stockpile_policy()])])


def test_a_draw_that_fails_is_left_out_of_every_risk_statistic(monkeypatch, caplog):
    """A draw with a row that did not solve (here a no-event counterfactual row, forced) is
    left out of the expected loss, its range, the loss reduction and the stockpile and budget
    costs of every option (common random numbers), and books no loss."""
    import tradepolicy.pathway.loop as loop

    m = toy_short_run()
    ps = lambda: pset(m, [stockpile_policy()], risk=[quota_event(0.5)])  # noqa: E731
    ref = tp.solve(ps(), draws=8, seed=9)
    assert ref.attrs["risk_draws_used"] == 8
    real = loop._run_chain
    forced = []

    def failing(*args, **kw):
        res = real(*args, **kw)
        if kw.get("base") is not None and not forced:  # the first chunk with events
            for r in res:  # its last row: a counterfactual of the last hit draw
                r["converged"] = r["converged"].copy()
                r["converged"][-1] = False
            forced.append(True)
        return res

    monkeypatch.setattr(loop, "_run_chain", failing)
    ds = tp.solve(ps(), draws=8, seed=9)
    assert forced
    used = ds["risk_draw_used"].values.astype(bool)
    assert ds.attrs["risk_draws_used"] == 7 and ds.attrs["risk_draws"] == 8
    assert "draws left out" in caplog.text  # 1 of 8 > 5%
    (bad,) = np.flatnonzero(~used[1:]) + 1
    assert ref["event_active"].values[bad].any()
    assert np.isnan(ds["disruption_loss"].sel(draw=bad)).all()  # no loss booked
    keep = np.flatnonzero(used)
    loss = ref["disruption_loss"].isel(draw=keep)
    np.testing.assert_allclose(ds["expected_disruption_loss"], loss.mean("draw"), rtol=1e-10)
    for q in (5, 95):
        np.testing.assert_allclose(
            ds[f"disruption_loss_p{q:02d}"], np.percentile(loss.values, q, axis=1), rtol=1e-10
        )
    coi = float(loss.sel(scenario="baseline").mean())
    np.testing.assert_allclose(float(ds["cost_of_inaction"]), coi, rtol=1e-10)
    np.testing.assert_allclose(ds["loss_reduction"], coi - loss.mean("draw"), rtol=1e-10)
    stock = ref["pv_stockpile_cost_draws"].isel(draw=keep).mean("draw")
    np.testing.assert_allclose(ds["pv_stockpile_cost"], stock, rtol=1e-10)
    t, t_ref = ds.tp.risk_table(), ref.tp.risk_table()
    bloc = ["USA", "EU"]
    budget = ref["pv_budget_cost"].isel(draw=keep).sel(region=bloc).sum("region").mean("draw")
    left = ds["pv_stock_left"].sel(region=bloc).sum("region").values
    np.testing.assert_allclose(t["pv_budget_cost"], budget.values - left, rtol=1e-10)
    assert not np.allclose(t["expected_loss"], t_ref["expected_loss"])  # the draw counted


def test_risk_table_budget_cost_is_the_blocs():
    """The risk table's budget cost is the bloc's, as its loss: an export-tax event's revenue
    abroad (China's, which a release lowers) is no cost of the option; the bloc's own border
    revenue (the toy's US tariff on the stock's imports) is."""
    m = toy_short_run()
    tax = MEASURES["export_tax"](exporter="CHN", destinations=["USA", "EU"], rate=1.0)
    ev = RiskEvent(name="tax", measure=tax, annual_probability=1.0, first_year=2027)
    ds = tp.solve(pset(m, [stockpile_policy()], risk=[ev]), draws=2, seed=5)
    t = ds.tp.risk_table()
    pv = ds["pv_budget_cost"].sel(scenario="stock").isel(draw=slice(1, None)).mean("draw")
    assert abs(float(pv.sel(region="CHN"))) > 1e6  # China's export-tax revenue moves
    left = float(ds["pv_stock_left"].sel(scenario="stock").sum())
    bloc = float(pv.sel(region=["USA", "EU"]).sum())
    np.testing.assert_allclose(t.loc["stock", "pv_budget_cost"], bloc - left, rtol=1e-9)
