"""The negotiator's policy settings (widget state) and how they become measures.

:class:`PolicyConfig` holds every setting in the market's display units (prices e.g. in
USD/kg, quantities in t/yr, rates and shares in percent). :meth:`PolicyConfig.measures` turns
the settings into :mod:`tradepolicy.measures` objects in the market's own units, and
:func:`scenario_key` gives a hashable scalar key for caching solves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import param
from pydantic import ValidationError

from tradepolicy.clubs import shares_by
from tradepolicy.dashboard.markets import MarketInfo
from tradepolicy.measures import (
    DiversificationCap,
    ExportQuota,
    ImportQuota,
    Measure,
    Offtake,
    PriceFloor,
    PriceGapSubsidy,
    StockpileRelease,
    SupplyShock,
    Tariff,
)
from tradepolicy.scenario import Scenario

#: measure groups: (switch parameter, plain name shown to the user)
GROUPS: tuple[tuple[str, str], ...] = (
    ("free_trade", "Free trade among members"),
    ("floor_on", "Price floor"),
    ("tariff_on", "Tariff on non-members"),
    ("subsidy_on", "Price-gap subsidy"),
    ("restrict_on", "Export ban or quota"),
    ("quota_on", "Import quota"),
    ("offtake_on", "Offtake"),
    ("release_on", "Stockpile release"),
    ("cap_on", "Diversification cap"),
    ("shock_on", "Supply shock"),
)

COLLECTORS = {
    "Variable levy (importing government)": "importer_government",
    "Undertaking (exporters keep the margin)": "exporters",
}
SUBSIDY_KINDS = {
    "One-sided (pays the gap below the strike)": "one_sided",
    "Two-sided (pays below, claws back above)": "two_sided",
    "Collar (claws back a share above a threshold)": "collar",
}
PAYERS = {
    "Each producer's own government": "own",
    "Club members, by base consumption": "club",
}
DISPOSITIONS = {"Stockpiled (off the market)": "stockpile", "Resold on the market": "resell"}
BASES = {"Share of consumption": "consumption", "Share of imports": "imports"}


def stage_param(switch: str) -> str:
    """The setting holding the chain stage a measure group acts on (``floor_on`` ->
    ``floor_stage``)."""
    return switch.removesuffix("_on") + "_stage"


#: measure groups that act on one stage of a chain (free trade among members covers every stage)
STAGED: tuple[str, ...] = tuple(sw for sw, _ in GROUPS if sw != "free_trade")


def _stage_selector() -> param.Selector:
    return param.Selector(
        default=None, objects=[], allow_None=True, doc="Stage of the chain it acts on"
    )


class ConfigError(ValueError):
    """The settings cannot make a scenario; ``problems`` are plain sentences for the user."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _nice(x: float) -> float:
    """``x`` rounded to two significant digits (defaults that read well)."""
    if x <= 0:
        return 0.0
    return float(f"{x:.2g}")


class PolicyConfig(param.Parameterized):
    """Every measure the dashboard offers, in display units; one instance per session."""

    members = param.ListSelector(default=[], objects=[], doc="Club members")
    free_trade = param.Boolean(True, doc="Zero tariffs among club members")

    floor_on = param.Boolean(False)
    floor = param.Number(110.0, bounds=(0, None), softbounds=(0, 300), doc="Landed floor")
    levy_cap = param.Number(0.0, bounds=(0, None), softbounds=(0, 300), doc="0 = no cap")
    collector: param.Selector[str] = param.Selector(
        default="importer_government", objects=COLLECTORS
    )

    tariff_on = param.Boolean(False)
    tariff_rate = param.Number(25.0, bounds=(0, 1000), softbounds=(0, 100), doc="percent")

    subsidy_on = param.Boolean(False)
    subsidy_producers = param.ListSelector(default=[], objects=[])
    strike = param.Number(110.0, bounds=(0, None), softbounds=(0, 300))
    subsidy_kind: param.Selector[str] = param.Selector(default="one_sided", objects=SUBSIDY_KINDS)
    upside_threshold = param.Number(150.0, bounds=(0, None), softbounds=(0, 400))
    upside_share = param.Number(30.0, bounds=(0, 100), doc="percent")
    subsidy_payers: param.Selector[str] = param.Selector(default="own", objects=PAYERS)

    restrict_on = param.Boolean(False)
    restrict_exporter: param.Selector[str | None] = param.Selector(
        default=None, objects=[], allow_None=True
    )
    restrict_destinations = param.ListSelector(default=[], objects=[])
    restrict_quantity = param.Number(0.0, bounds=(0, None), softbounds=(0, 1000))

    quota_on = param.Boolean(False)
    quota_importers = param.ListSelector(default=[], objects=[])
    quota_exporters = param.ListSelector(default=[], objects=[])
    quota_quantity = param.Number(0.0, bounds=(0, None), softbounds=(0, 1000))

    offtake_on = param.Boolean(False)
    offtake_sellers = param.ListSelector(default=[], objects=[])
    offtake_buyers = param.ListSelector(default=[], objects=[])
    offtake_volume = param.Number(100.0, bounds=(0, None), softbounds=(0, 1000))
    offtake_price = param.Number(110.0, bounds=(0, None), softbounds=(0, 300))
    offtake_disposition: param.Selector[str] = param.Selector(
        default="stockpile", objects=DISPOSITIONS
    )

    release_on = param.Boolean(False)
    release_regions = param.ListSelector(default=[], objects=[])
    release_quantity = param.Number(100.0, bounds=(0, None), softbounds=(0, 1000))

    cap_on = param.Boolean(False)
    cap_importers = param.ListSelector(default=[], objects=[])
    cap_share = param.Number(60.0, bounds=(0, 100), doc="percent")
    cap_basis: param.Selector[str] = param.Selector(default="consumption", objects=BASES)

    shock_on = param.Boolean(False)
    shock_regions = param.ListSelector(default=[], objects=[])
    shock_fraction = param.Number(20.0, bounds=(0, 99.9), doc="percent of capacity lost")

    # the stage of a value chain each measure acts on (None on a single market)
    floor_stage: param.Selector[str | None] = _stage_selector()
    tariff_stage: param.Selector[str | None] = _stage_selector()
    subsidy_stage: param.Selector[str | None] = _stage_selector()
    restrict_stage: param.Selector[str | None] = _stage_selector()
    quota_stage: param.Selector[str | None] = _stage_selector()
    offtake_stage: param.Selector[str | None] = _stage_selector()
    release_stage: param.Selector[str | None] = _stage_selector()
    cap_stage: param.Selector[str | None] = _stage_selector()
    shock_stage: param.Selector[str | None] = _stage_selector()

    _REGION_LISTS = (
        "members",
        "subsidy_producers",
        "restrict_destinations",
        "quota_importers",
        "quota_exporters",
        "offtake_sellers",
        "offtake_buyers",
        "release_regions",
        "cap_importers",
        "shock_regions",
    )

    # -- market defaults --------------------------------------------------------------------
    def apply_market(self, info: MarketInfo) -> None:
        """Region choices and defaults for ``info`` (every measure switched off).

        Three steps in this order, each dispatched before the next: empty the region
        choices, then change the regions offered, then set the new defaults. Widgets linked
        to these parameters (``from_param``) drop any value that is not among their options
        when the options change; were old values and new options changed together, a region
        of the previous market missing from the new one (or one new region) could be dropped
        from the settings while the widget still shows it. Never call this inside
        ``param.parameterized.batch_call_watchers``, which reorders the three steps.
        """
        # a chain: regions of every stage, sliders wide enough for every stage; the defaults
        # below are those of the stage shown when it opens (its target stage)
        regions = list(info.chain.regions) if info.chain is not None else info.regions
        stage_infos = [info.for_stage(sid) for sid in info.stages] or [info]
        stages = list(info.stages)
        self.param.update(
            **{name: [] for name in self._REGION_LISTS},
            restrict_exporter=None,
            **{switch: False for switch, _ in GROUPS if switch != "free_trade"},
            **{stage_param(sw): None for sw in STAGED},
        )
        for name in self._REGION_LISTS:
            self.param[name].objects = list(regions)
        self.param.restrict_exporter.objects = list(regions)
        for sw in STAGED:
            self.param[stage_param(sw)].objects = stages
        top_price = max(i.base_price_display for i in stage_infos)
        for name in ("floor", "levy_cap", "strike", "offtake_price"):
            self.param[name].softbounds = (0.0, _nice(4 * top_price))
        self.param.upside_threshold.softbounds = (0.0, _nice(6 * top_price))
        price = info.base_price_display
        use = max(float(i.market.flows.sum(axis=0).max()) for i in stage_infos)
        out = max(float(i.market.flows.sum(axis=1).max()) for i in stage_infos)
        qmax = _nice(max(use, out))
        for name in ("restrict_quantity", "quota_quantity", "offtake_volume", "release_quantity"):
            self.param[name].softbounds = (0.0, qmax)

        club = [r for r in info.default_club if r in regions]
        club_buyers = [r for r in club if r in info.consumers]
        club_importers = [r for r in club if r in info.importers]
        club_producers = [r for r in club if r in info.producers]
        top = info.top_producer()
        outsiders = [r for r in regions if r not in club]
        flows = info.market.flows
        idx = info.market.index
        quota_base = (
            float(
                flows[idx([r for r in outsiders if r in info.producers])][
                    :, idx(club_importers)
                ].sum()
            )
            if club_importers and outsiders
            else 0.0
        )
        sellers = club_producers or [top]
        t = info.market.index(top)[0]
        # defaults that have an equilibrium: a ban only on members with another supplier, a
        # cap only where at least two origins supply (zero base flows stay zero)
        other = flows.sum(axis=0) - flows[t]
        ban_dest = [r for r in club if r != top and r in info.consumers and other[idx(r)[0]] > 0]
        sources = (flows > 0).sum(axis=0)
        cap_importers = [r for r in club_importers if sources[idx(r)[0]] >= 2]
        floor = _nice(2 * price)
        values: dict[str, Any] = {
            "members": club,
            "free_trade": True,
            "floor": floor,
            "levy_cap": 0.0,
            "collector": "importer_government",
            "tariff_rate": 25.0,
            "subsidy_producers": club_producers,
            "strike": floor,
            "subsidy_kind": "one_sided",
            "upside_threshold": _nice(3 * price),
            "upside_share": 30.0,
            "subsidy_payers": "own",
            "restrict_exporter": top,
            "restrict_destinations": ban_dest,
            "restrict_quantity": 0.0,
            "quota_importers": club_importers,
            "quota_exporters": [r for r in outsiders if r in info.producers],
            "quota_quantity": _nice(0.5 * quota_base),
            "offtake_sellers": sellers,
            "offtake_buyers": club_buyers or [r for r in info.consumers if r in sellers][:1],
            "offtake_volume": _nice(0.5 * info.base_output(sellers)),
            "offtake_price": floor,
            "offtake_disposition": "stockpile",
            "release_regions": club_importers,
            "release_quantity": _nice(info.base_use(club_importers) * 60 / 365),
            "cap_importers": cap_importers,
            "cap_share": 60.0,
            "cap_basis": "consumption",
            "shock_regions": [top],
            "shock_fraction": 20.0,
        }
        values.update({switch: False for switch, _ in GROUPS if switch != "free_trade"})
        values.update({stage_param(sw): info.stage for sw in STAGED})
        self.param.update(**values)

    # -- snapshot ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Every setting as plain JSON-able values."""
        return {k: v for k, v in self.param.values().items() if k != "name"}

    def restore(self, values: dict[str, Any]) -> None:
        """Set the settings saved by :meth:`snapshot` (unknown keys ignored)."""
        known = {k: v for k, v in values.items() if k in self.param and k != "name"}
        self.param.update(**known)

    def active(self) -> list[str]:
        """Plain names of the measure groups switched on."""
        return [label for switch, label in GROUPS if getattr(self, switch)]

    # -- measures ---------------------------------------------------------------------------
    def measures(self, info: MarketInfo) -> list[Measure]:
        """The measures of the current settings in the market's units.

        Raises
        ------
        ConfigError
            With one plain sentence per problem (e.g. a floor with no importing member).
        """
        problems: list[str] = []
        out: list[Measure] = []
        for switch, label in GROUPS:
            if not getattr(self, switch):
                continue
            builder: Callable[[MarketInfo], list[Measure]] = getattr(self, f"_{switch}")
            try:
                if info.chain is None:
                    out.extend(builder(info))
                    continue
                # a chain: each measure acts on its stage (free trade on every stage), with
                # region roles and units of that stage
                stages = list(info.stages) if switch == "free_trade" else [self._stage(switch)]
                for sid in stages:
                    built = builder(info.for_stage(sid))
                    out.extend(m.model_copy(update={"stage": sid}) for m in built)
            except ConfigError as exc:
                problems.extend(f"{label}: {p}" for p in exc.problems)
            except ValidationError as exc:
                for err in exc.errors():
                    where = ".".join(str(x) for x in err["loc"])
                    msg = str(err["msg"]).removeprefix("Value error, ")
                    problems.append(f"{label}: {where + ' ' if where else ''}{msg}")
            except ValueError as exc:
                problems.append(f"{label}: {exc}")
        if problems:
            raise ConfigError(problems)
        return out

    def _stage(self, switch: str) -> str:
        stage = getattr(self, stage_param(switch))
        if stage is None:
            raise ConfigError(["choose the stage of the chain it acts on"])
        return str(stage)

    def _members_that(self, info: MarketInfo, kind: str) -> list[str]:
        pool = {"import": info.importers, "consume": info.consumers, "produce": info.producers}
        return [r for r in self.members if r in pool[kind]]

    def _need(self, values: list[str], what: str) -> list[str]:
        if not values:
            raise ConfigError([what])
        return values

    def _free_trade(self, info: MarketInfo) -> list[Measure]:
        importers = self._members_that(info, "import")
        if len(self.members) < 2 or not importers:
            return []  # nothing to liberalise: no problem to report
        return [Tariff(importers=importers, exporters=list(self.members), rate=0.0)]

    def _floor_on(self, info: MarketInfo) -> list[Measure]:
        importers = self._need(
            self._members_that(info, "import"),
            "choose club members that import (the floor applies at their border)",
        )
        cap = info.to_market_price(self.levy_cap) if self.levy_cap > 0 else None
        return [
            PriceFloor(
                importers=importers,
                exempt=list(self.members),
                floor=info.to_market_price(self.floor),
                levy_cap=cap,
                collector=self.collector,
            )
        ]

    def _tariff_on(self, info: MarketInfo) -> list[Measure]:
        importers = self._need(
            self._members_that(info, "import"), "choose club members that import"
        )
        outsiders = [r for r in info.regions if r not in self.members]
        self._need(outsiders, "every region is a member: there is no one outside the club")
        return [Tariff(importers=importers, exporters=outsiders, rate=self.tariff_rate / 100)]

    def _subsidy_on(self, info: MarketInfo) -> list[Measure]:
        producers = self._need(list(self.subsidy_producers), "choose the producers covered")
        payers = None
        if self.subsidy_payers == "club":
            buyers = self._need(
                self._members_that(info, "consume"), "no club member consumes: nobody to pay"
            )
            payers = shares_by(info.market, buyers)
        collar = self.subsidy_kind == "collar"
        return [
            PriceGapSubsidy(
                producers=producers,
                strike=info.to_market_price(self.strike),
                kind=self.subsidy_kind,
                upside_threshold=info.to_market_price(self.upside_threshold) if collar else None,
                upside_share=self.upside_share / 100 if collar else None,
                payers=payers,
            )
        ]

    def _restrict_on(self, info: MarketInfo) -> list[Measure]:
        if self.restrict_exporter is None:
            raise ConfigError(["choose the exporting region"])
        dest = [r for r in self.restrict_destinations if r != self.restrict_exporter]
        self._need(dest, "choose destinations other than the exporter")
        return [
            ExportQuota(
                exporter=self.restrict_exporter, destinations=dest, quantity=self.restrict_quantity
            )
        ]

    def _quota_on(self, info: MarketInfo) -> list[Measure]:
        importers = self._need(list(self.quota_importers), "choose the importing regions")
        exporters = [r for r in self.quota_exporters if r not in importers]
        self._need(exporters, "choose exporters other than the importers")
        return [ImportQuota(importers=importers, exporters=exporters, quantity=self.quota_quantity)]

    def _offtake_on(self, info: MarketInfo) -> list[Measure]:
        sellers = self._need(list(self.offtake_sellers), "choose the producers selling")
        buyers = self._need(list(self.offtake_buyers), "choose the public buyers")
        use = [r for r in buyers if r in info.consumers]
        shares = shares_by(info.market, use) if use else {r: 1 / len(buyers) for r in buyers}
        return [
            Offtake(
                buyers=shares,
                sellers=sellers,
                volume=self.offtake_volume,
                price=info.to_market_price(self.offtake_price),
                disposition=self.offtake_disposition,
            )
        ]

    def _release_on(self, info: MarketInfo) -> list[Measure]:
        regions = self._need(list(self.release_regions), "choose the releasing regions")
        bad = [r for r in regions if r not in info.consumers]
        if bad:
            raise ConfigError([f"{', '.join(bad)} consume nothing: nothing to release into"])
        if self.release_quantity <= 0:
            raise ConfigError(["the release must be above 0"])
        split = shares_by(info.market, regions)
        return [
            StockpileRelease(region=r, quantity=s * self.release_quantity)
            for r, s in split.items()
            if s > 0
        ]

    def _cap_on(self, info: MarketInfo) -> list[Measure]:
        importers = self._need(list(self.cap_importers), "choose the importing regions")
        return [
            DiversificationCap(
                importers=importers, max_share=self.cap_share / 100, basis=self.cap_basis
            )
        ]

    def _shock_on(self, info: MarketInfo) -> list[Measure]:
        regions = self._need(list(self.shock_regions), "choose the regions hit")
        return [SupplyShock(region=regions, fraction=self.shock_fraction / 100)]


def scenario_key(scenarios: list[Scenario]) -> str:
    """A scalar cache key of scenarios (names, descriptions and every measure field)."""
    return json.dumps([s.to_dict() for s in scenarios], sort_keys=True)


def scenarios_from_key(key: str) -> list[Scenario]:
    """The scenarios a :func:`scenario_key` was made from."""
    return [Scenario.model_validate(d) for d in json.loads(key)]


#: Debian's chromium (Playwright cannot download its own browser here) and the flags that
#: run it headless on a machine with a closed network; used by the browser tests and the
#: dashboard benchmark
CHROMIUM = os.environ.get("TP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

__all__ = [
    "BASES",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "COLLECTORS",
    "DISPOSITIONS",
    "GROUPS",
    "PAYERS",
    "STAGED",
    "SUBSIDY_KINDS",
    "ConfigError",
    "PolicyConfig",
    "scenario_key",
    "scenarios_from_key",
    "stage_param",
]
