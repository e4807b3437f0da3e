"""Benchmark: the batched solver with every measure active, against a ``scipy.optimize.root`` loop.

What is measured
----------------
A deterministic synthetic 12-region market (seeded NumPy RNG, the same recipe as
``bench_solver.py``: a dense-ish positive flow matrix with a large diagonal, base prices 0.5–2,
supply 0.3–2 / demand 0.2–1.5 elasticities, some base tariffs) is built as a real
:class:`tradepolicy.Market` from a market dict. Substitution elasticities are 1.5–8 except two
importers: ``R10`` is Cobb-Douglas (σ = 1) and ``R11`` has σ = 0.8, where every variety is
essential (so no ban ever targets them).

Each of ``--scenarios`` scenarios is a list of real measure objects, turned into instruments by
:func:`tradepolicy.api.build_instruments` exactly as :func:`tradepolicy.solve` does. **Every
scenario uses every measure type**, with random parameters drawn so that both binding and slack
regimes occur:

* ``tariff`` (1–3 of them, 0–50 %), ``export_tax`` (0–30 % to 1–4 destinations),
  ``supply_shock`` (1–2 regions, 0–50 %) and ``demand_shift`` (1–2 regions, −20 to +30 %);
* ``price_floor``: a club of 2–4 importers exempting its members (and sometimes others) at
  0.8–1.4 times the mean base landed price of the covered pairs; a levy cap on 40 %, the
  exporters collecting the margin (an undertaking) on 30 % of the scenarios;
* ``price_gap_subsidy``: one-sided, two-sided or collar, strike 0.8–1.3 times the producers'
  mean base price, a covered volume (0.3–1.3 times base output) on 40 % of them;
* ``import_quota`` and ``tariff_rate_quota`` (in 0–10 %, out 5–60 % above it) at 0.6–1.3 times
  the covered base imports, ``export_quota`` at 0.5–1.3 times the covered base exports, plus on
  30 % of the scenarios an export ban (``export_quota`` with quantity 0) on 1–3 destinations
  whose substitution elasticity is above 1;
* ``offtake`` (stockpiled or resold, 5–30 % of the sellers' output), ``stockpile_release`` and
  ``stockpile_purchase`` (2–25 % of a region's base use);
* ``diversification_cap`` (basis consumption or imports, every foreign origin or 2–5 of them,
  a max share 0.6–1.3 times the largest covered base share).

Every measure passes its ``check`` against the market. Building the instruments is timed
separately (it is Python work per scenario) and is *not* part of the solve time.

Both contenders solve the *same* equations (:func:`tradepolicy.model.levels.evaluate`, the
scenario's complementarity pairs padded to the batch's largest count) with the *same* analytic
Jacobian from the *same* starting point (base prices, every λ at its lower bound); the batched
solver writes the pairs as natural residuals in its first pass, whose zeros are the
Fischer–Burmeister function's (``docs/engine.md``, "The Newton method"):

* **batched** – :func:`tradepolicy.solver.newton.solve_batch` on all scenarios at once
  (``tol=1e-11``), called exactly as a user would (its scipy fallback enabled). Warmed up on
  256 scenarios, then timed ``--repeat`` times with :func:`time.perf_counter`; the best run
  counts. When some scenarios need the fallback or fail, the scenarios Newton solves on its own
  are timed again without them, to show what the others cost.
* **scipy loop** – for ``--scipy-scenarios`` of them (a seeded random subset),
  ``scipy.optimize.root(fun, x0, jac=True, method="hybr", tol=--scipy-xtol)`` with ``fun(u)``
  evaluating the single-scenario model (``inst.take([b])``) and returning ``(F[0], J[0])``.
  Scenarios are sliced before the clock starts and the loop is warmed up on one scenario (this
  favours scipy). Every scipy solution is checked: ``max|F| <= 1e-10`` and producer prices
  within 1e-8 relative of the batched ones.

Both are compared per scenario as in ``bench_solver.py``: the speedup paired chunk by chunk of
the scipy loop (each against the best of 3 batched solves timed just before and after it),
``equilibria_per_second`` from the best batched solve.

Also reported: Newton iterations, scipy fallbacks, every failure with its ``solver_message``,
and the regime mix at the solution: complementarity pairs at their lower bound (slack),
interior (binding) or at their upper bound (a TRQ over quota) by measure; floor pairs without a
levy, levied to the floor or at the levy cap; supported producers receiving a top-up, in the
dead band or paying back, and where output sits against a covered volume. Scenarios that need
the fallback or fail are explained (``--show`` of them in detail): Newton is rerun on each
alone, and the point where it stalls is reported with its largest residual, any producer at a
claw-back supply switch, the Jacobian's condition and a finite-difference check of the
analytic Jacobian there.

Results are logged (``logging`` at INFO, to stdout); the last line is printed exactly as::

    speedup_vs_scipy_root_loop=<x> equilibria_per_second=<y>

Usage::

    python benchmarks/bench_measures.py            # 5,000 scenarios, best of 3, scipy on 300
    python benchmarks/bench_measures.py --quick    # one timed solve, scipy on 100; under 60 s
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter

import numpy as np
from scipy_comparison import (
    CHECK_RESIDUAL,
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

from tradepolicy.api import build_instruments
from tradepolicy.market import Market
from tradepolicy.measures import (
    Measure,
    measure_types,
)
from tradepolicy.model.instruments import Instruments
from tradepolicy.model.levels import Calibration, State, evaluate
from tradepolicy.solver.newton import SolveResult, solve_batch
from tradepolicy.testing import EVERY_TYPE, every_measure_scenarios, random_market

log = logging.getLogger("bench_measures")

N_REGIONS = 12
SCIPY_SCENARIOS = 300
QUICK_SCIPY_SCENARIOS = 100
WARMUP = 256  # scenarios solved once before timing
BOUND_TOL = 1e-8  # a (scaled) complementarity variable this close to a bound is at it


def make_market(rng: np.random.Generator, n: int = N_REGIONS) -> Market:
    """The synthetic market (:func:`tradepolicy.testing.random_market`)."""
    return random_market(rng, n)


def make_scenarios(
    rng: np.random.Generator, market: Market, n_scen: int
) -> tuple[list[list[Measure]], Instruments, float]:
    """Draw the scenarios, check every measure, build the instruments (timed)."""
    measure_lists = every_measure_scenarios(rng, market, n_scen)
    t0 = time.perf_counter()
    inst, _ = build_instruments(market, market.calibration, measure_lists)
    return measure_lists, inst, time.perf_counter() - t0


# -- solving -------------------------------------------------------------------------------
# -- regimes -------------------------------------------------------------------------------
def pair_kind(label: str) -> str:
    """The measure behind a complementarity pair, from its label ("" = padding)."""
    if not label:
        return ""
    if label.startswith("diversification"):
        return "diversification_cap"
    return {
        "import quota rent": "import_quota",
        "TRQ rent": "tariff_rate_quota",
        "export licence rent": "export_quota",
    }.get(label, label)


def pair_regimes(cal: Calibration, inst: Instruments, res: SolveResult) -> np.ndarray:
    """(B, K) regime codes: -1 padding, 0 at the lower bound, 1 interior, 2 at the upper bound."""
    lt = res.u[:, cal.N :]
    at_lo = lt - inst.lam_lo <= BOUND_TOL * np.maximum(1.0, np.abs(inst.lam_lo))
    with np.errstate(invalid="ignore"):
        at_hi = np.isfinite(inst.lam_hi) & (
            inst.lam_hi - lt <= BOUND_TOL * np.maximum(1.0, np.abs(inst.lam_hi))
        )
    code = np.where(at_lo, 0, np.where(at_hi, 2, 1))
    pad = np.array([[not lab for lab in row] for row in inst.pair_labels], dtype=bool)
    return np.where(pad, -1, code)


def regime_report(cal: Calibration, inst: Instruments, res: SolveResult, ok: np.ndarray) -> None:
    """Log the regime mix at the solution of the converged scenarios ``ok``."""
    K = inst.K
    codes = pair_regimes(cal, inst, res)[ok]
    kinds = np.array([[pair_kind(lab) for lab in row] for row in inst.pair_labels], dtype=object)
    kinds = kinds[ok] if K else kinds.reshape(inst.B, 0)[ok]
    # degenerate pairs: at a bound with a (near) zero slack
    g = res.state.g[ok]
    degenerate = (codes != 1) & (codes >= 0) & (np.abs(g) <= BOUND_TOL)
    log.info(
        "complementarity pairs per scenario: %.1f on average, %d at most (padded to K = %d)",
        float((codes >= 0).sum(axis=1).mean()),
        int((codes >= 0).sum(axis=1).max(initial=0)),
        K,
    )
    head = "%-22s %8s %12s %12s %12s %11s"
    row = "%-22s %8d %11.1f%% %11.1f%% %11.1f%% %11d"
    log.info(
        head, "pair (measure)", "pairs", "lower bound", "interior", "upper bound", "degenerate"
    )
    for kind in ("import_quota", "tariff_rate_quota", "export_quota", "diversification_cap"):
        sel = kinds == kind
        c = codes[sel]
        if not c.size:
            continue
        log.info(
            row,
            kind,
            c.size,
            100 * np.mean(c == 0),
            100 * np.mean(c == 1),
            100 * np.mean(c == 2),
            int(degenerate[sel].sum()),
        )
    log.info(
        "  (lower bound = slack quota/cap, interior = binding, upper bound = TRQ over quota "
        "paying the out-of-quota rate)"
    )

    st = res.state
    cov = (inst.floor[ok] > 0) & inst.available[ok] & (cal.X0 > 0)
    levy = st.levy[ok][cov]
    cap = inst.levy_cap[ok][cov]
    at_cap = np.isfinite(cap) & (levy >= cap * (1 - 1e-12))
    levied = (levy > 0) & ~at_cap
    log.info(
        "price floor: %d covered pairs: %.1f%% no levy (landed above the floor), %.1f%% "
        "levied to the floor, %.1f%% levy at its cap; %.1f%% of scenarios collect by exporters",
        levy.size,
        100 * np.mean(levy <= 0),
        100 * np.mean(levied),
        100 * np.mean(at_cap),
        100 * np.mean(inst.levy_to_exporter[ok].any(axis=(1, 2))),
    )

    sup = (inst.support_strike[ok] > 0) & cal.producer
    f = st.support[ok][sup]
    V = inst.support_volume[ok][sup]
    S = st.S[ok][sup]
    log.info(
        "price-gap subsidy: %d supported producers: %.1f%% paid a top-up (p < strike), "
        "%.1f%% in the dead band, %.1f%% paying back (two-sided or collar above the threshold)",
        f.size,
        100 * np.mean(f > 0),
        100 * np.mean(f == 0),
        100 * np.mean(f < 0),
    )
    for name, sel in (("top-up", f > 0), ("payback", f < 0)):
        sel = sel & np.isfinite(V)
        at = np.abs(S[sel] - V[sel]) <= 1e-9 * V[sel]
        log.info(
            "  covered volume with a %s, %d producers: %.1f%% inframarginal (S > V), "
            "%.1f%% at S = V, %.1f%% all output covered (S < V)",
            name,
            int(sel.sum()),
            100 * np.mean((S[sel] > V[sel]) & ~at),
            100 * np.mean(at),
            100 * np.mean((S[sel] < V[sel]) & ~at),
        )
    bans = (~inst.available[ok] & (cal.X0 > 0)).sum(axis=(1, 2))
    log.info(
        "bans: %.1f%% of scenarios remove 1–3 varieties; offtakes stockpiled in %.1f%%",
        100 * np.mean(bans > 0),
        100 * np.mean(inst.variety_purchase[ok].sum(axis=1) > 0),
    )


# -- diagnostics of scenarios that needed the fallback or failed ----------------------------
def _unknown_name(cal: Calibration, one: Instruments, j: int) -> str:
    return f"z {cal.regions[j]}" if j < cal.N else f"λ {one.pair_labels[0][j - cal.N]}"


def _residual_name(cal: Calibration, one: Instruments, i: int) -> str:
    return f"clearing {cal.regions[i]}" if i < cal.N else f"pair {one.pair_labels[0][i - cal.N]}"


def jacobian_check(cal: Calibration, one: Instruments, u: np.ndarray) -> str:
    """The analytic Jacobian of one scenario at ``u`` (1, n) against central differences.

    Entries where forward and backward differences disagree (a kink nearby) are skipped.
    """
    h = 1e-7
    with np.errstate(all="ignore"):
        J = evaluate(cal, one, u, jacobian=True).J[0]
        F0 = evaluate(cal, one, u, jacobian=False).F[0]
        worst, at, fd = 0.0, (0, 0), 0.0
        for j in range(u.shape[1]):
            up, um = u.copy(), u.copy()
            up[0, j] += h
            um[0, j] -= h
            Fp = evaluate(cal, one, up, jacobian=False).F[0]
            Fm = evaluate(cal, one, um, jacobian=False).F[0]
            fwd, bwd, cen = (Fp - F0) / h, (F0 - Fm) / h, (Fp - Fm) / (2 * h)
            smooth = np.abs(fwd - bwd) <= 1e-4 * (1.0 + np.abs(cen))
            err = np.where(smooth, np.abs(J[:, j] - cen) / (1.0 + np.abs(cen)), 0.0)
            i = int(np.argmax(err))
            if err[i] > worst:
                worst, at, fd = float(err[i]), (i, j), float(cen[i])
    if worst <= 1e-4:
        return f"analytic Jacobian matches finite differences (worst relative gap {worst:.1e})"
    i, j = at
    return (
        f"ANALYTIC JACOBIAN DISAGREES with finite differences: "
        f"d({_residual_name(cal, one, i)})/d({_unknown_name(cal, one, j)}) = {J[i, j]:.4g} "
        f"analytic vs {fd:.4g}"
    )


def claw_back_switch(cal: Calibration, one: Instruments, st: State) -> list[str]:
    """Producers of one scenario at a claw-back supply switch at state ``st``.

    A producer paying back ``f < 0`` on a covered volume V chooses its best output within V
    (at p + f) or beyond V (at p, repaying f·V), whichever is more profitable; where the two
    are (about: within 5 %) equally profitable, its supply jumps.
    """
    eps = np.broadcast_to(cal.eps, (1, cal.N))[0]
    p, f, V = st.p[0], st.support[0], one.support_volume[0]
    cap = cal.S0 * one.supply_mult[0]
    with np.errstate(all="ignore"):
        Sa, Sb = cap * (p / cal.p0) ** eps, cap * ((p + f) / cal.p0) ** eps
        within = (p + f) * Sb / (1 + eps)
        beyond = p * Sa / (1 + eps) + f * V
        near = (f < 0) & np.isfinite(V) & (Sb <= V) & (Sa > V) & cal.producer
        near &= np.abs(beyond - within) <= 0.05 * np.abs(within)
    return [
        f"{cal.regions[o]} pays back {-f[o]:.4g} per unit on a covered volume {V[o]:.5g} and is "
        f"at its supply switch: output {Sb[o]:.5g} within V (profit {within[o]:.5g}) or "
        f"{Sa[o]:.5g} beyond V (profit {beyond[o]:.5g}); model output {st.S[0, o]:.5g}, "
        f"clearing residual {st.F[0, o]:.3g}"
        for o in np.flatnonzero(near)
    ]


def explain_problems(
    cal: Calibration,
    inst: Instruments,
    res: SolveResult,
    measure_lists: list[list[Measure]],
    problems: np.ndarray,
    show: int,
) -> None:
    """Log why scenarios ``problems`` needed the fallback or failed.

    Newton is rerun on them alone (no fallback); where it stalls, the largest residual, any
    claw-back supply switch, cond(J) and (for the first ``show``) a finite-difference check of
    the Jacobian, the complementarity pairs and the measures are reported.
    """
    sub = inst.take(problems)
    solver_log = logging.getLogger("tradepolicy.solver.newton")
    level = solver_log.level
    solver_log.setLevel(logging.ERROR)  # its "did not converge" warnings are expected here
    try:
        alone = solve_batch(cal, sub, tol=TOL, fallback=False)
    finally:
        solver_log.setLevel(level)
    codes = pair_regimes(cal, sub, alone)
    names = {0: "lower", 1: "interior", 2: "upper"}
    n_switch = 0
    for i, b in enumerate(problems):
        one = sub.take(np.array([i]))
        u = alone.u[[i]]
        with np.errstate(all="ignore"):
            st = evaluate(cal, one, u, jacobian=True)
        F = np.nan_to_num(st.F[0], nan=np.inf)
        worst = int(np.argmax(np.abs(F)))
        switch = claw_back_switch(cal, one, st)
        n_switch += bool(switch)
        log.info(
            "scenario %d (%s, max|F| %.3g): Newton alone stops after %d iterations at max|F| "
            "%.3g, largest residual %.3g on %s%s",
            b,
            res.method[b] if res.converged[b] else "FAILED",
            res.max_residual[b],
            alone.iterations[i],
            alone.max_residual[i],
            F[worst],
            _residual_name(cal, one, worst),
            "".join(f"; {text}" for text in switch),
        )
        if i >= show:
            continue
        pairs = [
            f"{lab} λ={lam:.4g} g={g:.2g} ({names[c]})"
            for lab, lam, g, c in zip(one.pair_labels[0], st.lam[0], st.g[0], codes[i], strict=True)
            if lab
        ]
        log.info("  there: cond(J) %.3g; %s", np.linalg.cond(st.J[0]), jacobian_check(cal, one, u))
        log.info("  pairs: %s", "; ".join(pairs))
        for m in measure_lists[b]:
            log.info("  measure: %s", m.model_dump(exclude_none=True))
    log.info(
        "%d of these %d scenarios stall with a producer at a claw-back supply switch (a "
        "two-sided contract or a collar paying back on a covered volume): output jumps there, "
        "so the market may have no clearing price",
        n_switch,
        problems.size,
    )


# -- main ----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", type=int, default=5000, help="scenarios (default 5000)")
    ap.add_argument(
        "--scipy-scenarios",
        type=int,
        default=None,
        help=f"how many of them the scipy loop solves (default {SCIPY_SCENARIOS}; "
        f"{QUICK_SCIPY_SCENARIOS} with --quick)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"scipy loop on {QUICK_SCIPY_SCENARIOS} scenarios, one timed solve (well under 60 s)",
    )
    ap.add_argument(
        "--scipy-xtol",
        type=float,
        default=SCIPY_XTOL,
        help=f"MINPACK xtol of the scipy loop (default {SCIPY_XTOL:g})",
    )
    ap.add_argument("--seed", type=int, default=20240611, help="RNG seed (default 20240611)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed batched solves, best counts (default 3; 1 with --quick)",
    )
    ap.add_argument(
        "--show",
        type=int,
        default=3,
        help="scenarios needing the fallback or failing to explain in detail (default 3)",
    )
    args = ap.parse_args(argv)
    if args.scipy_scenarios is None:
        args.scipy_scenarios = QUICK_SCIPY_SCENARIOS if args.quick else SCIPY_SCENARIOS
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if min(args.scenarios, args.scipy_scenarios, args.repeat) < 1 or args.scipy_xtol <= 0:
        ap.error("--scenarios, --scipy-scenarios, --scipy-xtol and --repeat must be positive")
    args.scipy_scenarios = min(args.scipy_scenarios, args.scenarios)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    rng = np.random.default_rng(args.seed)
    market = make_market(rng)
    cal = market.calibration
    measure_lists, inst, t_build = make_scenarios(rng, market, args.scenarios)
    B = inst.B
    counts = Counter(m.type for ms in measure_lists for m in ms)
    log.info(
        "market: %d regions, %d trading pairs; %d scenarios (seed %d), %.1f measures each: "
        "every scenario has %s%s",
        cal.N,
        int((cal.X0 > 0).sum()),
        B,
        args.seed,
        sum(counts.values()) / B,
        ", ".join(EVERY_TYPE),
        " [quick]" if args.quick else "",
    )
    unused = sorted(set(measure_types()) - set(counts))
    if unused:
        log.info("registered measure types NOT exercised: %s", ", ".join(unused))
    log.info(
        "instruments built in %.2f s (%.0f us per scenario; not part of the solve time); "
        "%d scenarios infeasible by construction",
        t_build,
        t_build / B * 1e6,
        sum(bool(m) for m in inst.infeasible),
    )

    t_first = first_call(cal, inst)
    res, t_batch = time_batched(cal, inst, args.repeat, warmup=WARMUP)
    n_conv = int(res.converged.sum())
    newton_ok = res.converged & np.array([m == "newton" for m in res.method])
    problems = np.flatnonzero(~newton_ok)
    n_fallback = int((res.converged & ~newton_ok).sum())
    if problems.size:  # what the scenarios Newton solves alone cost, for comparison
        _, t_clean = time_batched(
            cal, inst.take(np.flatnonzero(newton_ok)), args.repeat, warmup=WARMUP
        )

    c = compare(rng, cal, inst, res, t_batch, args.repeat, args.scipy_scenarios, args.scipy_xtol)
    idx, resid, rel, ok = c.idx, c.resid, c.rel, c.ok
    log_table(log, c)
    its = np.bincount(res.iterations[newton_ok])
    log.info(
        "batched: tol %.0e, Newton iterations mean %.2f / max %d on the %d scenarios Newton "
        "solves (histogram %s)",
        TOL,
        float(np.mean(res.iterations[newton_ok])),
        int(np.max(res.iterations[newton_ok], initial=0)),
        int(newton_ok.sum()),
        ", ".join(f"{i}: {n}" for i, n in enumerate(its) if n),
    )
    log.info(
        "batched: scipy fallbacks %d (solved), failures %d (of %d scenarios)",
        n_fallback,
        B - n_conv,
        B,
    )
    if problems.size:
        log.info(
            "batched without those %d: %.4f s for %d scenarios = %.0f equilibria per second",
            problems.size,
            t_clean,
            int(newton_ok.sum()),
            newton_ok.sum() / t_clean,
        )
    log_scipy(log, c)
    both = res.converged[idx]
    log.info(
        "scipy check failures: %d where the batched solver failed too, %d where scipy stalls "
        "(max|F| > %.0e) on a scenario the batched solver solved, %d where scipy found another "
        "solution (max|F| ok, prices differ)",
        int((~ok & ~both).sum()),
        int((~ok & both & (resid > CHECK_RESIDUAL)).sum()),
        CHECK_RESIDUAL,
        int((~ok & both & (resid <= CHECK_RESIDUAL)).sum()),
    )
    for i in np.flatnonzero(~ok)[: args.show]:
        log.info(
            "  scipy check failed on scenario %d: max|F| %.3g, price gap %.3g (batched: %s)",
            idx[i],
            resid[i],
            rel[i],
            "converged" if res.converged[idx[i]] else "failed",
        )

    log.info("regime mix at the solution (%d converged scenarios):", n_conv)
    regime_report(cal, inst, res, res.converged)

    for b in np.flatnonzero(~res.converged):
        log.info("FAILED scenario %d: %s", b, res.messages[b])
    if problems.size:
        log.info(
            "why %d scenarios needed the scipy fallback or failed (details for the first %d):",
            problems.size,
            args.show,
        )
        explain_problems(cal, inst, res, measure_lists, problems, args.show)

    engine_report(log, cal, inst, res, t_batch, args.repeat, t_first)
    finish(log, c)


if __name__ == "__main__":
    main()
