"""Back-casts of real supply-restriction episodes (docs/backcasts.md).

Each episode is run on its shipped market at the short-run horizon (capacity fixed, private
inventories respond) as an export quota. One parameter is calibrated: the **binding share**
``b`` of an observed export cut, the part of the cut that reaches the year's market after
private inventories and licences granted buffer it (``b = 1``: the observed cut holds all
year; real licensing episodes behaved more like a temporary wedge). ``b`` is fitted on the
calibration episodes only (at most two) and applied unchanged to the held-out ones. Each
episode also shows the static medium-run model with the full observed cut.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

log = logging.getLogger(__name__)

__all__ = ["Backcast", "BackcastRun", "load_episodes", "run_backcasts"]

#: at most this many episodes calibrate; the rest are held out (DESIGN §12)
MAX_CALIBRATION = 2
ROLES = ("calibration", "held_out", "unmatched")


@dataclass
class Backcast:
    """One episode: its representation, observed range and (after a run) the model's outcome."""

    episode: str
    label: str
    market: str
    exporter: str
    role: str
    observed_cut: float
    cut_source: str
    outcome: str
    numerator: str
    denominator: str
    observed_low: float
    observed_high: float
    observed_source: str
    note: str
    short_run: float = math.nan  #: model outcome, short run, binding share b
    medium_run: float = math.nan  #: static medium-run model, the full observed cut

    @property
    def matched(self) -> bool:
        return self.role != "unmatched"

    @property
    def within(self) -> bool:
        """Whether the short-run outcome lies in the observed range (computed, not stored)."""
        return bool(self.observed_low <= self.short_run <= self.observed_high)


@dataclass
class BackcastRun:
    episodes: list[Backcast]
    binding_share: float

    @property
    def matched(self) -> list[Backcast]:
        return [e for e in self.episodes if e.matched]

    def summary_line(self) -> str:
        k = sum(e.within for e in self.matched)
        return f"backcasts: {k}/{len(self.matched)} within observed ranges"


def _data_file() -> Path:
    from tradepolicy.calibration.pipeline import data_dir

    return data_dir() / "backcasts.csv"


def load_episodes(path: Path | None = None) -> list[Backcast]:
    """The episodes of ``calibration/data/backcasts.csv`` (every row names its sources)."""
    from tradepolicy.errors import InputError

    path = path or _data_file()
    out, problems = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=2):
            if row["role"] not in ROLES:
                problems.append((f"line {i}: role", f"{row['role']!r} (allowed: {ROLES})"))
                continue
            num = {}
            for k in ("observed_cut", "observed_low", "observed_high"):
                num[k] = float(row[k]) if row[k] else math.nan
            if row["role"] != "unmatched":
                if not (row["cut_source"] and row["observed_source"]):
                    problems.append((f"line {i}", "a matched episode needs its sources"))
                if not 0 < num["observed_cut"] < 1:
                    problems.append((f"line {i}: observed_cut", "must be in (0, 1)"))
                if not 0 < num["observed_low"] <= num["observed_high"]:
                    problems.append((f"line {i}: observed_low", "need 0 < low <= high"))
            elif not row["note"]:
                problems.append((f"line {i}: note", "say why the episode is not matched"))
            out.append(Backcast(**{**row, **num}))  # type: ignore[arg-type]
    if sum(e.role == "calibration" for e in out) > MAX_CALIBRATION:
        problems.append(("role", f"at most {MAX_CALIBRATION} calibration episodes"))
    if problems:
        raise InputError(str(path), problems)
    return out


def outcome(ep: Backcast, cut: float, horizon: str) -> float:
    """The model's outcome for ``ep`` when ``cut`` of the exporter's base exports is withheld:
    the numerator region's composite price relative to base (over the denominator's)."""
    import tradepolicy as tp

    market = tp.load_market(ep.market).at_horizon(horizon)
    i = market.index(ep.exporter)[0]
    exports = float(market.flows[i].sum() - market.flows[i, i])
    scen = tp.Scenario(
        name="episode",
        measure=[
            {"type": "export_quota", "exporter": ep.exporter, "quantity": (1 - cut) * exports}
        ],
    )
    ds = tp.solve(tp.ScenarioSet(market=market, scenarios=[scen]))
    if not bool(ds["converged"].sel(scenario="episode").all()):
        raise RuntimeError(f"{ep.episode}: the solve did not converge")
    cp = ds["consumer_price"].isel(commodity=0)
    rel = cp.sel(scenario="episode") / cp.sel(scenario="baseline")
    value = float(rel.sel(region=ep.numerator))
    if ep.denominator:
        value /= float(rel.sel(region=ep.denominator))
    return value


def fit_binding_share(calibration: list[Backcast]) -> float:
    """The binding share ``b`` in (0, 1] that puts the calibration episodes' short-run
    outcomes at the geometric midpoints of their observed ranges (least squares in logs)."""

    def loss(b: float) -> float:
        return sum(
            math.log(outcome(e, b * e.observed_cut, "short"))
            - 0.5 * math.log(e.observed_low * e.observed_high)
            for e in calibration
        )

    if loss(1.0) <= 0:
        return 1.0
    return float(brentq(loss, 1e-3, 1.0, xtol=1e-5))


def run_backcasts(episodes: list[Backcast] | None = None) -> BackcastRun:
    """Fit ``b`` on the calibration episodes and run every matched episode with it."""
    episodes = load_episodes() if episodes is None else episodes
    cal = [e for e in episodes if e.role == "calibration"]
    if not cal:
        raise ValueError("no calibration episode: nothing to fit the binding share on")
    b = fit_binding_share(cal)
    for e in episodes:
        if e.matched:
            e.short_run = outcome(e, b * e.observed_cut, "short")
            e.medium_run = outcome(e, e.observed_cut, "medium")
    return BackcastRun(episodes, b)


def format_run(run: BackcastRun) -> str:
    """The per-episode tables and the last line ``backcasts: K/N within observed ranges``."""
    lines = [
        "Back-casts: short-run horizon (capacity fixed, private inventories respond), each "
        "episode as an export quota withholding b x the observed cut of the exporter's base "
        f"exports; b = {run.binding_share:.3f} (binding share: the part of the observed cut "
        "not buffered by inventories), fitted on the calibration episodes only.",
        "",
    ]
    for e in run.episodes:
        lines.append(f"{e.label} [{e.episode}] - {e.role.replace('_', ' ')}")
        if not e.matched:
            lines += [f"  not matched: {e.note}", ""]
            continue
        rows = [
            ("market", e.market),
            ("representation", f"export quota on {e.exporter}: observed cut {e.observed_cut:.0%}"),
            ("", f"  ({e.cut_source})"),
            ("model cut (b x observed)", f"{run.binding_share * e.observed_cut:.1%}"),
            ("outcome", e.outcome),
            ("model, short run", f"x{e.short_run:.2f}"),
            ("observed range", f"x{e.observed_low:.2f} - x{e.observed_high:.2f}"),
            ("", f"  ({e.observed_source})"),
            ("static medium run, full cut", f"x{e.medium_run:.2f}"),
            ("verdict", "within the observed range" if e.within else "OUTSIDE the observed range"),
        ]
        lines += [f"  {k:<30}{v}" for k, v in rows]
        lines.append("")
    held = [e for e in run.matched if e.role == "held_out"]
    lines.append(
        f"held out: {sum(e.within for e in held)}/{len(held)} within their observed ranges; "
        f"{len(run.episodes) - len(run.matched)} episode(s) not matched (see above)"
    )
    lines.append(run.summary_line())
    return "\n".join(lines)


def outcomes_table(run: BackcastRun):  # -> pandas.DataFrame
    """One row per episode (for docs and notebooks)."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "episode": e.episode,
                "role": e.role,
                "short_run": e.short_run,
                "observed_low": e.observed_low,
                "observed_high": e.observed_high,
                "within": e.within if e.matched else np.nan,
                "medium_run": e.medium_run,
            }
            for e in run.episodes
        ]
    )
