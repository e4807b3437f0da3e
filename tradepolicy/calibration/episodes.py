"""Parameters identified by observed policy episodes (moment matching with the model).

China's 2023 export controls on gallium and germanium raised the price outside China
(Rotterdam gallium +43% within weeks) while China's domestic price fell (−9%). In the model an
export restriction is an export-tax equivalent τ on the restricting exporter's sales abroad.
For a given substitution elasticity σ, τ is set so that the importer's price rises as observed;
the model then *predicts* the exporter's domestic price change. σ is the value at which the
prediction equals the observation. How well the episode identifies σ is the slope of that
prediction in σ: a flat profile means the data say little about σ.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.interpolate import CubicSpline

from tradepolicy.calibration.estimation import Estimate, data_hash

log = logging.getLogger(__name__)

#: σ grid searched (log-spaced) and export-tax equivalents tried for each σ
SIGMA_GRID = np.geomspace(0.5, 12.0, 25)
#: the exporter's supply elasticities tried when σ is not identified
SUPPLY_GRID = np.geomspace(0.005, 3.0, 25)
TAU_GRID = np.concatenate([np.linspace(0.0, 1.0, 21), np.linspace(1.1, 4.0, 30)])
#: measurement uncertainty assumed for an observed price change (fraction), for the se
MOMENT_SD = 0.03
EXPORTER_VAR, IMPORTER_VAR = "exporter_price_change", "importer_price_change"


@dataclass
class EpisodeFit:
    """The σ matched to an episode, its delta-method standard error and the profile."""

    episode: str
    exporter: str
    importer: str
    importer_change: float
    exporter_change: float
    sigma: float
    sigma_se: float
    slope: float  # d(predicted exporter price change)/dσ at the match
    profile: pd.DataFrame  # sigma, tau, predicted exporter price change
    estimate: Estimate
    identified: bool
    supply_match: float = math.nan  # exporter supply elasticity reproducing the episode
    supply_reach: float = math.nan  # the largest fall any supply elasticity tried gives

    def describe(self) -> str:
        p = self.profile
        lo, hi = p["exporter_change"].min(), p["exporter_change"].max()
        head = (
            f"**Episode `{self.episode}`**: an export-tax equivalent on {self.exporter}'s "
            f"exports is set so that {self.importer}'s price rises {self.importer_change:+.0%}; "
            f"the model then predicts {self.exporter}'s domestic price change, between "
            f"{lo:+.2%} and {hi:+.2%} for σ in [{p['sigma'].min():.2g}, "
            f"{p['sigma'].max():.2g}]. Observed: {self.exporter_change:+.0%}."
        )
        if not self.identified:
            text = head + (
                " No σ in the range reproduces it: σ is not identified by this episode (the "
                "restricting exporter supplies nearly all of the market, so substitution "
                "between origins barely moves its price) and the prior is kept."
            )
            if math.isfinite(self.supply_match):
                text += (
                    f" What the episode does pin down is a short-run supply elasticity of "
                    f"{self.exporter} of about {self.supply_match:.2g}: with it (and σ at its "
                    "prior) the model reproduces both price changes. The market file keeps "
                    "the medium-run prior, since the episode measures the first weeks."
                )
            elif math.isfinite(self.supply_reach):
                text += (
                    f" Even a near-zero short-run supply elasticity of {self.exporter} "
                    f"({SUPPLY_GRID[0]:g}) only gives {self.supply_reach:+.1%}: the observed "
                    f"fall also needs {self.exporter}'s short-run demand to be less elastic "
                    "than the medium-run prior, or a restriction that cut exports by more "
                    "than an export-tax equivalent does (licensing delays acted as a quantity "
                    "cut)."
                )
            return text
        return head + (
            f" Matched σ = {self.sigma:.3g} (export-tax equivalent "
            f"{float(np.interp(self.sigma, p['sigma'], p['tau'])):.0%}); slope of the "
            f"prediction {self.slope:+.3g} per unit of σ, so a ±{MOMENT_SD:.0%} measurement "
            f"error on the observed change gives a standard error of {self.sigma_se:.2g}."
        )


def _market_dict(data, matrix, params) -> dict:
    regions = matrix.regions
    flows = {
        e: {i: float(matrix.flows[o, d]) for d, i in enumerate(regions) if matrix.flows[o, d] > 0}
        for o, e in enumerate(regions)
        if matrix.flows[o].sum() > 0
    }
    table: dict[str, dict[str, float]] = {k: {} for k in ("supply", "demand", "substitution")}
    for p in params:
        if p.kind in table:  # the medium run (short-run priors are not matched here)
            table[p.kind][p.key] = float(p.value)
    return {
        "id": data.id,
        "commodity": data.info.commodity,
        "base_year": int(data.info.base_year),
        "quantity_unit": data.info.quantity_unit,
        "currency": data.info.currency,
        "regions": list(regions),
        "base_price": {r.region: float(r.price) for r in data.base_prices.itertuples()},
        "elasticities": table,
        "flows": flows,
    }


def predicted_profile(
    market_dict: dict,
    exporter: str,
    importer: str,
    importer_change: float,
    vary: str = "substitution",
    grid: np.ndarray = SIGMA_GRID,
) -> pd.DataFrame:
    """For each value of the varied parameter: the τ matching the importer's price change and
    the exporter's predicted domestic price change at that τ.

    ``vary`` is ``"substitution"`` (σ of every importer) or ``"supply"`` (the exporter's
    supply elasticity). The profile's first column is named ``sigma`` for both."""
    import tradepolicy as tp
    from tradepolicy.measures import ExportTax

    rows = []
    scenarios = [
        tp.Scenario(name=f"tau_{i}", measures=[ExportTax(exporter=exporter, rate=float(t))])
        for i, t in enumerate(TAU_GRID)
    ]
    for sigma in grid:
        d = {**market_dict, "elasticities": dict(market_dict["elasticities"])}
        if vary == "substitution":
            sub = {k: v for k, v in d["elasticities"]["substitution"].items() if k != "default"}
            d["elasticities"]["substitution"] = {
                "default": float(sigma),
                **{k: float(sigma) for k in sub},
            }
        else:
            d["elasticities"]["supply"] = {**d["elasticities"]["supply"], exporter: float(sigma)}
        market = tp.Market.from_dict(d, source=f"{d['id']} (episode, σ={sigma:.3g})")
        ds = tp.solve(scenarios, market).isel(commodity=0)
        ok = ds["converged"].values[1:].astype(bool)
        base = ds.sel(scenario="baseline")
        imp = (
            ds["consumer_price"].sel(region=importer) / base["consumer_price"].sel(region=importer)
            - 1
        ).values[1:]
        exp_ = (
            ds["producer_price"].sel(region=exporter) / base["producer_price"].sel(region=exporter)
            - 1
        ).values[1:]
        imp, exp_, tau = imp[ok], exp_[ok], TAU_GRID[ok]
        if imp.size < 4 or not (imp.min() <= importer_change <= imp.max()):
            continue
        order = np.argsort(imp)
        t_star = float(CubicSpline(imp[order], tau[order])(importer_change))
        e_star = float(CubicSpline(tau, exp_)(t_star))
        rows.append({"sigma": float(sigma), "tau": t_star, "exporter_change": e_star})
    return pd.DataFrame(rows, columns=["sigma", "tau", "exporter_change"])


def _match(profile: pd.DataFrame, observed: float) -> tuple[bool, float, float]:
    """Where the profile's prediction crosses ``observed``: (found, value, slope there)."""
    from scipy.optimize import brentq

    x, pred = profile["sigma"].to_numpy(), profile["exporter_change"].to_numpy()
    if x.size < 4:
        return False, math.nan, 0.0
    gap = pred - observed
    cross = np.flatnonzero(np.sign(gap[:-1]) * np.sign(gap[1:]) <= 0)
    if not cross.size:
        return False, math.nan, 0.0
    spline = CubicSpline(np.log(x), pred)
    i = int(cross[0])
    root = brentq(lambda s: float(spline(s)) - observed, np.log(x[i]), np.log(x[i + 1]))
    value = float(np.exp(root))
    slope = float(spline(root, 1)) / value  # d prediction / d parameter
    return slope != 0.0, value, slope


def paired_changes(episodes: pd.DataFrame) -> tuple[str, pd.DataFrame, pd.Series, pd.Series]:
    """The first episode with an exporter and an importer price change, and those two rows.

    Either the rows use the variables :data:`EXPORTER_VAR` and :data:`IMPORTER_VAR`, or a
    variable starting with ``price_change`` is reported for exactly two regions, a fall in
    one (the restricting exporter) and a rise in the other (the importer). Raises
    ``LookupError`` when no episode has such a pair.
    """
    for name, rows in episodes.groupby("episode", sort=True):
        exp_rows = rows[rows["variable"] == EXPORTER_VAR]
        imp_rows = rows[rows["variable"] == IMPORTER_VAR]
        if len(exp_rows) and len(imp_rows):
            return str(name), rows, exp_rows.iloc[0], imp_rows.iloc[0]
        for _var, pair in rows[rows["variable"].str.startswith("price_change")].groupby(
            "variable", sort=True
        ):
            if len(pair) == 2 and (pair["value"] < 0).sum() == 1 and (pair["value"] > 0).sum() == 1:
                pair = pair.sort_values("value")
                return str(name), rows, pair.iloc[0], pair.iloc[1]
    raise LookupError(
        f"no episode has paired price changes (variables {EXPORTER_VAR!r} and "
        f"{IMPORTER_VAR!r}, or one `price_change*` variable with a fall in the exporter and a "
        "rise in an importer)"
    )


def fit_episode(data, matrix, params, episodes: pd.DataFrame) -> EpisodeFit:
    """Match σ to the first episode of ``episodes`` with paired price changes."""
    name, rows, exp_row, imp_row = paired_changes(episodes)
    exporter, x_obs = str(exp_row["region"]), float(exp_row["value"])
    importer, m_obs = str(imp_row["region"]), float(imp_row["value"])
    for region, var in ((exporter, EXPORTER_VAR), (importer, IMPORTER_VAR)):
        if region not in matrix.regions:
            raise ValueError(
                f"{data.id}: episode {name!r} {var} names region {region!r}, not in "
                f"the market ({', '.join(matrix.regions)})"
            )
    mdict = _market_dict(data, matrix, params)
    profile = predicted_profile(mdict, exporter, importer, m_obs)
    identified, sigma, slope = _match(profile, x_obs)
    se = MOMENT_SD / abs(slope) if identified else math.inf
    supply_match = supply_reach = math.nan
    if not identified:
        sig, pred = profile["sigma"].to_numpy(), profile["exporter_change"].to_numpy()
        sigma = float(sig[np.argmin(np.abs(pred - x_obs))]) if sig.size else math.nan
        # what the episode does pin down: the exporter's short-run supply elasticity
        alt = predicted_profile(mdict, exporter, importer, m_obs, "supply", SUPPLY_GRID)
        ok, value, _ = _match(alt, x_obs)
        supply_match = value if ok else math.nan
        supply_reach = float(alt["exporter_change"].min()) if len(alt) else math.nan
    est = Estimate(
        name="episode_substitution",
        params=pd.Series({"sigma": sigma}),
        bse=pd.Series({"sigma": se}),
        cov=pd.DataFrame([[se**2]], index=["sigma"], columns=["sigma"]),
        method=(
            f"moment matching: export-tax equivalent on {exporter} set to reproduce {importer}'s "
            f"price change {m_obs:+.0%}; σ matches {exporter}'s price change {x_obs:+.0%}; "
            f"se by the delta method with ±{MOMENT_SD:.0%} on the observed change"
        ),
        sample=f"episode {name}",
        nobs=2,
        data_hash=data_hash(rows.reset_index(drop=True)),
        extra={
            "identified": int(identified),
            "slope": round(slope, 10),
            "exporter_supply_elasticity_match": round(supply_match, 10)
            if math.isfinite(supply_match)
            else "none",
        },
    )
    log.info("%s episode %s: σ=%.3g se=%.3g", data.id, name, sigma, se)
    return EpisodeFit(
        str(name),
        exporter,
        importer,
        m_obs,
        x_obs,
        sigma,
        se,
        slope,
        profile,
        est,
        identified,
        supply_match,
        supply_reach,
    )
