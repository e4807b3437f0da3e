"""Calibration: from public data to market files (schemas, balancing, estimation, episodes).

The pipeline (``tradepolicy calibrate``) is in :mod:`tradepolicy.calibration.pipeline`;
the data layout is described in ``calibration/README.md``.
"""

from tradepolicy.calibration.balancing import (
    BalancedMatrix,
    GravityFit,
    balance,
    build_matrix,
    gravity_prior,
)
from tradepolicy.calibration.episodes import EpisodeFit, fit_episode
from tradepolicy.calibration.estimation import (
    Estimate,
    combine_with_prior,
    fit_elasticity,
    fit_price_process,
)
from tradepolicy.calibration.pipeline import (
    Calibrated,
    Parameter,
    calibrate_market,
    data_dir,
    load_elasticities,
    load_estimates,
)
from tradepolicy.calibration.schema import load_common_data, load_market_data, market_ids

__all__ = [
    "BalancedMatrix",
    "Calibrated",
    "EpisodeFit",
    "Estimate",
    "GravityFit",
    "Parameter",
    "balance",
    "build_matrix",
    "calibrate_market",
    "combine_with_prior",
    "data_dir",
    "fit_elasticity",
    "fit_episode",
    "fit_price_process",
    "gravity_prior",
    "load_common_data",
    "load_elasticities",
    "load_estimates",
    "load_market_data",
    "market_ids",
]
