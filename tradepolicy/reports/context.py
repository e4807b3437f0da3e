"""The brief context: every number and sentence of a brief, built once from a results Dataset.

:func:`build_context` reads only the Dataset (its variables and its provenance attributes: the
market definitions and the scenario spec as JSON), so a brief can be built from a netCDF file
alone. Every output format (HTML, PDF, DOCX) renders the same :class:`Brief`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from tradepolicy import __version__
from tradepolicy import regions as region_table
from tradepolicy.errors import InputError
from tradepolicy.measures import MEASURES
from tradepolicy.measures.base import FISCAL_ENTRIES
from tradepolicy.reports.formatting import (
    MILLION,
    DisplayUnits,
    fmt_millions,
    fmt_money,
    fmt_pct,
    fmt_points,
    fmt_range,
    fmt_share,
)
from tradepolicy.reports.names import (
    join_words,
    region_in_text,
    region_name,
    regions_in_text,
    sentence_case,
)
from tradepolicy.reports.plain import clean_strings, plain_note
from tradepolicy.results.accessor import MIN_POINTS

if TYPE_CHECKING:
    from tradepolicy.reports.pathway import PathwayBrief
    from tradepolicy.reports.summary import Summary

log = logging.getLogger(__name__)

#: variables a results Dataset must have for a brief
REQUIRED_VARS = (
    "producer_price",
    "consumer_price",
    "production",
    "consumption",
    "top_supplier",
    "top_supplier_share",
    "welfare_change",
    "converged",
    *FISCAL_ENTRIES,
    "bloc_dependency",
    "bloc_top_supplier",
    "bloc_aggregate_share",
    "meets_target",
)
#: per-scenario variables (no region dimension)
SCENARIO_VARS = (
    "converged",
    "solver_message",
    "bloc_dependency",
    "bloc_top_supplier",
    "bloc_aggregate_share",
    "meets_target",
)
#: text variables
TEXT_VARS = ("top_supplier", "solver_message", "bloc_top_supplier")
#: provenance attributes a brief reads
REQUIRED_ATTRS = ("markets", "scenario_spec")
#: dimensions of regional and of per-scenario variables
REGIONAL_DIMS = ("scenario", "commodity", "region")
SCENARIO_DIMS = ("scenario", "commodity")
#: allowed ``converged`` flags: solved, not solved, not defined for this market (stacked sets)
CONVERGED_VALUES = (1, 0, -1)
#: government revenue and rent entries, in the order findings name them (words: the field
#: table's short labels, ``ds.tp.label(name, short=True)``)
REVENUE_ENTRIES = (
    "levy_revenue",
    "undertaking_rent",
    "quota_rent_income",
    "tariff_revenue_change",
    "export_tax_revenue_change",
)
#: the mark of a result outside what the model can represent (``ds.tp.warnings``)
WARN = "\u26a0"
#: the sentence that introduces a validity warning
WARN_WORDS = "outside what the model can represent"
#: money below this (currency/yr) counts as zero in sentences
MONEY_EPS = 0.05 * MILLION
#: a percentage change below this counts as no change in sentences
PCT_EPS = 0.05
#: a share change below this (0–1) counts as no change in sentences
SHARE_EPS = 0.005
#: short region names in scenario labels (else the table name)
_SHORT = {"USA": "US", "us": "US", "GBR": "UK", "ROW": "RoW", "COD": "DRC"}
#: the short names themselves as scenario-name words (``drc_quota`` -> "DRC quota")
_SHORT_WORDS = {v.lower(): v for v in _SHORT.values()}
#: parties that are not regions of the market, as scenario-name words (joined like regions:
#: ``offtake_dod_mp_terms`` -> "Offtake on DoD–MP terms")
_PARTY_WORDS = {"dod": "DoD", "mp": "MP", "g7": "G7", "eu": "EU", "uk": "UK"}
#: other abbreviations in scenario names, written as their owners write them
_ACRONYM_WORDS = {
    "ad": "AD",  # anti-dumping
    "cfd": "CfD",
    "div": "diversification",
    "dytb": "Dy/Tb",
    "ev": "EV",
    "iea": "IEA",
    "lme": "LME",
    "ndpr": "NdPr",
    "ndfeb": "NdFeB",
    "pv": "PV",
    **{f"q{q}": f"Q{q}" for q in range(1, 5)},  # quarters: q2_2025 -> Q2 2025
}
#: two id words a reader sees as one hyphenated compound (``price_gap_subsidy`` ->
#: ``Price-gap subsidy``, the measure's own name)
_COMPOUNDS = {("price", "gap")}

#: market source notes in the order a brief lists them; SOURCE_SKIP are shown elsewhere or not
SOURCE_ORDER = (
    "data",
    "base_price",
    "production",
    "consumption",
    "flows",
    "base_tariffs",
    "seed_shares",
    "regions",
)
#: shown elsewhere (elasticities, caveats; units in the lede) or not for readers (generated)
SOURCE_SKIP = (
    "elasticities",
    "calibration_notes",
    "caveats",
    "description",
    "generated",
    "quantity_unit",
)
SOURCE_WORDS = {"data": "Data", "base_price": "Base price", "quantity_unit": "Units"}
#: longest source note shown (characters); the full text stays in the results' market JSON
SOURCE_CHARS = 240


def clip(text: str, limit: int = SOURCE_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters at a sentence or clause end, with "…"."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    for mark in (". ", "; ", ", ", " "):
        pos = cut.rfind(mark)
        if pos > limit // 2:
            return cut[: pos + (1 if mark == ". " else 0)].rstrip(" ;,") + " …"
    return cut.rstrip() + " …"


#: caveats that apply to every brief
GENERAL_CAVEATS = (
    "Results are for one market at one stage of the supply chain, one year after the "
    "measures take effect (medium run); goods further down the chain are not in the model. "
    "Zero base flows stay zero: no measure makes a region start supplying a market it did not "
    "supply in the base year.",
)


@dataclass
class Cell:
    """One table cell: its text, an optional second line (a range), a tone and a flag (the
    validity warning mark of a scenario outside what the model can represent)."""

    text: str
    sub: str = ""
    tone: str = ""  # "pos", "neg" or ""
    label: bool = False
    flag: str = ""


@dataclass
class Table:
    """A table with a caption, a header row and rows of cells."""

    key: str
    caption: str
    header: list[str]
    rows: list[list[Cell]]
    note: str = ""


@dataclass
class ChartSpec:
    """Data for one chart; :mod:`tradepolicy.reports.charts` draws it."""

    key: str
    title: str
    caption: str
    data: dict[str, Any]


@dataclass
class ScenarioBlock:
    """One scenario: its plain-words description and its headline findings."""

    number: int
    name: str
    label: str
    measures: list[str]
    solved: bool
    message: str = ""
    findings: list[tuple[str, str]] = field(default_factory=list)  # (topic, sentence)
    #: validity warnings (``ds.tp.warnings``), shown beside the numbers
    warnings: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        """``3 (US–Australia subsidy 110)``, with the warning mark when flagged."""
        return f"{self.number} ({self.label})" + (f" {WARN}" if self.warnings else "")


@dataclass
class Elasticity:
    """One elasticity row of the assumptions table."""

    kind: str
    value: str
    uncertainty: str
    basis: str


@dataclass
class MarketSection:
    """Everything about one market (one commodity) in the brief."""

    id: str
    commodity: str
    stage: str
    base_year: str
    units: DisplayUnits
    target_share: float | None
    scenarios: list[ScenarioBlock]
    glance: list[str]
    tables: list[Table]
    charts: list[ChartSpec]
    elasticities: list[Elasticity]
    elasticity_source: str
    caveats: list[str]
    sources: list[tuple[str, str]]
    calibration_id: str
    regions: list[str] = field(default_factory=list)
    #: what "dependence" means here: the bloc, its members in this market and the target
    dependence_note: str = ""
    #: what the validity warning mark means ("" when no scenario shown carries one)
    warning_note: str = ""
    #: page 1 for this market (:mod:`tradepolicy.reports.summary`)
    summary: Summary | None = None


@dataclass
class ChainSection:
    """The overview of a value chain, before its stage sections: dependence per stage (the
    target stage first), the chain's options, welfare per stage and in total, who pays
    summed over the stages, downstream competitiveness and every stage's validity warnings."""

    id: str
    name: str
    stages: list[str]
    target_stage: str
    lede: str
    glance: list[str]
    tables: list[Table]
    #: validity warnings, one line per scenario and stage
    warnings: list[str] = field(default_factory=list)


@dataclass
class Brief:
    """The whole brief, for every output format."""

    title: str
    subtitle: str
    date: str
    sections: list[MarketSection]
    provenance: list[tuple[str, str]]
    has_ranges: bool
    method_note: str
    #: the value chain's overview (None for single markets)
    chain: ChainSection | None = None
    #: page 1: one summary per market, or one for a chain (docs/briefs.md, "Page 1")
    summaries: list[Summary] = field(default_factory=list)


# -- entry point ----------------------------------------------------------------------------


def build_context(
    ds: xr.Dataset,
    scenarios: list[str] | None = None,
    *,
    today: date | None = None,
    source: str = "results",
) -> Brief | PathwayBrief:
    """Build the brief context of ``ds`` for ``scenarios`` (default: every scenario).

    The results of a pathway set (attribute ``pathway``) get a
    :class:`~tradepolicy.reports.pathway.PathwayBrief`
    (:func:`~tradepolicy.reports.pathway.build_pathway_context`).

    ``source`` names the results in error messages (the file name when read from a file).

    Raises
    ------
    InputError
        ``ds`` is not a tradepolicy result a brief can be made from, or a scenario name is not
        in it.
    """
    if isinstance(ds, xr.Dataset) and ds.attrs.get("pathway"):
        from tradepolicy.reports.pathway import build_pathway_context

        return build_pathway_context(ds, scenarios, today=today, source=source)
    if isinstance(ds, xr.Dataset) and ds.tp.is_chain:
        for st in ds.tp.stages:  # every stage as the single market it is
            view = ds.tp.stage(st)
            check_results(view.tp.point() if "draw" in view.dims else view, source)
    else:
        check_results(ds.tp.point() if "draw" in ds.dims else ds, source)
    names = select_scenarios(ds, scenarios)
    try:
        return _build_chain(ds, names, today) if ds.tp.is_chain else _build(ds, names, today)
    except InputError as exc:
        raise InputError(source, exc.problems) from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        # a tampered file that passes the checks above: say what failed, never a traceback
        log.debug("brief of %s failed", source, exc_info=True)
        raise InputError(
            source, [("", f"cannot make a brief from these results ({type(exc).__name__}: {exc})")]
        ) from None


def _market_sections(
    full: xr.Dataset, names: list[str], caveats: tuple[str, ...] = ()
) -> tuple[list[MarketSection], xr.Dataset, Ranges]:
    """One section per market of ``full`` (results with any draws), the central numbers with
    the budget cost beside them, and the ranges."""
    ranges = Ranges(full)  # the draws, read only through ds.tp.range
    ds = full.tp.point().transpose(*REGIONAL_DIMS, ...)  # the central numbers
    markets = json.loads(ds.attrs["markets"])
    specs = _specs_by_market(json.loads(ds.attrs["scenario_spec"]))
    # public spending > 0: the one budget sign of every view, computed by ds.tp
    ds = ds.assign(budget_cost=ds.tp.budget_cost())
    sections = []
    for com in [str(c) for c in ds.commodity.values]:
        sub = Frames(ds.sel(commodity=com))
        market = markets.get(com)
        if market is None:
            raise InputError("results", [("markets", f"no market definition for {com!r}")])
        spec = specs.get(com, {})
        present = [n for n in names if int(sub.scalar("converged", n)) != -1]
        sections.append(
            _section(sub, com, market, spec, present, ds, ranges, caveats or GENERAL_CAVEATS)
        )
    return sections, ds, ranges


def _build(ds: xr.Dataset, names: list[str], today: date | None) -> Brief:
    """The brief context of checked results ``ds`` for the scenarios ``names``."""
    sections, ds, ranges = _market_sections(ds, names)
    title = str(ds.attrs.get("title") or "")
    if not title or title == "tradepolicy scenario results":
        title = " and ".join(s.commodity for s in sections) + ": policy scenarios"
    subtitle = "; ".join(
        f"{s.commodity}, {s.stage} stage, base year {s.base_year}, "
        f"{len(s.regions)} regions: {join_words(region_name(r) for r in s.regions)}"
        for s in sections
    )
    provenance = _provenance(ds, ranges)
    brief = Brief(
        title=title,
        subtitle=subtitle,
        date=(today or datetime.now(UTC).date()).strftime("%-d %B %Y"),
        sections=sections,
        provenance=provenance,
        has_ranges=ranges.enabled,
        method_note=_method_note(ranges),
        summaries=[s.summary for s in sections if s.summary is not None],
    )
    if len(brief.summaries) == 1:
        brief.summaries[0].heading = ""
    return clean_strings(brief)


def check_results(ds: Any, source: str = "results") -> None:
    """Raise :class:`InputError` (naming ``source``) unless ``ds`` is a tradepolicy results
    Dataset a brief can be made from: the variables with their dimensions and numeric types,
    finite solver flags, and the provenance attributes as JSON."""
    if not isinstance(ds, xr.Dataset):
        raise InputError(source, [("", f"expected an xarray Dataset, got {type(ds).__name__}")])
    if ds.attrs.get("pathway"):
        raise InputError(
            source,
            [
                (
                    "",
                    "the results of a pathway set (by year): a brief is written from a static "
                    "scenario set's results; `tradepolicy run` prints the pathway's tables, and "
                    "ds.tp.pathway_options() / ds.tp.trajectory() give them in Python",
                )
            ],
        )
    missing = [v for v in REQUIRED_VARS if v not in ds]
    missing += [f"attribute {a}" for a in REQUIRED_ATTRS if a not in ds.attrs]
    if missing or not str(ds.attrs.get("source", "")).startswith("tradepolicy"):
        what = ", ".join(missing) if missing else "source attribute 'tradepolicy ...'"
        raise InputError(source, [("", f"not a tradepolicy result (missing {what})")])
    problems: list[tuple[str, str]] = []
    for dim in REGIONAL_DIMS:
        if dim not in ds.dims or dim not in ds.coords:
            problems.append((dim, "dimension or coordinate missing"))
        elif len(set(map(str, ds[dim].values))) != ds.sizes[dim]:
            problems.append((dim, "coordinate values are not unique"))
    if problems:
        raise InputError(source, problems)
    for var in (*REQUIRED_VARS, "solver_message"):
        if var not in ds:
            continue
        want = SCENARIO_DIMS if var in SCENARIO_VARS else REGIONAL_DIMS
        dims = ds[var].dims
        if set(dims) != set(want) or len(dims) != len(want):
            problems.append(
                (var, f"dimensions ({', '.join(map(str, dims))}), expected ({', '.join(want)})")
            )
        elif var not in TEXT_VARS and ds[var].dtype.kind not in "fiub":
            problems.append((var, f"values of type {ds[var].dtype} (expected numbers)"))
    if not any(p[0] == "converged" for p in problems):
        flags = np.asarray(ds["converged"].values, dtype=float)
        bad = ~np.isin(flags, CONVERGED_VALUES)
        if bad.any():
            shown = ", ".join(sorted({str(v) for v in flags[bad]})[:5])
            problems.append(("converged", f"values {shown} (allowed: -1, 0, 1)"))
    for attr, kinds in (("markets", (dict,)), ("scenario_spec", (dict, list))):
        try:
            value = json.loads(str(ds.attrs[attr]))
        except ValueError as exc:
            problems.append((f"attribute {attr}", f"not valid JSON ({exc})"))
            continue
        if not isinstance(value, kinds) or (
            isinstance(value, list) and not all(isinstance(v, dict) for v in value)
        ):
            what = "a JSON object" + (" or a list of objects" if list in kinds else "")
            problems.append((f"attribute {attr}", f"not {what}"))
        elif attr == "markets" and isinstance(value, dict):  # (a dict: checked above)
            for com in map(str, ds.commodity.values):
                if not isinstance(value.get(com), dict):
                    problems.append((f"attribute {attr}", f"no market definition for {com!r}"))
    if "target_share" in ds.attrs:
        try:
            t = float(ds.attrs["target_share"])
            # NaN is how results record "no per-importer target" (a set with only `[target]`)
            ok = math.isnan(t) or (math.isfinite(t) and 0.0 < t <= 1.0)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            problems.append(
                (
                    "attribute target_share",
                    f"{ds.attrs['target_share']!r} (allowed: 0 < share <= 1, or NaN: none)",
                )
            )
    if problems:
        raise InputError(source, problems)
    if "baseline" not in [str(s) for s in ds.scenario.values]:
        raise InputError(source, [("scenario", "no `baseline` scenario in the results")])


def select_scenarios(ds: xr.Dataset, scenarios: list[str] | None) -> list[str]:
    """The scenarios a brief shows (baseline excluded); unknown names are an error."""
    have = [str(s) for s in ds.scenario.values if str(s) != "baseline"]
    if scenarios is None:
        chosen = have
    else:
        wanted = [s.strip() for s in scenarios if s.strip() and s.strip() != "baseline"]
        unknown = [s for s in wanted if s not in have]
        if unknown:
            raise InputError(
                "--scenarios",
                [
                    ("", f"no scenario {u!r} in the results (allowed: {', '.join(have)})")
                    for u in unknown
                ],
            )
        chosen = list(dict.fromkeys(wanted))
    if not chosen:
        raise InputError(
            "--scenarios", [("", f"no scenario to report (allowed: {', '.join(have) or 'none'})")]
        )
    return chosen


class Frames:
    """Fast lookups into one market's results: each variable as a (scenario × region) table.

    ``xarray`` label lookups cost about a millisecond each; a brief makes a thousand of them.
    """

    def __init__(self, sub: xr.Dataset) -> None:
        self.ds = sub
        self.regions = [str(r) for r in sub.region.values]
        self._rows: dict[tuple[str, str, bool], dict[str, Any]] = {}
        self._index = {str(s): i for i, s in enumerate(sub.scenario.values)}
        self._values: dict[str, np.ndarray] = {}

    def __contains__(self, var: str) -> bool:
        return var in self.ds

    def _array(self, var: str) -> np.ndarray:
        if var not in self._values:
            self._values[var] = self.ds[var].values
        return self._values[var]

    def scalar(self, var: str, scen: str) -> Any:
        """A per-scenario value (``converged``, ``solver_message``)."""
        return self._array(var)[self._index[scen]]

    def row(self, var: str, scen: str, numeric: bool = True) -> dict[str, Any]:
        """``{region: value}`` of ``var`` in ``scen``."""
        key = (var, scen, numeric)
        if key not in self._rows:
            vals = self._array(var)[self._index[scen]]
            conv = float if numeric else str
            self._rows[key] = {r: conv(v) for r, v in zip(self.regions, vals, strict=True)}
        return self._rows[key]

    def at(self, var: str, scen: str, region: str) -> float:
        """One value of ``var``."""
        return self.row(var, scen)[region]

    def total(self, var: str, scen: str) -> float:
        """Sum of ``var`` over regions (NaN counts as 0)."""
        return float(sum(v for v in self.row(var, scen).values() if math.isfinite(v)))


# -- Monte Carlo ranges ---------------------------------------------------------------------


class Ranges:
    """5–95% Monte Carlo ranges, when the results carry draws: only through
    ``ds.tp.range`` (the brief never reads how draws are stored)."""

    def __init__(self, ds: xr.Dataset) -> None:
        self.ds = ds
        self.enabled = bool(ds.tp.has_draws)
        n = ds.attrs.get("draws")
        self.description = (f"{n} draws" if n else "yes") + (
            f", seed {ds.attrs['draw_seed']}" if "draw_seed" in ds.attrs else ""
        )

    def region(
        self, var: str, scenario: str, com: str | None, region: str | list[str]
    ) -> tuple[float, float] | None:
        """(5%, 95%) of ``var`` for one region (or summed over a list of regions), or None."""
        if not self.enabled:
            return None
        return self.ds.tp.range(var, scenario, com, region)

    def budget_cost(self, scenario: str, com: str | None) -> tuple[float, float] | None:
        """(5%, 95%) of the budget cost (public spending > 0) summed over payers, or None."""
        return self.region("budget_cost", scenario, com, "world")

    def total(self, var: str, scenario: str, com: str | None) -> tuple[float, float] | None:
        """(5%, 95%) of ``var`` summed over regions (each draw summed first), or None."""
        return self.region(var, scenario, com, "world")


# -- one market -----------------------------------------------------------------------------


class _Labels:
    """What a measure's ``describe`` sees: labels and units, plus the brief's display hooks."""

    def __init__(self, market: dict[str, Any], units: DisplayUnits) -> None:
        self.id = str(market.get("id", ""))
        self.commodity = market.get("commodity", self.id)
        self.regions = tuple(market.get("regions", ()))
        self.quantity_unit = market.get("quantity_unit", "")
        self.currency = market.get("currency", "")
        self.units = units

    @property
    def price_unit(self) -> str:
        return f"{self.currency}/{self.quantity_unit}"

    def describe_regions(self, codes: list[str]) -> str:
        return regions_in_text(codes)

    def describe_price(self, value: float) -> str:
        return self.units.price_text(value)


def _specs_by_market(spec: Any) -> dict[str, dict[str, Any]]:
    specs = spec if isinstance(spec, list) else [spec]
    return {str(s.get("market")): s for s in specs if isinstance(s, dict)}


def scenario_label(name: str, regions: tuple[str, ...] | list[str]) -> str:
    """A readable label from a scenario id: ``usa_aus_subsidy_110`` -> ``US–Australia subsidy
    110`` (region codes spelled out, underscores to spaces); adjacent regions and parties are
    joined by a dash, abbreviations keep their case (``offtake_dod_mp_terms`` -> ``Offtake on
    DoD–MP terms``, ``g7_cfd`` -> ``G7 CfD``) and compounds their hyphen
    (``price_gap_subsidy`` -> ``Price-gap subsidy``)."""
    codes = {r.lower(): r for r in regions}
    words: list[str] = []
    party_at: int | None = None  # index in ``words`` of the party group just written
    for tok in name.replace("-", "_").split("_"):
        if not tok:
            continue
        low = tok.lower()
        code = codes.get(low)
        if code is not None or low in _SHORT or low in _SHORT_WORDS or low in _PARTY_WORDS:
            word = _SHORT.get(code or low) or _SHORT_WORDS.get(low)
            if word is None and code is None:
                word = _PARTY_WORDS[low]
            word = word or region_name(code or tok)
            if party_at is not None:
                words[-1] += "–" + word
            else:
                words.append(word)
                party_at = len(words) - 1
            continue
        if low == "terms" and party_at:  # "offtake <parties> terms": on their terms
            words.insert(party_at, "on")
        if words and party_at is None and (words[-1].lower(), low) in _COMPOUNDS:
            words[-1] += "-" + tok
            continue
        words.append(_ACRONYM_WORDS.get(low, tok))
        party_at = None
    text = " ".join(words)
    return sentence_case(text)


def option_labels(ds: xr.Dataset, names: Any = None) -> dict[str, str]:
    """Each scenario of ``ds`` (or each of ``names``) in words (:func:`scenario_label`), as
    the CLI, the brief and the dashboard name them: the baseline of a pathway set is "Doing
    nothing", of a one-year set "Baseline"."""
    regions = [str(r) for r in ds.region.values] if "region" in ds.dims else []
    out = {
        str(n): scenario_label(str(n), regions)
        for n in (ds.scenario.values if names is None else names)
    }
    if "baseline" in out:
        out["baseline"] = "Doing nothing" if ds.tp.is_pathway else "Baseline"
    return out


def _describe(measure: dict[str, Any], labels: _Labels) -> str:
    cls = MEASURES.get(str(measure.get("type")))
    try:
        if cls is None:
            raise ValueError(measure.get("type"))
        return cls.model_validate(measure).describe(labels)
    except Exception:  # a spec from another version: show its fields as they are
        fields = ", ".join(f"{k} = {v}" for k, v in measure.items() if k != "type")
        return f"{measure.get('type', 'measure')} ({fields})"


def _base_prices(market: dict[str, Any], sub: Frames) -> list[float]:
    """The market's base prices by region, as the dashboard reads them from the market file
    (``[base_price]`` with its ``default``); the baseline producer prices if not recorded."""
    table = market.get("base_price")
    regions = market.get("regions") or sub.regions
    if isinstance(table, dict) and table:
        try:
            default = float(table.get("default", math.nan))
            return [float(table.get(r, default)) for r in regions]
        except (TypeError, ValueError):
            pass
    return list(sub.row("producer_price", "baseline").values())


@dataclass
class _Bloc:
    """The bloc figure of one market, what every view calls "dependence" (``ds.tp.options``):
    the options table, the bloc's name and members, and the aggregates beside it."""

    options: pd.DataFrame
    name: str
    members: list[str]
    aggregates: list[str]
    target: float | None

    @property
    def unattributed(self) -> str:
        """Who the unattributed share is, inside a sentence (``the rest of the world``)."""
        return regions_in_text(self.aggregates) if self.aggregates else "aggregate regions"

    @property
    def unattributed_short(self) -> str:
        """The same in a table cell (``Rest of world``)."""
        if not self.aggregates:
            return "Aggregates"
        return ", ".join(region_table.short_name(r) for r in self.aggregates)

    def row(self, scen: str) -> pd.Series:
        return self.options.loc[scen]

    def moves(self, scen: str) -> bool:
        """Whether the option lowers dependence by at least the accessor's smallest move."""
        pts = float(self.row(scen)["points_removed"])
        return math.isfinite(pts) and pts >= MIN_POINTS


def _bloc(ds: xr.Dataset, com: str | None, sub: Frames) -> _Bloc:
    options = ds.tp.options(com)
    members = [str(r) for r in options.attrs.get("bloc", [])]
    group = str(ds.attrs.get("target_group") or "")
    desc = str(ds.attrs.get("target_description") or "")
    if group:
        # the group's words without the list in brackets: the members here are listed instead
        name = (desc or region_table.GROUPS.get(group, group)).split(" (")[0]
    else:
        name = "the bloc"
    aggregates = [r for r in sub.regions if region_table.is_aggregate(r) and r not in members]
    target = float(options.attrs.get("target", math.nan))
    return _Bloc(options, name, members, aggregates, target if math.isfinite(target) else None)


def _dependence_note(bloc: _Bloc) -> str:
    """What "dependence" means in this brief (the lede)."""
    text = (
        f"Dependence: the share of the total use of {bloc.name} (here "
        f"{regions_in_text(bloc.members) or 'no region'}) from its largest single supplier "
        f"outside the bloc; {bloc.unattributed} is shown beside it as unattributed, never as "
        "one supplier"
    )
    if bloc.target is not None:
        text += f"; target: at most {_target_text(bloc.target)}"
    return text


def _section(
    sub: Frames,
    com: str,
    market: dict[str, Any],
    spec: dict[str, Any],
    names: list[str],
    ds: xr.Dataset,
    ranges: Ranges,
    general_caveats: tuple[str, ...] = GENERAL_CAVEATS,
) -> MarketSection:
    units = DisplayUnits.for_market(
        str(market.get("currency", "")),
        str(market.get("quantity_unit", "")),
        _base_prices(market, sub),
    )
    labels = _Labels(market, units)
    bloc = _bloc(ds, com, sub)
    spec_scen = {s.get("name"): s for s in spec.get("scenario", [])}
    regions = list(labels.regions) or [str(r) for r in sub.regions]
    words = {v: ds.tp.label(v, short=True).lower() for v in REVENUE_ENTRIES}
    blocks: list[ScenarioBlock] = []
    for i, n in enumerate(names, start=1):
        measures = [_describe(m, labels) for m in spec_scen.get(n, {}).get("measure", [])]
        conv = int(sub.scalar("converged", n))
        msg = str(sub.scalar("solver_message", n)) if "solver_message" in sub else ""
        block = ScenarioBlock(
            number=i,
            name=n,
            label=scenario_label(n, regions),
            measures=measures or ["No measures (same as the baseline)."],
            solved=conv == 1,
            message=msg if conv != 1 else "",
        )
        if block.solved:
            block.warnings = [sentence_case(w) for w in ds.tp.warnings(n, com)]
            block.findings = _findings(sub, n, com, units, bloc, ranges, words)
            same = next((b for b in blocks if b.solved and b.findings == block.findings), None)
            if same is not None and len(block.findings) > 1:
                block.findings = [
                    (
                        "Outcome",
                        f"Same as scenario {same.number} ({same.label}) to the precision "
                        "shown: the provisions that differ do not bind.",
                    )
                ]
        blocks.append(block)
    solved = [b for b in blocks if b.solved]
    elast, elast_note = _elasticities(market)
    types = {m.get("type") for n in names for m in spec_scen.get(n, {}).get("measure", [])}
    # each measure declares its caveat (Measure.caveat): one registered from a notebook too
    caveats = [MEASURES[t].caveat for t in MEASURES if t in types and MEASURES[t].caveat]
    caveats = list(dict.fromkeys(caveats)) + list(general_caveats)
    # the notes are the modellers' words: plain words only (no tags, no project files)
    notes = {
        str(k): plain_note(" ".join(str(v).split()))
        for k, v in (market.get("sources") or {}).items()
    }
    if notes.get("caveats"):
        caveats.insert(0, f"About this market: {clip(notes['caveats'], SOURCE_CHARS * 3 // 2)}")
    order = [k for k in SOURCE_ORDER if k in notes]
    order += [k for k in notes if k not in order and k not in SOURCE_SKIP]
    sources = [(SOURCE_WORDS.get(k, k.replace("_", " ")), clip(notes[k])) for k in order]
    cal = str(market.get("calibration_id") or "") or _calibration_for(ds, com)
    from tradepolicy.reports.summary import build_summary, lower_first

    commodity = str(market.get("commodity", com))
    summary = build_summary(
        ds,
        com,
        blocks,
        units,
        bloc,
        commodity=lower_first(commodity),
        stage_words=f"at the {market['stage']} stage" if market.get("stage") else "",
        year=str(market.get("base_year", "")) or str(ds.attrs.get("target_year", "")),
        heading=str(market.get("commodity", com)),
    )
    return MarketSection(
        id=com,
        commodity=str(market.get("commodity", com)),
        stage=str(market.get("stage", "")),
        base_year=str(market.get("base_year", "")),
        units=units,
        target_share=bloc.target,
        scenarios=blocks,
        glance=_glance(sub, solved, units, bloc),
        tables=_tables(sub, solved, units, bloc, com, ranges, ds),
        charts=_charts(sub, solved, units, bloc, ds),
        elasticities=elast,
        elasticity_source=elast_note,
        caveats=caveats,
        sources=sources,
        calibration_id=cal,
        regions=regions,
        dependence_note=_dependence_note(bloc),
        warning_note=(
            f"{WARN} marks a scenario with results {WARN_WORDS} (its warning is under its heading)"
            if any(b.warnings for b in blocks)
            else ""
        ),
        summary=summary,
    )


# -- findings -------------------------------------------------------------------------------


def _regional(sub: Frames, var: str, scen: str) -> dict[str, float]:
    return sub.row(var, scen)


def _pct(sub: Frames, var: str, scen: str) -> dict[str, float]:
    cur, base = _regional(sub, var, scen), _regional(sub, var, "baseline")
    out = {}
    for r, b in base.items():
        if math.isfinite(b) and b != 0 and math.isfinite(cur[r]):
            out[r] = 100.0 * (cur[r] - b) / b
    return out


def _pct_range(
    ranges: Ranges, sub: Frames, var: str, scen: str, com: str, region: str
) -> tuple[float, float] | None:
    rr = ranges.region(var, scen, com, region)
    base = sub.at(var, "baseline", region)
    if rr is None or not math.isfinite(base) or base == 0:
        return None
    return (100.0 * (rr[0] - base) / base, 100.0 * (rr[1] - base) / base)


def _unsigned(x: float) -> str:
    """Money without a plus sign (a cost or a revenue named in words); negatives keep −."""
    return fmt_money(x, signed=False)


def _range_words(rr: tuple[float, float] | None, fmt) -> str:
    return "" if rr is None else f" (range {fmt_range(fmt(rr[0]), fmt(rr[1]))})"


def _price_sentence(
    sub: Frames,
    scen: str,
    var: str,
    who: str,
    units: DisplayUnits,
) -> str | None:
    """Where ``var`` moves most: regions with the largest move (ties grouped)."""
    pct = _pct(sub, var, scen)
    moved = {r: p for r, p in pct.items() if abs(p) >= PCT_EPS}
    if not moved:
        return None
    top = max(moved, key=lambda r: abs(moved[r]))
    key = (fmt_pct(moved[top]), units.price(sub.at(var, scen, top)))
    group = [r for r in moved if (fmt_pct(moved[r]), units.price(sub.at(var, scen, r))) == key]
    base = units.price(sub.at(var, "baseline", top))
    # the price ranges are in Tables 1 and 2: the sentence stays short
    return (
        f"{who} {regions_in_text(group)} {key[0]} ({units.symbol}{base} → {key[1]}/"
        f"{units.price_per})"
    )


def _holders(values: dict[str, float], sign: int, limit: int = 3) -> str:
    """``the United States (94.3) and Australia (11.1)`` for the largest amounts of ``sign``."""
    items = [(r, v) for r, v in values.items() if sign * v >= MONEY_EPS]
    items.sort(key=lambda kv: -abs(kv[1]))
    parts = [f"{region_in_text(r)} ({fmt_money(abs(v), signed=False)})" for r, v in items[:limit]]
    if len(items) > limit:
        parts.append(f"{len(items) - limit} more")
    return join_words(parts)


def _findings(
    sub: Frames,
    scen: str,
    com: str,
    units: DisplayUnits,
    bloc: _Bloc,
    ranges: Ranges,
    words: dict[str, str],
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    money = units.money_text
    # prices
    lines = [
        s
        for s in (
            _price_sentence(sub, scen, "consumer_price", "consumer price in", units),
            _price_sentence(sub, scen, "producer_price", "producer price in", units),
        )
        if s
    ]
    wel = _regional(sub, "welfare_change", scen)
    if not lines and not any(abs(v) >= MONEY_EPS for v in wel.values()):
        return [
            (
                "No change",
                "The measures do not bind: prices, trade and welfare stay at the baseline.",
            )
        ]
    out.append(("Largest price moves", sentence_case("; ".join(lines)) + "." if lines else "none."))
    # gains and losses
    gains = [(r, v) for r, v in wel.items() if v >= MONEY_EPS]
    losses = [(r, v) for r, v in wel.items() if v <= -MONEY_EPS]
    gains.sort(key=lambda kv: -kv[1])
    losses.sort(key=lambda kv: kv[1])
    world = sum(v for v in wel.values() if math.isfinite(v))
    parts = []
    if gains:
        parts.append(
            "gains for " + join_words(f"{region_in_text(r)} {fmt_money(v)}" for r, v in gains[:3])
        )
    if losses:
        parts.append(
            "losses for " + join_words(f"{region_in_text(r)} {fmt_money(v)}" for r, v in losses[:3])
        )
    wr = ranges.total("welfare_change", scen, com)
    world_txt = f"world {fmt_money(world)}{_range_words(wr, fmt_money)}"
    text = sentence_case("; ".join([*parts, world_txt])) + f" ({units.money_unit})."
    out.append(("Who gains, who loses", text))
    # budget cost (public spending > 0, ds.tp.budget_cost) and who pays
    cost = _regional(sub, "budget_cost", scen)
    total = sum(v for v in cost.values() if math.isfinite(v))
    cr = ranges.budget_cost(scen, com)
    if abs(total) < MONEY_EPS and not any(abs(v) >= MONEY_EPS for v in cost.values()):
        text = ""  # no subsidy, offtake or stockpile money (the options table shows the zero)
    elif total > 0:
        text = (
            f"budget cost {money(total)}{_range_words(cr, _unsigned)}, paid by {_holders(cost, 1)}"
        )
        if any(v <= -MONEY_EPS for v in cost.values()):
            text += f"; budget revenue to {_holders(cost, -1)}"
    else:
        rr = None if cr is None else (-cr[1], -cr[0])  # revenue > 0
        text = f"net budget revenue {money(total)}{_range_words(rr, _unsigned)}, to "
        text += _holders(cost, -1)
        if any(v >= MONEY_EPS for v in cost.values()):
            text += f"; budget cost to {_holders(cost, 1)}"
    # rents and revenue
    rent_parts = [text] if text else []
    for var in REVENUE_ENTRIES:
        if var not in sub:
            continue
        vals = _regional(sub, var, scen)
        tot = sum(v for v in vals.values() if math.isfinite(v))
        if not any(abs(v) >= MONEY_EPS for v in vals.values()):
            continue
        sign = 1 if tot >= 0 else -1
        rent_parts.append(
            f"{words[var]} {units.money_text(tot)}, {'to' if tot >= 0 else 'lost by'} "
            f"{_holders(vals, sign)}"
        )
    if rent_parts:
        out.append(("Public money", sentence_case("; ".join(rent_parts)) + "."))
    out.append(("Dependence", _dependence_sentence(bloc, scen)))
    return out


def _dependence_sentence(bloc: _Bloc, scen: str) -> str:
    """The bloc figure base → scenario, the unattributed share beside it, the target."""
    base, cur = bloc.row("baseline"), bloc.row(scen)
    if not math.isfinite(float(cur["dependence"])):
        return "Not defined: the bloc uses none of this material."
    sup_b = str(base["largest_outside_supplier"])
    sup = str(cur["largest_outside_supplier"])
    if sup == sup_b:
        text = (
            f"{region_in_text(sup)} {fmt_share(base['dependence'])} → "
            f"{fmt_share(cur['dependence'])} of the bloc's use"
        )
    else:
        text = (
            f"{region_in_text(sup_b)} {fmt_share(base['dependence'])} at the baseline → "
            f"{region_in_text(sup) if sup else 'no outside supplier'} "
            f"{fmt_share(cur['dependence'])} of the bloc's use"
        )
    text += f" ({bloc.unattributed} {fmt_share(cur['unattributed_share'])}, unattributed)"
    if bloc.target is not None:
        met = str(cur["meets_target"]) == "yes"
        text += f"; {'meets' if met else 'above'} the {_target_text(bloc.target)} target"
    return sentence_case(text) + "."


def _target_text(target: float) -> str:
    return f"{100 * target:.3g}%"


def _glance(
    sub: Frames, blocks: list[ScenarioBlock], units: DisplayUnits, bloc: _Bloc
) -> list[str]:
    """Headline comparisons across scenarios (dependence and the target, cost per point,
    largest price rise, welfare, budget)."""
    if len(blocks) < 2:
        return []
    out = []
    base = bloc.row("baseline")
    if math.isfinite(float(base["dependence"])):
        sup = region_in_text(str(base["largest_outside_supplier"]))
        text = (
            f"Dependence of {bloc.name} on its largest outside supplier is "
            f"{fmt_share(base['dependence'])} ({sup}) "
            f"at the baseline, with {fmt_share(base['unattributed_share'])} unattributed "
            f"({bloc.unattributed})"
        )
        movers = [b for b in blocks if bloc.moves(b.name)]
        if movers:
            best = max(movers, key=lambda b: float(bloc.row(b.name)["points_removed"]))
            r = bloc.row(best.name)
            text += (
                f"; it falls most under scenario {best.ref}: to {fmt_share(r['dependence'])} "
                f"({fmt_points(r['points_removed'])} points removed)"
            )
        else:
            text += "; no scenario lowers it"
        out.append(text + ".")
        if bloc.target is not None:
            tgt = _target_text(bloc.target)
            meets = [b for b in blocks if str(bloc.row(b.name)["meets_target"]) == "yes"]
            base_meets = str(base["meets_target"]) == "yes"
            if len(meets) == len(blocks):
                line = f"Every scenario meets the {tgt} target"
                line += ", as the baseline does." if base_meets else "."
            elif not meets:
                line = f"No scenario meets the {tgt} target"
                line += "." if not base_meets else " (the baseline does)."
            else:
                many, rest = len(meets) > 1, len(blocks) - len(meets)
                line = (
                    f"Scenario{'s' if many else ''} {join_words(b.ref for b in meets)} "
                    f"meet{'' if many else 's'} the {tgt} target; the other {rest} "
                    f"do{'es' if rest == 1 else ''} not."
                )
            out.append(line)
    per_point = [
        b
        for b in blocks
        if math.isfinite(float(bloc.row(b.name)["budget_cost_per_point"]))
        and float(bloc.row(b.name)["budget_cost"]) >= MONEY_EPS / MILLION
    ]
    if per_point:
        cheap = min(per_point, key=lambda b: float(bloc.row(b.name)["budget_cost_per_point"]))
        out.append(
            f"The lowest budget cost per point of dependence removed is under scenario "
            f"{cheap.ref}: {fmt_millions(bloc.row(cheap.name)['budget_cost_per_point'], False)} "
            f"{units.money_unit} per point."
        )

    largest: tuple[ScenarioBlock, str, float] | None = None
    for b in blocks:
        for r, p in _pct(sub, "consumer_price", b.name).items():
            if largest is None or abs(p) > abs(largest[2]):
                largest = (b, r, p)
    if largest and abs(largest[2]) >= PCT_EPS:
        b, r, p = largest
        out.append(
            f"The largest consumer price move is in {region_in_text(r)} under scenario "
            f"{b.ref}: {fmt_pct(p)}."
        )
    world = {b.name: sub.total("welfare_change", b.name) for b in blocks}
    lo = min(blocks, key=lambda b: world[b.name])
    hi = max(blocks, key=lambda b: world[b.name])
    if world[lo.name] <= -MONEY_EPS:
        out.append(
            f"World welfare falls most under scenario {lo.ref}: "
            f"{fmt_money(world[lo.name])} {units.money_unit}."
        )
    if world[hi.name] >= MONEY_EPS:
        out.append(
            f"World welfare rises most under scenario {hi.ref}: "
            f"{fmt_money(world[hi.name])} {units.money_unit}."
        )
    cost = {b.name: sub.total("budget_cost", b.name) for b in blocks}
    costly = max(blocks, key=lambda b: cost[b.name])
    if cost[costly.name] >= MONEY_EPS:
        out.append(
            f"The largest budget cost is under scenario {costly.ref}: "
            f"{units.money_text(cost[costly.name])}."
        )
    return out


# -- tables ---------------------------------------------------------------------------------


def _tone(x: float, eps: float) -> str:
    if not math.isfinite(x) or abs(x) < eps:
        return ""
    return "pos" if x > 0 else "neg"


def _row_label(b: ScenarioBlock) -> Cell:
    return Cell(f"{b.number}  {b.label}", label=True, flag=WARN if b.warnings else "")


def _regions_with(sub: Frames, var: str) -> list[str]:
    return [r for r, v in sub.row(var, "baseline").items() if v > 0]


def _money_range(
    ds: xr.Dataset, rr: tuple[float, float] | None, com: str | None, sign: float = 1.0
) -> tuple[float, float] | None:
    """A range in currency/yr as display money (``ds.tp.money``), times ``sign``."""
    if rr is None:
        return None
    lo, hi = sorted(sign * ds.tp.money(x, com) for x in rr)
    return lo, hi


def _tables(
    sub: Frames,
    blocks: list[ScenarioBlock],
    units: DisplayUnits,
    bloc: _Bloc,
    com: str,
    ranges: Ranges,
    ds: xr.Dataset,
) -> list[Table]:
    tables = []
    for var, who, size in (
        ("consumer_price", "Consumer", "consumption"),
        ("producer_price", "Producer", "production"),
    ):
        regions = _regions_with(sub, size)
        rows = [
            [Cell("Baseline price", label=True)]
            + [Cell(units.price(sub.at(var, "baseline", r))) for r in regions]
        ]
        for b in blocks:
            pct = _pct(sub, var, b.name)
            row = [_row_label(b)]
            for r in regions:
                p = pct.get(r, math.nan)
                rr = _pct_range(ranges, sub, var, b.name, com, r)
                rng = "" if rr is None else fmt_range(fmt_pct(rr[0]), fmt_pct(rr[1]))
                row.append(Cell(fmt_pct(p), sub=rng, tone=_tone(p, PCT_EPS)))
            rows.append(row)
        tables.append(
            Table(
                key=var,
                caption=(
                    f"{who} prices: baseline in {units.price_unit}, scenarios as % change "
                    "from the baseline"
                ),
                header=["Scenario", *(region_name(r) for r in regions)],
                rows=rows,
            )
        )
    # welfare by region
    wel_regions = [
        str(r)
        for r in sub.regions
        if any(abs(sub.at("welfare_change", b.name, r)) >= MONEY_EPS for b in blocks)
    ]
    rows = []
    for b in blocks:
        row = [_row_label(b)]
        for r in wel_regions:
            v = sub.at("welfare_change", b.name, r)
            rr = ranges.region("welfare_change", b.name, com, r)
            rng = "" if rr is None else fmt_range(fmt_money(rr[0]), fmt_money(rr[1]))
            row.append(Cell(fmt_money(v), sub=rng, tone=_tone(v, MONEY_EPS)))
        w = sub.total("welfare_change", b.name)
        wr = ranges.total("welfare_change", b.name, com)
        rng = "" if wr is None else fmt_range(fmt_money(wr[0]), fmt_money(wr[1]))
        row.append(Cell(fmt_money(w), sub=rng, tone=_tone(w, MONEY_EPS)))
        rows.append(row)
    tables.append(
        Table(
            key="welfare",
            caption=(
                f"Change in national welfare by region, {units.money_unit} (consumers, producers "
                "and government together)"
            ),
            header=["Scenario", *(region_name(r) for r in wel_regions), "World"],
            rows=rows,
            note=(
                "Regions whose welfare changes by less than 0.05 million a year in every "
                "scenario shown are left out."
                if len(wel_regions) < len(sub.regions)
                else ""
            ),
        )
    )
    tables.append(_options_table(blocks, units, bloc, com, ranges, ds))
    tables.append(_who_pays_table(blocks, units, com, ds))
    return tables


def _options_table(
    blocks: list[ScenarioBlock],
    units: DisplayUnits,
    bloc: _Bloc,
    com: str | None,
    ranges: Ranges,
    ds: xr.Dataset,
) -> Table:
    """Options × dependence, who pays and cost per point (``ds.tp.options``), as the CLI."""
    eps = MONEY_EPS / MILLION  # display money (millions)

    def dep_cell(r: pd.Series) -> Cell:
        sup = str(r["largest_outside_supplier"])
        text = fmt_share(r["dependence"]) + (f" {region_table.short_name(sup)}" if sup else "")
        agg = f"{bloc.unattributed_short} {fmt_share(r['unattributed_share'])} unattributed"
        return Cell(text, sub=agg)

    def met_cell(r: pd.Series) -> Cell:
        met = str(r["meets_target"])
        return Cell(met or "–", tone="neg" if met == "no" else "")

    base = bloc.row("baseline")
    header = ["Scenario", "Dependence (largest outside supplier)"]
    if bloc.target is not None:
        header.append(f"Meets {_target_text(bloc.target)} target")
    header += [
        "Points removed",
        "Budget cost (spending > 0)",
        "Cost to bloc buyers",
        "Foreign producers",
        "World welfare",
        "Cost per point removed: budget / buyers",
    ]
    rows = [
        [Cell("Baseline", label=True), dep_cell(base)]
        + ([met_cell(base)] if bloc.target is not None else [])
        + [Cell("–") for _ in range(6)]
    ]
    for b in blocks:
        r = bloc.row(b.name)
        pts = float(r["points_removed"])
        cost, buyers = float(r["budget_cost"]), float(r["cost_to_bloc_buyers"])
        foreign, world = float(r["foreign_producers"]), float(r["world_welfare"])
        cr = _money_range(ds, ranges.budget_cost(b.name, com), com)
        br = _money_range(  # cost to buyers = minus their consumer surplus change
            ds, ranges.region("consumer_surplus_change", b.name, com, bloc.members), com, -1.0
        )
        wr = _money_range(ds, ranges.total("welfare_change", b.name, com), com)

        def rng(rr: tuple[float, float] | None, signed: bool) -> str:
            if rr is None:
                return ""
            return fmt_range(fmt_millions(rr[0], signed), fmt_millions(rr[1], signed))

        row = [_row_label(b), dep_cell(r)]
        if bloc.target is not None:
            row.append(met_cell(r))
        row += [
            Cell(fmt_points(pts), tone=_tone(pts, MIN_POINTS)),
            Cell(fmt_millions(cost, False), sub=rng(cr, False), tone=_tone(-cost, eps)),
            Cell(fmt_millions(buyers, False), sub=rng(br, False), tone=_tone(-buyers, eps)),
            Cell(fmt_millions(foreign), tone=_tone(foreign, eps)),
            Cell(fmt_millions(world), sub=rng(wr, True), tone=_tone(world, eps)),
        ]
        if r["note"]:  # ds.tp.options says why there is no cost per point
            row.append(Cell(str(r["note"])))
        else:
            budget_pp = fmt_millions(r["budget_cost_per_point"], False)
            row.append(Cell(f"{budget_pp} / {fmt_millions(r['buyer_cost_per_point'], False)}"))
        rows.append(row)
    members = ", ".join(region_table.short_name(m) for m in bloc.members)
    return Table(
        key="options",
        caption=(
            f"Options: dependence of {bloc.name} ({members}), who pays and cost per point of "
            f"dependence removed; money in {units.money_unit}"
        ),
        header=header,
        rows=rows,
        note=(
            "Points removed: percentage points of dependence removed against the baseline "
            "(negative: it rises). Budget cost: subsidies, offtakes and stockpiles net of their "
            "revenue. Cost to bloc buyers: the fall in their consumer surplus. Cost per point: "
            f"only where an option lowers dependence by at least {MIN_POINTS:g} point."
        ),
    )


#: who-pays columns: (``ds.tp.who_pays`` column, heading, signed)
WHO_PAYS_COLUMNS = (
    ("budget_cost", "Budget cost (spending > 0)", False),
    ("cost_to_buyers", "Cost to buyers (> 0 = cost)", False),
    ("producers", "Producers (gain > 0)", True),
    ("revenue_and_rents", "Revenue and rents (income > 0)", True),
)
#: regions named per who-pays cell (the largest amounts)
WHO_PAYS_LIMIT = 2


def _who_pays_table(
    blocks: list[ScenarioBlock], units: DisplayUnits, com: str | None, ds: xr.Dataset
) -> Table:
    """Who pays and who gains in each scenario, by region (``ds.tp.who_pays``)."""
    eps = MONEY_EPS / MILLION
    rows = []
    for b in blocks:
        t = ds.tp.who_pays(b.name, com)
        row = [_row_label(b)]
        for col, _, signed in WHO_PAYS_COLUMNS:
            items = [(str(r), float(v)) for r, v in t[col].items() if abs(float(v)) >= eps]
            items.sort(key=lambda kv: -abs(kv[1]))
            parts = [
                f"{region_table.short_name(r)} {fmt_millions(v, signed)}"
                for r, v in items[:WHO_PAYS_LIMIT]
            ]
            if len(items) > WHO_PAYS_LIMIT:
                parts.append("…")
            row.append(Cell("; ".join(parts) or "0", label=True))
        rows.append(row)
    return Table(
        key="who_pays",
        caption=f"Who pays and who gains, by region, {units.money_unit}",
        header=["Scenario", *(h for _, h, _ in WHO_PAYS_COLUMNS)],
        rows=rows,
        note=(
            f"The {WHO_PAYS_LIMIT} largest amounts in each column (… more regions; less than "
            "0.05 million a year left out); national welfare by region is in the table above. "
            "Revenue and rents: tariff, levy and export-tax revenue and rents, to the region "
            "holding them."
        ),
    )


# -- charts ---------------------------------------------------------------------------------


def _charts(
    sub: Frames, blocks: list[ScenarioBlock], units: DisplayUnits, bloc: _Bloc, ds: xr.Dataset
) -> list[ChartSpec]:
    if not blocks:
        return []
    labels = [f"{b.number}  {b.label}" for b in blocks]
    groups = ds.tp.welfare_groups()
    parts = {
        label: [float(sum(sub.total(v, b.name) for v in vs if v in sub)) / MILLION for b in blocks]
        for label, _, vs in groups.values()
    }
    shown = {k for k, v in parts.items() if any(abs(x) >= MONEY_EPS / MILLION for x in v)}
    groups = {g: e for g, e in groups.items() if e[0] in shown}
    parts = {k: v for k, v in parts.items() if k in shown}
    colours = {label: colour for label, colour, _ in groups.values()}
    world = [sub.total("welfare_change", b.name) / MILLION for b in blocks]
    what = "; ".join(
        f"{label}: " + ", ".join(ds.tp.label(v, short=True).lower() for v in vs)
        for label, _, vs in groups.values()
        if len(vs) > 1
    )
    charts = [
        ChartSpec(
            key="welfare",
            title=f"World welfare change and its parts, {units.money_unit}",
            caption=(
                "Bars: changes for each group of welfare parts, summed over all regions (a budget "
                f"cost counts as a loss; {what}); diamonds: the world total."
            ),
            data={"labels": labels, "parts": parts, "total": world, "colours": colours},
        )
    ]
    base = bloc.row("baseline")
    if math.isfinite(float(base["dependence"])):
        rows = [bloc.row(b.name) for b in blocks]
        sups = [str(r["largest_outside_supplier"]) for r in rows]
        charts.append(
            ChartSpec(
                key="dependency",
                title=f"Dependence of {bloc.name} on its largest outside supplier",
                caption=(
                    "Bars: the bloc's share of use from its largest outside supplier (colour: "
                    f"the supplier), then the unattributed share of {bloc.unattributed} (light "
                    "grey); grey line: the baseline"
                    + ("; red dashed line: the target." if bloc.target is not None else ".")
                ),
                data={
                    "labels": labels,
                    "shares": [float(r["dependence"]) for r in rows],
                    "unattributed": [float(r["unattributed_share"]) for r in rows],
                    "suppliers": [region_table.short_name(s) if s else "" for s in sups],
                    "colours": [region_table.colour(s) if s else "#999999" for s in sups],
                    "baseline": float(base["dependence"]),
                    "target": bloc.target,
                },
            )
        )
    return charts


# -- assumptions and provenance -------------------------------------------------------------


_KIND_WORDS = {
    "supply": "Supply (price elasticity of output)",
    "demand": "Demand (price elasticity, absolute value)",
    "substitution": "Substitution between origins",
}


def _elasticities(market: dict[str, Any]) -> tuple[list[Elasticity], str]:
    el = market.get("elasticities") or {}
    se = market.get("elasticity_se") or {}
    basis = market.get("elasticity_basis") or {}
    rows = []
    for kind in ("supply", "demand", "substitution"):
        table = el.get(kind) or {}
        for key, value in table.items():
            s = (se.get(kind) or {}).get(key)
            who = "all regions" if key == "default" else region_name(key)
            if key == "default" and len(table) > 1:
                who = "other regions"
            rows.append(
                Elasticity(
                    kind=f"{_KIND_WORDS[kind]}: {who}",
                    value=f"{float(value):g}",
                    uncertainty=f"s.e. {float(s):.2g}" if s else "not recorded",
                    basis=plain_note(str((basis.get(kind) or {}).get(key) or "see source")),
                )
            )
    srcs = market.get("sources") or {}
    note = clip(plain_note(" ".join(str(srcs.get("elasticities", "")).split())), SOURCE_CHARS * 2)
    cal = plain_note(" ".join(str(srcs.get("calibration_notes", "")).split()))
    if cal:
        note += f" Calibration notes: {clip(cal, SOURCE_CHARS)}"
    return rows, note or "No source recorded in the market definition."


def _calibration_for(ds: xr.Dataset, com: str) -> str:
    for part in str(ds.attrs.get("calibration_id") or "").split(";"):
        if part.startswith(f"{com}@"):
            return part
    return "not recorded"


def _short_hashes(text: str) -> str:
    """``id:<64 hex>`` -> ``id:<first 16 hex>…`` (the full hash is in the results file)."""
    return ";".join(
        f"{part.split(':', 1)[0]}:{part.split(':', 1)[1][:16]}…" if ":" in part else part
        for part in text.split(";")
    )


def _provenance(ds: xr.Dataset, ranges: Ranges) -> list[tuple[str, str]]:
    """The brief's provenance rows: software, dates, formulation, data ids, draws, command."""
    created = str(ds.attrs.get("date_created", ""))
    source = str(ds.attrs.get("source", "not recorded"))
    ours = f"tradepolicy {__version__}"
    provenance = [
        ("Software", source if source == ours else f"results by {source}, brief by {ours}"),
        ("Results created", _date_text(created) if created else "not recorded"),
        ("Model formulation", str(ds.attrs.get("formulation", "not recorded"))),
        ("Calibration id", _calibration_id(ds)),
        ("Market data hash", _short_hashes(str(ds.attrs.get("data_hash") or "not recorded"))),
    ]
    if ranges.enabled:
        provenance.append(("Monte Carlo draws", ranges.description))
    history = str(ds.attrs.get("history") or "")
    if history:
        # "<timestamp>: <command>" lines; the timestamp is "Results created"
        command = re.sub(r"^\S+: ", "", history.strip().splitlines()[-1])
        provenance.append(("Command", clip(command, 160)))
    return provenance


def _calibration_id(ds: xr.Dataset) -> str:
    return str(ds.attrs.get("calibration_id") or "not recorded")


def _date_text(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).strftime("%-d %B %Y, %H:%M UTC")
    except ValueError:
        return stamp


def _method_note(ranges: Ranges) -> str:
    text = (
        "Partial-equilibrium model of one market, goods differentiated by origin (Armington); "
        "scenarios are compared with a baseline that reproduces the base-year data. Welfare: "
        "consumer and producer surplus plus government revenue, rents and public spending."
    )
    if ranges.enabled:
        text += " Ranges: 5th–95th percentiles over Monte Carlo draws of the elasticities."
    else:
        text += " No Monte Carlo draws: point estimates without ranges."
    return text


# -- value chains ---------------------------------------------------------------------------

#: the general caveat of a chain brief (instead of the one-market caveat)
CHAIN_CAVEATS = (
    "Results are for a value chain of linked stage markets, one year after the measures take "
    "effect (medium run): each stage's makers buy their inputs from the stages above them in "
    "fixed proportions (input coefficients), so a measure at one stage reaches the others; goods "
    "made from the last stage are not in the model. Zero base flows stay zero: no measure makes "
    "a region start supplying a stage it did not supply in the base year.",
)


def _build_chain(full: xr.Dataset, names: list[str], today: date | None) -> Brief:
    """The brief of a value chain: its overview, then one section per stage (the target stage
    first), each built from the stage as a single market (``ds.tp.stage``)."""
    tp_ = full.tp
    order, goal = tp_.stage_order(), str(tp_.target_stage)
    sections: list[MarketSection] = []
    for st in order:
        view = tp_.stage(st)
        if st != goal:  # the target is read at the target stage only
            view.attrs = {k: v for k, v in view.attrs.items() if k != "target_max_share"}
        secs, _, _ = _market_sections(view, names, CHAIN_CAVEATS)
        sec = secs[0]
        sec.commodity = tp_.stage_name(st) + (" (target stage)" if st == goal else "")
        sections.append(sec)
    _chain_measures(full, sections)
    base = sections[0]
    units, regions = base.units, [str(r) for r in full.region.values]
    blocks = [
        ScenarioBlock(
            number=i,
            name=n,
            label=scenario_label(n, regions),
            measures=[],
            solved=int(full.tp.point()["converged"].sel(scenario=n).min()) == 1,
            warnings=[sentence_case(w) for w in tp_.warnings(n)],
        )
        for i, n in enumerate(names, start=1)
    ]
    solved = [b for b in blocks if b.solved]
    ranges = Ranges(full)
    point = tp_.point()
    bloc = _bloc(full, None, Frames(point.sel(stage=goal).rename(stage="commodity")))
    chain = _chain_section(full, solved, blocks, units, bloc, ranges)
    summary = _chain_summary(full, blocks, units, bloc, chain, base.base_year)
    title = str(full.attrs.get("title") or "")
    if not title or title == "tradepolicy scenario results":
        title = f"{chain.name}: policy scenarios"
    subtitle = (
        f"Value chain of {len(order)} stages: {' → '.join(chain.stages)}; base year "
        f"{base.base_year}, {len(regions)} regions: {join_words(region_name(r) for r in regions)}"
    )
    provenance = _provenance(full, ranges)
    method = _method_note(ranges).replace(
        "Partial-equilibrium model of one market,",
        f"Partial-equilibrium model of a value chain of {len(order)} stage markets linked by "
        "input coefficients and solved as one system; at each stage",
    )
    brief = Brief(
        title=title,
        subtitle=subtitle,
        date=(today or datetime.now(UTC).date()).strftime("%-d %B %Y"),
        sections=sections,
        provenance=provenance,
        has_ranges=ranges.enabled,
        method_note=method,
        chain=chain,
        summaries=[summary],
    )
    return clean_strings(brief)


def _chain_summary(
    full: xr.Dataset,
    blocks: list[ScenarioBlock],
    units: DisplayUnits,
    bloc: _Bloc,
    chain: ChainSection,
    year: str,
) -> Summary:
    """Page 1 of a chain's brief: the answer at the target stage, every stage beside it (the
    per-stage dependence table moves from the overview to page 1)."""
    from tradepolicy.reports.summary import build_summary, lower_first

    tp_ = full.tp
    goal = str(tp_.target_stage)
    dep = tp_.dependence_by_stage()
    stages = next((t for t in chain.tables if t.key == "stage_dependence"), None)
    if stages is not None:
        chain.tables.remove(stages)
    parts = []
    for st in tp_.stage_order():
        r = dep.loc[(st, "baseline")]
        d = float(r["dependence"])
        if not math.isfinite(d):
            continue
        sup = str(r["largest_outside_supplier"])
        parts.append(
            f"{tp_.stage_name(st)} {fmt_share(d)}"
            + (f" ({region_table.short_name(sup)})" if sup else "")
            + (" (target stage)" if st == goal else "")
        )
    line = (
        f"Per stage with no new measures, in {year}: {'; '.join(parts)}; each option per stage "
        "is in the table below."
        if parts
        else ""
    )
    name = tp_.stage_name(goal)
    return build_summary(
        full,
        None,
        blocks,
        units,
        bloc,
        commodity=lower_first(name),
        year=year,
        stage_words="read at the target stage of the chain (every stage is in the table below)",
        stages=stages,
        stage_line=line,
    )


def _chain_measures(full: xr.Dataset, sections: list[MarketSection]) -> None:
    """Each stage section's scenarios list every measure of the scenario: those acting on the
    stage first, then those at other stages ("At the NdPr oxide stage: ..."), since a measure
    anywhere in the chain moves every stage."""
    tp_ = full.tp
    chain = json.loads(full.attrs["markets"]).get(str(full.attrs.get("chain", "")), {})
    markets = chain.get("stage_markets") or {}
    spec = json.loads(full.attrs["scenario_spec"])
    spec = spec[0] if isinstance(spec, list) and spec else spec
    by_name = {sc.get("name"): sc for sc in spec.get("scenario", []) if isinstance(sc, dict)}
    labels = {sec.id: _Labels(markets.get(sec.id) or {"id": sec.id}, sec.units) for sec in sections}
    only = tp_.stages[0] if len(tp_.stages) == 1 else None
    for sec in sections:
        for b in sec.scenarios:
            measures = [
                m for m in by_name.get(b.name, {}).get("measure", []) if isinstance(m, dict)
            ]
            here = [
                _describe(m, labels[sec.id]) for m in measures if (m.get("stage") or only) == sec.id
            ]
            there = [
                f"At the {tp_.stage_name(at)} stage: {_describe(m, labels[at])}"
                for m in measures
                if (at := m.get("stage") or only) != sec.id and at in labels
            ]
            b.measures = here + there or ["No measures (same as the baseline)."]


def _chain_section(
    full: xr.Dataset,
    solved: list[ScenarioBlock],
    blocks: list[ScenarioBlock],
    units: DisplayUnits,
    bloc: _Bloc,
    ranges: Ranges,
) -> ChainSection:
    """The chain's overview: lede, headline findings in the target's terms and its tables."""
    tp_ = full.tp
    goal = str(tp_.target_stage)
    dep = tp_.dependence_by_stage()
    links = tp_.links()
    link_words = join_words(
        f"{float(k['coefficient']):g} t of {tp_.stage_name(k['input'])} per t of "
        f"{tp_.stage_name(k['output'])}"
        for k in links
    )
    target = f" (at most {_target_text(bloc.target)})" if bloc.target is not None else ""
    lede = (
        f"{len(blocks)} scenario{'s' if len(blocks) != 1 else ''} compared with the baseline on "
        f"a value chain of {len(tp_.stages)} linked stages, upstream first: "
        f"{' → '.join(tp_.stage_name(st) for st in tp_.stages)}. Makers buy their inputs in "
        f"fixed proportions ({link_words or 'no links'}). The target{target} is read at the "
        f"{tp_.stage_name(goal)} stage, shown first. Money in {units.money_unit}; a region's "
        "welfare is the sum over stages (consumers on final demand, makers on their value "
        "added, so no input is counted twice). Each stage has its own section below."
    )
    tables = [
        _stage_dependence_table(blocks, dep, bloc, full),
        _options_table(solved, units, bloc, None, ranges, full),
        _stage_welfare_table(solved, full, units, ranges),
        _who_pays_table(solved, units, None, full),
        *_competitiveness_tables(solved, full),
    ]
    opts, who = tables[1], tables[3]
    stage_words = f"{tp_.stage_name(goal)} stage"
    opts.caption = opts.caption.replace(
        "Options: dependence of",
        f"Options for the whole chain: dependence at the {stage_words} of",
    ).replace("; money in", "; money summed over the stages, in")
    who.caption = who.caption.replace("by region,", "by region, summed over the stages,")
    warnings = [
        f"Scenario {b.number} ({b.label}): {w}" for b in blocks if b.solved for w in b.warnings
    ]
    return ChainSection(
        id=str(full.attrs.get("chain", "")),
        name=str(full.attrs.get("title") or full.attrs.get("chain", "")),
        stages=[tp_.stage_name(st) for st in tp_.stages],
        target_stage=tp_.stage_name(goal),
        lede=lede,
        glance=_chain_glance(solved, dep, bloc, full),
        tables=tables,
        warnings=warnings,
    )


def _chain_glance(
    blocks: list[ScenarioBlock], dep: pd.DataFrame, bloc: _Bloc, full: xr.Dataset
) -> list[str]:
    """Headline findings in the target's terms: dependence at the target stage and
    upstream, the scenario that lowers it most, the target, dependence moved between stages,
    members' output downstream, and world welfare over the chain."""
    tp_ = full.tp
    goal = str(tp_.target_stage)
    out: list[str] = []
    b0 = dep.loc[(goal, "baseline")]
    if not math.isfinite(float(b0["dependence"])):
        return out
    tgt = _target_text(bloc.target) if bloc.target is not None else ""
    others = [st for st in tp_.stage_order() if st != goal]
    upstream = join_words(
        f"{fmt_share(dep.loc[(st, 'baseline')]['dependence'])} for {tp_.stage_name(st)}"
        for st in others
        if math.isfinite(float(dep.loc[(st, "baseline")]["dependence"]))
    )
    text = (
        f"At the {tp_.stage_name(goal)} stage, where the target is read, dependence of "
        f"{bloc.name} on its largest outside supplier "
        f"({region_in_text(str(b0['largest_outside_supplier']))}) is "
        f"{fmt_share(b0['dependence'])} at the baseline"
    )
    if tgt:
        text += (
            ", "
            + ("within" if str(b0["meets_target"]) == "yes" else "above")
            + (f" the {tgt} target")
        )
    if upstream:
        text += f"; at the other stages it is {upstream}"
    out.append(text + ".")
    if blocks:
        pts = {b.name: float(dep.loc[(goal, b.name)]["points_removed"]) for b in blocks}
        movers = [b for b in blocks if math.isfinite(pts[b.name]) and pts[b.name] >= MIN_POINTS]
        if movers:
            best = max(movers, key=lambda b: pts[b.name])
            r = dep.loc[(goal, best.name)]
            line = (
                f"It falls most under scenario {best.ref}: to {fmt_share(r['dependence'])} "
                f"({fmt_points(pts[best.name])} points removed)"
            )
        else:
            line = f"No scenario lowers it at the {tp_.stage_name(goal)} stage"
        if tgt:
            meets = [b for b in blocks if str(dep.loc[(goal, b.name)]["meets_target"]) == "yes"]
            if not meets:
                line += f"; no scenario meets the {tgt} target there"
            else:
                line += f"; the {tgt} target is met under scenario" + (
                    f"s {join_words(b.ref for b in meets)}"
                    if len(meets) > 1
                    else f" {meets[0].ref}"
                )
        out.append(line + ".")
    order = tp_.stages
    for b in blocks:  # leakage: dependence falls upstream but rises where the target is read
        moves = {st: float(dep.loc[(st, b.name)]["points_removed"]) for st in order}
        down = [st for st in order if math.isfinite(moves[st]) and moves[st] >= MIN_POINTS]
        if not down or not moves[goal] <= -MIN_POINTS:
            continue

        def words(sts: list[str], name: str = b.name) -> str:
            return join_words(
                f"{tp_.stage_name(st)} ({fmt_share(dep.loc[(st, 'baseline')]['dependence'])} → "
                f"{fmt_share(dep.loc[(st, name)]['dependence'])})"
                for st in sts
            )

        out.append(
            f"Scenario {b.ref} lowers dependence at {words(down)} but raises it at "
            f"{words([goal])}, where the target is read: the measure moves dependence along "
            "the chain rather than removing it."
        )
    comp = tp_.competitiveness()
    if goal in set(comp.index.get_level_values("stage")) and blocks:
        part = comp.loc[goal]
        pct = {b.name: float(part.loc[b.name]["bloc_output_pct"]) for b in blocks}
        ok = [b for b in blocks if math.isfinite(pct[b.name])]
        lo = min(ok, key=lambda b: pct[b.name], default=None)
        hi = max(ok, key=lambda b: pct[b.name], default=None)
        members = f"members' output of {tp_.stage_name(goal)}"
        parts = []
        if lo is not None and pct[lo.name] <= -PCT_EPS:
            va = float(part.loc[lo.name]["bloc_value_added_pct"])
            parts.append(
                f"{members} falls most under scenario {lo.ref}: {fmt_pct(pct[lo.name])} "
                f"(their value added per tonne {fmt_pct(va)})"
            )
        if hi is not None and pct[hi.name] >= PCT_EPS:
            parts.append(
                f"{'it' if parts else members} rises most under scenario {hi.ref}: "
                f"{fmt_pct(pct[hi.name])}"
            )
        if parts:
            out.append(sentence_case("; ".join(parts)) + ".")
    if blocks:
        world = {
            b.name: float(full.tp.point()["welfare_change"].sel(scenario=b.name).sum())
            for b in blocks
        }
        lo_w = min(blocks, key=lambda b: world[b.name])
        if world[lo_w.name] <= -MONEY_EPS:
            out.append(
                f"World welfare over the whole chain falls most under scenario {lo_w.ref}: "
                f"{fmt_money(world[lo_w.name])} {full.tp.money_unit()}."
            )
    return out


def _stage_dependence_table(
    blocks: list[ScenarioBlock], dep: pd.DataFrame, bloc: _Bloc, full: xr.Dataset
) -> Table:
    """Dependence per stage (columns, the target stage first) and scenario (rows)."""
    tp_ = full.tp
    order, goal = tp_.stage_order(), str(tp_.target_stage)
    tgt = f", target at most {_target_text(bloc.target)}" if bloc.target is not None else ""
    header = ["Scenario"] + [
        tp_.stage_name(st) + (f" (target stage{tgt})" if st == goal else "") for st in order
    ]

    def cell(st: str, scen: str) -> Cell:
        r = dep.loc[(st, scen)]
        if not bool(r["solved"]):
            return Cell("not solved")
        d = float(r["dependence"])
        if not math.isfinite(d):
            return Cell("–")
        sup = str(r["largest_outside_supplier"])
        text = fmt_share(d) + (f" {region_table.short_name(sup)}" if sup else "")
        sub = []
        if scen != "baseline":
            pts = float(r["points_removed"])
            sub.append(f"{fmt_points(pts)} points")
        if st == goal and r["meets_target"]:
            sub.append("meets" if r["meets_target"] == "yes" else "above target")
        agg = float(r["unattributed_share"])
        if math.isfinite(agg) and agg >= SHARE_EPS:
            sub.append(f"{bloc.unattributed_short} {fmt_share(agg)} unattributed")
        pts = float(r["points_removed"]) if scen != "baseline" else 0.0
        return Cell(text, sub="; ".join(sub), tone=_tone(pts, MIN_POINTS))

    rows = [[Cell("Baseline", label=True)] + [cell(st, "baseline") for st in order]]
    for b in blocks:
        rows.append([_row_label(b)] + [cell(st, b.name) for st in order])
    members = ", ".join(region_table.short_name(m) for m in bloc.members)
    return Table(
        key="stage_dependence",
        caption=(
            f"Dependence of {bloc.name} ({members}) on its largest outside supplier, per stage "
            "of the chain (the target stage first)"
        ),
        header=header,
        rows=rows,
        note=(
            "Share of the bloc's total use of each stage (own production included) from its "
            "largest single supplier outside the bloc. Points: percentage points removed "
            "against the baseline (negative: dependence rises)."
        ),
    )


def _stage_welfare_table(
    blocks: list[ScenarioBlock], full: xr.Dataset, units: DisplayUnits, ranges: Ranges
) -> Table:
    """World welfare change per stage and over the whole chain, per scenario."""
    tp_ = full.tp
    wel = tp_.point()["welfare_change"]
    rows = []
    for b in blocks:
        row = [_row_label(b)]
        for st in tp_.stages:
            v = float(wel.sel(scenario=b.name, stage=st).sum())
            row.append(Cell(fmt_money(v), tone=_tone(v, MONEY_EPS)))
        total = float(wel.sel(scenario=b.name).sum())
        wr = _money_range(full, ranges.total("welfare_change", b.name, None), None)
        rng = "" if wr is None else fmt_range(fmt_millions(wr[0]), fmt_millions(wr[1]))
        row.append(Cell(fmt_money(total), sub=rng, tone=_tone(total, MONEY_EPS)))
        rows.append(row)
    return Table(
        key="stage_welfare",
        caption=f"Change in world welfare per stage and over the whole chain, {units.money_unit}",
        header=["Scenario", *(tp_.stage_name(st) for st in tp_.stages), "Whole chain"],
        rows=rows,
        note=(
            "Each stage books its final buyers' consumer surplus, its makers' producer surplus "
            "on value added, and the revenue, rents and public money of the measures acting on "
            "it; the stages add up to the whole chain. Each stage's section gives the welfare "
            "by region."
        ),
    )


def _competitiveness_tables(blocks: list[ScenarioBlock], full: xr.Dataset) -> list[Table]:
    """Per downstream stage: the bloc's makers against makers outside it."""
    tp_ = full.tp
    comp = tp_.competitiveness()
    tables = []
    markets = json.loads(full.attrs["markets"]).get(str(full.attrs.get("chain", "")), {})
    for st in dict.fromkeys(comp.index.get_level_values("stage")):
        part = comp.loc[st]
        market = (markets.get("stage_markets") or {}).get(st, {})
        point = tp_.point().sel(stage=st)
        units = DisplayUnits.for_market(
            str(market.get("currency", "")),
            str(market.get("quantity_unit", "")),
            [
                float(v)
                for v in point["producer_price"].sel(scenario="baseline").values
                if np.isfinite(v)
            ],
        )
        qty = str(part.attrs.get("units", {}).get("bloc_output") or "") or str(
            comp.attrs["units"]["bloc_output"]
        )

        def row(label: Cell, r: pd.Series, base: bool, units: DisplayUnits = units) -> list[Cell]:
            if not bool(r["solved"]):
                return [label, Cell("not solved"), *[Cell("–") for _ in range(5)]]
            out_pct = float(r["bloc_output_pct"])
            va_pct = float(r["bloc_value_added_pct"])
            o_pct = float(r["outside_value_added_pct"])
            return [
                label,
                Cell(
                    f"{float(r['bloc_output']):,.0f}",
                    sub="" if base else fmt_pct(out_pct),
                    tone="" if base else _tone(out_pct, PCT_EPS),
                ),
                Cell(units.price(float(r["bloc_input_cost"]))),
                Cell(
                    units.price(float(r["bloc_value_added"])),
                    sub="" if base else fmt_pct(va_pct),
                    tone="" if base else _tone(va_pct, PCT_EPS),
                ),
                Cell(fmt_share(float(r["bloc_margin"]))),
                Cell("–" if base else fmt_pct(o_pct)),
                Cell(fmt_share(float(r["bloc_import_share"]))),
            ]

        rows = [row(Cell("Baseline", label=True), part.loc["baseline"], True)]
        rows += [row(_row_label(b), part.loc[b.name], False) for b in blocks]
        members = ", ".join(region_table.short_name(m) for m in comp.attrs["bloc"])
        tables.append(
            Table(
                key="competitiveness",
                caption=(
                    f"Downstream competitiveness at the {tp_.stage_name(st)} stage: makers in "
                    f"the bloc ({members}) against makers outside it; prices in "
                    f"{units.price_unit}"
                ),
                header=[
                    "Scenario",
                    f"Members' output ({qty.replace('/year', '/yr')}; % change)",
                    "Members' input cost",
                    "Members' value added (% change)",
                    "Members' margin",
                    "Value added outside the bloc, % change",
                    "Bloc import share",
                ],
                rows=rows,
                note=(
                    "Value added: the producer price less the unit cost of inputs, weighted by "
                    "output over the makers; margin: value added as a share of the producer "
                    "price; import share: the bloc's use from outside it (aggregates included)."
                ),
            )
        )
    return tables
