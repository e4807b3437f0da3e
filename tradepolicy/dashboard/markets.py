"""Markets as the dashboard shows them: display units, region roles and a default club.

Nothing here is specific to one market: region lists, units and defaults are read from the
market file and from the shipped scenario sets that name the market.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import panel as pn

from tradepolicy import _paths
from tradepolicy import regions as region_table
from tradepolicy._validation import read_toml
from tradepolicy.market import Market, load_market
from tradepolicy.measures import PriceFloor
from tradepolicy.scenario import ScenarioSet, Target, load_scenarios
from tradepolicy.units import price_display

log = logging.getLogger(__name__)

#: dependency target lines drawn on every dependency chart: (share, label)
TARGET_LINES: tuple[tuple[float, str], ...] = (
    (0.60, "60% G7 2030 aim"),
    (0.50, "50% G7 ambition"),
)
DEFAULT_TARGET = 0.60


@dataclass(frozen=True)
class MarketInfo:
    """A market with what the dashboard needs to show it in the market's own units.

    Attributes
    ----------
    ref
        How to load it: a shipped market id or a path to a market TOML file.
    price_label, price_factor
        Display price unit (e.g. ``USD/kg``) and how many market price units one display unit
        is (``1000`` for USD/kg shown from a USD/t market): ``market = display * factor``.
    """

    ref: str
    market: Market
    price_label: str
    price_factor: float
    scenario_files: tuple[Path, ...] = ()
    target: float = DEFAULT_TARGET
    default_club: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    bloc: str | tuple[str, ...] = region_table.DEFAULT_GROUP

    def bloc_target(self, share: float) -> Target:
        """The dependence target of the market's shipped sets (their bloc: a group of the
        regions table or a list of codes) with ``share`` as its largest share."""
        if isinstance(self.bloc, str):
            return Target(group=self.bloc, max_share=share)
        return Target(bloc=list(self.bloc), max_share=share)

    @property
    def bloc_members(self) -> list[str]:
        """The market's regions that stand for the target bloc."""
        spec = self.bloc if isinstance(self.bloc, str) else list(self.bloc)
        return region_table.bloc_members(spec, self.regions)

    @property
    def bloc_name(self) -> str:
        """The bloc in words, without a group's list of partners ("the G7 and its partners")."""
        spec = self.bloc if isinstance(self.bloc, str) else list(self.bloc)
        return region_table.describe_bloc(spec).split(" (")[0]

    @property
    def id(self) -> str:
        return self.market.id

    @property
    def title(self) -> str:
        return f"{self.market.commodity} ({self.market.id}, {self.market.spec.base_year})"

    @property
    def regions(self) -> list[str]:
        return list(self.market.regions)

    @property
    def quantity_label(self) -> str:
        return f"{self.market.quantity_unit}/yr"

    @property
    def currency(self) -> str:
        return self.market.currency

    @property
    def money_label(self) -> str:
        return f"M {self.market.currency}/yr"

    @property
    def producers(self) -> list[str]:
        out = self.market.flows.sum(axis=1)
        return [r for r, v in zip(self.market.regions, out, strict=True) if v > 0]

    @property
    def consumers(self) -> list[str]:
        use = self.market.flows.sum(axis=0)
        return [r for r, v in zip(self.market.regions, use, strict=True) if v > 0]

    @property
    def importers(self) -> list[str]:
        """Regions that buy from abroad in the base data."""
        f = self.market.flows.copy()
        np.fill_diagonal(f, 0.0)
        return [r for r, v in zip(self.market.regions, f.sum(axis=0), strict=True) if v > 0]

    @property
    def base_price_display(self) -> float:
        """Median base producer price in the display unit."""
        return float(np.median(self.market.base_price)) / self.price_factor

    def to_market_price(self, display: float) -> float:
        return display * self.price_factor

    def to_display_price(self, market_price: float) -> float:
        return market_price / self.price_factor

    def top_producer(self) -> str:
        out = self.market.flows.sum(axis=1)
        return self.market.regions[int(np.argmax(out))]

    def base_use(self, regions: list[str]) -> float:
        use = self.market.flows.sum(axis=0)
        return float(sum(use[self.market.index(r)[0]] for r in regions))

    def base_output(self, regions: list[str]) -> float:
        out = self.market.flows.sum(axis=1)
        return float(sum(out[self.market.index(r)[0]] for r in regions))


def display_price_unit(market: Market) -> tuple[str, float]:
    """The unit prices are shown in and its factor (``market = display * factor``): the one
    rule of :func:`tradepolicy.units.price_display`, shared with the briefs."""
    shown = price_display(market.currency, market.quantity_unit, market.base_price)
    return shown.unit, shown.factor


def _sets_for(market_id: str) -> list[Path]:
    out = []
    for p in _paths.scenario_files():
        try:
            ref = str(read_toml(p).get("market", ""))
        except Exception:  # an unreadable file is reported when loaded, not here
            continue
        if ref == market_id or Path(ref).stem == market_id:
            out.append(p)
    return out


def load_set_quietly(path: Path | str) -> tuple[ScenarioSet, list[str]]:
    """Load a scenario set, returning its input warnings as plain text instead of warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sset = load_scenarios(path)
    return sset, [str(w.message) for w in caught]


def _bloc_from_sets(paths: list[Path]) -> str | tuple[str, ...]:
    """The bloc dependence is read on: that of the first shipped set giving a target."""
    for p in paths:
        try:
            sset, _ = load_set_quietly(p)
        except Exception:  # reported by _club_from_sets
            continue
        if sset.has_target:
            spec = sset.bloc_target.bloc_spec
            return spec if isinstance(spec, str) else tuple(spec)
    return region_table.DEFAULT_GROUP


def _club_from_sets(paths: list[Path]) -> tuple[tuple[str, ...], float | None]:
    """The members of the first shipped price floor (its exempt list) and the set's target."""
    for p in paths:
        try:
            sset, _ = load_set_quietly(p)
        except Exception as exc:  # a broken shipped file must not stop the dashboard
            log.warning("scenario set %s not loaded: %s", p, exc)
            continue
        for sc in sset.scenarios:
            for m in sc.measures:
                if isinstance(m, PriceFloor) and m.exempt:
                    return tuple(m.exempt), _share(sset)
        if sset.has_target:
            return (), _share(sset)
    return (), None


def _share(sset: ScenarioSet) -> float | None:
    """The set's largest share: its bloc target's, else its per-importer ``target_share``."""
    return sset.target.max_share if sset.target is not None else sset.target_share


def _default_club(market: Market) -> tuple[str, ...]:
    """Without a shipped floor: every region that imports, except the largest producer."""
    f = market.flows.copy()
    top = int(np.argmax(f.sum(axis=1)))
    np.fill_diagonal(f, 0.0)
    imports = f.sum(axis=0)
    return tuple(r for i, r in enumerate(market.regions) if imports[i] > 0 and i != top)


@pn.cache(max_items=64)
def market_info(ref: str) -> MarketInfo:
    """Load a market by shipped id or path and derive what the dashboard shows (cached)."""
    market = load_market(ref)
    label, factor = display_price_unit(market)
    sets = _sets_for(market.id)
    club, target = _club_from_sets(sets)
    if not club:
        club = _default_club(market)
    target = target if target is not None and math.isfinite(target) else DEFAULT_TARGET
    return MarketInfo(
        ref=ref,
        market=market,
        price_label=label,
        price_factor=factor,
        scenario_files=tuple(sets),
        target=float(target),
        default_club=tuple(r for r in club if r in market.regions),
        bloc=_bloc_from_sets(sets),
    )


def catalog(extra: list[str | Path] | tuple[str | Path, ...] = ()) -> dict[str, str]:
    """Market id -> reference (shipped id or file path) for the shipped markets and ``extra``
    market files; an extra file with a shipped id replaces the shipped one."""
    from tradepolicy.market import list_markets

    out = {mid: mid for mid in list_markets()}
    for path in extra:
        info = market_info(str(Path(path).resolve()))
        out[info.id] = info.ref
    return out


def market_of_results(path: str | Path) -> str:
    """The id of the (first) market solved in a results file, for opening the dashboard on it.

    Raises
    ------
    InputError
        When the file is not a tradepolicy results file, or its market is not shipped (the
        dashboard then needs the market file: ``--market path/to/market.toml``).
    """
    from tradepolicy.errors import InputError
    from tradepolicy.market import list_markets
    from tradepolicy.results.io import open_results

    ds = open_results(path)
    ids = [str(c) for c in ds["commodity"].values]
    shipped = list_markets()
    for mid in ids:
        if mid in shipped:
            return mid
    raise InputError(
        str(path),
        [
            (
                "commodity",
                f"market {', '.join(map(repr, ids))} is not shipped; open the dashboard with "
                "its market file: tradepolicy dashboard --market path/to/market.toml",
            )
        ],
    )


__all__ = [
    "DEFAULT_TARGET",
    "TARGET_LINES",
    "MarketInfo",
    "catalog",
    "display_price_unit",
    "load_set_quietly",
    "market_info",
    "market_of_results",
]
