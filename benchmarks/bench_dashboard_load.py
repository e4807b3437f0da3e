"""Benchmark: many negotiators at once on one dashboard server (bounded load test).

Two kinds of client (``--clients``)
-----------------------------------
``browser`` (default): headless chromium pages, as a negotiator sees the dashboard; each
update is timed until the new numbers are painted. On this 2-core machine the browser renders
every page on the cores the server runs on (about 0.26 s of browser CPU per update against the
server's 0.15 s), so these times are those of ten negotiators sharing one small machine with
the server, not of ten negotiators each on their own machine.

``protocol``: each session is a Bokeh client (:func:`bokeh.client.pull_session`, on a tornado
IOLoop of its own in a thread, reading the server's messages one after another) that speaks the
websocket protocol a page speaks, without rendering: it announces the document ready as BokehJS
does (the server then starts the 2030 solves), switches its measure on and sets its box's value
(``value`` then ``value_throttled``, what Enter in the box sends), finding the widgets' models
by the css classes the browser mode selects (``tp-add-type``, ``tp-floor-floor``, ...). An
update is timed from sending the change to the arrival of the document patch that changes the
text of the 2030 KPI cards (the ``[data-kpi]`` elements of the ``tp-answer-kpis-pane`` pane,
the text the browser compares; the "updating…" mark is outside them). This is the server's own
capacity, what each of ten negotiators on their own machine would wait for before their browser
paints; the client threads' CPU is printed (far less than a browser's). What a page also sends
after each change is left out, because it comes from drawing: the 2030 charts' axis ranges as
BokehJS computed them (three small patches, each answered by the server; with 4 sessions a
protocol session received about 18 websocket messages, 9 kB, per update, a page about 31, 10
kB). ``--slow-solve-ms`` makes every solve job of the server wait that long first: a check that
the times include the server's solves.

What is measured
----------------
The dashboard is served by :func:`tradepolicy.dashboard.serve` in a subprocess on the loopback
interface (as ``tradepolicy dashboard`` does), on the shipped ``ndpr_oxide`` market. One
headless Debian chromium (Playwright) opens ``--sessions`` pages at once, each in its own
browser context (its own cookies and storage: a separate negotiator). Each session switches on
one measure (sessions take the measures of :data:`PLAN` in turn: price floor, tariff,
subsidy strike, offtake, stockpile release, supply shock) and then types ``--changes`` new
levels into that measure's box, each committed with Enter and each a value no session has
solved before (every change is a real solve, not a cache hit). All sessions run at the same
time, so the server is loaded by every session's solves and view updates at once. Protocol
sessions follow the same plan with the same values.

For each change the time is taken **in the browser**, as in ``bench_dashboard.py``: from the
Enter ``keydown`` (``performance.now()`` in a capturing listener) to the first animation frame
at which the KPI cards on screen (the 2030 tab's ``[data-kpi]`` cards; the one-year strip is
hidden on that tab) show different text. The page times it itself: a ``MutationObserver`` on
the cards asks for the next animation frame when their text changes, and the script reads the
result every 50 ms (testing the text at every frame of ten pages cost the browser about half a
core, which this machine's server then lacked). A change not seen within ``--timeout`` seconds
counts as a timeout; the whole run is bounded by ``--deadline``.

Also printed, to show where an update's time goes: the time from the Enter key to the arrival
of the websocket message with the new 2030 KPI cards (the rest is the browser applying it,
layout and paint); the server's time per kind of job (waiting in the session's queue and for a
solve thread, computing, waiting for the event loop, publishing: ``tradepolicy.dashboard.jobs``
logs it at DEBUG); how long the server's event loop was late on a 50 ms timer; the messages and
characters sent to a page per update; and the CPU seconds of the server and of the browser per
page opened and per update. On this machine the browser renders all ten pages on the server's
two cores; ten negotiators would each have their own.

Printed: page-open times (navigation until the KPI cards are shown), update times p50/p95/max
(all of them, and split into those sent while another page was still opening, when the server
also builds pages, and those sent once every page was open), timeouts, and the server's
resident memory (psutil, else ``/proc``) once it answers, with every session open, and after
the pages (or protocol sessions) are closed and the server has discarded their sessions
(sessions unused for 1 s are discarded here). In ``protocol`` mode a session's open time runs
from the request for its document until its KPI cards arrived, and the update times are those
of the KPI patch's arrival (the browser mode's split at that arrival is not printed). The
last line is printed exactly as::

    p50_ms=<x> p95_ms=<y> max_ms=<z> timeouts=<n> sessions=<N> updates=<k> open_max_s=<s> \
rss_mb_start=<a> rss_mb_open=<b> rss_mb_end=<c> pause_s=<p> clients=<browser|protocol>

(one line; broken here).

``--pause SECONDS`` (default 0) makes each session wait that long after each update before
its next change, like a negotiator reading the result; 0 is the closed loop (every session
types its next value as soon as the cards changed), the stress the headline figures are
measured under. The pause is printed with the results and in the last line.

Usage::

    python benchmarks/bench_dashboard_load.py                  # 10 sessions x 12 changes
    python benchmarks/bench_dashboard_load.py --sessions 4 --changes 6 --threads 2
    python benchmarks/bench_dashboard_load.py --quick          # smoke run: 4 sessions x 4
    python benchmarks/bench_dashboard_load.py --pause 5        # each reads 5 s per result
    python benchmarks/bench_dashboard_load.py --clients protocol   # the server alone
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import _server
import numpy as np

from tradepolicy.dashboard.config import CHROMIUM, CHROMIUM_ARGS

log = logging.getLogger("bench_dashboard_load")

TARGET_P95_MS = 1000.0
#: how often the script asks a page whether its update came (the page times it itself)
POLL_MS = 50
MARKET = "ndpr_oxide"
#: (switch class, input class, first value, step): one measure per session, in turn; values
#: in the widgets' display units (USD/kg, percent, t/yr)
# (preset added from the editor's "Add a measure" list, the class of its field's box, first value
# and step in display units)
PLAN: tuple[tuple[str, str, float, float], ...] = (
    ("Club price floor", "tp-floor-floor", 100.0, 4.0),
    ("Tariff on non-members", "tp-tariff-rate", 10.0, 5.0),
    ("Price-gap subsidy", "tp-subsidy-strike", 100.0, 4.0),
    ("Offtake", "tp-offtake-volume", 500.0, 150.0),
    ("Stockpile release", "tp-release-quantity", 500.0, 150.0),
    ("Supply shock", "tp-shock-fraction", 10.0, 2.5),
)

# the KPI cards on screen (the 2030 tab's; the one-year strip is hidden there) live in a Panel
# shadow root: find it once and watch it for changes. After the
# Enter key, the first change of the cards' text asks for an animation frame, and the time of
# that frame is the update's time (the first frame showing the new numbers). Watching instead
# of testing the text at every frame: ten pages polled at every frame cost the browser about
# half a core, taken from the server on this machine.
FIND_KPIS = """
() => {
  const shown = (root) => root === document || root.host.checkVisibility();
  const find = (root) => {
    if (root.querySelector('[data-kpi]') && shown(root)) return root;
    for (const n of root.querySelectorAll('*')) {
      if (n.shadowRoot) { const r = find(n.shadowRoot); if (r) return r; }
    }
    return null;
  };
  const root = find(document);
  if (!root) return null;
  const t = {root: root, t0: null, old: null, done: null, pending: false, missed: 0};
  const frame = () => {
    t.pending = true;
    requestAnimationFrame(() => { t.done = performance.now() - t.t0; t.pending = false; });
  };
  const observer = new MutationObserver(() => {
    if (t.t0 === null || t.done !== null || t.pending) return;
    const now = t.text();
    if (now && now !== t.old) frame();
  });
  const watch = (r) => observer.observe(r, {subtree: true, childList: true, characterData: true});
  t.text = () => {
    let r = t.root;
    if (!r.isConnected && r !== document) {
      r = find(document) || r;
      if (r !== t.root) { t.root = r; watch(r); }
    }
    return Array.from(r.querySelectorAll('[data-kpi]')).map((e) => e.textContent).join('|');
  };
  t.frame = frame;
  watch(root);
  window.__tp = t;
  window.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') t.t0 = performance.now();
  }, true);
  return t.text();
}
"""
#: before a change: forget the last one; returns the cards' text
ARM = """
() => {
  const t = window.__tp;
  t.t0 = null;
  t.done = null;
  t.old = t.text();
  return t.old;
}
"""
#: polled: the update's time once its frame came (and when the KPI message arrived); a change
#: the watcher missed (the cards' pane re-created) is timed at the next frame after the poll
#: that saw it and counted
CHANGED = """
() => {
  const t = window.__tp;
  if (t.done !== null) {
    const w = window.__tpws;
    const at = w.kpiAt !== null && w.kpiAt >= 0 && t.t0 !== null && w.kpiAt >= t.t0
      ? w.kpiAt - t.t0 : null;
    return [t.done, at];
  }
  const now = t.text();
  if (t.t0 !== null && now && now !== t.old && !t.pending) { t.missed += 1; t.frame(); }
  return false;
}
"""
#: counts what the server sends the page (websocket messages and characters) and when the last
#: message with the 2030 KPI cards arrived: the part of an update spent before the browser
#: has the new numbers (server, network) and after (BokehJS applying them, layout, paint)
WS_HOOK = """
(() => {
  const W = window.WebSocket;
  window.__tpws = {n: 0, chars: 0, kpiAt: null};
  function Hooked(...args) {
    const ws = new W(...args);
    ws.addEventListener('message', (e) => {
      const w = window.__tpws;
      const d = e.data;
      w.n += 1;
      w.chars += typeof d === 'string' ? d.length : (d.byteLength || d.size || 0);
      if (typeof d === 'string' && d.includes('answer_dependence')) w.kpiAt = performance.now();
    });
    return ws;
  }
  Hooked.prototype = W.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Hooked[k] = W[k];
  window.WebSocket = Hooked;
})();
"""
WS_COUNT = "() => [window.__tpws.n, window.__tpws.chars]"


@dataclass
class Session:
    """What one browser session saw."""

    index: int
    measure: str
    open_s: float = float("nan")
    updates_ms: list[float] = field(default_factory=list)
    #: per update: the time from the Enter key to the arrival of the KPI cards' message
    arrive_ms: list[float] = field(default_factory=list)
    #: websocket messages and characters received during the updates
    ws: tuple[int, int] = (0, 0)
    #: updates the watcher missed (timed at the frame after the poll that saw them)
    missed: int = 0
    #: perf_counter when the session's KPI cards first showed, and when each timed change
    #: was sent (the updates made while other pages were still opening are told apart)
    opened_at: float = float("nan")
    sent_at: list[float] = field(default_factory=list)
    #: the server's id of a protocol session
    session_id: str = ""
    timeouts: int = 0
    error: str = ""


def _tree(pid: int) -> list:
    """A process and its descendants (the server's solve processes), with psutil."""
    import psutil

    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (the server's solve processes) in
    MB (psutil if installed, else /proc: the process alone)."""
    try:
        import psutil

        total = 0.0
        for p in _tree(pid):
            try:
                total += p.memory_info().rss
            except psutil.Error:  # ended meanwhile
                continue
        return total / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int, tree: bool = False) -> float:
    """CPU seconds (user + system) a process has used, with its descendants' when ``tree``
    (the server's solve processes; psutil if installed, else /proc: the process alone): the
    server's share of a machine it shares with the browser and anything else running."""
    try:
        import psutil

        total = 0.0
        for p in _tree(pid) if tree else [psutil.Process(pid)]:
            try:
                t = p.cpu_times()
            except psutil.Error:  # ended meanwhile
                continue
            total += t.user + t.system
        return total
    except ImportError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BrowserCpu:
    """CPU seconds used by the browser's processes (this process's chromium descendants),
    sampled while they run: a renderer's time is kept after its page has closed."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}

    def sample(self) -> float:
        import psutil

        for p in psutil.Process().children(recursive=True):
            try:
                if "chrom" in p.name().lower() or "headless" in p.name().lower():
                    t = p.cpu_times()
                    self.seen[p.pid] = t.user + t.system
            except psutil.Error:  # ended meanwhile: its last sample stays
                continue
        return sum(self.seen.values())


def wait_destroyed(
    server_log: Path, n: int, timeout: float, ids: frozenset[str] = frozenset()
) -> int:
    """Wait until the server has printed ``n`` destroyed sessions (of ``ids`` if given);
    return how many."""
    deadline = time.monotonic() + timeout
    while True:
        gone = [
            line.split()[1:2]
            for line in server_log.read_text().splitlines()
            if line.startswith("tp-session-destroyed")
        ]
        count = sum(bool(g) and g[0] in ids for g in gone) if ids else len(gone)
        if count >= n or time.monotonic() > deadline:
            return count
        time.sleep(0.5)


#: in the server: each job's timing (``tradepolicy.dashboard.jobs`` at DEBUG) and every time
#: the event loop answered a 50 ms timer late by 5 ms or more (it was busy meanwhile)
WATCH_LOOP = """
import asyncio, logging, sys, time
import tornado.ioloop
h = logging.StreamHandler(sys.stdout)
h.setFormatter(logging.Formatter('%(message)s'))
jl = logging.getLogger('tradepolicy.dashboard.jobs')
jl.addHandler(h)
jl.setLevel(logging.DEBUG)

def watch_loop(url):
    async def watch():
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.05)
            late = time.perf_counter() - t - 0.05
            if late >= 0.005:
                print(f'tp-loop-late t={time.perf_counter():.3f} ms={1000 * late:.0f}', flush=True)
    tornado.ioloop.IOLoop.current().spawn_callback(watch)
"""


#: ``--slow-solve-ms``: every job a session queues waits that long before it computes (a
#: deliberately slowed server, to check that the timed updates include the server's solves)
SLOW_JOBS = """
from tradepolicy.dashboard import jobs as _jobs
_submit = _jobs.SessionJobs.submit

def _slow_submit(self, key, compute, publish, *args, **kwargs):
    def slow():
        time.sleep({delay_s!r})
        return compute()
    return _submit(self, key, slow, publish, *args, **kwargs)

_jobs.SessionJobs.submit = _slow_submit
"""


def start_server(
    port: int,
    threads: int | None,
    log_file: Path,
    slow_ms: float = 0.0,
    processes: int | None = None,
) -> subprocess.Popen:
    """The dashboard in a subprocess on 127.0.0.1; sessions unused for 1 s are discarded;
    with ``slow_ms`` every solve job waits that long first; ``threads`` and ``processes``
    (None: the server's defaults) as ``serve`` takes them."""
    extra = "" if threads is None else f", threads={threads}"
    extra += "" if processes is None else f", processes={processes}"
    slow = SLOW_JOBS.format(delay_s=slow_ms / 1000) if slow_ms > 0 else ""
    code = (
        WATCH_LOOP
        + slow
        + (
            "import panel as pn; "
            "pn.state.on_session_destroyed("
            "lambda ctx: print('tp-session-destroyed', ctx.id, flush=True)); "
            "from tradepolicy.dashboard import serve; "
            f"serve(port={port}, show=False, address='127.0.0.1', market={MARKET!r}, "
            "announce=watch_loop, "
            f"check_unused_sessions_milliseconds=500, unused_session_lifetime_milliseconds=1000"
            f"{extra})"
        )
    )
    return _server.start_server(code, port, log_file, timeout_s=120)


async def run_session(
    browser, url: str, s: Session, changes: int, timeout_s: float, pause_s: float = 0.0
) -> None:
    preset, box_class, first, step = PLAN[s.index % len(PLAN)]
    ctx = await browser.new_context(viewport={"width": 1500, "height": 1100})
    try:
        await ctx.add_init_script(WS_HOOK)
        page = await ctx.new_page()
        start = time.perf_counter()
        await page.goto(url + f"?market={MARKET}", timeout=timeout_s * 4000)
        # the first KPI card shown: the 2030 tab opens first, the one-year strip is hidden there
        await page.wait_for_selector(
            "[data-kpi] [data-kpi-value]:visible", timeout=timeout_s * 4000
        )
        s.opened_at = time.perf_counter()
        s.open_s = s.opened_at - start
        old = await page.evaluate(FIND_KPIS)
        await page.locator(".tp-add-type select").select_option(label=preset)
        await page.wait_for_function(
            "(old) => window.__tp.text() !== old",
            arg=old,
            polling=POLL_MS,
            timeout=timeout_s * 4000,
        )
        box = page.locator(f".{box_class} input").first
        # a value of its own for every session and change: never a cache hit
        offset = (s.index // len(PLAN)) * step / 7
        ws0 = await page.evaluate(WS_COUNT)
        for j in range(changes):
            if j and pause_s > 0:
                await asyncio.sleep(pause_s)  # reading the last result
            value = first + step * (j + 1) + offset
            await page.evaluate(ARM)
            sent = time.perf_counter()
            await box.fill(f"{value:g}")
            await box.press("Enter")
            try:
                res = await page.wait_for_function(
                    CHANGED, polling=POLL_MS, timeout=timeout_s * 1000
                )
            except Exception:  # Playwright's TimeoutError: counted, the session goes on
                s.timeouts += 1
                log.info("session %d (%s): no update after %s", s.index, box_class, value)
                continue
            total, arrived = await res.json_value()
            s.updates_ms.append(float(total))
            s.sent_at.append(sent)
            if arrived is not None:
                s.arrive_ms.append(float(arrived))
        ws1 = await page.evaluate(WS_COUNT)
        s.ws = (ws1[0] - ws0[0], ws1[1] - ws0[1])
        s.missed = int(await page.evaluate("() => window.__tp.missed"))
    except Exception as exc:  # a session that could not run is reported, not hidden
        s.error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        await ctx.close()


async def load(
    url: str,
    n: int,
    changes: int,
    timeout_s: float,
    on_open,
    cpu: BrowserCpu,
    pause_s: float = 0.0,
) -> list[Session]:
    from playwright.async_api import async_playwright

    sessions = [Session(i, PLAN[i % len(PLAN)][1]) for i in range(n)]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tasks = [
            asyncio.create_task(run_session(browser, url, s, changes, timeout_s, pause_s))
            for s in sessions
        ]
        opened = asyncio.create_task(_when_open(sessions, on_open))
        sampling = asyncio.create_task(_sample(cpu))
        await asyncio.gather(*tasks)
        cpu.sample()
        opened.cancel()
        sampling.cancel()
        await browser.close()
    return sessions


async def _sample(cpu: BrowserCpu) -> None:
    while True:
        cpu.sample()
        await asyncio.sleep(0.5)


async def _when_open(sessions: list[Session], on_open) -> None:
    """Call ``on_open`` once every session has opened its page (server memory then)."""
    while not all(np.isfinite(s.open_s) or s.error for s in sessions):
        await asyncio.sleep(0.2)
    on_open()


# -- protocol clients: the browser's websocket protocol without a browser ---------------------
#: css classes of the models a protocol session reads and sets (as the browser mode's selectors)
ANSWER_KPIS = "tp-answer-kpis-pane"
ADD_TYPE = "tp-add-type"


class _CardsText(HTMLParser):
    """The text of every ``[data-kpi]`` element of an HTML fragment, as the browser mode
    reads it (``textContent`` of each card, joined by ``|``): the "updating…" mark, outside
    the cards, is not part of it."""

    VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr", "col", "area", "source"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cards: list[list[str]] = []
        self._open: list[bool] = []  # per open element: whether it is a card

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        card = any(k == "data-kpi" for k, _ in attrs) and not any(self._open)
        if card:
            self.cards.append([])
        self._open.append(card)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if any(self._open):
            self.cards[-1].append(data)


def kpi_text(markup: str) -> str:
    """The KPI cards' text in an HTML pane's ``text`` (Panel sends it HTML-escaped)."""
    parser = _CardsText()
    parser.feed(unescape(markup))
    parser.close()
    return "|".join("".join(c) for c in parser.cards)


def find_model(doc: Any, css_class: str) -> Any | None:
    """The first model of a Bokeh document carrying ``css_class`` (as the browser's
    ``.css-class`` selector finds the widget)."""
    for m in doc.models:
        if css_class in (getattr(m, "css_classes", None) or ()):
            return m
    return None


class KpiWatch:
    """Watches a client document's 2030 KPI cards: :meth:`arm` before a change, then await
    the returned future, set (to ``time.perf_counter()``) when a document patch from the
    server changes the cards' text."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.model: Any = None
        self.old: str | None = None
        self.waiter: asyncio.Future[float] | None = None
        doc.on_change(self._changed)

    def text(self) -> str:
        """The cards' text now (the pane found again if the server replaced it)."""
        if self.model is None or self.model.document is None:
            self.model = find_model(self.doc, ANSWER_KPIS)
        return kpi_text(self.model.text) if self.model is not None else ""

    def arm(self, old: str | None = None) -> asyncio.Future[float]:
        """Wait for a text other than ``old`` (default: the text now)."""
        self.old = self.text() if old is None else old
        self.waiter = asyncio.get_running_loop().create_future()
        now = self.text()
        if now and now != self.old:  # (already there)
            self.waiter.set_result(time.perf_counter())
        return self.waiter

    def _changed(self, event: Any) -> None:
        # called for each event of a patch as it is applied (and for this client's own changes)
        w = self.waiter
        if w is None or w.done():
            return
        model = getattr(event, "model", None)
        text_event = model is not None and model is self.model and event.attr == "text"
        if not (text_event or self.model is None or self.model.document is None):
            return
        now = self.text()
        if now and now != self.old:
            w.set_result(time.perf_counter())


async def _wait(fut: asyncio.Future[float], timeout_s: float, end: float) -> float:
    """``fut``'s result, within ``timeout_s`` and before the run's ``end`` (perf_counter)."""
    left = min(timeout_s, end - time.perf_counter())
    if left <= 0:
        raise TimeoutError("deadline")
    return await asyncio.wait_for(fut, left)


async def drive_protocol(
    client: Any,
    s: Session,
    changes: int,
    timeout_s: float,
    pause_s: float,
    start: float,
    end: float,
) -> None:
    """One protocol session, on its client's IOLoop: what :func:`run_session` does in a
    page, done on the document's models (see the module's description)."""
    from bokeh.document.events import MessageSentEvent
    from bokeh.events import DocumentReady

    preset, box_class, first, step = PLAN[s.index % len(PLAN)]
    doc = client.document
    kpis = KpiWatch(doc)
    # what the server sends, counted as the browser mode's page counts it: every websocket
    # message (a Bokeh message's header, metadata, content and buffers come one by one) and
    # its characters or bytes, read where the client's connection assembles them
    received = [0, 0]
    receiver = client._connection._receiver
    consume = receiver.consume

    async def counted(fragment: str | bytes) -> Any:
        received[0] += 1
        received[1] += len(fragment)
        return await consume(fragment)

    receiver.consume = counted
    opened = kpis.arm(old="")
    # as BokehJS once the page has rendered: the server's on-load callbacks (the 2030 solves)
    doc.callbacks.trigger_on_change(MessageSentEvent(doc, "bokeh_event", DocumentReady()))
    await _wait(opened, timeout_s * 4, end)
    s.opened_at = time.perf_counter()
    s.open_s = s.opened_at - start
    select = find_model(doc, ADD_TYPE)
    if select is None:
        raise LookupError(f"no model with css class {ADD_TYPE}")
    groups = select.options.values() if isinstance(select.options, dict) else [select.options]
    values = [o[0] for group in groups for o in group if isinstance(o, list | tuple)]
    labels = [o[1] for group in groups for o in group if isinstance(o, list | tuple)]
    switched = kpis.arm()
    select.value = values[labels.index(preset)]
    await _wait(switched, timeout_s * 4, end)
    box = find_model(doc, box_class)
    if box is None:
        raise LookupError(f"no model with css class {box_class}")
    offset = (s.index // len(PLAN)) * step / 7
    ws0 = tuple(received)
    for j in range(changes):
        s.ws = (received[0] - ws0[0], received[1] - ws0[1])
        if j and pause_s > 0:
            await asyncio.sleep(pause_s)
        value = first + step * (j + 1) + offset
        changed = kpis.arm()
        t0 = time.perf_counter()
        # what the browser's Enter in the box sends: the value, then its throttled copy
        box.value = value
        box.set_from_json("value_throttled", value)
        try:
            s.updates_ms.append(1000 * (await _wait(changed, timeout_s, end) - t0))
            s.sent_at.append(t0)
        except TimeoutError:
            if time.perf_counter() >= end:
                raise
            s.timeouts += 1
            log.info("session %d (%s): no update after %s", s.index, box_class, value)
    s.ws = (received[0] - ws0[0], received[1] - ws0[1])


async def _pump(client: Any) -> None:
    """Apply the server's patches to the client's document until the connection closes.

    Bokeh's own loop for this (``ClientSession._loop_until_closed``, meant for tests) awaits
    itself once per message, so a session of a few hundred messages exceeds Python's recursion
    limit; this reads the same connection one message after another."""
    connection = client._connection
    while True:
        message = await connection._pop_message()
        if message is None:  # closed
            return
        if message.msgtype == "PATCH-DOC":
            client._handle_patch(message)


def run_protocol_session(
    url: str, s: Session, changes: int, timeout_s: float, pause_s: float, end: float
) -> None:
    """One protocol session in this thread, on an IOLoop of its own; closed at the end (the
    server then discards it)."""
    from bokeh.client import pull_session
    from tornado.ioloop import IOLoop

    loop = IOLoop()
    try:
        start = time.perf_counter()
        client = pull_session(url=url, io_loop=loop, arguments={"market": MARKET})
        s.session_id = str(client.id)

        async def run() -> None:
            pump = asyncio.ensure_future(_pump(client))
            try:
                await drive_protocol(client, s, changes, timeout_s, pause_s, start, end)
            except Exception as exc:  # reported, not hidden
                s.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            finally:
                client.close()
                await asyncio.wait_for(pump, 30)

        loop.run_sync(run)
    except Exception as exc:
        s.error = s.error or f"{type(exc).__name__}: {exc}"
    finally:
        loop.close(all_fds=True)


def load_protocol(
    url: str, n: int, changes: int, timeout_s: float, deadline_s: float, on_open, pause_s: float
) -> list[Session]:
    """``n`` protocol sessions at once, each in a thread of its own (Bokeh's client blocks
    on its IOLoop); ``on_open`` is called once every session has its KPI cards."""
    sessions = [Session(i, PLAN[i % len(PLAN)][1]) for i in range(n)]
    end = time.perf_counter() + deadline_s
    threads = [
        threading.Thread(
            target=run_protocol_session,
            args=(url, s, changes, timeout_s, pause_s, end),
            name=f"protocol-{s.index}",
            daemon=True,
        )
        for s in sessions
    ]
    for t in threads:
        t.start()
    told = False
    while any(t.is_alive() for t in threads) and time.perf_counter() < end + 30:
        if not told and all(np.isfinite(s.open_s) or s.error for s in sessions):
            on_open()
            told = True
        time.sleep(0.2)
    if not told:
        on_open()
    for s, t in zip(sessions, threads, strict=True):
        if t.is_alive():
            s.error = s.error or "still running after the deadline"
    return sessions


def _q(values: list[float] | np.ndarray) -> str:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return "none"
    p50, p95, top = np.percentile(a, [50, 95, 100])
    return f"p50 {p50:.0f} / p95 {p95:.0f} / max {top:.0f} ms"


def opening_split(sessions: list[Session]) -> str:
    """The updates sent while another session's page was still opening (the server then
    also builds pages) against those sent once every page was open."""
    last = max((s.opened_at for s in sessions if np.isfinite(s.opened_at)), default=np.nan)
    during = [u for s in sessions for u, t in zip(s.updates_ms, s.sent_at, strict=True) if t < last]
    after = [u for s in sessions for u, t in zip(s.updates_ms, s.sent_at, strict=True) if t >= last]
    return (
        f"updates sent while other pages were still opening: {len(during)}, {_q(during)}; "
        f"once every page was open: {len(after)}, {_q(after)}"
    )


def report_split(sessions: list[Session], server_log: str) -> None:
    """Where an update's time goes: before the KPI message reached the browser and after it
    (BokehJS, layout, paint); per job key, the server's time in each step; how long the
    server's event loop was busy; what the server sent each page per update."""
    pairs = [
        (u, a)
        for s in sessions
        for u, a in zip(s.updates_ms, s.arrive_ms, strict=False)
        if len(s.arrive_ms) == len(s.updates_ms)
    ]
    if pairs:
        u, a = np.array(pairs).T
        log.info(
            "Enter to the KPI message's arrival: %s; arrival to the repainted cards: %s",
            _q(a),
            _q(u - a),
        )
    steps = ("session_ms", "pool_ms", "compute_ms", "loop_ms", "publish_ms")
    jobs: dict[str, dict[str, list[float]]] = {}
    for line in server_log.splitlines():
        if not line.startswith("tp-job "):
            continue
        f = dict(kv.split("=", 1) for kv in line.split()[1:])
        d = jobs.setdefault(f["key"], {k: [] for k in steps})
        for k in steps:
            d[k].append(float(f[k]))
    for key, d in jobs.items():
        log.info(
            "server, %-7s jobs (%d): %s",
            key,
            len(d["compute_ms"]),
            "; ".join(f"{k[:-3]} {_q(v)}" for k, v in d.items()),
        )
    lines = server_log.splitlines()
    late = [float(line.split("ms=")[1]) for line in lines if line.startswith("tp-loop-late")]
    if late:
        log.info(
            "event loop late by 5 ms or more %d times (%s), %.1f s in all",
            len(late),
            _q(late),
            sum(late) / 1000,
        )
    ws = [s.ws for s in sessions if s.updates_ms]
    n_upd = sum(len(s.updates_ms) for s in sessions)
    if any(w[0] for w in ws) and n_upd:  # (counted by the browser mode's pages)
        log.info(
            "websocket per update and page: %.1f messages, %.0f kB",
            sum(w[0] for w in ws) / n_upd,
            sum(w[1] for w in ws) / n_upd / 1000,
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=None, help="concurrent browser sessions")
    ap.add_argument("--changes", type=int, default=None, help="timed changes per session")
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: 4 sessions x 4 changes (unless given)"
    )
    ap.add_argument(
        "--pause",
        type=float,
        default=0.0,
        help="seconds each session waits after an update before its next change (0: closed loop)",
    )
    ap.add_argument("--threads", type=int, default=None, help="server solve threads")
    ap.add_argument(
        "--processes",
        type=int,
        default=None,
        help="server solve processes (default: the server's, one used while sessions solve "
        "at once; a number: every solve in that many; 0: none)",
    )
    ap.add_argument(
        "--clients",
        choices=("browser", "protocol"),
        default="browser",
        help="browser: chromium pages (rendering included); protocol: Bokeh's client API, "
        "the same websocket protocol without rendering (the server's own capacity)",
    )
    ap.add_argument(
        "--slow-solve-ms",
        type=float,
        default=0.0,
        help="check: every solve job of the server waits this long first (default 0)",
    )
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per update")
    ap.add_argument("--deadline", type=float, default=600.0, help="seconds for the whole run")
    args = ap.parse_args(argv)
    if args.sessions is None:
        args.sessions = 4 if args.quick else 10
    if args.changes is None:
        args.changes = 4 if args.quick else 12
    if args.pause < 0:
        ap.error("--pause must be at least 0")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    # (Bokeh's client logs every connection it sees closed, ours included)
    logging.getLogger("bokeh.client").setLevel(logging.WARNING)
    if args.clients == "browser" and not Path(CHROMIUM).exists():
        sys.exit(f"chromium not found at {CHROMIUM}")
    rss: dict[str, float] = {}
    cpu: dict[str, float] = {}
    browser_cpu = BrowserCpu()
    with tempfile.TemporaryDirectory() as tmp:
        server_log = Path(tmp) / "server.log"
        port = _server.free_port()
        proc = start_server(port, args.threads, server_log, args.slow_solve_ms, args.processes)
        try:
            rss["start"], cpu["start"] = rss_mb(proc.pid), cpu_s(proc.pid, tree=True)
            url = f"http://127.0.0.1:{port}/"
            # the clients' CPU: chromium's processes, or this process (the protocol threads)
            protocol = args.clients == "protocol"
            own = cpu_s(os.getpid())

            def client_cpu() -> float:
                return cpu_s(os.getpid()) - own if protocol else browser_cpu.sample()

            def on_open() -> None:
                rss["open"], cpu["open"] = rss_mb(proc.pid), cpu_s(proc.pid, tree=True)
                cpu["client_open"] = client_cpu()

            t0 = time.perf_counter()
            if protocol:
                sessions = load_protocol(
                    url,
                    args.sessions,
                    args.changes,
                    args.timeout,
                    args.deadline,
                    on_open,
                    args.pause,
                )
            else:
                sessions = asyncio.run(
                    asyncio.wait_for(
                        load(
                            url,
                            args.sessions,
                            args.changes,
                            args.timeout,
                            on_open,
                            browser_cpu,
                            args.pause,
                        ),
                        args.deadline,
                    )
                )
            wall = time.perf_counter() - t0
            cpu["end"] = cpu_s(proc.pid, tree=True)
            cpu["client_end"] = client_cpu() if protocol else sum(browser_cpu.seen.values())
            if protocol:  # (the sessions' ids are known)
                ids = frozenset(s.session_id for s in sessions if s.session_id)
                destroyed = wait_destroyed(server_log, len(ids), 60.0, ids)
            else:  # and the session of the page read to see that the server had started
                destroyed = wait_destroyed(server_log, args.sessions + 1, 60.0) - 1
            time.sleep(3.0)  # the server trims its heap 2 s after a session is destroyed
            rss["end"] = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        text = server_log.read_text()
    if "Traceback" in text:
        log.info("the server logged a traceback:\n%s", text[text.index("Traceback") :][:3000])
    ms = np.array([m for s in sessions for m in s.updates_ms])
    opens = np.array([s.open_s for s in sessions if np.isfinite(s.open_s)])
    timeouts = sum(s.timeouts for s in sessions)
    for s in sessions:
        log.info(
            "session %2d %-22s open %5.1f s  updates %2d  median %6.0f ms  timeouts %d %s",
            s.index,
            s.measure,
            s.open_s,
            len(s.updates_ms),
            np.median(s.updates_ms) if s.updates_ms else float("nan"),
            s.timeouts,
            s.error,
        )
    errors = sum(bool(s.error) for s in sessions)
    if len(ms) == 0:
        sys.exit("no update was measured")
    p50, p95, mx = (float(np.percentile(ms, q)) for q in (50, 95, 100))
    log.info(
        "%d %s sessions, %d updates in %.0f s (threads: %s, processes: %s; pause between a "
        "session's changes "
        "%g s%s%s): min %.0f ms, p50 %.0f ms, p95 %.0f ms, max %.0f ms; %d timeouts, %d sessions "
        "failed",
        len(sessions),
        args.clients,
        len(ms),
        wall,
        args.threads if args.threads is not None else "server default",
        args.processes if args.processes is not None else "server default",
        args.pause,
        ", closed loop" if args.pause == 0 else "",
        f"; every solve slowed by {args.slow_solve_ms:g} ms" if args.slow_solve_ms > 0 else "",
        float(ms.min()),
        p50,
        p95,
        mx,
        timeouts,
        errors,
    )
    log.info("%s", opening_split(sessions))
    log.info(
        "%s opened in %.1f–%.1f s (median %.1f s)",
        "sessions" if args.clients == "protocol" else "pages",
        opens.min(),
        opens.max(),
        np.median(opens),
    )
    log.info(
        "server RSS (with its solve processes): %.0f MB at start, %.0f MB with every session "
        "open, %.0f MB after they closed (%d sessions destroyed by the server)",
        rss.get("start", float("nan")),
        rss.get("open", float("nan")),
        rss.get("end", float("nan")),
        destroyed,
    )
    n_open = max(len(opens), 1)
    log.info(
        "server CPU (with its solve processes): %.2f s per page opened, %.3f s per update "
        "(both phases overlap a little; load average %.1f on %d cores)",
        (cpu.get("open", np.nan) - cpu.get("start", np.nan)) / n_open,
        (cpu.get("end", np.nan) - cpu.get("open", np.nan)) / max(len(ms), 1),
        os.getloadavg()[0],
        os.cpu_count() or 0,
    )
    log.info(
        "%s CPU: %.2f s per %s opened, %.3f s per update (%s)",
        "protocol clients'" if args.clients == "protocol" else "browser",
        cpu.get("client_open", np.nan) / n_open,
        "session" if args.clients == "protocol" else "page",
        (cpu.get("client_end", np.nan) - cpu.get("client_open", np.nan)) / max(len(ms), 1),
        "this process's threads"
        if args.clients == "protocol"
        else f"{len(browser_cpu.seen)} chromium processes",
    )
    report_split(sessions, text)
    ok = p95 <= TARGET_P95_MS and timeouts == 0 and errors == 0
    log.info("goal p95 <= %.0f ms, no timeouts: %s", TARGET_P95_MS, "met" if ok else "MISSED")
    mb = {k: rss.get(k, float("nan")) for k in ("start", "open", "end")}
    print(
        f"p50_ms={p50:.0f} p95_ms={p95:.0f} max_ms={mx:.0f} timeouts={timeouts} "
        f"sessions={len(sessions)} updates={len(ms)} open_max_s={opens.max():.1f} "
        f"rss_mb_start={mb['start']:.0f} rss_mb_open={mb['open']:.0f} rss_mb_end={mb['end']:.0f} "
        f"pause_s={args.pause:g} clients={args.clients}"
    )


if __name__ == "__main__":
    main()
