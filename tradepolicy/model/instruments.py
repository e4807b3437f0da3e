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

A pair touches a few cells (o, d) only (a row or a column of the market), so its coefficients
are stored as entries: entry m of pair k sits at the flat cell ``cell[b,k,m] = o·N + d``, puts
``wedge_coef`` into ``C_fob``, ``C_adv`` or ``C_add`` (``wedge[b,k,m]``: :data:`FOB`,
:data:`ADV` or :data:`ADD`) and ``g_coef`` into ``G`` there. (A cell with two kinds of wedge
has two entries; padding: cell 0 with zero coefficients.) The model gathers per-cell
quantities at these cells and sums back with :class:`PairCells`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

FOB, ADV, ADD = 0, 1, 2  # the wedge an entry's coefficient belongs to: C_fob, C_adv, C_add


#: the arrays with a complementarity-pair axis (always the second)
_PAIR_FIELDS = (
    "lam_lo",
    "lam_hi",
    "lam_scale",
    "g0",
    "g_scale",
    "cell",
    "slot",
    "wedge",
    "wedge_coef",
    "g_coef",
)


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
    cell: np.ndarray  # (B,K,M) int32: flat cell o·N + d of each entry (padding: 0)
    slot: np.ndarray  # (B,K,M) int32: the cell's rank among the cells the scenario's pairs use
    wedge: np.ndarray  # (B,K,M) int8: FOB, ADV or ADD
    wedge_coef: np.ndarray  # (B,K,M) that wedge's coefficient C at the cell
    g0: np.ndarray  # (B,K)
    g_coef: np.ndarray  # (B,K,M) G at the cell
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
        used = self.g0 != 1.0
        for coef in (self.g_coef, self.wedge_coef):
            used |= (coef != 0).any(axis=2)
        # pairs are written first to last, padding only at the end
        return np.where(used.any(axis=1), self.K - np.argmax(used[:, ::-1], axis=1), 0)

    @cached_property
    def pair_cells(self) -> PairCells:
        """Index arrays to gather per-cell quantities at the pairs' cells and sum them back."""
        return PairCells(self.cell, self.slot, self.wedge, self.N)

    @cached_property
    def G(self) -> np.ndarray:
        """(B,K,N,N) the pairs' slack coefficients as dense matrices (for bookkeeping)."""
        B, K, N = self.B, self.K, self.N
        at = (np.arange(B * K)[:, None] * (N * N) + self.cell.reshape(B * K, -1)).ravel()
        return np.bincount(at, self.g_coef.ravel(), minlength=B * K * N * N).reshape(B, K, N, N)

    def trim(self, k: int) -> Instruments:
        """The same scenarios with only the first ``k`` complementarity pairs."""
        if k >= self.K:
            return self
        kw = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in _PAIR_FIELDS:
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

    def take(
        self, idx: np.ndarray, model_only: bool = False, pairs: int | None = None
    ) -> Instruments:
        """The sub-batch of scenarios ``idx``.

        ``model_only=True`` (for the solver) leaves out what only the bookkeeping reads (pair
        labels, infeasibility messages, who collects a levy) and keeps this batch's ``has_*``
        flags (true of the whole batch, so safe for a part); ``pairs=k`` keeps only the
        first k complementarity pairs (as :meth:`trim`).
        """
        cut = slice(None) if pairs is None else slice(0, pairs)
        kw = {
            name: getattr(self, name)[idx, cut]
            if name in _PAIR_FIELDS
            else getattr(self, name)[idx]
            for name in self.__dataclass_fields__
            if name not in ("pair_labels", "_relative_wedge", "levy_to_exporter", "infeasible")
        }
        if model_only:
            out = Instruments(**kw)
            for flag in ("has_support", "has_ban", "has_floor"):
                if flag in self.__dict__:
                    out.__dict__[flag] = self.__dict__[flag]
        else:
            rows = np.atleast_1d(idx)
            lte = self.levy_to_exporter
            out = Instruments(
                **kw,
                pair_labels=[self.pair_labels[i][cut] for i in rows] if self.pair_labels else [],
                levy_to_exporter=None if lte is None else lte[idx],
                infeasible=[self.infeasible[i] for i in rows] if self.infeasible else [],
            )
        if self._relative_wedge is not None:
            base, rel = self._relative_wedge
            out._relative_wedge = (base, rel[idx])
        return out


class PairCells:
    """Flat indices to gather per-cell quantities at the pairs' entries and to sum them back.

    :meth:`at` reads a ``(B,N,N)`` array at every entry's cell; the sums add ``(B,K,M)``
    values (coefficient × gathered quantities, so padding adds zeros) with
    :func:`numpy.bincount` over pairs by wedge and cell, per pair by origin or destination,
    or per pair onto the ``U`` cells any pair of its scenario uses.
    """

    def __init__(self, cell: np.ndarray, slot: np.ndarray, wedge: np.ndarray, n: int) -> None:
        B, K, M = cell.shape
        self.shape = (B, K, M)
        self.n = n
        self._cell = cell.reshape(B, K * M)
        self._slot = slot
        self._wedge = wedge
        self.gather = (self._cell + np.arange(0, B * n * n, n * n)[:, None]).ravel()

    @cached_property
    def _by_wedge(self) -> np.ndarray:
        B, n = self.shape[0], self.n
        return self._wedge.ravel().astype(np.intp) * (B * n * n) + self.gather

    def of_kind(self, kind: int) -> np.ndarray:
        """Flat positions of the entries of one kind of wedge."""
        return self._kinds[kind]

    @cached_property
    def _kinds(self) -> dict[int, np.ndarray]:
        w = self._wedge.ravel()
        return {kind: np.flatnonzero(w == kind) for kind in (FOB, ADV)}

    @cached_property
    def _pair_base(self) -> np.ndarray:
        B, K, _ = self.shape
        return np.arange(B * K)[:, None] * self.n  # (B·K, 1): start of each pair's row

    @cached_property
    def origins(self) -> np.ndarray:
        B, K, M = self.shape
        return (self._cell.reshape(B * K, M) // self.n + self._pair_base).ravel()

    @cached_property
    def dests(self) -> np.ndarray:
        B, K, M = self.shape
        return (self._cell.reshape(B * K, M) % self.n + self._pair_base).ravel()

    @cached_property
    def U(self) -> int:
        return int(self._slot.max(initial=-1)) + 1

    @cached_property
    def union(self) -> np.ndarray:
        B, K, M = self.shape
        return (self._slot.reshape(B * K, M) + np.arange(B * K)[:, None] * self.U).ravel()

    def at(self, a: np.ndarray) -> np.ndarray:
        """``a[b, o, d]`` (B,N,N) at every entry's cell: (B,K,M)."""
        return a.reshape(-1)[self.gather].reshape(self.shape)

    def to_wedges(self, w: np.ndarray) -> np.ndarray:
        """Σ over pairs of (B,K,M) values, by wedge and cell: (3,B,N,N) for FOB, ADV, ADD."""
        B, n = self.shape[0], self.n
        out = np.bincount(self._by_wedge, w.reshape(-1), minlength=3 * B * n * n)
        return out.reshape(3, B, n, n)

    def by_origin(self, w: np.ndarray) -> np.ndarray:
        """Σ_d of (B,K,M) values per pair and origin: (B,K,N)."""
        B, K, _ = self.shape
        return np.bincount(self.origins, w.reshape(-1), minlength=B * K * self.n).reshape(
            B, K, self.n
        )

    def by_dest(self, w: np.ndarray) -> np.ndarray:
        """Σ_o of (B,K,M) values per pair and destination: (B,K,N)."""
        B, K, _ = self.shape
        return np.bincount(self.dests, w.reshape(-1), minlength=B * K * self.n).reshape(
            B, K, self.n
        )

    def on_union(self, w: np.ndarray) -> np.ndarray:
        """(B,K,M) values laid out on the scenario's used cells: (B,K,U), zero elsewhere."""
        B, K, _ = self.shape
        return np.bincount(self.union, w.reshape(-1), minlength=B * K * self.U).reshape(
            B, K, self.U
        )


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
        # which measure (index in its scenario) set a cell of an instrument that one measure
        # sets alone (see ApplyContext.claim); `current`: the measure being applied
        self.owners: dict[tuple[int, str], np.ndarray] = {}
        self.kinds: dict[tuple[int, int], str] = {}
        self.current: tuple[int, str] | None = None

    def add_pair(self, b: int, pair: PairSpec) -> int:
        """Register a complementarity pair for scenario ``b``; returns its index k."""
        self.pairs[b].append(pair)
        return len(self.pairs[b]) - 1

    def build(self) -> Instruments:
        """Pad every scenario's pairs to ``K`` and lay their coefficients out as entries.

        The entries of all pairs are found with array operations, in blocks of
        :data:`_BUILD_BLOCK` pairs (:func:`_block_entries` gives their order).
        """
        B, N = self.B, self.N
        counts = np.array([len(p) for p in self.pairs], dtype=np.intp)
        K = int(counts.max(initial=0))
        flat = [p for plist in self.pairs for p in plist]
        P = len(flat)
        rows = np.repeat(np.arange(B), counts)  # scenario of each pair
        ks = np.arange(P) - np.repeat(np.cumsum(counts) - counts, counts)  # its index k
        lo, hi = np.zeros((B, K)), np.full((B, K), np.inf)
        scale, g0, gs = np.ones((B, K)), np.ones((B, K)), np.ones((B, K))
        if P:
            sc = np.array([p.scale for p in flat], dtype=float)
            lo[rows, ks] = np.array([p.lo for p in flat], dtype=float) / sc
            hi[rows, ks] = np.array([p.hi for p in flat], dtype=float) / sc
            scale[rows, ks] = sc
            g0[rows, ks] = [p.g0 for p in flat]
            gs[rows, ks] = [p.g_scale for p in flat]
        labels = [[p.label for p in plist] + [""] * (K - len(plist)) for plist in self.pairs]
        parts = [_block_entries(flat[i : i + _BUILD_BLOCK], N) for i in range(0, P, _BUILD_BLOCK)]
        if parts:
            pair, pos, at, kind, c, g = (np.concatenate(col) for col in zip(*parts, strict=True))
            pair += np.repeat(np.arange(0, P, _BUILD_BLOCK), [p[0].size for p in parts])
        else:
            pair = pos = at = kind = np.zeros(0, dtype=np.intp)
            c = g = np.zeros(0)
        M = int(pos.max(initial=-1)) + 1
        if K:  # at least one (padding) entry: a pair that covers no cell (e.g. a quota on an
            M = max(M, 1)  # own flow only) still sums as floats (bincount of no weights: ints)
        cell, slot = np.zeros((B, K, M), dtype=np.int32), np.zeros((B, K, M), dtype=np.int32)
        wedge = np.full((B, K, M), ADD, dtype=np.int8)
        wedge_coef, g_coef = np.zeros((B, K, M)), np.zeros((B, K, M))
        b_e, k_e = rows[pair], ks[pair]
        cell[b_e, k_e, pos], wedge[b_e, k_e, pos] = at, kind
        wedge_coef[b_e, k_e, pos], g_coef[b_e, k_e, pos] = c, g
        # slot: the cell's rank among the cells any pair of the scenario uses
        used = np.zeros((B, N * N), dtype=bool)
        used[b_e, at] = True
        rank = np.cumsum(used, axis=1, dtype=np.int32) - 1
        slot[b_e, k_e, pos] = rank[b_e, at]
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
            cell=cell,
            slot=slot,
            wedge=wedge,
            wedge_coef=wedge_coef,
            g_coef=g_coef,
        )


#: pairs whose dense coefficients are stacked at once in :meth:`InstrumentBuilder.build`
_BUILD_BLOCK = 2048


def _block_entries(pairs: list[PairSpec], n: int) -> tuple[np.ndarray, ...]:
    """The entries of several pairs at once.

    Returns, per entry: the pair (position in ``pairs``), the entry's position in its pair,
    its cell, wedge kind, wedge and slack coefficients. A pair's entries are its ``C_fob``
    cells, then its ``C_adv`` and ``C_add`` cells (each in cell order) and last the cells
    with a slack coefficient only; a slack coefficient sits on its cell's first entry.
    """
    P, nn = len(pairs), n * n
    dense = np.zeros((P, 4, nn))  # C_fob, C_adv, C_add, G
    for i, p in enumerate(pairs):
        for j, C in enumerate((p.C_fob, p.C_adv, p.C_add)):
            if C is not None:
                dense[i, j] = np.ravel(C) * p.scale
        if p.G is not None:
            dense[i, 3] = np.ravel(p.G)
    C, G = dense[:, :3], dense[:, 3]
    present = np.empty((P, 4, nn), dtype=bool)
    present[:, :3] = C != 0
    earlier = np.logical_or.accumulate(present[:, :3], axis=1)  # a wedge entry at or before
    present[:, 3] = (G != 0) & ~earlier[:, 2]  # slack coefficients on no wedge entry
    # the slack coefficient goes to the first entry of its cell
    first = present.copy()
    first[:, 1:3] &= ~earlier[:, :2]
    pair, flat = np.nonzero(present.reshape(P, 4 * nn))
    counts = np.bincount(pair, minlength=P)
    pos = np.arange(pair.size) - np.repeat(np.cumsum(counts) - counts, counts)
    kind, at = np.divmod(flat, nn)
    coef = np.where(kind < 3, C[pair, np.minimum(kind, 2), at], 0.0)
    g = np.where(first.reshape(P, 4 * nn)[pair, flat], G[pair, at], 0.0)
    return pair, pos, at, np.minimum(kind, ADD), coef, g
