"""Sweep specs: scenarios × parameter grids × draws as named axes (``docs/sweeps.md``).

A sweep spec is a TOML file naming a scenario set (or a market and its scenarios), Monte
Carlo ``draws`` with their ``seed`` and ``[[grid]]`` axes. An axis is a named dimension with
values for one measure field (a floor level, a subsidy's strike) or one elasticity of the
market (set, or scaled, for all or some regions). The rows of the sweep are the Cartesian
product scenario × grid points × draws; :class:`SweepPlan` turns a row block into real
:class:`~tradepolicy.market.Market` and :class:`~tradepolicy.scenario.Scenario` objects.
"""

from __future__ import annotations

import hashlib
import json
import math
import typing
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from tradepolicy import _paths, api
from tradepolicy._files import exists, resolve_reference
from tradepolicy._validation import (
    MAX_NAME,
    MAX_TEXT,
    Float,
    did_you_mean,
    problems_from_validation_error,
    read_toml,
)
from tradepolicy.errors import InputError, InputWarning
from tradepolicy.market import Market, MarketSpec
from tradepolicy.measures import Measure
from tradepolicy.results.builder import result_fields
from tradepolicy.scenario import Scenario, ScenarioSet, load_scenarios, scenario_set_from_dict

__all__ = ["DEFAULT_VARIABLES", "GridAxis", "SweepPlan", "SweepSpec", "load_sweep"]

#: the lean variable set written when a spec gives no ``variables``
DEFAULT_VARIABLES = (
    "producer_price",
    "consumer_price",
    "bloc_dependency",
    "meets_target",
    "welfare_change",
    "levy_revenue",
    "subsidy_cost",
    "converged",
)
#: variables that carry a ``draw`` dimension in :func:`tradepolicy.solve` with draws
DRAW_VARIABLES = (*api.DRAW_VARIABLES, "converged")
#: dimension names a grid axis may not take
RESERVED = ("scenario", "draw", "region", "exporter", "importer", "commodity", "block")
#: the most values one axis may list, and the most rows a sweep may have
MAX_VALUES = 1_000_000
MAX_ROWS = 10_000_000_000
#: at most this many measure-field combinations of one scenario are checked before solving
MAX_CHECKED = 20_000

AxisName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
ScenarioName = Annotated[str, StringConstraints(max_length=100)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME, pattern=r"^[^\x00]*$")]


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class GridAxis(BaseModel):
    """One ``[[grid]]`` axis: a named dimension and its values.

    Either a measure field (``measure`` and ``field``, optionally ``scenario``) or an
    elasticity of the market (``elasticity`` and ``mode``, optionally ``regions``).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: AxisName
    values: Annotated[list[Float], Field(min_length=1, max_length=MAX_VALUES)]
    scenario: Annotated[list[ScenarioName] | None, BeforeValidator(_listify)] = None
    measure: Annotated[StrictInt, Field(ge=0)] | Annotated[str, Field(max_length=64)] | None = None
    field: Annotated[str, Field(max_length=64)] | None = None
    elasticity: Literal["supply", "demand", "substitution"] | None = None
    regions: Annotated[list[str] | None, BeforeValidator(_listify), Field(min_length=1)] = None
    mode: Literal["set", "scale"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> GridAxis:
        if (self.field is None) == (self.elasticity is None):
            raise ValueError(
                "give either `measure` and `field` (a measure field) or `elasticity` and "
                "`mode` (an elasticity of the market)"
            )
        if self.field is not None:
            if self.measure is None:
                raise ValueError(
                    "`measure` is required with `field`: a measure type (e.g. 'price_floor') "
                    "or the measure's index in its scenario (0, 1, ...)"
                )
            if self.regions is not None or self.mode is not None:
                raise ValueError("`regions` and `mode` belong to elasticity axes, not `field`")
        else:
            if self.scenario is not None or self.measure is not None:
                raise ValueError(
                    "`scenario` and `measure` belong to measure axes, not `elasticity`"
                )
            if self.mode is None:
                raise ValueError(
                    "`mode` is required with `elasticity` (allowed: 'set' the value, 'scale' "
                    "multiply the market's value)"
                )
        seen: set[float] = set()
        for v in self.values:
            if v in seen:
                raise ValueError(f"values: {v!r} is listed twice (each grid point once)")
            seen.add(v)
        return self

    @property
    def is_market(self) -> bool:
        """Whether the axis changes the market (an elasticity) rather than a measure."""
        return self.elasticity is not None


class SweepSpec(BaseModel):
    """Schema of a sweep spec file (``docs/sweeps.md``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    title: Annotated[str, StringConstraints(max_length=MAX_NAME)] = ""
    description: Annotated[str, StringConstraints(max_length=MAX_TEXT)] = ""
    scenarios: Ref | None = None
    only: Annotated[list[ScenarioName] | None, BeforeValidator(_listify), Field(min_length=1)] = (
        None
    )
    include_baseline: bool = False
    draws: Annotated[StrictInt, Field(ge=0, le=10_000)] = 0
    seed: Annotated[StrictInt, Field(ge=0, lt=2**63)] | None = None
    variables: Annotated[list[str] | None, Field(min_length=1, max_length=200)] = None
    grid: Annotated[list[GridAxis], Field(max_length=32)] = Field(default_factory=list)
    # an inline scenario set, as in a scenario file (checked by its own schema)
    market: Any = None
    target_share: Any = None
    target: Any = None
    scenario: Any = None

    @model_validator(mode="after")
    def _source(self) -> SweepSpec:
        if (self.scenarios is None) == (self.market is None):
            raise ValueError(
                "give either `scenarios` (a shipped scenario set or a path) or `market` with "
                "[[scenario]] entries"
            )
        if self.scenarios is not None:
            extra = [k for k in ("target_share", "target", "scenario") if getattr(self, k)]
            if extra:
                raise ValueError(
                    f"{', '.join(extra)}: belong to an inline scenario set (with `market`), "
                    "not to `scenarios`"
                )
        if self.draws == 1:
            raise ValueError("draws must be 0 (none) or at least 2")
        if self.draws and self.seed is None:
            raise ValueError(
                "draws need a `seed` (a whole number ≥ 0) so that the sweep is reproducible "
                "and can resume"
            )
        return self


@dataclass
class Axis:
    """A validated grid axis: its values and what it changes."""

    spec: GridAxis
    values: np.ndarray
    #: measure axes: scenario index (in the set) -> measure index
    targets: dict[int, int] = field(default_factory=dict)
    units: str = "1"
    long_name: str = ""

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class SweepPlan:
    """A validated sweep: the base scenario set, the axes and the variables to keep.

    Rows are the Cartesian product of :attr:`dims` (``scenario``, the grid axes in spec order,
    ``draw``). A block is a box of rows: all draws, one point of every elasticity axis, and
    runs of the other axes (:meth:`chunks`), so each block solves with one market.
    """

    source: str
    spec: SweepSpec
    raw: dict[str, Any]
    sset: ScenarioSet
    axes: list[Axis]
    variables: list[str]

    # -- shape ------------------------------------------------------------------------------
    @property
    def scenario_names(self) -> list[str]:
        """The ``scenario`` coordinate (``baseline`` first when included)."""
        return (["baseline"] if self.spec.include_baseline else []) + self.sset.names

    @property
    def n_draws(self) -> int:
        """Length of the ``draw`` dimension: the central estimate (draw 0) and the draws."""
        return self.spec.draws + 1

    @property
    def dims(self) -> tuple[str, ...]:
        """The dimensions of the sweep's results: scenario, the grid's axes, draw."""
        return ("scenario", *(a.name for a in self.axes), "draw")

    @property
    def shape(self) -> tuple[int, ...]:
        """The length of each of :attr:`dims`."""
        return (len(self.scenario_names), *(len(a.values) for a in self.axes), self.n_draws)

    @property
    def rows(self) -> int:
        """The number of solves: the product of :attr:`shape`."""
        return math.prod(self.shape)

    def chunks(self, block_size: int) -> tuple[int, ...]:
        """Return the chunk (= block) shape.

        All draws, one point of the elasticity axes, the rest filled innermost first up to
        ``block_size`` rows.
        """
        if block_size < self.n_draws:
            raise InputError(
                "block_size",
                [
                    (
                        "",
                        f"{block_size} is smaller than draws + 1 = {self.n_draws} (a block "
                        "solves all draws of its rows together); give at least that",
                    )
                ],
            )
        out = [self.n_draws]
        left = block_size // self.n_draws
        for name, n in zip(reversed(self.dims[:-1]), reversed(self.shape[:-1]), strict=True):
            axis = self.axis(name)
            c = 1 if (axis is not None and axis.spec.is_market) else max(1, min(n, left))
            out.append(c)
            left = max(1, left // c)
        return tuple(reversed(out))

    def axis(self, name: str) -> Axis | None:
        """Return the grid axis ``name`` (None if there is none)."""
        for a in self.axes:
            if a.name == name:
                return a
        return None

    @cached_property
    def spec_hash(self) -> str:
        """SHA-256 of what the sweep computes: the spec, the scenarios and the market data."""
        blob = {
            "spec": self.spec.model_dump(mode="json", exclude={"market", "scenario"}),
            "scenarios": self.sset.to_dict(),
            "market": self.sset.market.data_hash,
        }
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()

    # -- building a block's inputs ----------------------------------------------------------
    def market_at(self, point: dict[str, float]) -> Market:
        """Return the market with the elasticity axes set to ``point`` (axis name -> value)."""
        return market_variant(
            self.sset.market, [(a.spec, point[a.name]) for a in self.axes if a.spec.is_market]
        )

    def scenario_at(self, s: int, point: dict[str, float], name: str) -> Scenario:
        """Scenario ``s`` of the set (index in :attr:`sset`) with the measure axes at ``point``."""
        return scenario_variant(self.sset, self.axes, s, point, name)


def scenario_variant(
    sset: ScenarioSet, axes: list[Axis], s: int, point: dict[str, float], name: str
) -> Scenario:
    """Scenario ``s`` of ``sset`` renamed ``name``, with the measure axes set to ``point``."""
    base = sset.scenarios[s]
    measures = list(base.measures)
    for a in axes:
        if a.spec.is_market or s not in a.targets:
            continue
        j = a.targets[s]
        measures[j] = _with_field(measures[j], str(a.spec.field), point[a.name])
    return Scenario(name=name, description=base.description, measures=measures)


def _with_field(m: Measure, name: str, value: float) -> Measure:
    return type(m).model_validate({**m.model_dump(), name: value})


def market_variant(market: Market, changes: list[tuple[GridAxis, float]]) -> Market:
    """``market`` with elasticities set or scaled (relative standard errors kept).

    A change for some regions that a ``default`` entry covers gives those regions their own
    entry (and so their own draw), with the default's relative standard error.
    """
    if not changes:
        return market
    data = market.spec.model_dump()
    for axis, value in changes:
        kind = str(axis.elasticity)
        table: dict[str, float] = data["elasticities"][kind]
        ses: dict[str, float] = data["elasticity_se"][kind]
        keys = list(table) if axis.regions is None else list(axis.regions)
        for key in keys:
            src = key if key in table else "default"
            old = float(table[src])
            new = value if axis.mode == "set" else old * value
            table[key] = new
            if src in ses:
                ses[key] = ses[src] * new / old if old > 0 else 0.0
    spec = MarketSpec.model_validate(data)
    return Market(spec=spec, path=market.path, flows=market.flows, flow_sources=market.flow_sources)


# -- loading and validation -----------------------------------------------------------------
def load_sweep(spec_or_path: str | Path | dict[str, Any], base: Path | None = None) -> SweepPlan:
    """Read and validate a sweep spec (a TOML path, or its contents as a dict).

    Nothing is solved or written before the whole spec is valid.

    Parameters
    ----------
    spec_or_path : str, Path or dict
        A sweep spec TOML file, or its contents.
    base : Path, optional
        For a dict: the path its relative references (scenario file, market) resolve
        against, and errors name.

    Returns
    -------
    SweepPlan
        The validated plan: the scenario set, the grid and the draws.

    Raises
    ------
    InputError
        The file is missing or a field is invalid (the error names the file, the field and
        what is allowed), or the market is a value chain.
    """
    if isinstance(spec_or_path, dict):
        raw = spec_or_path
        path = base if base is not None else Path.cwd() / "<sweep>.toml"
        source = str(base) if base is not None else "<sweep>"
    else:
        path = Path(spec_or_path)
        if not exists(path):
            raise InputError(str(path), [("", "no such sweep spec file")])
        raw = read_toml(path)
        source = str(path)
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise InputError(source, problems_from_validation_error(exc, SweepSpec)) from None
    sset = _scenario_set(spec, raw, path, source)
    if getattr(sset.market, "kind", "") == "chain":
        raise InputError(
            source,
            [
                (
                    "scenarios",
                    f"{sset.market.id!r} is a value chain; sweeps run over single markets "
                    "(solve a chain's scenarios and draws with `tradepolicy run` or `tp.solve`)",
                )
            ],
        )
    if spec.only is not None:
        unknown = [n for n in spec.only if n not in sset.names]
        if unknown:
            raise InputError(
                source,
                [
                    (
                        "only",
                        f"unknown scenario {n!r}{did_you_mean(n, sset.names)} "
                        f"(allowed: {', '.join(sset.names)})",
                    )
                    for n in unknown
                ],
            )
        sset = ScenarioSet(
            market=sset.market,
            scenarios=[s for s in sset.scenarios if s.name in spec.only],
            target_share=sset.target_share,
            target=sset.target,
            title=sset.title,
            description=sset.description,
            path=sset.path,
        )
    if not sset.scenarios and not spec.include_baseline:
        raise InputError(source, [("scenario", "no scenario to sweep")])
    if spec.draws and not sset.market.has_uncertainty:
        raise InputError(
            source,
            [
                (
                    "draws",
                    f"market {sset.market.id!r} records no elasticity standard errors "
                    "([elasticity_se]); every draw would equal the central estimate "
                    "(allowed: 0)",
                )
            ],
        )
    axes = _axes(spec, sset, source)
    variables = _variables(spec, source)
    plan = SweepPlan(source=source, spec=spec, raw=raw, sset=sset, axes=axes, variables=variables)
    if plan.rows > MAX_ROWS:
        raise InputError(
            source, [("grid", f"{plan.rows:,} rows; at most {MAX_ROWS:,} are allowed")]
        )
    return plan


def _scenario_set(spec: SweepSpec, raw: dict[str, Any], path: Path, source: str) -> ScenarioSet:
    if spec.scenarios is None:
        keys = ("market", "title", "description", "target_share", "target", "scenario")
        return scenario_set_from_dict({k: raw[k] for k in keys if k in raw}, path)
    ref = spec.scenarios
    if ref.endswith(".toml") or any(c in ref for c in "/\\"):
        target = resolve_reference(ref, path, "scenarios", source)
        if not exists(target):
            raise InputError(source, [("scenarios", f"scenario file {target} does not exist")])
        return load_scenarios(target)
    shipped = _paths.find_scenarios(ref)
    if shipped is None:
        known = ", ".join(p.stem for p in _paths.scenario_files()) or "none"
        raise InputError(
            source,
            [("scenarios", f"no shipped scenario set {ref!r} (allowed: {known}; or a path)")],
        )
    return load_scenarios(shipped)


def _field_units(cls: type[Measure], name: str, market: Market) -> str:
    """Units of a measure field from its description (price, volume or a plain number)."""
    desc = (cls.model_fields[name].description or "").lower()
    if "price" in desc or name in ("floor", "strike", "price", "levy_cap", "upside_threshold"):
        return market.price_unit
    if "volume" in desc or "quantity" in desc:
        return f"{market.quantity_unit}/year"
    return "1"


def _leaf_types(annotation: Any) -> set[Any]:
    """Return the plain types inside an annotation (``float | None`` -> {float, NoneType})."""
    if typing.get_origin(annotation) is Annotated:
        return _leaf_types(typing.get_args(annotation)[0])
    args = typing.get_args(annotation)
    if args and typing.get_origin(annotation) in (Union, UnionType):
        return set().union(*(_leaf_types(a) for a in args))
    return {typing.get_origin(annotation) or annotation}


def _numeric_fields(cls: type[Measure]) -> list[str]:
    """Return the fields holding one number (``float``, ``int``, optionally ``None``).

    Not the years a measure is in force (a sweep is static).
    """
    out = []
    for n, f in cls.model_fields.items():
        leaves = _leaf_types(f.annotation) - {type(None)}
        if n not in ("type", "start_year", "end_year") and leaves and leaves <= {float, int}:
            out.append(n)
    return out


def _axes(spec: SweepSpec, sset: ScenarioSet, source: str) -> list[Axis]:
    market = sset.market
    names = sset.names
    out: list[Axis] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, g in enumerate(spec.grid):
        at = f"grid[{i}]"
        if g.name in RESERVED:
            problems.append((f"{at}.name", f"{g.name!r} is reserved (not: {', '.join(RESERVED)})"))
        elif g.name in seen:
            problems.append((f"{at}.name", f"duplicate axis name {g.name!r}"))
        seen.add(g.name)
        values = np.array(g.values, dtype=float)
        if g.is_market:
            kind = str(g.elasticity)
            bad = [r for r in g.regions or [] if r not in market.regions]
            for r in bad:
                problems.append(
                    (
                        f"{at}.regions",
                        f"unknown region {r!r}{did_you_mean(r, market.regions)} "
                        f"(allowed: {', '.join(market.regions)})",
                    )
                )
            where = ", ".join(g.regions) if g.regions else "all regions"
            what = "scale factor on the" if g.mode == "scale" else ""
            label = f"{what} {kind} elasticity ({where})".strip()
            out.append(Axis(spec=g, values=values, units="1", long_name=label))
            continue
        axis = Axis(spec=g, values=values)
        found = _measure_targets(g, at, sset, axis)
        problems += found
        if axis.targets and not found:
            s0, j0 = next(iter(axis.targets.items()))
            cls = type(sset.scenarios[s0].measures[j0])
            axis.units = _field_units(cls, str(g.field), market)
            in_ = ", ".join(names[s] for s in axis.targets)
            desc = cls.model_fields[str(g.field)].description or str(g.field)
            kind = sset.scenarios[s0].measures[j0].type
            axis.long_name = f"{desc} ({kind}.{g.field} in {in_})"
        out.append(axis)
    if problems:
        raise InputError(source, problems)
    problems += _check_markets(out, market)
    problems += _check_measure_values(out, sset)
    if problems:
        raise InputError(source, problems)
    return out


def _measure_targets(g: GridAxis, at: str, sset: ScenarioSet, axis: Axis) -> list[tuple[str, str]]:
    """Find the measure each scenario's axis addresses; problems if any is missing."""
    names = sset.names
    problems = []
    if g.scenario is not None:
        wanted = []
        for n in g.scenario:
            if n not in names:
                problems.append(
                    (
                        f"{at}.scenario",
                        f"unknown scenario {n!r}{did_you_mean(n, names)} "
                        f"(allowed: {', '.join(names) or 'none'})",
                    )
                )
            else:
                wanted.append(names.index(n))
        explicit = True
    else:
        wanted, explicit = list(range(len(names))), False
    for s in wanted:
        ms = sset.scenarios[s].measures
        if isinstance(g.measure, int):
            if g.measure < len(ms):
                axis.targets[s] = g.measure
            elif explicit:
                problems.append(
                    (
                        f"{at}.measure",
                        f"scenario {names[s]!r} has {len(ms)} measure(s) "
                        f"(allowed: 0..{len(ms) - 1})",
                    )
                )
            continue
        hits = [j for j, m in enumerate(ms) if m.type == g.measure]
        if len(hits) == 1:
            axis.targets[s] = hits[0]
        elif len(hits) > 1:
            problems.append(
                (
                    f"{at}.measure",
                    f"scenario {names[s]!r} has {len(hits)} {g.measure!r} measures "
                    f"(at {hits}); give the measure's index instead",
                )
            )
        elif explicit:
            types = sorted({m.type for m in ms})
            problems.append(
                (
                    f"{at}.measure",
                    f"scenario {names[s]!r} has no {g.measure!r} measure "
                    f"(allowed: {', '.join(types) or 'none'}, or an index)",
                )
            )
    if not axis.targets and not problems:
        problems.append(
            (
                f"{at}.measure",
                f"no scenario has a {g.measure!r} measure; the axis would change nothing",
            )
        )
    for s, j in axis.targets.items():
        cls = type(sset.scenarios[s].measures[j])
        allowed = _numeric_fields(cls)
        if g.field not in allowed:
            hint = did_you_mean(str(g.field), allowed)
            problems.append(
                (
                    f"{at}.field",
                    f"{g.field!r} is not a numeric field of {cls.model_fields['type'].default!r}"
                    f"{hint} (allowed: {', '.join(allowed)})",
                )
            )
            break
    return problems


def _check_markets(axes: list[Axis], market: Market) -> list[tuple[str, str]]:
    """Every value of every elasticity axis gives a valid market."""
    problems = []
    for i, a in enumerate(axes):
        if not a.spec.is_market:
            continue
        for k, v in enumerate(a.values):
            try:
                market_variant(market, [(a.spec, float(v))])
            except ValidationError as exc:
                msgs = problems_from_validation_error(exc, MarketSpec)
                text = "; ".join(f"{f}: {m}" for f, m in msgs)
                problems.append((f"grid[{i}].values[{k}]", f"gives an invalid market ({text})"))
    return problems


def _check_measure_values(axes: list[Axis], sset: ScenarioSet) -> list[tuple[str, str]]:
    """Every combination of measure values of each scenario builds a valid scenario."""
    problems: list[tuple[str, str]] = []
    market = sset.market
    names = sset.names
    for s in range(len(names)):
        mine = [(i, a) for i, a in enumerate(axes) if not a.spec.is_market and s in a.targets]
        if not mine:
            continue
        sizes = [len(a.values) for _, a in mine]
        if math.prod(sizes) <= MAX_CHECKED:
            combos = np.stack(np.meshgrid(*[np.arange(n) for n in sizes], indexing="ij"), -1)
            combos = combos.reshape(-1, len(mine))
        else:  # each axis alone (the other axes at their first value)
            combos = np.zeros((sum(sizes), len(mine)), dtype=int)
            row = 0
            for c, n in enumerate(sizes):
                combos[row : row + n, c] = np.arange(n)
                row += n
        advised: set[str] = set()
        for combo in combos:
            point = {a.name: float(a.values[k]) for (_, a), k in zip(mine, combo, strict=True)}
            where = ", ".join(
                f"grid[{i}].values[{k}]" for (i, _), k in zip(mine, combo, strict=True)
            )
            try:
                sc = scenario_variant(sset, axes, s, point, names[s])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", InputWarning)
                    ScenarioSet(market=market, scenarios=[sc], target=sset.target)
            except ValidationError as exc:
                for f, m in problems_from_validation_error(exc):
                    problems.append((where, f"{f}: {m} [in scenario {names[s]!r}]"))
            except InputError as exc:
                for f, m in exc.problems:
                    problems.append((where, f"{f.replace('scenario[0].', '')}: {m}"))
            else:
                for j, measure in enumerate(sc.measures):
                    for fld, msg in measure.advice(market):
                        key = f"{names[s]}.measure[{j}].{fld}: {msg}"
                        if key not in advised:
                            advised.add(key)
                            warnings.warn(f"{where} (scenario {key})", InputWarning, stacklevel=4)
            if len(problems) >= 20:
                return problems
    return problems


def _variables(spec: SweepSpec, source: str) -> list[str]:
    fields = result_fields()
    allowed = [
        n
        for n, f in fields.items()
        if f["dims"].split()[:2] == ["scenario", "commodity"]
        and n not in ("top_supplier", "bloc_top_supplier", "solver_message")
        and (not spec.draws or n in DRAW_VARIABLES)
    ]
    wanted = list(spec.variables) if spec.variables is not None else list(DEFAULT_VARIABLES)
    problems = []
    for k, v in enumerate(wanted):
        if v not in allowed:
            why = " with draws" if spec.draws and v in fields else ""
            problems.append(
                (
                    f"variables[{k}]",
                    f"unknown variable {v!r}{why}{did_you_mean(v, allowed)} "
                    f"(allowed: {', '.join(allowed)})",
                )
            )
    if len(set(wanted)) != len(wanted):
        problems.append(("variables", "a variable is listed twice"))
    if problems:
        raise InputError(source, problems)
    if "converged" not in wanted:
        wanted.append("converged")
    return wanted
