"""Exogenous shocks: lost supply capacity and demand shifts."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from tradepolicy.measures.base import ApplyContext, Measure, Region, editor, register
from tradepolicy.measures.trade import _names


def _as_list(region: str | list[str]) -> list[str]:
    return [region] if isinstance(region, str) else list(region)


def _cells(ctx: ApplyContext, rows: np.ndarray, region: list) -> tuple[np.ndarray, np.ndarray]:
    """(row, region) of every region each measure names (``region``: each measure's field;
    a repeated region once, as a fancy-indexed update of one row does)."""
    pos = ctx.market._positions
    r: list[int] = []
    o: list[int] = []
    for b, named in zip(rows.tolist(), region, strict=True):
        regions = [named] if isinstance(named, str) else dict.fromkeys(named)
        for code in regions:
            r.append(b)
            o.append(pos[code])
    return np.array(r, dtype=np.intp), np.array(o, dtype=np.intp)


def _which(r: np.ndarray, rows: np.ndarray, measures: list) -> np.ndarray:
    """The measure (position in ``measures``) of each entry of row ``r``."""
    at = np.empty(int(rows.max(initial=-1)) + 1, dtype=np.intp)
    at[rows] = np.arange(len(measures))
    return at[r]


@register
class SupplyShock(Measure):
    """A fraction of a region's supply capacity is lost: S_o is scaled by (1 − fraction)."""

    editor_label: ClassVar[str] = "Supply shock"
    type: Literal["supply_shock"] = "supply_shock"
    region: Region | list[Region] = Field(
        description="producing region(s) hit",
        json_schema_extra=editor(
            label="Regions hit", help="Producers losing capacity.", default="top_producer"
        ),
    )
    fraction: float = Field(
        ge=0.0,
        lt=1.0,
        description="share of capacity lost, in [0, 1)",
        json_schema_extra=editor(
            label="Capacity lost",
            unit="share",
            help="Share of the regions' supply capacity lost at every price.",
            default=20.0,
        ),
    )

    region_fields = ("region",)
    columns = ("region", "fraction")
    float_columns = ("fraction",)

    def apply(self, ctx: ApplyContext, b: int) -> None:
        ctx.builder.supply_mult[b, ctx.idx(_as_list(self.region))] *= 1.0 - self.fraction

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        r, o = _cells(ctx, rows, ctx.column(cls, measures, "region"))
        f = 1.0 - ctx.column(cls, measures, "fraction", floats=True)
        ctx.builder.supply_mult[r, o] *= f[_which(r, rows, measures)]

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        regions = _as_list(self.region)
        verb = "loses" if len(regions) == 1 else "lose"
        text = f"{names(regions)} {verb} {100 * self.fraction:.3g}% of supply capacity"
        return text[:1].upper() + text[1:]


@register
class DemandShift(Measure):
    """Composite demand in a region shifts by a fraction at every price: D_d·(1 + fraction)."""

    editor_label: ClassVar[str] = "Demand shift"
    type: Literal["demand_shift"] = "demand_shift"
    region: Region | list[Region] = Field(
        description="consuming region(s)",
        json_schema_extra=editor(
            label="Regions", help="Consumers whose demand shifts.", default="club_consumers"
        ),
    )
    fraction: float = Field(
        gt=-1.0,
        le=100.0,
        description="shift (0.2 = +20%), > -1",
        json_schema_extra=editor(
            label="Demand shift",
            unit="share",
            help="Change of demand at every price (negative: less demand).",
            default=10.0,
        ),
    )

    region_fields = ("region",)
    columns = ("region", "fraction")
    float_columns = ("fraction",)
    caveat: ClassVar[str] = (
        "Consumer surplus under a demand shift is measured on the shifted demand curve (the "
        "scenario's buyers), as the area between the base and the new composite price; it "
        "leaves out the value of the shift itself, so a rise in demand shows as a loss to "
        "buyers when it raises the price."
    )

    def apply(self, ctx: ApplyContext, b: int) -> None:
        ctx.builder.demand_mult[b, ctx.idx(_as_list(self.region))] *= 1.0 + self.fraction

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        r, o = _cells(ctx, rows, ctx.column(cls, measures, "region"))
        f = 1.0 + ctx.column(cls, measures, "fraction", floats=True)
        ctx.builder.demand_mult[r, o] *= f[_which(r, rows, measures)]

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        word = "rises" if self.fraction >= 0 else "falls"
        return (
            f"Demand in {names(_as_list(self.region))} {word} by "
            f"{100 * abs(self.fraction):.3g}% at every price"
        )
