"""Investment decisions under price risk, with every policy cash flow valued explicitly.

A pipeline project decides in year ``t`` whether to invest. Its value uses the expected
producer-price path of its region and stage, the estimated price process (an AR(1) on log
real prices) and the policy terms it faces: a price floor (the protected price
``max(P, floor)``), a price-gap subsidy (a put on the price distribution, with an optional
claw-back), an offtake share sold at a contract price, a capex grant, a loan guarantee
(cheaper debt) and public equity (capital at the public discount rate). The private discount
rate rises with the coefficient of variation of unit revenue, so stabilising revenue lowers
it. The probability of a final investment decision is ``Φ(NPV / (s · capex))``.

Price convention: the price ``P`` of a future year is lognormal with **mean** ``F`` (the
forward, as in Black-76) and total log standard deviation ``s``:
``ln P ~ N(ln F − s²/2, s²)``. :meth:`PriceProcess.expected` gives the **median** path of
the AR(1); :meth:`PriceProcess.forward` the mean (median times ``exp(s²/2)``), which is what
:func:`value_projects` takes.

Unit revenue is a piecewise-linear function of ``P`` (kinks at the floor, the strike and the
claw-back threshold), so its mean and variance are sums of lognormal partial moments
``E[Pⁿ·1{a < P < b}]`` over the segments between kinks: exact (closed form, to round-off),
not an approximation. Gauss–Hermite quadrature over ``ln P`` is not used: the kinks make it
converge slowly (about 0.1–2 % error on a put with 60 to 200 nodes).

All money is in one currency unit (e.g. USD): prices and unit costs per tonne, capex per
project. Rates are real (prices are real). Every formula is in ``docs/investment.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import ndtr

if TYPE_CHECKING:
    from tradepolicy.calibration.estimation import Estimate
    from tradepolicy.measures.base import Measure

log = logging.getLogger(__name__)

#: a log sd below this is read as 0 (a known price; the error is of order s²)
_S_TINY = 1e-12
#: batch elements valued at once (bounds memory: arrays are batch × years × segments)
_CHUNK = 8192


# -- the price process ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceProcess:
    """AR(1) on log real prices: ``ln p_{t+1} − μ = φ (ln p_t − μ) + e``, ``e ~ N(0, σ²)``.

    Parameters
    ----------
    phi : float
        Persistence, in ``[0, 1]`` (1: a random walk).
    sigma : float
        Standard deviation of the annual innovation of ``ln p`` (≥ 0).
    note : str
        How the parameters were obtained (e.g. an estimate read as a random walk).
    """

    phi: float
    sigma: float
    note: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.phi <= 1.0:
            raise ValueError(f"phi: {self.phi} is not in [0, 1] (allowed: 0 <= phi <= 1)")
        if not self.sigma >= 0.0:
            raise ValueError(f"sigma: {self.sigma} is not >= 0")

    def log_sd(self, h: Any) -> np.ndarray:
        """Standard deviation of ``ln p_{t+h}`` given ``ln p_t``.

        ``σ·sqrt((1 − φ^{2h}) / (1 − φ²))``, which tends to ``σ·√h`` as ``φ → 1``.
        """
        h = np.asarray(h, dtype=float)
        if np.any(h < 0):
            raise ValueError("h: horizons must be >= 0")
        phi2 = self.phi**2
        if 1.0 - phi2 < 1e-12:
            ratio = h
        else:
            ratio = -np.expm1(h * np.log(phi2)) / (1.0 - phi2) if phi2 > 0 else np.minimum(h, 1.0)
        return np.asarray(self.sigma * np.sqrt(ratio))

    def expected(self, p_now: Any, p_long_run: Any, h: Any) -> np.ndarray:
        """The **median** of ``p_{t+h}``: ``exp(ln p_lr + φ^h (ln p_now − ln p_lr))``."""
        h = np.asarray(h, dtype=float)
        lr = np.log(np.asarray(p_long_run, dtype=float))
        return np.exp(lr + self.phi**h * (np.log(np.asarray(p_now, dtype=float)) - lr))

    def forward(self, p_now: Any, p_long_run: Any, h: Any) -> np.ndarray:
        """The **mean** of ``p_{t+h}`` (the Black-76 forward): the median times
        ``exp(s²/2)`` with ``s`` = :meth:`log_sd`."""
        return self.expected(p_now, p_long_run, h) * np.exp(0.5 * self.log_sd(h) ** 2)

    @classmethod
    def from_estimate(cls, estimate: Estimate | str | Path) -> PriceProcess:
        """The process of a :func:`~tradepolicy.calibration.estimation.fit_price_process`
        estimate (an :class:`Estimate` or the path of its netCDF file).

        An estimated ``φ`` above 1 (an explosive process, found on short samples) is read as a
        random walk (``φ = 1``) and a negative one as 0; :attr:`note` says so.
        """
        from tradepolicy.calibration.estimation import Estimate

        if not isinstance(estimate, Estimate):
            import xarray as xr

            with xr.open_dataset(estimate) as ds:
                estimate = Estimate.from_dataset(ds.load())
        lag = [k for k in estimate.params.index if k.endswith(".L1")]
        if len(lag) != 1 or "sigma" not in estimate.extra:
            raise ValueError(
                f"{estimate.name}: not an AR(1) price process (needs one '.L1' parameter "
                "and extra['sigma'])"
            )
        phi_hat = float(estimate.params[lag[0]])
        phi = min(max(phi_hat, 0.0), 1.0)
        note = f"AR(1) on log real prices, {estimate.sample}"
        if phi != phi_hat:
            note += f"; estimated phi {phi_hat:.3g} outside [0, 1], read as {phi:g}"
            log.info("%s: %s", estimate.name, note)
        return cls(phi=phi, sigma=float(estimate.extra["sigma"]), note=note)


# -- Black-76 ------------------------------------------------------------------------------------


def _d12(F: np.ndarray, K: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (np.log(F / K) + 0.5 * s * s) / s
    return d1, d1 - s


def black76_put(F: Any, K: Any, s: Any, df: Any = 1.0) -> np.ndarray:
    """Black-76 put ``df·(K·Φ(−d2) − F·Φ(−d1))``, ``d1 = (ln(F/K) + s²/2)/s``, ``d2 = d1 − s``.

    ``s`` is the total log standard deviation (``σ√T``); ``s = 0`` gives ``df·max(0, K − F)``.
    """
    F, K, s, df = (np.asarray(x, dtype=float) for x in (F, K, s, df))
    d1, d2 = _d12(F, K, s)
    value = K * ndtr(-d2) - F * ndtr(-d1)
    return np.asarray(df * np.where(s > 0, value, np.maximum(K - F, 0.0)))


def black76_call(F: Any, K: Any, s: Any, df: Any = 1.0) -> np.ndarray:
    """Black-76 call ``df·(F·Φ(d1) − K·Φ(d2))`` (see :func:`black76_put`)."""
    F, K, s, df = (np.asarray(x, dtype=float) for x in (F, K, s, df))
    d1, d2 = _d12(F, K, s)
    value = F * ndtr(d1) - K * ndtr(d2)
    return np.asarray(df * np.where(s > 0, value, np.maximum(F - K, 0.0)))


# -- financing assumptions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Finance:
    """Financing assumptions of pipeline projects (real rates, per year).

    Parameters
    ----------
    risk_free : float
        Real risk-free rate. Default 0.02: US 10-year TIPS real yields were about 1.5–2.5 %
        in 2023–2024 (U.S. Treasury, daily par real yield curve rates); range 0.005–0.025.
    risk_premium : float
        Base risk premium π0 over ``risk_free`` before the volatility premium. Default 0.05,
        so ``risk_free + π0`` = 7 % real, inside the 5–10 % real discount rates of mining
        feasibility studies (Smith 1994, "Discount rates and risk assessment in mineral
        project evaluations", Trans. IMM A 103); range 0.03–0.08. Calibrated in pathways.
    volatility_premium : float
        κ: the private rate is ``risk_free + π0 + κ·cv`` with ``cv`` the coefficient of
        variation of unit revenue. Default 0.10 (a cv of 0.3 adds 3 points): a modelling
        assumption, range 0–0.2, calibrated in pathways.
    dispersion : float
        ``s`` of the decision probability ``Φ(NPV / (s·capex))``: how widely the unobserved
        project-specific returns spread. Default 0.3: a modelling assumption, range 0.1–0.5,
        calibrated in pathways.
    life : int
        Operating years valued. Default 20: a modelling assumption, range 15–30 years.
    ramp_up : tuple of float
        Share of capacity produced in the first operating years (then 1). Default (0.5, 0.8):
        a modelling assumption; range from nameplate in year one (proven technology) to three
        or more years below nameplate for novel processing plants (McNulty 1998,
        "Developing innovative technology", Mining Engineering 50(10)).
    loss_given_default : float
        Loss on guaranteed debt when the project defaults. Default 0.45, the Basel II
        foundation-IRB supervisory LGD of senior unsecured corporate claims (BCBS 2006,
        para. 287); range 0.20–0.45 (Moody's, "Default and recovery rates for project finance
        bank loans", reports average ultimate recoveries of about 80 %).
    debt_share : float
        Share of the (private) capex financed with debt. Default 0.5, range 0.3–0.7: project
        companies average about 70 % debt (Esty 2004, "Modern project finance"); mining
        projects borrow less (a modelling assumption).
    """

    risk_free: float = 0.02
    risk_premium: float = 0.05
    volatility_premium: float = 0.10
    dispersion: float = 0.3
    life: int = 20
    ramp_up: tuple[float, ...] = (0.5, 0.8)
    loss_given_default: float = 0.45
    debt_share: float = 0.5

    def __post_init__(self) -> None:
        checks = {
            "risk_free": -0.05 < self.risk_free < 0.5,
            "risk_premium": 0.0 <= self.risk_premium < 1.0,
            "volatility_premium": 0.0 <= self.volatility_premium < 5.0,
            "dispersion": self.dispersion > 0.0,
            "life": int(self.life) == self.life and 1 <= self.life <= 100,
            "ramp_up": all(0.0 <= x <= 1.0 for x in self.ramp_up),
            "loss_given_default": 0.0 <= self.loss_given_default <= 1.0,
            "debt_share": 0.0 <= self.debt_share < 1.0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                "Finance: " + ", ".join(f"{k} = {getattr(self, k)!r} is out of range" for k in bad)
            )

    def ramp(self, k: np.ndarray) -> np.ndarray:
        """Share of capacity produced in operating year ``k`` (0 = first)."""
        table = np.array([*self.ramp_up, 1.0])
        return np.asarray(table[np.minimum(k, len(self.ramp_up))])

    @staticmethod
    def table() -> list[dict[str, str]]:
        """The defaults with their range and source, one row each (for docs and reports)."""
        keys = ("parameter", "default", "range", "source")
        return [dict(zip(keys, r, strict=True)) for r in _TABLE]


_TABLE = (
    ("risk_free", "0.02", "0.005-0.025", "US 10-year TIPS real yields 2023-2024 (U.S. Treasury)"),
    (
        "risk_premium",
        "0.05",
        "0.03-0.08",
        "5-10% real discount rates in mining feasibility studies (Smith 1994); calibrated",
    ),
    ("volatility_premium", "0.10", "0-0.2", "modelling assumption; calibrated"),
    ("dispersion", "0.3", "0.1-0.5", "modelling assumption; calibrated"),
    ("life", "20", "15-30", "modelling assumption"),
    ("ramp_up", "0.5, 0.8", "1 to 3+ years", "modelling assumption (McNulty 1998 ramp-up curves)"),
    (
        "loss_given_default",
        "0.45",
        "0.20-0.45",
        "Basel II foundation IRB (BCBS 2006); Moody's project-finance recoveries about 80%",
    ),
    ("debt_share", "0.5", "0.3-0.7", "project companies about 70% debt (Esty 2004); assumption"),
)


# -- policy terms --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    """Policy terms a project faces, each an array broadcast over the batch (rows × projects).

    Zero (or NaN for thresholds and end years) means none. End years are the last calendar
    year a contract pays; NaN: it lasts the project's life.

    Attributes
    ----------
    floor : protected price ``max(P, floor)`` (currency/t); 0 = none.
    floor_end : last year of the floor.
    strike : price-gap subsidy strike ``K`` (currency/t); 0 = none.
    upside_threshold : claw-back threshold ``U`` (currency/t); NaN = none.
    upside_share : share θ of ``P − U`` paid back above ``U``.
    covered_share : share of output receiving the top-up (0–1).
    subsidy_end : last year of the subsidy.
    offtake_price : contract price (currency/t).
    offtake_share : share of output sold at the contract price (0–1).
    offtake_end : last year of the offtake.
    grant_share : capex grant as a share of capex.
    grant_amount : capex grant in currency per project.
    guarantee_coverage : share of the debt guaranteed (0–1).
    guarantee_fee : annual fee, share of the guaranteed debt outstanding.
    equity_share : public share of the equity (0–1).
    """

    floor: Any = 0.0
    floor_end: Any = np.nan
    strike: Any = 0.0
    upside_threshold: Any = np.nan
    upside_share: Any = 0.0
    covered_share: Any = 0.0
    subsidy_end: Any = np.nan
    offtake_price: Any = 0.0
    offtake_share: Any = 0.0
    offtake_end: Any = np.nan
    grant_share: Any = 0.0
    grant_amount: Any = 0.0
    guarantee_coverage: Any = 0.0
    guarantee_fee: Any = 0.0
    equity_share: Any = 0.0

    def arrays(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Every field as a float array broadcast to ``shape``."""
        return {
            f.name: np.broadcast_to(np.asarray(getattr(self, f.name), dtype=float), shape)
            for f in fields(self)
        }

    def shape(self) -> tuple[int, ...]:
        return np.broadcast_shapes(*(np.shape(getattr(self, f.name)) for f in fields(self)))


def stack_terms(terms: Sequence[Terms]) -> Terms:
    """Scalar :class:`Terms` (one per project) stacked into arrays along a first axis."""
    return Terms(
        **{
            f.name: np.array([np.asarray(getattr(t, f.name), dtype=float) for t in terms])
            for f in fields(Terms)
        }
    )


# -- revenue under a price distribution ----------------------------------------------------------


def _partial_moments(
    F: np.ndarray, s: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``E[Pⁿ·1{lo < P < hi}]`` for n = 0, 1, 2 with ``ln P ~ N(ln F − s²/2, s²)``:
    ``Fⁿ·exp(n(n−1)s²/2)·(Φ(z_hi − n s) − Φ(z_lo − n s))``, ``z_x = (ln x − ln F + s²/2)/s``.
    With ``s = 0`` the mass sits at ``F`` (in the segment ``lo <= F < hi``)."""
    s = np.where(s < _S_TINY, 0.0, s)  # a point mass (also avoids overflow in z)
    m = np.log(F) - 0.5 * s * s
    pos = s > 0
    safe = np.where(pos, s, 1.0)

    def z(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            lx = np.log(x)
            return np.where(pos, (lx - m) / safe, np.where(lx > np.log(F), np.inf, -np.inf))

    zl, zh = z(lo), z(hi)
    out = []
    for n in (0, 1, 2):
        shift = n * s
        mass = ndtr(zh - shift) - ndtr(zl - shift)
        out.append(F**n * np.exp(0.5 * n * (n - 1) * s * s) * mass)
    return out[0], out[1], out[2]


def _payoffs(P: np.ndarray, t: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Unit cash flows at price ``P``: market price, and each policy's flow to the project."""
    Q = np.maximum(P, t["floor"])  # the protected price
    upper = np.where(np.isnan(t["upside_threshold"]), np.inf, t["upside_threshold"])
    with np.errstate(invalid="ignore"):
        claw = np.where(t["upside_share"] > 0, np.maximum(Q - upper, 0.0), 0.0)
    topup = np.maximum(t["strike"] - Q, 0.0) - t["upside_share"] * claw
    return {
        "market": P,
        "floor": Q - P,
        "subsidy": t["covered_share"] * topup,
        "offtake": t["offtake_share"] * (t["offtake_price"] - Q),
    }


@dataclass(frozen=True)
class Revenue:
    """Moments of unit revenue in each year (arrays; currency per tonne)."""

    mean: np.ndarray
    sd: np.ndarray
    #: expected unit cash flow of each policy to the project (floor, subsidy, offtake)
    policy: dict[str, np.ndarray] = field(default_factory=dict)


def unit_revenue(F: Any, s: Any, terms: Terms | Mapping[str, Any]) -> Revenue:
    """Mean and standard deviation of unit revenue and each policy's expected unit cash flow.

    Unit revenue ``R(P) = Q + c·[max(0, K − Q) − θ·max(0, Q − U)] + o·(c_o − Q)`` with
    ``Q = max(P, floor)``, ``P`` lognormal with mean ``F`` and log sd ``s``. ``R`` is linear
    between the kinks (floor, K, U), so ``E[R]`` and ``E[R²]`` are sums of partial moments.
    The policy flows are ``floor = Q − P`` (paid by buyers), ``subsidy`` (budget) and
    ``offtake`` (the public buyer's cost ``o·(c_o − Q)``); ``E[R] = F + Σ`` policy flows.
    """
    F = np.asarray(F, dtype=float)
    s = np.asarray(s, dtype=float)
    if isinstance(terms, Terms):
        shape = np.broadcast_shapes(F.shape, s.shape, terms.shape())
        t = terms.arrays(shape)
    else:
        shape = np.broadcast_shapes(F.shape, s.shape, *(np.shape(v) for v in terms.values()))
        t = {k: np.broadcast_to(np.asarray(v, dtype=float), shape) for k, v in terms.items()}
        t = {**Terms().arrays(shape), **t}
    F, s = np.broadcast_to(F, shape), np.broadcast_to(s, shape)
    if np.any(~(F > 0)) or np.any(~(s >= 0)):
        raise ValueError("unit_revenue: prices F must be > 0 and log sd s >= 0")
    # segments between the kinks (a kink of 0, NaN or inf is none)
    kinks = np.stack(
        [t["floor"], t["strike"], np.where(t["upside_share"] > 0, t["upside_threshold"], np.nan)],
        axis=-1,
    )
    kinks = np.where(np.isfinite(kinks) & (kinks > 0), kinks, np.inf)
    kinks.sort(axis=-1)
    lo = np.concatenate([np.zeros((*shape, 1)), kinks], axis=-1)
    hi = np.concatenate([kinks, np.full((*shape, 1), np.inf)], axis=-1)
    live = lo < hi
    # two points strictly inside each segment give its intercept and slope exactly
    with np.errstate(invalid="ignore"):  # inf − inf in empty segments (not live)
        span = np.where(np.isfinite(hi), hi - lo, np.maximum(lo, 1.0))
        p1 = np.where(live, lo + span / 3.0, 1.0)
        p2 = np.where(live, lo + 2.0 * span / 3.0, 2.0)
    ts = {k: v[..., None] for k, v in t.items()}
    f1, f2 = _payoffs(p1, ts), _payoffs(p2, ts)
    M0, M1, M2 = _partial_moments(F[..., None], s[..., None], lo, hi)
    M0, M1, M2 = (np.where(live, M, 0.0) for M in (M0, M1, M2))

    def line(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        beta = (b - a) / (p2 - p1)
        return a - beta * p1, beta

    policy = {}
    alpha_r = np.zeros_like(p1)
    beta_r = np.zeros_like(p1)
    for name in ("market", "floor", "subsidy", "offtake"):
        alpha, beta = line(f1[name], f2[name])
        alpha_r, beta_r = alpha_r + alpha, beta_r + beta
        if name != "market":
            policy[name] = np.sum(np.where(live, alpha * M0 + beta * M1, 0.0), axis=-1)
    mean = np.sum(alpha_r * M0 + beta_r * M1, axis=-1)
    second = np.sum(alpha_r**2 * M0 + 2.0 * alpha_r * beta_r * M1 + beta_r**2 * M2, axis=-1)
    sd = np.sqrt(np.maximum(second - mean**2, 0.0))
    return Revenue(mean=mean, sd=sd, policy=policy)


# -- project values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectValues:
    """Values of pipeline projects (arrays over the batch).

    Policy values are expected present values at the **public** discount rate in the
    decision year, **per project built** (multiply by the decision probability, or by a
    draw's decision, for the expected cost); currency units. Positive = paid to the project
    (a cost to whoever pays), except ``guarantee_fees`` and ``equity_returns`` (received by
    the public) and ``guarantee_exposure`` (a contingent liability, not a cost).
    """

    npv: np.ndarray  #: private decision value (currency)
    probability: np.ndarray  #: Φ(npv / (dispersion · capex))
    discount_rate: np.ndarray  #: blended rate used for the npv
    private_rate: np.ndarray  #: risk_free + π0 + κ·cv (before public financing)
    revenue_mean: np.ndarray  #: mean unit revenue over the operating years (currency/t)
    revenue_sd: np.ndarray  #: its standard deviation (mean over operating years)
    revenue_cv: np.ndarray  #: coefficient of variation (mean over operating years)
    subsidy: np.ndarray  #: price-gap subsidy (budget)
    floor: np.ndarray  #: floor value (paid by buyers)
    offtake: np.ndarray  #: offtake premium over the market (budget)
    grant: np.ndarray  #: capex grant (budget)
    guarantee_pd: np.ndarray  #: probability of default on the debt
    guarantee_loss: np.ndarray  #: expected loss on guaranteed debt (budget)
    guarantee_fees: np.ndarray  #: guarantee fees received (budget income)
    guarantee_exposure: np.ndarray  #: guaranteed debt (contingent liability, not a cost)
    equity_outlay: np.ndarray  #: public equity invested (budget)
    equity_returns: np.ndarray  #: expected returns to public equity (budget income)

    #: the policy values, in order (all exactly 0 without policy)
    POLICY = (
        "subsidy",
        "floor",
        "offtake",
        "grant",
        "guarantee_loss",
        "guarantee_fees",
        "guarantee_exposure",
        "equity_outlay",
        "equity_returns",
    )


def value_projects(
    *,
    capacity: Any,
    capex: Any,
    unit_cost: Any,
    lead_time: Any,
    forward: Any,
    log_sd: Any,
    terms: Terms | None = None,
    finance: Finance | None = None,
    public_rate: float = 0.05,
    year: int = 0,
    phi: float = 1.0,
) -> ProjectValues:
    """Value pipeline projects deciding in ``year`` (vectorised over a batch).

    Parameters
    ----------
    capacity : array, t/yr
    capex : array, currency per project (> 0)
    unit_cost : array, currency/t (operating cost)
    lead_time : array of whole years from decision to first output
    forward : array (batch..., H), mean price (currency/t) in year ``year + h``, h = 0..H−1;
        beyond ``H`` the last value is kept
    log_sd : array (batch..., H), total log sd of the price in year ``year + h``
    terms : :class:`Terms` (default: no policy)
    finance : :class:`Finance` (default assumptions)
    public_rate : real public discount rate for the policy values (and public equity)
    year : the decision year (policy end years are calendar years)
    phi : AR(1) persistence, for the correlation of prices across years (default-risk only)

    Returns
    -------
    ProjectValues
    """
    terms = terms or Terms()
    finance = finance or Finance()
    fwd = np.asarray(forward, dtype=float)
    sd = np.asarray(log_sd, dtype=float)
    if fwd.ndim == 0 or sd.ndim == 0:
        raise ValueError("forward and log_sd need a last axis of years")
    lead = np.asarray(lead_time, dtype=float)
    cap, cx, uc = (np.asarray(x, dtype=float) for x in (capacity, capex, unit_cost))
    shape = np.broadcast_shapes(
        cap.shape, cx.shape, uc.shape, lead.shape, fwd.shape[:-1], sd.shape[:-1], terms.shape()
    )
    if np.any(~(cx > 0)):
        raise ValueError("capex: every project needs a capex > 0 (currency per project)")
    if np.any(~(cap >= 0)) or np.any(~np.isfinite(uc)):
        raise ValueError("capacity must be >= 0 and unit_cost finite")
    if np.any(~(lead >= 0)) or np.any(lead != np.round(lead)):
        raise ValueError("lead_time: whole years >= 0 required")
    if np.any(~(fwd > 0)) or np.any(~(sd >= 0)):
        raise ValueError("forward prices must be > 0 and log_sd >= 0")
    if not 0.0 <= phi <= 1.0:
        raise ValueError(f"phi: {phi} is not in [0, 1]")
    n = int(np.prod(shape))
    flat: dict[str, np.ndarray] = {
        "capacity": np.broadcast_to(cap, shape).reshape(n),
        "capex": np.broadcast_to(cx, shape).reshape(n),
        "unit_cost": np.broadcast_to(uc, shape).reshape(n),
        "lead": np.broadcast_to(lead, shape).reshape(n).astype(int),
    }
    H = fwd.shape[-1], sd.shape[-1]
    F2 = np.broadcast_to(fwd, (*shape, H[0])).reshape(n, H[0])
    S2 = np.broadcast_to(sd, (*shape, H[1])).reshape(n, H[1])
    tf = {k: v.reshape(n) for k, v in terms.arrays(shape).items()}
    parts = []
    for a in range(0, max(n, 1), _CHUNK):
        sl = slice(a, a + _CHUNK)
        parts.append(
            _value_flat(
                {k: v[sl] for k, v in flat.items()},
                F2[sl],
                S2[sl],
                {k: v[sl] for k, v in tf.items()},
                finance,
                public_rate,
                year,
                phi,
            )
        )
    return ProjectValues(
        **{
            f.name: np.concatenate([p[f.name] for p in parts]).reshape(shape)
            for f in fields(ProjectValues)
        }
    )


def _extend(x: np.ndarray, T: int) -> np.ndarray:
    """``x`` (n, H) over T years, the last value kept beyond H."""
    H = x.shape[1]
    if H >= T:
        return x[:, :T]
    return np.concatenate([x, np.repeat(x[:, -1:], T - H, axis=1)], axis=1)


def _value_flat(
    p: dict[str, np.ndarray],
    fwd: np.ndarray,
    sd: np.ndarray,
    t: dict[str, np.ndarray],
    fin: Finance,
    rho: float,
    year: int,
    phi: float,
) -> dict[str, np.ndarray]:
    """:func:`value_projects` on a flat batch (n,)."""
    n = p["capex"].size
    lead = p["lead"]
    T = int(lead.max(initial=0)) + fin.life
    h = np.arange(T)
    F, S = _extend(fwd, T), _extend(sd, T)
    k = h[None, :] - lead[:, None]  # operating year
    operating = (k >= 0) & (k < fin.life)
    volume = np.where(operating, p["capacity"][:, None] * fin.ramp(np.maximum(k, 0)), 0.0)

    # price terms in force in each year (a contract ends after its end year)
    cal = year + h[None, :]

    def until(end: np.ndarray) -> np.ndarray:
        return np.isnan(end)[:, None] | (cal <= np.nan_to_num(end, nan=np.inf)[:, None])

    on_f, on_s, on_o = until(t["floor_end"]), until(t["subsidy_end"]), until(t["offtake_end"])
    yearly = {
        "floor": np.where(on_f, t["floor"][:, None], 0.0),
        "strike": np.where(on_s, t["strike"][:, None], 0.0),
        "upside_threshold": np.broadcast_to(t["upside_threshold"][:, None], (n, T)),
        "upside_share": np.where(on_s, t["upside_share"][:, None], 0.0),
        "covered_share": np.where(on_s, t["covered_share"][:, None], 0.0),
        "offtake_price": np.broadcast_to(t["offtake_price"][:, None], (n, T)),
        "offtake_share": np.where(on_o, t["offtake_share"][:, None], 0.0),
    }
    rev = unit_revenue(F, S, yearly)
    margin = rev.mean - p["unit_cost"][:, None]
    op_years = operating.sum(axis=1)
    weight = np.where(operating, 1.0, 0.0) / np.maximum(op_years, 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        cv_h = np.where(rev.mean > 0, rev.sd / rev.mean, 0.0)
    cv = (weight * cv_h).sum(axis=1)

    # discount rates: private, then blended with guaranteed debt and public equity
    r_priv = fin.risk_free + fin.risk_premium + fin.volatility_premium * cv
    r_guar = fin.risk_free + t["guarantee_fee"]
    takes_guar = (t["guarantee_coverage"] > 0) & (r_guar < r_priv)
    takes_eq = (t["equity_share"] > 0) & (rho < r_priv)
    d = fin.debt_share
    w_g = np.where(takes_guar, d * t["guarantee_coverage"], 0.0)
    w_e = np.where(takes_eq, (1.0 - d) * t["equity_share"], 0.0)
    r = w_g * r_guar + w_e * rho + (1.0 - w_g - w_e) * r_priv

    grant = np.minimum(p["capex"], t["grant_share"] * p["capex"] + t["grant_amount"])
    capex_priv = p["capex"] - grant
    disc = (1.0 + r[:, None]) ** -h[None, :]
    disc_pub = (1.0 + rho) ** -h.astype(float)
    cash = volume * margin
    value_ops = (cash * disc).sum(axis=1)
    npv = value_ops - capex_priv  # capex is committed at the decision
    prob = ndtr(npv / (fin.dispersion * p["capex"]))

    # default risk: the value of operations V (at the project's rate) against its debt.
    # sd(V) with prices correlated across years as ln p of an AR(1):
    # Cov(R_h, R_h') ≈ b_h b_h' φ^{h'−h} s_h / s_h' (h <= h'), b_h = w_h·sd(R_h)
    b = volume * disc * rev.sd
    var = (b * b).sum(axis=1)
    carry = np.zeros(n)  # Σ_{h<j} b_h φ^{j−h} s_h
    # what each year's step reads, for every year at once (the same numbers)
    bs, b2 = b * S, 2.0 * b
    s_pos = S > 0
    s_safe = np.where(s_pos, S, 1.0)
    for j in range(1, T):
        carry = phi * (carry + bs[:, j - 1])
        var += b2[:, j] * np.where(s_pos[:, j], carry / s_safe[:, j], 0.0)
    sd_v = np.sqrt(np.maximum(var, 0.0))
    debt = d * capex_priv
    with np.errstate(divide="ignore", invalid="ignore"):
        pd_ = np.where(sd_v > 0, ndtr((debt - value_ops) / sd_v), (value_ops < debt) * 1.0)
    exposure = w_g * capex_priv
    first = (1.0 + rho) ** -lead.astype(float)
    outstanding = np.where(operating, 1.0 - np.maximum(k, 0) / fin.life, 0.0)
    fees = (t["guarantee_fee"] * exposure)[:, None] * outstanding
    returns = w_e * (cash * disc_pub).sum(axis=1)
    zero = np.zeros(n)
    return {
        "npv": npv,
        "probability": prob,
        "discount_rate": r,
        "private_rate": r_priv,
        "revenue_mean": (weight * rev.mean).sum(axis=1),
        "revenue_sd": (weight * rev.sd).sum(axis=1),
        "revenue_cv": cv,
        "subsidy": (volume * rev.policy["subsidy"] * disc_pub).sum(axis=1),
        "floor": (volume * rev.policy["floor"] * disc_pub).sum(axis=1),
        "offtake": (volume * rev.policy["offtake"] * disc_pub).sum(axis=1),
        "grant": grant,
        "guarantee_pd": np.where(debt > 0, pd_, zero),
        "guarantee_loss": np.where(exposure > 0, pd_ * fin.loss_given_default * exposure, 0.0)
        * first,
        "guarantee_fees": (fees * disc_pub).sum(axis=1),
        "guarantee_exposure": exposure,
        "equity_outlay": w_e * capex_priv,
        "equity_returns": returns,
    }


# -- what a project faces ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectPolicy:
    """What :func:`project_terms` found for one project in one year.

    Attributes
    ----------
    terms : scalar :class:`Terms`
    measures : policy kind -> positions (in the measure list) of the measures giving it
    payers : policy kind -> {region: share} of who pays (floor: the buyers in the floor's
        importing regions, shares equal)
    """

    terms: Terms
    measures: dict[str, list[int]]
    payers: dict[str, dict[str, float]]


def _stage_matches(m: Measure, stage: str | None) -> bool:
    return m.stage is None or stage is None or m.stage == stage


def _merge(into: dict[str, float], shares: Mapping[str, float], weight: float) -> None:
    for r, v in shares.items():
        into[r] = into.get(r, 0.0) + weight * v


def _normalised(shares: dict[str, float]) -> dict[str, float]:
    total = sum(shares.values())
    return {r: v / total for r, v in shares.items()} if total > 0 else {}


def project_terms(
    measures: Iterable[Measure], project: Mapping[str, Any], year: int
) -> ProjectPolicy:
    """The policy terms a pipeline project faces in ``year`` from a scenario's measures.

    ``project`` is a row of the pipeline (``project``, ``region``, ``stage``, ``capacity``,
    ``capex`` as in ``projects.csv``; ``capex`` in the currency of ``grant_amount``). Only
    measures in force in ``year`` count; their ``end_year`` ends the contract (None: it lasts
    the project's life). A measure with a ``stage`` counts only for projects of that stage.

    - ``price_floor``: for producers in its importing regions; the highest floor.
    - ``price_gap_subsidy``: for its ``producers``; the highest strike if several; covered
      share = covered volume / capacity (capped at 1; all output without a covered volume).
    - ``offtake``: for its ``sellers``; share = volume / capacity, several add up to the
      capacity, at their volume-weighted price; the earliest end year.
    - ``capex_grant``, ``public_equity``: shares (and grant amounts) add, shares capped at
      1. ``max_capacity`` of a grant is left to the caller, who knows what was granted before.
    - ``loan_guarantee``: the highest coverage.
    """
    from tradepolicy.measures.floors import PriceFloor
    from tradepolicy.measures.investment import CapexGrant, LoanGuarantee, PublicEquity
    from tradepolicy.measures.subsidies import Offtake, PriceGapSubsidy

    region, stage = str(project["region"]), project.get("stage")
    capacity = float(project.get("capacity", np.nan))
    capex = float(project.get("capex", np.nan))
    vals: dict[str, float] = {}
    used: dict[str, list[int]] = {}
    payers: dict[str, dict[str, float]] = {}
    offtake_vol = offtake_value = 0.0
    offtake_end = np.inf
    grant_w: dict[str, float] = {}
    equity_w: dict[str, float] = {}
    offtake_w: dict[str, float] = {}

    def end(m: Measure) -> float:
        return np.nan if m.end_year is None else float(m.end_year)

    for j, m in enumerate(measures):
        if not m.in_force(year) or not _stage_matches(m, stage):
            continue
        if isinstance(m, PriceFloor):
            if region in m.importers and m.floor > vals.get("floor", 0.0):
                vals["floor"], vals["floor_end"] = m.floor, end(m)
                used["floor"] = [j]
                payers["floor"] = {r: 1.0 / len(m.importers) for r in m.importers}
        elif isinstance(m, PriceGapSubsidy):
            if region in m.producers and m.strike > vals.get("strike", 0.0):
                vol = m._volume_of(region)
                covered = 1.0 if not np.isfinite(vol) else min(1.0, vol / capacity)
                upper, theta = np.nan, 0.0
                if m.kind == "two_sided":
                    upper, theta = m.strike, 1.0
                elif m.kind == "collar":
                    upper, theta = float(m.upside_threshold or np.nan), float(m.upside_share or 0)
                vals.update(
                    strike=m.strike,
                    covered_share=covered,
                    subsidy_end=end(m),
                    upside_threshold=upper,
                    upside_share=theta,
                )
                used["subsidy"] = [j]
                payers["subsidy"] = dict(m.payers or {region: 1.0})
        elif isinstance(m, Offtake):
            vol = min(m.volume, max(capacity - offtake_vol, 0.0))
            if region in m.sellers and vol > 0:
                offtake_vol += vol
                offtake_value += vol * m.price
                offtake_end = min(offtake_end, np.inf if m.end_year is None else m.end_year)
                used.setdefault("offtake", []).append(j)
                _merge(offtake_w, m.buyers, vol)
        elif isinstance(m, CapexGrant) and m.applies_to(project):
            share, amount = m.share or 0.0, m.amount or 0.0
            vals["grant_share"] = min(1.0, vals.get("grant_share", 0.0) + share)
            vals["grant_amount"] = vals.get("grant_amount", 0.0) + amount
            used.setdefault("grant", []).append(j)
            _merge(grant_w, m.payers, share * capex + amount if np.isfinite(capex) else 1.0)
        elif isinstance(m, LoanGuarantee) and m.applies_to(project):
            if m.coverage > vals.get("guarantee_coverage", 0.0):
                vals["guarantee_coverage"], vals["guarantee_fee"] = m.coverage, m.fee
                used["guarantee"] = [j]
                payers["guarantee"] = dict(m.payers)
        elif isinstance(m, PublicEquity) and m.applies_to(project):
            vals["equity_share"] = min(1.0, vals.get("equity_share", 0.0) + m.share)
            used.setdefault("equity", []).append(j)
            _merge(equity_w, m.payers, m.share)
    if offtake_vol > 0:
        vals["offtake_share"] = min(1.0, offtake_vol / capacity)
        vals["offtake_price"] = offtake_value / offtake_vol
        vals["offtake_end"] = float(offtake_end) if np.isfinite(offtake_end) else np.nan
    for kind, w in (("offtake", offtake_w), ("grant", grant_w), ("equity", equity_w)):
        if w:
            payers[kind] = _normalised(w)
    return ProjectPolicy(terms=replace(Terms(), **vals), measures=used, payers=payers)
