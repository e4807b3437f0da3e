"""The results Dataset of a pathway set (docs/pathways.md): everything by ``year``.

Per-region, per-year results are those of the central run (draw 0: point parameters,
capacity weighted by the decision probabilities). Bloc dependence, whether the target is met,
and the present values carry a ``draw`` dimension when the run has draws (draw 0 central),
from which the probability of meeting the target is read.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import xarray as xr

from tradepolicy.measures.base import FISCAL_ENTRIES, WELFARE_ENTRIES
from tradepolicy.pathway.loop import Years
from tradepolicy.pathway.spec import PathwaySet
from tradepolicy.results.builder import provenance_attrs, result_fields

log = logging.getLogger(__name__)

#: border revenue entries (public revenue of the collecting region)
BORDER_ENTRIES = ("tariff_revenue_change", "levy_revenue", "export_tax_revenue_change")
#: per-region yearly variables kept from the equilibrium (central run)
REGIONAL = (
    "producer_price",
    "consumer_price",
    "production",
    "consumption",
    "input_cost",
    *WELFARE_ENTRIES,
    "welfare_change",
)


def _attrs(name: str, market: Any) -> dict[str, str]:
    """The result field table's long name and units (in ``market``'s units) of ``name``."""
    from tradepolicy.results.builder import _units

    f = result_fields().get(name)
    if f is None:
        return {}
    return {"long_name": f.get("long_name", name), "units": _units(f.get("units", ""), market)}


def build(run: Years, pset: PathwaySet, history: str | None = None) -> xr.Dataset:
    """Label the arrays of :func:`~tradepolicy.pathway.loop.run_years` as a Dataset."""
    stages = run.stages
    n = len(run.regions)
    Sg = len(stages)
    S = len(run.names)
    D = run.draws + 1
    Y = len(run.years)
    currency = stages[0].spec.currency if hasattr(stages[0].spec, "currency") else ""
    regions = list(run.regions)
    stage_ids = [m.id for m in stages]

    def regional(name: str, fill: float = np.nan, draw: int | None = 0) -> np.ndarray:
        """(year, [draw,] scenario, stage, region) from the per-stage results."""
        rows = slice(None) if draw is None else slice(draw * S, (draw + 1) * S)
        B = S if draw is not None else D * S
        out = np.full((Y, B, Sg, n), fill)
        for s in range(Sg):
            out[:, :, s, run.positions[s]] = _over_years(run, s, name)[:, rows]
        return out

    def bloc(name: str) -> np.ndarray:
        """(draw, year, scenario, stage)."""
        out = np.empty((D, Y, S, Sg), dtype=object if name == "bloc_top_supplier" else float)
        for s in range(Sg):
            out[:, :, :, s] = _over_years(run, s, name).reshape(Y, D, S).transpose(1, 0, 2)
        return out

    coords: dict[str, Any] = {
        "year": run.years,
        "scenario": run.names,
        "stage": stage_ids,
        "region": regions,
    }
    data: dict[str, Any] = {}
    dims4 = ("year", "scenario", "stage", "region")
    fill0 = {"production", "consumption", *WELFARE_ENTRIES, "welfare_change"}
    for name in REGIONAL:
        data[name] = xr.Variable(
            dims4, regional(name, 0.0 if name in fill0 else np.nan), _attrs(name, stages[0])
        )
    flows = np.zeros((Y, S, Sg, n, n))
    for s in range(Sg):
        at = run.positions[s]
        flows[:, :, s][:, :, at[:, None], at[None, :]] = _over_years(run, s, "trade_flow")[:, :S]
    data["trade_flow"] = xr.Variable(
        ("year", "scenario", "stage", "exporter", "importer"),
        flows,
        _attrs("trade_flow", stages[0]),
    )
    coords["exporter"] = regions
    coords["importer"] = regions
    # capacity, new capacity decided and capex (central run)
    NSl = slice(0, S)
    capa = np.stack([c[NSl] for c in run.capacity]).reshape(Y, S, Sg, n)
    inv = np.stack([c[NSl] for c in run.investment]).reshape(Y, S, Sg, n)
    capex = np.stack([c[NSl] for c in run.capex]).reshape(Y, S, Sg, n)
    qunit = stages[0].spec.quantity_unit if hasattr(stages[0].spec, "quantity_unit") else ""
    data["capacity"] = xr.Variable(
        dims4,
        capa,
        {"long_name": "production capacity (nameplate, in operation)", "units": f"{qunit}/year"},
    )
    data["investment"] = xr.Variable(
        dims4,
        inv,
        {
            "long_name": "new capacity decided in the year (expected: probability-weighted)",
            "units": f"{qunit}/year",
        },
    )
    data["capex_committed"] = xr.Variable(
        dims4,
        capex,
        {
            "long_name": "capital expenditure of the capacity decided in the year",
            "units": f"{currency}",
        },
    )
    # bloc indicators (draw, year, scenario, stage)
    dep = bloc("bloc_dependency")
    top = bloc("bloc_top_supplier")
    data["bloc_dependency"] = xr.Variable(
        ("draw", "year", "scenario", "stage"),
        dep.astype(float),
        _attrs("bloc_dependency", stages[0]),
    )
    data["bloc_top_supplier"] = xr.Variable(
        ("year", "scenario", "stage"),
        top[0].astype(str).astype(object),
        _attrs("bloc_top_supplier", stages[0]),
    )
    # investment-policy flows by payer region (central run), positive = money
    for k in run.policy[0]:
        stacked = np.stack([p[k][NSl] for p in run.policy])
        data[k] = xr.Variable(("year", "scenario", "region"), stacked, _policy_attrs(k, currency))
    # convergence
    conv = np.stack(run.converged).reshape(Y, D, S).transpose(1, 0, 2)
    data["converged"] = xr.Variable(
        ("draw", "year", "scenario"),
        conv.astype(np.int8),
        {"long_name": "solve of the year converged", "units": "1"},
    )
    msgs = np.array(run.messages, dtype=object).reshape(Y, D, S)[:, 0, :]
    data["solver_message"] = xr.Variable(
        ("year", "scenario"), msgs, {"long_name": "solver message (central run)"}
    )
    # projects
    pipe = run.pipeline
    if pipe is not None and pipe.J:
        prob = np.stack([p[NSl] for p in run.probability])  # (Y, S, J)
        data["project_probability"] = xr.Variable(
            ("year", "scenario", "project"),
            prob,
            {
                "long_name": "probability the project is decided in the year, if not yet decided",
                "units": "1",
            },
        )
        assert run.decided is not None
        built = run.decided.reshape(D, S, pipe.J, Y).sum(axis=3)
        data["project_decided"] = xr.Variable(
            ("draw", "scenario", "project"),
            built,
            {"long_name": "share decided by the last year (draws mode: 0 or 1)", "units": "1"},
        )
        coords["project"] = list(pipe.name)
        coords["project_stage"] = ("project", list(pipe.stage))
        coords["project_region"] = ("project", list(pipe.region))
        coords["project_status"] = ("project", list(pipe.status))
    coords["draw"] = np.arange(D)
    ds = xr.Dataset(data, coords=coords)
    ds = _summaries(ds, run, pset, currency)
    ds = _risk(ds, run, pset, currency)
    from tradepolicy.api import _target_attrs

    attrs = provenance_attrs(
        [pset.market], pset._head(), "levels", history, spec_json=pset.to_json()
    )
    attrs.update(_target_attrs(pset))
    if getattr(pset.market, "kind", "") == "chain":
        from tradepolicy.chain import chain_attrs

        attrs.update(chain_attrs(pset.market))  # type: ignore[arg-type]  # (a Chain)
    attrs["target_year"] = int(pset.target_year)
    attrs["target_ambition"] = (
        float(pset.target.ambition) if pset.target is not None and pset.target.ambition else np.nan
    )
    attrs.update(
        pathway=1,
        first_year=int(run.years[0]),
        last_year=int(run.years[-1]),
        discount_rate=float(pset.discount_rate),
        mode=pset.mode,
        demand_path=pset.demand_path or "",
        draws=int(run.draws),
        solve_seconds=float(run.seconds),
    )
    if run.seed is not None:
        attrs["draw_seed"] = int(run.seed)
    ds.attrs.update(attrs)
    return ds


def _over_years(run: Years, stage: int, name: str) -> np.ndarray:
    """(year, row, ...) a per-stage result of stage ``stage`` stacked over the years."""
    return np.stack([res[stage][name] for res in run.per_year])


def _policy_attrs(name: str, currency: str) -> dict[str, str]:
    from tradepolicy.pathway.decisions import POLICY_FLOWS

    return {"long_name": POLICY_FLOWS[name], "units": f"{currency}/year"}


def discount_factors(years: np.ndarray, rate: float) -> np.ndarray:
    """(1 + rate)^-(year − first year): present values at the pathway's first year."""
    return (1.0 + rate) ** -(np.asarray(years, float) - float(years[0]))


def _summaries(ds: xr.Dataset, run: Years, pset: PathwaySet, currency: str) -> xr.Dataset:
    """``ds`` with present values, target probabilities and the cost per point removed."""
    from tradepolicy.pathway.decisions import POLICY_COSTS

    S, D = len(run.names), run.draws + 1
    Y = len(run.years)
    n = len(run.regions)
    df = discount_factors(run.years, pset.discount_rate)

    def all_draws(name: str) -> np.ndarray:
        """(draw, year, scenario, region) summed over stages."""
        out = np.zeros((D, Y, S, n))
        for s in range(len(run.stages)):
            v = np.nan_to_num(_over_years(run, s, name).astype(float, copy=False))
            out[..., run.positions[s]] += v.reshape(Y, D, S, -1).transpose(1, 0, 2, 3)
        return out

    fiscal = sum(all_draws(k) for k in FISCAL_ENTRIES)  # negative = spending
    border = sum(all_draws(k) for k in BORDER_ENTRIES)
    cs = all_draws("consumer_surplus_change")
    welfare = all_draws("welfare_change")
    pol = np.zeros((D, Y, S, n))
    for y, p in enumerate(run.policy):
        for k, sign in POLICY_COSTS.items():
            pol[:, y] += sign * p[k].reshape(D, S, n)
    charge = np.stack(run.capital_charge).reshape(Y, D, S, -1, n).sum(axis=3)
    charge = charge.transpose(1, 0, 2, 3)
    d_charge = charge - charge[:, :, :1]  # against the no-policy pathway of the same draw
    budget = -(fiscal + border) + pol  # positive = net cost to the budget
    pv = lambda a: np.einsum("dysr,y->dsr", a, df)  # noqa: E731
    dims = ("draw", "scenario", "region")
    cur = {"units": currency}
    # the new variables, added in one update (one alignment instead of one per variable;
    # docs_reference reads them as data[name] = xr.Variable(...))
    data: dict[str, xr.Variable] = {}
    data["pv_budget_cost"] = xr.Variable(
        dims,
        pv(budget),
        {
            **cur,
            "long_name": "present value of the net cost to public budgets (spending on "
            "subsidies, offtakes, stocks, grants, guarantees and equity less border revenue), "
            "positive = cost",
        },
    )
    data["pv_border_revenue"] = xr.Variable(
        dims,
        pv(border),
        {**cur, "long_name": "present value of border revenue (levies, tariffs, export taxes)"},
    )
    data["pv_cost_to_buyers"] = xr.Variable(
        dims,
        pv(-cs),
        {
            **cur,
            "long_name": "present value of the loss of consumer surplus, positive = cost to buyers",
        },
    )
    data["pv_welfare_change"] = xr.Variable(
        dims,
        pv(welfare - d_charge),
        {
            **cur,
            "long_name": "present value of the welfare change less the capital cost of the "
            "extra plants running (capex as an annuity over their life at the discount rate), "
            "against the no-policy pathway",
        },
    )
    # the target
    t = pset.bloc_target
    stage = t.stage or run.stages[-1].id
    sidx = [m.id for m in run.stages].index(stage)
    yidx = int(np.flatnonzero(run.years == pset.target_year)[0])
    dep = ds["bloc_dependency"].values[:, yidx, :, sidx]  # (draw, scenario)
    shares = np.array(t.shares if pset.has_target else (), dtype=float)
    data["target_dependence"] = xr.Variable(
        ("draw", "scenario"),
        dep,
        {"units": "1", "long_name": f"bloc dependence at the target stage in {pset.target_year}"},
    )
    if shares.size:
        meets = dep[:, :, None] <= shares[None, None, :] + 1e-12
        # (draw, scenario): solved in every year
        conv = np.asarray(np.asarray(ds["converged"].values).all(axis=1))
        sample = slice(1, None) if D > 1 else slice(0, 1)
        ok = conv[sample]
        with np.errstate(invalid="ignore"):
            prob = (meets[sample] & ok[:, :, None]).sum(axis=0) / np.maximum(ok.sum(axis=0), 1)[
                :, None
            ]
        data["meets_target_probability"] = xr.Variable(
            ("scenario", "share"),
            prob,
            {
                "units": "1",
                "long_name": f"probability that bloc dependence at the target stage "
                f"in {pset.target_year} is at most the share (over the draws that solved every "
                "year)",
            },
        )
    removed = (dep[:, :1] - dep) * 100.0  # percentage points against doing nothing
    data["points_removed"] = xr.Variable(
        ("draw", "scenario"),
        removed,
        {
            "units": "percentage points",
            "long_name": f"bloc dependence removed in {pset.target_year} against the "
            "no-policy pathway",
        },
    )
    members = np.isin(np.array(run.regions), t.members(pset.market))
    bloc_budget = pv(budget)[:, :, members].sum(axis=2)
    bloc_buyers = pv(-cs)[:, :, members].sum(axis=2)
    from tradepolicy.results.accessor import MIN_POINTS

    def per_point(cost: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(removed >= MIN_POINTS, cost / removed, np.nan)

    note = (
        f"per percentage point of {pset.target_year} dependence removed (NaN where less "
        f"than {MIN_POINTS} point is removed)"
    )
    data["budget_cost_per_point"] = xr.Variable(
        ("draw", "scenario"),
        per_point(bloc_budget),
        {**cur, "long_name": f"present value of the bloc's net budget cost {note}"},
    )
    data["buyer_cost_per_point"] = xr.Variable(
        ("draw", "scenario"),
        per_point(bloc_buyers),
        {**cur, "long_name": f"present value of the cost to the bloc's buyers {note}"},
    )
    data["cost_per_point"] = xr.Variable(
        ("draw", "scenario"),
        per_point(bloc_budget + bloc_buyers),
        {
            **cur,
            "long_name": "present value of the bloc's budget cost plus the cost to its "
            f"buyers {note}",
        },
    )
    # the share coordinate and the new variables in one merge (one alignment of ``ds``)
    return ds.merge(xr.Dataset(coords={"share": shares}).assign(data))


def _risk(ds: xr.Dataset, run: Years, pset: PathwaySet, currency: str) -> xr.Dataset:
    """``ds`` with the events, disruption losses and stockpiles of a risk set (docs/risk.md);
    unchanged for a set without ``[[risk]]`` or ``stockpile_policy``."""
    S, D, n = len(run.names), run.draws + 1, len(run.regions)
    df = discount_factors(run.years, pset.discount_rate)
    cur = {"units": currency}
    # draw 0 (central) has no events; a draw with a row (any option, event or counterfactual)
    # that did not solve in some year is left out of every statistic, for all its options
    # (common random numbers)
    solved = np.ones(D, dtype=bool) if run.draw_solved is None else np.asarray(run.draw_solved)
    sample = np.zeros(D, dtype=bool)
    if D > 1:
        sample[1:] = solved[1:]
    else:
        sample[0] = True
    if run.risk_names or run.stock_level:
        used, total = int(sample[1:].sum()) if D > 1 else 1, max(D - 1, 1)
        ds["risk_draw_used"] = xr.Variable(
            ("draw",),
            sample.astype(np.int8),
            {
                "units": "1",
                "long_name": "the draw enters the risk statistics (1): every row of it solved "
                "in every year (draw 0, the central run, has no events)",
            },
        )
        ds.attrs["risk_draws_used"] = used
        ds.attrs["risk_draws"] = total
        if D > 1 and total - used > 0.05 * total:
            log.warning(
                "%d of %d draws left out of the risk statistics: a solve (with or without "
                "the year's events) did not converge in some year",
                total - used,
                total,
            )
    if run.risk_names:
        assert run.event_active is not None and run.severity is not None
        ds = ds.assign_coords(risk=run.risk_names)
        ds["event_active"] = xr.Variable(
            ("draw", "year", "risk"),
            run.event_active.astype(np.int8),
            {"units": "1", "long_name": "the event runs in the year (1) in the draw"},
        )
        ds["severity"] = xr.Variable(
            ("draw", "risk"),
            run.severity,
            {"units": "1", "long_name": "severity of the event in the draw (0 none, 1 full)"},
        )
        assert run.loss is not None
        members = np.isin(np.array(run.regions), pset.bloc_target.members(pset.market))
        pv_reg = np.einsum("dsry,y->dsr", run.loss, df)  # (D, S, N)
        loss = pv_reg[:, :, members].sum(axis=2)
        what = (
            "present value (at the discount rate, to the first year) of the bloc's surplus "
            "lost in event years: welfare without the year's events less welfare with them, "
            "same year and state; > 0 a loss"
        )
        loss = np.where(solved[:, None], loss, np.nan)  # a failed draw has no loss
        ds["disruption_loss"] = xr.Variable(
            ("scenario", "draw"), loss.T, {**cur, "long_name": f"{what} (NaN: not solved)"}
        )
        exp = loss[sample].mean(axis=0)
        ds["expected_disruption_loss"] = xr.Variable(
            ("scenario",), exp, {**cur, "long_name": f"mean over the draws of the {what}"}
        )
        for q in (5, 95):
            ds[f"disruption_loss_p{q:02d}"] = xr.Variable(
                ("scenario",),
                np.percentile(loss[sample], q, axis=0),
                {**cur, "long_name": f"{q}th percentile over the draws of the disruption loss"},
            )
        ds["expected_disruption_loss_by_region"] = xr.Variable(
            ("scenario", "region"),
            pv_reg[sample].mean(axis=0),
            {**cur, "long_name": "mean over the draws of the disruption loss of each region (PV)"},
        )
        coi = float(exp[0])
        ds["cost_of_inaction"] = xr.Variable(
            (),
            coi,
            {**cur, "long_name": "expected disruption loss of the bloc with no policy (baseline)"},
        )
        ds["loss_reduction"] = xr.Variable(
            ("scenario",),
            coi - exp,
            {**cur, "long_name": "cost of inaction less the option's expected disruption loss"},
        )
        ds.attrs["cost_of_inaction"] = coi
    if run.stock_level:
        level = np.stack(run.stock_level)  # (Y, B, N)
        qunit = (
            run.stages[0].spec.quantity_unit if hasattr(run.stages[0].spec, "quantity_unit") else ""
        )
        ds["stock_level"] = xr.Variable(
            ("year", "scenario", "region"),
            level[:, :S],
            {"units": qunit, "long_name": "public stock held at the end of the year (central run)"},
        )
        ds["expected_stock_level"] = xr.Variable(
            ("year", "scenario", "region"),
            level.reshape(len(run.years), D, S, n)[:, sample].mean(axis=1),
            {"units": qunit, "long_name": "public stock at the end of the year, mean over draws"},
        )
        spend = np.stack(run.stock_spending).reshape(len(run.years), D, S, n)
        terminal = (
            np.zeros((D, S, n))
            if run.stock_terminal is None
            else run.stock_terminal.reshape(D, S, n)
        )
        pv = np.einsum("ydsr,y->dsr", spend, df) - df[-1] * terminal
        ds["pv_stockpile_cost"] = xr.Variable(
            ("scenario", "region"),
            pv[sample].mean(axis=0),
            {
                **cur,
                "long_name": "present value of stockpile purchases less releases plus holding "
                "cost (financing and storage) less the book value of the stock left in the last "
                "year, by payer, mean over draws; > 0 a cost",
            },
        )
        ds["pv_stock_left"] = xr.Variable(
            ("scenario", "region"),
            (df[-1] * terminal)[sample].mean(axis=0),
            {
                **cur,
                "long_name": "present value of the book value of the stock left in the last "
                "year, by payer, mean over draws",
            },
        )
        ds["pv_stockpile_cost_draws"] = xr.Variable(
            ("draw", "scenario", "region"),
            pv,
            {**cur, "long_name": "present value of the net stockpile cost by payer, per draw"},
        )
    return ds
