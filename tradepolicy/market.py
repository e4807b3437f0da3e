"""Market definitions: schema, loading, base data arrays.

A market is one commodity at one stage, defined in a TOML file (docs/inputs.md), validated with
pydantic before anything is solved.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from tradepolicy import _paths
from tradepolicy import regions as region_table
from tradepolicy._files import exists, read_text, resolve_reference
from tradepolicy._validation import (
    MAX_NAME,
    MAX_TEXT,
    Float,
    problems_from_validation_error,
    read_toml,
)
from tradepolicy.errors import InputError
from tradepolicy.units import is_valid as unit_is_valid

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

RegionCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,11}$"),
]
Number = Float  # pydantic rejects non-numeric strings, booleans and (allow_inf_nan) inf/NaN
Name = Annotated[str, StringConstraints(max_length=MAX_NAME)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]

#: Largest accepted elasticity of each kind. Generous limits against unit slips and overflow
#: (measured mineral supply and demand elasticities are of order 0.1-5); the substitution bound
#: leaves room for near-homogeneous goods (σ in the thousands approaches the law of one price).
ELASTICITY_MAX = {"supply": 100.0, "demand": 100.0, "substitution": 10_000.0}

__all__ = ["Market", "MarketSpec", "list_chains", "list_markets", "load_market"]


class ShortRunElasticitiesSpec(BaseModel):
    """Short-run elasticities (``[elasticities.short_run]``).

    Capacity fixed, private inventories respond. A kind left out keeps its medium-run value.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    supply: dict[str, Number] | None = None
    demand: dict[str, Number] | None = None
    substitution: dict[str, Number] | None = None


class ElasticitiesSpec(BaseModel):
    """Supply, demand and substitution elasticities (medium run).

    Supply ε_o ≥ 0, demand η_d ≥ 0 (absolute value), substitution σ_d > 0 (medium run),
    and optionally the short run (``short_run``).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    supply: dict[str, Number]
    demand: dict[str, Number]
    substitution: dict[str, Number]
    short_run: ShortRunElasticitiesSpec | None = None


class _UncertaintyTables(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    supply: dict[str, Number] = Field(default_factory=dict)
    demand: dict[str, Number] = Field(default_factory=dict)
    substitution: dict[str, Number] = Field(default_factory=dict)


class ElasticityUncertaintySpec(_UncertaintyTables):
    """Standard errors of the elasticities.

    Same keys as ``[elasticities]`` (absent = 0); ``short_run``: those of
    ``[elasticities.short_run]``.
    """

    short_run: _UncertaintyTables | None = None


class _BasisTables(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    supply: dict[str, Text] = Field(default_factory=dict)
    demand: dict[str, Text] = Field(default_factory=dict)
    substitution: dict[str, Text] = Field(default_factory=dict)


class ElasticityBasisSpec(_BasisTables):
    """How each elasticity was obtained (e.g. ``prior``, ``estimated``, ``estimated+prior``)."""

    short_run: _BasisTables | None = None


ELASTICITY_KINDS = ("supply", "demand", "substitution")
#: the horizons a market's elasticities describe (docs/model.md, "Horizons")
HORIZONS = ("short", "medium")


class RegionInfoSpec(BaseModel):
    """A region the shipped regions table does not know (``[region_info.<CODE>]``)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    short_name: Annotated[str, StringConstraints(max_length=80)] | None = None
    in_text: Annotated[str, StringConstraints(max_length=200)] | None = None
    colour: Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")] = "#7f7f7f"
    groups: list[str] = Field(default_factory=list)
    aggregate: bool = False


class MarketSpec(BaseModel):
    """Schema of a market file (docs/inputs.md)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
    commodity: Name
    stage: Name = ""
    description: Text = ""
    base_year: Annotated[int, Field(ge=1900, le=2100)]
    quantity_unit: Name = "t"
    currency: Name = "USD"
    regions: Annotated[list[RegionCode], Field(min_length=1, max_length=500)]
    base_price: dict[str, Number]
    elasticities: ElasticitiesSpec
    elasticity_se: ElasticityUncertaintySpec = Field(default_factory=ElasticityUncertaintySpec)
    elasticity_basis: ElasticityBasisSpec = Field(default_factory=ElasticityBasisSpec)
    calibration_id: Name = ""
    base_tariffs: dict[str, dict[str, Number]] = Field(default_factory=dict)
    base_export_taxes: dict[str, dict[str, Number]] = Field(default_factory=dict)
    flows: dict[str, dict[str, Number]] | None = None
    flows_file: Name | None = None
    capacity_file: Name | None = None
    projects_file: Name | None = None
    demand_paths_file: Name | None = None
    supply_projections_file: Name | None = None
    seed_shares: dict[str, dict[str, Number]] = Field(default_factory=dict)
    sources: dict[Name, Text] = Field(default_factory=dict)
    region_info: dict[RegionCode, RegionInfoSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> MarketSpec:
        problems: list[tuple[str, str]] = []
        regions = self.regions
        allowed = ", ".join(regions)
        for code in regions:
            if code not in self.region_info and not region_table.known(code):
                problems.append(("regions", str(region_table.UnknownRegionError(code))))
        for code in self.region_info:
            if code not in regions:
                problems.append((f"region_info.{code}", f"{code!r} is not in `regions`"))
            elif region_table.known(code) and region_table.get(code).name != (
                self.region_info[code].name
            ):
                problems.append(
                    (
                        f"region_info.{code}",
                        f"{code!r} is already in the regions table as "
                        f"{region_table.get(code).name!r}; use another code",
                    )
                )
        if len(set(regions)) != len(regions):
            dup = sorted({r for r in regions if regions.count(r) > 1})
            problems.append(("regions", f"duplicate region codes {dup}"))
        if not unit_is_valid(self.quantity_unit):
            problems.append(("quantity_unit", f"{self.quantity_unit!r} is not a unit pint parses"))
        if not unit_is_valid(self.currency):
            problems.append(("currency", f"unknown currency {self.currency!r}"))

        def check_regional(
            name: str, table: dict[str, float], lo: float, strict: bool, hi: float = math.inf
        ) -> None:
            for key, value in table.items():
                where = f"{name}.{key}"
                if key != "default" and key not in regions:
                    problems.append(
                        (where, f"unknown region {key!r} (allowed: default, {allowed})")
                    )
                if not math.isfinite(value) or value < lo or (strict and value <= lo):
                    rel = ">" if strict else ">="
                    problems.append((where, f"must be a finite number {rel} {lo:g}; got {value!r}"))
                elif value > hi:
                    problems.append(
                        (where, f"must be at most {hi:g} (a plausible elasticity); got {value!r}")
                    )
            if "default" not in table and set(regions) - set(table):
                missing = sorted(set(regions) - set(table))
                problems.append((name, f"no value for {missing}; give them or a `default`"))

        check_regional("base_price", self.base_price, 0.0, strict=True)
        for kind in ELASTICITY_KINDS:
            check_regional(
                f"elasticities.{kind}",
                getattr(self.elasticities, kind),
                0.0,
                strict=kind == "substitution",
                hi=ELASTICITY_MAX[kind],
            )
        short = self.elasticities.short_run
        for kind in ELASTICITY_KINDS:
            table = None if short is None else getattr(short, kind)
            if table is not None:
                check_regional(
                    f"elasticities.short_run.{kind}",
                    table,
                    0.0,
                    strict=kind == "substitution",
                    hi=ELASTICITY_MAX[kind],
                )

        def check_se(prefix: str, se_tables: Any, values: Any) -> None:
            for kind in ELASTICITY_KINDS:
                table = getattr(se_tables, kind)
                have = None if values is None else getattr(values, kind)
                keys = set(have or ())
                for key, value in table.items():
                    where = f"elasticity_se.{prefix}{kind}.{key}"
                    if key not in keys:
                        problems.append(
                            (
                                where,
                                f"no elasticities.{prefix}{kind}.{key} to attach a standard "
                                f"error to (allowed: {', '.join(sorted(keys)) or 'none'})",
                            )
                        )
                    elif not math.isfinite(value) or value < 0:
                        problems.append((where, f"must be a finite number >= 0; got {value!r}"))

        check_se("", self.elasticity_se, self.elasticities)
        if self.elasticity_se.short_run is not None:
            check_se("short_run.", self.elasticity_se.short_run, short)

        def check_matrix(name: str, table: dict[str, dict[str, float]], lo: float) -> None:
            for exp, row in table.items():
                if exp not in regions:
                    problems.append(
                        (f"{name}.{exp}", f"unknown exporter {exp!r} (allowed: {allowed})")
                    )
                for imp, value in row.items():
                    where = f"{name}.{exp}.{imp}"
                    if imp not in regions:
                        problems.append((where, f"unknown importer {imp!r} (allowed: {allowed})"))
                    if not math.isfinite(value) or value < lo:
                        problems.append((where, f"must be a finite number >= {lo:g}; got {value}"))

        check_matrix("base_tariffs", self.base_tariffs, 0.0)
        check_matrix("base_export_taxes", self.base_export_taxes, 0.0)
        check_matrix("seed_shares", self.seed_shares, 0.0)
        for exp, row in self.seed_shares.items():
            for imp, value in row.items():
                if value >= 1 or exp == imp:
                    problems.append(
                        (f"seed_shares.{exp}.{imp}", "a seed share is in [0, 1) for a foreign pair")
                    )
        if self.flows is not None and self.flows_file is not None:
            problems.append(("flows", "give either `flows` or `flows_file`, not both"))
        elif self.flows is None and self.flows_file is None:
            problems.append(("flows", "missing: give a `[flows]` table or a `flows_file`"))
        elif self.flows is not None:
            check_matrix("flows", self.flows, 0.0)
        if problems:
            raise _SpecProblems(problems)
        return self


class _SpecProblems(ValueError):
    """Carries several (field, message) problems through pydantic."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))


def _regional(
    table: dict[str, float], regions: list[str], fallback: float = math.nan
) -> np.ndarray:
    default = table.get("default", fallback)
    return np.array([float(table.get(r, default)) for r in regions])


def _matrix(table: dict[str, dict[str, float]], regions: list[str]) -> np.ndarray:
    idx = {r: i for i, r in enumerate(regions)}
    out = np.zeros((len(regions), len(regions)))
    for exp, row in table.items():
        for imp, value in row.items():
            out[idx[exp], idx[imp]] = value
    return out


@dataclass(frozen=True)
class Market:
    """A validated market with its base data as arrays (exporter × importer).

    Attributes
    ----------
    spec : MarketSpec
        The validated file contents.
    path : Path or None
        Where the market was read from (None when built in code).
    flows : ndarray (region, region)
        Base quantities, exporter × importer, in ``quantity_unit`` per year.
    flow_sources : dict
        ``(exporter, importer) -> source text`` when the flows came from a CSV.
    year_tables : dict
        The optional capacity, project, demand-path and supply-projection tables
        (``capacity_file``, ``projects_file``, ``demand_paths_file``,
        ``supply_projections_file``), validated; see :attr:`capacity`.
    horizon : {"medium", "short"}
        Which elasticities ``spec.elasticities`` holds: the medium run (the file's
        ``[elasticities]``, the default) or the short run (``[elasticities.short_run]``
        merged in by :meth:`at_horizon`).
    """

    spec: MarketSpec
    path: Path | None = None
    flows: np.ndarray = field(default=None, repr=False)  # type: ignore[arg-type]
    flow_sources: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    year_tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)
    horizon: str = "medium"
    #: the medium-run market a short-run one was made from (None for a medium-run market)
    _medium: Market | None = field(default=None, repr=False, compare=False)

    # -- labels ---------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The market's id (its file's ``id``)."""
        return self.spec.id

    @property
    def commodity(self) -> str:
        """The commodity traded, in words."""
        return self.spec.commodity

    @property
    def regions(self) -> tuple[str, ...]:
        """The market's regions, in file order."""
        return tuple(self.spec.regions)

    @property
    def n(self) -> int:
        """The number of regions."""
        return len(self.spec.regions)

    @property
    def quantity_unit(self) -> str:
        """The unit of quantities (e.g. ``t``)."""
        return self.spec.quantity_unit

    @property
    def currency(self) -> str:
        """The currency of prices and money (e.g. ``USD``)."""
        return self.spec.currency

    @property
    def price_unit(self) -> str:
        """The unit of prices: the currency per quantity unit."""
        return f"{self.currency}/{self.quantity_unit}"

    # -- horizons (docs/model.md, "Horizons") ---------------------------------------------
    @property
    def has_short_run(self) -> bool:
        """Whether the market file gives short-run elasticities (``[elasticities.short_run]``)."""
        return self.horizon == "short" or self.spec.elasticities.short_run is not None

    def at_horizon(self, horizon: str) -> Market:
        """Return the market with the elasticities of ``horizon`` (``"short"`` or ``"medium"``).

        The base data (flows, prices, tariffs, year tables) are the same object, so both
        horizons reproduce the same baseline. The short run takes each kind of
        ``[elasticities.short_run]`` (a kind left out keeps its medium-run value) and its
        standard errors from ``[elasticity_se.short_run]`` (absent = 0). ``at_horizon`` of the
        market's own horizon is the market itself.

        Parameters
        ----------
        horizon : {"short", "medium"}
            The horizon whose elasticities the returned market holds.

        Returns
        -------
        Market
            The market at ``horizon`` (the same base data, other elasticities).

        Raises
        ------
        InputError
            ``horizon`` is not a known horizon, or the market file has no
            ``[elasticities.short_run]`` table.
        """
        source = str(self.path) if self.path is not None else f"<market {self.id}>"
        if horizon not in HORIZONS:
            raise InputError(
                source, [("horizon", f"unknown horizon {horizon!r} (allowed: short, medium)")]
            )
        if horizon == self.horizon:
            return self
        if horizon == "medium":
            if self._medium is None:
                raise InputError(
                    source, [("horizon", "a short-run market built in code has no medium run")]
                )
            return self._medium
        short = self.spec.elasticities.short_run
        if short is None:
            raise InputError(
                source,
                [
                    (
                        "elasticities.short_run",
                        f"market {self.id!r} has no short-run elasticities; add a "
                        "`[elasticities.short_run]` table (supply, demand, substitution) to "
                        "its file to use the short-run horizon",
                    )
                ],
            )
        data = self.spec.model_dump(mode="python")
        se_short = self.spec.elasticity_se.short_run
        basis_short = self.spec.elasticity_basis.short_run
        for kind in ELASTICITY_KINDS:
            table = getattr(short, kind)
            if table is None:
                continue  # keeps the medium-run values and standard errors
            data["elasticities"][kind] = dict(table)
            data["elasticity_se"][kind] = dict(getattr(se_short, kind)) if se_short else {}
            data["elasticity_basis"][kind] = dict(getattr(basis_short, kind)) if basis_short else {}
        spec = MarketSpec.model_validate(data)
        _check_flows(self.flows, spec, source)
        return replace(self, spec=spec, horizon="short", _medium=self)

    def input_files(self) -> list[Path]:
        """Return the files the market was read from.

        Returns
        -------
        list of Path
            Its TOML file, then the flows CSV and the capacity, project, demand-path and
            supply-projection CSVs it names (empty for a market built in code).
        """
        files = [self.path] if self.path is not None else []
        if self.spec.flows_file is not None and self.path is not None:
            files.append(self.path.parent / self.spec.flows_file)
        if self.path is not None:
            for name in YEAR_FILES.values():
                ref = getattr(self.spec, name)
                if ref is not None:
                    files.append(self.path.parent / ref)
        return files

    # -- capacity data (docs/inputs.md; used by pathway sets) ----------------------------------
    def _year_table(self, name: str) -> pd.DataFrame | None:
        table = self.year_tables.get(name)
        return None if table is None else table.copy()

    @property
    def capacity(self) -> pd.DataFrame | None:
        """Existing capacity by region in the base year, a copy.

        Columns ``region, capacity, low, high, year, source``; None when the market has no
        ``capacity_file``.
        """
        return self._year_table("capacity")

    @property
    def projects(self) -> pd.DataFrame | None:
        """The project pipeline, a copy.

        One row per plant or expansion (columns as in docs/inputs.md); None when the market has
        no ``projects_file``.
        """
        return self._year_table("projects")

    @property
    def demand_paths(self) -> pd.DataFrame | None:
        """Demand relative to the base year by path and year, a copy.

        Columns ``path, year, index, source``; None when the market has no ``demand_paths_file``.
        """
        return self._year_table("demand_paths")

    @property
    def supply_projections(self) -> pd.DataFrame | None:
        """Output by region on named projection paths, e.g. IEA's base case, a copy.

        Columns ``path, region, year, quantity, low, high, source`` (the year loop's calibration
        target); None when the market has no ``supply_projections_file``.
        """
        return self._year_table("supply_projections")

    def index(self, regions: str | list[str] | tuple[str, ...]) -> np.ndarray:
        """Return the integer positions of region codes in :attr:`regions`.

        Parameters
        ----------
        regions : str or sequence of str
            One region code or several.

        Returns
        -------
        ndarray of int
            The positions, in the order given.

        Raises
        ------
        KeyError
            A code is not one of the market's regions.
        """
        if isinstance(regions, str):
            regions = [regions]
        pos = self._positions
        return np.array([pos[r] for r in regions], dtype=int)

    @cached_property
    def _positions(self) -> dict[str, int]:
        """Region code -> position (measures look regions up for every scenario)."""
        return {r: i for i, r in enumerate(self.spec.regions)}

    @cached_property
    def memo(self) -> dict[Any, Any]:
        """A cache of lookups derived from this market's data alone.

        E.g. the pair masks of region lists, shared by every batch built on it; never part of
        its data.
        """
        return {}

    # -- base data -----------------------------------------------------------------------
    @cached_property
    def base_price(self) -> np.ndarray:
        """Base price by region ``(N,)``."""
        return _regional(self.spec.base_price, self.spec.regions)

    @cached_property
    def supply_elasticity(self) -> np.ndarray:
        """Supply elasticity by region ``(N,)``."""
        return _regional(self.spec.elasticities.supply, self.spec.regions)

    @cached_property
    def demand_elasticity(self) -> np.ndarray:
        """Demand elasticity by region ``(N,)`` (absolute value)."""
        return _regional(self.spec.elasticities.demand, self.spec.regions)

    @cached_property
    def substitution_elasticity(self) -> np.ndarray:
        """Substitution elasticity by region ``(N,)``."""
        return _regional(self.spec.elasticities.substitution, self.spec.regions)

    def elasticity_draws(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw the elasticities from their recorded uncertainty.

        Each value θ with standard error s is drawn log-normally with median θ and log
        standard deviation s/θ (the delta method), so draws stay positive. A ``default`` entry
        is one parameter shared by every region it covers: one draw moves them together.
        Entries without a standard error stay fixed.

        Parameters
        ----------
        n : int
            The number of draws.
        rng : numpy.random.Generator
            The random number generator (seeded by the caller for reproducible draws).

        Returns
        -------
        dict of str to ndarray
            ``{kind: draws}`` for ``supply``, ``demand`` and ``substitution``, each of shape
            ``(n, N)`` (draw × region).
        """
        out: dict[str, np.ndarray] = {}
        regions = self.spec.regions
        for kind in ELASTICITY_KINDS:
            values = getattr(self.spec.elasticities, kind)
            ses = getattr(self.spec.elasticity_se, kind)
            keys = ["default", *regions]
            z = rng.standard_normal((n, len(keys)))  # fixed shape: draws do not depend on keys
            table = np.empty((n, len(regions)))
            for j, r in enumerate(regions):
                key = r if r in values else "default"
                theta = float(values[key])
                se = float(ses.get(key, 0.0))
                k = keys.index(key)
                s = se / theta if theta > 0 else 0.0
                table[:, j] = theta * np.exp(s * z[:, k])
            out[kind] = table
        return out

    @property
    def has_uncertainty(self) -> bool:
        """Whether any elasticity carries a standard error > 0."""
        return any(
            v > 0 for k in ELASTICITY_KINDS for v in getattr(self.spec.elasticity_se, k).values()
        )

    @cached_property
    def base_tariff(self) -> np.ndarray:
        """Base ad valorem tariffs exporter × importer.

        The diagonal (a region's own flow, e.g. trade inside an aggregate region such as ROW)
        applies like any other pair.
        """
        return _matrix(self.spec.base_tariffs, self.spec.regions)

    @cached_property
    def base_export_tax(self) -> np.ndarray:
        """Base ad valorem export taxes exporter × importer (the diagonal applies too)."""
        return _matrix(self.spec.base_export_taxes, self.spec.regions)

    @property
    def production(self) -> np.ndarray:
        """Base output by region ``(N,)``: the flows summed over importers."""
        return self.flows.sum(axis=1)

    @property
    def consumption(self) -> np.ndarray:
        """Base consumption by region ``(N,)``: the flows summed over exporters."""
        return self.flows.sum(axis=0)

    @cached_property
    def calibration(self):  # -> Calibration (import cycle avoided)
        """The market's calibrated parameters (:class:`~tradepolicy.model.levels.Calibration`)."""
        from tradepolicy.model.levels import Calibration

        return Calibration.from_market(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the market's definition as JSON-able data.

        Returns
        -------
        dict
            The validated file contents with the resolved flow matrix under ``flows``
            (``{exporter: {importer: quantity}}``, zero flows left out) instead of a CSV
            reference; the capacity tables are left out (the static model does not read them).
        """
        d = self.spec.model_dump(mode="json", exclude_none=True)
        d.pop("flows_file", None)
        for name in YEAR_FILES.values():  # not used by the static model
            d.pop(name, None)
        d["flows"] = {
            e: {i: float(self.flows[a, b]) for b, i in enumerate(self.regions) if self.flows[a, b]}
            for a, e in enumerate(self.regions)
            if self.flows[a].any()
        }
        return d

    @cached_property
    def data_hash(self) -> str:
        """SHA-256 of the resolved market definition (stable across runs)."""
        return definition_hash(self.to_dict())

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: dict[str, Any], path: Path | None = None, source: str | None = None
    ) -> Market:
        """Validate a market definition (as read from TOML) and build its arrays.

        Parameters
        ----------
        data : dict
            The market file's contents.
        path : Path, optional
            Where the file was read from: relative CSV references resolve against its folder.
        source : str, optional
            The name errors cite (default: ``path``, else ``"<market>"``).

        Returns
        -------
        Market
            The validated market, with seed shares applied to its flows.

        Raises
        ------
        InputError
            A field is missing or out of its allowed range, a referenced CSV is missing or
            malformed, or the flows do not match the regions; the error names the file and
            the field.
        """
        source = source or (str(path) if path else "<market>")
        try:
            spec = MarketSpec.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                cause = (err.get("ctx") or {}).get("error")
                if isinstance(cause, _SpecProblems):
                    problems.extend(cause.problems)
            if not problems:
                problems = problems_from_validation_error(exc, MarketSpec)
            raise InputError(source, problems) from None
        region_table.register_market_regions(
            {c: r.model_dump() for c, r in spec.region_info.items()}
        )
        regions = spec.regions
        flow_sources: dict[tuple[str, str], str] = {}
        if spec.flows is not None:
            flows = _matrix(spec.flows, regions)
        else:
            csv_path = resolve_reference(str(spec.flows_file), path, "flows_file", source)
            flows, flow_sources = _read_flows_csv(csv_path, regions, source)
        flows = _apply_seed_shares(flows, spec.seed_shares, regions)
        _check_flows(flows, spec, source)
        year_tables = _read_year_tables(spec, path, source)
        return cls(
            spec=spec, path=path, flows=flows, flow_sources=flow_sources, year_tables=year_tables
        )


#: optional capacity tables of a market: table name -> field of the market file naming its CSV
YEAR_FILES = {
    "capacity": "capacity_file",
    "projects": "projects_file",
    "demand_paths": "demand_paths_file",
    "supply_projections": "supply_projections_file",
}


def _read_year_tables(spec: MarketSpec, path: Path | None, source: str) -> dict[str, pd.DataFrame]:
    """Read the capacity, project, demand-path and supply-projection CSVs the file names.

    Each is validated with the calibration schemas (an error names the CSV, its line and the
    field).
    """
    files = {}
    for name, fld in YEAR_FILES.items():
        ref = getattr(spec, fld)
        if ref is None:
            continue
        csv_path = resolve_reference(str(ref), path, fld, source)
        if not exists(csv_path):
            raise InputError(source, [(fld, f"file {csv_path} does not exist")])
        files[name] = csv_path
    if not files:
        return {}
    from tradepolicy.calibration.schema import read_year_tables  # import cycle avoided

    tables = read_year_tables(Path("."), spec.id, spec.regions, spec.base_year, files)
    return {name: tables[name] for name in files}


def definition_hash(definition: dict[str, Any]) -> str:
    """SHA-256 of a JSON-able definition with sorted keys (a market's or a chain's)."""
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


def _read_flows_csv(
    path: Path, regions: list[str], market_source: str
) -> tuple[np.ndarray, dict[tuple[str, str], str]]:
    if not exists(path):
        raise InputError(market_source, [("flows_file", f"file {path} does not exist")])
    text = read_text(path, market_source, "flows_file")  # regular file, size cap, UTF-8 (BOM ok)
    idx = {r: i for i, r in enumerate(regions)}
    flows = np.zeros((len(regions), len(regions)))
    sources: dict[tuple[str, str], str] = {}
    problems: list[tuple[str, str]] = []
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"exporter", "importer", "quantity"}
        have = set(reader.fieldnames or [])
        if not need <= have:
            raise InputError(
                str(path),
                [
                    (
                        "header",
                        f"columns {sorted(need - have)} missing; need exporter,importer,quantity"
                        " (and optionally source)",
                    )
                ],
            )
        for row in reader:
            where = f"line {reader.line_num}"
            if None in row:  # more fields than the header
                problems.append((where, f"{len(row[None])} field(s) beyond the header columns"))
                continue
            absent = [c for c in reader.fieldnames or [] if row[c] is None]
            if absent:
                problems.append(
                    (where, f"missing field(s) {absent}; need exporter,importer,quantity")
                )
                continue
            exp, imp = row["exporter"].strip(), row["importer"].strip()
            for col, code in (("exporter", exp), ("importer", imp)):
                if code not in idx:
                    problems.append(
                        (
                            f"{where}.{col}",
                            f"unknown region {code!r} (allowed: {', '.join(regions)})",
                        )
                    )
            try:
                qty = float(row["quantity"])
            except (TypeError, ValueError):
                problems.append((f"{where}.quantity", f"not a number: {row['quantity']!r}"))
                continue
            if not math.isfinite(qty) or qty < 0:
                problems.append((f"{where}.quantity", f"must be a finite number >= 0; got {qty}"))
                continue
            if exp in idx and imp in idx:
                if flows[idx[exp], idx[imp]]:
                    problems.append((where, f"duplicate flow {exp} -> {imp}"))
                flows[idx[exp], idx[imp]] = qty
                if row.get("source"):
                    sources[(exp, imp)] = row["source"]
    if problems:
        raise InputError(str(path), problems)
    return flows, sources


def _apply_seed_shares(
    flows: np.ndarray, seeds: dict[str, dict[str, float]], regions: list[str]
) -> np.ndarray:
    """Give new suppliers a small calibrated share of an importer's consumption.

    For each ``seed_shares.EXP.IMP = s``: the flow EXP→IMP becomes ``s`` times IMP's base
    consumption, the other suppliers of IMP are scaled down in proportion so IMP's consumption
    is unchanged, and EXP's production rises by the seeded amount.
    """
    if not seeds:
        return flows
    flows = flows.copy()
    idx = {r: i for i, r in enumerate(regions)}
    for exp, row in seeds.items():
        for imp, share in row.items():
            o, d = idx[exp], idx[imp]
            cons = flows[:, d].sum()
            others = cons - flows[o, d]
            target = share * cons
            if others > 0:
                flows[:, d] *= (cons - target) / others
            flows[o, d] = target
    return flows


def _check_flows(flows: np.ndarray, spec: MarketSpec, source: str) -> None:
    problems: list[tuple[str, str]] = []
    if not (flows > 0).any():
        problems.append(("flows", "the market is empty: no positive base flow"))
    prod, cons = flows.sum(axis=1), flows.sum(axis=0)
    for i, r in enumerate(spec.regions):
        if prod[i] == 0 and cons[i] == 0:
            problems.append(("flows", f"region {r} neither produces nor consumes; drop it"))
    if problems:
        raise InputError(source, problems)
    eps = _regional(spec.elasticities.supply, spec.regions)
    eta = _regional(spec.elasticities.demand, spec.regions)
    if np.all(eps[prod > 0] == 0) and np.all(eta[cons > 0] == 0):
        raise InputError(
            source,
            [
                (
                    "elasticities",
                    "supply and demand are both perfectly inelastic everywhere; the "
                    "price level is undetermined (give some supply or demand elasticity > 0)",
                )
            ],
        )


def load_market(name_or_path: str | Path) -> Market:
    """Load a market by shipped id (``"ndpr_oxide"``) or by path to a TOML file.

    A file with ``kind = "chain"`` gives a :class:`~tradepolicy.chain.Chain` (stage markets
    linked by input coefficients, see Value chains in the user guide).

    Parameters
    ----------
    name_or_path : str or Path
        A shipped market id (:func:`list_markets`) or the path of a market TOML file.

    Returns
    -------
    Market
        The validated market (a :class:`~tradepolicy.chain.Chain` for a chain file).

    Raises
    ------
    InputError
        No shipped market has that id, or the file is not a valid market; the error names
        the file and the field.

    Examples
    --------
    >>> import tradepolicy as tp
    >>> mkt = tp.load_market("ndpr_oxide")
    >>> mkt.spec.base_year, mkt.price_unit
    (2024, 'USD/t')
    """
    path = Path(name_or_path)
    if path.suffix != ".toml" and not exists(path):
        shipped = _paths.find_market(str(name_or_path))
        if shipped is None:
            known = ", ".join(list_markets()) or "none"
            raise InputError(
                str(name_or_path), [("market", f"no such market (shipped markets: {known})")]
            )
        path = shipped
    data = read_toml(path)
    if data.get("kind") == "chain":
        from tradepolicy.chain import Chain

        return Chain.from_dict(data, path=path)  # type: ignore[return-value]
    return Market.from_dict(data, path=path)


def _is_chain_file(path: Path) -> bool:
    """Whether a model file holds a chain (``kind = "chain"``), read without validating."""
    try:
        return read_toml(path).get("kind") == "chain"
    except InputError:
        return False


def list_markets() -> list[str]:
    """List the shipped markets (chains: :func:`list_chains`).

    Returns
    -------
    list of str
        The ids of the shipped markets, sorted.

    Examples
    --------
    >>> import tradepolicy as tp
    >>> "ndpr_oxide" in tp.list_markets()
    True
    """
    return sorted(p.stem for p in _paths.market_files() if not _is_chain_file(p))


def list_chains() -> list[str]:
    """List the shipped value chains.

    Returns
    -------
    list of str
        The ids of the shipped chains, sorted.

    Examples
    --------
    >>> import tradepolicy as tp
    >>> tp.list_chains()
    ['cobalt_chain', 'ree_magnets']
    """
    return sorted(p.stem for p in _paths.market_files() if _is_chain_file(p))
