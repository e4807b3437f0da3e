"""Measures (DESIGN §4) against theory: regimes, equivalences, corners and welfare accounting.

Every measure is checked slack (identical to no measure), binding and at its corners, and
against an independent solve where theory gives one (a levy and the tariff with the same
landed price, a quota rent and the tariff giving the same imports, ...). The complementarity
machinery is checked directly: the box Fischer–Burmeister function and a finite-difference
check of the analytic Jacobian with every measure type active.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders import ELASTICITIES, FOUR, market, scen, solve1

import tradepolicy as tp
from tradepolicy.api import build_instruments
from tradepolicy.measures import (
    WELFARE_ENTRIES,
    DemandShift,
    DiversificationCap,
    ExportQuota,
    ExportTax,
    ImportQuota,
    Offtake,
    PriceFloor,
    PriceGapSubsidy,
    StockpilePurchase,
    StockpileRelease,
    SupplyShock,
    Tariff,
    TariffRateQuota,
)
from tradepolicy.model.instruments import InstrumentBuilder, PairSpec
from tradepolicy.model.levels import box_fb, evaluate, jacobian_of
from tradepolicy.solver.newton import take_calibration

PARTS = list(WELFARE_ENTRIES)
EQUILIBRIUM = ["producer_price", "consumer_price", "production", "consumption", "trade_flow"]


USA_OUTPUT, USA_EPS = 7.0, 1.5


@pytest.fixture(scope="module")
def free() -> tp.Market:
    """FOUR at free trade (no base tariff): an undistorted baseline."""
    return market(FOUR, **ELASTICITIES)


@pytest.fixture(scope="module")
def ndpr() -> tp.Market:
    return tp.load_market("ndpr_oxide")


def val(da) -> float:
    return float(da)


def assert_same_equilibrium(a, b, rtol=1e-8):
    """Same quantities and prices (NaN where a variety or a region is absent)."""
    for name in EQUILIBRIUM:
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=rtol, atol=1e-9)


def assert_like_baseline(ds, name):
    """Scenario ``name`` is the baseline: same equilibrium, every welfare part zero."""
    cur, base = ds.sel(scenario=name), ds.sel(scenario="baseline")
    assert int(cur.converged) == 1
    assert_same_equilibrium(cur, base, rtol=1e-12)
    scale = float((base.consumer_price * base.consumption).sum())
    for part in [*PARTS, "welfare_change"]:
        np.testing.assert_allclose(cur[part].values, 0.0, atol=1e-12 * scale)
    traded = cur.trade_flow > 0
    for flow in ("levy", "quota_rent", "diversification_shadow_price"):
        # zero on every traded pair, absent (NaN) on pairs without trade
        np.testing.assert_allclose(cur[flow].where(traded, 0.0).values, 0.0, atol=1e-9)
        np.testing.assert_array_equal(np.isnan(cur[flow].values), ~traded.values)


def assert_accounts(ds):
    """Parts add up to ``welfare_change`` and the world total is the sum over regions."""
    ok = ds.converged == 1
    total = sum(ds[p] for p in PARTS)
    scale = float(np.abs(ds[PARTS].to_dataarray()).max()) + 1.0
    np.testing.assert_allclose(
        ds.welfare_change.where(ok).values, total.where(ok).values, rtol=0, atol=1e-12 * scale
    )
    world = ds.tp.world_welfare()
    np.testing.assert_allclose(
        world.sel(component="welfare_change").where(ok).values,
        ds.welfare_change.sum("region").where(ok).values,
        rtol=0,
        atol=1e-12 * scale,
    )
    for part in PARTS:
        np.testing.assert_allclose(
            world.sel(component=part).where(ok).values,
            ds[part].sum("region").where(ok).values,
            rtol=0,
            atol=1e-12 * scale,
        )


def pair(da, exporter, importer) -> float:
    return float(da.sel(exporter=exporter, importer=importer))


# -- the box Fischer–Burmeister function ------------------------------------------------------


@pytest.mark.parametrize("hi", [2.0, np.inf], ids=["finite_hi", "infinite_hi"])
def test_box_fb_is_zero_exactly_on_the_complementarity_set(hi):
    lo = 0.5
    zero = [(lo, 1.0), (lo, 0.0), (lo, 1e3), (1.0, 0.0), (1.7, 0.0)]
    nonzero = [(lo, -1.0), (lo, -1e-6), (1.0, 0.3), (1.0, -0.3), (0.2, 0.5), (0.2, 0.0)]
    if np.isfinite(hi):
        zero += [(hi, -1.0), (hi, 0.0), (hi, -1e3)]
        nonzero += [(hi, 1.0), (hi, 1e-6), (2.5, -1.0), (2.5, 0.0)]
    else:
        nonzero += [(1e6, 1e-3), (1e6, -1e-3)]
    for x, g in zero:
        phi = box_fb(np.array([x]), np.array([lo]), np.array([hi]), np.array([g]))[0]
        assert phi[0] == 0.0, (x, g, phi)
    for x, g in nonzero:
        phi = box_fb(np.array([x]), np.array([lo]), np.array([hi]), np.array([g]))[0]
        assert abs(phi[0]) > 1e-12, (x, g, phi)


def test_box_fb_without_upper_bound_is_plain_fischer_burmeister():
    rng = np.random.default_rng(1)
    x, g = rng.uniform(-2, 2, 50), rng.uniform(-2, 2, 50)
    lo = rng.uniform(-1, 1, 50)
    phi = box_fb(x, lo, np.full(50, np.inf), g)[0]
    a = x - lo
    np.testing.assert_allclose(phi, np.hypot(a, g) - a - g, rtol=1e-14, atol=1e-15)


def test_box_fb_mixed_bounds_and_derivatives():
    """Finite and infinite upper bounds in one call; ∂Φ/∂x and ∂Φ/∂g by central differences."""
    rng = np.random.default_rng(2)
    n = 400
    lo = rng.uniform(-1.0, 0.0, n)
    hi = np.where(rng.uniform(size=n) < 0.5, lo + rng.uniform(0.5, 2.0, n), np.inf)
    x = lo + rng.uniform(-0.5, 2.5, n)
    g = rng.uniform(-1.0, 1.0, n)
    phi, dx, dg = box_fb(x, lo, hi, g)
    for i in range(n):  # element by element gives the same values
        one = box_fb(x[i : i + 1], lo[i : i + 1], hi[i : i + 1], g[i : i + 1])
        assert one[0][0] == phi[i] and one[1][0] == dx[i] and one[2][0] == dg[i]
    h = 1e-7
    fd_x = (box_fb(x + h, lo, hi, g)[0] - box_fb(x - h, lo, hi, g)[0]) / (2 * h)
    fd_g = (box_fb(x, lo, hi, g + h)[0] - box_fb(x, lo, hi, g - h)[0]) / (2 * h)
    np.testing.assert_allclose(dx, fd_x, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dg, fd_g, rtol=1e-6, atol=1e-7)


# -- analytic Jacobian against finite differences ----------------------------------------------


def _jacobian_market() -> tp.Market:
    """FOUR with a Cobb-Douglas importer (EU), unit-elastic demand (USA) and a base tariff."""
    return market(
        FOUR,
        supply={"default": 1.0, "CHN": 0.8, "USA": 1.5},
        demand={"default": 0.5, "USA": 1.0},
        sigma={"default": 4.0, "USA": 2.5, "EU": 1.0},
        price={"default": 100.0, "AUS": 104.0},
        tariffs={"CHN": {"USA": 0.25}},
    )


_PLAIN = [  # (EU's tariff on CHN comes from the tariff-rate quota: one tariff per pair)
    Tariff(importers=["USA"], exporters=["CHN"], rate=0.3),
    ExportTax(exporter="AUS", rate=0.1),
    SupplyShock(region="ROW", fraction=0.2),
    DemandShift(region="EU", fraction=0.1),
]
_FLOOR = PriceFloor(importers=["USA", "EU"], floor=118.0, exempt=["AUS"], levy_cap=12.0)
_UNDERTAKING = PriceFloor(importers=["ROW"], floor=110.0, collector="exporters")
_SUBSIDIES = [
    PriceGapSubsidy(producers=["USA"], strike=115.0, kind="two_sided"),
    PriceGapSubsidy(
        producers=["ROW"], strike=95.0, kind="collar", upside_threshold=105.0, upside_share=0.5
    ),
    PriceGapSubsidy(producers=["AUS"], strike=120.0, covered_volume=40.0, payers={"USA": 1.0}),
]
_QUOTAS = [
    ImportQuota(importers=["USA"], exporters=["CHN", "ROW"], quantity=20.0),
    TariffRateQuota(importers=["EU"], exporters=["CHN"], quantity=30.0, in_rate=0.05, out_rate=0.4),
]
_EXPORT_QUOTA = ExportQuota(exporter="ROW", destinations=["USA", "EU"], quantity=5.0)
_CAPS = [
    DiversificationCap(importers=["USA"], max_share=0.5),
    DiversificationCap(importers=["EU"], max_share=0.6, basis="imports"),
]
_BANS = [
    ImportQuota(importers=["USA"], exporters=["ROW"], quantity=0.0),
    ExportQuota(exporter="AUS", destinations=["USA"], quantity=0.0),
]
_STOCKS = [
    Offtake(buyers={"USA": 0.5, "EU": 0.5}, sellers=["AUS", "ROW"], volume=8.0, price=120.0),
    StockpileRelease(region="USA", quantity=6.0),
    StockpilePurchase(region="CHN", quantity=20.0),
]
_EVERYTHING_BUT_EXPORT_QUOTA = [
    *_PLAIN,
    _FLOOR,
    _UNDERTAKING,
    *_SUBSIDIES,
    *_QUOTAS,
    *_CAPS,
    _BANS[0],
    *_STOCKS,
]
JACOBIAN_CASES = {
    "plain_wedges": [_PLAIN],
    "price_floor": [[_FLOOR], [_UNDERTAKING, Tariff(importers=["ROW"], rate=0.1)]],
    "price_gap_subsidy": [[s] for s in _SUBSIDIES]
    + [  # covered volume between output at the market price and at the strike, and above
        [PriceGapSubsidy(producers=["USA"], strike=130.0, covered_volume=v)] for v in (8.5, 1e3)
    ],
    "offtake_and_stockpiles": [_STOCKS],
    "import_quota_and_trq": [[q] for q in _QUOTAS] + [[*_QUOTAS, _FLOOR]],
    "diversification_cap": [_CAPS, [*_CAPS, _FLOOR, *_QUOTAS]],
    "bans": [_BANS, [*_BANS, _CAPS[0]]],
    "everything_but_export_quota": [_EVERYTHING_BUT_EXPORT_QUOTA],
    # the export-licence rent sits in the FOB price but does not move with p_o (regression:
    # dq/dz_o once used the FOB price including the rent)
    "export_quota": [[_EXPORT_QUOTA], [_EXPORT_QUOTA, _FLOOR, Tariff(importers=["EU"], rate=0.2)]],
    "everything": [[*_EVERYTHING_BUT_EXPORT_QUOTA, _EXPORT_QUOTA]],
}


def _kink_distance(cal, inst, st) -> float:
    """Smallest relative distance of a point to a kink of the equations (levy clipping,
    price-gap schedule, covered-volume regimes); finite differences must not straddle one."""
    dist = [np.inf]
    covered = inst.floor > 0
    if covered.any():
        floor = inst.floor[covered]
        gap = (inst.floor - (st.q - st.levy))[covered]
        dist += [np.min(np.abs(gap) / floor), np.min(np.abs(gap - inst.levy_cap[covered]) / floor)]
    sup = (inst.support_strike > 0) | (inst.support_share > 0)
    if sup.any():
        p = st.p
        for kink in (inst.support_strike, inst.support_upper):
            at = sup & np.isfinite(kink)
            dist.append(np.min(np.abs(p / np.where(at, kink, 1.0) - 1)[at], initial=np.inf))
        eps = np.broadcast_to(cal.eps, p.shape)
        V = inst.support_volume
        at = sup & np.isfinite(V) & (V > 0)
        for price in (p, p + st.support):  # output at the market and at the top-up price
            S = cal.S0 * inst.supply_mult * (price / cal.p0) ** eps
            dist.append(np.min(np.abs(S / np.where(at, V, 1.0) - 1)[at], initial=np.inf))
    return float(min(dist))


@pytest.mark.parametrize("lists", JACOBIAN_CASES.values(), ids=JACOBIAN_CASES.keys())
def test_kept_parts_give_the_full_jacobian_for_any_rows(lists):
    """The solver's lazy Jacobians (``evaluate(keep=True)`` then :func:`jacobian_of` on a
    subset of rows) equal the Jacobian evaluated in one go."""
    m = _jacobian_market()
    cal = m.calibration
    inst, _ = build_instruments(m, cal, lists * 3)
    N, K, B = cal.N, inst.K, inst.B
    rng = np.random.default_rng(7)
    u = np.zeros((B, N + K))
    u[:, :N] = rng.normal(0.0, 0.15, (B, N))
    width = np.where(np.isfinite(inst.lam_hi), inst.lam_hi - inst.lam_lo, 0.2)
    u[:, N:] = inst.lam_lo + width * rng.uniform(0.05, 0.95, (B, K))
    full = evaluate(cal, inst, u, jacobian=True)
    kept = evaluate(cal, inst, u, jacobian=False, keep=True)
    np.testing.assert_array_equal(kept.F, full.F)
    np.testing.assert_allclose(jacobian_of(cal, inst, kept.parts), full.J, rtol=1e-14, atol=0)
    rows = np.arange(B)[::-2]  # every other row, reversed
    sub = jacobian_of(
        take_calibration(cal, rows), inst.take(rows, model_only=True), kept.parts.take(rows)
    )
    np.testing.assert_allclose(sub, full.J[rows], rtol=1e-14, atol=0)


def test_compact_pair_storage_keeps_every_coefficient():
    """Pairs are stored per cell; the dense view ``inst.G`` is each PairSpec's G again."""
    n = 4
    rng = np.random.default_rng(3)
    builder = InstrumentBuilder(2, np.zeros((n, n)), np.zeros((n, n)))
    specs = []
    for b, k in ((0, 3), (1, 1)):
        for _ in range(k):
            G = np.where(rng.uniform(size=(n, n)) < 0.4, rng.normal(size=(n, n)), 0.0)
            C = np.where(G != 0, 1.0, 0.0)
            builder.add_pair(b, PairSpec(label="x", C_add=C, G=G, g0=1.0))
            specs.append((b, len(builder.pairs[b]) - 1, G))
    inst = builder.build()
    for b, k, G in specs:
        np.testing.assert_array_equal(inst.G[b, k], G)
    assert not inst.G[1, 1:].any()  # padding pairs carry nothing


@pytest.mark.parametrize("lists", JACOBIAN_CASES.values(), ids=JACOBIAN_CASES.keys())
def test_analytic_jacobian_matches_finite_differences(lists):
    m = _jacobian_market()
    cal = m.calibration
    inst, _ = build_instruments(m, cal, lists)
    N, K, B = cal.N, inst.K, inst.B
    assert not any(inst.infeasible)
    rng = np.random.default_rng(12345)
    for _point in range(3):
        for _try in range(50):
            u = np.zeros((B, N + K))
            u[:, :N] = rng.normal(0.0, 0.15, (B, N))
            lo, hi = inst.lam_lo, inst.lam_hi
            width = np.where(np.isfinite(hi), hi - lo, 0.2)
            u[:, N:] = lo + width * rng.uniform(0.05, 0.95, (B, K))
            st = evaluate(cal, inst, u, jacobian=True)
            if np.all(np.isfinite(st.F)) and _kink_distance(cal, inst, st) > 1e-4:
                break
        else:
            pytest.fail("no random point away from kinks")
        h = 1e-6
        fd = np.empty_like(st.J)
        for j in range(N + K):
            e = np.zeros(N + K)
            e[j] = h
            up = evaluate(cal, inst, u + e, jacobian=False).F
            down = evaluate(cal, inst, u - e, jacobian=False).F
            fd[:, :, j] = (up - down) / (2 * h)
        for b in range(B):
            scale = np.max(np.abs(fd[b]))
            np.testing.assert_allclose(st.J[b], fd[b], rtol=1e-6, atol=1e-7 * scale)
        if K:  # the complementarity rows and columns are really exercised
            used = np.array([[lab != "" for lab in row] for row in inst.pair_labels])
            if used.any():
                b, k = np.argwhere(used)[0]
                assert np.any(st.J[b, N + k, :N] != 0) and np.any(st.J[b, :N, N + k] != 0)


# -- slack: every measure that does not bind is no measure at all --------------------------------

SLACK = {
    "tariff_at_base_rate": Tariff(importers=["USA"], exporters=["CHN"], rate=0.25),
    "export_tax_zero": ExportTax(exporter="CHN", rate=0.0),
    "price_floor_below_prices": PriceFloor(importers=["USA", "EU"], floor=60.0),
    "one_sided_subsidy_below_price": PriceGapSubsidy(producers=["USA", "ROW"], strike=70.0),
    "subsidy_no_covered_volume": PriceGapSubsidy(
        producers=["USA"], strike=150.0, covered_volume=0.0
    ),
    "offtake_resold_at_market_price": Offtake(
        buyers={"EU": 1.0}, sellers=["AUS"], volume=20.0, price=104.0, disposition="resell"
    ),
    "import_quota_above_imports": ImportQuota(importers=["USA", "EU"], quantity=200.0),
    "trq_unfilled_at_base_rates": TariffRateQuota(
        importers=["EU"], quantity=100.0, in_rate=0.0, out_rate=0.5
    ),
    "export_quota_above_exports": ExportQuota(exporter="CHN", quantity=100.0 + 1e-6),
    "diversification_cap_above_shares": DiversificationCap(importers=["USA", "EU"], max_share=0.86),
    "supply_shock_zero": SupplyShock(region="CHN", fraction=0.0),
    "demand_shift_zero": DemandShift(region="EU", fraction=0.0),
}


def test_slack_measures_are_identical_to_no_measure(four):
    ds = solve1([scen(k, m) for k, m in SLACK.items()], four)
    assert_accounts(ds)
    for name in SLACK:
        assert_like_baseline(ds, name)


# -- price floor -------------------------------------------------------------------------------


def _pre_levy(ds):
    """Pre-levy landed price p_o (1+x)(1+t) of every pair."""
    fob = ds.producer_price.rename(region="exporter") * (1 + ds.export_tax_rate)
    return fob * (1 + ds.tariff_rate)


def test_price_floor_regimes(four):
    floor = 120.0
    ds = solve1(
        [
            scen("slack", PriceFloor(importers=["USA", "EU"], floor=50.0)),
            scen("bind", PriceFloor(importers=["USA", "EU"], floor=floor, exempt=["AUS"])),
            scen("capped", PriceFloor(importers=["USA", "EU"], floor=floor, levy_cap=5.0)),
            scen("above_all", PriceFloor(importers=["USA", "EU"], floor=1000.0)),
        ],
        four,
    )
    assert (ds.converged == 1).all()
    assert_accounts(ds)
    assert_like_baseline(ds, "slack")

    cur = ds.sel(scenario="bind")
    pre = _pre_levy(cur)
    for exp in ("CHN", "ROW", "USA", "AUS"):
        for imp in ("USA", "EU"):
            if exp == imp or not pair(ds.trade_flow.sel(scenario="baseline"), exp, imp) > 0:
                continue
            landed, p = pair(cur.landed_price, exp, imp), pair(pre, exp, imp)
            if exp == "AUS":  # exempt club member
                assert pair(cur.levy, exp, imp) == 0.0
                np.testing.assert_allclose(landed, p, rtol=1e-13)
            else:
                np.testing.assert_allclose(landed, max(p, floor), rtol=1e-13)
                np.testing.assert_allclose(pair(cur.levy, exp, imp), max(0, floor - p), rtol=1e-12)
    levied = (cur.levy * cur.trade_flow).sum("exporter").rename(importer="region")
    np.testing.assert_allclose(cur.levy_revenue.values, levied.values, rtol=1e-12)
    assert val(cur.levy_revenue.sel(region="EU")) > 0
    assert val(cur.trade_flow.sel(exporter="CHN", importer="EU")) < val(
        ds.trade_flow.sel(scenario="baseline", exporter="CHN", importer="EU")
    )

    capped = ds.sel(scenario="capped")
    pre = _pre_levy(capped)
    traded = ds.trade_flow.sel(scenario="baseline") > 0
    levied = traded & (capped.levy > 0)
    gap = (floor - pre).where(levied)
    np.testing.assert_allclose(capped.levy.where(levied), np.minimum(gap, 5.0), rtol=1e-12)
    assert float(capped.levy.max()) == pytest.approx(5.0, rel=1e-14)

    top = ds.sel(scenario="above_all")  # every covered import lands at the floor
    for exp in ("AUS", "CHN", "ROW"):
        assert pair(top.landed_price, exp, "USA") == pytest.approx(1000.0, rel=1e-14)
        assert (
            0
            < pair(top.trade_flow, exp, "USA")
            < 0.5 * pair(ds.trade_flow.sel(scenario="baseline"), exp, "USA")
        )


def test_binding_levy_equals_tariff_with_the_same_landed_price(four):
    """Replace each levy by the ad valorem tariff on FOB that gives the same landed price."""
    floor = PriceFloor(importers=["USA", "EU"], floor=120.0, exempt=["AUS"])
    first = solve1([scen("levy", floor)], four, tol=1e-13).sel(scenario="levy")
    fob = first.producer_price.rename(region="exporter")
    tariffs = []
    for exp in first.exporter.values:
        for imp in first.importer.values:
            traded = float(four.flows[four.index(exp)[0], four.index(imp)[0]]) > 0
            if traded and float(first.levy.sel(exporter=exp, importer=imp)) > 0:
                landed = float(first.landed_price.sel(exporter=exp, importer=imp))
                rate = landed / float(fob.sel(exporter=exp)) - 1
                tariffs.append(Tariff(importers=[imp], exporters=[exp], rate=rate))
    assert len(tariffs) >= 3
    ds = solve1([scen("levy", floor), scen("tariff", *tariffs)], four, tol=1e-13)
    assert_accounts(ds)
    lev, tar = ds.sel(scenario="levy"), ds.sel(scenario="tariff")
    assert_same_equilibrium(lev, tar, rtol=1e-8)
    traded = ds.trade_flow.sel(scenario="baseline") > 0
    np.testing.assert_allclose(
        lev.landed_price.where(traded), tar.landed_price.where(traded), rtol=1e-8
    )
    # the levy is the tariff revenue above the base rate: national welfare is the same
    np.testing.assert_allclose(
        (lev.levy_revenue + lev.tariff_revenue_change).values,
        tar.tariff_revenue_change.values,
        rtol=1e-7,
    )
    np.testing.assert_allclose(lev.welfare_change, tar.welfare_change, rtol=1e-7, atol=1e-6)


def test_undertaking_and_levy_same_quantities_rent_on_opposite_sides(four):
    kw = {"importers": ["USA", "EU"], "floor": 120.0, "exempt": ["AUS"]}
    ds = solve1(
        [
            scen("levy", PriceFloor(**kw)),
            scen("undertaking", PriceFloor(**kw, collector="exporters")),
        ],
        four,
    )
    assert_accounts(ds)
    lev, und = ds.sel(scenario="levy"), ds.sel(scenario="undertaking")
    assert_same_equilibrium(lev, und, rtol=1e-14)
    np.testing.assert_allclose(lev.landed_price, und.landed_price, rtol=1e-14)
    margin = lev.levy * lev.trade_flow
    by_importer = margin.sum("exporter").rename(importer="region")
    by_exporter = margin.sum("importer").rename(exporter="region")
    np.testing.assert_allclose(lev.levy_revenue, by_importer, rtol=1e-12)
    # an undertaking's margin is the exporters' rent, never a levy (no base tariff on these
    # pairs, so the whole margin stays with them)
    np.testing.assert_allclose(und.undertaking_rent, by_exporter, rtol=1e-12)
    assert float(np.abs(und.levy_revenue).max()) == 0.0
    assert float(np.abs(lev.undertaking_rent).max()) == 0.0
    assert val(lev.levy_revenue.sel(region="EU")) > 0
    assert val(und.undertaking_rent.sel(region="CHN")) > 0
    # the EU (an importer only) loses exactly the margin it no longer collects
    np.testing.assert_allclose(
        lev.welfare_change.sel(region="EU") - und.welfare_change.sel(region="EU"),
        lev.levy_revenue.sel(region="EU"),
        rtol=1e-12,
    )
    np.testing.assert_allclose(lev.welfare_change.sum(), und.welfare_change.sum(), rtol=1e-12)


# -- price-gap subsidies (contracts for difference) -------------------------------------------


def test_price_gap_subsidy_regimes_and_closed_forms(four):
    usa = {"producers": ["USA"]}
    ds = solve1(
        [
            scen("one_slack", PriceGapSubsidy(**usa, strike=80.0)),
            scen("one_bind", PriceGapSubsidy(**usa, strike=130.0)),
            scen("two_up", PriceGapSubsidy(**usa, strike=130.0, kind="two_sided")),
            scen("two_down", PriceGapSubsidy(**usa, strike=80.0, kind="two_sided")),
            scen(
                "collar",
                PriceGapSubsidy(
                    **usa, strike=60.0, kind="collar", upside_threshold=90.0, upside_share=0.5
                ),
            ),
            scen("infra", PriceGapSubsidy(**usa, strike=130.0, covered_volume=3.0)),
            scen("kink", PriceGapSubsidy(**usa, strike=130.0, covered_volume=8.5)),
            scen(
                "shared",
                PriceGapSubsidy(**usa, strike=130.0, payers={"USA": 0.25, "EU": 0.75}),
            ),
        ],
        four,
        tol=1e-13,
    )
    assert (ds.converged == 1).all()
    assert_accounts(ds)
    assert_like_baseline(ds, "one_slack")  # market price above the strike: nothing paid
    base = ds.sel(scenario="baseline")

    def usa_of(name, var):
        return val(ds[var].sel(scenario=name, region="USA"))

    for name, strike in (("one_bind", 130.0), ("two_up", 130.0), ("two_down", 80.0)):
        # the covered producer's effective price is the strike; supply is on the strike
        assert usa_of(name, "effective_producer_price") == pytest.approx(strike, rel=1e-14)
        S = USA_OUTPUT * (strike / 100.0) ** USA_EPS
        assert usa_of(name, "production") == pytest.approx(S, rel=1e-12)
        p = usa_of(name, "producer_price")
        cost = (strike - p) * S
        assert usa_of(name, "producer_support") == pytest.approx(strike - p, rel=1e-12)
        assert usa_of(name, "subsidy_cost") == pytest.approx(-cost, rel=1e-12)
    assert usa_of("two_down", "subsidy_cost") > 0  # producers pay back above the strike

    p = usa_of("collar", "producer_price")
    eff = p - 0.5 * (p - 90.0)
    assert usa_of("collar", "effective_producer_price") == pytest.approx(eff, rel=1e-13)
    assert usa_of("collar", "production") == pytest.approx(
        USA_OUTPUT * (eff / 100.0) ** USA_EPS, rel=1e-12
    )

    # covered volume below output: inframarginal, the market price is the marginal incentive
    infra = ds.sel(scenario="infra")
    assert_same_equilibrium(infra, base, rtol=1e-12)
    p = usa_of("infra", "producer_price")
    assert usa_of("infra", "subsidy_cost") == pytest.approx(-(130.0 - p) * 3.0, rel=1e-12)
    assert usa_of("infra", "producer_surplus_change") == pytest.approx((130.0 - p) * 3.0, rel=1e-9)
    # covered volume between output at the market price and at the strike: output = volume
    assert usa_of("kink", "production") == pytest.approx(8.5, rel=1e-12)

    shared = ds.sel(scenario="shared")
    payment = -usa_of("one_bind", "subsidy_cost")
    np.testing.assert_allclose(shared.subsidy_cost.sel(region="USA"), -0.25 * payment, rtol=1e-12)
    np.testing.assert_allclose(shared.subsidy_cost.sel(region="EU"), -0.75 * payment, rtol=1e-12)
    assert float(np.abs(shared.subsidy_cost.sel(region=["AUS", "CHN", "ROW"])).max()) == 0.0
    assert_same_equilibrium(shared, ds.sel(scenario="one_bind"), rtol=1e-14)


# -- offtakes ---------------------------------------------------------------------------------


def test_offtake_resell_is_a_pure_transfer(four):
    off = Offtake(
        buyers={"USA": 0.5, "EU": 0.5},
        sellers=["AUS"],
        volume=10.0,
        price=130.0,
        disposition="resell",
    )
    ds = solve1([scen("resell", off)], four)
    assert_accounts(ds)
    cur, base = ds.sel(scenario="resell"), ds.sel(scenario="baseline")
    assert_same_equilibrium(cur, base, rtol=1e-14)
    gap = (130.0 - 104.0) * 10.0
    assert val(cur.producer_surplus_change.sel(region="AUS")) == pytest.approx(gap, rel=1e-12)
    np.testing.assert_allclose(cur.offtake_cost.sel(region=["USA", "EU"]), -gap / 2, rtol=1e-12)
    assert val(cur.offtake_cost.sum()) == pytest.approx(-gap, rel=1e-12)
    assert abs(val(cur.welfare_change.sum())) < 1e-9 * gap
    assert float(np.abs(cur.public_purchases).max()) == 0.0


def test_offtake_stockpile_cost_is_the_sellers_gain_from_the_price_gap(four):
    """Buyers' cost is minus the sellers' extra surplus: the same offtake at the market price
    gives the same quantities, and the surplus difference is the price gap times the volume."""
    kw = {"buyers": {"USA": 0.4, "EU": 0.6}, "sellers": ["AUS"], "volume": 10.0}
    first = solve1([scen("st", Offtake(**kw, price=130.0))], four, tol=1e-13)
    p_aus = val(first.producer_price.sel(scenario="st", region="AUS"))
    ds = solve1(
        [scen("st", Offtake(**kw, price=130.0)), scen("at_market", Offtake(**kw, price=p_aus))],
        four,
        tol=1e-13,
    )
    assert_accounts(ds)
    st, at = ds.sel(scenario="st"), ds.sel(scenario="at_market")
    assert_same_equilibrium(st, at, rtol=1e-12)
    gap = (130.0 - p_aus) * 10.0
    extra_ps = st.producer_surplus_change - at.producer_surplus_change
    assert val(extra_ps.sel(region="AUS")) == pytest.approx(gap, rel=1e-10)
    assert float(np.abs(extra_ps.sel(region=["CHN", "EU", "ROW", "USA"])).max()) < 1e-9
    assert val(st.offtake_cost.sum()) == pytest.approx(-gap, rel=1e-10)
    np.testing.assert_allclose(st.offtake_cost.sel(region="EU"), -0.6 * gap, rtol=1e-10)
    np.testing.assert_allclose(at.offtake_cost.values, 0.0, atol=1e-9)
    # the stockpiled volume leaves the market: more output than trade, buyers hold it
    aus_trade = val(st.trade_flow.sel(exporter="AUS").sum())
    assert val(st.production.sel(region="AUS")) == pytest.approx(aus_trade + 10.0, rel=1e-10)
    np.testing.assert_allclose(st.public_purchases.sel(region=["USA", "EU"]), [4.0, 6.0])
    assert p_aus > 104.0  # extra demand for the seller's variety


def test_offtake_splits_volume_across_sellers_by_base_output(four):
    off = Offtake(buyers={"USA": 1.0}, sellers=["AUS", "ROW"], volume=17.8, price=130.0)
    ds = solve1([scen("two", off)], four)
    assert_accounts(ds)
    cur = ds.sel(scenario="two")
    vol = {"AUS": 17.8 * 61 / 89, "ROW": 17.8 * 28 / 89}
    for r, v in vol.items():
        trade = val(cur.trade_flow.sel(exporter=r).sum())
        assert val(cur.production.sel(region=r)) == pytest.approx(trade + v, rel=1e-10)
    gap = sum((130.0 - val(cur.producer_price.sel(region=r))) * v for r, v in vol.items())
    assert val(cur.offtake_cost.sel(region="USA")) == pytest.approx(-gap, rel=1e-12)


# -- import quotas and bans -------------------------------------------------------------------


def test_import_quota_regimes(four):
    cov = {"importers": ["USA"], "exporters": ["CHN"]}
    ds = solve1(
        [
            scen("slack", ImportQuota(**cov, quantity=100.0)),
            scen("bind", ImportQuota(**cov, quantity=20.0)),
            scen("ban", ImportQuota(**cov, quantity=0.0)),
        ],
        four,
    )
    assert (ds.converged == 1).all()
    assert_accounts(ds)
    assert_like_baseline(ds, "slack")
    b = ds.sel(scenario="bind")
    assert pair(b.trade_flow, "CHN", "USA") == pytest.approx(20.0, rel=1e-10)
    rho = pair(b.quota_rent, "CHN", "USA")
    assert rho > 0
    assert pair(b.landed_price, "CHN", "USA") == pytest.approx(
        1.25 * val(b.producer_price.sel(region="CHN")) + rho, rel=1e-13
    )
    assert val(b.quota_rent_income.sel(region="USA")) == pytest.approx(rho * 20.0, rel=1e-10)
    assert float(b.quota_rent.drop_sel(exporter="CHN").max()) == 0.0

    ban = ds.sel(scenario="ban")  # quantity 0 removes the variety
    assert pair(ban.trade_flow, "CHN", "USA") == 0.0
    assert np.isnan(pair(ban.landed_price, "CHN", "USA"))
    assert pair(ban.trade_flow, "CHN", "EU") > 0
    assert val(ban.quota_rent_income.sum()) == 0.0
    assert val(ban.supplier_share.sel(exporter="CHN", importer="USA")) == 0.0


def test_quota_rent_equals_the_tariff_giving_the_same_imports(four):
    """A tariff t on CHN → USA gives imports X_t; a quota of X_t has rent (t − t0)·fob."""
    t = 0.6
    first = solve1(
        [scen("tariff", Tariff(importers=["USA"], exporters=["CHN"], rate=t))], four, tol=1e-13
    ).sel(scenario="tariff")
    X_t = pair(first.trade_flow, "CHN", "USA")
    fob = val(first.producer_price.sel(region="CHN"))
    ds = solve1(
        [scen("quota", ImportQuota(importers=["USA"], exporters=["CHN"], quantity=X_t))],
        four,
        tol=1e-13,
    )
    assert_accounts(ds)
    quota = ds.sel(scenario="quota")
    assert pair(quota.quota_rent, "CHN", "USA") == pytest.approx((t - 0.25) * fob, rel=1e-8)
    assert_same_equilibrium(quota, first, rtol=1e-8)
    # the rent is the tariff revenue above the base rate, so national welfare is the same
    np.testing.assert_allclose(
        (quota.quota_rent_income + quota.tariff_revenue_change).values,
        first.tariff_revenue_change.values,
        rtol=1e-7,
    )
    np.testing.assert_allclose(quota.welfare_change, first.welfare_change, rtol=1e-7, atol=1e-6)


def test_quota_on_several_origins_equals_pair_tariffs(four):
    """One rent ρ on every covered origin = tariffs t0 + ρ/fob_o on each (ad valorem on FOB)."""
    quota = ImportQuota(importers=["USA"], quantity=25.0)
    first = solve1([scen("q", quota)], four, tol=1e-13).sel(scenario="q")
    rho = pair(first.quota_rent, "CHN", "USA")
    tariffs = [
        Tariff(
            importers=["USA"],
            exporters=[o],
            rate=(0.25 if o == "CHN" else 0.0) + rho / val(first.producer_price.sel(region=o)),
        )
        for o in ("AUS", "CHN", "ROW")
    ]
    ds = solve1([scen("q", quota), scen("t", *tariffs)], four, tol=1e-13)
    assert_accounts(ds)
    q, t = ds.sel(scenario="q"), ds.sel(scenario="t")
    for o in ("AUS", "ROW"):
        assert pair(q.quota_rent, o, "USA") == pytest.approx(rho, rel=1e-14)
    imports = val(t.trade_flow.sel(importer="USA").drop_sel(exporter="USA").sum())
    assert imports == pytest.approx(25.0, rel=1e-8)
    assert_same_equilibrium(q, t, rtol=1e-8)
    np.testing.assert_allclose(q.welfare_change, t.welfare_change, rtol=1e-7, atol=1e-6)


def test_quota_rent_owner_moves_income_not_quantities(four):
    cov = {"importers": ["USA"], "quantity": 25.0}
    ds = solve1(
        [
            scen("gov", ImportQuota(**cov)),
            scen("importers", ImportQuota(**cov, rent_to="importers")),
            scen("exporters", ImportQuota(**cov, rent_to="exporters")),
            scen("x_gov", ExportQuota(exporter="CHN", quantity=60.0)),
            scen("x_importers", ExportQuota(exporter="CHN", quantity=60.0, rent_to="importers")),
            scen(
                "trq_gov",
                TariffRateQuota(importers=["EU"], quantity=20.0, in_rate=0.0, out_rate=0.5),
            ),
            scen(
                "trq_exporters",
                TariffRateQuota(
                    importers=["EU"], quantity=20.0, in_rate=0.0, out_rate=0.5, rent_to="exporters"
                ),
            ),
        ],
        four,
    )
    assert (ds.converged == 1).all()
    assert_accounts(ds)
    for a, others in (
        ("gov", ["importers", "exporters"]),
        ("x_gov", ["x_importers"]),
        ("trq_gov", ["trq_exporters"]),
    ):
        ref = ds.sel(scenario=a)
        for o in others:
            cur = ds.sel(scenario=o)
            assert_same_equilibrium(cur, ref, rtol=1e-14)
            np.testing.assert_allclose(cur.quota_rent, ref.quota_rent, rtol=1e-14)
            np.testing.assert_allclose(
                cur.quota_rent_income.sum(), ref.quota_rent_income.sum(), rtol=1e-12
            )
            np.testing.assert_allclose(
                cur.welfare_change.sum(), ref.welfare_change.sum(), rtol=1e-12
            )
    rent = ds.quota_rent * ds.trade_flow
    to_importer = rent.sum("exporter").rename(importer="region")
    to_exporter = rent.sum("importer").rename(exporter="region")
    for name, owner in (
        ("gov", to_importer),
        ("importers", to_importer),
        ("exporters", to_exporter),
        ("x_gov", to_exporter),
        ("x_importers", to_importer),
        ("trq_gov", to_importer),
        ("trq_exporters", to_exporter),
    ):
        np.testing.assert_allclose(
            ds.quota_rent_income.sel(scenario=name), owner.sel(scenario=name), rtol=1e-12
        )
    assert val(ds.quota_rent_income.sel(scenario="exporters", region="USA")) == 0.0
    assert val(ds.quota_rent_income.sel(scenario="gov", region="CHN")) == 0.0
    assert val(ds.quota_rent_income.sel(scenario="x_importers", region="CHN")) == 0.0
    assert val(ds.quota_rent_income.sel(scenario="x_importers", region="EU")) > 0


@pytest.mark.parametrize("sigma", [1.0, 0.6])
@pytest.mark.parametrize("kind", ["import_quota", "export_quota"])
def test_ban_where_varieties_are_essential_is_reported_infeasible(sigma, kind):
    m = market(FOUR, sigma={"default": 4.0, "EU": sigma}, market_id="measures")
    if kind == "import_quota":
        ban = ImportQuota(importers=["EU"], exporters=["CHN"], quantity=0.0)
    else:
        ban = ExportQuota(exporter="CHN", destinations=["EU"], quantity=0.0)
    ds = solve1([scen("ban", ban), scen("ok", Tariff(importers=["EU"], rate=0.1))], m)
    assert_accounts(ds)
    cur = ds.sel(scenario="ban")
    assert int(cur.converged) == 0
    msg = str(cur.solver_message.values)
    assert msg.startswith("infeasible") and "CHN" in msg and "EU" in msg
    # blanked, flagged and explained; never returned as if solved
    assert np.all(np.isnan(cur.trade_flow.values)) and np.all(np.isnan(cur.welfare_change.values))
    assert ("ban", "measures", msg) in ds.expand_dims("commodity").tp.failed()
    assert int(ds.converged.sel(scenario="ok")) == 1


def test_ban_on_every_supplier_is_reported_infeasible(four):
    """EU produces nothing: banning all its imports leaves no variety at any price (σ > 1
    too). Regression: this was once 'solved' with P = P0 and no consumer-surplus change."""
    ds = solve1(
        [
            scen("ban_all", ImportQuota(importers=["EU"], quantity=0.0)),
            scen(
                "ban_all_but_usa",
                ImportQuota(importers=["EU"], exporters=["CHN", "ROW"], quantity=0.0),
            ),
        ],
        four,
    )
    assert_accounts(ds)
    cur = ds.sel(scenario="ban_all")
    assert int(cur.converged) == 0
    msg = str(cur.solver_message.values)
    assert msg.startswith("infeasible") and "EU" in msg
    assert np.all(np.isnan(cur.welfare_change.values))
    # one supplier left is enough when varieties are substitutes (σ = 4 > 1)
    left = ds.sel(scenario="ban_all_but_usa")
    assert int(left.converged) == 1
    assert val(left.supplier_share.sel(exporter="USA", importer="EU")) == pytest.approx(1.0)
    assert val(left.consumer_surplus_change.sel(region="EU")) < 0


def test_quota_below_what_an_essential_variety_needs_is_flagged():
    """σ < 1 and η = 0: however high the rent, imports stay above w^(1/(1−σ))·D (w the base
    value share: 0.25·100 = 25 here), so a quota of 5 has no equilibrium; it must be flagged
    (converged 0, a message, results blanked), never returned as if solved."""
    m = market(
        {"A": {"A": 50.0, "B": 50.0}, "B": {"B": 50.0}},
        sigma={"default": 0.5},
        demand={"default": 0.0},
    )
    ds = solve1(
        [
            scen("low", ImportQuota(importers=["B"], quantity=5.0)),
            scen("reachable", ImportQuota(importers=["B"], quantity=40.0)),
        ],
        m,
    )
    low = ds.sel(scenario="low")
    assert int(low.converged) == 0 and str(low.solver_message.values)
    assert np.all(np.isnan(low.trade_flow.values))
    ok = ds.sel(scenario="reachable")
    assert int(ok.converged) == 1
    assert pair(ok.trade_flow, "A", "B") == pytest.approx(40.0, rel=1e-10)


# -- tariff-rate quotas -----------------------------------------------------------------------


def test_tariff_rate_quota_three_regimes(four):
    cov = {"importers": ["EU"], "exporters": ["CHN"]}
    lo_t, hi_t = 0.05, 0.4
    tar = solve1(
        [
            scen("in", Tariff(**cov, rate=lo_t)),
            scen("out", Tariff(**cov, rate=hi_t)),
        ],
        four,
        tol=1e-13,
    )
    X_in = pair(tar.trade_flow.sel(scenario="in"), "CHN", "EU")
    X_out = pair(tar.trade_flow.sel(scenario="out"), "CHN", "EU")
    assert X_out < X_in
    quantities = {"unfilled": 1.2 * X_in, "at": 0.5 * (X_in + X_out), "over": 0.5 * X_out}

    def trq(q, **kw):
        return TariffRateQuota(**cov, quantity=q, in_rate=lo_t, out_rate=hi_t, **kw)

    ds = solve1(
        [
            *(scen(k, trq(q)) for k, q in quantities.items()),
            scen("flat", TariffRateQuota(**cov, quantity=10.0, in_rate=0.2, out_rate=0.2)),
            scen("flat_tariff", Tariff(**cov, rate=0.2)),
        ],
        four,
        tol=1e-13,
    )
    assert (ds.converged == 1).all()
    assert_accounts(ds)

    un = ds.sel(scenario="unfilled")  # quota not filled: no rent, the in-quota tariff
    assert_same_equilibrium(un, tar.sel(scenario="in"), rtol=1e-8)
    assert pair(un.quota_rent, "CHN", "EU") == 0.0
    assert float(np.abs(un.quota_rent_income).max()) == 0.0

    over = ds.sel(scenario="over")  # overfilled: out-of-quota tariff marginal, full rent
    assert_same_equilibrium(over, tar.sel(scenario="out"), rtol=1e-8)
    fob = val(over.producer_price.sel(region="CHN"))
    rent = (hi_t - lo_t) * fob * quantities["over"]
    assert val(over.quota_rent_income.sel(region="EU")) == pytest.approx(rent, rel=1e-9)
    np.testing.assert_allclose(
        over.welfare_change, tar.welfare_change.sel(scenario="out"), rtol=1e-7, atol=1e-6
    )

    at = ds.sel(scenario="at")  # at the quota: rent between the bounds
    assert pair(at.trade_flow, "CHN", "EU") == pytest.approx(quantities["at"], rel=1e-10)
    fob = val(at.producer_price.sel(region="CHN"))
    r = pair(at.quota_rent, "CHN", "EU") / fob
    assert 0.0 < r < hi_t - lo_t
    equivalent = solve1([scen("eq", Tariff(**cov, rate=lo_t + r))], four, tol=1e-13)
    assert_same_equilibrium(at, equivalent.sel(scenario="eq"), rtol=1e-8)

    for name in quantities:  # rent per unit in [0, (out − in)·price]
        cur = ds.sel(scenario=name)
        per_unit = pair(cur.quota_rent, "CHN", "EU")
        price = val(cur.producer_price.sel(region="CHN"))
        assert 0.0 <= per_unit <= (hi_t - lo_t) * price * (1 + 1e-12)

    assert_same_equilibrium(ds.sel(scenario="flat"), ds.sel(scenario="flat_tariff"), rtol=1e-12)
    assert float(np.abs(ds.quota_rent_income.sel(scenario="flat")).max()) == 0.0


# -- export quotas and bans -------------------------------------------------------------------


def test_export_quota_regimes_and_export_tax_equivalence(four):
    ds = solve1(
        [
            scen("slack", ExportQuota(exporter="CHN", quantity=150.0)),
            scen("bind", ExportQuota(exporter="CHN", quantity=60.0)),
            scen("ban", ExportQuota(exporter="CHN", destinations=["EU"], quantity=0.0)),
        ],
        four,
        tol=1e-13,
    )
    assert (ds.converged == 1).all()
    assert_accounts(ds)
    assert_like_baseline(ds, "slack")
    b = ds.sel(scenario="bind")
    exports = b.trade_flow.sel(exporter="CHN").drop_sel(importer="CHN").sum()
    assert val(exports) == pytest.approx(60.0, rel=1e-10)
    rho = pair(b.quota_rent, "CHN", "USA")
    assert rho > 0 and pair(b.quota_rent, "CHN", "EU") == rho
    p = val(b.producer_price.sel(region="CHN"))
    # licence rent on FOB: the importer's tariff applies to it
    assert pair(b.landed_price, "CHN", "USA") == pytest.approx((p + rho) * 1.25, rel=1e-13)
    assert val(b.quota_rent_income.sel(region="CHN")) == pytest.approx(60.0 * rho, rel=1e-9)

    # the export tax with the same FOB price gives the same quantities; rent = tax revenue
    tax = solve1([scen("tax", ExportTax(exporter="CHN", rate=rho / p))], four, tol=1e-13)
    tax = tax.sel(scenario="tax")
    assert_same_equilibrium(b, tax, rtol=1e-8)
    assert val(b.quota_rent_income.sel(region="CHN")) == pytest.approx(
        val(tax.export_tax_revenue_change.sel(region="CHN")), rel=1e-7
    )
    np.testing.assert_allclose(b.welfare_change, tax.welfare_change, rtol=1e-7, atol=1e-6)

    ban = ds.sel(scenario="ban")
    assert pair(ban.trade_flow, "CHN", "EU") == 0.0
    assert np.isnan(pair(ban.landed_price, "CHN", "EU"))
    assert pair(ban.trade_flow, "CHN", "USA") > pair(
        ds.trade_flow.sel(scenario="baseline"), "CHN", "USA"
    )
    # the export ban and the import ban of the same pair are the same thing
    imp = solve1(
        [scen("ban", ImportQuota(importers=["EU"], exporters=["CHN"], quantity=0.0))], four
    )
    assert_same_equilibrium(ban, imp.sel(scenario="ban"), rtol=1e-12)


# -- stockpiles ---------------------------------------------------------------------------------


def test_stockpile_release_and_purchase_costs(four):
    use = 48.0  # USA base consumption
    ds = solve1(
        [
            scen("release", StockpileRelease(region="USA", quantity=10.0)),
            scen("purchase", StockpilePurchase(region="USA", quantity=10.0)),
            scen("big_release", StockpileRelease(region="USA", quantity=0.9 * use)),
        ],
        four,
    )
    assert (ds.converged == 1).all()
    assert_accounts(ds)
    base_P = val(ds.consumer_price.sel(scenario="baseline", region="USA"))
    for name, sign in (("release", 1.0), ("purchase", -1.0), ("big_release", 1.0)):
        cur = ds.sel(scenario=name)
        q = 10.0 if name != "big_release" else 0.9 * use
        P = val(cur.consumer_price.sel(region="USA"))
        assert val(cur.stockpile_cost.sel(region="USA")) == pytest.approx(sign * P * q, rel=1e-13)
        assert float(np.abs(cur.stockpile_cost.drop_sel(region="USA")).max()) == 0.0
        assert (P - base_P) * sign < 0  # a release lowers the price, a purchase raises it
        # public purchases report the quantity once (regression: it was counted twice)
        assert val(cur.public_purchases.sel(region="USA")) == -sign * q
        assert float(np.abs(cur.public_purchases.drop_sel(region="USA")).max()) == 0.0
        # users consume market purchases plus releases (minus stock purchases)
        bought = val(cur.trade_flow.sel(importer="USA").sum())
        assert val(cur.consumption.sel(region="USA")) == pytest.approx(bought + sign * q)
        assert (val(cur.consumption.sel(region="USA")) - use) * sign > 0


# -- diversification caps -----------------------------------------------------------------------


def test_diversification_cap_regimes(four):
    ds = solve1(
        [
            scen("slack", DiversificationCap(importers=["USA"], max_share=0.7)),
            scen("bind", DiversificationCap(importers=["USA"], max_share=0.5)),
            scen(
                "imports",
                DiversificationCap(importers=["EU", "USA"], max_share=0.6, basis="imports"),
            ),
            scen(
                "named",
                DiversificationCap(importers=["USA"], max_share=0.1, exporters=["ROW", "AUS"]),
            ),
        ],
        four,
        tol=1e-13,
    )
    assert (ds.converged == 1).all()
    assert_accounts(ds)
    assert_like_baseline(ds, "slack")

    def check(name, importer, basis, cap, capped):
        cur = ds.sel(scenario=name)
        X = cur.trade_flow.sel(importer=importer)
        if basis == "imports":
            X = X.drop_sel(exporter=importer)
        share = X / X.sum()
        mu = cur.diversification_shadow_price.sel(importer=importer)
        for o in share.exporter.values:
            s, m = float(share.sel(exporter=o)), float(mu.sel(exporter=o))
            if s == 0.0:  # no trade on the pair: no shadow price is reported
                assert np.isnan(m)
                continue
            if o not in capped:
                assert m == 0.0
                continue
            assert s <= cap * (1 + 1e-10) and m >= 0.0
            assert m * (cap - s) == pytest.approx(0.0, abs=1e-8)  # μ ⟂ slack
        return share, mu

    share, mu = check("bind", "USA", "consumption", 0.5, ["AUS", "CHN", "ROW"])
    assert float(share.sel(exporter="CHN")) == pytest.approx(0.5, rel=1e-10)
    assert float(mu.sel(exporter="CHN")) > 0 and float(mu.sel(exporter="AUS")) == 0.0
    # reported shares are the consumption shares of the results
    assert val(ds.supplier_share.sel(scenario="bind", exporter="CHN", importer="USA")) == (
        pytest.approx(0.5, rel=1e-10)
    )
    assert val(ds.top_supplier_share.sel(scenario="bind", region="USA")) == pytest.approx(0.5)

    for imp in ("EU", "USA"):
        share, mu = check("imports", imp, "imports", 0.6, ["AUS", "CHN", "ROW", "USA"])
        assert float(share.sel(exporter="CHN")) == pytest.approx(0.6, rel=1e-10)
        assert float(mu.sel(exporter="CHN")) > 0

    share, mu = check("named", "USA", "consumption", 0.1, ["ROW", "AUS"])
    assert float(share.sel(exporter="AUS")) == pytest.approx(0.1, rel=1e-10)
    assert float(mu.sel(exporter="ROW")) == 0.0  # ROW is below 10%: slack
    assert float(share.sel(exporter="CHN")) > 0.5  # CHN is not covered


def test_diversification_cap_wedges_are_budget_neutral(free):
    """The tax on the capped origin pays for the subsidy to the others: no fiscal entry, and
    the per-unit wedges sum to zero in each importer at the solution."""
    ds = solve1(
        [
            scen(
                "cap",
                DiversificationCap(importers=["USA"], max_share=0.5),
                DiversificationCap(importers=["EU"], max_share=0.6, basis="imports"),
            )
        ],
        free,
        tol=1e-13,
    )
    assert_accounts(ds)
    cur = ds.sel(scenario="cap")
    assert float(cur.diversification_shadow_price.max()) > 0
    wedge = cur.landed_price - cur.producer_price.rename(region="exporter")
    for imp in ("USA", "EU"):
        spend = val((cur.landed_price * cur.trade_flow).sel(importer=imp).sum())
        net = val((wedge * cur.trade_flow).sel(importer=imp).sum(skipna=True))
        assert abs(net) < 1e-9 * spend
        assert float(np.abs(wedge.sel(importer=imp)).max()) > 1.0  # real wedges, not zero
    for part in PARTS:
        if part not in ("consumer_surplus_change", "producer_surplus_change"):
            assert float(np.abs(cur[part]).max()) == 0.0, part
    np.testing.assert_allclose(
        cur.welfare_change, cur.consumer_surplus_change + cur.producer_surplus_change, rtol=1e-14
    )


def test_diversification_cap_with_a_single_capped_supplier_is_infeasible(four):
    # CHN imports only from AUS; with basis "imports" the share of AUS is always 100%
    ds = solve1(
        [
            scen("cap", DiversificationCap(importers=["CHN"], max_share=0.5, basis="imports")),
            scen("fine", DiversificationCap(importers=["CHN"], max_share=0.5)),
        ],
        four,
    )
    cur = ds.sel(scenario="cap")
    assert int(cur.converged) == 0
    msg = str(cur.solver_message.values)
    assert "infeasible" in msg and "AUS" in msg
    assert np.all(np.isnan(cur.trade_flow.values))
    # with domestic supply in the basis the same cap is feasible (and slack here)
    assert int(ds.converged.sel(scenario="fine")) == 1
    assert_like_baseline(ds, "fine")


def test_diversification_cap_does_not_depend_on_measure_order(four):
    """Regression: with a ban listed after the cap, μ was once reported on the wrong origin."""
    cap = DiversificationCap(importers=["USA"], max_share=0.6, basis="imports")
    ban = ImportQuota(importers=["USA"], exporters=["AUS"], quantity=0.0)
    ds = solve1([scen("ban_cap", ban, cap), scen("cap_ban", cap, ban)], four)
    a, b = ds.sel(scenario="ban_cap"), ds.sel(scenario="cap_ban")
    assert_same_equilibrium(a, b, rtol=1e-12)
    assert pair(a.diversification_shadow_price, "CHN", "USA") > 0  # CHN is at the cap
    np.testing.assert_allclose(
        b.diversification_shadow_price, a.diversification_shadow_price, rtol=1e-10
    )


# -- shocks at their corners ---------------------------------------------------------------------


def test_extreme_shocks_converge(four):
    ds = solve1(
        [
            scen("lost", SupplyShock(region="CHN", fraction=0.95)),
            scen("collapse", DemandShift(region="CHN", fraction=-0.95)),
        ],
        four,
    )
    assert (ds.converged == 1).all()
    assert_accounts(ds)
    lost = ds.sel(scenario="lost")
    assert val(lost.producer_price.sel(region="CHN")) > 5 * 100.0
    np.testing.assert_allclose(lost.production, lost.trade_flow.sum("importer"), rtol=1e-9)


# -- world welfare ------------------------------------------------------------------------------

DISTORTIONS = {
    "tariff": [Tariff(importers=["USA"], exporters=["CHN"], rate=0.3)],
    "export_tax": [ExportTax(exporter="CHN", rate=0.2)],
    "export_subsidy": [ExportTax(exporter="AUS", rate=-0.2)],
    "import_quota": [ImportQuota(importers=["EU"], exporters=["CHN"], quantity=25.0)],
    "import_ban": [ImportQuota(importers=["USA"], exporters=["ROW"], quantity=0.0)],
    "export_quota": [ExportQuota(exporter="CHN", quantity=60.0)],
    "export_ban": [ExportQuota(exporter="AUS", destinations=["CHN"], quantity=0.0)],
    "trq": [TariffRateQuota(importers=["EU"], quantity=30.0, in_rate=0.0, out_rate=0.5)],
    "levy": [PriceFloor(importers=["USA", "EU"], floor=115.0, exempt=["AUS"])],
    "undertaking": [PriceFloor(importers=["EU"], floor=115.0, collector="exporters")],
    "one_sided_subsidy": [PriceGapSubsidy(producers=["USA"], strike=130.0)],
    "two_sided_cfd": [PriceGapSubsidy(producers=["ROW"], strike=80.0, kind="two_sided")],
    "diversification_cap": [DiversificationCap(importers=["USA", "EU"], max_share=0.5)],
    "club": [
        Tariff(importers=["USA", "EU"], exporters=["CHN"], rate=0.2),
        PriceFloor(importers=["USA", "EU"], floor=110.0, exempt=["AUS", "USA", "EU"]),
        PriceGapSubsidy(producers=["USA"], strike=120.0, payers={"USA": 0.5, "EU": 0.5}),
    ],
}


def test_any_distortion_of_free_trade_lowers_world_welfare(free):
    ds = solve1([scen(k, *v) for k, v in DISTORTIONS.items()], free)
    assert (ds.converged == 1).all(), ds.expand_dims("commodity").tp.failed()
    assert_accounts(ds)
    world = ds.welfare_change.sum("region").drop_sel(scenario="baseline")
    losses = {str(s): float(w) for s, w in zip(world.scenario.values, world.values, strict=True)}
    assert all(w < 0 for w in losses.values()), losses


def test_transfers_leave_world_welfare_unchanged(free):
    """Who holds a rent or pays a top-up changes national, not world, welfare."""
    resell = Offtake(buyers={"EU": 1.0}, sellers=["CHN"], volume=50.0, price=120.0)
    ds = solve1(
        [
            scen("resell", resell.model_copy(update={"disposition": "resell"})),
            scen("q_gov", ImportQuota(importers=["EU"], quantity=30.0)),
            scen("q_exp", ImportQuota(importers=["EU"], quantity=30.0, rent_to="exporters")),
            scen("cfd_own", PriceGapSubsidy(producers=["USA"], strike=130.0)),
            scen("cfd_eu", PriceGapSubsidy(producers=["USA"], strike=130.0, payers={"EU": 1.0})),
        ],
        free,
    )
    assert_accounts(ds)
    world = ds.welfare_change.sum("region")
    scale = val((ds.consumer_price * ds.consumption).sel(scenario="baseline").sum())
    assert abs(val(world.sel(scenario="resell"))) < 1e-12 * scale
    assert val(world.sel(scenario="q_gov")) == pytest.approx(val(world.sel(scenario="q_exp")))
    assert val(world.sel(scenario="cfd_own")) == pytest.approx(val(world.sel(scenario="cfd_eu")))
    eu_gov = val(ds.welfare_change.sel(scenario="q_gov", region="EU"))
    eu_exp = val(ds.welfare_change.sel(scenario="q_exp", region="EU"))
    assert eu_gov - eu_exp == pytest.approx(
        val(ds.quota_rent_income.sel(scenario="q_gov", region="EU")), rel=1e-10
    )


# -- the shipped NdPr market: realistic options, every measure at once --------------------------

NDPR_SCENARIOS = [
    scen(
        "club_floor",
        PriceFloor(
            importers=["USA", "EU", "JPN", "KOR"],
            exempt=["USA", "EU", "JPN", "KOR", "MYS"],
            floor=80000.0,
        ),
    ),
    scen(
        "us_cfd_offtake",
        PriceGapSubsidy(producers=["USA"], strike=110000.0, kind="two_sided"),
        Offtake(
            buyers={"USA": 1.0},
            sellers=["USA"],
            volume=1009.0,
            price=110000.0,
            disposition="resell",
        ),
    ),
    scen("chn_export_quota", ExportQuota(exporter="CHN", quantity=3000.0)),
    scen("chn_ban_usa", ExportQuota(exporter="CHN", destinations=["USA"], quantity=0.0)),
    scen("g7_cap", DiversificationCap(importers=["USA", "JPN", "EU", "KOR"], max_share=0.35)),
    scen("us_release", StockpileRelease(region="USA", quantity=200.0)),
    scen("jpn_purchase", StockpilePurchase(region="JPN", quantity=300.0)),
    scen(
        "eu_trq",
        TariffRateQuota(
            importers=["EU"], exporters=["CHN"], quantity=300.0, in_rate=0.0, out_rate=0.25
        ),
    ),
    scen("us_quota", ImportQuota(importers=["USA"], exporters=["CHN"], quantity=400.0)),
    scen("shock", SupplyShock(region="CHN", fraction=0.2), DemandShift(region="EU", fraction=0.3)),
]


def test_ndpr_market_measures(ndpr):
    ds = solve1(NDPR_SCENARIOS, ndpr)
    assert (ds.converged == 1).all(), ds.expand_dims("commodity").tp.failed()
    assert_accounts(ds)

    club = ds.sel(scenario="club_floor")
    for imp in ("USA", "EU", "JPN", "KOR"):
        assert pair(club.landed_price, "CHN", imp) == pytest.approx(80000.0, rel=1e-14)
        assert pair(club.levy, "MYS", imp) == 0.0  # club member

    cfd = ds.sel(scenario="us_cfd_offtake", region="USA")
    assert val(cfd.effective_producer_price) == pytest.approx(110000.0, rel=1e-14)
    assert val(cfd.production) == pytest.approx(1009.0 * (110000.0 / 55000.0) ** 0.5, rel=1e-9)
    gap = (110000.0 - val(cfd.producer_price)) * 1009.0
    assert val(cfd.offtake_cost) == pytest.approx(-gap, rel=1e-12)

    xq = ds.sel(scenario="chn_export_quota")
    exports = xq.trade_flow.sel(exporter="CHN").drop_sel(importer="CHN").sum()
    assert val(exports) == pytest.approx(3000.0, rel=1e-9)
    assert val(xq.quota_rent_income.sel(region="CHN")) > 0

    ban = ds.sel(scenario="chn_ban_usa")
    assert pair(ban.trade_flow, "CHN", "USA") == 0.0

    cap = ds.sel(scenario="g7_cap")
    for imp in ("USA", "JPN", "EU", "KOR"):
        top = val(cap.top_supplier_share.sel(region=imp))
        assert top <= 0.35 * (1 + 1e-10)
    for exp in ("CHN", "MYS"):  # both at the cap in Japan
        share = val(cap.supplier_share.sel(exporter=exp, importer="JPN"))
        assert share == pytest.approx(0.35, rel=1e-9)
        assert pair(cap.diversification_shadow_price, exp, "JPN") > 0

    rel = ds.sel(scenario="us_release", region="USA")
    assert val(rel.stockpile_cost) == pytest.approx(200.0 * val(rel.consumer_price), rel=1e-13)
    pur = ds.sel(scenario="jpn_purchase", region="JPN")
    assert val(pur.stockpile_cost) == pytest.approx(-300.0 * val(pur.consumer_price), rel=1e-13)

    trq = ds.sel(scenario="eu_trq")
    per_unit = pair(trq.quota_rent, "CHN", "EU")
    assert 0.0 <= per_unit <= 0.25 * val(trq.producer_price.sel(region="CHN")) * (1 + 1e-12)

    q = ds.sel(scenario="us_quota")
    assert pair(q.trade_flow, "CHN", "USA") == pytest.approx(400.0, rel=1e-9)


# -- accounting details ------------------------------------------------------------------------


def test_undertaking_under_a_tariff_splits_the_margin(four):
    """Exporters raise FOB by L/(1+t); the importer's tariff collects t·L/(1+t) of the margin."""
    kw = {"importers": ["USA"], "exporters": ["CHN"], "floor": 160.0}
    ds = solve1(
        [scen("levy", PriceFloor(**kw)), scen("und", PriceFloor(**kw, collector="exporters"))],
        four,
    )
    assert_accounts(ds)
    lev, und = ds.sel(scenario="levy"), ds.sel(scenario="und")
    assert_same_equilibrium(lev, und, rtol=1e-14)
    L, X = pair(lev.levy, "CHN", "USA"), pair(lev.trade_flow, "CHN", "USA")
    assert L > 0
    margin = L * X / 1.25
    assert val(und.undertaking_rent.sel(region="CHN")) == pytest.approx(margin, rel=1e-12)
    assert float(np.abs(und.levy_revenue).max()) == 0.0
    extra_tariff = und.tariff_revenue_change.sel(region="USA") - lev.tariff_revenue_change.sel(
        region="USA"
    )
    assert val(extra_tariff) == pytest.approx(0.25 * margin, rel=1e-12)
    np.testing.assert_allclose(lev.welfare_change.sum(), und.welfare_change.sum(), rtol=1e-12)


def test_stockpiled_offtake_books_the_material_like_a_stockpile_purchase(four):
    """Buyers' whole outlay is price·volume: the premium (offtake_cost) plus the material at
    market prices (stockpile_cost); resold offtakes carry the premium only."""
    kw = {"buyers": {"USA": 0.4, "EU": 0.6}, "sellers": ["AUS"], "volume": 10.0, "price": 130.0}
    ds = solve1(
        [
            scen("stock", Offtake(**kw)),
            scen("resell", Offtake(**kw, disposition="resell")),
        ],
        four,
    )
    assert_accounts(ds)
    st = ds.sel(scenario="stock")
    p_aus = val(st.producer_price.sel(region="AUS"))
    outlay = -(st.offtake_cost + st.stockpile_cost)
    np.testing.assert_allclose(outlay.sel(region=["USA", "EU"]), [0.4 * 1300.0, 0.6 * 1300.0])
    assert val(st.stockpile_cost.sum()) == pytest.approx(-p_aus * 10.0, rel=1e-12)
    rs = ds.sel(scenario="resell")
    assert float(np.abs(rs.stockpile_cost).max()) == 0.0
    p_rs = val(rs.producer_price.sel(region="AUS"))
    assert val(rs.offtake_cost.sum()) == pytest.approx(-(130.0 - p_rs) * 10.0, rel=1e-12)


@pytest.mark.parametrize("volume", [3.0, 5.5, 6.5, 8.0, 12.0])
@pytest.mark.parametrize("price", [90.0, 100.0, 120.0])
def test_claw_back_on_a_covered_volume_is_settled_on_the_contract_volume(volume, price):
    """Above the strike a two-sided contract with a covered volume repays (p − K)·V whatever
    the output (a financial settlement): output is the profit maximum at the market price p
    (checked by brute force on a grid) and the payment is f·V."""
    from tradepolicy.api import build_instruments
    from tradepolicy.model.levels import evaluate

    m = market({"A": {"B": 7.0}}, supply={"default": 1.5})
    sub = PriceGapSubsidy(producers=["A"], strike=80.0, kind="two_sided", covered_volume=volume)
    cal = m.calibration
    inst, _ = build_instruments(m, cal, [[sub]])
    u = np.zeros((1, cal.N + inst.K))
    a = m.index("A")[0]
    u[0, a] = np.log(price / 100.0)
    st = evaluate(cal, inst, u, jacobian=False)
    S0, eps, p0 = 7.0, 1.5, 100.0

    def profit(s):
        cost = p0 * S0 / (1 + 1 / eps) * (s / S0) ** (1 + 1 / eps)  # ∫ MC, MC = p0 (s/S0)^(1/ε)
        return price * s + (80.0 - price) * volume - cost

    grid = np.linspace(0.01, 15.0, 300_001)
    assert profit(st.S[0, a]) >= profit(grid).max() - 1e-6
    assert st.S[0, a] == pytest.approx(S0 * (price / p0) ** eps, rel=1e-12)
    assert st.support[0, a] * st.covered[0, a] == pytest.approx((80.0 - price) * volume)


def test_batches_with_different_pair_counts_solve_like_single_scenarios(four):
    """Scenarios are grouped by the complementarity pairs they use and each chunk is trimmed
    to them; results must not depend on that (nor on chunk boundaries)."""
    from tradepolicy.api import build_instruments
    from tradepolicy.solver.newton import solve_batch

    lists = [
        [],
        [DiversificationCap(importers=["USA", "EU"], max_share=0.5)],
        [ImportQuota(importers=["USA"], exporters=["CHN"], quantity=20.0)],
        [
            ImportQuota(importers=["EU"], quantity=30.0),
            TariffRateQuota(
                importers=["USA"], exporters=["CHN"], quantity=25.0, in_rate=0.0, out_rate=0.4
            ),
            DiversificationCap(importers=["USA"], max_share=0.6, basis="imports"),
        ],
        [PriceFloor(importers=["USA"], floor=130.0)],
    ]
    cal = four.calibration
    inst, _ = build_instruments(four, cal, lists)
    registered = [sum(1 for label in labels if label) for labels in inst.pair_labels]
    assert list(inst.pairs_used) == registered
    assert registered[0] == registered[4] == 0 and len(set(registered)) >= 3
    together = solve_batch(cal, inst, chunk=2)
    for b, ms in enumerate(lists):
        one, _ = build_instruments(four, cal, [ms])
        alone = solve_batch(cal, one)
        assert together.converged[b] and alone.converged[0]
        np.testing.assert_allclose(together.state.p[b], alone.state.p[0], rtol=1e-12)
        np.testing.assert_allclose(together.state.X[b], alone.state.X[0], rtol=1e-10, atol=1e-12)
        k = one.K
        np.testing.assert_allclose(together.state.lam[b, :k], alone.state.lam[0], atol=1e-9)
        assert np.all(together.state.lam[b, k:] == 0.0)
