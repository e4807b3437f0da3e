"""The levels Armington model (DESIGN §3) in calibrated-share form, batched over scenarios.

Unknowns per scenario: ``z_o = ln(p_o / p0_o)`` for every producing origin and the scaled
complementarity variables ``λ_k``. With landed prices ``q_od`` (see :mod:`instruments`) and
``r_od = q_od / q0_od``::

    P_d / P0_d = (Σ_o w0_od r_od^(1-σ_d))^(1/(1-σ_d))        (geometric mean at σ_d = 1)
    D_d        = D0_d (P_d/P0_d)^(-η_d) (1 + shift_d)            private composite demand
    A_d        = D_d + public net composite purchases
    X_od       = X0_od r_od^(-σ_d) (P_d/P0_d)^(σ_d) A_d / D0_d
    S_o        = S0_o (p̃_o/p0_o)^(ε_o) (1 - shock_o)
    F_o        = (S_o - Σ_d X_od - public purchases of o) / S0_o = 0

``w0_od`` are base value shares at landed prices, ``D0_d = Σ_o X0_od`` and ``P0_d`` the base
unit value, so this is the CES system ``X_od = β_od q_od^(-σ) P^σ D`` with
``β_od = (X0_od/D0_d)(q0_od/P0_d)^σ`` and the baseline reproduces the data exactly. A zero
base flow stays zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tradepolicy.model.instruments import Instruments

_CD_TOL = 1e-9  # |1 - σ| below this uses the Cobb-Douglas limit
_SQRT_HALF = np.sqrt(0.5)


@dataclass
class Calibration:
    """Base data and parameters of one market, ready for the equations.

    Elasticities are ``(N,)`` or ``(B, N)`` (one row per scenario or Monte Carlo draw).
    """

    regions: tuple[str, ...]
    p0: np.ndarray  # (N,) base producer price
    X0: np.ndarray  # (N,N) base flows exporter × importer
    t0: np.ndarray  # (N,N) base tariffs
    x0: np.ndarray  # (N,N) base export taxes
    eps: np.ndarray  # supply elasticity
    eta: np.ndarray  # demand elasticity (absolute value)
    sigma: np.ndarray  # substitution elasticity

    def __post_init__(self) -> None:
        self.fob0 = self.p0[:, None] * (1.0 + self.x0)
        self.q0 = self.fob0 * (1.0 + self.t0)
        self.S0 = self.X0.sum(axis=1)
        self.D0 = self.X0.sum(axis=0)
        self.E0 = (self.q0 * self.X0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.P0 = np.where(self.D0 > 0, self.E0 / np.where(self.D0 > 0, self.D0, 1), np.nan)
            self.w0 = np.where(
                self.E0 > 0, self.q0 * self.X0 / np.where(self.E0 > 0, self.E0, 1), 0
            )
        self.ln_wedge0 = np.log((1.0 + self.x0) * (1.0 + self.t0))
        self.producer = self.S0 > 0
        self.consumer = self.D0 > 0

    @property
    def N(self) -> int:
        return len(self.regions)

    @classmethod
    def from_market(cls, market) -> Calibration:
        return cls(
            regions=market.regions,
            p0=market.base_price,
            X0=market.flows,
            t0=market.base_tariff,
            x0=market.base_export_tax,
            eps=market.supply_elasticity,
            eta=market.demand_elasticity,
            sigma=market.substitution_elasticity,
        )

    def with_elasticities(
        self,
        eps: np.ndarray | None = None,
        eta: np.ndarray | None = None,
        sigma: np.ndarray | None = None,
    ) -> Calibration:
        """A copy with other (possibly per-scenario ``(B,N)``) elasticities."""
        return Calibration(
            regions=self.regions,
            p0=self.p0,
            X0=self.X0,
            t0=self.t0,
            x0=self.x0,
            eps=self.eps if eps is None else eps,
            eta=self.eta if eta is None else eta,
            sigma=self.sigma if sigma is None else sigma,
        )

    @property
    def beta(self) -> np.ndarray:
        """CES share parameters β_od in ``X_od = β_od q_od^(-σ) P^σ D`` (for reporting)."""
        sig = np.broadcast_to(self.sigma, (self.N,)) if np.ndim(self.sigma) == 1 else self.sigma
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.D0 > 0, self.X0 / self.D0 * (self.q0 / self.P0) ** sig, 0.0)


@dataclass
class State:
    """Everything the equations compute at one point (all batched)."""

    p: np.ndarray  # (B,N) producer price
    lam: np.ndarray  # (B,K) complementarity variables (unscaled, economic units)
    fob: np.ndarray | None  # (B,N,N); None from a lean evaluation (see `evaluate`)
    q: np.ndarray  # (B,N,N) landed price
    levy: np.ndarray | None  # (B,N,N) variable levy per unit; None from a lean evaluation
    P: np.ndarray  # (B,N) composite price
    D: np.ndarray  # (B,N) private composite demand
    A: np.ndarray  # (B,N) total composite absorption
    X: np.ndarray  # (B,N,N) flows
    S: np.ndarray  # (B,N) supply
    support: np.ndarray  # (B,N) per-unit top-up f(p) on covered volume
    covered: np.ndarray  # (B,N) volume receiving the top-up
    p_marginal: np.ndarray  # (B,N) effective marginal producer price
    g: np.ndarray  # (B,K) scaled complementarity slacks
    F: np.ndarray  # (B,N+K) residual vector
    residual: np.ndarray  # (B,) convergence measure: max |F| with clearing relative to scale
    J: np.ndarray | None = None  # (B,N+K,N+K)


def _fb(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fischer–Burmeister φ(a,b) = √(a²+b²) − a − b and its partial derivatives."""
    r = np.hypot(a, b)
    safe = np.where(r > 0, r, 1.0)
    da = np.where(r > 0, a / safe - 1.0, _SQRT_HALF - 1.0)
    db = np.where(r > 0, b / safe - 1.0, _SQRT_HALF - 1.0)
    return r - a - b, da, db


def box_fb(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Billups' box Fischer–Burmeister function for ``lo ≤ x ≤ hi ⟂ g``.

    Returns Φ, ∂Φ/∂x, ∂Φ/∂g. Zero iff x = lo and g ≥ 0, x = hi and g ≤ 0, or lo < x < hi
    and g = 0.
    """
    finite = np.isfinite(hi)
    hi_f = np.where(finite, hi, 0.0)
    psi, psi_a, psi_b = _fb(hi_f - x, -g)  # ψ = φ(hi − x, −g) → g as hi → ∞
    inner = np.where(finite, psi, g)
    dinner_dx = np.where(finite, -psi_a, 0.0)
    dinner_dg = np.where(finite, -psi_b, 1.0)
    phi, pa, pb = _fb(x - lo, inner)
    return phi, pa + pb * dinner_dx, pb * dinner_dg


def _powm1_over(lnr: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(exp(k·lnr) − 1)/k, continuous at k = 0 (→ lnr)."""
    small = np.abs(k) < 1e-12
    ksafe = np.where(small, 1.0, k)
    return np.where(small, lnr, np.expm1(k * lnr) / ksafe)


def _lam_sum(lt: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Σ_k λ_k C[k] for (B,K) λ and (B,K,N,N) C, as one batched matrix product."""
    B, K, N, _ = C.shape
    return (lt[:, None, :] @ C.reshape(B, K, N * N)).reshape(B, N, N)


def evaluate(
    cal: Calibration,
    inst: Instruments,
    u: np.ndarray,
    jacobian: bool = True,
    lean: bool = False,
) -> State:
    """Evaluate the model at unknowns ``u`` (B, N+K): residuals and (optionally) Jacobian.

    ``lean=True`` lets the solver skip ``fob`` and ``levy`` where the landed price is the
    producer price times fixed wedges (they are ``None`` then: ``p·(1+x)`` and zero).
    """
    B, N, K = inst.B, cal.N, inst.K
    z, lt = u[:, :N], u[:, N:]
    lam = lt * inst.lam_scale
    sigma = np.broadcast_to(cal.sigma, (B, N))
    eta = np.broadcast_to(cal.eta, (B, N))
    eps = np.broadcast_to(cal.eps, (B, N))
    sig_d = sigma[:, None, :]  # broadcast over exporters

    p = cal.p0 * np.exp(z)
    # -- landed prices ------------------------------------------------------------------
    plain = not K and not inst.has_floor  # landed price = producer price × fixed wedges
    fob = None if plain and lean else p[:, :, None] * inst.export_factor
    if K:
        fob = fob + _lam_sum(lt, inst.C_fob)
        tau = inst.tariff + _lam_sum(lt, inst.C_adv)
        pre = fob * (1.0 + tau) + _lam_sum(lt, inst.C_add)
    else:
        tau = inst.tariff
        pre = p[:, :, None] * inst.border_factor
    if inst.has_floor:
        gap = np.where(inst.floor > 0, inst.floor - pre, -np.inf)  # only where a floor is set
        levy = np.clip(gap, 0.0, inst.levy_cap)
        hq = np.where((gap > 0) & (gap < inst.levy_cap), 0.0, 1.0)  # dq/dpre
        q = pre + levy
    else:
        levy = None if fob is None else np.zeros(pre.shape)  # lean: both left out
        hq = 1.0
        q = pre

    # -- composite price and flows --------------------------------------------------------
    w = np.where(inst.available, cal.w0, 0.0) if inst.has_ban else cal.w0
    if plain:  # ln(q/q0) without a logarithm per element
        lnr = z[:, :, None] + inst.relative_wedge(cal.ln_wedge0)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            lnr = np.log(q / cal.q0)
    one_m = 1.0 - sigma  # (B,N)
    cd = np.abs(one_m) < _CD_TOL
    # CES value shares s = w r^(1-σ) / Σ w r^(1-σ)
    ex = one_m[:, None, :] * lnr
    with np.errstate(over="ignore", invalid="ignore"):
        term = w * np.exp(ex)
    ones = np.ones(N)
    ssum = ones @ term  # Σ_o (a matrix product is much faster than .sum on small axes)
    shift = 0.0
    if not np.all(np.isfinite(ssum) & ((ssum > 0) | ~cal.consumer)):
        # overflow, underflow or an invalid price: recompute with a shift per importer
        wpos = w > 0
        shift = np.max(np.where(wpos, ex, -np.inf), axis=1)
        shift = np.where(np.isfinite(shift), shift, 0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            term = np.where(wpos, w * np.exp(ex - shift[:, None, :]), 0.0)
        ssum = ones @ term
    ssafe = np.where(ssum > 0, ssum, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lnPr = (np.log(ssafe) + shift) / np.where(cd, 1.0, one_m)
    s = term * (1.0 / ssafe)[:, None, :]
    if cd.any():  # Cobb-Douglas importers: geometric mean, constant value shares
        wsum = np.sum(w, axis=-2)
        wsum = np.where(wsum > 0, wsum, 1.0)
        ln_P_cd = np.sum(np.where(w > 0, w * lnr, 0.0), axis=1) / wsum
        s = np.where(cd[:, None, :], w / wsum[..., None, :], s)
        lnPr = np.where(cd, ln_P_cd, lnPr)
    lnPr = np.where(cal.consumer, lnPr, 0.0)
    P = cal.P0 * np.exp(lnPr)
    D = np.where(cal.consumer, cal.D0 * np.exp(-eta * lnPr) * inst.demand_mult, 0.0)
    A = D + inst.composite_purchase
    # flows: value share × expenditure / price
    PA = np.where(cal.consumer, P * A, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        X = s * PA[:, None, :] / q
    if not plain:
        X = np.where(w > 0, X, 0.0)

    # -- supply -------------------------------------------------------------------------
    m = inst.supply_mult
    prod = cal.producer
    S0 = np.where(prod, cal.S0, 1.0)
    if inst.has_support:
        K1, th, K2, V = (
            inst.support_strike,
            inst.support_share,
            inst.support_upper,
            inst.support_volume,
        )
        f = np.maximum(0.0, K1 - p) - th * np.maximum(0.0, p - K2)
        fprime = -(p < K1).astype(float) - th * (p > K2)
        pc = p + f
        Sa = S0 * m * (p / cal.p0) ** eps
        Sb = S0 * m * (pc / cal.p0) ** eps
        # Top-up (f ≥ 0) on min(S, V): marginal revenue p + f up to V, then p (a kink at V).
        # Claw-back (f < 0) with a covered volume: settled on the contract volume V whatever
        # the output (a payment-on-output claw-back would make supply jump and leave some
        # markets without a clearing price), so output responds to p only.
        pos = f >= 0
        finite = np.isfinite(V)
        reg_b = np.where(pos, Sb <= V, ~finite)
        reg_a = ~reg_b & np.where(pos, Sa >= V, True)
        S = np.where(reg_b, Sb, np.where(reg_a, Sa, V))
        with np.errstate(divide="ignore", invalid="ignore"):
            pv = cal.p0 * (V / (S0 * m)) ** (1.0 / np.where(eps > 0, eps, 1.0))
        p_marg = np.where(reg_b, pc, np.where(reg_a, p, pv))
        dS = np.where(reg_b, eps * Sb * (1.0 + fprime) * p / pc, np.where(reg_a, eps * Sa, 0.0))
        covered = np.where(finite, np.where(pos, np.minimum(S, V), V), S)
    else:
        f = np.zeros_like(p)
        S = S0 * m * np.exp(eps * z)
        dS = eps * S
        p_marg = p
        covered = np.zeros_like(p)
    S = np.where(prod, S, 0.0)

    F = np.empty((B, N + K))
    excess = (S - X @ ones - inst.variety_purchase) / S0
    F[:, :N] = excess if prod.all() else np.where(prod, excess, z)
    if K:
        graw = inst.g0 + (inst.G.reshape(B, K, N * N) @ X.reshape(B, N * N, 1))[..., 0]
        g = graw / inst.g_scale
        phi, dphi_dx, dphi_dg = box_fb(lt, inst.lam_lo, inst.lam_hi, g)
        F[:, N:] = phi
    else:
        g = np.zeros((B, 0))

    # convergence measure: clearing relative to the larger of base and current output (an
    # extreme scenario can multiply output many times, and float64 clears it only that well)
    with np.errstate(invalid="ignore"):
        residual = np.max(np.abs(F), axis=1, initial=0.0)
        if (S > S0).any():
            rel = np.abs(F[:, :N]) * np.minimum(1.0, S0 / np.where(S > S0, S, S0))
            residual = np.maximum(
                np.max(rel, axis=1), np.max(np.abs(F[:, N:]), axis=1, initial=0.0)
            )
    state = State(
        p=p,
        lam=lam,
        fob=fob,
        q=q,
        levy=levy,
        P=P,
        D=D,
        A=A,
        X=X,
        S=S,
        support=f,
        covered=covered,
        p_marginal=p_marg,
        g=g,
        F=F,
        residual=residual,
    )
    if not jacobian:
        return state

    # -- analytic Jacobian ----------------------------------------------------------------
    Apos = np.where(A > 0, A, 1.0)
    kappa = sigma - eta * D / Apos  # (B,N): d ln X_od / d ln P_d beyond the σ term
    Xk = X * kappa[:, None, :]
    if plain:  # the landed price moves one for one with the producer price (in logs)
        Xa, sa = X, s
    else:  # aq = (dq_od/dz_o) / q_od, the elasticity of the landed price to p_o
        dq_dz = hq * (p[:, :, None] * inst.export_factor) * (1.0 + tau)  # rents do not move
        aq = dq_dz / q
        Xa, sa = X * aq, s * aq
    Jzz = np.matmul(Xk, np.swapaxes(sa, 1, 2))
    np.negative(Jzz, out=Jzz)
    diag = dS + np.matmul(Xa, sigma[:, :, None])[..., 0]
    Jzz[:, np.arange(N), np.arange(N)] += diag
    Jzz /= S0[None, :, None]
    if not prod.all():
        Jzz[:, ~prod, :] = np.eye(N)[~prod]
    if K:
        J = np.zeros((B, N + K, N + K))
        J[:, :N, :N] = Jzz
    else:
        J = Jzz
    if K:
        wpos = w > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(wpos, s / q, 0.0)  # d ln P_d / d q_od
            Xsq = np.where(wpos, X * sig_d / q, 0.0)
        a = dq_dz
        va = v * a
        c = (hq[:, None] if np.ndim(hq) else 1.0) * (
            inst.C_fob * (1.0 + tau)[:, None] + fob[:, None] * inst.C_adv + inst.C_add
        )  # (B,K,N,N) dq_od/dλ_k
        # (sums over one axis of (B,K,N,N) arrays are matrix products with a ones vector)
        cv = ones @ (c * v[:, None])  # (B,K,N): Σ_o v_od c_kod
        Jzl = np.swapaxes((c * Xsq[:, None]) @ ones, 1, 2)  # (B,N,K): Σ_d Xsq_od c_kod
        Jzl -= Xk @ np.swapaxes(cv, 1, 2)
        Jzl /= S0[None, :, None]
        J[:, :N, N:] = np.where(prod[None, :, None], Jzl, 0.0)
        GX = inst.G * X[:, None]
        gxk = (ones @ GX) * kappa[:, None, :]  # (B,K,N)
        dg_dz = -((GX * (sig_d / q * a)[:, None]) @ ones)
        dg_dz += gxk @ np.swapaxes(va, 1, 2)
        GXs = (GX * (sig_d / q)[:, None]).reshape(B, K, N * N)
        dg_dl = -(GXs @ np.swapaxes(c.reshape(B, K, N * N), 1, 2))
        dg_dl += gxk @ np.swapaxes(cv, 1, 2)
        dg_dz /= inst.g_scale[:, :, None]
        dg_dl /= inst.g_scale[:, :, None]
        J[:, N:, :N] = dphi_dg[:, :, None] * dg_dz
        J[:, N:, N:] = dphi_dg[:, :, None] * dg_dl
        J[:, N + np.arange(K), N + np.arange(K)] += dphi_dx
    state.J = J
    return state


def initial_guess(cal: Calibration, inst: Instruments) -> np.ndarray:
    """Start at base prices with every complementarity variable at its lower bound."""
    u = np.zeros((inst.B, cal.N + inst.K))
    if inst.K:
        u[:, cal.N :] = np.where(np.isfinite(inst.lam_lo), inst.lam_lo, 0.0)
    return u


def producer_surplus_total(cal: Calibration, inst: Instruments, st: State) -> np.ndarray:
    """Producer surplus p·S + f·covered − C(S) with isoelastic costs (B,N).

    ``C(S) = p_marginal · S · ε/(1+ε)``, so without support PS = p·S/(1+ε).
    """
    eps = np.broadcast_to(cal.eps, st.p.shape)
    cost = st.p_marginal * st.S * eps / (1.0 + eps)
    return st.p * st.S + st.support * st.covered - cost


def consumer_surplus_change(cal: Calibration, inst: Instruments, st: State) -> np.ndarray:
    """−∫ D dP along the scenario's demand curve from P0 to P (closed form, η = 1 included)."""
    eta = np.broadcast_to(cal.eta, st.P.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        lnPr = np.where(cal.consumer, np.log(st.P / cal.P0), 0.0)
    area = _powm1_over(lnPr, 1.0 - eta)
    out = -np.where(cal.consumer, cal.D0 * inst.demand_mult * cal.P0, 0.0) * area
    return np.where(cal.consumer, out, 0.0)
