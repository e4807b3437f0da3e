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
Jacobian from the *same* starting point (base prices, every λ at its lower bound):

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

Both are compared per scenario::

    speedup               = (scipy loop time / its scenarios) / (batched time / its scenarios)
    equilibria_per_second = converged batched scenarios / batched time

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
from typing import Any

import numpy as np
from scipy_comparison import (
    CHECK_RESIDUAL,
    SCIPY_XTOL,
    TOL,
    compare,
    finish,
    log_scipy,
    log_table,
    time_batched,
)

from tradepolicy.api import build_instruments
from tradepolicy.market import Market
from tradepolicy.measures import (
    DemandShift,
    DiversificationCap,
    ExportQuota,
    ExportTax,
    ImportQuota,
    Measure,
    Offtake,
    PriceFloor,
    PriceGapSubsidy,
    StockpilePurchase,
    StockpileRelease,
    SupplyShock,
    Tariff,
    TariffRateQuota,
    measure_types,
)
from tradepolicy.model.instruments import Instruments
from tradepolicy.model.levels import Calibration, State, evaluate
from tradepolicy.solver.newton import SolveResult, solve_batch

log = logging.getLogger("bench_measures")

N_REGIONS = 12
SCIPY_SCENARIOS = 300
QUICK_SCIPY_SCENARIOS = 100
WARMUP = 256  # scenarios solved once before timing
BOUND_TOL = 1e-8  # a (scaled) complementarity variable this close to a bound is at it
#: measure types every scenario uses (all registered in tradepolicy.measures at the time of
#: writing; a type registered later and missing here is reported in the log)
EVERY_TYPE = (
    "tariff",
    "export_tax",
    "supply_shock",
    "demand_shift",
    "price_floor",
    "price_gap_subsidy",
    "import_quota",
    "tariff_rate_quota",
    "export_quota",
    "offtake",
    "stockpile_release",
    "stockpile_purchase",
    "diversification_cap",
)


# -- market --------------------------------------------------------------------------------
def make_market(rng: np.random.Generator, n: int = N_REGIONS) -> Market:
    """A synthetic n-region market (bench_solver's recipe) built through the market schema."""
    regions = [f"R{i:02d}" for i in range(n)]
    off = rng.uniform(0.5, 6.0, (n, n)) * (rng.random((n, n)) < 0.8)  # ~80 % of pairs trade
    X0 = off + np.diag(rng.uniform(30.0, 120.0, n))  # home sales dominate
    t0 = np.where(rng.random((n, n)) < 0.25, rng.uniform(0.0, 0.15, (n, n)), 0.0)
    np.fill_diagonal(t0, 0.0)
    sigma = rng.uniform(1.5, 8.0, n)
    sigma[-2:] = (1.0, 0.8)  # a Cobb-Douglas importer and one where varieties are essential

    def regional(values: np.ndarray) -> dict[str, float]:
        return {r: float(v) for r, v in zip(regions, values, strict=True)}

    def matrix(values: np.ndarray) -> dict[str, dict[str, float]]:
        return {
            e: {i: float(values[a, b]) for b, i in enumerate(regions) if values[a, b] > 0}
            for a, e in enumerate(regions)
            if (values[a] > 0).any()
        }

    return Market.from_dict(
        {
            "id": "bench_measures",
            "commodity": "synthetic good",
            "description": "Synthetic 12-region market for benchmarks/bench_measures.py.",
            "base_year": 2024,
            "regions": regions,
            "base_price": regional(rng.uniform(0.5, 2.0, n)),
            "elasticities": {
                "supply": regional(rng.uniform(0.3, 2.0, n)),
                "demand": regional(rng.uniform(0.2, 1.5, n)),
                "substitution": regional(sigma),
            },
            "base_tariffs": matrix(t0),
            "flows": matrix(X0),
            # abstract regions the shipped regions table does not know
            "region_info": {r: {"name": f"Region {r}"} for r in regions},
        },
        source="bench_measures",
    )


# -- scenarios -----------------------------------------------------------------------------
class ScenarioDrawer:
    """Draws one scenario's measures: every measure type, random parameters."""

    def __init__(self, rng: np.random.Generator, market: Market) -> None:
        self.rng = rng
        self.market = market
        self.cal = market.calibration
        self.regions = list(market.regions)
        self.n = len(self.regions)

    def some(self, k_lo: int, k_hi: int, pool: list[int] | None = None) -> list[int]:
        """k_lo..k_hi distinct region indices from ``pool`` (default all), sorted."""
        pool = list(range(self.n)) if pool is None else pool
        k = min(len(pool), int(self.rng.integers(k_lo, k_hi + 1)))
        return sorted(int(i) for i in self.rng.choice(pool, size=k, replace=False))

    def names(self, idx: list[int]) -> list[str]:
        return [self.regions[i] for i in idx]

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def draw(self) -> list[Measure]:
        rng, cal, n = self.rng, self.cal, self.n
        X0, q0, p0 = cal.X0, cal.q0, cal.p0
        out: list[Measure] = []

        # one tariff per pair (a second one is refused): tariffs on distinct importers, none on
        # the tariff-rate quota's importer
        d_iq, d_trq = self.some(2, 2)
        for d in self.some(1, 3, [i for i in range(n) if i != d_trq]):
            o = self.some(1, 4, [i for i in range(n) if i != d])
            out.append(
                Tariff(importers=[self.regions[d]], exporters=self.names(o), rate=self.u(0, 0.5))
            )
        exporter = self.some(1, 1)[0]
        out.append(
            ExportTax(
                exporter=self.regions[exporter],
                destinations=self.names(self.some(1, 4, [d for d in range(n) if d != exporter])),
                rate=self.u(0.0, 0.3),
            )
        )
        out.append(SupplyShock(region=self.names(self.some(1, 2)), fraction=self.u(0.0, 0.5)))
        out.append(DemandShift(region=self.names(self.some(1, 2)), fraction=self.u(-0.2, 0.3)))

        # price floor: a club of importers exempting its members (and sometimes others)
        club = self.some(2, 4)
        exempt = sorted(set(club) | set(self.some(0, 2)))
        covered = np.zeros((n, n), dtype=bool)
        covered[np.ix_([i for i in range(n) if i not in exempt], club)] = True
        covered &= X0 > 0
        ref = float(q0[covered].mean()) if covered.any() else float(p0.mean())
        floor = self.u(0.8, 1.4) * ref
        out.append(
            PriceFloor(
                importers=self.names(club),
                exempt=self.names(exempt),
                floor=floor,
                levy_cap=self.u(0.05, 0.4) * floor if self.chance(0.4) else None,
                collector="exporters" if self.chance(0.3) else "importer_government",
            )
        )

        # price-gap subsidy
        prod = self.some(1, 3)
        strike = self.u(0.8, 1.3) * float(p0[prod].mean())
        kind = str(rng.choice(["one_sided", "two_sided", "collar"]))
        collar: dict[str, Any] = {}
        if kind == "collar":
            collar = {
                "upside_threshold": strike * self.u(1.0, 1.3),
                "upside_share": self.u(0.2, 1.0),
            }
        volume = None
        if self.chance(0.4):
            volume = {self.regions[o]: self.u(0.3, 1.3) * float(cal.S0[o]) for o in prod}
        out.append(
            PriceGapSubsidy(
                producers=self.names(prod),
                strike=strike,
                kind=kind,
                covered_volume=volume,
                **collar,
            )
        )

        # import quota and tariff-rate quota (different importers, drawn above)
        for d, cls in ((d_iq, ImportQuota), (d_trq, TariffRateQuota)):
            foreign = [i for i in range(n) if i != d and X0[i, d] > 0]
            origins = None if self.chance(0.4) else self.some(2, 6, foreign)
            rows = foreign if origins is None else origins
            base = float(X0[rows, d].sum())
            kw: dict[str, Any] = {
                "importers": [self.regions[d]],
                "exporters": None if origins is None else self.names(origins),
                "quantity": self.u(0.6, 1.3) * base,
                "rent_to": str(rng.choice(["importer_government", "importers", "exporters"])),
            }
            if cls is TariffRateQuota:
                kw["in_rate"] = self.u(0.0, 0.1)
                kw["out_rate"] = kw["in_rate"] + self.u(0.05, 0.6)
            out.append(cls(**kw))

        # export quota, sometimes an export ban by another exporter
        o_q, o_ban = self.some(2, 2)
        buyers = [d for d in range(n) if d != o_q and X0[o_q, d] > 0]
        dest = None if self.chance(0.4) else self.some(2, 6, buyers)
        base = float(X0[o_q, buyers if dest is None else dest].sum())
        out.append(
            ExportQuota(
                exporter=self.regions[o_q],
                destinations=None if dest is None else self.names(dest),
                quantity=self.u(0.5, 1.3) * base,
                rent_to=str(rng.choice(["exporter_government", "exporters", "importers"])),
            )
        )
        banned: list[int] = []  # destinations of the export ban
        if self.chance(0.3):
            sigma = np.broadcast_to(cal.sigma, (n,))
            ok = [d for d in range(n) if d != o_ban and X0[o_ban, d] > 0 and sigma[d] > 1.0]
            if ok:
                banned = self.some(1, 3, ok)
                out.append(
                    ExportQuota(
                        exporter=self.regions[o_ban],
                        destinations=self.names(banned),
                        quantity=0.0,
                    )
                )

        # offtake and stockpiles
        buy = self.some(1, 2)
        shares = rng.dirichlet(np.ones(len(buy)))
        shares[-1] = 1.0 - shares[:-1].sum()
        sellers = self.some(1, 2)
        out.append(
            Offtake(
                buyers={self.regions[b]: float(s) for b, s in zip(buy, shares, strict=True)},
                sellers=self.names(sellers),
                volume=self.u(0.05, 0.3) * float(cal.S0[sellers].sum()),
                price=self.u(0.8, 1.3) * float(p0[sellers].mean()),
                disposition=str(rng.choice(["stockpile", "resell"])),
            )
        )
        r_rel, r_buy = self.some(2, 2)
        out.append(
            StockpileRelease(
                region=self.regions[r_rel], quantity=self.u(0.02, 0.25) * cal.D0[r_rel]
            )
        )
        out.append(
            StockpilePurchase(
                region=self.regions[r_buy], quantity=self.u(0.02, 0.25) * cal.D0[r_buy]
            )
        )

        # diversification cap on one importer
        d = self.some(1, 1)[0]
        basis = str(rng.choice(["consumption", "imports"]))
        inb = X0[:, d] > 0
        if d in banned:
            inb[o_ban] = False
        if basis == "imports":
            inb[d] = False
        foreign = [o for o in range(n) if o != d and inb[o]]
        origins = None if self.chance(0.5) else self.some(2, 5, foreign)
        capped = foreign if origins is None else origins
        share = X0[capped, d] / X0[inb, d].sum()
        max_share = self.u(0.6, 1.3) * float(share.max())
        if basis == "imports" and len(capped) == len(foreign):  # shares must reach 100 %
            max_share = max(max_share, 1.1 / len(capped))
        out.append(
            DiversificationCap(
                importers=[self.regions[d]],
                max_share=min(max_share, 0.95),
                basis=basis,
                exporters=None if origins is None else self.names(origins),
            )
        )
        return out


def make_scenarios(
    rng: np.random.Generator, market: Market, n_scen: int
) -> tuple[list[list[Measure]], Instruments, float]:
    """Draw the scenarios, check every measure, build the instruments (timed)."""
    drawer = ScenarioDrawer(rng, market)
    measure_lists = [drawer.draw() for _ in range(n_scen)]
    for b, ms in enumerate(measure_lists):
        types = {m.type for m in ms}
        missing = set(EVERY_TYPE) - types
        if missing:
            raise RuntimeError(f"scenario {b} lacks {sorted(missing)}")
        for m in ms:
            problems = m.check(market)
            if problems:
                raise RuntimeError(f"scenario {b}: invalid {m.type}: {problems}")
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

    finish(log, c)


if __name__ == "__main__":
    main()
