"""Many sessions at once: solve threads, per-session isolation, thread-safe bounded caches and
memory released when sessions close (tradepolicy.dashboard.serve, issue 19 item 7; the queue of
each session's solves: test_dashboard_jobs.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import threading
import time
import urllib.request
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xarray as xr

pn = pytest.importorskip("panel")

import tradepolicy as tp  # noqa: E402
from tradepolicy.dashboard import DashboardStore, catalog  # noqa: E402
from tradepolicy.dashboard.app import DEFAULT_THREADS, release_memory, serve, use_threads  # noqa: E402
from tradepolicy.dashboard.caching import PerObject, SingleFlight, memoize  # noqa: E402
from tradepolicy.dashboard.jobs import THREAD_PREFIX, solve_threads  # noqa: E402
from tradepolicy.dashboard.store import CURRENT, SOLVES, SolveCache, scenario_set  # noqa: E402
from tradepolicy.dashboard.workers import (  # noqa: E402
    auto_processes,
    automatic,
    solve_processes,
)

NDPR = "ndpr_oxide"


@pytest.fixture
def no_worker_threads():
    """Solve threads are process-wide: none after the test (and never Panel's own)."""
    yield
    use_threads(0)  # (the solve processes too)
    assert solve_threads() == 0 and solve_processes() == 0
    assert pn.config.nthreads is None and pn.state._thread_pool is None


def _independent(store: DashboardStore) -> xr.Dataset:
    """The store's current settings solved afresh, outside every cache."""
    sset = scenario_set(store.info, [store.current_scenario()], store.target)
    return tp.solve(sset)


def _same_results(a: xr.Dataset, b: xr.Dataset) -> bool:
    keys = ("consumer_price", "producer_price", "welfare_change")
    return all(
        np.allclose(
            a[k].sel(scenario=CURRENT).values, b[k].sel(scenario=CURRENT).values, equal_nan=True
        )
        for k in keys
    )


def _entries(store: DashboardStore) -> set[str]:
    """The ids of the measures in a session's editor."""
    return {e["id"] for e in store.config.entries}


# -- sessions solving at the same time -------------------------------------------------------
def test_two_sessions_solving_at_once_each_get_their_own_results():
    """Two negotiators change different measures at the same time, on worker threads; after
    every change each store holds the solution of its own settings (solved afresh here) and
    never the other's."""
    a, b = DashboardStore(catalog(), NDPR), DashboardStore(catalog(), NDPR)
    a.config.preset("floor")
    b.config.preset("tariff")
    start = threading.Barrier(2)
    seen: dict[str, list[tuple[float, xr.Dataset]]] = {"a": [], "b": []}

    def floors() -> None:
        start.wait()
        for v in (101.5, 117.25, 133.0, 149.75):
            a.config.set("floor", floor=v)
            seen["a"].append((v, a.current.ds))

    def tariffs() -> None:
        start.wait()
        for v in (11.5, 27.25, 43.0, 59.75):
            b.config.set("tariff", rate=v)
            seen["b"].append((v, b.current.ds))

    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(floors), pool.submit(tariffs)]:
            f.result(timeout=300)
    a_results = [ds for _, ds in seen["a"]]
    b_results = [ds for _, ds in seen["b"]]
    # settings never leaked
    assert "tariff" not in _entries(a) and "floor" not in _entries(b)
    for v, ds in seen["a"]:
        a.config.set("floor", floor=v)  # (no thread running now) that change's settings
        assert _same_results(ds, _independent(a))
        assert not any(_same_results(ds, other) for other in b_results)
    for v, ds in seen["b"]:
        b.config.set("tariff", rate=v)
        assert _same_results(ds, _independent(b))
        assert not any(_same_results(ds, other) for other in a_results)


def test_changes_of_one_session_from_several_threads_publish_the_latest_settings():
    """Worker threads may run two changes of one session at once: they take turns, and what
    is shown at the end is the solution of the settings at the end, never an older one."""
    store = DashboardStore(catalog(), NDPR)
    store.config.preset("floor")
    values = [100.0 + 3.5 * i for i in range(12)]
    go = threading.Barrier(len(values))

    def change(v: float) -> None:
        go.wait()
        store.config.set("floor", floor=v)

    with ThreadPoolExecutor(len(values)) as pool:
        for f in [pool.submit(change, v) for v in values]:
            f.result(timeout=300)
    assert store.config.value("floor", "floor") in values
    out = store.current
    assert out.solved(CURRENT)
    assert _same_results(out.ds, _independent(store))


def test_a_superseded_solve_is_skipped():
    """A change that finds a later one waiting for the session does not solve: the later one
    publishes the settings of both."""
    store = DashboardStore(catalog(), NDPR)
    store.config.preset("floor")
    published: list[float] = []
    store.param.watch(lambda e: published.append(store.config.value("floor", "floor")), "current")
    with store._session_lock:  # a change being published: the next two wait
        t1 = threading.Thread(target=store.config.set, args=("floor",), kwargs={"floor": 121.0})
        t1.start()
        time.sleep(0.3)
        t2 = threading.Thread(target=store.config.set, args=("floor",), kwargs={"floor": 131.0})
        t2.start()
        time.sleep(0.3)
    t1.join(60)
    t2.join(60)
    assert published == [131.0]
    assert _same_results(store.current.ds, _independent(store))


# -- caches shared by every session ----------------------------------------------------------
def _dataset(i: int, n: int = 100) -> xr.Dataset:
    return xr.Dataset({"x": ("k", np.full(n, float(i)))})


def test_the_solve_cache_solves_a_key_once_when_sessions_ask_at_the_same_time():
    cache = SolveCache(max_items=4, max_bytes=10**6)
    calls: list[int] = []
    go = threading.Barrier(8)

    def slow() -> xr.Dataset:
        calls.append(1)
        time.sleep(0.3)
        return _dataset(7)

    def ask() -> xr.Dataset:
        go.wait()
        return cache.get(("same",), slow)

    with ThreadPoolExecutor(8) as pool:
        got = [f.result(timeout=60) for f in [pool.submit(ask) for _ in range(8)]]
    assert len(calls) == 1
    assert all(ds is got[0] for ds in got)
    assert (cache.misses, cache.hits) == (1, 7)


def test_the_solve_cache_stays_bounded_and_consistent_under_threads():
    size = int(_dataset(0).nbytes)
    cache = SolveCache(max_items=6, max_bytes=4 * size)  # at most four by bytes
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 40, size=800)

    def work(chunk: np.ndarray) -> None:
        for k in chunk:
            ds = cache.get(("k", int(k)), lambda k=k: _dataset(int(k)))
            assert float(ds["x"][0]) == float(k)  # the result of its own key
            assert len(cache) <= 4 and cache.nbytes <= cache.max_bytes

    with ThreadPoolExecutor(8) as pool:
        for f in [pool.submit(work, c) for c in np.array_split(keys, 8)]:
            f.result(timeout=120)
    assert 1 <= len(cache) <= 4
    assert cache.nbytes == len(cache) * size  # the byte count matches what is held
    assert cache.hits + cache.misses == len(keys)


def test_single_flight_passes_errors_to_every_waiter_and_computes_again_after():
    flights = SingleFlight()
    go = threading.Barrier(4)
    calls: list[int] = []

    def failing() -> int:
        calls.append(1)
        time.sleep(0.3)
        raise ValueError("no market file")

    def ask() -> str:
        go.wait()
        try:
            flights.run("m", failing)
        except ValueError as exc:
            return str(exc)
        return "no error"

    with ThreadPoolExecutor(4) as pool:
        errors = [f.result(timeout=60) for f in [pool.submit(ask) for _ in range(4)]]
    assert errors == ["no market file"] * 4 and len(calls) == 1
    assert flights.run("m", lambda: 5) == (5, True)


def test_memoize_is_bounded_least_recently_used_and_computes_once():
    calls: list[str] = []

    @memoize(max_items=2)
    def load(ref: str) -> str:
        calls.append(ref)
        time.sleep(0.05)
        return ref.upper()

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(load, ["a"] * 6)) == ["A"] * 6
    assert calls == ["a"]
    load("b")
    load("a")  # a is now the most recent
    load("c")  # drops b
    assert load.cache_len() == 2  # type: ignore[attr-defined]
    load("a")
    load("b")
    assert calls == ["a", "b", "c", "b"]
    with pytest.raises(ValueError):
        memoize(0)


def test_values_per_object_are_computed_once_per_object_and_bounded():
    """A table derived from a shared Dataset is computed once for every session asking at
    the same time; another object with equal contents, or the same ``id`` reused by a later
    object, is computed anew; the least recently used entry goes first."""
    cache = PerObject(max_items=2)
    calls: list[int] = []

    class Obj:
        def __init__(self, n: int) -> None:
            self.n = n

    def table(o: Obj) -> list[int]:
        calls.append(o.n)
        time.sleep(0.05)
        return [o.n] * 3

    a, b = Obj(1), Obj(1)
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda _: cache.get(a, "t", lambda: table(a)), range(6)))
    assert got == [[1, 1, 1]] * 6 and calls == [1]
    assert all(g is got[0] for g in got)  # one shared value
    assert cache.get(b, "t", lambda: table(b)) == [1, 1, 1] and calls == [1, 1]  # another object
    assert cache.get(a, "u", lambda: [9]) == [9] and len(cache) == 2  # drops (a, "t")
    cache.get(b, "t", lambda: table(b))
    assert calls == [1, 1]  # kept
    cache.get(a, "t", lambda: table(a))
    assert calls == [1, 1, 1]  # dropped: computed again
    # an id reused by a later object is not mistaken for the earlier one
    c = Obj(2)
    cache._cache._items[(id(c), "t")] = (Obj(3), [3])
    assert cache.get(c, "t", lambda: table(c)) == [2, 2, 2]
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        PerObject(0)


def test_markets_are_loaded_once_for_every_session():
    from tradepolicy.dashboard.markets import market_info

    first = DashboardStore(catalog(), NDPR).info
    assert DashboardStore(catalog(), NDPR).info is first is market_info(NDPR)


# -- serving -----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_solves_on_a_bounded_pool_and_events_on_the_loop(no_worker_threads):
    """``threads`` sizes the pool of solve threads; Panel's own worker threads stay off (with
    them Panel handles two events of one page at once, out of order)."""
    from typer.main import get_command

    from tradepolicy.cli import app as cli_app

    port = _free_port()
    assert DEFAULT_THREADS == 2
    dashboard = get_command(cli_app).commands["dashboard"]  # type: ignore[attr-defined]
    assert next(p for p in dashboard.params if p.name == "threads").default == DEFAULT_THREADS
    assert next(p for p in dashboard.params if p.name == "processes").default is None
    pn.config.nthreads = 2  # type: ignore[misc]  # (as PANEL_NUM_THREADS or --num-threads would)
    server = serve(port=port, show=False, threaded=True, threads=3)
    try:
        assert solve_threads() == 3
        # automatic: used only while solves overlap (one on two cores or more)
        assert automatic() == (auto_processes() > 0)
        assert solve_processes() == auto_processes()
        assert gc.get_freeze_count() == 0  # (frozen only by a blocking server)
        assert pn.config.nthreads is None
    finally:
        server.stop()
    use_threads(2)
    assert solve_threads() == 2
    with pytest.raises(ValueError, match="threads"):
        serve(port=port, show=False, threaded=True, threads=-1)


def _markets(stores: list[weakref.ref]) -> set[str]:
    return {st.market for st in (ref() for ref in stores) if st is not None}


def test_sessions_updated_on_solve_threads_are_freed_when_closed(
    monkeypatch, caplog, no_worker_threads
):
    """Sessions connected over a websocket whose changes are solved on the solve threads:
    once closed and discarded by the server, no store is left alive."""
    from bokeh.client import pull_session

    stores: list[weakref.ref] = []
    threads_used: set[str] = set()
    init = DashboardStore.__init__
    from tradepolicy.dashboard import store as store_module

    evaluate = store_module.evaluate

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        stores.append(weakref.ref(self))

    def recording_evaluate(*args, **kwargs):
        threads_used.add(threading.current_thread().name)
        return evaluate(*args, **kwargs)

    errors: list[BaseException] = []
    monkeypatch.setattr(DashboardStore, "__init__", recording_init)
    monkeypatch.setattr(store_module, "evaluate", recording_evaluate)
    monkeypatch.setattr("tradepolicy.dashboard.app._on_exception", errors.append)
    port = _free_port()
    server = serve(
        port=port,
        show=False,
        threaded=True,
        threads=2,
        check_unused_sessions_milliseconds=200,
        unused_session_lifetime_milliseconds=300,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:  # the server thread starts listening (this GET builds one session)
            try:
                urllib.request.urlopen(url + "?market=ndpr_oxide", timeout=30).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.2)
        for _ in range(2):
            with pull_session(url=url, arguments={"market": NDPR}) as session:
                switch = next(
                    m
                    for m in session.document.models
                    if "tp-members" in (getattr(m, "css_classes", None) or [])
                )
                tabs = next(
                    m
                    for m in session.document.models
                    if "tp-tabs" in (getattr(m, "css_classes", None) or [])
                )
                tabs.active = 2  # the policy-results tab: its charts are on the page
                session.force_roundtrip()
                time.sleep(1.0)
                threads_used.clear()
                switch.value = list(switch.value)[:-1]  # the browser drops a club member
                session.force_roundtrip()  # the change reaches the server
                deadline = time.monotonic() + 60
                while not threads_used and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert threads_used, "the change was not solved"
                assert all(t.startswith(THREAD_PREFIX) for t in threads_used), threads_used
                # another market: the baseline charts on the page are redrawn from a worker
                # thread, which Bokeh allows only on the event loop (scheduled there)
                market = next(
                    m
                    for m in session.document.models
                    if "tp-market" in (getattr(m, "css_classes", None) or [])
                )
                gallium = next(o[1] for o in market.options if "(gallium" in str(o))
                market.value = gallium
                session.force_roundtrip()
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and "gallium" not in _markets(stores):
                    time.sleep(0.1)
                assert "gallium" in _markets(stores)
                time.sleep(1.0)  # the charts redrawn on the loop
        assert errors == [], errors
        failed = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert failed == [], failed  # e.g. a chart changed off the event loop
        del switch, market, tabs, session
        deadline = time.monotonic() + 60
        while True:
            gc.collect()
            alive = sum(ref() is not None for ref in stores)
            if alive == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(stores) >= 3
        assert alive == 0, f"{alive} of {len(stores)} closed sessions still hold their store"
    finally:
        server.stop()


def test_panels_busy_cleanup_task_holds_no_closed_session():
    """Panel's process-wide busy-counter task, started from inside a session, keeps that
    session's document (in the context it was created in) for the life of the server: one
    closed session never freed. The app stops it when a session closes; Panel starts it
    again at the next busy event."""
    from bokeh.document import Document
    from panel.io.state import _state, set_curdoc

    from tradepolicy.dashboard.app import _stop_busy_cleanup

    before = _state._busy_cleanup_scheduled

    async def held_after_close(stop: bool) -> bool:
        _state._busy_cleanup_scheduled = None
        doc = Document()
        ref = weakref.ref(doc)
        with set_curdoc(doc):  # a busy event in a session
            pn.state._schedule_busy_cleanup()
        task = _state._busy_cleanup_scheduled
        assert task is not None and task.running
        del doc  # the session closes
        if stop:
            _stop_busy_cleanup()
            assert _state._busy_cleanup_scheduled is None and not task.running
        await asyncio.sleep(0)  # the cancelled task ends
        gc.collect()
        alive = ref() is not None
        if stop:
            with set_curdoc(Document()):  # the next busy event starts it again
                pn.state._schedule_busy_cleanup()
            again = _state._busy_cleanup_scheduled
            assert again is not None and again.running and again is not task
        _stop_busy_cleanup()
        return alive

    try:
        assert asyncio.run(held_after_close(stop=True)) is False
        # without the app's stop Panel's task keeps the closed session's document (if a
        # Panel release stops doing so, the workaround can go)
        assert asyncio.run(held_after_close(stop=False)) is True
    finally:
        _state._busy_cleanup_scheduled = before


def test_page_updates_queued_while_a_write_finished_are_sent(monkeypatch):
    """Panel queues a page's update messages while its socket is busy and a task sends them;
    a task finishing earlier writes cleared the document's mark, and the later task then
    returned without sending (a KPI left on its old value). With the app's patch they go."""
    from bokeh.document import Document
    from panel.io import document as pdoc

    from tradepolicy.dashboard.app import _send_messages_queued_after_a_write

    sent: list[str] = []

    class Connection:  # written through Panel's generic path (not a tornado handler)
        _socket = object()

    def dispatch(conn, events=None, msg=None):
        sent.append(msg)
        return []

    monkeypatch.setattr(pdoc, "dispatch_django", dispatch)
    _send_messages_queued_after_a_write()
    patched = pdoc._dispatch_msgs
    assert patched.__wrapped__ is not patched
    conn, doc = Connection(), Document()

    def queued_after_the_mark_was_cleared(dispatch_msgs) -> tuple[list[str], bool]:
        """What is sent, and whether anything is left queued or marked."""
        sent.clear()
        pdoc._WRITE_BLOCK.pop(doc, None)
        pdoc._WRITE_MSGS[doc] = {conn: ["PATCH-DOC kpi"]}
        try:
            asyncio.run(dispatch_msgs(doc))
            return list(sent), doc in pdoc._WRITE_BLOCK or bool(pdoc._WRITE_MSGS.get(doc))
        finally:
            pdoc._WRITE_MSGS.pop(doc, None)
            pdoc._WRITE_BLOCK.pop(doc, None)

    # Panel's own: the message stays queued, unsent
    assert queued_after_the_mark_was_cleared(patched.__wrapped__) == ([], True)
    assert queued_after_the_mark_was_cleared(patched) == (["PATCH-DOC kpi"], False)
    _send_messages_queued_after_a_write()  # once per process
    assert pdoc._dispatch_msgs is patched


def test_release_memory_collects_garbage():
    class Cycle:
        pass

    a, b = Cycle(), Cycle()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    ref = weakref.ref(a)
    del a, b
    assert release_memory() >= 2
    assert ref() is None


def test_a_closed_pages_collection_replaces_panels_own(monkeypatch):
    """A page that closes is collected in full once (with the heap trimmed), not twice:
    Panel's own collection, scheduled for 5 s later, is cancelled by ours; a trim due on a
    loop that stopped before it ran does not hold back the next."""
    import datetime as dt

    from tradepolicy.dashboard import app as app_module

    collected: list[bool] = []
    monkeypatch.setattr(app_module, "release_memory", lambda: collected.append(True) or 0)

    async def stop_before_the_trim() -> None:  # (a server stopped in a notebook, a test)
        app_module._trim_memory_soon()

    monkeypatch.setattr(app_module, "_TRIM_DELAY_S", 60.0)
    asyncio.run(stop_before_the_trim())  # its trim never runs: it must not hold back the next
    monkeypatch.setattr(app_module, "_TRIM_DELAY_S", 0.0)
    with contextlib.suppress(KeyError):  # (one left by pages an earlier test closed)
        pn.state.cancel_task(app_module.PANEL_GC_TASK)

    async def close_a_page() -> None:
        later = dt.datetime.now() + dt.timedelta(seconds=60)
        pn.state.schedule_task(app_module.PANEL_GC_TASK, _no_collection, at=later)
        assert any(k.endswith("_" + app_module.PANEL_GC_TASK) for k in pn.state._scheduled)
        app_module._trim_memory_soon()
        await asyncio.sleep(0.1)

    asyncio.run(close_a_page())
    assert collected == [True]
    assert not any(k.endswith("_" + app_module.PANEL_GC_TASK) for k in pn.state._scheduled)


def _no_collection() -> None:
    pytest.fail("Panel's collection ran")


def test_a_server_freezes_what_it_loaded_and_collects_in_full_more_rarely():
    """``serve`` (blocking) leaves the objects loaded before the first page out of full
    collections and raises the threshold of Python's own full collections; a dashboard
    served from a notebook (``threaded=True``) leaves the collector as it was."""
    from tradepolicy.dashboard import app as app_module

    saved = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    try:
        app_module._freeze_loaded_objects()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (*saved[:2], max(saved[2], app_module.FULL_GC_AFTER))
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)


def test_the_solve_cache_of_the_process_is_bounded():
    assert SOLVES.max_items >= 1 and SOLVES.max_bytes <= 512 * 2**20


def test_warm_up_solves_what_the_first_pages_2030_tab_asks_first():
    """On a cold compile cache the 2030 tab's first solves compiled for a minute while the
    page's one-year solve waited behind them: the server solves them before serving (the
    first pathway set's central run and the edited scenario's pathway), and the page reads
    both from the caches."""
    from tradepolicy.dashboard.answer import LIVE_SOLVES, PATHWAYS, AnswerView
    from tradepolicy.dashboard.app import warm_up

    markets, chain = catalog(), "ree_magnets"  # (ships a pathway set)
    PATHWAYS.clear()
    LIVE_SOLVES.clear()
    warm_up(markets, chain)
    assert (len(PATHWAYS), len(LIVE_SOLVES)) == (1, 1)
    hits, misses = (PATHWAYS.hits, LIVE_SOLVES.hits), (PATHWAYS.misses, LIVE_SOLVES.misses)
    view = AnswerView(store=DashboardStore(markets, chain), draws=0)  # a page's 2030 tab
    assert view._central is not None and view._live is not None
    assert (PATHWAYS.misses, LIVE_SOLVES.misses) == misses  # nothing solved again
    assert PATHWAYS.hits > hits[0] and LIVE_SOLVES.hits > hits[1]


def test_compiling_is_said_once_when_a_kernel_is_not_in_the_cache():
    """numba tells of a compilation only when a kernel is not in its on-disk cache: the
    first one says :data:`COMPILING` (once), the others are counted."""
    import numba
    from numba.core.event import install_listener

    from tradepolicy.dashboard.app import COMPILING, _CompileNotice

    @numba.njit
    def inner(x):
        return x + 1

    @numba.njit
    def outer(x):
        return inner(x) * 2

    said: list[str] = []
    notice = _CompileNotice(said.append)
    with install_listener("numba:compile", notice):
        assert outer(1) == 4
        assert outer(2) == 6  # compiled already: nothing to tell
        assert inner(1.5) == 2.5  # another signature: compiled, not said again
    assert said == [COMPILING] and notice.compiled == 3
    assert outer(1.5) == 5.0 and notice.compiled == 3  # outside warm_up: not listened to


def test_warm_up_loads_every_market_before_the_first_page():
    """Every page lists every market by title: the server loads them all (and the first
    market's baseline) before serving, not while the first page is being built."""
    from tradepolicy.dashboard.app import warm_up
    from tradepolicy.dashboard.markets import market_info

    markets = catalog()
    market_info.cache_clear()  # type: ignore[attr-defined]
    assert market_info.cache_len() == 0  # type: ignore[attr-defined]
    assert warm_up(markets, NDPR) >= 0
    assert market_info.cache_len() >= len(markets)  # type: ignore[attr-defined]
    hits = SOLVES.hits
    DashboardStore(markets, NDPR)
    assert SOLVES.hits > hits  # the first page's baseline comes from the cache


def test_pages_have_no_busy_spinner_shared_by_every_session():
    """Panel keeps one busy flag for the whole process and turns the spinner of every open page
    when any page's event is handled: a negotiator would see the others' work as their own,
    and every change went to every page. The dashboard's pages have no such spinner."""
    from panel.io.state import state

    from tradepolicy.dashboard.app import DashboardApp

    before = list(state._indicators)
    pages = [DashboardApp(market="ndpr_oxide").template() for _ in range(2)]
    for page in pages:
        page.server_doc()
    assert all(p.busy_indicator is None for p in pages)
    assert state._indicators == before


def test_the_dashboard_changes_warning_filters_only_holding_the_lock(monkeypatch):
    """``warnings.catch_warnings`` is not thread-safe: every use of it in the dashboard's own
    code (loading a set, reading an upload, the comparison table, checking and solving) runs
    holding ``WARNINGS_LOCK``."""
    import inspect
    import warnings
    from pathlib import Path

    from tradepolicy.dashboard import markets
    from tradepolicy.dashboard.caching import WARNINGS_LOCK

    real = warnings.catch_warnings
    used: list[tuple[str, bool]] = []

    def checked(*args, **kwargs):
        caller = inspect.stack(0)[1]
        if "tradepolicy/dashboard/" in caller.filename.replace("\\", "/"):
            used.append(
                (f"{Path(caller.filename).name}:{caller.function}", WARNINGS_LOCK._is_owned())
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(warnings, "catch_warnings", checked)
    store = DashboardStore(catalog(), NDPR)
    path = store.info.scenario_files[0]
    markets.load_set_quietly(path)
    store.config.preset("floor")
    store.save_current("club")
    store.comparison_csv()
    assert store.load_toml(store.saved_toml(), "mine.toml")
    where = {name for name, _ in used}
    assert {"markets.py:load_set_quietly", "persist.py:read_uploaded_set"} <= where
    assert any(name.startswith("indicators.py") for name in where)
    assert [name for name, locked in used if not locked] == []
