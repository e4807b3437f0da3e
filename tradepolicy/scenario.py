"""Scenario sets: schema, loading and building in code.

A scenario set names one market and lists scenarios; each scenario is a list of measures
(docs/measures.md, docs/inputs.md). The baseline is added automatically as scenario
``baseline``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain as _chain
from itertools import compress, repeat
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import pydantic_core
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from tradepolicy import _paths, regions
from tradepolicy._files import exists, resolve_reference
from tradepolicy._validation import (
    MAX_NAME,
    MAX_TEXT,
    Float,
    did_you_mean,
    problems_from_validation_error,
    read_toml,
    shorten,
)
from tradepolicy.errors import InputError, InputWarning
from tradepolicy.market import Market, load_market
from tradepolicy.measures import MEASURES, Measure
from tradepolicy.measures.base import (
    ApplyContext,
    ReadOnCheck,
    _batched,
    _group_all,
    _without,
    apply_batch,
    dump_measures,
    prepare_pair_masks,
)
from tradepolicy.measures.trade import rate_advice
from tradepolicy.model.instruments import InstrumentBuilder

__all__ = ["Scenario", "ScenarioSet", "Target", "load_scenarios"]

#: A scenario name: letters, digits, ``_ . -``; at most 100 characters (a column label).
ScenarioName = Annotated[
    str, StringConstraints(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
]
MarketRef = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NAME, pattern=r"^[^\x00]*$")
]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]


#: the elasticity horizons a static set may choose (docs/model.md, "Horizons")
HorizonName = Literal["short", "medium"]


class Scenario(BaseModel):
    """One policy option: a name, a plain-words description and its measures.

    Attributes
    ----------
    name : str
        The scenario's name (not ``baseline``: the solve adds the baseline itself).
    description : str, optional
        What the option is, in plain words.
    measures : list of Measure, optional
        The measures (alias ``measure``, as in a scenario file); dicts are read as the
        registered measure type named by their ``type``.
    """

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False
    )

    name: ScenarioName
    description: Text = ""
    measures: list[Measure] = Field(default_factory=list, alias="measure")

    @field_validator("measures", mode="before")
    @classmethod
    def _typed_measures(cls, v: Any) -> Any:
        """Dicts become the registered measure class named by their ``type``."""
        if not isinstance(v, list):
            return v
        out = []
        for item in v:
            if isinstance(item, dict):
                kind = item.get("type")
                if kind not in MEASURES:
                    hint = did_you_mean(str(kind), MEASURES) if isinstance(kind, str) else ""
                    raise ValueError(
                        f"unknown measure type {shorten(repr(kind))}{hint} "
                        f"(allowed: {', '.join(sorted(MEASURES))})"
                    )
                item = MEASURES[kind].model_validate(item)
            out.append(item)
        return out

    @field_validator("name")
    @classmethod
    def _not_baseline(cls, v: str) -> str:
        if v == "baseline":
            raise ValueError("`baseline` is reserved: the baseline is added automatically")
        return v

    def to_dict(self) -> dict[str, Any]:
        """Return the scenario as it would be written in a TOML file.

        Returns
        -------
        dict
            ``name``, ``description`` and ``measure`` (one dict per measure).
        """
        return {
            "name": self.name,
            "description": self.description,
            "measure": dump_measures(list(self.measures)),
        }


class Target(BaseModel):
    """A dependence target (docs/model.md): a bloc, the largest share allowed, stage and year.

    ``group`` names a group of the regions table (``g7_partners``, ``g7``, ``eu``); ``bloc``
    lists region codes instead. Dependence is read on the bloc's total use and counts only
    origins outside the bloc that are not aggregates (``ROW``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str | None = None
    bloc: list[str] | None = Field(None, min_length=1)
    max_share: float = Field(gt=0.0, le=1.0, allow_inf_nan=False)
    #: a stricter share also reported (pathways: the probability of meeting it too)
    ambition: float | None = Field(None, gt=0.0, le=1.0, allow_inf_nan=False)
    stage: str = ""
    year: int | None = Field(None, ge=1900, le=2200)

    @model_validator(mode="after")
    def _one_bloc(self) -> Target:
        if (self.group is None) == (self.bloc is None):
            raise ValueError("give exactly one of `group` (e.g. 'g7_partners') or `bloc`")
        if self.group is not None and self.group not in regions.GROUPS:
            raise ValueError(f"unknown group {self.group!r} (allowed: {', '.join(regions.GROUPS)})")
        if self.ambition is not None and self.ambition > self.max_share:
            raise ValueError(
                f"ambition {self.ambition} must not exceed max_share {self.max_share} "
                "(the ambition is the stricter share)"
            )
        return self

    @property
    def shares(self) -> tuple[float, ...]:
        """``max_share`` and, when given, the stricter ``ambition``."""
        return (self.max_share,) if self.ambition is None else (self.max_share, self.ambition)

    @property
    def bloc_spec(self) -> str | list[str]:
        """The bloc as written: its group name, or its list of regions."""
        return self.group if self.group is not None else list(self.bloc or [])

    def members(self, market: Market) -> list[str]:
        """Return the market's regions that stand for the bloc (aggregates excluded)."""
        return regions.bloc_members(self.bloc_spec, market.regions)

    def describe(self) -> str:
        """Describe the bloc in words."""
        return regions.describe_bloc(self.bloc_spec)

    def to_dict(self) -> dict[str, Any]:
        """Return the target as it would be written in a TOML file."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True) | {
            "max_share": self.max_share
        }


#: serialises scenarios with each measure's own fields (its runtime type)
_SCENARIO_LIST: TypeAdapter[list[Scenario]] = TypeAdapter(list[Scenario])


@lru_cache(maxsize=8)
def _file_models(types: tuple[str, ...]) -> Any:  # a model built at run time
    """Pydantic models for a scenario file, with the measure union of the registry."""
    classes = tuple(MEASURES[t] for t in types)
    union = Annotated[Union[classes], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
    scen = create_model(
        "ScenarioEntry",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
        name=(ScenarioName, ...),
        description=(Text, ""),
        measure=(list[union], Field(default_factory=list)),
    )
    return create_model(
        "ScenarioFile",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
        market=(MarketRef, ...),
        title=(Annotated[str, StringConstraints(max_length=MAX_NAME)], ""),
        description=(Text, ""),
        target_share=(Annotated[Float, Field(gt=0.0, le=1.0)] | None, None),
        target=(Target | None, None),
        horizon=(HorizonName | None, None),
        **_pathway_fields(),
        scenario=(Annotated[list[scen], Field(min_length=1)], ...),
    )


def _pathway_fields() -> dict[str, Any]:
    """Return the fields of a pathway set (docs/pathways.md), in file order."""
    from tradepolicy.pathway.spec import PATHWAY_FIELDS

    return PATHWAY_FIELDS


@dataclass
class ScenarioSet:
    """A market and the scenarios to compare against its baseline.

    Built by :func:`load_scenarios` (or in code); validated on construction, so a set that
    exists can be solved.

    Parameters
    ----------
    market : Market or Chain
        The market (or value chain) the scenarios run on.
    scenarios : list of Scenario
        The scenarios to compare (the solve adds the baseline).
    target_share : float, optional
        A dependence target: the largest share of the bloc's use from one supplier.
    title : str, optional
        The set's title.
    description : str, optional
        What the set compares, in plain words.
    path : Path, optional
        The file the set was read from (errors name it).
    extra : dict, optional
        Other top-level entries of the file, kept as read.
    target : Target, optional
        The full dependence target (bloc, supplier, share).
    horizon : {"medium", "short"}, optional
        The elasticities' horizon; None for the market's own.

    Raises
    ------
    InputError
        A measure, the target or the horizon is invalid; the error names the file, the
        scenario and the field.
    """

    market: Market
    scenarios: list[Scenario]
    target_share: float | None = None
    title: str = ""
    description: str = ""
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    target: Target | None = None
    #: the elasticities' horizon (docs/model.md, "Horizons"): ``"medium"`` or ``"short"``;
    #: None: the market's own (``"medium"`` for a market as loaded)
    horizon: str | None = None
    #: the instruments validation built, for the solve that follows (see :meth:`take_inputs`)
    _inputs: tuple[Any, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the set (years, horizon, measures, target) and warn with each advice."""
        static = self._year_problems()
        if self.horizon is None:
            self.horizon = self.market.horizon
        if self.horizon != "medium" and self.is_pathway:
            static.append(
                (
                    "horizon",
                    "a pathway set takes no `horizon`: its event years use the short run and "
                    "the other years the medium run; leave it out",
                )
            )
        elif self.horizon != self.market.horizon:
            try:
                self.market = self.market.at_horizon(self.horizon)
            except InputError as exc:
                raise InputError(
                    str(self.path or "<scenarios>"),
                    [
                        ("horizon", f"{self.horizon!r} asked for, but {exc.source}: {m}")
                        for _f, m in exc.problems
                    ],
                ) from None
        if static:
            raise InputError(str(self.path or "<scenarios>"), static)
        problems, inputs = _check(self.market, self.scenarios, self.target_share)
        if not problems and inputs is not None:
            self._inputs = (self.market, list(self.scenarios), inputs)
        if self.target is not None:
            problems += _check_target(self.market, self.target)
        if problems:
            raise InputError(str(self.path or "<scenarios>"), problems)
        for i, j, fld, msg in _advice(self.market, self.scenarios, inputs):
            if not self._keep_advice(fld, msg):
                continue
            warnings.warn(
                f"{self.path or '<scenarios>'}: scenario[{i}].measure[{j}].{fld}: {msg}",
                InputWarning,
                stacklevel=2,
            )

    #: whether the set runs over years (a :class:`~tradepolicy.pathway.PathwaySet`)
    is_pathway = False

    def _year_problems(self) -> list[tuple[str, str]]:
        """Refuse what only a pathway set can run in a static set.

        Measures limited to some years, and the measures that act on investment decisions.
        """
        measures = _chain.from_iterable(map(attrgetter("measures"), self.scenarios))
        # (start_year, end_year, type) of every measure in one pass: the common case (no
        # years, no pathway-only type) is checked at once, without building messages
        seen = set(map(attrgetter("start_year", "end_year", "__class__"), measures))
        if all(
            a is None and b is None and not getattr(cls, "pathway_only", False)
            for a, b, cls in seen
        ):
            return []
        out = []
        for i, sc in enumerate(self.scenarios):
            for j, m in enumerate(sc.measures):
                where = f"scenario[{i}].measure[{j}]"
                for name in ("start_year", "end_year"):
                    if getattr(m, name) is not None:
                        out.append(
                            (
                                f"{where}.{name}",
                                f"a static scenario set has no years; give the set `years = "
                                f"[first, last]` to make it a pathway set, or leave {name} out "
                                f"{_in(sc.name)}",
                            )
                        )
                if getattr(m, "pathway_only", False):
                    why = getattr(m, "pathway_reason", "acts on investment decisions")
                    out.append(
                        (
                            f"{where}.type",
                            f"{m.type!r} {why}"
                            f", which only a pathway set models (give the set `years = "
                            f"[first, last]`) {_in(sc.name)}",
                        )
                    )
        return out

    def _keep_advice(self, field: str, message: str) -> bool:
        """Whether to warn with this advice (a pathway set drops some)."""
        return True

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the instruments validation kept.

        Their pair index is keyed by the identity of this process's measure objects, which a
        copy does not share; the copy's solve builds them again.
        """
        state = self.__dict__.copy()
        state["_inputs"] = None
        return state

    def take_inputs(self) -> tuple[Any, Any] | None:
        """Return the instruments and pair index validation built (baseline row first).

        Once, if the set still holds the same market and scenario objects: the solve that
        follows validation reuses them instead of building them again.

        Returns
        -------
        tuple or None
            ``(instruments, pair index)``, or None if they were taken already or the set was
            changed since.
        """
        kept, self._inputs = self._inputs, None
        if kept is None:
            return None
        market, scenarios, inputs = kept
        same = market is self.market and len(scenarios) == len(self.scenarios)
        if not same or not all(a is b for a, b in zip(scenarios, self.scenarios, strict=True)):
            return None
        return inputs

    @property
    def names(self) -> list[str]:
        """The scenario names, in file order (the baseline the solve adds is not one)."""
        return [s.name for s in self.scenarios]

    @property
    def bloc_target(self) -> Target:
        """The target bloc dependence is read on.

        ``target``, or the default group (``g7_partners``) with ``target_share`` as its largest
        share (1.0 without one; :attr:`has_target` tells whether a target was set at all).
        """
        if self.target is not None:
            return self.target
        return Target(group=regions.DEFAULT_GROUP, max_share=self.target_share or 1.0)

    @property
    def has_target(self) -> bool:
        """Whether the set gives a target (``target`` or ``target_share``)."""
        return self.target is not None or self.target_share is not None

    def __getitem__(self, name: str) -> Scenario:
        """Return the scenario called ``name`` (KeyError when there is none)."""
        for s in self.scenarios:
            if s.name == name:
                return s
        raise KeyError(f"no scenario {name!r}; have {self.names}")

    def to_json(self) -> str:
        """Return :meth:`to_dict` as JSON (what results store as ``scenario_spec``).

        Written in one pass by pydantic's serialiser (keys in the order of the file's schema).

        Returns
        -------
        str
            The JSON text.
        """
        head = pydantic_core.to_json(self._head()).decode()
        body = _SCENARIO_LIST.dump_json(
            self.scenarios, serialize_as_any=True, exclude_none=True, by_alias=True
        ).decode()
        return f'{head[:-1]}{"," if len(head) > 2 else ""}"scenario":{body}}}'

    def _head(self) -> dict[str, Any]:
        """Everything of :meth:`to_dict` but the scenarios."""
        d: dict[str, Any] = {"market": self.market.id}
        if self.title:
            d["title"] = self.title
        if self.description:
            d["description"] = self.description
        if self.target_share is not None:
            d["target_share"] = self.target_share
        if self.target is not None:
            d["target"] = self.target.to_dict()
        if self.horizon != "medium":
            d["horizon"] = self.horizon
        return d

    def to_dict(self) -> dict[str, Any]:
        """Return the set as a JSON-able dict (the scenario spec stored in results).

        Returns
        -------
        dict
            The set's header (market, title, target, ...) and ``scenario``: one dict per
            scenario, as in a scenario file.
        """
        d = self._head()
        dumped = iter(dump_measures([m for s in self.scenarios for m in s.measures]))
        d["scenario"] = [
            {
                "name": s.name,
                "description": s.description,
                "measure": [next(dumped) for _ in s.measures],
            }
            for s in self.scenarios
        ]
        return d


def is_chain(market: Any) -> bool:
    """Whether ``market`` is a value chain (:class:`~tradepolicy.chain.Chain`)."""
    return getattr(market, "kind", "") == "chain"


def stage_of(market: Any, m: Measure) -> Any:
    """Return the market measure ``m`` acts on: its stage of a chain, or the market itself."""
    if not is_chain(market):
        return market
    if m.stage is None and len(market.stages) == 1:
        return market.stages[0]
    if m.stage is None and getattr(m, "pathway_only", False):
        return None  # acts on the projects of every stage, not on a stage's equilibrium
    return market.stage(m.stage)


def _stage_problems(market: Any, scenarios: list[Scenario]) -> list[tuple[str, str]]:
    """Resolve the ``stage`` of every measure.

    A stage of the chain (required when it has several), or the market itself.
    """
    out: list[tuple[str, str]] = []
    chain = is_chain(market)
    measures = _chain.from_iterable(map(attrgetter("measures"), scenarios))
    if not chain and set(map(attrgetter("stage"), measures)) <= {None}:
        return out  # (the common case, checked without building messages)
    if chain:
        allowed = ", ".join(repr(s) for s in market.stage_ids)
    else:
        names = [n for n in (market.id, market.spec.stage) if n]
        allowed = ", ".join(repr(n) for n in names)
    for i, sc in enumerate(scenarios):
        for j, m in enumerate(sc.measures):
            where = f"scenario[{i}].measure[{j}].stage"
            if chain:
                if m.stage is None and getattr(m, "pathway_only", False):
                    widest = max(market.stages, key=lambda st: len(st.regions))
                    out.extend(
                        (f"scenario[{i}].measure[{j}].{fld}", f"{msg} {_in(sc.name)}")
                        for fld, msg in m.check(widest)
                    )
                elif m.stage is None and len(market.stages) > 1:
                    out.append(
                        (
                            where,
                            f"required in chain {market.id!r}: which stage the "
                            f"{m.type} acts on (allowed: {allowed}) {_in(sc.name)}",
                        )
                    )
                elif m.stage is not None and m.stage not in market.stage_ids:
                    out.append(
                        (
                            where,
                            f"{m.stage!r} is not a stage of chain {market.id!r} "
                            f"(allowed: {allowed}) {_in(sc.name)}",
                        )
                    )
            elif m.stage is not None and m.stage not in names:
                out.append(
                    (
                        where,
                        f"{m.stage!r}: market {market.id!r} is not a chain; leave "
                        f"`stage` out or give {allowed} {_in(sc.name)}",
                    )
                )
    return out


@dataclass
class _Measures:
    """The measures of one scenario that act on one stage (what the checks read)."""

    name: str
    measures: list[Measure]


def _check_chain(chain: Any, scenarios: list[Scenario]) -> tuple[list[tuple[str, str]], Any]:
    """Run :func:`_check` on a chain.

    Each stage's measures are checked and applied on the stage market; the inputs are each
    stage's instruments and pair index.
    """
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, s in enumerate(scenarios):
        if s.name in seen:
            problems.append((f"scenario[{i}].name", f"duplicate scenario name {s.name!r}"))
        seen.add(s.name)
    problems += _stage_problems(chain, scenarios)
    if problems:
        return problems, None
    parts = []
    for market in chain.stages:
        where = [
            [j for j, m in enumerate(sc.measures) if stage_of(chain, m) is market]
            for sc in scenarios
        ]
        subs = [
            _Measures(sc.name, [sc.measures[j] for j in js])
            for sc, js in zip(scenarios, where, strict=True)
        ]
        found = _measure_problems(market, subs)  # type: ignore[arg-type]
        bad = set()
        for i, entries in found.items():
            bad.add(i)
            for jj, probs in entries:
                j = where[i][jj]
                problems.extend(
                    (f"scenario[{i}].measure[{j}].{fld}", f"{msg} {_in(scenarios[i].name)}")
                    for fld, msg in probs
                )
        checked: list[list[Measure]] = [[]]
        checked += [[] if i in bad else sub.measures for i, sub in enumerate(subs)]
        builder = InstrumentBuilder(len(checked), market.base_tariff, market.base_export_tax)
        ctx = ApplyContext(market=market, cal=market.calibration, builder=builder)
        pair_index = apply_batch(ctx, checked)
        for b, (jj, msg) in ctx.errors.items():
            i = b - 1
            problems.append(
                (f"scenario[{i}].measure[{where[i][jj]}]", f"{msg} {_in(scenarios[i].name)}")
            )
        parts.append((builder, pair_index))
    if problems:
        problems.sort(key=lambda p: p[0])
        return problems, None
    return problems, [(builder.build(), pair_index) for builder, pair_index in parts]


def _check(
    market: Market, scenarios: list[Scenario], target: float | None
) -> tuple[list[tuple[str, str]], Any]:
    """Return the problems of the scenarios and, without problems, the instruments.

    The instruments of the baseline and the scenarios with each measure's pairs, built while
    looking for conflicts.
    """
    if is_chain(market):
        return _check_chain(market, scenarios)
    staged = _stage_problems(market, scenarios)
    if staged:
        return staged, None
    problems: list[list[tuple[str, str]]] = []
    seen: set[str] = set()
    # every measure grouped once (baseline row 0): checked, applied, advised and booked so
    checked: list[list[Measure]] = [[], *(list(s.measures) for s in scenarios)]
    groups = _group_all(checked)
    prepared = ReadOnCheck()
    found = _measure_problems(market, scenarios, groups, prepared)
    for i, s in enumerate(scenarios):
        mine = []
        if s.name in seen:
            mine.append((f"scenario[{i}].name", f"duplicate scenario name {s.name!r}"))
        seen.add(s.name)
        problems.append(mine)
    for i, entries in found.items():
        name = scenarios[i].name
        problems[i].extend(
            (f"scenario[{i}].measure[{j}].{fld}", f"{msg} {_in(name)}")
            for j, probs in entries
            for fld, msg in probs
        )
        # measures on the same target (combined by their rule or refused) are looked for in
        # the scenarios whose measures pass their checks
        checked[i + 1] = []
    if found:
        skip = {i + 1: None for i in found}
        groups = [g for g in (_without(g, skip) for g in groups) if g[2]]
    builder = InstrumentBuilder(len(checked), market.base_tariff, market.base_export_tax)
    ctx = ApplyContext(market=market, cal=market.calibration, builder=builder, prepared=prepared)
    pair_index = apply_batch(ctx, checked, groups)
    for b, (j, msg) in ctx.errors.items():
        name = scenarios[b - 1].name
        problems[b - 1].append((f"scenario[{b - 1}].measure[{j}]", f"{msg} {_in(name)}"))
    out = [p for mine in problems for p in mine]
    if out:
        return out, None
    return out, (builder.build(), pair_index)


def _measure_problems(
    market: Market,
    scenarios: list[Scenario],
    groups: list[tuple[int, type[Measure], list, list]] | None = None,
    prepared: ReadOnCheck | None = None,
) -> dict[int, list[tuple[int, list[tuple[str, str]]]]]:
    """Run ``Measure.check`` of every measure, the measures of each type at once.

    Uses :meth:`Measure.check_rows`: scenario i -> [(j, problems)] of its measures with
    problems, in the order of j. ``groups``: :func:`_group_all` of the scenarios' measures
    after a baseline row 0, when the caller has it. ``prepared``: receives the pair masks
    of the types whose measures all pass (:func:`prepare_pair_masks`), for applying
    ``groups``.
    """
    if groups is None:
        groups = _group_all([[], *(list(s.measures) for s in scenarios)])
    bad: list[tuple[int, int, list[tuple[str, str]]]] = []
    for cls, (bs, js, ms) in _by_type(groups).items():
        rows = cls.check_rows(market, ms)
        if len(rows) != len(ms):
            raise TypeError(
                f"{cls.__name__}.check_rows returned {len(rows)} results for {len(ms)} measures"
            )
        n_bad = len(bad)
        bad.extend((bs[k] - 1, js[k], rows[k]) for k in compress(range(len(rows)), rows))
        if prepared is not None and len(bad) == n_bad:  # (their region lists just read)
            prepare_pair_masks(market, cls, ms, prepared)
    if prepared is not None:  # where each group sits in its type's measures (_by_type)
        at: dict[type, int] = {}
        for _, cls, _, ms in groups:
            start = at.get(cls, 0)
            at[cls] = start + len(ms)
            prepared.spans[id(ms)] = (ms, cls, start, start + len(ms))
    bad.sort(key=lambda t: (t[0], t[1]))
    out: dict[int, list[tuple[int, list[tuple[str, str]]]]] = {}
    for i, j, p in bad:
        out.setdefault(i, []).append((j, p))
    return out


def _advice(market: Any, scenarios: list[Scenario], inputs: Any) -> list[tuple[int, int, str, str]]:
    """Return (i, j, field, message) of every measure's advice (:meth:`Measure.advice`).

    In the order of scenario i, measure j; on a single market the measures of each type at
    once (:meth:`Measure.advice_rows`, by the groups validation applied, baseline row 0).
    """
    chain = is_chain(market)
    groups = None if chain or inputs is None else getattr(inputs[1], "groups", None)
    if groups is None:
        return [
            (i, j, fld, msg)
            for i, s in enumerate(scenarios)
            for j, m in enumerate(s.measures)
            for fld, msg in m.advice(stage_of(market, m))
        ]
    out: list[tuple[int, int, str, str]] = []
    for cls, (bs, js, ms) in _by_type(groups).items():
        if _batched(cls, "advice_rows", "advice"):
            rows = cls.advice_rows(market, ms)
        else:
            rows = Measure.advice_rows.__func__(cls, market, ms)  # type: ignore[attr-defined]
        if len(rows) != len(ms):
            raise TypeError(
                f"{cls.__name__}.advice_rows returned {len(rows)} results for {len(ms)} measures"
            )
        out.extend(
            (bs[k] - 1, js[k], fld, msg)
            for k in compress(range(len(rows)), rows)
            for fld, msg in rows[k]
        )
    out.sort(key=lambda t: (t[0], t[1]))  # stable: a measure's advice keeps its order
    return out


def _by_type(
    groups: list[tuple[int, type[Measure], list, list]],
) -> dict[type[Measure], tuple[list[int], list[int], list[Measure]]]:
    """Return the (j, type, rows, measures) groups of :func:`_group_all` by type.

    type -> (rows, positions j, measures), one entry per measure.
    """
    by: dict[type[Measure], tuple[list[int], list[int], list[Measure]]] = {}
    for j, cls, rows, ms in groups:
        entry = by.get(cls)
        if entry is None:
            entry = by[cls] = ([], [], [])
        entry[0].extend(rows)
        entry[1].extend(repeat(j, len(rows)))
        entry[2].extend(ms)
    return by


def _check_target(market: Market, target: Target) -> list[tuple[str, str]]:
    problems = []
    try:
        members = target.members(market)
    except KeyError as exc:
        return [("target.bloc", str(exc.args[0]))]
    if not members:
        problems.append(
            (
                "target",
                f"no region of market {market.id!r} stands for {target.describe()} "
                f"(regions: {', '.join(market.regions)})",
            )
        )
    if is_chain(market):
        stages = list(market.stage_ids)  # type: ignore[attr-defined]  # (a Chain)
    else:
        stages = [s for s in (market.id, market.spec.stage) if s]
    if target.stage and target.stage not in stages:
        allowed = ", ".join(repr(s) for s in stages)
        problems.append(
            ("target.stage", f"{target.stage!r} is not a stage of this market (allowed: {allowed})")
        )
    return problems


def _in(name: Any) -> str:
    return f"[in scenario {shorten(repr(name), 60)}]"


def _name_scenarios(problems: list[tuple[str, str]], data: Any) -> list[tuple[str, str]]:
    """Add the scenario's name to problems located in ``scenario[i]`` (errors name scenarios)."""
    entries = data.get("scenario") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return problems
    out = []
    for fld, msg in problems:
        m = re.match(r"scenario\[(\d+)\]", fld)
        if m and int(m.group(1)) < len(entries) and isinstance(entries[int(m.group(1))], dict):
            name = entries[int(m.group(1))].get("name")
            if isinstance(name, str) and name:
                msg = f"{msg} {_in(name)}"
        out.append((fld, msg))
    return out


def load_scenarios(path: str | Path, market: Market | str | Path | None = None) -> ScenarioSet:
    """Load and validate a scenario set (a path or the name of a shipped set).

    Parameters
    ----------
    path : str or Path
        A scenario TOML file, or the name of a shipped set (``"ndpr_oxide"``).
    market : Market, str or Path, optional
        A market (object, shipped id or path) that replaces the set's own ``market`` entry;
        the file's own entry, as a path, must stay inside the set's folder.

    Returns
    -------
    ScenarioSet
        The validated set (a :class:`~tradepolicy.PathwaySet` when the file has ``years``).

    Raises
    ------
    InputError
        The file is missing or invalid; the error names the file, the scenario and the field
        and says what is allowed.

    Examples
    --------
    >>> import tradepolicy as tp
    >>> sset = tp.load_scenarios("ndpr_oxide")
    >>> sset.market.id, sset.names[0]
    ('ndpr_oxide', 'club_floor_110')
    """
    p = Path(path)
    if not exists(p) and p.suffix != ".toml":
        shipped = _paths.find_scenarios(str(path))
        if shipped is not None:
            p = shipped
    return scenario_set_from_dict(read_toml(p), p, market)


def scenario_set_from_dict(
    data: dict[str, Any], p: Path, market: Market | str | Path | None = None
) -> ScenarioSet:
    """Validate the contents of a scenario file read from ``p`` (see :func:`load_scenarios`).

    Also used for the scenario part of other files (a sweep spec); errors name ``p``.
    """
    model = _file_models(tuple(MEASURES))
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation_error(exc, model)
        raise InputError(str(p), _name_scenarios(problems, data)) from None
    if market is None:
        market = _resolve_market(spec.market, p)
    elif not isinstance(market, Market):
        market = load_market(market)
    scenarios = []
    for i, entry in enumerate(spec.scenario):
        try:
            scenarios.append(
                Scenario(name=entry.name, description=entry.description, measure=entry.measure)  # type: ignore[call-arg]  # alias
            )
        except ValidationError as exc:
            probs = problems_from_validation_error(exc)
            raise InputError(
                str(p), [(f"scenario[{i}].{f}", f"{m} {_in(entry.name)}") for f, m in probs]
            ) from None
    common = dict(
        market=market,
        scenarios=scenarios,
        target_share=spec.target_share,
        target=spec.target,
        title=spec.title,
        description=spec.description,
        path=p,
    )
    if spec.horizon is not None:
        if spec.years is not None:
            raise InputError(
                str(p),
                [
                    (
                        "horizon",
                        "a pathway set (one with `years`) takes no `horizon`: its event years "
                        "use the short run and the other years the medium run; leave it out",
                    )
                ],
            )
        common["horizon"] = spec.horizon
    from tradepolicy.pathway.spec import pathway_set_from_spec

    sset = pathway_set_from_spec(spec, p, common) or ScenarioSet(**common)
    for i, sc in enumerate(scenarios):  # slips people make in files, warned (not refused)
        if not sc.measures:
            warnings.warn(
                f"{p}: scenario[{i}]: no measure: scenario {sc.name!r} equals the baseline",
                InputWarning,
                stacklevel=2,
            )
        for j, m in enumerate(sc.measures):
            for name in ("rate", "in_rate", "out_rate"):
                value = getattr(m, name, None)
                for fld, msg in rate_advice(name, value) if isinstance(value, float) else []:
                    warnings.warn(
                        f"{p}: scenario[{i}].measure[{j}].{fld}: {msg} {_in(sc.name)}",
                        InputWarning,
                        stacklevel=2,
                    )
    return sset


def _resolve_market(ref: str, scenario_path: Path) -> Market:
    """Resolve a shipped market id, or a path relative to the scenario file."""
    looks_like_path = ref.endswith(".toml") or any(c in ref for c in "/\\")
    if looks_like_path or exists(scenario_path.parent / ref):
        candidate = resolve_reference(ref, scenario_path, "market", str(scenario_path))
        if not candidate.exists():
            raise InputError(
                str(scenario_path), [("market", f"market file {candidate} does not exist")]
            )
        return load_market(candidate)
    if _paths.find_market(ref) is None:
        from tradepolicy.market import list_markets

        known = ", ".join(list_markets()) or "none"
        raise InputError(
            str(scenario_path),
            [("market", f"no market {ref!r} (shipped markets: {known}; or a path to a .toml)")],
        )
    return load_market(ref)
