"""Benchmark: the shipped rare-earth magnet chain, compiled kernel vs numpy reference vs a
``scipy.optimize.root`` loop.

What is measured
----------------
The shipped chain ``ree_magnets`` (NdPr oxide → NdPr metal → sintered NdFeB magnets, with
Dy/Tb oxide as a second input: 4 stages × 10 regions, one stacked market of 40 nodes linked by
input coefficients, docs/chains.md) and its shipped scenario set ``scenarios/ree_magnets.toml``
(the baseline and every scenario: oxide and oxide + magnet floors, magnet tariffs, Chinese
licensing, a price-gap subsidy for member magnet makers). The instruments are built per stage
and stacked exactly as :func:`tradepolicy.solve` does (not timed); the rows are the set's
scenarios repeated ``--copies`` times.

* **kernel** – :func:`tradepolicy.solver.newton.solve_batch` with the compiled kernel (its
  chain block), best of ``--repeat`` after a warm-up;
* **numpy** – the same call on the numpy reference path;
* **scipy loop** – ``scipy.optimize.root(..., method="hybr")`` one scenario at a time on the
  same equations and analytic Jacobian, from the same start, on ``--scipy-scenarios`` rows.

Also reported: whether the kernel and the reference agree (iterations, largest gap of the
unknowns), one-scenario latency and the whole ``tp.solve`` of the set with 100 draws (every
stage's elasticities and every link's coefficient drawn: coefficients per row).

The last line is printed exactly as::

    speedup_vs_scipy_root_loop=<x> equilibria_per_second=<y>

Usage::

    python benchmarks/bench_chain.py            # 100 copies of the set, scipy on 200 rows
    python benchmarks/bench_chain.py --quick    # 30 copies, scipy on 50 rows; under a minute
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np
from scipy_comparison import (
    SCIPY_XTOL,
    TOL,
    compare,
    engine_report,
    finish,
    first_call,
    log_scipy,
    log_table,
    time_batched,
)

import tradepolicy as tp
from tradepolicy.api import _stage_lists, build_instruments
from tradepolicy.chain import stack_instruments

log = logging.getLogger("bench_chain")

CHAIN_SET = "ree_magnets"


def make_batch(copies: int):
    """The shipped chain's calibration and its scenario set's stacked instruments, the set
    (baseline first) repeated ``copies`` times."""
    sset = tp.load_scenarios(CHAIN_SET)
    chain = sset.market
    lists = [[], *(list(s.measures) for s in sset.scenarios)]
    parts = [
        build_instruments(m, m.calibration, _stage_lists(chain, m, lists))[0] for m in chain.stages
    ]
    inst, _ = stack_instruments(parts, chain.positions, chain.n)
    inst = inst.take(np.tile(np.arange(inst.B), copies))
    return sset, chain, chain.calibration, inst


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=None, help="copies of the set (default 100)")
    ap.add_argument("--scipy-scenarios", type=int, default=None, help="rows the scipy loop solves")
    ap.add_argument("--quick", action="store_true", help="fewer rows (under a minute)")
    ap.add_argument("--repeat", type=int, default=3, help="timed solves, best counts")
    ap.add_argument("--seed", type=int, default=20240611, help="RNG seed (scipy subset, draws)")
    args = ap.parse_args(argv)
    args.copies = args.copies or (30 if args.quick else 100)
    args.scipy_scenarios = args.scipy_scenarios or (50 if args.quick else 200)
    if min(args.copies, args.scipy_scenarios, args.repeat) < 1:
        ap.error("--copies, --scipy-scenarios and --repeat must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    rng = np.random.default_rng(args.seed)
    sset, chain, cal, inst = make_batch(args.copies)
    log.info(
        "chain %s: %d stages × %d regions = %d nodes, %d input coefficients; %d scenarios "
        "(baseline + %d) × %d copies = %d rows, up to %d complementarity pairs%s",
        chain.id,
        len(chain.stages),
        chain.n,
        cal.N,
        int(np.count_nonzero(cal.C)),
        len(sset.scenarios) + 1,
        len(sset.scenarios),
        args.copies,
        inst.B,
        inst.K,
        " [quick]" if args.quick else "",
    )
    t_first = first_call(cal, inst)
    res, t_batch = time_batched(cal, inst, args.repeat)
    c = compare(
        rng, cal, inst, res, t_batch, args.repeat, min(args.scipy_scenarios, inst.B), SCIPY_XTOL
    )
    log_table(log, c)
    log.info(
        "kernel: tol %.0e, Newton iterations mean %.2f / max %d, scipy fallbacks %d",
        TOL,
        float(np.mean(res.iterations)),
        int(np.max(res.iterations)),
        sum(m != "newton" for m in res.method),
    )
    log_scipy(log, c)
    engine_report(log, cal, inst, res, t_batch, args.repeat, t_first, latency_rows=50)
    tp.solve(sset, draws=2, seed=args.seed)  # warm-up of the whole pipeline, draws included
    t0 = time.perf_counter()
    ds = tp.solve(sset, draws=100, seed=args.seed)
    t_draws = time.perf_counter() - t0
    rows = int(ds.sizes["draw"]) * int(ds.sizes["scenario"])
    log.info(
        "whole tp.solve of the set with 100 draws (coefficients and elasticities per row): "
        "%.2f s, %d rows, %.0f rows/s, %d of them converged",
        t_draws,
        rows,
        rows / t_draws,
        int(ds.draw_converged.sum()),
    )
    finish(log, c)


if __name__ == "__main__":
    main()
