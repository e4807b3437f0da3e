"""Investment under price risk (tradepolicy.pathway.investment): theory tests."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from tradepolicy.pathway.investment import (
    Finance,
    PriceProcess,
    ProjectValues,
    Terms,
    black76_call,
    black76_put,
    unit_revenue,
    value_projects,
)

# -- Black-76 --------------------------------------------------------------------------------


def test_black76_hull_futures_option_example() -> None:
    # Hull, Options, Futures and Other Derivatives: a European put on a futures price,
    # F = K = 20, r = 9 %, σ = 25 %, T = 4 months: 1.12
    T = 4 / 12
    put = black76_put(20.0, 20.0, 0.25 * math.sqrt(T), math.exp(-0.09 * T))
    assert float(put) == pytest.approx(1.12, abs=0.005)


def test_put_call_parity() -> None:
    rng = np.random.default_rng(1)
    F, K = rng.uniform(10, 200, 500), rng.uniform(10, 200, 500)
    s, df = rng.uniform(0.01, 1.5, 500), rng.uniform(0.5, 1.0, 500)
    np.testing.assert_allclose(
        black76_call(F, K, s, df) - black76_put(F, K, s, df), df * (F - K), rtol=0, atol=1e-10
    )


def test_black76_without_volatility_is_the_intrinsic_value() -> None:
    F = np.array([80.0, 100.0, 120.0])
    assert black76_put(F, 100.0, 0.0).tolist() == [20.0, 0.0, 0.0]
    assert black76_call(F, 100.0, 0.0).tolist() == [0.0, 0.0, 20.0]


# -- unit revenue ----------------------------------------------------------------------------


def test_expected_top_up_equals_black76_put() -> None:
    F, K, s = np.meshgrid([50.0, 100.0, 140.0], [60.0, 100.0, 130.0], [0.05, 0.3, 0.9])
    rev = unit_revenue(F, s, Terms(strike=K, covered_share=1.0))
    np.testing.assert_allclose(rev.policy["subsidy"], black76_put(F, K, s), rtol=1e-10)
    # covered share scales it; the mean is the forward plus the top-up
    half = unit_revenue(F, s, Terms(strike=K, covered_share=0.5))
    np.testing.assert_allclose(half.policy["subsidy"], 0.5 * black76_put(F, K, s), rtol=1e-10)
    np.testing.assert_allclose(half.mean, F + 0.5 * black76_put(F, K, s), rtol=1e-12)


def test_floor_value_is_a_put_and_a_two_sided_contract_is_a_forward_at_the_strike() -> None:
    F, s = np.array([70.0, 100.0, 130.0]), 0.4
    fl = unit_revenue(F, s, Terms(floor=100.0))
    np.testing.assert_allclose(fl.policy["floor"], black76_put(F, 100.0, s), rtol=1e-10)
    cfd = unit_revenue(
        F, s, Terms(strike=100.0, covered_share=1.0, upside_threshold=100.0, upside_share=1.0)
    )
    np.testing.assert_allclose(cfd.mean, 100.0, rtol=1e-12)
    np.testing.assert_allclose(cfd.sd, 0.0, atol=1e-6)
    np.testing.assert_allclose(cfd.policy["subsidy"], 100.0 - F, rtol=1e-10)  # put − call


def test_lognormal_revenue_without_policy() -> None:
    rev = unit_revenue(100.0, 0.3, Terms())
    assert float(rev.mean) == pytest.approx(100.0, rel=1e-12)
    assert float(rev.sd) == pytest.approx(100.0 * math.sqrt(math.expm1(0.09)), rel=1e-10)
    assert all(float(v) == 0.0 for v in rev.policy.values())


COMBO = {
    "floor": 80.0,
    "strike": 110.0,
    "covered_share": 0.7,
    "upside_threshold": 150.0,
    "upside_share": 0.5,
    "offtake_price": 120.0,
    "offtake_share": 0.2,
}


def _revenue_at(P: float, t: dict[str, float]) -> float:
    Q = max(P, t["floor"])
    top = max(t["strike"] - Q, 0.0) - t["upside_share"] * max(Q - t["upside_threshold"], 0.0)
    return Q + t["covered_share"] * top + t["offtake_share"] * (t["offtake_price"] - Q)


def _quad_moment(n: int, F: float, s: float) -> float:
    """``E[R(P)ⁿ]`` by scipy quad over ln P, split at the kinks (12 sd either side)."""
    m = math.log(F) - 0.5 * s * s
    lo, hi = m - 12 * s, m + 12 * s

    def f(x: float) -> float:
        dens = math.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
        return _revenue_at(math.exp(x), COMBO) ** n * dens

    pts = [k for k in (math.log(v) for v in (80.0, 110.0, 150.0)) if lo < k < hi]
    return integrate.quad(f, lo, hi, points=pts, epsabs=0, epsrel=1e-13, limit=400)[0]


def test_revenue_moments_equal_numerical_integration() -> None:
    """An independent integral over ln P (scipy quad, split at the kinks)."""
    for F, s in [(100.0, 0.3), (60.0, 0.8), (170.0, 0.1)]:
        rev = unit_revenue(F, s, Terms(**COMBO))
        m1, m2 = _quad_moment(1, F, s), _quad_moment(2, F, s)
        assert float(rev.mean) == pytest.approx(m1, rel=1e-9)
        assert float(rev.sd) == pytest.approx(math.sqrt(m2 - m1 * m1), rel=1e-7)
        # adding-up: the mean is the forward plus every policy's expected flow
        assert float(rev.mean) == pytest.approx(F + sum(map(float, rev.policy.values())), rel=1e-12)


def test_revenue_moments_agree_with_monte_carlo() -> None:
    rng = np.random.default_rng(7)
    F, s, n = 100.0, 0.35, 400_000
    P = F * np.exp(-0.5 * s * s + s * rng.standard_normal(n))
    t = COMBO
    Q = np.maximum(P, t["floor"])
    claw = t["upside_share"] * np.maximum(Q - t["upside_threshold"], 0)
    top = np.maximum(t["strike"] - Q, 0) - claw
    R = Q + t["covered_share"] * top + t["offtake_share"] * (t["offtake_price"] - Q)
    rev = unit_revenue(F, s, Terms(**COMBO))
    se = R.std() / math.sqrt(n)
    assert abs(float(rev.mean) - R.mean()) < 4 * se
    assert float(rev.sd) == pytest.approx(R.std(), rel=0.01)
    sub = t["covered_share"] * top
    assert abs(float(rev.policy["subsidy"]) - sub.mean()) < 4 * sub.std() / math.sqrt(n)


def test_a_floor_or_strike_raises_the_mean_and_lowers_the_sd() -> None:
    F, s = 100.0, 0.4
    base = unit_revenue(F, s, Terms())
    levels = np.linspace(20.0, 200.0, 40)
    for name, extra in (("floor", {}), ("strike", {"covered_share": 0.6})):
        rev = unit_revenue(F, s, Terms(**{name: levels}, **extra))  # type: ignore[arg-type]
        assert np.all(rev.mean > base.mean) and np.all(rev.sd < base.sd), name
        assert np.all(np.diff(rev.mean) >= 0), name  # higher never lowers the mean
        assert np.all(np.diff(rev.sd) <= 1e-9), name


# -- price process ---------------------------------------------------------------------------


def test_price_process_log_sd_and_paths() -> None:
    pp = PriceProcess(phi=0.6, sigma=0.3)
    h = np.arange(8)
    direct = [0.3 * math.sqrt(sum(0.36**k for k in range(n))) for n in h]
    np.testing.assert_allclose(pp.log_sd(h), direct, rtol=1e-12)
    rw = PriceProcess(phi=1.0, sigma=0.3)
    np.testing.assert_allclose(rw.log_sd(h), 0.3 * np.sqrt(h), rtol=1e-12)
    near = PriceProcess(phi=1 - 1e-9, sigma=0.3)
    np.testing.assert_allclose(near.log_sd(h), 0.3 * np.sqrt(h), rtol=1e-6)
    # the median path decays to the long-run price at rate φ; the mean is exp(s²/2) above it
    med = pp.expected(200.0, 100.0, h)
    np.testing.assert_allclose(np.log(med / 100.0), 0.6**h * math.log(2.0), rtol=1e-12)
    np.testing.assert_allclose(pp.forward(200.0, 100.0, h), med * np.exp(pp.log_sd(h) ** 2 / 2))


def test_price_process_matches_simulated_ar1() -> None:
    pp = PriceProcess(phi=0.5, sigma=0.25)
    rng = np.random.default_rng(3)
    x = np.full(200_000, math.log(150.0))
    lr = math.log(100.0)
    for _ in range(4):
        x = lr + pp.phi * (x - lr) + pp.sigma * rng.standard_normal(x.size)
    assert float(np.exp(x).mean()) == pytest.approx(float(pp.forward(150.0, 100.0, 4)), rel=0.005)
    assert float(x.std()) == pytest.approx(float(pp.log_sd(4)), rel=0.01)


def test_price_process_from_the_shipped_estimate() -> None:
    root = Path(__file__).resolve().parents[1]
    pp = PriceProcess.from_estimate(root / "calibration/estimates/ndpr_oxide/price_process.nc")
    assert 0 < pp.phi < 1 and pp.sigma > 0 and "AR(1)" in pp.note


def test_price_process_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="phi"):
        PriceProcess(phi=1.2, sigma=0.1)
    with pytest.raises(ValueError, match="sigma"):
        PriceProcess(phi=0.5, sigma=-0.1)


# -- project values --------------------------------------------------------------------------

H = 30
FIN = Finance()


def _project(**kw):
    args = dict(
        capacity=5000.0,
        capex=1.0e9,
        unit_cost=30_000.0,
        lead_time=3,
        forward=np.full(H, 60_000.0),
        log_sd=PriceProcess(0.45, 0.28).log_sd(np.arange(H)),
        finance=FIN,
        public_rate=0.03,
        year=2025,
        phi=0.45,
    )
    args.update(kw)
    return value_projects(**args)


def _volumes(lead: int, capacity: float, fin: Finance) -> np.ndarray:
    h = np.arange(lead + fin.life)
    k = h - lead
    ramp = [*fin.ramp_up, *[1.0] * fin.life]
    return np.array([capacity * ramp[j] if 0 <= j < fin.life else 0.0 for j in k])


def _ext(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` over ``n`` years, the last value kept (as value_projects reads a short path)."""
    return x[:n] if x.size >= n else np.concatenate([x, np.full(n - x.size, x[-1])])


def test_cfd_cost_with_fixed_prices_is_the_gap_and_otherwise_the_put() -> None:
    K, F = 70_000.0, np.linspace(50_000.0, 80_000.0, H)
    vol = _volumes(3, 5000.0, FIN)
    disc = 1.03 ** -np.arange(vol.size)
    Fx = _ext(F, vol.size)
    terms = Terms(strike=K, covered_share=1.0)
    fixed = _project(forward=F, log_sd=np.zeros(H), terms=terms)
    gap = (vol * np.maximum(K - Fx, 0) * disc).sum()
    assert float(fixed.subsidy) == pytest.approx(gap, rel=1e-12)
    s = PriceProcess(0.45, 0.28).log_sd(np.arange(H))
    risky = _project(forward=F, log_sd=s, terms=terms)
    sx = _ext(s, vol.size)
    want = (vol * black76_put(Fx, K, sx) * disc).sum()
    assert float(risky.subsidy) == pytest.approx(want, rel=1e-10)
    assert float(risky.subsidy) > float(fixed.subsidy)  # the option value of the put


def test_zero_policy_gives_exactly_zero_policy_flows() -> None:
    rng = np.random.default_rng(5)
    v = _project(
        capacity=rng.uniform(100, 9000, 50),
        unit_cost=rng.uniform(1e4, 9e4, 50),
        lead_time=rng.integers(0, 6, 50),
        terms=Terms(),
    )
    for name in ProjectValues.POLICY:
        assert np.all(getattr(v, name) == 0.0), name
    np.testing.assert_array_equal(v.discount_rate, v.private_rate)


def test_a_policy_ending_before_the_project_runs_changes_nothing() -> None:
    none = _project()
    ended = _project(terms=Terms(strike=90_000.0, covered_share=1.0, subsidy_end=2027))
    assert float(ended.subsidy) == 0.0 and float(ended.npv) == float(none.npv)
    later = _project(terms=Terms(strike=90_000.0, covered_share=1.0, subsidy_end=2032))
    forever = _project(terms=Terms(strike=90_000.0, covered_share=1.0))
    assert 0 < float(later.subsidy) < float(forever.subsidy)


def test_large_positive_npv_is_built_and_large_negative_is_not() -> None:
    rich = _project(unit_cost=5_000.0, capex=1e8)
    poor = _project(unit_cost=200_000.0, capex=1e9)  # operating losses on top of capex
    assert float(rich.probability) > 1 - 1e-9 and float(poor.probability) < 1e-9


def test_revenue_stabilisation_lowers_the_discount_rate() -> None:
    base = _project()
    cfd = _project(
        terms=Terms(strike=60_000.0, covered_share=1.0, upside_threshold=60_000.0, upside_share=1.0)
    )
    floor = _project(terms=Terms(floor=55_000.0))
    assert float(cfd.revenue_cv) < 1e-6 < float(base.revenue_cv)
    assert float(cfd.discount_rate) == pytest.approx(FIN.risk_free + FIN.risk_premium, abs=1e-7)
    assert float(floor.discount_rate) < float(base.discount_rate)
    expected = FIN.risk_free + FIN.risk_premium + FIN.volatility_premium * float(base.revenue_cv)
    assert float(base.discount_rate) == pytest.approx(expected, rel=1e-12)


def test_grant_guarantee_and_equity_each_raise_the_probability() -> None:
    rng = np.random.default_rng(11)
    n = 400
    kw = dict(
        capacity=rng.uniform(500, 9000, n),
        capex=rng.uniform(1e8, 3e9, n),
        unit_cost=rng.uniform(5e3, 6e4, n),  # at most the price: margins >= 0
        lead_time=rng.integers(0, 6, n),
    )
    base = _project(**kw)
    for terms in (
        Terms(grant_share=rng.uniform(0, 1, n)),
        Terms(grant_amount=rng.uniform(0, 5e8, n)),
        Terms(guarantee_coverage=rng.uniform(0, 1, n), guarantee_fee=rng.uniform(0, 0.1, n)),
        Terms(equity_share=rng.uniform(0, 1, n)),
    ):
        v = _project(terms=terms, **kw)
        assert np.all(v.probability >= base.probability), terms
        assert np.any(v.probability > base.probability), terms


def test_guarantee_flows() -> None:
    kw = dict(unit_cost=50_000.0, capex=2e9)
    g = _project(terms=Terms(guarantee_coverage=0.8, guarantee_fee=0.01), **kw)
    d = FIN.debt_share
    assert float(g.guarantee_exposure) == pytest.approx(0.8 * d * 2e9, rel=1e-12)
    assert 0 < float(g.guarantee_pd) < 1
    want = float(g.guarantee_pd) * FIN.loss_given_default * 0.8 * d * 2e9 / 1.03**3
    assert float(g.guarantee_loss) == pytest.approx(want, rel=1e-12)
    assert float(g.guarantee_fees) > 0
    assert float(g.discount_rate) < float(g.private_rate)
    # a fee dearer than the project's own rate: the guarantee is not taken
    dear = _project(terms=Terms(guarantee_coverage=0.8, guarantee_fee=0.5), **kw)
    assert float(dear.guarantee_exposure) == 0.0 and float(dear.guarantee_loss) == 0.0


def test_default_probability_rises_with_debt_and_price_risk() -> None:
    low = _project(unit_cost=45_000.0, capex=1e9, log_sd=np.full(H, 0.1))
    high = _project(unit_cost=45_000.0, capex=1e9, log_sd=np.full(H, 0.6))
    more_debt = _project(
        unit_cost=45_000.0, capex=1e9, log_sd=np.full(H, 0.1), finance=Finance(debt_share=0.7)
    )
    assert float(low.guarantee_pd) < float(high.guarantee_pd)
    assert float(low.guarantee_pd) < float(more_debt.guarantee_pd)


def test_grant_and_equity_budget_flows() -> None:
    v = _project(terms=Terms(grant_share=0.25, equity_share=0.4))
    assert float(v.grant) == pytest.approx(0.25e9, rel=1e-12)
    assert float(v.equity_outlay) == pytest.approx((1 - FIN.debt_share) * 0.4 * 0.75e9, rel=1e-12)
    assert float(v.equity_returns) > 0
    capped = _project(terms=Terms(grant_share=0.8, grant_amount=5e8))
    assert float(capped.grant) == pytest.approx(1e9, rel=1e-12)  # never more than the capex


def test_bad_project_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="capex"):
        _project(capex=0.0)
    with pytest.raises(ValueError, match="lead_time"):
        _project(lead_time=2.5)
    with pytest.raises(ValueError, match="Finance: life"):
        Finance(life=0)


@st.composite
def _projects(draw):
    F = draw(st.floats(20_000, 150_000))
    return (
        dict(
            capacity=draw(st.floats(100, 10_000)),
            capex=draw(st.floats(1e7, 3e9)),
            unit_cost=draw(st.floats(0, 1.0)) * F,  # margins >= 0 (see docs/investment.md)
            lead_time=draw(st.integers(0, 6)),
            forward=np.full(H, F),
            log_sd=np.full(H, draw(st.floats(0.0, 0.9))),
        ),
        draw(st.floats(0.1, 1.0)),
        draw(st.floats(0.0, 1.0)),
    )


@settings(max_examples=150, deadline=None)
@given(_projects(), st.floats(1_000, 200_000), st.floats(1_000, 200_000))
def test_a_higher_floor_or_strike_never_lowers_the_decision_probability(p, a, b) -> None:
    args, covered, theta = p
    lo, hi = min(a, b), max(a, b)
    for make in (
        lambda x: Terms(floor=x),
        lambda x: Terms(strike=x, covered_share=covered),
        # a collar whose claw-back threshold stays put (raising the threshold with the strike
        # would also loosen the claw-back: more revenue risk, a higher risk premium)
        lambda x: Terms(
            strike=x, covered_share=covered, upside_threshold=2 * hi, upside_share=theta
        ),
        lambda x: Terms(floor=0.8 * x, strike=x, covered_share=covered),
    ):
        v_lo, v_hi = _project(terms=make(lo), **args), _project(terms=make(hi), **args)
        assert float(v_hi.probability) >= float(v_lo.probability) - 1e-12
        assert float(v_hi.npv) >= float(v_lo.npv) - 1e-6 * abs(float(v_lo.npv))


def test_batch_shapes_and_chunks_give_the_same_values() -> None:
    rng = np.random.default_rng(2)
    rows, projects = 3000, 4  # more than one chunk
    F = rng.uniform(4e4, 8e4, (rows, 1, H))
    cap = rng.uniform(1e3, 6e3, projects)
    strike = rng.uniform(5e4, 7e4, (rows, 1))
    v = _project(forward=F, capacity=cap, terms=Terms(strike=strike, covered_share=1.0))
    assert v.npv.shape == (rows, projects)
    for r, j in [(0, 0), (1234, 2), (2999, 3)]:
        alone = _project(
            forward=F[r, 0], capacity=cap[j], terms=Terms(strike=strike[r, 0], covered_share=1.0)
        )
        for name in ("npv", "probability", "subsidy", "guarantee_pd", "revenue_cv"):
            assert getattr(v, name)[r, j] == pytest.approx(float(getattr(alone, name)), rel=1e-12)


def test_finance_table_lists_every_parameter_with_a_source() -> None:
    rows = Finance.table()
    names = {r["parameter"] for r in rows}
    from dataclasses import fields

    assert names == {f.name for f in fields(Finance)}
    assert all(r["source"] and r["range"] for r in rows)
