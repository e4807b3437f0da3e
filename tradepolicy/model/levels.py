"""The levels Armington model (docs/model.md) in calibrated-share form, batched over scenarios.

Unknowns per scenario: ``z_o = ln(p_o / p0_o)`` for every producing origin and the scaled
complementarity variables ``λ_k``. With landed prices ``q_od`` (see :mod:`instruments`) and
``r_od = q_od / q0_od``::

    P_d / P0_d = (Σ_o w0_od r_od^(1-σ_d))^(1/(1-σ_d))        (geometric mean at σ_d = 1)
    D_d        = D0_d (P_d/P0_d)^(-η_d) (1 + shift_d)            private composite demand
    A_d        = max(0, D_d + public net composite purchases)   market purchases
    X_od       = X0_od r_od^(-σ_d) (P_d/P0_d)^(σ_d) A_d / D0_d
    S_o        = S0_o (p̃_o/p0_o)^(ε_o) (1 - shock_o)     (capacity-bounded: capacity_curve)
    F_o        = (S_o - Σ_d X_od - public purchases of o) / S0_o = 0

A stock release (a negative public purchase) cannot exceed what the region's users buy: once
it covers their whole demand, the region buys nothing from the market (``A_d = 0``) and the
rest stays in the stock; the release actually sold is ``D_d + purchases − A_d``.

``w0_od`` are base value shares at landed prices (with market access, the renormalised
``Instruments.access_weights``), ``D0_d = Σ_o X0_od`` and ``P0_d`` the base
unit value, so this is the CES system ``X_od = β_od q_od^(-σ) P^σ D`` with
``β_od = (X0_od/D0_d)(q0_od/P0_d)^σ`` and the baseline reproduces the data exactly. A zero
base flow stays zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from scipy import special

from tradepolicy.model.instruments import ADD, ADV, FOB, Instruments

_CD_TOL = 1e-9  # |1 - σ| below this uses the Cobb-Douglas limit
_SQRT_HALF = np.sqrt(0.5)
#: the fields of a Calibration that nothing is derived from at construction
_NOT_BASE = frozenset({"eps", "eta", "sigma", "utilisation"})
#: node sets whose :meth:`Calibration.block` base data one calibration keeps (a chain's stages)
_MAX_BLOCKS = 16


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
    #: chains (docs/chains.md): input coefficients C[i, j] (units of node i's composite per
    #: unit of node j's output) between the nodes (stage × region) of a stacked market
    C: np.ndarray | None = None
    #: base final demand and base value-added price, when they are not the chain's
    #: (a stage cut out of a stacked chain carries them; see :meth:`block`)
    final_demand0: np.ndarray | None = None
    value_added0: np.ndarray | None = None
    #: base capacity utilisation u0 in [0, 1), ``(N,)`` or ``(B, N)``: supply is bounded by
    #: the capacity ``S0 m / u0`` (see :func:`capacity_curve`); None or 0 = isoelastic
    utilisation: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._check_utilisation()
        self._derive_base()
        #: :meth:`block`'s calibrations of node sets, shared with every copy that keeps this
        #: one's base data (:meth:`_sharing_base`)
        self._blocks: dict[tuple[int, ...], Calibration] = {}

    def _check_utilisation(self) -> None:
        if self.utilisation is not None:
            u0 = np.asarray(self.utilisation, dtype=float)
            N = len(self.regions)
            if u0.ndim not in (1, 2) or u0.shape[-1] != N:
                raise ValueError(
                    f"Calibration.utilisation has shape {u0.shape}; expected ({N},) or "
                    f"(rows, {N}) (one base capacity utilisation per region)"
                )
            bad = ~(np.isfinite(u0) & (u0 >= 0.0) & (u0 < 1.0))
            if bad.any():
                at = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(
                    f"Calibration.utilisation{list(at)} = {float(u0[at])!r} (region "
                    f"{self.regions[at[-1]]}): base capacity utilisation must be in [0, 1)"
                )
            # all zeros: the isoelastic curve, on exactly today's code path
            self.utilisation = u0 if np.any(u0 > 0.0) else None

    def _derive_base(self) -> None:
        """The base quantities (prices, flows, shares) derived from the base data alone
        (``p0``, ``X0``, ``t0``, ``x0``, ``C``, ``final_demand0``, ``value_added0``)."""
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
        # Σ_o w0_od, one up to rounding (1 where nothing is consumed)
        self.w0sum = np.where(self.E0 > 0, self.w0.sum(axis=0), 1.0)
        self.producer = self.S0 > 0
        self.consumer = self.D0 > 0
        # chains: final demand is use less the input demand of the region's own makers
        # (D0f = D0 − C S0) and producers earn the value added v0 = p0 − Cᵀ P0
        P0n = np.where(self.consumer, self.P0, 0.0)
        if self.final_demand0 is not None:
            self.Df0 = self.final_demand0
        elif self.C is not None:
            self.Df0 = np.maximum(self.D0 - input_demand(self.C, self.S0), 0.0)
        else:
            self.Df0 = self.D0
        if self.value_added0 is not None:
            self.v0 = self.value_added0
        elif self.C is not None:
            self.v0 = self.p0 - input_cost(self.C, P0n)
        else:
            self.v0 = self.p0
        #: unit input cost at base, Σ_i C[i,j] P0_i (zero outside chains)
        self.c0 = self.p0 - self.v0

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

    @cached_property
    def is_chain(self) -> bool:
        """Whether nodes are coupled by input coefficients (a stacked chain); read by every
        evaluation, computed once (``C`` is never changed in place)."""
        return self.C is not None and bool(np.any(self.C))

    def _sharing_base(self, **changes: Any) -> Calibration:
        """A copy with other elasticities or utilisation (``changes``), sharing this one's
        base data and what is derived from it alone (never changed in place), which is then
        not derived again: the same numbers as a new :class:`Calibration` of those fields."""
        if not set(changes) <= _NOT_BASE:
            raise ValueError(f"only {sorted(_NOT_BASE)} may differ, not {sorted(changes)}")
        out = object.__new__(Calibration)
        out.__dict__.update(self.__dict__)  # (a shallow copy; copy.copy is slower)
        for name, value in changes.items():
            setattr(out, name, value)
        out._check_utilisation()
        return out

    def with_utilisation(self, utilisation: np.ndarray | None) -> Calibration:
        """A copy with another base capacity utilisation (see :attr:`utilisation`)."""
        return self._sharing_base(utilisation=utilisation)

    def take_rows(self, idx: np.ndarray, B: int) -> Calibration:
        """The calibration of scenarios ``idx`` of a batch of ``B`` (elasticities and chain
        coefficients that vary by scenario are cut; the rest is shared)."""

        def cut(a: np.ndarray, n: int) -> np.ndarray:
            if np.ndim(a) < n:
                return a
            return np.broadcast_to(a, (B, *np.shape(a)[1:]))[idx]

        def pick(a: np.ndarray | None, n: int) -> np.ndarray | None:
            return None if a is None else cut(a, n)

        per_row = self.C is not None and self.C.ndim == 3
        per_row |= self.utilisation is not None and self.utilisation.ndim == 2
        if all(np.ndim(a) == 1 for a in (self.eps, self.eta, self.sigma)) and not per_row:
            return self
        if not any(
            a is not None and np.ndim(a) >= n
            for a, n in ((self.C, 3), (self.final_demand0, 2), (self.value_added0, 2))
        ):  # the base data are shared: what is derived from them alone too
            return self._sharing_base(
                eps=cut(self.eps, 2),
                eta=cut(self.eta, 2),
                sigma=cut(self.sigma, 2),
                utilisation=pick(self.utilisation, 2),
            )
        return Calibration(
            regions=self.regions,
            p0=self.p0,
            X0=self.X0,
            t0=self.t0,
            x0=self.x0,
            eps=cut(self.eps, 2),
            eta=cut(self.eta, 2),
            sigma=cut(self.sigma, 2),
            C=pick(self.C, 3),
            final_demand0=pick(self.final_demand0, 2),
            value_added0=pick(self.value_added0, 2),
            utilisation=pick(self.utilisation, 2),
        )

    def block(self, nodes: np.ndarray) -> Calibration:
        """The calibration of the nodes ``nodes`` alone (one stage of a stacked chain),
        keeping their final demand and value added (what the stage's welfare reads).

        The base data of a node set are cut once per base (read-only arrays, shared by the
        copies of this calibration with other elasticities or utilisation) and only the
        elasticities and utilisation cut at each call: the same numbers as cutting them all.
        """

        def cut(a: np.ndarray) -> np.ndarray:
            return a[..., nodes]

        key = tuple(int(i) for i in nodes)
        fixed = self._blocks.get(key)
        if fixed is None:
            fixed = self._base_block(np.asarray(nodes))
            if len(self._blocks) < _MAX_BLOCKS:
                self._blocks[key] = fixed
        return fixed._sharing_base(
            eps=cut(np.asarray(self.eps)),
            eta=cut(np.asarray(self.eta)),
            sigma=cut(np.asarray(self.sigma)),
            utilisation=None if self.utilisation is None else self.utilisation[..., nodes],
        )

    def _base_block(self, nodes: np.ndarray) -> Calibration:
        """:meth:`block`'s base data of ``nodes`` (elasticities cut, no utilisation), with
        what is derived from them, read-only."""
        ix = np.ix_(nodes, nodes)
        out = Calibration(
            regions=tuple(self.regions[i] for i in nodes),
            p0=self.p0[nodes],
            X0=self.X0[ix],
            t0=self.t0[ix],
            x0=self.x0[ix],
            eps=np.asarray(self.eps)[..., nodes],
            eta=np.asarray(self.eta)[..., nodes],
            sigma=np.asarray(self.sigma)[..., nodes],
            final_demand0=self.Df0[..., nodes],
            value_added0=self.v0[..., nodes],
        )
        for name, value in vars(out).items():
            if isinstance(value, np.ndarray) and name not in _NOT_BASE:
                value.flags.writeable = False
        return out

    def with_elasticities(
        self,
        eps: np.ndarray | None = None,
        eta: np.ndarray | None = None,
        sigma: np.ndarray | None = None,
    ) -> Calibration:
        """A copy with other (possibly per-scenario ``(B,N)``) elasticities."""
        return self._sharing_base(
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
    parts: JacobianParts | None = None  # what the Jacobian needs, from evaluate(keep=True)
    input_cost: np.ndarray | None = None  # (B,N) chains: unit input cost Σ_i C[i,o] P_i
    derived: np.ndarray | None = None  # (B,N) chains: makers' demand for the composite

    def block(self, nodes: np.ndarray, pairs: slice) -> State:
        """The state of nodes ``nodes`` and complementarity pairs ``pairs`` alone (one stage
        of a stacked chain; no Jacobian)."""
        out: dict[str, np.ndarray | None] = {}
        for name, val in self.__dict__.items():
            if name in ("J", "parts") or val is None:
                out[name] = None
            elif name in ("lam", "g"):
                out[name] = val[:, pairs]
            elif name == "residual":
                out[name] = val
            elif name == "F":
                out[name] = np.concatenate([val[:, nodes], val[:, self.p.shape[1] :][:, pairs]], 1)
            elif val.ndim == 3:
                out[name] = val[:, nodes][:, :, nodes]
            else:
                out[name] = val[:, nodes]
        return State(**out)  # type: ignore[arg-type]  # (the fields a State had)


@dataclass
class JacobianParts:
    """Intermediate results of :func:`evaluate` that :func:`jacobian_of` starts from."""

    sigma: np.ndarray  # (B,N)
    eta: np.ndarray  # (B,N)
    D: np.ndarray  # (B,N)
    A: np.ndarray  # (B,N)
    X: np.ndarray  # (B,N,N)
    s: np.ndarray  # (B,N,N) value shares
    q: np.ndarray  # (B,N,N)
    dS: np.ndarray  # (B,N) dS_o/dz_o
    w: np.ndarray  # (B,N,N) base weights with bans, or (N,N) when nothing is banned
    hq: np.ndarray | float  # (B,N,N) dq/dpre, or 1.0 without a floor
    pe: np.ndarray | None  # (B,N,N) p_o (1 + x_od); None on the plain path
    tau1: np.ndarray  # (B,N,N) 1 + τ_od
    fob: np.ndarray | None  # (B,N,N)
    Xg: np.ndarray | None  # (B,K,M) flows at the pairs' cells
    dphi_dx: np.ndarray | None  # (B,K)
    dphi_dg: np.ndarray | None  # (B,K)
    plain: bool
    dSc: np.ndarray | None = None  # (B,N) chains: dS_o / d(unit input cost of o)
    Pn: np.ndarray | None = None  # (B,N) chains: composite price (0 where nothing is used)

    def take(self, rows: np.ndarray) -> JacobianParts:
        """The parts of scenarios ``rows``."""
        B = self.X.shape[0]
        kw = {}
        for name, val in self.__dict__.items():
            per_row = isinstance(val, np.ndarray) and not (name == "w" and val.ndim == 2)
            kw[name] = val[rows] if per_row and val.shape[0] == B else val
        return JacobianParts(**kw)


def _fb(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fischer–Burmeister φ(a,b) = √(a²+b²) − a − b and its partial derivatives."""
    r = np.hypot(a, b)
    pos = r > 0
    safe = np.where(pos, r, 1.0)  # (a division: exactly 0 for a slack pair, b/b − 1)
    da = np.where(pos, a / safe - 1.0, _SQRT_HALF - 1.0)
    db = np.where(pos, b / safe - 1.0, _SQRT_HALF - 1.0)
    return r - a - b, da, db


def box_fb(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Billups' box Fischer–Burmeister function for ``lo ≤ x ≤ hi ⟂ g``.

    Returns Φ, ∂Φ/∂x, ∂Φ/∂g. Zero iff x = lo and g ≥ 0, x = hi and g ≤ 0, or lo < x < hi
    and g = 0.
    """
    at = np.flatnonzero(np.isfinite(hi))  # ψ = φ(hi − x, −g) there, → g as hi → ∞
    inner = np.array(g, dtype=float)
    dinner_dx, dinner_dg = np.zeros(inner.shape), np.ones(inner.shape)
    if at.size:
        psi, psi_a, psi_b = _fb(hi.flat[at] - x.flat[at], -inner.flat[at])
        inner.flat[at], dinner_dx.flat[at], dinner_dg.flat[at] = psi, -psi_a, -psi_b
    phi, pa, pb = _fb(x - lo, inner)
    return phi, pa + pb * dinner_dx, pb * dinner_dg


def box_mid(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The natural residual ``Φ = x − mid(lo, x − g, hi)`` for ``lo ≤ x ≤ hi ⟂ g``.

    Returns Φ, ∂Φ/∂x, ∂Φ/∂g: ``x − lo`` (1, 0) where ``x − g ≤ lo``, ``x − hi`` (1, 0) where
    ``x − g ≥ hi``, else ``g`` (0, 1). Zero exactly where :func:`box_fb` is; piecewise linear,
    so Newton's steps see no curvature from the pair itself (the solver's first pass).
    """
    y = x - g
    below = y <= lo
    above = ~below & (y >= hi)
    edge = below | above
    phi = np.where(below, x - lo, np.where(above, x - hi, g))
    dx = np.where(edge, 1.0, 0.0)
    return phi, dx, 1.0 - dx


#: the complementarity functions the solver may use for the pairs (``evaluate(pairs=...)``)
PAIR_FUNCTIONS = {"fb": box_fb, "mid": box_mid}


def input_cost(C: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Unit input cost ``c_j = Σ_i C[i,j] P_i`` (C ``(N,N)`` or one per row ``(B,N,N)``)."""
    if C.ndim == 3:
        return np.einsum("...i,...ij->...j", P, C)
    return P @ C


def input_demand(C: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Makers' demand for each node's composite ``Σ_j C[i,j] S_j``."""
    if C.ndim == 3:
        return np.einsum("...ij,...j->...i", C, S)
    return S @ C.T


def capacity_curve(r: np.ndarray, eps: np.ndarray, u0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Capacity-bounded supply relative to base, ``g = S/(S0 m)``, and its elasticity.

    ``g = (1 + a)/(1 + a r^(−b))`` with ``a = (1 − u0)/u0``, ``b = ε/(1 − u0)`` and ``r`` the
    price (value added) relative to base: g(1) = 1, d ln g/d ln r = ``b (1 − u0 g)`` (ε at the
    base), and ``g < 1/u0`` (output below capacity ``S0 m/u0``) for every price. Where
    ``u0 = 0`` the isoelastic ``g = r^ε`` (elasticity ε) holds.
    """
    lg = u0 > 0.0
    us = np.where(lg, u0, 0.5)
    a, b = (1.0 - us) / us, eps / (1.0 - us)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        g = np.where(lg, (1.0 + a) / (1.0 + a * r ** (-b)), r**eps)
    return g, np.where(lg, b * (1.0 - u0 * g), eps)


def capacity_inverse(g: np.ndarray, eps: np.ndarray, u0: np.ndarray | None) -> np.ndarray:
    """The inverse of :func:`capacity_curve` (isoelastic where ``u0`` is None or 0): the
    relative price ``r`` at which supply is ``g`` times base (∞ at or beyond capacity)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iso = g ** (1.0 / np.where(eps > 0, eps, 1.0))
        if u0 is None:
            return iso
        lg = u0 > 0.0
        us = np.where(lg, u0, 0.5)
        a, b = (1.0 - us) / us, eps / (1.0 - us)
        u = us * g
        inv = np.where(u < 1.0, (a * u / (1.0 - u)) ** (1.0 / np.where(b > 0, b, 1.0)), np.inf)
        return np.where(lg, inv, iso)


def _support_supply(
    cal: Calibration,
    inst: Instruments,
    p: np.ndarray,
    c: np.ndarray | float,
    eps: np.ndarray,
    S0: np.ndarray,
    m: np.ndarray,
    u0: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """Supply ``S = S0 m (v / v0)^ε`` on ``v = p̃ − c`` with price-gap support regimes
    (capacity-bounded, :func:`capacity_curve`, where the base utilisation ``u0`` > 0).

    In a single market ``c = 0`` and ``v0 = p0`` (the arithmetic is then that of a plain
    producer price); in a chain ``c`` is the makers' unit input cost (docs/chains.md).
    Top-up (f ≥ 0) on min(S, V): marginal revenue p + f up to V, then p (a kink at V).
    Claw-back (f < 0) with a covered volume: settled on the contract volume V whatever the
    output (a payment-on-output claw-back would make supply jump and leave some markets
    without a clearing price), so output responds to p only. Returns the top-up ``f``,
    ``S``, ``dS/dz`` (own price), ``dS/dc``, the marginal producer price (output-price level)
    and the covered volume.
    """
    if inst.has_support:
        K1, th, K2, V = (
            inst.support_strike,
            inst.support_share,
            inst.support_upper,
            inst.support_volume,
        )
        f = np.maximum(0.0, K1 - p) - th * np.maximum(0.0, p - K2)
        fprime = -(p < K1).astype(float) - th * (p > K2)
    else:
        f = np.zeros_like(p)
        fprime = f
        V = np.full_like(p, np.inf)
    pc = p + f
    va, vb = p - c, pc - c
    with np.errstate(divide="ignore", invalid="ignore"):
        ra = np.maximum(va, 0.0) / cal.v0
        rb = np.maximum(vb, 0.0) / cal.v0
    Ea: np.ndarray | float
    Eb: np.ndarray | float
    if u0 is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            Sa = S0 * m * ra**eps
            Sb = S0 * m * rb**eps
        Ea = Eb = eps
    else:
        ga, Ea = capacity_curve(ra, eps, u0)
        gb, Eb = capacity_curve(rb, eps, u0)
        Sa, Sb = S0 * m * ga, S0 * m * gb
    pos = f >= 0
    finite = np.isfinite(V)
    reg_b = np.where(pos, Sb <= V, ~finite)
    reg_a = ~reg_b & np.where(pos, Sa >= V, True)
    S = np.where(reg_b, Sb, np.where(reg_a, Sa, V))
    with np.errstate(divide="ignore", invalid="ignore"):
        pv = c + cal.v0 * capacity_inverse(V / (S0 * m), eps, u0)
        va_s, vb_s = np.where(va > 0, va, 1.0), np.where(vb > 0, vb, 1.0)
        dSa = np.where(va > 0, Ea * Sa * (p / va_s), 0.0)  # (p / va = 1 without inputs)
        dSb = np.where(vb > 0, Eb * Sb * (1.0 + fprime) * p / vb_s, 0.0)
        dSc = np.where(
            reg_b,
            np.where(vb > 0, -Eb * Sb / vb_s, 0.0),
            np.where(reg_a & (va > 0), -Ea * Sa / va_s, 0.0),
        )
    p_marg = np.where(reg_b, pc, np.where(reg_a, p, pv))
    dS = np.where(reg_b, dSb, np.where(reg_a, dSa, 0.0))
    if inst.has_support:
        covered = np.where(finite, np.where(pos, np.minimum(S, V), V), S)
    else:
        covered = np.zeros_like(p)
    return f, S, dS, dSc, p_marg, covered


def _powm1_over(lnr: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(exp(k·lnr) − 1)/k, continuous at k = 0 (→ lnr)."""
    small = np.abs(k) < 1e-12
    ksafe = np.where(small, 1.0, k)
    return np.where(small, lnr, np.expm1(k * lnr) / ksafe)


def evaluate(
    cal: Calibration,
    inst: Instruments,
    u: np.ndarray,
    jacobian: bool = True,
    lean: bool = False,
    keep: bool = False,
    pairs: str = "fb",
) -> State:
    """Evaluate the model at unknowns ``u`` (B, N+K): residuals and (optionally) Jacobian.

    ``pairs``: the complementarity function of the pair rows, ``"fb"`` (Fischer–Burmeister,
    :func:`box_fb`) or ``"mid"`` (the natural residual, :func:`box_mid`); both are zero
    exactly at the same points.

    ``lean=True`` lets the solver skip ``fob`` and ``levy`` where the landed price is the
    producer price times fixed wedges (they are ``None`` then: ``p·(1+x)`` and zero).
    ``keep=True`` (without the Jacobian) keeps what :func:`jacobian_of` needs in ``parts``, so
    the Jacobian of some of the scenarios can follow without evaluating them again.
    """
    B, N, K = inst.B, cal.N, inst.K
    z, lt = u[:, :N], u[:, N:]
    lam = lt * inst.lam_scale
    sigma = np.broadcast_to(cal.sigma, (B, N))
    eta = np.broadcast_to(cal.eta, (B, N))
    eps = np.broadcast_to(cal.eps, (B, N))

    p = cal.p0 * np.exp(z)
    # -- landed prices ------------------------------------------------------------------
    plain = not K and not inst.has_floor  # landed price = producer price × fixed wedges
    pe = None if plain and lean else p[:, :, None] * inst.export_factor  # p_o (1 + x_od)
    fob = pe
    if K:  # Σ_k λ_k C[k] at the pairs' cells
        cells = inst.pair_cells
        wedge = cells.to_wedges(lt[:, :, None] * inst.wedge_coef)
        fob = pe + wedge[FOB]
        tau1 = inst.tariff_factor + wedge[ADV]  # 1 + τ
        pre = fob * tau1 + wedge[ADD]
    else:
        tau1 = inst.tariff_factor
        pre = p[:, :, None] * inst.border_factor
    levy: np.ndarray | None
    hq: np.ndarray | float
    if inst.has_floor:
        gap = np.where(inst.floor > 0, inst.floor - pre, -np.inf)  # only where a floor is set
        levy = np.clip(gap, 0.0, inst.levy_cap)
        hq = 1.0 - ((gap > 0) & (gap < inst.levy_cap))  # dq/dpre: 0 while levied to the floor
        q = pre + levy
    else:
        levy = None if fob is None else np.zeros(pre.shape)  # lean: both left out
        hq = 1.0
        q = pre

    # -- composite price and flows --------------------------------------------------------
    # base shares, with market access (variety weights) when any differs from one
    w0 = inst.access_weights(cal.w0, cal.w0sum) if inst.has_access else cal.w0
    w = np.where(inst.available, w0, 0.0) if inst.has_ban else w0
    if plain:  # ln(q/q0) without a logarithm per element
        lnr = z[:, :, None] + inst.relative_wedge(cal.ln_wedge0)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            lnr = np.log(q / cal.q0)
    one_m = 1.0 - sigma  # (B,N)
    cd = np.abs(one_m) < _CD_TOL
    # CES value shares s = w r^(1-σ) / Σ w r^(1-σ) and ln(P/P0) = ln(Σ_o w r^(1-σ)) / (1-σ).
    # Near the base (every |(1-σ) ln r| ≤ 1) written as ln(W/W0) + ln(1 + T/W) with
    # W = Σ_o w (what is left of the base shares, W0 = Σ_o w0) and T = Σ_o w (r^(1-σ) − 1):
    # exact at the base whatever the rounding of W0, and well conditioned as σ → 1. Further
    # away, as a sum shifted by the largest exponent (no overflow, no cancellation).
    ex = one_m[:, None, :] * lnr
    ones = np.ones(N)
    with np.errstate(over="ignore", invalid="ignore"):
        term = w * np.expm1(ex)
        T = ones @ term  # Σ_o (a matrix product is much faster than .sum on small axes)
        far = np.max(np.where(w > 0, np.abs(ex), 0.0), axis=1) > 1.0
    removed = ones @ np.where(inst.available, 0.0, w0) if inst.has_ban else 0.0
    W = cal.w0sum - removed
    ssum = W + T
    div = np.where(cd, 1.0, one_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        lnW = np.log1p(-removed / cal.w0sum) if inst.has_ban else 0.0
        lnPr = (lnW + np.log1p(T / np.where(W > 0, W, 1.0))) / div
        s = (w + term) * (1.0 / np.where(ssum > 0, ssum, 1.0))[:, None, :]
    far |= ~(np.isfinite(ssum) & (ssum > 0)) & cal.consumer
    if far.any():
        wpos = w > 0
        shift = np.max(np.where(wpos, ex, -np.inf), axis=1)
        shift = np.where(np.isfinite(shift), shift, 0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            term = np.where(wpos, w * np.exp(ex - shift[:, None, :]), 0.0)
        ssum = ones @ term
        ssafe = np.where(ssum > 0, ssum, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lnPr = np.where(far, (np.log(ssafe) + shift - np.log(cal.w0sum)) / div, lnPr)
        s = np.where(far[:, None, :], term * (1.0 / ssafe)[:, None, :], s)
    if cd.any():  # Cobb-Douglas importers: geometric mean, constant value shares
        cols = np.flatnonzero(cd.any(axis=0))  # (only the importers concerned)
        wc, cdc = w[..., cols], cd[:, cols]
        wsum = np.sum(wc, axis=-2)
        wsum = np.where(wsum > 0, wsum, 1.0)
        ln_P_cd = np.sum(np.where(wc > 0, wc * lnr[:, :, cols], 0.0), axis=-2) / wsum
        s[:, :, cols] = np.where(cdc[:, None, :], wc / wsum[..., None, :], s[:, :, cols])
        lnPr[:, cols] = np.where(cdc, ln_P_cd, lnPr[:, cols])
    lnPr = np.where(cal.consumer, lnPr, 0.0)
    P = cal.P0 * np.exp(lnPr)
    # -- supply -------------------------------------------------------------------------
    m = inst.supply_mult
    prod = cal.producer
    S0 = np.where(prod, cal.S0, 1.0)
    chain = cal.is_chain
    u0 = None if cal.utilisation is None else np.broadcast_to(cal.utilisation, (B, N))
    c_in = derived = dSc = Pn = None
    if chain and cal.C is not None:  # supply answers the value added v = p̃ − c (chains.md)
        Pn = np.where(cal.consumer, P, 0.0)
        c_in = input_cost(cal.C, Pn)
        f, S, dS, dSc, p_marg, covered = _support_supply(cal, inst, p, c_in, eps, S0, m, u0)
        S, dS, dSc = (np.where(prod, a, 0.0) for a in (S, dS, dSc))
        derived = input_demand(cal.C, S)
    elif inst.has_support:
        f, S, dS, _, p_marg, covered = _support_supply(cal, inst, p, 0.0, eps, S0, m, u0)
    else:
        f = np.zeros_like(p)
        if u0 is None:
            S = S0 * m * np.exp(eps * z)
            dS = eps * S
        else:  # capacity-bounded where u0 > 0 (the isoelastic curve elsewhere, as above)
            lg = u0 > 0.0
            us = np.where(lg, u0, 0.5)
            a, b = (1.0 - us) / us, eps / (1.0 - us)
            with np.errstate(over="ignore"):
                g = (1.0 + a) / (1.0 + a * np.exp(-b * z))
            S = np.where(lg, S0 * m * g, S0 * m * np.exp(eps * z))
            dS = np.where(lg, b * (1.0 - u0 * g) * S, eps * S)
        p_marg = p
        covered = np.zeros_like(p)
    S = np.where(prod, S, 0.0)

    D = np.where(cal.consumer, cal.Df0 * np.exp(-eta * lnPr) * inst.demand_mult, 0.0)
    # market purchases; a release beyond users' demand is not sold (it stays in the stock)
    # (chains: plus what the region's makers of other stages buy as inputs)
    A = np.maximum(D + inst.composite_purchase + (0.0 if derived is None else derived), 0.0)
    # flows: value share × expenditure / price
    PA = np.where(cal.consumer, P * A, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        X = s * PA[:, None, :] / q
    if not plain:
        X = np.where(w > 0, X, 0.0)

    F = np.empty((B, N + K))
    excess = (S - X @ ones - inst.variety_purchase) / S0
    F[:, :N] = excess if prod.all() else np.where(prod, excess, z)
    if K:
        Xg = cells.at(X)  # (B,K,M) flows at the pairs' cells
        graw = inst.g0 + (inst.g_coef * Xg) @ np.ones(Xg.shape[2])
        g = graw / inst.g_scale
        phi, dphi_dx, dphi_dg = PAIR_FUNCTIONS[pairs](lt, inst.lam_lo, inst.lam_hi, g)
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
        input_cost=c_in,
        derived=derived,
    )
    if not (jacobian or keep):
        return state
    with_pairs = K > 0
    parts = JacobianParts(
        sigma=sigma,
        eta=eta,
        D=D,
        A=A,
        X=X,
        s=s,
        q=q,
        dS=dS,
        w=w,
        hq=hq,
        pe=pe,
        tau1=tau1,
        fob=fob,
        Xg=Xg if with_pairs else None,
        dphi_dx=dphi_dx if with_pairs else None,
        dphi_dg=dphi_dg if with_pairs else None,
        plain=plain,
        dSc=dSc,
        Pn=Pn,
    )
    if jacobian:
        state.J = jacobian_of(cal, inst, parts)
    else:
        state.parts = parts
    return state


def jacobian_of(cal: Calibration, inst: Instruments, parts: JacobianParts) -> np.ndarray:
    """The analytic Jacobian (B, N+K, N+K) from the parts :func:`evaluate` kept."""
    B, N, K = inst.B, cal.N, inst.K
    sigma, eta, D, A, X, s, q = parts.sigma, parts.eta, parts.D, parts.A, parts.X, parts.s, parts.q
    dS, w, hq, pe, tau1, fob = parts.dS, parts.w, parts.hq, parts.pe, parts.tau1, parts.fob
    sig_d = sigma[:, None, :]
    prod = cal.producer
    S0 = np.where(prod, cal.S0, 1.0)
    Apos = np.where(A > 0, A, 1.0)
    kappa = sigma - eta * D / Apos  # (B,N): d ln X_od / d ln P_d beyond the σ term
    Xk = X * kappa[:, None, :]
    if parts.plain:  # the landed price moves one for one with the producer price (in logs)
        Xa, sa = X, s
    else:  # aq = (dq_od/dz_o) / q_od, the elasticity of the landed price to p_o
        if pe is None:
            raise RuntimeError("Jacobian parts without p_o (1 + x_od) off the plain path")
        dq_dz = hq * pe * tau1  # rents do not move
        with np.errstate(divide="ignore"):
            rq = 1.0 / q
        aq = dq_dz * rq
        Xa, sa = X * aq, s * aq
    J = np.empty((B, N + K, N + K))
    Jzz = J[:, :N, :N]
    np.matmul(Xk, np.swapaxes(sa, 1, 2), out=Jzz)
    diag = J.reshape(B, -1)[:, :: N + K + 1]  # a view of the diagonal
    diag[:, :N] -= dS + np.matmul(Xa, sigma[:, :, None])[..., 0]
    Jzz *= -1.0 / S0[None, :, None]
    C, Pn, dSc = cal.C, parts.Pn, parts.dSc
    chain = C is not None and Pn is not None and dSc is not None
    if C is not None and Pn is not None and dSc is not None:  # input costs move with the
        # input stages' composite prices (docs/chains.md)
        CtP = np.swapaxes(np.broadcast_to(C, (B, N, N)), 1, 2) * Pn[:, None, :]  # C[i,j] P_i
        with np.errstate(divide="ignore", invalid="ignore"):
            XA = np.where(A[:, None, :] > 0, X / Apos[:, None, :], 0.0)  # d X_od / d A_d
        dc_dz = CtP @ np.swapaxes(sa, 1, 2)  # (B,j,k): d c_j / d z_k
        Gz = dSc[:, :, None] * dc_dz  # d S_j / d z_k through c_j
        G_all = Gz.copy()
        G_all.reshape(B, -1)[:, :: N + 1] += dS  # ... and through p_j
        extra = Gz - XA @ (C @ G_all)  # makers' input demand moves with their output
        Jzz += extra * (prod / S0)[None, :, None]
    if not prod.all():
        Jzz[:, ~prod, :] = np.eye(N)[~prod]
    if K:
        wpos = w > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(wpos, s * rq, 0.0)  # d ln P_d / d q_od
            Xsq = np.where(wpos, X * sig_d * rq, 0.0)
        a = dq_dz
        va = v * a
        # everything per pair is (B,K,M) at the pairs' cells; c = dq_od/dλ_k there
        cells, Xg, dphi_dx, dphi_dg = inst.pair_cells, parts.Xg, parts.dphi_dx, parts.dphi_dg
        if fob is None or Xg is None or dphi_dx is None or dphi_dg is None:
            raise RuntimeError("Jacobian parts without the pairs' terms in a batch with pairs")
        c = inst.wedge_coef.copy()
        for kind, factor in ((FOB, tau1), (ADV, fob)):  # C_fob (1 + τ) + fob C_adv + C_add
            at = cells.of_kind(kind)
            c.flat[at] *= factor.reshape(-1)[cells.gather[at]]
        if isinstance(hq, np.ndarray) and hq.ndim:
            c *= cells.at(hq)
        cv = cells.by_dest(c * cells.at(v))  # (B,K,N): Σ_o v_od c_kod
        Xsq_g = cells.at(Xsq)
        Jzl = np.swapaxes(cells.by_origin(c * Xsq_g), 1, 2)  # (B,N,K): Σ_d Xsq_od c_kod
        Jzl -= Xk @ np.swapaxes(cv, 1, 2)
        if chain and C is not None and dSc is not None:
            dc_dl = CtP @ np.swapaxes(cv, 1, 2)  # (B,j,K): d c_j / d λ_k
            Gl = dSc[:, :, None] * dc_dl
            dA_l = C @ Gl
            Jzl += Gl - XA @ dA_l
        np.divide(Jzl, S0[None, :, None], out=J[:, :N, N:])
        if not prod.all():
            J[:, np.flatnonzero(~prod), N:] = 0.0
        # rows of Φ: ∂Φ/∂g · dg/du, dg/du = Σ_od G_kod (dX_od/du) / g_scale_k
        Gf = inst.g_coef * (dphi_dg / inst.g_scale)[:, :, None]
        gxk = cells.by_dest(Gf * Xg) * kappa[:, None, :]  # (B,K,N)
        GXs = Gf * Xsq_g  # G_kod X_od σ_d / q_od
        dg_dz = np.matmul(gxk, np.swapaxes(va, 1, 2), out=J[:, N:, :N])
        dg_dz -= cells.by_origin(GXs * cells.at(a))
        dg_dl = np.matmul(gxk, np.swapaxes(cv, 1, 2), out=J[:, N:, N:])
        dg_dl -= cells.on_union(GXs) @ np.swapaxes(cells.on_union(c), 1, 2)
        if chain:  # the pairs' flows move with the makers' input demand too
            gA = cells.by_dest(Gf * Xg) / Apos[:, None, :] * (A > 0)[:, None, :]
            dg_dz += gA @ (C @ G_all)
            dg_dl += gA @ dA_l
        diag[:, N:] += dphi_dx
    return J


def initial_guess(cal: Calibration, inst: Instruments) -> np.ndarray:
    """Start at base prices with every complementarity variable at its lower bound."""
    u = np.zeros((inst.B, cal.N + inst.K))
    if inst.K:
        u[:, cal.N :] = np.where(np.isfinite(inst.lam_lo), inst.lam_lo, 0.0)
    return u


def producer_surplus_total(cal: Calibration, inst: Instruments, st: State) -> np.ndarray:
    """Producer surplus p·S + f·covered − C(S) with isoelastic costs (B,N).

    ``C(S) = p_marginal · S · ε/(1+ε)``, so without support PS = p·S/(1+ε). In a chain the
    unit input cost c comes off the price first: PS = (p − c)·S + f·covered − C_v(S) with
    ``C_v(S) = (p_marginal − c) · S · ε/(1+ε)`` (the value added's isoelastic cost). With a
    capacity-bounded curve (``cal.utilisation`` > 0) ``C_v`` is the area under it,
    :func:`capacity_cost`.
    """
    eps = np.broadcast_to(cal.eps, st.p.shape)
    c = 0.0 if st.input_cost is None else st.input_cost  # chains: the unit input cost
    cost = (st.p_marginal - c) * st.S * eps / (1.0 + eps)
    if cal.utilisation is not None:
        u0 = np.broadcast_to(cal.utilisation, st.p.shape)
        lg = (u0 > 0.0) & (eps > 0.0) & (st.S > 0.0)
        if lg.any():
            S0m = np.where(cal.producer, cal.S0, 1.0) * inst.supply_mult
            v0 = np.broadcast_to(cal.v0, st.p.shape)
            cost = cost.copy()
            v_m = np.broadcast_to(st.p_marginal - c, st.p.shape)  # the marginal value added
            cost[lg] = capacity_cost(st.S[lg], S0m[lg], v0[lg], eps[lg], u0[lg], v=v_m[lg])
    if st.input_cost is not None:
        return (st.p - c) * st.S + st.support * st.covered - cost
    return st.p * st.S + st.support * st.covered - cost


def capacity_cost(
    S: np.ndarray,
    S0m: np.ndarray,
    v0: np.ndarray,
    eps: np.ndarray,
    u0: np.ndarray,
    v: np.ndarray | None = None,
) -> np.ndarray:
    """``∫_0^S p(s) ds`` under the capacity-bounded supply curve (``u0`` > 0, ``ε`` > 0).

    With ``K = S0m/u0``, ``u = s/K`` and ``p(s) = v0 (a u/(1−u))^(1/b)``:
    ``∫ = K v0 a^(1/b) u^α/α · ₂F₁(α, 1/b; α+1; u)``, ``α = 1 + 1/b`` (an incomplete beta
    function), written as ``v0 S (a u)^(1/b)/α · ₂F₁`` (finite as u0 → 0, where it tends to
    the isoelastic ``v0 S (S/S0m)^(1/ε) ε/(1+ε)``). ∞ at or beyond capacity.

    With ``v``, the marginal (value-added) price at ``S``, the cost is read from the price
    side instead, ``C = v S − ∫_0^v S(x) dx`` with ``∫_0^v S(x) dx = K v (1 − ₂F₁(1, 1/b;
    1 + 1/b; −(v/v0)^b / a))``: the same number, and finite where a steep curve puts output
    within rounding of capacity (``u`` = 1 in floating point, where the form above is ∞).
    """
    a, ib = (1.0 - u0) / u0, (1.0 - u0) / eps  # 1/b
    if v is not None:
        K = S0m / u0
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            z = -np.exp(np.log(v / v0) / ib) / a
            F = special.hyp2f1(1.0, ib, 1.0 + ib, z)
            return v * S - K * v * (1.0 - F)
    alpha = 1.0 + ib
    u = u0 * S / S0m
    with np.errstate(invalid="ignore", over="ignore"):
        out = v0 * S * (a * u) ** ib / alpha * special.hyp2f1(alpha, ib, alpha + 1.0, u)
    return np.where(u < 1.0, out, np.inf)


def consumer_surplus_change(cal: Calibration, inst: Instruments, st: State) -> np.ndarray:
    """−∫ D dP along the scenario's demand curve from P0 to P (closed form, η = 1 included)."""
    eta = np.broadcast_to(cal.eta, st.P.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        lnPr = np.where(cal.consumer, np.log(st.P / cal.P0), 0.0)
    area = _powm1_over(lnPr, 1.0 - eta)
    out = -np.where(cal.consumer, cal.Df0 * inst.demand_mult * cal.P0, 0.0) * area
    return np.where(cal.consumer, out, 0.0)
