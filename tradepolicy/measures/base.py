"""The measure extension point: a measure is a pydantic model that registers itself.

A measure declares its fields, writes its wedges and complementarity pairs into the batched
instrument arrays (:meth:`Measure.apply`) and books the welfare entries it owns
(:meth:`Measure.book`). The solver, the result builder and the CLI know no measure by name.

To add a measure, subclass :class:`Measure` with a ``type: Literal["name"] = "name"`` field and
decorate it with :func:`register`::

    @register
    class Royalty(Measure):
        type: Literal["royalty"] = "royalty"
        producer: Region
        rate: float

        def apply(self, ctx, b):
            ...
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from operator import attrgetter, is_not
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol

import numba as nb
import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from tradepolicy._validation import register_tag

if TYPE_CHECKING:
    from tradepolicy.market import Market
    from tradepolicy.model.instruments import InstrumentBuilder, Instruments
    from tradepolicy.model.levels import Calibration, State

#: A region code as written in a measure (checked against the market by :meth:`Measure.check`).
Region = Annotated[str, StringConstraints(max_length=64)]

MEASURES: dict[str, type[Measure]] = {}

#: key of a field's editor metadata in its ``json_schema_extra`` (read by the dashboard's
#: measure editor, :mod:`tradepolicy.dashboard.editor`; a JSON Schema extension keyword)
EDITOR_KEY = "x-editor"

#: what a number or value of a field means to the editor: ``price`` (market price unit, shown
#: in the dashboard's price unit), ``quantity`` (market quantity unit per year), ``share`` and
#: ``rate`` (fractions, shown in percent), ``years``, ``number``, ``regions`` (a list of
#: region codes), ``region`` (one code), ``shares`` ({region: share}, split by base
#: consumption), ``choice`` (a Literal) and ``flag`` (a bool)
UNIT_KINDS = (
    "price",
    "quantity",
    "share",
    "rate",
    "years",
    "number",
    "regions",
    "region",
    "shares",
    "choice",
    "flag",
)


def editor(
    *,
    label: str | None = None,
    unit: str | None = None,
    help: str | None = None,
    default: Any = None,
    choices: dict[str, str] | None = None,
    when: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Editor metadata of a measure field, for ``Field(json_schema_extra=editor(...))``.

    Parameters
    ----------
    label
        Short name of the control (default: the field name in words).
    unit
        One of :data:`UNIT_KINDS` (default: read from the field's type).
    help
        One or two plain sentences shown on the control (default: the field's description).
    default
        The value a new measure starts with, relative to the market: :func:`rel` for numbers
        (e.g. ``rel("base_price", 2)``), a region role for region fields (``"club"``,
        ``"club_importers"``, ``"club_producers"``, ``"club_consumers"``, ``"outsiders"``,
        ``"outsider_producers"``, ``"top_producer"``, ``"club_ban_destinations"``,
        ``"club_diversifiable"``, ``"largest_club_importer"``), or a plain value in display
        units (a percent for shares and rates).
    choices
        Plain labels of a Literal's values (value -> label).
    when
        Show and use the field only when other fields hold these values (e.g.
        ``{"kind": "collar"}``); otherwise it is left out of the measure.
    """
    if unit is not None and unit not in UNIT_KINDS:
        raise ValueError(f"editor unit {unit!r}: allowed {', '.join(UNIT_KINDS)}")
    meta = {
        "label": label,
        "unit": unit,
        "help": help,
        "default": default,
        "choices": choices,
        "when": when,
    }
    return {EDITOR_KEY: {k: v for k, v in meta.items() if v is not None}}


def rel(ref: str, times: float = 1.0, of: str | None = None, to: str | None = None) -> dict:
    """A default relative to the market: ``times`` × ``ref``.

    ``ref`` is ``base_price`` (median base producer price), ``base_output`` or ``base_use``
    (base output or consumption per year of the regions in field ``of``; all regions without
    it) or ``base_flow`` (base trade from the regions in field ``of`` to those in field ``to``).
    """
    out: dict[str, Any] = {"ref": ref, "times": float(times)}
    if of is not None:
        out["of"] = of
    if to is not None:
        out["to"] = to
    return out


_not_none = partial(is_not, None)

#: most lookups a market's memo holds (:attr:`tradepolicy.market.Market.memo`)
_MEMO_SIZE = 65536

#: Welfare entries (docs/model.md) in the order they are reported; costs are negative numbers.
WELFARE_ENTRIES = (
    "consumer_surplus_change",
    "producer_surplus_change",
    "tariff_revenue_change",
    "levy_revenue",
    "undertaking_rent",
    "export_tax_revenue_change",
    "quota_rent_income",
    "subsidy_cost",
    "offtake_cost",
    "stockpile_cost",
    "stock_value_change",
)
#: welfare entries that are public budget flows of the paying region
FISCAL_ENTRIES = ("subsidy_cost", "offtake_cost", "stockpile_cost")


class MarketUnits(Protocol):
    """What :meth:`Measure.describe` reads of a market: its units (a :class:`Market`, or a
    brief's labels that also offer the display hooks)."""

    @property
    def price_unit(self) -> str: ...
    @property
    def quantity_unit(self) -> str: ...


def importer_exporter_keys(measures: list) -> list[tuple]:
    """:meth:`Measure.pair_keys` of measures on (``importers``, ``exporters``) pairs, no
    region exempt: ``exporters`` None is every exporter."""
    return [
        (tuple(m.importers), None if m.exporters is None else tuple(m.exporters), ())
        for m in measures
    ]


def exporter_destination_keys(ctx: _Regions, measures: list) -> list[tuple]:
    """:meth:`Measure.pair_keys` of measures on an ``exporter``'s sales to ``destinations``,
    no region exempt: ``destinations`` None is every other region."""
    return [
        (
            tuple(m.destinations) if m.destinations is not None else ctx.foreign_of(m.exporter),
            (m.exporter,),
            (),
        )
        for m in measures
    ]


class Measure(BaseModel):
    """Base class of all measures (one scenario building block)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: str
    #: the stage market of a chain the measure acts on (docs/chains.md); in a chain of
    #: several stages it is required, on a single market it may name that market
    stage: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="the stage market of a chain the measure acts on"
    )
    #: pathway sets (docs/pathways.md): the first and last year the measure is in force
    #: (None: from the first / to the last year of the pathway); a static set refuses them
    start_year: int | None = Field(None, ge=1900, le=2200, description="first year in force")
    end_year: int | None = Field(None, ge=1900, le=2200, description="last year in force")
    #: fields holding region codes (validated against the market)
    region_fields: ClassVar[tuple[str, ...]] = ()
    #: region-list fields that may be an empty list (e.g. no exempt origin)
    may_be_empty: ClassVar[tuple[str, ...]] = ("exempt",)
    #: whether the GSIM-v1 linear formulation can represent the measure
    gsim_linear: ClassVar[bool] = False
    #: what a reader must know to read this measure's results, in plain words ("" = nothing)
    caveat: ClassVar[str] = ""
    #: the measure's name in the dashboard's editor ("" = its type in words); its fields'
    #: controls come from their ``json_schema_extra=editor(...)`` (:func:`editor`)
    editor_label: ClassVar[str] = ""
    #: whether the measure acts only in pathway sets (on pipeline projects, not on the static
    #: equilibrium; a static solve refuses it)
    pathway_only: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _numbers_not_booleans(cls, data: Any) -> Any:
        """``floor = true`` is an error, not 1.0 (pydantic's lax mode reads bools as numbers)."""
        if isinstance(data, dict):
            for name, value in data.items():
                info = cls.model_fields.get(name)
                if isinstance(value, bool) and info is not None and _numeric(info.annotation):
                    raise ValueError(f"{name}: a number is required, not {str(value).lower()}")
        return data

    @model_validator(mode="after")
    def _years_in_order(self) -> Measure:
        if self.start_year is not None and self.end_year is not None:
            if self.end_year < self.start_year:
                raise ValueError(f"end_year {self.end_year} is before start_year {self.start_year}")
        return self

    def in_force(self, year: int) -> bool:
        """Whether the measure is in force in ``year`` (pathway sets)."""
        return (self.start_year is None or year >= self.start_year) and (
            self.end_year is None or year <= self.end_year
        )

    def check(self, market: Market) -> list[tuple[str, str]]:
        """Problems with this measure on ``market`` as (field, message) pairs."""
        problems = []
        allowed = ", ".join(market.regions)
        for name in self.region_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str) and not value and name not in self.may_be_empty:
                problems.append(
                    (
                        name,
                        f"empty: name at least one region (allowed: {allowed}) or leave "
                        "the field out for its default",
                    )
                )
                continue
            codes = [value] if isinstance(value, str) else list(value)
            for code in codes:
                if code not in market.regions:
                    problems.append((name, f"unknown region {code!r} (allowed: {allowed})"))
        return problems

    @classmethod
    def check_rows(cls, market: Market, measures: list) -> list[list[tuple[str, str]]]:
        """:meth:`check` of each measure (all of this type), in order.

        The default finds the measures whose region codes are all known without building
        messages, and words the others with :meth:`check` (identical problems). A type that
        overrides :meth:`check` gets a loop over :meth:`check` unless it overrides this too
        (built-in types do: a quick test that a measure passes, :meth:`check` otherwise).
        """
        if cls.check is not Measure.check:  # an own check this method does not know
            return [m.check(market) for m in measures]
        known = region_set(market)
        if cls._all_regions_known(known, measures):  # the common case, tested at once
            return [[]] * len(measures)  # (one empty list: callers only read the results)
        return [[] if cls._regions_known(known, m) else m.check(market) for m in measures]

    @classmethod
    def _all_regions_known(cls, known: frozenset[str], measures: list) -> bool:
        """Whether :meth:`_regions_known` holds for every measure, tested a field at a time
        over all of them (False also when a field's values are of a kind the quick test
        does not read; the caller then tests measure by measure)."""
        for name in cls.region_fields:
            values = list(map(attrgetter(name), measures))
            kinds = set(map(type, values))
            if type(None) in kinds:  # (a field without None is read as it is)
                kinds.discard(type(None))
                values = list(filter(_not_none, values))
            if not kinds:
                continue
            if kinds == {str}:
                if not known.issuperset(values):
                    return False
            elif kinds <= {list, tuple, dict}:
                if name not in cls.may_be_empty and not all(values):  # an empty list
                    return False
                if not known.issuperset(chain.from_iterable(values)):
                    return False
            else:
                return False
        return True

    @classmethod
    def _regions_known(cls, known: frozenset[str], m: Measure) -> bool:
        """Whether the base :meth:`check` finds nothing: every region code of ``m`` is in
        ``known`` (:func:`region_set`) and no region list is empty unless it may be."""
        for name in cls.region_fields:
            value = getattr(m, name)
            if value is None:
                continue
            if isinstance(value, str):
                if value not in known:
                    return False
            elif not value:
                if name not in cls.may_be_empty:
                    return False
            elif not known.issuperset(value):
                return False
        return True

    def advice(self, market: Market) -> list[tuple[str, str]]:
        """Doubtful but allowed values as (field, message) pairs (shown as warnings)."""
        return []

    @classmethod
    def advice_rows(cls, market: Market, measures: list) -> list[list[tuple[str, str]]]:
        """:meth:`advice` of each measure (all of this type), in order.

        The default loops over :meth:`advice` (nothing to do for a type without advice);
        built-in types with advice override it with a quick test of which measures have
        none, wording the others with :meth:`advice` (identical advice).
        """
        if _owner(cls, "advice") is Measure:
            return [[]] * len(measures)  # (one empty list, as in check_rows)
        return [m.advice(market) for m in measures]

    #: whether :meth:`pair_keys` gives the keys of the pairs the type's :meth:`apply_rows`
    #: covers (validation then finds their masks while checking, :func:`prepare_pair_masks`)
    has_pair_keys: ClassVar[bool] = False
    #: fields the type's batch hooks read of every measure: validation reads them once, while
    #: checking, into columns (:func:`prepare_pair_masks`) that the hooks take with
    #: :meth:`_Regions.column`; ``float_columns``: those held as float arrays
    columns: ClassVar[tuple[str, ...]] = ()
    float_columns: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def pair_keys(cls, ctx: _Regions, measures: list) -> list[tuple]:
        """The :meth:`_Regions.masks` key (importers, exporters, exempt) of the pairs each
        measure covers, for a type whose :meth:`apply_rows` covers such pairs
        (:attr:`has_pair_keys`); it reads only region fields and the market's regions."""
        raise NotImplementedError(f"{cls.__name__} has no pair keys")

    def apply(self, ctx: ApplyContext, b: int) -> None:
        """Write this measure's wedges into scenario ``b`` of ``ctx.builder``."""
        raise NotImplementedError

    def check_feasible(self, ctx: ApplyContext, b: int) -> None:
        """After every measure of scenario ``b`` is applied: call ``ctx.infeasible`` if the
        scenario can have no equilibrium (default: nothing to check)."""

    def book(self, ctx: BookContext, b: int) -> None:
        """Book the welfare entries this measure owns for scenario ``b`` (default: none)."""

    # -- batch hooks: one call per measure type and position in the scenarios ----------------
    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        """Write ``measures[i]`` (of this type, at position ``j`` of its scenario) into
        scenario ``rows[i]``; the rows are distinct.

        The default applies them one by one (:meth:`apply`); built-in types override it with
        array operations giving bit-identical arrays. Measures of a scenario are applied in
        their order, so an override sees what the measures before it wrote.
        """
        for b, m in zip(rows.tolist(), measures, strict=True):
            ctx.apply_one(b, j, m)

    @classmethod
    def check_feasible_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list) -> None:
        """:meth:`check_feasible` of each measure in its row (default: one by one)."""
        for b, m in zip(rows.tolist(), measures, strict=True):
            m.check_feasible(ctx, b)

    @classmethod
    def book_rows(cls, ctx: BookContext, rows: np.ndarray, measures: list) -> None:
        """:meth:`book` of each measure in its row (default: one by one; the rows are
        distinct)."""
        for b, m in zip(rows.tolist(), measures, strict=True):
            m.book(ctx, b)

    def describe(self, market: MarketUnits) -> str:
        """One plain-words sentence describing the measure.

        ``market`` needs ``price_unit`` and ``quantity_unit``. It may also offer two display
        hooks, which briefs use (``tradepolicy.reports``): ``describe_regions(codes) -> str``
        (``["USA", "EU"]`` -> ``"the United States and the EU"``) and
        ``describe_price(value) -> str`` (``110000.0`` -> ``"US$110/kg"``). Without them, as
        with a :class:`~tradepolicy.market.Market`, region codes and the market's price unit
        are used (the CLI's output).
        """
        fields = ", ".join(f"{k}={v}" for k, v in self.model_dump(exclude={"type"}).items())
        return f"{self.type} ({fields})"


def _numeric(annotation: Any) -> bool:
    """Whether an annotation is (or is a union holding) a float or int."""
    if annotation in (float, int):
        return True
    return any(_numeric(arg) for arg in typing.get_args(annotation) if arg is not type(None))


def register(cls: type[Measure]) -> type[Measure]:
    """Add a measure type to the registry (a class decorator).

    Parameters
    ----------
    cls : type of Measure
        The measure class; its ``type`` field's default is the name scenario files use.

    Returns
    -------
    type of Measure
        ``cls``, registered.

    Raises
    ------
    TypeError
        ``cls`` has no ``type: Literal[...]`` field with a default.
    """
    name = cls.model_fields["type"].default
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a `type: Literal[...]` field with a default")
    MEASURES[name] = cls
    register_tag(name, cls)
    return cls


class _Regions:
    """Region lookups shared by the apply and book contexts."""

    market: Market

    def idx(self, regions: str | list[str] | tuple[str, ...]) -> np.ndarray:
        return self.market.index(regions)

    def foreign(self, of: str | list[str]) -> list[str]:
        """Every region except ``of``."""
        skip = {of} if isinstance(of, str) else set(of)
        return [r for r in self.market.regions if r not in skip]

    def foreign_of(self, region: str) -> tuple[str, ...]:
        """``tuple(self.foreign(region))``, kept per region on the market's memo."""
        return memo_get(self.market, ("foreign", region), lambda: tuple(self.foreign(region)))

    def pair_mask(
        self,
        importers: list[str],
        exporters: list[str] | None = None,
        exempt: list[str] | tuple[str, ...] = (),
    ) -> np.ndarray:
        """(N,N) mask of pairs exporter → importer.

        By default every *foreign* origin of each importer; with ``exporters`` named, exactly
        those origins, so a region named both as importer and as exporter covers its own flow
        (trade inside an aggregate region such as ROW). ``exempt`` origins are left out.
        """
        key = (
            "pair_mask",
            tuple(importers),
            None if exporters is None else tuple(exporters),
            tuple(exempt),
        )
        memo = self.market.memo
        mask = memo.get(key)
        if mask is None:  # a function of the region lists alone: computed once per market
            N = len(self.market.regions)
            pos = self.market._positions
            col = np.zeros(N, dtype=bool)
            col[[pos[r] for r in importers]] = True
            if exporters is None:
                row = np.ones(N, dtype=bool)
            else:
                row = np.zeros(N, dtype=bool)
                row[[pos[r] for r in exporters]] = True
            if exempt:
                row[[pos[r] for r in exempt]] = False
            mask = row[:, None] & col[None, :]
            if exporters is None:
                np.fill_diagonal(mask, False)
            if len(memo) >= _MEMO_SIZE:  # bounded whatever the variety of region lists
                memo.clear()
            mask.flags.writeable = False
            memo[key] = mask
        return mask.copy()

    def masks(self, keys: list[tuple], measures: list | None = None) -> np.ndarray:
        """(R,N,N) pair masks of (importers, exporters, exempt) region lists (see
        :meth:`pair_mask`), taken from a table of the market's masks at once.

        ``measures`` (one per key): remember each measure's mask for this batch, which
        :meth:`remembered_masks` then returns without building the keys again (booking
        reads the masks that applying found).
        """
        table, at = self._table_rows(keys)
        if measures is not None:
            self._remember(table, measures, at)
        return table.masks[np.array(at, dtype=np.intp)]

    def _table_rows(self, keys: list[tuple]) -> tuple[_MaskTable, list[int]]:
        """The market's mask table and the row of each key's mask in it (added when new)."""
        memo = self.market.memo
        table = memo.get(("pair_mask_table",))
        if table is None or table.n >= _MEMO_SIZE:  # bounded whatever the variety of lists
            table = memo[("pair_mask_table",)] = _MaskTable(self.market.base_tariff.shape)
        ids = table.ids
        at = list(map(ids.get, keys))
        if None in at:
            for k, key in enumerate(keys):
                if at[k] is None:
                    i = ids.get(key)  # (a key repeated in this call is added once)
                    if i is None:
                        imp, exp, exempt = key
                        mask = self.pair_mask(list(imp), None if exp is None else list(exp), exempt)
                        i = table.add(key, mask)
                    at[k] = i
        return table, at

    def _mask_rows(self, table: _MaskTable) -> dict[int, int] | None:
        """The batch's remembered table rows of measures' masks (None: none kept here)."""
        return None

    def _remember(self, table: _MaskTable, measures: list, at: list[int]) -> None:
        """Remember the table rows ``at`` of ``measures``' masks for this batch (booking
        reads them: :meth:`remembered_masks`)."""
        rows = self._mask_rows(table)
        if rows is not None:
            rows.update(zip(map(id, measures), at, strict=True))

    def _prepared(self) -> ReadOnCheck | None:
        """What validation read of the batch's measures while checking them (None: none)."""
        return None

    def column(self, cls: type[Measure], measures: list, name: str, floats: bool = False) -> Any:
        """Field ``name`` of each of ``measures`` (all of type ``cls``, one of its
        :attr:`Measure.columns`): as validation read it while checking when these are one
        group of the measures it checked, else read now (the same values); ``floats``: as
        a float array (a new one)."""
        prepared = self._prepared()
        got = None if prepared is None else prepared.column(cls, measures, name)
        if got is None:
            got = list(map(attrgetter(name), measures))
        if floats:
            return np.array(got, dtype=float)
        return got

    def remembered_masks(self, measures: list) -> np.ndarray | None:
        """(R,N,N) the masks :meth:`masks` remembered for ``measures`` in this batch, or
        None when one of them has none."""
        return None


def memo_get(market: Market, key: tuple, make: Any) -> Any:
    """``market.memo[key]``, computed by ``make()`` the first time (a read-only array
    should not be changed by callers); the memo stays bounded."""
    memo = market.memo
    got = memo.get(key)
    if got is None:
        got = make()
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[key] = got
    return got


def region_set(market: Market) -> frozenset[str]:
    """The market's region codes as a set (on its memo)."""
    return memo_get(market, ("region_set",), lambda: frozenset(market._positions))


class MeasureConflict(ValueError):
    """Two measures of one scenario set the same instrument on the same pair or producer."""


@dataclass
class ApplyContext(_Regions):
    """What a measure sees when it writes its instruments."""

    market: Market
    cal: Calibration
    builder: InstrumentBuilder

    def claim(self, b: int, what: str, cells: np.ndarray, rule: str) -> np.ndarray:
        """Claim ``cells`` ((N,N) pairs exporter × importer or (N,) regions) of instrument
        ``what`` in scenario ``b`` for the measure being applied.

        Returns the cells another measure of the scenario set before (its index in
        ``builder.owners``' array) as a mask, so a measure that combines (e.g. the highest
        floor) can decide; with ``rule`` given, any such cell raises :class:`MeasureConflict`
        naming both measures, the first shared cell and ``rule`` (what is allowed).
        """
        bld = self.builder
        cells = np.asarray(cells, dtype=bool)
        owner = bld.owner_array(what, cells.shape)[b]
        if bld.current is None:  # applied outside build_instruments: nothing to compare
            return np.zeros(cells.shape, dtype=bool)
        j, kind = bld.current
        bld.kinds[b, j] = kind
        clash = cells & (owner >= 0) & (owner != j)
        if clash.any() and rule:
            first = tuple(int(k) for k in np.argwhere(clash)[0])
            i = int(owner[first])
            where = " → ".join(self.market.regions[k] for k in first)
            raise MeasureConflict(
                f"measure[{i}] ({bld.kind_of(b, i)}) and measure[{j}] ({kind}) both set the "
                f"{what} of {where}; {rule}"
            )
        shared = clash.copy()
        owner[cells] = j
        return shared

    def owner_of(self, b: int, what: str) -> np.ndarray | None:
        """Which measure (index) set each cell of ``what`` so far (-1: none)."""
        owner = self.builder.owners.get(what)
        return None if owner is None else owner[b]

    def infeasible(self, b: int, message: str) -> None:
        """Mark scenario ``b`` as having no equilibrium, with a plain explanation."""
        if not self.builder.infeasible[b]:
            self.builder.infeasible[b] = f"infeasible: {message}"

    # -- for batch hooks -----------------------------------------------------------------------
    errors: dict[int, tuple[int, str]] = field(default_factory=dict)
    #: the mask table and, per ``id(measure)``, its row for the masks found while applying
    #: (:meth:`_Regions.masks` with ``measures``); handed to booking by the pair index
    mask_rows: tuple[Any, dict[int, int]] | None = None
    #: what a measure type keeps between its hooks in this batch (e.g. from
    #: :meth:`Measure.apply_rows` for :meth:`Measure.check_feasible_rows`, or for booking:
    #: :attr:`PairIndex.kept`), by a key of its own
    kept: dict[Any, Any] = field(default_factory=dict)

    #: the pair keys, mask-table rows and columns of each type's measures found while
    #: checking them (:func:`prepare_pair_masks`), read by :meth:`pair_masks` and
    #: :meth:`_Regions.column`; handed to booking by the pair index
    prepared: ReadOnCheck | None = None

    def _prepared(self) -> ReadOnCheck | None:
        return self.prepared

    def pair_masks(
        self, cls: type[Measure], measures: list, remember: bool = False
    ) -> tuple[list[tuple], np.ndarray]:
        """``(keys, masks)``: :meth:`Measure.pair_keys` of ``measures`` (all of type ``cls``)
        and their (R,N,N) :meth:`masks`, as validation found them while checking when these
        are one group of the measures it checked, else computed now (the same values).
        ``remember``: as :meth:`masks` with ``measures``."""
        got = None if self.prepared is None else self.prepared.get(cls, measures, self.market)
        if got is None:
            keys = cls.pair_keys(self, measures)
            return keys, self.masks(keys, measures if remember else None)
        keys, table, at = got
        if remember:
            self._remember(table, measures, at.tolist())
        return keys, table.masks[at]

    def _mask_rows(self, table: _MaskTable) -> dict[int, int] | None:
        if self.mask_rows is None or self.mask_rows[0] is not table:
            self.mask_rows = (table, {})  # (a new table: rows of the old one are not mixed in)
        return self.mask_rows[1]

    def apply_one(self, b: int, j: int, m: Measure) -> None:
        """Apply measure ``m`` (position ``j``) to scenario ``b`` alone; a conflict is
        recorded for the scenario (:attr:`errors`), whose later measures are then skipped."""
        bld = self.builder
        bld.current = (j, m.type)
        try:
            m.apply(self, b)
        except MeasureConflict as exc:
            self.errors[b] = (j, str(exc))
        finally:
            bld.current = None

    def claim_rows(
        self,
        rows: np.ndarray,
        j: int,
        measures: list,
        what: str,
        cells: np.ndarray,
        rule: str,
    ) -> np.ndarray:
        """:meth:`claim` for measure ``j`` of each row at once (``cells``: (R, ...)).

        Rows where another measure set one of the cells are left to the measure's own
        :meth:`Measure.apply` (which raises or combines exactly as alone); returns the rows
        (a mask) whose claims were written here, for the caller to write their values.
        """
        owner = self.builder.owner_array(what, cells.shape[1:])
        ok = _claim_rows(owner, rows, cells, j)
        for i in np.flatnonzero(~ok).tolist():
            self.apply_one(int(rows[i]), j, measures[i])
        return ok


def _claim_rows(owner: np.ndarray, rows: np.ndarray, cells: np.ndarray, j: int) -> np.ndarray:
    """Claim ``cells[i]`` of ``owner[rows[i]]`` for measure ``j`` in each row at once: rows
    where another measure owns one of the cells are left as they are (False in the returned
    mask); the others' cells are set to ``j``. One compiled pass over the (R, cells) claims
    when the rows are distinct (as :func:`apply_batch` groups them), else
    :func:`_claim_rows_numpy`, the reference it equals."""
    R = len(rows)
    if R and owner.flags.c_contiguous and cells.shape == (R, *owner.shape[1:]):
        flat_owner = owner.reshape(len(owner), -1)  # (a view: written in place)
        flat_cells = np.ascontiguousarray(cells, dtype=bool).reshape(R, -1)
        ok = np.empty(R, dtype=bool)
        at = np.ascontiguousarray(rows, dtype=np.intp)
        if _claim_pass(flat_owner, at, flat_cells, int(j), ok):
            return ok
    return _claim_rows_numpy(owner, rows, cells, j)


def _claim_rows_numpy(owner: np.ndarray, rows: np.ndarray, cells: np.ndarray, j: int) -> np.ndarray:
    """:func:`_claim_rows` with array operations (the reference; rows may repeat)."""
    before = owner[rows]
    clash = cells & (before >= 0) & (before != j)
    ok = ~clash.reshape(len(rows), -1).any(axis=1)
    owner[rows[ok]] = np.where(cells[ok], j, before[ok])
    return ok


@nb.njit(cache=True, nogil=True)
def _claim_pass(owner, rows, cells, j, ok):  # pragma: no cover (compiled)
    # False (nothing written) when a row repeats; else ok[i]: row i has no clash, and the
    # cells of those rows are set to j (the clashes are found before anything is written)
    seen = np.zeros(owner.shape[0], dtype=np.bool_)
    for i in range(rows.size):
        if seen[rows[i]]:
            return False
        seen[rows[i]] = True
    for i in range(rows.size):
        row = owner[rows[i]]
        ok[i] = True
        for m in range(cells.shape[1]):
            if cells[i, m] and row[m] >= 0 and row[m] != j:
                ok[i] = False
                break
    for i in range(rows.size):
        if ok[i]:
            row = owner[rows[i]]
            for m in range(cells.shape[1]):
                if cells[i, m]:
                    row[m] = j
    return True


def mask_cells(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The set cells of (R, N, N) masks in C order: each one's mask ``i`` and flat cell
    ``o·N + d``.

    ``np.nonzero(masks)`` as ``(i, o·N + d)``, from one pass over the flat array (about three
    times faster than its three index arrays).
    """
    nn = masks.shape[1] * masks.shape[2]
    flat = np.flatnonzero(masks)
    i = flat // nn
    return i, flat - i * nn


def put_cells(array: np.ndarray, b: np.ndarray, cell: np.ndarray, values: Any) -> None:
    """``array[b, o, d] = values`` at the flat cells ``cell = o·N + d`` of (B, N, N)
    ``array``: one flat index where the array is contiguous (faster than three)."""
    n1, n2 = array.shape[1], array.shape[2]
    if array.flags.c_contiguous:
        array.reshape(-1)[b * (n1 * n2) + cell] = values
    else:
        array[b, cell // n2, cell % n2] = values


class _MaskTable:
    """Pair masks stacked in one array (row ``ids[key]``, whose key is ``keys[row]``),
    grown by doubling."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.ids: dict[tuple, int] = {}
        self.keys: list[tuple] = []
        self.n = 0
        self._arr = np.zeros((16, *shape), dtype=bool)

    @property
    def masks(self) -> np.ndarray:
        return self._arr[: self.n]

    def add(self, key: tuple, mask: np.ndarray) -> int:
        if self.n == len(self._arr):
            grown = np.zeros((2 * self.n, *self._arr.shape[1:]), dtype=bool)
            grown[: self.n] = self._arr
            self._arr = grown
        self._arr[self.n] = mask
        self.ids[key] = self.n
        self.keys.append(key)
        self.n += 1
        return self.n - 1


class ReadOnCheck:
    """What validation read of the measures of each type right after checking them: their
    pair keys and mask-table rows, and their :attr:`Measure.columns`; for applying and booking
    the same groups of measures (a group is a slice of its type's measures in check order)."""

    def __init__(self) -> None:
        #: type -> (table, rows in the table) of all its measures, in check order (their keys
        #: are the table's: a batch's thousands of key tuples are not kept alive, which the
        #: cyclic garbage collector would otherwise walk again and again)
        self.by_type: dict[type, tuple[_MaskTable, np.ndarray]] = {}
        #: type -> field -> the values of all its measures (a list, or a float array for
        #: :attr:`Measure.float_columns`), in check order
        self.columns: dict[type, dict[str, Any]] = {}
        #: id(a group's measure list) -> (the list, its type, start, stop) in that order
        self.spans: dict[int, tuple[list, type, int, int]] = {}

    def __reduce__(self) -> tuple[type, tuple]:
        # found by object ids, which another process does not share: sent empty (a set's
        # unused instruments go with it to sweep workers, which then read the measures)
        return (ReadOnCheck, ())

    def _span(self, cls: type, measures: list) -> tuple[int, int] | None:
        """Where ``measures`` sit in the measures of ``cls`` read while checking (None: they
        are not one group of them)."""
        span = self.spans.get(id(measures))
        if span is None or span[0] is not measures or span[1] is not cls:
            return None
        return span[2], span[3]

    def column(self, cls: type, measures: list, name: str) -> Any:
        """Field ``name`` of ``measures`` as read while checking (None: not read so)."""
        span = self._span(cls, measures)
        cols = self.columns.get(cls)
        if span is None or cols is None or name not in cols:
            return None
        return cols[name][span[0] : span[1]]

    def get(
        self, cls: type, measures: list, market: Market
    ) -> tuple[list[tuple], _MaskTable, np.ndarray] | None:
        """The keys, table and rows of ``measures`` when they are one prepared group of
        ``cls`` and the market's mask table is still the one they index."""
        span = self._span(cls, measures)
        got = self.by_type.get(cls)
        if span is None or got is None or market.memo.get(("pair_mask_table",)) is not got[0]:
            return None
        table, at = got
        rows = at[span[0] : span[1]]
        return list(map(table.keys.__getitem__, rows.tolist())), table, rows


def prepare_pair_masks(
    market: Market, cls: type[Measure], measures: list, prepared: ReadOnCheck
) -> None:
    """Find the pair keys and mask-table rows of ``measures`` (every measure of type
    ``cls``, all passing their checks), and read its :attr:`Measure.columns`, right after
    checking them (while they are at hand: later hooks then need not read the measures)."""
    if not (measures and _batched(cls, "apply_rows", "apply")):  # (else applied one by one)
        return
    names = cls.columns
    if names:  # a pass per field: one pass for all makes a tuple per measure, which costs more
        floats = cls.float_columns
        columns = {n: list(map(attrgetter(n), measures)) for n in names}
        prepared.columns[cls] = {
            n: np.array(v, dtype=float) if n in floats else v for n, v in columns.items()
        }
    if not cls.has_pair_keys:
        return
    regions = _Regions()
    regions.market = market
    table, at = regions._table_rows(cls.pair_keys(regions, measures))
    prepared.by_type[cls] = (table, np.array(at, dtype=np.intp))


@dataclass
class BookContext(_Regions):
    """What a measure sees when it books welfare: the solved batch and the ledgers."""

    market: Market
    cal: Calibration
    inst: Instruments
    state: State
    pair_index: list[dict[int, list[int]]]  # per scenario: id(measure) -> its pair indices
    ledger: dict[str, np.ndarray] = field(default_factory=dict)  # entry -> (B, N)
    flows: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (B, N, N)
    regional: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (B, N)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, entry: str, b: int, regions: Any, amount: Any) -> None:
        """Add ``amount`` (currency per year) to ``entry`` of ``regions`` in scenario ``b``."""
        self.ledger[entry][
            b, self.market.index(regions) if not isinstance(regions, np.ndarray) else regions
        ] += amount

    def _prepared(self) -> ReadOnCheck | None:
        return getattr(self.pair_index, "prepared", None)

    def pairs_of(self, measure: Measure, b: int) -> list[int]:
        return self.pair_index[b].get(id(measure), [])

    def remembered_masks(self, measures: list) -> np.ndarray | None:
        kept = getattr(self.pair_index, "mask_rows", None)
        if kept is None:
            return None
        table, rows = kept
        at = list(map(rows.get, map(id, measures)))
        if None in at:
            return None
        return table.masks[np.array(at, dtype=np.intp)]

    def first_pairs(self, rows: np.ndarray, measures: list) -> np.ndarray:
        """The first pair (index k) of ``measures[i]`` in row ``rows[i]`` (each wrote one)."""
        pi = self.pair_index
        return np.array(
            [pi[b][id(m)][0] for b, m in zip(rows.tolist(), measures, strict=True)],
            dtype=np.intp,
        )

    def lam(self, measure: Measure, b: int) -> np.ndarray:
        """The solved complementarity variables of ``measure`` in scenario ``b``."""
        return self.state.lam[b, self.pairs_of(measure, b)]


def apply_measures(ctx: ApplyContext, b: int, measures: list[Measure]) -> None:
    """Apply a scenario's measures in order (raises :class:`MeasureConflict`); the reference
    for :func:`apply_batch`."""
    for j, m in enumerate(measures):
        ctx.builder.current = (j, m.type)
        m.apply(ctx, b)
    ctx.builder.current = None


def _owner(cls: type, name: str) -> type:
    """The class of ``cls``'s method resolution order that defines ``name``."""
    return next(k for k in cls.__mro__ if name in k.__dict__)


def _batched(cls: type[Measure], hook: str, single: str) -> bool:
    """Whether ``cls``'s batch ``hook`` was written for its per-row ``single`` method (a
    subclass overriding only the per-row method gets the default loop)."""
    return issubclass(_owner(cls, hook), _owner(cls, single))


def _books(cls: type[Measure]) -> bool:
    """Whether measures of ``cls`` book anything (an own :meth:`Measure.book` or
    :meth:`Measure.book_rows`)."""
    return _owner(cls, "book") is not Measure or _owner(cls, "book_rows") is not Measure


def _group_all(measure_lists: list[list[Measure]]) -> list[tuple[int, type[Measure], list, list]]:
    """Every (j, type, rows, measures) group, in the order of j, then of the first scenario
    holding the type at j."""
    J = max((len(ms) for ms in measure_lists), default=0)
    by: list[dict[type[Measure], tuple[list[int], list[Measure]]]] = [{} for _ in range(J)]
    for b, ms in enumerate(measure_lists):
        for j, m in enumerate(ms):
            at = by[j]
            entry = at.get(type(m))
            if entry is None:
                entry = at[type(m)] = ([], [])
            entry[0].append(b)
            entry[1].append(m)
    return [(j, cls, rows, ms) for j, at in enumerate(by) for cls, (rows, ms) in at.items()]


def _without(
    group: tuple[int, type[Measure], list, list], skip: dict
) -> tuple[int, type[Measure], list, list]:
    """``group`` without the scenarios in ``skip``."""
    if not skip:
        return group
    j, cls, rows, ms = group
    keep = [i for i, b in enumerate(rows) if b not in skip]
    if len(keep) == len(rows):
        return group
    return j, cls, [rows[i] for i in keep], [ms[i] for i in keep]


class PairIndex(list):
    """Per scenario: ``id(measure)`` -> the indices of the pairs it wrote (a list, as
    :func:`apply_batch` returns it), with the groups of measures it applied
    (:func:`_group_all` of its ``measure_lists``), which booking the same measures reuses."""

    #: the (j, type, rows, measures) groups of the measure lists applied (None: unknown)
    groups: list[tuple[int, type[Measure], list, list]] | None = None
    #: how many measures those lists held
    n_measures: int = -1
    #: the mask table and the rows of the measures' masks found while applying them
    #: (:attr:`ApplyContext.mask_rows`), valid for these measure objects
    mask_rows: tuple[Any, dict[int, int]] | None = None
    #: what measure types kept while applying them (:attr:`ApplyContext.kept`), for booking
    #: the same measure lists in the same rows
    kept: dict[Any, Any] | None = None
    #: what validation read of the measures while checking them (:attr:`ApplyContext.prepared`)
    prepared: ReadOnCheck | None = None

    def tile(self, times: int) -> PairIndex:
        """The pair index of ``times`` copies of its batch one after another (row
        ``t * len(self) + b`` holds the measure objects of row ``b``), with the groups
        :func:`_group_all` finds for the measure lists repeated so (Monte Carlo draws)."""
        n = len(self)
        out = PairIndex(list(self) * times)
        out.mask_rows = self.mask_rows
        if self.groups is not None and self.n_measures >= 0:
            out.n_measures = self.n_measures * times
            out.groups = [
                (j, cls, [b + t * n for t in range(times) for b in rows], ms * times)
                for j, cls, rows, ms in self.groups
            ]
        return out


def _groups_for(
    pair_index: Any, measure_lists: list[list[Measure]]
) -> list[tuple[int, type[Measure], list, list]]:
    """The groups of ``measure_lists``: those ``pair_index`` was applied with when it holds
    them for lists of the same shape, else computed (:func:`_group_all`)."""
    groups = getattr(pair_index, "groups", None)
    if (
        groups is not None
        and len(pair_index) == len(measure_lists)
        and pair_index.n_measures == sum(map(len, measure_lists))
    ):
        return groups
    return _group_all(measure_lists)


def apply_batch(
    ctx: ApplyContext,
    measure_lists: list[list[Measure]],
    groups: list[tuple[int, type[Measure], list, list]] | None = None,
) -> PairIndex:
    """Let every measure write into its scenario (row ``b`` of ``ctx.builder``), the
    measures of each type at each position at once (:meth:`Measure.apply_rows`), then check
    feasibility. Equals :func:`apply_measures` row by row, in the same order.

    A scenario whose measures conflict stops at the conflict, as alone; its message is in
    ``ctx.errors[b] = (j, message)``. Returns, per scenario, ``id(measure)`` -> the indices
    of the complementarity pairs it wrote (measures that wrote none are left out).

    ``groups``: :func:`_group_all` of ``measure_lists`` when the caller has it.
    """
    bld = ctx.builder
    bld.measure_lists = measure_lists
    pair_index = PairIndex({} for _ in measure_lists)
    errors = ctx.errors
    if groups is None:
        groups = _group_all(measure_lists)
    pair_index.groups = groups
    pair_index.n_measures = sum(map(len, measure_lists))
    for group in groups:
        # scenarios stopped by a conflict at an earlier position are skipped
        j, cls, rows_l, ms = _without(group, errors)
        if not rows_l:
            continue
        rows = np.array(rows_l, dtype=np.intp)
        before = bld.npairs[rows].copy()
        if _batched(cls, "apply_rows", "apply"):
            cls.apply_rows(ctx, rows, ms, j)
        else:
            Measure.apply_rows.__func__(cls, ctx, rows, ms, j)  # type: ignore[attr-defined]
        wrote = bld.npairs[rows] - before
        idx = np.flatnonzero(wrote)
        for i, k0, k1 in zip(
            idx.tolist(), before[idx].tolist(), (before + wrote)[idx].tolist(), strict=True
        ):
            pair_index[rows_l[i]][id(ms[i])] = list(range(k0, k1))
    for group in groups:
        _, cls, rows_l, ms = _without(group, errors)
        if not rows_l or cls.check_feasible is Measure.check_feasible:  # nothing to check
            continue
        rows = np.array(rows_l, dtype=np.intp)
        if _batched(cls, "check_feasible_rows", "check_feasible"):
            cls.check_feasible_rows(ctx, rows, ms)
        else:
            Measure.check_feasible_rows.__func__(cls, ctx, rows, ms)  # type: ignore[attr-defined]
    pair_index.mask_rows = ctx.mask_rows
    pair_index.kept = ctx.kept
    pair_index.prepared = ctx.prepared
    return pair_index


def book_batch(ctx: BookContext, measure_lists: list[list[Measure]]) -> None:
    """Let each measure book its entries, the measures of each type at each position at
    once (:meth:`Measure.book_rows`); equals booking scenario by scenario, in order.

    The groups are those of the pair index when it was built for these lists
    (:class:`PairIndex`); types that book nothing are skipped."""
    for _, cls, rows_l, ms in _groups_for(ctx.pair_index, measure_lists):
        if not rows_l or not _books(cls):
            continue
        rows = np.array(rows_l, dtype=np.intp)
        if _batched(cls, "book_rows", "book"):
            cls.book_rows(ctx, rows, ms)
        else:
            Measure.book_rows.__func__(cls, ctx, rows, ms)  # type: ignore[attr-defined]


def conflict_problems(market: Market, measures: list[Measure]) -> list[tuple[str, str]]:
    """Measures of one scenario that set the same instrument on the same target, as
    (field, message) pairs (``measure[j]``), found by applying them to a scratch batch."""
    from tradepolicy.model.instruments import InstrumentBuilder

    builder = InstrumentBuilder(1, market.base_tariff, market.base_export_tax)
    ctx = ApplyContext(market=market, cal=market.calibration, builder=builder)
    try:
        apply_measures(ctx, 0, measures)
    except MeasureConflict as exc:
        j = builder.current[0] if builder.current else 0
        return [(f"measure[{j}]", str(exc))]
    return []


_LIST_ADAPTERS: dict[type, TypeAdapter] = {}


def dump_measures(measures: list[Measure]) -> list[dict[str, Any]]:
    """``m.model_dump(mode="json", exclude_none=True)`` of each measure, in order, the measures
    of each type serialised in one call (several times faster for many measures)."""
    by: dict[type, list[int]] = {}
    for i, m in enumerate(measures):
        by.setdefault(type(m), []).append(i)
    out: list[dict[str, Any]] = [{}] * len(measures)
    for cls, idx in by.items():
        adapter = _LIST_ADAPTERS.get(cls)
        if adapter is None:
            adapter = _LIST_ADAPTERS[cls] = TypeAdapter(list[cls])  # type: ignore[valid-type]
        dumped = adapter.dump_python([measures[i] for i in idx], mode="json", exclude_none=True)
        for i, d in zip(idx, dumped, strict=True):
            out[i] = d
    return out


def measure_types() -> dict[str, type[Measure]]:
    """Return the registered measure types.

    Returns
    -------
    dict of str to type of Measure
        ``{name in a scenario file: measure class}``.

    Examples
    --------
    >>> from tradepolicy.measures import measure_types
    >>> measure_types()["tariff"].__name__
    'Tariff'
    """
    return dict(MEASURES)
