"""The public solve pipeline: scenarios → batched arrays → solver → labelled Dataset."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import xarray as xr

from tradepolicy import regions as region_table
from tradepolicy.chain import chain_attrs, stack_instruments
from tradepolicy.errors import InputError
from tradepolicy.market import Market, load_market
from tradepolicy.measures.base import (
    WELFARE_ENTRIES,
    ApplyContext,
    BookContext,
    Measure,
    MeasureConflict,
    PairIndex,
    apply_batch,
)
from tradepolicy.model.gsim import solve_linear
from tradepolicy.model.instruments import InstrumentBuilder, Instruments
from tradepolicy.model.levels import Calibration, initial_guess
from tradepolicy.results import indicators, welfare
from tradepolicy.results.builder import (
    _fill_values,
    build_dataset,
    combine,
    provenance_attrs,
    result_fields,
    stack_stages,
)
from tradepolicy.scenario import Scenario, ScenarioSet, is_chain, stage_of
from tradepolicy.solver.newton import (
    DEFAULT_TOL,
    Homotopy,
    map_unknowns,
    solve_batch,
    solve_warm,
)

if TYPE_CHECKING:
    from tradepolicy.chain import Chain

log = logging.getLogger(__name__)

Formulation = Literal["levels", "gsim-linear"]
FORMULATIONS = ("levels", "gsim-linear")


def build_instruments(
    market: Market, cal: Calibration, measure_lists: list[list[Measure]]
) -> tuple[Instruments, list[dict[int, list[int]]]]:
    """Let every measure write into the batch; returns instruments and each measure's pairs.

    Raises :class:`~tradepolicy.measures.base.MeasureConflict` for the first scenario whose
    measures conflict.
    """
    builder = InstrumentBuilder(len(measure_lists), market.base_tariff, market.base_export_tax)
    ctx = ApplyContext(market=market, cal=cal, builder=builder)
    pair_index = apply_batch(ctx, measure_lists)
    if ctx.errors:
        raise MeasureConflict(ctx.errors[min(ctx.errors)][1])
    return builder.build(), pair_index


def build_instruments_per_row(
    market: Market, cal: Calibration, measure_lists: list[list[Measure]]
) -> tuple[Instruments, list[dict[int, list[int]]]]:
    """Build the instruments one measure at a time.

    The reference :func:`build_instruments` (the batch) is tested against.
    """
    builder = InstrumentBuilder(len(measure_lists), market.base_tariff, market.base_export_tax)
    ctx = ApplyContext(market=market, cal=cal, builder=builder)
    pair_index: list[dict[int, list[int]]] = []
    for b, measures in enumerate(measure_lists):
        owned: dict[int, list[int]] = {}
        for j, m in enumerate(measures):
            before = int(builder.npairs[b])
            builder.current = (j, m.type)
            m.apply(ctx, b)
            if builder.npairs[b] > before:
                owned[id(m)] = list(range(before, int(builder.npairs[b])))
        builder.current = None
        for m in measures:
            m.check_feasible(ctx, b)
        pair_index.append(owned)
    return builder.build(), pair_index


def _as_set(
    scenarios: ScenarioSet | Sequence[Scenario] | Scenario,
    market: Market | str | None,
    target_share: float | None,
) -> ScenarioSet:
    if isinstance(scenarios, ScenarioSet):
        if market is not None:
            raise TypeError("give `market` only with a list of scenarios, not a ScenarioSet")
        if target_share is not None:
            scenarios.target_share = target_share
        return scenarios
    if market is None:
        raise TypeError("solve(scenarios, market): a market is needed with a list of scenarios")
    if not isinstance(market, Market):
        market = load_market(market)
    if isinstance(scenarios, Scenario):
        scenarios = [scenarios]
    return ScenarioSet(market=market, scenarios=list(scenarios), target_share=target_share)


def solve(
    scenarios: ScenarioSet | Sequence[Scenario] | Scenario,
    market: Market | str | None = None,
    *,
    formulation: Formulation = "levels",
    target_share: float | None = None,
    tol: float = DEFAULT_TOL,
    history: str | None = None,
    draws: int = 0,
    seed: int | None = None,
    variables: Sequence[str] | None = None,
) -> xr.Dataset:
    """Solve a scenario set (baseline included) and return the results Dataset.

    Parameters
    ----------
    scenarios
        A :class:`ScenarioSet` (e.g. from :func:`load_scenarios`) or scenarios built in code.
    market
        The market (object, shipped id or path) when ``scenarios`` is a list.
    formulation
        ``"levels"`` (the nonlinear Armington model) or ``"gsim-linear"`` (GSIM-v1
        linearisation; tariff and export-tax measures only).
    target_share
        Dependency target (e.g. 0.60) for the ``meets_target`` indicator.
    tol
        Solver tolerance on clearing residuals relative to base output.
    history
        A line recorded in the Dataset's ``history`` attribute (e.g. the command that ran).
    draws
        Monte Carlo draws of the elasticities from their recorded uncertainty
        (``[elasticity_se]`` in the market file). All draws of all scenarios are solved in
        one batch; the key results (:data:`DRAW_VARIABLES`) gain a ``draw`` dimension
        whose draw 0 is the central estimate (``ds.tp.point()`` selects it);
        ``ds.tp.quantiles``/``ds.tp.range`` summarise draws 1..N.
    seed
        Seed of the draws (recorded in the Dataset); ``None`` picks one and records it.
    variables
        The result variables to compute and store (names of the result field table,
        :func:`result_variables`); the solver diagnostics (:data:`DIAGNOSTICS`) are always
        stored. ``None`` (default): every variable. A lean set makes large runs cheaper; the
        numbers are those of the full Dataset.

    Returns
    -------
    xarray.Dataset
        The results, with dimension ``scenario`` (``baseline`` first, then the set's
        scenarios): the variables of the result field table with units and descriptions,
        welfare, indicators, diagnostics and provenance attributes; read it with the
        ``ds.tp`` accessor. A pathway set gives the
        pathway results (:func:`~tradepolicy.pathway.solve_pathway`).

    Raises
    ------
    InputError
        The set or its market is invalid, or a measure is not available in the GSIM linear
        formulation.
    ValueError
        An unknown ``formulation``, ``draws`` of 1, or an option a value chain or a pathway
        set does not take.
    """
    sset = _as_set(scenarios, market, target_share)
    if sset.is_pathway:  # a set over years (docs/pathways.md)
        if formulation != "levels" or variables is not None:
            raise ValueError("a pathway set runs the levels formulation with its own variables")
        from tradepolicy.pathway import solve_pathway

        return solve_pathway(sset, draws=draws, seed=seed, tol=tol, history=history)  # type: ignore[arg-type]
    mkt = sset.market
    names = ["baseline", *sset.names]
    measure_lists: list[list[Measure]] = [[]] + [list(s.measures) for s in sset.scenarios]
    if is_chain(mkt):
        if formulation != "levels":
            raise ValueError(
                f"formulation {formulation!r} is not available for value chains (allowed: levels)"
            )
        if draws and draws < 2:
            raise ValueError(f"draws must be 0 (none) or at least 2; got {draws}")
        return _solve_chain(
            sset, names, measure_lists, tol, history, draws, seed, _wanted(variables)
        )
    cal = mkt.calibration
    if formulation not in FORMULATIONS:
        raise ValueError(
            f"formulation {formulation!r} unknown (allowed: {', '.join(FORMULATIONS)})"
        )
    if formulation == "gsim-linear":
        bad = [
            (
                f"scenario[{i}].measure[{j}].type",
                f"{m.type!r} is not available in the GSIM linear formulation (allowed: "
                "tariff, export_tax)",
            )
            for i, ms in enumerate(measure_lists[1:])
            for j, m in enumerate(ms)
            if not m.gsim_linear
        ]
        if bad:
            raise InputError(str(sset.path or "<scenarios>"), bad)
    wanted = _wanted(variables)
    if draws and draws < 2:
        raise ValueError(f"draws must be 0 (none) or at least 2; got {draws}")
    central: dict[str, object] = {}
    results = _run(
        mkt,
        cal,
        measure_lists,
        formulation,
        tol,
        sset,
        names,
        wanted,
        keep=central,
        inputs=sset.take_inputs(),  # built by the set's validation, when unchanged since
    )
    attrs = provenance_attrs([mkt], sset._head(), formulation, history, spec_json=sset.to_json())
    attrs.update(_target_attrs(sset))
    ds = build_dataset(mkt, names, results, attrs)
    if draws:
        ds = _add_draws(
            ds, mkt, cal, measure_lists, names, formulation, tol, sset, draws, seed, central
        )
    return ds


#: solver diagnostics stored whatever ``variables`` asks for
DIAGNOSTICS = ("converged", "iterations", "max_residual", "solver_message")


def result_variables() -> tuple[str, ...]:
    """Names of the result variables :func:`solve` can compute (the result field table)."""
    return tuple(n for n in result_fields() if n not in DIAGNOSTICS)


def _wanted(variables: Sequence[str] | None) -> frozenset[str] | None:
    """Return the asked-for result variables, checked against the field table (None: all)."""
    if variables is None:
        return None
    if isinstance(variables, str):
        variables = [variables]
    allowed = result_variables()
    unknown = [v for v in variables if v not in allowed and v not in DIAGNOSTICS]
    if unknown:
        raise ValueError(
            f"unknown result variable(s) {', '.join(repr(v) for v in unknown)} in `variables` "
            f"(allowed: {', '.join(allowed)})"
        )
    return frozenset(variables) - set(DIAGNOSTICS)


def _run(
    mkt: Market,
    cal: Calibration,
    measure_lists: list[list[Measure]],
    formulation: str,
    tol: float,
    sset: ScenarioSet,
    names: list[str],
    variables: frozenset[str] | Sequence[str] | None = None,
    *,
    inputs: tuple[Instruments, list[dict[int, list[int]]]] | None = None,
    u0: np.ndarray | None = None,
    keep: dict[str, object] | None = None,
) -> dict[str, np.ndarray]:
    """Solve one batch of scenarios and compute its result variables (arrays, no labels).

    ``variables``: the result variables to return (None: all; the diagnostics always);
    ``inputs``: the batch's instruments and pairs of each measure when already built (then
    ``measure_lists`` only books welfare); ``u0``: the solver's start (levels only);
    ``keep``: a dict that receives the instruments, pair index and solved unknowns ``u``.
    """
    wanted = _wanted(variables) if not isinstance(variables, frozenset) else variables
    inst, pair_index = build_instruments(mkt, cal, measure_lists) if inputs is None else inputs
    B = inst.B
    if formulation == "levels":
        sol = solve_batch(cal, inst, u0=u0, tol=tol)
        st = sol.state
        converged, iterations, max_res = sol.converged, sol.iterations, sol.max_residual
        messages = sol.messages
        u = sol.u
    else:
        st, max_res = solve_linear(cal, inst)
        converged = np.isfinite(max_res) & (max_res < 1e-8)
        iterations = np.ones(B, dtype=int)
        messages = ["" if c else "linear system is singular" for c in converged]
        u = None
    if keep is not None:
        keep.update(inst=inst, pair_index=pair_index, u=u, converged=np.array(converged))
    converged = np.array(converged, dtype=bool)
    messages = list(messages)

    S = len(names)  # rows are draw-major: each block of S starts with its baseline
    base = np.arange(B) // S * S
    results, problems = _book(
        mkt, cal, inst, st, pair_index, measure_lists, sset, base, wanted, formulation
    )
    for b, problem in enumerate(problems):
        if problem and converged[b]:
            converged[b], messages[b] = False, problem
    return _finish(results, mkt, inst, st, converged, iterations, max_res, messages, names, wanted)


def _book(
    mkt, cal, inst, st, pair_index, measure_lists, sset, base, wanted, formulation
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Compute the welfare and result variables of a solved batch, and its diagnostics.

    The diagnostics say why each scenario's solution is not an equilibrium ("" when fine;
    :func:`check_solution`).
    """
    ledger = welfare.generic_parts(cal, inst, st, formulation, base=base)
    ctx = BookContext(
        market=mkt,
        cal=cal,
        inst=inst,
        state=st,
        pair_index=pair_index,
        ledger=ledger,
        flows={
            "quota_rent": np.zeros_like(st.X),
            "diversification_shadow_price": np.zeros_like(st.X),
        },
        regional={"public_purchases": np.zeros_like(st.p), "stock_change": np.zeros_like(st.p)},
        extra={"measures": measure_lists},
    )
    welfare.book_measures(ctx, measure_lists)
    results = _variables(mkt, cal, inst, st, ctx, sset, base, wanted)
    return results, check_solution(mkt, cal, inst, st, results, formulation)


def _finish(
    results,
    mkt,
    inst,
    st,
    converged,
    iterations,
    max_res,
    messages,
    names,
    wanted,
    report: bool = True,
) -> dict[str, np.ndarray]:
    """Log what did not solve, keep the variables asked for and add the diagnostics.

    ``report`` is logged; the results of scenarios that did not solve are blanked.
    """
    for k in np.flatnonzero(~converged) if report else ():
        log.warning("scenario %r: %s", names[k % len(names)], messages[k])
    _warn_unsold_releases(mkt, inst, st, converged, names)
    if wanted is not None:
        results = {k: v for k, v in results.items() if k in wanted}
    results["converged"] = converged.astype(np.int8)
    results["iterations"] = iterations.astype(np.int64)
    results["max_residual"] = max_res.astype(float)
    results["solver_message"] = np.array(messages, dtype=object)
    _blank_failed(results, ~converged)
    return results


def _stage_lists(chain, market, measure_lists: list[list[Measure]]) -> list[list[Measure]]:
    """Each scenario's measures that act on stage ``market`` of ``chain``."""
    return [[m for m in ms if stage_of(chain, m) is market] for ms in measure_lists]


def _run_chain(
    chain,
    cal: Calibration,
    measure_lists: list[list[Measure]],
    tol: float,
    sset: ScenarioSet,
    names: list[str],
    wanted: frozenset[str] | None = None,
    *,
    inputs: list | None = None,
    u0: np.ndarray | None = None,
    keep: dict[str, object] | None = None,
    warm: bool = False,
    fallback_rows: np.ndarray | None = None,
    report: bool = True,
    base: np.ndarray | None = None,
    u0_offsets: np.ndarray | None = None,
    homotopy: Homotopy | None = None,
) -> list[dict[str, np.ndarray]]:
    """Run :func:`_run` for a chain.

    Every stage is solved as one system, then each stage booked
    on its own market (its measures, its final demand and value added). Returns the result
    arrays of each stage; a scenario that is not an equilibrium at one stage is not solved
    at any. ``base``: each row's baseline row (default: the first of its block of
    ``len(names)`` rows). ``u0_offsets``: the stage pair offsets of ``u0``'s layout when it
    may differ from this batch's (e.g. last year's solution in an event year, whose measures
    add pairs): ``u0`` is mapped (:func:`~tradepolicy.solver.newton.map_unknowns`).
    ``homotopy``: with ``warm``, the path of calibrations along which rows that do not
    converge from ``u0`` are followed (:func:`~tradepolicy.solver.newton.solve_warm`).
    """
    if inputs is None:
        inputs = [
            build_instruments(m, m.calibration, _stage_lists(chain, m, measure_lists))
            for m in chain.stages
        ]
    inst, offsets = stack_instruments([i for i, _ in inputs], chain.positions, chain.n)
    if u0 is not None and u0_offsets is not None:
        lo = np.where(np.isfinite(inst.lam_lo), inst.lam_lo, 0.0)
        u0 = map_unknowns(u0, cal.N, u0_offsets, offsets, fill=lo)
    if warm and u0 is not None:  # a start from another solution (docs/pathways.md)
        sol = solve_warm(cal, inst, u0, tol=tol, fallback_rows=fallback_rows, homotopy=homotopy)
    else:
        sol = solve_batch(cal, inst, u0=u0, tol=tol)
    if keep is not None:
        keep.update(
            inputs=inputs,
            inst=inst,
            u=sol.u,
            converged=np.array(sol.converged),
            offsets=np.asarray(offsets, dtype=int),
        )
    converged = np.array(sol.converged, dtype=bool)
    messages = list(sol.messages)
    B = inst.B
    if base is None:
        base = np.arange(B) // len(names) * len(names)
    booked = []
    for s, market in enumerate(chain.stages):
        nodes = s * chain.n + chain.positions[s]
        scal = cal.block(nodes)
        sst = sol.state.block(nodes, slice(int(offsets[s]), int(offsets[s + 1])))
        sinst, spairs = inputs[s]
        lists = _stage_lists(chain, market, measure_lists)
        res, problems = _book(market, scal, sinst, sst, spairs, lists, sset, base, wanted, "levels")
        for b, problem in enumerate(problems):
            if problem and converged[b]:
                converged[b], messages[b] = False, f"stage {market.id!r}: {problem}"
        booked.append((market, sinst, sst, res))
    return [
        _finish(
            res,
            market,
            sinst,
            sst,
            converged,
            sol.iterations,
            sol.max_residual,
            messages,
            names,
            wanted,
            report=report and s == 0,
        )
        for s, (market, sinst, sst, res) in enumerate(booked)
    ]


def _solve_chain(
    sset: ScenarioSet,
    names: list[str],
    measure_lists: list[list[Measure]],
    tol: float,
    history: str | None,
    draws: int,
    seed: int | None,
    wanted: frozenset[str] | None,
) -> xr.Dataset:
    """:func:`solve` on a value chain: results stacked along ``stage``."""
    chain = cast("Chain", sset.market)
    cal = chain.calibration
    central: dict[str, object] = {}
    stage_results = _run_chain(
        chain,
        cal,
        measure_lists,
        tol,
        sset,
        names,
        wanted,
        keep=central,
        inputs=cast("list | None", sset.take_inputs()),  # a chain's: per stage
    )
    attrs = provenance_attrs([chain], sset._head(), "levels", history, spec_json=sset.to_json())
    attrs.update(_target_attrs(sset))
    attrs.update(chain_attrs(chain))
    ds = stack_stages(
        [
            build_dataset(m, names, r, attrs)
            for m, r in zip(chain.stages, stage_results, strict=True)
        ],
        chain.regions,
    )
    if draws:
        ds = _add_chain_draws(ds, chain, cal, measure_lists, names, tol, sset, draws, seed, central)
    return ds


#: result variables that gain a ``draw`` dimension in a run with Monte Carlo draws
DRAW_VARIABLES = (
    "producer_price",
    "consumer_price",
    "production",
    "consumption",
    "top_supplier_share",
    "consumer_surplus_change",
    "producer_surplus_change",
    "welfare_change",
    "levy_revenue",
    "subsidy_cost",
    "offtake_cost",
    "stockpile_cost",
    "bloc_dependency",
    "meets_target",
)
#: the Calibration attribute of each kind of elasticity
_ELASTICITY_ATTR = {"supply": "eps", "demand": "eta", "substitution": "sigma"}
_PARAMETER_NAMES = {
    "supply": ("supply_elasticity", "supply elasticity", "supply_elasticity"),
    "demand": ("demand_elasticity", "demand elasticity (absolute value)", "demand_elasticity"),
    "substitution": (
        "substitution_elasticity",
        "elasticity of substitution between origins",
        "substitution_elasticity",
    ),
}


def _add_draws(
    ds: xr.Dataset,
    mkt: Market,
    cal: Calibration,
    measure_lists: list[list[Measure]],
    names: list[str],
    formulation: str,
    tol: float,
    sset: ScenarioSet,
    draws: int,
    seed: int | None,
    central: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Solve every scenario under ``draws`` elasticity draws in one batch.

    The key results (:data:`DRAW_VARIABLES`) gain a ``draw`` dimension: draw 0 is the central
    estimate (the point elasticities), draws 1..N the Monte Carlo draws. ``ds.tp.point()``
    gives the central results; ``ds.tp.quantiles`` and ``ds.tp.range`` summarise the draws.

    The draws change the elasticities only: the instruments of the scenarios (``central``:
    what :func:`_run` kept of the central solve) are tiled, not built again, and each draw
    of a scenario starts from the scenario's central solution when that one solved.
    """
    if draws < 2:
        raise ValueError(f"draws must be 0 (none) or at least 2; got {draws}")
    if not mkt.has_uncertainty:
        log.warning(
            "market %r records no elasticity standard errors ([elasticity_se]); "
            "every draw equals the point estimate",
            mkt.id,
        )
    seed = _draw_seed(seed)
    rng = np.random.default_rng(seed)
    params = mkt.elasticity_draws(draws, rng)
    S = len(names)
    rep = lambda a: np.repeat(a, S, axis=0)  # noqa: E731 - row = draw * S + scenario
    cal_d = cal.with_elasticities(
        eps=rep(params["supply"]), eta=rep(params["demand"]), sigma=rep(params["substitution"])
    )
    central = central or {}
    if "inst" in central:
        inst = central["inst"]
        pair_index = central["pair_index"]
    else:
        inst, pair_index = build_instruments(mkt, cal, measure_lists)
    tile = np.tile(np.arange(S), draws)
    # the same measure objects in every draw: their groups and masks are the central ones
    tiled = pair_index.tile(draws) if isinstance(pair_index, PairIndex) else pair_index * draws
    inputs = (inst.take(tile), tiled)
    u0 = _draw_start(cal, inst, central, tile) if formulation == "levels" else None
    wanted = set(DRAW_VARIABLES) & set(ds.data_vars)
    v = _run(
        mkt,
        cal_d,
        measure_lists * draws,
        formulation,
        tol,
        sset,
        names,
        frozenset(wanted),
        inputs=inputs,
        u0=u0,
    )
    ok = _draw_ok(v["converged"], draws, S)
    out = ds.copy()
    draw = np.arange(draws + 1)
    for name in DRAW_VARIABLES:
        if name not in wanted:
            continue
        point = ds[name]
        arr = v[name].reshape(draws, *point.shape)
        both = np.concatenate([point.values[None], arr.astype(point.dtype)], axis=0)
        out[name] = xr.Variable(("draw", *point.dims), both, attrs=point.attrs)
    converged = np.concatenate([ds["converged"].values[None, :, 0], ok.astype(np.int8)])
    out["draw_converged"] = _draw_converged(converged, "commodity", 1)
    point_values = {
        "supply": mkt.supply_elasticity,
        "demand": mkt.demand_elasticity,
        "substitution": mkt.substitution_elasticity,
    }
    for kind, (name, long_name, _) in _PARAMETER_NAMES.items():
        values = np.concatenate([point_values[kind][None], params[kind]])
        out[name] = xr.Variable(
            ("draw", "commodity", "region"),
            values[:, None, :],
            attrs={"units": "1", "long_name": f"{long_name} (draw 0: central value)"},
        )
    out = out.assign_coords(draw=draw)
    return _draw_attrs(
        out,
        draws,
        seed,
        "elasticities drawn log-normally (median = point value, log sd = se/value); "
        "a `default` entry is one parameter shared by the regions it covers; draw 0 is the "
        "central estimate",
    )


def _draw_start(
    cal: Calibration, inst: Instruments, central: dict[str, Any], tile: np.ndarray
) -> np.ndarray | None:
    """Return each draw's start: its scenario's central solution.

    The default start is used where that one did not solve; None without a central solution.
    """
    u_c = central.get("u")
    if not isinstance(u_c, np.ndarray):
        return None
    solved = np.asarray(central["converged"], dtype=bool)[:, None]
    return np.where(solved, u_c, initial_guess(cal, inst))[tile]


def _draw_ok(converged: np.ndarray, draws: int, S: int) -> np.ndarray:
    """(draw, scenario) flags of the draw solves that converged; the others are logged."""
    ok = converged.reshape(draws, S).astype(bool)
    if not ok.all():
        log.warning(
            "%d of %d draw solves did not converge; they are left out of the ranges",
            int((~ok).sum()),
            ok.size,
        )
    return ok


def _draw_converged(converged: np.ndarray, dim: str, n: int) -> xr.Variable:
    """``draw_converged`` (draw × scenario × market axis) from (draw, scenario) flags."""
    return xr.Variable(
        ("draw", "scenario", dim),
        np.repeat(converged[:, :, None], n, axis=2).astype(np.int8),
        attrs={
            "units": "1",
            "long_name": "solve of the draw converged",
            "flag_values": np.array([0, 1], dtype=np.int8),
            "flag_meanings": "not_solved solved",
        },
    )


def _draw_attrs(out: xr.Dataset, draws: int, seed: int, method: str) -> xr.Dataset:
    """Return the ``draw`` coordinate's and the Dataset's attributes of a run with draws."""
    out["draw"].attrs = {"long_name": "Monte Carlo draw (0 = central estimate)"}
    out.attrs["draws"] = int(draws)
    out.attrs["draw_seed"] = int(seed)
    out.attrs["draw_method"] = method
    return out


def _add_chain_draws(
    ds: xr.Dataset,
    chain,
    cal: Calibration,
    measure_lists: list[list[Measure]],
    names: list[str],
    tol: float,
    sset: ScenarioSet,
    draws: int,
    seed: int | None,
    central: dict[str, Any],
) -> xr.Dataset:
    """Run :func:`_add_draws` for a chain.

    Every stage's elasticities and every link's input coefficient (triangular on its
    documented range) are drawn, all stages solved together.
    """
    if not chain.has_uncertainty:
        log.warning(
            "chain %r records no elasticity standard errors or coefficient ranges; every "
            "draw equals the point estimate",
            chain.id,
        )
    seed = _draw_seed(seed)
    rng = np.random.default_rng(seed)
    N, S = chain.n, len(names)
    params, links = stage_draws(chain, cal, draws, rng)
    cal_d = draw_calibration(cal, params, chain.coefficients(links), S)
    tile = np.tile(np.arange(S), draws)
    inputs = [
        (inst.take(tile), pairs.tile(draws) if isinstance(pairs, PairIndex) else pairs * draws)
        for inst, pairs in central["inputs"]
    ]
    u0 = _draw_start(cal, central["inst"], central, tile)
    wanted = frozenset(set(DRAW_VARIABLES) & set(ds.data_vars))
    per_stage = _run_chain(
        chain, cal_d, measure_lists * draws, tol, sset, names, wanted, inputs=inputs, u0=u0
    )
    ok = _draw_ok(per_stage[0]["converged"], draws, S)
    out = ds.copy()
    fill = _fill_values(ds)
    fields = result_fields()
    for name in wanted:
        point = ds[name]
        rest = fields[name]["dims"].split()[2:]  # after scenario and commodity
        stacked = []
        for s, res in enumerate(per_stage):
            arr = res[name].reshape(draws, S, *res[name].shape[1:])
            for axis, dim in enumerate(rest, start=2):
                if dim in ("region", "exporter", "importer"):
                    arr = _embed(arr, axis, chain.positions[s], N, fill[name])
            stacked.append(arr)
        both = np.concatenate(
            [point.values[None], np.stack(stacked, axis=2).astype(point.dtype)], axis=0
        )
        out[name] = xr.Variable(("draw", *point.dims), both, attrs=point.attrs)
    converged = np.concatenate([ds["converged"].values[None, :, 0], ok.astype(np.int8)])
    out["draw_converged"] = _draw_converged(converged, "stage", len(chain.stages))
    for kind, (name, long_name, _) in _PARAMETER_NAMES.items():
        values = np.concatenate([getattr(cal, _ELASTICITY_ATTR[kind])[None], params[kind]])
        out[name] = xr.Variable(
            ("draw", "stage", "region"),
            values.reshape(draws + 1, len(chain.stages), N),
            attrs={"units": "1", "long_name": f"{long_name} (draw 0: central value)"},
        )
    out["input_coefficient"] = xr.Variable(
        ("draw", "link"),
        np.concatenate([chain.link_values()[None], links]),
        attrs={"units": "1", "long_name": "input coefficient (draw 0: central value)"},
    )
    out = out.assign_coords(
        draw=np.arange(draws + 1),
        link=np.array([f"{k.input}->{k.output}" for k in chain.spec.link], dtype=object),
    )
    return _draw_attrs(
        out,
        draws,
        seed,
        "elasticities of every stage drawn log-normally (median = point value, log sd = "
        "se/value); each link's input coefficient drawn triangular on its documented range "
        "with the mode at the point value; draw 0 is the central estimate",
    )


def stage_draws(
    chain: Any, cal: Calibration, draws: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Draw ``draws`` Monte Carlo draws of every stage's elasticities and link coefficients.

    The elasticities are ``(draws, nodes)`` by kind (``supply``, ``demand``,
    ``substitution``; a region absent from a stage keeps ``cal``'s placeholder), then
    a chain's link coefficients ``(draws, links)`` (None for one market seen as a
    one-stage chain, which has no ``link_draws``).
    """
    N = chain.n
    NS = N * len(chain.stages)
    params = {
        k: np.broadcast_to(getattr(cal, a), (draws, NS)).copy() for k, a in _ELASTICITY_ATTR.items()
    }
    for s, market in enumerate(chain.stages):
        drawn = market.elasticity_draws(draws, rng)
        for kind in params:
            params[kind][:, s * N + chain.positions[s]] = drawn[kind]
    links = chain.link_draws(draws, rng) if hasattr(chain, "link_draws") else None
    return params, links


def draw_calibration(
    cal: Calibration, params: dict[str, np.ndarray], C: np.ndarray | None, S: int
) -> Calibration:
    """Return ``cal`` with one row of parameters per draw, repeated for each scenario.

    ``params`` by kind and, for chains, the coefficients ``C`` per draw, repeated for the
    ``S`` scenarios of each draw (row = draw × S + scenario).
    """

    def rep(a: np.ndarray) -> np.ndarray:
        return np.repeat(a, S, axis=0)

    return Calibration(
        regions=cal.regions,
        p0=cal.p0,
        X0=cal.X0,
        t0=cal.t0,
        x0=cal.x0,
        eps=rep(params["supply"]),
        eta=rep(params["demand"]),
        sigma=rep(params["substitution"]),
        C=rep(C) if C is not None and C.ndim == 3 else C,
    )


def _embed(arr: np.ndarray, axis: int, positions: np.ndarray, n: int, fill: Any) -> np.ndarray:
    """``arr`` with axis ``axis`` (a stage's regions) placed at ``positions`` of ``n``."""
    shape = list(arr.shape)
    shape[axis] = n
    out = np.full(shape, fill, dtype=arr.dtype)
    index: list[slice | np.ndarray] = [slice(None)] * arr.ndim
    index[axis] = positions
    out[tuple(index)] = arr
    return out


def _draw_seed(seed: int | None) -> int:
    """``seed``, or one drawn from the OS (recorded in the results)."""
    if seed is None:
        entropy = np.random.SeedSequence().entropy  # an int when drawn from the OS
        if not isinstance(entropy, int):
            raise RuntimeError(f"unexpected SeedSequence entropy {entropy!r}")
        seed = int(entropy % 2**31)
    return seed


def _target_attrs(sset: ScenarioSet) -> dict[str, object]:
    """Global attributes recording the dependence target (no dict or bool attrs)."""
    t = sset.bloc_target
    mkt = sset.market
    # a chain's target sits at its last stage unless it says otherwise (the magnets of
    # rare earths: the stage the G7's dependence is read at)
    last = cast("Chain", mkt).stages[-1] if is_chain(mkt) else mkt
    return {
        "target_bloc": " ".join(t.members(mkt)),
        "target_group": t.group or "",
        "target_description": t.describe(),
        "target_max_share": float(t.max_share) if sset.has_target else np.nan,
        "target_stage": t.stage or last.id,
        "target_year": int(t.year) if t.year is not None else int(last.spec.base_year),
    }


@functools.lru_cache(maxsize=64)
def _region_labels(regions: tuple[str, ...]) -> np.ndarray:
    """Return the region codes as an object array (read-only: shared by every booking)."""
    out = np.array(regions, dtype=object)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=64)
def _bloc_masks(
    regions: tuple[str, ...], members: tuple[str, ...], aggregate: tuple[bool, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Return masks (N,) of a bloc's ``members`` and of the ``aggregate`` regions.

    Read-only: shared by every booking.
    """
    inside = np.isin(np.array(regions, dtype=object), list(members))
    agg = np.array(aggregate, dtype=bool)
    inside.flags.writeable = False
    agg.flags.writeable = False
    return inside, agg


def _variables(
    mkt, cal, inst, st, ctx, sset: ScenarioSet, base, wanted: frozenset[str] | None = None
) -> dict[str, np.ndarray]:
    """Return the result variables ``wanted`` (None: all) of a solved batch.

    Plus those :func:`check_solution` reads (:data:`_FINITE`).
    """

    def want(*names: str) -> bool:
        return wanted is None or not wanted.isdisjoint(names)

    target = sset.target_share
    prod = cal.producer
    purchases = st.X.sum(axis=1)  # market purchases (incl. public composite purchases)
    traded = st.X > 0
    regions = _region_labels(tuple(mkt.regions))
    ledger = ctx.ledger
    out: dict[str, np.ndarray] = {}
    if want("producer_price"):
        out["producer_price"] = np.where(prod, st.p, np.nan)
    if want("effective_producer_price"):
        out["effective_producer_price"] = np.where(
            prod, st.p + np.where(st.covered > 0, st.support, 0.0), np.nan
        )
    if want("producer_support"):
        out["producer_support"] = np.where(prod, st.support, np.nan)
    if want("consumer_price"):
        out["consumer_price"] = np.where(cal.consumer, st.P, np.nan)
    if want("unit_value_price"):
        with np.errstate(invalid="ignore", divide="ignore"):
            # the unit value actually paid: Σ_o q_od X_od / Σ_o X_od
            spent = np.where(traded, st.q, 0.0) * st.X
            out["unit_value_price"] = np.where(purchases > 0, spent.sum(axis=1) / purchases, np.nan)
    out["production"] = st.S
    derived = st.derived if st.derived is not None else 0.0  # chains: downstream makers
    # what users consume: market purchases plus stock releases, minus stock purchases
    # (the stock flow actually realised: a release beyond users' demand is not sold)
    out["consumption"] = purchases - (st.A - st.D - derived)
    if want("input_demand"):
        out["input_demand"] = np.broadcast_to(derived, st.S.shape).copy()
    if want("input_cost", "value_added_price"):
        cost = st.input_cost if st.input_cost is not None else np.zeros_like(st.p)
        out["input_cost"] = np.where(prod, cost, np.nan)
        out["value_added_price"] = np.where(
            prod, st.p + np.where(st.covered > 0, st.support, 0.0) - cost, np.nan
        )
    if want("public_purchases"):
        out["public_purchases"] = ctx.regional["public_purchases"]
    if want("stock_change"):
        out["stock_change"] = ctx.regional["stock_change"]
    if want("production_share"):
        with np.errstate(invalid="ignore", divide="ignore"):
            out["production_share"] = st.S / st.S.sum(axis=1, keepdims=True)
    out["trade_flow"] = st.X
    if want("landed_price"):
        out["landed_price"] = np.where(inst.available, st.q, np.nan)
    if want("tariff_rate"):
        out["tariff_rate"] = inst.tariff
    if want("export_tax_rate"):
        out["export_tax_rate"] = inst.export_tax
    # per-unit wedges exist only where something is traded (no notional numbers)
    if want("levy"):
        out["levy"] = np.where(traded, st.levy, np.nan)
    if want("quota_rent"):
        out["quota_rent"] = np.where(traded, ctx.flows["quota_rent"], np.nan)
    if want("diversification_shadow_price"):
        out["diversification_shadow_price"] = np.where(
            traded, ctx.flows["diversification_shadow_price"], np.nan
        )
    if want(
        "supplier_share", "top_supplier", "top_supplier_share", "hhi", "top_supplier_meets_target"
    ):
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(purchases[:, None, :] > 0, st.X / purchases[:, None, :], np.nan)
        N = cal.N
        foreign = np.where(np.eye(N, dtype=bool)[None], -np.inf, np.nan_to_num(share, nan=-np.inf))
        top_idx = np.argmax(foreign, axis=1)
        top_share = np.take_along_axis(foreign, top_idx[:, None, :], axis=1)[:, 0, :]
        has = np.isfinite(top_share) & (purchases > 0)
        top_share = np.where(
            purchases > 0, np.where(np.isfinite(top_share), top_share, 0.0), np.nan
        )
        if target is None:
            meets = np.full(top_share.shape, -1, dtype=np.int8)
        else:
            meets = np.where(purchases > 0, top_share <= target + 1e-12, 1).astype(np.int8)
        out["supplier_share"] = share
        out["top_supplier"] = np.where(has & (top_share > 0), regions[top_idx], "")
        out["top_supplier_share"] = top_share
        out["hhi"] = np.where(purchases > 0, np.nansum(share**2, axis=1), np.nan)
        out["top_supplier_meets_target"] = meets
    if want(
        "bloc_dependency",
        "bloc_top_supplier",
        "bloc_aggregate_share",
        "meets_target",
        "bloc_output",
        "bloc_import_share",
    ):
        bt = sset.bloc_target
        members, aggregate = _bloc_masks(
            tuple(mkt.regions),
            tuple(bt.members(mkt)),
            tuple(region_table.is_aggregate(r) for r in mkt.regions),
        )
        bloc = indicators.bloc_dependency(st.X, members, aggregate)
        if sset.has_target:
            bloc_meets = np.where(
                np.isfinite(bloc.share), bloc.share <= bt.max_share + 1e-12, 0
            ).astype(np.int8)
        else:
            bloc_meets = np.full(bloc.share.shape, -1, dtype=np.int8)
        out["bloc_dependency"] = bloc.share
        with np.errstate(invalid="ignore", divide="ignore"):
            use = purchases[:, members].sum(axis=1)
            outside = st.X[:, ~members][:, :, members].sum(axis=(1, 2))
            out["bloc_import_share"] = np.where(use > 0, outside / use, np.nan)
        out["bloc_output"] = st.S[:, members].sum(axis=1)
        out["bloc_top_supplier"] = np.where(bloc.top >= 0, regions[np.maximum(bloc.top, 0)], "")
        out["bloc_aggregate_share"] = bloc.aggregate_share
        out["meets_target"] = bloc_meets
    if want("validity_flag"):
        # one baseline row for the whole batch (no draws): compared by broadcasting, the
        # same numbers without a (B, N, N) copy of the baseline
        at: Any = int(base[0]) if len(base) and (base == base[0]).all() else base
        flags = indicators.validity_flags(
            st.p, st.p[at], st.P, st.P[at], st.X, st.X[at], st.S, st.S[at]
        )
        out["validity_flag"] = np.where(cal.producer | cal.consumer, flags, 0).astype(np.int16)
    for k in WELFARE_ENTRIES:
        out[k] = ledger[k]
    out["welfare_change"] = welfare.total(ledger)
    return out


#: result variables whose every value must be finite in a solved scenario (currency or
#: quantities); prices are checked on the State where they are defined
_FINITE = ("production", "consumption", "trade_flow", *WELFARE_ENTRIES, "welfare_change")


def check_solution(
    mkt: Market,
    cal: Calibration,
    inst: Instruments,
    st,
    variables: dict[str, np.ndarray],
    formulation: str = "levels",
) -> list[str]:
    """Why each scenario's solution is not an equilibrium one can report ("" when fine).

    A solved scenario must have finite, non-negative quantities (flows, production,
    consumption), finite positive prices where they are defined (producer prices of producers,
    composite prices of consumers, landed prices of available varieties) and finite welfare.
    Anything else, whatever the solver's residual, is reported as not solved with the first
    offending number named.
    """
    regions = mkt.regions
    B = inst.B
    out = [""] * B
    linear = formulation == "gsim-linear"
    hint = (
        "; the shock is too large for the linear approximation (use the levels formulation)"
        if linear
        else ""
    )
    pending = np.ones(B, dtype=bool)  # no problem found yet
    checks = (
        ("producer price", st.p, cal.producer, True),
        ("consumer price", st.P, cal.consumer, True),
        ("landed price", st.q, inst.available & (cal.w0 > 0), True),
        ("trade flow", st.X, None, False),
        ("production", st.S, None, False),
        ("consumption", variables["consumption"], None, False),
    )
    # each check on the whole batch; messages only for the (few) scenarios that fail one
    for what, arr, where, positive in checks:
        arr = np.asarray(arr, dtype=float)
        # not finite, or not positive (non-negative): NaN compares false
        bad = (arr > 0) if positive else (arr >= 0)
        bad &= arr < np.inf
        np.logical_not(bad, out=bad)
        if where is not None:
            bad &= np.asarray(where, dtype=bool)
        flat = bad.reshape(B, -1)
        if not flat.any():
            continue
        for b in np.flatnonzero(pending & flat.any(axis=1)):
            idx = np.unravel_index(int(np.argmax(flat[b])), arr.shape[1:])
            at = " → ".join(regions[i] for i in idx)
            val = arr[b][idx]
            kind = "non-finite" if not np.isfinite(val) else "negative"
            if np.isfinite(val) and val == 0:
                kind = "zero"
            out[b] = f"not a valid equilibrium: {kind} {what} for {at} ({val:.6g}){hint}"
            pending[b] = False
    for name in _FINITE:
        arr = np.asarray(variables[name], dtype=float)
        flat = ~np.isfinite(arr.reshape(B, -1))
        if not flat.any():
            continue
        for b in np.flatnonzero(pending & flat.any(axis=1)):
            idx = np.unravel_index(int(np.argmax(flat[b])), arr.shape[1:])
            at = " → ".join(regions[i] for i in idx)
            out[b] = (
                f"not a valid equilibrium: non-finite {name.replace('_', ' ')} for {at} "
                f"({arr[b][idx]})"
            )
            pending[b] = False
    return out


def _warn_unsold_releases(mkt: Market, inst: Instruments, st, converged, names) -> None:
    """Say so when a stock release exceeds what the region's users buy (the rest is unsold)."""
    planned = inst.composite_purchase
    if not (planned < 0).any():
        return
    unsold = (st.A - st.D - (st.derived if st.derived is not None else 0.0)) - planned
    scale = np.maximum(np.abs(planned), 1.0)
    for b, d in zip(*np.nonzero(converged[:, None] & (unsold > 1e-9 * scale)), strict=True):
        log.warning(
            "scenario %r: %s's stock release exceeds what its users buy (%.6g %s/yr at the "
            "solved prices); only that much is sold, %.6g %s/yr stays in the stock",
            names[b % len(names)],
            mkt.regions[d],
            st.D[b, d],
            mkt.quantity_unit,
            unsold[b, d],
            mkt.quantity_unit,
        )


def _blank_failed(variables: dict[str, np.ndarray], failed: np.ndarray) -> None:
    """Results of scenarios that did not solve are NaN (never shown as if solved)."""
    if not failed.any():
        return
    for name, arr in variables.items():
        if name in ("converged", "iterations", "max_residual", "solver_message"):
            continue
        if arr.dtype.kind == "f":
            arr[failed] = np.nan
        elif arr.dtype.kind == "O":
            arr[failed] = ""


def solve_many(sets: Sequence[ScenarioSet], **kwargs) -> xr.Dataset:
    """Solve several scenario sets (one per market) and stack them along ``commodity``.

    Each market may appear once: put all scenarios of a market in one set.

    Parameters
    ----------
    sets : sequence of ScenarioSet
        One set per market.
    **kwargs
        Passed to :func:`solve` for every set.

    Returns
    -------
    xarray.Dataset
        The sets' results stacked along a ``commodity`` dimension (scenario names taken
        together; a scenario missing from a market is NaN there).

    Raises
    ------
    InputError
        Two sets give the same market.
    """
    seen: dict[str, ScenarioSet] = {}
    for s in sets:
        first = seen.setdefault(s.market.id, s)
        if first is not s:
            raise InputError(
                str(s.path or "<scenarios>"),
                [
                    (
                        "market",
                        f"market {s.market.id!r} is already given by "
                        f"{first.path or 'another scenario set'}; give each market once "
                        "(put all its scenarios in one set)",
                    )
                ],
            )
    return combine([solve(s, **kwargs) for s in sets])
