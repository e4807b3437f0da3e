"""Command line: ``tradepolicy run | validate | markets | scenarios | sweep``."""

from __future__ import annotations

import logging
import math
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import numpy as np
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from tradepolicy import __version__
from tradepolicy._files import check_output, exists
from tradepolicy._validation import read_toml
from tradepolicy.api import FORMULATIONS, solve_many
from tradepolicy.errors import InputError, InputWarning
from tradepolicy.market import Market, list_chains, list_markets, load_market
from tradepolicy.measures.base import WELFARE_ENTRIES
from tradepolicy.pathway import solve_pathway
from tradepolicy.reports.context import option_labels
from tradepolicy.reports.pathway import stage_names
from tradepolicy.results.accessor import CHAIN_TAG
from tradepolicy.results.builder import NOT_DEFINED, result_fields
from tradepolicy.results.io import write_results
from tradepolicy.scenario import is_chain, load_scenarios, stage_of

if TYPE_CHECKING:
    from tradepolicy.chain import Chain

#: exit status of ``run`` when results were produced but a scenario (or more than
#: :data:`MAX_FAILED_DRAW_SHARE` of the Monte Carlo draw solves) did not solve; 2 is bad input
NOT_SOLVED_EXIT = 3
MAX_FAILED_DRAW_SHARE = 0.05

app = typer.Typer(
    help="Model price floors and trade measures in critical-mineral markets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
#: the width of the tables printed to a file or a pipe: the widest (the one-year options
#: table) whole, no number cut short
FILE_WIDTH = 160
console = Console(width=None if sys.stdout.isatty() else FILE_WIDTH)
err_console = Console(stderr=True)

#: ``--market`` of ``run`` and ``validate``
MarketOption = Annotated[
    Path | None,
    typer.Option(
        "--market",
        help="Market file (or shipped id) to use instead of the scenario set's `market`; "
        "any path (paths inside files must stay in the file's folder).",
    ),
]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )


def _fail(exc: Exception, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    return typer.Exit(code)


def _missing_extra(extra: str, exc: ImportError) -> typer.Exit:
    """Exit 2 naming the optional extra to install (a module of it failed to import)."""
    what = f" ({exc.name} is missing)" if getattr(exc, "name", None) else f" ({exc})"
    err_console.print(
        f"[bold red]error:[/] install the `{extra}` extra: "
        f"pip install 'tradepolicy\\[{extra}]'{escape(what)}",
        highlight=False,
    )
    return typer.Exit(2)


def _version(value: bool) -> None:
    if value:
        console.print(f"tradepolicy {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """tradepolicy command line."""


def _fmt(x: float, digits: int = 1, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if abs(x) < 0.5 * 10**-digits:
        x = 0.0  # no "-0"
    if pct:
        return f"{x:+.{digits}f}%"
    return f"{x:,.{digits}f}"


def _money(x: float, scale: float) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "–"
    v = x / scale
    return "0" if abs(v) < 0.05 else f"{v:+,.1f}"


def _with_id(label: str, scen: str) -> str:
    """An options-table cell: the option in words, its identifier dimmed underneath (what
    ``--scenarios``, ``ds.sel(scenario=...)`` and the scenario file use)."""
    return f"{label}\n[dim]{escape(scen)}[/]"


def describe_sets(sets) -> dict[tuple[str, str], list[str]]:
    """Plain-words lines per (market id, scenario): its description and each measure.

    A measure in a value chain is described with the stage market it acts on, after the
    stage's name (``NdPr oxide: A landed price floor ...``)."""
    out: dict[tuple[str, str], list[str]] = {}
    for sset in sets:
        chain = is_chain(sset.market)
        for sc in sset.scenarios:
            lines = [sc.description] if sc.description else []
            for m in sc.measures:
                market = stage_of(sset.market, m)
                if market is None:  # a project measure of every stage of a chain
                    lines.append(f"Every stage: {m.describe(sset.market.stages[0])}")
                    continue
                text = m.describe(market)
                lines.append(f"{CHAIN_TAG.sub('', market.commodity)}: {text}" if chain else text)
            out[(sset.market.id, sc.name)] = lines
    return out


def print_comparison(
    ds, target: float | None = None, descriptions: dict[tuple[str, str], list[str]] | None = None
) -> None:
    """Rich tables: each scenario against the baseline, per region, then a world summary."""
    if ds.tp.is_chain:
        print_chain_comparison(ds, target, descriptions)
        return
    full, ds = ds, ds.tp.point()  # the numbers are the central ones; ranges come from the draws
    words = option_labels(ds)
    for com in ds.tp.commodities:
        sub = ds.sel(commodity=com)
        name = escape(str(sub.commodity_name.values))
        unit = ds["producer_price"].attrs["units"]
        for scen in ds.tp.scenarios:
            if scen == "baseline":
                continue
            conv = int(sub.converged.sel(scenario=scen))
            title = (
                f"[bold]{name}[/] — [cyan]{escape(words[str(scen)])}[/] "
                f"({escape(str(scen))}) vs baseline"
            )
            if conv == NOT_DEFINED:
                continue
            if not conv:
                msg = str(sub.solver_message.sel(scenario=scen).values)
                console.print(f"{title}\n  [red]NOT SOLVED:[/] {escape(msg)}\n")
                continue
            for line in (descriptions or {}).get((com, scen), []):
                console.print(f"  • {escape(line)}", highlight=False)
            for warning in ds.tp.warnings(scen, com):
                console.print(f"  [yellow]warning:[/] {escape(warning)}", highlight=False)
            dep_line = _dependence_line(ds, com, scen)
            if dep_line:
                console.print(f"  {dep_line}", highlight=False)
            t = full.tp.region_table(scen, com)
            _market_table(t, title, unit, target)
            _wedge_table(sub.sel(scenario=scen), sub["trade_flow"].sel(scenario="baseline"), unit)
            _welfare_table(t, words[str(scen)], ds.tp.money_unit(com), ds.tp.money_scale(com))
    _summary_table(full)
    for com in ds.tp.commodities:
        _options_table(full, com)


def _summary_table(full) -> None:
    """Solver status, world welfare, levies, quota rents and budget cost per market (or per
    stage of a chain) and scenario."""
    ds, dim = full.tp.point(), full.tp.market_dim
    summary = full.tp.summary().reset_index()
    money, scale = ds.tp.money_unit(), ds.tp.money_scale()
    words = option_labels(ds)
    summary["scenario"] = [words[str(v)] for v in summary["scenario"]]
    table = Table(title=f"Summary ({money})", title_justify="left")
    for col in (
        dim,
        "scenario",
        "solved",
        "iter.",
        "residual",
        "world welfare",
        "levies",
        "quota rents",
        "budget cost\nspending > 0",
    ):
        if col in (dim, "scenario"):
            width = max((len(str(v)) for v in summary[col]), default=8)
            table.add_column(col, justify="left", no_wrap=True, min_width=width)
        else:
            table.add_column(col, justify="right", min_width=18 if full.tp.has_draws else 0)
    for _, r in summary.iterrows():
        if int(r["converged"]) == 0:  # never a number (a 0) for a scenario that did not solve
            numbers = ["[red]not solved[/]"] * 4
        else:
            numbers = [
                _money(r["world_welfare_change"], scale)
                + _range(r, "world_welfare_change", newline=True, scale=scale),
                _money(r["levy_revenue"], scale),
                _money(r["quota_rent_income"], scale),
                _money(r["budget_cost"], scale)
                + _range(r, "budget_cost", newline=True, scale=scale),
            ]
        table.add_row(
            escape(str(r[dim])),
            escape(str(r["scenario"])),
            {1: "yes", 0: "[red]no[/]"}.get(int(r["converged"]), "n/a"),
            str(int(r["iterations"])),
            f"{r['max_residual']:.1e}",
            *numbers,
        )
    console.print(table)


def _dependence_line(ds, com: str, scen: str, show_target: bool = True) -> str:
    """'Dependence of <bloc> on its largest outside supplier: base → scenario' in words."""
    sub = ds.sel(commodity=com)
    dep = sub["bloc_dependency"]
    base, cur = float(dep.sel(scenario="baseline")), float(dep.sel(scenario=scen))
    if math.isnan(cur):
        return ""
    top_b = str(sub["bloc_top_supplier"].sel(scenario="baseline").values)
    top = str(sub["bloc_top_supplier"].sel(scenario=scen).values)
    agg = float(sub["bloc_aggregate_share"].sel(scenario=scen))
    bloc = ", ".join(ds.tp.bloc(com))
    desc = str(ds.attrs.get("target_description", "the bloc"))
    text = (
        f"Dependence of {escape(desc)} ({bloc}) on its largest outside supplier: "
        f"{base:.1%} {top_b} → {cur:.1%} {top}"
    )
    share = ds.tp.target_share()
    if math.isfinite(share) and show_target:
        met = int(sub["meets_target"].sel(scenario=scen)) == 1
        text += f" (target {share:.0%}: " + ("meets" if met else "[red]above target[/]") + ")"
    if agg > 0:
        text += f"; unattributed aggregates (ROW): {agg:.1%}"
    return text


def _options_table(ds, com: str | None) -> None:
    """Options × dependence, who pays and cost per point (``ds.tp.options``); for a chain
    (``com`` None) dependence at the target stage and money summed over the stages."""
    t = ds.tp.options(com)
    unit = t.attrs["units"]["budget_cost"]
    share = t.attrs["target"]
    head = f"target {share:.0%}" if math.isfinite(share) else "no target"
    if com is None:
        stage = ds.tp.stage_name(ds.tp.target_stage)
        title = (
            f"Options: value chain {escape(str(ds.attrs.get('chain', '')))} — dependence of the "
            f"bloc at the {escape(stage)} stage ({', '.join(t.attrs['bloc'])}; {head}), who "
            f"pays summed over the {len(ds.tp.stages)} stages ({unit}) and cost per point of "
            "dependence removed"
        )
    else:
        name = escape(str(ds.sel(commodity=com).commodity_name.values))
        title = (
            f"Options: {name} — dependence of the bloc ({', '.join(t.attrs['bloc'])}; {head}), "
            f"who pays ({unit}) and cost per point of dependence removed"
        )
    table = Table(title=title, title_justify="left")
    words = option_labels(ds)
    cols = (
        ("option", "left"),
        ("dependence", "right"),
        ("meets\ntarget", "center"),
        ("points\nremoved", "right"),
        ("budget cost\nspending > 0", "right"),
        ("cost to bloc\nbuyers", "right"),
        ("foreign\nproducers", "right"),
        ("world\nwelfare", "right"),
        ("budget cost\nper point", "right"),
        ("buyer cost\nper point", "right"),
    )
    width = max(len(s) for s in [*words.values(), *map(str, t.index)])
    for col, just in cols:
        if col == "option":
            table.add_column("option\n[dim]id[/]", justify="left", no_wrap=True, min_width=width)
        else:
            table.add_column(col, justify=just)  # type: ignore[arg-type]
    notes = []
    for scen, r in t.iterrows():
        label = escape(words[str(scen)])
        name = _with_id(label, str(scen))
        if not r["solved"]:
            table.add_row(name, *["[red]not solved[/]"] + ["–"] * 8)
            continue
        dep = "–" if math.isnan(r["dependence"]) else f"{r['dependence']:.1%}"
        if r["largest_outside_supplier"]:
            dep += f" {r['largest_outside_supplier']}"
        flag = " ⚠" if r["warnings"] else ""
        if r["note"]:
            notes.append(f"{label}: {r['note']} (no cost per point)")
        if r["warnings"]:
            notes.append(f"[yellow]⚠ {label}: {escape(r['warnings'])}[/]")
        table.add_row(
            name,
            dep,
            r["meets_target"] or "–",
            _fmt(r["points_removed"], 1),
            _fmt(r["budget_cost"], 1),
            _fmt(r["cost_to_bloc_buyers"], 1),
            _fmt(r["foreign_producers"], 1),
            _fmt(r["world_welfare"], 1),
            _fmt(r["budget_cost_per_point"], 1),
            _fmt(r["buyer_cost_per_point"], 1) + flag,
        )
    console.print(table)
    for line in notes:
        console.print(f"  {line}", highlight=False)


# -- pathways -------------------------------------------------------------------------------


def print_pathway(ds, descriptions: dict[tuple[str, str], list[str]] | None = None) -> None:
    """Rich tables for a pathway set: the target-year options table (dependence, probability
    of meeting each share, present values, cost per point), dependence by year, who pays and
    the bloc's capacity at the target stage."""
    t = ds.tp.pathway_options()
    year = int(ds.attrs["target_year"])
    stage = str(ds.attrs.get("target_stage") or ds.stage.values[-1])
    where = stage_names(ds).get(stage, stage)  # in words, as the brief names it
    cur = str(ds.attrs.get("currency", "") or "USD")
    bloc = str(ds.attrs.get("target_bloc", "")).replace(" ", ", ")
    rate = float(ds.attrs["discount_rate"])
    draws = int(ds.attrs.get("draws", 0))
    scale, unit = 1e9, f"bn {cur}"
    shares = [c for c in t.columns if c.startswith("p_at_most_")]
    prob_src = f"over {draws} draws" if draws else "central run only: 0 or 1; use --draws"
    table = Table(
        title=(
            f"The {year} question: bloc dependence at the {escape(where)} stage ({escape(bloc)}) "
            f"on its largest outside supplier, years {ds.attrs['first_year']}-"
            f"{ds.attrs['last_year']}; present values at {rate:.0%} ({unit}); probability "
            f"{prob_src}"
        ),
        title_justify="left",
    )
    words = option_labels(ds)
    width = max(len(words[str(sc)]) for sc in t.index)
    table.add_column("option\n[dim]id[/]", justify="left", no_wrap=True, min_width=width)
    table.add_column(f"dependence\n{year}", justify="right", min_width=10)
    table.add_column("points\nremoved", justify="right")
    for c in shares:
        table.add_column(f"P\n≤{c.rsplit('_', 1)[1]}%", justify="right")
    for col in (
        "budget\n(PV)",
        "bloc\nbuyers (PV)",
        "world\nwelfare",
        "budget\n/point",
        "buyers\n/point",
    ):
        table.add_column(col, justify="right")
    for scen, r in t.iterrows():
        label = _with_id(escape(words[str(scen)]), str(scen))
        if not r["solved"]:
            table.add_row(label, "[red]not solved[/]", *["–"] * (6 + len(shares)))
            continue
        dep = f"{r[f'dependence_{year}']:.1%}"
        if r["largest_outside_supplier"]:
            dep += f" {r['largest_outside_supplier']}"
        table.add_row(
            label,
            dep,
            "–" if scen == "baseline" else _fmt(r["points_removed"], 1),
            *[f"{r[c]:.0%}" for c in shares],
            _money(r["pv_budget_cost_bloc"], scale),
            _money(r["pv_cost_to_bloc_buyers"], scale),
            _money(r["pv_world_welfare"], scale),
            *[
                "–" if not np.isfinite(r[k]) else _fmt(r[k] / scale, 2)
                for k in ("budget_cost_per_point", "buyer_cost_per_point")
            ],
        )
    console.print(table)
    console.print(
        "  budget cost: subsidies, offtakes, stocks, grants, expected guarantee losses and "
        "public equity, less border revenue and fees (> 0 a cost); cost to buyers: their "
        "consumer surplus lost (< 0 a gain); per point: of dependence removed in "
        f"{year} ({unit}); doing nothing: no policy (projects decide at market prices); under "
        "each option its id (the scenario file, ds.sel(scenario=...), --scenarios)",
        highlight=False,
    )
    years = [int(y) for y in ds.year.values]
    shown = sorted({years[0], *years[2::2], year, years[-1]})
    dep = ds.tp.trajectory("bloc_dependency", stage=stage)
    tab = Table(
        title=f"Bloc dependence at the {escape(where)} stage by year (central run)",
        title_justify="left",
    )
    tab.add_column("option", justify="left", no_wrap=True, min_width=width)
    for y in shown:
        tab.add_column(f"{y}{' ★' if y == year else ''}", justify="right")
    for scen in dep.columns:
        tab.add_row(escape(words[str(scen)]), *[f"{dep.loc[y, scen]:.1%}" for y in shown])
    console.print(tab)
    members = [r for r in str(ds.attrs.get("target_bloc", "")).split() if r in ds.region.values]
    if members:
        capa = ds["capacity"].sel(stage=stage, region=members).sum("region")
        ctab = Table(
            title=f"Bloc capacity at the {escape(where)} stage (t/yr, central run)",
            title_justify="left",
        )
        ctab.add_column("option", justify="left", no_wrap=True, min_width=width)
        for y in shown:
            ctab.add_column(str(y), justify="right")
        for scen in ds.scenario.values:
            ctab.add_row(
                escape(words[str(scen)]),
                *[f"{float(capa.sel(scenario=scen, year=y)):,.0f}" for y in shown],
            )
        console.print(ctab)
    from tradepolicy.pathway.views import payers_table

    pay = payers_table(ds)
    if not pay.empty:
        ptab = Table(
            title=f"Who pays: PV of the net budget cost by payer ({unit}, spending > 0)",
            title_justify="left",
        )
        ptab.add_column("option", justify="left", no_wrap=True, min_width=width)
        for c in pay.columns:
            ptab.add_column(str(c), justify="right")
        for scen, r in pay.iterrows():
            ptab.add_row(escape(words[str(scen)]), *[_money(float(v), scale) for v in r.to_numpy()])
        console.print(ptab)
    bad = ds["converged"].sel(draw=0) == 0
    if bool(bad.any()):
        for scen in ds.scenario.values[bad.any("year").values]:
            yrs = [int(y) for y in ds.year.values[bad.sel(scenario=scen).values]]
            err_console.print(
                f"[red]option {escape(words[str(scen)])} ({escape(str(scen))}) not solved in "
                f"{', '.join(map(str, yrs))}[/]"
            )
    if "expected_disruption_loss" in ds:
        print_risk(ds, width)


def print_risk(ds, width: int = 10) -> None:
    """The cost of inaction and the risk table of a pathway set with ``[[risk]]`` events
    (docs/risk.md)."""
    from tradepolicy.pathway.views import risk_draws_solved, risk_money_unit

    t = ds.tp.risk_table()
    cur = str(ds.attrs.get("currency", "") or "USD")
    scale, unit = risk_money_unit(t, cur)
    rate = float(ds.attrs["discount_rate"])
    draws = int(ds.attrs.get("draws", 0))
    bloc = str(ds.attrs.get("target_bloc", "")).replace(" ", ", ")
    first = ds.attrs["first_year"]
    coi = float(ds["cost_of_inaction"])
    console.print(
        f"Cost of inaction: {_fmt(coi / scale, 2)} {unit} (present value at {rate:.0%} to "
        f"{first}): the bloc's ({escape(bloc)}) expected surplus lost in disruption years with "
        f"no policy, over {draws} draws",
        highlight=False,
    )
    solved = risk_draws_solved(ds)
    if solved is not None:
        used, total = solved
        console.print(
            f"{used} of {total} draws solved every year"
            + (
                ""
                if used == total
                else " (the others are left out of every statistic below; if they are severe "
                "events, the expected losses understate the risk)"
            ),
            highlight=False,
        )
    events = ", ".join(str(r) for r in ds.risk.values)
    words = option_labels(ds)
    table = Table(
        title=(
            f"Disruption risk ({escape(events)}): the bloc's expected loss and each option's "
            f"cost, present values ({unit}; cost, > 0)"
        ),
        title_justify="left",
    )
    table.add_column("option", justify="left", no_wrap=True, min_width=width)
    for col in (
        "expected\nloss",
        "loss\n5%",
        "loss\n95%",
        "loss\nreduction",
        "stockpile\ncost",
        "budget\ncost",
        "benefit\n/cost",
    ):
        table.add_column(col, justify="right")
    for scen, r in t.iterrows():
        table.add_row(
            escape(words[str(scen)]),
            _fmt(r["expected_loss"] / scale, 2),
            _fmt(r["loss_p05"] / scale, 2),
            _fmt(r["loss_p95"] / scale, 2),
            "–" if scen == "baseline" else _fmt(r["loss_reduction"] / scale, 2),
            _fmt(r["pv_stockpile_cost"] / scale, 2),
            _fmt(r["pv_budget_cost"] / scale, 2),
            _fmt(r["benefit_cost"], 2),
        )
    console.print(table)
    console.print(
        "  loss: the bloc's surplus lost in event years against the same years without the "
        "events (short-run elasticities in event years); loss reduction: cost of inaction less "
        "the option's expected loss (> 0 better); stockpile cost: purchases less releases plus "
        "holding cost less the stock left at book value; budget cost: the bloc's public "
        "spending less its revenue and the stock left (an exporter's tax revenue abroad is "
        "not counted); benefit/cost: loss reduction per unit of budget cost",
        highlight=False,
    )


# -- value chains ---------------------------------------------------------------------------


def print_chain_comparison(
    ds, target: float | None = None, descriptions: dict[tuple[str, str], list[str]] | None = None
) -> None:
    """Rich tables for a value chain: bloc dependence per stage (the target stage first),
    then per scenario its measures, warnings and each stage against the baseline with the
    welfare per stage, then who pays (summed over stages and per stage), downstream
    competitiveness, the solver summary per stage and the options of the whole chain."""
    full, ds = ds, ds.tp.point()
    chain = str(ds.attrs.get("chain", ""))
    order, goal = ds.tp.stage_order(), ds.tp.target_stage
    names = " → ".join(escape(ds.tp.stage_name(st)) for st in ds.tp.stages)
    console.print(
        f"[bold]Value chain {escape(chain)}[/]: {names}; the target is read at the "
        f"[bold]{escape(ds.tp.stage_name(goal))}[/] stage",
        highlight=False,
    )
    _stage_dependence_table(full)
    unit = escape(str(ds["producer_price"].attrs["units"]))
    words = option_labels(ds)
    for scen in ds.tp.scenarios:
        if scen == "baseline":
            continue
        conv = int(ds.converged.sel(scenario=scen).min())
        head = (
            f"[bold][cyan]{escape(words[scen])}[/] ({escape(scen)}) vs baseline[/] (value "
            f"chain {escape(chain)})"
        )
        if conv == NOT_DEFINED:
            continue
        console.print(head, highlight=False)
        if not conv:
            msg = str(ds.solver_message.sel(scenario=scen).values.flat[0])
            console.print(f"  [red]NOT SOLVED:[/] {escape(msg)}\n")
            continue
        for line in (descriptions or {}).get((chain, scen), []):
            console.print(f"  • {escape(line)}", highlight=False)
        for warning in ds.tp.warnings(scen):
            console.print(f"  [yellow]warning:[/] {escape(warning)}", highlight=False)
        for st in order:
            view = full.tp.stage(st)
            sub = view.tp.point().sel(commodity=st)
            mark = ", target stage" if st == goal else ""
            title = (
                f"[bold]{escape(ds.tp.stage_name(st))}[/] ({escape(st)}{mark}) — "
                f"[cyan]{escape(words[scen])}[/] vs baseline"
            )
            dep_line = _dependence_line(view.tp.point(), st, scen, show_target=st == goal)
            if dep_line:
                console.print(f"  {dep_line}", highlight=False)
            t = view.tp.region_table(scen)
            _market_table(t, title, unit, target if st == goal else None)
            _wedge_table(sub.sel(scenario=scen), sub["trade_flow"].sel(scenario="baseline"), unit)
        _stage_welfare_table(full, scen)
    _chain_who_pays_table(full)
    _competitiveness_table(full)
    _chain_solver_table(ds)
    _options_table(full, None)


def _chain_solver_table(ds) -> None:
    """Solver status per scenario: the chain's stages are solved as one system."""
    table = Table(title="Solver (all stages as one system)", title_justify="left")
    words = option_labels(ds)
    for col in ("scenario", "solved", "iter.", "residual"):
        table.add_column(col, justify="left" if col == "scenario" else "right")
    for scen in ds.tp.scenarios:
        sub = ds.sel(scenario=scen)
        conv = int(sub.converged.min())
        table.add_row(
            escape(words[scen]),
            {1: "yes", 0: "[red]no[/]"}.get(conv, "n/a"),
            str(int(sub.iterations.max())),
            f"{float(sub.max_residual.max()):.1e}",
        )
    console.print(table)


def _stage_dependence_table(full) -> None:
    """Bloc dependence per stage (columns, the target stage first and marked) and scenario."""
    t = full.tp.dependence_by_stage()
    ds = full.tp.point()
    words = option_labels(ds)
    share, goal = t.attrs["target"], t.attrs["target_stage"]
    desc = escape(str(ds.attrs.get("target_description") or "the bloc"))
    table = Table(
        title=f"Dependence of {desc} ({', '.join(t.attrs['bloc'])}) on its largest outside "
        "supplier, per stage",
        title_justify="left",
        caption="points: percentage points removed against the baseline (< 0: it rises); "
        "unattributed aggregates (ROW) are never a single supplier",
        caption_justify="left",
    )
    table.add_column("scenario", no_wrap=True)
    order = list(dict.fromkeys(t.index.get_level_values("stage")))
    for st in order:
        head = escape(ds.tp.stage_name(st))
        if st == goal:
            head = f"[bold]★ {head}[/]\ntarget stage" + (
                f" ({share:.0%})" if math.isfinite(share) else ""
            )
        table.add_column(head, justify="right")
    for scen in ds.tp.scenarios:
        cells = []
        for st in order:
            r = t.loc[(st, scen)]
            if not r["solved"]:
                cells.append("[red]not solved[/]")
                continue
            if math.isnan(r["dependence"]):
                cells.append("–")
                continue
            cell = f"{r['dependence']:.1%} {escape(str(r['largest_outside_supplier']))}".rstrip()
            if st == goal and r["meets_target"]:
                cell += " meets" if r["meets_target"] == "yes" else " [red]above[/]"
            if scen != "baseline":
                cell += f"\n[dim]{_fmt(r['points_removed'], 1)} points[/]"
            if r["unattributed_share"] > 0:
                cell += f"\n[dim]ROW {r['unattributed_share']:.1%} unattributed[/]"
            cells.append(cell)
        table.add_row(escape(words[scen]), *cells)
    console.print(table)
    console.print()


def _stage_welfare_table(full, scen: str) -> None:
    """National welfare change by region and stage, with the total over stages."""
    t = full.tp.welfare_by_stage(scen)
    money = t.attrs["units"]
    label = option_labels(full)[scen]
    table = Table(title=escape(f"Welfare change by stage, {money} ({label})"), title_justify="left")
    table.add_column("region")
    for st in full.tp.stages:
        table.add_column(escape(full.tp.stage_name(st)), justify="right")
    table.add_column("all stages", justify="right", style="bold")
    for region, row in t.iterrows():
        if region == "World":
            table.add_section()
        # welfare_by_stage is in display money already: scale 1
        table.add_row(escape(str(region)), *[_money(float(v), 1.0) for v in row.values])
    console.print(table)
    console.print()


def _chain_who_pays_table(full) -> None:
    """Who pays in each scenario: summed over the stages, then stage by stage (all regions)."""
    ds = full.tp.point()
    money = ds.tp.money_unit()
    table = Table(
        title=f"Who pays, summed over the chain's stages and per stage ({money})",
        title_justify="left",
        caption="cost to buyers > 0 = cost (final demand); producers: gain > 0 (value added "
        "downstream); budget cost: spending > 0; revenue and rents: income > 0",
        caption_justify="left",
    )
    words = option_labels(ds)
    for col in ("scenario", "stage"):
        table.add_column(col, no_wrap=True)
    cols = ("cost_to_buyers", "producers", "budget_cost", "revenue_and_rents", "welfare")
    for col in ("cost to\nbuyers", "producers", "budget cost\nspending > 0", "revenue\nand rents"):
        table.add_column(col, justify="right")
    table.add_column("world\nwelfare", justify="right", style="bold")
    for scen in ds.tp.scenarios:
        if scen == "baseline":
            continue
        if int(ds.converged.sel(scenario=scen).min()) != 1:
            table.add_row(escape(words[scen]), "all stages", *["[red]not solved[/]"] + ["–"] * 4)
            continue
        total = ds.tp.who_pays(scen)[list(cols)].sum()
        table.add_row(
            escape(words[scen]),
            "[bold]all stages[/]",
            *[_money(float(total[c]), 1.0) for c in cols],
        )
        for st in ds.tp.stages:
            part = ds.tp.who_pays(scen, st)[list(cols)].sum()
            table.add_row(
                "", escape(ds.tp.stage_name(st)), *[_money(float(part[c]), 1.0) for c in cols]
            )
        table.add_section()
    console.print(table)
    console.print()


def _competitiveness_table(full) -> None:
    """Members' output, input cost, value added and import share at each downstream stage
    (one table per stage made from another stage)."""
    t = full.tp.competitiveness()
    words = option_labels(full)
    units = t.attrs["units"]
    qty, price = escape(units["bloc_output"]), escape(units["bloc_value_added"])
    for st in dict.fromkeys(t.index.get_level_values("stage")):
        part = t.loc[st]
        name = escape(str(part["stage_name"].iloc[0]))
        table = Table(
            title=f"Downstream competitiveness at the {name} stage: the bloc's makers "
            f"({', '.join(t.attrs['bloc'])}) against makers outside it",
            title_justify="left",
            caption="value added = producer price − unit input cost, output-weighted over the "
            "makers; margin: value added / producer price; import share: the bloc's use from "
            "outside it (aggregates included)",
            caption_justify="left",
        )
        table.add_column("scenario", no_wrap=True)
        for col in (
            f"members'\noutput\n{qty}",
            "Δ%",
            f"members'\ninput cost\n{price}",
            f"members'\nvalue added\n{price}",
            "Δ%",
            "members'\nmargin",
            "outside\nvalue added\nΔ%",
            "bloc\nimport\nshare",
        ):
            table.add_column(col, justify="right")
        for scen, r in part.iterrows():
            if not r["solved"]:
                table.add_row(escape(words[str(scen)]), "[red]not solved[/]", *["–"] * 7)
                continue
            table.add_row(
                escape(words[str(scen)]),
                _fmt(r["bloc_output"], 0),
                _fmt(r["bloc_output_pct"], 1, pct=True),
                _fmt(r["bloc_input_cost"], 0),
                _fmt(r["bloc_value_added"], 0),
                _fmt(r["bloc_value_added_pct"], 1, pct=True),
                "–" if math.isnan(r["bloc_margin"]) else f"{r['bloc_margin']:.1%}",
                _fmt(r["outside_value_added_pct"], 1, pct=True),
                "–" if math.isnan(r["bloc_import_share"]) else f"{r['bloc_import_share']:.1%}",
            )
        console.print(table)
        console.print()


def _range(row, var: str, pct: bool = False, newline: bool = False, scale: float = 1.0) -> str:
    """'lo to hi': the Monte Carlo 5–95% range of ``var`` in a table row ('' without draws
    or when the range is empty)."""
    lo, hi = row.get(f"{var}_q05"), row.get(f"{var}_q95")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    if abs(hi - lo) <= 1e-9 * max(abs(lo), abs(hi), scale):
        return ""
    if pct:
        text = f"{lo:.1%} to {hi:.1%}"
    elif scale != 1.0:
        text = f"{_money(lo, scale)} to {_money(hi, scale)}"
    else:
        text = f"{_fmt(lo, 0)} to {_fmt(hi, 0)}"
    return f"\n[dim]{text}[/]" if newline else text


def _market_table(t, title: str, unit: str, target: float | None) -> None:
    unit = escape(unit)
    table = Table(title=title, title_justify="left")
    table.add_column("region")
    table.add_column(f"producer price\n{unit}", justify="right")
    table.add_column("Δ%", justify="right")
    table.add_column(f"consumer price\n{unit}", justify="right")
    table.add_column("Δ%", justify="right")
    table.add_column("production\nΔ%", justify="right")
    table.add_column("consumption\nΔ%", justify="right")
    head = "largest foreign supplier, per importer" + (f" ({target:.0%})" if target else "")
    table.add_column(head + "\nbase → scenario", justify="left")
    for region, row in t.iterrows():
        share, base_share = row["top_supplier_share"], row["top_supplier_share_base"]
        if isinstance(share, float) and math.isnan(share):
            dep = "–"
        else:
            dep = escape(f"{base_share:.1%} → {share:.1%} {row['top_supplier'] or ''}".rstrip())
            if target is not None:
                dep += "  meets" if share <= target + 1e-12 else "  above target"
        if _range(row, "top_supplier_share"):
            dep += f"\n[dim]5–95%: {_range(row, 'top_supplier_share', pct=True)}[/]"
        table.add_row(
            escape(str(region)),
            _fmt(row["producer_price"], 0) + _range(row, "producer_price", newline=True),
            _fmt(row["producer_price_pct"], 1, pct=True),
            _fmt(row["consumer_price"], 0) + _range(row, "consumer_price", newline=True),
            _fmt(row["consumer_price_pct"], 1, pct=True),
            _fmt(row["production_pct"], 1, pct=True),
            _fmt(row["consumption_pct"], 1, pct=True),
            dep,
        )
    console.print(table)


def _wedge_table(sc, base_flow, unit: str) -> None:
    """Per-unit levies, quota rents and diversification shadow prices on the pairs they hit."""
    levy, rent = sc["levy"].values, sc["quota_rent"].values
    mu = sc["diversification_shadow_price"].values
    flow, landed = sc["trade_flow"].values, sc["landed_price"].values
    tiny = 1e-9 * np.nanmax(np.abs(landed))
    hit = (np.abs(levy) > tiny) | (np.abs(rent) > tiny) | (np.abs(mu) > tiny)
    hit &= (base_flow.values > 0) | (flow > 0)  # pairs that trade
    if not hit.any():
        return
    regions = [escape(str(r)) for r in sc.exporter.values]
    unit, qunit = escape(unit), escape(sc["trade_flow"].attrs["units"])
    table = Table(title="Border wedges per unit", title_justify="left")
    for col, right in (
        ("exporter → importer", False),
        (f"landed price\n{unit}", True),
        (f"levy\n{unit}", True),
        (f"quota rent\n{unit}", True),
        (f"diversification μ\n{unit}", True),
        (f"flow\n{qunit}", True),
    ):
        table.add_column(col, justify="right" if right else "left")
    for o, d in zip(*np.nonzero(hit), strict=True):
        table.add_row(
            f"{regions[o]} → {regions[d]}",
            _fmt(landed[o, d], 0),
            _fmt(levy[o, d], 0),
            _fmt(rent[o, d], 0),
            _fmt(mu[o, d], 0),
            _fmt(flow[o, d], 0),
        )
    console.print(table)


def _welfare_table(t, scen: str, money: str, scale: float) -> None:
    """Welfare parts by region in the display unit ``money`` (``scale`` currency per year)."""
    wel = t[[*WELFARE_ENTRIES, "welfare_change"]]
    used = [k for k in WELFARE_ENTRIES if (wel[k].abs() > 0.05 * scale).any()]
    table = Table(title=escape(f"Welfare change, {money} ({scen})"), title_justify="left")
    table.add_column("region")
    for k in used:
        table.add_column(result_fields()[k]["short_label"].lower(), justify="right")
    table.add_column("total", justify="right", style="bold")
    for region, row in wel.iterrows():
        table.add_row(
            escape(str(region)),
            *[_money(row[k], scale) for k in used],
            _money(row["welfare_change"], scale)
            + _range(row, "welfare_change", newline=True, scale=scale),
        )
    world = wel.sum()
    table.add_section()
    table.add_row(
        "World", *[_money(world[k], scale) for k in used], _money(world["welfare_change"], scale)
    )
    console.print(table)
    console.print()


def _load_scenarios(path: Path, market: Path | None = None):
    """Load a scenario set, printing doubtful values (InputWarning) as plain warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InputWarning)
        sset = load_scenarios(path, market)
    for w in caught:
        if issubclass(w.category, InputWarning):  # escape: user text may hold [markup]
            err_console.print(f"[yellow]warning:[/] {escape(str(w.message))}", highlight=False)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return sset


#: Largest ``--draws`` (each draw holds about 240 KB of results per scenario set).
MAX_DRAWS = 10_000


def _input_files(sets) -> list[Path]:
    """Every file a run reads: scenario sets, their markets and the markets' flows CSVs."""
    files: list[Path] = []
    for sset in sets:
        if sset.path is not None:
            files.append(Path(sset.path))
        files += sset.market.input_files()
    return files


def _interrupted() -> typer.Exit:
    err_console.print("[red]interrupted:[/] nothing written", highlight=False)
    return typer.Exit(130)


@app.command()
def run(
    scenarios: Annotated[
        list[Path],
        typer.Argument(
            help="Scenario set TOML file(s) or shipped set names; several stack by commodity."
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the results Dataset (netCDF).")
    ] = None,
    formulation: Annotated[
        str, typer.Option("--formulation", help=f"One of: {', '.join(FORMULATIONS)}.")
    ] = "levels",
    target_share: Annotated[
        float | None,
        typer.Option("--target-share", min=0.0, max=1.0, help="Override the dependency target."),
    ] = None,
    draws: Annotated[
        int,
        typer.Option(
            "--draws",
            min=0,
            max=MAX_DRAWS,
            help="Monte Carlo draws of the elasticities (0 = none, at most 10,000); tables "
            "show 5–95% ranges.",
        ),
    ] = 0,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Seed of the draws (recorded).")
    ] = None,
    market: MarketOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print tables.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    """Solve scenario sets, print the comparison against the baseline, write the Dataset."""
    if draws == 1:
        raise _fail(ValueError("--draws must be 0 (none) or at least 2"))
    _setup_logging(verbose)
    if formulation not in FORMULATIONS:
        raise _fail(ValueError(f"--formulation {formulation!r}: allowed {', '.join(FORMULATIONS)}"))
    try:
        if output is not None:  # output-path problems before any work
            check_output(output, [p for p in scenarios if exists(p)])
        if market is not None and len(scenarios) > 1:
            raise InputError("--market", [("", "give --market with one scenario set only")])
        sets = [_load_scenarios(p, market) for p in scenarios]
        paths = [s for s in sets if s.is_pathway]
        if paths and len(sets) > 1:
            raise InputError(
                str(paths[0].path or paths[0].market.id),
                [("years", "a pathway set runs on its own (run each scenario set separately)")],
            )
        chains = [s for s in sets if is_chain(s.market)]
        if chains and len(sets) > 1:
            where = str(chains[0].path or chains[0].market.id)
            raise InputError(
                where,
                [
                    (
                        "market",
                        f"value chain {chains[0].market.id!r} runs on its own: its results "
                        "stack stages, not commodities (run each scenario set separately)",
                    )
                ],
            )
        if output is not None:
            check_output(output, _input_files(sets))
        if target_share is not None:
            for s in sets:
                s.target_share = target_share
        cmd = " ".join(
            ["tradepolicy run", *map(str, scenarios)]
            + ([f"-o {output}"] if output else [])
            + ([f"--market {market}"] if market else [])
            + [f"--formulation {formulation}"]
            + ([f"--target-share {target_share}"] if target_share is not None else [])
            + ([f"--draws {draws}"] if draws else [])
            + ([f"--seed {seed}"] if seed is not None else [])
        )
        if paths:
            if formulation != "levels":
                raise InputError("--formulation", [("", "a pathway set runs the levels model")])
            ds = solve_pathway(paths[0], draws=draws, seed=seed, history=cmd)
        else:
            ds = solve_many(sets, formulation=formulation, history=cmd, draws=draws, seed=seed)
    except InputError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        raise _interrupted() from None
    if not quiet and ds.tp.is_pathway:
        print_pathway(ds, describe_sets(sets))
    elif not quiet:
        target = sets[0].target_share if len(sets) == 1 else None
        print_comparison(ds, target, describe_sets(sets))
    if output is not None:
        try:
            write_results(ds, output)
        except KeyboardInterrupt:
            raise _interrupted() from None
        except OSError as exc:
            raise _fail(OSError(f"-o {output}: cannot write ({exc.strerror or exc})")) from None
        console.print(f"wrote {escape(str(output))}", highlight=False)
    if ds.tp.is_pathway:
        conv = ds["converged"]
        central_bad = bool((conv.sel(draw=0) == 0).any())
        share = float((conv.isel(draw=slice(1, None)) == 0).any("year").mean()) if draws else 0.0
        if central_bad or share > MAX_FAILED_DRAW_SHARE:
            if share:
                err_console.print(f"[red]{share:.0%} of the draws did not solve every year[/]")
            err_console.print("[red]not every solve succeeded[/] (flagged: converged = 0)")
            raise typer.Exit(NOT_SOLVED_EXIT)
        return
    failed = ds.tp.failed()
    for scen, com, msg in failed:
        err_console.print(
            f"[red]scenario {escape(scen)} ({escape(com)}) not solved:[/] {escape(msg)}",
            highlight=False,
        )
    share, worst, n_draws = ds.tp.failed_draw_share()
    if share > MAX_FAILED_DRAW_SHARE and worst is not None:
        err_console.print(
            f"[red]scenario {escape(worst[0])} ({escape(worst[1])}): {share:.0%} of {n_draws} "
            f"draws did not solve[/] (more than {MAX_FAILED_DRAW_SHARE:.0%} allowed); the "
            "quantiles leave them out"
        )
    if failed or share > MAX_FAILED_DRAW_SHARE:
        where = f"; results written to {output} (flagged: converged = 0)" if output else ""
        err_console.print(f"[red]not every solve succeeded[/]{escape(where)}")
        raise typer.Exit(NOT_SOLVED_EXIT)


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="Sweep spec TOML file (docs/sweeps.md).")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The Zarr store to write (or resume).")
    ],
    block_size: Annotated[
        int | None,
        typer.Option(
            "--block-size", min=1, help="Most rows per block (= Zarr chunk); default 4096."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Local worker processes (default: CPU count)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="dask.distributed scheduler address (tcp://host:port)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--overwrite",
            "--resume/--no-resume",
            help="Skip blocks an interrupted run of the same spec wrote, or start again.",
        ),
    ] = True,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    """Solve scenarios × parameter grids × draws block by block into a Zarr store."""
    _setup_logging(verbose)
    try:
        from tradepolicy.experiments import load_sweep, open_sweep
        from tradepolicy.experiments import sweep as run_sweep
    except ImportError as exc:  # pragma: no cover - the sweeps extra is missing
        raise _missing_extra("sweeps", exc) from None
    cmd = " ".join(
        ["tradepolicy sweep", str(spec), f"-o {output}"]
        + ([f"--block-size {block_size}"] if block_size else [])
        + ([f"--scheduler {scheduler}"] if scheduler else [])
    )
    try:
        with warnings.catch_warnings(record=True) as advice:
            warnings.simplefilter("always", InputWarning)
            plan = load_sweep(spec)
        for w in advice:
            err_console.print(f"[yellow]warning:[/] {escape(str(w.message))}", highlight=False)
        run_sweep(
            plan,
            output,
            block_size=block_size,
            workers=workers,
            scheduler=scheduler,
            resume=resume,
            progress=not no_progress,
            history=cmd,
        )
    except InputError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        err_console.print(
            "[red]interrupted:[/] the blocks written so far are kept; rerun the same command "
            "to resume",
            highlight=False,
        )
        raise typer.Exit(130) from None
    except OSError as exc:
        raise _fail(OSError(f"-o {output}: cannot write ({exc.strerror or exc})")) from None
    ds = open_sweep(output)
    failed = int((ds["converged"] == 0).sum())
    console.print(
        f"wrote {escape(str(output))}: {plan.rows:,} rows "
        f"({' × '.join(f'{d} {n}' for d, n in zip(plan.dims, plan.shape, strict=True))})",
        highlight=False,
    )
    if failed:
        err_console.print(
            f"[red]{failed:,} of {plan.rows:,} rows did not solve[/] (converged = 0; their "
            "results are NaN)",
            highlight=False,
        )
        raise typer.Exit(NOT_SOLVED_EXIT)


@app.command()
def calibrate(
    markets: Annotated[
        list[str] | None,
        typer.Argument(help="Market ids to calibrate (default: every market in the data)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Source data directory (default: calibration/data)."),
    ] = None,
    estimates: Annotated[
        Path | None,
        typer.Option("--estimates", help="Where estimates go (default: calibration/estimates)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--markets", help="Where market files go (default: models/equilibrium)."),
    ] = None,
    docs: Annotated[
        Path | None,
        typer.Option("--docs", help="Market docs whose estimates block is filled."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if any output would change."),
    ] = False,
    pathways: Annotated[
        list[str] | None,
        typer.Option(
            "--pathway",
            help="Fit this chain's investment parameters to IEA's base case (default: every "
            "shipped chain with projects and IEA projections, when no market is named).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    """Estimate parameters from calibration/data and regenerate the market files; fit the
    pathways' investment parameters to IEA's base-case 2030 supply and show the fit."""
    import shutil
    import tempfile

    from rich.progress import Progress

    from tradepolicy import _paths
    from tradepolicy.calibration import pipeline
    from tradepolicy.calibration.schema import load_common_data, load_market_data, market_ids

    _setup_logging(verbose)
    root = _paths.checkout_root()
    shipped = _paths.calibration_dir()
    if data is None and shipped is None:
        raise _fail(ValueError("no calibration/data found: give --data"))
    if root is None and not check and (estimates is None or out is None):
        raise _fail(
            ValueError(
                "an installed package's calibration is read-only: run `calibrate --check`, or "
                "give --estimates and --out folders to write to"
            )
        )
    if shipped is not None:
        base = shipped
    elif data is not None:
        base = data.parent
    else:  # unreachable: refused above
        raise _fail(ValueError("no calibration/data found: give --data"))
    data = data or base / "data"
    estimates = estimates or base / "estimates"
    out = out or (root / "models" / "equilibrium" if root else _paths.markets_dir())
    if out is None:
        raise _fail(ValueError("no market folder found: give --out"))
    if docs is None and root is not None:
        docs = root / "docs" / "markets"
    try:
        common = load_common_data(data)
        ids = markets or market_ids(data)
        results = []
        with Progress(
            console=err_console, transient=True, disable=not err_console.is_terminal
        ) as bar:
            task = bar.add_task("calibrating", total=len(ids) * 5)
            for mid in ids:
                md = load_market_data(data, mid)

                def step(what: str, mid: str = mid) -> None:
                    bar.update(task, advance=1, description=f"{mid}: {what}")

                results.append(pipeline.calibrate_market(md, common, step))
                bar.update(task, completed=(len(results)) * 5)
    except InputError as exc:
        raise _fail(exc) from None
    changed: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        dirs: tuple[Path, Path, Path | None] = (estimates, out, docs)
        if check:  # write into a copy of the outputs and report what would change
            copies = (Path(tmp) / "0", Path(tmp) / "1", None if docs is None else Path(tmp) / "2")
            for real, copy in zip(dirs, copies, strict=True):
                if real is not None and copy is not None and real.exists():
                    shutil.copytree(real, copy)
            dirs = copies
        for cal in results:
            changed += pipeline.write_outputs(cal, *dirs)
        if check:  # name the real file that is out of date, not its copy
            real_of = {
                c: r
                for r, c in zip((estimates, out, docs), dirs, strict=True)
                if c is not None and r is not None
            }
            changed = [
                next(real_of[c] / p.relative_to(c) for c in real_of if p.is_relative_to(c))
                for p in changed
            ]
    for cal in results:
        _calibration_tables(cal)
    if root is not None and (markets is None or pathways):
        changed += _calibrate_pathways(estimates, check, pathways)
    if check and changed:
        for p in changed:
            err_console.print(f"[red]out of date:[/] {p}")
        raise typer.Exit(1)
    console.print(
        f"{len(results)} market(s) calibrated; {len(changed)} file(s) "
        + ("would change" if check else "written")
        + (": " + ", ".join(str(p) for p in changed) if changed else " (all up to date)")
    )


def _calibrate_pathways(estimates: Path, check: bool, names: list[str] | None) -> list[Path]:
    """Fit the investment parameters of the shipped chains with a project pipeline and IEA
    projections (or ``names``), print the model-vs-IEA table; returns the files that changed
    (``check``: would change)."""
    import tempfile

    from tradepolicy.calibration.pipeline import write_investment_fit
    from tradepolicy.chain import load_chain
    from tradepolicy.market import list_chains
    from tradepolicy.pathway.calibrate import fit_investment

    chains = names or [
        c
        for c in list_chains()
        if any(
            m.projects is not None and m.supply_projections is not None
            for m in load_chain(c).stages
        )
    ]
    changed: list[Path] = []
    for cid in chains:
        try:
            chain = load_chain(cid)
            fit = fit_investment(chain)
        except (InputError, ValueError) as exc:
            raise _fail(exc) from None
        _investment_table(cid, fit)
        if check:
            with tempfile.TemporaryDirectory() as tmp:
                real = estimates / cid / "investment.nc"
                copy = Path(tmp) / cid / "investment.nc"
                if real.exists():
                    copy.parent.mkdir(parents=True)
                    copy.write_bytes(real.read_bytes())
                if write_investment_fit(fit, cid, Path(tmp)):
                    changed.append(real)
        else:
            changed += write_investment_fit(fit, cid, estimates)
    return changed


def _investment_table(cid: str, fit) -> None:
    t = fit.table
    table = Table(
        title=(
            f"{escape(cid)}: no-policy pathway against IEA's base case, {fit.year} output "
            f"(demand path {escape(fit.demand_path or 'none')}); fitted "
            + ", ".join(f"{k} = {v:.3g}" for k, v in fit.params.items())
            + f" (range {', '.join(f'{a}-{b}' for a, b in fit.bounds.values())}); RMSE of "
            f"log(model/IEA) over the regions with projects {fit.rmse_log:.2f}"
            + (f"; at its bound: {', '.join(fit.at_bound)}" if fit.at_bound else "")
        ),
        title_justify="left",
    )
    for col in (
        "stage",
        "region",
        "2024 output",
        f"IEA {fit.year}",
        f"model {fit.year}",
        "model / IEA",
        "output from",
    ):
        table.add_column(
            col, justify="left" if col in ("stage", "region", "output from") else "right"
        )
    for _, r in t.iterrows():
        if r["iea"] == 0 and r["model"] < 0.5:
            continue
        ratio = "–" if not np.isfinite(r["model_over_iea"]) else f"{r['model_over_iea']:.2f}"
        table.add_row(
            escape(str(r["stage"])),
            str(r["region"]),
            f"{r['base']:,.0f}",
            f"{r['iea']:,.0f}",
            f"{r['model']:,.0f}",
            ratio,
            "its projects" if r["source"] == "pipeline" else "IEA's projection",
        )
    console.print(table)


def _calibration_tables(cal) -> None:
    """Per-market summary in the statsmodels ``summary2`` spirit."""
    from tradepolicy.calibration import pipeline

    info = cal.data.info
    console.print(
        f"[bold]{info.commodity}[/] ({info.market}), base year {info.base_year}, "
        f"calibration id {cal.calibration_id}"
    )
    t = Table(title="Elasticities", title_justify="left")
    for col in (
        "parameter",
        "region",
        "value",
        "std err",
        "prior [range]",
        "estimate (se)",
        "weight",
        "basis",
    ):
        t.add_column(col, justify="left" if col in ("parameter", "region", "basis") else "right")
    for p in cal.parameters:
        t.add_row(
            p.kind,
            p.key,
            f"{p.value:.3g}",
            f"{p.se:.2g}",
            f"{p.prior:g} [{p.prior_low:g}, {p.prior_high:g}]",
            pipeline.estimate_text(p),
            f"{p.weight:.2f}",
            p.basis,
        )
    console.print(t)
    for name, est in sorted(cal.estimates.items()):
        frame = est.summary_strings()
        t = Table(
            title=f"{name}: {est.method}",
            title_justify="left",
            caption=(f"sample: {est.sample}; n = {est.nobs}; data hash {est.data_hash[:12]}"),
            caption_justify="left",
        )
        t.add_column("")
        for col in frame.columns:
            t.add_column(str(col), justify="right")
        for idx, row in frame.iterrows():
            t.add_row(str(idx), *row)
        console.print(t)
    if cal.episode is not None:
        console.print(escape(cal.episode.describe().replace("**", "").replace("`", "")))
    m = cal.matrix
    console.print(
        f"bilateral matrix: {int(m.known.sum())} known flows kept exactly, RAS "
        f"{m.iterations} iterations, max relative residual "
        f"{pipeline.residual_text(m.max_relative_residual)}"
    )
    for note in cal.notes:
        console.print(f"[dim]• {escape(note)}[/]")
    console.print()


def _shipped_kind(arg: Path) -> str | None:
    """``"scenarios"`` or ``"market"`` when ``arg`` is not a file but names a shipped one."""
    from tradepolicy import _paths

    if exists(arg) or arg.suffix == ".toml":
        return None
    if _paths.find_scenarios(str(arg)) is not None:
        return "scenarios"
    if _paths.find_market(str(arg)) is not None:
        return "market"
    return None


@app.command()
def validate(
    files: Annotated[
        list[Path],
        typer.Argument(help="Market or scenario-set TOML files, or shipped ids (as for `run`)."),
    ],
    market: MarketOption = None,
) -> None:
    """Check market and scenario files without solving; exit 2 on the first invalid file."""
    status = 0
    for path in files:
        shown = escape(str(path))
        try:
            kind = _shipped_kind(path)
            data = read_toml(path) if kind is None else {}
            if kind == "scenarios" or "scenario" in data:
                sset = _load_scenarios(path, market)
                names = ", ".join(sset.names)
                what = "scenario set"
                if sset.is_pathway:
                    first, last = sset.years
                    what = f"pathway set {first}-{last}"
                console.print(
                    f"[green]ok[/] {shown}: {what} for market "
                    f"{escape(repr(sset.market.id))}, "
                    f"{len(sset.scenarios)} scenarios ({escape(names)})",
                    highlight=False,
                )
            elif kind == "market" or data.get("kind") == "chain":
                m = load_market(str(path))
                if is_chain(m):
                    console.print(f"[green]ok[/] {shown}: {_chain_words(m)}", highlight=False)
                else:
                    console.print(
                        f"[green]ok[/] {shown}: market {escape(repr(m.id))} "
                        f"({escape(m.commodity)}), {m.n} regions, base year {m.spec.base_year}",
                        highlight=False,
                    )
            else:
                m = Market.from_dict(data, path=path)
                console.print(
                    f"[green]ok[/] {shown}: market {escape(repr(m.id))} ({escape(m.commodity)}), "
                    f"{m.n} regions, base year {m.spec.base_year}",
                    highlight=False,
                )
        except InputError as exc:
            err_console.print(f"[bold red]invalid:[/] {escape(str(exc))}", highlight=False)
            status = 2
    raise typer.Exit(status)


def _chain_words(chain) -> str:
    """``chain 'ree_magnets': 4 stages (...), 3 links (...), 10 regions`` in words."""
    stages = ", ".join(f"{m.id} ({CHAIN_TAG.sub('', m.commodity)})" for m in chain.stages)
    links = ", ".join(f"{k.input} → {k.output} {k.coefficient:g}" for k in chain.spec.link)
    n_links = len(chain.spec.link)
    return escape(
        f"chain {chain.id!r}: {len(chain.stages)} stage{'s' if len(chain.stages) != 1 else ''} "
        f"({stages}), {n_links} link{'s' if n_links != 1 else ''} ({links or 'none'}), "
        f"{chain.n} regions"
    )


@app.command()
def markets() -> None:
    """List the shipped markets and value chains."""
    table = Table(title="Shipped markets", title_justify="left")
    for col in ("id", "commodity", "stage", "base year", "unit", "regions"):
        table.add_column(col)
    for mid in list_markets():
        m = load_market(mid)
        table.add_row(
            *map(
                escape,
                (
                    m.id,
                    m.commodity,
                    m.spec.stage,
                    str(m.spec.base_year),
                    m.price_unit,
                    " ".join(m.regions),
                ),
            )
        )
    console.print(table)
    ids = list_chains()
    if not ids:
        return
    table = Table(title="Shipped value chains", title_justify="left")
    for col in ("id", "stages (upstream first)", "links: input → output, coefficient", "regions"):
        table.add_column(col)
    for cid in ids:
        c = cast("Chain", load_market(cid))
        table.add_row(
            escape(c.id),
            escape(" → ".join(c.stage_ids)),
            escape("\n".join(f"{k.input} → {k.output}: {k.coefficient:g}" for k in c.spec.link)),
            escape(" ".join(c.regions)),
        )
    console.print(table)


@app.command()
def backcast() -> None:
    """Back-cast real export-restriction episodes at the short-run horizon (docs/backcasts.md).

    Prints per episode the model's outcome, the observed range with its sources, whether the
    episode calibrates or is held out, and a last line ``backcasts: K/N within observed
    ranges``.
    """
    from tradepolicy.calibration.backcast import format_run, run_backcasts

    try:
        run = run_backcasts()
    except (InputError, ValueError, RuntimeError) as exc:
        raise _fail(exc) from None
    console.print(format_run(run), highlight=False, markup=False, soft_wrap=True)


@app.command("scenarios")
def list_scenario_sets() -> None:
    """List the shipped scenario sets."""
    from tradepolicy._paths import scenario_files

    table = Table(title="Shipped scenario sets", title_justify="left")
    for col in ("file", "market", "scenarios"):
        table.add_column(col)
    for p in scenario_files():
        s = load_scenarios(p)
        market = s.market.id + (" (value chain)" if is_chain(s.market) else "")
        table.add_row(escape(p.stem), escape(market), escape(", ".join(s.names)))
    console.print(table)


@app.command()
def brief(
    results: Annotated[
        Path, typer.Argument(help="Results netCDF (written by `tradepolicy run -o`).")
    ],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="Brief file to write (.pdf, .docx, .html or .pptx)."),
    ],
    scenarios: Annotated[
        str | None,
        typer.Option("--scenarios", help="Comma-separated scenario names (default: all)."),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="pdf, docx, html or pptx (default: from the -o suffix)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    """Write a scenario brief for policy staff (PDF, DOCX, HTML or a PPTX deck) from results."""
    _setup_logging(verbose)
    names = None if scenarios is None else [s.strip() for s in scenarios.split(",") if s.strip()]
    try:
        check_output(output, [results])
        from tradepolicy.reports import write_brief

        path = write_brief(results, output, names, fmt)
    except ImportError as exc:  # the reports extra is not installed
        raise _missing_extra("reports", exc) from None
    except InputError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        raise _interrupted() from None
    console.print(f"wrote {escape(str(path))}", highlight=False)


@app.command()
def dashboard(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to serve on.")] = 5006,
    no_show: Annotated[bool, typer.Option("--no-show", help="Do not open a browser tab.")] = False,
    address: Annotated[
        str,
        typer.Option(
            "--address",
            help="Interface to listen on: 127.0.0.1 (default, this machine only), ::1, or "
            "0.0.0.0 to share it with every machine that can reach this one (no login).",
        ),
    ] = "127.0.0.1",
    market: Annotated[
        str | None,
        typer.Option(
            "--market", help="Market opened first: a shipped id or a market file (.toml)."
        ),
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option(
            "--results", help="Open on the market of this results file (`tradepolicy run -o`)."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log requests.")] = False,
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            min=0,
            max=64,
            help="Worker threads for the sessions' solves, shared by every session, so that "
            "one user's update does not hold up the others (each page's events are still "
            "handled in order on the server's event loop, and each session solves one "
            "change at a time, the latest; 0: solves on the event loop too).",
        ),
    ] = 2,  # tradepolicy.dashboard.app.DEFAULT_THREADS (not imported: Panel is optional)
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=0,
            max=64,
            show_default="automatic",
            help="Worker processes that solve each edited scenario's 2030 pathway for the "
            "solve threads, on other cores than the server's event loop. Default: one on a "
            "machine of two cores or more, used only while two sessions solve at once (one "
            "user's solves stay in the threads, quicker alone); a number: that many, used for "
            "every solve; 0: none. Needs --threads of 1 or more.",
        ),
    ] = None,
) -> None:
    """Serve the negotiator dashboard (Panel) on the shipped markets until stopped (Ctrl+C)."""
    import errno
    import socket

    _setup_logging(verbose)
    try:
        from tradepolicy.dashboard import serve  # Panel is imported only for this command
        from tradepolicy.dashboard.markets import market_of_results
    except ImportError as exc:  # the dashboard extra is not installed
        raise _missing_extra("dashboard", exc) from None
    if market is not None and results is not None:
        raise _fail(ValueError("give --market or --results, not both"))
    if processes and not threads:
        raise _fail(ValueError("--processes needs solve threads: pass --threads 1 or more"))
    files: list[str] = []
    try:
        if results is not None:
            market = market_of_results(results)
        elif market is not None and market.endswith(".toml"):
            path = Path(market)
            market = load_market(path).id
            files.append(str(path))
        elif market is not None and market not in (*list_markets(), *list_chains()):
            shipped = ", ".join(list_markets())
            chains = ", ".join(list_chains())
            raise InputError(
                "--market",
                [("", f"unknown market {market!r}; shipped: {shipped}; value chains: {chains}")],
            )
    except InputError as exc:
        raise _fail(exc) from None

    def announce(url: str) -> None:
        err_console.print(f"serving the dashboard at {url} (Ctrl+C to stop)", highlight=False)

    try:
        serve(
            port=port,
            show=not no_show,
            address=address,
            markets=files,
            market=market,
            announce=announce,
            threads=threads,
            processes=processes,
            notice=lambda text: err_console.print(text, highlight=False),
            verbose=verbose,
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise _fail(OSError(f"port {port} is in use; pass --port")) from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(
            exc, socket.gaierror
        ):
            msg = f"cannot listen on {address}: not an address of this machine ({exc})"
            raise _fail(OSError(msg)) from None
        if exc.errno == errno.EACCES:
            raise _fail(OSError(f"port {port} needs privileges; pass --port above 1023")) from None
        raise


if __name__ == "__main__":  # pragma: no cover
    app()
