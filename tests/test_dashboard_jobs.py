"""A served session's solves off the event loop, in order (tradepolicy.dashboard.jobs, issue 19
item 7): events of one page handled in order on the loop, solves in a pool of threads through
one serial queue per session, only the latest settings published, nothing after a market
switch or a close.

The server's event loop is played by the test: a fake served document whose next-tick
callbacks are queued and run in this thread (:func:`drain`), as Bokeh runs them on the loop.
"""

from __future__ import annotations

import gc
import logging
import queue
import re
import threading
import time
import weakref
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

pn = pytest.importorskip("panel")

from panel.io.state import set_curdoc  # noqa: E402

from tests.test_dashboard_serve import _independent, _same_results  # noqa: E402
from tradepolicy.dashboard import DashboardStore, catalog  # noqa: E402
from tradepolicy.dashboard import store as store_module  # noqa: E402
from tradepolicy.dashboard.answer import LIVE, AnswerView, live_option, with_scenarios  # noqa: E402
from tradepolicy.dashboard.jobs import (  # noqa: E402
    THREAD_PREFIX,
    SessionJobs,
    solve_threads,
    solves_running,
    use_solve_threads,
)
from tradepolicy.dashboard.store import CURRENT  # noqa: E402
from tradepolicy.dashboard.views import (  # noqa: E402
    UPDATING_ATTR,
    UPDATING_FIGURE_CSS,
    UPDATING_ROWS_CSS,
    KpiView,
    kpi_html,
    updating_html,
)

NDPR = "ndpr_oxide"


class Loop:
    """A served document whose next-tick callbacks run when the test drains them (in the
    test's thread, as the server's event loop would: one at a time, in order)."""

    def __init__(self) -> None:
        # "served" (Panel reads the request's arguments)
        self.session_context = SimpleNamespace(request=SimpleNamespace(arguments={}), id="t")
        self.calls: queue.Queue = queue.Queue()
        self.ran = 0

    def add_next_tick_callback(self, callback) -> None:
        self.calls.put(callback)

    def add_timeout_callback(self, callback, timeout_milliseconds: int) -> None:
        """Queued for the loop once the time is up (as Bokeh's timeout callbacks)."""
        timer = threading.Timer(timeout_milliseconds / 1000, self.calls.put, [callback])
        timer.daemon = True
        timer.start()

    def event(self, fn, *args, **kwargs) -> None:
        """A browser event handled on the loop."""
        with set_curdoc(self):
            fn(*args, **kwargs)

    def step(self) -> None:
        """Run the callbacks queued so far (one tick of the loop)."""
        for _ in range(self.calls.qsize()):
            with set_curdoc(self):
                self.calls.get_nowait()()

    def drain(self, *jobs: SessionJobs, timeout: float = 300.0) -> None:
        """Run the loop until no job of ``jobs`` is running or waiting and nothing is queued."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                cb = self.calls.get(timeout=0.02)
            except queue.Empty:
                if not any(j.busy() for j in jobs) and self.calls.empty():
                    return
                assert time.monotonic() < deadline, "the jobs did not finish"
                continue
            with set_curdoc(self):
                cb()
            self.ran += 1


@pytest.fixture
def pool() -> Iterator[None]:
    """Two solve threads for the test; none after it (the pool is process-wide)."""
    before = solve_threads()
    use_solve_threads(2)
    yield
    use_solve_threads(before)


@pytest.fixture
def solve_threads_seen(monkeypatch) -> list[str]:
    """The threads the one-year solves of a served session ran on."""
    seen: list[str] = []
    evaluate = store_module.evaluate

    def recording(*args, **kwargs):
        seen.append(threading.current_thread().name)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(store_module, "evaluate", recording)
    return seen


def _live_afresh(view: AnswerView) -> xr.Dataset:
    """The edited scenario's pathway solved afresh, outside every cache."""
    from tradepolicy.pathway import solve_pathway

    option = live_option(view._store.current_scenario(), view._start_year())
    return solve_pathway(with_scenarios(view.pset, [option], risk=False))


def _problems(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- the queue of one session ----------------------------------------------------------------
def test_a_burst_of_changes_solves_the_first_and_the_last_and_publishes_only_the_last(pool):
    loop, jobs = Loop(), SessionJobs()
    gate, started = threading.Event(), threading.Event()
    computed: list[int] = []
    published: list[int] = []

    def compute(i: int) -> int:
        if i == 0:
            started.set()
            gate.wait(30)  # the first solve is running while the others arrive
        computed.append(i)
        return i * 10

    for i in range(5):
        loop.event(jobs.submit, "current", lambda i=i: compute(i), published.append)
        if i == 0:
            loop.step()  # the first change's solve starts (on a solve thread)
            assert started.wait(30)
    gate.set()
    loop.drain(jobs)
    assert computed == [0, 4]  # the three waiting in between were replaced by the latest
    assert published == [40]  # the first one's result was stale when it came back
    assert (jobs.published, jobs.dropped) == (1, 1)


def test_solves_running_counts_the_jobs_computing_in_every_session(pool):
    """Two sessions' solves at once count two while both compute, none once they are done
    (the automatic solve processes serve only such overlapping solves)."""
    loop = Loop()
    sessions = SessionJobs(), SessionJobs()
    gate = threading.Event()
    seen: list[int] = []
    both = threading.Barrier(3, timeout=30)

    def compute() -> int:
        both.wait()  # both sessions' solves are computing
        gate.wait(30)
        seen.append(solves_running())
        return 1

    assert solves_running() == 0
    for jobs in sessions:
        loop.event(jobs.submit, "live", compute, lambda _r: None)
    loop.step()
    both.wait()
    assert solves_running() == 2
    gate.set()
    loop.drain(*sessions)
    assert sorted(seen)[-1] == 2 and solves_running() == 0


def test_a_failed_solve_is_not_counted_as_running_after_it_failed(pool, caplog):
    loop, jobs = Loop(), SessionJobs()
    loop.event(jobs.submit, "live", lambda: 1 / 0, lambda _r: None)
    with caplog.at_level(logging.CRITICAL, logger="tradepolicy.dashboard.jobs"):
        loop.drain(jobs)
    assert solves_running() == 0


def test_jobs_of_one_session_run_one_at_a_time_in_priority_order(pool):
    loop, jobs = Loop(), SessionJobs()
    running = threading.Semaphore(1)
    order: list[str] = []

    def compute(name: str) -> str:
        assert running.acquire(blocking=False), "two jobs of one session ran at once"
        time.sleep(0.05)
        running.release()
        return name

    gate = threading.Event()
    loop.event(jobs.submit, "first", lambda: gate.wait(30) and "first", order.append)
    loop.event(jobs.submit, "current", lambda: compute("current"), order.append, priority=1)
    loop.event(jobs.submit, "live", lambda: compute("live"), order.append, priority=0)
    gate.set()
    loop.drain(jobs)
    assert order == ["first", "live", "current"]


def test_the_jobs_one_event_submits_start_in_priority_order(pool):
    """A change reaches the store (one-year solve) before the 2030 view (its live KPIs): the
    queue starts after the event, with the job first in priority."""
    loop, jobs = Loop(), SessionJobs()
    order: list[str] = []

    def event() -> None:
        jobs.submit("current", lambda: "current", order.append, priority=1)
        jobs.submit("live", lambda: "live", order.append, priority=0)

    loop.event(event)
    loop.drain(jobs)
    assert order == ["live", "current"]


def test_a_failed_solve_is_logged_and_the_queue_goes_on(pool, caplog):
    loop, jobs = Loop(), SessionJobs()
    published: list[str] = []

    def fail() -> str:
        raise RuntimeError("no equilibrium")

    loop.event(jobs.submit, "a", fail, published.append)
    loop.event(jobs.submit, "b", lambda: "ok", published.append)
    loop.drain(jobs)
    assert published == ["ok"]
    assert any("solve failed" in m for m in _problems(caplog))


@pytest.mark.parametrize("how", ["close", "cancel"])
def test_a_pending_job_of_a_closed_session_or_a_cancelled_key_does_not_publish(pool, how, caplog):
    loop, jobs = Loop(), SessionJobs()
    gate = threading.Event()
    published: list[str] = []
    loop.event(jobs.submit, "live", lambda: gate.wait(30) and "running", published.append)
    loop.step()  # the first one runs
    loop.event(jobs.submit, "current", lambda: "waiting", published.append)
    getattr(jobs, how)()
    gate.set()
    loop.drain(jobs)
    assert published == []
    assert _problems(caplog) == []
    if how == "close":  # nothing more runs for a closed session
        loop.event(jobs.submit, "live", lambda: "after", published.append)
        loop.drain(jobs)
        assert published == []


def test_an_idle_job_waits_for_a_pause_in_the_sessions_jobs(pool):
    """A job submitted with ``idle`` is pending at once but starts only once the session has
    submitted and published nothing else for that long; the other jobs go first."""
    loop, jobs = Loop(), SessionJobs()
    idle = 0.3
    ran: dict[str, list[float]] = {"current": [], "live": []}
    done: list[float] = []

    def compute(key: str, i: int) -> int:
        ran[key].append(time.perf_counter())
        return i

    def publish(_result: int) -> None:
        done.append(time.perf_counter())

    for i in range(6):  # a change every 0.1 s: the one-year solve waits for a pause
        loop.event(
            jobs.submit, "current", lambda i=i: compute("current", i), publish, 1, None, idle
        )
        loop.event(jobs.submit, "live", lambda i=i: compute("live", i), publish)
        assert CURRENT in jobs.pending
        end = time.perf_counter() + 0.1
        while time.perf_counter() < end:
            loop.step()
            time.sleep(0.01)
    assert ran["current"] == [] and len(ran["live"]) >= 2
    loop.drain(jobs)
    assert len(ran["current"]) == 1  # once, for the last change
    assert ran["current"][0] - max(ran["live"]) >= idle  # after the last live job...
    assert ran["current"][0] - sorted(done)[-2] >= idle - 0.01  # ...and its publish, quiet
    assert jobs.pending == []


def test_an_idle_job_asked_for_again_without_idle_runs_at_once(pool):
    loop, jobs = Loop(), SessionJobs()
    got: list[int] = []
    loop.event(jobs.submit, "current", lambda: 1, got.append, 1, None, 30.0)
    loop.step()
    time.sleep(0.2)
    loop.step()
    assert got == [] and jobs.pending == [CURRENT]
    loop.event(jobs.submit, "current", lambda: 2, got.append)  # a one-year tab opened
    loop.drain(jobs, timeout=20)
    assert got == [2] and jobs.pending == []


def test_the_one_year_solve_waits_on_the_2030_tab_and_runs_when_a_one_year_tab_opens(
    pool, solve_threads_seen
):
    """With no one-year view shown the one-year solve of a change waits for a pause (the 2030
    pathway first); a one-year view opened meanwhile solves it at once. Settings that could
    not be solved are cleared without waiting."""
    store = DashboardStore(catalog(), NDPR)
    loop = Loop()
    loop.event(store.config.preset, "floor")
    loop.drain(store.jobs)
    store.one_year_shown = False
    solve_threads_seen.clear()
    loop.event(store.config.set, "floor", floor=123.0)
    assert CURRENT in store.jobs.pending
    for _ in range(3):
        loop.step()
        time.sleep(0.02)
    assert solve_threads_seen == []  # still waiting for the pause
    loop.drain(store.jobs)  # the pause: solved
    assert len(solve_threads_seen) == 1
    assert store.current.solved(CURRENT) and _same_results(store.current.ds, _independent(store))

    loop.event(store.config.set, "floor", floor=141.0)
    loop.event(setattr, store, "one_year_shown", True)  # a one-year tab opened: solved now
    assert store.jobs._pending[CURRENT].idle == 0.0
    deadline = time.monotonic() + 60
    while store.jobs.pending and time.monotonic() < deadline:
        loop.step()
        time.sleep(0.01)
    assert store.jobs.pending == [] and len(solve_threads_seen) == 2
    assert _same_results(store.current.ds, _independent(store))

    store.one_year_shown = False
    store.current = store_module.Outcome(None, (CURRENT,), problems=("a bad value",))
    loop.event(store.config.set, "floor", floor=150.0)  # fixed: the problem goes at once
    job = store.jobs._pending[CURRENT]
    assert job.idle == 0.0
    loop.drain(store.jobs)
    assert store.current.solved(CURRENT) and not store.current.problems


def test_without_solve_threads_a_job_runs_on_the_loop_in_the_next_tick():
    before = solve_threads()
    use_solve_threads(0)
    try:
        loop, jobs = Loop(), SessionJobs()
        where: list[str] = []
        loop.event(jobs.submit, "a", lambda: where.append(threading.current_thread().name), print)
        assert where == []  # not in the event's own callback
        loop.drain(jobs)
        assert where == [threading.current_thread().name]
    finally:
        use_solve_threads(before)
    with pytest.raises(ValueError, match="threads"):
        use_solve_threads(-1)


def test_outside_a_served_page_a_job_runs_at_once():
    jobs = SessionJobs()
    out: list[int] = []
    jobs.submit("a", lambda: 7, out.append)
    assert out == [7] and not jobs.busy()


# -- a served session --------------------------------------------------------------------------
def test_events_of_one_session_in_quick_succession_end_in_the_state_of_the_last(
    pool, solve_threads_seen, caplog
):
    """Choose a measure, type values into its card, then switch the market, each event
    handled before the previous solves came back: what is shown at the end is the solution of
    the last settings (one-year solve and the 2030 pathway of the edited scenario, both
    checked against fresh solves), and the solves ran in the pool."""
    store = DashboardStore(catalog(), NDPR)
    view = AnswerView(store=store)  # (built as on a page: its sets loaded)
    solve_threads_seen.clear()  # (the page's first solves, made when it was built)
    loop = Loop()
    loop.event(store.config.preset, "floor")  # choose a measure
    for v in (104.0, 117.5, 131.0):  # type values
        loop.event(store.config.set, "floor", floor=v)
    loop.drain(store.jobs)
    assert store.config.value("floor", "floor") == 131.0
    assert store.current.solved(CURRENT) and _same_results(store.current.ds, _independent(store))
    assert view._live is not None and LIVE in view._live.scenario.values
    fresh = _live_afresh(view)
    np.testing.assert_allclose(
        view._live["bloc_dependency"].sel(scenario=LIVE).values,
        fresh["bloc_dependency"].sel(scenario=LIVE).values,
    )
    assert solve_threads_seen and all(t.startswith(THREAD_PREFIX) for t in solve_threads_seen)
    assert len(solve_threads_seen) <= 4  # coalesced: never more solves than events

    # the same again, ending on a market switch before any solve came back
    gallium = next(m for m in store.markets if m.startswith("gallium"))
    loop.event(store.config.set, "floor", floor=150.0)
    loop.event(store.config.set, "floor", floor=160.0)
    loop.event(setattr, store, "market", gallium)
    loop.drain(store.jobs)
    assert store.market == gallium and store.info.id == gallium
    assert store.current.ds is not None
    assert set(store.current.ds.region.values) == set(store.info.market.regions)
    assert _same_results(store.current.ds, _independent(store))
    assert view._market_id == gallium
    assert _problems(caplog) == []


def test_two_sessions_solving_at_once_get_their_own_results(pool, solve_threads_seen):
    a, b = DashboardStore(catalog(), NDPR), DashboardStore(catalog(), NDPR)
    la, lb = Loop(), Loop()
    solve_threads_seen.clear()
    la.event(a.config.preset, "floor")
    lb.event(b.config.preset, "tariff")
    for fa, rb in ((103.25, 12.5), (119.75, 28.0), (136.5, 44.25)):
        la.event(a.config.set, "floor", floor=fa)
        lb.event(b.config.set, "tariff", rate=rb)
        la.drain(a.jobs)
        lb.drain(b.jobs)
        assert _same_results(a.current.ds, _independent(a))
        assert _same_results(b.current.ds, _independent(b))
        assert not _same_results(a.current.ds, b.current.ds)
    assert "tariff" not in {e["id"] for e in a.config.entries}
    assert "floor" not in {e["id"] for e in b.config.entries}
    assert all(t.startswith(THREAD_PREFIX) for t in solve_threads_seen)


def test_a_closed_session_releases_its_store_and_a_running_solve_does_not_publish(
    pool, monkeypatch, caplog
):
    gate = threading.Event()
    evaluate = store_module.evaluate

    def slow(*args, **kwargs):
        gate.wait(30)
        return evaluate(*args, **kwargs)

    store = DashboardStore(catalog(), NDPR)
    # gated from here on: the store's own baseline solve above is not held up
    monkeypatch.setattr(store_module, "evaluate", slow)
    loop = Loop()
    before = store.current
    loop.event(store.config.preset, "tariff")
    loop.event(store.config.set, "tariff", rate=33.0)
    jobs = store.jobs
    loop.step()  # the solve starts
    assert jobs.busy()
    jobs.close()  # the page is closed while its solve runs
    gate.set()
    loop.drain(jobs)
    assert store.current is before  # nothing published after the close
    assert jobs.dropped >= 1 and jobs.published == 0
    assert _problems(caplog) == []
    ref = weakref.ref(store)
    del store
    gc.collect()
    assert ref() is None


def test_draws_that_finish_after_the_page_closed_are_not_shown():
    """The Monte Carlo draws of the 2030 view run in their own thread: once done they are
    shown on the page's event loop, or not at all when the page was closed meanwhile."""
    from concurrent.futures import Future

    store = DashboardStore(catalog(), NDPR)
    view = AnswerView(store=store)
    loop = Loop()
    fut: Future = Future()
    fut.set_result(None)
    want = (str(view.set_select.value), 100)
    view._doc, view._future = loop, fut
    view._ready(fut, want)  # (in the draws' thread)
    assert loop.calls.qsize() == 1  # shown on the loop
    loop.calls.get_nowait()
    store.jobs.close()  # the page is closed
    view._ready(fut, want)
    assert loop.calls.empty()


@pytest.mark.parametrize("market", [NDPR, "ree_magnets"])  # without and with a pathway set
def test_charts_following_the_edited_scenario_are_built_with_its_solve(pool, monkeypatch, market):
    """With the edited scenario in focus, a change is one job: its pathway and the charts of
    it are built on a solve thread together (no separate chart job), and the page's charts
    get new data in place, equal to a build from the published results."""
    from tradepolicy.dashboard import answer as ans

    store = DashboardStore(catalog(), market)
    view = AnswerView(store=store, draws=0)
    store.config.preset("floor")
    view.focus.value = LIVE
    figs = [p.object for p in view.charts.objects]
    keys: list[str] = []
    threads: list[str] = []
    submit, build = store.jobs.submit, ans.build_charts

    def recording_submit(key, *args, **kwargs):
        keys.append(key)
        return submit(key, *args, **kwargs)

    def recording_build(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return build(*args, **kwargs)

    monkeypatch.setattr(store.jobs, "submit", recording_submit)
    monkeypatch.setattr(ans, "build_charts", recording_build)
    loop = Loop()
    for factor in (1.3, 0.8):
        keys.clear()
        threads.clear()
        # copies: an edit patches the sources' columns in place
        before = [
            [{k: np.array(v) for k, v in s.data.items()} for s in sources]
            for sources in view._chart_sources
        ]
        level = factor * store.config.value("floor", "floor")
        loop.event(store.config.set, "floor", floor=level)
        loop.drain(store.jobs)
        assert "live" in keys and "charts" not in keys
        assert threads and all(t.startswith(THREAD_PREFIX) for t in threads)
        assert [p.object for p in view.charts.objects] == figs  # in place
        fresh = build(view._context(), LIVE, store.info, view._live)
        assert [s.look() for s in fresh] == view._chart_looks
        for spec, sources in zip(fresh, view._chart_sources, strict=True):
            for series, src in zip(spec.series, sources, strict=True):
                assert ans._same_data(series.data, src.data)
        after = [[dict(s.data) for s in sources] for sources in view._chart_sources]
        assert not all(
            ans._same_data(a, b)
            for fa, fb in zip(before, after, strict=True)
            for a, b in zip(fa, fb, strict=True)
        )  # new numbers


# -- numbers being replaced are marked as updating -------------------------------------------
def test_a_key_is_pending_from_its_submission_until_its_result_is_published(pool):
    """``pending`` holds a key while its latest request is unanswered; a result dropped
    because the key was submitted again leaves it pending; the key is already out while the
    result is published, and what watches ``pending`` hears of it after the publish (the mark
    goes with the same redraw)."""
    loop, jobs = Loop(), SessionJobs()
    heard: list[tuple[str, list[str]]] = []
    jobs.param.watch(lambda e: heard.append(("pending", list(e.new))), "pending")
    gate, started = threading.Event(), threading.Event()

    def first() -> str:
        started.set()
        gate.wait(30)
        return "first"

    def publish(result: str) -> None:
        heard.append(("publish", list(jobs.pending)))

    loop.event(jobs.submit, "current", first, publish)
    assert jobs.pending == ["current"]
    loop.step()
    assert started.wait(30)
    loop.event(jobs.submit, "current", lambda: "second", publish)  # superseded while running
    loop.event(jobs.submit, "live", lambda: "live", lambda r: None)
    assert jobs.pending == ["current", "live"]
    gate.set()
    loop.drain(jobs)
    assert jobs.pending == [] and (jobs.published, jobs.dropped) == (2, 1)
    # the first result was dropped without clearing the key; the second was published with
    # the key already out, and the watchers heard after
    assert heard == [
        ("pending", ["current"]),
        ("pending", ["current", "live"]),
        ("publish", ["live"]),  # (submitted before "live", of the same priority: first)
        ("pending", ["live"]),
        ("pending", []),
    ]


@pytest.mark.parametrize("how", ["cancel", "cancel_all"])
def test_a_cancelled_key_is_no_longer_pending(pool, how):
    loop, jobs = Loop(), SessionJobs()
    gate = threading.Event()
    loop.event(jobs.submit, "set", lambda: gate.wait(30), lambda r: None)
    loop.step()
    loop.event(jobs.submit, "current", lambda: 1, lambda r: None)
    assert jobs.pending == ["set", "current"]
    if how == "cancel":
        jobs.cancel("current")
        assert jobs.pending == ["set"]
    else:
        jobs.cancel()
        assert jobs.pending == []
    gate.set()
    loop.drain(jobs)
    assert jobs.pending == [] and jobs.published == (1 if how == "cancel" else 0)  # "set"


def test_a_failed_solve_is_no_longer_pending_and_its_failure_is_told(pool, caplog):
    loop, jobs = Loop(), SessionJobs()
    failed: list[str] = []
    published: list[str] = []

    def fail() -> str:
        raise RuntimeError("no equilibrium")

    loop.event(jobs.submit, "live", fail, published.append, fail=lambda e: failed.append(str(e)))
    assert jobs.pending == ["live"]
    loop.drain(jobs)
    assert jobs.pending == [] and published == [] and failed == ["no equilibrium"]
    assert any("solve failed" in m for m in _problems(caplog))


def test_outside_a_served_page_nothing_is_pending():
    jobs = SessionJobs()
    heard: list[object] = []
    jobs.param.watch(heard.append, "pending")
    jobs.submit("current", lambda: 7, lambda r: None)
    assert jobs.pending == [] and heard == []


def _updating(pane) -> bool:
    return "data-kpi-updating" in pane.object


def _values(html_text: str) -> list[str]:
    """The text of each ``[data-kpi-value]`` element (what the benchmarks time)."""
    return re.findall(r"data-kpi-value>([^<]*)<", html_text)


def test_the_kpi_cards_are_marked_while_their_solves_are_pending(pool, monkeypatch):
    """A change marks the one-year cards and the 2030 tab's KPIs as updating at once (the
    values and their text unchanged); each mark goes when its new numbers are shown."""
    store = DashboardStore(catalog(), NDPR)
    answer = AnswerView(store=store, draws=0)
    kpis = KpiView(store=store)
    store.config.preset("floor")  # (not served: solved at once)
    old_cards, old_answer = kpis.pane.object, answer.kpis.object
    assert not _updating(kpis.pane) and not _updating(answer.kpis)
    gate = threading.Event()
    evaluate = store_module.evaluate

    def slow(*args, **kwargs):
        gate.wait(30)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(store_module, "evaluate", slow)  # a one-year solve compiling
    loop = Loop()
    loop.event(store.config.set, "floor", floor=1.4 * store.config.value("floor", "floor"))
    assert _updating(kpis.pane) and _updating(answer.kpis)
    assert _values(kpis.pane.object) == _values(old_cards)  # the mark leaves the text alone
    assert _values(answer.kpis.object) == _values(old_answer)
    assert "updating…" in kpis.pane.object
    for _ in range(200):  # the 2030 KPIs (first in the queue) come while the one-year waits
        loop.step()
        if not _updating(answer.kpis):
            break
        time.sleep(0.05)
    assert not _updating(answer.kpis) and _values(answer.kpis.object) != _values(old_answer)
    assert _updating(kpis.pane) and _values(kpis.pane.object) == _values(old_cards)
    gate.set()
    loop.drain(store.jobs)
    assert not _updating(kpis.pane) and _values(kpis.pane.object) != _values(old_cards)
    assert store.jobs.pending == []


def test_a_hidden_strip_is_not_marked_and_a_failed_solve_shows_its_failure(pool, monkeypatch):
    store = DashboardStore(catalog(), NDPR)
    kpis = KpiView(store=store)
    loop = Loop()

    def broken(*args, **kwargs):
        raise RuntimeError("kernel crashed")

    monkeypatch.setattr(store_module, "evaluate", broken)
    kpis.pane.visible = False  # the 2030 tab: the one-year strip is hidden
    loop.event(store.config.preset, "tariff")
    assert store.jobs.pending == [CURRENT] and not _updating(kpis.pane)
    kpis.pane.visible = True  # shown again while the solve is pending: marked
    assert _updating(kpis.pane)
    loop.drain(store.jobs)
    assert not _updating(kpis.pane) and store.jobs.pending == []
    assert store.current.problems == ("The model could not be solved: kernel crashed",)
    assert set(_values(kpis.pane.object)) == {"—"}  # no stale numbers


def _marked(pane) -> bool:
    """Whether a table pane's element (a chart pane's figure's) carries the mark."""
    holder = pane.object if isinstance(pane, pn.pane.Bokeh) else pane
    return UPDATING_ATTR in holder.html_attributes


def _slow_live(monkeypatch, gate: threading.Event, error: str = "") -> None:
    """The edited scenario's 2030 solve waits for ``gate`` (a cold compile cache), then
    raises ``error`` if given."""
    from tradepolicy.dashboard import answer as ans

    live_job = ans.live_job

    def slow(*args, **kwargs):
        gate.wait(30)
        if error:
            raise RuntimeError(error)
        return live_job(*args, **kwargs)

    monkeypatch.setattr(ans, "live_job", slow)


@pytest.mark.parametrize("focus", ["option", LIVE])
def test_the_edited_scenarios_row_payers_and_charts_are_marked_until_redrawn(
    pool, monkeypatch, focus
):
    """While the edited scenario's 2030 solve is pending, its row in the options table and
    in who pays and the charts that draw it (its lines; every chart when it is in focus)
    show the previous numbers marked as updating, by a class on their panes (nothing
    redrawn: the same text, the same figures); the KPIs' mark goes with their new numbers,
    the others' with the redraw of the row and lines in the next tick, never before."""
    store = DashboardStore(catalog(), "ree_magnets")
    view = AnswerView(store=store, draws=0)
    store.config.preset("floor")  # (not served: solved at once)
    if focus == LIVE:
        view.focus.value = LIVE
    assert (
        UPDATING_ROWS_CSS in view.table.stylesheets and UPDATING_ROWS_CSS in view.payers.stylesheets
    )
    figs = [p.object for p in view.charts.objects]
    assert len(figs) == 4 and all(UPDATING_FIGURE_CSS in f.stylesheets for f in figs)
    mine = {id(s) for s in view._live_sources.values()}
    draws_mine = [any(id(r.data_source) in mine for r in f.renderers) for f in figs]
    assert draws_mine == [True, False, False, True]  # its dependence and budget lines
    want = [True] * 4 if focus == LIVE else draws_mine
    panes = [view.table, view.payers, view.kpis, *view.charts.objects]
    assert not any(_marked(p) for p in panes) and not _updating(view.kpis)
    old = (view.table.object, view.payers.object)
    old_lines = [list(s.data["v"]) for s in view._live_sources.values()]
    seen: list[tuple[bool, str]] = []

    def note(*_events) -> None:  # each state of the options table: (marked, text)
        state = (_marked(view.table), view.table.object)
        if not seen or seen[-1] != state:
            seen.append(state)

    note()
    view.table.param.watch(note, ["object", "html_attributes"])
    relaid: list[object] = []  # a change of css_classes: BokehJS lays the page out again
    for p in panes:
        p.param.watch(relaid.append, "css_classes")
    for f in figs:
        f.on_change("css_classes", lambda attr, old, new: relaid.append(new))
    gate = threading.Event()
    _slow_live(monkeypatch, gate)
    loop = Loop()
    loop.event(store.config.set, "floor", floor=1.4 * store.config.value("floor", "floor"))
    assert _updating(view.kpis) and _marked(view.table) and _marked(view.payers)
    assert [_marked(p) for p in view.charts.objects] == want
    assert (view.table.object, view.payers.object) == old  # marked, not redrawn
    assert [p.object for p in view.charts.objects] == figs
    sent: list[object] = []
    for p in view.table, view.payers:
        p.param.watch(sent.append, "html_attributes")
    for f in figs:
        f.on_change("html_attributes", lambda attr, old, new: sent.append(new))
    view._mark()  # marked again: nothing sent
    assert sent == []
    gate.set()
    for _ in range(600):  # the KPIs come first ...
        loop.step()
        if not _updating(view.kpis):
            break
        time.sleep(0.05)
    assert not _updating(view.kpis)
    assert _marked(view.table) and _marked(view.payers)  # ... the row in the next tick
    assert (view.table.object, view.payers.object) == old
    loop.drain(store.jobs)
    assert not any(_marked(p) for p in panes) and store.jobs.pending == []
    assert view.table.object != old[0]
    assert [list(s.data["v"]) for s in view._live_sources.values()] != old_lines
    assert seen[0] == (False, old[0]) and seen[1] == (True, old[0])
    assert (False, old[0]) not in seen[1:]  # never the old row unmarked once changed
    assert seen[-1] == (False, view.table.object)
    assert relaid == []


@pytest.mark.parametrize("how", ["fail", "cancel"])
def test_the_edited_scenarios_mark_goes_when_its_solve_fails_or_is_cancelled(
    pool, monkeypatch, caplog, how
):
    """A failed 2030 solve unmarks the row and the charts, and the KPIs say it failed (no
    row of stale numbers); a cancelled one unmarks them and publishes nothing."""
    store = DashboardStore(catalog(), "ree_magnets")
    view = AnswerView(store=store, draws=0)
    store.config.preset("floor")
    panes = [view.table, view.payers, *view.charts.objects]
    published = store.jobs.published
    gate = threading.Event()
    _slow_live(monkeypatch, gate, error="kernel crashed" if how == "fail" else "")
    loop = Loop()
    loop.event(store.config.set, "floor", floor=1.4 * store.config.value("floor", "floor"))
    assert _marked(view.table) and _updating(view.kpis)
    if how == "cancel":
        loop.event(store.jobs.cancel, "live")
        assert not any(_marked(p) for p in panes) and not _updating(view.kpis)
    gate.set()
    loop.drain(store.jobs)
    assert not any(_marked(p) for p in panes) and not _updating(view.kpis)
    assert store.jobs.pending == []
    if how == "fail":
        assert "not solved: kernel crashed" in view.kpis.object
        assert 'class="live"' not in view.table.object
        assert any("solve failed" in m for m in _problems(caplog))
    else:
        assert store.jobs.published == published + 1  # the one-year solve only


def test_updating_html_keeps_the_cards_and_their_text():
    cards = kpi_html(None, KpiView.KEYS)
    marked = updating_html(cards)
    assert marked.count(cards) == 1 and _values(marked) == _values(cards)
    before, after = marked.split(cards)
    assert "data-kpi=" not in before + after  # the badge is outside every card
    assert "data-kpi-updating" in before and "updating…" in before
    assert updating_html("") == ""
