"""`tradepolicy backcast` (docs/backcasts.md): split, one binding share per kind of
restriction, verdicts from the numbers, CLI."""

from __future__ import annotations

import copy
import dataclasses
import re

import pytest
from typer.testing import CliRunner

from tradepolicy.calibration import backcast as bc
from tradepolicy.cli import app


@pytest.fixture(scope="module")
def run() -> bc.BackcastRun:
    return bc.run_backcasts()


def test_split_at_most_two_calibration_episodes_one_per_kind_with_sources():
    eps = bc.load_episodes()
    cal = [e for e in eps if e.role == "calibration"]
    assert 1 <= len(cal) <= bc.MAX_CALIBRATION == 2
    for kind in bc.KINDS:
        assert sum(e.kind == kind for e in cal) <= 1
    assert any(e.role == "held_out" for e in eps)
    for e in eps:
        assert e.kind in bc.KINDS and e.kind_source
        if e.matched:
            assert e.cut_source and e.observed_source
        else:
            assert e.note


def test_each_calibration_episode_sits_at_its_fitted_target(run):
    cal = [e for e in run.matched if e.role == "calibration"]
    assert set(run.binding_shares) == {e.kind for e in cal}
    for e in cal:
        assert 0 < run.binding_share(e.kind) <= 1
        mid = (e.observed_low * e.observed_high) ** 0.5
        assert e.short_run == pytest.approx(mid, rel=1e-3)
    for e in run.matched:
        # the static medium run with the full cut overshoots: why the short run is used
        assert e.medium_run > e.short_run


def test_held_out_dytb_uses_b_licensing_unchanged(run):
    e = next(e for e in run.matched if e.episode == "dytb_cn_licensing_2025")
    assert e.role == "held_out" and e.kind == "licensing"
    b = run.binding_share("licensing")
    # fitted on the licensing calibration episode alone: the ban episode does not move it
    ga = [x for x in run.episodes if x.role == "calibration" and x.kind == "licensing"]
    assert [x.episode for x in ga] == ["ga_cn_licensing_2023"]
    assert bc.fit_binding_share(ga) == b
    assert bc.binding_shares() == run.binding_shares
    again = bc.outcome(e, b * e.observed_cut, "short")
    assert again == e.short_run


def test_verdicts_are_computed_from_the_numbers(run):
    for e in run.matched:
        assert e.within == (e.observed_low <= e.short_run <= e.observed_high)
        moved = dataclasses.replace(e, short_run=e.observed_high * 1.5)
        assert not moved.within
        inside = dataclasses.replace(e, short_run=(e.observed_low + e.observed_high) / 2)
        assert inside.within
    k = sum(e.within for e in run.matched)
    assert run.summary_line() == f"backcasts: {k}/{len(run.matched)} within observed ranges"


def _rewrite(tmp_path, **roles):
    lines = bc._data_file().read_text(encoding="utf-8").splitlines(keepends=True)
    for episode, (old, new) in roles.items():
        i = next(i for i, ln in enumerate(lines) if ln.startswith(episode + ","))
        assert f",{old}," in lines[i]
        lines[i] = lines[i].replace(f",{old},", f",{new},", 1)
    path = tmp_path / "b.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_too_many_calibration_episodes_are_refused(tmp_path):
    src = bc._data_file().read_text().replace(",held_out,", ",calibration,")
    path = tmp_path / "b.csv"
    path.write_text(src)
    with pytest.raises(ValueError, match="at most 2 calibration"):
        bc.load_episodes(path)


def test_two_calibration_episodes_of_one_kind_are_refused(tmp_path):
    path = _rewrite(
        tmp_path,
        dytb_cn_licensing_2025=("held_out", "calibration"),
        co_cod_ban_2025=("calibration", "held_out"),
    )
    with pytest.raises(ValueError, match="at most one calibration episode per kind"):
        bc.load_episodes(path)


def test_unknown_kind_is_refused(tmp_path):
    path = _rewrite(tmp_path, co_cod_ban_2025=("ban", "embargo"))
    with pytest.raises(ValueError, match=r"kind: .embargo. \(allowed"):
        bc.load_episodes(path)


def test_a_kind_with_no_calibration_episode_is_refused(tmp_path):
    path = _rewrite(tmp_path, co_cod_ban_2025=("calibration", "held_out"))
    eps = bc.load_episodes(path)  # the split itself is allowed
    with pytest.raises(ValueError, match="co_cod_ban_2025: no calibration episode of kind 'ban'"):
        bc.run_backcasts(eps)
    with pytest.raises(ValueError, match="no calibration episode of kind 'ban'"):
        bc.binding_shares(eps)
    run = bc.BackcastRun(copy.deepcopy(eps), {"licensing": 0.2})
    with pytest.raises(ValueError, match="not used in its place"):
        run.binding_share("ban")


def test_cli_prints_fits_held_out_count_and_the_last_line(run):
    out = CliRunner().invoke(app, ["backcast"])
    assert out.exit_code == 0, out.output
    text = out.output
    last = text.strip().splitlines()[-1]
    assert last == run.summary_line()
    for kind, b in run.binding_shares.items():
        assert f"b_{kind} = {b:.3f} (fitted on {run.calibrated_on(kind).episode})" in text
    held = run.held_out()
    m = re.search(r"held out: (\d+)/(\d+) within .*\((\d+) held-out episode", text)
    assert m and int(m[2]) == int(m[3]) == len(held) == 1
    assert int(m[1]) == sum(e.within for e in held)
    assert "b_ban has no held-out test here" in text and "not matched" in text
