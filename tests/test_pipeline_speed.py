"""The fast pipeline around the solver gives the numbers of the plain one.

- the vectorised :meth:`InstrumentBuilder.build` lays out the same arrays as a loop over pairs
  (the former implementation, kept here as the reference) on random every-measure scenarios;
- Monte Carlo draws that tile the central instruments and start from the central solution
  equal draws built and solved from scratch, to what the solver's tolerance allows;
- ``solve(variables=...)`` stores exactly the full Dataset's numbers for what it is asked;
- the batched :func:`check_solution` finds the problems a scenario-by-scenario check finds;
- the compiled solve's OpenMP threads are set to sleep when idle (``OMP_WAIT_POLICY``) before
  the OpenMP runtime loads, and a policy the user set is kept.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
import pytest

import tradepolicy as tp
from tradepolicy import api
from tradepolicy.model.instruments import ADD, ADV, FOB, InstrumentBuilder, PairSpec
from tradepolicy.scenario import Scenario
from tradepolicy.testing import ScenarioDrawer, random_market

LEAN = (
    "producer_price",
    "consumer_price",
    "bloc_dependency",
    "meets_target",
    "welfare_change",
    "subsidy_cost",
    "offtake_cost",
    "stockpile_cost",
)


# -- the builder -----------------------------------------------------------------------------
def _entries_one(p: PairSpec, n: int):
    """One pair's entries, pair by pair (the former implementation)."""
    G = np.zeros(n * n) if p.G is None else np.ravel(p.G).astype(float)
    g_left = G != 0
    parts = []
    for kind, C in ((FOB, p.C_fob), (ADV, p.C_adv), (ADD, p.C_add)):
        if C is None:
            continue
        C = np.ravel(C) * p.scale
        at = np.flatnonzero(C)
        parts.append((at, np.full(at.size, kind), C[at], np.where(g_left[at], G[at], 0.0)))
        g_left[at] = False
    at = np.flatnonzero(g_left)
    parts.append((at, np.full(at.size, ADD), np.zeros(at.size), G[at]))
    return tuple(np.concatenate(col) for col in zip(*parts, strict=True))


def reference_build(bld: InstrumentBuilder) -> dict[str, object]:
    """The pair arrays as the former loop over scenarios and pairs laid them out."""
    B, N = bld.B, bld.N
    K = max((len(p) for p in bld.pairs), default=0)
    lo, hi = np.zeros((B, K)), np.full((B, K), np.inf)
    scale, g0, gs = np.ones((B, K)), np.ones((B, K)), np.ones((B, K))
    entries = {}
    labels = []
    for b, plist in enumerate(bld.pairs):
        labels.append([p.label for p in plist] + [""] * (K - len(plist)))
        for k, p in enumerate(plist):
            lo[b, k], hi[b, k], scale[b, k] = p.lo / p.scale, p.hi / p.scale, p.scale
            g0[b, k], gs[b, k] = p.g0, p.g_scale
            entries[b, k] = _entries_one(p, N)
    M = max((e[0].size for e in entries.values()), default=0)
    if K:
        M = max(M, 1)
    cell, slot = np.zeros((B, K, M), dtype=np.int32), np.zeros((B, K, M), dtype=np.int32)
    wedge = np.full((B, K, M), ADD, dtype=np.int8)
    wedge_coef, g_coef = np.zeros((B, K, M)), np.zeros((B, K, M))
    for b in range(B):
        if not bld.pairs[b]:
            continue
        union = np.unique(np.concatenate([entries[b, k][0] for k in range(len(bld.pairs[b]))]))
        for k in range(len(bld.pairs[b])):
            at, kind, c, g = entries[b, k]
            m = at.size
            cell[b, k, :m], slot[b, k, :m] = at, np.searchsorted(union, at)
            wedge[b, k, :m], wedge_coef[b, k, :m], g_coef[b, k, :m] = kind, c, g
    return {
        "lam_lo": lo,
        "lam_hi": hi,
        "lam_scale": scale,
        "g0": g0,
        "g_scale": gs,
        "pair_labels": labels,
        "cell": cell,
        "slot": slot,
        "wedge": wedge,
        "wedge_coef": wedge_coef,
        "g_coef": g_coef,
    }


def assert_same_build(bld: InstrumentBuilder) -> None:
    inst = bld.build()
    for name, want in reference_build(bld).items():
        got = getattr(inst, name)
        if isinstance(want, np.ndarray):
            assert got.dtype == want.dtype and got.shape == want.shape, name
            assert np.array_equal(got, want), name
        else:
            assert got == want, name


@pytest.fixture(scope="module")
def drawer():
    """The every-measure scenario drawer of :mod:`tradepolicy.testing` (12 regions)."""
    rng = np.random.default_rng(2024)
    return ScenarioDrawer(rng, random_market(rng))


def test_vectorised_builder_equals_the_pair_by_pair_layout(drawer) -> None:
    market = drawer.market
    lists = [[]] + [drawer.draw() for _ in range(60)]
    bld = InstrumentBuilder(len(lists), market.base_tariff, market.base_export_tax)
    ctx = tp.measures.ApplyContext(market=market, cal=market.calibration, builder=bld)
    for b, ms in enumerate(lists):
        tp.measures.base.apply_measures(ctx, b, ms)
    assert sum(len(p) for p in bld.pairs) > 100  # quotas, TRQs and diversification caps
    assert_same_build(bld)


def test_builder_puts_a_slack_coefficient_on_its_cells_first_entry() -> None:
    """A cell with an FOB, an ad valorem and an additive wedge and a slack coefficient, next
    to cells with a slack coefficient only, in blocks of different pair counts."""
    n = 3
    bld = InstrumentBuilder(3, np.zeros((n, n)), np.zeros((n, n)))
    one = np.zeros((n, n))
    one[0, 1] = 1.0
    G = np.zeros((n, n))
    G[0, 1], G[2, 0], G[1, 1] = -1.0, 0.5, 2.0
    bld.add_pair(0, PairSpec("all", scale=2.0, C_fob=one, C_adv=3 * one, C_add=one, G=G))
    bld.add_pair(0, PairSpec("slack only", g0=0.0, G=G, hi=4.0))
    bld.add_pair(2, PairSpec("nothing", g0=5.0))
    inst = bld.build()
    assert inst.wedge[0, 0, :3].tolist() == [FOB, ADV, ADD]  # one cell, three wedges
    assert inst.g_coef[0, 0, :3].tolist() == [-1.0, 0.0, 0.0]  # slack on the first of them
    assert inst.wedge_coef[0, 0, :3].tolist() == [2.0, 6.0, 2.0]  # scaled by the pair's scale
    assert inst.lam_hi[0, 1] == 4.0 and inst.K == 2 and inst.pairs_used.tolist() == [2, 0, 1]
    assert_same_build(bld)


# -- draws -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ndpr():
    return tp.load_scenarios("ndpr_oxide")


def _count(monkeypatch, name: str, record: list) -> None:
    f = getattr(api, name)

    def wrapped(*args, **kwargs):
        out = f(*args, **kwargs)
        record.append(out)
        return out

    monkeypatch.setattr(api, name, wrapped)


def test_draws_reuse_the_inputs_and_equal_draws_solved_from_scratch(ndpr, monkeypatch) -> None:
    """Each draw solves the same equations as before from another start, so both solutions
    meet the tolerance (max |F| <= 1e-11, relative to output) at the same root: prices and
    quantities agree to ~‖J⁻¹‖·1e-11 (1e-9 relative allows for the conditioning), welfare
    changes (differences of large totals) to 1e-9 of the market's base expenditure."""
    draws, seed = 12, 5
    builds: list = []
    solves: list = []
    _count(monkeypatch, "build_instruments", builds)
    _count(monkeypatch, "solve_batch", solves)
    ds = tp.solve(ndpr, draws=draws, seed=seed)
    central = len(builds)  # 0 when the set's validation built them, else 1
    assert central <= 1  # the draws tile the central instruments
    warm = solves[1]

    # from scratch: every measure applied again for every draw, solved from the base start
    mkt, cal = ndpr.market, ndpr.market.calibration
    names = ["baseline", *ndpr.names]
    S = len(names)
    params = mkt.elasticity_draws(draws, np.random.default_rng(seed))
    rep = lambda a: np.repeat(a, S, axis=0)  # noqa: E731
    cal_d = cal.with_elasticities(
        eps=rep(params["supply"]), eta=rep(params["demand"]), sigma=rep(params["substitution"])
    )
    lists = ([[]] + [list(s.measures) for s in ndpr.scenarios]) * draws
    cold = api._run(mkt, cal_d, lists, "levels", api.DEFAULT_TOL, ndpr, names)
    scratch = solves[-1]
    assert len(builds) == central + 1 and scratch.converged.all() and warm.converged.all()

    scale = float(cal.E0.sum())
    for name in api.DRAW_VARIABLES:
        got = ds[name].isel(draw=slice(1, None)).values
        want = cold[name].reshape(got.shape)
        if "change" in name or name.endswith("_cost") or name == "levy_revenue":
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * scale, err_msg=name)
        elif got.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)
    # a start at the scenario's central solution needs fewer Newton iterations in all
    assert warm.iterations.sum() < scratch.iterations.sum()
    # the baseline replicates the base data under any elasticities: no iteration from it
    assert (warm.iterations.reshape(draws, S)[:, 0] == 0).all()


# -- variables --------------------------------------------------------------------------------
def test_a_variable_subset_equals_the_full_datasets_numbers(ndpr) -> None:
    full = tp.solve(ndpr, draws=3, seed=1)
    lean = tp.solve(ndpr, draws=3, seed=1, variables=LEAN)
    parameters = {names[0] for names in api._PARAMETER_NAMES.values()}
    stored = set(lean.data_vars) - {"draw_converged", *parameters}
    assert stored == {*LEAN, *api.DIAGNOSTICS}
    for name in stored:
        assert lean[name].dims == full[name].dims
        np.testing.assert_array_equal(lean[name].values, full[name].values, err_msg=name)
        assert lean[name].attrs.keys() == full[name].attrs.keys()
    assert "trade_flow" not in lean and "trade_flow" in full
    # every variable of the table, asked for alone
    point = tp.solve(ndpr)
    assert set(point.data_vars) == {*api.result_variables(), *api.DIAGNOSTICS}
    for name in api.result_variables():
        one = tp.solve(ndpr, variables=[name])
        assert set(one.data_vars) == {name, *api.DIAGNOSTICS}
        np.testing.assert_array_equal(one[name].values, point[name].values, err_msg=name)


def test_an_unknown_variable_is_refused_listing_the_allowed_ones(ndpr) -> None:
    with pytest.raises(ValueError, match="unknown result variable") as err:
        tp.solve(ndpr, variables=["producer_price", "welfare"])
    msg = str(err.value)
    assert "'welfare'" in msg and "welfare_change" in msg and "bloc_dependency" in msg
    assert "'producer_price'" not in msg.split("(allowed")[0]


# -- check_solution ---------------------------------------------------------------------------
def reference_check(mkt, cal, inst, st, variables) -> list[str]:
    """The scenario-by-scenario check (the former implementation)."""
    regions = mkt.regions
    out = []
    for b in range(inst.B):
        problem = ""
        checks = (
            ("producer price", st.p[b], cal.producer, True),
            ("consumer price", st.P[b], cal.consumer, True),
            ("landed price", st.q[b], inst.available[b] & (cal.w0 > 0), True),
            ("trade flow", st.X[b], None, False),
            ("production", st.S[b], None, False),
            ("consumption", variables["consumption"][b], None, False),
        )
        for what, arr, where, positive in checks:
            arr = np.asarray(arr, dtype=float)
            mask = np.ones(arr.shape, bool) if where is None else np.asarray(where, bool)
            with np.errstate(invalid="ignore"):
                bad = mask & (~np.isfinite(arr) | ((arr <= 0) if positive else (arr < 0)))
            if bad.any():
                idx = np.unravel_index(int(np.flatnonzero(bad)[0]), arr.shape)
                at = " → ".join(regions[i] for i in idx)
                val = arr[idx]
                kind = "non-finite" if not np.isfinite(val) else "negative"
                if np.isfinite(val) and val == 0:
                    kind = "zero"
                problem = f"{kind} {what} for {at} ({val:.6g})"
                break
        if not problem:
            for name in api._FINITE:
                arr = np.asarray(variables[name][b], dtype=float)
                if not np.all(np.isfinite(arr)):
                    idx = np.unravel_index(int(np.flatnonzero(~np.isfinite(arr))[0]), arr.shape)
                    at = " → ".join(regions[i] for i in idx)
                    problem = f"non-finite {name.replace('_', ' ')} for {at} ({arr[idx]})"
                    break
        out.append(f"not a valid equilibrium: {problem}" if problem else "")
    return out


def test_batched_check_finds_what_the_scenario_by_scenario_check_finds(four) -> None:
    cal = four.calibration
    B = 8
    inst, _ = api.build_instruments(four, cal, [[]] * B)
    st = api.solve_batch(cal, inst).state
    variables = {"consumption": st.D.copy()}
    for name in api._FINITE:
        variables.setdefault(name, np.zeros((B, cal.N)))
    assert api.check_solution(four, cal, inst, st, variables) == [""] * B
    st.X[1, 0, 1] = -1.0
    st.X[2, 3, 2] = -2.0  # two problems in one scenario: the first check (producer price) wins
    st.p[2, 1] = np.inf
    st.P[3, 2] = 0.0
    st.S[4, 0] = np.nan
    variables["consumption"][5, 4] = -0.5
    variables["subsidy_cost"][6, 3] = np.nan
    variables["welfare_change"][6, 0] = np.inf  # a later table entry: subsidy cost is named
    variables["trade_flow"] = st.X
    got = api.check_solution(four, cal, inst, st, variables)
    assert got == reference_check(four, cal, inst, st, variables)
    assert got[0] == got[7] == ""
    expect = {
        1: "negative trade flow for AUS → CHN",
        2: "non-finite producer price for CHN",
        3: "zero consumer price for EU",
        4: "non-finite production for AUS",
        5: "negative consumption for USA",
        6: "non-finite subsidy cost for ROW",
    }
    for b, words in expect.items():
        assert words in got[b], (b, got[b])


def test_draws_log_no_warning_when_every_draw_solves(ndpr, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="tradepolicy"):
        tp.solve(ndpr, draws=2, seed=3, variables=["producer_price"])
    assert not [r for r in caplog.records if "did not converge" in r.getMessage()]


def test_scenario_objects_can_be_reused_across_rows(four) -> None:
    """The same measure object in several scenarios books once per scenario."""
    floor = tp.measures.PriceFloor(importers=["USA", "EU"], exempt=["USA", "EU"], floor=120.0)
    a = tp.solve([Scenario(name="a", measures=[floor]), Scenario(name="b", measures=[floor])], four)
    np.testing.assert_array_equal(
        a.levy_revenue.sel(scenario="a").values, a.levy_revenue.sel(scenario="b").values
    )
    assert float(a.levy_revenue.sel(scenario="a").sum()) > 0


_OMP_PROBE = """
import os, sys
import numpy as np
import tradepolicy as tp
from tradepolicy.core.kernel import SERIAL_BELOW
from tradepolicy.testing import every_measure_scenarios, random_market

def openmp_loaded():
    with open("/proc/self/maps") as fh:
        return any(n in fh.read() for n in ("libgomp", "libiomp", "libomp"))

before = openmp_loaded()
rng = np.random.default_rng(0)
market = random_market(rng)
lists = every_measure_scenarios(rng, market, SERIAL_BELOW)  # the parallel loop runs
ds = tp.solve([tp.Scenario(name=f"s{i}", measures=ms) for i, ms in enumerate(lists)], market)
import numba
print(os.environ["OMP_WAIT_POLICY"], before, openmp_loaded(), numba.threading_layer(),
      int(ds.converged.sum()) == ds.sizes["scenario"])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
@pytest.mark.parametrize(("given", "expect"), [(None, "PASSIVE"), ("active", "active")])
def test_openmp_threads_sleep_when_idle(given, expect) -> None:
    """Importing tradepolicy sets ``OMP_WAIT_POLICY`` (unless set) while no OpenMP runtime is
    loaded, so the runtime numba loads for the parallel solve reads it."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run(
        [sys.executable, "-c", _OMP_PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    policy, before, after, layer, converged = out
    assert policy == expect == (given or tp._openmp.WAIT_POLICY)
    assert before == "False"  # not loaded by the import: it will read the policy
    assert converged == "True"
    if layer == "omp":
        assert after == "True"
