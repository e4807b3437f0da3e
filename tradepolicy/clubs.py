"""Plurilateral clubs built from a member list (docs/measures.md).

A club is expressed with ordinary measures: zero tariffs among members, a common landed price
floor (or tariff) on non-members with members exempt, and shared payers and buyers for
subsidies, offtakes and stockpile releases. :func:`club_scenario` writes those measures.
"""

from __future__ import annotations

from typing import Literal

from tradepolicy.market import Market
from tradepolicy.measures import (
    Offtake,
    PriceFloor,
    PriceGapSubsidy,
    StockpileRelease,
    Tariff,
)
from tradepolicy.measures.base import Measure
from tradepolicy.measures.trade import _names
from tradepolicy.scenario import Scenario


def shares_by(market: Market, members: list[str], basis: str = "consumption") -> dict[str, float]:
    """Members' shares of their combined base ``consumption`` or ``production``."""
    flows = market.flows
    size = flows.sum(axis=0) if basis == "consumption" else flows.sum(axis=1)
    vals = size[market.index(members)]
    if vals.sum() <= 0:
        raise ValueError(f"members {members} have no base {basis}")
    return {m: float(v / vals.sum()) for m, v in zip(members, vals, strict=True) if v > 0}


def club_scenario(
    market: Market,
    name: str,
    members: list[str],
    *,
    floor: float | None = None,
    levy_cap: float | None = None,
    collector: Literal["importer_government", "exporters"] = "importer_government",
    outside_tariff: float | None = None,
    free_trade: bool = True,
    subsidy_strike: float | None = None,
    subsidy_kind: Literal["one_sided", "two_sided", "collar"] = "one_sided",
    upside_threshold: float | None = None,
    upside_share: float | None = None,
    payers: dict[str, float] | None = None,
    offtake_volume: float | None = None,
    offtake_price: float | None = None,
    stockpile_release: float | None = None,
    extra: list[Measure] | None = None,
    description: str = "",
) -> Scenario:
    """Build a scenario for a plurilateral club of ``members`` on ``market``.

    Parameters
    ----------
    market : Market
        The market the club trades in.
    name : str
        The scenario's name.
    members : list of str
        The members' region codes.
    floor, levy_cap, collector
        Common landed price floor on imports from non-members (members exempt).
    outside_tariff
        Common ad valorem tariff on non-members.
    free_trade
        Zero tariffs among members (replacing base rates).
    subsidy_strike, subsidy_kind, upside_threshold, upside_share
        A price-gap subsidy for members that produce.
    payers
        Shares in which members pay subsidies and buy offtakes (default: by base consumption).
    offtake_volume, offtake_price
        A joint offtake from member producers, stockpiled, bought by ``payers``.
    stockpile_release
        A coordinated release, split across members by base consumption.
    extra
        Further measures appended as they are.
    description : str, optional
        The scenario's description in plain words (default: one sentence built from the
        options).

    Returns
    -------
    Scenario
        A scenario holding the measures of the options given (free trade, floor, outside
        tariff, subsidy, offtake, one release per member) followed by ``extra``.

    Raises
    ------
    ValueError
        A member is not a region of ``market``, a subsidy or offtake has no producing member,
        or no option is given.
    """
    unknown = [m for m in members if m not in market.regions]
    if unknown:
        raise ValueError(f"members {unknown} are not regions of {market.id} ({market.regions})")
    outsiders = [r for r in market.regions if r not in members]
    share = payers or shares_by(market, members)
    producing = [m for m in members if market.flows.sum(axis=1)[market.index(m)[0]] > 0]
    importers = [m for m in members if market.flows.sum(axis=0)[market.index(m)[0]] > 0]
    measures: list[Measure] = []
    parts: list[str] = []
    if free_trade and len(members) > 1:
        measures.append(Tariff(importers=importers, exporters=members, rate=0.0))
        parts.append("free trade among members")
    if floor is not None:
        measures.append(
            PriceFloor(
                importers=importers,
                exempt=members,
                floor=floor,
                levy_cap=levy_cap,
                collector=collector,
            )
        )
        parts.append(f"a common landed floor of {floor:,.0f} {market.price_unit} on non-members")
    if outside_tariff is not None and outsiders:
        measures.append(Tariff(importers=importers, exporters=outsiders, rate=outside_tariff))
        parts.append(f"a common {outside_tariff:.0%} tariff on non-members")
    if subsidy_strike is not None:
        if not producing:
            raise ValueError("no member produces: a price-gap subsidy has no one to pay")
        measures.append(
            PriceGapSubsidy(
                producers=producing,
                strike=subsidy_strike,
                kind=subsidy_kind,
                upside_threshold=upside_threshold,
                upside_share=upside_share,
                payers=share,
            )
        )
        parts.append(f"a shared price-gap subsidy at {subsidy_strike:,.0f} {market.price_unit}")
    if offtake_volume is not None:
        if offtake_price is None or not producing:
            raise ValueError("a joint offtake needs offtake_price and a producing member")
        measures.append(
            Offtake(buyers=share, sellers=producing, volume=offtake_volume, price=offtake_price)
        )
        parts.append(f"a joint offtake of {offtake_volume:,.0f} {market.quantity_unit}/yr")
    if stockpile_release is not None:
        split = shares_by(market, importers)
        for m, s in split.items():
            if s * stockpile_release > 0:
                measures.append(StockpileRelease(region=m, quantity=s * stockpile_release))
        parts.append(f"a coordinated release of {stockpile_release:,.0f} {market.quantity_unit}")
    measures += list(extra or [])
    if not measures:
        raise ValueError("the club has no measure: give a floor, tariff, subsidy, offtake ...")
    text = description or f"Club of {_names(members)}: " + "; ".join(parts)
    return Scenario(name=name, description=text, measures=measures)


__all__ = ["club_scenario", "shares_by"]
