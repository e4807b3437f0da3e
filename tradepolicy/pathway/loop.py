"""The recursive year loop of a pathway set (docs/pathways.md).

Year by year, from the base year to the last:

1. capacity of every node (stage × region) = base capacity + the projects online that year
   (decided earlier, after their lead time, with ramp-up);
2. supply and market access of a node scale with its normal output (base output plus new
   capacity at the stage's base utilisation);
3. final demand grows along the demand path;
4. all scenarios × draws of the year are solved as one batch, warm-started from the year
   before, and booked against the no-policy pathway of the same draw in the same year;
5. the projects not yet decided are valued under price risk at the year's prices with the
   policies in force (:mod:`tradepolicy.pathway.investment`); a share of them (expected
   mode) or a yes/no draw (draws mode) goes ahead.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradepolicy.api import _run_chain, _stage_lists, build_instruments
from tradepolicy.measures.base import WELFARE_ENTRIES, Measure
from tradepolicy.model.levels import Calibration
from tradepolicy.pathway import capacity as cap
from tradepolicy.pathway.spec import PathwaySet, demand_index
from tradepolicy.scenario import is_chain
from tradepolicy.solver.newton import DEFAULT_TOL, Homotopy, map_unknowns, take_calibration

log = logging.getLogger(__name__)

#: rows solved together (whole draws): bounds the memory of each batch
CHUNK_ROWS = 2048
#: the per-stage result variables the loop keeps each year (see :func:`run_years`)
YEAR_VARIABLES = (
    "producer_price",
    "consumer_price",
    "production",
    "consumption",
    "input_cost",
    "bloc_dependency",
    "bloc_top_supplier",
    "bloc_output",
    *WELFARE_ENTRIES,
    "welfare_change",
    "trade_flow",
)


class _Stages:
    """A single market seen as a one-stage chain (what the chain bookkeeping reads)."""

    kind = "chain"

    def __init__(self, market: Any) -> None:
        self.market = market
        self.stages = (market,)
        self.regions = tuple(market.regions)
        self.n = len(self.regions)
        self.positions = (np.arange(self.n),)
        self.id = market.id

    def stage(self, sid: str | None) -> Any:
        return self.market


@dataclass
class Years:
    """What the loop produced (arrays; :func:`tradepolicy.pathway.results.build` labels
    them). Rows are draw-major: row = draw × scenarios + scenario."""

    years: np.ndarray
    names: list[str]
    draws: int
    stages: list[Any]
    regions: tuple[str, ...]
    positions: tuple[np.ndarray, ...]
    per_year: list[list[dict[str, np.ndarray]]] = field(default_factory=list)  # [year][stage]
    capacity: list[np.ndarray] = field(default_factory=list)  # [year] (B, NS)
    investment: list[np.ndarray] = field(default_factory=list)  # [year] (B, NS) decided t/yr
    capex: list[np.ndarray] = field(default_factory=list)  # [year] (B, NS) capex decided
    capital_charge: list[np.ndarray] = field(default_factory=list)  # [year] (B, NS)
    policy: list[dict[str, np.ndarray]] = field(default_factory=list)  # [year] (B, N) flows
    probability: list[np.ndarray] = field(default_factory=list)  # [year] (B, J)
    decided: np.ndarray | None = None  # (B, J, Y) decided mass by year
    pipeline: cap.Pipeline | None = None
    converged: list[np.ndarray] = field(default_factory=list)  # [year] (B,)
    messages: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0
    seed: int | None = None
    # risk (docs/risk.md): events, disruption loss and stockpiles
    risk_names: list[str] = field(default_factory=list)
    event_active: np.ndarray | None = None  # (D, Y, R) bool
    severity: np.ndarray | None = None  # (D, R)
    loss: np.ndarray | None = None  # (D, S, N, Y) surplus lost in event years
    stock_level: list[np.ndarray] = field(default_factory=list)  # [year] (B, N) end of year
    stock_spending: list[np.ndarray] = field(default_factory=list)  # [year] (B, N) net, > 0 cost
    stock_terminal: np.ndarray | None = None  # (B, N) book value of the stock left, to payers
    # (D,) every row of the draw (all options, event and no-event counterfactual rows)
    # solved in every year: the draws the risk statistics use
    draw_solved: np.ndarray | None = None


@dataclass(frozen=True)
class _SetArrays:
    """What the year loop reads of a set's market, years and demand path only (the same for
    every option and draw; read-only arrays, shared by the runs of the set)."""

    pipe: cap.Pipeline
    K0: np.ndarray  # (NS,) base-year capacity
    known: np.ndarray  # (NS,) the node's stage has capacity data
    u_new: np.ndarray  # (NS,) share of new capacity running at base prices
    exo: np.ndarray  # (Y, NS) capacity index of the regions without projects
    stage_idx: np.ndarray  # (J,) stage of each project
    valued: np.ndarray  # (J,) the project has a capital and a unit cost
    leader: np.ndarray  # (J,) the project whose decision a co-product follows (-1 none)
    demand: np.ndarray  # (Y, NS) final demand relative to the base year


def _set_arrays(pset: PathwaySet) -> _SetArrays:
    """:class:`_SetArrays` of ``pset``, cached on its market as its files give it (held),
    its years and its demand path: the market the loop solves, with its latent entrants
    (``pset.market``), is derived from that market alone, so every option solved with a set's
    header (the dashboard's edited scenario) reads them once."""
    return _set_arrays_of(cap.Same(pset.data_market), tuple(pset.years), pset.demand_path)


@functools.lru_cache(maxsize=16)
def _set_arrays_of(data: cap.Same, years: tuple[int, ...], path: str | None) -> _SetArrays:
    """:func:`_set_arrays` of the market ``data.obj`` (as its files give it)."""
    market = cap.shared_pathway_market(data.obj)  # what PathwaySet.market is
    chain = _stages_of(market)
    stages = list(chain.stages)
    n = chain.n
    year_list = np.arange(years[0], years[1] + 1)
    S0 = market.calibration.S0
    pipe = cap.read_pipeline(stages, chain.regions)
    K0, known = cap.existing_capacity(stages, chain.regions, S0)
    demand = np.ones((len(year_list), n * len(stages)))
    for s, m in enumerate(stages):
        demand[:, s * n + chain.positions[s]] = demand_index(m, path, year_list)[:, None]
    ids = [m.id for m in stages]
    out = _SetArrays(
        pipe=pipe,
        K0=K0,
        known=known,
        u_new=cap.stage_utilisation(S0, K0, n, len(stages)),
        exo=cap.projected_index(stages, chain.regions, year_list, pipe, S0),
        stage_idx=np.array([ids.index(st) for st in pipe.stage], dtype=int),
        valued=np.isfinite(pipe.capex) & (pipe.capex > 0) & np.isfinite(pipe.unit_cost),
        leader=cap.co_product_leaders(pipe),
        demand=demand,
    )
    for a in (*(getattr(out, f.name) for f in dataclasses.fields(out)), *vars(pipe).values()):
        if isinstance(a, np.ndarray):
            a.flags.writeable = False
    return out


def _active(pset: PathwaySet, year: int) -> list[list[Measure]]:
    """The measures of the baseline and of each scenario in force in ``year``."""
    return [[]] + [[m for m in s.measures if m.in_force(int(year))] for s in pset.scenarios]


def _stages_of(market: Any) -> Any:
    return market if is_chain(market) else _Stages(market)


def run_years(
    pset: PathwaySet,
    *,
    draws: int = 0,
    seed: int | None = None,
    tol: float = DEFAULT_TOL,
) -> Years:
    """Run the pathway's years (see the module docstring); ``draws`` Monte Carlo draws of
    the parameters (elasticities, chain coefficients, project ranges; in ``draws`` mode
    also the investment decisions) besides draw 0, the central run."""
    from tradepolicy.api import _draw_seed
    from tradepolicy.pathway import decisions as inv

    t_start = time.perf_counter()
    chain = _stages_of(pset.market)
    stages = list(chain.stages)
    n, NS = chain.n, chain.n * len(stages)
    names = ["baseline", *pset.names]
    S = len(names)
    D = draws + 1
    B = D * S
    years = pset.year_list
    Y = len(years)
    cal0 = pset.market.calibration  # latent entrants included (PathwaySet.market)
    fixed = _set_arrays(pset)
    pipe, K0, known, u_new, exo = fixed.pipe, fixed.K0, fixed.known, fixed.u_new, fixed.exo
    S0 = cal0.S0

    # parameters of each row: draw 0 central, draws 1.. drawn
    seed = _draw_seed(seed) if draws else seed
    rng = np.random.default_rng(seed)
    cal = _row_calibration(pset.market, chain, cal0, draws, rng, S)
    proj = {
        k: np.broadcast_to(getattr(pipe, k), (D, pipe.J)).copy()
        for k in ("capacity", "lead_time", "capex", "unit_cost")
    }
    if draws and pipe.J:
        drawn = pipe.draws(draws, rng)
        for k in proj:
            proj[k][1:] = drawn[k]
    rows_of = lambda a: np.repeat(a, S, axis=0)  # noqa: E731 (D, ...) -> (B, ...)
    pcap, plead, pcapex, pcost = (
        rows_of(proj[k]) for k in ("capacity", "lead_time", "capex", "unit_cost")
    )
    # the parameters fitted to IEA's base case (tradepolicy calibrate), then the set's own
    overrides: dict[str, Any] = dict(pset.investment)
    finance = dataclasses.replace(inv.calibrated_finance(pset.market.id), **overrides)
    processes = [inv.stage_price_process(m) for m in stages]
    r = pset.discount_rate
    life = finance.life
    annuity = r / (1.0 - (1.0 + r) ** -life) if r > 0 else 1.0 / life
    stage_idx = fixed.stage_idx
    bern = rng.random((B, pipe.J, Y)) if (pset.mode == "draws" and draws) else None
    draw_mode = np.zeros(B, dtype=bool)
    if bern is not None:
        draw_mode[S:] = True  # draw 0 stays the expected (central) run

    # a project without a capital cost or unit cost (nor a range) cannot be valued: it is
    # never decided (committed projects need no valuation)
    valued = fixed.valued
    leader = fixed.leader  # a co-product follows its plant's decision
    lacking = [str(pipe.name[j]) for j in np.flatnonzero(~valued & ~pipe.committed & (leader < 0))]
    if lacking:
        log.warning(
            "%d pipeline project(s) give no capital or unit cost and are never decided: %s",
            len(lacking),
            "; ".join(lacking),
        )
    follows = np.flatnonzero(leader >= 0)
    # decided[b, j, y]: share (expected) or 0/1 (draws) of project j decided in year y
    decided = np.zeros((B, pipe.J, Y))
    undecided = np.ones((B, pipe.J))
    base_year = int(years[0])
    committed_start = np.maximum(pipe.earliest_start, base_year + 1)
    decided[:, pipe.committed, 0] = 1.0
    undecided[:, pipe.committed] = 0.0

    out = Years(
        years, names, draws, stages, chain.regions, chain.positions, pipeline=pipe, seed=seed
    )
    # last year's solution of every row, in that year's normal layout (its pair offsets)
    u_prev: np.ndarray | None = None
    off_prev: np.ndarray | None = None
    inputs_key: tuple | None = None
    stage_inputs: list = []
    tile = np.tile(np.arange(S), D)
    c0 = cal0.c0 if cal0.C is not None else np.zeros(NS)
    # the first operating year of each project if decided in each year (B, J, Y), and final
    # demand relative to the base year along the path (Y, NS)
    start = _start_years(B, pipe, plead, committed_start, years)
    dem_path = fixed.demand
    # risk (docs/risk.md): events drawn on their own stream, stockpiles' state
    from tradepolicy.pathway import risk as rk

    events = list(pset.risk)
    R = len(events)
    if events and draws:
        assert seed is not None
        active, severity = rk.draw_events(events, years, draws, seed)
    else:
        active, severity = np.zeros((D, Y, R), dtype=bool), np.zeros((D, R))
    ids = [m.id for m in stages]
    ev_stage = [ids.index(ev.measure.stage) if ev.measure.stage in ids else 0 for ev in events]
    ev_hit = [rk.hit_regions(ev.measure, chain.regions) for ev in events]
    short = _short_run_factors(pset, NS) if active.any() else None
    stocks = rk.Stocks.of(pset, chain, draws)
    out.risk_names = [ev.name for ev in events]
    out.event_active, out.severity = active, severity
    if events:
        out.loss = np.zeros((D, S, n, Y))
    out.draw_solved = np.ones(D, dtype=bool)
    last_price: np.ndarray | None = None
    # every option's measures (the baseline none) and the terms found of them (the run's)
    option_measures: list[list[Measure]] = [[]] + [list(s.measures) for s in pset.scenarios]
    terms_memo: dict[Any, Any] = {}
    for y, year in enumerate(years):
        # 1-2. capacity online this year and the normal output it gives
        online = np.where(year >= start, finance.ramp(np.maximum(year - start, 0).astype(int)), 0.0)
        new_cap = np.zeros((B, NS))
        charge = np.zeros((B, NS))
        if pipe.J:
            cap_on = (decided * online).sum(axis=2) * pcap  # (B, J)
            np.add.at(new_cap.T, pipe.node, cap_on.T)
            # the capital cost of the plants running, spread over their life (an annuity at
            # the public rate), so plants decided late are not charged for output after the
            # last year
            running = (decided * (year >= start)).sum(axis=2) * np.nan_to_num(pcapex)
            np.add.at(charge.T, pipe.node, (running * annuity).T)
        out.capital_charge.append(charge)
        grow = exo[y]  # regions without projects: IEA's base-case projection
        capacity = K0 * grow + new_cap
        mult = (S0 * grow + u_new * new_cap) / np.where(S0 > 0, S0, 1.0)
        mult = np.where(S0 > 0, mult, 1.0)
        # supply bounded by capacity: logistic in log price through normal output at base
        # prices with the market's supply elasticity there (docs/model.md)
        u_cap = cap.utilisation(S0 * mult, capacity, known)
        cal_y = cal.with_utilisation(u_cap if u_cap.any() else None)
        dem = dem_path[y]  # 3. demand along the path
        # 4. solve the year (instruments rebuilt only when the measures in force change)
        lists = _active(pset, year)
        key = tuple(tuple(id(m) for m in ms) for ms in lists)
        if key != inputs_key:
            stage_inputs = [
                build_instruments(m, m.calibration, _stage_lists(chain, m, lists)) for m in stages
            ]
            inputs_key = key
        # the normal layout of the year's unknowns: prices, then each stage's pairs (an event
        # chunk's measures add pairs; next year starts from this layout)
        off_norm = np.cumsum([0] + [inst.K for inst, _ in stage_inputs]).astype(int)
        # the stockpiles' purchases and releases this year (composite purchases by node),
        # and what they would be without the year's events
        ev_on = active[:, y, :]  # (D, R)
        ev_draw: np.ndarray = np.asarray(ev_on.any(axis=1))
        acts: list[tuple] = []
        cp = cp_cf = None
        if stocks is not None:
            cp, cp_cf = np.zeros((B, NS)), np.zeros((B, NS))
            for kp in range(len(stocks.policies)):
                sk, h = stocks.stage[kp], stocks.holders[kp]
                on = [(ev_on[:, r], ev_hit[r]) for r in range(R) if ev_stage[r] == sk]
                prev = None if last_price is None else last_price[stocks.rows(kp)][:, sk * n + h]
                act = stocks.actions(kp, int(year), dem[sk * n + h], on, prev, chain.regions)
                # without the year's events: the same purchases, no release an event set off
                no = np.zeros_like(act[0])
                event_rule = stocks.policies[kp][1].release == "event"
                act_cf = (act[0], no, no) if event_rule else act
                rows_k = stocks.rows(kp)
                cp[rows_k[:, None], sk * n + h[None, :]] += act[0] - act[2]
                cp_cf[rows_k[:, None], sk * n + h[None, :]] += act_cf[0] - act_cf[2]
                acts.append((act, act_cf))
        # in chunks of whole draws: each chunk's arrays are small enough for the allocator
        # to reuse their memory (one batch of every row would fault in gigabytes of fresh
        # dense cell arrays each year on a chain)
        step = max(1, CHUNK_ROWS // S) * S
        chunks = []
        cf_chunks = []
        for a in range(0, B, step):
            idx = np.arange(a, min(a + step, B))
            hit = ev_draw[idx // S]
            if hit.any():
                # event rows: the draw's events join every option; each is also solved without
                # them (the counterfactual rows, appended), both with short-run elasticities
                cf = idx[hit]
                row_lists = [
                    lists[tile[b]]
                    + [
                        rk.scaled(events[r], float(severity[b // S, r]))
                        for r in np.flatnonzero(ev_on[b // S])
                    ]
                    for b in idx.tolist()
                ]
                ext = np.concatenate([idx, cf])
                ext_lists = row_lists + [lists[tile[b]] for b in cf.tolist()]
                base = np.concatenate([(idx - a) // S * S, (cf - a) // S * S])
                built = [
                    build_instruments(m, m.calibration, _stage_lists(chain, m, ext_lists))
                    for m in stages
                ]
                shorts = np.concatenate([hit, np.ones(cf.size, dtype=bool)])
            else:
                cf = idx[:0]
                ext, ext_lists, base, built, shorts = idx, lists * (idx.size // S), None, None, None
            inputs = []
            for s, (inst, pairs) in enumerate(stage_inputs):
                at = s * n + chain.positions[s]
                if built is None:
                    part = inst.take(tile[idx])
                    pairs = pairs * (idx.size // S)
                else:
                    part, pairs = built[s]
                part.supply_mult = part.supply_mult * mult[ext][:, at]
                part.demand_mult = part.demand_mult * dem[at][None, :]
                part.variety_weight = part.variety_weight * mult[ext][:, at]
                if cp is not None and cp_cf is not None:
                    extra = np.concatenate([cp[idx], cp_cf[cf]])[:, at]
                    part.composite_purchase = part.composite_purchase + extra
                inputs.append((part, pairs))
            cal_c = take_calibration(cal_y, ext)
            homotopy = None
            if shorts is not None and short is not None:
                # rows at short-run elasticities that do not solve from last year's solution
                # are followed from their medium-run ones (the same equations at the end)
                homotopy = _short_run_path(cal_c, short, shorts)
                cal_c = _at_short_run(cal_c, short, shorts)
            keep: dict[str, Any] = {}
            res_c = _run_chain(
                chain,
                cal_c,
                ext_lists,
                tol,
                pset,
                names,
                frozenset(YEAR_VARIABLES),
                inputs=inputs,
                u0=None if u_prev is None else u_prev[ext],
                u0_offsets=off_prev,
                keep=keep,
                warm=True,
                # the central run's rows; draws that fail are left out
                fallback_rows=np.arange(S) if a == 0 else np.arange(0),
                report=False,
                base=base,
                homotopy=homotopy,
            )
            m_ = idx.size
            carried = _carry(keep["u"], keep["offsets"], res_c[0]["converged"], m_, cf - a)
            u_next = _carry_over(carried, off_norm, u_prev, off_prev, idx, NS)
            if not cf.size:  # (no counterfactual rows appended: the chunk's results)
                chunks.append((res_c, u_next))
            else:
                chunks.append(([{k: v[:m_] for k, v in r.items()} for r in res_c], u_next))
                cf_chunks.append((cf, [{k: v[m_:] for k, v in r.items()} for r in res_c]))
        res = _stack_chunks([c[0] for c in chunks])
        cf_rows = np.concatenate([c[0] for c in cf_chunks]) if cf_chunks else np.zeros(0, int)
        cf_res = _stack_chunks([c[1] for c in cf_chunks]) if cf_chunks else None
        if stocks is not None:
            # the holders' composite prices: the year's stock trades, next year's price rule
            last_price = _node_values(res, "consumer_price", chain, NS)
            _book_stocks(
                out, stocks, acts, res, last_price, cf_res, cf_rows, chain, n, NS, y == Y - 1
            )
        conv = res[0]["converged"].astype(bool)
        out.draw_solved &= conv.reshape(D, S).all(axis=1)
        if out.loss is not None and cf_res is not None:
            w_ev = _regional_sum(res, "welfare_change", chain, n)[cf_rows]
            w_cf = _regional_sum(cf_res, "welfare_change", chain, n)
            # a loss only where both solves converged: a failed one books none (NaN), and
            # its draw is left out of the statistics (draw_solved)
            both = conv[cf_rows] & cf_res[0]["converged"].astype(bool)
            out.draw_solved[np.unique(cf_rows[~both] // S)] = False
            lost = np.where(both[:, None], w_cf - w_ev, np.nan)
            out.loss[cf_rows // S, cf_rows % S, :, y] = lost
        _against_baseline(res, S)
        for b in np.flatnonzero(~conv[:S]):
            log.warning("%d: option %r not solved: %s", year, names[b], res[0]["solver_message"][b])
        if draws and not conv[S:].all():
            log.info(
                "%d: %d of %d draw solves did not converge", year, int((~conv[S:]).sum()), B - S
            )
        # next year's start: this year's solution (moving it on by the last year's change
        # took more Newton iterations, not fewer: capacity arrives in steps), in the year's
        # normal layout; an event row's is its no-event counterfactual's (_carry)
        u_prev = np.concatenate([c[1] for c in chunks])
        off_prev = off_norm
        out.per_year.append(res)
        out.converged.append(conv)
        out.messages.append(list(res[0]["solver_message"]))
        out.capacity.append(capacity)
        # 5. investment decisions at this year's prices
        inv_cap = np.zeros((B, NS))
        inv_capex = np.zeros((B, NS))
        flows = {k: np.zeros((B, n)) for k in inv.POLICY_FLOWS}
        prob = np.zeros((B, pipe.J))
        if pipe.J and y < Y - 1:
            price = _node_values(res, "producer_price", chain, NS)
            c_in = _node_values(res, "input_cost", chain, NS)
            p_j = price[:, pipe.node]
            cost_j = pcost + np.nan_to_num(c_in[:, pipe.node] - c0[pipe.node])
            lead_j = np.maximum(plead, np.maximum(pipe.earliest_start - year, 0))
            first_op = np.broadcast_to(year + lead_j[:S], (S, pipe.J))
            terms, payers = inv.project_terms_batch(option_measures, pipe, first_op, D, terms_memo)
            ok = conv[:, None] & np.isfinite(p_j) & (p_j > 0) & (undecided > 1e-9) & valued
            val = inv.value_open(
                ok,
                price=p_j,
                processes=processes,
                stage_of=stage_idx,
                capacity=pcap,
                capex=pcapex,
                unit_cost=cost_j,
                lead_time=lead_j,
                terms=terms,
                finance=finance,
                public_rate=pset.discount_rate,
                year=int(year),
            )
            prob = np.where(ok & np.isfinite(val.probability), val.probability, 0.0)
            if bern is not None:
                take = np.where(draw_mode[:, None], (bern[:, :, y] < prob).astype(float), prob)
            else:
                take = prob
            newly = undecided * take
            if follows.size:  # decided with (the same share as) the plant they come from
                lead = leader[follows]
                with np.errstate(invalid="ignore", divide="ignore"):
                    share = np.where(
                        undecided[:, lead] > 0, newly[:, lead] / undecided[:, lead], 0.0
                    )
                newly[:, follows] = undecided[:, follows] * share
            decided[:, :, y] += newly
            undecided = undecided - newly
            np.add.at(inv_cap.T, pipe.node, (newly * pcap).T)
            np.add.at(inv_capex.T, pipe.node, (newly * pcapex).T)
            inv.book_policy_flows(flows, newly, val, payers, chain.regions, S)
        out.investment.append(inv_cap)
        out.capex.append(inv_capex)
        out.policy.append(flows)
        out.probability.append(prob)
    out.decided = decided
    out.seconds = time.perf_counter() - t_start
    return out


def _carry(
    u: np.ndarray, offsets: np.ndarray, converged: np.ndarray, m: int, cf: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a chunk's rows carry to next year: ``u`` holds its ``m`` rows, then the
    no-event counterfactuals of its event rows (at positions ``cf`` among the ``m``); an event
    row carries its counterfactual's solution (the year without the events, the state the
    next year continues from). Returns the unknowns (in ``u``'s layout, ``offsets``), whether
    each solved, and the layout."""
    out, ok = u[:m].copy(), np.asarray(converged[:m], dtype=bool).copy()
    if cf.size:
        out[cf] = u[m:]
        ok[cf] = np.asarray(converged[m:], dtype=bool)
    return out, ok, offsets


def _carry_over(
    carry: tuple[np.ndarray, np.ndarray, np.ndarray],
    off_norm: np.ndarray,
    u_prev: np.ndarray | None,
    off_prev: np.ndarray | None,
    idx: np.ndarray,
    N: int,
) -> np.ndarray:
    """A chunk's start for next year in the year's normal layout ``off_norm``: each row's
    carried solution, or where it did not solve its previous start (mapped to this layout)."""
    u, ok, off = carry
    out = map_unknowns(u, N, off, off_norm)
    if u_prev is not None and off_prev is not None and not ok.all():
        prev = map_unknowns(u_prev[idx], N, off_prev, off_norm)
        out[~ok] = prev[~ok]
    return out


def _start_years(B: int, pipe, plead, committed_start, years) -> np.ndarray:
    """(B, J, Y) the first operating year of project j if decided in year y."""
    if not pipe.J:
        return np.zeros((B, 0, len(years)))
    y = years[None, None, :]
    start = np.maximum(pipe.earliest_start[None, :, None], y + plead[:, :, None])
    start = np.where(pipe.committed[None, :, None], committed_start[None, :, None], start)
    return start


def _node_values(res: list[dict[str, np.ndarray]], name: str, chain, NS: int) -> np.ndarray:
    """(B, NS) a per-region result of every stage at the stage's nodes."""
    B = res[0][name].shape[0]
    out = np.full((B, NS), np.nan)
    for s, r in enumerate(res):
        out[:, s * chain.n + chain.positions[s]] = r[name]
    return out


def _row_calibration(market, chain, cal0: Calibration, draws: int, rng, S: int) -> Calibration:
    """The calibration of every row: draw 0 central, then each draw's elasticities (and a
    chain's input coefficients) drawn as the static Monte Carlo draws them."""
    if not draws:
        return cal0
    from tradepolicy.api import draw_calibration, stage_draws

    drawn, links = stage_draws(chain, cal0, draws, rng)
    params = {  # draw 0: the central values
        k: np.concatenate([np.broadcast_to(_central(cal0, k), (1, v.shape[1])), v])
        for k, v in drawn.items()
    }
    C = cal0.C
    if links is not None:
        C = market.coefficients(np.concatenate([market.link_values()[None], links]))
    return draw_calibration(cal0, params, C, S)


def _central(cal: Calibration, kind: str) -> np.ndarray:
    from tradepolicy.api import _ELASTICITY_ATTR

    return np.asarray(getattr(cal, _ELASTICITY_ATTR[kind]), dtype=float)


def _against_baseline(res: list[dict[str, np.ndarray]], S: int) -> None:
    """Consumer surplus (measured from the base-year price along each year's demand curve)
    as a change against the no-policy pathway of the same draw in the same year, like the
    other welfare entries; ``welfare_change`` follows (in place)."""
    for r in res:
        cs = r["consumer_surplus_change"]
        base = cs[(np.arange(cs.shape[0]) // S) * S]
        shift = np.nan_to_num(base)
        r["consumer_surplus_change"] = cs - shift
        r["welfare_change"] = r["welfare_change"] - shift


def _stack_chunks(parts: list[list[dict[str, np.ndarray]]]) -> list[dict[str, np.ndarray]]:
    """The per-stage results of consecutive chunks of rows, joined along the rows."""
    if len(parts) == 1:
        return parts[0]
    return [
        {k: np.concatenate([p[s][k] for p in parts]) for k in parts[0][s]}
        for s in range(len(parts[0]))
    ]


def _regional_sum(res: list[dict[str, np.ndarray]], name: str, chain, n: int) -> np.ndarray:
    """(B, N) a per-region result summed over stages (regions absent from a stage: 0)."""
    B = res[0][name].shape[0]
    out = np.zeros((B, n))
    for s, r in enumerate(res):
        out[:, chain.positions[s]] += np.nan_to_num(np.asarray(r[name], float))
    return out


def _short_run_factors(pset: PathwaySet, NS: int) -> dict[str, np.ndarray]:
    """Short-run over medium-run elasticity of every node, by kind (1 where the medium-run
    value is 0): a draw's short-run elasticity is its medium-run draw times this ratio, so
    draws keep their spread. The short run is the market's ``at_horizon("short")``."""
    from tradepolicy.api import _ELASTICITY_ATTR
    from tradepolicy.pathway.capacity import pathway_market

    medium = pset.market.calibration
    short = pathway_market(pset.data_market.at_horizon("short")).calibration
    out = {}
    for kind, attr in _ELASTICITY_ATTR.items():
        m = np.asarray(getattr(medium, attr), float)
        sr = np.asarray(getattr(short, attr), float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[kind] = np.where(m > 0, sr / np.where(m > 0, m, 1.0), 1.0)
    return out


def _at_short_run(
    cal: Calibration,
    factors: dict[str, np.ndarray],
    rows: np.ndarray,
    t: np.ndarray | None = None,
) -> Calibration:
    """``cal`` (one parameter row per batch row) with the short-run elasticities in ``rows``
    (a mask); ``t`` (one per row, in [0, 1]): that far from the medium-run elasticities to
    the short-run ones (geometrically: the factors to the power ``t``; 1 is the short run)."""
    from tradepolicy.api import _ELASTICITY_ATTR

    B = rows.size
    kw: dict[str, Any] = {}
    for kind, attr in _ELASTICITY_ATTR.items():
        a = np.broadcast_to(np.asarray(getattr(cal, attr), float), (B, factors[kind].size))
        f = factors[kind][None, :]
        if t is not None:
            f = np.where(t[:, None] >= 1.0, f, f ** np.asarray(t, float)[:, None])
        kw[attr] = np.where(rows[:, None], a * f, a)
    return cal.with_elasticities(**kw)


def _short_run_path(cal: Calibration, factors: dict[str, np.ndarray], rows: np.ndarray) -> Homotopy:
    """The path from the medium-run elasticities of ``cal`` (one parameter row per batch row)
    to the short-run ones in ``rows`` (a mask), for rows that do not solve at once."""

    def at(which: np.ndarray, t: np.ndarray) -> Calibration:
        return _at_short_run(take_calibration(cal, which), factors, np.ones(which.size, bool), t)

    return Homotopy(rows=np.asarray(rows, dtype=bool), at=at)


def _book_stocks(
    out: Years, stocks, acts, res, prices, cf_res, cf_rows, chain, n, NS, last
) -> None:
    """Book each stockpile policy's year (stocks are assets, docs/model.md) into the stage
    results of its rows (and of the counterfactual rows without the year's events), then
    carry its state over."""
    B = res[0]["welfare_change"].shape[0]
    level = np.zeros((B, n))
    spending = np.zeros((B, n))
    terminal = np.zeros((B, n))
    cf_prices = None if cf_res is None else _node_values(cf_res, "consumer_price", chain, NS)
    cf_at = {int(b): i for i, b in enumerate(cf_rows.tolist())}
    for k, (act, act_cf) in enumerate(acts):
        sk, h = stocks.stage[k], stocks.holders[k]
        local = {int(g): i for i, g in enumerate(chain.positions[sk])}
        rows = stocks.rows(k)
        booked = stocks.book_year(k, *act, np.nan_to_num(prices[rows][:, sk * n + h]))
        pay = np.array([local[int(g)] for g in booked["payers"]], dtype=int)
        _add_stock_entries(res[sk], rows, pay, booked)
        if cf_res is not None and cf_prices is not None:
            d_cf = np.array([d for d, b in enumerate(rows.tolist()) if b in cf_at], dtype=int)
            if d_cf.size:
                at = np.array([cf_at[int(rows[d])] for d in d_cf], dtype=int)
                act_c = tuple(a[d_cf] for a in act_cf)
                p_cf = np.nan_to_num(cf_prices[at][:, sk * n + h])
                b_cf = stocks.book_year(k, *act_c, p_cf, rows=d_cf)
                _add_stock_entries(cf_res[sk], at, pay, b_cf)
        stocks.level[k] = booked["level"]
        stocks.book[k] = booked["book"]
        level[rows[:, None], h[None, :]] += booked["level"]
        payers = booked["payers"]
        spending[rows[:, None], payers[None, :]] -= booked["cash"]
        if last:
            value = booked["book"] * booked["level"].sum(axis=1)
            terminal[rows[:, None], payers[None, :]] += (
                value[:, None] * stocks.payers[k][1][None, :]
            )
    out.stock_level.append(level)
    out.stock_spending.append(spending)
    if last:
        out.stock_terminal = terminal


def _add_stock_entries(r: dict[str, np.ndarray], rows, pay, booked) -> None:
    """Add a stockpile's cash and asset change of each row to its payers' welfare entries."""
    for entry, part in (
        ("stockpile_cost", booked["cash"]),
        ("stock_value_change", booked["asset"]),
    ):
        r[entry][rows[:, None], pay[None, :]] += part
        r["welfare_change"][rows[:, None], pay[None, :]] += part
