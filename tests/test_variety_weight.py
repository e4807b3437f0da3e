"""Market access that grows with capacity: ``Instruments.variety_weight`` (docs/model.md,
"Market access and capacity").

Origin o's Armington share parameters are multiplied by ``k_o`` and renormalised per
destination so that the composite price at base landed prices is unchanged. Theory: k = 1
changes nothing (bit for bit), a common k changes nothing, at base prices the value shares
are the renormalised weights, capacity growing together with access raises the grower's
output and (weakly) lowers every composite price, and the compiled kernel, the reference
and the Jacobian agree.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders import STATE, every_measure_batch, jacobian_error
from chains import every_measure_chain
from test_kernel import _assert_same, _assert_same_chain

from tradepolicy.chain import stack_instruments
from tradepolicy.model.instruments import InstrumentBuilder, Instruments
from tradepolicy.model.levels import Calibration, evaluate
from tradepolicy.solver.newton import solve_batch
from tradepolicy.testing import random_market


def _with_weights(inst: Instruments, k: np.ndarray) -> Instruments:
    """The same instruments with variety weights ``k`` (a fresh object: no cached flags)."""
    return Instruments(
        **{
            **{n: getattr(inst, n) for n in inst.__dataclass_fields__ if not n.startswith("_")},
            "variety_weight": np.array(k, dtype=float),
        }
    )


def _access_reference(w0: np.ndarray, k: np.ndarray) -> np.ndarray:
    """w̃_od = w0_od k_o Σ_o' w0_o'd / Σ_o' w0_o'd k_o', written out cell by cell."""
    B, N = k.shape
    out = np.empty((B, N, N))
    for b in range(B):
        for d in range(N):
            tot = sum(w0[o, d] * k[b, o] for o in range(N))
            base = sum(w0[o, d] for o in range(N))
            for o in range(N):
                out[b, o, d] = w0[o, d] * k[b, o] * base / tot if tot > 0 else w0[o, d]
    return out


def _solve(cal: Calibration, inst: Instruments, engine: str):
    return solve_batch(cal, inst, engine=engine)  # type: ignore[arg-type]


# -- k = 1 and a common k change nothing ----------------------------------------------------
@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_unit_weights_are_bit_identical_on_markets_and_chains(engine: str) -> None:
    for cal, inst in (
        every_measure_batch(21, 7, 20),
        (lambda c: (c[0].calibration, c[1]))(every_measure_chain(np.random.default_rng(22))),
    ):
        assert not inst.has_access and np.all(inst.variety_weight == 1.0)
        ref = _solve(cal, inst, engine)
        ones = _with_weights(inst, np.ones((inst.B, cal.N)))
        new = _solve(cal, ones, engine)
        np.testing.assert_array_equal(new.u, ref.u)
        np.testing.assert_array_equal(new.iterations, ref.iterations)
        for name in STATE:
            np.testing.assert_array_equal(getattr(new.state, name), getattr(ref.state, name))
        # the access path itself, forced on with k = 1, agrees to rounding
        forced = _with_weights(inst, np.ones((inst.B, cal.N)))
        forced.__dict__["has_access"] = True
        again = _solve(cal, forced, engine)
        np.testing.assert_array_equal(again.converged, ref.converged)
        ok = ref.converged
        np.testing.assert_allclose(again.state.p[ok], ref.state.p[ok], rtol=1e-12)
        np.testing.assert_allclose(again.state.X[ok], ref.state.X[ok], rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_a_common_weight_changes_nothing(engine: str) -> None:
    cal, inst = every_measure_batch(23, 6, 15)
    ref = _solve(cal, inst, engine)
    scaled = _solve(cal, _with_weights(inst, np.full((inst.B, cal.N), 3.7)), engine)
    ok = ref.converged & scaled.converged
    assert ok.mean() > 0.9
    for name in ("p", "P", "X", "S"):
        np.testing.assert_allclose(
            getattr(scaled.state, name)[ok], getattr(ref.state, name)[ok], rtol=1e-9, atol=1e-9
        )


# -- what the weights mean -----------------------------------------------------------------
def test_base_prices_keep_the_composite_price_and_value_shares_are_the_weights() -> None:
    rng = np.random.default_rng(24)
    cal = random_market(rng, 8).calibration
    B = 6
    k = rng.uniform(0.2, 8.0, (B, cal.N))
    inst = InstrumentBuilder(B, cal.t0, cal.x0).build()
    inst.variety_weight = k
    st = evaluate(cal, inst, np.zeros((B, cal.N)), jacobian=False)
    want = _access_reference(cal.w0, k)
    np.testing.assert_allclose(inst.access_weights(cal.w0, cal.w0sum), want, rtol=1e-13)
    c = cal.consumer
    np.testing.assert_allclose(st.P[:, c], np.broadcast_to(cal.P0, (B, cal.N))[:, c], rtol=1e-13)
    value = st.q * st.X
    share = value / value.sum(axis=1, keepdims=True)[:, :, :]
    share = np.where(c[None, None, :], share, 0.0)
    wt = want / np.where(c, want.sum(axis=1), 1.0)[:, None, :]
    np.testing.assert_allclose(share, np.where(c[None, None, :], wt, 0.0), atol=1e-13)
    # a grown origin sells more than its base flows where it sold, exactly as the weights say
    o = int(np.argmax(k[0]))
    sells = cal.X0[o] > 0
    assert np.all(st.X[0, o, sells] > cal.X0[o, sells])


@pytest.mark.parametrize("seed", [25, 26, 27])
def test_capacity_with_access_raises_output_and_lowers_composite_prices(seed: int) -> None:
    """A small supplier's capacity and access ×7: its output and sales rise (more than
    with capacity alone, which it can sell only by cutting its price), every composite
    price falls weakly."""
    rng = np.random.default_rng(seed)
    cal = random_market(rng, 7).calibration
    o = int(np.argmin(np.where(cal.producer, cal.S0, np.inf)))
    inst = InstrumentBuilder(3, cal.t0, cal.x0).build()
    inst.supply_mult[1:, o] = 7.0  # rows 1 and 2: capacity ×7
    inst.variety_weight[2, o] = 7.0  # row 2: access ×7 too
    for engine in ("numpy", "compiled"):
        sol = _solve(cal, inst, engine)
        assert sol.converged.all()
        S, p, P, X = sol.state.S, sol.state.p, sol.state.P, sol.state.X
        base, cap_only, both = 0, 1, 2
        assert S[both, o] > S[base, o] and S[both, o] > S[cap_only, o]
        assert X[both, o].sum() > X[cap_only, o].sum() > X[base, o].sum()
        assert p[both, o] > p[cap_only, o]  # a smaller price cut to sell the new output
        c = cal.consumer
        assert np.all(P[both, c] <= P[base, c] * (1 + 1e-12))
        assert np.all(p[both] <= p[base] * (1 + 1e-12))


# -- the kernel and the Jacobian -------------------------------------------------------------
@pytest.mark.parametrize(("seed", "n_regions"), [(31, 9), (32, 5)])
def test_kernel_equals_reference_with_random_weights(seed: int, n_regions: int) -> None:
    cal, inst = every_measure_batch(seed, n_regions, 60)
    k = np.random.default_rng(seed).uniform(0.3, 4.0, (inst.B, cal.N))
    k[::4] = 1.0  # rows without access in the same batch
    inst = _with_weights(inst, k)
    assert inst.K > 0 and inst.has_support and inst.has_floor and inst.has_ban
    ref = _solve(cal, inst, "numpy")
    new = _solve(cal, inst, "compiled")
    assert ref.converged.mean() > 0.9
    _assert_same(ref, new, inst)


@pytest.mark.parametrize("seed", [33, 34])
def test_kernel_equals_reference_on_chains_with_random_weights(seed: int) -> None:
    rng = np.random.default_rng(seed)
    chain, inst = every_measure_chain(rng, n=6, n_scen=40)
    cal = chain.calibration
    inst = _with_weights(inst, rng.uniform(0.3, 4.0, (inst.B, cal.N)))
    assert inst.K > 0 and inst.has_support
    ref = _solve(cal, inst, "numpy")
    new = _solve(cal, inst, "compiled")
    assert ref.converged.mean() > 0.9
    _assert_same_chain(ref, new, inst)


def test_jacobian_matches_finite_differences_with_weights() -> None:
    rng = np.random.default_rng(35)
    cal, inst = every_measure_batch(35, 7, 12)
    inst = _with_weights(inst, rng.uniform(0.3, 4.0, (inst.B, cal.N)))
    err = jacobian_error(cal, inst, rng)
    assert np.median(err) < 1e-6 and (err < 1e-6).sum() >= inst.B - 2  # (a row at a kink)
    chain, cinst = every_measure_chain(rng, n_scen=11)
    cinst = _with_weights(cinst, rng.uniform(0.3, 4.0, (cinst.B, chain.calibration.N)))
    err = jacobian_error(chain.calibration, cinst, rng)
    assert np.median(err) < 1e-6 and (err < 1e-6).sum() >= cinst.B - 2


# -- the field survives every path ---------------------------------------------------------
def test_weights_survive_take_trim_and_stacking() -> None:
    cal, inst = every_measure_batch(36, 5, 6)
    k = np.random.default_rng(36).uniform(0.5, 2.0, (inst.B, cal.N))
    inst = _with_weights(inst, k)
    rows = np.array([4, 1])
    np.testing.assert_array_equal(inst.take(rows).variety_weight, k[rows])
    np.testing.assert_array_equal(inst.take(rows, model_only=True).variety_weight, k[rows])
    assert inst.take(rows, model_only=True, pairs=1).has_access
    np.testing.assert_array_equal(inst.trim(1).variety_weight, k)
    full = inst.access_weights(cal.w0, cal.w0sum)
    np.testing.assert_array_equal(inst.take(rows).access_weights(cal.w0, cal.w0sum), full[rows])
    built = InstrumentBuilder(3, cal.t0, cal.x0)
    built.variety_weight[1, 2] = 5.0
    out = built.build()
    assert out.has_access and out.variety_weight[1, 2] == 5.0
    stacked, _ = stack_instruments([inst, inst], (np.arange(5), np.arange(5)), 5)
    np.testing.assert_array_equal(stacked.variety_weight, np.concatenate([k, k], axis=1))


def test_bad_weights_are_refused() -> None:
    cal, inst = every_measure_batch(37, 4, 2)
    k = np.ones((inst.B, cal.N))
    k[1, 2] = -1.0
    with pytest.raises(ValueError, match=r"variety_weight\[1, 2\] = -1.0.*finite number >= 0"):
        _with_weights(inst, k).access_weights(cal.w0, cal.w0sum)
    with pytest.raises(ValueError, match="variety_weight has shape"):
        _with_weights(inst, np.ones((1, cal.N))).access_weights(cal.w0, cal.w0sum)
