"""The live 2030 KPI update: cached estimate reads, and the KPIs before the one-year solve.

The speed work must not change a number: the live row equals a direct ``solve_pathway`` of
the same option, the cached price process and finance equal a fresh read, and on a served
page the one-year solve and the rest of the view follow in the next tick with the same
results as the synchronous path.
"""

from __future__ import annotations

import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

pn = pytest.importorskip("panel")

from panel.io.state import set_curdoc  # noqa: E402

from tradepolicy.calibration.estimation import Estimate  # noqa: E402
from tradepolicy.dashboard import DashboardStore, catalog  # noqa: E402
from tradepolicy.dashboard import answer as ans  # noqa: E402
from tradepolicy.pathway import decisions, solve_pathway  # noqa: E402
from tradepolicy.pathway.investment import PriceProcess  # noqa: E402

NUMERIC = ["dependence_2030", "points_removed", "pv_budget_cost_bloc", "pv_cost_to_buyers"]


def _estimate(name: str):
    root = decisions._paths.calibration_dir()
    if name == "price_process":
        found = sorted(root.glob("estimates/*/price_process.nc")) if root is not None else []
        p = found[0] if found else None
    else:
        p = None if root is None else root / "estimates" / "ree_magnets" / "investment.nc"
    if p is None or not p.exists():
        pytest.skip(f"no {name} estimate shipped")
    return p


def test_the_cached_price_process_equals_a_fresh_read_and_follows_the_file(tmp_path):
    src = _estimate("price_process")
    copy = tmp_path / "price_process.nc"
    shutil.copy(src, copy)
    fresh = PriceProcess.from_estimate(copy)
    first = decisions._process_at(str(copy), copy.stat().st_mtime_ns)
    assert first == fresh
    misses = decisions._process_at.cache_info().misses
    assert decisions._process_at(str(copy), copy.stat().st_mtime_ns) is first  # not re-read
    assert decisions._process_at.cache_info().misses == misses
    # a re-estimate (another modification time) is read again
    st = copy.stat()
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = decisions._process_at(str(copy), copy.stat().st_mtime_ns)
    assert decisions._process_at.cache_info().misses == misses + 1
    assert again == fresh


def test_the_cached_finance_equals_a_fresh_read(tmp_path):
    import xarray as xr

    src = _estimate("investment")
    with xr.open_dataset(src) as ds:
        est = Estimate.from_dataset(ds.load())
    got = decisions.calibrated_finance("ree_magnets")
    assert got is decisions.calibrated_finance("ree_magnets")  # read once
    for k, v in est.params.items():
        if hasattr(got, k):
            assert getattr(got, k) == float(v)


@pytest.fixture()
def view():
    store = DashboardStore(catalog(), "ree_magnets")
    return ans.AnswerView(store=store, draws=0)


def _direct(view) -> object:
    sc = view.store.current_scenario()
    opt = ans.live_option(sc, int(view.start_input.value))
    return solve_pathway(ans.with_scenarios(view.pset, [opt], risk=False)).tp.pathway_options()


def _same(a, b) -> None:
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-12, atol=0)


def test_an_edit_updates_the_live_row_as_a_direct_solve(view):
    cfg = view.store.policy
    before = view.kpis.object
    cfg.preset("floor")
    assert view.kpis.object != before
    _same(view.table_frame().loc[ans.LIVE, NUMERIC], _direct(view).loc[ans.LIVE, NUMERIC])
    cfg.set("floor", floor=1.2 * float(cfg.value("floor", "floor")))
    _same(view.table_frame().loc[ans.LIVE, NUMERIC], _direct(view).loc[ans.LIVE, NUMERIC])


class _Session:
    """A served page's document as :func:`tradepolicy.dashboard.store.later` sees it: the
    next-tick callbacks are kept to be run by the test."""

    # (Panel reads the request's arguments)
    session_context = SimpleNamespace(request=SimpleNamespace(arguments={}), id="t")

    def __init__(self) -> None:
        self.ticks: list = []

    def add_next_tick_callback(self, fn) -> None:
        self.ticks.append(fn)

    def run(self) -> None:
        while self.ticks:
            self.step()

    def step(self) -> None:
        with set_curdoc(self):
            self.ticks.pop(0)()


def test_served_the_live_kpis_come_before_the_one_year_solve(view, monkeypatch):
    from tradepolicy.dashboard import jobs

    monkeypatch.setattr(jobs, "_pool", None)  # no solve thread: the jobs run in the ticks
    store, cfg = view.store, view.store.policy
    doc = _Session()
    current, table = store.current, view.table.object
    with set_curdoc(doc):
        cfg.preset("floor")
        cfg.set("floor", floor=1.1 * float(cfg.value("floor", "floor")))
    # nothing is solved while the events are handled: the session's solves are queued
    # (tradepolicy.dashboard.jobs; no solve thread here: they run on the loop, next ticks)
    assert store.current is current
    assert view.table.object == table
    direct = _direct(view)
    kpi = ans.fmt_share(direct.loc[ans.LIVE, "dependence_2030"])
    assert kpi not in view.kpis.object
    # the KPIs of the last edit come first; the one-year solve and the table wait
    while kpi not in view.kpis.object:
        assert doc.ticks, "the live KPIs were not shown"
        doc.step()
    assert store.current is current
    assert view.table.object == table
    doc.run()
    # then the one-year solve runs once, for the settings as they are, and the table follows
    assert store.current is not current
    assert store.current.ds is not None
    assert view.table.object != table
    _same(view.table_frame().loc[ans.LIVE, NUMERIC], direct.loc[ans.LIVE, NUMERIC])
    sync = DashboardStore(catalog(), "ree_magnets")
    sync.policy.preset("floor")
    sync.policy.set("floor", floor=float(cfg.value("floor", "floor")))
    a, b = store.current.ds, sync.current.ds
    names = [v for v in a.data_vars if np.issubdtype(a[v].dtype, np.floating)]
    assert names
    for v in names:
        np.testing.assert_allclose(a[v].values, b[v].values, rtol=1e-12, atol=0, err_msg=v)
