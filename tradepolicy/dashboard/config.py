"""The negotiator's policy settings (the editor's state) and how they become measures.

:class:`PolicyConfig` holds the club (members, free trade among them) and a list of measure
entries, each of any registered measure type, with every field in display units (prices e.g.
in USD/kg, quantities in t/yr, rates and shares in percent; :mod:`tradepolicy.dashboard.editor`
says how each field is shown and converted). :meth:`PolicyConfig.measures` turns the entries
into :mod:`tradepolicy.measures` objects in the market's own units. The club presets
(:data:`PRESETS`) are a thin layer: a measure type whose fields start from the club.
:func:`scenario_key` gives a hashable scalar key for caching solves.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import param
from pydantic import ValidationError

from tradepolicy.clubs import shares_by
from tradepolicy.dashboard.editor import REGION_KINDS, TypeSpec, spec_of
from tradepolicy.dashboard.markets import MarketInfo
from tradepolicy.measures import Measure, Tariff
from tradepolicy.scenario import Scenario

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    """A club preset: a measure type, its title, and start values that differ from the
    type's own defaults (display units, region roles or :func:`rel` defaults)."""

    type: str
    title: str
    values: tuple[tuple[str, Any], ...] = ()


#: the club presets, by id (today's measures of a club; the ids name their entries)
PRESETS: dict[str, Preset] = {
    "floor": Preset("price_floor", "Club price floor"),
    "tariff": Preset("tariff", "Tariff on non-members"),
    "subsidy": Preset("price_gap_subsidy", "Price-gap subsidy"),
    "restrict": Preset("export_quota", "Export ban or quota"),
    "quota": Preset("import_quota", "Import quota"),
    "offtake": Preset("offtake", "Offtake"),
    "release": Preset("stockpile_release", "Stockpile release"),
    "cap": Preset("diversification_cap", "Diversification cap"),
    "shock": Preset("supply_shock", "Supply shock"),
}

#: (id, title) of free trade among members and of every club preset
GROUPS: tuple[tuple[str, str], ...] = (
    ("free_trade", "Free trade among members"),
    *((pid, p.title) for pid, p in PRESETS.items()),
)


#: the settings of the dashboard before the generated editor (links made with it hold them,
#: flat): each measure group's switch, its club preset, and its settings as the preset's fields
#: (the same display units); its stage was ``<preset>_stage``
LEGACY_GROUPS: dict[str, tuple[str, dict[str, str]]] = {
    "floor_on": ("floor", {"floor": "floor", "levy_cap": "levy_cap", "collector": "collector"}),
    "tariff_on": ("tariff", {"tariff_rate": "rate"}),
    "subsidy_on": (
        "subsidy",
        {
            "subsidy_producers": "producers",
            "strike": "strike",
            "subsidy_kind": "kind",
            "upside_threshold": "upside_threshold",
            "upside_share": "upside_share",
            "subsidy_payers": "payers",
        },
    ),
    "restrict_on": (
        "restrict",
        {
            "restrict_exporter": "exporter",
            "restrict_destinations": "destinations",
            "restrict_quantity": "quantity",
        },
    ),
    "quota_on": (
        "quota",
        {
            "quota_importers": "importers",
            "quota_exporters": "exporters",
            "quota_quantity": "quantity",
        },
    ),
    "offtake_on": (
        "offtake",
        {
            "offtake_sellers": "sellers",
            "offtake_buyers": "buyers",
            "offtake_volume": "volume",
            "offtake_price": "price",
            "offtake_disposition": "disposition",
        },
    ),
    "release_on": ("release", {"release_quantity": "quantity"}),  # split over release_regions
    "cap_on": (
        "cap",
        {"cap_importers": "importers", "cap_share": "max_share", "cap_basis": "basis"},
    ),
    "shock_on": ("shock", {"shock_regions": "region", "shock_fraction": "fraction"}),
}


def is_legacy(values: dict[str, Any]) -> bool:
    """Whether ``values`` are the flat settings of the dashboard before the generated editor
    (a switch such as ``floor_on`` and no measure entry)."""
    return not values.get("measures") and any(k in values for k in LEGACY_GROUPS)


class ConfigError(ValueError):
    """The settings cannot make a scenario; ``problems`` are plain sentences for the user."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _plain(msg: str) -> str:
    return str(msg).removeprefix("Value error, ")


class PolicyConfig(param.Parameterized):
    """The club and the measures being edited, in display units; one instance per session.

    ``entries`` is a list of JSON-able dicts ``{"id", "type", "title", "preset", "on",
    "stage", "values", "auto"}``: ``values`` maps each field to its display value and
    ``auto`` names the fields still at their default, which follow the club members and the
    stage. Change it through :meth:`add`, :meth:`preset`, :meth:`set`, :meth:`set_stage`,
    :meth:`switch` and :meth:`remove` (each one change, so one solve).
    """

    members = param.ListSelector(default=[], objects=[], doc="Club members")
    free_trade = param.Boolean(True, doc="Zero tariffs among club members")
    entries = param.List(default=[], item_type=dict, doc="The measures being edited")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._info: MarketInfo | None = None
        #: problems of the last :meth:`measures`: by (entry id, field), and by entry id
        self.field_problems: dict[tuple[str, str], str] = {}
        self.entry_problems: dict[str, list[str]] = {}
        # registered before the store's watcher, so it runs first: defaults follow the club
        self.param.watch(self._follow_club, "members")

    # -- market ---------------------------------------------------------------------------
    def apply_market(self, info: MarketInfo) -> None:
        """Region choices and the default club for ``info``; no measure.

        Three steps in this order, each dispatched before the next: empty the members, then
        change the regions offered, then set the default club. Widgets linked to these
        parameters (``from_param``) drop any value that is not among their options when the
        options change; were old values and new options changed together, a region of the
        previous market missing from the new one could be dropped while the widget still
        shows it. Never call this inside ``param.parameterized.batch_call_watchers``.
        """
        self._info = info
        regions = list(info.chain.regions) if info.chain is not None else info.regions
        self.param.update(members=[], entries=[])
        self.param.members.objects = list(regions)
        club = [r for r in info.default_club if r in regions]
        self.param.update(members=club, free_trade=True)

    def _stage_info(self, stage: str | None) -> MarketInfo:
        info = self._require_info()
        if info.chain is None:
            return info
        return info.for_stage(stage if stage in info.stages else info.target_stage)

    def _require_info(self) -> MarketInfo:
        if self._info is None:
            raise RuntimeError("no market: call apply_market first")
        return self._info

    # -- editing ----------------------------------------------------------------------------
    def _new_id(self, base: str) -> str:
        ids = {e["id"] for e in self.entries}
        if base not in ids:
            return base
        i = 2
        while f"{base}_{i}" in ids:
            i += 1
        return f"{base}_{i}"

    def add(
        self,
        type_name: str,
        stage: str | None = None,
        *,
        title: str | None = None,
        preset: str | None = None,
        entry_id: str | None = None,
        start: dict[str, Any] | None = None,
        **values: Any,
    ) -> str:
        """Add a measure of a registered type, switched on, and return its id.

        Fields start from the type's defaults relative to the market (or ``start``), at
        ``stage`` on a chain (default: the stage the chain opens at); ``values`` (display
        units) are set as if typed by the user.
        """
        spec = spec_of(type_name)
        if not spec.usable:
            why = (
                "acts only in pathway sets"
                if spec.cls.pathway_only
                else f"has fields the editor cannot show ({', '.join(spec.missing)})"
            )
            raise ValueError(f"{type_name} cannot be edited in the dashboard: it {why}")
        for name in values:
            spec.field(name)  # unknown field: ValueError naming the allowed ones
        info = self._require_info()
        if info.chain is not None:
            stage = stage if stage in info.stages else info.stage
        else:
            stage = None
        start_values = spec.initial(self._stage_info(stage), list(self.members), start)
        start_values.update(values)
        eid = self._new_id(entry_id or type_name)
        entry = {
            "id": eid,
            "type": type_name,
            "title": title or spec.label,
            "preset": preset,
            "on": True,
            "stage": stage,
            "values": start_values,
            "auto": [f.name for f in spec.fields if f.name not in values],
        }
        self.entries = [*self.entries, entry]
        return eid

    def preset(self, name: str, stage: str | None = None, **values: Any) -> str:
        """Switch on the club preset ``name`` (adding it if absent) with ``values`` set."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r} (allowed: {', '.join(PRESETS)})")
        if any(e["id"] == name for e in self.entries):
            entries = self._copy()
            for e in entries:
                if e["id"] == name:
                    e["on"] = True
                    self._set_values(e, values)
                    if stage is not None and stage != e["stage"]:
                        e["stage"] = stage
                        self._refresh(e)
            self.entries = entries
            return name
        p = PRESETS[name]
        return self.add(
            p.type,
            stage,
            title=p.title,
            preset=name,
            entry_id=name,
            start=dict(p.values) or None,
            **values,
        )

    def _copy(self) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self.entries))

    def _find(self, entries: list[dict[str, Any]], eid: str) -> dict[str, Any]:
        for e in entries:
            if e["id"] == eid:
                return e
        have = ", ".join(e["id"] for e in entries) or "none"
        raise KeyError(f"no measure {eid!r} being edited (have: {have})")

    def entry(self, eid: str) -> dict[str, Any]:
        """A copy of entry ``eid``."""
        return copy.deepcopy(self._find(list(self.entries), eid))

    def value(self, eid: str, name: str) -> Any:
        """Field ``name`` of entry ``eid`` in display units."""
        return self._find(list(self.entries), eid)["values"][name]

    def _set_values(self, e: dict[str, Any], values: dict[str, Any]) -> None:
        spec = spec_of(e["type"])
        for name, v in values.items():
            f = spec.field(name)
            if f.kind in ("regions", "shares"):
                v = list(v) if v is not None else []
            e["values"][name] = v
            if name in e["auto"]:
                e["auto"].remove(name)

    def set(self, eid: str, **values: Any) -> None:
        """Set fields of entry ``eid`` (display units); they no longer follow defaults."""
        entries = self._copy()
        self._set_values(self._find(entries, eid), values)
        self.entries = entries

    def set_stage(self, eid: str, stage: str | None) -> None:
        """Move entry ``eid`` to another stage of the chain (fields still at their default
        are recomputed there; values typed by the user are kept)."""
        entries = self._copy()
        e = self._find(entries, eid)
        e["stage"] = stage
        self._refresh(e)
        self.entries = entries

    def switch(self, eid: str, on: bool) -> None:
        """Switch entry ``eid`` on or off (kept in the editor either way)."""
        entries = self._copy()
        self._find(entries, eid)["on"] = bool(on)
        self.entries = entries

    def remove(self, eid: str) -> None:
        """Remove entry ``eid``."""
        self._find(list(self.entries), eid)
        self.entries = [e for e in self._copy() if e["id"] != eid]

    def _refresh(self, e: dict[str, Any]) -> None:
        """Recompute the fields of ``e`` still at their default (club, stage)."""
        if not e["auto"] or self._info is None:
            return
        try:
            spec = spec_of(e["type"])
        except ValueError:
            return
        stage = e.get("stage") if self._info.chain is not None else None
        kept = {k: v for k, v in e["values"].items() if k not in e["auto"]}
        fresh = spec.initial(self._stage_info(stage), list(self.members), kept)
        e["values"].update({k: fresh[k] for k in e["auto"] if k in fresh})

    def _follow_club(self, _event: Any) -> None:
        if not self.entries:
            return
        entries = self._copy()
        for e in entries:
            self._refresh(e)
        if entries != list(self.entries):
            # no event of its own: the members' event that called this one solves once, and
            # watchers of the members (the editor) read the entries updated here
            with param.parameterized.discard_events(self):
                self.entries = entries

    # -- snapshot ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The club and every measure being edited as plain JSON-able values."""
        return {
            "members": list(self.members),
            "free_trade": bool(self.free_trade),
            "measures": self._copy(),
        }

    def restore(self, values: dict[str, Any]) -> None:
        """Set the settings saved by :meth:`snapshot` (unknown keys ignored).

        The flat settings of the dashboard before the generated editor (:func:`is_legacy`:
        ``floor_on``, ``floor``, ...) become the club presets they were
        (:meth:`legacy_snapshot`).

        Raises
        ------
        ValueError
            A measure that is not a dict with a registered ``type`` and a ``values`` dict,
            or a field its type does not have (nothing is changed then).
        """
        if is_legacy(values):
            values = {**values, **self.legacy_snapshot(values)}
        update: dict[str, Any] = {}
        if "members" in values:
            update["members"] = [r for r in values["members"] if r in self.param.members.objects]
        if "free_trade" in values:
            update["free_trade"] = bool(values["free_trade"])
        if "measures" in values:
            update["entries"] = [self._checked(i, e) for i, e in enumerate(values["measures"])]
        self.param.update(**update)

    def legacy_snapshot(self, values: dict[str, Any]) -> dict[str, Any]:
        """The :meth:`snapshot` of the flat settings of the dashboard before the generated
        editor, on the market shown: each group switched on becomes its club preset with the
        same values (display units); fields the old editor did not have start from their
        defaults. A levy cap of 0 was no cap; a price-gap subsidy paid by "club" is paid by
        the members that consume; a stockpile release over several regions (split by their
        base consumption) is one release per region.

        Raises
        ------
        ValueError
            A stage that is not one of the chain's, or a setting of the wrong kind.
        """
        info = self._require_info()
        members = [str(r) for r in values.get("members", self.members)]
        entries: list[dict[str, Any]] = []
        for switch, (pid, fields) in LEGACY_GROUPS.items():
            if not values.get(switch):
                continue
            stage = values.get(f"{pid}_stage")
            if info.chain is None:
                stage = None
            elif stage is None:
                stage = info.stage
            elif stage not in info.stages:
                raise ValueError(f"{pid}_stage: {stage!r} is not a stage of {info.id}")
            given = {new: values[old] for old, new in fields.items() if old in values}
            if pid == "floor" and not given.get("levy_cap"):
                given["levy_cap"] = None  # 0: no cap
            if pid == "subsidy" and "payers" in given:
                given["payers"] = list(members) if given["payers"] == "club" else []
            if pid == "release":
                regions = [str(r) for r in values.get("release_regions", [])]
                market = self._stage_info(stage).market
                split = shares_by(market, regions) if regions else {}
                total = float(given.get("quantity", 0.0))
                for r, share in split.items():
                    if share > 0:
                        entries.append(
                            self._legacy_entry(
                                entries, pid, stage, members, region=r, quantity=share * total
                            )
                        )
                continue
            entries.append(self._legacy_entry(entries, pid, stage, members, **given))
        return {"measures": entries}

    def _legacy_entry(
        self,
        entries: list[dict[str, Any]],
        pid: str,
        stage: str | None,
        members: list[str],
        **given: Any,
    ) -> dict[str, Any]:
        """The entry of club preset ``pid`` with the fields ``given`` (display units)."""
        p = PRESETS[pid]
        spec = spec_of(p.type)
        for name in given:
            spec.field(name)
        start = {**dict(p.values), **given}
        values = spec.initial(self._stage_info(stage), members, start)
        ids = {e["id"] for e in entries}
        eid, i = pid, 2
        while eid in ids:
            eid, i = f"{pid}_{i}", i + 1
        return {
            "id": eid,
            "type": p.type,
            "title": p.title,
            "preset": pid,
            "on": True,
            "stage": stage,
            "values": values,
            "auto": [f.name for f in spec.fields if f.name not in given],
        }

    def _checked(self, i: int, e: Any) -> dict[str, Any]:
        where = f"settings: measures[{i}]"
        if not isinstance(e, dict) or not isinstance(e.get("values"), dict):
            raise ValueError(f"{where}: expected a dict with 'type' and 'values'")
        try:
            spec = spec_of(str(e.get("type")))
            for name in e["values"]:
                spec.field(name)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        eid = str(e.get("id") or spec.type)
        return {
            "id": eid,
            "type": spec.type,
            "title": str(e.get("title") or spec.label),
            "preset": e.get("preset"),
            "on": bool(e.get("on", True)),
            "stage": e.get("stage"),
            "values": copy.deepcopy(dict(e["values"])),
            "auto": [str(a) for a in e.get("auto", []) if a in e["values"]],
        }

    def active(self) -> list[str]:
        """Titles of the measures switched on (and free trade among members if on)."""
        out = ["Free trade among members"] if self.free_trade and len(self.members) > 1 else []
        return out + [e["title"] for e in self.entries if e["on"]]

    # -- measures ---------------------------------------------------------------------------
    def measures(self, info: MarketInfo) -> list[Measure]:
        """The measures of the current settings in the market's units.

        Raises
        ------
        ConfigError
            With one plain sentence per problem (``Title: Field label: what is wrong``);
            :attr:`field_problems` and :attr:`entry_problems` hold them by control.
        """
        self.field_problems, self.entry_problems = {}, {}
        out: list[Measure] = []
        if self.free_trade:
            stages = list(info.stages) if info.chain is not None else [None]
            for sid in stages:
                si = info.for_stage(sid) if sid is not None else info
                importers = [r for r in self.members if r in si.importers]
                if len(self.members) >= 2 and importers:
                    m = Tariff(importers=importers, exporters=list(self.members), rate=0.0)
                    out.append(m.model_copy(update={"stage": sid}) if sid else m)
        problems: list[str] = []
        for e in self.entries:
            if not e["on"]:
                continue
            found = self._build(e, info)
            if isinstance(found, Measure):
                out.append(found)
                continue
            for name, label, msg in found:
                where = f"{label}: " if label else ""
                problems.append(f"{e['title']}: {where}{msg}")
                if name is None:
                    self.entry_problems.setdefault(e["id"], []).append(msg)
                else:
                    self.field_problems[(e["id"], name)] = msg
        if problems:
            raise ConfigError(problems)
        return out

    def _build(
        self, e: dict[str, Any], info: MarketInfo
    ) -> Measure | list[tuple[str | None, str, str]]:
        """The measure of entry ``e``, or its problems as (field, label, message)."""
        try:
            spec: TypeSpec = spec_of(e["type"])
        except ValueError as exc:
            return [(None, "", str(exc))]
        stage = e.get("stage")
        chain = info.chain is not None
        if chain:
            if stage not in info.stages:
                return [(None, "", "choose the stage of the chain it acts on")]
            info = info.for_stage(stage)
        values = e["values"]
        kwargs: dict[str, Any] = {}
        problems: list[tuple[str | None, str, str]] = []
        for f in spec.fields:
            if not f.applies(values):
                continue
            v = values.get(f.name)
            msg = f.problem(v, info, spec.cls)
            if msg:
                problems.append((f.name, f.label, msg))
                continue
            mv = f.market_value(v, info)
            if mv is None and f.kind not in REGION_KINDS and not f.optional:
                continue
            if mv is not None or f.optional:
                kwargs[f.name] = mv
        if problems:
            return problems
        if chain:
            kwargs["stage"] = stage
        labels = {f.name: f.label for f in spec.fields}
        try:
            m = spec.cls(**kwargs)
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(x) for x in err["loc"]]
                name = loc[0] if loc and loc[0] in labels else None
                problems.append((name, labels.get(name or "", ""), _plain(err["msg"])))
            return problems
        except ValueError as exc:
            return [(None, "", str(exc))]
        for name, msg in m.check(info.market):
            key = name.split(".")[0]
            known = key in labels
            problems.append((key if known else None, labels.get(key, ""), msg))
        return problems or m


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
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "GROUPS",
    "LEGACY_GROUPS",
    "PRESETS",
    "ConfigError",
    "PolicyConfig",
    "Preset",
    "is_legacy",
    "scenario_key",
    "scenarios_from_key",
]
