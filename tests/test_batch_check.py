"""Measures checked a type at a time (:meth:`Measure.check_rows`) equal :meth:`Measure.check`.

Random every-measure scenarios are spoiled at random (unknown or empty region lists, releases
above base use, covered volumes of producers not covered, regions without base output or
use): the batched check must give each measure exactly the problems, in the order and words,
of the per-measure check, and a :class:`ScenarioSet` the same error as one checked measure by
measure.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tradepolicy.errors import InputError, InputWarning
from tradepolicy.measures import MEASURES, Measure
from tradepolicy.scenario import Scenario, ScenarioSet, _check, _in
from tradepolicy.testing import every_measure_scenarios, random_market


@pytest.fixture(scope="module")
def market():
    """A random market where R02 produces nothing and R03 consumes nothing."""
    base = random_market(np.random.default_rng(5))
    flows = base.flows.copy()
    flows[2, :] = 0.0
    flows[:, 3] = 0.0
    return dataclasses.replace(base, flows=flows)


def spoil(rng: np.random.Generator, m: Measure) -> Measure:
    """``m`` with one field made doubtful or wrong (unvalidated copy; or ``m`` itself)."""
    choices: list[dict] = []
    for name in type(m).region_fields:
        value = getattr(m, name)
        if isinstance(value, str):
            choices += [{name: "XX"}, {name: "R03"}, {name: "R02"}]
        elif isinstance(value, dict):
            choices += [{name: {**value, "XX": 0.0}}, {name: {}}]
        elif value is not None:
            choices += [{name: [*value, "XX"]}, {name: []}, {name: ["R02", *value]}]
    if m.type == "stockpile_release":
        choices.append({"quantity": 1e6})
    if m.type == "price_gap_subsidy":
        choices.append({"covered_volume": {"R11": 1.0, "R00": 2.0}})
    if not choices or rng.random() < 0.4:
        return m
    return m.model_copy(update=choices[int(rng.integers(len(choices)))])


@pytest.fixture(scope="module")
def spoiled(market):
    rng = np.random.default_rng(8)
    lists = every_measure_scenarios(np.random.default_rng(9), random_market(rng), 120)
    return [[spoil(rng, m) for m in ms] for ms in lists]


def test_check_rows_equals_check_for_every_type(market, spoiled) -> None:
    by: dict[type, list[Measure]] = {}
    for ms in spoiled:
        for m in ms:
            by.setdefault(type(m), []).append(m)
    assert {cls.model_fields["type"].default for cls in by} >= {
        t for t, cls in MEASURES.items() if not t.startswith("_") and not cls.pathway_only
    }  # pathway-only measures act on projects: tests/test_investment_measures.py
    bad = 0
    for cls, ms in by.items():
        want = [m.check(market) for m in ms]
        assert cls.check_rows(market, ms) == want, cls.__name__
        assert any(want) and not all(want), cls.__name__  # both kinds are compared
        bad += sum(map(bool, want))
    assert bad > 200


def test_one_bad_measure_among_good_ones_is_found(market, spoiled) -> None:
    """The checks test all measures of a type at once first: one bad measure among many good
    ones must still get exactly its per-measure problems."""
    by: dict[type, list[Measure]] = {}
    for ms in spoiled:
        for m in ms:
            by.setdefault(type(m), []).append(m)
    tried = 0
    for cls, ms in by.items():
        good = [m for m in ms if not m.check(market)]
        for bad in [m for m in ms if m.check(market)][:8]:
            batch = [*good[:20], bad, *good[20:40]]
            assert cls.check_rows(market, batch) == [m.check(market) for m in batch], cls
            tried += 1
        assert cls.check_rows(market, good) == [[] for _ in good], cls
    assert tried > 50


def test_scenario_set_reports_what_per_measure_checks_find(market, spoiled) -> None:
    scen = [Scenario(name=f"s{b}", measures=ms) for b, ms in enumerate(spoiled)]
    want = [
        (f"scenario[{i}].measure[{j}].{fld}", f"{msg} {_in(s.name)}")
        for i, s in enumerate(scen)
        for j, m in enumerate(s.measures)
        for fld, msg in m.check(market)
    ]
    problems, inputs = _check(market, scen, None)
    assert inputs is None and problems[: len(want)] == want
    with pytest.raises(InputError) as err:
        ScenarioSet(market=market, scenarios=scen)
    assert err.value.problems[: len(want)] == want


class _OwnCheck(MEASURES["supply_shock"]):  # type: ignore[misc,valid-type]
    """A subclass with its own per-measure check and no batched one."""

    def check(self, market) -> list[tuple[str, str]]:
        return [("fraction", "too round")] if self.fraction == 0.5 else super().check(market)


def test_a_type_with_its_own_check_is_checked_one_by_one(market) -> None:
    ms = [_OwnCheck(region=["R00"], fraction=f) for f in (0.5, 0.25)]
    assert _OwnCheck.check_rows(market, ms) == [[("fraction", "too round")], []]


def _doubtful(rng: np.random.Generator, m: Measure) -> Measure:
    """``m`` with a price far from the base prices or a volume above base output, at times."""
    fields = {"price_floor": "floor", "price_gap_subsidy": "strike", "offtake": "price"}
    name = fields.get(m.type)
    if name is None or rng.random() < 0.5:
        return m
    update = {name: getattr(m, name) * float(rng.choice([1e-3, 0.04, 30.0, 1e3]))}
    if m.type == "offtake" and rng.random() < 0.5:
        update = {"volume": m.volume * 1e4}
    return m.model_copy(update=update)


@pytest.fixture(scope="module")
def plain_market():
    return random_market(np.random.default_rng(14))


@pytest.fixture(scope="module")
def doubtful(plain_market):
    rng = np.random.default_rng(12)
    lists = every_measure_scenarios(np.random.default_rng(13), plain_market, 150)
    return [[_doubtful(rng, m) for m in ms] for ms in lists]


def test_advice_rows_equals_advice_for_every_type(plain_market, doubtful) -> None:
    market = plain_market
    by: dict[type, list[Measure]] = {}
    for ms in doubtful:
        for m in ms:
            by.setdefault(type(m), []).append(m)
    advised = 0
    for cls, ms in by.items():
        want = [m.advice(market) for m in ms]
        assert cls.advice_rows(market, ms) == want, cls.__name__
        advised += sum(map(bool, want))
        if cls.advice is not Measure.advice:
            assert any(want) and not all(want), cls.__name__  # both kinds are compared
    assert advised > 50


def test_scenario_set_warns_what_per_measure_advice_says(plain_market, doubtful) -> None:
    market = plain_market
    scen = [Scenario(name=f"s{b}", measures=ms) for b, ms in enumerate(doubtful)]
    want = [
        f"<scenarios>: scenario[{i}].measure[{j}].{fld}: {msg}"
        for i, s in enumerate(scen)
        for j, m in enumerate(s.measures)
        for fld, msg in m.advice(market)
    ]
    with pytest.warns(InputWarning) as record:
        ScenarioSet(market=market, scenarios=scen)
    got = [str(w.message) for w in record if issubclass(w.category, InputWarning)]
    assert got == want and len(want) > 50


class _OwnAdvice(MEASURES["price_floor"]):  # type: ignore[misc,valid-type]
    """A subclass with its own per-measure advice and no batched one."""

    def advice(self, market) -> list[tuple[str, str]]:
        return [("floor", "a round number")] if self.floor == 100.0 else []


def test_a_type_with_its_own_advice_is_advised_one_by_one(plain_market) -> None:
    market = plain_market
    ms = [_OwnAdvice(importers=["R00"], floor=f) for f in (100.0, 1e9)]
    scen = [Scenario(name="own", measures=ms)]
    with pytest.warns(InputWarning, match="a round number") as record:
        ScenarioSet(market=market, scenarios=scen)
    assert [str(w.message) for w in record] == [
        "<scenarios>: scenario[0].measure[0].floor: a round number"
    ]
