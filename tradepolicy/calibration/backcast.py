"""Back-casts of real supply-restriction episodes (docs/backcasts.md).

Each episode is run on its shipped market at the short-run horizon (capacity fixed, private
inventories respond) as an export quota. One parameter per **kind of restriction** is
calibrated: the **binding share** ``b`` of an observed export cut, the part of the cut that
reaches the year's market after private inventories and licences granted buffer it (``b = 1``:
the observed cut holds all year). The kind is declared per episode in the data, with the
source describing the measure: ``licensing`` (exports need a licence, granted with delay) or
``ban`` (exports physically stopped or capped). Each kind's ``b`` is fitted on that kind's one
calibration episode (at most two in all, at most one per kind) and applied unchanged to the
held-out episodes of the same kind; an episode of a kind with no calibration episode is
refused. Each episode also shows the static medium-run model with the full observed cut.
"""

from __future__ import annotations

import csv
import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

log = logging.getLogger(__name__)

__all__ = ["Backcast", "BackcastRun", "binding_shares", "load_episodes", "run_backcasts"]

#: at most this many episodes calibrate; the rest are held out
MAX_CALIBRATION = 2
ROLES = ("calibration", "held_out", "unmatched")
#: kinds of restriction, each with its own binding share (docs/backcasts.md)
KINDS = ("licensing", "ban")


@dataclass
class Backcast:
    """One episode: its representation, observed range and (after a run) the model's outcome."""

    episode: str
    label: str
    market: str
    exporter: str
    kind: str  #: "licensing" or "ban": selects the binding share
    kind_source: str  #: the source describing the measure
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
    short_run: float = math.nan  #: model outcome, short run, the binding share of its kind
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
    binding_shares: dict[str, float]  #: {kind: b}, each fitted on that kind's calibration episode

    @property
    def matched(self) -> list[Backcast]:
        return [e for e in self.episodes if e.matched]

    def binding_share(self, kind: str) -> float:
        """The fitted binding share of ``kind`` (ValueError if no episode of it calibrates)."""
        return _share(self.binding_shares, kind)

    def calibrated_on(self, kind: str) -> Backcast:
        return next(e for e in self.episodes if e.role == "calibration" and e.kind == kind)

    def held_out(self, kind: str | None = None) -> list[Backcast]:
        return [e for e in self.matched if e.role == "held_out" and kind in (None, e.kind)]

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
            if row["kind"] not in KINDS:
                problems.append((f"line {i}: kind", f"{row['kind']!r} (allowed: {KINDS})"))
                continue
            if not row["kind_source"]:
                problems.append(
                    (f"line {i}: kind_source", "name the source describing the measure")
                )
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
    for kind in KINDS:
        cal = [e.episode for e in out if e.role == "calibration" and e.kind == kind]
        if len(cal) > 1:
            problems.append(
                ("role", f"at most one calibration episode per kind; {kind!r} has {cal}")
            )
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
        measures=[
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
    outcomes at the geometric midpoints of their observed ranges (the log deviations sum to
    zero; with one episode, as here per kind, its outcome is at its midpoint)."""

    def loss(b: float) -> float:
        return sum(
            math.log(outcome(e, b * e.observed_cut, "short"))
            - 0.5 * math.log(e.observed_low * e.observed_high)
            for e in calibration
        )

    if loss(1.0) <= 0:
        return 1.0
    return float(brentq(loss, 1e-3, 1.0, xtol=1e-5))


def _no_share(kind: str, fitted) -> str:
    return (
        f"no calibration episode of kind {kind!r}: its binding share cannot be fitted "
        f"(kinds with a calibration episode: {', '.join(sorted(fitted)) or 'none'}); "
        "the share of another kind is not used in its place"
    )


def _share(shares: dict[str, float], kind: str) -> float:
    if kind not in shares:
        raise ValueError(_no_share(kind, shares))
    return shares[kind]


def _fit(episodes: list[Backcast]) -> dict[str, float]:
    """{kind: b}, each fitted on the kind's calibration episodes only; refuses a matched
    episode whose kind has no calibration episode (before any solve)."""
    cal = {k: [e for e in episodes if e.role == "calibration" and e.kind == k] for k in KINDS}
    cal = {k: v for k, v in cal.items() if v}
    if not cal:
        raise ValueError("no calibration episode: nothing to fit a binding share on")
    for e in episodes:
        if e.matched and e.kind not in cal:
            raise ValueError(f"{e.episode}: {_no_share(e.kind, cal)}")
    return {k: fit_binding_share(v) for k, v in cal.items()}


def binding_shares(episodes: list[Backcast] | None = None) -> dict[str, float]:
    """The fitted binding share per kind of restriction, ``{kind: b}`` (for risk sets:
    a ``kind`` event withholds ``b[kind] x`` the announced cut; docs/backcasts.md).

    Fitted on the calibration episodes of ``calibration/data/backcasts.csv`` (or
    ``episodes``) only; the shipped data's values are cached."""
    if episodes is None:
        return dict(_shipped_shares())
    return _fit(episodes)


@functools.lru_cache(maxsize=1)
def _shipped_shares() -> tuple[tuple[str, float], ...]:
    return tuple(_fit(load_episodes()).items())


def run_backcasts(episodes: list[Backcast] | None = None) -> BackcastRun:
    """Fit ``b`` per kind on the calibration episodes and run every matched episode with its
    kind's ``b``."""
    episodes = load_episodes() if episodes is None else episodes
    shares = _fit(episodes)
    for e in episodes:
        if e.matched:
            e.short_run = outcome(e, _share(shares, e.kind) * e.observed_cut, "short")
            e.medium_run = outcome(e, e.observed_cut, "medium")
    return BackcastRun(episodes, shares)


def format_run(run: BackcastRun) -> str:
    """The per-episode tables and the last line ``backcasts: K/N within observed ranges``."""
    fits = "; ".join(
        f"b_{k} = {b:.3f} (fitted on {run.calibrated_on(k).episode})"
        for k, b in run.binding_shares.items()
    )
    lines = [
        "Back-casts: short-run horizon (capacity fixed, private inventories respond), each "
        "episode as an export quota withholding b_kind x the observed cut of the exporter's "
        "base exports, b_kind the binding share (the part of the observed cut not buffered by "
        "inventories) of the episode's kind of restriction, fitted on that kind's calibration "
        f"episode only: {fits}.",
        "",
    ]
    for e in run.episodes:
        lines.append(f"{e.label} [{e.episode}] - {e.role.replace('_', ' ')}, kind {e.kind}")
        if not e.matched:
            lines += [f"  not matched: {e.note}", ""]
            continue
        b = run.binding_share(e.kind)
        rows = [
            ("market", e.market),
            ("kind of restriction", e.kind),
            ("", f"  ({e.kind_source})"),
            ("representation", f"export quota on {e.exporter}: observed cut {e.observed_cut:.0%}"),
            ("", f"  ({e.cut_source})"),
            (
                f"model cut (b_{e.kind} x observed)",
                f"{b * e.observed_cut:.1%} (b_{e.kind} = {b:.3f})",
            ),
            ("outcome", e.outcome),
            ("model, short run", f"x{e.short_run:.2f}"),
            ("observed range", f"x{e.observed_low:.2f} - x{e.observed_high:.2f}"),
            ("", f"  ({e.observed_source})"),
            ("static medium run, full cut", f"x{e.medium_run:.2f}"),
            ("verdict", "within the observed range" if e.within else "OUTSIDE the observed range"),
        ]
        if e.role == "calibration":
            rows.append(("", f"  (fitted: b_{e.kind} puts this episode at its midpoint)"))
        lines += [f"  {k:<36}{v}" for k, v in rows]
        lines.append("")
    held = run.held_out()
    lines.append(
        f"held out: {sum(e.within for e in held)}/{len(held)} within their observed ranges "
        f"({len(held)} held-out episode(s): "
        + (", ".join(f"{e.episode} [{e.kind}]" for e in held) or "none")
        + f"); {len(run.episodes) - len(run.matched)} episode(s) not matched (see above)"
    )
    for k in run.binding_shares:
        if not run.held_out(k):
            unmatched = [e.episode for e in run.episodes if e.kind == k and not e.matched]
            lines.append(
                f"b_{k} has no held-out test here: it is fitted on its only matched episode"
                + (
                    f"; {', '.join(unmatched)} would be its test but is not matched (see its "
                    "note for the data it needs)"
                    if unmatched
                    else ""
                )
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
                "kind": e.kind,
                "binding_share": run.binding_shares.get(e.kind, np.nan),
                "short_run": e.short_run,
                "observed_low": e.observed_low,
                "observed_high": e.observed_high,
                "within": e.within if e.matched else np.nan,
                "medium_run": e.medium_run,
            }
            for e in run.episodes
        ]
    )
