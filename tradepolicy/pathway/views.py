"""Views of pathway results (``ds.tp`` delegates here).

Trajectories and the options table over the horizon (docs/pathways.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr


def is_pathway(ds: xr.Dataset) -> bool:
    """Whether ``ds`` holds the results of a pathway set (a ``year`` dimension).

    Parameters
    ----------
    ds : xarray.Dataset
        A results Dataset.

    Returns
    -------
    bool
        Whether ``ds`` holds pathway results (a ``year`` dimension).
    """
    return bool(ds.attrs.get("pathway", 0)) and "year" in ds.dims


def _central(da: xr.DataArray) -> xr.DataArray:
    return da.sel(draw=0) if "draw" in da.dims else da


def trajectory(
    ds: xr.Dataset,
    var: str,
    *,
    scenario: str | list[str] | None = None,
    stage: str | None = None,
    region: str | list[str] | None = None,
) -> pd.DataFrame:
    """``var`` by year (rows) for each scenario (columns), central run.

    ``stage`` defaults to the target stage for stage variables; ``region`` selects a region
    (or sums a list of regions for quantities and money); per-region variables without a
    region are summed over regions when additive (quantities, money), else refused.

    Parameters
    ----------
    ds : xarray.Dataset
        The results of a pathway set (:func:`~tradepolicy.solve_pathway`).
    var : str
        A pathway result variable.
    scenario : str or list of str, optional
        The scenarios shown (default: all).
    stage : str, optional
        The stage of a stage variable (default: the target stage).
    region : str or list of str, optional
        One region, or a list of regions summed (quantities and money only).

    Returns
    -------
    pandas.DataFrame
        Years (rows) × scenarios (columns).

    Raises
    ------
    ValueError
        ``var`` does not add up over regions and no single ``region`` is named.
    """
    da = _central(ds[var])
    if "stage" in da.dims:
        da = da.sel(stage=stage or ds.attrs.get("target_stage") or str(ds.stage.values[-1]))
    if "region" in da.dims:
        units = str(da.attrs.get("units", ""))
        additive = "/year" in units or units in ("t", ds.attrs.get("currency", "USD"))
        if region is None or not isinstance(region, str):
            if not additive:
                raise ValueError(f"{var} is not additive over regions: name one `region`")
            da = da.sel(region=region) if region is not None else da
            da = da.sum("region")
        else:
            da = da.sel(region=region)
    if scenario is not None:
        da = da.sel(scenario=[scenario] if isinstance(scenario, str) else scenario)
    frame = da.transpose("year", "scenario").to_pandas()
    frame.columns.name = "scenario"
    return frame


def options_table(ds: xr.Dataset) -> pd.DataFrame:
    """Return the options table: one row per scenario over the horizon.

    Dependence in the target year (central run)
    and points removed against doing nothing; the probability of meeting each target share
    over the draws; present values of the net budget cost (total, bloc members, and each
    payer), the cost to buyers and the welfare change; and the cost per point removed.

    Parameters
    ----------
    ds : xarray.Dataset
        The results of a pathway set (:func:`~tradepolicy.solve_pathway`).

    Returns
    -------
    pandas.DataFrame
        One row per scenario (index ``scenario``).
    """
    year = int(ds.attrs.get("target_year", ds.year.values[-1]))
    members = str(ds.attrs.get("target_bloc", "")).split()
    pvb = _central(ds["pv_budget_cost"])
    pvc = _central(ds["pv_cost_to_buyers"])
    pvw = _central(ds["pv_welfare_change"])
    index = pd.Index([str(s) for s in ds.scenario.values], name="scenario")
    # the columns gathered first, the frame made once (inserting them one by one costs more)
    out: dict[str, Any] = {}
    dep = _central(ds["target_dependence"])
    out[f"dependence_{year}"] = dep.values
    top = ds["bloc_top_supplier"].sel(
        year=year, stage=ds.attrs.get("target_stage") or str(ds.stage.values[-1])
    )
    out["largest_outside_supplier"] = [str(v) for v in top.values]
    out["points_removed"] = _central(ds["points_removed"]).values
    if "meets_target_probability" in ds:
        for share in ds["share"].values:
            p = ds["meets_target_probability"].sel(share=share).values
            out[f"p_at_most_{round(100 * float(share))}"] = p
    in_bloc = [r for r in members if r in ds.region.values]
    out["pv_budget_cost"] = pvb.sum("region").values
    out["pv_budget_cost_bloc"] = pvb.sel(region=in_bloc).sum("region").values if in_bloc else 0.0
    out["pv_cost_to_buyers"] = pvc.sum("region").values
    out["pv_cost_to_bloc_buyers"] = pvc.sel(region=in_bloc).sum("region").values if in_bloc else 0.0
    out["pv_world_welfare"] = pvw.sum("region").values
    for k in ("budget_cost_per_point", "buyer_cost_per_point", "cost_per_point"):
        out[k] = _central(ds[k]).values
    if "draw" in ds["pv_budget_cost"].dims and ds.sizes.get("draw", 1) > 1:
        tot = ds["pv_budget_cost"].isel(draw=slice(1, None)).sum("region")
        out["pv_budget_cost_p05"] = tot.quantile(0.05, dim="draw").values
        out["pv_budget_cost_p95"] = tot.quantile(0.95, dim="draw").values
        d = ds["target_dependence"].isel(draw=slice(1, None))
        out[f"dependence_{year}_p05"] = d.quantile(0.05, dim="draw").values
        out[f"dependence_{year}_p95"] = d.quantile(0.95, dim="draw").values
    if "expected_disruption_loss" in ds:
        out["expected_loss"] = ds["expected_disruption_loss"].values
        out["loss_reduction"] = ds["loss_reduction"].values
    out["solved"] = ds["converged"].sel(draw=0).all("year").values.astype(bool)
    return pd.DataFrame(out, index=index)


def risk_table(ds: xr.Dataset) -> pd.DataFrame:
    """Return the risk table: one row per scenario of a risk set (docs/risk.md).

    The bloc's expected disruption
    loss (PV) with its 5th and 95th percentiles over the draws, the loss reduction against
    the cost of inaction (the baseline's expected loss), the PV of the net stockpile cost (all
    payers) and of the bloc's net budget cost (mean over the draws, the target bloc's members
    as for the loss, the stock left in the last year counted at book value), and benefit per
    unit of cost (NaN where nothing is spent). Costs and losses are > 0. Every statistic is
    over the draws that solved every year (``risk_draw_used``; ``ds.attrs["risk_draws_used"]``
    of ``ds.attrs["risk_draws"]``).

    Parameters
    ----------
    ds : xarray.Dataset
        The results of a risk set (a pathway set with ``[[risk]]`` events, run with draws).

    Returns
    -------
    pandas.DataFrame
        One row per scenario (index ``scenario``), money in the results' currency.

    Raises
    ------
    ValueError
        ``ds`` holds no risk results.
    """
    if "expected_disruption_loss" not in ds:
        raise ValueError("not the results of a risk set (no [[risk]] events)")
    out = pd.DataFrame(index=pd.Index([str(s) for s in ds.scenario.values], name="scenario"))
    out["expected_loss"] = ds["expected_disruption_loss"].values
    out["loss_p05"] = ds["disruption_loss_p05"].values
    out["loss_p95"] = ds["disruption_loss_p95"].values
    out["loss_reduction"] = ds["loss_reduction"].values
    draws = ds["pv_budget_cost"]
    if "risk_draw_used" in ds:  # the draws that solved every year (docs/risk.md)
        sample = draws.isel(draw=np.flatnonzero(ds["risk_draw_used"].values))
    else:
        sample = draws.isel(draw=slice(1, None)) if draws.sizes["draw"] > 1 else draws
    # the bloc's budgets, as its loss: an event's border revenue abroad (an exporter's export
    # tax, which an option lowers by lowering the bloc's imports) is no cost of the option
    members = [r for r in str(ds.attrs.get("target_bloc", "")).split() if r in ds.region.values]
    bloc = (lambda da: da.sel(region=members)) if members else (lambda da: da)
    budget = bloc(sample).sum("region").mean("draw").values
    stock = np.zeros(len(out))
    if "pv_stockpile_cost" in ds:
        stock = ds["pv_stockpile_cost"].sum("region").values
        # purchases are budget spending; the stock left in the last year is an asset
        budget = budget - bloc(ds["pv_stock_left"]).sum("region").values
    out["pv_stockpile_cost"] = stock
    out["pv_budget_cost"] = budget
    with np.errstate(invalid="ignore", divide="ignore"):
        out["benefit_cost"] = np.where(budget > 0, out["loss_reduction"] / budget, np.nan)
    return out


def payers_table(ds: xr.Dataset) -> pd.DataFrame:
    """Return the present value of the net budget cost by payer region.

    Payers in columns, scenarios in rows, central run; regions that pay nothing in any
    scenario are left out.

    Parameters
    ----------
    ds : xarray.Dataset
        The results of a pathway set (:func:`~tradepolicy.solve_pathway`).

    Returns
    -------
    pandas.DataFrame
        Scenarios (rows) × paying regions (columns), in the results' currency.
    """
    pv = _central(ds["pv_budget_cost"]).to_pandas()
    keep = [c for c in pv.columns if np.any(np.abs(pv[c].to_numpy()) > 0)]
    return pv[keep]


def risk_money_unit(table: pd.DataFrame, currency: str) -> tuple[float, str]:
    """Return the scale and unit in which a risk table's money is shown.

    bn where its largest amount is at least a billion, else M (so tens of millions do not
    show as 0.00 bn). The CLI and the brief use the same choice.

    Parameters
    ----------
    table : pandas.DataFrame
        A risk table (:func:`risk_table`).
    currency : str
        The results' currency (e.g. ``USD``).

    Returns
    -------
    tuple of (float, str)
        The scale (``1e9`` or ``1e6``) and its unit (``bn USD`` or ``M USD``).
    """
    cols = ["expected_loss", "loss_p05", "loss_p95", "loss_reduction"]
    cols += ["pv_stockpile_cost", "pv_budget_cost"]
    vals = np.abs(np.asarray(table[cols], dtype=float))
    big = float(np.nanmax(vals, initial=0.0)) if vals.size else 0.0
    return (1e9, f"bn {currency}") if big >= 1e9 else (1e6, f"M {currency}")


def risk_draws_solved(ds: xr.Dataset) -> tuple[int, int] | None:
    """Return ``(used, total)``: the draws of a risk set used in its risk statistics.

    Used: the draws that solved every year, out of all draws; None for results without
    disruption risk.

    Parameters
    ----------
    ds : xarray.Dataset
        A results Dataset.

    Returns
    -------
    tuple of (int, int) or None
        ``(used, total)``, or None without disruption risk.
    """
    if "risk_draws_used" not in ds.attrs:
        return None
    return int(ds.attrs["risk_draws_used"]), int(ds.attrs["risk_draws"])
