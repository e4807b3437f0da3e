"""Markets as the dashboard shows them: display units, region roles and a default club.

Nothing here is specific to one market: region lists, units and defaults are read from the
market file and from the shipped scenario sets that name the market. A value chain
(docs/chains.md) is shown one stage at a time: its :class:`MarketInfo` describes the stage
market shown (``market``) and keeps the whole chain (``chain``) for solving.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tradepolicy import _paths
from tradepolicy import regions as region_table
from tradepolicy._validation import read_toml
from tradepolicy.chain import Chain
from tradepolicy.dashboard.caching import WARNINGS_LOCK, memoize
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
    chain: Chain | None = None
    target_stage: str = ""

    def bloc_target(self, share: float) -> Target:
        """The dependence target of the market's shipped sets (their bloc: a group of the
        regions table or a list of codes) with ``share`` as its largest share (read at
        :attr:`target_stage` in a chain)."""
        if isinstance(self.bloc, str):
            return Target(group=self.bloc, max_share=share, stage=self.target_stage)
        return Target(bloc=list(self.bloc), max_share=share, stage=self.target_stage)

    @property
    def model(self) -> Market | Chain:
        """What is solved: the chain, or the market."""
        return self.chain if self.chain is not None else self.market

    @property
    def stage(self) -> str | None:
        """The stage shown (a stage market id) in a chain; None for a market."""
        return self.market.id if self.chain is not None else None

    @property
    def stages(self) -> dict[str, str]:
        """Stage id -> its name in words (the stage market's commodity), upstream first;
        empty for a market."""
        if self.chain is None:
            return {}
        return {m.id: stage_name(m) for m in self.chain.stages}

    def for_stage(self, stage: str | None) -> MarketInfo:
        """The same chain shown at ``stage`` (a market: itself)."""
        if self.chain is None or stage is None or stage == self.stage:
            return self
        return market_info(self.ref, stage)

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
        """The market's id, or the chain's (never a stage's)."""
        return self.model.id

    @property
    def title(self) -> str:
        if self.chain is not None:
            return (
                f"{' → '.join(self.stages.values())} "
                f"({self.chain.id} chain, {self.market.spec.base_year})"
            )
        return f"{self.market.commodity} ({self.market.id}, {self.market.spec.base_year})"

    @property
    def stage_title(self) -> str:
        """The market shown in words: its title, or the stage of the chain with its name."""
        if self.chain is None:
            return self.title
        n = self.chain.stage_index(self.market.id) + 1
        return (
            f"{stage_name(self.market)}: stage {n} of {len(self.chain.stages)} of the "
            f"{self.chain.id} chain ({self.market.spec.base_year})"
        )

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


def display_price_unit(market: Market | Chain) -> tuple[str, float]:
    """The unit prices are shown in and its factor (``market = display * factor``): the one
    rule of :func:`tradepolicy.units.price_display`, shared with the briefs. A chain has one
    unit for every stage (read on all its base prices), so a setting keeps its meaning when it
    moves to another stage."""
    if isinstance(market, Chain):
        first = market.stages[0]
        prices = np.concatenate([m.base_price for m in market.stages])
        shown = price_display(first.currency, first.quantity_unit, prices)
    else:
        shown = price_display(market.currency, market.quantity_unit, market.base_price)
    return shown.unit, shown.factor


def stage_name(market: Market) -> str:
    """A stage in words: its commodity without the "(chain stage)" tag of the stage files."""
    return market.commodity.replace("(chain stage)", "").strip()


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
    with WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
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


def _target_stage(chain: Chain, paths: list[Path]) -> str:
    """The stage the chain's dependence target is read at: that of the first shipped set
    naming one, else the last stage (docs/chains.md)."""
    for p in paths:
        try:
            sset, _ = load_set_quietly(p)
        except Exception:  # reported by _club_from_sets
            continue
        if sset.target is not None and sset.target.stage in chain.stage_ids:
            return sset.target.stage
    return chain.stage_ids[-1]


@memoize(max_items=64)
def market_info(ref: str, stage: str | None = None) -> MarketInfo:
    """Load a market or a chain by shipped id or path and derive what the dashboard shows
    (cached process-wide, thread-safe: :func:`~tradepolicy.dashboard.caching.memoize`; never
    modify the result). A chain is shown at ``stage`` (default: the stage its target is read
    at); a market ignores ``stage``."""
    if stage is not None:  # another stage of the same (loaded once) chain
        whole = market_info(ref)
        if whole.chain is None or stage == whole.stage:
            return whole
        market = whole.chain.stage(stage)
        sets = list(whole.scenario_files)
        club = _club_from_sets(sets)[0] or _default_club(market)
        return replace(
            whole, market=market, default_club=tuple(r for r in club if r in market.regions)
        )
    model = load_market(ref)
    label, factor = display_price_unit(model)
    sets = _sets_for(model.id)
    chain: Chain | None = None
    target_stage = ""
    if isinstance(model, Chain):  # shown first at its target stage
        chain = model
        target_stage = _target_stage(chain, sets)
        market = chain.stage(target_stage)
    else:
        market = model
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
        chain=chain,
        target_stage=target_stage,
    )


def catalog(extra: list[str | Path] | tuple[str | Path, ...] = ()) -> dict[str, str]:
    """Market id -> reference (shipped id or file path) for the shipped markets, the shipped
    value chains and ``extra`` market or chain files; an extra file with a shipped id
    replaces the shipped one."""
    from tradepolicy.market import list_chains, list_markets

    out = {mid: mid for mid in (*list_markets(), *list_chains())}
    for path in extra:
        info = market_info(str(Path(path).resolve()))
        out[info.id] = info.ref
    return out


def market_of_results(path: str | Path) -> str:
    """The id of the (first) market or the chain solved in a results file, for opening the
    dashboard on it.

    Raises
    ------
    InputError
        When the file is not a tradepolicy results file, or its market is not shipped (the
        dashboard then needs the market file: ``--market path/to/market.toml``).
    """
    from tradepolicy.errors import InputError
    from tradepolicy.market import list_chains, list_markets
    from tradepolicy.results.io import open_results

    ds = open_results(path)
    if "stage" in ds.dims:  # a value chain's results
        ids = [str(ds.attrs.get("chain", ""))]
        shipped = list_chains()
        field_name = "chain"
    else:
        ids = [str(c) for c in ds["commodity"].values]
        shipped = list_markets()
        field_name = "commodity"
    for mid in ids:
        if mid in shipped:
            return mid
    raise InputError(
        str(path),
        [
            (
                field_name,
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
    "stage_name",
]
