"""Benchmark: many negotiators at once on one dashboard server (bounded load test).

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
time, so the server is loaded by every session's solves and view updates at once.

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

Printed: page-open times (navigation until the KPI cards are shown), update times p50/p95/max,
timeouts, and the server's resident memory (psutil, else ``/proc``) once it answers, with every
session open, and after the pages are closed and the server has discarded their sessions
(sessions unused for 1 s are discarded here). The last line is printed exactly as::

    p50_ms=<x> p95_ms=<y> max_ms=<z> timeouts=<n> sessions=<N> updates=<k> open_max_s=<s> \
rss_mb_start=<a> rss_mb_open=<b> rss_mb_end=<c> pause_s=<p>

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
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

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
    timeouts: int = 0
    error: str = ""


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (psutil if installed, else /proc)."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used (psutil if installed, else /proc): the
    server's share of a machine it shares with the browser and anything else running."""
    try:
        import psutil

        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
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


def wait_destroyed(server_log: Path, n: int, timeout: float) -> int:
    """Wait until the server has printed ``n`` destroyed sessions; return how many."""
    deadline = time.monotonic() + timeout
    while True:
        count = server_log.read_text().count("tp-session-destroyed")
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


def start_server(port: int, threads: int | None, log_file: Path) -> subprocess.Popen:
    """The dashboard in a subprocess on 127.0.0.1; sessions unused for 1 s are discarded."""
    extra = "" if threads is None else f", threads={threads}"
    code = WATCH_LOOP + (
        "import panel as pn; "
        "pn.state.on_session_destroyed(lambda ctx: print('tp-session-destroyed', flush=True)); "
        "from tradepolicy.dashboard import serve; "
        f"serve(port={port}, show=False, address='127.0.0.1', market={MARKET!r}, "
        "announce=watch_loop, "
        f"check_unused_sessions=500, unused_session_lifetime=1000{extra})"
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
        s.open_s = time.perf_counter() - start
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


def _q(values: list[float] | np.ndarray) -> str:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return "none"
    p50, p95, top = np.percentile(a, [50, 95, 100])
    return f"p50 {p50:.0f} / p95 {p95:.0f} / max {top:.0f} ms"


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
    if ws and n_upd:
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
    if not Path(CHROMIUM).exists():
        sys.exit(f"chromium not found at {CHROMIUM}")
    rss: dict[str, float] = {}
    cpu: dict[str, float] = {}
    browser_cpu = BrowserCpu()
    with tempfile.TemporaryDirectory() as tmp:
        server_log = Path(tmp) / "server.log"
        port = _server.free_port()
        proc = start_server(port, args.threads, server_log)
        try:
            rss["start"], cpu["start"] = rss_mb(proc.pid), cpu_s(proc.pid)
            url = f"http://127.0.0.1:{port}/"
            t0 = time.perf_counter()
            sessions = asyncio.run(
                asyncio.wait_for(
                    load(
                        url,
                        args.sessions,
                        args.changes,
                        args.timeout,
                        lambda: (
                            rss.__setitem__("open", rss_mb(proc.pid)),
                            cpu.__setitem__("open", cpu_s(proc.pid)),
                            cpu.__setitem__("browser_open", browser_cpu.sample()),
                        ),
                        browser_cpu,
                        args.pause,
                    ),
                    args.deadline,
                )
            )
            wall = time.perf_counter() - t0
            cpu["end"] = cpu_s(proc.pid)
            cpu["browser_end"] = sum(browser_cpu.seen.values())
            destroyed = wait_destroyed(server_log, args.sessions, 60.0)
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
        "%d sessions, %d updates in %.0f s (threads: %s; pause between a session's changes "
        "%g s%s): p50 %.0f ms, p95 %.0f ms, max %.0f ms; %d timeouts, %d sessions failed",
        len(sessions),
        len(ms),
        wall,
        args.threads if args.threads is not None else "server default",
        args.pause,
        ", closed loop" if args.pause == 0 else "",
        p50,
        p95,
        mx,
        timeouts,
        errors,
    )
    log.info(
        "pages opened in %.1f–%.1f s (median %.1f s)", opens.min(), opens.max(), np.median(opens)
    )
    log.info(
        "server RSS: %.0f MB at start, %.0f MB with every session open, %.0f MB after they "
        "closed (%d sessions destroyed by the server)",
        rss.get("start", float("nan")),
        rss.get("open", float("nan")),
        rss.get("end", float("nan")),
        destroyed,
    )
    n_open = max(len(opens), 1)
    log.info(
        "server CPU: %.2f s per page opened, %.3f s per update (both phases overlap a little; "
        "load average %.1f on %d cores)",
        (cpu.get("open", np.nan) - cpu.get("start", np.nan)) / n_open,
        (cpu.get("end", np.nan) - cpu.get("open", np.nan)) / max(len(ms), 1),
        os.getloadavg()[0],
        os.cpu_count() or 0,
    )
    log.info(
        "browser CPU: %.2f s per page opened, %.3f s per update (%d chromium processes)",
        cpu.get("browser_open", np.nan) / n_open,
        (cpu.get("browser_end", np.nan) - cpu.get("browser_open", np.nan)) / max(len(ms), 1),
        len(browser_cpu.seen),
    )
    report_split(sessions, text)
    ok = p95 <= TARGET_P95_MS and timeouts == 0 and errors == 0
    log.info("goal p95 <= %.0f ms, no timeouts: %s", TARGET_P95_MS, "met" if ok else "MISSED")
    mb = {k: rss.get(k, float("nan")) for k in ("start", "open", "end")}
    print(
        f"p50_ms={p50:.0f} p95_ms={p95:.0f} max_ms={mx:.0f} timeouts={timeouts} "
        f"sessions={len(sessions)} updates={len(ms)} open_max_s={opens.max():.1f} "
        f"rss_mb_start={mb['start']:.0f} rss_mb_open={mb['open']:.0f} rss_mb_end={mb['end']:.0f} "
        f"pause_s={args.pause:g}"
    )


if __name__ == "__main__":
    main()
