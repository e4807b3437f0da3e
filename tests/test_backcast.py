"""`tradepolicy backcast` (docs/backcasts.md): split, verdicts from the numbers, CLI."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from tradepolicy.calibration import backcast as bc
from tradepolicy.cli import app


@pytest.fixture(scope="module")
def run() -> bc.BackcastRun:
    return bc.run_backcasts()


def test_split_has_at_most_two_calibration_episodes_and_sources():
    eps = bc.load_episodes()
    assert 1 <= sum(e.role == "calibration" for e in eps) <= bc.MAX_CALIBRATION
    assert any(e.role == "held_out" for e in eps)
    for e in eps:
        if e.matched:
            assert e.cut_source and e.observed_source
        else:
            assert e.note


def test_binding_share_reproduces_the_calibration_episode(run):
    assert 0 < run.binding_share <= 1
    for e in run.matched:
        if e.role == "calibration":
            mid = (e.observed_low * e.observed_high) ** 0.5
            assert e.short_run == pytest.approx(mid, rel=1e-3)
        # the static medium run with the full cut overshoots: why the short run is used
        assert e.medium_run > e.short_run


def test_verdicts_are_computed_from_the_numbers(run):
    for e in run.matched:
        assert e.within == (e.observed_low <= e.short_run <= e.observed_high)
        moved = dataclasses.replace(e, short_run=e.observed_high * 1.5)
        assert not moved.within
        inside = dataclasses.replace(e, short_run=(e.observed_low + e.observed_high) / 2)
        assert inside.within
    k = sum(e.within for e in run.matched)
    assert run.summary_line() == f"backcasts: {k}/{len(run.matched)} within observed ranges"


def test_held_out_episode_uses_the_fitted_share_unchanged(run):
    e = next(e for e in run.matched if e.role == "held_out")
    again = bc.outcome(e, run.binding_share * e.observed_cut, "short")
    assert again == pytest.approx(e.short_run, rel=1e-9)


def test_too_many_calibration_episodes_are_refused(tmp_path):
    src = bc._data_file().read_text().replace(",held_out,", ",calibration,")
    path = tmp_path / "b.csv"
    path.write_text(src)
    with pytest.raises(ValueError, match="at most 2 calibration"):
        bc.load_episodes(path)


def test_cli_prints_the_last_line():
    out = CliRunner().invoke(app, ["backcast"])
    assert out.exit_code == 0, out.output
    last = out.output.strip().splitlines()[-1]
    assert last.startswith("backcasts: ") and last.endswith(" within observed ranges")
    assert "held out" in out.output and "not matched" in out.output
