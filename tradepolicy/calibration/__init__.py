"""Calibration: from public data to market files (balancing, estimation, draws)."""

from tradepolicy.calibration.balancing import (
    BalancedMatrix,
    GravityFit,
    balance,
    build_matrix,
    gravity_prior,
)
from tradepolicy.calibration.estimation import (
    Estimate,
    combine_with_prior,
    fit_elasticity,
    fit_price_process,
)

__all__ = [
    "BalancedMatrix",
    "Estimate",
    "GravityFit",
    "balance",
    "build_matrix",
    "combine_with_prior",
    "fit_elasticity",
    "fit_price_process",
    "gravity_prior",
]
