"""Quantitative restrictions: import quotas, tariff-rate quotas and export quotas or bans.

Each binding cap is a complementarity pair: a per-unit rent ρ ≥ 0 ⟂ (quantity − trade) ≥ 0.
The rent is a wedge in the landed price and is booked to the owner named by ``rent_to``.
Under CES a variety cannot be driven to exactly zero by a finite rent, so a quantity of 0 is
a ban: the variety is removed from the covered markets.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from tradepolicy.measures.base import ApplyContext, BookContext, Measure, Region, register
from tradepolicy.measures.trade import TARIFF_RULE, Rate, _names
from tradepolicy.model.instruments import PairSpec

#: smallest quantity scale of a cap, relative to the market's total base trade
_MIN_SCALE = 1e-6


def _cap_pair(ctx: ApplyContext, label: str, mask: np.ndarray, quantity: float, **wedge):
    """A cap ``Σ_mask X ≤ quantity`` with its wedge (``C_fob``, ``C_adv`` or ``C_add``)."""
    X0 = ctx.cal.X0
    base = float(X0[mask].sum())
    g_scale = max(quantity, base, _MIN_SCALE * X0.sum())
    return PairSpec(
        label=label,
        g0=quantity,
        G=-mask.astype(float),
        g_scale=g_scale,
        **{k: v * mask for k, v in wedge.items()},
    )


def _price_scale(ctx: ApplyContext, mask: np.ndarray) -> float:
    q0 = ctx.cal.q0[mask]
    return float(np.mean(q0)) if q0.size else 1.0


def _book_rent(ctx: BookContext, b: int, mask: np.ndarray, per_unit: np.ndarray, to: str):
    """Add a per-unit rent on the pairs of ``mask`` to the flows and to its owner's income."""
    X = ctx.state.X[b]
    ctx.flows["quota_rent"][b][mask] += per_unit[mask]
    income = per_unit * X * mask
    if to in ("exporters", "exporter_government"):
        ctx.add("quota_rent_income", b, np.arange(X.shape[0]), income.sum(axis=1))
    else:
        ctx.add("quota_rent_income", b, np.arange(X.shape[0]), income.sum(axis=0))


def _ban_or_cap(
    ctx: ApplyContext,
    b: int,
    mask: np.ndarray,
    quantity: float,
    label: str,
    wedge: str,
    scale: float,
) -> None:
    """Quantity 0: remove the covered varieties. Otherwise a cap whose per-unit rent (scaled
    by ``scale``) enters the landed price as ``wedge`` (``C_fob`` or ``C_add``)."""
    if quantity == 0:
        ctx.builder.available[b][mask] = False
        return
    pair = _cap_pair(ctx, label, mask, quantity, **{wedge: np.ones_like(ctx.cal.X0)})
    pair.scale = scale
    ctx.builder.add_pair(b, pair)


def _book_cap_rent(measure, ctx: BookContext, b: int) -> None:
    """Book the solved per-unit rent of a cap written by :func:`_ban_or_cap` (none for a ban)."""
    if measure.quantity == 0:
        return
    rho = ctx.lam(measure, b)[0]
    mask = measure.mask(ctx)
    _book_rent(ctx, b, mask, np.full(mask.shape, rho), measure.rent_to)


class _Quota(Measure):
    importers: list[Region] = Field(min_length=1, description="regions applying the quota")
    exporters: list[Region] | None = Field(
        None, description="origins covered (default: every foreign origin)"
    )
    quantity: float = Field(ge=0.0, description="quota volume per year (market quantity unit)")
    rent_to: Literal["importer_government", "importers", "exporters"] = Field(
        "importer_government", description="who holds the quota rent"
    )

    region_fields = ("importers", "exporters")

    def mask(self, ctx) -> np.ndarray:
        return ctx.pair_mask(self.importers, self.exporters)


@register
class ImportQuota(_Quota):
    """A cap on the covered imports (all covered pairs together); quantity 0 bans them."""

    type: Literal["import_quota"] = "import_quota"
    caveat: ClassVar[str] = (
        "Who holds a quota rent changes national welfare, not quantities. A quota of zero is "
        "a ban: the variety is removed, which raises the consumer price by more than the "
        "prices still paid."
    )

    def apply(self, ctx: ApplyContext, b: int) -> None:
        mask = self.mask(ctx)
        _ban_or_cap(
            ctx, b, mask, self.quantity, "import quota rent", "C_add", _price_scale(ctx, mask)
        )

    def book(self, ctx: BookContext, b: int) -> None:
        _book_cap_rent(self, ctx, b)

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        src = "all foreign suppliers" if self.exporters is None else names(self.exporters)
        if self.quantity == 0:
            return f"A ban by {names(self.importers)} on imports from {src}"
        owner = {
            "importer_government": "the importing government",
            "importers": "importing firms",
            "exporters": "exporters",
        }
        return (
            f"An import quota of {self.quantity:,.0f} {market.quantity_unit}/yr by "
            f"{names(self.importers)} on imports from {src}; quota rent to "
            f"{owner[self.rent_to]}"
        )


@register
class TariffRateQuota(_Quota):
    """Imports up to ``quantity`` pay ``in_rate``, imports above it ``out_rate``.

    The in-quota rent r (ad valorem, on the FOB value) solves ``0 ≤ r ≤ out − in ⟂
    quantity − imports``: zero while the quota is not filled, between the bounds when imports
    sit at the quota, and ``out − in`` when imports exceed it (the out-of-quota rate is then
    marginal and in-quota units carry the full rent).
    """

    type: Literal["tariff_rate_quota"] = "tariff_rate_quota"
    caveat: ClassVar[str] = "Who holds the in-quota rent changes national welfare, not quantities."
    quantity: float = Field(gt=0.0, description="in-quota volume per year")
    in_rate: Rate = Field(ge=0.0, description="in-quota ad valorem tariff")
    out_rate: Rate = Field(ge=0.0, description="out-of-quota ad valorem tariff")

    @model_validator(mode="after")
    def _rates(self) -> TariffRateQuota:
        if self.out_rate < self.in_rate:
            raise ValueError("out_rate must be >= in_rate")
        return self

    def apply(self, ctx: ApplyContext, b: int) -> None:
        mask = self.mask(ctx)
        ctx.claim(b, "tariff", mask, TARIFF_RULE)
        ctx.builder.tariff[b][mask] = self.in_rate
        pair = _cap_pair(ctx, "TRQ rent", mask, self.quantity, C_adv=np.ones_like(ctx.cal.X0))
        pair.hi = self.out_rate - self.in_rate
        ctx.builder.add_pair(b, pair)

    def book(self, ctx: BookContext, b: int) -> None:
        r = ctx.lam(self, b)[0]
        mask = self.mask(ctx)
        st = ctx.state
        if st.fob is None:
            raise RuntimeError("booking a TRQ needs the full state (fob prices), not a lean one")
        X, fob = st.X[b], st.fob[b]
        filled = float(X[mask].sum())
        inside = min(1.0, self.quantity / filled) if filled > 0 else 1.0
        # in-quota units carry the rent, out-of-quota units pay the extra tariff
        _book_rent(ctx, b, mask, r * fob * inside, self.rent_to)
        extra = (r * fob * X * (1.0 - inside) * mask).sum(axis=0)
        ctx.add("tariff_revenue_change", b, np.arange(X.shape[0]), extra)

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        src = "all foreign suppliers" if self.exporters is None else names(self.exporters)
        return (
            f"A tariff-rate quota by {names(self.importers)} on imports from {src}: "
            f"{self.quantity:,.0f} {market.quantity_unit}/yr at {100 * self.in_rate:.3g}%, "
            f"{100 * self.out_rate:.3g}% above"
        )


@register
class ExportQuota(Measure):
    """A cap on an exporter's sales to the covered destinations; quantity 0 is a ban.

    The export-licence rent ρx per unit is added to the FOB price (so importers' tariffs
    apply to it) and is booked to ``rent_to``.
    """

    type: Literal["export_quota"] = "export_quota"
    caveat: ClassVar[str] = (
        "Who holds an export licence rent changes national welfare, not quantities. An export "
        "quota of zero is a ban: the variety is removed from the markets covered, which raises "
        "their consumer price by more than the prices still paid."
    )
    exporter: Region = Field(description="region restricting its exports")
    destinations: list[Region] | None = Field(
        None, description="destinations covered (default: every foreign destination)"
    )
    quantity: float = Field(ge=0.0, description="export volume per year; 0 = ban")
    rent_to: Literal["exporter_government", "exporters", "importers"] = Field(
        "exporter_government", description="who holds the licence rent"
    )

    region_fields = ("exporter", "destinations")

    def mask(self, ctx) -> np.ndarray:
        dest = self.destinations if self.destinations is not None else ctx.foreign(self.exporter)
        return ctx.pair_mask(dest, [self.exporter])

    def apply(self, ctx: ApplyContext, b: int) -> None:
        scale = float(ctx.cal.p0[ctx.idx(self.exporter)[0]])
        _ban_or_cap(ctx, b, self.mask(ctx), self.quantity, "export licence rent", "C_fob", scale)

    def book(self, ctx: BookContext, b: int) -> None:
        _book_cap_rent(self, ctx, b)

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        dest = "all destinations" if self.destinations is None else names(self.destinations)
        if self.quantity == 0:
            return f"A ban by {names([self.exporter])} on exports to {dest}"
        owner = {
            "exporter_government": "the exporting government",
            "exporters": "exporting firms",
            "importers": "importers",
        }
        return (
            f"An export quota of {self.quantity:,.0f} {market.quantity_unit}/yr by "
            f"{names([self.exporter])} on sales to {dest}; licence rent to "
            f"{owner[self.rent_to]}"
        )
