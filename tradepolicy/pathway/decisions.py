"""Investment decisions inside the year loop (docs/pathways.md, docs/investment.md).

Glue between the loop's arrays (rows = draw × scenario, projects) and the valuation of
:mod:`tradepolicy.pathway.investment`: the price process of each stage, the policy terms
each project faces in each scenario, and the public cash flows of the projects decided.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Hashable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from tradepolicy import _paths
from tradepolicy.pathway.investment import (
    Finance,
    PriceProcess,
    ProjectValues,
    Terms,
    project_terms,
)
from tradepolicy.pathway.investment import (
    value_projects as _value_projects,
)

log = logging.getLogger(__name__)

__all__ = [
    "POLICY_COSTS",
    "POLICY_FLOWS",
    "PRICE_SERIES",
    "Finance",
    "PriceProcess",
    "book_policy_flows",
    "calibrated_finance",
    "project_terms_batch",
    "stage_price_process",
    "value_open",
    "value_projects",
]

#: the public cash flows of investment policies booked by the loop, by payer region, in the
#: year a project is decided (present values at the public discount rate at that year)
POLICY_FLOWS = {
    "grant_paid": "capital grants paid for the projects decided in the year",
    "guarantee_expected_loss": "expected loss on the loan guarantees of the projects decided "
    "in the year (present value)",
    "guarantee_fees": "guarantee fees expected from the projects decided in the year "
    "(present value)",
    "guarantee_exposure": "debt guaranteed for the projects decided in the year (a contingent "
    "liability, not a cost)",
    "equity_outlay": "public equity invested in the projects decided in the year",
    "equity_returns": "expected returns to that public equity (present value)",
}
#: sign of each flow in the net budget cost (+ spending, − income, 0 not a cost)
POLICY_COSTS = {
    "grant_paid": 1.0,
    "guarantee_expected_loss": 1.0,
    "guarantee_fees": -1.0,
    "equity_outlay": 1.0,
    "equity_returns": -1.0,
}
#: ProjectValues field and payer kind of each flow
_FLOW_SOURCE = {
    "grant_paid": ("grant", "grant"),
    "guarantee_expected_loss": ("guarantee_loss", "guarantee"),
    "guarantee_fees": ("guarantee_fees", "guarantee"),
    "guarantee_exposure": ("guarantee_exposure", "guarantee"),
    "equity_outlay": ("equity_outlay", "equity"),
    "equity_returns": ("equity_returns", "equity"),
}

#: the estimated price process a stage market follows, where its own price series is not in
#: the calibration data: the stage named here (the same traded product, or its main input)
PRICE_SERIES = {
    "ree_ndpr_oxide": "ndpr_oxide",  # the same USGS NdPr oxide price series
    "ree_ndpr_metal": "ndpr_oxide",  # no public metal series: its main input's process
    "ree_dytb_oxide": "ndpr_oxide",  # no public Dy/Tb series in the data: NdPr oxide's
    "ree_ndfeb_magnet": "ndpr_oxide",  # no public magnet series: its main input's process
    "co_intermediate": "refined_cobalt",
    "co_refined": "refined_cobalt",
}
#: a random walk with this annual sd where no estimate exists (documented range 0.1–0.4)
FALLBACK = PriceProcess(phi=1.0, sigma=0.25, note="no price series: assumed random walk, sd 0.25")


def _estimate_path(market_id: str) -> Path | None:
    root = _paths.calibration_dir()
    if root is None:
        return None
    for mid in (market_id, PRICE_SERIES.get(market_id)):
        if mid is None:
            continue
        p = root / "estimates" / mid / "price_process.nc"
        if p.exists():
            return p
    return None


def calibrated_finance(market_id: str) -> Finance:
    """The investment parameters of a market or chain: the defaults, with those fitted to
    IEA's base case (``tradepolicy calibrate``; ``<estimates>/<id>/investment.nc``) where
    the fit exists."""
    root = _paths.calibration_dir()
    path = None if root is None else root / "estimates" / market_id / "investment.nc"
    if path is None or not path.exists():
        return Finance()
    return _finance_at(str(path.resolve()), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _finance_at(path: str, mtime_ns: int) -> Finance:
    """The fitted :class:`Finance` of the estimate file ``path`` (read once per
    modification time: a re-calibration is read again)."""
    import xarray as xr

    from tradepolicy.calibration.estimation import Estimate

    with xr.open_dataset(path) as ds:
        est = Estimate.from_dataset(ds.load())
    fields_ = {f.name for f in fields(Finance)}
    fitted: dict[str, Any] = {k: float(v) for k, v in est.params.items() if k in fields_}
    return replace(Finance(), **fitted)


def stage_price_process(market: Any) -> PriceProcess:
    """The price process of a stage market: its own statsmodels estimate, that of the
    market :data:`PRICE_SERIES` names, else :data:`FALLBACK` (logged)."""
    p = _estimate_path(market.id)
    if p is None:
        log.info("%s: %s", market.id, FALLBACK.note)
        return FALLBACK
    return _process_at(str(p.resolve()), p.stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _process_at(path: str, mtime_ns: int) -> PriceProcess:
    """The price process of the estimate file ``path`` (read once per modification time:
    a re-estimate is read again; the process is frozen, so sharing it is safe)."""
    return PriceProcess.from_estimate(path)


def _project_rows(pipe: Any) -> list[dict[str, Any]]:
    return [
        {
            "project": pipe.name[j],
            "region": pipe.region[j],
            "stage": pipe.stage[j],
            "capacity": float(pipe.capacity[j]),
            "capex": float(pipe.capex[j]),
        }
        for j in range(pipe.J)
    ]


#: the fields of :class:`Terms` and their values without a policy
_TERM_FIELDS = tuple(f.name for f in fields(Terms))
_NO_TERMS = np.array([float(getattr(Terms(), k)) for k in _TERM_FIELDS])


def project_terms_batch(
    measure_lists: list[list[Any]],
    pipe: Any,
    years: np.ndarray,
    D: int,
    memo: dict[Hashable, Any] | None = None,
) -> tuple[Terms, list[list[dict[str, dict[str, float]]]]]:
    """Terms (B, J) of every project in every row, the policies in force in the project's
    first operating year ``years`` (S, J) (what the investor is promised); and who pays
    each kind of policy, per scenario and project.

    ``memo``: a dict kept by the caller for calls with the same ``measure_lists`` and
    ``pipe`` (the years of a run): a project's terms depend on the year only through which
    measures are in force then, so they are found once per scenario, project and set of
    measures in force."""
    memo = {} if memo is None else memo
    rows = memo.get("rows")
    if rows is None:
        rows = memo["rows"] = _project_rows(pipe)
    S, J = len(measure_lists), pipe.J
    vals = np.empty((len(_TERM_FIELDS), S, J))
    vals[...] = _NO_TERMS[:, None, None]
    payers: list[list[dict[str, dict[str, float]]]] = []
    for s, measures in enumerate(measure_lists):
        if not measures:
            payers.append([{} for _ in range(J)])
            continue
        mine = []
        for j, row in enumerate(rows):
            year = int(years[s, j])
            key = (s, j, tuple(m.in_force(year) for m in measures))
            found = memo.get(key)
            if found is None:
                pol = project_terms(measures, row, year)
                found = memo[key] = (
                    np.array([float(getattr(pol.terms, k)) for k in _TERM_FIELDS]),
                    pol.payers,
                )
            vals[:, s, j] = found[0]
            mine.append(found[1])
        payers.append(mine)
    return Terms(**{k: np.tile(vals[i], (D, 1)) for i, k in enumerate(_TERM_FIELDS)}), payers


def value_projects(
    *,
    price: np.ndarray,
    processes: list[PriceProcess],
    stage_of: np.ndarray,
    capacity: np.ndarray,
    capex: np.ndarray,
    unit_cost: np.ndarray,
    lead_time: np.ndarray,
    terms: Terms,
    finance: Finance,
    public_rate: float,
    year: int,
) -> ProjectValues:
    """Value every project of every row at the year's producer prices ``price`` (B, J):
    the expected price stays at today's level (recursive-dynamic expectations) with the
    spread of the stage's estimated price process growing with the horizon."""
    H = int(np.max(lead_time, initial=0)) + finance.life + 1
    h = np.arange(H, dtype=float)
    by_stage = {k: processes[k].log_sd(h) for k in set(np.asarray(stage_of).tolist())}
    sd = np.stack([by_stage[k] for k in np.asarray(stage_of).tolist()])  # (..., H)
    fwd = np.asarray(price, dtype=float)[..., None]
    phi = float(np.mean([p.phi for p in processes])) if processes else 1.0
    return _value_projects(
        capacity=capacity,
        capex=capex,
        unit_cost=unit_cost,
        lead_time=lead_time,
        forward=fwd,
        log_sd=np.broadcast_to(sd, (*np.shape(price), H)),
        terms=terms,
        finance=finance,
        public_rate=public_rate,
        year=year,
        phi=phi,
    )


def value_open(ok: np.ndarray, **kw: Any) -> ProjectValues:
    """:func:`value_projects` of the (row, project) entries ``ok`` only (the projects still
    open in rows that solved); the other entries are NaN (probability 0)."""
    B, J = ok.shape
    rows, cols = np.nonzero(ok)
    if not rows.size:  # nothing open: every value NaN (probability 0)
        return ProjectValues(**{f.name: np.full((B, J), np.nan) for f in fields(ProjectValues)})
    stage_of = kw.pop("stage_of")
    terms: Terms = kw.pop("terms")

    def pick(a: Any) -> Any:
        a = np.asarray(a, dtype=float)
        return np.broadcast_to(a, (B, J))[rows, cols] if a.ndim else a

    sub = value_projects(
        price=pick(kw.pop("price")),
        stage_of=stage_of[cols],
        capacity=pick(kw.pop("capacity")),
        capex=pick(kw.pop("capex")),
        unit_cost=pick(kw.pop("unit_cost")),
        lead_time=pick(kw.pop("lead_time")),
        terms=Terms(**{f.name: pick(getattr(terms, f.name)) for f in fields(Terms)}),
        **kw,
    )
    out = {}
    for f in fields(ProjectValues):
        full = np.full((B, J), np.nan)
        full[rows, cols] = getattr(sub, f.name)
        out[f.name] = full
    return ProjectValues(**out)


def book_policy_flows(
    flows: dict[str, np.ndarray],
    newly: np.ndarray,
    values: ProjectValues,
    payers: list[list[dict[str, dict[str, float]]]],
    regions: tuple[str, ...],
    S: int,
) -> None:
    """Add the public cash flows of the projects decided this year (``newly``: (B, J) mass
    decided) to ``flows`` (B, regions), split among each policy's payers."""
    at = {r: i for i, r in enumerate(regions)}
    B, J = newly.shape
    for name, (field, kind) in _FLOW_SOURCE.items():
        amount = newly * np.nan_to_num(getattr(values, field))  # (B, J)
        if not amount.any():
            continue
        for s in range(S):
            rows = np.arange(s, B, S)
            for j in range(J):
                who = payers[s][j].get(kind)
                if not who:
                    continue
                for region, share in who.items():
                    flows[name][rows, at[region]] += share * amount[rows, j]
