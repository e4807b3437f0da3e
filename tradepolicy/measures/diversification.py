"""Diversification caps: no single covered supplier above a share of an importer's basis."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from tradepolicy.measures.base import (
    ApplyContext,
    BookContext,
    Measure,
    Region,
    editor,
    importer_exporter_keys,
    memo_get,
    register,
)
from tradepolicy.measures.quotas import masked_sums
from tradepolicy.measures.trade import _names
from tradepolicy.model.instruments import PairSpec


def _labels(market) -> np.ndarray:
    """(N,N) object array of the pair labels ``"diversification {o}->{d}"`` by (origin o,
    importer d), built once per market (on its memo; read-only)."""

    def make() -> np.ndarray:
        regions = market.regions
        out = np.array(
            [[f"diversification {a}->{b}" for b in regions] for a in regions], dtype=object
        )
        out.flags.writeable = False
        return out

    return memo_get(market, ("diversification_labels",), make)


@register
class DiversificationCap(Measure):
    """Each covered origin's share of an importer's basis stays at or below ``max_share``.

    For origin o in importer d the cap ``X_od ≤ s̄·Σ_basis X_bd`` has a shadow price μ ≥ 0 ⟂
    slack. It acts as a per-unit tax ``μ(1 − s̄)`` on o's variety and a per-unit subsidy
    ``μ·s̄`` on the other varieties in the basis (domestic supply too when the basis is
    ``consumption``). At the solution the taxes pay exactly for the subsidies (μ·slack = 0),
    so the cap has no fiscal cost of its own; μ is reported per pair.
    """

    editor_label: ClassVar[str] = "Diversification cap"
    type: Literal["diversification_cap"] = "diversification_cap"
    caveat: ClassVar[str] = (
        "A diversification cap works as a budget-neutral cross-subsidy among the importer's "
        "buyers: a tax on the capped supplier pays for a subsidy on the others; its cost shows "
        "in consumer and producer surplus."
    )
    importers: list[Region] = Field(
        min_length=1,
        description="regions applying the cap",
        json_schema_extra=editor(
            label="Importers",
            help="Regions limiting how much they buy from any one supplier.",
            default="club_diversifiable",
        ),
    )
    max_share: float = Field(
        gt=0.0,
        lt=1.0,
        description="largest share of one supplier",
        json_schema_extra=editor(
            label="Largest share of one supplier",
            unit="share",
            help="No covered supplier may hold more than this share.",
            default=60.0,
        ),
    )
    basis: Literal["consumption", "imports"] = Field(
        "consumption",
        description="share of consumption (domestic included) or of imports",
        json_schema_extra=editor(
            label="Measured on",
            help="The share of consumption (domestic supply included) or of imports.",
            choices={"consumption": "Share of consumption", "imports": "Share of imports"},
        ),
    )
    exporters: list[Region] | None = Field(
        None,
        description="origins capped (default: every foreign origin)",
        json_schema_extra=editor(
            label="Origins capped", help="Leave empty to cap every foreign origin."
        ),
    )

    region_fields = ("importers", "exporters")

    def _basis(self, ctx, b: int, d: int) -> np.ndarray:
        """Varieties in d's basis (positive base weight, not removed)."""
        inb = (ctx.cal.w0[:, d] > 0) & ctx.builder.available[b][:, d]
        if self.basis == "imports":
            inb[d] = False
        return inb

    def apply(self, ctx: ApplyContext, b: int) -> None:
        s = self.max_share
        capped = ctx.pair_mask(self.importers, self.exporters)
        X0 = ctx.cal.X0
        for d in ctx.idx(self.importers):
            inb = self._basis(ctx, b, d)
            scale_q = max(float(X0[inb, d].sum()), 1e-6 * X0.sum())
            for o in np.flatnonzero(capped[:, d] & inb):
                C = np.zeros_like(X0)
                G = np.zeros_like(X0)
                C[inb, d], G[inb, d] = -s, s
                C[o, d], G[o, d] = 1.0 - s, -(1.0 - s)
                ctx.builder.add_pair(
                    b,
                    PairSpec(
                        label=f"diversification {ctx.market.regions[o]}->{ctx.market.regions[d]}",
                        scale=float(ctx.cal.P0[d]),
                        C_add=C,
                        g0=0.0,
                        G=G,
                        g_scale=scale_q,
                    ),
                )

    has_pair_keys = True
    columns = ("importers", "max_share", "basis")
    float_columns = ("max_share",)

    @classmethod
    def pair_keys(cls, ctx, measures: list) -> list[tuple]:
        return importer_exporter_keys(measures)

    @classmethod
    def _items(cls, ctx: ApplyContext, rows: np.ndarray, measures: list):
        """One item per (measure, importer), in order: its row, importer, measure position,
        capped origins (I,N) and basis (I,N) as the row's availability stands now.

        What depends on the measures alone is kept on ``ctx`` for the same rows and
        measures (the feasibility check after applying reads them again)."""
        kept = ctx.kept.get("diversification_items")
        if kept is not None and kept[0] is measures and np.array_equal(kept[1], rows):
            ib, idd, im, capped, imports = kept[2]
        else:
            pos = ctx.market._positions
            it_b, it_d, it_m = [], [], []
            importers = ctx.column(cls, measures, "importers")
            for i, (b, regions) in enumerate(zip(rows.tolist(), importers, strict=True)):
                for r in regions:
                    it_b.append(b)
                    it_d.append(pos[r])
                    it_m.append(i)
            ib, idd, im = (np.array(v, dtype=np.intp) for v in (it_b, it_d, it_m))
            _, masks = ctx.pair_masks(cls, measures)
            capped = masks[im, :, idd] if len(im) else np.zeros((0, ctx.cal.N), bool)
            basis = ctx.column(cls, measures, "basis")
            on_imports = np.array([v == "imports" for v in basis], dtype=bool)
            imports = on_imports[im] if len(im) else np.zeros(0, dtype=bool)
            ctx.kept["diversification_items"] = (measures, rows, (ib, idd, im, capped, imports))
        inb = (ctx.cal.w0[:, idd].T > 0) & ctx.builder.available[ib, :, idd]
        inb[np.flatnonzero(imports), idd[imports]] = False
        return ib, idd, im, capped, inb

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        ib, idd, im, capped, inb = cls._items(ctx, rows, measures)
        if not len(ib):
            return
        X0 = ctx.cal.X0
        N = X0.shape[0]
        floor_q = 1e-6 * X0.sum()
        # Σ of the basis' base flows, summed as X0[inb, d].sum() would (bit for bit)
        sums = masked_sums(X0.T[idd], inb)
        scale_q = np.where(sums >= floor_q, sums, floor_q)  # max(sum, floor_q)
        # pairs: (item, capped origin) in item order, origins ascending
        t, o = np.nonzero(capped & inb)
        if not t.size:
            return
        s = ctx.column(cls, measures, "max_share", floats=True)[im[t]]
        d = idd[t]
        # entries: every basis cell of column d (C_add and G), the capped origin's differ
        p, ob = np.nonzero(inb[t])
        own = ob == o[p]
        cell = ob * N + d[p]
        c = np.where(own, 1.0 - s[p], -s[p])
        g = np.where(own, -(1.0 - s[p]), s[p])
        n = p.size
        ctx.builder.add_pairs(
            ib[t],
            _labels(ctx.market)[o, d].tolist(),
            entries=(
                np.concatenate([p, p]),
                np.concatenate([np.full(n, 2), np.full(n, 3)]),
                np.concatenate([cell, cell]),
                np.concatenate([c, g]),
            ),
            scale=ctx.cal.P0[d].astype(float),
            g0=0.0,
            g_scale=scale_q[t],
        )

    @classmethod
    def check_feasible_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list) -> None:
        ib, idd, im, capped, inb = cls._items(ctx, rows, measures)
        cap = capped & inb
        free = inb & ~cap
        share = ctx.column(cls, measures, "max_share", floats=True)[im] if len(im) else np.zeros(0)
        bad = cap.any(axis=1) & ~free.any(axis=1) & (share * cap.sum(axis=1) < 1.0)
        for t in np.flatnonzero(bad).tolist():  # rare: as the per-row check words it
            measures[im[t]]._infeasible(ctx, int(ib[t]), int(idd[t]), cap[t])

    def _infeasible(self, ctx: ApplyContext, b: int, d: int, cap: np.ndarray) -> None:
        regions = ctx.market.regions
        names = _names([regions[o] for o in np.flatnonzero(cap)])
        ctx.infeasible(
            b,
            f"{regions[d]}'s {self.basis} come only from {names}, all capped at "
            f"{self.max_share:.0%}, so the shares cannot sum to 100% (need another "
            "supplier in the base data, a higher max_share or fewer capped origins)",
        )

    def check_feasible(self, ctx: ApplyContext, b: int) -> None:
        capped = ctx.pair_mask(self.importers, self.exporters)
        for d in ctx.idx(self.importers):
            inb = self._basis(ctx, b, d)
            cap = capped[:, d] & inb
            free = inb & ~cap
            if cap.any() and not free.any() and self.max_share * cap.sum() < 1.0:
                self._infeasible(ctx, b, int(d), cap)

    def book(self, ctx: BookContext, b: int) -> None:
        # each pair's capped pair (o, d) is the one cell where its slack coefficient is
        # negative, −(1 − s̄): read from the pair's entries (no dense matrix)
        inst = ctx.inst
        for k, mu in zip(ctx.pairs_of(self, b), ctx.lam(self, b), strict=True):
            cell = int(inst.cell[b, k, int(np.argmax(inst.g_coef[b, k] < 0))])
            o, d = divmod(cell, inst.N)
            ctx.flows["diversification_shadow_price"][b, o, d] = mu

    @classmethod
    def book_rows(cls, ctx: BookContext, rows: np.ndarray, measures: list) -> None:
        bb: list[int] = []
        kk: list[int] = []
        for b, m in zip(rows.tolist(), measures, strict=True):
            ks = ctx.pairs_of(m, b)
            bb.extend([b] * len(ks))
            kk.extend(ks)
        if not bb:
            return
        b_, k_ = np.array(bb, dtype=np.intp), np.array(kk, dtype=np.intp)
        inst = ctx.inst
        at = np.argmax(inst.g_coef[b_, k_] < 0, axis=1)
        o, d = np.divmod(inst.cell[b_, k_, at].astype(np.intp), inst.N)
        ctx.flows["diversification_shadow_price"][b_, o, d] = ctx.state.lam[b_, k_]

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        src = "any single foreign supplier" if self.exporters is None else names(self.exporters)
        return (
            f"A diversification cap in {names(self.importers)}: {src} at most "
            f"{100 * self.max_share:.3g}% of {self.basis} (budget-neutral)"
        )
