"""Calibration of the no-policy pathway to IEA's base-case supply projections
(docs/pathways.md).

Regions without projects in the pipeline follow IEA's base case by construction; the regions
with projects get their output from the year loop's investment decisions, whose two free
parameters — the base risk premium and the dispersion of the decision — are fitted so that
the no-policy run's output in the target year is as close as possible (in logs) to IEA's
base case, within the parameters' documented ranges. The fit and its residuals are reported
as such: IEA's base case is not a forecast of the listed projects.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from tradepolicy.pathway.investment import Finance
from tradepolicy.pathway.spec import PathwaySet, base_year, stage_markets

log = logging.getLogger(__name__)

__all__ = ["FITTED", "InvestmentFit", "fit_investment", "projection_table"]

#: weight of the pull towards the defaults, per parameter range (a weak prior)
PRIOR_WEIGHT = 0.1
#: the investment parameters fitted and their documented ranges (docs/investment.md)
FITTED = {"risk_premium": (0.03, 0.08), "dispersion": (0.1, 0.5)}


def _baseline_set(market: Any, year: int, demand_path: str | None, finance: Finance) -> PathwaySet:
    overrides = {k: float(getattr(finance, k)) for k in FITTED}
    return PathwaySet(
        market=market,
        scenarios=[],
        years=(base_year(market), int(year)),
        demand_path=demand_path,
        investment=overrides,
    )


def projection_table(
    market: Any,
    year: int = 2030,
    demand_path: str | None = "iea_steps",
    finance: Finance | None = None,
) -> pd.DataFrame:
    """Model (no-policy pathway) against IEA's base case in ``year``, by stage and region,
    for the stages that carry ``supply_projections``: base output, IEA, model, and whether
    the region's output comes from projects (``pipeline``) or follows IEA (``projected``).
    ``finance``: the investment parameters (default: the market's fitted ones)."""
    from tradepolicy.pathway import solve_pathway
    from tradepolicy.pathway.decisions import calibrated_finance

    finance = finance or calibrated_finance(market.id)
    pset = _baseline_set(market, year, demand_path, finance)
    ds = solve_pathway(pset)
    rows = []
    for m in stage_markets(pset.market):
        table = m.supply_projections
        if table is None or table.empty:
            continue
        path = table["path"].iloc[0]
        at = table[(table["path"] == path) & (table["year"] == year)]
        projects = set(m.projects["region"]) if m.projects is not None else set()
        data_out = dict(zip(m.regions, np.asarray(m.flows, float).sum(axis=1), strict=True))
        for _, r in at.iterrows():
            model = float(
                ds.production.sel(year=year, scenario="baseline", stage=m.id, region=r["region"])
            )
            rows.append(
                {
                    "stage": m.id,
                    "region": r["region"],
                    "base": data_out.get(r["region"], 0.0),
                    "iea": float(r["quantity"]),
                    "model": model,
                    "source": "pipeline" if r["region"] in projects else "projected",
                }
            )
    out = pd.DataFrame(rows)
    if not out.empty:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["model_over_iea"] = np.where(out["iea"] > 0, out["model"] / out["iea"], np.nan)
    out.attrs.update(year=year, demand_path=demand_path or "")
    return out


@dataclass
class InvestmentFit:
    """The fitted investment parameters and the model-vs-IEA table at the fit."""

    params: dict[str, float]
    bounds: dict[str, tuple[float, float]]
    table: pd.DataFrame
    rmse_log: float
    nfev: int
    at_bound: list[str]
    year: int
    demand_path: str

    @property
    def finance(self) -> Finance:
        params: dict[str, Any] = dict(self.params)
        return replace(Finance(), **params)

    def to_estimate(self, market_id: str) -> Any:
        """As an :class:`~tradepolicy.calibration.estimation.Estimate` (stored with the
        calibration estimates)."""
        from tradepolicy.calibration.estimation import Estimate, data_hash

        names = list(self.params)
        params = pd.Series([self.params[k] for k in names], index=names, dtype=float)
        nan = pd.Series(np.nan, index=names)
        fit_rows = self.table[self.table["source"] == "pipeline"]
        return Estimate(
            name="investment",
            params=params,
            bse=nan,
            cov=pd.DataFrame(np.nan, index=names, columns=names),
            method=(
                "scipy.optimize.least_squares on log(model / IEA) of the no-policy pathway's "
                f"{self.year} output, regions with pipeline projects, within the documented "
                "ranges "
                + ", ".join(f"{k} {lo}-{hi}" for k, (lo, hi) in self.bounds.items())
                + f", with a weak pull to the defaults (weight {PRIOR_WEIGHT} per range)"
            ),
            sample=(
                f"IEA base case {self.year}, {len(fit_rows)} region-stage(s) with projects, "
                f"demand path {self.demand_path or 'none'}"
            ),
            nobs=len(fit_rows),
            data_hash=data_hash(self.table[["stage", "region", "iea"]]),
            extra={
                "rmse_log": round(self.rmse_log, 6),
                "at_bound": ",".join(self.at_bound),
                "market": market_id,
                "table": json.loads(self.table.round(6).to_json(orient="records")),
            },
        )


def fit_investment(
    market: Any, year: int = 2030, demand_path: str | None = "iea_steps"
) -> InvestmentFit:
    """Fit :data:`FITTED` so the no-policy pathway's ``year`` output of the regions with
    pipeline projects matches IEA's base case in logs (see the module docstring)."""
    names = list(FITTED)
    lo = np.array([FITTED[k][0] for k in names])
    hi = np.array([FITTED[k][1] for k in names])
    x0 = np.clip(np.array([getattr(Finance(), k) for k in names], dtype=float), lo, hi)
    cache: dict[tuple[float, ...], pd.DataFrame] = {}

    def table_at(x: np.ndarray) -> pd.DataFrame:
        key = tuple(np.round(x, 12))
        if key not in cache:
            params: dict[str, Any] = dict(zip(names, map(float, x), strict=True))
            fin = replace(Finance(), **params)
            cache[key] = projection_table(market, year, demand_path, fin)
        return cache[key]

    def residuals(x: np.ndarray) -> np.ndarray:
        t = table_at(x)
        t = t[(t["source"] == "pipeline") & (t["iea"] > 0)]
        return np.log(np.maximum(t["model"].to_numpy(), 1e-9) / t["iea"].to_numpy())

    if not residuals(x0).size:
        raise ValueError(
            f"{market.id}: no region with pipeline projects has an IEA projection for {year}; "
            "nothing to fit"
        )

    def penalised(x: np.ndarray) -> np.ndarray:
        # a weak pull towards the documented defaults: where the projections say nothing
        # about a parameter the fit keeps its default instead of an arbitrary value
        return np.concatenate([residuals(x), PRIOR_WEIGHT * (x - x0) / (hi - lo)])

    sol = optimize.least_squares(penalised, x0, bounds=(lo, hi), diff_step=0.05, xtol=1e-6)
    x = sol.x
    res = residuals(x)
    at_bound = [k for k, v, a, b in zip(names, x, lo, hi, strict=True) if min(v - a, b - v) < 1e-6]
    return InvestmentFit(
        params=dict(zip(names, map(float, x), strict=True)),
        bounds=dict(FITTED),
        table=table_at(x),
        rmse_log=float(np.sqrt(np.mean(res**2))),
        nfev=int(sol.nfev),
        at_bound=at_bound,
        year=year,
        demand_path=demand_path or "",
    )
