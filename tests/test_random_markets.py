"""Property tests on random markets: the batched Newton solver against theory and scipy.

Markets and scenario instruments are drawn by hypothesis (derandomized, no example database,
so CI is reproducible). Each property is checked against an independent computation:
replication of the base data, a finite-difference Jacobian, and ``scipy.optimize.root``
(MINPACK ``hybr`` with finite differences, no analytic Jacobian) started at base prices.
"""

from __future__ import annotations

from dataclasses import dataclass

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import optimize

from tradepolicy.model.instruments import InstrumentBuilder, Instruments
from tradepolicy.model.levels import Calibration, evaluate
from tradepolicy.solver.newton import solve_batch

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

N_SCEN = 3  # policy scenarios per example (plus the baseline at index 0)


# -- strategies ------------------------------------------------------------------------------
def _floats(lo: float, hi: float, **kw) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, **kw)


def _arr(shape, elements: st.SearchStrategy, dtype=np.float64) -> st.SearchStrategy[np.ndarray]:
    """Arrays whose every element is drawn (no constant fill), for diverse markets."""
    return hnp.arrays(dtype, shape, elements=elements, fill=st.nothing())


@st.composite
def markets(draw: st.DrawFn) -> Calibration:
    """N in 2..7 regions, each producing or consuming (or both), positive base prices.

    Producers that consume use some of their own output (positive diagonal); producer-only
    regions (exporters such as a mining country) are drawn too. Some pairs have no flow.
    """
    n = draw(st.integers(2, 7))
    # role 0 = producer and consumer, 1 = producer only, 2 = consumer only
    roles = draw(_arr(n, st.integers(0, 2), np.int8))
    if not np.any(roles != 2):  # at least one producer
        roles[draw(st.integers(0, n - 1))] = 0
    producer = roles != 2
    consumer = roles != 1
    if not consumer.any():  # at least one consumer
        i = draw(st.integers(0, n - 1))
        roles[i], consumer[i] = 0, True
    X0 = draw(_arr((n, n), _floats(1.0, 1e4)))
    keep = draw(_arr((n, n), st.booleans(), np.bool_))
    X0 = np.where(keep & producer[:, None] & consumer[None, :], X0, 0.0)
    # producers that also consume use their own output; every consumer buys something
    diag = draw(_arr(n, _floats(1.0, 1e4)))
    np.fill_diagonal(X0, np.where(producer & consumer, diag, 0.0))
    producers = np.flatnonzero(producer)
    for d in np.flatnonzero(consumer & ~producer):
        if X0[:, d].sum() == 0:
            X0[producers[draw(st.integers(0, len(producers) - 1))], d] = draw(_floats(1.0, 1e4))
    for o in np.flatnonzero(producer & ~consumer):
        if X0[o].sum() == 0:
            buyers = np.flatnonzero(consumer)
            X0[o, buyers[draw(st.integers(0, len(buyers) - 1))]] = draw(_floats(1.0, 1e4))
    p0 = draw(_arr(n, _floats(0.5, 1e5)))
    t0 = draw(_arr((n, n), _floats(0.0, 0.5)))
    np.fill_diagonal(t0, 0.0)
    x0 = draw(_arr((n, n), _floats(0.0, 0.3)))  # base export taxes on some pairs
    x0 = np.where(draw(_arr((n, n), st.booleans(), np.bool_)), x0, 0.0)
    np.fill_diagonal(x0, 0.0)
    eps = draw(_arr(n, _floats(0.0, 3.0)))
    eta = draw(_arr(n, _floats(0.05, 2.0)))
    sigma = draw(_arr(n, st.one_of(st.just(1.0), _floats(0.3, 12.0))))
    return Calibration(
        regions=tuple(f"R{i}" for i in range(n)),
        p0=p0,
        X0=X0,
        t0=t0,
        x0=x0,
        eps=eps,
        eta=eta,
        sigma=sigma,
    )


@dataclass
class Case:
    cal: Calibration
    inst: Instruments  # scenario 0 is the baseline (no measures)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    cal = draw(markets())
    n, b = cal.N, N_SCEN + 1
    builder = InstrumentBuilder(b, cal.t0, cal.x0)
    for k in range(1, b):
        tariff = draw(_arr((n, n), _floats(0.0, 1.0)))
        xtax = draw(_arr((n, n), _floats(0.0, 0.5)))
        # each instrument applies to a random subset of pairs; the rest keep the base rate
        use_t = draw(_arr((n, n), st.booleans(), np.bool_))
        use_x = draw(_arr((n, n), st.booleans(), np.bool_))
        off = ~np.eye(n, dtype=bool)
        builder.tariff[k] = np.where(use_t & off, tariff, builder.tariff[k])
        builder.export_tax[k] = np.where(use_x & off, xtax, builder.export_tax[k])
        builder.supply_mult[k] = 1.0 - draw(_arr(n, _floats(0.0, 0.6, exclude_max=True)))
        builder.demand_mult[k] = 1.0 + draw(_arr(n, _floats(-0.5, 1.0)))
    return Case(cal, builder.build())


def _residual(cal: Calibration, inst: Instruments):
    """F(u) for one scenario (B = 1), the function both solvers drive to zero."""

    def fun(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return evaluate(cal, inst, x[None], jacobian=False).F[0]

    return fun


# -- properties ------------------------------------------------------------------------------
@SETTINGS
@given(cases())
def test_batched_solve_converges_and_clears(case: Case) -> None:
    cal, inst = case.cal, case.inst
    sol = solve_batch(cal, inst)
    assert sol.converged.all(), sol.messages
    assert np.all(sol.max_residual <= 1e-10)
    st_ = sol.state
    assert np.all(np.isfinite(st_.X)) and np.all(st_.X >= 0.0)
    assert np.all(st_.p > 0.0)
    demand = st_.X.sum(axis=2) + inst.variety_purchase
    scale = np.maximum(np.maximum(st_.S, demand), cal.S0)
    scale = np.where(scale > 0, scale, 1.0)
    np.testing.assert_array_less(np.abs(st_.S - demand) / scale, 1e-10)
    # a zero base flow stays zero
    assert np.all(st_.X[:, cal.X0 == 0] == 0.0)


def test_independent_scipy_solve_agrees() -> None:
    """scipy's hybr with finite differences reaches the same prices (to 1e-7 relative)."""
    tried, scipy_failed = [0], [0]

    @SETTINGS
    @given(cases())
    def check(case: Case) -> None:
        cal, inst = case.cal, case.inst
        sol = solve_batch(cal, inst)
        assert sol.converged.all(), sol.messages
        for b in range(inst.B):
            sub = inst.take(np.array([b]))
            fun = _residual(cal, sub)
            tried[0] += 1
            res = optimize.root(
                fun, np.zeros(cal.N + sub.K), method="hybr", options={"xtol": 1e-14, "maxfev": 4000}
            )
            f = fun(res.x)
            if not (np.all(np.isfinite(f)) and np.max(np.abs(f)) <= 1e-9):
                scipy_failed[0] += 1  # scipy itself did not solve it: not a comparison
                continue
            p_scipy = cal.p0 * np.exp(res.x[: cal.N])
            np.testing.assert_allclose(p_scipy, sol.state.p[b], rtol=1e-7, atol=0.0)

    check()
    assert tried[0] >= 60 * (N_SCEN + 1)
    assert scipy_failed[0] <= 0.1 * tried[0], f"scipy failed on {scipy_failed[0]} of {tried[0]}"


@SETTINGS
@given(cases(), st.integers(0, 2**32 - 1))
def test_analytic_jacobian_matches_finite_differences(case: Case, seed: int) -> None:
    cal, inst = case.cal, case.inst
    rng = np.random.default_rng(seed)
    n = cal.N + inst.K
    u = rng.uniform(-0.5, 0.5, size=(inst.B, n))
    J = evaluate(cal, inst, u, jacobian=True).J
    h = 1e-6
    fd = np.empty_like(J)
    for j in range(n):  # scenarios are independent: perturb column j in all of them at once
        up, dn = u.copy(), u.copy()
        up[:, j] += h
        dn[:, j] -= h
        fd[:, :, j] = (
            evaluate(cal, inst, up, jacobian=False).F - evaluate(cal, inst, dn, jacobian=False).F
        ) / (2 * h)
    scale = np.max(np.abs(J), axis=(1, 2), keepdims=True)
    rel = np.max(np.abs(J - fd) / scale, axis=(1, 2))
    assert np.all(rel < 1e-5), rel


@SETTINGS
@given(markets())
def test_baseline_reproduces_base_data(cal: Calibration) -> None:
    inst = InstrumentBuilder(1, cal.t0, cal.x0).build()
    sol = solve_batch(cal, inst)
    assert sol.converged.all()
    st_ = sol.state
    np.testing.assert_allclose(st_.X[0], cal.X0, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(st_.p[0], cal.p0, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(st_.S[0], cal.S0, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(st_.q[0], cal.q0, rtol=1e-12, atol=0.0)
    # composite prices are the base unit values where the region consumes
    np.testing.assert_allclose(st_.P[0][cal.consumer], cal.P0[cal.consumer], rtol=1e-12)
