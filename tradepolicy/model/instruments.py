"""Policy instruments as batched arrays: what measures write and the model reads.

Every array has a leading scenario axis ``B``; ``N`` is the number of regions, ``K`` the number
of complementarity pairs (padded to the largest scenario). Measures never touch the model's
equations: they only fill these arrays (and book welfare afterwards).

Landed price of origin o's variety in destination d::

    fob_od = p_o (1 + x_od) + Σ_k λ_k C_fob[k,o,d]
    pre_od = fob_od (1 + t_od + Σ_k λ_k C_adv[k,o,d]) + Σ_k λ_k C_add[k,o,d]
    q_od   = max(pre_od, min(floor_od, pre_od + levy_cap_od))     (variable levy)

Complementarity pair k: ``lo_k ≤ λ_k ≤ hi_k  ⟂  g_k = g0_k + Σ_od G[k,o,d] X_od`` (λ at its
lower bound needs g ≥ 0, at its upper bound g ≤ 0, inside g = 0). Pairs that a scenario does
not use are padded with ``g0 = 1, G = 0`` so their λ is 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass
class Instruments:
    """Batched policy arrays for B scenarios on an N-region market."""

    export_tax: np.ndarray  # (B,N,N) ad valorem x_od
    tariff: np.ndarray  # (B,N,N) ad valorem t_od
    supply_mult: np.ndarray  # (B,N) capacity factor (1 - shock)
    demand_mult: np.ndarray  # (B,N) demand factor (1 + shift)
    floor: np.ndarray  # (B,N,N) landed floor (0 = none)
    levy_cap: np.ndarray  # (B,N,N) per-unit cap on the levy (inf = none)
    available: np.ndarray  # (B,N,N) bool: False removes the variety (a ban)
    support_strike: np.ndarray  # (B,N) producer top-up max(0, K - p) ...
    support_share: np.ndarray  # (B,N) ... minus share * max(0, p - upper)
    support_upper: np.ndarray  # (B,N)
    support_volume: np.ndarray  # (B,N) covered volume (inf = all output)
    variety_purchase: np.ndarray  # (B,N) public purchases of origin o's variety
    composite_purchase: np.ndarray  # (B,N) public net purchase of d's composite
    # complementarity pairs
    lam_lo: np.ndarray  # (B,K)
    lam_hi: np.ndarray  # (B,K)
    lam_scale: np.ndarray  # (B,K) λ = scale * unknown (solver works with scaled unknowns)
    C_fob: np.ndarray  # (B,K,N,N)
    C_adv: np.ndarray  # (B,K,N,N)
    C_add: np.ndarray  # (B,K,N,N)
    g0: np.ndarray  # (B,K)
    G: np.ndarray  # (B,K,N,N)
    g_scale: np.ndarray  # (B,K)
    pair_labels: list[list[str]] = field(default_factory=list)  # per scenario, per pair
    levy_to_exporter: np.ndarray | None = None  # (B,N,N) bool: undertaking margin kept by o
    infeasible: list[str] = field(default_factory=list)  # per scenario: why it cannot solve
    _relative_wedge: tuple[np.ndarray, np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def B(self) -> int:
        return self.tariff.shape[0]

    @property
    def N(self) -> int:
        return self.tariff.shape[1]

    @property
    def K(self) -> int:
        return self.g0.shape[1]

    @cached_property
    def export_factor(self) -> np.ndarray:
        """1 + x_od."""
        return 1.0 + self.export_tax

    @cached_property
    def tariff_factor(self) -> np.ndarray:
        """1 + t_od."""
        return 1.0 + self.tariff

    @cached_property
    def ln_wedge(self) -> np.ndarray:
        """ln((1 + x_od)(1 + t_od)): the border wedge between p_o and the landed price."""
        return np.log(self.border_factor)

    @cached_property
    def border_factor(self) -> np.ndarray:
        """(1 + x_od)(1 + t_od)."""
        return self.export_factor * self.tariff_factor

    @cached_property
    def pairs_used(self) -> np.ndarray:
        """(B,) number of complementarity pairs each scenario uses (the rest is padding)."""
        if not self.K:
            return np.zeros(self.B, dtype=int)
        used = (self.G != 0).any(axis=(2, 3)) | (self.g0 != 1.0)
        for C in (self.C_fob, self.C_adv, self.C_add):
            used |= (C != 0).any(axis=(2, 3))
        # pairs are written first to last, padding only at the end
        return np.where(used.any(axis=1), self.K - np.argmax(used[:, ::-1], axis=1), 0)

    def trim(self, k: int) -> Instruments:
        """The same scenarios with only the first ``k`` complementarity pairs."""
        if k >= self.K:
            return self
        kw = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in (
            "lam_lo",
            "lam_hi",
            "lam_scale",
            "g0",
            "g_scale",
            "C_fob",
            "C_adv",
            "C_add",
            "G",
        ):
            kw[name] = kw[name][:, :k]  # the pair axis is the second of every pair array
        kw["pair_labels"] = [labels[:k] for labels in self.pair_labels]
        kw.pop("_relative_wedge")
        out = Instruments(**kw)
        out._relative_wedge = self._relative_wedge
        return out

    def relative_wedge(self, ln_wedge0: np.ndarray) -> np.ndarray:
        """``ln_wedge − ln_wedge0`` (B,N,N), kept for the base wedges it was last asked for."""
        cached = self._relative_wedge
        if cached is None or cached[0] is not ln_wedge0:
            cached = (ln_wedge0, self.ln_wedge - ln_wedge0)
            self._relative_wedge = cached
        return cached[1]

    @cached_property
    def has_support(self) -> bool:
        return bool(np.any(self.support_strike > 0) or np.any(self.support_share > 0))

    @cached_property
    def has_ban(self) -> bool:
        return not bool(np.all(self.available))

    @cached_property
    def has_floor(self) -> bool:
        return bool(np.any(self.floor > 0))

    def take(self, idx: np.ndarray) -> Instruments:
        """The sub-batch of scenarios ``idx``."""
        kw = {
            name: getattr(self, name)[idx]
            for name in self.__dataclass_fields__
            if name not in ("pair_labels", "_relative_wedge", "levy_to_exporter", "infeasible")
        }
        rows = np.atleast_1d(idx)
        labels = [self.pair_labels[i] for i in rows] if self.pair_labels else []
        out = Instruments(
            **kw,
            pair_labels=labels,
            levy_to_exporter=None if self.levy_to_exporter is None else self.levy_to_exporter[idx],
            infeasible=[self.infeasible[i] for i in rows] if self.infeasible else [],
        )
        if self._relative_wedge is not None:
            base, rel = self._relative_wedge
            out._relative_wedge = (base, rel[idx])
        return out


@dataclass
class PairSpec:
    """One complementarity pair written by a measure (unbatched, one scenario)."""

    label: str
    lo: float = 0.0
    hi: float = np.inf
    scale: float = 1.0
    C_fob: np.ndarray | None = None
    C_adv: np.ndarray | None = None
    C_add: np.ndarray | None = None
    g0: float = 1.0
    G: np.ndarray | None = None
    g_scale: float = 1.0


class InstrumentBuilder:
    """Collects what measures write, scenario by scenario, then pads to arrays."""

    def __init__(self, n_scen: int, base_tariff: np.ndarray, base_export_tax: np.ndarray) -> None:
        B, N = n_scen, base_tariff.shape[0]
        self.B, self.N = B, N
        self.export_tax = np.broadcast_to(base_export_tax, (B, N, N)).copy()
        self.tariff = np.broadcast_to(base_tariff, (B, N, N)).copy()
        self.supply_mult = np.ones((B, N))
        self.demand_mult = np.ones((B, N))
        self.floor = np.zeros((B, N, N))
        self.levy_cap = np.full((B, N, N), np.inf)
        self.available = np.ones((B, N, N), dtype=bool)
        self.support_strike = np.zeros((B, N))
        self.support_share = np.zeros((B, N))
        self.support_upper = np.full((B, N), np.inf)
        self.support_volume = np.full((B, N), np.inf)
        self.variety_purchase = np.zeros((B, N))
        self.composite_purchase = np.zeros((B, N))
        self.levy_to_exporter = np.zeros((B, N, N), dtype=bool)
        self.infeasible = [""] * B
        self.pairs: list[list[PairSpec]] = [[] for _ in range(B)]

    def add_pair(self, b: int, pair: PairSpec) -> int:
        """Register a complementarity pair for scenario ``b``; returns its index k."""
        self.pairs[b].append(pair)
        return len(self.pairs[b]) - 1

    def build(self) -> Instruments:
        B, N = self.B, self.N
        K = max((len(p) for p in self.pairs), default=0)
        lo, hi = np.zeros((B, K)), np.full((B, K), np.inf)
        scale, g0, gs = np.ones((B, K)), np.ones((B, K)), np.ones((B, K))
        arrs = {k: np.zeros((B, K, N, N)) for k in ("C_fob", "C_adv", "C_add", "G")}
        labels: list[list[str]] = []
        for b, plist in enumerate(self.pairs):
            labels.append([p.label for p in plist] + [""] * (K - len(plist)))
            for k, p in enumerate(plist):
                lo[b, k], hi[b, k], scale[b, k] = p.lo / p.scale, p.hi / p.scale, p.scale
                g0[b, k], gs[b, k] = p.g0, p.g_scale
                for name in arrs:
                    val = getattr(p, name)
                    if val is not None:
                        arrs[name][b, k] = val * (p.scale if name.startswith("C_") else 1.0)
        return Instruments(
            export_tax=self.export_tax,
            tariff=self.tariff,
            supply_mult=self.supply_mult,
            demand_mult=self.demand_mult,
            floor=self.floor,
            levy_cap=self.levy_cap,
            available=self.available,
            support_strike=self.support_strike,
            support_share=self.support_share,
            support_upper=self.support_upper,
            support_volume=self.support_volume,
            variety_purchase=self.variety_purchase,
            composite_purchase=self.composite_purchase,
            levy_to_exporter=self.levy_to_exporter,
            infeasible=list(self.infeasible),
            lam_lo=lo,
            lam_hi=hi,
            lam_scale=scale,
            g0=g0,
            g_scale=gs,
            pair_labels=labels,
            **arrs,
        )
