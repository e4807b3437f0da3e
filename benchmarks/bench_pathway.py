"""Benchmark: a 12-year pathway on the rare-earth magnet chain, options × Monte Carlo draws.

What is measured
----------------
The shipped pathway set ``scenarios/ree_magnets_2030.toml`` (2024-2035, every stage of
``ree_magnets``) with two more options added in code (a magnet-only price-gap subsidy and
grants + guarantees together), so ``--options`` (default 10, doing nothing included) options
run, each under ``--draws`` Monte Carlo draws plus the central run: every year all options ×
draws are solved as one batch, warm-started from the year before, and the pipeline projects
decide under price risk. Warmed up first (numba compiled), then timed once.

Side by side in the same run, the static engine on the same chain: the options' static
scenario set (the same measures, no years) solved once with the same number of draws; the
ratio compares the pathway's time per year with it (what the year loop adds or saves:
capacity, demand, investment valuation, warm starts, a lean set of result variables).

The last line is printed exactly as::

    pathway_seconds=<t> target_seconds=60 ratio_to_target=<t/60>
    pathway_year_over_static=<(t/years)/static> solves_per_second=<s>

``--live N`` times instead what the dashboard's 2030 tab runs after each change of a measure
(:func:`tradepolicy.dashboard.answer.live_job`: the edited scenario's central pathway with the
set's header, then its options table, warnings and payers), for ``N`` edits of the oxide floor
of the shipped set's first option, each to a value not solved before (no cache hit); it needs
the ``dashboard`` extra. Its last line is::

    live_median_ms=<wall> live_p95_ms=<wall> live_cpu_median_ms=<this thread's CPU> edits=<N>

Usage::

    python benchmarks/bench_pathway.py            # 10 options x 1,000 draws x 12 years
    python benchmarks/bench_pathway.py --quick    # 100 draws
    python benchmarks/bench_pathway.py --live 30  # the dashboard's update, 30 edits
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
import warnings

import numpy as np

import tradepolicy as tp
from tradepolicy.measures import MEASURES
from tradepolicy.pathway.spec import PathwaySet
from tradepolicy.scenario import Scenario, ScenarioSet

log = logging.getLogger("bench_pathway")

MEMBERS_MAGNETS = ["USA", "JPN", "EU", "KOR", "IND"]


def extra_options() -> list[Scenario]:
    """Two more options besides the shipped set's (to reach ten with doing nothing)."""
    sub = MEASURES["price_gap_subsidy"](
        stage="ree_ndfeb_magnet",
        start_year=2026,
        end_year=2035,
        producers=MEMBERS_MAGNETS,
        strike=70650.0,
        kind="one_sided",
    )
    grants = [
        MEASURES["capex_grant"](start_year=2026, share=0.3, payers={r: 1.0}, regions=[r])
        for r in ("USA", "JPN", "EU", "KOR", "AUS", "IND")
    ]
    guarantees = [
        MEASURES["loan_guarantee"](
            start_year=2026, coverage=0.8, fee=0.01, payers={r: 1.0}, regions=[r]
        )
        for r in ("USA", "JPN", "EU", "KOR", "AUS", "IND")
    ]
    return [
        Scenario(name="magnet_price_gap_subsidy", measure=[sub]),
        Scenario(name="grants_and_guarantees", measure=[*grants, *guarantees]),
    ]


def pathway_set(n_options: int) -> PathwaySet:
    shipped = tp.load_scenarios("ree_magnets_2030")
    scenarios = [copy.deepcopy(s) for s in shipped.scenarios] + extra_options()
    scenarios = scenarios[: n_options - 1]  # doing nothing is the baseline
    return PathwaySet(
        market=shipped.data_market,
        scenarios=scenarios,
        years=shipped.years,
        demand_path=shipped.demand_path,
        discount_rate=shipped.discount_rate,
        target=shipped.target,
    )


def static_set(pset: PathwaySet) -> ScenarioSet:
    """The same options without years: measures in force from their start, no project
    measures (the static engine has none)."""
    scenarios = []
    for s in pset.scenarios:
        ms = [
            m.model_copy(update={"start_year": None, "end_year": None})
            for m in s.measures
            if not m.pathway_only
        ]
        # offtakes of several years: keep the last (the static model has one year)
        seen: dict[tuple[str, str | None], object] = {}
        for m in ms:
            seen[(m.type, m.stage)] = m
        scenarios.append(Scenario(name=s.name, measure=list(seen.values())))
    # on the pathway's market (its latent entrants can be named, as in the pathway)
    return ScenarioSet(market=pset.market, scenarios=scenarios, target=pset.target)


def live_edits(n: int) -> None:
    """Time the dashboard's live job on ``n`` edits of the oxide floor (module docstring)."""
    from tradepolicy.dashboard import answer

    pset = tp.load_scenarios("ree_magnets_2030")
    start, stage = answer.policy_start(pset), answer.first_stage(pset)
    first = pset.scenarios[0]

    def edit(i: int) -> Scenario:
        measures = [
            m.model_copy(update={"floor": m.floor + 7.0 * (i + 1)}) if hasattr(m, "floor") else m
            for m in first.measures
        ]
        return Scenario(name="edited", measure=measures)

    log.info("warm-up (compiles the kernels) ...")
    answer.live_job(pset, edit(-1), start, stage)
    wall, cpu = [], []
    for i in range(n):
        t, c = time.perf_counter(), time.thread_time()
        ds, problem, _ = answer.live_job(pset, edit(i), start, stage)
        wall.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
        if ds is None:
            raise SystemExit(f"the edited scenario was not solved: {problem}")
    w, c = np.array(wall) * 1e3, np.array(cpu) * 1e3
    log.info("%d edits of the oxide floor, each solved 2024-2035 with the set's header", n)
    print(
        f"live_median_ms={np.median(w):.1f} live_p95_ms={np.percentile(w, 95):.1f} "
        f"live_cpu_median_ms={np.median(c):.1f} edits={n}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--options", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="100 draws")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--live",
        type=int,
        default=0,
        metavar="N",
        help="time the dashboard's update after a measure change instead, N edits",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("tradepolicy").setLevel(logging.ERROR)
    if args.live:
        live_edits(args.live)
        return
    warnings.simplefilter("ignore", tp.errors.InputWarning)  # advice on the static copy
    draws = 100 if args.quick else args.draws
    pset = pathway_set(args.options)
    sset = static_set(pset)
    years = len(pset.year_list)
    log.info("warm-up (compiles the kernels) ...")
    tp.solve_pathway(pset, draws=2, seed=args.seed)
    tp.solve(sset, draws=2, seed=args.seed)

    t = time.perf_counter()
    ds = tp.solve_pathway(pset, draws=draws, seed=args.seed)
    pathway = time.perf_counter() - t
    t = time.perf_counter()
    tp.solve(sset, draws=draws, seed=args.seed)
    static = time.perf_counter() - t

    n = years * (draws + 1) * (len(pset.scenarios) + 1)
    failed = int((ds["converged"] == 0).sum())
    log.info(
        "%d options x %d draws (+ central) x %d years = %d equilibria in %.1f s (%d not "
        "solved, left out of the probabilities); static engine, same options and draws, "
        "one year: %.1f s",
        len(pset.scenarios) + 1,
        draws,
        years,
        n,
        pathway,
        failed,
        static,
    )
    print(
        f"pathway_seconds={pathway:.1f} target_seconds=60 ratio_to_target={pathway / 60:.2f} "
        f"pathway_year_over_static={pathway / years / static:.2f} "
        f"solves_per_second={n / pathway:.0f}"
    )


if __name__ == "__main__":
    main()
