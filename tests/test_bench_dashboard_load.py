"""The load benchmark's protocol mode (benchmarks/bench_dashboard_load.py --clients protocol):
a tiny run against a deliberately slowed server, whose solves its times must include."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("panel")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_dashboard_load.py"
#: every solve job of the server waits this long first (``--slow-solve-ms``)
SLOW_MS = 400


def test_protocol_sessions_time_the_servers_solves():
    """Two protocol sessions of two changes each: every change is answered by new 2030 KPI
    cards, no update takes less than the added delay of a solve (the time runs until the
    server's new numbers arrive), and both sessions are discarded by the server."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    args = ["--clients", "protocol", "--sessions", "2", "--changes", "2", "--timeout", "20"]
    args += ["--deadline", "90", "--slow-solve-ms", str(SLOW_MS)]
    run = subprocess.run(
        [sys.executable, "-W", "error", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    last = dict(kv.split("=", 1) for kv in lines[-1].split())
    assert last["clients"] == "protocol"
    assert (last["sessions"], last["updates"], last["timeouts"]) == ("2", "4", "0")
    assert "0 sessions failed" in run.stdout
    assert "the server logged a traceback" not in run.stdout
    low = float(re.search(r"\): min (\d+) ms", run.stdout).group(1))
    assert low >= SLOW_MS, run.stdout
    assert float(last["p50_ms"]) >= SLOW_MS
    assert "(2 sessions destroyed by the server)" in run.stdout
    assert float(last["rss_mb_end"]) > 0
    split = re.search(r"still opening: (\d+), .*once every page was open: (\d+), ", run.stdout)
    assert split is not None and int(split.group(1)) + int(split.group(2)) == 4, run.stdout


def test_updates_made_while_pages_open_are_told_apart():
    """An update sent before the last page opened counts as made while pages were opening."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import bench_dashboard_load as bench
    finally:
        sys.path.remove(str(SCRIPT.parent))
    early = bench.Session(0, "a", opened_at=10.0, updates_ms=[900.0, 300.0], sent_at=[11.0, 13.0])
    late = bench.Session(1, "b", opened_at=12.0, updates_ms=[200.0], sent_at=[12.5])
    text = bench.opening_split([early, late])
    assert text.startswith("updates sent while other pages were still opening: 1, p50 900 ")
    assert "once every page was open: 2, p50 250 / p95 " in text
