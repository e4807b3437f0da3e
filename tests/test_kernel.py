"""The compiled Newton kernel against the numpy reference path.

Both solve the same equations with the same globalised Newton method; the kernel runs each
scenario's iterations in machine code. They must agree to rounding (≤ 1e-12 on every
unknown), take the same iterations and report the same states, messages and fallbacks, on
random markets where every scenario uses every measure type.
"""

from __future__ import annotations

import numpy as np
import pytest

from tradepolicy import api
from tradepolicy.core import kernel
from tradepolicy.model.levels import evaluate, initial_guess
from tradepolicy.solver.newton import solve_batch
from tradepolicy.testing import every_measure_scenarios, random_market

TOL_U = 1e-12


def _every_measure(seed: int, n_regions: int, n_scen: int):
    rng = np.random.default_rng(seed)
    market = random_market(rng, n_regions)
    measures = [[], *every_measure_scenarios(rng, market, n_scen)]
    inst, _ = api.build_instruments(market, market.calibration, measures)
    return market.calibration, inst


def _assert_same(ref, new, inst) -> None:
    np.testing.assert_array_equal(new.converged, ref.converged)
    np.testing.assert_array_equal(new.iterations, ref.iterations)
    assert new.messages == ref.messages
    assert new.method == ref.method
    both = ref.converged & new.converged
    assert np.max(np.abs(new.u[both] - ref.u[both]), initial=0.0) <= TOL_U
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
