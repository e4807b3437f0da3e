"""Diversification caps: no single covered supplier above a share of an importer's basis."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from tradepolicy.measures.base import ApplyContext, BookContext, Measure, Region, register
from tradepolicy.measures.trade import _names
from tradepolicy.model.instruments import PairSpec


@register
class DiversificationCap(Measure):
    """Each covered origin's share of an importer's basis stays at or below ``max_share``.

    For origin o in importer d the cap ``X_od ≤ s̄·Σ_basis X_bd`` has a shadow price μ ≥ 0 ⟂
    slack. It acts as a per-unit tax ``μ(1 − s̄)`` on o's variety and a per-unit subsidy
    ``μ·s̄`` on the other varieties in the basis (domestic supply too when the basis is
    ``consumption``). At the solution the taxes pay exactly for the subsidies (μ·slack = 0),
    so the cap has no fiscal cost of its own; μ is reported per pair.
    """

    type: Literal["diversification_cap"] = "diversification_cap"
    caveat: ClassVar[str] = (
        "A diversification cap works as a budget-neutral cross-subsidy among the importer's "
        "buyers: a tax on the capped supplier pays for a subsidy on the others; its cost shows "
        "in consumer and producer surplus."
    )
    importers: list[Region] = Field(min_length=1, description="regions applying the cap")
    max_share: float = Field(gt=0.0, lt=1.0, description="largest share of one supplier")
    basis: Literal["consumption", "imports"] = Field(
        "consumption", description="share of consumption (domestic included) or of imports"
    )
    exporters: list[Region] | None = Field(
        None, description="origins capped (default: every foreign origin)"
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

    def check_feasible(self, ctx: ApplyContext, b: int) -> None:
        capped = ctx.pair_mask(self.importers, self.exporters)
        regions = ctx.market.regions
        for d in ctx.idx(self.importers):
            inb = self._basis(ctx, b, d)
            cap = capped[:, d] & inb
            free = inb & ~cap
            if cap.any() and not free.any() and self.max_share * cap.sum() < 1.0:
                names = _names([regions[o] for o in np.flatnonzero(cap)])
                ctx.infeasible(
                    b,
                    f"{regions[d]}'s {self.basis} come only from {names}, all capped at "
                    f"{self.max_share:.0%}, so the shares cannot sum to 100% (need another "
                    "supplier in the base data, a higher max_share or fewer capped origins)",
                )

    def book(self, ctx: BookContext, b: int) -> None:
        # each pair's capped pair (o, d) is the one cell where its slack coefficient is
        # negative, −(1 − s̄): read from the pair's entries (no dense matrix)
        inst = ctx.inst
        for k, mu in zip(ctx.pairs_of(self, b), ctx.lam(self, b), strict=True):
            cell = int(inst.cell[b, k, int(np.argmax(inst.g_coef[b, k] < 0))])
            o, d = divmod(cell, inst.N)
            ctx.flows["diversification_shadow_price"][b, o, d] = mu

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        src = "any single foreign supplier" if self.exporters is None else names(self.exporters)
        return (
            f"A diversification cap in {names(self.importers)}: {src} at most "
            f"{100 * self.max_share:.3g}% of {self.basis} (budget-neutral)"
        )
