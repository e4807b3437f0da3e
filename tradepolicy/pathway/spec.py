"""Pathway sets: a scenario set run over years (docs/pathways.md).

A pathway set is a scenario file with ``years = [first, last]``; it may name a demand path
shipped with the market, a discount rate, a mode and investment parameters::

    market = "ree_magnets"
    years = [2024, 2035]
    demand_path = "iea_steps"
    discount_rate = 0.05
    target = { group = "g7_partners", max_share = 0.60, ambition = 0.50,
               stage = "ree_ndfeb_magnet", year = 2030 }

Every measure may carry ``start_year`` / ``end_year``. A set without ``years`` is a static
scenario set and behaves exactly as before.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, StringConstraints

from tradepolicy.errors import InputError, InputWarning
from tradepolicy.scenario import ScenarioSet, is_chain

__all__ = ["PathwaySet", "demand_index"]

#: longest horizon a pathway may run (years after the base year)
MAX_YEARS = 60
MODES = ("expected", "draws")

#: the pathway fields of a scenario file (added to the file's schema, in file order)
PATHWAY_FIELDS: dict[str, Any] = {
    "years": (Annotated[list[int], Field(min_length=2, max_length=2)] | None, None),
    "demand_path": (
        Annotated[str, StringConstraints(min_length=1, max_length=64)] | None,
        None,
    ),
    "discount_rate": (Annotated[float, Field(ge=0.0, lt=0.5, allow_inf_nan=False)] | None, None),
    "mode": (Literal["expected", "draws"] | None, None),
    "investment": (dict[str, float] | None, None),
    # random events (docs/risk.md), validated by tradepolicy.pathway.risk.parse_risk
    "risk": (Annotated[list[dict[str, Any]], Field(max_length=100)] | None, None),
}


def base_year(market: Any) -> int:
    """Return the base year of a market or of a chain's stages (the year their data describe)."""
    if is_chain(market):
        return int(market.stages[0].spec.base_year)
    return int(market.spec.base_year)


def stage_markets(market: Any) -> list[Any]:
    """Return a chain's stage markets, or the market itself in a list."""
    return list(market.stages) if is_chain(market) else [market]


@dataclass
class PathwaySet(ScenarioSet):
    """A scenario set over years: capacity, investment and demand move year by year.

    Built by :func:`~tradepolicy.load_scenarios` from a file with ``years``; solved by
    :func:`~tradepolicy.solve_pathway`. The parameters of :class:`~tradepolicy.ScenarioSet`
    (``market``, ``scenarios``, ``target_share``, ``title``, ``description``, ``path``,
    ``extra``, ``target``, ``horizon``) come first.

    Parameters
    ----------
    market, scenarios, target_share, title, description, path, extra, target, horizon
        As for :class:`~tradepolicy.ScenarioSet` (``horizon`` must stay ``"medium"``: event
        years use the short run on their own).
    years : tuple of (int, int)
        ``(first, last)``, in annual steps; the first is the market's base year.
    demand_path : str, optional
        A path of every stage's ``demand_paths`` table (None: no demand growth).
    discount_rate : float, optional
        The rate that discounts present values (default 0.05).
    mode : {"expected", "draws"}
        ``"expected"``: capacity weighted by the investment decisions' probabilities;
        ``"draws"``: each draw takes yes/no decisions.
    investment : dict of str to float, optional
        Overrides of the investment parameters (Investment under price risk in the guide).
    risk : list, optional
        Random disruption events (Disruption risk in the guide).

    Raises
    ------
    InputError
        The years, demand path, mode, investment parameters or risk events are invalid; the
        error names the file and the field.
    """

    years: tuple[int, int] = (0, 0)
    demand_path: str | None = None
    discount_rate: float = 0.05
    mode: str = "expected"
    investment: dict[str, float] = field(default_factory=dict)
    #: random events (:class:`tradepolicy.pathway.risk.RiskEvent`, docs/risk.md)
    risk: list[Any] = field(default_factory=list)

    is_pathway = True

    def __post_init__(self) -> None:
        """Validate the pathway fields, then the set as a :class:`ScenarioSet` does."""
        problems = self._pathway_problems()
        if problems:
            raise InputError(str(self.path or "<scenarios>"), problems)
        from tradepolicy.pathway.capacity import shared_pathway_market

        #: the market as its files give it; :attr:`market` adds the latent entrants
        self.data_market = self.market
        self.market = shared_pathway_market(self.market)
        super().__post_init__()

    @property
    def year_list(self) -> np.ndarray:
        """Every year of the pathway, first to last."""
        return np.arange(self.years[0], self.years[1] + 1)

    @property
    def target_year(self) -> int:
        """The year the target is read in (the target's, else the last year)."""
        t = self.target
        return int(t.year) if t is not None and t.year is not None else int(self.years[1])

    def _year_problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        last = self.years[1]
        for i, sc in enumerate(self.scenarios):
            for j, m in enumerate(sc.measures):
                y = m.start_year
                if y is not None and y > last:
                    warnings.warn(
                        f"{self.path or '<scenarios>'}: scenario[{i}].measure[{j}].start_year: "
                        f"{y} is after the pathway's last year {last}: the measure is never "
                        "in force",
                        InputWarning,
                        stacklevel=3,
                    )
        return out

    def _keep_advice(self, field: str, message: str) -> bool:
        """Drop advice on quantities against base-year output.

        It does not hold over years, where capacity grows (e.g. an offtake of a plant that is
        still being built).
        """
        return "base output" not in message

    def _pathway_problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        first, last = self.years
        base = base_year(self.market)
        if first != base:
            out.append(
                (
                    "years",
                    f"the pathway starts in the market's base year {base}, the year its data "
                    f"describe; got {first}",
                )
            )
        if not first < last <= first + MAX_YEARS:
            out.append(
                ("years", f"need first < last <= first + {MAX_YEARS}; got [{first}, {last}]")
            )
        if self.mode not in MODES:
            out.append(("mode", f"{self.mode!r} unknown (allowed: {', '.join(MODES)})"))
        t = self.target
        if t is not None and t.year is not None and not first <= t.year <= last:
            out.append(("target.year", f"{t.year} is outside the pathway's years {first}-{last}"))
        if self.demand_path is not None:
            lacking = [
                m.id
                for m in stage_markets(self.market)
                if m.demand_paths is None or self.demand_path not in set(m.demand_paths["path"])
            ]
            if len(lacking) == len(stage_markets(self.market)):
                have = sorted(
                    {
                        p
                        for m in stage_markets(self.market)
                        if m.demand_paths is not None
                        for p in m.demand_paths["path"]
                    }
                )
                out.append(
                    (
                        "demand_path",
                        f"no stage of {self.market.id!r} has a demand path {self.demand_path!r} "
                        f"(allowed: {', '.join(have) or 'none shipped'})",
                    )
                )
            elif lacking:
                warnings.warn(
                    f"{self.path or '<scenarios>'}: demand_path: {', '.join(lacking)} "
                    f"has no path {self.demand_path!r}; its demand does not grow",
                    InputWarning,
                    stacklevel=3,
                )
        out += self._risk_problems()
        from tradepolicy.pathway import investment

        known = set(investment.Finance.__dataclass_fields__)
        for k in self.investment:
            if k not in known:
                out.append(
                    (
                        f"investment.{k}",
                        f"unknown investment parameter (allowed: {', '.join(sorted(known))})",
                    )
                )
        return out

    def _risk_problems(self) -> list[tuple[str, str]]:
        """Check the risk events and stockpile policies.

        A stockpile policy's stage (required in a chain of several stages), holders that
        consume there and build years within the pathway; event names unique.
        """
        from tradepolicy.measures.stocks import StockpilePolicy

        out: list[tuple[str, str]] = []
        first, last = self.years
        stages = stage_markets(self.market)
        ids = [m.id for m in stages]
        for i, sc in enumerate(self.scenarios):
            for j, m in enumerate(sc.measures):
                if not isinstance(m, StockpilePolicy):
                    continue
                where = f"scenario[{i}].measure[{j}]"
                if m.stage is None and len(stages) > 1:
                    out.append(
                        (
                            f"{where}.stage",
                            f"required in chain {self.market.id!r}: which stage is stocked "
                            f"(allowed: {', '.join(map(repr, ids))})",
                        )
                    )
                    continue
                market = stages[ids.index(m.stage)] if m.stage in ids else stages[0]
                use = market.flows.sum(axis=0)
                for r in m.regions:
                    if r in market.regions and use[market.index(r)[0]] <= 0:
                        out.append(
                            (
                                f"{where}.regions",
                                f"{r} consumes nothing at the {market.id} stage in the base "
                                "data: its target days of cover are zero",
                            )
                        )
                for r in (*m.regions, *m.payers):
                    if r not in market.regions:
                        out.append(
                            (
                                f"{where}.regions",
                                f"unknown region {r!r} at the {market.id} stage (allowed: "
                                f"{', '.join(market.regions)})",
                            )
                        )
                b0, b1 = m.build_years
                if not first <= b0 <= b1 <= last:
                    out.append(
                        (
                            f"{where}.build_years",
                            f"[{b0}, {b1}] must lie within the pathway's years {first}-{last}",
                        )
                    )
        if self.risk:  # event years use the short run: the market must carry it
            try:
                self.market.at_horizon("short")  # (the data market, before the entrants)
            except InputError as exc:
                why = str(exc).replace("\n", " ")
                out.append(("risk", f"event years use the short-run elasticities: {why}"))
        names = [ev.name for ev in self.risk]
        for k, n in enumerate(names):
            if n in names[:k]:
                out.append((f"risk[{k}].name", f"duplicate event name {n!r}"))
        return out

    def _head(self) -> dict[str, Any]:
        d = super()._head()
        d["years"] = list(self.years)
        if self.demand_path is not None:
            d["demand_path"] = self.demand_path
        d["discount_rate"] = self.discount_rate
        d["mode"] = self.mode
        if self.investment:
            d["investment"] = dict(self.investment)
        if self.risk:
            d["risk"] = [ev.to_dict() for ev in self.risk]
        return d


def pathway_set_from_spec(spec: Any, path: Any, common: dict[str, Any]) -> PathwaySet | None:
    """Return the pathway set of a validated scenario file, or None for a static set.

    Pathway fields without ``years`` are an error.
    """
    if spec.years is None:
        extra = [
            k
            for k in ("demand_path", "discount_rate", "mode", "investment", "risk")
            if getattr(spec, k) is not None
        ]
        if extra:
            raise InputError(
                str(path),
                [
                    (
                        k,
                        "only a pathway set takes this; give `years = [first, last]` (the "
                        "market's base year and the last year)",
                    )
                    for k in extra
                ],
            )
        return None
    years = (int(spec.years[0]), int(spec.years[1]))
    risk = []
    if spec.risk:
        from tradepolicy.pathway.risk import parse_risk

        risk = parse_risk(spec.risk, str(path), common["market"], years)
    return PathwaySet(
        **common,
        risk=risk,
        years=years,
        demand_path=spec.demand_path,
        discount_rate=0.05 if spec.discount_rate is None else float(spec.discount_rate),
        mode=spec.mode or "expected",
        investment=dict(spec.investment or {}),
    )


def demand_index(market: Any, path: str | None, years: Any) -> np.ndarray:
    """Return demand relative to the base year on ``path`` for each year.

    Linear between the table's years, flat after its last; ones without a path or table.
    """
    table = getattr(market, "demand_paths", None)
    if path is None or table is None:
        return np.ones(len(years))
    rows = pd.DataFrame(table)
    rows = rows[rows["path"] == path].sort_values("year")
    if rows.empty:
        return np.ones(len(years))
    return np.interp(years, rows["year"].to_numpy(float), rows["index"].to_numpy(float))
