"""Page 1 of a static brief: the question in the G7's terms, the answer, the options at a
glance, who pays and (for a chain) dependence per stage (docs/briefs.md, "Page 1").

A static set's results describe one model year (the base year's market one year after the
measures take effect), so the summary says so; the 2030 question itself is answered by a
pathway set's brief (:mod:`tradepolicy.reports.pathway`). Every number is read from
``ds.tp.options()`` and ``ds.tp.who_pays()`` (the numbers ``tradepolicy run`` prints); the
ambition is the set's own (``target = {..., ambition = 0.50}``), never the brief's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import xarray as xr

from tradepolicy import regions as region_table
from tradepolicy.reports.formatting import DisplayUnits, fmt_millions, fmt_points, fmt_share
from tradepolicy.reports.names import join_words, region_in_text
from tradepolicy.results.accessor import MIN_POINTS

if TYPE_CHECKING:
    from tradepolicy.reports.context import ScenarioBlock, Table, _Bloc

#: money below this (display millions a year) counts as zero in sentences and the payers table
MONEY_EPS = 0.05
#: the tolerance of "at or below a share" (the solver's own, ``meets_target``)
SHARE_TOL = 1e-12


@dataclass
class Summary:
    """Page 1 of a static brief (one per market, or one for a chain)."""

    #: the market's name when a brief holds several markets, else ""
    heading: str
    question: str
    answer: list[str]
    options: Table
    payers: Table | None
    #: dependence per stage (chains only)
    stages: Table | None
    #: the largest share allowed and the stricter ambition (None when the set has none)
    max_share: float | None
    ambition: float | None
    #: the model year the numbers describe
    year: str


def set_ambition(ds: xr.Dataset) -> float | None:
    """The ambition of the set's target (``target.ambition`` in the stored scenario spec)."""
    value = ds.attrs.get("target_ambition")
    if value is None:
        try:
            spec = json.loads(str(ds.attrs.get("scenario_spec") or "{}"))
        except ValueError:
            return None
        specs = spec if isinstance(spec, list) else [spec]
        found = [
            s["target"].get("ambition")
            for s in specs
            if isinstance(s, dict) and isinstance(s.get("target"), dict)
        ]
        value = next((v for v in found if v is not None), None)
    try:
        amb = float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return None
    return amb if math.isfinite(amb) and 0.0 < amb <= 1.0 else None


def lower_first(name: str) -> str:
    """``Sintered NdFeB magnets`` -> ``sintered NdFeB magnets``; ``NdPr oxide`` and ``EU``
    unchanged (a first word with capitals after its first letter keeps them)."""
    word = name.split(" ", 1)[0]
    return name[:1].lower() + name[1:] if word[1:].islower() else name


def _pct(share: float) -> str:
    return f"{100 * share:.3g}%"


def _at_most(dep: float, share: float) -> bool:
    return math.isfinite(dep) and dep <= share + SHARE_TOL


class _SummaryBuilder:
    def __init__(
        self,
        ds: xr.Dataset,
        com: str | None,
        blocks: list[ScenarioBlock],
        units: DisplayUnits,
        bloc: _Bloc,
        *,
        commodity: str,
        year: str,
        heading: str = "",
        stage_words: str = "",
        stages: Table | None = None,
        stage_line: str = "",
    ) -> None:
        self.ds, self.com, self.units, self.bloc = ds, com, units, bloc
        self.blocks = [b for b in blocks if b.solved]
        self.all_blocks = blocks
        self.opts = bloc.options
        self.commodity, self.year, self.heading = commodity, year, heading
        self.stage_words, self.stages, self.stage_line = stage_words, stages, stage_line
        self.target = bloc.target
        self.ambition = set_ambition(ds) if bloc.target is not None else None
        desc = str(ds.attrs.get("target_description") or "")
        self.group = desc or bloc.name

    # -- words ------------------------------------------------------------------------------

    def money(self, x: float) -> str:
        return fmt_millions(x, False)

    def question(self) -> str:
        where = f", {self.stage_words}" if self.stage_words else ""
        if self.target is None:
            ask = (
                f"How far can each option lower the dependence of {self.group} on a single "
                "supplier outside the group?"
            )
        else:
            amb = f", and to the {_pct(self.ambition)} ambition" if self.ambition else ""
            ask = (
                f"Can {self.group} bring their dependence on a single supplier outside the "
                f"group to at most {_pct(self.target)}{amb}?"
            )
        return (
            f"{ask} Dependence is the share of the group's total use of {self.commodity} (own "
            "production included) that comes from its largest single supplier outside the "
            f"group{where}. These "
            f"results are for one year: the {self.year} market one year after the measures "
            "take effect (medium run), not a path to a target year; a pathway set (with "
            "years) answers the question for 2030."
        )

    def answer(self) -> list[str]:
        o, lines = self.opts, []
        base = o.loc["baseline"]
        dep0 = float(base["dependence"])
        if not math.isfinite(dep0):
            return [
                f"The group uses no {self.commodity} in {self.year}: dependence is not defined."
            ]
        sup = str(base["largest_outside_supplier"])
        agg = float(base["unattributed_share"])
        first = (
            f"With no new measures, {self.group.split(' (')[0]} depend on "
            f"{region_in_text(sup) if sup else 'no single outside supplier'} for "
            f"{fmt_share(dep0)} of their use in {self.year}"
        )
        if math.isfinite(agg) and agg >= 0.0005:
            first += f" ({fmt_share(agg)} unattributed: {self.bloc.unattributed})"
        if self.target is not None:
            first += (
                f": {'within' if _at_most(dep0, self.target) else 'above'} the "
                f"{_pct(self.target)} target"
            )
            if self.ambition:
                first += (
                    f" and {'within' if _at_most(dep0, self.ambition) else 'above'} the "
                    f"{_pct(self.ambition)} ambition"
                )
        lines.append(first + ".")
        solved = self.blocks
        if not solved:
            lines.append("No option solved: no results are shown.")
            return lines
        for share, what in ((self.target, "target"), (self.ambition, "ambition")):
            if share is None:
                continue
            lines.append(self._meet_line(share, what, _at_most(dep0, share)))
        movers = [b for b in solved if self.bloc.moves(b.name)]
        if movers:
            best = max(movers, key=lambda b: float(o.loc[b.name, "points_removed"]))
            r = o.loc[best.name]
            lines.append(
                f"The largest reduction: option {best.ref} removes "
                f"{fmt_points(r['points_removed']).lstrip('+')} points, to "
                f"{fmt_share(r['dependence'])}, at a budget cost of {self.money(r['budget_cost'])} "
                f"and a cost to the group's buyers of {self.money(r['cost_to_bloc_buyers'])} "
                f"({self.units.money_unit}, > 0 a cost)."
            )
            total = {
                b.name: float(o.loc[b.name, "budget_cost_per_point"])
                + float(o.loc[b.name, "buyer_cost_per_point"])
                for b in movers
            }
            cheap = min(movers, key=lambda b: total[b.name])
            rc = o.loc[cheap.name]
            per = total[cheap.name]
            how = (
                f"a net gain of {self.money(-per)} per point for budgets and buyers together"
                if per < 0
                else f"{self.money(per)} per point for budgets and buyers together"
            )
            lines.append(
                f"Cheapest per point of dependence removed: option {cheap.ref}, {how} "
                f"(budget {fmt_millions(rc['budget_cost_per_point'])}, buyers "
                f"{fmt_millions(rc['buyer_cost_per_point'])}; {self.units.money_unit} per point)."
            )
        else:
            lines.append(f"No option lowers dependence by {MIN_POINTS:g} point or more.")
        raise_ = [b for b in solved if float(o.loc[b.name, "points_removed"]) <= -MIN_POINTS]
        if raise_:
            many = len(raise_) > 1
            lines.append(
                f"Option{'s' if many else ''} {join_words(b.ref for b in raise_)} "
                f"raise{'' if many else 's'} dependence."
            )
        if self.stage_line:
            lines.append(self.stage_line)
        flagged = [b for b in self.all_blocks if b.solved and b.warnings]
        if flagged:
            lines.append(
                f"\u26a0 Option{'s' if len(flagged) > 1 else ''} "
                f"{join_words(f'{b.number} ({b.label})' for b in flagged)}: results outside "
                "what the model can "
                "represent (each warning is given in full further on)."
            )
        unsolved = [b for b in self.all_blocks if not b.solved]
        if unsolved:
            names = join_words(f"{b.number} ({b.label})" for b in unsolved)
            lines.append(f"Not solved, so left out: {names}.")
        return lines

    def _meet_line(self, share: float, what: str, base_meets: bool) -> str:
        o = self.opts
        pct = _pct(share)
        meet = [b for b in self.blocks if _at_most(float(o.loc[b.name, "dependence"]), share)]
        n = len(self.blocks)
        if base_meets:
            above = [b for b in self.blocks if b not in meet]
            if not above:
                return f"Every option keeps dependence within the {pct} {what}."
            many = len(above) > 1
            return (
                f"Option{'s' if many else ''} {join_words(b.ref for b in above)} "
                f"push{'' if many else 'es'} dependence above the {pct} {what}."
            )
        if not meet:
            best = min(self.blocks, key=lambda b: float(o.loc[b.name, "dependence"]))
            return (
                f"No option reaches the {pct} {what}; the lowest dependence is "
                f"{fmt_share(o.loc[best.name, 'dependence'])}, with option {best.ref}."
            )
        parts = [
            f"{b.ref}: {fmt_share(o.loc[b.name, 'dependence'])}, budget "
            f"{self.money(o.loc[b.name, 'budget_cost'])}, buyers "
            f"{self.money(o.loc[b.name, 'cost_to_bloc_buyers'])}"
            for b in meet
        ]
        return (
            f"{len(meet)} of {n} option{'s' if n != 1 else ''} reach the {pct} {what} "
            f"({self.units.money_unit}, > 0 a cost): {'; '.join(parts)}."
        )

    # -- tables -----------------------------------------------------------------------------

    def options_table(self) -> Table:
        from tradepolicy.reports.context import WARN, Cell, Table, _row_label

        o = self.opts
        header = ["Option", f"Dependence {self.year} (largest outside supplier)"]
        if self.target is not None:
            header.append(f"At most {_pct(self.target)}")
        if self.ambition:
            header.append(f"At most {_pct(self.ambition)}")
        header += [
            "Points removed",
            "Budget cost (spending > 0)",
            "Cost to the group's buyers (> 0 = cost)",
            "Cost per point removed: budget / buyers",
        ]

        def yes(dep: float, share: float) -> Cell:
            if not math.isfinite(dep):
                return Cell("–")
            ok = _at_most(dep, share)
            return Cell("yes" if ok else "no", tone="" if ok else "neg")

        def dep_cell(r: pd.Series) -> Cell:
            sup = str(r["largest_outside_supplier"])
            return Cell(
                fmt_share(r["dependence"]) + (f" {region_table.short_name(sup)}" if sup else "")
            )

        def shares(r: pd.Series) -> list[Cell]:
            dep = float(r["dependence"])
            out = []
            if self.target is not None:
                out.append(yes(dep, self.target))
            if self.ambition:
                out.append(yes(dep, self.ambition))
            return out

        base = o.loc["baseline"]
        rows = [
            [Cell("Baseline", label=True), dep_cell(base), *shares(base)]
            + [Cell("–") for _ in range(4)]
        ]
        for b in self.all_blocks:
            r = o.loc[b.name]
            if not b.solved:
                rows.append(
                    [
                        Cell(f"{b.number}  {b.label}", label=True),
                        Cell("not solved", tone="neg"),
                        *[Cell("–") for _ in header[2:]],
                    ]
                )
                continue
            pts = float(r["points_removed"])
            cost, buyers = float(r["budget_cost"]), float(r["cost_to_bloc_buyers"])
            if r["note"]:
                per = str(r["note"])
            else:
                per = (
                    f"{fmt_millions(r['budget_cost_per_point'], False)} / "
                    f"{fmt_millions(r['buyer_cost_per_point'], False)}"
                )
            rows.append(
                [
                    _row_label(b),
                    dep_cell(r),
                    *shares(r),
                    Cell(
                        fmt_points(pts),
                        tone="pos" if pts >= MIN_POINTS else ("neg" if pts <= -MIN_POINTS else ""),
                    ),
                    Cell(self.money(cost), tone="neg" if cost >= MONEY_EPS else ""),
                    Cell(
                        self.money(buyers),
                        tone="neg"
                        if buyers >= MONEY_EPS
                        else ("pos" if buyers <= -MONEY_EPS else ""),
                    ),
                    Cell(per),
                ]
            )
        members = ", ".join(region_table.short_name(m) for m in self.bloc.members)
        note = (
            f"Dependence of {self.bloc.name} ({members}) in {self.year}, central result. Points "
            "removed: percentage points against the baseline (negative: it rises). Budget cost: "
            "subsidies, offtakes and stockpiles net of their revenue, every payer. Cost to the "
            "group's buyers: the fall in their consumer surplus (< 0 a gain). Cost per point: "
            f"only where an option lowers dependence by at least {MIN_POINTS:g} point. "
            f"Money in {self.units.money_unit}"
            + (" summed over the stages of the chain." if self.com is None else ".")
        )
        if any(b.warnings for b in self.all_blocks):
            note += f" {WARN}: results outside what the model can represent."
        return Table(
            key="summary_options",
            caption=f"Options at a glance, {self.year} ({self.units.money_unit})",
            header=header,
            rows=rows,
            note=note,
        )

    def payers_table(self) -> Table | None:
        from tradepolicy.reports.context import Cell, Table, _row_label

        cost = {
            b.name: self.ds.tp.who_pays(b.name, self.com)["budget_cost"].astype(float)
            for b in self.blocks
        }
        if not cost:
            return None
        frame = pd.DataFrame(cost).T
        cols = [c for c in frame.columns if (frame[c].abs() >= MONEY_EPS).any()]
        if not cols:
            return None
        # an option no government pays for (or earns from) is named in the note, not a row
        paying = [b for b in self.blocks if (frame.loc[b.name].abs() >= MONEY_EPS).any()]
        rows = [
            [_row_label(b), *[Cell(fmt_millions(frame.loc[b.name, c], False)) for c in cols]]
            for b in paying
        ]
        free = [f"{b.number}" for b in self.blocks if b not in paying]
        return Table(
            key="summary_payers",
            caption=f"Who pays: budget cost by paying government ({self.units.money_unit}, "
            "spending > 0)",
            header=["Option", *[region_table.short_name(str(c)) for c in cols]],
            rows=rows,
            note="Negative: the government's revenue (a levy, a stock sold) exceeds its spending."
            + (
                f" No budget cost in option{'s' if len(free) > 1 else ''} {join_words(free)}."
                if free
                else ""
            )
            + " The cost to buyers is in the options table.",
        )

    def build(self) -> Summary:
        return Summary(
            heading=self.heading,
            question=self.question(),
            answer=self.answer(),
            options=self.options_table(),
            payers=self.payers_table(),
            stages=self.stages,
            max_share=self.target,
            ambition=self.ambition,
            year=self.year,
        )


def build_summary(
    ds: xr.Dataset,
    com: str | None,
    blocks: list[ScenarioBlock],
    units: DisplayUnits,
    bloc: _Bloc,
    **kwargs,
) -> Summary:
    """Page 1 of a static brief for market ``com`` (None: a chain) of the central results
    ``ds`` (``ds.tp.point()``); ``kwargs`` as :class:`_SummaryBuilder` (``commodity``,
    ``year``, ``heading``, ``stage_words``, ``stages``, ``stage_line``)."""
    return _SummaryBuilder(ds, com, blocks, units, bloc, **kwargs).build()


__all__ = ["Summary", "build_summary", "set_ambition"]
