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

from tradepolicy.measures.base import (
    ApplyContext,
    BookContext,
    Measure,
    Region,
    _batched,
    editor,
    exporter_destination_keys,
    mask_cells,
    put_cells,
    register,
    rel,
)
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


def _cap_stats(ctx: ApplyContext, key: tuple, mask: np.ndarray) -> tuple[float, float, float]:
    """(covered base trade, mean base landed price or 1, total base trade) of a cap's
    pairs, as :func:`_cap_pair` and :func:`_price_scale` compute them (kept per region lists
    on the market's memo)."""
    memo = ctx.market.memo if ctx.cal is ctx.market.calibration else {}
    got = memo.get(("cap_stats", key))
    if got is None:
        X0 = ctx.cal.X0
        got = (float(X0[mask].sum()), _price_scale(ctx, mask), float(X0.sum()))
        memo[("cap_stats", key)] = got
    return got


def _cap_rows(
    ctx: ApplyContext,
    rows: np.ndarray,
    keys: list[tuple],
    masks: np.ndarray,
    quantity: np.ndarray,
    label: str,
    plane: int,
    scale: np.ndarray | None,
    hi: np.ndarray | float = np.inf,
) -> np.ndarray:
    """:func:`_cap_pair` for a cap in each row at once (``plane``: 0 ``C_fob``, 1 ``C_adv``,
    2 ``C_add``); ``scale=None``: the mean base landed price of the covered pairs. Returns
    each cap's pair index k."""
    if not len(rows):
        return np.zeros(0, dtype=np.intp)
    memo = ctx.market.memo if ctx.cal is ctx.market.calibration else {}
    got = [memo.get(("cap_stats", k)) for k in keys]  # (as _cap_stats keeps them)
    for i in [i for i, g in enumerate(got) if g is None]:
        got[i] = _cap_stats(ctx, keys[i], masks[i])
    stats = np.array(got)
    g_scale = np.maximum(np.maximum(quantity, stats[:, 0]), _MIN_SCALE * stats[:, 2])
    p, cell = mask_cells(masks)
    n = p.size
    entries = (
        np.concatenate([p, p]),
        np.concatenate([np.full(n, plane), np.full(n, 3)]),
        np.concatenate([cell, cell]),
        np.concatenate([np.ones(n), np.full(n, -1.0)]),
    )
    return ctx.builder.add_pairs(
        rows,
        [label] * len(rows),
        entries=entries,
        hi=hi,
        scale=stats[:, 1] if scale is None else scale,
        g0=quantity,
        g_scale=g_scale,
    )


def _ban_or_cap_rows(
    ctx: ApplyContext,
    rows: np.ndarray,
    keys: list[tuple],
    quantity: np.ndarray,
    label: str,
    plane: int,
    scale: np.ndarray | None,
    measures: list | None = None,
    masks: np.ndarray | None = None,
) -> None:
    """:func:`_ban_or_cap` for one measure in each row at once (``measures``: keep their
    masks, which are caps and their pairs for booking, :func:`_kept_caps`; ``masks``: the
    masks of ``keys`` when the caller has them, remembered for ``measures``)."""
    if masks is None:
        masks = ctx.masks(keys, measures)
    ban = quantity == 0
    r, cell = mask_cells(masks[ban])
    put_cells(ctx.builder.available, rows[ban][r], cell, False)
    cap = ~ban
    ks = _cap_rows(
        ctx,
        rows[cap],
        [k for k, c in zip(keys, cap.tolist(), strict=True) if c],
        masks[cap],
        quantity[cap],
        label,
        plane,
        None if scale is None else scale[cap],
    )
    if measures is not None:
        ctx.kept[("caps", id(measures))] = (measures, rows, cap, ks, masks[cap])


def _kept_caps(cls, ctx: BookContext, rows: np.ndarray, measures: list) -> tuple | None:
    """What applying these measures in these rows kept for booking: which are caps (not
    bans), each cap's pair k and mask; None when it kept nothing for them."""
    kept = getattr(ctx.pair_index, "kept", None)
    got = kept.get(("caps", id(measures))) if kept else None
    if (
        got is None
        or got[0] is not measures
        or not np.array_equal(got[1], rows)
        or not _batched(cls, "mask_keys", "mask")  # (masks as booking finds them)
    ):
        return None
    return got[2:]


def _quota_keys(measures: list) -> list[tuple]:
    return [
        (tuple(m.importers), None if m.exporters is None else tuple(m.exporters), ())
        for m in measures
    ]


def _is_ban(measure) -> bool:
    """Whether a quota measure is a ban (quantity 0, or an export quota's share 0)."""
    if measure.quantity is None:
        return measure.quantity_share == 0
    return measure.quantity == 0


def _book_cap_rent(measure, ctx: BookContext, b: int) -> None:
    """Book the solved per-unit rent of a cap written by :func:`_ban_or_cap` (none for a ban)."""
    if _is_ban(measure):
        return
    rho = ctx.lam(measure, b)[0]
    mask = measure.mask(ctx)
    _book_rent(ctx, b, mask, np.full(mask.shape, rho), measure.rent_to)


def masked_sums(a: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``[a[i][masks[i]].sum() for i]`` bit for bit: the selected values of each row are
    summed as one array of their count (numpy's pairwise sum depends on the length)."""
    counts = masks.reshape(len(masks), -1).sum(axis=1)
    vals = a[masks]
    start = np.cumsum(counts) - counts
    out = np.zeros(len(masks))
    for n in np.unique(counts).tolist():
        if n:
            sel = np.flatnonzero(counts == n)
            out[sel] = vals[start[sel][:, None] + np.arange(n)].sum(axis=1)
    return out


def _book_rent_rows(
    ctx: BookContext,
    rows: np.ndarray,
    masks: np.ndarray,
    per_unit: np.ndarray,
    to: list[str],
    X: np.ndarray | None = None,
) -> None:
    """:func:`_book_rent` for one measure in each row at once (``per_unit``: (R,N,N);
    ``X``: the flows of ``rows`` when the caller has them)."""
    X = ctx.state.X[rows] if X is None else X
    fl = ctx.flows["quota_rent"]
    before = fl[rows]
    fl[rows] = np.where(masks, before + per_unit, before)
    income = per_unit * X * masks
    exp = np.array([t in ("exporters", "exporter_government") for t in to], dtype=bool)
    amount = np.empty(income.shape[:2])
    amount[exp] = income[exp].sum(axis=2)  # to the exporters (each row summed as alone)
    amount[~exp] = income[~exp].sum(axis=1)  # to the importers
    ctx.ledger["quota_rent_income"][rows] += amount


def _masks_of(cls, ctx: BookContext, measures: list) -> np.ndarray:
    """(R,N,N) :meth:`mask` of each measure: from the market's mask table, or one by one for a
    subclass that overrides :meth:`mask` alone."""
    if _batched(cls, "mask_keys", "mask"):
        got = ctx.remembered_masks(measures)  # found while applying them
        return got if got is not None else ctx.masks(cls.mask_keys(ctx, measures))
    return np.stack([m.mask(ctx) for m in measures])


def _book_cap_rent_rows(cls, ctx: BookContext, rows: np.ndarray, measures: list) -> None:
    """:func:`_book_cap_rent` for one measure in each row at once."""
    kept = _kept_caps(cls, ctx, rows, measures)
    if kept is not None:  # the caps, their pairs and masks as applying found them
        keep, k0, masks = kept
    else:
        keep = np.array([not _is_ban(m) for m in measures], dtype=bool)
    keep_l = keep.tolist()
    rent_to = [t for t, k in zip(ctx.column(cls, measures, "rent_to"), keep_l, strict=True) if k]
    rows = rows[keep]
    if not rent_to:
        return
    if kept is None:
        measures = [m for m, k in zip(measures, keep_l, strict=True) if k]
        k0 = ctx.first_pairs(rows, measures)
        masks = _masks_of(cls, ctx, measures)
    rho = ctx.state.lam[rows, k0]
    per_unit = np.broadcast_to(rho[:, None, None], masks.shape)
    _book_rent_rows(ctx, rows, masks, per_unit, rent_to)


class _Quota(Measure):
    importers: list[Region] = Field(
        min_length=1,
        description="regions applying the quota",
        json_schema_extra=editor(
            label="Importers",
            help="Regions limiting their imports.",
            default="club_importers",
        ),
    )
    exporters: list[Region] | None = Field(
        None,
        description="origins covered (default: every foreign origin)",
        json_schema_extra=editor(
            label="From exporters",
            help="Origins covered; leave empty for every foreign origin.",
            default="outsider_producers",
        ),
    )
    quantity: float = Field(
        ge=0.0,
        description="quota volume per year (market quantity unit)",
        json_schema_extra=editor(
            label="Quota",
            unit="quantity",
            help="Largest yearly volume of all covered imports together (default: half the "
            "base flow); 0 bans them.",
            default=rel("base_flow", 0.5, of="exporters", to="importers"),
        ),
    )
    rent_to: Literal["importer_government", "importers", "exporters"] = Field(
        "importer_government",
        description="who holds the quota rent",
        json_schema_extra=editor(
            label="Who holds the rent",
            help="Who earns the gap between the price inside and outside the quota.",
            choices={
                "importer_government": "Importing government (auctioned licences)",
                "importers": "Importers (licences given to firms)",
                "exporters": "Exporters (voluntary restraint)",
            },
        ),
    )

    region_fields = ("importers", "exporters")

    def mask(self, ctx) -> np.ndarray:
        return ctx.pair_mask(self.importers, self.exporters)

    @classmethod
    def mask_keys(cls, ctx, measures: list) -> list[tuple]:
        """The :meth:`ApplyContext.masks` keys of each measure's :meth:`mask`."""
        return _quota_keys(measures)

    has_pair_keys = True
    columns: ClassVar[tuple[str, ...]] = ("quantity", "rent_to")
    float_columns: ClassVar[tuple[str, ...]] = ("quantity",)

    @classmethod
    def pair_keys(cls, ctx, measures: list) -> list[tuple]:
        return cls.mask_keys(ctx, measures)


@register
class ImportQuota(_Quota):
    """A cap on the covered imports (all covered pairs together); quantity 0 bans them."""

    editor_label: ClassVar[str] = "Import quota"
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

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        quantity = ctx.column(cls, measures, "quantity", floats=True)
        keys, masks = ctx.pair_masks(cls, measures, remember=True)
        _ban_or_cap_rows(ctx, rows, keys, quantity, "import quota rent", 2, None, measures, masks)

    def book(self, ctx: BookContext, b: int) -> None:
        _book_cap_rent(self, ctx, b)

    @classmethod
    def book_rows(cls, ctx: BookContext, rows: np.ndarray, measures: list) -> None:
        _book_cap_rent_rows(cls, ctx, rows, measures)

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

    editor_label: ClassVar[str] = "Tariff-rate quota"
    type: Literal["tariff_rate_quota"] = "tariff_rate_quota"
    caveat: ClassVar[str] = "Who holds the in-quota rent changes national welfare, not quantities."
    quantity: float = Field(
        gt=0.0,
        description="in-quota volume per year",
        json_schema_extra=editor(
            label="In-quota volume",
            unit="quantity",
            help="Yearly volume that pays the in-quota rate (default: half the base flow).",
            default=rel("base_flow", 0.5, of="exporters", to="importers"),
        ),
    )
    in_rate: Rate = Field(
        ge=0.0,
        description="in-quota ad valorem tariff",
        json_schema_extra=editor(
            label="In-quota tariff", unit="rate", help="Tariff inside the quota.", default=0.0
        ),
    )
    out_rate: Rate = Field(
        ge=0.0,
        description="out-of-quota ad valorem tariff",
        json_schema_extra=editor(
            label="Out-of-quota tariff",
            unit="rate",
            help="Tariff on imports beyond the quota.",
            default=25.0,
        ),
    )

    columns = ("quantity", "rent_to", "in_rate", "out_rate")
    float_columns = ("quantity", "in_rate", "out_rate")

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

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        keys, masks = ctx.pair_masks(cls, measures, remember=True)
        ok = ctx.claim_rows(rows, j, measures, "tariff", masks, TARIFF_RULE)
        rows, masks = rows[ok], masks[ok]
        in_rate = ctx.column(cls, measures, "in_rate", floats=True)[ok]
        r, cell = mask_cells(masks)
        put_cells(ctx.builder.tariff, rows[r], cell, in_rate[r])
        out_rate = ctx.column(cls, measures, "out_rate", floats=True)[ok]
        quantity = ctx.column(cls, measures, "quantity", floats=True)[ok]
        keys = [k for k, keep in zip(keys, ok.tolist(), strict=True) if keep]
        ones = np.ones(len(rows))
        ks = _cap_rows(ctx, rows, keys, masks, quantity, "TRQ rent", 1, ones, out_rate - in_rate)
        if ok.all():  # every row's pair and mask here: kept for booking (_kept_caps)
            ctx.kept[("caps", id(measures))] = (measures, rows, ok, ks, masks)

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

    @classmethod
    def book_rows(cls, ctx: BookContext, rows: np.ndarray, measures: list) -> None:
        st = ctx.state
        if st.fob is None:
            raise RuntimeError("booking a TRQ needs the full state (fob prices), not a lean one")
        kept = _kept_caps(cls, ctx, rows, measures)
        if kept is not None:  # every measure's pair and mask as applying found them
            _, k0, masks = kept
        else:
            k0 = ctx.first_pairs(rows, measures)
            masks = _masks_of(cls, ctx, measures)
        r = ctx.state.lam[rows, k0][:, None, None]
        X, fob = st.X[rows], st.fob[rows]
        filled = masked_sums(X, masks)
        q = ctx.column(cls, measures, "quantity", floats=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = np.where(filled > 0, np.minimum(1.0, q / filled), 1.0)[:, None, None]
        rent_to = ctx.column(cls, measures, "rent_to")
        rfob = r * fob  # (the products below evaluate left to right: the same numbers)
        _book_rent_rows(ctx, rows, masks, rfob * inside, rent_to, X)
        extra = (rfob * X * (1.0 - inside) * masks).sum(axis=1)
        ctx.ledger["tariff_revenue_change"][rows] += extra

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

    editor_label: ClassVar[str] = "Export ban or quota"
    type: Literal["export_quota"] = "export_quota"
    caveat: ClassVar[str] = (
        "Who holds an export licence rent changes national welfare, not quantities. An export "
        "quota of zero is a ban: the variety is removed from the markets covered, which raises "
        "their consumer price by more than the prices still paid."
    )
    exporter: Region = Field(
        description="region restricting its exports",
        json_schema_extra=editor(
            label="Exporter", help="Region restricting its exports.", default="top_producer"
        ),
    )
    destinations: list[Region] | None = Field(
        None,
        description="destinations covered (default: every foreign destination)",
        json_schema_extra=editor(
            label="To destinations",
            help="Destinations covered; leave empty for every foreign destination.",
            default="club_ban_destinations",
        ),
    )
    quantity: float | None = Field(
        None,
        ge=0.0,
        description="export volume per year; 0 = ban",
        json_schema_extra=editor(
            label="Export quota",
            unit="quantity",
            help="Largest yearly exports to the destinations covered; 0 is a ban.",
            default=0.0,
        ),
    )
    quantity_share: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="export volume as a share of the exporter's base exports to the "
        "destinations covered (instead of quantity); 0 = ban",
        json_schema_extra=editor(
            label="Or: share of base exports",
            unit="share",
            help="The quota as a share of the base exports to the destinations covered, "
            "instead of a volume; leave empty to use the volume.",
        ),
    )
    rent_to: Literal["exporter_government", "exporters", "importers"] = Field(
        "exporter_government",
        description="who holds the licence rent",
        json_schema_extra=editor(
            label="Who holds the rent",
            help="Who earns the gap between the price abroad and at home.",
            choices={
                "exporter_government": "Exporting government (licence fees)",
                "exporters": "Exporters (licences given to firms)",
                "importers": "Importers",
            },
        ),
    )

    region_fields = ("exporter", "destinations")

    @model_validator(mode="after")
    def _one_quantity(self) -> ExportQuota:
        if (self.quantity is None) == (self.quantity_share is None):
            raise ValueError(
                "give exactly one of quantity (per year) or quantity_share (of base exports)"
            )
        return self

    def mask(self, ctx) -> np.ndarray:
        dest = self.destinations if self.destinations is not None else ctx.foreign(self.exporter)
        return ctx.pair_mask(dest, [self.exporter])

    @classmethod
    def mask_keys(cls, ctx, measures: list) -> list[tuple]:
        """The :meth:`ApplyContext.masks` keys of each measure's :meth:`mask`."""
        return exporter_destination_keys(ctx, measures)

    has_pair_keys = True
    columns = ("exporter", "quantity", "rent_to")

    @classmethod
    def pair_keys(cls, ctx, measures: list) -> list[tuple]:
        return cls.mask_keys(ctx, measures)

    def allowed(self, X0: np.ndarray, mask: np.ndarray) -> float:
        """The export volume allowed per year: ``quantity``, or ``quantity_share`` of the
        base exports ``X0`` over the covered pairs ``mask``."""
        if self.quantity is not None:
            return float(self.quantity)
        return float(self.quantity_share) * float(X0[mask].sum())  # type: ignore[arg-type]

    def apply(self, ctx: ApplyContext, b: int) -> None:
        scale = float(ctx.cal.p0[ctx.idx(self.exporter)[0]])
        mask = self.mask(ctx)
        quantity = self.allowed(ctx.cal.X0, mask)
        _ban_or_cap(ctx, b, mask, quantity, "export licence rent", "C_fob", scale)

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        keys, masks = ctx.pair_masks(cls, measures, remember=True)
        pos = ctx.market._positions
        p0 = ctx.cal.p0
        exporter = ctx.column(cls, measures, "exporter")
        scale = np.array([float(p0[pos[e]]) for e in exporter], dtype=float)
        quantity_col = ctx.column(cls, measures, "quantity")
        if None not in quantity_col:
            quantity = np.array(quantity_col, dtype=float)
        else:
            quantity = np.array(
                [m.allowed(ctx.cal.X0, mk) for m, mk in zip(measures, masks, strict=True)]
            )
        _ban_or_cap_rows(
            ctx, rows, keys, quantity, "export licence rent", 0, scale, measures, masks
        )

    def book(self, ctx: BookContext, b: int) -> None:
        _book_cap_rent(self, ctx, b)

    @classmethod
    def book_rows(cls, ctx: BookContext, rows: np.ndarray, measures: list) -> None:
        _book_cap_rent_rows(cls, ctx, rows, measures)

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        dest = "all destinations" if self.destinations is None else names(self.destinations)
        if _is_ban(self):
            return f"A ban by {names([self.exporter])} on exports to {dest}"
        owner = {
            "exporter_government": "the exporting government",
            "exporters": "exporting firms",
            "importers": "importers",
        }
        if self.quantity is None:
            amount = f"{100 * float(self.quantity_share or 0):.3g}% of base exports"
        else:
            amount = f"{self.quantity:,.0f} {market.quantity_unit}/yr"
        return (
            f"An export quota of {amount} by "
            f"{names([self.exporter])} on sales to {dest}; licence rent to "
            f"{owner[self.rent_to]}"
        )
