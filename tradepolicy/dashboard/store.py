"""The dashboard's data store: solves, saved scenarios and comparisons (no UI code).

One :class:`DashboardStore` per browser session holds that session's market, policy settings,
saved scenarios and results; sessions share nothing but the solve cache (:func:`solve_cached`,
:data:`SOLVES`, bounded in count and bytes), which is keyed on scalar keys (market reference,
a JSON key of the scenarios, the target, the number of draws and the seed) and returns
read-only Datasets.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import logging
import re
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import param
import xarray as xr

import tradepolicy as tp
from tradepolicy.dashboard.caching import WARNINGS_LOCK, SingleFlight
from tradepolicy.dashboard.config import ConfigError, PolicyConfig, scenario_key, scenarios_from_key
from tradepolicy.dashboard.indicators import comparison_long
from tradepolicy.dashboard.jobs import SessionJobs, served_document
from tradepolicy.dashboard.markets import MarketInfo, load_set_quietly, market_info
from tradepolicy.dashboard.persist import (
    MAX_SAVED,
    ShareError,
    decode_state,
    display_name,
    encode_state,
    read_uploaded_set,
    scenario_set_toml,
    with_title,
)
from tradepolicy.errors import InputError
from tradepolicy.scenario import Scenario, ScenarioSet

log = logging.getLogger(__name__)

MAX_COMPARE = 6
DRAW_SEED = 20260601  # fixed so that ranges are reproducible and cacheable
CURRENT = "current"
#: while no one-year view is on screen (the 2030 tab), the one-year solve of a served session
#: waits until the session has been this quiet (seconds): typing on the 2030 tab solves only
#: the 2030 pathway, and the one-year outcome follows in the first pause
ONE_YEAR_IDLE_S = 0.25


def draws_supported() -> bool:
    """Whether this tradepolicy solves Monte Carlo draws (``tp.solve(..., draws=N)``)."""
    return "draws" in inspect.signature(tp.solve).parameters


#: bounds of the solve cache shared by every session: the least recently used results are
#: dropped beyond this many results or this many bytes (a plain solve holds tens of kB, one
#: with draws about 2 kB per draw, scenario and region pair)
CACHE_MAX_ITEMS = 256
CACHE_MAX_BYTES = 256 * 2**20


class SolveCache:
    """A least-recently-used cache of solved Datasets bounded in count and in bytes.

    Keys are tuples of scalars; the size of an entry is its ``Dataset.nbytes``. An entry larger
    than the whole budget is returned but not kept. Thread-safe: the lock is not held while
    solving (other keys are served meanwhile), and sessions asking for the same new key at the
    same time wait for one solve (:class:`~tradepolicy.dashboard.caching.SingleFlight`).
    """

    def __init__(self, max_items: int = CACHE_MAX_ITEMS, max_bytes: int = CACHE_MAX_BYTES):
        if max_items < 1 or max_bytes < 1:
            raise ValueError("the solve cache needs room for at least one result")
        self.max_items, self.max_bytes = int(max_items), int(max_bytes)
        self._items: OrderedDict[tuple, tuple[xr.Dataset, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._flights = SingleFlight()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        with self._lock:  # (not halfway through another thread's keeping and dropping)
            return len(self._items)

    @property
    def nbytes(self) -> int:
        """Bytes held (sum of the cached Datasets' ``nbytes``)."""
        with self._lock:
            return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def get(self, key: tuple, solve: Callable[[], xr.Dataset]) -> xr.Dataset:
        """The cached result of ``key``, or ``solve()`` kept under ``key``."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key][0]
        ds, solved = self._flights.run(key, lambda: self._solve_and_keep(key, solve))
        with self._lock:
            if solved:
                self.misses += 1
            else:  # solved meanwhile for another session
                self.hits += 1
        return ds

    def _solve_and_keep(self, key: tuple, solve: Callable[[], xr.Dataset]) -> xr.Dataset:
        ds = solve()
        size = int(ds.nbytes)
        with self._lock:
            if size > self.max_bytes or key in self._items:
                return ds
            self._items[key] = (ds, size)
            self._bytes += size
            while len(self._items) > self.max_items or self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
        return ds


#: the solve cache shared by every session of the process
SOLVES = SolveCache()


def later(fn: Callable[[], None]) -> Any | None:
    """Run ``fn`` in the next tick of the served page's event loop, as its own callback (so
    the changes made so far reach the browser first); returns the document, or None after
    running ``fn`` now (no served page: a notebook, a test)."""
    import panel as pn

    doc = pn.state.curdoc
    if doc is None or getattr(doc, "session_context", None) is None:
        fn()
        return None
    from panel.io.state import set_curdoc

    def tick() -> None:
        with set_curdoc(doc):
            fn()

    doc.add_next_tick_callback(tick)
    return doc


def scenario_set(info: MarketInfo, scenarios: list[Scenario], target: float | None) -> ScenarioSet:
    """The scenarios on ``info``'s market (or whole chain) with the market's target bloc
    (:attr:`MarketInfo.bloc`) at ``target``, recorded in the results' attributes
    (``target_bloc``, ...); raises :class:`InputError` for scenarios that do not fit it."""
    bloc = info.bloc_target(target) if target is not None else None
    return ScenarioSet(
        market=info.model,  # type: ignore[arg-type]  # a Chain is solved like a market
        scenarios=list(scenarios),
        target_share=target,
        target=bloc,
    )


def stage_view(ds: xr.Dataset, stage: str) -> xr.Dataset:
    """One stage of a chain's results as the results of one market (``commodity`` of length
    one), which every view reads; the chain's attributes are kept."""
    return ds.rename(stage="commodity").sel(commodity=[stage])


def solve_cached(
    market_ref: str, key: str, target: float | None, draws: int = 0, seed: int = DRAW_SEED
) -> xr.Dataset:
    """Solve the scenarios of ``key`` (:func:`scenario_key`) on a market, dependence read on
    the market's target bloc at ``target``; cached across sessions (:data:`SOLVES`) by its
    scalar arguments. The returned Dataset is shared: never modify it."""

    def solve() -> xr.Dataset:
        info = market_info(market_ref)
        kwargs: dict[str, Any] = {"draws": draws, "seed": seed} if draws else {}
        with WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", tp.errors.InputWarning)  # reported by evaluate()
            sset = scenario_set(info, scenarios_from_key(key), target)
        return tp.solve(sset, **kwargs)  # (a solve thread: no warning filter changed here)

    return SOLVES.get((market_ref, key, target, int(draws), int(seed)), solve)


@dataclass(frozen=True)
class Outcome:
    """The result of solving some scenarios, with everything to tell the user in words.

    ``ds`` is None when nothing could be solved (``problems`` says why); ``failures`` maps a
    scenario that was not solved to a plain explanation; ``notes`` are input warnings. For a
    value chain ``ds`` is the stage shown (:func:`stage_view`) and ``chain_ds`` the whole
    chain's results (every stage along ``stage``).
    """

    ds: xr.Dataset | None
    scenarios: tuple[str, ...]
    problems: tuple[str, ...] = ()
    failures: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    chain_ds: xr.Dataset | None = None

    @property
    def full(self) -> xr.Dataset | None:
        """Everything solved: the chain's results, or the market's."""
        return self.chain_ds if self.chain_ds is not None else self.ds

    def at_stage(self, stage: str) -> xr.Dataset | None:
        """The results of one stage of a chain (None for a market or without results)."""
        return None if self.chain_ds is None else stage_view(self.chain_ds, stage)

    @property
    def ok(self) -> bool:
        return self.ds is not None

    def solved(self, name: str) -> bool:
        return self.ds is not None and name in self.scenarios and name not in self.failures


_WHERE = re.compile(r"scenario\[(\d+)\]\.measure\[(\d+)\]\.?(.*)")


def _plain_input_problem(field_name: str, msg: str, scenarios: list[Scenario]) -> str:
    m = _WHERE.match(field_name)
    if m:
        i, j, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        sc = scenarios[i]
        kind = sc.measures[j].type.replace("_", " ")
        who = f"{sc.name}: " if sc.name != CURRENT else ""
        return f"{who}{kind}{' ' + rest if rest else ''}: {msg}"
    return f"{field_name}: {msg}" if field_name else msg


def input_error_text(exc: InputError) -> str:
    """An :class:`InputError` on one line: the file, then each field and its problem."""
    parts = [f"{f}: {m}" if f else m for f, m in exc.problems]
    return f"{exc.source}: " + "; ".join(parts)


def plain_failure(message: str) -> str:
    """What to tell a negotiator when a scenario has no solution."""
    msg = message.strip()
    if msg.lower().startswith("infeasible"):
        reason = msg.split(":", 1)[1].strip() if ":" in msg else msg
        return f"This combination of measures has no market equilibrium: {reason}"
    return (
        "The model did not find an equilibrium for this setting (the solver did not converge"
        f"{': ' + msg if msg else ''}). No numbers are shown; try a less extreme setting."
    )


def evaluate(
    info: MarketInfo,
    scenarios: list[Scenario],
    target: float | None,
    draws: int = 0,
) -> Outcome:
    """Check and solve ``scenarios`` on ``info``'s market; never raises for bad settings."""
    names = tuple(s.name for s in scenarios)
    start = time.perf_counter()
    notes: list[str] = []
    with WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            scenario_set(info, list(scenarios), target)
        except InputError as exc:
            problems = tuple(_plain_input_problem(f, m, scenarios) for f, m in exc.problems)
            return Outcome(None, names, problems=problems)
    for w in caught:
        text = str(w.message)
        text = re.sub(r"^<scenarios>: scenario\[\d+\]\.", "", text)
        notes.append(text)
    if draws and not getattr(info.market, "has_uncertainty", True):
        notes.append(
            f"{info.id} records no elasticity standard errors: every draw equals the point "
            "estimate, so the ranges are zero"
        )
    try:
        ds = solve_cached(info.ref, scenario_key(scenarios), target, int(draws), DRAW_SEED)
    except Exception as exc:  # shown as a message, logged with its traceback
        log.exception("solve failed for %s", names)
        return Outcome(None, names, problems=(f"The model could not be solved: {exc}",))
    chain_ds = None
    if info.stage is not None:  # a chain is solved whole, and shown one stage at a time
        chain_ds, ds = ds, stage_view(ds, info.stage)
    failures = {s: plain_failure(m) for s, _, m in ds.tp.failed() if s in names}
    return Outcome(
        ds,
        names,
        failures=failures,
        notes=tuple(notes),
        seconds=time.perf_counter() - start,
        chain_ds=chain_ds,
    )


@dataclass(frozen=True)
class SavedScenario:
    """A scenario kept by the user: its measures and, if made with the widgets, the settings."""

    scenario: Scenario
    source: str
    settings: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def display(self) -> str:
        """The scenario's name in words (:func:`~tradepolicy.dashboard.persist.display_name`)."""
        return display_name(self.scenario)

    @property
    def origin(self) -> str:
        """Where it comes from, in words."""
        kind, _, what = self.source.partition(":")
        if kind == "set":
            return f"{what} set"
        if kind == "file":
            return f"{what}.toml (uploaded)"
        return "these controls"

    def to_json(self) -> dict[str, Any]:
        """As kept in the browser (:meth:`from_json` reads it back)."""
        return {
            "scenario": self.scenario.to_dict(),
            "source": self.source,
            "settings": self.settings,
        }

    @classmethod
    def from_json(cls, data: Any) -> SavedScenario:
        """Read :meth:`to_json` (raises ``ValueError`` for anything else)."""
        if not isinstance(data, dict) or not isinstance(data.get("source"), str):
            raise ValueError("not a saved scenario")
        settings = data.get("settings")
        if settings is not None and not isinstance(settings, dict):
            raise ValueError("its settings are not a table")
        return cls(Scenario.model_validate(data.get("scenario")), data["source"], settings)

    def renamed(self, new: str) -> SavedScenario:
        sc = Scenario(
            name=new, description=self.scenario.description, measures=self.scenario.measures
        )
        return SavedScenario(sc, self.source, self.settings)


def _choices(saved: list[SavedScenario]) -> dict[str, str]:
    """Saved scenarios to choose from: "identifier — name in words" -> identifier."""
    return {(f"{s.name} — {s.display}" if s.display != s.name else s.name): s.name for s in saved}


def check_snapshot(policy: PolicyConfig, values: dict[str, Any]) -> None:
    """Refuse editor settings read from a link or the browser that do not fit the market shown.

    ``values`` is a :meth:`PolicyConfig.snapshot` (keys it does not have are ignored): the
    ``members`` must be regions of the market, ``free_trade`` true or false, and each of the
    ``measures`` an entry the editor can restore (its registered type and its fields, checked by
    the editor itself). The values of the fields are checked once restored
    (:meth:`PolicyConfig.measures`).

    Raises
    ------
    ValueError
        Naming the setting (``members``, ``free_trade``, ``measures[i]``), what is wrong and
        what is allowed.
    """
    if "members" in values:
        members = values["members"]
        if not isinstance(members, list):
            raise ValueError(f"members: expected a list of region codes, got {members!r}")
        allowed = list(policy.param.members.objects)
        bad = [m for m in members if m not in allowed]
        if bad:
            shown = ", ".join(map(str, allowed))
            raise ValueError(f"members: {', '.join(map(repr, bad))} not offered (allowed: {shown})")
    if "free_trade" in values and not isinstance(values["free_trade"], bool):
        raise ValueError(f"free_trade: expected true or false, got {values['free_trade']!r}")
    if "measures" in values:
        measures = values["measures"]
        if not isinstance(measures, list):
            raise ValueError(f"measures: expected a list of measures, got {measures!r}")
        for i, entry in enumerate(measures):
            policy._checked(i, entry)  # the editor's own check: ValueError naming measures[i]
            on = entry.get("on", True)
            if not isinstance(on, bool):
                raise ValueError(f"measures[{i}].on: expected true or false, got {on!r}")


def _describe(info: MarketInfo, measure: Any) -> str:
    """A measure in words; in a chain, after the name of the stage it acts on."""
    stage = info.for_stage(measure.stage)
    text = measure.describe(stage.market)
    return f"{info.stages[stage.market.id]}: {text}" if info.chain is not None else text


def _one_at_a_time(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a store method holding its session's lock: a store changed from several threads
    (a notebook's) must not solve and publish two changes at once."""

    @functools.wraps(method)
    def locked(self: DashboardStore, *args: Any, **kwargs: Any) -> Any:
        with self._session_lock:
            return method(self, *args, **kwargs)

    return locked


class DashboardStore(param.Parameterized):
    """One session's state: market, settings, results, saved scenarios and the comparison."""

    market: param.Selector[str | None] = param.Selector(default=None, objects=[], doc="Market id")
    stage: param.Selector[str | None] = param.Selector(
        default=None, objects=[], allow_None=True, doc="Stage of a chain shown by every view"
    )
    markets = param.Dict(default={}, doc="Market id -> reference (shipped id or path)")
    info = param.ClassSelector(class_=MarketInfo, default=None, allow_None=True)
    config = param.ClassSelector(class_=PolicyConfig)
    target = param.Number(0.60, bounds=(0.01, 1.0), doc="Dependency target share")
    uncertainty = param.Boolean(False, doc="Solve Monte Carlo draws for ranges")
    draws = param.Integer(200, bounds=(10, 5000))
    baseline = param.ClassSelector(class_=Outcome, default=None, allow_None=True)
    current = param.ClassSelector(class_=Outcome, default=None, allow_None=True)
    saved = param.List(default=[], item_type=SavedScenario)
    compare = param.ListSelector(default=[], objects=[])
    comparison = param.ClassSelector(class_=Outcome, default=None, allow_None=True)
    one_year_shown = param.Boolean(
        default=True,
        doc="Whether a view of the one-year outcome is on screen (the app: not on the 2030 "
        "tab); while none is, a served session's one-year solve waits for a pause",
    )
    notice = param.String(default="", doc="Result of the last save/rename/delete/load")

    def __init__(self, markets: dict[str, str], market: str | None = None, **params: Any):
        if not markets:
            raise ValueError("no markets to show: ship a market or pass a market file")
        params.setdefault("config", PolicyConfig())
        super().__init__(markets=markets, **params)
        # changes from several threads (outside a served page) take turns (re-entrant: a
        # market switch solves inside), and a solve superseded by a later change of the
        # settings is skipped (see update_current)
        self._session_lock = threading.RLock()
        self._tickets = itertools.count()
        self._latest = -1
        self._saved_by_market: dict[str, list[SavedScenario]] = {}
        self._link_problem = ""  # why the link's scenario was not opened (kept in notices)
        self._applying_market = False
        # a served session's one-year solves run in its queue of jobs, off the event loop
        # (jobs.SessionJobs: one at a time, only the latest settings, none after a close)
        self.jobs = SessionJobs()
        self.param.market.objects = list(markets)
        cfg = self.policy
        cfg.param.watch(self._on_settings, [p for p in cfg.param if p != "name"])
        self.market = market if market in markets else next(iter(markets))
        if self.info is None:  # the same market as the default: load it explicitly
            self._load_market()

    @property
    def policy(self) -> PolicyConfig:
        """``config``, checked: ``__init__`` always sets it (param types it as optional)."""
        if self.config is None:
            raise RuntimeError("the dashboard store has no PolicyConfig")
        return self.config

    def _market_info(self) -> MarketInfo:
        """``info``, checked: the market ``__init__`` loads (None only before that)."""
        if self.info is None:
            raise RuntimeError("no market loaded in the dashboard store")
        return self.info

    # -- market and settings ---------------------------------------------------------------
    @param.depends("market", watch=True)
    @_one_at_a_time
    def _load_market(self) -> None:
        self.jobs.cancel()  # the previous market's solves waiting or running: not published
        if self.info is not None:
            self._saved_by_market[self.info.id] = list(self.saved)
        info = market_info(self.markets[self.market])
        stages = list(info.stages)
        self.param.stage.objects = stages
        with param.parameterized.discard_events(self):
            self.stage = info.stage  # a chain opens at its target stage
            self.info = info
            self.target = info.target
            self.saved = self._saved_by_market.get(info.id, [])
            names = [s.name for s in self.saved]
            self.compare = []
        self.param.compare.objects = _choices(self.saved)
        with param.parameterized.discard_events(self):
            self.compare = names[:MAX_COMPARE]
        self._applying_market = True  # one solve once every setting is in place
        try:
            self.policy.apply_market(info)
        finally:
            self._applying_market = False
        self.baseline = evaluate(info, [], self.target)
        self.update_current()
        self.param.trigger("info", "saved", "compare")
        self._update_comparison()

    @param.depends("stage", watch=True)
    @_one_at_a_time
    def _on_stage(self) -> None:
        """Show another stage of the chain: the settings stay, every view follows."""
        info = self.info
        if info is None or info.chain is None or self.stage is None or self.stage == info.stage:
            return
        info = info.for_stage(self.stage)
        self.jobs.cancel()  # the previous stage's solves: not published
        with param.parameterized.discard_events(self):
            self.info = info
        self.baseline = evaluate(info, [], self.target)
        self.update_current()
        self.param.trigger("info")
        self._update_comparison()

    def _on_settings(self, *events: param.parameterized.Event) -> None:
        if self._applying_market:
            return
        self.refresh_current()

    @param.depends("target", "uncertainty", "draws", watch=True)
    def _on_solve_options(self) -> None:
        self.refresh_current()
        self._update_comparison()

    def refresh_current(self) -> None:
        """Solve the current settings and publish the outcome: on a served page in the
        session's queue of jobs (:meth:`request_current`), elsewhere now
        (:meth:`update_current`)."""
        if served_document() is None:
            self.update_current()
        else:
            self.request_current()

    @property
    def n_draws(self) -> int:
        return int(self.draws) if self.uncertainty and draws_supported() else 0

    def current_scenario(self) -> Scenario:
        """The scenario of the current settings (raises :class:`ConfigError`)."""
        info = self._market_info()
        measures = self.policy.measures(info)
        text = "; ".join(_describe(info, m) for m in measures) or "No measure switched on."
        return Scenario(name=CURRENT, description=text, measures=measures)

    def update_current(self) -> None:
        """Solve the current settings and publish the outcome.

        Thread-safe: calls from several threads take turns, and one that finds a later call
        waiting returns at once (the later call reads the settings after every change made
        so far and publishes them).
        """
        ticket = next(self._tickets)
        self._latest = ticket
        with self._session_lock:
            if ticket != self._latest:  # superseded by a later change
                return
            self._update_current()

    def _update_current(self) -> None:
        if self.info is None:
            return
        sc = self._scenario_or_problem()
        if isinstance(sc, Outcome):
            self.current = sc
            return
        self.current = evaluate(self.info, [sc], self.target, self.n_draws)

    def _scenario_or_problem(self) -> Scenario | Outcome:
        """The current scenario, or an outcome saying in words why the settings are not
        usable."""
        try:
            return self.current_scenario()
        except ConfigError as exc:
            return Outcome(None, (CURRENT,), problems=tuple(exc.problems))
        except Exception as exc:  # a bug must not reach the user as a traceback
            log.exception("building the scenario failed")
            return Outcome(None, (CURRENT,), problems=(f"Settings not usable: {exc}",))

    def request_current(self) -> None:
        """Solve the current settings in the session's queue of jobs (a solve thread) and
        publish the outcome on the event loop, unless the settings, the market or the stage
        changed meanwhile (then the later request publishes). Settings that cannot be solved
        are published at once. Call on the event loop."""
        info = self.info
        if info is None:
            return
        sc = self._scenario_or_problem()
        if isinstance(sc, Outcome):
            self.jobs.cancel("current")
            self.current = sc
            return
        shown = self.current
        # with no one-year view on screen the solve waits for a pause in the session's
        # changes, unless the outcome shown says the settings could not be solved (the
        # editor and the status line show that on every tab: cleared at once)
        wait = not self.one_year_shown and (
            shown is not None and not shown.problems and not shown.failures
        )
        self.jobs.submit(
            "current",
            functools.partial(evaluate, info, [sc], self.target, self.n_draws),
            self._publish_current,
            priority=1,  # after the 2030 question's live KPIs
            fail=self._current_failed,
            idle=ONE_YEAR_IDLE_S if wait else 0.0,
        )

    @param.depends("one_year_shown", watch=True)
    def _on_one_year_shown(self) -> None:
        """A one-year view opened while its solve waits for a pause: solved now."""
        if self.one_year_shown and CURRENT in self.jobs.pending:
            self.request_current()

    def _publish_current(self, outcome: Outcome) -> None:
        self.current = outcome

    def _current_failed(self, exc: BaseException) -> None:
        """The one-year solve raised (``evaluate`` reports a bad setting as an outcome: this
        is a bug): the cards say so instead of keeping the previous numbers."""
        self.current = Outcome(
            None, (CURRENT,), problems=(f"The model could not be solved: {exc}",)
        )

    # -- saved scenarios -------------------------------------------------------------------
    def _names(self) -> list[str]:
        return [s.name for s in self.saved]

    @_one_at_a_time
    def _publish_saved(self, saved: list[SavedScenario], compare: list[str]) -> None:
        names = [s.name for s in saved]
        keep = [n for n in compare if n in names][:MAX_COMPARE]
        with param.parameterized.discard_events(self):
            self.saved = saved
            self.compare = [n for n in self.compare if n in names and n in keep]
        self.param.compare.objects = _choices(saved)  # widgets follow (not discarded)
        with param.parameterized.discard_events(self):
            self.compare = keep
        self.param.trigger("saved", "compare")
        self._update_comparison()

    def _check_name(self, name: str | None, exclude: str | None = None) -> str:
        name = (name or "").strip()
        if not name:
            raise ValueError("give the scenario a name")
        if name == "baseline" or name == CURRENT:
            raise ValueError(f"{name!r} is reserved; choose another name")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
            raise ValueError(
                f"{name!r}: use letters, digits, '_', '-' or '.', starting with a letter or digit"
            )
        if name in self._names() and name != exclude:
            raise ValueError(f"a scenario named {name!r} exists; rename or delete it first")
        return name

    def next_name(self) -> str:
        i = len(self.saved) + 1
        while f"option_{i}" in self._names():
            i += 1
        return f"option_{i}"

    def save_current(self, name: str | None, title: str | None = None) -> bool:
        """Save the current settings as scenario ``name``; ``notice`` says what happened.

        ``title``: the scenario in a few words (default: the measures switched on), put at the
        head of its description (:func:`~tradepolicy.dashboard.persist.display_name`).
        """
        try:
            name = self._check_name(name)
            sc = self.current_scenario()
        except (ValueError, ConfigError) as exc:
            self.notice = f"Not saved: {exc}"
            return False
        if len(sc.measures) == 0:
            self.notice = "Not saved: switch on at least one measure (the baseline is shown anyway)"
            return False
        if len(self.saved) >= MAX_SAVED:
            self.notice = f"Not saved: {MAX_SAVED} scenarios are saved; delete some first"
            return False
        words = " ".join((title or "").split()) or self._default_title()
        saved = SavedScenario(
            sc.model_copy(update={"name": name, "description": with_title(words, sc.description)}),
            "dashboard",
            self.policy.snapshot(),
        )
        compare = list(self.compare)
        if len(compare) < MAX_COMPARE:
            compare.append(name)
        self._publish_saved([*self.saved, saved], compare)
        self.notice = f"Saved {name!r}" + ("" if name in self.compare else " (compare list full)")
        return True

    def _default_title(self) -> str:
        """The measures switched on, in words (e.g. "Club price floor + Tariff on non-members")."""
        active = getattr(self.policy, "active", None)
        names = active() if callable(active) else []
        return " + ".join(names)

    def rename(self, old: str, new: str | None) -> bool:
        try:
            new = self._check_name(new, exclude=old)
            if old not in self._names():
                raise ValueError(f"no saved scenario {old!r}")
        except ValueError as exc:
            self.notice = f"Not renamed: {exc}"
            return False
        saved = [s.renamed(new) if s.name == old else s for s in self.saved]
        compare = [new if n == old else n for n in self.compare]
        self._publish_saved(saved, compare)
        self.notice = f"Renamed {old!r} to {new!r}"
        return True

    def delete(self, name: str) -> bool:
        if name not in self._names():
            self.notice = f"Nothing deleted: no saved scenario {name!r}"
            return False
        self._publish_saved(
            [s for s in self.saved if s.name != name], [n for n in self.compare if n != name]
        )
        self.notice = f"Deleted {name!r}"
        return True

    def edit(self, name: str) -> bool:
        """Put a scenario saved from the widgets back into the widgets."""
        match = [s for s in self.saved if s.name == name]
        if not match or match[0].settings is None:
            self.notice = (
                f"{name!r} comes from a scenario file; it can be compared but not edited here"
                if match
                else f"no saved scenario {name!r}"
            )
            return False
        before = self.policy.snapshot()
        try:
            check_snapshot(self.policy, match[0].settings)
            self.policy.restore(match[0].settings)
            self.policy.measures(self._market_info())  # values that no longer fit: ConfigError
        except (ValueError, TypeError, KeyError) as exc:  # settings of an older dashboard
            self.policy.restore(before)
            self.notice = f"The settings of {name!r} no longer fit these controls ({exc})"
            return False
        self.notice = f"Settings of {name!r} loaded into the controls"
        return True

    def load_set(self, path: str | Path) -> bool:
        """Add every scenario of a scenario set file for this market (same names replaced)."""
        try:
            sset, notes = load_set_quietly(path)
        except InputError as exc:
            self.notice = f"Not loaded: {exc}"
            return False
        if sset.market.id != self._market_info().id:
            self.notice = f"Not loaded: {Path(path).name} is for market {sset.market.id!r}"
            return False
        return self._add_set(sset, f"set:{Path(path).stem}", Path(path).name, notes)

    def _add_set(self, sset: ScenarioSet, source: str, what: str, notes: list[str]) -> bool:
        """Add a scenario set's scenarios (same names replaced) and compare them."""
        new = {s.name: SavedScenario(s, source) for s in sset.scenarios}
        kept = [s for s in self.saved if s.name not in new]
        if len(kept) + len(new) > MAX_SAVED:
            self.notice = (
                f"Not loaded: {what} has {len(new)} scenarios and {len(kept)} are saved; at most "
                f"{MAX_SAVED} are kept: delete some first"
            )
            return False
        self._publish_saved([*kept, *new.values()], list(new)[:MAX_COMPARE])
        n = len(new)
        self.notice = f"Loaded {n} scenario{'s' if n != 1 else ''} from {what}" + (
            f" ({len(notes)} warning(s))" if notes else ""
        )
        return True

    # -- files and the browser --------------------------------------------------------------
    def saved_toml(self) -> bytes:
        """The saved scenarios as a scenario-set file that ``tradepolicy run`` reads, with the
        dashboard's target bloc and share."""
        info = self._market_info()
        if not self.saved:
            raise ValueError("nothing to download: save a scenario first")
        ref = self.markets.get(info.id, info.ref)
        shipped = ref == info.id
        text = scenario_set_toml(
            info.id if shipped else Path(ref).name,
            [s.scenario for s in self.saved],
            title=f"Saved in the dashboard: {info.title}",
            target=info.bloc_target(float(self.target)),
        )
        if not shipped:
            text = f"# Keep this file beside the market file {Path(ref).name}.\n" + text
        return text.encode()

    def load_toml(self, data: bytes, filename: str) -> bool:
        """Add the scenarios of an uploaded scenario-set file for this market (same names
        replaced); a bad file leaves everything as it was and ``notice`` names the problems."""
        info = self._market_info()
        try:
            sset, notes = read_uploaded_set(data, filename, info.ref, info.id)
        except InputError as exc:
            self.notice = "Not loaded: " + input_error_text(exc)
            return False
        stem = Path(filename or "upload.toml").stem
        return self._add_set(sset, f"file:{stem}", Path(filename or "upload.toml").name, notes)

    def saved_text(self) -> str:
        """Every market's saved scenarios as JSON, as kept in the browser."""
        by_market = dict(self._saved_by_market)
        if self.info is not None:
            by_market[self.info.id] = list(self.saved)
        doc = {
            "v": 1,
            "markets": {m: [s.to_json() for s in v] for m, v in by_market.items() if v},
        }
        return json.dumps(doc, separators=(",", ":"))

    def restore_saved_text(self, text: str) -> int:
        """Add the saved scenarios kept in the browser (:meth:`saved_text`) to this session's;
        names already saved here win. Returns how many were added."""
        try:
            doc = json.loads(text)
            markets = doc["markets"] if isinstance(doc, dict) and doc.get("v") == 1 else None
            if not isinstance(markets, dict):
                raise ValueError("not the dashboard's saved scenarios")
        except (ValueError, KeyError) as exc:
            log.warning("saved scenarios in the browser not read: %s", exc)
            self.notice = "The scenarios saved in this browser could not be read; none restored"
            return 0
        current = self.info.id if self.info is not None else None
        added = dropped = 0
        for market, entries in markets.items():
            if market not in self.markets or not isinstance(entries, list):
                dropped += len(entries) if isinstance(entries, list) else 1
                continue
            have = list(self.saved) if market == current else self._saved_by_market.get(market, [])
            names = {s.name for s in have}
            for entry in entries:
                try:
                    saved = SavedScenario.from_json(entry)
                except ValueError:  # pydantic's ValidationError is a ValueError
                    dropped += 1
                    continue
                if saved.name in names or saved.name == CURRENT or len(have) >= MAX_SAVED:
                    continue
                have.append(saved)
                names.add(saved.name)
                added += 1
            if market == current:
                self._publish_saved(have, [s.name for s in have][:MAX_COMPARE])
            else:
                self._saved_by_market[market] = have
        if added or dropped:
            text = (
                f"Restored {added} saved scenario{'s' if added != 1 else ''} kept in this browser"
                if added
                else "No saved scenario restored from this browser"
            ) + (f"; {dropped} could not be read and were left out" if dropped else "")
            self.notice = f"{self._link_problem} {text}".strip()  # a bad link stays said
        return added

    def share_state(self) -> dict[str, Any]:
        """The scenario being edited: market, stage, target, draws and every setting."""
        return {
            "market": self.market,
            "stage": self.stage,
            "target": float(self.target),
            "uncertainty": bool(self.uncertainty),
            "draws": int(self.draws),
            "settings": self.policy.snapshot(),
        }

    def share_query(self) -> str:
        """The query of the page's address that opens this scenario (``market=...&s=...``)."""
        from urllib.parse import urlencode

        return urlencode({"market": self.market, "s": encode_state(self.share_state())})

    def apply_share_token(self, token: str) -> bool:
        """Open the scenario of an address token (:meth:`share_query`); a bad or stale token
        leaves the market's defaults and ``notice`` says why."""
        try:
            state = decode_state(token)
            if state["market"] not in self.markets:
                raise ShareError(f"it names market {state['market']!r}, which is not offered here")
        except ShareError as exc:
            self._link_problem = f"The scenario in the link was not opened: {exc}. "
            self.notice = self._link_problem + "Showing the defaults."
            return False
        if state["market"] != self.market:
            self.market = state["market"]
        before = {
            "stage": self.stage,
            "target": self.target,
            "uncertainty": self.uncertainty,
            "draws": self.draws,
        }
        defaults = self.policy.snapshot()
        try:
            stage = state.get("stage")
            if stage is not None and stage not in (self.param.stage.objects or []):
                raise ValueError(f"{stage!r} is not a stage of {self.market}")
            if stage is not None:
                self.stage = stage
            self.param.update(
                target=float(state.get("target", self.target)),
                uncertainty=bool(state.get("uncertainty", False)),
                draws=int(state.get("draws", self.draws)),
            )
            settings = {**defaults, **state.get("settings", {})}
            check_snapshot(self.policy, settings)
            self.policy.restore(settings)
            self.policy.measures(self._market_info())  # values that no longer fit: ConfigError
        except (ValueError, TypeError, KeyError) as exc:
            log.info("scenario of a link not opened: %s", exc)
            self.policy.restore(defaults)
            self.param.update(**before)
            self._link_problem = f"The scenario in the link no longer fits this market ({exc})."
            self.notice = self._link_problem + " Showing the defaults."
            return False
        self.notice = "Opened the scenario of the link"
        return True

    # -- comparison ------------------------------------------------------------------------
    @param.depends("compare", watch=True)
    def _on_compare(self) -> None:
        names = self._names()
        clean = list(dict.fromkeys(n for n in self.compare if n in names))[:MAX_COMPARE]
        if clean != list(self.compare):  # unknown names dropped, at most six kept
            self.compare = clean
            return
        self._update_comparison()

    @_one_at_a_time
    def _update_comparison(self) -> None:
        if self.info is None:
            return
        chosen = [s.scenario for s in self.saved if s.name in self.compare]
        if not chosen:
            self.comparison = None
            return
        self.comparison = evaluate(self.info, chosen, self.target, self.n_draws)

    def comparison_csv(self) -> bytes:
        """The compared scenarios (and the baseline) as a tidy CSV table."""
        out = self.comparison
        if out is None or out.ds is None:
            raise ValueError("nothing to download: choose scenarios to compare")
        df = comparison_long(out.ds, list(out.scenarios), self._market_info())
        return df.to_csv(index=False).encode()

    def comparison_netcdf(self) -> bytes:
        """The compared scenarios' results Dataset as netCDF."""
        out = self.comparison
        full = None if out is None else out.full
        if full is None:
            raise ValueError("nothing to download: choose scenarios to compare")
        with tempfile.TemporaryDirectory() as tmp:  # a chain's results: every stage
            path = tp.write_results(full, Path(tmp) / "comparison.nc")
            return path.read_bytes()

    def comparison_brief(self, fmt: str) -> bytes:
        """A scenario brief of the compared scenarios (``tradepolicy.reports``)."""
        out = self.comparison
        full = None if out is None else out.full
        if out is None or full is None:
            raise ValueError("nothing to download: choose scenarios to compare")
        from tradepolicy.reports import render_brief  # optional extra, imported when used

        solved = [n for n in out.scenarios if out.solved(n)]
        return render_brief(full, scenarios=solved, fmt=fmt)


__all__ = [
    "CACHE_MAX_BYTES",
    "CACHE_MAX_ITEMS",
    "CURRENT",
    "MAX_COMPARE",
    "SOLVES",
    "DashboardStore",
    "Outcome",
    "SavedScenario",
    "SolveCache",
    "check_snapshot",
    "draws_supported",
    "evaluate",
    "input_error_text",
    "plain_failure",
    "scenario_set",
    "solve_cached",
    "stage_view",
]
