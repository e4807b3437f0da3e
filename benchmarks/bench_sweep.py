"""Benchmark: a large sweep of the NdPr oxide market streamed to a temporary Zarr store.

What is measured
----------------
One scenario of the shipped NdPr oxide market combines a G7 + Australia landed price floor
(variable levy on non-member supply to the US, Japan and the EU) with a one-sided price-gap
subsidy for US and Australian producers. The sweep spec (written to a temporary folder) crosses

* ``floor``: the club's floor level, evenly spaced over 60–140 USD/kg,
* ``strike``: the subsidy's strike, evenly spaced over 60–140 USD/kg,
* ``sigma``: the substitution elasticity of every region scaled by 0.5–2 (10 points),
* ``draw``: the central estimate and 9 Monte Carlo draws of the elasticities,

so every row is a distinct equilibrium; the floor and strike grids are sized so that the rows
reach ``--rows`` (default 1,000,000; ``--quick`` 20,000). :func:`tradepolicy.sweep` solves it
with its defaults (4096-row blocks, one local worker process per CPU, or ``--workers``) and
writes the lean variable set block by block. Timed: the whole call (spec validation, store
creation, solving, writing), with :func:`time.perf_counter`. Peak memory is the largest
resident set of this process plus its worker processes, sampled every 0.1 s with psutil in a
thread. The store is checked afterwards: every block written, every row converged.

The last line is ``rows=<n> seconds=<t> rows_per_second=<r> peak_memory_gb=<m>``.
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

import tradepolicy as tp

log = logging.getLogger("bench_sweep")

DRAWS = 9
SIGMA = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0]

SPEC = """\
title = "bench: NdPr floor x strike x substitution x draws"
market = "ndpr_oxide"
target = {{ group = "g7_partners", max_share = 0.60 }}
draws = {draws}
seed = 1

[[scenario]]
name = "floor_and_subsidy"
[[scenario.measure]]
type = "price_floor"
importers = ["USA", "JPN", "EU"]
exempt = ["USA", "JPN", "EU", "AUS"]
floor = 110000.0
[[scenario.measure]]
type = "price_gap_subsidy"
producers = ["USA", "AUS"]
strike = 110000.0
kind = "one_sided"

[[grid]]
name = "floor"
measure = "price_floor"
field = "floor"
values = {floors}

[[grid]]
name = "strike"
measure = "price_gap_subsidy"
field = "strike"
values = {strikes}

[[grid]]
name = "sigma"
elasticity = "substitution"
mode = "scale"
values = {sigma}
"""


class PeakMemory:
    """Largest RSS of this process and its children, sampled in a thread."""

    def __init__(self, every: float = 0.1) -> None:
        self.every, self.peak = every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:  # exited between listing and reading
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def grid_for(rows: int) -> tuple[list[float], list[float]]:
    """Floor and strike values (USD/t) giving at least ``rows`` rows."""
    per_point = (DRAWS + 1) * len(SIGMA)
    pairs = max(1, math.ceil(rows / per_point))
    n_floor = math.ceil(math.sqrt(pairs))
    n_strike = math.ceil(pairs / n_floor)
    floors = np.linspace(60_000.0, 140_000.0, n_floor).round(3).tolist()
    strikes = np.linspace(60_000.0, 140_000.0, n_strike).round(3).tolist()
    return floors, strikes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="20,000 rows")
    ap.add_argument("--workers", type=int, default=None, help="default: CPU count")
    ap.add_argument("--block-size", type=int, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = 20_000 if args.quick else args.rows
    floors, strikes = grid_for(rows)
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        spec = Path(tmp) / "sweep.toml"
        spec.write_text(
            SPEC.format(draws=DRAWS, floors=floors, strikes=strikes, sigma=SIGMA),
            encoding="utf-8",
        )
        out = Path(tmp) / "sweep.zarr"
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            tp.sweep(spec, out, block_size=args.block_size, workers=args.workers, progress=False)
            seconds = time.perf_counter() - t0
        ds = tp.open_sweep(out)
        n = int(np.prod([ds.sizes[d] for d in ("scenario", "floor", "strike", "sigma", "draw")]))
        solved = int((ds["converged"] == 1).sum())
        blocks = int(ds["block_done"].sum())
        log.info(
            "grid: %d floors x %d strikes x %d sigma x %d draws = %d rows in %d blocks; "
            "%d rows converged",
            len(floors),
            len(strikes),
            len(SIGMA),
            DRAWS + 1,
            n,
            blocks,
            solved,
        )
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        log.info("store: %.1f MB on disk", size / 1e6)
    print(
        f"rows={n} seconds={seconds:.1f} rows_per_second={n / seconds:.0f} "
        f"peak_memory_gb={mem.peak / 1e9:.2f}"
    )


if __name__ == "__main__":
    main()
