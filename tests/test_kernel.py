"""The compiled Newton kernel against the numpy reference path.

Both solve the same equations with the same globalised Newton method; the kernel runs each
scenario's iterations in machine code. They must agree to rounding (≤ 1e-12 on every
unknown), take the same iterations and report the same states, messages and fallbacks, on
random markets where every scenario uses every measure type.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from chains import TOY_MAGNET, every_measure_chain
from toy import TOY_MARKET

import tradepolicy as tp
from tradepolicy import api
from tradepolicy.chain import Chain
from tradepolicy.core import kernel
from tradepolicy.errors import InputWarning
from tradepolicy.model.levels import box_fb, box_mid, evaluate, initial_guess
from tradepolicy.scenario import ScenarioSet
from tradepolicy.solver import newton
from tradepolicy.solver.newton import DEFAULT_TOL, solve_batch
from tradepolicy.testing import every_measure_scenarios, random_market

TOL_U = 1e-12


def _every_measure(seed: int, n_regions: int, n_scen: int):
    rng = np.random.default_rng(seed)
    market = random_market(rng, n_regions)
    measures = [[], *every_measure_scenarios(rng, market, n_scen)]
    inst, _ = api.build_instruments(market, market.calibration, measures)
    return market.calibration, inst


def _assert_same(ref, new, inst, relative_above_one: bool = False) -> None:
    """Same states, iterations, messages; unknowns within ``TOL_U`` (with
    ``relative_above_one``: within ``TOL_U · max(1, |u|)``, for batches whose scaled λ reach
    hundreds, where 1e-12 is a few units in the last place)."""
    np.testing.assert_array_equal(new.converged, ref.converged)
    np.testing.assert_array_equal(new.iterations, ref.iterations)
    assert new.messages == ref.messages
    assert new.method == ref.method
    both = ref.converged & new.converged
    scale = np.maximum(1.0, np.abs(ref.u[both])) if relative_above_one else 1.0
    assert np.max(np.abs(new.u[both] - ref.u[both]) / scale, initial=0.0) <= TOL_U
    # the reported states agree as well (prices, flows, supply)
    for name in ("p", "P", "D", "A", "q", "fob", "levy", "X", "S", "support", "covered",
                 "p_marginal", "residual"):  # fmt: skip
        a, b = getattr(ref.state, name)[both], getattr(new.state, name)[both]
        np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-12, err_msg=name)
    for name in ("lam", "g"):  # the pairs each scenario uses
        for row in np.flatnonzero(both):
            k = int(inst.pairs_used[row])  # (padding is never solved)
            a, b = getattr(ref.state, name)[row, :k], getattr(new.state, name)[row, :k]
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10, err_msg=name)


@pytest.mark.parametrize(("seed", "n_regions"), [(0, 12), (1, 8), (2, 5), (3, 12)])
def test_kernel_equals_reference_with_every_measure(seed: int, n_regions: int) -> None:
    cal, inst = _every_measure(seed, n_regions, 120)
    assert inst.K > 0 and inst.has_floor and inst.has_support and inst.has_ban
    ref = solve_batch(cal, inst, engine="numpy")
    new = solve_batch(cal, inst, engine="compiled")
    assert ref.converged.mean() > 0.95  # the comparison covers solved scenarios
    assert ref.iterations.max() > 8  # ... including slow ones with many line searches
    _assert_same(ref, new, inst)


def test_kernel_equals_reference_when_iterations_run_out() -> None:
    """Stopped early, both paths stop at the same iterate, unconverged, and the scipy
    fallback then rescues the same scenarios with the same method."""
    cal, inst = _every_measure(4, 10, 40)
    ref = solve_batch(cal, inst, engine="numpy", max_iter=3, fallback=False)
    new = solve_batch(cal, inst, engine="compiled", max_iter=3, fallback=False)
    assert (~ref.converged).sum() > 10
    np.testing.assert_allclose(new.u, ref.u, rtol=0, atol=1e-11)
    _assert_same(ref, new, inst)
    ref = solve_batch(cal, inst, engine="numpy", max_iter=3)
    new = solve_batch(cal, inst, engine="compiled", max_iter=3)
    assert set(ref.method) > {"newton"}  # some were rescued by scipy
    np.testing.assert_array_equal(new.converged, ref.converged)
    assert new.method == ref.method and new.messages == ref.messages
    # scipy counts its function evaluations, which a start 1e-12 away can change by a few;
    # the solutions agree to the tolerance
    both = ref.converged & new.converged
    np.testing.assert_allclose(new.state.p[both], ref.state.p[both], rtol=1e-9)


def test_kernel_skips_infeasible_scenarios_and_warm_starts() -> None:
    cal, inst = _every_measure(5, 8, 30)
    inst.infeasible = [""] * inst.B
    inst.infeasible[3] = "infeasible: test"
    ref = solve_batch(cal, inst, engine="numpy")
    new = solve_batch(cal, inst, engine="compiled")
    assert new.messages[3] == "infeasible: test" and not new.converged[3]
    assert new.iterations[3] == 0
    _assert_same(ref, new, inst)
    # from the solution, nothing is left to do
    again = solve_batch(cal, inst, u0=new.u, engine="compiled")
    assert np.all(again.iterations[new.converged] == 0)
    np.testing.assert_array_equal(again.u[new.converged], new.u[new.converged])


def test_kernel_residuals_match_reference_at_random_points() -> None:
    """One Newton step from random points: the kernel's direction is the reference's, so its
    first iterate equals the reference's (the evaluation and Jacobian agree off the solution)."""
    cal, inst = _every_measure(6, 9, 50)
    rng = np.random.default_rng(0)
    u0 = initial_guess(cal, inst)
    u0[:, : cal.N] += rng.normal(0.0, 0.2, (inst.B, cal.N))
    ref = solve_batch(cal, inst, u0=u0, engine="numpy", max_iter=1, fallback=False)
    new = solve_batch(cal, inst, u0=u0, engine="compiled", max_iter=1, fallback=False)
    np.testing.assert_array_equal(new.iterations, ref.iterations)
    np.testing.assert_allclose(new.u, ref.u, rtol=0, atol=1e-12)
    st = evaluate(cal, inst, new.u, jacobian=False)
    np.testing.assert_allclose(new.state.F, st.F, rtol=1e-12, atol=1e-14)


def test_lu_solve_agrees_with_lapack_and_reports_singular() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 3, 12, 30):
        A = rng.normal(size=(n, n)) + n * np.eye(n) * rng.random()
        b = rng.normal(size=n)
        x = np.empty(n)
        assert kernel._lu_solve(A.copy(), b.copy(), n, x)
        np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-10, atol=1e-12)
    S = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert not kernel._lu_solve(S.copy(), np.ones(2), 2, np.empty(2))


def test_vectorised_exp_is_libm_exp_to_the_last_places() -> None:
    """``_vexp`` (the kernel's exponentials) against ``math.exp``: within 2 units in the last
    place on the range the model meets and far beyond, exactly ``math.exp`` outside
    ``±EXP_SAFE`` (overflow, subnormals, 0) and for non-finite inputs; only ``n`` written."""
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [
            rng.uniform(-1.0, 1.0, 20_000),
            rng.uniform(-60.0, 60.0, 20_000),
            rng.uniform(-kernel.EXP_SAFE, kernel.EXP_SAFE, 20_000),
            np.array([0.0, -0.0, 1e-300, -1e-300, 0.5 * np.log(2.0), np.log(2.0), 1.0]),
        ]
    )
    out, scratch = np.empty(x.size + 3), np.empty(x.size)
    out[-3:] = 7.0
    kernel._vexp(x, out, scratch, x.size)
    exact = np.array([math.exp(v) for v in x])
    assert np.all(np.abs(out[: x.size] - exact) <= 2.0 * np.spacing(exact))
    np.testing.assert_array_equal(out[-3:], 7.0)
    edge = np.array([np.nan, np.inf, -np.inf, 700.0, -700.0, 709.7, 710.0, -708.0, -745.0, -800.0])
    out = np.empty(edge.size)
    kernel._vexp(edge, out, np.empty(edge.size), edge.size)
    with np.errstate(over="ignore", under="ignore"):
        np.testing.assert_array_equal(out, np.exp(edge))


# -- value chains (docs/chains.md): the chain block against the reference --------------------
def _chain_batch(seed: int, n_regions: int, n_scen: int, coefficient: float = 0.3):
    """A random two-stage chain where every scenario uses every measure in every stage."""
    chain, inst = every_measure_chain(
        np.random.default_rng(seed), n=n_regions, n_scen=n_scen, coefficient=coefficient
    )
    return chain.calibration, inst


def _assert_same_chain(ref, new, inst) -> None:
    _assert_same(ref, new, inst, relative_above_one=True)
    both = ref.converged & new.converged
    N = ref.state.p.shape[1]  # the prices: within 1e-12 as they are
    assert np.max(np.abs(new.u[both, :N] - ref.u[both, :N]), initial=0.0) <= TOL_U
    for name in ("input_cost", "derived"):  # the chain's own quantities
        a, b = getattr(ref.state, name), getattr(new.state, name)
        assert a is not None and b is not None, name
        np.testing.assert_allclose(b[both], a[both], rtol=1e-11, atol=1e-12, err_msg=name)


@pytest.mark.parametrize(("seed", "n_regions"), [(11, 6), (12, 5), (13, 9), (14, 7)])
def test_kernel_equals_reference_on_random_chains(seed: int, n_regions: int) -> None:
    cal, inst = _chain_batch(seed, n_regions, 60)
    assert cal.is_chain and inst.K > 0 and inst.has_floor and inst.has_support and inst.has_ban
    ref = solve_batch(cal, inst, engine="numpy")
    new = solve_batch(cal, inst, engine="compiled")
    assert ref.converged.mean() > 0.95
    assert ref.iterations.max() > 8
    _assert_same_chain(ref, new, inst)
    # the chain is live: makers buy inputs and pay for them
    assert (new.state.derived > 0).any() and (new.state.input_cost > 0).any()


def test_kernel_runs_chains_itself(monkeypatch) -> None:
    """Chains no longer go to the numpy path: the compiled engine calls the kernel."""
    cal, inst = _chain_batch(15, 5, 8)
    calls = []
    real = kernel.solve_rows

    def spy(*args, **kw):
        calls.append(args[0])
        return real(*args, **kw)

    monkeypatch.setattr(kernel, "solve_rows", spy)
    sol = solve_batch(cal, inst, engine="compiled")
    assert calls and calls[0] is cal and sol.converged.any()


def test_kernel_chain_residuals_and_first_step_match_reference_at_random_points() -> None:
    """At random points (every measure, both stages): the residuals, the first Newton iterate
    (hence the Jacobian's cross-stage terms) and the exported state equal the reference's."""
    cal, inst = _chain_batch(17, 6, 40, coefficient=0.45)
    rng = np.random.default_rng(2)
    u0 = initial_guess(cal, inst)
    u0[:, : cal.N] += rng.normal(0.0, 0.2, (inst.B, cal.N))
    # residuals where the kernel stands, without an iteration
    u = u0.copy()
    it = np.zeros(inst.B, dtype=int)
    _, _, st = kernel.solve_rows(cal, inst, u, it, np.arange(inst.B), 1e-11, 0, state=True)
    ref = evaluate(cal, inst, u0, jacobian=False)
    assert st is not None
    np.testing.assert_array_equal(u, u0)
    for name in ("F", "S", "X", "A", "D", "input_cost", "derived", "p_marginal", "covered"):
        np.testing.assert_allclose(
            getattr(st, name), getattr(ref, name), rtol=1e-12, atol=1e-13, err_msg=name
        )
    # one Newton step
    ref1 = solve_batch(cal, inst, u0=u0, engine="numpy", max_iter=1, fallback=False)
    new1 = solve_batch(cal, inst, u0=u0, engine="compiled", max_iter=1, fallback=False)
    np.testing.assert_array_equal(new1.iterations, ref1.iterations)
    np.testing.assert_allclose(new1.u, ref1.u, rtol=0, atol=1e-12)
    assert np.abs(new1.u - u0).max() > 1e-3  # the step moved


def _record_both_engines(monkeypatch) -> list:
    """Make ``tp.solve`` solve every batch with both engines and keep both results."""
    calls: list = []

    def both(cal, inst, u0=None, tol=DEFAULT_TOL, **kw):
        ref = solve_batch(cal, inst, u0=u0, tol=tol, engine="numpy", **kw)
        new = solve_batch(cal, inst, u0=u0, tol=tol, engine="compiled", **kw)
        calls.append((cal, inst, ref, new))
        return new

    monkeypatch.setattr(api, "solve_batch", both)
    return calls


def test_kernel_equals_reference_on_chain_draws_with_coefficients_per_row(monkeypatch) -> None:
    """Draws of the toy chain: elasticities, coefficients, final demand and value added per
    row (C is (B, N, N)), warm-started from the central solution."""
    oxide = tp.Market.from_dict(copy.deepcopy(TOY_MARKET))
    magnet = tp.Market.from_dict(
        copy.deepcopy(TOY_MAGNET) | {"elasticity_se": {"supply": {"default": 0.3}}}
    )
    link = {"input": "toy", "output": "toy_magnet", "coefficient": 0.4, "low": 0.3, "high": 0.5}
    chain = Chain.from_markets("toy_chain", [oxide, magnet], [link])
    measures = [
        [{"type": "price_floor", "stage": "toy", "importers": ["USA", "EU"], "floor": 60000.0,
          "exempt": ["AUS"]}],
        [{"type": "supply_shock", "stage": "toy", "region": "CHN", "fraction": 0.3},
         {"type": "tariff", "stage": "toy_magnet", "importers": ["USA", "EU"],
          "exporters": ["CHN"], "rate": 0.25}],
        [{"type": "price_gap_subsidy", "stage": "toy_magnet", "producers": ["USA"],
          "strike": 120000.0, "payers": {"USA": 1.0}}],
    ]  # fmt: skip
    scen = [tp.Scenario(name=f"s{i}", measure=m) for i, m in enumerate(measures)]  # type: ignore[call-arg]
    calls = _record_both_engines(monkeypatch)
    ds = tp.solve(ScenarioSet(market=chain, scenarios=scen), draws=12, seed=5)
    assert (ds.draw_converged == 1).all()
    per_row = [c for c in calls if c[0].C is not None and c[0].C.ndim == 3]
    assert per_row, "the draws were not solved with coefficients per row"
    for _, inst, ref, new in calls:
        _assert_same_chain(ref, new, inst)
    cal = per_row[0][0]
    assert np.ptp(cal.C.max(axis=(1, 2))) > 0 and np.ndim(cal.Df0) == 2 and np.ndim(cal.v0) == 2


def test_kernel_equals_reference_on_the_shipped_magnet_chain(monkeypatch) -> None:
    calls = _record_both_engines(monkeypatch)
    ds = tp.solve(tp.load_scenarios("ree_magnets"))
    assert (ds.converged == 1).all()
    assert len(calls) == 1
    cal, inst, ref, new = calls[0]
    assert cal.is_chain and len(ds.stage) == 4
    _assert_same_chain(ref, new, inst)


# -- the first pass: pairs as natural residuals ------------------------------------------------
@pytest.mark.parametrize("hi", [2.0, np.inf], ids=["finite_hi", "infinite_hi"])
def test_box_mid_is_zero_exactly_where_box_fb_is(hi: float) -> None:
    """The natural residual and the box Fischer–Burmeister function share their zeros (the
    complementarity set), so both passes solve the same equilibria; the kernel's scalar
    version equals the reference, branch ties included."""
    lo = 0.5
    rng = np.random.default_rng(3)
    x = np.concatenate([[lo, lo, lo, 1.0, 1.7, lo, 1.0, 0.2, 0.2], rng.uniform(-1, 3, 200)])
    g = np.concatenate([[1.0, 0.0, 1e3, 0.0, 0.0, -1e-6, 0.3, 0.5, 0.0], rng.uniform(-2, 2, 200)])
    if np.isfinite(hi):
        x = np.concatenate([x, [hi, hi, hi, 2.5]])
        g = np.concatenate([g, [-1.0, 0.0, 1e-6, 0.0]])
    x[-5:], g[-5:] = lo + 0.25, 0.25  # x − g exactly at lo: both branches are 0.25
    n = x.size
    lo_, hi_ = np.full(n, lo), np.full(n, hi)
    mid, dx, dg = box_mid(x, lo_, hi_, g)
    fb = box_fb(x, lo_, hi_, g)[0]
    np.testing.assert_array_equal(mid == 0.0, fb == 0.0)
    assert (mid == 0.0).sum() >= 4 and (mid != 0.0).sum() >= 100
    # the value is the distance to the set along the branch, the derivatives its slopes
    h = 1e-7
    up_x, up_g = box_mid(x + h, lo_, hi_, g), box_mid(x, lo_, hi_, g + h)
    smooth = (up_x[1] == dx) & (up_g[2] == dg)  # no branch switch within h
    fd_x, fd_g = (up_x[0] - mid) / h, (up_g[0] - mid) / h
    np.testing.assert_allclose(fd_x[smooth], dx[smooth], atol=1e-6)
    np.testing.assert_allclose(fd_g[smooth], dg[smooth], atol=1e-6)
    for i in range(n):
        assert kernel._box_mid(x[i], lo, hi, g[i]) == (mid[i], dx[i], dg[i])


def test_rows_that_stall_with_natural_residuals_are_solved_again_from_their_start() -> None:
    """Rows the first pass (natural residuals) leaves unsolved restart from their start with
    Fischer–Burmeister pairs: they end where a Fischer–Burmeister solve alone ends, with the
    iterations of both passes; every row reaches the same equilibrium as with Fischer–
    Burmeister pairs alone (within the tolerance's reach), which also clears there."""
    cal, inst = _every_measure(1, 8, 120)
    B = inst.B
    rows = np.arange(B)
    passes = {}
    for pairs, max_iter, halvings in (("mid", newton.MID_PASS_ITER, newton.MID_PASS_HALVINGS),
                                      ("fb", 60, newton.MAX_HALVINGS)):  # fmt: skip
        u, it, conv = initial_guess(cal, inst), np.zeros(B, dtype=int), np.zeros(B, dtype=bool)
        newton._newton_pass(
            cal, inst, u, it, conv, rows, DEFAULT_TOL, max_iter, "compiled", 512, pairs, halvings
        )
        passes[pairs] = (u, it, conv)
    _, it_m, conv_m = passes["mid"]
    u_f, it_f, conv_f = passes["fb"]
    again = np.flatnonzero(~conv_m)
    assert again.size and conv_m.sum() > 0.9 * B and conv_f.all()
    assert it_m.mean() < it_f.mean()  # the point of the first pass
    for engine in ("compiled", "numpy"):
        res = solve_batch(cal, inst, engine=engine)
        assert res.converged.all() and set(res.method) == {"newton"}
        gap = np.abs(res.u[again] - u_f[again]) / np.maximum(1.0, np.abs(u_f[again]))
        assert gap.max() <= (0.0 if engine == "compiled" else TOL_U)  # the same path
        np.testing.assert_array_equal(res.iterations[again], it_m[again] + it_f[again])
        done = conv_m
        np.testing.assert_array_equal(res.iterations[done], it_m[done])
        scale = np.maximum(1.0, np.abs(u_f))
        assert np.max(np.abs(res.u - u_f) / scale) <= 1e-8  # the same equilibria
        fb = evaluate(cal, inst, res.u, jacobian=False)  # Fischer–Burmeister clears too
        assert fb.residual.max() <= 10 * DEFAULT_TOL


def test_scipy_fallback_ignores_floating_point_warnings_inside_minpack(tmp_path) -> None:
    """A scenario with no equilibrium (price-inelastic supply, an offtake beyond the sellers'
    output) goes through the scipy fallback, whose ``lm`` forms a covariance that overflows:
    the solve reports the scenario as not solved (warnings are errors in the tests)."""
    market = """id = "m"
commodity = "test oxide"
base_year = 2024
quantity_unit = "t"
currency = "USD"
regions = ["CHN", "USA", "EU", "JPN"]
base_price = {default = 10.0}
elasticities = {supply = {default = 0.0}, demand = {default = 1.0}, substitution = {default = 1.0}}
flows = {USA = {USA = 0.5}, EU = {CHN = 3.0, EU = 1.0}, JPN = {JPN = 1.0}}
"""
    scenarios = """market = "m.toml"
[[scenario]]
name = "s0"
[[scenario.measure]]
type = "offtake"
buyers = {CHN = 1.0}
sellers = ["USA"]
volume = 1.0
price = 10.0
disposition = "stockpile"
[[scenario.measure]]
type = "stockpile_release"
region = "CHN"
quantity = 2.0
"""
    (tmp_path / "m.toml").write_text(market)
    (tmp_path / "s.toml").write_text(scenarios)
    with pytest.warns(InputWarning, match="exceeds the sellers' base output"):
        sset = tp.load_scenarios(tmp_path / "s.toml")
    ds = tp.solve(sset)
    message = str(ds["solver_message"].sel(scenario="s0").values.ravel()[0])
    assert message.startswith("not converged after"), message


def test_mid_direction_is_the_whole_systems_step() -> None:
    """Pairs at a bound (Jacobian row ``e_k``) take their known step ``−F_k``; the rest solve
    the reduced system: the step of the whole system, whatever the mix of bound and interior
    pairs, and an exactly singular reduced system is reported."""
    rng = np.random.default_rng(7)
    N, K = 6, 5
    n = N + K
    for bound in ([], [0, 2], [1, 3, 4], list(range(K))):
        J = rng.normal(size=(n, n)) + n * np.eye(n)
        F = rng.normal(size=n)
        dphi_dg = np.ones(K)
        for k in bound:
            J[N + k] = 0.0
            J[N + k, N + k] = 1.0
            dphi_dg[k] = 0.0
        F[N + 2] = 0.0  # a pair exactly at its bound (step 0) when bound, interior otherwise
        ok, d = _mid_step(J, F, N, dphi_dg)
        assert ok
        np.testing.assert_allclose(d, np.linalg.solve(J, -F), rtol=1e-12, atol=1e-13)
        for k in bound:
            assert d[N + k] == -F[N + k]
    J[1] = 0.0  # a clearing row without entries: singular
    assert not _mid_step(J, F, N, dphi_dg)[0]


def _mid_step(J: np.ndarray, F: np.ndarray, N: int, dphi_dg: np.ndarray):
    n = J.shape[0]
    Jbuf = np.concatenate([J.ravel(), np.full(5, np.nan)])  # (room the kernel leaves)
    d, rhs, sol, act = np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    J_view = Jbuf[: n * n].reshape(n, n)
    ok = kernel._mid_direction(J_view, Jbuf, F, N, n - N, dphi_dg, d, rhs, sol, act)
    return ok, d


def test_first_pass_step_with_pairs_at_lo_at_hi_and_interior() -> None:
    """The first pass (natural residuals) solves the kernel's reduced system: from points
    where pairs sit at their lower bound (on it and below it), at their upper bound and
    inside, one step equals the reference's step on the whole system, with the same
    iterations, and takes the pairs off their bound to it."""
    cal, inst = _every_measure(5, 8, 40)
    N, B = cal.N, inst.B
    sol = solve_batch(cal, inst, engine="compiled")
    rng = np.random.default_rng(4)
    u0 = sol.u.copy()
    u0[:, :N] += rng.normal(0.0, 0.05, (B, N))
    used = np.arange(inst.K)[None, :] < inst.pairs_used[:, None]
    lam, lo, hi = u0[:, N:], inst.lam_lo, inst.lam_hi
    below = used & (lam == lo) & (rng.random(lam.shape) < 0.3)
    lam[below] = lo[below] - 0.1  # in the lower regime, off its bound (a step to make)
    st = evaluate(cal, inst, u0, jacobian=True, pairs="mid")
    assert st.J is not None
    unit = np.all(st.J[:, N:, :] == np.eye(N + inst.K)[None, N:, :], axis=2)  # row e_k
    F = st.F[:, N:]
    at_lo, at_hi = used & unit & (F == lam - lo), used & unit & (F == lam - hi) & (F != lam - lo)
    interior = used & ~unit
    assert (at_lo & (F == 0.0)).sum() > 10 and (at_lo & (F != 0.0)).sum() > 10
    assert at_hi.sum() >= 2 and interior.sum() > 10
    out = {}
    for engine in ("numpy", "compiled"):
        u, it, conv = u0.copy(), np.zeros(B, dtype=int), np.zeros(B, dtype=bool)
        newton._newton_pass(cal, inst, u, it, conv, np.arange(B), DEFAULT_TOL, 1, engine, 512,
                            "mid", newton.MID_PASS_HALVINGS)  # fmt: skip
        out[engine] = u, it
    np.testing.assert_array_equal(out["compiled"][1], out["numpy"][1])
    assert (out["compiled"][1] == 1).all()
    np.testing.assert_allclose(out["compiled"][0], out["numpy"][0], rtol=0, atol=1e-12)
    assert np.abs(out["compiled"][0] - u0).max() > 1e-3  # the step moved


def test_infeasibility_messages_equal_with_and_without_removed_varieties() -> None:
    """A scenario's messages are the same alone (nothing removed: the fast path) as in a
    batch where another scenario removes varieties (the general path), also when a consumer
    has no supplier at base."""
    cal, inst = _every_measure(7, 6, 40)
    removes = ~inst.available.all(axis=(1, 2))
    assert removes.any() and (~removes).any()
    consumer = int(np.flatnonzero(np.broadcast_to(cal.consumer, (cal.N,)))[0])
    stranded = copy.copy(cal)
    stranded.w0 = np.array(cal.w0, dtype=float)
    stranded.w0[..., consumer] = 0.0  # nobody sells to it at base
    for c in (cal, stranded):
        batch = newton.infeasibility(c, inst)
        alone = [newton.infeasibility(c, inst.take(np.array([b])))[0] for b in range(inst.B)]
        assert alone == batch
    assert not removes[0]  # the first scenario has no measure: the fast path alone
    assert f"every supplier of {cal.regions[consumer]}" in batch[0]
