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

import numba as nb
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
    #: (B,N) market access of origin o's variety (default all ones): its Armington share
    #: parameters are multiplied by it and renormalised per destination (docs/model.md,
    #: "Market access and capacity"); see :meth:`access_weights`
    variety_weight: np.ndarray | None = None
    _relative_wedge: tuple[np.ndarray, np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )
    _access: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.variety_weight is None:
            self.variety_weight = np.ones(self.supply_mult.shape)

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
        kw.pop("_access")
        out = Instruments(**kw)
        out._relative_wedge = self._relative_wedge
        out._access = self._access
        for flag in ("has_access",):
            if flag in self.__dict__:
                out.__dict__[flag] = self.__dict__[flag]
        return out

    def relative_wedge(self, ln_wedge0: np.ndarray) -> np.ndarray:
        """``ln_wedge − ln_wedge0`` (B,N,N), kept for the base wedges it was last asked for."""
        cached = self._relative_wedge
        if cached is None or cached[0] is not ln_wedge0:
            cached = (ln_wedge0, self.ln_wedge - ln_wedge0)
            self._relative_wedge = cached
        return cached[1]

    @cached_property
    def has_access(self) -> bool:
        """Whether any variety weight differs from one (else the base shares are used)."""
        return bool(np.any(self.variety_weight != 1.0))

    def access_weights(self, w0: np.ndarray, w0sum: np.ndarray) -> np.ndarray:
        """The base value shares with market access (B,N,N), kept for the ``w0`` they were
        last asked for.

        ``w̃_od = w0_od k_o · w0sum_d / Σ_o' w0_o'd k_o'`` with ``k = variety_weight``: origin
        o's share parameters scale with k_o and each destination's are renormalised, so the
        composite price at base landed prices is unchanged. A destination whose weighted
        shares sum to zero keeps ``w0``. Raises ``ValueError`` for a negative or non-finite
        weight.
        """
        cached = self._access
        if cached is not None and cached[0] is w0:
            return cached[1]
        k = np.asarray(self.variety_weight, dtype=float)
        if k.shape != self.supply_mult.shape:
            raise ValueError(
                f"variety_weight has shape {k.shape}; expected (scenarios, regions) "
                f"{self.supply_mult.shape}"
            )
        if not np.all(np.isfinite(k) & (k >= 0.0)):
            b, o = np.argwhere(~(np.isfinite(k) & (k >= 0.0)))[0]
            raise ValueError(
                f"variety_weight[{b}, {o}] = {float(k[b, o])!r}: a market-access weight must be a "
                "finite number >= 0"
            )
        wk = w0 * k[:, :, None]
        tot = np.ones(w0.shape[0]) @ wk  # (B,N): Σ_o w0_od k_o
        pos = tot > 0
        out = np.where(pos[:, None, :], wk * (w0sum / np.where(pos, tot, 1.0))[:, None, :], w0)
        self._access = (w0, out)
        return out

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
            if name
            not in ("pair_labels", "_relative_wedge", "_access", "levy_to_exporter", "infeasible")
        }
        if model_only:
            out = Instruments(**kw)
            for flag in ("has_support", "has_ban", "has_floor", "has_access"):
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
        if self._access is not None:
            w0, acc = self._access
            out._access = (w0, acc[idx])
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
    """Collects what measures write, scenario by scenario, then pads to arrays.

    Pairs come one at a time (:meth:`add_pair`, a :class:`PairSpec`) or many at once
    (:meth:`add_pairs`, their coefficients as sparse entries); both keep, per scenario, the
    order in which they were added.
    """

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
        self.variety_weight = np.ones((B, N))
        self.levy_to_exporter = np.zeros((B, N, N), dtype=bool)
        self.infeasible = [""] * B
        #: pairs per scenario so far
        self.npairs = np.zeros(B, dtype=np.intp)
        self._specs: list[tuple[int, int, PairSpec]] = []  # (b, k, pair) from add_pair
        self._chunks: list[_PairChunk] = []  # from add_pairs
        # which measure (index in its scenario) set each cell of an instrument that one
        # measure sets alone (see ApplyContext.claim): instrument -> (B, ...) array, -1 = none;
        # `current`: the measure being applied; `measure_lists`: the batch's measures
        self.owners: dict[str, np.ndarray] = {}
        self.kinds: dict[tuple[int, int], str] = {}
        self.current: tuple[int, str] | None = None
        self.measure_lists: list[list] | None = None

    def owner_array(self, what: str, shape: tuple[int, ...]) -> np.ndarray:
        """The (B, *shape) owner array of instrument ``what`` (created at -1)."""
        owner = self.owners.get(what)
        if owner is None:
            owner = self.owners[what] = np.full((self.B, *shape), -1, dtype=np.int32)
        return owner

    def kind_of(self, b: int, j: int) -> str:
        """The type of measure ``j`` of scenario ``b`` (for messages)."""
        kind = self.kinds.get((b, j))
        if kind is None and self.measure_lists is not None:
            kind = self.measure_lists[b][j].type
        return kind or "?"

    def add_pair(self, b: int, pair: PairSpec) -> int:
        """Register a complementarity pair for scenario ``b``; returns its index k."""
        k = int(self.npairs[b])
        self.npairs[b] += 1
        self._specs.append((b, k, pair))
        return k

    def add_pairs(
        self,
        rows: np.ndarray,
        label: list[str],
        *,
        entries: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        lo: np.ndarray | float = 0.0,
        hi: np.ndarray | float = np.inf,
        scale: np.ndarray | float = 1.0,
        g0: np.ndarray | float = 1.0,
        g_scale: np.ndarray | float = 1.0,
    ) -> np.ndarray:
        """Register P pairs at once: pair i belongs to scenario ``rows[i]`` (rows may repeat;
        a scenario's pairs keep their order here). Returns each pair's index k.

        ``entries = (pair, plane, cell, value)``: the nonzero coefficients, as a
        :class:`PairSpec` would hold them densely: plane 0, 1, 2 are ``C_fob``, ``C_adv``,
        ``C_add`` (unscaled: the layout multiplies them by ``scale``), plane 3 is ``G``;
        ``cell = o·N + d``. A pair's (plane, cell) appears at most once.
        """
        rows = np.asarray(rows, dtype=np.intp)
        P = rows.size
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        start = np.flatnonzero(np.r_[True, srt[1:] != srt[:-1]]) if P else np.zeros(0, int)
        rank = np.empty(P, dtype=np.intp)
        rank[order] = np.arange(P) - np.repeat(start, np.diff(np.r_[start, P]))
        ks = self.npairs[rows] + rank
        np.add.at(self.npairs, rows, 1)

        def col(v) -> np.ndarray:
            return np.broadcast_to(np.asarray(v, dtype=float), (P,)).copy()

        pair, plane, cell, value = entries
        self._chunks.append(
            _PairChunk(
                rows,
                ks,
                list(label),
                col(lo),
                col(hi),
                col(scale),
                col(g0),
                col(g_scale),
                np.asarray(pair, dtype=np.intp),
                np.asarray(plane, dtype=np.intp),
                np.asarray(cell, dtype=np.intp),
                np.asarray(value, dtype=float),
            )
        )
        return ks

    @property
    def pairs(self) -> list[list[PairSpec]]:
        """Every scenario's pairs as :class:`PairSpec` objects, in order (for inspection)."""
        out: list[dict[int, PairSpec]] = [{} for _ in range(self.B)]
        for b, k, p in self._specs:
            out[b][k] = p
        N = self.N
        for c in self._chunks:
            dense = np.zeros((len(c.rows), 4, N * N))
            dense[c.pair, c.plane, c.cell] = c.value
            for i, (b, k) in enumerate(zip(c.rows, c.ks, strict=True)):
                C = [dense[i, j].reshape(N, N) if dense[i, j].any() else None for j in range(4)]
                out[b][int(k)] = PairSpec(
                    label=c.label[i],
                    lo=float(c.lo[i]),
                    hi=float(c.hi[i]),
                    scale=float(c.scale[i]),
                    C_fob=C[0],
                    C_adv=C[1],
                    C_add=C[2],
                    g0=float(c.g0[i]),
                    G=C[3],
                    g_scale=float(c.g_scale[i]),
                )
        return [[d[k] for k in sorted(d)] for d in out]

    def _all_pairs(self) -> _PairChunk:
        """Every pair as one chunk (PairSpecs turned into sparse entries)."""
        chunks = list(self._chunks)
        if self._specs:
            ent: list[list[np.ndarray]] = [[], [], [], []]
            for i, (_, _, p) in enumerate(self._specs):
                for j, C in enumerate((p.C_fob, p.C_adv, p.C_add, p.G)):
                    if C is None:
                        continue
                    flat = np.ravel(C).astype(float)
                    at = np.flatnonzero(flat)
                    ent[0].append(np.full(at.size, i))
                    ent[1].append(np.full(at.size, j))
                    ent[2].append(at)
                    ent[3].append(flat[at])
            specs = [p for _, _, p in self._specs]
            cat = [np.concatenate(e) if e else np.zeros(0) for e in ent]
            chunks.insert(
                0,
                _PairChunk(
                    np.array([b for b, _, _ in self._specs], dtype=np.intp),
                    np.array([k for _, k, _ in self._specs], dtype=np.intp),
                    [p.label for p in specs],
                    np.array([p.lo for p in specs], dtype=float),
                    np.array([p.hi for p in specs], dtype=float),
                    np.array([p.scale for p in specs], dtype=float),
                    np.array([p.g0 for p in specs], dtype=float),
                    np.array([p.g_scale for p in specs], dtype=float),
                    cat[0].astype(np.intp),
                    cat[1].astype(np.intp),
                    cat[2].astype(np.intp),
                    cat[3].astype(float),
                ),
            )
        if not chunks:
            ei, ef = np.zeros(0, dtype=np.intp), np.zeros(0)
            return _PairChunk(ei, ei, [], ef, ef, ef, ef, ef, ei, ei, ei, ef)
        if len(chunks) == 1:
            return chunks[0]
        offsets = np.cumsum([0] + [len(c.rows) for c in chunks[:-1]])
        joined = {
            f: np.concatenate([getattr(c, f) for c in chunks])
            for f in ("rows", "ks", *_SCALARS, "plane", "cell", "value")
        }
        return _PairChunk(
            label=[lab for c in chunks for lab in c.label],
            pair=np.concatenate([c.pair + o for c, o in zip(chunks, offsets, strict=True)]),
            **joined,
        )

    def build(self) -> Instruments:
        """Pad every scenario's pairs to ``K`` and lay their coefficients out as entries.

        The entries of all pairs are found with array operations on the registered
        coefficients (:func:`_entries` gives their order).
        """
        B, N = self.B, self.N
        allp = self._all_pairs()
        K = int(self.npairs.max(initial=0))
        P = len(allp.rows)
        rows, ks = allp.rows, allp.ks
        lo, hi = np.zeros((B, K)), np.full((B, K), np.inf)
        scale, g0, gs = np.ones((B, K)), np.ones((B, K)), np.ones((B, K))
        if P:
            sc = allp.scale
            lo[rows, ks] = allp.lo / sc
            hi[rows, ks] = allp.hi / sc
            scale[rows, ks] = sc
            g0[rows, ks] = allp.g0
            gs[rows, ks] = allp.g_scale
        labels_arr = np.full((B, K), "", dtype=object)
        labels_arr[rows, ks] = np.array(allp.label, dtype=object)
        labels = labels_arr.tolist()
        # the entries of every pair in their order (see _entries)
        pair, pos, at, kind, c, g = _entries(
            allp.pair, allp.plane, allp.cell, allp.value, allp.scale, N * N
        )
        M = int(pos.max(initial=-1)) + 1
        if K:  # at least one (padding) entry: a pair that covers no cell (e.g. a quota on an
            M = max(M, 1)  # own flow only) still sums as floats (bincount of no weights: ints)
        cell, slot = np.zeros((B, K, M), dtype=np.int32), np.zeros((B, K, M), dtype=np.int32)
        wedge = np.full((B, K, M), ADD, dtype=np.int8)
        wedge_coef, g_coef = np.zeros((B, K, M)), np.zeros((B, K, M))
        b_e = rows[pair]
        flat = (b_e * K + ks[pair]) * M + pos  # each entry's place in the (B,K,M) arrays
        cell.reshape(-1)[flat], wedge.reshape(-1)[flat] = at, kind
        wedge_coef.reshape(-1)[flat], g_coef.reshape(-1)[flat] = c, g
        # slot: the cell's rank among the cells any pair of the scenario uses
        used = np.zeros((B, N * N), dtype=bool)
        bat = b_e * (N * N) + at
        used.reshape(-1)[bat] = True
        rank = np.cumsum(used, axis=1, dtype=np.int32) - 1
        slot.reshape(-1)[flat] = rank.reshape(-1)[bat]
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
            variety_weight=self.variety_weight,
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


@dataclass
class _PairChunk:
    """Pairs registered together: per pair its scenario, index k, label and scalars; the
    nonzero coefficients as entries (pair position in the chunk, plane, cell, value)."""

    rows: np.ndarray
    ks: np.ndarray
    label: list[str]
    lo: np.ndarray
    hi: np.ndarray
    scale: np.ndarray
    g0: np.ndarray
    g_scale: np.ndarray
    pair: np.ndarray
    plane: np.ndarray
    cell: np.ndarray
    value: np.ndarray


_SCALARS = ("lo", "hi", "scale", "g0", "g_scale")


def _entries(
    pair: np.ndarray,
    plane: np.ndarray,
    cell: np.ndarray,
    value: np.ndarray,
    scale: np.ndarray,
    nn: int,
) -> tuple[np.ndarray, ...]:
    """The entries of every pair from its registered coefficients (see :func:`_entries_numpy`,
    the array-operation reference this equals): one compiled pass over the coefficients in
    (pair, plane, cell) order."""
    # contiguous arrays of one dtype each: one compiled version serves every call
    pair = np.ascontiguousarray(pair, dtype=np.intp)
    plane = np.ascontiguousarray(plane, dtype=np.intp)
    cell = np.ascontiguousarray(cell, dtype=np.intp)
    value = np.ascontiguousarray(value, dtype=np.float64)
    scale = np.ascontiguousarray(scale, dtype=np.float64)
    key = (pair * 4 + plane) * nn + cell
    order = np.argsort(key, kind="stable")
    return _entries_pass(key, order, value, scale, pair, plane, int(nn))


@nb.njit(cache=True, nogil=True)
def _entries_pass(key, order, value, scale, pair, plane, nn):  # pragma: no cover (compiled)
    n = key.size
    pc = np.empty(n, dtype=np.intp)
    pos = np.empty(n, dtype=np.intp)
    at = np.empty(n, dtype=np.intp)
    kind = np.empty(n, dtype=np.intp)
    coef = np.empty(n, dtype=np.float64)
    g = np.empty(n, dtype=np.float64)
    first = np.full(nn, -1, dtype=np.intp)  # the current pair's first wedge entry of a cell
    m = 0  # entries written
    start = 0  # the current pair's first entry
    cur = -1  # the current pair
    for r in range(n):
        i = order[r]
        if r + 1 < n and key[order[r + 1]] == key[i]:
            continue  # a later registration of the same (pair, plane, cell) counts
        v = value[i]
        pl = plane[i]
        if pl < 3:
            v = v * scale[pair[i]]
        if v == 0.0:
            continue
        p = pair[i]
        c = key[i] % nn
        if p != cur:
            for q in range(start, m):
                first[at[q]] = -1
            start = m
            cur = p
        if pl < 3:
            if first[c] < 0:
                first[c] = m
            pc[m], pos[m], at[m], kind[m], coef[m], g[m] = p, m - start, c, pl, v, 0.0
            m += 1
        elif first[c] >= 0:  # a slack coefficient on its cell's first wedge entry
            g[first[c]] = v
        else:  # a cell with a slack coefficient only: an entry of its own
            pc[m], pos[m], at[m], kind[m], coef[m], g[m] = p, m - start, c, ADD, 0.0, v
            m += 1
    return pc[:m], pos[:m], at[:m], kind[:m], coef[:m], g[:m]


def _entries_numpy(
    pair: np.ndarray,
    plane: np.ndarray,
    cell: np.ndarray,
    value: np.ndarray,
    scale: np.ndarray,
    nn: int,
) -> tuple[np.ndarray, ...]:
    """The entries of every pair from its registered coefficients.

    ``pair``, ``plane`` (0–2: ``C_fob``, ``C_adv``, ``C_add``; 3: ``G``), ``cell`` and
    ``value`` list the coefficients as registered (a later one of the same pair, plane and
    cell replaces an earlier one; zeros are no entry); wedge coefficients are multiplied by
    their pair's ``scale``. Returns, per entry: the pair, the entry's position in its pair,
    its cell, wedge kind, wedge and slack coefficients. A pair's entries are its ``C_fob``
    cells, then its ``C_adv`` and ``C_add`` cells (each in cell order) and last the cells
    with a slack coefficient only; a slack coefficient sits on its cell's first entry.
    """
    pair = np.asarray(pair, dtype=np.intp)
    plane = np.asarray(plane, dtype=np.intp)
    value = np.where(plane < 3, value * scale[pair], value) if pair.size else value
    key = (pair * 4 + plane) * nn + np.asarray(cell, dtype=np.intp)
    order = np.argsort(key, kind="stable")
    key, value = key[order], value[order]
    last = np.ones(key.size, dtype=bool)  # the last registered of equal keys counts
    last[:-1] = key[1:] != key[:-1]
    keep = last & (value != 0)
    key, value = key[keep], value[keep]
    pc, rest = np.divmod(key, 4 * nn)
    plane, at = np.divmod(rest, nn)
    wedge = plane < 3
    pcell = pc * nn + at
    # the first wedge entry (lowest plane) of each (pair, cell), sorted by (pair, cell)
    w_idx = np.flatnonzero(wedge)
    o = np.lexsort((plane[w_idx], pcell[w_idx]))
    w_sorted = pcell[w_idx][o]
    is_first = np.ones(w_sorted.size, dtype=bool)
    is_first[1:] = w_sorted[1:] != w_sorted[:-1]
    first_idx, first_pcell = w_idx[o][is_first], w_sorted[is_first]
    # slack coefficients: on the first wedge entry of their cell, else an entry of their own
    g_idx = np.flatnonzero(~wedge)
    loc = np.searchsorted(first_pcell, pcell[g_idx])
    hit = loc < first_pcell.size
    hit[hit] = first_pcell[loc[hit]] == pcell[g_idx][hit]
    g = np.zeros(key.size)
    g[first_idx[loc[hit]]] = value[g_idx[hit]]
    own = g_idx[~hit]
    g[own] = value[own]
    coef = np.where(wedge, value, 0.0)
    sel = wedge.copy()
    sel[own] = True
    pc, at, plane, coef, g = pc[sel], at[sel], plane[sel], coef[sel], g[sel]
    # position in its pair (entries are sorted by pair)
    start = np.ones(pc.size, dtype=bool)
    start[1:] = pc[1:] != pc[:-1]
    first_of = np.maximum.accumulate(np.where(start, np.arange(pc.size), 0)) if pc.size else pc
    pos = np.arange(pc.size) - first_of
    return pc, pos, at, np.minimum(plane, ADD), coef, g
