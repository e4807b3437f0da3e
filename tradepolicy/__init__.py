"""tradepolicy: price floors and trade measures in critical-mineral markets.

A multi-region partial-equilibrium (Armington) model with batched complementarity solving,
welfare accounting and xarray results::

    import tradepolicy as tp
    sset = tp.load_scenarios("scenarios/ndpr_oxide.toml")
    ds = tp.solve(sset)
    ds.tp.summary()
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tradepolicy")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from tradepolicy import (
    _openmp,  # noqa: F401 - OpenMP threads sleep when idle
    measures,
    regions,
)
from tradepolicy.api import solve, solve_many
from tradepolicy.chain import Chain, load_chain
from tradepolicy.clubs import club_scenario
from tradepolicy.errors import InputError, SolverError, TradePolicyError
from tradepolicy.experiments import open_sweep, sweep
from tradepolicy.market import Market, list_chains, list_markets, load_market
from tradepolicy.pathway import solve_pathway
from tradepolicy.pathway.spec import PathwaySet
from tradepolicy.results import accessor as _accessor  # noqa: F401 - registers ds.tp
from tradepolicy.results.io import open_results, write_results
from tradepolicy.scenario import Scenario, ScenarioSet, load_scenarios
from tradepolicy.units import ureg

__all__ = [
    "Chain",
    "InputError",
    "Market",
    "PathwaySet",
    "Scenario",
    "ScenarioSet",
    "SolverError",
    "TradePolicyError",
    "__version__",
    "club_scenario",
    "list_chains",
    "list_markets",
    "load_chain",
    "load_market",
    "load_scenarios",
    "measures",
    "open_results",
    "open_sweep",
    "regions",
    "solve",
    "solve_many",
    "solve_pathway",
    "sweep",
    "ureg",
    "write_results",
]
