"""Border measures: ad valorem tariffs and export taxes."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import AfterValidator, Field

from tradepolicy.measures.base import (
    ApplyContext,
    Measure,
    Region,
    editor,
    exporter_destination_keys,
    importer_exporter_keys,
    mask_cells,
    put_cells,
    register,
)

#: Largest ad valorem rate accepted (10 = 1,000%). Rates are fractions (0.25 = 25%); a larger
#: number is taken as a percent slip (``rate = 25`` for 25%) and refused with a suggestion.
#: Whole-number rates above 1 (100%) up to this bound are warned (see ``rate_advice``).
MAX_RATE = 10.0


def _rate_bound(value: float) -> float:
    if value > MAX_RATE:
        raise ValueError(
            f"{value:g} would be a {100 * value:,.0f}% rate; rates are fractions (0.25 = 25%) "
            f"of at most {MAX_RATE:g} ({100 * MAX_RATE:,.0f}%): for {value:g}% write "
            f"{value / 100:g}"
        )
    return value


#: An ad valorem rate as a fraction (0.25 = 25%), at most :data:`MAX_RATE`.
Rate = Annotated[float, AfterValidator(_rate_bound)]


def rate_advice(name: str, value: float) -> list[tuple[str, str]]:
    """Advice on a whole-number rate above 100% in a file (``rate = 2``): a likely percent slip.

    Scenario files are checked with it (:func:`tradepolicy.load_scenarios`); rates computed in
    code (e.g. 1.5531, the tariff equivalent of a quota rent) are not.
    """
    if value > 1.0 and value == round(value):
        return [
            (
                name,
                f"{value:g} is a {100 * value:,.0f}% rate; rates are fractions (0.25 = 25%): "
                f"if you meant {value:g}%, write {value / 100:g}",
            )
        ]
    return []


#: how measures on the same pair combine (refused: which rate was meant is not knowable)
TARIFF_RULE = (
    "a pair has one tariff (allowed: one tariff or tariff_rate_quota per exporter → importer "
    "pair; give the pair in one measure with the rate you mean)"
)
EXPORT_TAX_RULE = (
    "a pair has one export tax (allowed: one export_tax per exporter → destination pair; "
    "give the pair in one measure with the rate you mean)"
)


def _set_rows(
    ctx: ApplyContext,
    rows: np.ndarray,
    measures: list,
    j: int,
    what: str,
    rule: str,
    cells: np.ndarray,
    array: str,
    rates: np.ndarray,
) -> None:
    """Claim ``cells`` (R,N,N) of ``what`` and set the builder's ``array`` there to each
    measure's ``rate`` (``rates``; rows with a clash are left to the measure's own
    ``apply``)."""
    ok = ctx.claim_rows(rows, j, measures, what, cells, rule)
    r, cell = mask_cells(cells[ok])
    put_cells(getattr(ctx.builder, array), rows[ok][r], cell, rates[ok][r])


def _names(codes: list[str]) -> str:
    if len(codes) <= 1:
        return "".join(codes)
    return ", ".join(codes[:-1]) + " and " + codes[-1]


@register
class Tariff(Measure):
    """Ad valorem import tariff t_od that replaces the base rate on the named pairs."""

    editor_label: ClassVar[str] = "Tariff"
    type: Literal["tariff"] = "tariff"
    importers: list[Region] = Field(
        min_length=1,
        description="regions levying the tariff",
        json_schema_extra=editor(
            label="Importers levying it",
            help="Regions charging the tariff at their border.",
            default="club_importers",
        ),
    )
    exporters: list[Region] | None = Field(
        None,
        description="origins it applies to (default: every foreign origin)",
        json_schema_extra=editor(
            label="Origins taxed",
            help="Leave empty to tax every foreign origin.",
            default="outsiders",
        ),
    )
    rate: Rate = Field(
        ge=0.0,
        description="ad valorem rate (0.25 = 25%)",
        json_schema_extra=editor(
            label="Tariff rate",
            unit="rate",
            help="Ad valorem tariff on the import value.",
            default=25.0,
        ),
    )

    region_fields = ("importers", "exporters")
    gsim_linear = True

    def apply(self, ctx: ApplyContext, b: int) -> None:
        # named exporters are taken as given (an importer named among them: its own flow)
        for imp in self.importers:
            origins = self.exporters if self.exporters is not None else ctx.foreign(imp)
            o = ctx.idx(origins)
            cells = np.zeros(ctx.builder.tariff.shape[1:], dtype=bool)
            cells[o, ctx.idx(imp)[0]] = True
            ctx.claim(b, "tariff", cells, TARIFF_RULE)
            ctx.builder.tariff[b, o, ctx.idx(imp)[0]] = self.rate

    has_pair_keys = True
    columns = ("rate",)
    float_columns = ("rate",)

    @classmethod
    def pair_keys(cls, ctx, measures: list) -> list[tuple]:
        return importer_exporter_keys(measures)

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        _, masks = ctx.pair_masks(cls, measures)
        rates = ctx.column(cls, measures, "rate", floats=True)
        _set_rows(ctx, rows, measures, j, "tariff", TARIFF_RULE, masks, "tariff", rates)

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        src = "all foreign suppliers" if self.exporters is None else names(self.exporters)
        return f"A {100 * self.rate:.3g}% tariff by {names(self.importers)} on imports from {src}"


@register
class ExportTax(Measure):
    """Ad valorem export tax x_od on the exporter's sales; revenue to the exporter."""

    editor_label: ClassVar[str] = "Export tax"
    type: Literal["export_tax"] = "export_tax"
    exporter: Region = Field(
        description="region levying the tax",
        json_schema_extra=editor(
            label="Exporter", help="Region taxing its exports.", default="top_producer"
        ),
    )
    destinations: list[Region] | None = Field(
        None,
        description="destinations taxed (default: every foreign destination)",
        json_schema_extra=editor(
            label="Destinations taxed", help="Leave empty to tax every foreign destination."
        ),
    )
    rate: Rate = Field(
        gt=-1.0,
        description="ad valorem rate (negative = subsidy)",
        json_schema_extra=editor(
            label="Tax rate",
            unit="rate",
            help="Ad valorem tax on the export value; a negative rate is a subsidy.",
            default=10.0,
        ),
    )

    region_fields = ("exporter", "destinations")
    gsim_linear = True

    def apply(self, ctx: ApplyContext, b: int) -> None:
        dest = self.destinations if self.destinations is not None else ctx.foreign(self.exporter)
        d = ctx.idx(dest)
        cells = np.zeros(ctx.builder.export_tax.shape[1:], dtype=bool)
        cells[ctx.idx(self.exporter)[0], d] = True
        ctx.claim(b, "export tax", cells, EXPORT_TAX_RULE)
        ctx.builder.export_tax[b, ctx.idx(self.exporter)[0], d] = self.rate

    has_pair_keys = True
    columns = ("rate",)
    float_columns = ("rate",)

    @classmethod
    def pair_keys(cls, ctx, measures: list) -> list[tuple]:
        return exporter_destination_keys(ctx, measures)

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        _, masks = ctx.pair_masks(cls, measures)
        rates = ctx.column(cls, measures, "rate", floats=True)
        _set_rows(ctx, rows, measures, j, "export tax", EXPORT_TAX_RULE, masks, "export_tax", rates)

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        dest = "all foreign buyers" if self.destinations is None else names(self.destinations)
        kind = "export tax" if self.rate >= 0 else "export subsidy"
        rate = f"{100 * abs(self.rate):.3g}%"
        return f"A {rate} {kind} by {names([self.exporter])} on sales to {dest}"
