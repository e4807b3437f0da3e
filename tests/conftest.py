"""Shared fixtures: a small valid market (DESIGN §6 format) and files that use it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builders import ELASTICITIES, FOUR, market
from toy import TOY_MARKET, TOY_SCENARIOS_TOML, to_toml

import tradepolicy as tp


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture
def toy_market_dict() -> dict[str, Any]:
    """A fresh deep copy of the toy market definition (safe to mutate)."""
    return copy.deepcopy(TOY_MARKET)


@pytest.fixture
def toy_market(toy_market_dict: dict[str, Any]) -> tp.Market:
    return tp.Market.from_dict(toy_market_dict, source="toy")


@pytest.fixture
def write_toml(tmp_path: Path) -> Callable[..., Path]:
    """``write_toml(data_or_text, name="file.toml") -> Path`` inside ``tmp_path``."""

    def _write(data: dict[str, Any] | str, name: str = "file.toml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = data if isinstance(data, str) else to_toml(data)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def toy_files(
    write_toml: Callable[..., Path], toy_market_dict: dict[str, Any]
) -> tuple[Path, Path]:
    """(market path, scenario path) in tmp_path; the scenarios refer to ``toy.toml``."""
    market = write_toml(toy_market_dict, "toy.toml")
    scenarios = write_toml(TOY_SCENARIOS_TOML, "toy_scenarios.toml")
    return market, scenarios


@pytest.fixture(scope="module")
def four() -> tp.Market:
    """The ``FOUR`` market with a 25% base tariff on CHN → USA."""
    return market(FOUR, **ELASTICITIES, tariffs={"CHN": {"USA": 0.25}})


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the figures the property suites gathered (examples run, shares by outcome)."""
    from property_figures import LINES

    if LINES:
        terminalreporter.section("property suite figures")
        for line in LINES:
            terminalreporter.write_line(line)
