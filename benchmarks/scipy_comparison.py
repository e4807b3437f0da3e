"""What both solver benchmarks share: timing the batched solver, the per-scenario
``scipy.optimize.root`` loop on the same equations, the check of its solutions and the
comparison table and final line."""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from tradepolicy.model.instruments import Instruments
from tradepolicy.model.levels import Calibration, evaluate, initial_guess
from tradepolicy.solver.newton import SolveResult, solve_batch

TOL = 1e-11  # batched convergence: max |F| <= TOL
SCIPY_XTOL = 1e-10  # MINPACK xtol (on the step): enough for max |F| <= TOL on tariffs
CHECK_RESIDUAL = 1e-10  # a scipy solution must have max |F| <= this ...
CHECK_PRICE_RTOL = 1e-8  # ... and match the batched prices to this relative tolerance


def time_batched(
    cal: Calibration,
    inst: Instruments,
    repeat: int,
    warmup: int | None = None,
    engine: str = "compiled",
) -> tuple[SolveResult, float]:
    """Warm up (on the first ``warmup`` scenarios; default all), then the best of ``repeat``
    wall-clock times of ``solve_batch`` on all of them (``engine``: the compiled kernel, the
    default, or the numpy reference path)."""
    warm = inst if warmup is None else inst.take(np.arange(min(inst.B, warmup)))
    solve_batch(cal, warm, tol=TOL, engine=engine)
    best, res = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = solve_batch(cal, inst, tol=TOL, engine=engine)
        best = min(best, time.perf_counter() - t0)
    return res, best


def first_call(cal: Calibration, inst: Instruments) -> float:
    """Seconds of the first compiled solve in this process (loading, or on a fresh
    environment compiling, the numba kernel), on one scenario."""
    t0 = time.perf_counter()
    solve_batch(cal, inst.take(np.array([0])), tol=TOL)
    return time.perf_counter() - t0


def engine_report(
    log: logging.Logger,
    cal: Calibration,
    inst: Instruments,
    res: SolveResult,
    t_batch: float,
    repeat: int,
    t_first: float,
    latency_rows: int = 200,
) -> None:
    """What else the issue asks of the engine, measured in this run: the compiled kernel
    against the numpy reference on the same batch (same iterations, the largest price gap),
    one-scenario latency (``solve_batch`` on one scenario, as a dashboard update needs),
    Newton iterations and the process's peak memory."""
    ref, t_ref = time_batched(cal, inst, repeat, warmup=256, engine="numpy")
    same_it = float(np.mean(ref.iterations == res.iterations))
    both = ref.converged & res.converged
    gap = float(np.max(np.abs(ref.u[both] - res.u[both]), initial=0.0))
    log.info(
        "kernel vs numpy reference (best of %d): %.4f s vs %.4f s, %.1fx; same iterations "
        "on %.1f%% of scenarios, max |u gap| %.1e",
        repeat,
        t_batch,
        t_ref,
        t_ref / t_batch,
        100 * same_it,
        gap,
    )
    rows = np.linspace(0, inst.B - 1, min(latency_rows, inst.B)).astype(int)
    ones = [inst.take(np.array([b])) for b in rows]
    solve_batch(cal, ones[0], tol=TOL)
    lat = []
    for one in ones:
        t0 = time.perf_counter()
        solve_batch(cal, one, tol=TOL)
        lat.append(time.perf_counter() - t0)
    log.info(
        "one-scenario latency (solve_batch on 1 scenario, %d scenarios): median %.3f ms, "
        "p95 %.3f ms, max %.3f ms",
        len(lat),
        1e3 * float(np.median(lat)),
        1e3 * float(np.percentile(lat, 95)),
        1e3 * float(np.max(lat)),
    )
    log.info(
        "Newton iterations mean %.2f / max %d; first compiled call (numba cache load or "
        "compile) %.2f s; peak memory (max RSS of this process) %.0f MB",
        float(np.mean(res.iterations)),
        int(np.max(res.iterations)),
        t_first,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


@dataclass
class ScipyRun:
    u: np.ndarray  # (S, N+K) solutions
    seconds: float  # wall-clock time of the loop
    nfev: np.ndarray  # (S,) residual evaluations per scenario
    njev: np.ndarray  # (S,) Jacobian evaluations per scenario
    chunks: list[float] = field(default_factory=list)  # seconds of each chunk of the loop
    sizes: list[int] = field(default_factory=list)  # scenarios of each chunk
    between: list[float] = field(default_factory=list)  # the other side's seconds per unit,
    # timed before the first chunk and after each one


def paired(sp: ScipyRun) -> tuple[float, np.ndarray]:
    """The scipy loop per scenario over the other side per unit, each chunk of the loop
    against the other side timed just before and just after it.

    The machine's speed drifts (by up to 2x within a minute on a shared 2-core machine), so a
    loop timed once and a batch timed minutes apart compare two machines. Here chunk ``k``
    (``n_k`` scenarios, ``s_k`` seconds) is set against ``b_k``, the mean of the other side's
    time per unit (each the best of a few runs) right before and right after it::

        ratio = sum_k s_k / sum_k n_k * b_k

    Returns that ratio and each chunk's own ratio ``(s_k / n_k) / b_k`` (their spread shows
    how much the machine and the chunks' scenarios varied).
    """
    if not sp.between or len(sp.between) != len(sp.chunks) + 1:
        raise ValueError("the scipy loop was not run in chunks with the other side between")
    b = 0.5 * (np.asarray(sp.between[:-1]) + np.asarray(sp.between[1:]))
    n = np.asarray(sp.sizes, dtype=float)
    s = np.asarray(sp.chunks)
    return float(s.sum() / (n * b).sum()), s / n / b


def scipy_loop(
    cal: Calibration,
    inst: Instruments,
    idx: np.ndarray,
    xtol: float = SCIPY_XTOL,
    between: Callable[[], float] | None = None,
    chunks: int = 5,
) -> ScipyRun:
    """Solve scenarios ``idx`` one at a time with ``scipy.optimize.root`` (``hybr``), each
    from the batched solver's starting point.

    With ``between`` (a function timing the other side, best of a few runs, in seconds per
    unit), the loop runs in ``chunks`` parts and ``between`` is called before the first and
    after each one, for :func:`paired`.
    """
    singles = [inst.take(np.array([b])) for b in idx]  # sliced before the clock starts
    starts = [initial_guess(cal, one)[0] for one in singles]
    out = np.empty((len(idx), starts[0].size))
    nfev = np.zeros(len(idx), dtype=int)
    njev = np.zeros(len(idx), dtype=int)

    def solve_one(one: Instruments, x0: np.ndarray) -> optimize.OptimizeResult:
        def fun(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            st = evaluate(cal, one, u[None], jacobian=True)
            return st.F[0], st.J[0]

        return optimize.root(fun, x0, jac=True, method="hybr", tol=xtol)

    parts = np.array_split(np.arange(len(idx)), 1 if between is None else max(1, chunks))
    run = ScipyRun(out, 0.0, nfev, njev)
    with np.errstate(over="ignore", invalid="ignore"):  # as in the solver
        solve_one(singles[0], starts[0])  # warm-up
        if between is not None:
            run.between.append(between())
        for part in parts:
            t0 = time.perf_counter()
            for i in part:
                sol = solve_one(singles[i], starts[i])
                out[i], nfev[i], njev[i] = sol.x, sol.nfev, sol.njev
            run.chunks.append(time.perf_counter() - t0)
            run.sizes.append(len(part))
            if between is not None:
                run.between.append(between())
    run.seconds = float(sum(run.chunks))
    return run


def batched_timer(cal: Calibration, inst: Instruments, repeat: int = 3) -> Callable[[], float]:
    """The best of ``repeat`` timed ``solve_batch`` calls on every scenario: seconds per
    scenario."""

    def best() -> float:
        return best_of(lambda: solve_batch(cal, inst, tol=TOL), repeat) / inst.B

    return best


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The least wall-clock seconds of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def check_scipy(
    cal: Calibration, inst: Instruments, idx: np.ndarray, u: np.ndarray, res: SolveResult
) -> tuple[np.ndarray, np.ndarray]:
    """Residuals ``max|F|`` of the scipy solutions and their relative price gaps to batched."""
    with np.errstate(over="ignore", invalid="ignore"):
        st = evaluate(cal, inst.take(idx), u, jacobian=False)
    resid = np.max(np.abs(st.F), axis=1)
    rel = np.max(np.abs(st.p / res.state.p[idx] - 1.0), axis=1)
    return np.where(np.isfinite(resid), resid, np.inf), np.where(np.isfinite(rel), rel, np.inf)


@dataclass
class Comparison:
    """The batched solve against the scipy loop on the subset ``idx``."""

    res: SolveResult
    t_batch: float
    repeat: int
    idx: np.ndarray
    xtol: float
    sp: ScipyRun
    resid: np.ndarray  # max |F| of each scipy solution
    rel: np.ndarray  # relative price gap to the batched solution

    @property
    def ok(self) -> np.ndarray:
        return (self.resid <= CHECK_RESIDUAL) & (self.rel <= CHECK_PRICE_RTOL)

    @property
    def per_batch(self) -> float:
        return self.t_batch / self.res.converged.size

    @property
    def per_scipy(self) -> float:
        return self.sp.seconds / len(self.idx)


def compare(
    rng: np.random.Generator,
    cal: Calibration,
    inst: Instruments,
    res: SolveResult,
    t_batch: float,
    repeat: int,
    scipy_scenarios: int,
    xtol: float,
) -> Comparison:
    """Run the scipy loop on a seeded random subset, in chunks with a batched solve of every
    scenario timed before and after each (:func:`paired`), and check it against ``res``."""
    B = inst.B
    if scipy_scenarios == B:
        idx = np.arange(B)
    else:
        idx = np.sort(rng.choice(B, size=scipy_scenarios, replace=False))
    sp = scipy_loop(cal, inst, idx, xtol, between=batched_timer(cal, inst))
    resid, rel = check_scipy(cal, inst, idx, sp.u, res)
    return Comparison(res, t_batch, repeat, idx, xtol, sp, resid, rel)


def log_table(log: logging.Logger, c: Comparison) -> None:
    """The side-by-side timing table."""
    rule = "-" * 86
    head = "%-22s %10s %11s %15s %10s %12s"
    row = "%-22s %10d %11.4f %15.1f %10d %12.2e"
    log.info(rule)
    log.info(head, "solver", "scenarios", "total [s]", "per scen. [us]", "converged", "max|F|")
    log.info(rule)
    log.info(
        row,
        f"batched (best of {c.repeat})",
        c.res.converged.size,
        c.t_batch,
        c.per_batch * 1e6,
        int(c.res.converged.sum()),
        float(np.max(c.res.max_residual)),
    )
    log.info(
        row,
        "scipy root loop (hybr)",
        len(c.idx),
        c.sp.seconds,
        c.per_scipy * 1e6,
        int(c.ok.sum()),
        float(np.max(c.resid)),
    )
    log.info(rule)


def log_scipy(log: logging.Logger, c: Comparison) -> None:
    """What the scipy loop needed and how its solutions check against the batched ones."""
    log.info(
        "scipy: xtol %.0e, %.1f residual and %.2f Jacobian evaluations per scenario, "
        "%d of %d reach max|F| <= %.0e",
        c.xtol,
        float(c.sp.nfev.mean()),
        float(c.sp.njev.mean()),
        int((c.resid <= TOL).sum()),
        len(c.idx),
        TOL,
    )
    log.info(
        "scipy check: %d of %d fail (need max|F| <= %.0e and prices within %.0e relative "
        "of batched); worst price gap %.2e",
        int((~c.ok).sum()),
        len(c.idx),
        CHECK_RESIDUAL,
        CHECK_PRICE_RTOL,
        float(np.max(c.rel)),
    )


def finish(log: logging.Logger, c: Comparison) -> None:
    """The per-scenario times and the final line, exactly
    ``speedup_vs_scipy_root_loop=<x> equilibria_per_second=<y>``: the speedup paired chunk
    by chunk (:func:`paired`), the throughput of the best batched solve."""
    log.info("per scenario: batched %.1f us vs scipy %.1f us", c.per_batch * 1e6, c.per_scipy * 1e6)
    speedup = log_paired(log, c.sp, c.per_scipy / c.per_batch)
    eq_per_s = int(c.res.converged.sum()) / c.t_batch
    print(f"speedup_vs_scipy_root_loop={speedup:.1f} equilibria_per_second={eq_per_s:.0f}")


def log_paired(
    log: logging.Logger, sp: ScipyRun, unpaired: float, other: str = "batched solves"
) -> float:
    """Log the paired ratio, each chunk's and the unpaired one (best run against the whole
    loop; ``other`` names what was timed between the chunks); returns the paired ratio."""
    speedup, ratios = paired(sp)
    log.info(
        "speedup paired chunk by chunk (%d chunks of the scipy loop, each against the %s "
        "(best of 3) timed just before and after it): %.1fx (chunks %s); unpaired (best run "
        "against the whole loop): %.1fx",
        len(ratios),
        other,
        speedup,
        ", ".join(f"{r:.0f}" for r in ratios),
        unpaired,
    )
    return speedup
