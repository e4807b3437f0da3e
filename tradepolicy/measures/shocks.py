"""Exogenous shocks: lost supply capacity and demand shifts."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from tradepolicy.measures.base import ApplyContext, Measure, Region, register
from tradepolicy.measures.trade import _names


def _as_list(region: str | list[str]) -> list[str]:
    return [region] if isinstance(region, str) else list(region)


@register
class SupplyShock(Measure):
    """A fraction of a region's supply capacity is lost: S_o is scaled by (1 − fraction)."""

    type: Literal["supply_shock"] = "supply_shock"
    region: Region | list[Region] = Field(description="producing region(s) hit")
    fraction: float = Field(ge=0.0, lt=1.0, description="share of capacity lost, in [0, 1)")

    region_fields = ("region",)

    def apply(self, ctx: ApplyContext, b: int) -> None:
        ctx.builder.supply_mult[b, ctx.idx(_as_list(self.region))] *= 1.0 - self.fraction

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        regions = _as_list(self.region)
        verb = "loses" if len(regions) == 1 else "lose"
        text = f"{names(regions)} {verb} {100 * self.fraction:.3g}% of supply capacity"
        return text[:1].upper() + text[1:]


@register
class DemandShift(Measure):
    """Composite demand in a region shifts by a fraction at every price: D_d·(1 + fraction)."""

    type: Literal["demand_shift"] = "demand_shift"
    region: Region | list[Region] = Field(description="consuming region(s)")
    fraction: float = Field(gt=-1.0, le=100.0, description="shift (0.2 = +20%), > -1")

    region_fields = ("region",)
    caveat: ClassVar[str] = (
        "Consumer surplus under a demand shift is measured on the shifted demand curve (the "
        "scenario's buyers), as the area between the base and the new composite price; it "
        "leaves out the value of the shift itself, so a rise in demand shows as a loss to "
        "buyers when it raises the price."
    )

    def apply(self, ctx: ApplyContext, b: int) -> None:
        ctx.builder.demand_mult[b, ctx.idx(_as_list(self.region))] *= 1.0 + self.fraction

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        word = "rises" if self.fraction >= 0 else "falls"
        return (
            f"Demand in {names(_as_list(self.region))} {word} by "
            f"{100 * abs(self.fraction):.3g}% at every price"
        )
