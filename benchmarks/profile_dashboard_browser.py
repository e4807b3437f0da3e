"""Profile: where the browser's CPU goes per dashboard update (one page, Chrome DevTools).

What is measured
----------------
The dashboard is served in a subprocess on 127.0.0.1 (as in ``bench_dashboard_load.py``) on
``--market``; one headless Debian chromium page opens it on the 2030 tab, switches on the club
price floor and types ``--changes`` new floor levels (each a value not solved before), waiting
after each for the 2030 KPI cards to change and then ``--settle`` seconds for the rest of the
update (table, charts, who pays) to arrive and be drawn.

Around those changes, through the Chrome DevTools Protocol (a CDP session from Playwright):

- ``Performance.getMetrics`` before and after: the renderer's task, script, style
  recalculation and layout time and the counts of recalculations and layouts, per change;
- the V8 sampling profiler (``Profiler``): self time summed by function and by script file,
  per change (the top ``--top``);
- a trace (``Tracing``, the ``devtools.timeline`` category) of the renderer's main thread:
  time in style recalculation (``UpdateLayoutTree``), layout, pre-paint, paint, layerize and
  script, per change;
- every websocket message the page received (hooked as in ``bench_dashboard_load.py``): the
  Bokeh document events, counted by model type and property.

Usage::

    python benchmarks/profile_dashboard_browser.py                   # ndpr_oxide, 8 changes
    python benchmarks/profile_dashboard_browser.py --market ree_magnets --changes 5
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import _server
from bench_dashboard_load import FIND_KPIS, start_server

from tradepolicy.dashboard.config import CHROMIUM, CHROMIUM_ARGS

log = logging.getLogger("profile_dashboard_browser")

#: keeps the text of every websocket message the page receives (the Bokeh protocol's JSON)
WS_KEEP = """
(() => {
  const W = window.WebSocket;
  window.__tpmsgs = [];
  function Hooked(...args) {
    const ws = new W(...args);
    ws.addEventListener('message', (e) => {
      if (typeof e.data === 'string') window.__tpmsgs.push([performance.now(), e.data]);
    });
    return ws;
  }
  Hooked.prototype = W.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Hooked[k] = W[k];
  window.WebSocket = Hooked;
})();
"""
#: the Bokeh document events in the kept messages: [model type, attribute or event kind, size]
EVENTS = """
() => {
  const doc = window.Bokeh.documents[0];
  const out = [];
  for (const [at, m] of window.__tpmsgs) {
    let j;
    try { j = JSON.parse(m); } catch (e) { continue; }
    if (!j || !Array.isArray(j.events)) continue;
    for (const ev of j.events) {
      const id = ev.model ? ev.model.id : (ev.column_source ? ev.column_source.id : null);
      const model = id ? doc.get_model_by_id(id) : null;
      let type = model ? model.type : '?';
      const cls = model && model.css_classes ? model.css_classes : [];
      if (cls.length) type += '.' + cls.join('.');
      out.push([type, ev.attr || ev.kind, JSON.stringify(ev).length, at]);
    }
  }
  return out;
}
"""
TRACE_NAMES = {
    "UpdateLayoutTree": "style recalculation",
    "Layout": "layout",
    "PrePaint": "pre-paint",
    "Paint": "paint",
    "Layerize": "layerize",
    "FunctionCall": "script (function calls)",
    "EventDispatch": "script (events)",
    "TimerFire": "script (timers)",
    "FireAnimationFrame": "animation frames",
    "ParseHTML": "parse HTML",
    "HitTest": "hit test",
    "IntersectionObserverController::computeIntersections": "intersection observers",
}
METRICS = (
    "TaskDuration",
    "ScriptDuration",
    "RecalcStyleDuration",
    "LayoutDuration",
    "RecalcStyleCount",
    "LayoutCount",
    "Nodes",
)


def process_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's chromium descendants, by kind (``--type=``)."""
    import psutil

    out: dict[str, float] = collections.defaultdict(float)
    for proc in psutil.Process().children(recursive=True):
        try:
            if "chrom" not in proc.name().lower() and "headless" not in proc.name().lower():
                continue
            kind = next(
                (a.split("=", 1)[1] for a in proc.cmdline() if a.startswith("--type=")),
                "browser",
            )
            t = proc.cpu_times()
            out[kind] += t.user + t.system
        except psutil.Error:
            continue
    return dict(out)


async def change(page: Any, box: Any, first: float, steps: range, settle: float) -> None:
    """Type the floor levels of ``steps``, each waited for and then ``settle`` seconds."""
    for j in steps:
        old = await page.evaluate("() => window.__tp.text()")
        await box.fill(f"{first + 3.7 * (j + 1):g}")
        await box.press("Enter")
        await page.wait_for_function(
            "(o) => window.__tp.text() !== o", arg=old, polling=50, timeout=60_000
        )
        await page.wait_for_timeout(int(settle * 1000))


def self_times(profile: dict[str, Any]) -> tuple[collections.Counter, collections.Counter]:
    """Self time (ms) of a V8 CPU profile by function (name and file) and by file."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    by_fn: collections.Counter = collections.Counter()
    by_file: collections.Counter = collections.Counter()
    for node_id, dt in zip(profile["samples"], profile["timeDeltas"], strict=True):
        cf = nodes[node_id]["callFrame"]
        url = cf.get("url", "").rsplit("/", 1)[-1].split("?")[0] or "(native)"
        name = cf.get("functionName") or "(anonymous)"
        by_fn[f"{name} [{url}:{cf.get('lineNumber', -1) + 1}]"] += dt / 1000
        by_file[url] += dt / 1000
    return by_fn, by_file


def trace_self_times(events: list[dict[str, Any]]) -> collections.Counter:
    """Self time (ms) of each kind of complete event on the renderer's main thread (its
    duration less that of the events nested in it)."""
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"
    }
    done = sorted(
        (e for e in events if (e.get("pid"), e.get("tid")) in main and e.get("ph") == "X"),
        key=lambda e: (e["ts"], -e.get("dur", 0)),
    )
    out: collections.Counter = collections.Counter()
    stack: list[tuple[float, str]] = []  # (end, name) of the open events
    for e in done:
        start, dur = e["ts"], e.get("dur", 0)
        while stack and stack[-1][0] <= start:
            stack.pop()
        if stack:
            out[stack[-1][1]] -= dur / 1000
        out[e["name"]] += dur / 1000
        stack.append((start + dur, e["name"]))
    return out


def trace_times(events: list[dict[str, Any]]) -> collections.Counter:
    """Time (ms) in each kind of main-thread work of the renderer's trace events."""
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"
    }
    out: collections.Counter = collections.Counter()
    for e in events:
        if (e.get("pid"), e.get("tid")) not in main or e.get("ph") != "X":
            continue
        label = TRACE_NAMES.get(e.get("name", ""))
        if label is not None:
            out[label] += e.get("dur", 0) / 1000
        if e.get("name") == "RunTask":
            out["main thread busy (tasks)"] += e.get("dur", 0) / 1000
    return out


async def profile(
    url: str, market: str, changes: int, settle: float, top: int, save: Path | None
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = await browser.new_context(viewport={"width": 1500, "height": 1100})
        await ctx.add_init_script(WS_KEEP)
        page = await ctx.new_page()
        await page.goto(url + f"?market={market}", timeout=180_000)
        await page.wait_for_selector("[data-kpi] [data-kpi-value]:visible", timeout=180_000)
        await page.wait_for_timeout(3000)  # the set's run and the page's first drawing
        old = await page.evaluate(FIND_KPIS)
        await page.locator(".tp-add-type select").select_option(label="Club price floor")
        await page.wait_for_function("(o) => window.__tp.text() !== o", arg=old, timeout=60_000)
        await page.wait_for_timeout(int(settle * 1000))
        box = page.locator(".tp-floor-floor input").first
        first = float(await box.input_value() or 100.0)

        # first without the profiler and the trace: the processes' CPU and Chrome's counters
        cdp = await ctx.new_cdp_session(page)
        await cdp.send("Performance.enable")
        p0 = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
        i0 = process_cpu()
        await page.wait_for_timeout(int(1000 * settle * changes))  # idle, for comparison
        c0 = i0b = process_cpu()
        await change(page, box, first, range(changes), settle)
        c1 = process_cpu()
        p1 = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}

        # then a trace (its own changes), then the JavaScript profile (more changes)
        await page.evaluate("() => { window.__tpmsgs = []; }")
        m0 = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
        await browser.start_tracing(page=page, categories=["devtools.timeline", "toplevel"])
        await change(page, box, first, range(changes, 2 * changes), settle)
        trace = json.loads(await browser.stop_tracing())
        await cdp.send("Profiler.enable")
        await cdp.send("Profiler.setSamplingInterval", {"interval": 200})
        await cdp.send("Profiler.start")
        await change(page, box, first, range(2 * changes, 3 * changes), settle)
        prof = (await cdp.send("Profiler.stop"))["profile"]
        if save is not None:
            (save / "profile.cpuprofile").write_text(json.dumps(prof))
            (save / "trace.json").write_text(json.dumps(trace))
        m1 = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
        events = await page.evaluate(EVENTS)
        await browser.close()

    n = changes
    log.info("%s: %d changes on the 2030 tab (club price floor), per change:", market, n)
    log.info(
        "  chromium CPU by process (%.1f s waited per change, no profiler): %s",
        settle,
        ", ".join(f"{k} {1000 * (c1[k] - c0.get(k, 0.0)) / n:.0f} ms" for k in sorted(c1)),
    )
    log.info(
        "  the same time idle (no change): %s",
        ", ".join(f"{k} {1000 * (i0b[k] - i0.get(k, 0.0)) / n:.0f} ms" for k in sorted(i0b)),
    )
    for k in METRICS:
        d = p1.get(k, 0.0) - p0.get(k, 0.0)
        scaled = 1000 * d / n if k.endswith("Duration") else d / n
        log.info("  metrics %-20s %8.1f%s", k, scaled, " ms" if k.endswith("Duration") else "")
    log.info("the same with the trace and then the profiler on, %d more changes each:", n)
    for k in METRICS:
        d = m1.get(k, 0.0) - m0.get(k, 0.0)
        scaled = 1000 * d / n if k.endswith("Duration") else d / n
        log.info("  metrics %-20s %8.1f%s", k, scaled, " ms" if k.endswith("Duration") else "")
    by_fn, by_file = self_times(prof)
    total = sum(by_file.values())
    log.info("V8 profile: %.1f ms sampled per change; self time by file:", total / n)
    for name, ms in by_file.most_common(top):
        log.info("  %8.1f ms  %s", ms / n, name)
    log.info("self time by function:")
    for name, ms in by_fn.most_common(top):
        log.info("  %8.1f ms  %s", ms / n, name)
    log.info("renderer main thread (trace), per change:")
    for name, ms in trace_times(trace.get("traceEvents", [])).most_common():
        log.info("  %8.1f ms  %s", ms / n, name)
    log.info("renderer main thread (trace), self time by event, per change:")
    for name, ms in trace_self_times(trace.get("traceEvents", [])).most_common(top):
        log.info("  %8.1f ms  %s", ms / n, name)
    counts = collections.Counter((t, a) for t, a, _s, _at in events)
    sizes: collections.Counter = collections.Counter()
    for t, a, s, _at in events:
        sizes[(t, a)] += s
    log.info("document events per change (%d in all):", len(events))
    for (t, a), c in counts.most_common():
        log.info("  %5.1f  %-28s %-22s %7.0f chars", c / n, t, a, sizes[(t, a)] / n)
    log.info("the last changes' events (ms after the previous event, model, property):")
    prev = None
    for t, a, _s, at in events[-3 * len(events) // (2 * n) :]:
        log.info("  %+9.1f  %s %s", 0.0 if prev is None else at - prev, t, a)
        prev = at


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--market", default="ndpr_oxide")
    ap.add_argument("--changes", type=int, default=8)
    ap.add_argument("--settle", type=float, default=1.5, help="seconds after each change")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--save", type=Path, default=None, help="folder for the profile and trace")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if not Path(CHROMIUM).exists():
        sys.exit(f"chromium not found at {CHROMIUM}")
    with tempfile.TemporaryDirectory() as tmp:
        port = _server.free_port()
        proc = start_server(port, None, Path(tmp) / "server.log")
        try:
            url = f"http://127.0.0.1:{port}/"
            asyncio.run(profile(url, args.market, args.changes, args.settle, args.top, args.save))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        jobs = collections.Counter(
            dict(kv.split("=", 1) for kv in line.split()[1:]).get("key", "?")
            for line in (Path(tmp) / "server.log").read_text().splitlines()
            if line.startswith("tp-job ")
        )
        log.info("server jobs in all (by kind): %s", dict(jobs))


if __name__ == "__main__":
    main()
