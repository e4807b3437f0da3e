"""IEA base-case supply projections (the year loop's calibration target) and the battery
markets' capacity tables (DESIGN §11, issue 17 items 2 and 4).

The shipped projections against IEA's published figures (typed in here from the IEA Critical
Minerals Data Explorer, May 2025, independently of the CSVs), against the conversion and the
region mapping of each market's base output, and adding up to IEA's country totals; the row
schema (errors name file, line and field); the pipeline copying the table and ``Market``
exposing it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from test_calibration import REGIONS, _calibrate, _write, make_data
from test_capacity_data import TAGS

import tradepolicy as tp
from tradepolicy.calibration.schema import load_market_data, read_year_tables
from tradepolicy.errors import InputError

ROOT = Path(__file__).parents[1]
DATA = ROOT / "calibration" / "data"
MARKETS_DIR = ROOT / "models" / "equilibrium"
IEA_URL = "https://www.iea.org/data-and-statistics/data-tools/critical-minerals-data-explorer"

#: t of the market's unit per kt of IEA's figure, as each production.csv converts 2024
FACTOR = {
    "ree_ndpr_oxide": 1049.93,  # 1.04993 t NdPr oxide per t magnet REE
    "lithium_chemicals": 5323.0,  # 5.323 t LCE per t Li
    "refined_cobalt": 1000.0,
    "co_refined": 1000.0,
    "refined_nickel": 1000.0,
    "graphite_anode": 1000.0,
}
PROJECTED = [*FACTOR, "co_intermediate"]
BATTERY = [
    "lithium_chemicals",
    "refined_cobalt",
    "co_refined",
    "co_intermediate",
    "refined_nickel",
    "graphite_anode",
]

#: IEA base case, refining (mining for co_intermediate), kt, 2024 actual and 2030 projection,
#: by model region after the base output's mapping (several IEA rows summed where it sums them)
IEA_2024_2030 = {
    "ree_ndpr_oxide": {
        "CHN": (73.757, 81.127),
        "MYS": (3.625, 10.101),
        "USA": (0.961, 7.131),
        "AUS": (0.0, 2.537),
        "EU+ROW": (2.462, 5.786),  # 'Rest of world', of which 750 t oxide is the EU's
    },
    "lithium_chemicals": {
        "CHN": (169.678, 277.074),
        "CHL": (49.274, 58.023),
        "ARG": (13.177, 48.970),
        "AUS": (4.333, 24.388),
        "ROW": (5.150, 41.698),
    },
    "refined_cobalt": {
        "CHN": (196.143, 251.702),
        "EU": (20.120, 19.852),  # Finland
        "JPN": (5.649, 5.954),
        "IDN": (2.874, 10.346),
        "CAN": (1.754, 4.104),
        "ROW": (23.610, 33.230),
    },
    "refined_nickel": {
        "IDN": (1493.2, 2037.05),
        "CHN": (1091.077, 1480.488),
        "EU": (62.0, 86.0),  # Finland
        "AUS": (80.0, 37.0),
        "RUS": (126.0, 142.3),
        "CAN": (113.1, 127.8),
        "ROW": (631.42 - 113.1, 719.97 - 127.8),  # 'Rest of world' read as including Canada
    },
    "graphite_anode": {
        "CHN": (1794.824, 3854.369),
        "JPN": (44.965, 158.603),
        "USA": (1.109, 32.024),
        "EU": (0.0, 43.449 + 0.717),  # Germany + Sweden
        "ROW": (34.354, 372.094 + 9.294),  # 'Rest of world' + Canada
    },
}
IEA_2024_2030["co_refined"] = IEA_2024_2030["refined_cobalt"]


def _proj(mid: str) -> pd.DataFrame:
    return load_market_data(DATA, mid).supply_projections


# -- shipped data --------------------------------------------------------------------------
@pytest.mark.parametrize("mid", PROJECTED)
def test_shipped_projections_validate_and_cover_every_region(mid):
    data = load_market_data(DATA, mid)
    proj = data.supply_projections
    assert set(proj["path"]) == {"iea_base_case"}
    assert set(proj["year"]) == {2030, 2035, 2040}
    for _, grp in proj.groupby(["path", "year"]):
        assert sorted(grp["region"]) == sorted(data.regions)
    assert (proj["quantity"] >= 0).all()
    ranged = proj.dropna(subset=["low", "high"])
    assert ((ranged["low"] <= ranged["quantity"]) & (ranged["quantity"] <= ranged["high"])).all()
    assert proj["source"].str.contains(IEA_URL, regex=False).all()
    assert proj["source"].str.contains("CC BY 4.0").all()


@pytest.mark.parametrize("mid", PROJECTED)
def test_sources_are_public_and_free_of_internal_tags(mid):
    for table in ("supply_projections", "capacity", "notes"):
        path = DATA / mid / f"{table}.csv"
        if not path.exists():
            continue
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        col = "text" if table == "notes" else "source"
        for i, src in enumerate(raw[col], start=2):
            assert len(src.strip()) >= 20, f"{mid}/{table}.csv line {i}: no real source"
            hits = sorted({m.group(0) for m in TAGS.finditer(src)})
            assert not hits, f"{mid}/{table}.csv line {i} shows internal tags {hits}"
    for path in (
        MARKETS_DIR / f"{mid}_supply_projections.csv",
        MARKETS_DIR / f"{mid}.toml",
        ROOT / "docs" / "markets" / f"{mid}.md",
    ):
        assert not TAGS.search(path.read_text(encoding="utf-8")), path


@pytest.mark.parametrize("mid", sorted(IEA_2024_2030))
def test_the_converted_2024_actual_is_the_base_output(mid):
    """IEA's 2024 figure times the projection's factor gives production.csv's base output
    (within the rounding of the factor, stated to 4-6 significant digits, i.e. relative
    1e-4): the projection uses the same series, conversion and region mapping as the base."""
    f = FACTOR[mid]
    prod = load_market_data(DATA, mid).production.set_index("region")["quantity"]
    for key, (kt24, _) in IEA_2024_2030[mid].items():
        base = sum(prod[r] for r in key.split("+"))
        assert kt24 * f == pytest.approx(base, rel=1e-4, abs=1.0), (mid, key)


@pytest.mark.parametrize("mid", sorted(IEA_2024_2030))
def test_2030_projection_is_iea_base_case_converted(mid):
    f = FACTOR[mid]
    q = _proj(mid).query("year == 2030").set_index("region")["quantity"]
    for key, (_, kt30) in IEA_2024_2030[mid].items():
        got = sum(q[r] for r in key.split("+"))
        assert got == pytest.approx(kt30 * f, abs=1.0), (mid, key)
    # adding up: the world is IEA's listed rows, converted; no region gets output twice
    world = sum(kt30 for _, kt30 in IEA_2024_2030[mid].values()) * f
    assert q.sum() == pytest.approx(world, abs=len(q))


def test_issue_figure_australian_ndpr_2030():
    """Issue 17: IEA's base case has 2,664 t NdPr oxide in Australia by 2030."""
    q = _proj("ree_ndpr_oxide").set_index(["region", "year"])["quantity"]
    assert q["AUS", 2030] == 2664
    assert q["EU", 2030] == 750  # Silmet held at the base output's 2024 level


@pytest.mark.parametrize("mid", PROJECTED)
def test_each_row_restates_its_own_arithmetic(mid):
    """Every direct row's source gives the IEA figure it converts; the quantity is that
    figure times the factor (co_intermediate: base output times IEA's growth)."""
    prod = load_market_data(DATA, mid).production.set_index("region")["quantity"]
    checked = 0
    for r in _proj(mid).to_dict("records"):
        src = r["source"]
        if mid == "co_intermediate":
            m = re.search(r": ([\d,]+) t x \d{4} ([\d.]+) kt / 2024 ([\d.]+) kt", src)
            if m is None:
                assert r["quantity"] == 0 and prod[r["region"]] == 0
                continue
            base, now, then = (float(g.replace(",", "")) for g in m.groups())
            assert base == prod[r["region"]]
            assert r["quantity"] == pytest.approx(base * now / then, abs=0.5)
            checked += 1
            continue
        m = re.search(r" (\d{4}) ([\d.]+) kt x .*?2024 ([\d.]+) kt\)", src)
        if m is None:
            continue
        year, kt, kt24 = int(m.group(1)), float(m.group(2)), float(m.group(3))
        moved = 750.0 if "750 t moved to EU" in src else 0.0  # NdPr: Silmet's oxide is the EU's
        assert year == r["year"]
        assert r["quantity"] == pytest.approx(kt * FACTOR[mid] - moved, abs=0.5), r
        base = kt24 * FACTOR[mid] - moved
        assert base == pytest.approx(prod[r["region"]], rel=1e-4, abs=1.0), r
        checked += 1
    assert checked >= 9


def test_co_intermediate_grows_the_usgs_base_with_iea_mining():
    q = _proj("co_intermediate").set_index(["region", "year"])["quantity"]
    assert q["COD", 2030] == round(226000 * 199.386 / 181.796)
    assert q["IDN", 2035] == round(35000 * 58.914 / 33.23)
    rest = (6.24 + 6.379 + 45.691, 8.25 + 6.382 + 48.272)  # Russia + Australia + RoW
    assert q["ROW", 2030] == round(35450 * rest[1] / rest[0])
    assert q["EU", 2030] == q["JPN", 2040] == 0


@pytest.mark.parametrize("mid", sorted(IEA_2024_2030))
def test_regions_iea_does_not_list_range_up_to_row(mid):
    """A model region IEA folds into 'Rest of world' gets 0 with a range up to ROW."""
    proj = _proj(mid)
    zeros = proj[proj["source"].str.contains(r"not listed separately for \d{4}", regex=True)]
    assert len(zeros) > 0
    for r in zeros.to_dict("records"):
        row = proj[(proj["region"] == "ROW") & (proj["year"] == r["year"])].iloc[0]
        assert r["quantity"] == 0 and r["low"] == 0
        assert r["high"] == pytest.approx(row["quantity"], abs=1.0)


@pytest.mark.parametrize("mid", BATTERY)
def test_battery_capacity_covers_base_output_and_states_the_gaps(mid):
    data = load_market_data(DATA, mid)
    cap = data.capacity.set_index("region")
    prod = data.production.set_index("region")["quantity"]
    assert sorted(cap.index) == sorted(data.regions)
    assert (cap["year"] == data.info.base_year).all()
    for region, q in prod.items():
        c = cap.loc[region]
        assert c["capacity"] >= q - 1e-9, (mid, region)
        if q == 0:
            assert c["capacity"] == 0
        elif pd.notna(c["low"]):  # base output at 80-100% use
            assert c["low"] == c["capacity"] == pytest.approx(q, abs=0.5)
            assert c["high"] == pytest.approx(q / 0.8, abs=0.5)
            assert "80-100%" in c["source"]
    # no project pipeline is invented: the gap is stated in the notes
    assert data.projects is None or data.projects.empty
    notes = data.notes.set_index("field")["text"]
    assert "no projects.csv (a gap)" in notes["projects"]
    assert "capacity" in notes.index and "supply_projections" in notes.index


def test_china_lithium_capacity_is_mysteels_count():
    cap = load_market_data(DATA, "lithium_chemicals").capacity.set_index("region")
    assert cap.loc["CHN", "capacity"] == 1_610_000
    assert "mysteel.net" in cap.loc["CHN", "source"]


@pytest.mark.parametrize("mid", PROJECTED)
def test_shipped_market_exposes_its_projections(mid):
    mkt = tp.load_market(mid)
    pd.testing.assert_frame_equal(mkt.supply_projections, _proj(mid), check_dtype=False)
    doc = tomllib.loads((MARKETS_DIR / f"{mid}.toml").read_text())
    assert doc["supply_projections_file"] == f"{mid}_supply_projections.csv"
    assert mkt.capacity is not None


def test_markets_without_projections_expose_none():
    for mid in ("gallium", "ndpr_oxide", "ree_ndpr_metal"):
        assert tp.load_market(mid).supply_projections is None


# -- schema -----------------------------------------------------------------------------------
def _projections(**edit: str) -> pd.DataFrame:
    rows = [
        {
            "path": "iea_base_case",
            "region": r,
            "year": year,
            "quantity": "10",
            "low": "",
            "high": "",
            "source": "IEA",
        }
        for year in ("2030", "2035")
        for r in REGIONS
    ]
    frame = pd.DataFrame(rows)
    for k, v in edit.items():
        frame.loc[1, k] = v
    return frame


def _read(tmp_path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    path = tmp_path / "supply_projections.csv"
    _write(path, frame)
    tables = read_year_tables(tmp_path, "toy", REGIONS, 2024, {"supply_projections": path})
    return tables["supply_projections"]


def test_good_projection_reads(tmp_path):
    frame = _read(tmp_path, _projections(low="5", high="20"))
    assert len(frame) == 2 * len(REGIONS)
    assert frame.loc[1, "low"] == 5 and pd.isna(frame.loc[0, "low"])


@pytest.mark.parametrize(
    ("frame", "expect"),
    [
        (_projections(quantity="-1"), r"line 3: quantity.*greater than or equal to 0"),
        (_projections(quantity="abc"), r"line 3: quantity.*number"),
        (_projections(low="20", high="30"), r"line 3: row.*low <= quantity <= high"),
        (_projections(low="5"), r"line 3: row.*low and high: give both"),
        (_projections(region="XXX"), r"line 3: region.*unknown region 'XXX'"),
        (_projections(year="2024"), r"line 3: year.*not after the base year 2024"),
        (_projections(source=""), r"line 3: source"),
        (_projections(path="IEA base"), r"line 3: path"),
        (_projections().iloc[1:], r"region.*'iea_base_case', year 2030: no row for \['CHN'\]"),
        (_projections(region="CHN"), r"path/region/year.*share a key"),
    ],
)
def test_bad_projection_names_file_line_and_field(tmp_path, frame, expect):
    with pytest.raises(InputError, match=expect) as info:
        _read(tmp_path, frame)
    assert "supply_projections.csv" in str(info.value)


def test_a_wrong_projection_header_is_named(tmp_path):
    with pytest.raises(InputError, match=r"(?s)header.*missing \['high'\]"):
        _read(tmp_path, _projections().drop(columns=["high"]))


# -- pipeline and loading -------------------------------------------------------------------------
def test_calibrate_copies_projections_and_the_market_exposes_them(tmp_path):
    data = make_data(tmp_path / "data")
    _write(data / "toy" / "supply_projections.csv", _projections(low="5", high="20"))
    code, output = _calibrate(data, tmp_path / "a")
    assert code == 0, output
    m = tmp_path / "a" / "m"
    doc = tomllib.loads((m / "toy.toml").read_text())
    assert doc["supply_projections_file"] == "toy_supply_projections.csv"
    mkt = tp.load_market(m / "toy.toml")
    proj = mkt.supply_projections
    assert len(proj) == 2 * len(REGIONS) and proj.loc[1, "high"] == 20
    proj.loc[0, "quantity"] = 1e9  # a copy
    assert mkt.supply_projections.loc[0, "quantity"] == 10
    assert (m / "toy_supply_projections.csv") in mkt.input_files()
    assert _calibrate(data, tmp_path / "a", "--check")[0] == 0
    _write(data / "toy" / "supply_projections.csv", _projections(quantity="11"))
    code, output = _calibrate(data, tmp_path / "a", "--check")
    assert code == 1 and "toy_supply_projections.csv" in output.replace("\n", "")
    # a bad copy stops the market load, naming the CSV, its line and the field
    _write(m / "toy_supply_projections.csv", _projections(year="2020"))
    with pytest.raises(InputError, match=r"(?s)toy_supply_projections.csv.*line 3: year"):
        tp.load_market(m / "toy.toml")
