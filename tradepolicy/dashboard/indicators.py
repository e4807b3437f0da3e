"""Tables behind the dashboard's KPIs and charts, from a results Dataset (no UI code).

Every function takes a solved Dataset (one market) and returns plain numbers or pandas frames
in display units: prices in the market's display price unit (:class:`MarketInfo`), money in
millions of the currency per year, shares as fractions. Ranges (5% and 95% quantiles over the
Monte Carlo draws) are filled only when the Dataset carries draws.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from tradepolicy.dashboard.markets import MarketInfo
from tradepolicy.measures.base import WELFARE_ENTRIES
from tradepolicy.results.accessor import FISCAL_ENTRIES

MONEY = 1e6  # money is shown in millions of the currency per year

#: short labels of the welfare components (DESIGN §5)
COMPONENTS = {
    "consumer_surplus_change": "Consumers",
    "producer_surplus_change": "Producers",
    "tariff_revenue_change": "Tariff revenue",
    "levy_revenue": "Levies",
    "undertaking_rent": "Undertaking rents",
    "export_tax_revenue_change": "Export tax revenue",
    "quota_rent_income": "Quota rents",
    "subsidy_cost": "Subsidies",
    "offtake_cost": "Offtakes",
    "stockpile_cost": "Stockpiles",
    "stock_value_change": "Stock value",
}


def has_draws(ds: xr.Dataset) -> bool:
    """Whether ``ds`` carries Monte Carlo draws (works before the feature is merged)."""
    return bool(getattr(ds.tp, "has_draws", False))


def _one(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(commodity=0) if "commodity" in ds.dims else ds


def _q(values: np.ndarray) -> tuple[float, float]:
    """5% and 95% quantiles of draws, ignoring draws that failed (NaN)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(v, [0.05, 0.95])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Kpi:
    """One headline number: value and baseline in display units, optional 90% range."""

    key: str
    title: str
    value: float
    unit: str
    base: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    detail: str = ""

    @property
    def change_pct(self) -> float:
        if not math.isfinite(self.base) or self.base == 0 or not math.isfinite(self.value):
            return math.nan
        return 100.0 * (self.value - self.base) / abs(self.base)

    @property
    def has_range(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)


def _weighted_price(
    ds: xr.Dataset, scenario: str, regions: list[str], info: MarketInfo
) -> tuple[float, float, float, float]:
    """Base-consumption-weighted consumer price of ``regions`` (scenario, base, lo, hi)."""
    use = pd.Series(info.market.flows.sum(axis=0), index=info.regions)
    regions = [r for r in regions if use[r] > 0]
    if not regions:
        return (math.nan,) * 4
    w = xr.DataArray(use[regions].to_numpy(), dims="region", coords={"region": regions})
    price = ds["consumer_price"].sel(region=regions)
    val = float((price.sel(scenario=scenario) * w).sum() / w.sum()) / info.price_factor
    base = float((price.sel(scenario="baseline") * w).sum() / w.sum()) / info.price_factor
    lo = hi = math.nan
    if has_draws(ds) and "consumer_price_draws" in ds:
        d = ds["consumer_price_draws"].sel(scenario=scenario, region=regions)
        per_draw = (d * w).sum("region", skipna=False) / w.sum()
        lo, hi = _q(per_draw.values / info.price_factor)
    return val, base, lo, hi


def _total_range(ds: xr.Dataset, var: str, scenario: str, sign: float = 1.0) -> tuple[float, float]:
    if not has_draws(ds) or f"{var}_draws" not in ds:
        return math.nan, math.nan
    tot = ds[f"{var}_draws"].sel(scenario=scenario).sum("region", skipna=False)
    return _q(sign * tot.values / MONEY)


def kpis(
    ds: xr.Dataset, scenario: str, info: MarketInfo, members: list[str], target: float
) -> dict[str, Kpi]:
    """The headline numbers of ``scenario`` against the baseline.

    ``club_price`` and ``outside_price`` are consumer prices averaged over the club members
    and over the other regions, weighted by base consumption (fixed weights, so the change is
    a price change); ``fiscal_cost`` is spending on subsidies, offtakes and stockpiles net of
    stock sales (positive = cost); ``world_welfare`` is the sum of every region's welfare
    change; ``dependency`` is the largest top-foreign-supplier share among consuming members
    (all consuming regions without a club).
    """
    ds = _one(ds)
    money = info.money_label
    outside = [r for r in info.regions if r not in members]
    out: dict[str, Kpi] = {}
    for key, title, regions in (
        ("club_price", "Consumer price, club", list(members)),
        ("outside_price", "Consumer price, outside the club", outside),
    ):
        val, base, lo, hi = _weighted_price(ds, scenario, regions, info)
        who = ", ".join(r for r in regions if r in info.consumers) or "no consuming region"
        out[key] = Kpi(key, title, val, info.price_label, base, lo, hi, detail=who)

    sc = ds.sel(scenario=scenario)
    fiscal = -float(sum(sc[k].sum() for k in FISCAL_ENTRIES)) / MONEY
    lo, hi = _total_range(ds, "fiscal_cost", scenario, sign=-1.0)
    border = float(sc["levy_revenue"].sum() + sc["tariff_revenue_change"].sum()) / MONEY
    rents = float(sc["quota_rent_income"].sum()) / MONEY
    out["fiscal_cost"] = Kpi(
        "fiscal_cost",
        "Fiscal cost (subsidies, offtakes, stocks)",
        fiscal,
        money,
        lo=lo,
        hi=hi,
        detail=f"border revenue {border:+,.1f}, quota rents {rents:+,.1f} {money}",
    )

    welfare = sc["welfare_change"].to_series() / MONEY
    lo, hi = _total_range(ds, "welfare_change", scenario)
    if welfare.notna().any() and (welfare.abs() > 0.05).any():
        best, worst = welfare.idxmax(), welfare.idxmin()
        detail = (
            f"most gained: {best} {welfare[best]:+,.1f}; most lost: {worst} {welfare[worst]:+,.1f}"
        )
    else:
        detail = ""
    out["world_welfare"] = Kpi(
        "world_welfare",
        "World welfare change",
        float(welfare.sum()),
        money,
        lo=lo,
        hi=hi,
        detail=detail,
    )

    pool = [r for r in members if r in info.consumers] or info.consumers
    share = sc["top_supplier_share"].sel(region=pool).to_series()
    base_share = ds["top_supplier_share"].sel(scenario="baseline", region=pool).to_series()
    lo = hi = math.nan
    if share.notna().any():
        worst = str(share.idxmax())
        top = str(sc["top_supplier"].sel(region=worst).values)
        above = [r for r in pool if share[r] > target + 1e-12]
        detail = (
            f"{len(pool) - len(above)} of {len(pool)} at or below {target:.0%}"
            + (f"; above: {', '.join(above)}" if above else "")
            + f"; highest: {worst} on {top or '—'}"
        )
        value, base = float(share.max()) * 100, float(base_share.max()) * 100
        if has_draws(ds) and "top_supplier_share_draws" in ds:
            d = ds["top_supplier_share_draws"].sel(scenario=scenario, region=pool)
            lo, hi = _q(d.max("region", skipna=True).values * 100)
    else:
        value = base = math.nan
        detail = "no consuming region"
    out["dependency"] = Kpi(
        "dependency", "Largest dependency on one supplier", value, "%", base, lo, hi, detail
    )
    return out


def region_table(ds: xr.Dataset, scenario: str, info: MarketInfo, target: float) -> pd.DataFrame:
    """Per region: prices (display unit) and changes, production change, welfare, dependency."""
    t = ds.tp.region_table(scenario, str(ds.commodity.values[0]))
    p = info.price_label
    out = pd.DataFrame(
        {
            f"Consumer price ({p})": t["consumer_price"] / info.price_factor,
            "Consumer price Δ%": t["consumer_price_pct"],
            f"Producer price ({p})": t["producer_price"] / info.price_factor,
            "Producer price Δ%": t["producer_price_pct"],
            "Production Δ%": t["production_pct"],
            f"Welfare ({info.money_label})": t["welfare_change"] / MONEY,
            "Top foreign supplier": t["top_supplier"].replace("", "—"),
            "Top share, baseline %": 100 * t["top_supplier_share_base"],
            "Top share %": 100 * t["top_supplier_share"],
        }
    )
    share = t["top_supplier_share"]
    out[f"At or below {target:.0%}"] = np.where(
        share.isna(), "—", np.where(share <= target + 1e-12, "yes", "no")
    )
    out.index.name = "Region"
    return out


def welfare_frame(ds: xr.Dataset, scenario: str) -> pd.DataFrame:
    """Long table (region, component, value in M/yr) of the welfare parts that are not zero,
    plus a ``total`` column per row's region."""
    ds = _one(ds).sel(scenario=scenario)
    rows = []
    for key, label in COMPONENTS.items():
        vals = ds[key].to_series() / MONEY
        if (vals.abs() > 1e-9).any():
            for region, v in vals.items():
                rows.append((str(region), label, float(v)))
    df = pd.DataFrame(rows, columns=["region", "component", "value"])
    total = (ds["welfare_change"].to_series() / MONEY).rename("total")
    return df.join(total, on="region")


def price_frame(ds: xr.Dataset, scenario: str, info: MarketInfo, var: str) -> pd.DataFrame:
    """``var`` (consumer_price or producer_price) by region: baseline, scenario and range."""
    ds = _one(ds)
    da = ds[var] / info.price_factor
    df = pd.DataFrame(
        {
            "baseline": da.sel(scenario="baseline").to_series(),
            "scenario": da.sel(scenario=scenario).to_series(),
        }
    )
    df["lo"] = df["hi"] = np.nan
    if has_draws(ds) and f"{var}_quantiles" in ds:
        q = ds[f"{var}_quantiles"].sel(scenario=scenario) / info.price_factor
        df["lo"] = q.sel(quantile=0.05).to_series()
        df["hi"] = q.sel(quantile=0.95).to_series()
    df["change_pct"] = 100 * (df["scenario"] - df["baseline"]) / df["baseline"]
    df = df[df["baseline"].notna()]
    df.index = df.index.astype(str)
    df.index.name = "region"
    return df


def dependency_frame(ds: xr.Dataset, scenario: str) -> pd.DataFrame:
    """Top foreign supplier and its share of consumption per consuming region."""
    ds = _one(ds)
    df = pd.DataFrame(
        {
            "supplier_base": ds["top_supplier"].sel(scenario="baseline").to_series(),
            "share_base": ds["top_supplier_share"].sel(scenario="baseline").to_series(),
            "supplier": ds["top_supplier"].sel(scenario=scenario).to_series(),
            "share": ds["top_supplier_share"].sel(scenario=scenario).to_series(),
        }
    )
    df["lo"] = df["hi"] = np.nan
    if has_draws(ds) and "top_supplier_share_quantiles" in ds:
        q = ds["top_supplier_share_quantiles"].sel(scenario=scenario)
        df["lo"] = q.sel(quantile=0.05).to_series()
        df["hi"] = q.sel(quantile=0.95).to_series()
    df = df[df["share_base"].notna()]
    df.index = df.index.astype(str)
    df.index.name = "region"
    return df


def supplier_shares(ds: xr.Dataset, scenario: str) -> pd.DataFrame:
    """Importer × exporter shares of consumption (rows: consuming regions)."""
    ds = _one(ds)
    s = ds["supplier_share"].sel(scenario=scenario).to_pandas().T  # importer × exporter
    s = s[s.notna().any(axis=1)].fillna(0.0)
    s.index = s.index.astype(str)
    s.columns = s.columns.astype(str)
    return s


def trade_matrix(ds: xr.Dataset, scenario: str = "baseline") -> pd.DataFrame:
    """Long table of flows: exporter, importer, flow, share of the importer's consumption."""
    ds = _one(ds).sel(scenario=scenario)
    flow = ds["trade_flow"].to_series().rename("flow")
    share = ds["supplier_share"].to_series().rename("share")
    df = pd.concat([flow, share], axis=1).reset_index()
    df["exporter"] = df["exporter"].astype(str)
    df["importer"] = df["importer"].astype(str)
    return df


def comparison_table(
    ds: xr.Dataset, names: list[str], info: MarketInfo, members: list[str], target: float
) -> pd.DataFrame:
    """One row per compared scenario: the KPIs (display units) and the solver status."""
    ds1 = _one(ds)
    rows = []
    for name in names:
        solved = int(ds1["converged"].sel(scenario=name)) == 1
        row: dict[str, object] = {"Scenario": name, "Solved": "yes" if solved else "no"}
        if solved:
            k = kpis(ds, name, info, members, target)
            for key, col in (
                ("club_price", f"Club price ({info.price_label})"),
                ("outside_price", f"Outside price ({info.price_label})"),
                ("fiscal_cost", f"Fiscal cost ({info.money_label})"),
                ("world_welfare", f"World welfare ({info.money_label})"),
                ("dependency", "Largest dependency %"),
            ):
                row[col] = k[key].value
                if k[key].has_range:
                    row[f"{col} 5%"] = k[key].lo
                    row[f"{col} 95%"] = k[key].hi
            sc = ds1.sel(scenario=name)
            row[f"Levies ({info.money_label})"] = float(sc["levy_revenue"].sum()) / MONEY
            pool = [r for r in members if r in info.consumers] or info.consumers
            share = sc["top_supplier_share"].sel(region=pool).to_series()
            row[f"Members at or below {target:.0%}"] = (
                f"{int((share <= target + 1e-12).sum())} of {len(pool)}"
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("Scenario")


def comparison_long(ds: xr.Dataset, names: list[str], info: MarketInfo) -> pd.DataFrame:
    """Tidy numeric table for CSV: scenario, region, variable, value, units (market units;
    ``<var>_q05``/``<var>_q95`` rows hold the 90% range when the results carry draws)."""
    ds1 = _one(ds).sel(scenario=["baseline", *[n for n in names if n != "baseline"]])
    variables = [
        "producer_price",
        "consumer_price",
        "production",
        "consumption",
        *WELFARE_ENTRIES,
        "welfare_change",
        "top_supplier_share",
        "hhi",
    ]
    frames = []
    for var in variables:
        s = ds1[var].to_series().rename("value").reset_index()
        s["variable"] = var
        s["units"] = ds1[var].attrs.get("units", "")
        frames.append(s)
    if has_draws(ds1):
        for var in variables:
            if f"{var}_quantiles" not in ds1:
                continue
            q = ds1[f"{var}_quantiles"]
            for qq, tag in ((0.05, "q05"), (0.95, "q95")):
                s = q.sel(quantile=qq).to_series().rename("value").reset_index()
                s = s.drop(columns=["quantile"], errors="ignore")
                s["variable"] = f"{var}_{tag}"
                s["units"] = q.attrs.get("units", "")
                frames.append(s)
    out = pd.concat(frames, ignore_index=True)
    out = out[["scenario", "region", "variable", "value", "units"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        out["scenario"] = out["scenario"].astype(str)
        out["region"] = out["region"].astype(str)
    out.insert(0, "market", info.id)
    return out


__all__ = [
    "COMPONENTS",
    "MONEY",
    "Kpi",
    "comparison_long",
    "comparison_table",
    "dependency_frame",
    "has_draws",
    "kpis",
    "price_frame",
    "region_table",
    "supplier_shares",
    "trade_matrix",
    "welfare_frame",
]
