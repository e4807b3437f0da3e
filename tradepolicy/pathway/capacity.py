"""Capacity and the project pipeline of a pathway (docs/pathways.md).

The year loop reads a market's (or every stage's) capacity table and project pipeline into
arrays over the nodes of the stacked model (stage × region):

- a node's *normal output* in year t is its base output plus the new capacity online in t
  times the stage's base utilisation (output / capacity of the stage in the base year);
- the node's supply curve and the reach of its variety (market access) scale with normal
  output relative to base output;
- a region with no base output at a stage but a project there *enters*: it is given a
  latent base output of :data:`LATENT` times the stage's output (and, in a chain, a latent
  use of its inputs), too small to show, so that its variety and supply curve exist.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: a latent entrant's base output relative to its stage's world output
LATENT = 1e-6
#: project statuses whose capacity is committed (no decision left to take)
COMMITTED = ("operating", "construction", "fid")
#: a node at or above this utilisation keeps the isoelastic curve (the logistic curve
#: needs spare capacity)
MAX_UTILISATION = 0.995


def _point(row: pd.Series, name: str) -> float:
    """The point value of a project field, or the middle of its documented range."""
    v = row.get(name)
    if v is not None and np.isfinite(v):
        return float(v)
    lo, hi = row.get(f"{name}_low"), row.get(f"{name}_high")
    if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
        return 0.5 * (float(lo) + float(hi))
    return float("nan")


def _range(row: pd.Series, name: str, point: float) -> tuple[float, float]:
    lo, hi = row.get(f"{name}_low"), row.get(f"{name}_high")
    lo = float(lo) if lo is not None and np.isfinite(lo) else point
    hi = float(hi) if hi is not None and np.isfinite(hi) else point
    return min(lo, point), max(hi, point)


@dataclass
class Pipeline:
    """The projects of every stage as arrays (one entry per project).

    Money is in the market's currency (capex converted from millions), capacity in the
    stage's quantity unit per year.
    """

    name: np.ndarray  # object
    owner: np.ndarray  # object
    stage: np.ndarray  # object (stage market id)
    region: np.ndarray  # object
    node: np.ndarray  # int: stage index × regions + region index
    status: np.ndarray  # object
    committed: np.ndarray  # bool
    earliest_start: np.ndarray  # int
    capacity: np.ndarray  # (J,) and its (J, 2) low/high
    capacity_range: np.ndarray
    lead_time: np.ndarray
    lead_time_range: np.ndarray
    capex: np.ndarray
    capex_range: np.ndarray
    unit_cost: np.ndarray
    unit_cost_range: np.ndarray
    source: np.ndarray

    @property
    def J(self) -> int:
        return len(self.name)

    def draws(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` draws (n, J) of capacity, lead time, capex and unit cost, each triangular on
        its documented range with the mode at the point value."""
        out = {}
        for name in ("capacity", "lead_time", "capex", "unit_cost"):
            point = getattr(self, name)
            lo, hi = getattr(self, f"{name}_range").T
            a = np.empty((n, self.J))
            for j in range(self.J):
                a[:, j] = rng.triangular(lo[j], point[j], hi[j], n) if hi[j] > lo[j] else point[j]
            out[name] = a
        out["lead_time"] = np.round(out["lead_time"])
        return out


def read_pipeline(stages: list, regions: tuple[str, ...]) -> Pipeline:
    """The projects of ``stages`` (markets; node = stage index × regions + the region's
    position in ``regions``)."""
    n = len(regions)
    rows = []
    for s, m in enumerate(stages):
        table = m.projects
        if table is None:
            continue
        pos = {r: i for i, r in enumerate(m.regions)}
        for _, row in table.iterrows():
            region = row["region"]
            if region not in pos:
                raise ValueError(f"{m.id}: project {row['project']!r}: region {region!r} unknown")
            rows.append((s, m, row))
    at = {r: i for i, r in enumerate(regions)}

    def col(f) -> np.ndarray:
        return np.array([f(s, m, r) for s, m, r in rows], dtype=object)

    def num(name: str) -> tuple[np.ndarray, np.ndarray]:
        pts = np.array([_point(r, name) for _, _, r in rows], dtype=float)
        rng_ = np.array([_range(r, name, p) for (_, _, r), p in zip(rows, pts, strict=True)])
        return pts, rng_.reshape(-1, 2)

    cap, cap_r = num("capacity")
    lead, lead_r = num("lead_time")
    capex, capex_r = num("capex")
    cost, cost_r = num("unit_cost")
    status = col(lambda s, m, r: str(r["status"]))
    lead = np.round(np.where(np.isfinite(lead), lead, 0.0))  # whole years
    lead_r = np.where(np.isfinite(lead_r), lead_r, 0.0)
    return Pipeline(
        name=col(lambda s, m, r: str(r["project"])),
        owner=col(lambda s, m, r: str(r.get("owner", "") or "")),
        stage=col(lambda s, m, r: m.id),
        region=col(lambda s, m, r: str(r["region"])),
        node=np.array([s * n + at[r["region"]] for s, _, r in rows], dtype=int),
        status=status,
        committed=np.isin(status.astype(str), COMMITTED),
        # no earliest start given: as soon as the lead time allows
        earliest_start=np.array(
            [
                int(r["earliest_start"]) if np.isfinite(r["earliest_start"]) else 0
                for _, _, r in rows
            ],
            dtype=int,
        ),
        capacity=cap,
        capacity_range=cap_r,
        lead_time=lead,
        lead_time_range=lead_r,
        capex=capex * 1e6,
        capex_range=capex_r * 1e6,
        unit_cost=cost,
        unit_cost_range=cost_r,
        source=col(lambda s, m, r: str(r["source"])),
    )


def _owner(name: str) -> str:
    """An owner's name without a parenthesised note ("Aclara Resources (57% ...)")."""
    return str(name).split(" (")[0].strip().casefold()


def co_product_leaders(pipe: Pipeline) -> np.ndarray:
    """For each project, the project whose decision it follows (-1: its own): a row without
    capex of its own (capex 0: counted in another row of the same plant, as the pipeline's
    sources say) follows its owner's one project at another stage that has a capex."""
    out = np.full(pipe.J, -1, dtype=int)
    for j in range(pipe.J):
        if pipe.committed[j] or not (np.isfinite(pipe.capex[j]) and pipe.capex[j] == 0):
            continue
        same = [
            k
            for k in range(pipe.J)
            if k != j
            and _owner(pipe.owner[k]) == _owner(pipe.owner[j])
            and pipe.stage[k] != pipe.stage[j]
            and np.isfinite(pipe.capex[k])
            and pipe.capex[k] > 0
        ]
        if len(same) == 1:
            out[j] = same[0]
    return out


def existing_capacity(
    stages: list, regions: tuple[str, ...], S0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Base-year capacity per node (NS,) and whether the node's stage has capacity data.

    The capacity table's value where the stage has one; where that value is no more than the
    base output (a plant total not published, taken at least the output), the top of its
    documented range, so that output can still respond to price; else the base output."""
    n = len(regions)
    K = S0.copy()
    known = np.zeros(S0.shape, dtype=bool)
    for s, m in enumerate(stages):
        table = m.capacity
        if table is None:
            continue
        known[s * n : (s + 1) * n] = True
        for _, row in table.iterrows():
            if row["region"] not in regions:
                continue
            i = s * n + regions.index(row["region"])
            k = float(row["capacity"])
            high = row.get("high")
            if k <= S0[i] and high is not None and np.isfinite(high):
                k = float(high)
            K[i] = max(k, S0[i])
    return K, known


def utilisation(normal: np.ndarray, capacity: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Base utilisation of each node's supply curve, normal output / capacity, where the
    stage has capacity data and the node runs below capacity (< :data:`MAX_UTILISATION`);
    0 elsewhere (the isoelastic curve, no capacity bound)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.where(capacity > 0, normal / capacity, 0.0)
    return np.where(known & (u > 0) & (u < MAX_UTILISATION), u, 0.0)


def projected_index(
    stages: list, regions: tuple[str, ...], years: np.ndarray, pipe: Pipeline, S0: np.ndarray
) -> np.ndarray:
    """(years, NS) capacity of each node relative to the base year for the regions that have
    no project in the pipeline at that stage (docs/pathways.md): IEA's base-case output
    projection for the region (``supply_projections``, linear between its years, flat after
    the last), from the stage itself or else from the first stage of the chain that gives one;
    1 elsewhere (regions with projects grow through their projects)."""
    n = len(regions)
    out = np.ones((len(years), n * len(stages)))
    proj = None
    for m in stages:
        if m.supply_projections is not None and not m.supply_projections.empty:
            proj = m
            break
    if proj is None:
        return out
    for s, m in enumerate(stages):
        src = m if m.supply_projections is not None and not m.supply_projections.empty else proj
        table = src.supply_projections
        table = table[table["path"] == table["path"].iloc[0]]
        base_out = np.asarray(src.flows, float).sum(axis=1)
        has_project = set(pipe.region[pipe.stage == m.id]) if pipe.J else set()
        for region in m.regions:
            i = regions.index(region)
            if region in has_project or region not in src.regions:
                continue
            b = base_out[src.regions.index(region)]
            rows = table[table["region"] == region].sort_values("year")
            if b <= 0 or rows.empty:
                continue
            xs = np.concatenate([[years[0]], rows["year"].to_numpy(float)])
            ys = np.concatenate([[1.0], rows["quantity"].to_numpy(float) / b])
            out[:, s * n + i] = np.interp(years, xs, ys)
    return out


def stage_utilisation(S0: np.ndarray, K0: np.ndarray, n: int, n_stages: int) -> np.ndarray:
    """Each stage's base utilisation, output / capacity over its regions (NS,) — the share
    of new capacity that runs at base prices."""
    u = np.ones(S0.shape)
    for s in range(n_stages):
        sl = slice(s * n, (s + 1) * n)
        k = K0[sl].sum()
        u[sl] = min(1.0, S0[sl].sum() / k) if k > 0 else 1.0
    return u


class Same:
    """A key that is its object's identity (held, so its id is never another object's)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.obj is self.obj


def shared_pathway_market(market: Any) -> Any:
    """:func:`pathway_market` of ``market``, one object per market object (the last few
    kept): the sets of a market (e.g. each option solved with a set's header) share it, with
    what it computes once (its calibration, its stages')."""
    return _pathway_market_of(Same(market))


@functools.lru_cache(maxsize=16)
def _pathway_market_of(market: Same) -> Any:
    return pathway_market(market.obj)


def pathway_market(market: Any) -> Any:
    """``market`` (a market or a chain) with latent entrants (docs/pathways.md): every
    region with a pipeline project at a stage where it has no base output gets a latent
    output of :data:`LATENT` times the stage's output, sold like the stage's average
    supply (in proportion to each region's use); in a chain, a region whose makers (latent or
    not) use an input stage it buys none of gets the latent use they need, bought from the
    input stage's producers in proportion to their output. Other data are unchanged."""
    from tradepolicy.pathway.spec import stage_markets

    stages = stage_markets(market)
    flows = [np.array(m.flows, dtype=float) for m in stages]
    changed = False
    for s, m in enumerate(stages):
        table = m.projects
        if table is None or table.empty:
            continue
        out, use = flows[s].sum(axis=1), flows[s].sum(axis=0)
        for region in dict.fromkeys(table["region"]):
            i = m.regions.index(region)
            if out[i] <= 0 and use.sum() > 0:
                flows[s][i] += LATENT * out.sum() * use / use.sum()
                changed = True
    if len(stages) > 1:
        ids = [m.id for m in stages]
        for link in market.spec.link:
            i, o = ids.index(link.input), ids.index(link.output)
            up, down = stages[i], stages[o]
            made = flows[o].sum(axis=1)
            use_in = flows[i].sum(axis=0)
            supply = flows[i].sum(axis=1)
            for k, region in enumerate(down.regions):
                if made[k] <= 0 or region not in up.regions:
                    continue
                j = up.regions.index(region)
                if use_in[j] <= 0:
                    flows[i][:, j] += link.coefficient * made[k] * supply / supply.sum()
                    changed = True
    if not changed:
        return market
    new = [dataclasses.replace(m, flows=f) for m, f in zip(stages, flows, strict=True)]
    if len(stages) == 1 and getattr(market, "kind", "") != "chain":
        return new[0]
    return dataclasses.replace(market, stages=tuple(new))


__all__ = [
    "COMMITTED",
    "LATENT",
    "Pipeline",
    "co_product_leaders",
    "existing_capacity",
    "pathway_market",
    "projected_index",
    "read_pipeline",
    "shared_pathway_market",
    "stage_utilisation",
    "utilisation",
]
