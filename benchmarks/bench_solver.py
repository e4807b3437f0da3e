"""Benchmark: the batched equilibrium solver against a per-scenario ``scipy.optimize.root`` loop.

What is measured
----------------
A deterministic synthetic 12-region market (seeded NumPy RNG: a dense-ish positive flow matrix
with a large diagonal, base prices, supply 0.3–2 / demand 0.2–1.5 / substitution 1.5–8
elasticities and some base tariffs) is hit with thousands of random tariff scenarios: each
scenario puts 0–50 % tariffs on a random subset (5–50 %) of the exporter × importer pairs and
keeps the base tariff elsewhere; the diagonal is always 0. Both contenders solve the *same*
equations (:func:`tradepolicy.model.levels.evaluate`) with the *same* analytic Jacobian from the
*same* starting point (base prices), in the same process run:

* **batched** – :func:`tradepolicy.solver.newton.solve_batch` on all ``--scenarios`` at once
  (``tol=1e-11`` on ``max|F|``), called exactly as a user would. Warmed up once, then timed
  ``--repeat`` times with :func:`time.perf_counter`; the best run counts.
* **scipy loop** – for each of ``--scipy-scenarios`` scenarios (all of them by default, a
  subset with ``--quick``) ``scipy.optimize.root(fun, x0, jac=True, method="hybr")``, where
  ``fun(u)`` evaluates the single-scenario model (``inst.take([b])``) and returns
  ``(F[0], J[0])``. MINPACK stops on the step size, not on ``max|F|``; its ``xtol``
  (``--scipy-xtol``) defaults to ``1e-10``, which brings every scenario here to
  ``max|F| <= 1e-11`` (how many do is reported) at no more evaluations than ``1e-9``; scipy's
  default ``1.5e-8`` leaves ~8 % of them above it, while ``1e-13`` (the solver's own scipy
  fallback) costs about 1.6x as much time. The single-scenario instruments are
  sliced *before* the clock starts and the loop is warmed up on one scenario, so only solver
  work is timed (this favours scipy). Every scipy solution is checked: ``max|F| <= 1e-10`` and
  producer prices equal to the batched ones to 1e-8 relative.

Both are compared per scenario::

    speedup               = (scipy loop time / its scenarios) / (batched time / its scenarios)
    equilibria_per_second = converged batched scenarios / batched time

Results are logged (``logging`` at INFO, to stdout); the last line is printed exactly as::

    speedup_vs_scipy_root_loop=<x> equilibria_per_second=<y>

Usage::

    python benchmarks/bench_solver.py            # 5,000 scenarios, scipy on all of them
    python benchmarks/bench_solver.py --quick    # scipy on 200 of them; a few seconds
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from tradepolicy.model.instruments import InstrumentBuilder, Instruments
from tradepolicy.model.levels import Calibration, evaluate, initial_guess
from tradepolicy.solver.newton import SolveResult, solve_batch

log = logging.getLogger("bench_solver")

N_REGIONS = 12
TOL = 1e-11  # batched convergence: max |F| <= TOL
SCIPY_XTOL = 1e-10  # MINPACK xtol (on the step): enough for max |F| <= TOL here
CHECK_RESIDUAL = 1e-10  # a scipy solution must have max |F| <= this ...
CHECK_PRICE_RTOL = 1e-8  # ... and match the batched prices to this relative tolerance
QUICK_SCIPY_SCENARIOS = 200


def make_calibration(rng: np.random.Generator, n: int = N_REGIONS) -> Calibration:
    """A synthetic n-region market: mostly dense positive flows with a dominant diagonal."""
    regions = tuple(f"R{i:02d}" for i in range(n))
    off = rng.uniform(0.5, 6.0, (n, n)) * (rng.random((n, n)) < 0.8)  # ~80 % of pairs trade
    X0 = off + np.diag(rng.uniform(30.0, 120.0, n))  # home sales dominate
    t0 = np.where(rng.random((n, n)) < 0.25, rng.uniform(0.0, 0.15, (n, n)), 0.0)
    np.fill_diagonal(t0, 0.0)
    return Calibration(
        regions=regions,
        p0=rng.uniform(0.5, 2.0, n),
        X0=X0,
        t0=t0,
        x0=np.zeros((n, n)),
        eps=rng.uniform(0.3, 2.0, n),
        eta=rng.uniform(0.2, 1.5, n),
        sigma=rng.uniform(1.5, 8.0, n),
    )


def make_scenarios(rng: np.random.Generator, cal: Calibration, n_scen: int) -> Instruments:
    """Tariff scenarios: 0–50 % on a random 5–50 % of the pairs, base tariff elsewhere."""
    n = cal.N
    builder = InstrumentBuilder(n_scen, cal.t0, cal.x0)
    density = rng.uniform(0.05, 0.5, (n_scen, 1, 1))
    hit = rng.random((n_scen, n, n)) < density
    hit[:, np.arange(n), np.arange(n)] = False
    builder.tariff[hit] = rng.uniform(0.0, 0.5, int(hit.sum()))
    return builder.build()


def time_batched(cal: Calibration, inst: Instruments, repeat: int) -> tuple[SolveResult, float]:
    """Warm up once, then the best of ``repeat`` wall-clock times of ``solve_batch``."""
    res = solve_batch(cal, inst, tol=TOL)  # warm-up
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = solve_batch(cal, inst, tol=TOL)
        best = min(best, time.perf_counter() - t0)
    return res, best


@dataclass
class ScipyRun:
    u: np.ndarray  # (S, N+K) solutions
    seconds: float  # wall-clock time of the loop
    nfev: np.ndarray  # (S,) residual evaluations per scenario
    njev: np.ndarray  # (S,) Jacobian evaluations per scenario


def scipy_loop(
    cal: Calibration, inst: Instruments, idx: np.ndarray, xtol: float = SCIPY_XTOL
) -> ScipyRun:
    """Solve scenarios ``idx`` one at a time with ``scipy.optimize.root`` (``hybr``)."""
    singles = [inst.take(np.array([b])) for b in idx]  # sliced before the clock starts
    x0 = initial_guess(cal, singles[0])[0]
    out = np.empty((len(idx), x0.size))
    nfev = np.zeros(len(idx), dtype=int)
    njev = np.zeros(len(idx), dtype=int)

    def solve_one(one: Instruments) -> optimize.OptimizeResult:
        def fun(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            st = evaluate(cal, one, u[None], jacobian=True)
            return st.F[0], st.J[0]

        return optimize.root(fun, x0, jac=True, method="hybr", tol=xtol)

    with np.errstate(over="ignore", invalid="ignore"):  # as in the solver
        solve_one(singles[0])  # warm-up
        t0 = time.perf_counter()
        for i, one in enumerate(singles):
            sol = solve_one(one)
            out[i], nfev[i], njev[i] = sol.x, sol.nfev, sol.njev
        seconds = time.perf_counter() - t0
    return ScipyRun(out, seconds, nfev, njev)


def check_scipy(
    cal: Calibration, inst: Instruments, idx: np.ndarray, u: np.ndarray, res: SolveResult
) -> tuple[np.ndarray, np.ndarray]:
    """Residuals ``max|F|`` of the scipy solutions and their relative price gaps to batched."""
    with np.errstate(over="ignore", invalid="ignore"):
        st = evaluate(cal, inst.take(idx), u, jacobian=False)
    resid = np.max(np.abs(st.F), axis=1)
    rel = np.max(np.abs(st.p / res.state.p[idx] - 1.0), axis=1)
    return np.where(np.isfinite(resid), resid, np.inf), np.where(np.isfinite(rel), rel, np.inf)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", type=int, default=5000, help="tariff scenarios (default 5000)")
    ap.add_argument(
        "--scipy-scenarios",
        type=int,
        default=None,
        help=f"how many of them the scipy loop solves (default all; {QUICK_SCIPY_SCENARIOS} "
        "with --quick)",
    )
    ap.add_argument(
        "--quick", action="store_true", help="scipy loop on a subset only (well under 60 s)"
    )
    ap.add_argument(
        "--scipy-xtol",
        type=float,
        default=SCIPY_XTOL,
        help=f"MINPACK xtol of the scipy loop (default {SCIPY_XTOL:g})",
    )
    ap.add_argument("--seed", type=int, default=20240611, help="RNG seed (default 20240611)")
    ap.add_argument(
        "--repeat", type=int, default=3, help="timed batched solves, best counts (default 3)"
    )
    args = ap.parse_args(argv)
    if args.scipy_scenarios is None:
        args.scipy_scenarios = QUICK_SCIPY_SCENARIOS if args.quick else args.scenarios
    if min(args.scenarios, args.scipy_scenarios, args.repeat) < 1 or args.scipy_xtol <= 0:
        ap.error("--scenarios, --scipy-scenarios, --scipy-xtol and --repeat must be positive")
    args.scipy_scenarios = min(args.scipy_scenarios, args.scenarios)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    rng = np.random.default_rng(args.seed)
    cal = make_calibration(rng)
    inst = make_scenarios(rng, cal, args.scenarios)
    B = inst.B
    tariffed = (inst.tariff != cal.t0).sum(axis=(1, 2))
    log.info(
        "market: %d regions, %d trading pairs; %d tariff scenarios (seed %d), "
        "%.1f changed tariffs per scenario on average%s",
        cal.N,
        int((cal.X0 > 0).sum()),
        B,
        args.seed,
        float(tariffed.mean()),
        " [quick]" if args.quick else "",
    )

    res, t_batch = time_batched(cal, inst, args.repeat)
    n_conv = int(res.converged.sum())
    n_fallback = sum(m != "newton" for m in res.method)

    if args.scipy_scenarios == B:
        idx = np.arange(B)
    else:
        idx = np.sort(rng.choice(B, size=args.scipy_scenarios, replace=False))
    sp = scipy_loop(cal, inst, idx, args.scipy_xtol)
    resid, rel = check_scipy(cal, inst, idx, sp.u, res)
    ok = (resid <= CHECK_RESIDUAL) & (rel <= CHECK_PRICE_RTOL)
    n_fail = int((~ok).sum())

    per_batch = t_batch / B
    per_scipy = sp.seconds / len(idx)
    speedup = per_scipy / per_batch
    eq_per_s = n_conv / t_batch

    rule = "-" * 86
    head = "%-22s %10s %11s %15s %10s %12s"
    row = "%-22s %10d %11.4f %15.1f %10d %12.2e"
    log.info(rule)
    log.info(head, "solver", "scenarios", "total [s]", "per scen. [us]", "converged", "max|F|")
    log.info(rule)
    log.info(
        row,
        f"batched (best of {args.repeat})",
        B,
        t_batch,
        per_batch * 1e6,
        n_conv,
        float(np.max(res.max_residual)),
    )
    log.info(
        row,
        "scipy root loop (hybr)",
        len(idx),
        sp.seconds,
        per_scipy * 1e6,
        int(ok.sum()),
        float(np.max(resid)),
    )
    log.info(rule)
    log.info(
        "batched: tol %.0e, Newton iterations mean %.2f / max %d, scipy fallbacks %d",
        TOL,
        float(np.mean(res.iterations)),
        int(np.max(res.iterations)),
        n_fallback,
    )
    log.info(
        "scipy: xtol %.0e, %.1f residual and %.2f Jacobian evaluations per scenario, "
        "%d of %d reach max|F| <= %.0e",
        args.scipy_xtol,
        float(sp.nfev.mean()),
        float(sp.njev.mean()),
        int((resid <= TOL).sum()),
        len(idx),
        TOL,
    )
    log.info(
        "scipy check: %d of %d fail (need max|F| <= %.0e and prices within %.0e relative "
        "of batched); worst price gap %.2e",
        n_fail,
        len(idx),
        CHECK_RESIDUAL,
        CHECK_PRICE_RTOL,
        float(np.max(rel)),
    )
    log.info("per scenario: batched %.1f us vs scipy %.1f us", per_batch * 1e6, per_scipy * 1e6)
    print(f"speedup_vs_scipy_root_loop={speedup:.1f} equilibria_per_second={eq_per_s:.0f}")


if __name__ == "__main__":
    main()
