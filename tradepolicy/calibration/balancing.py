"""Bilateral flow matrices from partial data: a gravity prior balanced to known totals.

No complete bilateral matrix is public for most refined critical minerals. The method:

1. **Gravity prior** (:func:`gravity_prior`): a Poisson pseudo-maximum-likelihood (PPML)
   regression with statsmodels ``GLM`` of the known flows with production and consumption as
   offsets and a home (domestic-use) dummy, ``E[X_od] = P_o·C_d·exp(κ + h·1[o = d])``,
   predicts every cell (zero where a region produces or consumes nothing).
2. **Balancing** (:func:`balance`): iterative proportional fitting (RAS) scales the unknown
   cells of the prior so that row sums equal known production and column sums equal known
   consumption, while the known flows are kept exactly.

:func:`build_matrix` runs both and returns a :class:`BalancedMatrix` with the residuals of
the fit and of the balancing, so a market file can report how well its targets are hit.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

log = logging.getLogger(__name__)


@dataclass
class GravityFit:
    """The PPML gravity regression: coefficients and the prior it implies."""

    regions: list[str]
    prior: np.ndarray  # (N, N) predicted flows, exporter × importer
    params: pd.Series  # constant and home effect
    bse: pd.Series  # standard errors (robust, HC1)
    nobs: int
    deviance: float

    @property
    def home_effect(self) -> float:
        """Multiplier of domestic use over a foreign flow with the same fixed effects."""
        return float(np.exp(self.params["home"]))


@dataclass
class BalancedMatrix:
    """A balanced exporter × importer matrix and how well it meets its targets."""

    regions: list[str]
    flows: np.ndarray  # (N, N)
    known: np.ndarray  # (N, N) bool: cells fixed to a known flow
    production: np.ndarray  # (N,) targets (row sums)
    consumption: np.ndarray  # (N,) targets (column sums)
    iterations: int
    row_residual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    col_residual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gravity: GravityFit | None = None

    @property
    def max_relative_residual(self) -> float:
        """Largest |sum − target| / target over rows and columns with a positive target."""
        rel = [
            np.abs(res[t > 0]) / t[t > 0]
            for res, t in (
                (self.row_residual, self.production),
                (self.col_residual, self.consumption),
            )
        ]
        return float(max((r.max() for r in rel if r.size), default=0.0))

    def to_frame(self) -> pd.DataFrame:
        """Long table ``exporter, importer, quantity, known`` of the positive cells."""
        o, d = np.nonzero(self.flows)
        return pd.DataFrame(
            {
                "exporter": [self.regions[i] for i in o],
                "importer": [self.regions[j] for j in d],
                "quantity": self.flows[o, d],
                "known": self.known[o, d],
            }
        )


def gravity_prior(
    regions: list[str],
    known: pd.DataFrame,
    production: np.ndarray,
    consumption: np.ndarray,
) -> GravityFit:
    """PPML fit of the known flows with production and consumption as offsets.

    ``E[X_od] = P_o · C_d · exp(κ + h·1[o = d])``: the exporter's output and the importer's
    use enter as offsets (their elasticities fixed at one, as in a frictionless gravity
    model), so only the constant κ and the home effect h are estimated, which a handful of
    known flows identify (at least one domestic and one foreign flow).

    Parameters
    ----------
    regions
        Region codes (the matrix order).
    known
        Known flows: columns ``exporter``, ``importer``, ``quantity`` (≥ 0; zeros are
        information too).
    production, consumption
        (N,) targets; cells of regions with zero production (consumption) are 0 in the prior.
    """
    N = len(regions)
    pos = {r: i for i, r in enumerate(regions)}
    unknown = sorted(set(known["exporter"]).union(known["importer"]) - set(pos))
    if unknown:
        raise ValueError(f"known flows name regions not in the list: {unknown}")
    if (known["quantity"] < 0).any():
        raise ValueError("known flows must be >= 0")
    prod = np.asarray(production, float)
    cons = np.asarray(consumption, float)
    o = known["exporter"].map(pos).to_numpy()
    d = known["importer"].map(pos).to_numpy()
    usable = (prod[o] > 0) & (cons[d] > 0)
    home = (o == d)[usable]
    if not (home.any() and (~home).any()):
        raise ValueError(
            "the gravity prior needs at least one known domestic flow and one known foreign "
            "flow between a producer and a consumer"
        )
    if home.size < 3:
        raise ValueError(
            f"the gravity prior needs at least 3 known flows between producers and consumers "
            f"to estimate its 2 parameters with a residual (got {home.size})"
        )
    design = np.column_stack([np.ones(home.size), home.astype(float)])
    offset = np.log(prod[o[usable]]) + np.log(cons[d[usable]])
    y = known["quantity"].to_numpy(float)[usable]
    with warnings.catch_warnings():
        # a single producer (e.g. Dy/Tb oxide in 2024) makes the known flows an exact fit; the
        # standard errors are then stored as not identified (see calibration/README.md)
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        res = sm.GLM(y, design, family=sm.families.Poisson(), offset=offset).fit(cov_type="HC1")
    params = pd.Series(res.params, index=["const", "home"])
    bse = pd.Series(res.bse, index=["const", "home"])
    with np.errstate(divide="ignore"):
        lp, lc = np.log(prod), np.log(cons)
        prior = np.exp(lp[:, None] + lc[None, :] + params["const"] + params["home"] * np.eye(N))
    prior = np.where((prod[:, None] > 0) & (cons[None, :] > 0), prior, 0.0)
    return GravityFit(list(regions), prior, params, bse, int(res.nobs), float(res.deviance))


def balance(
    prior: np.ndarray,
    production: np.ndarray,
    consumption: np.ndarray,
    known: np.ndarray | None = None,
    known_flows: np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 10_000,
) -> tuple[np.ndarray, int]:
    """RAS: scale the unknown cells of ``prior`` to the row and column targets.

    Known cells (``known`` mask) keep ``known_flows`` exactly; the remaining targets are met
    by the unknown cells. Totals must agree (Σ production = Σ consumption) and the known
    flows must fit inside them.

    Returns the balanced matrix and the iterations used.
    """
    prior = np.asarray(prior, float)
    N = prior.shape[0]
    known = np.zeros((N, N), bool) if known is None else np.asarray(known, bool)
    fixed = np.where(known, 0.0 if known_flows is None else known_flows, 0.0)
    rows = np.asarray(production, float) - fixed.sum(axis=1)
    cols = np.asarray(consumption, float) - fixed.sum(axis=0)
    if abs(rows.sum() - cols.sum()) > 1e-9 * max(1.0, abs(np.sum(production))):
        raise ValueError(
            f"production ({np.sum(production):g}) and consumption ({np.sum(consumption):g}) "
            "totals differ"
        )
    if (rows < -1e-9 * np.abs(production).max()).any() or (
        cols < -1e-9 * np.abs(consumption).max()
    ).any():
        raise ValueError("known flows exceed a production or consumption target")
    rows, cols = np.maximum(rows, 0.0), np.maximum(cols, 0.0)
    free = np.where(known, 0.0, prior)
    for r, what, target in ((free.sum(axis=1), "row", rows), (free.sum(axis=0), "column", cols)):
        bad = (r == 0) & (target > 0)
        if bad.any():
            raise ValueError(
                f"{what}s {np.flatnonzero(bad).tolist()} have a target but no free cell"
            )
    X = free.copy()
    for it in range(1, max_iter + 1):
        rs = X.sum(axis=1)
        X *= np.where(rs > 0, rows / np.where(rs > 0, rs, 1.0), 0.0)[:, None]
        cs = X.sum(axis=0)
        X *= np.where(cs > 0, cols / np.where(cs > 0, cs, 1.0), 0.0)[None, :]
        err = np.abs(X.sum(axis=1) - rows).max() / max(rows.max(), 1e-300)
        if err <= tol:
            return X + fixed, it
    log.warning("RAS stopped after %d iterations (relative row error %.3g)", max_iter, err)
    return X + fixed, max_iter


def build_matrix(
    regions: list[str],
    production: pd.Series,
    consumption: pd.Series,
    known: pd.DataFrame,
    tol: float = 1e-12,
) -> BalancedMatrix:
    """Gravity prior from the known flows, balanced to production and consumption.

    ``production`` and ``consumption`` are indexed by region (missing = 0). Known flows are
    kept exactly; the report carries the residuals on every target.
    """
    prod = production.reindex(regions).fillna(0.0).to_numpy(float)
    cons = consumption.reindex(regions).fillna(0.0).to_numpy(float)
    fit = gravity_prior(regions, known, prod, cons)
    N = len(regions)
    pos = {r: i for i, r in enumerate(regions)}
    mask = np.zeros((N, N), bool)
    fixed = np.zeros((N, N))
    for row in known.itertuples(index=False):
        o, d = pos[row.exporter], pos[row.importer]
        mask[o, d], fixed[o, d] = True, float(row.quantity)
    flows, iterations = balance(fit.prior, prod, cons, mask, fixed, tol=tol)
    return BalancedMatrix(
        regions=list(regions),
        flows=flows,
        known=mask,
        production=prod,
        consumption=cons,
        iterations=iterations,
        row_residual=flows.sum(axis=1) - prod,
        col_residual=flows.sum(axis=0) - cons,
        gravity=fit,
    )
