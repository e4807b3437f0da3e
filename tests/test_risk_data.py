"""The documented risk and stockpile parameters and the shipped risk sets (docs/risk.md,
"Data and sources").

These tests read the parameter tables (``calibration/data/risk_events.csv``,
``risk_stockpile.csv``) and the shipped risk sets with ``tomllib``: they check that every number
has a public source, that the derived numbers follow from the observations the sources give,
and that the shipped sets use exactly these numbers. They do not need the engine.
"""

from __future__ import annotations

import csv
import math
import re
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "calibration" / "data"
EVENTS_CSV = DATA / "risk_events.csv"
STOCKS_CSV = DATA / "risk_stockpile.csv"
RISK_SETS = sorted((ROOT / "scenarios").glob("*_risk.toml"))
COLUMNS = ["risk", "parameter", "value", "low", "high", "unit", "basis", "source"]
BASES = {"observed", "derived", "fitted", "assumption", "choice", "label"}
#: internal research notes must never reach what users see (as tests/test_calibration.py)
INTERNAL = re.compile(
    r"\[UNVERIFIED|UNVERIFIED recollection|NOTES\.md|NOTES §|shared/|DESIGN(\.md)? ?§|\[assumption"
    r"|\[2nd|\[gap\]|\(se nan\)|\bnan\b|not in shared|research note"
)
#: the [[risk]] fields that are the event's own, compared one to one with the table
SCALARS = (
    "type",
    "exporter",
    "stage",
    "rent_to",
    "quantity_share",
    "rate",
    "annual_probability",
    "duration_years",
    "first_year",
    "last_year",
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _events() -> dict[str, dict[str, dict[str, str]]]:
    out: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    for r in _rows(EVENTS_CSV):
        assert r["parameter"] not in out[r["risk"]], f"{r['risk']}.{r['parameter']} twice"
        out[r["risk"]][r["parameter"]] = r
    return dict(out)


def _stocks() -> dict[str, dict[str, dict[str, str]]]:
    out: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    for r in _rows(STOCKS_CSV):
        out[r["applies_to"]][r["parameter"]] = r
    return dict(out)


def _num(row: dict[str, str], key: str = "value") -> float:
    return float(row[key])


def _set(path: Path) -> dict:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _poisson_probability(k: int, years: int) -> tuple[float, float, float]:
    """Annual probability of at least one start, 1 - exp(-rate), at the rate k / years and at
    the ends of its 90% exact (Garwood) Poisson interval."""
    lo = stats.chi2.ppf(0.05, 2 * k) / (2 * years)
    hi = stats.chi2.ppf(0.95, 2 * k + 2) / (2 * years)
    return tuple(1.0 - math.exp(-x) for x in (k / years, lo, hi))  # type: ignore[return-value]


def _severity(ev: dict[str, dict[str, str]]):
    kind = ev["severity_distribution"]["value"]
    if kind == "beta":
        return stats.beta(_num(ev["severity_a"]), _num(ev["severity_b"]))
    assert kind == "uniform", kind
    lo, hi = _num(ev["severity_low"]), _num(ev["severity_high"])
    return stats.uniform(lo, hi - lo)


def _base_use(market_stage: str, regions: list[str]) -> dict[str, float]:
    """Each region's 2024 use at a stage: the column sums of its shipped flows table."""
    stage = market_stage.split("/")[1]
    use = defaultdict(float)
    for r in _rows(ROOT / "models" / "equilibrium" / f"{stage}_flows.csv"):
        use[r["importer"]] += float(r["quantity"])
    return {g: use[g] for g in regions}


# -- the tables ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [EVENTS_CSV, STOCKS_CSV], ids=lambda p: p.name)
def test_every_row_has_a_basis_and_a_public_source(path: Path) -> None:
    rows = _rows(path)
    assert rows
    want = COLUMNS if path == EVENTS_CSV else ["applies_to", *COLUMNS[1:]]
    assert list(rows[0]) == want
    for i, r in enumerate(rows, start=2):
        where = f"{path.name}:{i} ({r['parameter']})"
        assert r["basis"] in BASES, f"{where}: basis {r['basis']!r} (allowed: {sorted(BASES)})"
        assert len(r["source"].strip()) >= 8, f"{where}: no source"
        assert not INTERNAL.search(r["source"] + r["value"] + r["unit"]), where
        if r["low"] and r["high"]:
            lo, hi = float(r["low"]), float(r["high"])
            assert lo <= hi, where
            if r["value"]:
                assert lo <= float(r["value"]) <= hi, where


def test_internal_scan_catches_notes() -> None:
    for bad in ("see NOTES.md", "[UNVERIFIED] x", "../shared/data/a.csv", "[assumption] y"):
        assert INTERNAL.search(bad)


@pytest.mark.parametrize("risk", sorted(_events()))
def test_annual_probability_is_the_episode_rate_with_its_poisson_interval(risk: str) -> None:
    ev = _events()[risk]
    k, years = int(_num(ev["episodes"])), int(_num(ev["window_years"]))
    assert k >= 1 and years >= 10
    p, lo, hi = _poisson_probability(k, years)
    row = ev["annual_probability"]
    assert _num(row) == pytest.approx(p, abs=0.005)
    # the interval is printed to its first significant digits
    assert _num(row, "low") == pytest.approx(lo, rel=0.1)
    assert _num(row, "high") == pytest.approx(hi, rel=0.05)


@pytest.mark.parametrize("risk", sorted(_events()))
def test_severity_distribution_fits_the_observed_severity(risk: str) -> None:
    """The observed (year-average) severity lies inside the distribution's 5-95% range, and
    the distribution's mean or mode lies inside the observed range."""
    ev = _events()[risk]
    dist = _severity(ev)
    obs = ev["observed_severity"]
    lo, hi = dist.ppf([0.05, 0.95])
    assert lo <= _num(obs) <= hi
    centres = [dist.mean()]
    if ev["severity_distribution"]["value"] == "beta":
        a, b = _num(ev["severity_a"]), _num(ev["severity_b"])
        if a > 1 and b > 1:
            centres.append((a - 1) / (a + b - 2))
    assert any(_num(obs, "low") <= c <= _num(obs, "high") for c in centres), centres
    assert 0.0 <= dist.ppf(0.0) and dist.ppf(1.0) <= 1.0


def test_magnet_licensing_numbers_follow_from_the_customs_data() -> None:
    """China's magnet exports (customs): May 2025 1,238.47 t at -74.26% y/y; June 3,188 t at
    -38.1% y/y; April 2,626 t; 2024 exports 58,152 t (the base flows)."""
    ev = _events()["chn_magnet_licensing"]
    assert _num(ev["quantity_share"]) == pytest.approx(1 - 0.7426, abs=0.005)
    may24, jun24 = 1238.47 / (1 - 0.7426), 3188 / (1 - 0.381)
    base = sum(
        float(r["quantity"])
        for r in _rows(ROOT / "models" / "equilibrium" / "ree_ndfeb_magnet_flows.csv")
        if r["exporter"] == "CHN" and r["importer"] != "CHN"
    )
    assert base == pytest.approx(58152, rel=1e-3)
    shortfall = (base / 12 - 2626) + (may24 - 1238.47) + (jun24 - 3188)
    s = shortfall / base / (1 - _num(ev["quantity_share"]))
    assert _num(ev["observed_severity"]) == pytest.approx(s, abs=0.01)


def test_dytb_wedge_is_the_europe_over_china_ratio() -> None:
    """Europe (Argus) over China (SMM) relative to before the controls: Dy 280 -> 850 USD/kg
    against 1,690,000 -> 1,615,000 CNY/t, Tb 965 -> 3,000 against 7,075,000 -> 7,025,000."""
    ev = _events()["chn_dytb_licensing"]
    dy = (850 / 1615) / (280 / 1690)
    tb = (3000 / 7025) / (965 / 7075)
    assert 3.0 <= min(dy, tb) and max(dy, tb) <= 3.3
    assert _num(ev["rate"]) == pytest.approx(3.0 - 1.0)
    # the year average x2.25 of the documented path is the observed severity
    path = [3.2] * 4 + [3.2 - (3.2 - 1.3) * i / 5 for i in range(1, 5)] + [1.3] * 4
    assert _num(ev["observed_severity"]) == pytest.approx((sum(path) / 12 - 1) / 2.0, abs=0.03)


def test_gallium_wedge_is_the_rotterdam_over_china_change() -> None:
    ev = _events()["chn_gallium_licensing"]
    assert _num(ev["rate"]) == pytest.approx(2.14 / 0.91 - 1, abs=0.005)
    assert _num(ev["observed_severity"], "low") == pytest.approx(
        (1.43 / 0.91 - 1) / _num(ev["rate"]), abs=0.01
    )


def test_drc_quota_numbers_follow_from_the_announced_quotas() -> None:
    """226,000 t mined in 2024; exports at that rate to 21 February 2025, then 18,125 t to the
    year end; 96,600 t a year in 2026-2027."""
    ev = _events()["cod_cobalt_export_ban"]
    q = (226000 * 52 / 365 + 18125) / 226000
    assert _num(ev["quantity_share"]) == pytest.approx(q, abs=0.005)
    quota_year = (1 - 96600 / 226000) / (1 - _num(ev["quantity_share"]))
    assert _num(ev["quota_year_severity"]) == pytest.approx(quota_year, abs=0.01)


def test_drc_severity_brackets_the_observed_hydroxide_prices(tmp_path: Path) -> None:
    """The DRC event's observed severity range is the binding share of the announced cut at
    which the short-run model of the 2024 market gives China's hydroxide price x2.1 (during
    the ban) and x3.4 (after the quota announcement), as observed (Platts, Fastmarkets)."""
    import tradepolicy as tp

    ev = _events()["cod_cobalt_export_ban"]
    share = _num(ev["quantity_share"])
    obs = ev["observed_severity"]
    parts = [
        'market = "cobalt_chain"\ntitle = "check"\nhorizon = "short"\n',
    ]
    for key in ("low", "high"):
        s = _num(obs, key)
        parts.append(
            f'[[scenario]]\nname = "s_{key}"\n[[scenario.measure]]\ntype = "export_quota"\n'
            f'exporter = "COD"\nstage = "co_intermediate"\nrent_to = "exporters"\n'
            f"quantity = {226000 * (1 - s * (1 - share))}\n"
        )
    path = tmp_path / "drc.toml"
    path.write_text("".join(parts), encoding="utf-8")
    ds = tp.solve(tp.load_scenarios(path))
    ratio = ds["consumer_price"] / ds["consumer_price"].sel(scenario="baseline")
    hyd = ratio.sel(stage="co_intermediate", region="CHN")
    assert float(hyd.sel(scenario="s_low")) == pytest.approx(2.1, abs=0.1)
    assert float(hyd.sel(scenario="s_high")) == pytest.approx(3.4, abs=0.1)
    # the severity distribution spans that range
    assert _num(ev["severity_low"]) <= _num(obs, "low") and _num(obs, "high") <= _num(
        ev["severity_high"]
    )


def test_magnet_severity_is_centred_on_the_licensing_binding_share() -> None:
    """The magnet event withholds s x (1 - quantity_share) of base exports; its mean severity
    is the back-casts' licensing binding share (fitted on gallium 2023, docs/backcasts.md),
    and its mode the observed 2025 year-average."""
    from tradepolicy.calibration.backcast import binding_shares

    ev = _events()["chn_magnet_licensing"]
    b = binding_shares()["licensing"]
    assert _severity(ev).mean() == pytest.approx(b, abs=0.01)
    a, bb = _num(ev["severity_a"]), _num(ev["severity_b"])
    assert (a - 1) / (a + bb - 2) == pytest.approx(_num(ev["observed_severity"]), abs=0.01)


@pytest.mark.parametrize("scope", sorted(k for k in _stocks() if k != "all"))
def test_payer_shares_are_the_holders_shares_of_base_use(scope: str) -> None:
    rows = _stocks()[scope]
    holders = rows["holders"]["value"].split()
    shares = {p.removeprefix("payer_"): _num(r) for p, r in rows.items() if p.startswith("payer_")}
    assert set(shares) == set(holders)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-9)
    use = _base_use(scope, holders)
    total = sum(use.values())
    for g in holders:
        assert use[g] > 0, f"{scope}: holder {g} uses nothing at this stage"
        assert shares[g] == pytest.approx(use[g] / total, abs=0.0015), g


# -- the shipped sets use exactly these numbers ------------------------------------------------
def test_the_shipped_risk_sets() -> None:
    names = {p.stem for p in RISK_SETS}
    assert names == {"ree_magnets_risk", "cobalt_risk", "gallium_risk"}
    for p in RISK_SETS:
        s = _set(p)
        assert s["years"] == [2024, 2035], p.name
        assert s["risk"], p.name
        assert not INTERNAL.search(p.read_text(encoding="utf-8")), p.name


def test_every_risk_of_the_shipped_sets_is_a_documented_row() -> None:
    events = _events()
    used: dict[str, str] = {}
    for p in RISK_SETS:
        s = _set(p)
        for r in s["risk"]:
            name = r["name"]
            assert name in events, f"{p.name}: risk {name!r} has no rows in {EVENTS_CSV.name}"
            assert name not in used, f"{name} in {used.get(name)} and {p.name}"
            used[name] = p.name
            ev = events[name]
            assert r.get("source", "").strip(), f"{p.name}: {name} has no source"
            assert not INTERNAL.search(r["source"])
            assert ev["market"]["value"] == s["market"]
            assert r.get("label") == ev["label"]["value"]
            for key in SCALARS:
                if key not in ev or ev[key]["value"] == "":
                    assert key not in r, f"{p.name}: {name}.{key} is not in the table"
                    continue
                want: object = ev[key]["value"]
                if isinstance(r.get(key), (int, float)):
                    want = float(want)  # type: ignore[arg-type]
                assert r.get(key) == want, (
                    f"{p.name}: {name}.{key} = {r.get(key)!r}, table {want!r}"
                )
            assert ev["destinations"]["value"] == "all" and "destinations" not in r
            sev = dict(r["severity"])
            assert sev.pop("distribution") == ev["severity_distribution"]["value"]
            assert sev == {k: _num(ev[f"severity_{k}"]) for k in sev}
            assert len(sev) == 2
    assert set(used) == set(events), "a documented risk is shipped in no set"


def _stock_measures(s: dict):
    for sc in s["scenario"]:
        for m in sc["measure"]:
            if m["type"] == "stockpile_policy":
                yield sc["name"], m


@pytest.mark.parametrize("path", RISK_SETS, ids=lambda p: p.stem)
def test_stockpiles_of_the_shipped_sets_use_the_documented_parameters(path: Path) -> None:
    s = _set(path)
    rows = _stocks()
    common = rows["all"]
    unit = "per_kg" if s["market"] == "gallium" else "per_t"
    found = 0
    for name, m in _stock_measures(s):
        found += 1
        days = 180 if "180" in name else 60
        assert m["target_days"] == _num(common[f"target_days_{days}"])
        assert m["build_years"] == [
            int(_num(common["build_first_year"])),
            int(_num(common["build_last_year"])),
        ]
        assert m["build_rate"] == _num(common["build_rate"])
        assert m["release"] == common["release"]["value"]
        assert m["release_rate"] == _num(common["release_rate"])
        assert m["financing_rate"] == _num(common["financing_rate"])
        assert m["storage_cost"] == _num(common[f"storage_cost_{unit}"])
        assert "book_value" not in m and common["book_value"]["value"] == ""
        assert m["coordinated"] is name.endswith("_coordinated")
        scope = f"{s['market']}/{m.get('stage', s['market'])}"
        assert scope in rows, f"{path.name}: {name}: no payer rows for {scope}"
        holders = rows[scope]["holders"]["value"].split()
        assert m["regions"] == holders
        assert m["payers"] == {g: _num(rows[scope][f"payer_{g}"]) for g in holders}
        # a stock is released only at the stage its events hit
        assert m.get("stage") in {r.get("stage") for r in s["risk"]}
    assert found >= 3


def test_the_rare_earth_risk_set_carries_the_action_plan_measures_unchanged() -> None:
    s = _set(ROOT / "scenarios" / "ree_magnets_risk.toml")
    ref = {sc["name"]: sc for sc in _set(ROOT / "scenarios" / "ree_magnets_2030.toml")["scenario"]}
    names = [sc["name"] for sc in s["scenario"]]
    assert names == [
        "stockpile_60",
        "stockpile_180",
        "stockpile_60_coordinated",
        "price_gap_subsidy",
        "combination",
        "stockpile_60_combination",
    ]
    by = {sc["name"]: sc for sc in s["scenario"]}
    for n in ("price_gap_subsidy", "combination"):
        assert by[n]["measure"] == ref[n]["measure"]
    combo = [
        m for m in by["stockpile_60_combination"]["measure"] if m["type"] != "stockpile_policy"
    ]
    assert combo == ref["combination"]["measure"]
    stocks60 = list(by["stockpile_60"]["measure"])
    assert [
        m for m in by["stockpile_60_combination"]["measure"] if m["type"] == "stockpile_policy"
    ] == stocks60
    # both disrupted stages have a stock in every stockpile option
    for n in ("stockpile_60", "stockpile_180", "stockpile_60_coordinated"):
        assert {m["stage"] for m in by[n]["measure"]} == {"ree_ndfeb_magnet", "ree_dytb_oxide"}
