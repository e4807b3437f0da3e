"""The measure editor, generated from the measure registry.

Every registered measure type (:data:`tradepolicy.measures.MEASURES`) gets an editor: one
control per field, read from the field's pydantic type and bounds and from the editor
metadata it declares (``Field(json_schema_extra=editor(...))``, see
:func:`tradepolicy.measures.base.editor`): label, unit kind, help text and a default relative
to the market. A measure that declares nothing still gets controls (numbers a box within the
schema's bounds, region lists a multi-select, a ``Literal`` a select), so a measure registered
in a notebook appears in a dashboard served from that notebook.

Values are held in display units (prices in the dashboard's price unit, shares and rates in
percent); :meth:`FieldSpec.to_market` converts them to the market's units.
:class:`MeasureEditor` is the sidebar widget; the settings themselves live in
:class:`tradepolicy.dashboard.config.PolicyConfig`.
"""

from __future__ import annotations

import builtins
import html
import inspect
import logging
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import annotated_types as at
import numpy as np
import panel as pn
import param
from panel.io import hold
from panel.viewable import Viewer

from tradepolicy import regions as region_table
from tradepolicy.clubs import shares_by
from tradepolicy.measures.base import EDITOR_KEY, MEASURES, Measure

if TYPE_CHECKING:
    from tradepolicy.dashboard.markets import MarketInfo

log = logging.getLogger(__name__)

#: fields of every measure the editor does not show as fields (the stage has its own
#: selector; the dashboard solves one year, so no first or last year in force)
SKIP = ("type", "stage", "start_year", "end_year")
NUMBER_KINDS = ("price", "quantity", "share", "rate", "years", "number")
REGION_KINDS = ("regions", "region", "shares")
PERCENT = ("share", "rate")


def nice(x: float) -> float:
    """``x`` rounded to two significant digits (defaults that read well)."""
    if x == 0 or not math.isfinite(x):
        return 0.0
    return float(f"{x:.2g}")


# -- region roles ----------------------------------------------------------------------------
def _club(info: MarketInfo, members: list[str]) -> list[str]:
    return [r for r in members if r in info.regions]


def _ban_destinations(info: MarketInfo, members: list[str]) -> list[str]:
    """Club consumers other than the top producer that have another supplier (a ban on them
    has an equilibrium)."""
    flows, idx, top = info.market.flows, info.market.index, info.top_producer()
    other = flows.sum(axis=0) - flows[idx(top)[0]]
    return [
        r for r in _club(info, members) if r != top and r in info.consumers and other[idx(r)[0]] > 0
    ]


def _diversifiable(info: MarketInfo, members: list[str]) -> list[str]:
    """Club importers supplied by at least two origins (a cap on them can bind)."""
    sources = (info.market.flows > 0).sum(axis=0)
    idx = info.market.index
    return [r for r in _club(info, members) if r in info.importers and sources[idx(r)[0]] >= 2]


def _largest_club_importer(info: MarketInfo, members: list[str]) -> list[str]:
    club = [r for r in _club(info, members) if r in info.importers]
    return [max(club, key=lambda r: info.base_use([r]))] if club else []


#: region roles a field's default may name (:func:`tradepolicy.measures.base.editor`)
ROLES: dict[str, Callable[[MarketInfo, list[str]], list[str]]] = {
    "club": _club,
    "club_importers": lambda i, m: [r for r in _club(i, m) if r in i.importers],
    "club_producers": lambda i, m: [r for r in _club(i, m) if r in i.producers],
    "club_consumers": lambda i, m: [r for r in _club(i, m) if r in i.consumers],
    "outsiders": lambda i, m: [r for r in i.regions if r not in m],
    "outsider_producers": lambda i, m: [r for r in i.producers if r not in m],
    "top_producer": lambda i, m: [i.top_producer()],
    "club_ban_destinations": _ban_destinations,
    "club_diversifiable": _diversifiable,
    "largest_club_importer": _largest_club_importer,
}

#: references of relative number defaults (:func:`tradepolicy.measures.base.rel`)
REFS = ("base_price", "base_output", "base_use", "base_flow")


def _codes(value: Any) -> list[str] | None:
    """Region codes of a region field's display value (None: every region)."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _market_ref(info: MarketInfo, ref: dict[str, Any], values: dict[str, Any]) -> float:
    """The market-unit value of a :func:`~tradepolicy.measures.base.rel` default."""
    kind = ref["ref"]
    market = info.market
    if kind == "base_price":
        base = info.to_market_price(info.base_price_display)
    else:
        of = _codes(values.get(ref["of"])) if "of" in ref else None
        rows = market.index(of) if of is not None else slice(None)
        if kind == "base_output":
            base = float(market.flows.sum(axis=1)[rows].sum())
        elif kind == "base_use":
            base = float(market.flows.sum(axis=0)[rows].sum())
        elif kind == "base_flow":
            to = _codes(values.get(ref["to"])) if "to" in ref else None
            flows = market.flows.copy()
            np.fill_diagonal(flows, 0.0)
            cols = market.index(to) if to is not None else slice(None)
            base = float(flows[rows][:, cols].sum())
        else:
            raise ValueError(f"unknown default reference {kind!r} (allowed: {', '.join(REFS)})")
    return float(ref.get("times", 1.0)) * base


# -- field and type specs ----------------------------------------------------------------------
def _strip(ann: Any) -> Any:
    """``ann`` without ``Annotated``."""
    while typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    return ann


def _arms(ann: Any) -> list[Any]:
    """The members of a union (``None`` left out), or ``[ann]``."""
    ann = _strip(ann)
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return [_strip(a) for a in typing.get_args(ann) if a is not type(None)]
    return [ann]


def _optional(ann: Any) -> bool:
    ann = _strip(ann)
    return typing.get_origin(ann) in (typing.Union, types.UnionType) and type(None) in (
        typing.get_args(ann)
    )


def _infer_kind(name: str, ann: Any, region_fields: tuple[str, ...]) -> str | None:
    """The unit kind read from a field's type (None: the editor cannot show it)."""
    arms = _arms(ann)
    origins = [typing.get_origin(a) or a for a in arms]
    if any(typing.get_origin(a) is Literal for a in arms):
        return "choice"
    if name in region_fields:
        if dict in origins:
            return "shares"
        if list in origins or tuple in origins:
            return "regions"
        if str in origins:
            return "region"
        return None
    if origins and all(o is bool for o in origins):
        return "flag"
    if any(o in (int, float) for o in origins):
        return "number"
    return None


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, at.Gt):
            out.update(lo=float(m.gt), lo_open=True)  # type: ignore[arg-type]
        elif isinstance(m, at.Ge):
            out.update(lo=float(m.ge), lo_open=False)  # type: ignore[arg-type]
        elif isinstance(m, at.Lt):
            out.update(hi=float(m.lt), hi_open=True)  # type: ignore[arg-type]
        elif isinstance(m, at.Le):
            out.update(hi=float(m.le), hi_open=False)  # type: ignore[arg-type]
        elif isinstance(m, at.MinLen):
            out.update(min_items=int(m.min_length))
    return out


@dataclass(frozen=True)
class FieldSpec:
    """How one measure field is edited: kind, words, bounds (market units) and default."""

    name: str
    kind: str
    label: str
    help: str
    required: bool
    optional: bool
    integer: bool = False
    #: the declared default (display units, a :func:`rel` dict or a region role), else the
    #: model's default in market units (``market_default``)
    default: Any = None
    market_default: bool = False
    lo: float | None = None
    lo_open: bool = False
    hi: float | None = None
    hi_open: bool = False
    min_items: int = 0
    may_be_empty: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    when: tuple[tuple[str, str], ...] = ()

    # -- units ----------------------------------------------------------------------------
    def to_market(self, value: Any, info: MarketInfo) -> Any:
        """A number in display units in the market's units (other kinds unchanged)."""
        if value is None or self.kind not in NUMBER_KINDS:
            return value
        v = float(value)
        if self.kind == "price":
            v = info.to_market_price(v)
        elif self.kind in PERCENT:
            v = v / 100.0
        return round(v) if self.integer else v

    def to_display(self, value: Any, info: MarketInfo) -> Any:
        """A number in the market's units in display units (other kinds unchanged)."""
        if value is None or self.kind not in NUMBER_KINDS:
            return value
        v = float(value)
        if self.kind == "price":
            v = info.to_display_price(v)
        elif self.kind in PERCENT:
            v = 100.0 * v
        return round(v) if self.integer else v

    def unit_label(self, info: MarketInfo) -> str:
        return {
            "price": info.price_label,
            "quantity": info.quantity_label,
            "share": "%",
            "rate": "%",
            "years": "years",
        }.get(self.kind, "")

    def title(self, info: MarketInfo) -> str:
        """The label with its unit, e.g. ``Floor level (USD/kg)``."""
        unit = self.unit_label(info)
        return f"{self.label} ({unit})" if unit else self.label

    def applies(self, values: dict[str, Any]) -> bool:
        """Whether the field is shown and used with these values (its ``when``)."""
        return all(values.get(k) == v for k, v in self.when)

    # -- defaults ---------------------------------------------------------------------------
    def initial(self, info: MarketInfo, members: list[str], values: dict[str, Any]) -> Any:
        """The value a new measure starts with on ``info``'s market, in display units;
        ``values`` holds the fields resolved so far (region fields first)."""
        d = self.default
        if self.kind in REGION_KINDS:
            if isinstance(d, str) and d in ROLES:
                codes = ROLES[d](info, list(members))
                if self.kind == "region":
                    return codes[0] if codes else None
                return codes
            if isinstance(d, str) and self.kind == "region":
                return d if d in info.regions else None
            if isinstance(d, list | tuple):
                return [r for r in d if r in info.regions]
            if isinstance(d, dict):  # a {region: share} model default
                return [r for r in d if r in info.regions]
            return None if self.kind == "region" else []
        if self.kind in NUMBER_KINDS:
            if isinstance(d, dict) and "ref" in d:
                return self.to_display(nice(_market_ref(info, d, values)), info)
            if isinstance(d, int | float) and not isinstance(d, bool):
                return self.to_display(d, info) if self.market_default else float(d)
            if d is None and self.optional:
                return None
            return self._in_bounds(info)
        if self.kind == "choice":
            values_ = [v for v, _ in self.choices]
            return d if d in values_ else values_[0]
        if self.kind == "flag":
            return bool(d)
        return d

    def _in_bounds(self, info: MarketInfo) -> float:
        """A number inside the schema's bounds, for a field that declares no default."""
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None:
            v = (lo + hi) / 2
        elif lo is not None:
            v = lo if not self.lo_open else lo + 1.0
        elif hi is not None:
            v = min(hi, 0.0) if not self.hi_open else min(hi - 1.0, 0.0)
        else:
            v = 0.0
        return self.to_display(v, info)

    # -- checks ---------------------------------------------------------------------------
    def problem(self, value: Any, info: MarketInfo, measure: type[Measure]) -> str | None:
        """A plain sentence if ``value`` (display units) cannot be used, else None."""
        unit = self.unit_label(info)
        sp = "" if unit == "%" else " "

        def show(x: float) -> str:
            return f"{self.to_display(x, info):,.4g}{sp}{unit}".rstrip()

        if self.kind in NUMBER_KINDS:
            if value is None:
                return None if self.optional else "enter a number"
            try:
                v = self.to_market(value, info)
            except (TypeError, ValueError):
                return "enter a number"
            if not math.isfinite(v):
                return "enter a finite number"
            if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
                return f"must be {'above' if self.lo_open else 'at least'} {show(self.lo)}"
            if self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi):
                return f"must be {'below' if self.hi_open else 'at most'} {show(self.hi)}"
            return None
        if self.kind in ("regions", "shares"):
            if not value and not self.optional and not self.may_be_empty:
                return "choose at least one region"
        if self.kind == "region" and not value and not self.optional:
            return "choose a region"
        return None

    def market_value(self, value: Any, info: MarketInfo) -> Any:
        """The value (display units, checked) as the measure field takes it."""
        if self.kind in ("regions", "shares", "region") and not value:
            return None if self.optional else ([] if self.kind != "region" else None)
        if self.kind == "shares":
            codes = list(value)
            consuming = [r for r in codes if r in info.consumers]
            if consuming:
                return shares_by(info.market, consuming)
            return {r: 1.0 / len(codes) for r in codes}
        if self.kind == "regions":
            return list(value)
        return self.to_market(value, info)


@dataclass(frozen=True)
class TypeSpec:
    """How one measure type is edited."""

    type: str
    label: str
    help: str
    cls: builtins.type[Measure]
    fields: tuple[FieldSpec, ...]
    #: required fields the editor cannot show (the type is then not offered)
    missing: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        """Whether the dashboard can offer the type (its fields can be shown, and it acts on
        the one-year equilibrium the dashboard solves)."""
        return not self.missing and not self.cls.pathway_only

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        allowed = ", ".join(f.name for f in self.fields)
        raise ValueError(f"{self.type} has no field {name!r} (allowed: {allowed})")

    def initial(
        self, info: MarketInfo, members: list[str], overrides: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Every field's starting value on ``info``'s market (region fields first, so
        defaults relative to them can read them), in display units."""
        overrides = overrides or {}
        values: dict[str, Any] = {}
        order = sorted(self.fields, key=lambda f: f.kind not in REGION_KINDS)
        for f in order:
            values[f.name] = overrides[f.name] if f.name in overrides else None
            if f.name not in overrides:
                values[f.name] = f.initial(info, members, values)
        return {f.name: values[f.name] for f in self.fields}


def _schema_help(kind: str, bounds: dict[str, Any], choices: tuple) -> str:
    """Plain help read from the schema, for a field that declares none."""
    if kind in ("regions", "shares"):
        return "Choose one or more regions."
    if kind == "region":
        return "Choose a region."
    if kind == "choice":
        return "One of: " + ", ".join(label for _, label in choices) + "."
    if kind == "flag":
        return "On or off."
    lo, hi = bounds.get("lo"), bounds.get("hi")
    parts = []
    if lo is not None:
        parts.append(f"{'above' if bounds.get('lo_open') else 'at least'} {lo:g}")
    if hi is not None:
        parts.append(f"{'below' if bounds.get('hi_open') else 'at most'} {hi:g}")
    return f"A number{' ' + ' and '.join(parts) if parts else ''}."


def field_spec(cls: type[Measure], name: str) -> FieldSpec | None:
    """The editor of field ``name`` of ``cls`` (None: not shown)."""
    info = cls.model_fields[name]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    found = extra.get(EDITOR_KEY, {}) if isinstance(extra, dict) else {}
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    ann = info.annotation
    kind = meta.get("unit") or _infer_kind(name, ann, tuple(cls.region_fields))
    if kind is None:
        return None
    arms = _arms(ann)
    literal = next((a for a in arms if typing.get_origin(a) is Literal), None)
    labels = meta.get("choices") or {}
    choices = (
        tuple((str(v), str(labels.get(v, v))) for v in typing.get_args(literal))
        if literal is not None
        else ()
    )
    required = info.is_required()
    if "default" in meta:
        default, market_default = meta["default"], False
    elif not required:
        default = info.get_default(call_default_factory=True)
        market_default = True
    else:
        default, market_default = None, False
    bounds = _bounds(list(info.metadata))
    for a in typing.get_args(_strip(ann)) or ():
        if typing.get_origin(a) is typing.Annotated:
            bounds.update(_bounds(list(typing.get_args(a)[1:])))
    numeric = [a for a in arms if a in (int, float)]
    help_ = meta.get("help") or info.description or _schema_help(kind, bounds, choices)
    return FieldSpec(
        name=name,
        kind=kind,
        label=meta.get("label") or name.replace("_", " ").capitalize(),
        help=help_,
        required=required,
        optional=_optional(ann),
        integer=bool(numeric) and all(a is int for a in numeric),
        default=default,
        market_default=market_default,
        may_be_empty=name in cls.may_be_empty,
        choices=choices,
        when=tuple((str(k), str(v)) for k, v in (meta.get("when") or {}).items()),
        **bounds,
    )


def type_spec(cls: type[Measure]) -> TypeSpec:
    """The editor of measure type ``cls``."""
    fields: list[FieldSpec] = []
    missing: list[str] = []
    for name, info in cls.model_fields.items():
        if name in SKIP:
            continue
        spec = field_spec(cls, name)
        if spec is None:
            if info.is_required():
                missing.append(name)
            continue
        fields.append(spec)
    name = str(cls.model_fields["type"].default)
    doc = inspect.getdoc(cls) or ""
    return TypeSpec(
        type=name,
        label=cls.editor_label or name.replace("_", " ").capitalize(),
        help=doc.split("\n\n")[0].replace("\n", " "),
        cls=cls,
        fields=tuple(fields),
        missing=tuple(missing),
    )


def editable_types() -> dict[str, TypeSpec]:
    """Every registered measure type the dashboard can offer, read from the registry now
    (so a type registered after the app was built is offered too)."""
    specs = {name: type_spec(cls) for name, cls in MEASURES.items()}
    return {name: s for name, s in specs.items() if s.usable}


def spec_of(type_name: str) -> TypeSpec:
    """The editor of a registered measure type (ValueError naming the types if unknown)."""
    cls = MEASURES.get(type_name)
    if cls is None:
        raise ValueError(
            f"unknown measure type {type_name!r} (registered: {', '.join(sorted(MEASURES))})"
        )
    return type_spec(cls)


# -- the widget ---------------------------------------------------------------------------------
def _region_label(code: str) -> str:
    try:
        return f"{region_table.name(code)} ({code})"
    except Exception:  # a region of a market file the table does not know
        return code


def _step(hi: float) -> float:
    if hi <= 0:
        return 1.0
    return float(10 ** (math.floor(math.log10(hi)) - 2))


#: the first entry of "Add a measure" (choosing a measure adds it)
PICK = "Choose a measure to add…"


class MeasureEditor(Viewer):
    """Add, edit and remove measures of any registered type (club presets first).

    Reads and writes :attr:`DashboardStore.policy`; shows each problem in plain words under
    the control it concerns.
    """

    store = param.Parameter(doc="The session's DashboardStore")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        cfg = self.store.policy
        # choosing a measure adds it (one event: with the server's worker threads a separate
        # Add button's click could be handled before the choice had arrived)
        self.add_type = pn.widgets.Select(
            label="Add a measure",
            description="Choose a measure to add it. A club preset fills the measure from the "
            "club members; any other measure starts from defaults relative to the market.",
            css_classes=["tp-add-type"],
            sizing_mode="stretch_width",
        )
        self.add_type.param.watch(self._on_pick, "value")
        self.cards = pn.Column(sizing_mode="stretch_width", margin=0)
        self.empty = pn.pane.HTML("<small>No measure yet: add one above.</small>", margin=(0, 10))
        self._widgets: dict[tuple[str, str], pn.widgets.Widget] = {}
        self._errors: dict[tuple[str, str], pn.pane.HTML] = {}
        self._entry_errors: dict[str, pn.pane.HTML] = {}
        self._stages: dict[str, pn.widgets.Select] = {}
        self._shape: Any = None
        self._syncing = False
        self._layout = pn.Column(
            self.add_type,
            self.empty,
            self.cards,
            sizing_mode="stretch_width",
            margin=0,
        )
        cfg.param.watch(self._on_entries, ["entries", "members"])
        self.store.param.watch(self._on_info, "info")
        self.store.param.watch(self._on_current, "current")
        self._refresh_types()
        self._rebuild()
        self._on_current()

    # -- add -------------------------------------------------------------------------------
    def _refresh_types(self) -> None:
        from tradepolicy.dashboard.config import PRESETS

        types_ = editable_types()
        presets = {p.title: f"preset:{pid}" for pid, p in PRESETS.items() if p.type in types_}
        every = {
            f"{s.label} ({name})": f"type:{name}"
            for name, s in sorted(types_.items(), key=lambda kv: kv[1].label)
        }
        self.add_type.groups = {
            "": {PICK: ""},
            "Club presets": presets,
            "Any measure": every,
        }
        self.add_type.value = ""

    def _on_pick(self, event: Any) -> None:
        if event.new:
            self._add()

    def _add(self, _event: Any = None) -> None:
        """Add the measure chosen under "Add a measure" (nothing when none is chosen)."""
        cfg = self.store.policy
        choice = str(self.add_type.value or "")
        kind, _, name = choice.partition(":")
        # hold the document so that the new card and every view's update go out together
        with hold():
            if kind == "preset":  # on a chain, at the target stage (chosen in the card)
                cfg.preset(name)
            elif kind == "type":
                cfg.add(name)
            self._refresh_types()  # (back to "choose": the same measure can be added again)

    def _remove(self, eid: str) -> None:
        with hold():  # as in _add
            self.store.policy.remove(eid)

    # -- build -----------------------------------------------------------------------------
    def _shape_of(self) -> Any:
        cfg, info = self.store.policy, self.store.info
        shape = [info.id if info is not None else None]
        for e in cfg.entries:
            try:
                spec = spec_of(e["type"])
            except ValueError:
                shape.append((e["id"], e["type"]))
                continue
            shown = tuple(f.name for f in spec.fields if f.applies(e["values"]))
            shape.append((e["id"], e["type"], e["on"], e.get("stage"), shown))
        return tuple(shape)

    def _rebuild(self) -> None:
        info = self.store.info
        self._widgets, self._errors, self._entry_errors, self._stages = {}, {}, {}, {}
        cards = [] if info is None else [self._card(e, info) for e in self.store.policy.entries]
        self.cards.objects = cards
        self.empty.visible = not cards
        self._shape = self._shape_of()

    def _card(self, entry: dict[str, Any], info: MarketInfo) -> pn.Card:
        cfg, eid = self.store.policy, entry["id"]
        on = pn.widgets.Switch(
            value=bool(entry["on"]), width=40, margin=(8, 4), css_classes=[f"tp-{eid}-on"]
        )
        on.param.watch(lambda e: cfg.switch(eid, bool(e.new)), "value")
        remove = pn.widgets.Button(
            label="✕",
            color="light",
            width=34,
            margin=(4, 0),
            description="Remove this measure",
            css_classes=[f"tp-{eid}-remove"],
        )
        remove.on_click(lambda _e: self._remove(eid))
        body: list[pn.viewable.Viewable] = []
        try:
            spec = spec_of(entry["type"])
        except ValueError as exc:
            body.append(pn.pane.HTML(f"<small>{html.escape(str(exc))}</small>"))
            spec = None
        title = entry.get("title") or (spec.label if spec else entry["type"])
        stage_info = info
        if info.chain is not None:
            stages = {name: sid for sid, name in info.stages.items()}
            stage = pn.widgets.Select(
                label="Acts on the stage",
                options=stages,
                value=entry.get("stage") if entry.get("stage") in info.stages else None,
                description="The stage market of the chain this measure acts on; its prices "
                "and quantities are in that stage's units.",
                css_classes=[f"tp-{eid}-stage"],
                sizing_mode="stretch_width",
            )
            stage.param.watch(
                lambda e: None if self._syncing else cfg.set_stage(eid, e.new), "value"
            )
            body.append(stage)
            self._stages[eid] = stage
            if entry.get("stage") in info.stages:
                stage_info = info.for_stage(entry["stage"])
        if spec is not None:
            if spec.help:
                body.append(
                    pn.pane.HTML(
                        f"<small>{html.escape(spec.help)}</small>",
                        margin=(0, 10),
                        css_classes=["tp-measure-help"],
                    )
                )
            for f in spec.fields:
                if not f.applies(entry["values"]):
                    continue
                w = self._widget(eid, f, entry["values"].get(f.name), stage_info)
                err = pn.pane.HTML(
                    "", visible=False, margin=(0, 10), css_classes=["tp-field-error"]
                )
                self._widgets[(eid, f.name)] = w
                self._errors[(eid, f.name)] = err
                body.extend([w, err])
        self._entry_errors[eid] = pn.pane.HTML(
            "", visible=False, margin=(0, 10), css_classes=["tp-field-error"]
        )
        body.append(self._entry_errors[eid])
        return pn.Card(
            *body,
            header=pn.Row(
                on,
                pn.pane.HTML(f"<b>{html.escape(title)}</b>", margin=(10, 0)),
                pn.layout.HSpacer(),
                remove,
                sizing_mode="stretch_width",
            ),
            collapsed=not entry["on"],
            sizing_mode="stretch_width",
            margin=(4, 0),
            css_classes=[f"tp-card-{eid}", "tp-measure"],
        )

    def _widget(self, eid: str, f: FieldSpec, value: Any, info: MarketInfo) -> pn.widgets.Widget:
        common: dict[str, Any] = {
            "label": f.title(info),
            "description": f.help or None,
            "css_classes": [f"tp-{eid}-{f.name}"],
            "sizing_mode": "stretch_width",
        }
        if f.kind in ("regions", "shares"):
            opts = {_region_label(r): r for r in info.regions}
            extra = [r for r in (value or []) if r not in info.regions]
            opts.update({r: r for r in extra})
            w: pn.widgets.Widget = pn.widgets.MultiChoice(
                options=opts,
                value=list(value or []),
                solid=False,
                placeholder="empty = the default" if f.optional else "choose regions",
                **common,
            )
        elif f.kind == "region":
            one: dict[str, str | None] = {_region_label(r): r for r in info.regions}
            if f.optional or value is None:
                one = {"(none)": None, **one}
            w = pn.widgets.Select(options=one, value=value, **common)
        elif f.kind == "choice":
            w = pn.widgets.Select(options={lbl: v for v, lbl in f.choices}, value=value, **common)
        elif f.kind == "flag":
            common.pop("sizing_mode")
            common.pop("description")  # (a checkbox has no tooltip: the help is its label)
            w = pn.widgets.Checkbox(value=bool(value), **common)
        elif f.integer:
            w = pn.widgets.IntInput(value=value, **common)
        else:  # a box: values out of bounds are refused in words under it, not clamped
            lo, hi = self._soft_range(f, info)
            w = pn.widgets.FloatInput(
                value=value,
                step=_step(hi - lo),
                placeholder="none" if f.optional else "",
                **common,
            )
        w.param.watch(partial(self._edit, eid, f.name), "value")
        return w

    def _soft_range(self, f: FieldSpec, info: MarketInfo) -> tuple[float, float]:
        """The usual range of a number in display units (sets the arrows' step)."""
        lo = f.to_display(f.lo, info) if f.lo is not None else 0.0
        lo = min(lo, 0.0) if f.lo is not None and f.lo < 0 else max(lo, 0.0)
        if f.kind == "price":
            hi = nice(4 * info.base_price_display)
        elif f.kind == "quantity":
            flows = info.market.flows
            hi = nice(max(float(flows.sum(axis=0).max()), float(flows.sum(axis=1).max())))
        else:  # shares and rates, in percent
            top = f.to_display(f.hi, info) if f.hi is not None else 100.0
            hi = min(top, 100.0)
        return float(lo), float(hi if hi > lo else lo + 1.0)

    # -- sync ------------------------------------------------------------------------------
    def _edit(self, eid: str, name: str, event: Any) -> None:
        if self._syncing:
            return
        self.store.policy.set(eid, **{name: event.new})

    def _on_entries(self, *_events: Any) -> None:
        if self._shape_of() != self._shape:
            self._rebuild()
            return
        self._syncing = True  # values changed elsewhere (club members, restore): show them
        try:
            for e in self.store.policy.entries:
                for name, value in e["values"].items():
                    w = self._widgets.get((e["id"], name))
                    if isinstance(w, pn.widgets.MultiChoice):
                        value = list(value or [])
                    if w is not None and w.value != value:
                        w.value = value
        finally:
            self._syncing = False

    def _on_info(self, *_events: Any) -> None:
        self._refresh_types()
        self._rebuild()

    def _on_current(self, *_events: Any) -> None:
        cfg = self.store.policy
        for key, pane in self._errors.items():
            msg = cfg.field_problems.get(key)
            pane.object = f"<small>⚠ {html.escape(msg)}</small>" if msg else ""
            pane.visible = bool(msg)
        for eid, pane in self._entry_errors.items():
            msgs = cfg.entry_problems.get(eid, [])
            pane.object = "".join(f"<small>⚠ {html.escape(m)}</small><br>" for m in msgs)
            pane.visible = bool(msgs)

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout


__all__ = [
    "PERCENT",
    "REFS",
    "ROLES",
    "SKIP",
    "FieldSpec",
    "MeasureEditor",
    "TypeSpec",
    "editable_types",
    "field_spec",
    "nice",
    "spec_of",
    "type_spec",
]
