"""Honest accounting (DESIGN §5): stocks as assets, undertaking rents, own flows, no notional
numbers, the unit value paid."""

from __future__ import annotations

import numpy as np
import pytest
from builders import ELASTICITIES, FOUR, market, scen, solve1

import tradepolicy as tp
from tradepolicy.measures import (
    WELFARE_ENTRIES,
    DemandShift,
    Measure,
    Offtake,
    PriceFloor,
    PriceGapSubsidy,
    StockpilePurchase,
    StockpileRelease,
    Tariff,
    measure_types,
)

EQUILIBRIUM = ["producer_price", "consumer_price", "production", "consumption", "trade_flow"]


@pytest.fixture(scope="module")
def free() -> tp.Market:
    """FOUR without base tariffs, every base price 100: undistorted, equal landed prices."""
    return market(FOUR, **{**ELASTICITIES, "price": {"default": 100.0}})


def v(da) -> float:
    return float(da)


def adds_up(ds) -> None:
    """Welfare parts add up to ``welfare_change`` in every region and scenario."""
    parts = sum(ds[k] for k in WELFARE_ENTRIES)
    scale = float(np.abs(ds[list(WELFARE_ENTRIES)].to_dataarray()).max()) + 1.0
    np.testing.assert_allclose(parts.values, ds.welfare_change.values, rtol=0, atol=1e-12 * scale)


# -- stocks are assets -------------------------------------------------------------------------


def test_release_welfare_is_the_trading_gain_plus_market_effects(four):
    """Sale revenue P·Q minus the written-off book value: only (P − book)·Q counts."""
    ds = solve1(
        [
            scen("at_base", StockpileRelease(region="USA", quantity=10.0)),
            scen("dear_book", StockpileRelease(region="USA", quantity=10.0, book_value=150.0)),
        ],
        four,
        tol=1e-13,
    )
    adds_up(ds)
    P0 = v(ds.consumer_price.sel(scenario="baseline", region="USA"))
    for name, book in (("at_base", P0), ("dear_book", 150.0)):
        cur = ds.sel(scenario=name)
        P = v(cur.consumer_price.sel(region="USA"))
        assert P < P0
        assert v(cur.stockpile_cost.sel(region="USA")) == pytest.approx(P * 10.0, rel=1e-13)
        assert v(cur.stock_value_change.sel(region="USA")) == pytest.approx(-book * 10.0)
        assert v(cur.stock_change.sel(region="USA")) == -10.0
        market_effects = sum(
            cur[k].sel(region="USA")
            for k in WELFARE_ENTRIES
            if k not in ("stockpile_cost", "stock_value_change")
        )
        assert v(cur.welfare_change.sel(region="USA")) == pytest.approx(
            (P - book) * 10.0 + v(market_effects), rel=1e-12
        )
        others = cur.drop_sel(region="USA")
        assert float(np.abs(others.stock_value_change).max()) == 0.0
        assert float(np.abs(others.stock_change).max()) == 0.0
    # the book value moves who gains on paper, never quantities or prices
    for name in EQUILIBRIUM:
        np.testing.assert_allclose(
            ds[name].sel(scenario="at_base"), ds[name].sel(scenario="dear_book"), rtol=1e-14
        )


def test_a_small_release_at_base_book_value_is_no_free_lunch(free):
    """Undistorted market, book = base price: world welfare is second order in Q (the old
    accounting booked the whole sale revenue, a first-order gain P0·Q)."""
    qs = (0.5, 1.0, 2.0)
    ds = solve1(
        [scen(f"q{q}", StockpileRelease(region="USA", quantity=q)) for q in qs], free, tol=1e-14
    )
    adds_up(ds)
    P0 = v(ds.consumer_price.sel(scenario="baseline", region="USA"))
    world = {q: v(ds.welfare_change.sel(scenario=f"q{q}").sum()) for q in qs}
    for q in qs:
        assert abs(world[q]) < 1e-2 * P0 * q  # tiny against the revenue P0·Q
        assert world[q] < 0  # selling at base cost below the marginal value is a small loss
    # second order: doubling Q quadruples the loss
    assert world[2.0] / world[1.0] == pytest.approx(4.0, rel=0.05)
    assert world[1.0] / world[0.5] == pytest.approx(4.0, rel=0.05)
    # about the Harberger triangle −½·ΔP·Q
    dP = v(ds.consumer_price.sel(scenario="q1.0", region="USA")) - P0
    assert world[1.0] == pytest.approx(0.5 * dP * 1.0, rel=0.05)


def test_purchase_then_release_nets_zero(four):
    """A purchase is booked at what it paid; a release at that book value gains nothing."""
    ds = solve1(
        [
            scen("purchase", StockpilePurchase(region="EU", quantity=8.0)),
            scen(
                "both",
                StockpilePurchase(region="EU", quantity=8.0),
                StockpileRelease(region="EU", quantity=8.0),
            ),
        ],
        four,
        tol=1e-13,
    )
    adds_up(ds)
    pur, both = ds.sel(scenario="purchase"), ds.sel(scenario="both")
    P = v(pur.consumer_price.sel(region="EU"))
    assert v(pur.stockpile_cost.sel(region="EU")) == pytest.approx(-P * 8.0, rel=1e-13)
    assert v(pur.stock_value_change.sel(region="EU")) == pytest.approx(P * 8.0, rel=1e-13)
    assert v(pur.stock_change.sel(region="EU")) == 8.0
    # a purchase's welfare is its market effects: the money became stock
    entry = pur.stockpile_cost + pur.stock_value_change
    assert float(np.abs(entry).max()) <= 1e-12 * P * 8.0
    # bought and sold in the same year: nothing happens, nothing is booked
    for name in EQUILIBRIUM:
        np.testing.assert_allclose(
            both[name], ds[name].sel(scenario="baseline"), rtol=1e-12, atol=1e-12
        )
    assert float(np.abs(both.stock_change).max()) == 0.0
    assert float(np.abs(both.stockpile_cost + both.stock_value_change).max()) <= 1e-9
    assert float(np.abs(both.welfare_change).max()) <= 1e-9
    # a later release of the purchased stock at the price it was bought at: zero entry
    rel = solve1(
        [scen("release", StockpileRelease(region="EU", quantity=8.0, book_value=P))],
        four,
        tol=1e-13,
    ).sel(scenario="release")
    P_rel = v(rel.consumer_price.sel(region="EU"))
    gain = v(rel.stockpile_cost.sel(region="EU") + rel.stock_value_change.sel(region="EU"))
    assert gain == pytest.approx((P_rel - P) * 8.0, rel=1e-12)


def test_stockpiled_offtake_material_is_an_asset(four):
    """The stockpiled volume is stock worth the market price paid; the welfare cost to the
    buyers is the premium only."""
    kw = {"buyers": {"USA": 0.4, "EU": 0.6}, "sellers": ["AUS"], "volume": 10.0, "price": 130.0}
    ds = solve1([scen("stock", Offtake(**kw))], four)
    adds_up(ds)
    st = ds.sel(scenario="stock")
    p = v(st.producer_price.sel(region="AUS"))
    np.testing.assert_allclose(
        st.stock_value_change.sel(region=["USA", "EU"]), [0.4 * p * 10.0, 0.6 * p * 10.0]
    )
    np.testing.assert_allclose(st.stock_change.sel(region=["USA", "EU"]), [4.0, 6.0])
    np.testing.assert_allclose(
        (st.offtake_cost + st.stockpile_cost + st.stock_value_change).sel(region=["USA", "EU"]),
        [-0.4 * (130.0 - p) * 10.0, -0.6 * (130.0 - p) * 10.0],
        rtol=1e-12,
    )


# -- undertakings ----------------------------------------------------------------------------


def test_undertaking_equals_a_levy_but_the_rent_is_the_exporters(four):
    """Same quantities and prices; the importer's levy revenue becomes the exporters'
    undertaking rent plus the importer's tariff on the margin; world welfare is equal."""
    kw = {"importers": ["USA", "EU"], "floor": 125.0, "exempt": ["AUS"]}
    ds = solve1(
        [scen("levy", PriceFloor(**kw)), scen("und", PriceFloor(**kw, collector="exporters"))],
        four,
        tol=1e-13,
    )
    adds_up(ds)
    lev, und = ds.sel(scenario="levy"), ds.sel(scenario="und")
    for name in [*EQUILIBRIUM, "landed_price", "levy"]:
        np.testing.assert_allclose(lev[name], und[name], rtol=1e-14)
    assert float(np.abs(und.levy_revenue).max()) == 0.0
    assert float(np.abs(lev.undertaking_rent).max()) == 0.0
    # CHN → USA carries the 25% base tariff: part of the margin is the importer's tariff
    extra_tariff = und.tariff_revenue_change - lev.tariff_revenue_change
    assert v(extra_tariff.sel(region="USA")) > 0
    np.testing.assert_allclose(
        lev.levy_revenue.sum(), und.undertaking_rent.sum() + extra_tariff.sum(), rtol=1e-12
    )
    rent = (und.levy * und.trade_flow / (1.0 + und.tariff_rate)).sum("importer", skipna=True)
    np.testing.assert_allclose(und.undertaking_rent, rent.rename(exporter="region"), rtol=1e-12)
    assert v(und.undertaking_rent.sel(region="CHN")) > 0
    np.testing.assert_allclose(
        lev.welfare_change.sum(), und.welfare_change.sum(), rtol=1e-12, atol=1e-9
    )


# -- own flows -------------------------------------------------------------------------------


def test_measures_on_own_flows_only_when_named(four):
    """Default coverage is foreign origins; a region named as importer and exporter covers
    its own flow (trade inside an aggregate region)."""
    ds = solve1(
        [
            scen("default", Tariff(importers=["ROW"], rate=0.3)),
            scen("own", Tariff(importers=["ROW"], exporters=["ROW"], rate=0.3)),
            scen("floor_default", PriceFloor(importers=["ROW"], floor=130.0)),
            scen("floor_own", PriceFloor(importers=["ROW"], exporters=["ROW"], floor=130.0)),
        ],
        four,
        tol=1e-13,
    )
    adds_up(ds)
    own = {"exporter": "ROW", "importer": "ROW"}
    assert v(ds.tariff_rate.sel(scenario="default", **own)) == 0.0
    assert v(ds.tariff_rate.sel(scenario="default", exporter="CHN", importer="ROW")) == 0.3
    assert v(ds.tariff_rate.sel(scenario="own", **own)) == 0.3
    assert v(ds.tariff_rate.sel(scenario="own", exporter="CHN", importer="ROW")) == 0.0
    # revenue on the own flow: t · p · X, booked to ROW
    cur = ds.sel(scenario="own")
    revenue = 0.3 * cur.producer_price.sel(region="ROW") * cur.trade_flow.sel(**own)
    assert v(cur.tariff_revenue_change.sel(region="ROW")) == pytest.approx(v(revenue), rel=1e-12)
    assert v(ds.levy.sel(scenario="floor_default", **own)) == 0.0
    levy_own = v(ds.levy.sel(scenario="floor_own", **own))
    assert levy_own > 0
    fl = ds.sel(scenario="floor_own")
    assert v(fl.levy_revenue.sel(region="ROW")) == pytest.approx(
        levy_own * v(fl.trade_flow.sel(**own)), rel=1e-12
    )


def test_base_tariff_on_an_own_flow_is_applied():
    flows = {**FOUR, "ROW": {"ROW": 20.0, "EU": 5.0, "USA": 3.0}}
    mkt = market(flows, **ELASTICITIES, tariffs={"ROW": {"ROW": 0.2}})
    r = mkt.index("ROW")[0]
    assert mkt.base_tariff[r, r] == 0.2
    ds = solve1([scen("drop", Tariff(importers=["ROW"], exporters=["ROW"], rate=0.0))], mkt)
    base = ds.sel(scenario="baseline")
    np.testing.assert_allclose(base.trade_flow.values, mkt.flows, rtol=1e-13)
    own = {"exporter": "ROW", "importer": "ROW"}
    assert v(base.landed_price.sel(**own)) == pytest.approx(1.2 * 100.0, rel=1e-14)
    # removing it loses exactly the base revenue on the own flow, and trade inside ROW grows
    cur = ds.sel(scenario="drop")
    assert v(cur.trade_flow.sel(**own)) > 20.0
    assert v(cur.tariff_revenue_change.sel(region="ROW")) == pytest.approx(-0.2 * 100.0 * 20.0)


# -- no notional numbers ---------------------------------------------------------------------


def test_levies_and_rents_are_absent_on_pairs_without_trade(four):
    """EU → USA never trades; a floor covering it shows no notional levy there."""
    ds = solve1([scen("floor", PriceFloor(importers=["USA"], floor=130.0))], four)
    cur = ds.sel(scenario="floor")
    traded = cur.trade_flow > 0
    assert v(cur.trade_flow.sel(exporter="EU", importer="USA")) == 0.0
    for name in ("levy", "quota_rent", "diversification_shadow_price"):
        np.testing.assert_array_equal(np.isnan(cur[name].values), ~traded.values)
    assert v(cur.levy.sel(exporter="CHN", importer="USA")) > 0
    # the levy revenue is the sum of what is levied on the trade that happens
    levied = (cur.levy * cur.trade_flow).sum("exporter", skipna=True).rename(importer="region")
    np.testing.assert_allclose(cur.levy_revenue, levied, rtol=1e-12)


# -- the unit value paid ---------------------------------------------------------------------


def test_unit_value_price_against_the_ces_price(free):
    """At base the CES price is calibrated to the unit value; with identical landed prices
    the CES index is at least the unit value (a CES quantity index is concave), and the gap
    under a floor is the loss of variety; a one-variety buyer pays exactly the CES price."""
    ds = solve1(
        [
            scen("floor", PriceFloor(importers=["USA", "EU"], floor=125.0, exempt=["AUS"])),
            scen("tariff", Tariff(importers=["CHN"], exporters=["AUS"], rate=0.5)),
        ],
        free,
        tol=1e-13,
    )
    base = ds.sel(scenario="baseline")
    np.testing.assert_allclose(base.unit_value_price, base.consumer_price, rtol=1e-13)
    fl = ds.sel(scenario="floor")
    X, q = fl.trade_flow, fl.landed_price
    paid = (q * X).sum("exporter", skipna=True) / X.sum("exporter")
    np.testing.assert_allclose(fl.unit_value_price, paid.rename(importer="region"), rtol=1e-13)
    gap = fl.consumer_price - fl.unit_value_price
    assert float(gap.min()) >= -1e-9
    # the USA buys floor-priced imports beside cheaper own and exempt AUS supply: its mix
    # moves away from the base mix, a strict loss of variety
    assert v(gap.sel(region="USA")) > 1e-4 * v(fl.consumer_price.sel(region="USA"))
    # every EU supplier lands at the floor: identical landed prices, no gap
    assert (q.sel(importer="EU").where(X.sel(importer="EU") > 0) == 125.0).sum() == 3
    assert v(gap.sel(region="EU")) == pytest.approx(0.0, abs=1e-12 * 125.0)
    # AUS consumes only its own variety: unit value and CES price coincide in every scenario
    np.testing.assert_allclose(
        ds.unit_value_price.sel(region="AUS"), ds.consumer_price.sel(region="AUS"), rtol=1e-13
    )


def test_unit_value_equals_ces_price_when_the_mix_is_unchanged():
    """Two identical producers sell alike to C: a demand shift in C moves their prices
    together, C's mix stays the base mix and the two prices coincide though both rise; a
    tariff on one of them changes the mix and opens the gap."""
    row = {"C": 30.0, "D": 20.0}
    sym = market({"A": {"A": 50.0, **row}, "B": {"B": 50.0, **row}})
    ds = solve1(
        [
            scen("shift", DemandShift(region="C", fraction=0.3)),
            scen("tariff", Tariff(importers=["C"], exporters=["A"], rate=0.3)),
        ],
        sym,
        tol=1e-13,
    )
    shift = ds.sel(scenario="shift", region="C")
    assert v(shift.consumer_price) > 100.0 * (1 + 1e-3)
    assert v(shift.unit_value_price) == pytest.approx(v(shift.consumer_price), rel=1e-12)
    tar = ds.sel(scenario="tariff", region="C")
    assert v(tar.consumer_price) - v(tar.unit_value_price) > 1e-3 * v(tar.consumer_price)


# -- caveats -----------------------------------------------------------------------------------


def test_every_measure_type_has_a_caveat_string_and_the_doubtful_ones_say_it():
    assert Measure.caveat == ""
    for cls in measure_types().values():
        assert isinstance(cls.caveat, str)
    for cls in (DemandShift, PriceFloor, PriceGapSubsidy, StockpileRelease, StockpilePurchase):
        assert len(cls.caveat) > 40, cls
    assert "undertaking" in PriceFloor.caveat
    assert "consumer surplus" in DemandShift.caveat.lower()
