"""The negotiator dashboard: one :class:`DashboardApp` per browser session, and ``serve``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import panel as pn
import param
from panel.viewable import Viewer

from tradepolicy.dashboard.markets import catalog
from tradepolicy.dashboard.store import DashboardStore
from tradepolicy.dashboard.views import (
    BaselineView,
    ComparisonView,
    KpiView,
    PolicyEditor,
    ResultsView,
    SaveBar,
    StatusView,
)

log = logging.getLogger(__name__)

TITLE = "tradepolicy · negotiator dashboard"


def _on_exception(exc: BaseException) -> None:
    """Unexpected errors in callbacks: log the traceback, show the user one plain line."""
    log.error("dashboard callback failed", exc_info=exc)
    if pn.state.notifications is not None:
        pn.state.notifications.error(f"Something went wrong: {exc}", duration=8000)


class DashboardApp(Viewer):
    """The whole dashboard for one session: a store and the views that read it.

    Parameters
    ----------
    markets
        Extra market files (paths) shown besides the shipped markets.
    market
        Id of the market selected first (default: the first one).
    """

    store = param.ClassSelector(class_=DashboardStore)

    def __init__(
        self,
        markets: Sequence[str | Path] = (),
        market: str | None = None,
        **params: Any,
    ) -> None:
        if "store" not in params:
            params["store"] = DashboardStore(catalog(tuple(markets)), market)
        super().__init__(**params)
        s = self.store
        self.editor = PolicyEditor(store=s)
        self.status = StatusView(store=s)
        self.kpis = KpiView(store=s)
        self.save = SaveBar(store=s)
        self.baseline = BaselineView(store=s)
        self.results = ResultsView(store=s)
        self.comparison = ComparisonView(store=s)
        self.tabs = pn.Tabs(
            ("Baseline", self.baseline),
            ("Policy results", self.results),
            ("Compare scenarios", self.comparison),
            dynamic=True,
            sizing_mode="stretch_width",
            css_classes=["tp-tabs"],
        )
        self.main = pn.Column(
            self.status, self.kpis, self.save, self.tabs, sizing_mode="stretch_width"
        )

    def template(self) -> pn.template.BaseTemplate:
        """The app in a page template with the controls in the sidebar (for serving)."""
        # Bootstrap ships with Panel and loads no web font: the page works offline
        return pn.template.BootstrapTemplate(
            title=TITLE,
            sidebar=[self.editor],
            main=[self.main],
            sidebar_width=380,
            header_background="#1f4e79",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(pn.Column(self.editor, width=360), self.main, sizing_mode="stretch_width")


def create_app(markets: Sequence[str | Path] = (), market: str | None = None):
    """A new dashboard page for one session (nothing is shared with other sessions).

    In a served page, ``?market=<id>`` in the address selects the market shown first.
    """
    pn.extension(throttled=True, notifications=True)
    pn.config.exception_handler = _on_exception
    args = pn.state.session_args or {}
    if args.get("market"):
        market = args["market"][0].decode(errors="replace")
    return DashboardApp(markets=markets, market=market).template()


def serve(
    port: int = 5006,
    show: bool = True,
    address: str | None = None,
    markets: Sequence[str | Path] = (),
    market: str | None = None,
    **kwargs: Any,
):
    """Serve the dashboard (blocks until stopped unless ``threaded=True`` is passed).

    ``address`` is the interface to listen on (default: localhost only); when it is given,
    browsers may connect through it (``0.0.0.0`` accepts any host name).
    """
    if address:
        kwargs.setdefault("websocket_origin", "*" if address == "0.0.0.0" else f"{address}:{port}")
    extra = tuple(str(m) for m in markets)
    catalog(extra)  # fail early on a bad market file

    def page():  # pn.serve calls a plain function once per session
        return create_app(extra, market)

    return pn.serve(
        page,
        port=port,
        address=address,
        show=show,
        title=TITLE,
        **kwargs,
    )


__all__ = ["DashboardApp", "create_app", "serve"]
