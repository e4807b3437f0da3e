"""The 2030 question in the dashboard: the pathway options of the chosen market, answer first.

The model part (no UI) reads a shipped pathway set (a scenario file with ``years`` naming the
market, docs/pathways.md), solves it centrally at once and with Monte Carlo draws in a worker
thread, and adds the scenario being edited (:meth:`DashboardStore.current_scenario`) as one
more option, "Your scenario", solved centrally with the set's header. Every number comes from
the pathway Dataset through ``ds.tp.pathway_options()``, ``ds.tp.risk_table()`` and
:func:`tradepolicy.pathway.views.payers_table`, formatted as the brief formats them
(:mod:`tradepolicy.reports.formatting`), so the dashboard, the CLI and the brief agree.

:class:`AnswerView` shows it: the answer in one sentence, the live KPIs of the edited scenario,
the ranked options table, 2024–2035 trajectories with 5–95% fans, who pays, the risk view and
the brief's download.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

# (bokeh.models re-exports these from a dynamic __all__ that type checkers cannot follow)
from bokeh.core.property.vectorization import value
from bokeh.document import Document
from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter, Range1d
from bokeh.models.annotations import Legend, LegendItem, Span
from bokeh.models.glyph import Glyph
from bokeh.models.glyphs import Line, VArea
from bokeh.models.renderers import GlyphRenderer
from bokeh.plotting import figure
from panel.viewable import Viewer

from tradepolicy import regions as region_table
from tradepolicy._validation import read_toml
from tradepolicy.dashboard import workers
from tradepolicy.dashboard.caching import PerObject
from tradepolicy.dashboard.config import scenario_key
from tradepolicy.dashboard.jobs import served_document
from tradepolicy.dashboard.markets import MarketInfo
from tradepolicy.dashboard.panes import TextPane
from tradepolicy.dashboard.store import DashboardStore, SolveCache, later
from tradepolicy.dashboard.views import (
    ROW_NOTE_CLASS,
    UPDATING_FIGURE_CSS,
    UPDATING_ROWS_CSS,
    MarkedCards,
    mark_updating,
)
from tradepolicy.errors import InputError
from tradepolicy.measures.base import FISCAL_ENTRIES
from tradepolicy.pathway.results import BORDER_ENTRIES, discount_factors
from tradepolicy.pathway.spec import PathwaySet, base_year
from tradepolicy.pathway.views import payers_table, risk_money_unit
from tradepolicy.reports.context import option_labels
from tradepolicy.reports.formatting import (
    MISSING,
    fmt_bn,
    fmt_points,
    fmt_prob,
    fmt_scaled2,
    fmt_share,
)
from tradepolicy.reports.pathway import (
    _lower,
    cost_per_point_text,
    shared_warning_text,
    split_warnings,
)
from tradepolicy.results.accessor import MIN_POINTS
from tradepolicy.scenario import Scenario, Target, is_chain

log = logging.getLogger(__name__)

#: the name of the edited scenario among the pathway options, and its label
LIVE = "your_scenario"
LIVE_LABEL = "Your scenario"
#: the key of the edited scenario's solve in the session's queue of jobs
LIVE_JOB = "live"
#: Monte Carlo draws and seed of the options' probabilities (modest: a risk set with 1000
#: draws takes over a minute; 100 draws a few seconds to tens of seconds)
DEFAULT_DRAWS = 100
DEFAULT_SEED = 2030
#: the header of a market without a shipped pathway set (docs/pathways.md)
DEFAULT_LAST_YEAR = 2035
DEFAULT_TARGET_YEAR = 2030
DEFAULT_SHARES = (0.60, 0.50)
DEFAULT_GROUP = "g7_partners"
#: an option "meets" a share when at least this share of the draws does (as the brief)
MOST = 0.5
#: what the chooser shows for a market without a shipped pathway set
DEFAULT_SET = "default"

#: solved pathway sets, shared by every session: key (set file, mtime, draws, seed, stage);
#: a few entries (a set with draws holds tens of MB)
PATHWAYS = SolveCache(max_items=6, max_bytes=512 * 2**20)
#: the edited scenario solved with a set's header: key (set, mtime, scenario JSON, start year)
LIVE_SOLVES = SolveCache(max_items=32, max_bytes=64 * 2**20)
#: numbers derived from a solved pathway (options table at a stage, warnings, payers), once per
#: Dataset for every session (ten pages opening the same set compute its table once)
DERIVED = PerObject(max_items=96)
#: draws run here, one set at a time, off the event loop
_DRAWS_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tp-pathway-draws")
_IN_FLIGHT: dict[tuple, Future] = {}
_IN_FLIGHT_LOCK = threading.Lock()


# -- pathway sets ---------------------------------------------------------------------------


def pathway_files(info: MarketInfo) -> list[Path]:
    """The shipped scenario files of ``info``'s market or chain that are pathway sets (a
    ``years`` field), in file-name order."""
    out = []
    for p in info.scenario_files:
        try:
            if "years" in read_toml(p):
                out.append(Path(p))
        except Exception:  # an unreadable file is reported where it is loaded
            continue
    return out


def _load_set(path: Path) -> PathwaySet:
    from tradepolicy.dashboard.markets import load_set_quietly

    sset, _ = load_set_quietly(path)
    if not isinstance(sset, PathwaySet):
        raise InputError(str(path), [("years", "not a pathway set (no `years`)")])
    return sset


def default_header(info: MarketInfo) -> PathwaySet:
    """The pathway header of a market without a shipped pathway set: its base year to 2035,
    the first demand path it ships (none: flat demand), the target bloc of the market at 60%
    with the 50% ambition in 2030, read at the chain's target stage; no options."""
    model = info.model
    first = base_year(model)
    demand = None
    stages = list(cast(Any, model).stages) if is_chain(model) else [model]
    for m in stages:
        table = getattr(m, "demand_paths", None)
        if table is not None and len(table):
            demand = str(pd.DataFrame(table)["path"].iloc[0])
            break
    bloc = info.bloc
    kw: dict[str, Any] = {"group": bloc} if isinstance(bloc, str) else {"bloc": list(bloc)}
    target = Target(
        **kw,
        max_share=DEFAULT_SHARES[0],
        ambition=DEFAULT_SHARES[1],
        stage=info.target_stage,
        year=max(DEFAULT_TARGET_YEAR, first + 1),
    )
    return PathwaySet(
        market=model,  # type: ignore[arg-type]  # a Chain runs like a market
        scenarios=[],
        title=f"{info.title}: default pathway header",
        target=target,
        years=(first, max(DEFAULT_LAST_YEAR, first + 1)),
        demand_path=demand,
    )


def with_scenarios(
    pset: PathwaySet,
    scenarios: list[Scenario],
    *,
    target: Target | None = None,
    risk: bool = True,
) -> PathwaySet:
    """A pathway set with ``pset``'s header (market, years, demand path, discount rate, mode,
    investment, target, risk events unless ``risk`` is False) and other ``scenarios``."""
    return PathwaySet(
        market=pset.data_market,
        scenarios=list(scenarios),
        target_share=pset.target_share,
        title=pset.title,
        description=pset.description,
        path=pset.path,
        target=target if target is not None else pset.target,
        years=pset.years,
        demand_path=pset.demand_path,
        discount_rate=pset.discount_rate,
        mode=pset.mode,
        investment=dict(pset.investment),
        risk=list(pset.risk) if risk else [],
    )


def live_option(scenario: Scenario, start_year: int) -> Scenario:
    """``scenario`` as a pathway option named :data:`LIVE`: every measure without a start year
    in force from ``start_year``."""
    measures = [
        m if m.start_year is not None else m.model_copy(update={"start_year": int(start_year)})
        for m in scenario.measures
    ]
    return Scenario(name=LIVE, description=scenario.description, measures=measures)


def policy_start(pset: PathwaySet) -> int:
    """The set's first policy year: the earliest ``start_year`` of its measures (else the year
    after the first)."""
    years = [m.start_year for sc in pset.scenarios for m in sc.measures if m.start_year]
    return int(min(years)) if years else int(pset.years[0]) + 1


def first_stage(pset: PathwaySet) -> str:
    """The stage a set's options are read at first: its target's stage (a chain), else the
    market's last (a single market's only) stage."""
    model = pset.market
    return pset.bloc_target.stage or (
        cast(Any, model).stage_ids[-1] if is_chain(model) else model.id
    )


def first_set(info: MarketInfo) -> PathwaySet:
    """The pathway set a page opened on ``info`` shows first: its first shipped set, else the
    market's default header (:func:`default_header`)."""
    files = pathway_files(info)
    return _load_set(files[0]) if files else default_header(info)


def warm_first_page(info: MarketInfo, scenario: Scenario) -> None:
    """Solve and cache what a page first opened on ``info`` asks of the 2030 tab with
    ``scenario`` as the edited one: its first pathway set's central run (:func:`set_job`)
    and the edited scenario's pathway (:func:`live_job`), through the caches the page reads,
    so that on a cold compile cache the kernels are compiled before the first page opens
    (called by ``app.warm_up``). A set that cannot be read or solved is left to the page."""
    pset = first_set(info)
    stage = first_stage(pset)
    set_job(pset, stage, DEFAULT_DRAWS)
    live_job(pset, scenario, policy_start(pset), stage)


def warm_solver(ref: str = "ree_magnets") -> None:
    """Load the solver's compiled kernels in a fresh process (a solve process's start,
    :mod:`~tradepolicy.dashboard.workers`), so that its first job is as quick as the next:
    the edited scenario's pathway of ``ref``'s first pathway set, its first option, solved
    once (the rare-earth chain's runs every kernel a single market's run does)."""
    from tradepolicy.dashboard.markets import market_info

    pset = first_set(market_info(ref))
    option = pset.scenarios[0] if pset.scenarios else Scenario(name=LIVE, measures=[])
    live_solved(pset, option, policy_start(pset), first_stage(pset))


def _file_key(pset: PathwaySet) -> tuple[str, float]:
    if pset.path is None:
        return (f"default:{pset.market.id}", 0.0)
    p = Path(pset.path)
    return (str(p.resolve()), p.stat().st_mtime)


def solve_central(pset: PathwaySet) -> xr.Dataset:
    """The central run of every option of ``pset`` (cached; a risk set without its events,
    which only draws carry)."""
    from tradepolicy.pathway import solve_pathway

    key = ("central", *_file_key(pset))
    return PATHWAYS.get(
        key, lambda: solve_pathway(with_scenarios(pset, pset.scenarios, risk=False))
    )


def _solve_draws(pset: PathwaySet, draws: int, seed: int) -> xr.Dataset:
    from tradepolicy.pathway import solve_pathway

    key = ("draws", *_file_key(pset), int(draws), int(seed))
    return PATHWAYS.get(key, lambda: solve_pathway(pset, draws=int(draws), seed=int(seed)))


def cached_draws(pset: PathwaySet, draws: int, seed: int) -> xr.Dataset | None:
    """The results of ``pset`` with ``draws`` if already solved (cached), else None."""
    key = ("draws", *_file_key(pset), int(draws), int(seed))
    with PATHWAYS._lock:  # a look without solving (SolveCache.get solves on a miss)
        hit = PATHWAYS._items.get(key)
    return None if hit is None else hit[0]


def submit_draws(pset: PathwaySet, draws: int, seed: int) -> Future:
    """Solve ``pset`` with ``draws`` in the worker thread; one future per key, shared by every
    session asking for it while it runs."""
    key = ("draws", *_file_key(pset), int(draws), int(seed))
    with _IN_FLIGHT_LOCK:
        fut = _IN_FLIGHT.get(key)
        if fut is not None:
            return fut
        fut = _DRAWS_POOL.submit(_solve_draws, pset, draws, seed)
        _IN_FLIGHT[key] = fut

    def _done(_f: Future) -> None:
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT.pop(key, None)

    fut.add_done_callback(_done)
    return fut


def solve_live(pset: PathwaySet, scenario: Scenario, start_year: int) -> xr.Dataset:
    """The edited scenario as the option :data:`LIVE` (and the baseline), central run, with
    ``pset``'s header (cached on the scenario's measures and the start year)."""
    from tradepolicy.pathway import solve_pathway

    option = live_option(scenario, start_year)
    key = (
        *_file_key(pset),
        scenario_key([option.model_copy(update={"description": ""})]),
        int(start_year),
    )
    return LIVE_SOLVES.get(key, lambda: solve_pathway(with_scenarios(pset, [option], risk=False)))


def central_result(pset: PathwaySet) -> tuple[xr.Dataset | None, str]:
    """:func:`solve_central` of a set with options, never raising: the results (None for a
    set without options), or None and the problem in words."""
    if not pset.scenarios:
        return None, ""
    try:
        return solve_central(pset), ""
    except Exception as exc:
        log.exception("central pathway run failed")
        return None, f"The pathway could not be solved: {exc}"


def _problem_text(exc: BaseException) -> str:
    problems = getattr(exc, "problems", None)
    return "; ".join(map(str, problems)) if problems else str(exc)


def live_result(
    pset: PathwaySet, scenario: Scenario, start_year: int
) -> tuple[xr.Dataset | None, str]:
    """:func:`solve_live`, never raising: the results, or None and the problem in words
    (run in a session's solve thread: reads nothing of the page)."""
    try:
        return solve_live(pset, scenario, start_year), ""
    except InputError as exc:
        return None, "; ".join(f"{f}: {m}" if f else m for f, m in exc.problems)
    except Exception as exc:
        log.exception("the edited scenario's pathway failed")
        return None, f"not solved: {exc}"


def pathway_table(ds: xr.Dataset) -> pd.DataFrame:
    """``ds.tp.pathway_options()``, computed once per Dataset for every session and for what
    reads it (the options table at any stage, the validity warnings; :data:`DERIVED`;
    shared: copy before changing it)."""
    return DERIVED.get(ds, ("pathway_options",), ds.tp.pathway_options)


def table_at(ds: xr.Dataset, stage: str | None) -> pd.DataFrame:
    """:func:`options_at_stage`, computed once per Dataset and stage for every session
    (:data:`DERIVED`; shared: copy before changing it)."""
    return DERIVED.get(ds, ("table", stage), lambda: options_at_stage(ds, stage))


def warnings_at(ds: xr.Dataset, names: Sequence[str]) -> dict[str, list[str]]:
    """:func:`warnings_of`, computed once per Dataset and options (shared: do not change)."""
    return DERIVED.get(ds, ("warnings", tuple(names)), lambda: warnings_of(ds, list(names)))


def payers_at(ds: xr.Dataset) -> pd.DataFrame:
    """:func:`~tradepolicy.pathway.views.payers_table`, computed once per Dataset (shared)."""
    return DERIVED.get(ds, ("payers",), lambda: payers_table(ds))


def live_job(
    pset: PathwaySet,
    scenario: Scenario,
    start_year: int,
    stage: str | None,
    charts: Callable[[xr.Dataset | None], list[ChartSpec] | None] | None = None,
) -> tuple[xr.Dataset | None, str, list[ChartSpec] | None]:
    """:func:`live_result`, with what the view then reads of it (its options table at
    ``stage``, warnings and payers) computed too, so that the event loop only formats them,
    and ``charts`` of it when given (the charts following the edited scenario: one job
    instead of two); a session's solve thread: reads nothing of the page."""
    ds, problem, derived = workers.run(live_solved, pset, scenario, start_year, stage)
    if ds is not None:  # a solve process's copy: what it derived kept for this copy
        for key, value in derived.items():
            DERIVED.put(ds, key, value)
    return ds, problem, (None if charts is None else charts(ds))


def live_solved(
    pset: PathwaySet, scenario: Scenario, start_year: int, stage: str | None
) -> tuple[xr.Dataset | None, str, dict[tuple, Any]]:
    """:func:`live_result` and what the view reads of it (:data:`DERIVED`'s entries: the
    options at ``stage``, the warnings, the payers), by key; run in a solve process when the
    server has them (:mod:`~tradepolicy.dashboard.workers`), else in the solve thread."""
    ds, problem = live_result(pset, scenario, start_year)
    if ds is None:
        return ds, problem, {}
    names = ("baseline", LIVE)
    derived = {
        ("pathway_options",): pathway_table(ds),
        ("table", stage): table_at(ds, stage),
        ("warnings", names): warnings_at(ds, list(names)),
        ("payers",): payers_at(ds),
    }
    return ds, problem, derived


def set_job(pset: PathwaySet, stage: str | None, draws: int) -> tuple[xr.Dataset | None, str]:
    """:func:`central_result`, with the options table, warnings and payers of the results
    the view then shows (the cached draws if any, else the central run) computed too (a
    session's solve thread)."""
    ds, problem = central_result(pset)
    shown = cached_draws(pset, draws, DEFAULT_SEED) if draws >= 2 else None
    shown = shown if shown is not None else ds
    if shown is not None:
        table = table_at(shown, stage)
        warnings_at(shown, [n for n in ranked(table, _target_year(shown)) if n != LIVE])
        payers_at(shown)
    return ds, problem


def _target_year(ds: xr.Dataset) -> int:
    return int(ds.attrs.get("target_year", ds.year.values[-1]))


# -- tables ---------------------------------------------------------------------------------


def target_stage(ds: xr.Dataset) -> str:
    return str(ds.attrs.get("target_stage") or ds.stage.values[-1])


def options_at_stage(ds: xr.Dataset, stage: str | None = None) -> pd.DataFrame:
    """``ds.tp.pathway_options()`` read at ``stage`` (default: the target stage, where it is
    that table exactly; shared with :func:`pathway_table`: copy before changing it).

    At another stage the dependence, its largest outside supplier and 5–95% range, the points
    removed, the probabilities of meeting each share and the costs per point are those of
    ``bloc_dependency`` at that stage, by the rules of the target stage (docs/pathways.md):
    probabilities over the draws that solved every year, per point only from
    :data:`~tradepolicy.results.accessor.MIN_POINTS` removed.
    """
    table = pathway_table(ds)
    if stage is None or stage == target_stage(ds):
        return table
    out = table.copy()
    year = _target_year(ds)
    dep_all = ds["bloc_dependency"].sel(year=year, stage=stage)  # (draw, scenario)
    dep = dep_all.sel(draw=0).values
    out[f"dependence_{year}"] = dep
    top = ds["bloc_top_supplier"].sel(year=year, stage=stage)
    out["largest_outside_supplier"] = [str(v) for v in top.values]
    removed = (dep[0] - dep) * 100.0  # the baseline is the first scenario
    out["points_removed"] = removed
    draws = ds.sizes.get("draw", 1)
    conv = ds["converged"].all("year").transpose("draw", "scenario").values.astype(bool)
    sample = slice(1, None) if draws > 1 else slice(0, 1)
    d = dep_all.transpose("draw", "scenario").values[sample]
    ok = conv[sample]
    for share in ds["share"].values if "share" in ds.coords else ():
        meets = (d <= float(share) + 1e-12) & ok
        out[f"p_at_most_{round(100 * float(share))}"] = meets.sum(axis=0) / np.maximum(
            ok.sum(axis=0), 1
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        enough = removed >= MIN_POINTS
        budget, buyers = out["pv_budget_cost_bloc"].values, out["pv_cost_to_bloc_buyers"].values
        out["budget_cost_per_point"] = np.where(enough, budget / removed, np.nan)
        out["buyer_cost_per_point"] = np.where(enough, buyers / removed, np.nan)
        out["cost_per_point"] = np.where(enough, (budget + buyers) / removed, np.nan)
    if f"dependence_{year}_p05" in out.columns:
        tail = dep_all.isel(draw=slice(1, None))
        out[f"dependence_{year}_p05"] = tail.quantile(0.05, dim="draw").values
        out[f"dependence_{year}_p95"] = tail.quantile(0.95, dim="draw").values
    return out


def with_live(table: pd.DataFrame, live: pd.DataFrame | None) -> pd.DataFrame:
    """The options table with the edited scenario's row (:data:`LIVE`) appended."""
    if live is None or LIVE not in live.index:
        return table
    return pd.concat([table.drop(index=LIVE, errors="ignore"), live.loc[[LIVE]]])


def ranked(table: pd.DataFrame, year: int) -> list[str]:
    """The options ranked: the baseline first, then the highest probability of meeting the
    first share, then of the second, then the lowest dependence in ``year`` (unsolved last);
    the edited scenario (:data:`LIVE`) last, where it stays while it is edited."""
    probs = [c for c in table.columns if c.startswith("p_at_most_")]
    rest = [n for n in table.index if n not in ("baseline", LIVE)]

    def key(n: str) -> tuple:
        r = table.loc[n]
        return (
            not bool(r["solved"]),
            *[-float(r[c]) for c in probs],
            float(r[f"dependence_{year}"]),
        )

    head = ["baseline"] if "baseline" in table.index else []
    tail = [LIVE] if LIVE in table.index else []
    return [*head, *sorted(rest, key=key), *tail]


def annual_budget(ds: xr.Dataset, regions: list[str] | None = None) -> pd.DataFrame:
    """The net budget cost by year (rows) and option (columns), central run, summed over
    stages and over ``regions`` (default: every region): spending on subsidies, offtakes,
    stocks, grants, expected guarantee losses and public equity less border revenue, fees and
    equity returns (> 0 a cost). Discounted to the first year it adds up to
    ``pv_budget_cost``."""
    from tradepolicy.pathway.decisions import POLICY_COSTS

    names = [str(r) for r in ds.region.values]
    keep = np.array([regions is None or r in regions for r in names])
    signs = {k: -1.0 for k in (*FISCAL_ENTRIES, *BORDER_ENTRIES)}
    signs.update(POLICY_COSTS)
    total = np.zeros((ds.sizes["year"], ds.sizes["scenario"]))
    for k, sign in signs.items():
        if k not in ds:
            continue
        da = ds[k]
        if "draw" in da.dims:
            da = da.isel(draw=0)
        arr = np.nan_to_num(np.asarray(da.values, dtype=float))
        dims = list(da.dims)
        arr = np.compress(keep, arr, axis=dims.index("region")).sum(axis=dims.index("region"))
        dims.remove("region")
        if "stage" in dims:
            arr = arr.sum(axis=dims.index("stage"))
            dims.remove("stage")
        total += sign * np.moveaxis(arr, [dims.index("year"), dims.index("scenario")], [0, 1])
    return pd.DataFrame(
        total,
        index=pd.Index([int(y) for y in ds.year.values], name="year"),
        columns=[str(c) for c in ds.scenario.values],
    )


def pv_of(frame: pd.DataFrame, rate: float) -> pd.Series:
    """Present value at ``rate`` to the first year of a frame of yearly amounts."""
    df = discount_factors(np.asarray(frame.index, dtype=int), rate)
    return frame.mul(df, axis=0).sum(axis=0)


# -- in words -------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:g}%"


def share_range(lo: float, hi: float) -> str:
    """A 5–95% range of two shares with one percent sign, as short as a table cell needs
    (``52.1–56.3%``); the numbers are rounded as :func:`fmt_share` rounds them."""
    return f"{fmt_share(lo).rstrip('%')}–{fmt_share(hi)}"


def labels_for(ds: xr.Dataset) -> dict[str, str]:
    """Each option of pathway results in words (:func:`option_labels`), the edited scenario
    as "Your scenario"."""
    return {**option_labels(ds), LIVE: LIVE_LABEL}


def answer_sentence(
    table: pd.DataFrame,
    *,
    year: int,
    shares: list[float],
    draws: int,
    stage_words: str,
    bloc_words: str,
    labels: dict[str, str],
) -> str:
    """The answer in one sentence: which options bring the bloc's dependence at the stage
    under each share in ``year``, with their probability (over the draws; the central run
    without draws)."""
    opts = [n for n in table.index if n != "baseline" and bool(table.loc[n, "solved"])]
    col = f"dependence_{year}"
    parts = []
    for share in shares:
        pcol = f"p_at_most_{round(100 * share)}"
        if draws and pcol in table.columns:
            hits = [n for n in opts if float(table.loc[n, pcol]) >= MOST]
            hits.sort(key=lambda n: -float(table.loc[n, pcol]))
            names = [f"{labels.get(n, n)} ({fmt_prob(table.loc[n, pcol])})" for n in hits]
        else:
            hits = [n for n in opts if float(table.loc[n, col]) <= share + 1e-12]
            hits.sort(key=lambda n: float(table.loc[n, col]))
            names = [f"{labels.get(n, n)} ({fmt_share(table.loc[n, col])})" for n in hits]
        if names:
            parts.append(f"under {_pct(share)}: {'; '.join(names)}")
        else:
            parts.append(f"under {_pct(share)}: none")
    base = float(table.loc["baseline", col]) if "baseline" in table.index else math.nan
    how = (
        f"in at least {fmt_prob(MOST)} of {draws} draws (probability in brackets)"
        if draws
        else "in the central run (dependence in brackets; probabilities follow with the draws)"
    )
    return (
        f"In {year}, doing nothing leaves {bloc_words} {fmt_share(base)} dependent on their "
        f"largest single outside supplier of {stage_words}. Options that bring it {how}: "
        + "; ".join(parts)
        + "."
    )


@dataclass(frozen=True)
class LiveKpis:
    """The edited scenario's 2030 numbers (formatted) and the shares they are read against."""

    dependence: str
    meets: str
    budget: str
    buyers: str
    per_point: str
    detail: str


def live_kpis(row: pd.Series, year: int, shares: list[float], base: float) -> LiveKpis:
    """The KPI strip of the edited scenario from its options-table row (central run)."""
    dep = float(row[f"dependence_{year}"])
    sup = str(row.get("largest_outside_supplier", ""))
    meets = ", ".join(f"{_pct(s)} {'met' if dep <= s + 1e-12 else 'missed'}" for s in shares)
    if not bool(row["solved"]):
        return LiveKpis("not solved", "", MISSING, MISSING, MISSING, "the central run failed")
    per_text = cost_per_point_text(row)
    return LiveKpis(
        dependence=fmt_share(dep) + (f" {region_table.short_name(sup)}" if sup else ""),
        meets=meets,
        budget=fmt_bn(row["pv_budget_cost_bloc"]),
        buyers=fmt_bn(row["pv_cost_to_bloc_buyers"]),
        per_point=per_text,
        detail=f"doing nothing {fmt_share(base)}; {fmt_points(row['points_removed'])} points",
    )


def warnings_of(ds: xr.Dataset, names: list[str]) -> dict[str, list[str]]:
    """Validity warnings per option, as the brief words them (unsolved years, draws left out,
    prices far from the no-policy pathway's), those several options share included
    (:func:`~tradepolicy.reports.pathway.split_warnings` sets them apart)."""
    from tradepolicy.reports.pathway import _Builder

    try:
        known = {str(s) for s in ds.scenario.values}
        shown = [n for n in names if n != "baseline" and n in known]
        b = _Builder(ds, shown, None, opts=pathway_table(ds))
    except Exception:  # a brief cannot be made of these results: no warnings shown
        log.debug("validity warnings not available", exc_info=True)
        return {}
    return b.all_warnings


# -- views ----------------------------------------------------------------------------------

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
LIVE_COLOR = "#111111"
CSS = """
.tp-answer-sentence {font-size: 15px; line-height: 1.45; margin: 4px 0 8px 0;}
.tp-answer-kpis {display: flex; flex-wrap: wrap; gap: 8px;}
.tp-answer-kpi {border: 1px solid #d0d7de; border-radius: 6px; padding: 4px 10px; min-width: 150px;
  flex: 1 1 0; background: #f8fafc;}
.tp-answer-kpi .t {font-size: 12px; color: #555;}
.tp-answer-kpi .v {font-size: 18px; font-weight: 600; line-height: 1.25;}
.tp-answer-kpi .d {font-size: 11px; color: #666;}
table.tp-answer-table {border-collapse: collapse; font-size: 13px; width: 100%;}
table.tp-answer-table th {text-align: right; border-bottom: 2px solid #888; padding: 3px 6px;
  font-weight: 600; vertical-align: bottom;}
table.tp-answer-table td {text-align: right; padding: 3px 6px; border-bottom: 1px solid #e5e5e5;
  white-space: nowrap;}
table.tp-answer-table td.w {white-space: normal;}
table.tp-answer-table td.l, table.tp-answer-table th.l {text-align: left;}
table.tp-answer-table td:first-child {min-width: 11.5em;}
table.tp-answer-table td:first-child, table.tp-answer-table th:first-child {text-align: left;}
table.tp-answer-table tr.live td, table.tp-answer-table tr.live-note td {font-weight: 600;
  background: #fff7e0;}
table.tp-answer-table tr.base td {color: #555;}
table.tp-answer-table tr.noted td {border-bottom: none; padding-bottom: 1px;}
table.tp-answer-table tr.ROW_NOTE td {white-space: normal; text-align: left; font-size: 12px;
  font-weight: normal; color: #8a4b00; padding: 0 6px 4px 12em;}
.tp-answer-note {font-size: 12px; color: #555;}
.tp-answer-warn {font-size: 12px; color: #8a4b00; margin: 4px 0;}
h4 {font-size: 15px; margin: 10px 0 4px 0;}
""".replace("ROW_NOTE", ROW_NOTE_CLASS)


def _html_table(
    header: list[str],
    rows: list[tuple[str, list[str]]],
    css: str,
    wrap: Sequence[int] = (0,),
    left: Sequence[int] = (),
    notes: Sequence[str] = (),
) -> str:
    """An HTML table; numbers stay on one line, the columns ``wrap`` (indices, negative from
    the end: names, words) may break, those in ``left`` are aligned left (the first always).
    ``notes[i]`` (words; "" none) is a line under row ``i``: one cell across the table, its
    text starting right of the first column (a row of class ``{row class}-note`` and
    :data:`~.views.ROW_NOTE_CLASS`)."""
    n = len(header)
    wrapped, lefts = {k % n for k in wrap}, {k % n for k in left}

    def td(i: int, text: str) -> str:
        cls = " ".join(c for c, on in (("w", i in wrapped), ("l", i in lefts)) if on)
        return f'<td class="{cls}">{escape(text)}</td>' if cls else f"<td>{escape(text)}</td>"

    def tr(k: int, cls: str, cells: list[str]) -> str:
        note = notes[k] if k < len(notes) else ""
        row = "".join(td(i, c) for i, c in enumerate(cells))
        if not note:
            return f'<tr class="{cls}">{row}</tr>'
        noted, kind = (f"{cls} noted", f"{cls}-note ") if cls else ("noted", "")
        return (
            f'<tr class="{noted}">{row}</tr>'
            f'<tr class="{kind}{ROW_NOTE_CLASS}"><td colspan="{n}">{escape(note)}</td></tr>'
        )

    head = "".join(
        f'<th class="l">{escape(h)}</th>' if i in lefts else f"<th>{escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = "".join(tr(k, cls, cells) for k, (cls, cells) in enumerate(rows))
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def options_html(
    table: pd.DataFrame,
    order: list[str],
    *,
    year: int,
    labels: dict[str, str],
    warnings: dict[str, list[str]],
    unit: str,
    shared: Sequence[str] = (),
) -> str:
    """The ranked options table in HTML, numbers formatted as the brief formats them.

    ``warnings`` are each option's own validity warnings, a line under its row (across the
    numbers: readable at a laptop's width, where a column of them was a few words wide);
    ``shared`` those several options carry, worded once under the table
    (:func:`~tradepolicy.reports.pathway.shared_warning_text`).
    """
    shares = [c for c in table.columns if c.startswith("p_at_most_")]
    risk = "loss_reduction" in table.columns
    lo, hi = f"dependence_{year}_p05", f"dependence_{year}_p95"
    ranges = lo in table.columns and bool(np.isfinite(table[lo].astype(float)).any())
    header = [
        "Option",
        *[f"P(≤ {c.rsplit('_', 1)[1]}%)" for c in shares],
        f"Dependence {year}" + (" (5–\u206095%)" if ranges else ""),  # no break in 95%
        "Points removed",
        f"PV budget, group ({unit})",
        f"PV budget, all payers ({unit})",
        f"PV cost to buyers ({unit})",
        f"Cost per point ({unit})",
        *([f"Expected loss avoided ({unit})"] if risk else []),
    ]
    rows = []
    notes = []
    for n in order:
        r = table.loc[n]
        cls = "live" if n == LIVE else ("base" if n == "baseline" else "")
        own = " ".join(warnings.get(n, []))
        notes.append(f"\u26a0 {own}" if own else "")
        if not bool(r["solved"]):
            rows.append((cls, [labels.get(n, n), *["not solved"] + [""] * (len(header) - 2)]))
            continue
        sup = str(r["largest_outside_supplier"])
        dep = fmt_share(r[f"dependence_{year}"]) + (
            f" {region_table.short_name(sup)}" if sup and sup != "nan" else ""
        )
        if ranges and np.isfinite(r[lo]):
            dep += f" ({share_range(r[lo], r[hi])})"
        per = MISSING if n == "baseline" else cost_per_point_text(r)
        loss = []
        if risk:
            v = r.get("loss_reduction", np.nan)
            loss = [fmt_bn(v) if np.isfinite(v) else MISSING]
        rows.append(
            (
                cls,
                [
                    labels.get(n, n),
                    *[fmt_prob(r[c]) for c in shares],
                    dep,
                    MISSING if n == "baseline" else fmt_points(r["points_removed"]),
                    fmt_bn(r["pv_budget_cost_bloc"]),
                    fmt_bn(r["pv_budget_cost"]),
                    fmt_bn(r["pv_cost_to_bloc_buyers"]),
                    per,
                    *loss,
                ],
            )
        )
    under = "".join(f'<p class="tp-answer-warn">\u26a0 {escape(w)}.</p>' for w in shared)
    # names and the cost per point (words where it is not given) may wrap
    per_col = header.index(f"Cost per point ({unit})")
    return _html_table(header, rows, "tp-answer-table", wrap=(0, per_col), notes=notes) + under


@dataclass(frozen=True, eq=False)
class Series:
    """One data source of a chart and the glyphs drawn from it.

    ``glyphs`` are (figure method, keyword arguments) pairs; ``key`` names the edited
    scenario's line (``"dependence"``, ``"budget"``), updated alone when only it changes.
    """

    data: dict[str, Any]
    glyphs: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    key: str = ""


#: the tick labels of a share axis: whole percents, with up to two decimals when the ticks
#: are closer (a dependence moving by tenths of a point was labelled 41%, 41%, 40%, 40%)
PERCENT_TICKS = "0.[00]%"


@dataclass(frozen=True, eq=False)
class ChartSpec:
    """A chart of the 2030 view as data: what :func:`figure_of` draws. Plain Python and
    numpy (no Bokeh model), so a solve thread builds it cheaply; two specs with the same
    :meth:`look` differ only in their series' data, and the page's chart is updated in place."""

    title: str
    y_label: str
    years: tuple[int, ...]
    percent: bool = False
    y_format: str = ""
    series: tuple[Series, ...] = ()
    #: reference lines: (dimension, location, dash, colour, alpha)
    spans: tuple[tuple[Literal["width", "height"], float, str, str, float], ...] = ()
    hover: tuple[tuple[str, str], ...] = ()

    def look(self) -> tuple:
        """Everything but the data: the title, axes, glyphs and styles, legend and lines."""
        series = tuple((tuple(sorted(s.data)), s.glyphs, s.key) for s in self.series)
        return (
            self.title,
            self.y_label,
            self.years,
            self.percent,
            self.y_format,
            series,
            self.spans,
            self.hover,
        )


def _glyph(method: str, **kw: Any) -> tuple[str, tuple[tuple[str, Any], ...]]:
    return method, tuple(sorted(kw.items()))


def _xy(years: list[int], v: Any) -> dict[str, Any]:
    return {"x": list(years), "y": np.asarray(v, dtype=float)}


#: the glyphs the charts draw, by the name of :func:`_glyph`'s method
GLYPHS: dict[str, type[Glyph]] = {"line": Line, "varea": VArea}


def _renderer(src: ColumnDataSource, method: str, kw: dict[str, Any]) -> GlyphRenderer:
    """A renderer of one glyph, as ``figure.<method>(source=src, **kw)`` draws it, without
    the glyphs for selection and muting (BokehJS derives them if ever asked: the charts have
    no selection tool, and their legends hide, not mute): a third of the models to make
    and send."""
    kw = {k: v for k, v in kw.items() if k != "legend_label"}
    if method == "line" and "color" in kw:
        kw["line_color"] = kw.pop("color")
    return GlyphRenderer(data_source=src, glyph=GLYPHS[method](**kw))


def figure_of(spec: ChartSpec) -> tuple[figure, list[ColumnDataSource]]:
    """The Bokeh figure of ``spec`` and its data sources (one per series, in order)."""
    years = list(spec.years)
    f = figure(
        title=spec.title,
        height=300,
        sizing_mode="stretch_width",
        toolbar_location=None,
        tools="",
        x_range=Range1d(start=years[0] - 0.3, end=years[-1] + 0.3),
    )
    f.yaxis.axis_label = spec.y_label
    f.xgrid.grid_line_color = None
    f.outline_line_color = None
    if spec.percent:
        f.yaxis.formatter = NumeralTickFormatter(format=PERCENT_TICKS)
    if spec.y_format:
        f.yaxis.formatter = NumeralTickFormatter(format=spec.y_format)
    sources: list[ColumnDataSource] = []
    items: dict[str, list[GlyphRenderer]] = {}  # legend label: its renderers, in order
    for s in spec.series:
        src = ColumnDataSource(_own_columns(s.data))
        for method, pairs in s.glyphs:
            kw = dict(pairs)
            r = _renderer(src, method, kw)
            f.renderers.append(r)
            if kw.get("legend_label"):
                items.setdefault(str(kw["legend_label"]), []).append(r)
        sources.append(src)
    legend_items = [LegendItem(label=value(k), renderers=rs) for k, rs in items.items()]
    f.add_layout(
        Legend(items=legend_items, click_policy="hide", label_text_font_size="10px"), "right"
    )
    for dim, loc, dash, color, alpha in spec.spans:
        f.add_layout(
            Span(
                location=loc,
                dimension=dim,
                line_dash=dash,
                line_color=color,
                line_alpha=alpha,
            )
        )
    if spec.hover:
        f.add_tools(HoverTool(tooltips=list(spec.hover)))
    return f, sources


def dependence_chart(
    ds: xr.Dataset,
    stage: str,
    order: list[str],
    labels: dict[str, str],
    shares: list[float],
) -> ChartSpec:
    """Dependence at ``stage`` by year: central run (line) and 5–95% over the draws (band)."""
    years = [int(y) for y in ds.year.values]
    dep = ds["bloc_dependency"].sel(stage=stage)
    ok = ds["converged"].all("year")
    series = []
    for k, n in enumerate(order):
        color = "#9e9e9e" if n == "baseline" else COLORS[k % len(COLORS)]
        data: dict[str, Any] = {"year": years, "v": dep.sel(draw=0, scenario=n).values}
        glyphs = []
        if ds.sizes.get("draw", 1) > 1:
            tail = dep.sel(scenario=n).isel(draw=slice(1, None))
            tail = tail.where(ok.sel(scenario=n).isel(draw=slice(1, None)))
            q = tail.quantile([0.05, 0.95], dim="draw", skipna=True)
            data["lo"] = q.sel(quantile=0.05).values
            data["hi"] = q.sel(quantile=0.95).values
            glyphs.append(
                _glyph("varea", x="year", y1="lo", y2="hi", fill_color=color, fill_alpha=0.12)
            )
        glyphs.append(
            _glyph("line", x="year", y="v", color=color, line_width=2, legend_label=labels[n])
        )
        series.append(Series(data, tuple(glyphs)))
    spans: list[tuple[Literal["width", "height"], float, str, str, float]] = [
        ("width", float(s), dash, "#c00", 1.0)
        for s, dash in zip(shares, ("dashed", "dotted"), strict=False)
    ]
    year = int(ds.attrs.get("target_year", years[-1]))
    spans.append(("height", float(year), "solid", "#888", 0.6))
    return ChartSpec(
        "Dependence on the largest outside supplier (band: 5–95% of draws)",
        "share of the group's use",
        tuple(years),
        percent=True,
        series=tuple(series),
        spans=tuple(spans),
        hover=(("year", "@year"), ("dependence", "@v{0.0%}")),
    )


def _one(ds: xr.Dataset, option: str, live: xr.Dataset | None) -> xr.Dataset | None:
    """The Dataset holding ``option`` (the edited scenario's own run for :data:`LIVE`)."""
    if option == LIVE:
        return live
    return ds if option in ds.scenario.values else None


def price_chart(
    ds: xr.Dataset,
    stage: str,
    option: str,
    label: str,
    members: list[str],
    live: xr.Dataset | None,
    unit: str,
    factor: float,
) -> ChartSpec:
    """Buyers' price inside (solid) and outside (dashed) the group at ``stage``, mean over
    the regions, doing nothing vs ``option``, central run."""
    years = [int(y) for y in ds.year.values]
    inside = [r for r in members if r in ds.region.values]
    outside = [str(r) for r in ds.region.values if r not in inside]
    d = _one(ds, option, live)
    runs = [("Doing nothing", ds, "baseline", "#9e9e9e")]
    if d is not None:
        runs.append((label, d, option, "#1f77b4"))
    series = []
    for name, data, scen, color in runs:
        p = data["consumer_price"].sel(stage=stage, scenario=scen)
        for regs, dash, where in ((inside, "solid", "inside"), (outside, "dashed", "outside")):
            if regs:
                v = p.sel(region=regs).mean("region").values / factor
                line = _glyph(
                    "line",
                    x="x",
                    y="y",
                    color=color,
                    line_dash=dash,
                    line_width=2,
                    legend_label=f"{name}, {where}",
                )
                series.append(Series(_xy(years, v), (line,)))
    return ChartSpec(
        f"Buyers' price inside and outside the group ({unit}, central run)",
        unit,
        tuple(years),
        series=tuple(series),
    )


def capacity_chart(
    ds: xr.Dataset, stage: str, option: str, live: xr.Dataset | None, unit: str
) -> ChartSpec:
    """Capacity by region at ``stage`` for ``option`` (lines) against doing nothing (dotted),
    central run; regions with capacity only."""
    years = [int(y) for y in ds.year.values]
    spec = ChartSpec(
        f"Capacity by region ({unit}, central run; dotted: doing nothing)",
        unit,
        tuple(years),
        y_format="0,0",
    )
    d = _one(ds, option, live)
    if d is None:
        return spec
    at = d["capacity"].sel(stage=stage).fillna(0.0).transpose("scenario", "year", "region")
    cap = at.sel(scenario=option).values  # (year, region)
    base = at.sel(scenario="baseline").values
    series = []
    for i, r in enumerate(str(r) for r in d.region.values):
        v = cap[:, i]
        if not np.any(v > 0):
            continue
        color = region_table.colour(r)
        name = region_table.short_name(r)
        line = _glyph("line", x="x", y="y", color=color, line_width=2, legend_label=name)
        series.append(Series(_xy(years, v), (line,)))
        dotted = _glyph("line", x="x", y="y", color=color, line_dash="dotted")
        series.append(Series(_xy(years, base[:, i]), (dotted,)))
    return replace(spec, series=tuple(series))


def budget_chart(
    ds: xr.Dataset,
    order: list[str],
    labels: dict[str, str],
    members: list[str],
    currency: str,
) -> ChartSpec:
    """The group's net budget cost by year per option (bn, > 0 a cost), central run."""
    years = [int(y) for y in ds.year.values]
    frame = annual_budget(ds, members) / 1e9
    series = []
    for k, n in enumerate(order):
        if n == "baseline":
            continue
        line = _glyph(
            "line",
            x="x",
            y="y",
            color=COLORS[k % len(COLORS)],
            line_width=2,
            legend_label=labels[n],
        )
        series.append(Series(_xy(years, frame[n].values), (line,)))
    return ChartSpec(
        f"Net budget cost of the group by year (bn {currency}, > 0 a cost, central run)",
        f"bn {currency}/yr",
        tuple(years),
        series=tuple(series),
    )


def _same_column(a: Any, b: Any) -> bool:
    """Whether two columns hold the same values (NaN equal to NaN)."""
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        return False
    if x.dtype.kind == "f" or y.dtype.kind == "f":
        return bool(np.array_equal(x.astype(float), y.astype(float), equal_nan=True))
    return bool(np.array_equal(x, y))


def _same_data(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two data sources' columns hold the same values (NaN equal to NaN)."""
    return a.keys() == b.keys() and all(_same_column(v, b[k]) for k, v in a.items())


def _own_columns(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with a copy of each column, for a data source of its own: a patch
    (:func:`update_source`) changes its columns in place, and a chart's columns may be
    views of shared results or a chart shared by the sessions (:func:`_set_chart`)."""
    return {k: v.copy() if isinstance(v, np.ndarray | list) else v for k, v in data.items()}


def update_source(src: ColumnDataSource, data: dict[str, Any]) -> None:
    """Give ``src`` the columns ``data``, sending the browser only the columns that changed.

    When ``data`` has the same columns, each as long as before, the changed columns are
    patched in place (:meth:`ColumnDataSource.patch`, whole columns); else the data is
    replaced. The chart then shows the same values either way, but BokehJS rebuilds a
    figure's legend (its items' elements and canvases, then the figure's layout) whenever a
    source drawn by a legend item is replaced, and not when it is patched.
    """
    old = src.data
    if old.keys() != data.keys() or any(
        np.ndim(v) != 1 or np.size(v) == 0 or np.size(v) != np.size(old[k]) for k, v in data.items()
    ):
        src.data = _own_columns(data)
        return
    patches = {
        k: [(slice(None), np.asarray(v).tolist())]
        for k, v in data.items()
        if not _same_column(v, old[k])
    }
    if patches:
        src.patch(patches)


def live_lines(live: xr.Dataset | None, stage: str) -> dict[str, dict[str, list]]:
    """The edited scenario's dependence at ``stage`` and budget by year (empty without it)."""
    if live is None or LIVE not in live.scenario.values:
        return {"dependence": {"year": [], "v": []}, "budget": {"year": [], "v": []}}
    years = [int(y) for y in live.year.values]
    dep = live["bloc_dependency"].sel(stage=stage, draw=0, scenario=LIVE).values
    members = str(live.attrs.get("target_bloc", "")).split()
    budget = annual_budget(live, members)[LIVE].values / 1e9
    return {
        "dependence": {"year": years, "v": list(dep)},
        "budget": {"year": years, "v": list(budget)},
    }


def _keyed(order: list[str], labels: dict[str, str]) -> tuple[tuple[str, ...], tuple]:
    """The options in order and their labels, as a key."""
    return tuple(order), tuple(labels.get(n) for n in order)


def _set_chart(ds: xr.Dataset | None, key: tuple, make: Callable[[], ChartSpec]) -> ChartSpec:
    """A chart of the set's results ``ds`` alone: computed once per Dataset and ``key`` for
    every session and edit (:data:`DERIVED`; shared: charts are frozen and their data
    replaced, never changed); without them (``make`` reads the edited scenario's), made."""
    return make() if ds is None else DERIVED.get(ds, key, make)


def build_charts(
    ctx: dict[str, Any], focus: str | None, info: MarketInfo | None, live: xr.Dataset | None
) -> list[ChartSpec] | None:
    """The 2030 view's four charts (dependence, prices, capacity, budget) as data, with the
    edited scenario's lines (series ``key`` "dependence" and "budget") in the first and last,
    from the view's context (:meth:`AnswerView._context`), the option in focus and the edited
    scenario's results; None when there is nothing to draw. Reads nothing of the page and
    makes no Bokeh model: a solve thread may build them."""
    ds, ref, stage, labels = ctx["ds"], ctx["ref"], ctx["stage"], ctx["labels"]
    order = [n for n in ranked(ctx["table"], ctx["year"]) if n != LIVE]
    members = str(ref.attrs.get("target_bloc", "")).split()
    factor, unit = 1.0, ""
    if info is not None:
        unit, factor = info.price_label, info.price_factor
    qty = str(ref["capacity"].attrs.get("units", ""))
    focus = focus or (order[1] if len(order) > 1 else "baseline")
    base_ds = ds if ds is not None else live
    if base_ds is None:
        return None
    dep = _set_chart(
        ds,
        ("dependence_chart", stage, *_keyed(order, labels), tuple(ctx["shares"])),
        lambda: dependence_chart(base_ds, stage, order, labels, ctx["shares"]),
    )
    budget = _set_chart(
        ds,
        ("budget_chart", *_keyed(order, labels), tuple(members), ctx["currency"]),
        lambda: budget_chart(base_ds, order, labels, members, ctx["currency"]),
    )
    lines = live_lines(live, stage)
    mine = _glyph(
        "line",
        x="year",
        y="v",
        color=LIVE_COLOR,
        line_width=3,
        line_dash="dashed",
        legend_label=LIVE_LABEL,
    )
    dep, budget = (
        replace(c, series=(*c.series, Series(lines[key], (mine,), key=key)))
        for key, c in (("dependence", dep), ("budget", budget))
    )
    return [
        dep,
        price_chart(base_ds, stage, focus, labels.get(focus, focus), members, live, unit, factor),
        capacity_chart(base_ds, stage, focus, live, qty),
        budget,
    ]


class AnswerView(Viewer):
    """The 2030 question for the store's market: answer, live KPIs, options, fans, payers."""

    store = param.ClassSelector(class_=DashboardStore)
    draws = param.Integer(
        DEFAULT_DRAWS, bounds=(0, 2000), doc="Monte Carlo draws asked for first (0: none)"
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._sets: dict[str, PathwaySet | None] = {}
        self.set_select = pn.widgets.Select(
            label="Pathway set",
            options=[],
            width=260,
            css_classes=["tp-answer-set"],
            description="The shipped pathway sets of this market (scenario files with years).",
        )
        self.stage_select = pn.widgets.Select(
            label="Stage",
            options={},
            width=300,  # "Sintered NdFeB magnets (target stage)" in full
            css_classes=["tp-answer-stage"],
            description="The stage of the chain dependence is read at (the target stage first).",
        )
        self.start_input = pn.widgets.IntInput(
            label="Your measures from",
            value=2026,
            step=1,
            width=150,
            css_classes=["tp-answer-start"],
            description="The year the edited scenario's measures come into force.",
        )
        self.draws_input = pn.widgets.IntInput(
            label="Draws for 2030",
            value=int(self.draws),
            start=0,
            end=2000,
            step=50,
            width=110,
            css_classes=["tp-answer-draws"],
            description=f"Monte Carlo draws for the 2030 probabilities and fans (seed "
            f"{DEFAULT_SEED}); 0: central run only. (The sidebar's draws are for the one-year "
            "ranges.)",
        )
        self.header = TextPane("", sizing_mode="stretch_width", stylesheets=[CSS])
        self.status = TextPane(
            "", sizing_mode="stretch_width", stylesheets=[CSS], css_classes=["tp-answer-status"]
        )
        self.sentence = TextPane(
            "", sizing_mode="stretch_width", stylesheets=[CSS], css_classes=["tp-answer-answer"]
        )
        self._kpis = MarkedCards(CSS, "tp-answer-kpis-pane")
        self.kpis = self._kpis.pane
        self.table = TextPane(
            "",
            sizing_mode="stretch_width",
            stylesheets=[CSS, UPDATING_ROWS_CSS],
            css_classes=["tp-answer-options"],
        )
        self.table_note = TextPane("", sizing_mode="stretch_width", stylesheets=[CSS])
        self.focus = pn.widgets.Select(
            label="Option in the price, capacity charts",
            options={},
            width=300,
            css_classes=["tp-answer-focus"],
        )
        self.charts = pn.GridBox(ncols=2, sizing_mode="stretch_width")
        self.payers = TextPane(
            "",
            sizing_mode="stretch_width",
            stylesheets=[CSS, UPDATING_ROWS_CSS],
            css_classes=["tp-answer-payers"],
        )
        self.risk = TextPane("", sizing_mode="stretch_width", stylesheets=[CSS])
        self.downloads = pn.Row()
        self._central: xr.Dataset | None = None
        self._draws: xr.Dataset | None = None
        self._live: xr.Dataset | None = None
        self._live_problem = ""
        self._future: Future | None = None
        self._doc: Any = None
        self.set_select.param.watch(lambda e: self._on_set(), "value")
        self._live_sources: dict[str, ColumnDataSource] = {}
        self._chart_sources: list[list[ColumnDataSource]] = []  # of the charts shown, in order
        self._chart_looks: list[tuple] = []  # ChartSpec.look of the charts shown
        self._chart_live: list[bool] = []  # whether each chart shown draws the edited scenario
        #: the edited scenario's row, lines and payers are redrawn in the next tick (its KPIs
        #: are shown): until then they stay marked as updating
        self._rest_due = False
        #: the charts built with the edited scenario's solve: (results, stage) they were built
        #: for at submission, and with the specs once published
        self._charts_for: tuple[xr.Dataset | None, str] = (None, "")
        self._live_specs: tuple[xr.Dataset | None, str, list[ChartSpec]] | None = None
        self._warn_key: tuple | None = None
        self._table_key: tuple | None = None
        self._table = pd.DataFrame()
        self._warn: dict[str, list[str]] = {}
        self.stage_select.param.watch(lambda e: self._render(), "value")
        self._quiet = False
        self.start_input.param.watch(self._on_start, "value")
        self.draws_input.param.watch(lambda e: self._request_draws(), "value")
        self.focus.param.watch(self._on_focus, "value")
        self._live_gen = 0  # the latest live update (a deferred redraw of an older one is skipped)
        self._set_pending = False  # a served page: the set's central run is in the queue
        if self.store is not None:
            # the edited settings straight from the sidebar: the live KPIs do not wait for
            # the store's one-year solve (which a served page runs in the next tick)
            cfg = self.store.policy
            cfg.param.watch(lambda *e: self._on_settings(), [p for p in cfg.param if p != "name"])
            # the edited scenario's numbers marked while its solve is pending
            self.store.jobs.param.watch(self._mark, "pending")
        self.sentence.object = '<p class="tp-answer-note">Solving the pathway options…</p>'
        # served: after the page has loaded (the page opens at once, the options follow);
        # in a notebook or a test: now
        pn.state.onload(self._on_market)

    # -- state ------------------------------------------------------------------------------
    @property
    def _store(self) -> DashboardStore:
        if self.store is None:
            raise RuntimeError("AnswerView needs a store")
        return self.store

    @property
    def pset(self) -> PathwaySet | None:
        return self._sets.get(str(self.set_select.value))

    @param.depends("store.info", watch=True)
    def _on_market(self) -> None:
        info = self._store.info
        if info is None:
            return
        if self._sets and getattr(self, "_market_id", None) == info.id:
            return  # another stage of the same chain: nothing to reload
        self._market_id = info.id
        sets: dict[str, PathwaySet | None] = {}
        for p in pathway_files(info):
            try:
                sets[p.stem] = _load_set(p)
            except Exception as exc:  # a broken shipped file must not stop the view
                log.warning("pathway set %s not loaded: %s", p, exc)
        self._default = not sets
        if not sets:
            try:
                sets[DEFAULT_SET] = default_header(info)
            except Exception as exc:
                log.warning("no default pathway header for %s: %s", info.id, exc)
                sets[DEFAULT_SET] = None
        self._sets = sets
        self.set_select.options = list(sets)
        value = next(iter(sets))
        if self.set_select.value == value:
            self._on_set()
        else:
            self.set_select.value = value

    def _on_set(self) -> None:
        pset = self.pset
        if self.store is not None:  # solves of the previous set: not published
            self.store.jobs.cancel(LIVE_JOB, "set", "charts")
        self._set_pending = False
        self._central = self._draws = self._live = None
        self._future = None
        if pset is None:
            self.header.object = "<p>No pathway can be run for this market.</p>"
            self._render()
            return
        stages = {
            m.id: m.commodity.replace("(chain stage)", "").strip()
            for m in (cast(Any, pset.market).stages if is_chain(pset.market) else [pset.market])
        }
        tstage = first_stage(pset)
        order = [tstage, *[s for s in stages if s != tstage]]
        self.stage_select.options = {
            (stages[s] + (" (target stage)" if s == tstage else "")): s for s in order
        }
        self.stage_select.value = tstage
        self.stage_select.visible = len(stages) > 1
        y0, y1 = pset.years
        self.start_input.start, self.start_input.end = int(y0), int(y1)
        self._quiet = True  # (no live solve yet: the set's run comes first)
        try:
            self.start_input.value = policy_start(pset)
        finally:
            self._quiet = False
        title = escape(pset.title or "")
        if self._default:
            demand = f"demand on {escape(pset.demand_path)}" if pset.demand_path else "flat demand"
            title = (
                "No pathway set ships for this market: a default header is used (base year to "
                f"{y1}, {demand}"
                f", the target group at {_pct(DEFAULT_SHARES[0])} and {_pct(DEFAULT_SHARES[1])} "
                f"in {pset.target_year}); only your scenario is compared with doing nothing."
            )
        self.header.object = f'<p class="tp-answer-note">{title}</p>'
        if served_document() is not None:
            # a served page: the edited scenario's pathway (its KPIs first), then the set's
            # central run, solved in the session's queue of jobs, off the event loop
            self.sentence.object = '<p class="tp-answer-note">Solving the pathway options…</p>'
            self._set_pending = True  # until then only the edited scenario's KPIs are shown
            self._on_edit()
            stage, draws = self.stage_select.value, int(self.draws_input.value or 0)
            self._store.jobs.submit(
                "set", functools.partial(set_job, pset, stage, draws), self._publish_central
            )
            return
        self._central, problem = central_result(pset)
        if problem:
            self.status.object = f"<p>{escape(problem)}</p>"
        self._solve_live()
        self._request_draws(render=False)
        self._render()

    def _publish_central(self, result: tuple[xr.Dataset | None, str]) -> None:
        self._set_pending = False
        self._central, problem = result
        self._request_draws(render=False)
        self._render()
        if problem:
            self.status.object = f"<p>{escape(problem)}</p>"

    def _start_year(self) -> int:
        """The year the edited scenario's measures start (the box emptied: the set's first year)."""
        value = self.start_input.value
        if value is None:
            value = self.start_input.start
        return int(value or 0)

    def _on_start(self, _event: Any) -> None:
        if not self._quiet:
            self._on_edit()

    def _on_focus(self, _event: Any) -> None:
        if not self._quiet:
            self._render_charts()

    def _on_edit(self) -> None:
        pset = self.pset
        if pset is None or served_document() is None:
            self._solve_live()
            self._render_live()
            return
        # a served page: solved in the session's queue of jobs (a solve thread), shown on the
        # event loop unless a later edit, set or market came meanwhile
        jobs = self._store.jobs
        self._last_live_key = self._live_key()
        try:
            sc = self._store.current_scenario()
        except Exception as exc:
            jobs.cancel(LIVE_JOB)
            self._live, self._live_problem = None, _problem_text(exc)
            self._live_specs = None
            self._render_live()
            return
        charts = None
        ctx = self._context() if self.focus.value == LIVE else None
        if ctx is not None:  # the charts follow the edited scenario: built with its solve
            # (what they read of the context is that of the set's results or, without them,
            # the set's header, the same for every edit)
            charts = functools.partial(build_charts, ctx, LIVE, self._store.info)
            self._charts_for = (ctx["ds"], ctx["stage"])
        jobs.submit(
            LIVE_JOB,
            functools.partial(
                live_job, pset, sc, self._start_year(), self.stage_select.value, charts
            ),
            self._publish_live,
            priority=0,  # before the one-year solve: the 2030 KPIs first
            fail=self._live_failed,
        )

    def _publish_live(self, result: tuple[xr.Dataset | None, str, list[ChartSpec] | None]) -> None:
        self._live, self._live_problem, specs = result
        self._live_specs = None if specs is None else (*self._charts_for, specs)
        self._render_live()

    def _live_failed(self, exc: BaseException) -> None:
        """The edited scenario's job raised (``live_job`` reports a failed solve as a
        problem: this is a bug): the KPIs say so instead of keeping the previous numbers."""
        self._live, self._live_problem, self._live_specs = None, f"not solved: {exc}", None
        self._render_live()

    def updating(self) -> bool:
        """Whether the KPIs show the previous settings' numbers while the edited scenario's
        solve of the settings shown is pending."""
        return self.store is not None and LIVE_JOB in self.store.jobs.pending

    def updating_parts(self) -> dict[str, bool]:
        """Which parts show the edited scenario's previous numbers while their replacement
        is solved: ``kpis``; ``rows`` (its row in the options table and in who pays; they
        follow the KPIs in the next tick); ``charts`` (the charts that draw it; those that
        follow it are rebuilt in the queue of jobs)."""
        kpis = self.updating()
        rows = kpis or self._rest_due
        pending = self.store.jobs.pending if self.store is not None else []
        return {"kpis": kpis, "rows": rows, "charts": rows or "charts" in pending}

    def _mark(self, *_events: Any) -> None:
        """The edited scenario's numbers shown (its KPIs, its rows, the charts that draw it),
        marked as updating or not: the KPI cards redrawn with or without the mark, the other
        panes' data-live-updating attribute set or removed, in one message (none when
        unchanged)."""
        parts = self.updating_parts()
        doc = served_document()
        # one message for every mark (no figure is replaced here: a hold is safe)
        with pn.io.hold(doc) if isinstance(doc, Document) else contextlib.nullcontext():
            self._kpis.show(parts["kpis"])
            mark_updating(self.table, parts["rows"])
            mark_updating(self.payers, parts["rows"])
            self._mark_charts(parts["charts"])

    def _mark_charts(self, updating: bool | None = None) -> None:
        """The charts that draw the edited scenario marked when ``updating`` (default: as
        :meth:`updating_parts` says)."""
        if updating is None:
            updating = self.updating_parts()["charts"]
        for pane, live in zip(self.charts.objects, self._chart_live, strict=False):
            mark_updating(pane, updating and live)

    def _on_settings(self) -> None:
        if getattr(self._store, "_applying_market", False) or not self._sets:
            return  # a market being loaded: _on_market solves once it is in place
        self._on_current()

    @param.depends("store.current", watch=True)
    def _on_current(self) -> None:
        key = self._live_key()
        if key is not None and key == getattr(self, "_last_live_key", None):
            return
        self._on_edit()

    def _live_key(self) -> tuple | None:
        try:
            sc = self._store.current_scenario()
        except Exception:
            return None
        return (str(self.set_select.value), scenario_key([sc]), self._start_year())

    def _solve_live(self) -> None:
        pset = self.pset
        self._live, self._live_problem = None, ""
        if pset is None:
            return
        self._last_live_key = self._live_key()
        try:
            sc = self._store.current_scenario()
        except Exception as exc:
            self._live_problem = _problem_text(exc)
            return
        self._live, self._live_problem = live_result(pset, sc, self._start_year())

    def _request_draws(self, render: bool = True) -> None:
        pset = self.pset
        n = int(self.draws_input.value or 0)
        self._draws = None
        if pset is None or not pset.scenarios or n < 2:
            if render:
                self._render()
            return
        hit = cached_draws(pset, n, DEFAULT_SEED)
        if hit is not None:
            self._draws = hit
        else:
            fut = submit_draws(pset, n, DEFAULT_SEED)
            self._future = fut
            self._doc = served_document()
            want = (str(self.set_select.value), n)

            def done(f: Future) -> None:
                self._ready(f, want)

            fut.add_done_callback(done)
        if render:
            self._render()

    def _ready(self, fut: Future, want: tuple[str, int]) -> None:
        """Called in the worker thread when draws are solved: show them on the page's loop."""

        def show() -> None:
            if fut is not self._future or want != (
                str(self.set_select.value),
                int(self.draws_input.value or 0),
            ):
                return
            self._future = None
            try:
                self._draws = fut.result()
            except Exception as exc:
                log.exception("pathway draws failed")
                self.status.object = f"<p>The draws could not be solved: {escape(str(exc))}</p>"
                return
            self._render()

        doc = self._doc
        if doc is None:  # not a served page (a notebook, a test): now
            show()
            return
        if self.store is not None and self.store.jobs.closed:
            return  # the page was closed meanwhile: nothing to show
        from panel.io.state import set_curdoc

        def on_loop() -> None:
            with set_curdoc(doc):
                show()

        try:  # thread-safe: runs on the page's event loop
            doc.add_next_tick_callback(on_loop)
        except Exception as exc:  # the document went with its session
            log.debug("draws of a closed page not shown: %s", exc)

    # -- rendering --------------------------------------------------------------------------
    def results(self) -> xr.Dataset | None:
        """The set's results shown: with draws when ready, else the central run."""
        return self._draws if self._draws is not None else self._central

    def table_frame(self) -> pd.DataFrame | None:
        """The options table shown (with the edited scenario's row), at the chosen stage."""
        ds = self.results()
        stage = self.stage_select.value
        live = table_at(self._live, stage) if self._live is not None else None
        if ds is None:
            return live
        k = self._table_key
        if k is None or k[0] is not ds or k[1] != stage:  # read once per Dataset and stage
            t = table_at(ds, stage).copy()  # (shared by the sessions: a copy gets a column)
            if "expected_disruption_loss" in ds:
                t["loss_reduction"] = ds["loss_reduction"].values
            self._table_key, self._table = (ds, stage), t
        return with_live(self._table, live)

    def _status(self) -> str:
        n = int(self.draws_input.value or 0)
        if self._future is not None and self._draws is None:
            return (
                f'<p class="tp-answer-note">Computing {n} Monte Carlo draws (seed '
                f"{DEFAULT_SEED}) in the background: the central run is shown meanwhile; "
                "probabilities are 0 or 1 until then.</p>"
            )
        if self._draws is not None:
            return (
                f'<p class="tp-answer-note">Probabilities and bands over {n} Monte Carlo draws '
                f"(seed {DEFAULT_SEED}); your scenario: central run only.</p>"
            )
        return (
            '<p class="tp-answer-note">Central run only (no draws): probabilities are 0 or 1.</p>'
        )

    def _context(self) -> dict[str, Any] | None:
        """What every part of the view reads, or None when nothing is solved."""
        ds = self.results()
        ref = ds if ds is not None else self._live
        table = self.table_frame() if ref is not None else None
        if ref is None or table is None:
            return None
        labels = {**labels_for(ref), **(labels_for(ds) if ds is not None else {})}
        currency = str(ref.attrs.get("currency") or ref["pv_budget_cost"].attrs.get("units"))
        return {
            "ds": ds,
            "ref": ref,
            "table": table,
            "year": _target_year(ref),
            "shares": [float(x) for x in ref["share"].values] if "share" in ref.coords else [],
            "labels": labels,
            "stage": str(self.stage_select.value or target_stage(ref)),
            "currency": currency or "USD",
        }

    def _set_warnings(self, ds: xr.Dataset | None, names: list[str]) -> dict[str, list[str]]:
        """Validity warnings of the set's options (kept for the Dataset shown)."""
        if ds is None:
            return {}
        k = self._warn_key
        if k is None or k[0] is not ds or k[1] != tuple(names):
            self._warn_key, self._warn = (ds, tuple(names)), warnings_at(ds, names)
        return dict(self._warn)

    def _render(self) -> None:
        """Every part of the view (a new set, stage, draws or market)."""
        self._live_gen += 1  # a deferred redraw of the edited scenario's parts is now stale
        self._rest_due = False  # (its parts are drawn here; marked while its solve is pending)
        if self.store is not None:
            self.store.jobs.cancel("charts")  # and so is a chart build in the queue
        if self.pset is None:
            return
        self.status.object = self._status()
        ctx = self._context()
        if ctx is None:
            self.sentence.object = f"<p>{escape(self._live_problem or 'Nothing to show yet.')}</p>"
            self._kpis.cards = self.kpis.object = self.table.object = ""
            self.charts.objects = []
            return
        stage = ctx["stage"]
        stage_words = next(
            (
                k.replace(" (target stage)", "")
                for k, v in self.stage_select.options.items()
                if v == stage
            ),
            stage,
        )
        info = self._store.info
        ds = ctx["ds"]
        self.sentence.object = (
            '<p class="tp-answer-sentence">'
            + escape(
                answer_sentence(
                    ctx["table"].drop(index=LIVE, errors="ignore"),
                    year=ctx["year"],
                    shares=ctx["shares"],
                    draws=int(ds.sizes.get("draw", 1) - 1) if ds is not None else 0,
                    stage_words=_lower(stage_words),
                    bloc_words=info.bloc_name if info is not None else "the group",
                    labels=ctx["labels"],
                )
            )
            + "</p>"
        )
        self._render_kpis(ctx["table"], ctx["year"], ctx["shares"])
        order = self._render_table(ctx)
        focus_opts = {ctx["labels"][n]: n for n in order if n != "baseline"}
        self._quiet = True  # the charts are drawn below
        try:
            old = self.focus.value
            self.focus.options = focus_opts
            self.focus.value = (
                old if old in focus_opts.values() else next(iter(focus_opts.values()), None)
            )
        finally:
            self._quiet = False
        self._render_charts(ctx)
        self._render_payers(ds, ctx["labels"])
        self._render_risk(ds, ctx["labels"])
        self._render_downloads(ds)
        self._mark()

    def _render_live(self) -> None:
        """The parts the edited scenario changes: its KPIs, its row, its lines, who pays."""
        ctx = self._context()
        if ctx is None:
            self._render()
            return
        self._render_kpis(ctx["table"], ctx["year"], ctx["shares"])
        if self._set_pending:
            return  # the set's run comes next and shows everything (a table of all options)
        # on a served page the KPIs reach the browser first; the rest follows in the next tick
        self._live_gen += 1
        gen = self._live_gen
        self._rest_due = True  # its row, lines and payers stay marked until redrawn

        def rest() -> None:
            self._render_live_rest(ctx, gen)

        later(rest)

    def _render_live_rest(self, ctx: dict[str, Any], gen: int) -> None:
        """The edited scenario's row, lines and payers (skipped if a newer edit came).

        Everything is formatted first and then set in one go; on a served page, when the
        charts are updated in place (no new figure), the changes go to the browser as one
        message, which it applies and draws in one frame (sent as each was set, they came
        tens of milliseconds apart and were drawn a frame each).
        """
        if gen != self._live_gen:
            return
        self._rest_due = False
        _order, table_html, note_html = self._table_parts(ctx)
        payers_html = self._payers_html(ctx["ds"], ctx["labels"])
        built, self._live_specs = self._live_specs, None
        show = None  # the charts built with the solve, for the results shown
        if self.focus.value == LIVE and built is not None:
            if built[0] is ctx["ds"] and built[1] == ctx["stage"]:
                show = built[2]
        # a figure replaced in a held message broke BokehJS ("parent_style"): held only when
        # nothing but text and data changes
        doc = served_document()
        held = isinstance(doc, Document) and (show is None or self._in_place(show))
        with pn.io.hold(doc) if held else contextlib.nullcontext():
            self.table.object = table_html
            self.table_note.object = note_html
            if self.focus.value == LIVE:
                if show is not None:
                    if self.store is not None:
                        self.store.jobs.cancel("charts")  # (older than these)
                    self._show_charts(show)
                else:
                    self._render_charts(ctx, queued=True)  # built off the event loop
            else:
                if self.store is not None:
                    self.store.jobs.cancel("charts")  # a queued build shows an older focus
                self._update_live_lines(ctx)
            self.payers.object = payers_html
            self._mark()  # the mark goes with the new numbers (charts: once they are drawn)

    def _render_table(self, ctx: dict[str, Any]) -> list[str]:
        order, self.table.object, self.table_note.object = self._table_parts(ctx)
        return order

    def _table_parts(self, ctx: dict[str, Any]) -> tuple[list[str], str, str]:
        """The options' order, the options table and its note (HTML)."""
        table, year, ds, ref = ctx["table"], ctx["year"], ctx["ds"], ctx["ref"]
        order = ranked(table, year)
        options = [n for n in order if n != LIVE]
        warn = self._set_warnings(ds, options)
        if self._live is not None:
            warn[LIVE] = list(warnings_at(self._live, ["baseline", LIVE]).get(LIVE, []))
        # a warning several of the set's options carry is said once, under the table
        warn, common = split_warnings(warn, options)
        shared = [shared_warning_text(w, ns, options, ctx["labels"]) for w, ns in common]
        unit = f"bn {ctx['currency']}"
        table_html = options_html(
            table, order, year=year, labels=ctx["labels"], warnings=warn, unit=unit, shared=shared
        )
        rate = float(ref.attrs.get("discount_rate", 0.05))
        first, last = int(ref.year.values[0]), int(ref.year.values[-1])
        note_html = (
            '<p class="tp-answer-note">Ranked by the probability of meeting each share in '
            f"{year}, then by {year} dependence; your scenario last. P: share of the draws "
            f"that solved every year with {year} dependence at or below the share (central "
            f"run: 0 or 1). Money: present values at {rate:.0%} a year to {first}, "
            f"{first}–{last}, in {unit}; budget (spending > 0, less border revenue) for the "
            "group's members and for every payer; buyers: the group's consumer surplus lost "
            "(< 0 a gain). Cost per point: budget plus buyers per point of "
            f"{year} dependence removed; not given below {MIN_POINTS:g} point. The same "
            "numbers as <code>ds.tp.pathway_options()</code>, <code>tradepolicy run</code> "
            "and the brief.</p>"
        )
        return order, table_html, note_html

    def _render_kpis(self, table: pd.DataFrame, year: int, shares: list[float]) -> None:
        if LIVE not in table.index:
            msg = self._live_problem or "switch on a measure in the sidebar"
            self._kpis.show(
                self.updating(),
                f'<p class="tp-answer-note" data-kpi="answer_dependence">'
                f"<span data-kpi-value>Your scenario: {escape(msg)}</span></p>",
            )
            return
        base = float(table.loc["baseline", f"dependence_{year}"])
        k = live_kpis(table.loc[LIVE], year, shares, base)
        ds = self.results()
        bn = f"bn {ds.attrs.get('currency') or 'USD'}" if ds is not None else "bn USD"
        cards = [
            (
                "answer_dependence",
                f"Your scenario: dependence {year}",
                k.dependence,
                f"{k.meets}; {k.detail}",
            ),
            # in the unit of the table's columns below
            ("answer_budget", "PV budget, group", k.budget, f"{bn}, spending > 0"),
            ("answer_buyers", "PV cost to buyers, group", k.buyers, f"{bn}, > 0 a cost"),
            ("answer_per_point", "Cost per point removed", k.per_point, f"{bn}, budget + buyers"),
        ]
        self._kpis.show(
            self.updating(),
            '<div class="tp-answer-kpis">'
            + "".join(
                f'<div class="tp-answer-kpi" data-kpi="{key}"><div class="t">{escape(t)}</div>'
                f'<div class="v" data-kpi-value>{escape(v)}</div><div class="d">{escape(d)}</div>'
                "</div>"
                for key, t, v, d in cards
            )
            + "</div>",
        )

    def _live_lines(self, ctx: dict[str, Any]) -> dict[str, dict[str, list]]:
        """The edited scenario's dependence and budget by year (empty without it)."""
        return live_lines(self._live, ctx["stage"])

    def _update_live_lines(self, ctx: dict[str, Any]) -> None:
        for key, data in self._live_lines(ctx).items():
            src = self._live_sources.get(key)
            if src is not None:
                update_source(src, data)

    def _render_charts(self, ctx: dict[str, Any] | None = None, queued: bool = False) -> None:
        """Draw the four charts; ``queued``: on a served page build them in the session's
        queue of jobs (a solve thread) and show them on the event loop unless a later
        render came meanwhile."""
        ctx = ctx or self._context()
        jobs = self.store.jobs if self.store is not None else None
        if ctx is None:
            if jobs is not None:
                jobs.cancel("charts")
            self._show_charts(None)
            return
        if queued and jobs is not None and served_document() is not None:
            build = functools.partial(
                build_charts, ctx, self.focus.value, self._store.info, self._live
            )
            jobs.submit("charts", build, self._show_charts, priority=2)
            return
        if jobs is not None:
            jobs.cancel("charts")  # a queued build is older than this one
        self._show_charts(build_charts(ctx, self.focus.value, self._store.info, self._live))

    def _in_place(self, specs: list[ChartSpec]) -> bool:
        """Whether :meth:`_show_charts` shows ``specs`` by updating the charts' data only."""
        return [s.look() for s in specs] == self._chart_looks and len(self.charts.objects) == len(
            specs
        )

    def _show_charts(self, specs: list[ChartSpec] | None) -> None:
        """Show the charts ``specs``: charts that look the same as those on the page (title,
        axes, glyphs, legend, reference lines; e.g. another edit shown) get only their changed
        data sources' new data (a few numbers to the browser instead of every model of four
        new figures); otherwise new figures are drawn."""
        if specs is None:
            self.charts.objects = []
            self._live_sources, self._chart_sources, self._chart_looks = {}, [], []
            self._chart_live = []
            return
        # the charts that draw the edited scenario: its lines, or every line when in focus
        self._chart_live = [
            self.focus.value == LIVE or any(s.key for s in spec.series) for spec in specs
        ]
        if self._in_place(specs):
            for spec, sources in zip(specs, self._chart_sources, strict=True):
                for series, src in zip(spec.series, sources, strict=True):
                    update_source(src, dict(series.data))
            self._mark_charts()
            return
        built = [figure_of(s) for s in specs]
        for f, _s in built:  # (the mark's look, shown while the figure has the attribute)
            f.stylesheets = [*f.stylesheets, UPDATING_FIGURE_CSS]
        self._chart_looks = [s.look() for s in specs]
        self._chart_sources = [sources for _f, sources in built]
        self._live_sources = {
            series.key: src
            for spec, (_f, sources) in zip(specs, built, strict=True)
            for series, src in zip(spec.series, sources, strict=True)
            if series.key
        }
        self.charts.objects = [pn.pane.Bokeh(f, sizing_mode="stretch_width") for f, _s in built]
        self._mark_charts()

    def _render_payers(self, ds: xr.Dataset | None, labels: dict[str, str]) -> None:
        self.payers.object = self._payers_html(ds, labels)

    def _payers_html(self, ds: xr.Dataset | None, labels: dict[str, str]) -> str:
        """Who pays: the PV of the net budget cost by payer of each option (HTML)."""
        frames = []
        if ds is not None:
            frames.append(payers_at(ds))
        if self._live is not None:
            frames.append(payers_at(self._live).loc[[LIVE]])
        if not frames:
            return ""
        pay = pd.concat(frames).fillna(0.0)
        pay = pay.drop(index="baseline", errors="ignore")
        cols = [c for c in pay.columns if (pay[c].abs() >= 0.05e9).any()]
        if not cols:
            return "<h4>Who pays</h4><p>No payer spends 0.05 bn or more.</p>"
        rows = [
            (
                "live" if n == LIVE else "",
                [labels.get(n, n), *[fmt_bn(pay.loc[n, c]) for c in cols]],
            )
            for n in pay.index
        ]
        return (
            f"<h4>Who pays: PV of the net budget cost by payer (bn "
            f"{escape(str(ds.attrs.get('currency') or 'USD') if ds is not None else 'USD')}, "
            "spending &gt; 0)</h4>"
            + _html_table(
                ["Option", *[region_table.short_name(str(c)) for c in cols]],
                rows,
                "tp-answer-table",
            )
            + '<p class="tp-answer-note">Negative: the payer\'s border revenue exceeds its '
            "spending. Central run.</p>"
        )

    def _render_risk(self, ds: xr.Dataset | None, labels: dict[str, str]) -> None:
        pset = self.pset
        if pset is None or not pset.risk:
            self.risk.object = ""
            return
        if ds is None or "expected_disruption_loss" not in ds:
            self.risk.object = (
                '<h4>Disruption risk</h4><p class="tp-answer-note">The cost of inaction and '
                "each option's expected loss avoided are read over the draws (events are drawn "
                "per draw): shown when the draws are ready.</p>"
            )
            return
        t = ds.tp.risk_table()
        currency = str(ds.attrs.get("currency") or "USD")
        scale, unit = risk_money_unit(t, currency)
        rows = []
        for n in t.index:
            r = t.loc[n]
            bc = r["benefit_cost"]
            rows.append(
                (
                    "base" if n == "baseline" else "",
                    [
                        labels.get(n, n),
                        fmt_scaled2(r["expected_loss"], scale),
                        f"{fmt_scaled2(r['loss_p05'], scale)}–{fmt_scaled2(r['loss_p95'], scale)}",
                        MISSING if n == "baseline" else fmt_scaled2(r["loss_reduction"], scale),
                        fmt_scaled2(r["pv_stockpile_cost"], scale),
                        fmt_scaled2(r["pv_budget_cost"], scale),
                        f"{bc:.2f}" if np.isfinite(bc) else MISSING,
                    ],
                )
            )
        inaction = float(t.loc["baseline", "expected_loss"]) if "baseline" in t.index else math.nan
        self.risk.object = (
            f"<h4>Disruption risk: the cost of inaction is an expected loss of "
            f"{fmt_scaled2(inaction, scale)} {unit} (PV) to the group</h4>"
            + _html_table(
                [
                    "Option",
                    f"Expected loss ({unit})",
                    "5–95%",
                    f"Loss avoided ({unit})",
                    f"PV stockpile cost ({unit})",
                    f"PV budget, group ({unit})",
                    "Benefit per unit of cost",
                ],
                rows,
                "tp-answer-table",
            )
            + '<p class="tp-answer-note">Over the draws that solved every year '
            "(<code>ds.tp.risk_table()</code>); costs and losses &gt; 0.</p>"
        )

    def _render_downloads(self, ds: xr.Dataset | None) -> None:
        if ds is None:
            self.downloads.objects = []
            return
        from tradepolicy.reports import check_format

        fmts = ["pdf", "docx"]
        try:
            check_format("pptx")
            fmts.append("pptx")
        except InputError:
            pass
        name = str(self.set_select.value)
        self.downloads.objects = [
            pn.widgets.FileDownload(
                callback=self._brief_callback(fmt),
                filename=f"{name}_brief.{fmt}",
                label=f"Pathway brief ({fmt.upper()})",
                embed=False,
                width=190,
                css_classes=[f"tp-answer-brief-{fmt}"],
            )
            for fmt in fmts
        ]

    def _brief_callback(self, fmt: str) -> Callable[[], io.BytesIO]:
        def cb() -> io.BytesIO:
            from tradepolicy.reports import render_brief

            ds = self.results()
            if ds is None:
                raise ValueError("no pathway results to brief")
            return io.BytesIO(render_brief(ds, fmt=fmt))

        return cb

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(self.set_select, self.stage_select, self.start_input, self.draws_input),
            self.header,
            self.sentence,
            self.kpis,
            self.status,
            self.table,
            self.table_note,
            self.downloads,
            self.focus,
            self.charts,
            self.payers,
            self.risk,
            sizing_mode="stretch_width",
            css_classes=["tp-answer"],
        )


__all__ = [
    "DEFAULT_DRAWS",
    "DEFAULT_SEED",
    "LIVE",
    "LIVE_LABEL",
    "LIVE_SOLVES",
    "PATHWAYS",
    "AnswerView",
    "annual_budget",
    "answer_sentence",
    "default_header",
    "first_set",
    "live_option",
    "live_solved",
    "options_at_stage",
    "pathway_files",
    "pathway_table",
    "ranked",
    "solve_central",
    "solve_live",
    "submit_draws",
    "warm_solver",
    "with_scenarios",
]
