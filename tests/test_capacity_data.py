"""Capacity data, project pipelines and demand paths (DESIGN §11, issue 17 item 2).

The shipped tables against their sources and against the market's base data; the row schemas
(errors name file, line and field); the calibration pipeline copying them next to the market
(idempotent, checked by ``--check``); and ``Market`` exposing them, while markets without
them stay exactly as before.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_calibration import INTERNAL, _calibrate, _digest, _write, make_data

import tradepolicy as tp
from tradepolicy.calibration.schema import (
    STATUSES,
    load_market_data,
    market_ids,
    read_year_tables,
)
from tradepolicy.errors import InputError

ROOT = Path(__file__).parents[1]
DATA = ROOT / "calibration" / "data"
MARKETS_DIR = ROOT / "models" / "equilibrium"
SHIPPED = market_ids(DATA) if (DATA / "markets.csv").exists() else []
REE = ["ree_ndpr_oxide", "ree_ndpr_metal", "ree_dytb_oxide", "ree_ndfeb_magnet"]
TABLES = ("capacity", "projects", "demand_paths")
#: internal research tags that must never reach a data row users see
TAGS = re.compile(INTERNAL.pattern + r"|DUPLICATE-OF-EXISTING|research note|\.\./shared")


def _with_tables() -> list[tuple[str, str]]:
    return [(m, t) for m in SHIPPED for t in TABLES if (DATA / m / f"{t}.csv").exists()]


# -- shipped data --------------------------------------------------------------------------
def test_ree_stages_and_battery_markets_have_their_tables():
    for mid in REE:
        for t in TABLES:
            assert (DATA / mid / f"{t}.csv").exists(), (mid, t)
    for mid in ("lithium_chemicals", "refined_cobalt", "co_refined", "refined_nickel"):
        assert (DATA / mid / "demand_paths.csv").exists(), mid
    assert (DATA / "graphite_anode" / "demand_paths.csv").exists()


@pytest.mark.parametrize(("mid", "table"), _with_tables())
def test_every_row_is_sourced_and_free_of_internal_tags(mid, table):
    raw = pd.read_csv(DATA / mid / f"{table}.csv", dtype=str, keep_default_na=False)
    assert len(raw) > 0
    for i, src in enumerate(raw["source"], start=2):
        assert len(src.strip()) >= 20, f"{mid}/{table}.csv line {i}: no real source"
        hits = sorted({m.group(0) for m in TAGS.finditer(src)})
        assert not hits, f"{mid}/{table}.csv line {i} shows internal tags {hits}"
    for path in (MARKETS_DIR / f"{mid}_{table}.csv", ROOT / "docs" / "markets" / f"{mid}.md"):
        text = path.read_text(encoding="utf-8")
        assert not TAGS.search(text), path


@pytest.mark.parametrize("mid", REE)
def test_projects_are_plants_of_the_stage_with_public_sources(mid):
    data = load_market_data(DATA, mid)
    proj = data.projects
    assert set(proj["status"]) <= set(STATUSES)
    assert (proj["stage"] == mid).all()
    assert (proj["capacity"] > 0).all()
    # the compiled pipeline's non-plant rows (financing, offtake, mines, cracking) are filtered
    for bad in ("JARE", "Kalgoorlie", "Mt Weld", "Serra Verde", "Round Top"):
        assert not proj["project"].str.contains(bad).any(), bad
    assert proj["source"].str.contains("https?://", regex=True).all()
    # co-product rows of one plant carry no capex of their own and say where it is counted
    zero = proj[proj["capex"] == 0]
    assert zero["source"].str.contains("capex is counted in").all()
    # every number is a value or a documented range: a range says why in the source
    for r in proj.to_dict("records"):
        for name in ("lead_time", "capex", "unit_cost"):
            if pd.isna(r[name]):
                assert r[f"{name}_low"] <= r[f"{name}_high"]
                assert f"{name.replace('_', ' ')} not published" in r["source"], (r, name)


@pytest.mark.parametrize("mid", REE)
def test_base_year_capacity_covers_base_output(mid):
    """Nameplate capacity is at least what each region produced in the base year."""
    data = load_market_data(DATA, mid)
    cap = data.capacity.set_index("region")
    prod = data.production.set_index("region")["quantity"]
    assert set(cap.index) == set(data.regions)
    assert (cap["year"] == data.info.base_year).all()
    for region, q in prod.items():
        assert cap.loc[region, "capacity"] >= q - 1e-9, (mid, region)
    # no capacity where the stage has neither output nor a plant: zeros are explicit
    assert (cap["capacity"] >= 0).all()


def test_pipeline_figures_match_the_company_releases():
    """Spot checks of copied numbers against the public releases they cite."""
    mag = load_market_data(DATA, "ree_ndfeb_magnet").projects.set_index("project")
    ten_x = mag.loc[next(p for p in mag.index if p.startswith("MP Materials 10X"))]
    assert (ten_x["capacity"], ten_x["capex"], ten_x["earliest_start"]) == (7000, 1250, 2028)
    ox = load_market_data(DATA, "ree_ndpr_oxide")
    ef = ox.projects.set_index("project").loc[
        "Energy Fuels White Mesa Mill REE Phase 2 expansion (UT)"
    ]
    assert (ef["capacity"], ef["capex"], ef["unit_cost"]) == (6000, 410, 29390)  # BFS Jan 2026
    cap = ox.capacity.set_index("region")["capacity"]
    assert cap["MYS"] == 10500  # Lynas Malaysia nameplate
    assert cap["USA"] == 4000 + 1000  # Mountain Pass run-rate + White Mesa phase 1


#: IEA Critical Minerals Data Explorer (May 2025), world total demand, kt: 2024, STEPS and APS
IEA_DEMAND = {
    "ree_ndfeb_magnet": (90.922, {2030: 122.846, 2035: 140.120}, {2030: 131.569, 2035: 148.881}),
    "ree_ndpr_oxide": (90.922, {2030: 122.846, 2035: 140.120}, {2030: 131.569, 2035: 148.881}),
    "graphite_anode": (1505.194, {2030: 4113.992, 2035: 5634.047}, {2030: 4663.902}),
}


@pytest.mark.parametrize("mid", sorted(IEA_DEMAND))
def test_demand_paths_reproduce_iea_2030_and_2035(mid):
    base, steps, aps = IEA_DEMAND[mid]
    paths = load_market_data(DATA, mid).demand_paths.set_index(["path", "year"])["index"]
    assert paths["iea_steps", 2024] == paths["iea_aps", 2024] == 1.0
    for path, figures in (("iea_steps", steps), ("iea_aps", aps)):
        for year, kt in figures.items():
            assert paths[path, year] * base == pytest.approx(kt, rel=1e-5), (path, year)


@pytest.mark.parametrize("mid", [m for m, t in _with_tables() if t == "demand_paths"])
def test_each_demand_index_is_the_ratio_its_source_states(mid):
    raw = pd.read_csv(DATA / mid / "demand_paths.csv")
    for r in raw.itertuples(index=False):
        if r.year == 2024:
            assert r.index == 1.0
            continue
        num, den = re.search(r"= ([\d,.]+) kt / 2024 ([\d,.]+) kt", r.source).groups()
        ratio = float(num.replace(",", "")) / float(den.replace(",", ""))
        assert r.index == pytest.approx(ratio, rel=1e-5), (mid, r.path, r.year)
    # APS (announced pledges) needs at least STEPS' clean-energy minerals by 2035
    wide = raw.pivot(index="year", columns="path", values="index")
    assert (wide["iea_aps"] >= wide["iea_steps"] - 1e-9).loc[2035]


# -- schemas -------------------------------------------------------------------------------
REGIONS = ["CHN", "USA", "EU", "JPN", "ROW"]
GOOD_PROJECT = {
    "project": "Plant A",
    "owner": "Owner",
    "region": "USA",
    "stage": "toy",
    "capacity": "100",
    "capacity_low": "",
    "capacity_high": "",
    "status": "construction",
    "earliest_start": "2027",
    "lead_time": "",
    "lead_time_low": "1",
    "lead_time_high": "3",
    "capex": "50",
    "capex_low": "",
    "capex_high": "",
    "unit_cost": "",
    "unit_cost_low": "500",
    "unit_cost_high": "900",
    "source": "Company release (2025), https://example.org",
}


def _capacity(**edit: str) -> pd.DataFrame:
    rows = [
        {"region": r, "capacity": "10", "low": "", "high": "", "year": "2024", "source": "s"}
        for r in REGIONS
    ]
    frame = pd.DataFrame(rows)
    for k, v in edit.items():
        frame.loc[1, k] = v
    return frame


def _projects(**edit: str) -> pd.DataFrame:
    return pd.DataFrame([GOOD_PROJECT | edit])


def _paths(**edit) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"path": "iea_steps", "year": ["2024", "2030"], "index": ["1", "1.5"], "source": "IEA"}
    )
    for k, v in edit.items():
        frame.loc[0, k] = str(v)
    return frame


def _read(tmp_path: Path, table: str, frame: pd.DataFrame) -> dict:
    _write(tmp_path / f"{table}.csv", frame)
    return read_year_tables(tmp_path, "toy", REGIONS, 2024, {table: tmp_path / f"{table}.csv"})


def test_good_tables_read(tmp_path):
    assert len(_read(tmp_path, "capacity", _capacity())["capacity"]) == 5
    proj = _read(tmp_path, "projects", _projects())["projects"].iloc[0]
    assert proj["capacity"] == 100 and proj["lead_time_low"] == 1 and pd.isna(proj["lead_time"])
    assert len(_read(tmp_path, "demand_paths", _paths())["demand_paths"]) == 2


@pytest.mark.parametrize(
    ("table", "frame", "expect"),
    [
        ("projects", _projects(status="suspended"), r"line 2: status.*'operating'"),
        ("projects", _projects(capex=""), r"line 2: row.*capex: give a value or.*range"),
        ("projects", _projects(lead_time_low="4"), r"line 2: row.*lead_time_low must not exceed"),
        (
            "projects",
            _projects(unit_cost_high=""),
            r"line 2: row.*unit_cost_low and unit_cost_high",
        ),
        ("projects", _projects(capex="20", capex_low="30", capex_high="40"), r"capex 20.* outside"),
        ("projects", _projects(capacity="-5"), r"line 2: capacity.*greater than or equal to 0"),
        ("projects", _projects(region="XXX"), r"line 2: region.*unknown region 'XXX'"),
        ("projects", _projects(stage="other"), r"line 2: stage.*not this market"),
        ("projects", _projects(source=""), r"line 2: source"),
        ("projects", _projects(earliest_start="", lead_time_low="", lead_time_high=""), "lead"),
        ("capacity", _capacity(low="20", high="30"), r"line 3: row.*low <= capacity <= high"),
        ("capacity", _capacity(year="2023"), r"line 3: year.*base year 2024"),
        ("capacity", _capacity().iloc[:4], r"region.*no row for \['ROW'\]"),
        ("capacity", _capacity(capacity="abc"), r"line 3: capacity.*number"),
        ("demand_paths", _paths(index=1.2), r"index.*'iea_steps'.*needs a row with index 1"),
        ("demand_paths", _paths(index=0.0), r"line 2: index.*greater than 0"),
        ("demand_paths", _paths(year=2030), r"path/year.*share a key"),
    ],
)
def test_bad_tables_name_file_line_and_field(tmp_path, table, frame, expect):
    with pytest.raises(InputError, match=expect) as info:
        _read(tmp_path, table, frame)
    assert f"{table}.csv" in str(info.value)


def test_a_wrong_header_is_named(tmp_path):
    frame = _projects().drop(columns=["unit_cost_low"])
    with pytest.raises(InputError, match=r"(?s)projects.csv.*header.*missing \['unit_cost_low'\]"):
        _read(tmp_path, "projects", frame)


# -- pipeline and loading --------------------------------------------------------------------
def _toy_with_tables(root: Path) -> Path:
    data = make_data(root)
    _write(data / "toy" / "capacity.csv", _capacity())
    _write(data / "toy" / "projects.csv", _projects())
    _write(data / "toy" / "demand_paths.csv", _paths())
    return data


def test_calibrate_copies_the_tables_and_the_market_exposes_them(tmp_path):
    data = _toy_with_tables(tmp_path / "data")
    code, output = _calibrate(data, tmp_path / "a")
    assert code == 0, output
    m = tmp_path / "a" / "m"
    doc = tomllib.loads((m / "toy.toml").read_text())
    assert doc["capacity_file"] == "toy_capacity.csv"
    assert doc["projects_file"] == "toy_projects.csv"
    assert doc["demand_paths_file"] == "toy_demand_paths.csv"
    mkt = tp.load_market(m / "toy.toml")
    assert list(mkt.capacity["region"]) == REGIONS
    assert mkt.projects.iloc[0]["status"] == "construction"
    assert mkt.demand_paths.set_index("year")["index"][2030] == 1.5
    # read-only: the market hands out copies
    copy = mkt.capacity
    copy.loc[0, "capacity"] = 1e9
    assert mkt.capacity.loc[0, "capacity"] == 10.0
    assert (m / "toy_capacity.csv") in mkt.input_files()
    # idempotent, and --check sees a changed row of the tables
    _calibrate(data, tmp_path / "b")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _calibrate(data, tmp_path / "a", "--check")[0] == 0
    _write(data / "toy" / "projects.csv", _projects(capex="51"))
    code, output = _calibrate(data, tmp_path / "a", "--check")
    assert code == 1 and "toy_projects.csv" in output.replace("\n", "")


def test_a_market_without_tables_is_unchanged(tmp_path):
    data = make_data(tmp_path / "data")
    assert _calibrate(data, tmp_path / "o")[0] == 0
    doc = tomllib.loads((tmp_path / "o" / "m" / "toy.toml").read_text())
    assert not {"capacity_file", "projects_file", "demand_paths_file"} & set(doc)
    mkt = tp.load_market(tmp_path / "o" / "m" / "toy.toml")
    assert mkt.capacity is None and mkt.projects is None and mkt.demand_paths is None
    assert sorted(p.name for p in (tmp_path / "o" / "m").iterdir()) == ["toy.toml", "toy_flows.csv"]


def test_the_tables_do_not_change_the_static_market(tmp_path):
    """Same calibration id, data hash and baseline with and without the tables."""
    plain = make_data(tmp_path / "plain")
    full = _toy_with_tables(tmp_path / "full")
    _calibrate(plain, tmp_path / "p")
    _calibrate(full, tmp_path / "f")
    a = tp.load_market(tmp_path / "p" / "m" / "toy.toml")
    b = tp.load_market(tmp_path / "f" / "m" / "toy.toml")
    assert a.spec.calibration_id == b.spec.calibration_id
    assert a.data_hash == b.data_hash
    np.testing.assert_array_equal(a.flows, b.flows)


def test_a_bad_table_stops_the_market_load(tmp_path):
    data = _toy_with_tables(tmp_path / "data")
    assert _calibrate(data, tmp_path / "o")[0] == 0
    path = tmp_path / "o" / "m" / "toy_projects.csv"
    _write(path, _projects(status="maybe"))
    with pytest.raises(InputError, match=r"(?s)toy_projects.csv.*line 2: status"):
        tp.load_market(tmp_path / "o" / "m" / "toy.toml")
    path.unlink()
    with pytest.raises(InputError, match=r"(?s)projects_file.*does not exist"):
        tp.load_market(tmp_path / "o" / "m" / "toy.toml")


@pytest.mark.parametrize("mid", REE)
def test_shipped_ree_market_exposes_its_tables(mid):
    mkt = tp.load_market(mid)
    data = load_market_data(DATA, mid)
    for t in TABLES:
        pd.testing.assert_frame_equal(getattr(mkt, t), getattr(data, t), check_dtype=False)
    assert set(mkt.capacity["region"]) == set(mkt.regions)
    chain = tp.load_market("ree_magnets")
    stage = next(s for s in chain.stages if s.id == mid)
    pd.testing.assert_frame_equal(stage.projects, mkt.projects)


def test_shipped_markets_without_tables_expose_none():
    for mid in ("gallium", "germanium", "ndpr_oxide"):
        mkt = tp.load_market(mid)
        assert mkt.capacity is None and mkt.projects is None and mkt.demand_paths is None
