"""Schemas of the calibration source data (``calibration/data``; layout in its README).

Every CSV is read row by row into a pydantic model, so a bad file is rejected with an
:class:`~tradepolicy.errors.InputError` naming the file, the row (as its line number), the
field and what is allowed. Cross-file rules (regions of the market, world balance, one
``default`` price) are checked when a market's data are assembled in :func:`load_market_data`.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from tradepolicy.errors import InputError

__all__ = [
    "CapacityRow",
    "CommonData",
    "DemandPathRow",
    "MarketData",
    "ProjectRow",
    "SupplyProjectionRow",
    "load_common_data",
    "load_market_data",
    "market_ids",
    "read_table",
    "read_year_tables",
]

Code = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,11}$")]
KeyCode = Annotated[str, StringConstraints(pattern=r"^(default|[A-Z][A-Z0-9_]{0,11})$")]
MarketId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise ValueError("must be a finite number")
    return x


Finite = Annotated[float, AfterValidator(_finite)]
NonNeg = Annotated[Finite, Field(ge=0)]
Positive = Annotated[Finite, Field(gt=0)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MarketRow(_Row):
    market: MarketId
    commodity: Text
    stage: Text
    quantity_unit: Text
    currency: Text
    base_year: Annotated[int, Field(ge=1990, le=2100)]
    regions: Text
    description: Text
    source: Text

    @model_validator(mode="after")
    def _regions(self) -> MarketRow:
        codes = self.regions.split()
        bad = [c for c in codes if not re.fullmatch(r"[A-Z][A-Z0-9_]{0,11}", c)]
        if bad:
            raise ValueError(f"regions: {bad} are not region codes (upper-case, e.g. CHN EU ROW)")
        if len(set(codes)) != len(codes):
            raise ValueError("regions: a region is listed twice")
        if len(codes) < 2:
            raise ValueError("regions: a market needs at least two regions")
        return self

    @property
    def region_list(self) -> list[str]:
        return self.regions.split()


class QuantityRow(_Row):
    region: Code
    quantity: NonNeg
    source: Text


class FlowRow(_Row):
    exporter: Code
    importer: Code
    quantity: NonNeg
    source: Text


class PriceRow(_Row):
    region: KeyCode
    price: Positive
    source: Text


class TariffRow(_Row):
    exporter: Code
    importer: Code
    rate: NonNeg
    source: Text


class PriorRow(_Row):
    """One elasticity prior: the medium run (``supply``, ``demand``, ``substitution``) or the
    short run (``short_run.supply`` ...: capacity fixed, private inventories respond)."""

    parameter: Literal[
        "supply",
        "demand",
        "substitution",
        "short_run.supply",
        "short_run.demand",
        "short_run.substitution",
    ]
    region: KeyCode
    value: NonNeg
    low: NonNeg
    high: NonNeg
    source: Text

    @model_validator(mode="after")
    def _range(self) -> PriorRow:
        if not self.low <= self.value <= self.high:
            raise ValueError(
                f"need low <= value <= high; got {self.low} <= {self.value} <= {self.high}"
            )
        if self.high <= self.low:
            raise ValueError("the range high - low must be positive (it sets the prior's spread)")
        if self.parameter.endswith("substitution") and self.value <= 0:
            raise ValueError("a substitution elasticity must be > 0")
        return self


class SeedRow(_Row):
    exporter: Code
    importer: Code
    share: Annotated[Finite, Field(ge=0, lt=1)]
    source: Text


class NoteRow(_Row):
    field: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    text: Text


class PricePointRow(_Row):
    market: MarketId
    series: Text
    period: Text
    frequency: Literal["annual", "monthly"]
    price: Positive
    unit: Text
    source: Text

    @model_validator(mode="after")
    def _period(self) -> PricePointRow:
        pattern = r"\d{4}" if self.frequency == "annual" else r"\d{4}-(0[1-9]|1[0-2])"
        if not re.fullmatch(pattern, self.period):
            form = "YYYY" if self.frequency == "annual" else "YYYY-MM"
            raise ValueError(f"period {self.period!r} must be {form} for {self.frequency} data")
        return self


class DeflatorRow(_Row):
    year: Annotated[int, Field(ge=1900, le=2100)]
    index: Positive
    source: Text


class PanelRow(_Row):
    market: MarketId
    country: Text
    year: Annotated[int, Field(ge=1900, le=2100)]
    quantity: NonNeg
    unit: Text
    source: Text


class EpisodeRow(_Row):
    market: MarketId
    episode: Text
    variable: Text
    region: Text
    value: Finite
    unit: Text
    source: Text


def _blank_is_none(x: object) -> object:
    return None if isinstance(x, str) and not x.strip() else x


#: an optional number: an empty cell is "not given"
OptNonNeg = Annotated[NonNeg | None, BeforeValidator(_blank_is_none)]
Year = Annotated[int, Field(ge=1900, le=2100)]
OptYear = Annotated[Year | None, BeforeValidator(_blank_is_none)]

#: project status, from the most to the least advanced
STATUSES = ("operating", "construction", "fid", "announced", "feasibility")


def _value_or_range(row: BaseModel, name: str, required: bool = True) -> None:
    """``name`` is a value, a ``name_low``..``name_high`` range, or both (low <= value <= high)."""
    value = getattr(row, name)
    low, high = getattr(row, f"{name}_low"), getattr(row, f"{name}_high")
    if (low is None) != (high is None):
        raise ValueError(f"{name}_low and {name}_high: give both ends of the range or neither")
    if low is not None and high is not None:
        if low > high:
            raise ValueError(f"{name}_low must not exceed {name}_high; got {low} > {high}")
        if value is not None and not low <= value <= high:
            raise ValueError(
                f"{name} {value} lies outside its range [{name}_low, {name}_high] = [{low}, {high}]"
            )
    elif value is None and required:
        raise ValueError(
            f"{name}: give a value or, where no public source gives one, a documented range "
            f"({name}_low, {name}_high)"
        )


class CapacityRow(_Row):
    """Existing nameplate capacity of one region in a year (market unit per year)."""

    region: Code
    capacity: NonNeg
    low: OptNonNeg = None
    high: OptNonNeg = None
    year: Year
    source: Text

    @model_validator(mode="after")
    def _range(self) -> CapacityRow:
        if (self.low is None) != (self.high is None):
            raise ValueError("low and high: give both ends of the range or neither")
        if self.low is not None and self.high is not None:
            if not self.low <= self.capacity <= self.high:
                raise ValueError(
                    f"need low <= capacity <= high; got {self.low} <= {self.capacity} <= "
                    f"{self.high}"
                )
        return self


class ProjectRow(_Row):
    """One plant or expansion of the project pipeline.

    Capacity in the market's unit per year, lead time in years, capex in million USD, unit
    cost in USD per market unit; each is a value, a ``_low``/``_high`` range, or both.
    """

    project: Text
    owner: Text
    region: Code
    stage: MarketId
    capacity: OptNonNeg = None
    capacity_low: OptNonNeg = None
    capacity_high: OptNonNeg = None
    status: Literal["operating", "construction", "fid", "announced", "feasibility"]
    earliest_start: OptYear = None
    lead_time: OptNonNeg = None
    lead_time_low: OptNonNeg = None
    lead_time_high: OptNonNeg = None
    capex: OptNonNeg = None
    capex_low: OptNonNeg = None
    capex_high: OptNonNeg = None
    unit_cost: OptNonNeg = None
    unit_cost_low: OptNonNeg = None
    unit_cost_high: OptNonNeg = None
    source: Text

    @model_validator(mode="after")
    def _ranges(self) -> ProjectRow:
        for name in ("capacity", "lead_time", "capex", "unit_cost"):
            _value_or_range(self, name)
        if self.capacity is None:
            raise ValueError(
                "capacity: give the point value used (capacity_low/high add its range)"
            )
        if self.earliest_start is None and self.lead_time is None and self.lead_time_low is None:
            raise ValueError("earliest_start: give a start year or a lead time")
        return self


class DemandPathRow(_Row):
    """Demand in ``year`` relative to the base year on a named path (e.g. ``iea_steps``)."""

    path: MarketId
    year: Year
    index: Positive
    source: Text


class SupplyProjectionRow(_Row):
    """Output of one region in ``year`` on a named projection path (e.g. ``iea_base_case``),
    in the market's unit per year; ``low``..``high`` where the mapping to the market's
    regions is uncertain."""

    path: MarketId
    region: Code
    year: Year
    quantity: NonNeg
    low: OptNonNeg = None
    high: OptNonNeg = None
    source: Text

    @model_validator(mode="after")
    def _range(self) -> SupplyProjectionRow:
        if (self.low is None) != (self.high is None):
            raise ValueError("low and high: give both ends of the range or neither")
        if self.low is not None and self.high is not None:
            if not self.low <= self.quantity <= self.high:
                raise ValueError(
                    f"need low <= quantity <= high; got {self.low} <= {self.quantity} <= "
                    f"{self.high}"
                )
        return self


#: optional year tables of a market: file stem -> (row model, key columns)
YEAR_TABLES: dict[str, tuple[type[_Row], list[str]]] = {
    "capacity": (CapacityRow, ["region", "year"]),
    "projects": (ProjectRow, ["project", "stage"]),
    "demand_paths": (DemandPathRow, ["path", "year"]),
    "supply_projections": (SupplyProjectionRow, ["path", "region", "year"]),
}


def read_year_tables(
    folder: Path,
    market: str,
    regions: list[str],
    base_year: int,
    files: dict[str, Path] | None = None,
) -> dict[str, pd.DataFrame]:
    """Read and cross-check a market's optional capacity, project, demand-path and
    supply-projection tables.

    ``files`` maps a table name to its (required) path; without it the tables are
    ``folder/<name>.csv`` and an absent file gives an empty table. Regions must be the
    market's, a project's ``stage`` the market id, keys unique, every demand path must
    start at index 1 in the base year, and a supply projection must list every region in
    each of its path's years (after the base year).
    """
    out: dict[str, pd.DataFrame] = {}
    allowed = ", ".join(regions)
    for name, (model, keys) in YEAR_TABLES.items():
        if files is not None and name not in files:
            continue  # only the files named
        path = files[name] if files is not None else folder / f"{name}.csv"
        frame = read_table(path, model, required=files is not None)
        problems = _duplicates(frame, keys, path) if not frame.empty else []
        for i, row in enumerate(frame.to_dict("records")):
            line = f"line {i + 2}"
            if "region" in row and row["region"] not in regions:
                problems.append(
                    (f"{line}: region", f"unknown region {row['region']!r} (allowed: {allowed})")
                )
            if name == "projects" and row["stage"] != market:
                problems.append(
                    (f"{line}: stage", f"{row['stage']!r} is not this market ({market!r})")
                )
            if name == "capacity" and row["year"] != base_year:
                problems.append(
                    (f"{line}: year", f"existing capacity is for the base year {base_year}")
                )
        if name == "capacity" and not frame.empty:
            absent = [r for r in regions if r not in set(frame["region"])]
            if absent:
                problems.append(("region", f"no row for {absent}: list every region (0 allowed)"))
        if name == "demand_paths" and not frame.empty:
            for p, grp in frame.groupby("path", sort=True):
                base = grp[grp["year"] == base_year]
                if base.empty or not math.isclose(float(base["index"].iloc[0]), 1.0):
                    problems.append(
                        ("index", f"path {p!r}: the base year {base_year} needs a row with index 1")
                    )
                if (grp["year"] < base_year).any():
                    problems.append(
                        ("year", f"path {p!r}: a year before the base year {base_year}")
                    )
        if name == "supply_projections" and not frame.empty:
            problems += _projection_problems(frame, regions, base_year)
        if problems:
            raise InputError(str(path), problems)
        out[name] = frame
    return out


def _projection_problems(
    frame: pd.DataFrame, regions: list[str], base_year: int
) -> list[tuple[str, str]]:
    """Every region in each path and year of a supply projection; years after the base."""
    problems = []
    for i, year in enumerate(frame["year"].tolist()):
        if year <= base_year:
            problems.append(
                (f"line {i + 2}: year", f"{year} is not after the base year {base_year}")
            )
    for (p, year), grp in frame.groupby(["path", "year"], sort=True):
        absent = [r for r in regions if r not in set(grp["region"])]
        if absent:
            problems.append(
                (
                    "region",
                    f"path {p!r}, year {year}: no row for {absent}: list every region (0 "
                    "allowed, with a source saying where the region's output is counted)",
                )
            )
    return problems


def read_table(path: Path, row: type[_Row], required: bool = True) -> pd.DataFrame:
    """Read and validate one CSV; all problems are reported at once.

    Returns a DataFrame with the model's columns (empty if the file is optional and absent).
    """
    columns = list(row.model_fields)
    if not path.exists():
        if required:
            raise InputError(str(path), [("", f"file missing (columns: {','.join(columns)})")])
        return pd.DataFrame(columns=columns)
    problems: list[tuple[str, str]] = []
    records = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        extra = [c for c in header if c not in columns]
        if missing or extra:
            msg = f"columns must be {','.join(columns)}"
            if missing:
                msg += f"; missing {missing}"
            if extra:
                msg += f"; unexpected {extra}"
            raise InputError(str(path), [("header", msg)])
        for raw in reader:
            line = reader.line_num
            values = {k: (v if v is not None else "") for k, v in raw.items() if k is not None}
            if None in raw:
                problems.append((f"line {line}", "more values than columns"))
                continue
            try:
                records.append(row.model_validate(values).model_dump())
            except ValidationError as exc:
                for err in exc.errors():
                    where = ".".join(str(p) for p in err["loc"]) or "row"
                    got = values.get(where)
                    got_text = f" (got {got!r})" if got is not None else ""
                    problems.append((f"line {line}: {where}", err["msg"] + got_text))
    if not records and not problems and required:
        problems.append(("", "no data rows"))
    if problems:
        raise InputError(str(path), problems)
    return pd.DataFrame.from_records(records, columns=columns)


def _duplicates(frame: pd.DataFrame, keys: list[str], path: Path) -> list[tuple[str, str]]:
    dup = frame[frame.duplicated(keys, keep=False)]
    if dup.empty:
        return []
    first = dup.iloc[0]
    key = ", ".join(f"{k}={first[k]}" for k in keys)
    return [(f"{'/'.join(keys)}", f"{len(dup)} rows share a key, e.g. {key}")]


@dataclass
class MarketData:
    """One market's validated source data (frames as in the files)."""

    info: MarketRow
    root: Path
    production: pd.DataFrame
    consumption: pd.DataFrame
    flows: pd.DataFrame
    base_prices: pd.DataFrame
    tariffs: pd.DataFrame
    priors: pd.DataFrame
    seed_shares: pd.DataFrame
    notes: pd.DataFrame
    capacity: pd.DataFrame | None = None
    projects: pd.DataFrame | None = None
    demand_paths: pd.DataFrame | None = None
    supply_projections: pd.DataFrame | None = None

    @property
    def id(self) -> str:
        return self.info.market

    @property
    def regions(self) -> list[str]:
        return self.info.region_list

    def frames(self) -> dict[str, pd.DataFrame]:
        return {
            name: getattr(self, name)
            for name in (
                "production",
                "consumption",
                "flows",
                "base_prices",
                "tariffs",
                "priors",
                "seed_shares",
                "notes",
            )
        }


@dataclass
class CommonData:
    """Data shared by the markets: price series, deflator, supply panel, episodes."""

    prices: pd.DataFrame
    deflator: pd.DataFrame
    supply_panel: pd.DataFrame
    episodes: pd.DataFrame


def _markets_table(root: Path) -> dict[str, MarketRow]:
    path = root / "markets.csv"
    frame = read_table(path, MarketRow)
    problems = _duplicates(frame, ["market"], path)
    if problems:
        raise InputError(str(path), problems)
    return {r["market"]: MarketRow.model_validate(r) for r in frame.to_dict("records")}


def market_ids(root: Path) -> list[str]:
    """Market ids listed in ``markets.csv`` (in file order)."""
    return list(_markets_table(root))


def load_market_data(root: Path, market: str) -> MarketData:
    """Read and cross-check every file of one market under ``root`` (``calibration/data``)."""
    table = _markets_table(root)
    if market not in table:
        raise InputError(
            str(root / "markets.csv"),
            [("market", f"no market {market!r} (listed: {', '.join(table)})")],
        )
    info = table[market]
    d = root / market
    regions = info.region_list
    allowed = ", ".join(regions)
    frames = {
        "production": read_table(d / "production.csv", QuantityRow),
        "consumption": read_table(d / "consumption.csv", QuantityRow),
        "flows": read_table(d / "flows.csv", FlowRow, required=False),
        "base_prices": read_table(d / "base_prices.csv", PriceRow),
        "tariffs": read_table(d / "tariffs.csv", TariffRow, required=False),
        "priors": read_table(d / "priors.csv", PriorRow),
        "seed_shares": read_table(d / "seed_shares.csv", SeedRow, required=False),
        "notes": read_table(d / "notes.csv", NoteRow, required=False),
    }
    keys = {
        "production": ["region"],
        "consumption": ["region"],
        "flows": ["exporter", "importer"],
        "base_prices": ["region"],
        "tariffs": ["exporter", "importer"],
        "priors": ["parameter", "region"],
        "seed_shares": ["exporter", "importer"],
        "notes": ["field"],
    }
    for name, frame in frames.items():
        path = d / f"{name}.csv"
        problems = _duplicates(frame, keys[name], path) if not frame.empty else []
        for col in ("region", "exporter", "importer"):
            if col not in frame.columns:
                continue
            for i, value in frame[col].items():
                if value != "default" and value not in regions:
                    problems.append(
                        (f"row {i + 1}: {col}", f"unknown region {value!r} (allowed: {allowed})")
                    )
                elif value == "default" and name not in ("base_prices", "priors"):
                    problems.append((f"row {i + 1}: {col}", "`default` is not a region here"))
        if name in ("production", "consumption"):
            absent = [r for r in regions if r not in set(frame["region"])]
            if absent:
                problems.append(("region", f"no row for {absent}: list every region (0 allowed)"))
        if name == "base_prices" and "default" not in set(frame["region"]):
            problems.append(("region", "a `default` row is required"))
        if name == "priors":
            given = set(frame["parameter"])
            for par in ("supply", "demand", "substitution"):
                for name in (par, f"short_run.{par}"):
                    if name != par and name not in given:
                        continue  # a short-run kind left out keeps the medium-run value
                    have = set(frame.loc[frame["parameter"] == name, "region"])
                    if "default" not in have:
                        problems.append(("parameter", f"no `default` prior for {name}"))
        if problems:
            raise InputError(str(path), problems)
    prod, cons = frames["production"]["quantity"].sum(), frames["consumption"]["quantity"].sum()
    if not math.isclose(prod, cons, rel_tol=1e-9):
        raise InputError(
            str(d / "consumption.csv"),
            [
                (
                    "quantity",
                    f"world consumption {cons:,.6g} differs from world production {prod:,.6g}: "
                    "the model has no stock change, so put the difference into ROW (or a "
                    "stated region) and say so in the row's source",
                )
            ],
        )
    years = read_year_tables(d, market, regions, int(info.base_year))
    return MarketData(info=info, root=d, **frames, **years)


def load_common_data(root: Path) -> CommonData:
    """Read the files shared by every market."""
    prices = read_table(root / "price_series.csv", PricePointRow)
    problems = _duplicates(prices, ["market", "series", "period"], root / "price_series.csv")
    if problems:
        raise InputError(str(root / "price_series.csv"), problems)
    return CommonData(
        prices=prices,
        deflator=read_table(root / "deflator.csv", DeflatorRow),
        supply_panel=read_table(root / "supply_panel.csv", PanelRow, required=False),
        episodes=read_table(root / "episodes.csv", EpisodeRow, required=False),
    )
