"""Scenario sets: schema, loading and building in code.

A scenario set names one market and lists scenarios; each scenario is a list of measures
(DESIGN §4, §6). The baseline is added automatically as scenario ``baseline``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
    field_validator,
)

from tradepolicy import _paths
from tradepolicy._validation import problems_from_validation_error, read_toml
from tradepolicy.errors import InputError, InputWarning
from tradepolicy.market import Market, load_market
from tradepolicy.measures import MEASURES, Measure
from tradepolicy.measures.base import conflict_problems

__all__ = ["Scenario", "ScenarioSet", "load_scenarios"]

ScenarioName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]


class Scenario(BaseModel):
    """One policy option: a name, a plain-words description and its measures."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: ScenarioName
    description: str = ""
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
                    raise ValueError(
                        f"unknown measure type {kind!r} (allowed: {', '.join(sorted(MEASURES))})"
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
        """The scenario as it would be written in a TOML file."""
        return {
            "name": self.name,
            "description": self.description,
            "measure": [m.model_dump(mode="json", exclude_none=True) for m in self.measures],
        }


@lru_cache(maxsize=8)
def _file_models(types: tuple[str, ...]) -> type[BaseModel]:
    """Pydantic models for a scenario file, with the measure union of the registry."""
    classes = tuple(MEASURES[t] for t in types)
    union = Annotated[Union[classes], Field(discriminator="type")]  # noqa: UP007
    scen = create_model(
        "ScenarioEntry",
        __config__=ConfigDict(extra="forbid"),
        name=(ScenarioName, ...),
        description=(str, ""),
        measure=(list[union], Field(default_factory=list)),  # type: ignore[valid-type]
    )
    return create_model(
        "ScenarioFile",
        __config__=ConfigDict(extra="forbid"),
        market=(str, ...),
        title=(str, ""),
        description=(str, ""),
        target_share=(Annotated[float, Field(gt=0.0, le=1.0)] | None, None),
        scenario=(Annotated[list[scen], Field(min_length=1)], ...),  # type: ignore[valid-type]
    )


@dataclass
class ScenarioSet:
    """A market and the scenarios to compare against its baseline."""

    market: Market
    scenarios: list[Scenario]
    target_share: float | None = None
    title: str = ""
    description: str = ""
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = _check(self.market, self.scenarios, self.target_share)
        if problems:
            raise InputError(str(self.path or "<scenarios>"), problems)
        for i, s in enumerate(self.scenarios):
            for j, m in enumerate(s.measures):
                for fld, msg in m.advice(self.market):
                    warnings.warn(
                        f"{self.path or '<scenarios>'}: scenario[{i}].measure[{j}].{fld}: {msg}",
                        InputWarning,
                        stacklevel=2,
                    )

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    def __getitem__(self, name: str) -> Scenario:
        for s in self.scenarios:
            if s.name == name:
                return s
        raise KeyError(f"no scenario {name!r}; have {self.names}")

    def to_dict(self) -> dict[str, Any]:
        """The set as a JSON-able dict (the scenario spec stored in results)."""
        d: dict[str, Any] = {"market": self.market.id}
        if self.title:
            d["title"] = self.title
        if self.description:
            d["description"] = self.description
        if self.target_share is not None:
            d["target_share"] = self.target_share
        d["scenario"] = [s.to_dict() for s in self.scenarios]
        return d


def _check(
    market: Market, scenarios: list[Scenario], target: float | None
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, s in enumerate(scenarios):
        if s.name in seen:
            problems.append((f"scenario[{i}].name", f"duplicate scenario name {s.name!r}"))
        seen.add(s.name)
        own = [
            (f"scenario[{i}].measure[{j}].{fld}", msg)
            for j, m in enumerate(s.measures)
            for fld, msg in m.check(market)
        ]
        if not own:  # measures on the same target: combined by their rule or refused
            own = [(f"scenario[{i}].{f}", msg) for f, msg in conflict_problems(market, s.measures)]
        problems += own
    return problems


def load_scenarios(path: str | Path) -> ScenarioSet:
    """Load and validate a scenario set (a path or the name of a shipped set)."""
    p = Path(path)
    if not p.exists() and p.suffix != ".toml":
        shipped = _paths.find_scenarios(str(path))
        if shipped is not None:
            p = shipped
    data = read_toml(p)
    model = _file_models(tuple(MEASURES))
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        raise InputError(str(p), problems_from_validation_error(exc, model)) from None
    market = _resolve_market(spec.market, p)
    scenarios = []
    for i, entry in enumerate(spec.scenario):
        try:
            scenarios.append(
                Scenario(name=entry.name, description=entry.description, measure=entry.measure)
            )
        except ValidationError as exc:
            probs = problems_from_validation_error(exc)
            raise InputError(str(p), [(f"scenario[{i}].{f}", m) for f, m in probs]) from None
    return ScenarioSet(
        market=market,
        scenarios=scenarios,
        target_share=spec.target_share,
        title=spec.title,
        description=spec.description,
        path=p,
    )


def _resolve_market(ref: str, scenario_path: Path) -> Market:
    """A shipped market id, or a path relative to the scenario file."""
    candidate = scenario_path.parent / ref
    if ref.endswith(".toml") or candidate.exists():
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
