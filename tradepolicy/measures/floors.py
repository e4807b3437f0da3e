"""Border-adjusted price floors: a variable levy or a minimum-import-price undertaking."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from tradepolicy.measures.base import (
    ApplyContext,
    Measure,
    MeasureConflict,
    Region,
    editor,
    mask_cells,
    put_cells,
    register,
    rel,
)
from tradepolicy.measures.trade import _names


def _median_base_price(market) -> float:
    ref = market.memo.get("median_base_price")
    if ref is None:
        ref = market.memo["median_base_price"] = float(np.nanmedian(market.base_price))
    return ref


def magnitude_advice(market, name: str, value: float) -> list[tuple[str, str]]:
    """Warn when a per-unit price is far from the market's base prices (wrong unit?)."""
    ref = _median_base_price(market)
    if ref > 0 and not (ref / 20 <= value <= ref * 20):
        return [
            (
                name,
                f"{value:g} {market.price_unit} is {value / ref:.3g} times the base price "
                f"({ref:g} {market.price_unit}); is it in the market's unit?",
            )
        ]
    return []


def magnitude_flags(market, values: list[float]) -> list[bool]:
    """Whether :func:`magnitude_advice` warns about each value (the same comparisons)."""
    ref = _median_base_price(market)
    if not ref > 0:
        return [False] * len(values)
    v = np.array(values, dtype=float)
    return (~((ref / 20 <= v) & (v <= ref * 20))).tolist()


@register
class PriceFloor(Measure):
    """A landed price floor on imports from outside a club.

    The levy on each covered pair is ``L = min(levy_cap, max(0, floor − pre-levy landed
    price))``, so imports never land below the floor (up to the cap). With
    ``collector = "importer_government"`` the levy is revenue of the importer (a variable
    levy); with ``collector = "exporters"`` exporters raise their price to the floor and keep
    the margin (a minimum-import-price undertaking). Quantities are the same either way.
    """

    editor_label: ClassVar[str] = "Price floor"
    type: Literal["price_floor"] = "price_floor"
    importers: list[Region] = Field(
        min_length=1,
        description="regions applying the floor",
        json_schema_extra=editor(
            label="Importers applying it",
            help="Regions whose imports may not land below the floor.",
            default="club_importers",
        ),
    )
    floor: float = Field(
        gt=0.0,
        description="landed floor price (market price unit)",
        json_schema_extra=editor(
            label="Floor level",
            unit="price",
            help="Imports from covered origins pay a levy that lifts their landed price to "
            "this level.",
            default=rel("base_price", 2.0),
        ),
    )
    exempt: list[Region] = Field(
        default_factory=list,
        description="origins not subject to the floor (club members)",
        json_schema_extra=editor(
            label="Exempt origins",
            help="Origins that sell without the levy, usually the club members.",
            default="club",
        ),
    )
    exporters: list[Region] | None = Field(
        None,
        description="origins covered (default: every foreign origin not exempt)",
        json_schema_extra=editor(
            label="Origins covered",
            help="Leave empty to cover every foreign origin that is not exempt.",
        ),
    )
    levy_cap: float | None = Field(
        None,
        ge=0.0,
        description="largest levy per unit",
        json_schema_extra=editor(
            label="Levy cap",
            unit="price",
            help="Largest levy per unit; leave empty for no cap.",
        ),
    )
    collector: Literal["importer_government", "exporters"] = Field(
        "importer_government",
        description="who keeps the margin: levy or undertaking",
        json_schema_extra=editor(
            label="Who keeps the margin",
            help="A variable levy is revenue of the importing government; under an "
            "undertaking exporters raise their price and keep the margin.",
            choices={
                "importer_government": "Variable levy (importing government)",
                "exporters": "Undertaking (exporters keep the margin)",
            },
        ),
    )

    region_fields = ("importers", "exempt", "exporters")
    caveat: ClassVar[str] = (
        "A border price floor holds the domestic price up only while the protected bloc "
        "imports at the floor; members' own supply sells below it. Whether the margin is a "
        "levy (kept by the importing government) or a minimum-import-price undertaking (kept "
        "by the exporters as their rent) changes national welfare, not quantities."
    )

    def advice(self, market) -> list[tuple[str, str]]:
        return magnitude_advice(market, "floor", self.floor)

    @classmethod
    def advice_rows(cls, market, measures: list) -> list[list[tuple[str, str]]]:
        flags = magnitude_flags(market, [m.floor for m in measures])
        return [m.advice(market) if f else [] for m, f in zip(measures, flags, strict=True)]

    def apply(self, ctx: ApplyContext, b: int) -> None:
        mask = ctx.pair_mask(self.importers, self.exporters, self.exempt)
        bld = ctx.builder
        cap = np.inf if self.levy_cap is None else self.levy_cap
        to_exporters = self.collector == "exporters"
        # several floors on one pair: the highest floor applies, with its cap and collector
        before = bld.floor[b].copy()
        owners = ctx.owner_of(b, "price floor")
        owners = None if owners is None else owners.copy()
        shared = ctx.claim(b, "price floor", mask, "")
        tie = shared & (before == self.floor)
        differ = tie & ((bld.levy_cap[b] != cap) | (bld.levy_to_exporter[b] != to_exporters))
        if differ.any():
            if owners is None:  # a shared cell was claimed before, so it has an owner array
                raise RuntimeError("price floor cells shared without an owner array")
            o, d = (int(k) for k in np.argwhere(differ)[0])
            i, j = int(owners[o, d]), bld.current[0] if bld.current else -1
            raise MeasureConflict(
                f"measure[{i}] (price_floor) and measure[{j}] (price_floor) set "
                f"two price floors of {self.floor:g} on {ctx.market.regions[o]} → "
                f"{ctx.market.regions[d]} with different levy caps or collectors (allowed: "
                "on a pair the highest floor applies; floors of the same level must agree on "
                "levy_cap and collector)"
            )
        take = mask & ~(shared & (before >= self.floor))
        bld.floor[b][take] = self.floor
        bld.levy_cap[b][take] = cap
        bld.levy_to_exporter[b][take] = to_exporters

    has_pair_keys = True
    columns = ("floor", "levy_cap", "collector")
    float_columns = ("floor",)

    @classmethod
    def pair_keys(cls, ctx, measures: list) -> list[tuple]:
        return [
            (
                tuple(m.importers),
                None if m.exporters is None else tuple(m.exporters),
                tuple(m.exempt),
            )
            for m in measures
        ]

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        # rows where an earlier floor covers a pair combine floors: left to `apply`
        _, cells = ctx.pair_masks(cls, measures)
        ok = ctx.claim_rows(rows, j, measures, "price floor", cells, "")
        bld = ctx.builder
        r, cell = mask_cells(cells[ok])
        b = rows[ok][r]
        floor = ctx.column(cls, measures, "floor", floats=True)[ok]
        cap = np.array(
            [np.inf if v is None else v for v in ctx.column(cls, measures, "levy_cap")],
            dtype=float,
        )[ok]
        to_exp = np.array(
            [v == "exporters" for v in ctx.column(cls, measures, "collector")], dtype=bool
        )[ok]
        put_cells(bld.floor, b, cell, floor[r])
        put_cells(bld.levy_cap, b, cell, cap[r])
        put_cells(bld.levy_to_exporter, b, cell, to_exp[r])

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        price = getattr(market, "describe_price", None) or (
            lambda v: f"{v:,.0f} {market.price_unit}"
        )
        text = (
            f"A landed price floor of {price(self.floor)} applied by "
            f"{names(self.importers)} to imports"
        )
        others = [r for r in self.exempt if r not in self.importers]
        if self.exporters is not None:
            text += f" from {names(self.exporters)}"
        elif len(self.importers) > 1 and set(self.importers) <= set(self.exempt):
            text += " from outside the club"
        if others:
            text += f"; {names(others)} exempt"
        if self.levy_cap is not None:
            text += f"; levy capped at {price(self.levy_cap)}"
        if self.collector == "exporters":
            text += " (minimum-import-price undertaking: exporters keep the margin)"
        else:
            text += " (a variable levy collected by the importing government)"
        return text

    @model_validator(mode="after")
    def _exempt_not_covered(self) -> PriceFloor:
        if self.exporters is not None and set(self.exporters) & set(self.exempt):
            both = sorted(set(self.exporters) & set(self.exempt))
            raise ValueError(f"regions {both} are both covered (exporters) and exempt")
        return self
