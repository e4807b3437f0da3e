"""Benchmark: the whole ``tp.solve`` with every measure, against a ``scipy.optimize.root`` loop.

What is measured
----------------
``--scenarios`` random scenarios on the synthetic 12-region market of
:mod:`tradepolicy.testing` (every scenario uses every measure type, as in
``bench_measures.py``), in the same run:

* **scipy loop** – ``scipy.optimize.root(fun, x0, jac=True, method="hybr")`` on a seeded
  random subset of ``--scipy-scenarios``, one scenario at a time, ``fun`` evaluating
  :func:`tradepolicy.model.levels.evaluate` on ``inst.take([b])`` (the helper of
  ``bench_measures.py``). It solves only: no validation, no instruments, no Dataset.
* **whole pipeline** – a :class:`tradepolicy.ScenarioSet` of all scenarios is built
  (validation: checks, conflicts, advice) and solved by :func:`tradepolicy.solve` (instruments,
  compiled solve, bookkeeping, result variables, Dataset). Warmed up first (numba compiled),
  then ``--repeat`` times from fresh measure objects (copies made before the clock starts, so
  nothing is reused from an earlier repeat); the best repeat counts.

Also logged: a Monte Carlo run (``--draws-scenarios`` scenarios × ``--draws`` elasticity draws,
the market's elasticities given 20 % relative standard errors), where the inputs are built
once per scenario and every draw is warm-started, per equilibrium against the same scipy loop.

Logged: the per-stage breakdown of one more run (validation; inputs, solve, bookkeeping,
Dataset inside ``tp.solve``), with each stage's main-thread CPU time (the least of
``--cpu-runs`` more runs: the machine's load moves it far less than wall-clock time), then
the last line, printed exactly as::

    speedup_vs_scipy_root_loop=<x> scenarios_per_second=<y>

where ``speedup = (scipy time / its scenarios) / (pipeline time / scenarios)``, paired: the
scipy loop runs in 5 chunks, each set against whole pipeline runs of every scenario (best of
3) timed just before and just after it (the machine's speed drifts, by up to 2x within a
minute on a shared machine), ``sum_k chunk_k / sum_k (its scenarios x pipeline time per
scenario around it)``;
each chunk's ratio and the unpaired one (best of ``--repeat`` against the whole loop) are
logged above. ``scenarios_per_second`` counts converged scenarios of the best pipeline run.

Usage::

    python benchmarks/bench_pipeline.py            # 2,000 scenarios, best of 3, scipy on 100
    python benchmarks/bench_pipeline.py --quick    # 500 scenarios
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import time
from contextlib import contextmanager

import numpy as np
from scipy_comparison import log_paired, scipy_loop

import tradepolicy as tp
from tradepolicy import api
from tradepolicy.measures import Measure
from tradepolicy.scenario import Scenario, ScenarioSet
from tradepolicy.testing import every_measure_scenarios, random_market

log = logging.getLogger("bench_pipeline")


def fresh(measure_lists: list[list[Measure]]) -> list[Scenario]:
    """New scenario and measure objects with the same contents (nothing cached on them)."""
    return [
        Scenario(name=f"s{i}", measures=[m.model_copy(deep=True) for m in ms])
        for i, ms in enumerate(measure_lists)
    ]


def run(market, scenarios: list[Scenario], draws: int = 0) -> tuple[float, object]:
    """Validation and ``tp.solve``: wall-clock seconds and the Dataset.

    A garbage collection runs first (not timed), so that a collection the previous run made
    due is not charged to this one.
    """
    gc.collect()
    t0 = time.perf_counter()
    sset = ScenarioSet(market=market, scenarios=scenarios)
    ds = tp.solve(sset, draws=draws, seed=1 if draws else None)
    return time.perf_counter() - t0, ds


@contextmanager
def timed(stages: dict[str, float], name: str, module, attr: str, clock=time.perf_counter):
    """Add the time (by ``clock``) spent in ``module.attr`` to ``stages[name]`` while inside."""
    f = getattr(module, attr)

    def wrapper(*args, **kwargs):
        t0 = clock()
        try:
            return f(*args, **kwargs)
        finally:
            stages[name] = stages.get(name, 0.0) + clock() - t0

    setattr(module, attr, wrapper)
    try:
        yield
    finally:
        setattr(module, attr, f)


def breakdown(market, scenarios: list[Scenario], clock=time.perf_counter) -> dict[str, float]:
    """Seconds per stage of one run, by ``clock`` (``time.thread_time``: main-thread CPU)."""
    stages: dict[str, float] = {}
    gc.collect()
    t0 = clock()
    sset = ScenarioSet(market=market, scenarios=scenarios)
    stages["validation (checks, conflicts, instruments)"] = clock() - t0
    with (
        timed(stages, "inputs not reused from validation", api, "build_instruments", clock),
        timed(stages, "solve (compiled kernel)", api, "solve_batch", clock),
        timed(stages, "bookkeeping (welfare)", api.welfare, "book_measures", clock),
        timed(stages, "result variables", api, "_variables", clock),
        timed(stages, "solution check", api, "check_solution", clock),
        timed(stages, "scenario spec (JSON)", ScenarioSet, "to_json", clock),
        timed(stages, "provenance attributes", api, "provenance_attrs", clock),
        timed(stages, "Dataset", api, "build_dataset", clock),
    ):
        t1 = clock()
        tp.solve(sset)
        total = clock() - t1
    stages["rest of tp.solve"] = total - sum(v for k, v in stages.items() if "validation" not in k)
    return stages


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", type=int, default=None, help="scenarios (default 2000)")
    ap.add_argument("--quick", action="store_true", help="500 scenarios")
    ap.add_argument(
        "--scipy-scenarios", type=int, default=100, help="scenarios of the scipy loop (100)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="timed pipeline runs, best counts")
    ap.add_argument(
        "--cpu-runs", type=int, default=5, help="runs timing each stage's CPU, least counts (5)"
    )
    ap.add_argument("--seed", type=int, default=20240611, help="RNG seed (default 20240611)")
    ap.add_argument(
        "--draws",
        type=int,
        default=100,
        help="also time a Monte Carlo run: --draws-scenarios scenarios x this many draws "
        "(default 100; 0 = skip)",
    )
    ap.add_argument(
        "--draws-scenarios", type=int, default=50, help="scenarios of the Monte Carlo run (50)"
    )
    args = ap.parse_args(argv)
    if args.scenarios is None:
        args.scenarios = 500 if args.quick else 2000
    if min(args.scenarios, args.scipy_scenarios, args.repeat) < 1 or args.cpu_runs < 0:
        ap.error(
            "--scenarios, --scipy-scenarios and --repeat must be positive, --cpu-runs not negative"
        )
    args.scipy_scenarios = min(args.scipy_scenarios, args.scenarios)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    rng = np.random.default_rng(args.seed)
    market = random_market(rng, relative_se=0.2)
    cal = market.calibration
    lists = every_measure_scenarios(rng, market, args.scenarios)
    B = len(lists)
    log.info(
        "market: %d regions; %d scenarios (seed %d), %.1f measures each, every measure type",
        cal.N,
        B,
        args.seed,
        sum(len(ms) for ms in lists) / B,
    )

    # the whole pipeline: warm-up (numba)
    run(market, fresh(lists[: min(B, 64)]))

    # scipy loop on a subset (the same equations, solve only), in chunks, each between two
    # runs of the whole pipeline on every scenario (fresh objects), for the paired ratio
    inst, _ = api.build_instruments(market, cal, lists)
    idx = np.sort(rng.choice(B, size=args.scipy_scenarios, replace=False))
    sp = scipy_loop(
        cal, inst, idx, between=lambda: min(run(market, fresh(lists))[0] for _ in range(3)) / B
    )
    per_scipy = sp.seconds / len(idx)
    log.info("scipy root loop (hybr): %d scenarios in %.3f s", len(idx), sp.seconds)

    # the whole pipeline: the best of --repeat on fresh objects
    best, ds = np.inf, None
    for _ in range(args.repeat):
        scenarios = fresh(lists)
        seconds, ds = run(market, scenarios)
        best = min(best, seconds)
    assert ds is not None
    converged = int(ds.converged.values[1:].sum())
    per_pipe = best / B

    stages = breakdown(market, fresh(lists))
    cpu: dict[str, float] = {}
    for _ in range(args.cpu_runs):
        for name, secs in breakdown(market, fresh(lists), time.thread_time).items():
            cpu[name] = min(cpu.get(name, np.inf), secs)
    log.info("-" * 86)
    log.info(
        "%-46s %10s %12s %14s", "stage (one more run)", "total [s]", "per scen. [us]", "CPU [us]"
    )
    log.info("-" * 86)
    for name, secs in stages.items():
        log.info(
            "%-46s %10.4f %12.1f %14.1f",
            name,
            secs,
            secs / B * 1e6,
            cpu.get(name, np.nan) / B * 1e6,
        )
    log.info("-" * 86)
    log.info("(CPU: main-thread CPU time per scenario, the least of %d runs)", args.cpu_runs)
    log.info(
        "whole pipeline (best of %d): %.4f s for %d scenarios, %.1f us per scenario, %d converged",
        args.repeat,
        best,
        B,
        per_pipe * 1e6,
        converged,
    )
    log.info("scipy root loop: %.1f us per scenario (solve only)", per_scipy * 1e6)
    if args.draws:
        S = min(args.draws_scenarios, B)
        run(market, fresh(lists[:S]), draws=2)  # warm-up
        seconds, dsd = run(market, fresh(lists[:S]), draws=args.draws)
        rows = (S + 1) * (args.draws + 1)
        solved = int(dsd.draw_converged.values.sum())
        log.info(
            "Monte Carlo run: %d scenarios (and the baseline) x %d draws = %d equilibria in "
            "%.3f s (validation, inputs once, warm-started draws, Dataset): %.1f us per "
            "equilibrium, %.0f per second, %.1fx the scipy loop per equilibrium; %d solved",
            S,
            args.draws + 1,
            rows,
            seconds,
            seconds / rows * 1e6,
            solved / seconds,
            per_scipy / (seconds / rows),
            solved,
        )
    log.info("(shared 2-core machine: load now %.2f; times vary between runs)", _load())
    speedup = log_paired(log, sp, per_scipy / per_pipe, "whole pipeline runs")
    print(f"speedup_vs_scipy_root_loop={speedup:.1f} scenarios_per_second={converged / best:.0f}")


def _load() -> float:
    try:
        with open("/proc/loadavg") as fh:
            return float(fh.read().split()[0])
    except OSError:
        return float("nan")


if __name__ == "__main__":
    main()
