"""The negotiator dashboard: one :class:`DashboardApp` per browser session, and ``serve``."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import panel as pn
import param
from numba.core.event import Listener, install_listener
from panel.links import Callback
from panel.viewable import Viewer

from tradepolicy.dashboard.answer import AnswerView, warm_first_page
from tradepolicy.dashboard.jobs import DEFAULT_SOLVE_THREADS, use_solve_threads
from tradepolicy.dashboard.markets import catalog, market_info
from tradepolicy.dashboard.store import DashboardStore
from tradepolicy.dashboard.views import (
    BaselineView,
    ComparisonView,
    KpiView,
    PolicyEditor,
    ResultsView,
    SaveBar,
    StatusView,
)
from tradepolicy.dashboard.workers import use_solve_processes

log = logging.getLogger(__name__)

TITLE = "tradepolicy · negotiator dashboard"
#: the editor's column (px): at 1280×800 the KPIs and the first chart fit beside it
SIDEBAR_WIDTH = 330
#: the page frame at laptop sizes: a lower header, less padding around the main column
FRAME_CSS = """
#header { padding-top: 4px; padding-bottom: 4px; }
#header .title { font-size: 1.3em; }
#main { padding-top: 6px; }
"""


def _on_exception(exc: BaseException) -> None:
    """Unexpected errors in callbacks: log the traceback, show the user one plain line."""
    log.error("dashboard callback failed", exc_info=exc)
    if pn.state.notifications is not None:
        pn.state.notifications.error(f"Something went wrong: {exc}", duration=8000)


#: the tab of the 2030 question (its index in the tabs)
ANSWER_TAB = 0


class DashboardApp(Viewer):
    """The whole dashboard for one session: a store and the views that read it.

    Parameters
    ----------
    markets
        Extra market files (paths) shown besides the shipped markets.
    market
        Id of the market selected first (default: the first one).
    lazy_tabs
        Build the content of tabs not shown when first opened (a served page: see
        :func:`create_app`); by default every view is built at once.
    """

    store = param.ClassSelector(class_=DashboardStore)

    def __init__(
        self,
        markets: Sequence[str | Path] = (),
        market: str | None = None,
        lazy_tabs: bool = False,
        **params: Any,
    ) -> None:
        if "store" not in params:
            params["store"] = DashboardStore(catalog(tuple(markets)), market)
        super().__init__(**params)
        s = self.store
        self.editor = PolicyEditor(store=s)
        self.status = StatusView(store=s)
        self.kpis = KpiView(store=s)
        self.save = SaveBar(store=s)
        self.baseline = BaselineView(store=s, shown=not lazy_tabs)
        self.results = ResultsView(store=s, shown=not lazy_tabs)
        self.comparison = ComparisonView(store=s)
        self.answer = AnswerView(store=s)
        self.tabs = pn.Tabs(
            ("2030 question", self.answer),
            ("Baseline", self.baseline),
            ("Policy results", self.results),
            ("Compare scenarios", self.comparison),
            dynamic=True,
            sizing_mode="stretch_width",
            css_classes=["tp-tabs"],
        )
        self.main = pn.Column(
            self.status,
            self.kpis,
            self.save,
            self.tabs,
            sizing_mode="stretch_width",
            css_classes=["tp-main"],
        )
        self.tabs.param.watch(self._show_one_year_kpis, "active")
        self._show_one_year_kpis()

    def _show_one_year_kpis(self, *_events: Any) -> None:
        """The one-year KPI strip on the one-year tabs only: the 2030 tab (the first) has its
        own KPIs, and its answer and ranked options then open above the fold at 1280×800.
        The store is told whether a one-year view is shown: on the 2030 tab the one-year
        solve waits for a pause in the changes (``DashboardStore.one_year_shown``).

        Switched on the server only (as the tab's content is built): a link in the browser as
        well races the server's answer to an earlier tab change, and the server's state is
        sent again when the strip is redrawn.
        """
        shown = self.tabs.active != ANSWER_TAB
        self.kpis.pane.visible = shown
        if self.store is not None:
            self.store.one_year_shown = shown  # (hidden: its solve waits for a pause)

    def template(self) -> pn.template.BaseTemplate:
        """The app in a page template with the controls in the sidebar (for serving)."""
        # Bootstrap ships with Panel and loads no web font: the page works offline. No busy
        # spinner: Panel keeps one busy flag for the whole process and sets the spinner of
        # every open page whenever any page's event is handled (ten pages: every change sent
        # twice to all ten, and each negotiator saw the others' work as their own)
        return pn.template.BootstrapTemplate(
            title=TITLE,
            busy_indicator=None,
            sidebar=[self.editor],
            main=[self.main],
            sidebar_width=SIDEBAR_WIDTH,
            header_background="#1f4e79",
            raw_css=[FRAME_CSS],
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(pn.Column(self.editor, width=360), self.main, sizing_mode="stretch_width")

    def release(self) -> int:
        """Let this session's objects be freed once its page is closed; returns the number of
        widgets released.

        Panel keeps every widget with a JavaScript callback in a class-level registry
        (:attr:`panel.links.Callback.registry`, a ``WeakKeyDictionary`` whose values hold
        their key: the input box of each ``EditableFloatSlider``). Such an entry is never
        dropped, and through the widget's watchers it kept the whole session alive (store,
        results, charts). Removing this app's widgets from the registry breaks the cycle.
        """
        registry = Callback.registry
        released = 0
        for obj in (*self.editor.__panel__().select(), *self.main.select()):
            if registry.pop(obj, None) is not None:
                released += 1
        return released


def create_app(markets: Sequence[str | Path] = (), market: str | None = None):
    """A new dashboard page for one session (nothing is shared with other sessions).

    In a served page, ``?market=<id>`` in the address selects the market shown first.
    """
    pn.extension(throttled=True, notifications=True)
    pn.config.exception_handler = _on_exception
    _send_messages_queued_after_a_write()
    args = pn.state.session_args or {}
    if args.get("market"):
        market = args["market"][0].decode(errors="replace")
    doc = pn.state.curdoc
    served = doc is not None and doc.session_context is not None
    if served:
        _serve_resources_locally(doc)
    app = DashboardApp(markets=markets, market=market, lazy_tabs=served)
    page = app.template()
    if served and doc is not None:

        def _release(_context: Any) -> None:
            if app.store is not None:  # its waiting solves dropped, a running one not published
                app.store.jobs.close()
            app.release()
            _stop_busy_cleanup()
            _trim_memory_soon()

        doc.on_session_destroyed(_release)
        _skip_unchanged_styles(doc)
        _build_models_at_once(page)
        _pause_hidden_tabs(app)
    return page


def _send_messages_queued_after_a_write() -> None:
    """Make Panel send the page updates it queued while another write was finishing.

    When a socket is busy, Panel queues a document's update messages (``_WRITE_MSGS``),
    marks the document as blocked (``_WRITE_BLOCK``) and starts a task that sends them. A
    task still sending earlier messages clears that mark when it is done, and the task of
    the messages queued meanwhile then found no mark and returned without sending them: the
    update stayed on the server until the page's next update (a KPI left on its old value
    after a measure was added, seen in the browser tests). Patched once per process: such a
    task marks the document again when messages wait, then sends them as Panel does.
    """
    from panel.io import document as pdoc

    original = pdoc._dispatch_msgs
    if getattr(original, "_tp_sends_queued", False):
        return

    async def dispatch_msgs(doc: Any) -> None:
        if doc not in pdoc._WRITE_BLOCK and pdoc._WRITE_MSGS.get(doc):
            pdoc._WRITE_BLOCK[doc] = True
        await original(doc)

    dispatch_msgs._tp_sends_queued = True  # type: ignore[attr-defined]
    dispatch_msgs.__wrapped__ = original  # type: ignore[attr-defined]
    pdoc._dispatch_msgs = dispatch_msgs


def _stop_busy_cleanup() -> None:
    """Stop Panel's process-wide task that clears its busy counter (when a session closes).

    Panel starts that task (a periodic callback that clears busy events older than 30 s)
    the first time any session is busy, from inside that session, and never stops it: the
    task keeps a copy of the context it was created in, where Panel's ``curdoc`` points to
    that session's document, and so the whole session (its store, results and charts) stayed
    in memory after it closed, for the life of the server. Stopped here, Panel starts it again
    at the next busy event, inside a session that is open: no closed session is held. Nothing
    is done when it is not running or Panel has no such task.
    """
    holder = type(pn.state)
    task = getattr(holder, "_busy_cleanup_scheduled", None)
    if task is None:
        return
    task.stop()
    holder._busy_cleanup_scheduled = None


def _pause_hidden_tabs(app: DashboardApp) -> None:
    """Views inside a tab that is not shown skip their updates and catch up when their tab is
    opened (``shown``; see ``views._when_shown``): in a served page a change of the settings
    then rebuilds only what is on screen."""
    tabs = app.tabs
    where: dict[Any, int] = {}
    for view in vars(app).values():
        if not (isinstance(view, Viewer) and "shown" in view.param):
            continue
        own = view.__panel__()
        for i, tab in enumerate(tabs.objects):
            if any(obj is own for obj in tab.select()):
                where[view] = i
        if view not in where:  # not in a tab: always on screen
            view.param.update(shown=True)

    def sync(*_: Any) -> None:
        for view, i in where.items():
            view.shown = i == tabs.active

    tabs.param.watch(sync, "active")
    sync()


#: Run in the browser once the page's document is ready: an inline stylesheet whose CSS is
#: set to the text it already holds is left alone. BokehJS 3 rewrites every renderer's
#: stylesheet at every repaint of a plot (``InlineStyleSheet._update`` assigns
#: ``textContent`` even when nothing changed: ``Renderer.update_position``, ``Legend``), and
#: each rewrite makes the browser recompute the page's styles at the next colour the paint
#: reads from CSS: about nine style recalculations for each chart whose data changes. The
#: CSS that ends up applied is the same. Guarded: a BokehJS without this class or method is
#: left as it is.
SKIP_UNCHANGED_STYLES_JS = """
try {
  const P = Bokeh.require("core/dom").InlineStyleSheet.prototype;
  if (typeof P._update === "function" && !P._tp_skip_unchanged) {
    const update = P._update;
    P._update = function (css) {
      if (this.el.textContent !== css) update.call(this, css);
    };
    P._tp_skip_unchanged = true;
  }
} catch (e) {
  console.warn("tradepolicy: stylesheet writes not deduplicated", e);
}
"""


def _skip_unchanged_styles(doc: Any) -> None:
    """Make the page skip rewriting a stylesheet with the CSS it holds (see
    :data:`SKIP_UNCHANGED_STYLES_JS`): a chart whose data changes then costs the browser
    about half the CPU, which on a machine serving and rendering many pages is taken from the
    server."""
    from bokeh.models import CustomJS

    doc.js_on_event("document_ready", CustomJS(code=SKIP_UNCHANGED_STYLES_JS))


def _build_models_at_once(page: pn.template.BaseTemplate) -> None:
    """Build the page's Bokeh models with the document's model graph frozen.

    Each JavaScript link of a widget (the input box of every ``EditableFloatSlider``)
    otherwise makes Bokeh walk the whole document again; frozen, it is walked once. This
    halves the time a new session spends building its models on the server's event loop,
    where it holds up every other session.
    """
    build = page._modify_doc

    def modify(server_id: str | None, title: str, doc: Any, location: Any) -> Any:
        with doc.models.freeze():
            return build(server_id, title, doc, location)

    page._modify_doc = modify  # type: ignore[method-assign]


_TRIM_DELAY_S = 2.0
_trim_lock = threading.Lock()
#: the event loop a trim is due on (one at a time: the collector is the process's)
_trim_loop: asyncio.AbstractEventLoop | None = None


def _trim_memory_soon() -> None:
    """Once Bokeh has dropped a closed session (after its destroy callbacks), collect its
    objects and hand the freed heap back to the system (glibc's ``malloc_trim``), so the
    server's resident memory shrinks when pages close. One pending trim at a time; one due
    on a loop that has stopped since (a server stopped in a notebook or a test) never runs,
    and does not hold back the next."""
    global _trim_loop
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not on an event loop (a test calling the callback): trim now
        release_memory()
        return
    with _trim_lock:
        if _trim_loop is not None and _trim_loop.is_running():
            return
        _trim_loop = loop

    def run() -> None:
        global _trim_loop
        with _trim_lock:
            _trim_loop = None
        # Panel schedules a collection of its own 5 s after a session closes: done here
        with contextlib.suppress(KeyError):
            pn.state.cancel_task(PANEL_GC_TASK)
        release_memory()

    loop.call_later(_TRIM_DELAY_S, run)


#: the name of the garbage collection Panel schedules when a session closes
PANEL_GC_TASK = "gc.collect"


#: Python's full garbage collections once every this many collections of the middle
#: generation (Python's default: 10), in a served dashboard (:func:`_freeze_loaded_objects`)
FULL_GC_AFTER = 100


def _freeze_loaded_objects() -> None:
    """Fewer and shorter pauses of the event loop for full garbage collections.

    A full collection pauses the event loop, every page's updates with it, for as long as it
    takes to scan every object the collector tracks: with ten pages open 0.1-0.4 s each,
    several times a minute under load, every open page's updates delayed at once (the
    clusters of slow updates of ``bench_dashboard_load.py``). So, once the server has loaded
    what it holds before any page opens (modules, markets, the warm-up's solves and caches,
    about 0.18 s of every full collection on the shipped markets):

    - those objects are left out of later full collections (:func:`gc.freeze`);
    - Python collects in full ten times more rarely (:data:`FULL_GC_AFTER`): without the
      frozen objects counted, its rule (more than a quarter of the objects new since the last
      full collection) no longer holds it back. Garbage with reference cycles that outlives
      the young collections waits longer: a page that closes is collected in full anyway
      (:func:`release_memory`, Panel's own collection cancelled), which frees it.

    Under 10 sessions (``bench_dashboard_load.py --clients protocol``, counted with a
    ``gc.callbacks`` hook): the full collections while serving went from 2-4 (0.11-0.41 s
    each) to 1 (0.13-0.18 s, the first page that closed). Done only by a server ``serve``
    runs itself (blocking): a notebook serving a dashboard keeps its collector's settings.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, max(old, FULL_GC_AFTER))


def release_memory() -> int:
    """Collect garbage and return free heap memory to the system where the C library allows
    (glibc); returns the number of objects collected."""
    found = gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): the collector alone
        return found
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return found


def _serve_resources_locally(doc: Any) -> None:
    """Stylesheets from this server, never from Panel's CDN, for the whole session.

    Panel learns where its files are served only when the page is rendered
    (``dist_url`` in the document's template variables); models built before that (the
    whole app, here) get their stylesheets pointed at ``cdn.holoviz.org`` and are patched
    back on render, but the cached stylesheet objects are reused, unpatched, by models
    added later (e.g. the charts rebuilt after a market switch), and the browser fetched
    ``loading.css`` from the CDN. Setting the location first, as Panel does at render time,
    keeps every stylesheet on this server.
    """
    from panel.io.resources import LOCAL_DIST, use_cdn

    if use_cdn():
        return
    rel = pn.state.rel_path
    doc._template_variables["dist_url"] = f"{rel}/{LOCAL_DIST}" if rel else LOCAL_DIST


#: the interface ``serve`` listens on unless told otherwise: this machine only
LOOPBACK = "127.0.0.1"
#: solve threads of a served dashboard unless told otherwise (``tradepolicy dashboard
#: --threads``; :mod:`tradepolicy.dashboard.jobs`)
DEFAULT_THREADS = DEFAULT_SOLVE_THREADS


def use_threads(threads: int) -> None:
    """Run served sessions' solves on a pool of ``threads`` worker threads shared by every
    session (0: on the event loop, in the next tick); the pages' events stay on the event loop.

    Each session sends its solves to the pool through its own serial queue
    (:class:`~tradepolicy.dashboard.jobs.SessionJobs`): one at a time, only the latest
    settings, results published back on the event loop. Panel's own worker threads
    (``panel.config.nthreads``, ``--num-threads``) are switched off: with them Panel handles
    two events of one page at once and out of order. Without threads, the solve processes
    (:func:`~tradepolicy.dashboard.workers.use_solve_processes`) are stopped too.
    """
    use_solve_threads(int(threads))  # (refuses a negative number)
    if not threads:  # solve processes serve the threads: none without them
        use_solve_processes(0)
    if pn.config.nthreads is not None:
        # a settable option (Panel's --num-threads) that Panel types as a read-only property
        pn.config.nthreads = None  # type: ignore[misc]


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP address or ``localhost``) is reachable from this machine only."""
    if address.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def websocket_origins(address: str, port: int) -> list[str]:
    """The ``Origin`` hosts whose pages may open the app's websocket.

    On loopback: ``localhost`` and ``127.0.0.1`` (Bokeh's allow-list cannot hold an IPv6
    literal, so on ``::1`` the page is opened as ``http://localhost:<port>/``). Bound to every
    interface (``0.0.0.0`` or ``::``): any host, since the name others use is not known here.
    Otherwise the address given.
    """
    host = address.strip("[]")
    if host in ("0.0.0.0", "::"):
        return ["*"]
    origins = [f"localhost:{port}", f"127.0.0.1:{port}"]
    if not is_loopback(host) and ":" not in host:
        origins.append(f"{host}:{port}")
    return origins


#: what a start on a cold compile cache says once, before the kernels are compiled
COMPILING = (
    "compiling the solver (the first start after an install or an update of the code; a "
    "minute or two, kept on disk for later starts)…"
)


class _CompileNotice(Listener):
    """Says :data:`COMPILING` once, at the first compilation of a kernel (numba's
    ``numba:compile`` event fires only when a kernel is not found in the on-disk cache), and
    counts the compilations."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.compiled = 0

    def on_start(self, event: Any) -> None:
        if not self.compiled:
            self.say(COMPILING)
        self.compiled += 1

    def on_end(self, event: Any) -> None:
        pass


def warm_up(
    markets: dict[str, str],
    market: str | None = None,
    notice: Callable[[str], None] | None = None,
) -> float:
    """Load and solve what the first page needs before it is served; returns the seconds
    taken.

    Every page lists every market by its title, so the first page to open would load all of
    them (and import the modules loading a market needs) on the server's event loop, holding
    up every page opened meanwhile: ten pages opened at once on a cold server waited for it.
    Loaded here once (the caches are process-wide), with the baseline and the default
    settings of the market opened first solved too, and what its 2030 tab asks first (the
    first pathway set's central run and the edited scenario's pathway,
    :func:`~tradepolicy.dashboard.answer.warm_first_page`), a page only builds its own
    objects and reads its first results from the caches. After an install or a change of the
    code numba's on-disk cache of the compiled kernels is cold: they are compiled here (a
    minute or two; ``notice``, default the log, says so once) rather than while the first
    page's one-year solve waits behind the 2030 tab's with the previous numbers on screen.
    """
    start = time.perf_counter()
    for ref in markets.values():
        market_info(ref)
    first = market if market in markets else next(iter(markets))
    compiling = _CompileNotice(notice or log.info)
    with install_listener("numba:compile", compiling):
        # the baseline and the default settings, solved (and cached) as a page does
        store = DashboardStore(markets, first)
        try:
            warm_first_page(store._market_info(), store.current_scenario())
        except Exception as exc:  # the page will say what is wrong with the set
            log.warning("the 2030 tab of %s was not solved in advance: %s", first, exc)
        store.jobs.close()
    seconds = time.perf_counter() - start
    log.info(
        "loaded %d markets and solved the first page of %s in %.1f s%s",
        len(markets),
        first,
        seconds,
        f" (compiled {compiling.compiled} kernels)" if compiling.compiled else "",
    )
    return seconds


def _ignore_closed_pages(loop: Any) -> None:
    """A page closed while the server was sending it an update is not an error: log it at
    debug level instead of asyncio's "Task exception was never retrieved" traceback."""
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError

    def handler(loop: Any, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), (WebSocketClosedError, StreamClosedError)):
            log.debug("a page closed during an update: %s", context.get("message"))
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def serve(
    port: int = 5006,
    show: bool = True,
    address: str | None = LOOPBACK,
    markets: Sequence[str | Path] = (),
    market: str | None = None,
    announce: Callable[[str], None] | None = None,
    threads: int = DEFAULT_THREADS,
    notice: Callable[[str], None] | None = None,
    processes: int | None = None,
    **kwargs: Any,
):
    """Serve the dashboard (blocks until stopped unless ``threaded=True`` is passed).

    Parameters
    ----------
    port
        Port to listen on (0: any free port).
    address
        Interface to listen on: ``127.0.0.1`` (default, this machine only), ``::1`` or
        ``localhost`` (IPv6 or both loopbacks), or ``0.0.0.0`` to share the dashboard with
        every machine that can reach this one (it has no login: a warning is logged).
    markets
        Extra market files shown besides the shipped markets.
    market
        Id of the market opened first (a page's ``?market=<id>`` overrides it).
    announce
        Called with the page's address once the port is bound, before serving (default: log).
    threads
        Worker threads that run the sessions' solves (the one-year solve and the 2030 pathway
        of the edited scenario) off the server's event loop, so that a solve in one session
        does not hold up the pages and updates of the others (default
        :data:`DEFAULT_THREADS`; 0: solves on the event loop). Each session's events are
        handled on the event loop in order, and its solves run one at a time, only the latest
        settings (:mod:`tradepolicy.dashboard.jobs`). The solver's compiled kernels release
        the GIL, so more threads than cores add little. The setting is process-wide.
    processes
        Worker processes that solve the edited scenario's 2030 pathway, the heaviest job of
        a change, for the solve threads, so that its Python work runs on another core than
        the event loop's (:mod:`tradepolicy.dashboard.workers`). Default None, automatic:
        one process on a machine of two cores or more, used only while two sessions' solves
        run at once (ten sessions on two cores: median update about 0.4 s against 0.6-0.8 s
        without); a solve alone runs in the solve thread, quicker for one user (the
        rare-earth chain's p95 0.25-0.26 s against 0.40-0.48 s when every solve goes to a
        process). A number: that many processes, used for every solve; 0: none. They start
        before the first page (about 250 MB each), need solve threads and stop with the
        server.
    notice
        Told, once, that the solver is being compiled before the first page (a cold compile
        cache, :func:`warm_up`; default: the log).
    kwargs
        Passed to :func:`panel.serve` (e.g. ``threaded=True``, ``websocket_origin``).

    Raises
    ------
    OSError
        When the port is in use (``errno.EADDRINUSE``) or the address is not one of this
        machine's (``errno.EADDRNOTAVAIL``); raised before anything is served.
    """
    address = address or LOOPBACK  # None (the old default) means this machine only too
    if not is_loopback(address):
        log.warning(
            "the dashboard listens on %s:%s: anyone who can reach this machine on that port can "
            "use it (there is no login); use the default 127.0.0.1 to keep it on this machine",
            address,
            port,
        )
    if port:  # with port 0 Bokeh allows localhost:<the port chosen>
        kwargs.setdefault("websocket_origin", websocket_origins(address, port))
    use_threads(threads)  # (first: a negative number is refused before anything is loaded)
    if processes and not threads:
        raise ValueError("solve processes need solve threads: pass threads of 1 or more")
    use_solve_processes(processes if threads else 0)  # started now: ready for the first page
    extra = tuple(str(m) for m in markets)
    known = catalog(extra)  # fail early on a bad market file
    if market is not None and market not in known:
        raise ValueError(f"unknown market {market!r}; shipped or given: {', '.join(known)}")

    def page():  # pn.serve calls a plain function once per session
        return create_app(extra, market)

    warm_up(known, market, notice)
    if kwargs.get("threaded") or kwargs.get("start") is False:
        return pn.serve(page, port=port, address=address, show=show, title=TITLE, **kwargs)
    kwargs.setdefault("verbose", False)
    server = pn.serve(
        page, port=port, address=address, show=show, title=TITLE, start=False, **kwargs
    )
    host = "localhost" if ":" in address else address  # see websocket_origins
    url = f"http://{host}:{server.port}/"
    if announce is not None:
        announce(url)
    else:
        log.info("serving the dashboard at %s", url)
    _ignore_closed_pages(server.io_loop.asyncio_loop)
    _freeze_loaded_objects()
    server.start()
    try:
        server.io_loop.start()  # until Ctrl+C (Panel stops the loop on SIGINT)
    finally:
        server.stop()
        use_solve_processes(0)
    return server


__all__ = [
    "DEFAULT_THREADS",
    "LOOPBACK",
    "DashboardApp",
    "create_app",
    "is_loopback",
    "release_memory",
    "serve",
    "use_threads",
    "warm_up",
    "websocket_origins",
]
