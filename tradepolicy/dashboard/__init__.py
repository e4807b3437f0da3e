"""The negotiator dashboard (Panel): compare policy options live in the browser.

Serve it with ``tradepolicy dashboard`` (or ``panel serve dashboards/app.py``); in a notebook,
``DashboardApp()`` displays it. The logic is importable without a server:
:class:`DashboardStore` (state, solves, saved scenarios), :class:`PolicyConfig` (the measure
settings) and :mod:`tradepolicy.dashboard.indicators` (KPIs and tables from a Dataset).
Needs the ``dashboard`` extra (``pip install tradepolicy[dashboard]``).
"""

from tradepolicy.dashboard.app import DashboardApp, create_app, serve
from tradepolicy.dashboard.config import ConfigError, PolicyConfig
from tradepolicy.dashboard.markets import MarketInfo, catalog, market_info
from tradepolicy.dashboard.store import DashboardStore, Outcome, evaluate

__all__ = [
    "ConfigError",
    "DashboardApp",
    "DashboardStore",
    "MarketInfo",
    "Outcome",
    "PolicyConfig",
    "catalog",
    "create_app",
    "evaluate",
    "market_info",
    "serve",
]
