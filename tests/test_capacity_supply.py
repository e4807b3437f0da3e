"""Capacity-bounded smooth supply: ``Calibration.utilisation`` (docs/model.md, "Market access
and capacity").

With base utilisation u0 > 0 supply is logistic in log price, bounded by the capacity
``K = S0 m / u0``: ``S = S0 m (1 + a)/(1 + a r^(−b))``, ``a = (1 − u0)/u0``,
``b = ε/(1 − u0)``. Theory: u0 = 0 is today's isoelastic curve bit for bit; the curve passes
through base output with elasticity ε there, stays below capacity and saturates at high
prices, tends to the isoelastic curve as u0 → 0; its cost integral (producer surplus) agrees
with quadrature and with the area left of the supply curve; the baseline replicates the data;
a demand boom near capacity converges below it; the kernel, the reference and the Jacobian
agree, in single markets and chains, with price-gap support regimes and complementarity pairs.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from builders import STATE, every_measure_batch, jacobian_error
from chains import every_measure_chain
from scipy import integrate
from test_kernel import _assert_same, _assert_same_chain

from tradepolicy.model.instruments import InstrumentBuilder
from tradepolicy.model.levels import (
    Calibration,
    capacity_cost,
    capacity_curve,
    capacity_inverse,
    evaluate,
    initial_guess,
    producer_surplus_total,
)
from tradepolicy.solver.newton import solve_batch, take_calibration
from tradepolicy.testing import random_market


def _feasible_converged(sol) -> float:
    """The share converged of the scenarios that have an equilibrium (random measures can
    make one infeasible, e.g. a diversification cap on a sole supplier)."""
    ok = np.array([not m.startswith("infeasible") for m in sol.messages])
    return float(sol.converged[ok].mean())


def _with(cal: Calibration, u0) -> Calibration:
    return dataclasses.replace(cal, utilisation=None if u0 is None else np.asarray(u0, float))


# -- the curve ------------------------------------------------------------------------------
def test_curve_passes_base_with_elasticity_eps_and_stays_below_capacity() -> None:
    eps = np.array([0.1, 0.5, 1.0, 2.5, 0.5])
    u0 = np.array([0.3, 0.8, 0.05, 0.6, 0.95])
    g, E = capacity_curve(np.ones(5), eps, u0)
    np.testing.assert_allclose(g, 1.0, rtol=1e-15)
    np.testing.assert_allclose(E, eps, rtol=1e-14)
    # the elasticity is the curve's log derivative (central differences in ln r)
    for r in (0.3, 1.0, 4.0):
        h = 1e-6
        up, _ = capacity_curve(np.full(5, r * np.exp(h)), eps, u0)
        dn, _ = capacity_curve(np.full(5, r * np.exp(-h)), eps, u0)
        _, E = capacity_curve(np.full(5, r), eps, u0)
        # (atol: the differences' rounding, ~1e-16/h, where the elasticity is near zero)
        np.testing.assert_allclose((np.log(up) - np.log(dn)) / (2 * h), E, rtol=1e-7, atol=1e-9)
    r = np.geomspace(1e-3, 20.0, 200)[:, None]
    g, _ = capacity_curve(r, eps, u0)
    assert np.all(g < 1.0 / u0) and np.all(np.diff(g, axis=0) > 0)
    far, _ = capacity_curve(np.geomspace(20.0, 1e300, 50)[:, None], eps, u0)
    assert np.all(far * u0 <= 1.0 + 1e-15)  # (equal, to rounding, once it reaches capacity)
    g_hi, _ = capacity_curve(np.full(5, 1e200), eps, u0)  # (slowly where ε is small)
    np.testing.assert_allclose(g_hi * u0, 1.0, rtol=1e-6)  # saturates at capacity
    # the inverse
    back = capacity_inverse(g, eps, np.broadcast_to(u0, g.shape))
    # (where output is within 1e-6 of capacity the inverse is ill-conditioned: a rounding
    # of g moves the price by ~1e-16/(1 − u0 g) relative)
    well = 1.0 - u0 * g > 1e-6
    np.testing.assert_allclose(back[well], np.broadcast_to(r, g.shape)[well], rtol=1e-9)
    assert well.mean() > 0.9
    assert np.all(np.isinf(capacity_inverse(1.001 / u0, eps, u0)))  # beyond capacity


def test_curve_tends_to_isoelastic_as_utilisation_vanishes() -> None:
    eps = np.array([0.3, 1.0, 2.0])
    r = np.geomspace(0.2, 5.0, 30)[:, None]
    iso = r**eps
    errs = []
    for u in (1e-2, 1e-4, 1e-6, 1e-8):
        g, _ = capacity_curve(r, eps, np.full(3, u))
        errs.append(np.max(np.abs(g / iso - 1)))
    assert errs[-1] < 1e-6 and all(b < a for a, b in itertools.pairwise(errs))
    g0, E0 = capacity_curve(r, eps, np.zeros(3))
    np.testing.assert_array_equal(g0, iso)
    np.testing.assert_array_equal(E0, np.broadcast_to(eps, E0.shape))


def test_cost_integral_matches_quadrature_and_the_isoelastic_limit() -> None:
    rng = np.random.default_rng(1)
    for _ in range(12):
        eps, u0 = rng.uniform(0.1, 3.0), rng.uniform(0.02, 0.95)
        S0m, v0 = rng.uniform(1.0, 1e4), rng.uniform(1.0, 1e3)
        S = rng.uniform(0.05, 0.98) * S0m / u0  # anywhere below capacity
        a, b = (1 - u0) / u0, eps / (1 - u0)
        K = S0m / u0

        def price(s: float, a: float = a, b: float = b, K: float = K, v0: float = v0) -> float:
            return v0 * (a * (s / K) / (1 - s / K)) ** (1 / b)

        want, _ = integrate.quad(price, 0.0, S, limit=200, epsabs=0.0, epsrel=1e-11)
        got = capacity_cost(*(np.array([x]) for x in (S, S0m, v0, eps, u0)))[0]
        assert got == pytest.approx(want, rel=1e-9)
    # as u0 → 0: the isoelastic cost p(S) S ε/(1+ε)
    S, S0m, v0, eps = 3.0, 2.0, 5.0, 0.7
    iso = v0 * (S / S0m) ** (1 / eps) * S * eps / (1 + eps)
    tiny = capacity_cost(*(np.array([x]) for x in (S, S0m, v0, eps, 1e-9)))[0]
    assert tiny == pytest.approx(iso, rel=1e-7)


# -- u0 = 0 is today's model, bit for bit ---------------------------------------------------
@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_zero_utilisation_is_bit_identical(engine: str) -> None:
    for cal, inst in (
        every_measure_batch(41, 7, 20),
        (lambda c: (c[0].calibration, c[1]))(every_measure_chain(np.random.default_rng(42))),
    ):
        ref = solve_batch(cal, inst, engine=engine)  # type: ignore[arg-type]
        zero = _with(cal, np.zeros((inst.B, cal.N)))
        assert zero.utilisation is None
        new = solve_batch(zero, inst, engine=engine)  # type: ignore[arg-type]
        np.testing.assert_array_equal(new.u, ref.u)
        for name in STATE:
            np.testing.assert_array_equal(getattr(new.state, name), getattr(ref.state, name))
        np.testing.assert_array_equal(
            producer_surplus_total(zero, inst, new.state),
            producer_surplus_total(cal, inst, ref.state),
        )
    # zero in some regions: those regions' supply is the isoelastic one, bit for bit
    cal, inst = every_measure_batch(43, 6, 10)
    u0 = np.zeros(cal.N)
    u0[1] = 0.7
    z = np.random.default_rng(0).normal(0, 0.3, (inst.B, cal.N))
    u = initial_guess(cal, inst)
    u[:, : cal.N] = z
    a, b = evaluate(cal, inst, u, jacobian=False), evaluate(_with(cal, u0), inst, u, jacobian=False)
    keep = np.arange(cal.N) != 1
    np.testing.assert_array_equal(b.S[:, keep], a.S[:, keep])
    assert not np.allclose(b.S[:, 1], a.S[:, 1])


# -- the market with capacity --------------------------------------------------------------
def test_baseline_replicates_and_base_elasticity_is_eps() -> None:
    rng = np.random.default_rng(44)
    cal = random_market(rng, 8).calibration
    calu = _with(cal, rng.uniform(0.1, 0.9, cal.N))
    inst = InstrumentBuilder(1, cal.t0, cal.x0).build()
    for engine in ("numpy", "compiled"):
        sol = solve_batch(calu, inst, engine=engine)  # type: ignore[arg-type]
        assert sol.converged.all()
        np.testing.assert_allclose(sol.state.X[0], cal.X0, rtol=1e-12)
        np.testing.assert_allclose(sol.state.p[0], cal.p0, rtol=1e-12)
        np.testing.assert_allclose(sol.state.S[0], cal.S0, rtol=1e-12)
    # supply's price elasticity at the base is ε: d ln S / d z by central differences
    h = 1e-6
    Sp = evaluate(calu, inst, np.full((1, cal.N), h), jacobian=False).S[0]
    Sm = evaluate(calu, inst, np.full((1, cal.N), -h), jacobian=False).S[0]
    prod = cal.producer
    elast = (np.log(Sp[prod]) - np.log(Sm[prod])) / (2 * h)
    np.testing.assert_allclose(elast, np.broadcast_to(cal.eps, cal.N)[prod], rtol=1e-7)
    # the zero-shock baseline has zero producer surplus change (same PS as the base point)
    st = sol.state
    base = evaluate(calu, inst, np.zeros((1, cal.N)), jacobian=False)
    np.testing.assert_allclose(
        producer_surplus_total(calu, inst, st), producer_surplus_total(calu, inst, base), rtol=1e-12
    )


def test_producer_surplus_change_is_the_area_left_of_the_supply_curve() -> None:
    """PS(p1) − PS(p0) = ∫_{p0}^{p1} S(p) dp (no support): the cost closed form adds up."""
    rng = np.random.default_rng(45)
    cal = random_market(rng, 5).calibration
    u0 = rng.uniform(0.2, 0.9, cal.N)
    calu = _with(cal, u0)
    inst = InstrumentBuilder(2, cal.t0, cal.x0).build()
    inst.supply_mult[:] = 1.3
    z = np.array([np.zeros(cal.N), rng.uniform(-0.4, 0.8, cal.N)])
    st = evaluate(calu, inst, z, jacobian=False)
    ps = producer_surplus_total(calu, inst, st)
    eps = np.broadcast_to(cal.eps, cal.N)
    for o in np.flatnonzero(cal.producer):
        a, b = (1 - u0[o]) / u0[o], eps[o] / (1 - u0[o])
        S0m = cal.S0[o] * 1.3

        def supply(p: float, o: int = o, a: float = a, b: float = b, S0m: float = S0m) -> float:
            return S0m * (1 + a) / (1 + a * (p / cal.p0[o]) ** (-b))

        area, _ = integrate.quad(supply, st.p[0, o], st.p[1, o], epsabs=0.0, epsrel=1e-12)
        assert ps[1, o] - ps[0, o] == pytest.approx(area, rel=1e-9)


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_demand_boom_near_capacity_converges_below_it(engine: str) -> None:
    rng = np.random.default_rng(46)
    cal = random_market(rng, 7).calibration
    calu = _with(cal, np.full(cal.N, 0.5))
    inst = InstrumentBuilder(3, cal.t0, cal.x0).build()
    inst.demand_mult[1] = 3.0
    inst.demand_mult[2] = 5.0
    sol = solve_batch(calu, inst, engine=engine)  # type: ignore[arg-type]
    assert sol.converged.all()
    K = cal.S0 / 0.5
    prod = cal.producer
    use = sol.state.S[:, prod] / K[prod]
    assert np.all(use < 1.0) and use[2].max() > 0.999
    # prices rise far more than with the isoelastic curve, whose output is unbounded
    iso = solve_batch(cal, inst, engine=engine)  # type: ignore[arg-type]
    assert np.all(sol.state.p[2, prod] > iso.state.p[2, prod])
    assert (iso.state.S[2, prod] > K[prod]).any()


# -- the kernel and the Jacobian -------------------------------------------------------------
@pytest.mark.parametrize(("seed", "n_regions"), [(47, 9), (48, 5)])
def test_kernel_equals_reference_with_capacity(seed: int, n_regions: int) -> None:
    cal, inst = every_measure_batch(seed, n_regions, 60)
    # (up to 0.7: every measure includes public purchases, which a utilisation near one
    # leaves no capacity to serve)
    u0 = np.random.default_rng(seed).uniform(0.0, 0.7, (inst.B, cal.N))
    u0[::5] = 0.0  # rows without capacity in the same batch
    cal = _with(cal, u0)
    assert inst.K > 0 and inst.has_support and inst.has_floor
    ref = solve_batch(cal, inst, engine="numpy")
    new = solve_batch(cal, inst, engine="compiled")
    assert _feasible_converged(ref) > 0.9
    _assert_same(ref, new, inst)
    # with market access as well
    k = np.random.default_rng(seed + 1).uniform(0.5, 3.0, (inst.B, cal.N))
    inst = dataclasses.replace(inst, variety_weight=k, _relative_wedge=None, _access=None)
    ref = solve_batch(cal, inst, engine="numpy")
    new = solve_batch(cal, inst, engine="compiled")
    assert _feasible_converged(ref) > 0.9
    _assert_same(ref, new, inst)


@pytest.mark.parametrize("seed", [49, 50])
def test_kernel_equals_reference_on_chains_with_capacity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    chain, inst = every_measure_chain(rng, n=6, n_scen=40)
    cal = _with(chain.calibration, rng.uniform(0.0, 0.9, chain.calibration.N))
    ref = solve_batch(cal, inst, engine="numpy")
    new = solve_batch(cal, inst, engine="compiled")
    assert _feasible_converged(ref) > 0.9
    _assert_same_chain(ref, new, inst)


def test_jacobian_matches_finite_differences_with_capacity() -> None:
    rng = np.random.default_rng(51)
    cal, inst = every_measure_batch(51, 7, 12)
    err = jacobian_error(_with(cal, rng.uniform(0.1, 0.9, cal.N)), inst, rng)
    assert np.median(err) < 1e-6 and (err < 1e-6).sum() >= inst.B - 2  # (a row at a kink)
    plain = InstrumentBuilder(4, cal.t0, cal.x0).build()  # the plain supply path
    assert np.all(jacobian_error(_with(cal, rng.uniform(0.1, 0.9, cal.N)), plain, rng) < 1e-6)
    chain, cinst = every_measure_chain(rng, n_scen=11)
    ccal = _with(chain.calibration, rng.uniform(0.1, 0.9, (cinst.B, chain.calibration.N)))
    err = jacobian_error(ccal, cinst, rng)
    assert np.median(err) < 1e-6 and (err < 1e-6).sum() >= cinst.B - 2


def test_kernel_first_step_matches_reference_at_random_points() -> None:
    """Off the solution (support kinks, capacity near saturation): the kernel's residuals,
    exported state and first Newton iterate equal the reference's."""
    rng = np.random.default_rng(52)
    chain, inst = every_measure_chain(rng, n=6, n_scen=30)
    cal = _with(chain.calibration, rng.uniform(0.0, 0.95, chain.calibration.N))
    u0 = initial_guess(cal, inst)
    u0[:, : cal.N] += rng.normal(0.0, 0.3, (inst.B, cal.N))
    ref1 = solve_batch(cal, inst, u0=u0, engine="numpy", max_iter=1, fallback=False)
    new1 = solve_batch(cal, inst, u0=u0, engine="compiled", max_iter=1, fallback=False)
    np.testing.assert_array_equal(new1.iterations, ref1.iterations)
    np.testing.assert_allclose(new1.u, ref1.u, rtol=0, atol=1e-12)
    for name in ("F", "S", "p_marginal", "covered", "support"):
        np.testing.assert_allclose(
            getattr(new1.state, name), getattr(ref1.state, name), rtol=1e-12, atol=1e-12
        )


# -- the field survives every path; bad values are refused ---------------------------------
def test_utilisation_is_cut_by_rows_and_stages() -> None:
    cal, inst = every_measure_batch(53, 5, 5)
    u0 = np.random.default_rng(53).uniform(0.1, 0.9, (inst.B, cal.N))
    calu = _with(cal, u0)
    rows = np.array([3, 0])
    np.testing.assert_array_equal(take_calibration(calu, rows).utilisation, u0[rows])
    np.testing.assert_array_equal(calu.with_elasticities(eps=cal.eps).utilisation, u0)
    np.testing.assert_array_equal(calu.block(np.array([1, 3])).utilisation, u0[:, [1, 3]])


def test_bad_utilisation_is_refused() -> None:
    cal = random_market(np.random.default_rng(54), 4).calibration
    with pytest.raises(ValueError, match=r"utilisation\[2\] = 1.0 \(region .*\): .* in \[0, 1\)"):
        _with(cal, [0.5, 0.2, 1.0, 0.1])
    with pytest.raises(ValueError, match="utilisation has shape"):
        _with(cal, [0.5, 0.2])
