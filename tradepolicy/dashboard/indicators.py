"""Tables behind the dashboard's KPIs and charts, from a results Dataset (no UI code).

Every function takes a solved Dataset (one market) and returns plain numbers or pandas frames
in display units: prices in the market's display price unit (:class:`MarketInfo`), money in
``ds.tp.money_unit()`` (millions of the currency per year, converted by ``ds.tp.money``),
shares as fractions. Every number is the central result (``ds.tp.point()``); ranges (5% and
95% over the Monte Carlo draws) are read only through ``ds.tp.range`` and
``ds.tp.quantiles``, and are filled only when the Dataset carries draws. Derived figures
(budget cost, bloc dependence, options, who pays, validity warnings) are those of ``ds.tp``:
the dashboard renders them, it does not compute them again.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from tradepolicy import regions as regions_table
from tradepolicy.dashboard.caching import WARNINGS_LOCK
from tradepolicy.dashboard.markets import MarketInfo
from tradepolicy.measures.base import WELFARE_ENTRIES

#: the one budget sign of every view (docs/model.md)
BUDGET_TITLE = "Budget cost (spending > 0)"
#: what the per-importer chart and table call the per-importer figure (never "dependence")
PER_IMPORTER = "Largest foreign supplier, per importer"

#: ``ds.tp.options`` columns in the compare view: (column, heading); money headings get the unit
OPTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("dependence", "Dependence"),
    ("largest_outside_supplier", "Largest outside supplier"),
    ("unattributed_share", "Unattributed (ROW)"),
    ("meets_target", "Meets target"),
    ("points_removed", "Points removed"),
    ("budget_cost", BUDGET_TITLE),
    ("cost_to_bloc_buyers", "Cost to bloc buyers"),
    ("foreign_producers", "Foreign producers"),
    ("world_welfare", "World welfare"),
    ("budget_cost_per_point", "Budget cost per point"),
    ("buyer_cost_per_point", "Buyer cost per point"),
    ("note", "Note"),
)
#: ``ds.tp.who_pays`` columns: (column, heading)
WHO_PAYS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("cost_to_buyers", "Cost to buyers"),
    ("producers", "Producers"),
    ("budget_cost", BUDGET_TITLE),
    ("revenue_and_rents", "Revenue and rents"),
    ("welfare", "Welfare"),
)


def has_draws(ds: xr.Dataset) -> bool:
    """Whether ``ds`` carries Monte Carlo draws."""
    return bool(ds.tp.has_draws)


def _commodity(ds: xr.Dataset) -> str:
    return str(ds.commodity.values[0]) if "commodity" in ds.dims else str(ds.commodity.values)


def _one(ds: xr.Dataset) -> xr.Dataset:
    """The central results of the (first) market."""
    p = ds.tp.point()
    return p.isel(commodity=0) if "commodity" in p.dims else p


def _nan_range(r: tuple[float, float] | None, scale: float = 1.0) -> tuple[float, float]:
    return (math.nan, math.nan) if r is None else (r[0] * scale, r[1] * scale)


def names(codes: list[str] | tuple[str, ...], short: bool = True) -> str:
    """Region codes as a comma-separated list of (short) names from the regions table."""
    f = regions_table.short_name if short else regions_table.name
    return ", ".join(f(str(c)) for c in codes)


def scenario_warnings(ds: xr.Dataset, scenario: str) -> list[str]:
    """The validity warnings of ``scenario`` (``ds.tp.warnings``; empty when none)."""
    return list(ds.tp.warnings(scenario, _commodity(ds)))


@dataclass(frozen=True)
class Kpi:
    """One headline number: value and baseline in display units, optional 90% range.

    ``label`` is shown right after the value (the largest outside supplier), ``status``
    whether a target is met (``"met"``, ``"not met"`` or ``""``), ``warnings`` the validity
    warnings of the scenario.
    """

    key: str
    title: str
    value: float
    unit: str
    base: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    detail: str = ""
    label: str = ""
    status: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def change_pct(self) -> float:
        if not math.isfinite(self.base) or self.base == 0 or not math.isfinite(self.value):
            return math.nan
        return 100.0 * (self.value - self.base) / abs(self.base)

    @property
    def has_range(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)


def _weighted_price(
    p: xr.Dataset, scenario: str, regions: list[str], info: MarketInfo
) -> tuple[float, float]:
    """Base-consumption-weighted consumer price of ``regions`` (scenario, base)."""
    use = pd.Series(info.market.flows.sum(axis=0), index=info.regions)
    regions = [r for r in regions if use[r] > 0]
    if not regions:
        return math.nan, math.nan
    w = xr.DataArray(use[regions].to_numpy(), dims="region", coords={"region": regions})
    price = p["consumer_price"].sel(region=regions)
    val = float((price.sel(scenario=scenario) * w).sum() / w.sum()) / info.price_factor
    base = float((price.sel(scenario="baseline") * w).sum() / w.sum()) / info.price_factor
    return val, base


def dependence_kpi(ds: xr.Dataset, scenario: str, info: MarketInfo) -> Kpi:
    """The bloc figure (docs/model.md): the target bloc's share of use from its largest outside
    supplier, the target, the unattributed aggregate share and the 90% range."""
    c = _commodity(ds)
    p = _one(ds)
    bloc = ds.tp.bloc(c)
    desc = str(ds.attrs.get("target_description") or info.bloc_name).split(" (")[0]
    title = f"Dependence of {desc} on one outside supplier"
    dep = float(p["bloc_dependency"].sel(scenario=scenario))
    if not math.isfinite(dep):
        return Kpi("dependence", title, math.nan, "%")
    base = float(p["bloc_dependency"].sel(scenario="baseline"))
    top = str(p["bloc_top_supplier"].sel(scenario=scenario).values)
    agg = float(p["bloc_aggregate_share"].sel(scenario=scenario))
    share = ds.tp.target_share()
    status = ""
    if math.isfinite(share):
        met = int(p["meets_target"].sel(scenario=scenario)) == 1
        status = f"{'meets' if met else 'above'} the {share:.0%} target"
    lo, hi = _nan_range(ds.tp.range("bloc_dependency", scenario, c), 100.0)
    parts = []
    if agg > 0.0005:
        parts.append(f"ROW {100 * agg:.1f}% unattributed")
    parts.append(f"bloc here: {names(bloc, short=False)}")
    return Kpi(
        "dependence",
        title,
        100.0 * dep,
        "%",
        base=100.0 * base,
        lo=lo,
        hi=hi,
        detail="; ".join(parts),
        label=regions_table.name(top) if top else "",
        status=status,
        warnings=tuple(scenario_warnings(ds, scenario)),
    )


def kpis(ds: xr.Dataset, scenario: str, info: MarketInfo, members: list[str]) -> dict[str, Kpi]:
    """The headline numbers of ``scenario`` against the baseline.

    ``club_price`` and ``outside_price`` are consumer prices averaged over the club members
    and over the other regions, weighted by base consumption (fixed weights, so the change is
    a price change); ``budget_cost`` is ``ds.tp.budget_cost()`` summed over payers (spending
    > 0); ``world_welfare`` is the sum of every region's welfare change; ``dependence`` is the
    target bloc's dependence on its largest outside supplier (:func:`dependence_kpi`). Every
    KPI carries the scenario's validity warnings. The dependence target is the one recorded in
    the Dataset.
    """
    c = _commodity(ds)
    p = _one(ds)
    money = ds.tp.money_unit(c)
    warn = tuple(scenario_warnings(ds, scenario))
    outside = [r for r in info.regions if r not in members]
    out: dict[str, Kpi] = {}
    for key, title, regions in (
        ("club_price", "Consumer price, club", list(members)),
        ("outside_price", "Consumer price, outside the club", outside),
    ):
        val, base = _weighted_price(p, scenario, regions, info)
        who = names([r for r in regions if r in info.consumers], short=False)
        who = who or "no consuming region"
        out[key] = Kpi(key, title, val, info.price_label, base, detail=who, warnings=warn)

    budget = ds.tp.budget_cost().sel(commodity=c, scenario=scenario)
    lo, hi = ds.tp.range("budget_cost", scenario, c, "world") or (math.nan, math.nan)
    sc = p.sel(scenario=scenario)
    payers = budget.to_series()
    payers = payers[payers.abs() > 0.5e5]  # more than 0.05 M in the display unit
    detail = (
        "paid by "
        + ", ".join(
            f"{regions_table.name(str(r))} {ds.tp.money(v, c):+,.1f}" for r, v in payers.items()
        )
        if len(payers)
        else "no subsidy, offtake or stockpile"
    )
    out["budget_cost"] = Kpi(
        "budget_cost",
        BUDGET_TITLE,
        ds.tp.money(float(budget.sum()), c),
        money,
        lo=ds.tp.money(lo, c),
        hi=ds.tp.money(hi, c),
        detail=detail,
        warnings=warn,
    )

    welfare = sc["welfare_change"].to_series()
    lo, hi = ds.tp.range("welfare_change", scenario, c, "world") or (math.nan, math.nan)
    if welfare.notna().any() and (welfare.abs() > 0.05e6).any():
        best, worst = str(welfare.idxmax()), str(welfare.idxmin())
        detail = (
            f"most gained: {regions_table.name(best)} {ds.tp.money(welfare[best], c):+,.1f}"
            f"; most lost: {regions_table.name(worst)} "
            f"{ds.tp.money(welfare[worst], c):+,.1f}"
        )
    else:
        detail = ""
    out["world_welfare"] = Kpi(
        "world_welfare",
        "World welfare change",
        ds.tp.money(float(welfare.sum()), c),
        money,
        lo=ds.tp.money(lo, c),
        hi=ds.tp.money(hi, c),
        detail=detail,
        warnings=warn,
    )
    out["dependence"] = dependence_kpi(ds, scenario, info)
    return out


def region_table(ds: xr.Dataset, scenario: str, info: MarketInfo) -> pd.DataFrame:
    """Per region: prices (display unit) and changes, production change, welfare, budget cost
    and the largest foreign supplier of each importer (not the bloc figure)."""
    c = _commodity(ds)
    t = ds.tp.region_table(scenario, c)
    budget = ds.tp.budget_cost().sel(commodity=c, scenario=scenario).to_series()
    p, m = info.price_label, ds.tp.money_unit(c)
    out = pd.DataFrame(
        {
            f"Consumer price ({p})": t["consumer_price"].to_numpy() / info.price_factor,
            "Consumer price Δ%": t["consumer_price_pct"].to_numpy(),
            f"Producer price ({p})": t["producer_price"].to_numpy() / info.price_factor,
            "Producer price Δ%": t["producer_price_pct"].to_numpy(),
            "Production Δ%": t["production_pct"].to_numpy(),
            f"Welfare Δ ({m})": ds.tp.money(t["welfare_change"].to_numpy(float), c),
            f"{BUDGET_TITLE} ({m})": ds.tp.money(budget.reindex(t.index).to_numpy(float), c),
            "Largest foreign supplier (per importer)": [
                regions_table.name(s) if s else "—" for s in t["top_supplier"]
            ],
            "Its share, baseline %": 100 * t["top_supplier_share_base"].to_numpy(),
            "Its share %": 100 * t["top_supplier_share"].to_numpy(),
        },
        index=pd.Index([regions_table.name(str(r)) for r in t.index], name="Region"),
    )
    return out


def welfare_frame(ds: xr.Dataset, scenario: str) -> pd.DataFrame:
    """Long table (region, component, value, color, total; money in the display unit) of the
    welfare groups of the field table that are not zero."""
    c = _commodity(ds)
    p = _one(ds).sel(scenario=scenario)
    rows = []
    for label, colour, parts in ds.tp.welfare_groups().values():
        total = sum(p[k] for k in parts)
        if not isinstance(total, xr.DataArray):  # a welfare group has at least one part
            raise TypeError(f"welfare group {label!r} has no parts")
        vals = total.to_series()
        vals = pd.Series(ds.tp.money(vals.to_numpy(float), c), index=vals.index)
        if (vals.abs() > 1e-9).any():
            for region, v in vals.items():
                rows.append((str(region), label, float(v), colour))
    df = pd.DataFrame(rows, columns=["region", "component", "value", "color"])
    w = p["welfare_change"].to_series()
    total = pd.Series(ds.tp.money(w.to_numpy(float), c), index=w.index.astype(str), name="total")
    return df.join(total, on="region")


def welfare_totals(ds: xr.Dataset, scenario: str) -> pd.DataFrame:
    """Welfare change per region (display unit) with its 90% range (``ds.tp.quantiles``)."""
    c = _commodity(ds)
    w = _one(ds)["welfare_change"].sel(scenario=scenario).to_series()
    out = pd.DataFrame({"total": ds.tp.money(w.to_numpy(float), c)}, index=w.index.astype(str))
    out["lo"] = out["hi"] = np.nan
    if has_draws(ds):
        q = ds.tp.quantiles("welfare_change").sel(scenario=scenario, commodity=c)
        out["lo"] = ds.tp.money(q.sel(quantile=0.05).to_numpy(), c)
        out["hi"] = ds.tp.money(q.sel(quantile=0.95).to_numpy(), c)
    return out


def price_frame(ds: xr.Dataset, scenario: str, info: MarketInfo, var: str) -> pd.DataFrame:
    """``var`` (consumer_price or producer_price) by region: baseline, scenario and range."""
    da = _one(ds)[var] / info.price_factor
    df = pd.DataFrame(
        {
            "baseline": da.sel(scenario="baseline").to_series(),
            "scenario": da.sel(scenario=scenario).to_series(),
        }
    )
    df["lo"] = df["hi"] = np.nan
    if has_draws(ds):
        q = ds.tp.quantiles(var).sel(scenario=scenario, commodity=_commodity(ds))
        q = q / info.price_factor
        df["lo"] = q.sel(quantile=0.05).to_series()
        df["hi"] = q.sel(quantile=0.95).to_series()
    df["change_pct"] = 100 * (df["scenario"] - df["baseline"]) / df["baseline"]
    df = df[df["baseline"].notna()]
    df.index = df.index.astype(str)
    df.index.name = "region"
    return df


def dependency_frame(ds: xr.Dataset, scenario: str) -> pd.DataFrame:
    """Per importer: its largest foreign supplier and that supplier's share of its consumption
    (the per-importer detail; the bloc figure is :func:`dependence_kpi`)."""
    p = _one(ds)
    df = pd.DataFrame(
        {
            "supplier_base": p["top_supplier"].sel(scenario="baseline").to_series(),
            "share_base": p["top_supplier_share"].sel(scenario="baseline").to_series(),
            "supplier": p["top_supplier"].sel(scenario=scenario).to_series(),
            "share": p["top_supplier_share"].sel(scenario=scenario).to_series(),
        }
    )
    df["lo"] = df["hi"] = np.nan
    if has_draws(ds):
        q = ds.tp.quantiles("top_supplier_share").sel(scenario=scenario, commodity=_commodity(ds))
        df["lo"] = q.sel(quantile=0.05).to_series()
        df["hi"] = q.sel(quantile=0.95).to_series()
    df = df[df["share_base"].notna()]
    df.index = df.index.astype(str)
    df.index.name = "region"
    return df


def supplier_shares(ds: xr.Dataset, scenario: str) -> pd.DataFrame:
    """Importer × exporter shares of consumption (rows: consuming regions)."""
    s = _one(ds)["supplier_share"].sel(scenario=scenario).to_pandas().T  # importer × exporter
    s = s[s.notna().any(axis=1)].fillna(0.0)
    s.index = s.index.astype(str)
    s.columns = s.columns.astype(str)
    return s


def trade_matrix(ds: xr.Dataset, scenario: str = "baseline") -> pd.DataFrame:
    """Long table of flows: exporter, importer, flow, share of the importer's consumption."""
    p = _one(ds).sel(scenario=scenario)
    flow = p["trade_flow"].to_series().rename("flow")
    share = p["supplier_share"].to_series().rename("share")
    df = pd.concat([flow, share], axis=1).reset_index()
    df["exporter"] = df["exporter"].astype(str)
    df["importer"] = df["importer"].astype(str)
    return df


def options_table(ds: xr.Dataset, scenarios: list[str]) -> pd.DataFrame:
    """``ds.tp.options()`` for the baseline and ``scenarios``, with the validity warnings."""
    t = ds.tp.options(_commodity(ds))
    keep = ["baseline", *[s for s in scenarios if s != "baseline"]]
    out = t.loc[[s for s in keep if s in t.index]]
    out.attrs = dict(t.attrs)
    return out


def comparison_table(ds: xr.Dataset, scenarios: list[str]) -> pd.DataFrame:
    """The options side by side as the compare view shows them: one row per option (baseline
    first) with :data:`OPTION_COLUMNS` (money in ``ds.tp.money_unit()``) and a ``⚠`` column
    holding the validity warnings; unsolved options say so."""
    t = options_table(ds, scenarios)
    units = t.attrs["units"]
    rows = {}
    for scen, r in t.iterrows():
        row: dict[str, object] = {}
        for col, head in OPTION_COLUMNS:
            unit = units.get(col, "")
            if unit.startswith("M "):
                head = f"{head} ({unit})"
            v = r[col]
            if col in ("dependence", "unattributed_share"):
                v = 100 * v
                head = f"{head} %"
            elif col == "largest_outside_supplier":
                v = regions_table.name(v) if v else "—"
            elif col == "meets_target":
                v = v or "—"
            row[head] = v
        if not r["solved"]:
            row["Note"] = "not solved"
        row["⚠ Validity"] = f"⚠ {r['warnings']}" if r["warnings"] else ""
        rows[str(scen)] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "Option"
    return out


def who_pays_table(ds: xr.Dataset, scenario: str) -> pd.DataFrame:
    """``ds.tp.who_pays(scenario)`` with headings in the display unit; bloc members marked."""
    t = ds.tp.who_pays(scenario, _commodity(ds))
    unit = t.attrs["units"]
    out = pd.DataFrame(
        {f"{head} ({unit})": t[col].to_numpy() for col, head in WHO_PAYS_COLUMNS},
        index=pd.Index(
            [f"{n} (bloc)" if b else n for n, b in zip(t["name"], t["bloc_member"], strict=True)],
            name="Region",
        ),
    )
    return out


def comparison_long(ds: xr.Dataset, names: list[str], info: MarketInfo) -> pd.DataFrame:
    """Tidy table for CSV: market, scenario, region, variable, value, units, text.

    Central results per region (market units; ``<var>_q05``/``<var>_q95`` rows hold the 90%
    range from ``ds.tp.quantiles`` when the results carry draws), then the options table
    (``options.<column>``, region ``bloc`` or ``world``; money in ``ds.tp.money_unit()``) and
    who pays per option (``who_pays.<column>``, per region). ``value`` is always a number;
    the options' words (largest outside supplier, meets target, note) and each option's
    validity warnings (``warnings``) are in ``text``.
    """
    c = _commodity(ds)
    scen = ["baseline", *[n for n in names if n != "baseline"]]
    p = _one(ds).sel(scenario=scen)
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
        s = p[var].to_series().rename("value").reset_index()
        s["variable"] = var
        s["units"] = p[var].attrs.get("units", "")
        frames.append(s)
    if has_draws(ds):
        for var in variables:
            try:
                q = ds.tp.quantiles(var).sel(commodity=c, scenario=scen)
            except KeyError:  # no draws of this variable
                continue
            for qq, tag in ((0.05, "q05"), (0.95, "q95")):
                s = q.sel(quantile=qq).to_series().rename("value").reset_index()
                s = s.drop(columns=["quantile", "commodity"], errors="ignore")
                s["variable"] = f"{var}_{tag}"
                s["units"] = p[var].attrs.get("units", "")
                frames.append(s)
    t = options_table(ds, names)
    units = t.attrs["units"]
    for col in t.columns:
        if col in ("solved", "warnings"):
            continue
        region = "world" if col == "world_welfare" else "bloc"
        numeric = t[col].dtype.kind in "fi"
        frames.append(
            pd.DataFrame(
                {
                    "scenario": t.index,
                    "region": region,
                    "variable": f"options.{col}",
                    "value": t[col].to_numpy(float) if numeric else np.nan,
                    "text": "" if numeric else t[col].astype(str).to_numpy(),
                    "units": units.get(col, "") if numeric else "",
                }
            )
        )
    frames.append(
        pd.DataFrame(
            {
                "scenario": t.index,
                "region": "",
                "variable": "warnings",
                "value": np.nan,
                "text": t["warnings"].to_numpy(),
                "units": "",
            }
        )
    )
    for s in scen:
        if not bool(t.loc[s, "solved"]):
            continue
        w = ds.tp.who_pays(s, c)
        for col, _ in WHO_PAYS_COLUMNS:
            frames.append(
                pd.DataFrame(
                    {
                        "scenario": s,
                        "region": w.index,
                        "variable": f"who_pays.{col}",
                        "value": w[col].to_numpy(),
                        "units": w.attrs["units"],
                    }
                )
            )
    out = pd.concat(frames, ignore_index=True)
    out["text"] = out["text"].fillna("") if "text" in out else ""
    out = out[["scenario", "region", "variable", "value", "units", "text"]]
    with WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        out["scenario"] = out["scenario"].astype(str)
        out["region"] = out["region"].astype(str)
    out.insert(0, "market", info.id)
    return out


__all__ = [
    "BUDGET_TITLE",
    "OPTION_COLUMNS",
    "PER_IMPORTER",
    "WHO_PAYS_COLUMNS",
    "Kpi",
    "comparison_long",
    "comparison_table",
    "dependence_kpi",
    "dependency_frame",
    "has_draws",
    "kpis",
    "names",
    "options_table",
    "price_frame",
    "region_table",
    "scenario_warnings",
    "supplier_shares",
    "trade_matrix",
    "welfare_frame",
    "welfare_totals",
    "who_pays_table",
]
