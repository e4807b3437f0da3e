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
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from tradepolicy.errors import InputError

__all__ = [
    "CommonData",
    "MarketData",
    "load_common_data",
    "load_market_data",
    "market_ids",
    "read_table",
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
    parameter: Literal["supply", "demand", "substitution"]
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
        if self.parameter == "substitution" and self.value <= 0:
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
            for par in ("supply", "demand", "substitution"):
                have = set(frame.loc[frame["parameter"] == par, "region"])
                if "default" not in have:
                    problems.append(("parameter", f"no `default` prior for {par}"))
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
    return MarketData(info=info, root=d, **frames)


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
