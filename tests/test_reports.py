"""Scenario briefs (``tradepolicy.reports``): content, numbers, formats, CLI and bad input.

Every shipped scenario set is solved once per module and rendered once per format; the tests
extract the text of the PDF (pypdf), the DOCX (python-docx) and the HTML and look for the
Dataset's numbers at the documented rounding (docs/briefs.md).
"""

from __future__ import annotations

import io
import json
import re
import tomllib
import warnings
from functools import cache
from html import unescape
from pathlib import Path

import docx
import numpy as np
import pypdf
import pytest
import xarray as xr
from typer.testing import CliRunner

import tradepolicy as tp
from tradepolicy._paths import scenario_files
from tradepolicy.chain import Chain
from tradepolicy.cli import app
from tradepolicy.errors import InputError
from tradepolicy.measures import PriceFloor
from tradepolicy.measures.base import FISCAL_ENTRIES
from tradepolicy.reports import render_brief, write_brief
from tradepolicy.reports.context import _Labels, build_context, scenario_label
from tradepolicy.reports.formatting import (
    DisplayUnits,
    fmt_money,
    fmt_pct,
    fmt_share,
    fmt_sig,
)
from tradepolicy.reports.html import font_css, render_html, url_fetcher
from tradepolicy.reports.plain import plain_note
from tradepolicy.results.accessor import CHAIN_TAG

#: the static sets (a pathway set's results have years; its brief is not a static brief)
SETS = {p.stem: p for p in scenario_files() if "years" not in tomllib.loads(p.read_text("utf-8"))}
#: the first single-market set: the tampering and CLI tests below read one market's results
FIRST = next(
    n
    for n in sorted(SETS)
    if not isinstance(tp.load_market(tomllib.loads(SETS[n].read_text("utf-8"))["market"]), Chain)
)
runner = CliRunner()


# -- shared solves and renders ----------------------------------------------------------------


@cache
def solved(name: str) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # doubtful-value warnings of shipped sets are not ours
        sset = tp.load_scenarios(SETS[name])
    return tp.solve(sset)


@cache
def solved_draws(name: str, draws: int = 20, seed: int = 1) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sset = tp.load_scenarios(SETS[name])
    return tp.solve(sset, draws=draws, seed=seed)


@cache
def rendered(name: str, fmt: str) -> bytes:
    return render_brief(solved(name), fmt=fmt)


def pdf_text(data: bytes) -> tuple[str, int]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(p.extract_text() for p in reader.pages), len(reader.pages)


def docx_text(data: bytes) -> str:
    d = docx.Document(io.BytesIO(data))
    parts = [p.text for p in d.paragraphs]
    for t in d.tables:
        for row in t.rows:
            parts += [c.text for c in row.cells]
    return "\n".join(parts)


def pptx_text(data: bytes) -> str:
    """Every text of a slide deck: text boxes and table cells, slide by slide."""
    from pptx import Presentation

    parts = []
    for slide in Presentation(io.BytesIO(data)).slides:
        for shape in slide.shapes:
            if shape.has_text_frame:
                parts.append(shape.text_frame.text)
            if shape.has_table:
                parts += [c.text for row in shape.table.rows for c in row.cells]
    return "\n".join(parts)


def html_text(data: bytes) -> str:
    text = data.decode("utf-8")
    text = re.sub(r"<style.*?</style>", " ", text, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", text))


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def expected_numbers(ds: xr.Dataset, scen: str) -> list[str]:
    """Numbers of ``scen`` a brief must show, formatted by the documented rules."""
    com = ds.commodity.values[0]
    sub = ds.sel(commodity=com)
    cur, base = sub.sel(scenario=scen), sub.sel(scenario="baseline")
    out = [
        fmt_money(float(cur["welfare_change"].sum())),
        # budget cost: spending > 0, unsigned like every cost named in words
        fmt_money(-float(sum(cur[k].sum() for k in FISCAL_ENTRIES)), signed=False),
    ]
    for var, size in (("consumer_price", "consumption"), ("producer_price", "production")):
        for r in sub.region.values:
            if float(base[size].sel(region=r)) > 0:
                b, c = float(base[var].sel(region=r)), float(cur[var].sel(region=r))
                out.append(fmt_pct(100 * (c - b) / b))
    for r in sub.region.values:
        v = float(cur["welfare_change"].sel(region=r))
        if abs(v) >= 0.05e6:
            out.append(fmt_money(v))
    return out


# -- formatting rules (literal cases) -------------------------------------------------------


def test_number_formatting_rules() -> None:
    assert fmt_sig(55.0) == "55.0"
    assert fmt_sig(109.58) == "110"
    assert fmt_sig(11800.0) == "11,800"
    assert fmt_sig(12345.0) == "12,300"
    assert fmt_sig(0.012345) == "0.0123"
    assert fmt_sig(99.96) == "100"
    assert fmt_sig(float("nan")) == "–"
    assert fmt_money(352_257_100.0) == "+352"
    assert fmt_money(-105_351_700.0) == "−105"
    assert fmt_money(1_444_659.0) == "+1.4"
    assert fmt_money(-617_656.0) == "−0.6"
    assert fmt_money(40_000.0) == "0"
    assert fmt_money(-1_234_500_000.0) == "−1,230"
    assert fmt_pct(72.94) == "+72.9%"
    assert fmt_pct(-1.63) == "−1.6%"
    assert fmt_pct(0.01) == "0.0%"
    assert fmt_share(0.376339) == "37.6%"


def test_display_units_per_kg_for_dear_materials_only() -> None:
    ndpr = DisplayUnits.for_market("USD", "t", 55_000.0)
    assert ndpr.price_per == "kg" and ndpr.price(110_000.0) == "110"
    assert ndpr.price_text(110_000.0) == "US$110/kg"
    assert ndpr.money_text(-105_351_700.0) == "US$105m/yr"
    lithium = DisplayUnits.for_market("USD", "t", [11_800.0, 11_800.0, 9_000.0])
    assert lithium.price_per == "kg" and lithium.price_text(11_800.0) == "US$11.8/kg"
    cheap = DisplayUnits.for_market("USD", "t", 800.0)  # under 1 USD/kg: the market's unit
    assert cheap.price_per == "t" and cheap.price_text(800.0) == "US$800/t"
    gallium = DisplayUnits.for_market("USD", "kg", 439.0)
    assert gallium.price_per == "kg" and gallium.price(439.0) == "439"
    lce = DisplayUnits.for_market("EUR", "LCE", 90_000.0)  # not a mass: the market's unit
    assert lce.price_per == "LCE" and lce.price_text(90_000.0) == "EUR 90,000/LCE"


def test_scenario_labels_spell_out_regions() -> None:
    regions = ["CHN", "USA", "AUS", "EU"]
    assert scenario_label("usa_aus_subsidy_110", regions) == "US–Australia subsidy 110"
    assert scenario_label("chn_ban_club", regions) == "China ban club"
    assert scenario_label("club_floor_110", regions) == "Club floor 110"
    assert scenario_label("xyz_ban", regions) == "Xyz ban"


def test_scenario_labels_keep_abbreviations_and_join_parties() -> None:
    """Abbreviations are written as their owners write them (DoD, MP, G7, CfD), parties side
    by side are joined by a dash as regions are, and "<option> <parties> terms" reads "on
    their terms"; a region of the market still wins over a party word."""
    regions = ["CHN", "USA", "JPN", "EU", "KOR", "AUS", "IND", "ROW"]
    assert scenario_label("offtake_dod_mp_terms", regions) == "Offtake on DoD–MP terms"
    assert scenario_label("dod_mp_terms", regions) == "DoD–MP terms"
    assert scenario_label("g7_cfd_110", regions) == "G7 CfD 110"
    assert scenario_label("ev_demand_surge_30", regions) == "EV demand surge 30"
    assert scenario_label("us_eu_tariff", ["CHN", "USA"]) == "US–EU tariff"  # EU not a region
    assert scenario_label("us_eu_tariff", regions) == "US–European Union tariff"
    assert scenario_label("drc_uk_offtake", regions) == "DRC–UK offtake"
    assert scenario_label("capex_grants_30", regions) == "Capex grants 30"


def test_scenario_label_writes_price_gap_as_the_measure_names_it() -> None:
    """The words "Price-gap subsidy" are one compound wherever an option id spells them, as
    the measure's editor label writes it; "gap" alone or after another word stays a word."""
    from tradepolicy.measures import MEASURES

    regions = ["CHN", "USA", "AUS"]
    label = MEASURES["price_gap_subsidy"].editor_label
    assert scenario_label("price_gap_subsidy", regions) == label == "Price-gap subsidy"
    assert scenario_label("usa_aus_price_gap_subsidy_110", regions) == (
        "US–Australia price-gap subsidy 110"
    )
    assert scenario_label("gap_price", regions) == "Gap price"


def test_scenario_labels_of_the_shipped_sets_use_no_id_words() -> None:
    """Words that only make sense in an identifier are written out (the shipped ree_magnets,
    ndpr_oxide and graphite sets): Dy/Tb, quarters, the diversification cap, AD duties."""
    regions = ["CHN", "USA", "JPN", "EU", "KOR", "AUS", "IND", "ROW"]
    assert scenario_label("chn_licensing_dytb", regions) == "China licensing Dy/Tb"
    assert scenario_label("chn_licensing_magnets_q2_2025", regions) == (
        "China licensing magnets Q2 2025"
    )
    assert scenario_label("div_cap_60", regions) == "Diversification cap 60"
    assert scenario_label("us_ad_duty_935", regions) == "US AD duty 935"
    assert scenario_label("supply_gap", regions) == "Supply gap"


def test_floor_description_in_plain_words_and_cli_form(toy_market) -> None:
    floor = PriceFloor(importers=["EU", "USA"], exempt=["EU", "USA", "AUS"], floor=110_000.0)
    units = DisplayUnits.for_market("USD", "t", 55_000.0)
    labels = _Labels({"id": "toy", "quantity_unit": "t", "currency": "USD"}, units)
    text = floor.describe(labels)
    assert text.startswith(
        "A landed price floor of US$110/kg applied by the EU and the United States to imports "
        "from outside the club; Australia exempt"
    )
    # without the display hooks (the CLI passes a Market): codes and the market's unit
    assert floor.describe(toy_market).startswith(
        "A landed price floor of 110,000 USD/t applied by EU and USA"
    )


# -- every shipped scenario set: PDF, DOCX and HTML -------------------------------------------


@pytest.mark.parametrize("name", sorted(SETS))
def test_brief_for_every_shipped_set(name: str) -> None:
    ds = solved(name)
    # a value chain: every stage is checked as the single market it is (ds.tp.stage)
    views = [ds.tp.stage(st) for st in ds.tp.stages] if ds.tp.is_chain else [ds]
    pdf, pages = pdf_text(rendered(name, "pdf"))
    # page 1 is the executive summary (issue 19), then at most 4 pages per market
    most = 5 if len(views) == 1 else 4 * len(views) + 3  # + the chain's overview
    assert 2 <= pages <= most, f"{name}: {pages} pages"
    texts = {
        "pdf": norm(pdf),
        "docx": norm(docx_text(rendered(name, "docx"))),
        "html": norm(html_text(rendered(name, "html"))),
    }
    for view in views:
        sub = view.sel(commodity=view.commodity.values[0])
        commodity = CHAIN_TAG.sub("", str(sub.commodity_name.values))
        for fmt, text in texts.items():
            assert commodity in text, fmt
            assert "Headline findings" in text or len(ds.scenario) == 2, fmt
            assert "tradepolicy" in text and "Calibration id" in text, fmt
            for scen in ds.tp.scenarios[1:]:
                assert scen in text, (fmt, scen)
                if int(sub.converged.sel(scenario=scen)) != 1:
                    assert "Not solved" in text, (fmt, scen)
                    continue
                for number in expected_numbers(view, scen):
                    assert number in text, (fmt, scen, number)


def test_ndpr_brief_reads_as_a_brief() -> None:
    if "ndpr_oxide" not in SETS:
        pytest.skip("NdPr scenario set not shipped")
    ds = solved("ndpr_oxide")
    text = norm(pdf_text(rendered("ndpr_oxide", "pdf"))[0])
    # plain words, spelled-out regions, price in the display unit
    assert "A landed price floor of US$110/kg applied by the United States, Japan and the EU" in (
        text
    )
    assert "to imports from outside the club; Australia exempt" in text
    for heading in (
        "Scenarios and findings",
        "Comparison with the baseline",
        "Figure 1.",
        "Figure 2.",
        "Assumptions",
        "Caveats that apply to these measures",
        "Market data sources",
        "Method and provenance",
    ):
        assert heading in text, heading
    # the caveats of the measures used (DESIGN §4)
    assert "holds the domestic price up only while the protected bloc imports at the floor" in text
    assert "fiscal cost is endogenous" in text
    # the target and the baseline price level
    assert "60% target" in text
    base = float(ds["producer_price"].sel(scenario="baseline").median())
    assert f"Baseline price {fmt_sig(base / 1000)}" in text
    assert ds.attrs["calibration_id"] in text
    # region codes a minister does not know are spelled out in descriptions, findings, tables
    brief = build_context(ds)
    section = brief.sections[0]
    words = [line for b in section.scenarios for line in b.measures]
    words += [f"{topic} {t}" for b in section.scenarios for topic, t in b.findings]
    words += section.glance + [h for t in section.tables for h in t.header]
    codes = [str(r) for r in ds.region.values if str(r) != "EU"]  # "the EU" is its name
    for line in words:
        for code in codes:
            assert not re.search(rf"\b{code}\b", line), (code, line)


def test_pdf_uses_vector_charts_and_packaged_fonts() -> None:
    name = FIRST
    data = rendered(name, "pdf")
    reader = pypdf.PdfReader(io.BytesIO(data))
    images = sum(len(p.images) for p in reader.pages)
    assert images == 0  # charts are SVG drawn as PDF vector paths, not raster images
    fonts = set()
    for page in reader.pages:
        for f in (page["/Resources"].get("/Font") or {}).values():
            fonts.add(str(f.get_object()["/BaseFont"]))
    assert any("Brief-Sans" in f for f in fonts), fonts
    assert "DejaVuSans.ttf" in font_css()


def test_html_is_self_contained_and_escaped() -> None:
    name = FIRST
    ds = solved(name).copy()
    ds.attrs["title"] = "<script>alert(1)</script> & options"
    html = render_brief(ds, fmt="html").decode()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']https?:""", html)
    assert "url(http" not in html
    assert html.count("data:image/svg+xml;base64,") == 2


def test_url_fetcher_refuses_remote_urls(tmp_path) -> None:
    fetcher = url_fetcher()
    fetch = getattr(fetcher, "fetch", fetcher)
    for url in ("https://example.com/font.woff", "http://example.com/x.png", "ftp://x/y"):
        with pytest.raises(ValueError):
            fetch(url)
    local = tmp_path / "a.txt"
    local.write_text("ok")
    assert fetch(local.as_uri()) is not None


def test_docx_uses_word_styles_and_real_tables() -> None:
    name = FIRST
    ds = solved(name)
    d = docx.Document(io.BytesIO(rendered(name, "docx")))
    styles = {p.style.name for p in d.paragraphs}
    assert {"Title", "Heading 1", "Heading 2", "List Bullet", "Caption"} <= styles
    data_tables = [t for t in d.tables if t.style.name == "Light List Accent 1"]
    assert len(data_tables) >= 5
    # the welfare table: one row per scenario, the World column is the regional sum
    welfare = next(t for t in data_tables if t.rows[0].cells[-1].text == "World")
    scen = ds.tp.scenarios[1]
    row = welfare.rows[1]
    assert row.cells[0].text.startswith("1")
    world = float(ds["welfare_change"].sel(scenario=scen).sum())
    assert row.cells[-1].text.split("\n")[0] == fmt_money(world)
    assert len(d.inline_shapes) == 2  # the charts


def test_scenario_selection_and_order() -> None:
    name = FIRST
    ds = solved(name)
    pick = ds.tp.scenarios[1:][::-1][:2]
    brief = build_context(ds, pick)
    assert [b.name for b in brief.sections[0].scenarios] == pick
    text = norm(html_text(render_brief(ds, pick, fmt="html")))
    others = [s for s in ds.tp.scenarios[1:] if s not in pick]
    for s in others:
        assert f" {s} " not in text


def test_missing_calibration_id_says_not_recorded() -> None:
    ds = solved(FIRST).copy()
    del ds.attrs["calibration_id"]
    brief = build_context(ds)
    assert ("Calibration id", "not recorded") in brief.provenance


def test_ranges_from_monte_carlo_draws(toy_market_dict) -> None:
    toy_market_dict["elasticity_se"] = {
        "supply": {"default": 0.3},
        "demand": {"default": 0.1},
        "substitution": {"default": 1.0},
    }
    market = tp.Market.from_dict(toy_market_dict, source="toy")
    scen = tp.Scenario(
        name="club_floor",
        measure=[
            {
                "type": "price_floor",
                "importers": ["USA", "EU"],
                "exempt": ["USA", "EU", "AUS"],
                "floor": 75_000.0,
            },
            {"type": "price_gap_subsidy", "producers": ["AUS"], "strike": 70_000.0},
        ],
    )
    sset = tp.ScenarioSet(market=market, scenarios=[scen], target_share=0.6)
    ds = tp.solve(sset, draws=30, seed=7)
    assert ds.tp.has_draws
    brief = build_context(ds)
    assert brief.has_ranges
    text = norm(html_text(render_brief(ds, fmt="html")))
    assert "5–95%" in text
    world = ds.tp.draws("welfare_change").sel(scenario="club_floor").sum("region").squeeze()
    lo, hi = (float(world.quantile(q, dim="draw")) for q in (0.05, 0.95))
    assert f"{fmt_money(lo)} to {fmt_money(hi)}" in text
    q = ds.tp.quantiles("consumer_price").sel(scenario="club_floor", region="USA")
    base = float(ds.tp.point()["consumer_price"].sel(scenario="baseline", region="USA").squeeze())
    lo_p = 100 * (float(q.sel(quantile=0.05).squeeze()) - base) / base
    hi_p = 100 * (float(q.sel(quantile=0.95).squeeze()) - base) / base
    assert f"{fmt_pct(lo_p)} to {fmt_pct(hi_p)}" in text
    pdf, pages = pdf_text(render_brief(ds, fmt="pdf"))
    assert 2 <= pages <= 4 and "Monte Carlo" in pdf


def test_point_results_say_there_are_no_ranges() -> None:
    ds = solved(FIRST)
    brief = build_context(ds)
    assert not brief.has_ranges
    assert "without ranges" in brief.method_note


@cache
def stacked() -> xr.Dataset:
    names = [n for n in ("ndpr_oxide", "lithium_chemicals") if n in SETS]
    if len(names) < 2:
        pytest.skip("needs two shipped sets")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sets = [tp.load_scenarios(SETS[n]) for n in names]
    return tp.solve_many(sets)


def test_stacked_markets_render_each_market_in_every_format() -> None:
    ds = stacked()
    brief = build_context(ds)
    assert [s.id for s in brief.sections] == [str(c) for c in ds.commodity.values]
    assert len(brief.subtitle) > 255  # over Word's limit on a core property
    texts = {
        "html": norm(html_text(render_html(brief).encode())),
        "pdf": norm(pdf_text(render_brief(ds, fmt="pdf"))[0]),
    }
    data = render_brief(ds, fmt="docx")
    texts["docx"] = norm(docx_text(data))
    for fmt, text in texts.items():
        assert brief.subtitle in text, fmt  # shown in full on the page
        for s in brief.sections:
            assert s.commodity in text and f"Prices in {s.units.price_unit}" in text, (fmt, s.id)
            for b in s.scenarios:
                assert b.name in text, (fmt, b.name)
    props = docx.Document(io.BytesIO(data)).core_properties
    assert len(props.subject) <= 255 and props.subject.endswith("…")
    assert brief.subtitle.startswith(props.subject[:-2].rstrip())


def test_control_characters_never_reach_the_brief() -> None:
    ds = solved(FIRST).copy()
    ds.attrs["title"] = "Options\x00 for\x07 ministers\x1b\x0b"
    markets = json.loads(ds.attrs["markets"])
    com = str(ds.commodity.values[0])
    markets[com]["commodity"] = "Tin\x01 oxide"
    markets[com].setdefault("sources", {})["data"] = "Survey\x08 2024\x0c data"
    ds.attrs["markets"] = json.dumps(markets)
    extract = {"docx": docx_text, "html": html_text, "pdf": lambda d: pdf_text(d)[0]}
    for fmt, text_of in extract.items():
        text = text_of(render_brief(ds, fmt=fmt))
        assert "Options for ministers" in text and "Tin oxide" in text, fmt
        assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", text), fmt


def test_dollar_signs_are_text_not_math() -> None:
    ds = solved(FIRST)
    scen = ds.tp.scenarios[1]
    renamed = ds.assign_coords(
        scenario=[f"{s}_$x^$" if s == scen else s for s in map(str, ds.scenario.values)]
    )
    text = norm(pdf_text(render_brief(renamed, fmt="pdf"))[0])
    assert f"{scen}_$x^$" in text


# -- bad input ------------------------------------------------------------------------------


def test_api_rejects_bad_input() -> None:
    ds = solved(FIRST)
    with pytest.raises(InputError, match="allowed: "):
        render_brief(ds, ["no_such_scenario"])
    with pytest.raises(InputError, match="unknown format 'rtf'"):
        render_brief(ds, fmt="rtf")
    with pytest.raises(InputError, match="not a tradepolicy result"):
        render_brief(xr.Dataset({"x": ("a", np.arange(3.0))}))
    with pytest.raises(InputError, match="no scenario to report"):
        render_brief(ds, [])


@pytest.fixture
def results_file(tmp_path) -> Path:
    path = tmp_path / "results.nc"
    tp.write_results(solved(FIRST), path)
    return path


def _invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


def test_cli_brief_writes_each_format(results_file, tmp_path) -> None:
    ds = tp.open_results(results_file)
    scen = ds.tp.scenarios[1]
    for suffix in ("pdf", "docx", "html"):
        out = tmp_path / f"brief.{suffix}"
        res = _invoke("brief", str(results_file), "--scenarios", scen, "-o", str(out))
        assert res.exit_code == 0, res.output
        assert out.exists() and out.stat().st_size > 1000
    assert (tmp_path / "brief.pdf").read_bytes().startswith(b"%PDF")
    # --format wins when the output has no suffix
    out = tmp_path / "brief_noext"
    res = _invoke("brief", str(results_file), "--format", "html", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenarios", "nope,club"], "no scenario 'nope' in the results (allowed:"),
        (["--format", "rtf"], "unknown format 'rtf' (allowed: pdf, docx, html, pptx)"),
        (["--format", "pdf", "-o", "{tmp}/brief.docx"], "does not match the format"),
        (["-o", "{tmp}/brief.xyz"], "cannot tell the format from the suffix"),
    ],
)
def test_cli_brief_bad_options(results_file, tmp_path, args, message) -> None:
    target = tmp_path / "brief.pdf"
    target.write_bytes(b"old brief")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", str(target)]
    res = _invoke("brief", str(results_file), *args)
    assert res.exit_code == 2, res.output
    assert message in norm(res.output)
    assert target.read_bytes() == b"old brief"  # nothing half-written, nothing replaced
    assert not (tmp_path / "brief.docx").exists() and not (tmp_path / "brief.xyz").exists()
    assert not list(tmp_path.glob("*.part"))


def test_cli_brief_bad_files(tmp_path) -> None:
    out = tmp_path / "brief.pdf"
    res = _invoke("brief", str(tmp_path / "missing.nc"), "-o", str(out))
    assert res.exit_code == 2 and "file does not exist" in res.output
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("a", np.arange(3.0))}).to_netcdf(foreign)
    res = _invoke("brief", str(foreign), "-o", str(out))
    assert res.exit_code == 2 and "not a tradepolicy result" in res.output
    garbage = tmp_path / "garbage.nc"
    garbage.write_text("not netcdf")
    res = _invoke("brief", str(garbage), "-o", str(out))
    assert res.exit_code == 2 and "not a readable netCDF file" in res.output
    assert not out.exists()
    assert not list(tmp_path.glob("*.part"))


def test_write_brief_from_path_is_atomic(results_file, tmp_path, monkeypatch) -> None:
    out = tmp_path / "sub" / "brief.html"
    assert write_brief(results_file, out) == out
    first = out.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("tradepolicy.reports.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_brief(results_file, out)
    assert out.read_bytes() == first  # the old brief is intact
    assert not list(out.parent.glob("*.part"))  # and the temporary file is gone


def test_ndpr_brief_with_draws_stays_within_six_pages() -> None:
    # page 1 the executive summary, then ten scenarios with ranges, the options and who-pays
    # tables: at most six pages
    if "ndpr_oxide" not in SETS:
        pytest.skip("NdPr scenario set not shipped")
    ds = solved_draws("ndpr_oxide")
    text, pages = pdf_text(render_brief(ds, fmt="pdf"))
    assert 2 <= pages <= 6, pages
    assert "Monte Carlo draws" in text


# -- units equal to the dashboard's -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SETS))
def test_brief_price_unit_equals_the_dashboard_unit(name: str) -> None:
    pytest.importorskip("panel")
    from tradepolicy.dashboard.markets import market_info

    ds = solved(name)
    section = build_context(ds).sections[0]
    info = market_info(section.id)
    units = section.units
    assert f"{units.currency}/{units.price_per}" == info.price_label
    # the same number too: the brief's display price is the dashboard's display price
    base = float(np.median(info.market.base_price))
    assert units.price_value(base) == pytest.approx(info.to_display_price(base), rel=1e-12)
    text = norm(pdf_text(rendered(name, "pdf"))[0])
    assert f"Prices in {units.price_unit}" in text


# -- honesty: no internal tags, file references or non-finite numbers -------------------------

#: what a forwarded brief must never print
INTERNAL = {
    "internal tag in brackets": re.compile(r"\[[^\]]*[A-Za-z]"),
    "UNVERIFIED tag": re.compile(r"UNVERIFIED"),
    "project notes": re.compile(r"NOTES|DESIGN\s*§|\.md\b|§"),
    "project path": re.compile(r"shared/|calibration/|\.\./|\b\w+\.(?:csv|json|toml|nc)\b"),
    "nan standard error": re.compile(r"\(se nan\)", re.I),
    "non-finite number": re.compile(r"\b(?:nan|inf)\b", re.I),
    "miscapitalised region": re.compile(r"\bDrc\b"),
}


def internal_hits(text: str) -> list[tuple[str, str]]:
    out = []
    for what, pattern in INTERNAL.items():
        for m in pattern.finditer(text):
            out.append((what, text[max(0, m.start() - 60) : m.end() + 60]))
    return out


def test_plain_note_turns_tags_into_words_and_keeps_numbers() -> None:
    assert plain_note("zero [gap]: shared/data holds no 2024 rate.") == (
        "zero (data gap): the project data set holds no 2024 rate."
    )
    assert plain_note("80% [assumption: 89.58% of mass (IEA 2024)] x") == (
        "80% (assumed: 89.58% of mass (IEA 2024)) x"
    )
    assert plain_note("Lygend and others [UNVERIFIED recollection].") == (
        "Lygend and others (not verified)."
    )
    assert plain_note("Low end: NOTES.md §6 demand near -0.05 [UNVERIFIED, NOTES.md §6].") == (
        "Low end: demand near -0.05 (not verified)."
    )
    assert plain_note("rose 43-114% (DESIGN §1, Fastmarkets); IEA GCMO 2026 [2nd]") == (
        "rose 43-114% (Fastmarkets); IEA GCMO 2026 (secondary source)"
    )
    assert plain_note("(CC BY 4.0; shared/data/raw/iea_2025/iea.json), 1,493.2 kt") == (
        "(CC BY 4.0), 1,493.2 kt"
    )
    assert plain_note("const -12.23 (se nan), home 1.012 (se 0.0424) [seed_shares.AUS]") == (
        "const -12.23, home 1.012 (se 0.0424)"
    )
    # units, websites and numeric ranges are not file references or tags
    kept = "55,000 USD/t, t/yr, IMIP/IWIP, hts.usitc.gov, germanium.de/rohstoff.net [0.1, 0.8]"
    assert plain_note(kept) == kept
    assert plain_note("a\x00b\x07c\x1bd") == "abcd"


def test_scenario_label_keeps_short_region_names() -> None:
    regions = ["CHN", "COD", "USA", "EU"]
    assert scenario_label("drc_quota_96600", regions) == "DRC quota 96600"
    assert scenario_label("cod_quota", regions) == "DRC quota"
    assert scenario_label("row_cap", ["CHN", "ROW"]) == "RoW cap"


@pytest.mark.parametrize("name", sorted(SETS))
def test_brief_prints_no_internal_notes(name: str) -> None:
    """The PDF, DOCX and PPTX brief of every shipped set, scanned as a reader would see them."""
    for fmt, text in (
        ("pdf", pdf_text(rendered(name, "pdf"))[0]),
        ("docx", docx_text(rendered(name, "docx"))),
        ("pptx", pptx_text(rendered(name, "pptx"))),
    ):
        assert not internal_hits(text), (fmt, internal_hits(text)[:5])


# -- one budget sign: spending > 0 -------------------------------------------------------------


def test_budget_cost_is_spending_positive_with_ranges_of_the_same_sign() -> None:
    if "ndpr_oxide" not in SETS:
        pytest.skip("NdPr scenario set not shipped")
    ds = solved_draws("ndpr_oxide")
    com = str(ds.commodity.values[0])
    brief = build_context(ds)
    section = brief.sections[0]
    summary = next(t for t in section.tables if t.key == "options")
    col = summary.header.index("Budget cost (spending > 0)")
    rows = {r[0].text: r for r in summary.rows}
    fiscal = ds.tp.fiscal_cost().sel(commodity=com)  # < 0 for spending
    draws = ds.tp.draws("fiscal_cost").sel(commodity=com).sum("region", min_count=1)
    costly = 0
    for b in section.scenarios:
        if not b.solved:
            continue
        cost = -float(fiscal.sel(scenario=b.name).sum())
        q05, q95 = (float(draws.sel(scenario=b.name).quantile(q, dim="draw")) for q in (0.05, 0.95))
        lo, hi = -q95, -q05  # the range of the cost
        cell = rows[f"{b.number}  {b.label}"][col]
        assert cell.text == fmt_money(cost, signed=False), b.name
        if hi - lo > 1e-9 * max(abs(lo), abs(hi), 1.0):
            assert cell.sub == f"{fmt_money(lo, signed=False)} to {fmt_money(hi, signed=False)}"
        else:  # no spending in any draw: ds.tp.range gives no range
            assert cell.sub == "", (b.name, cell.sub)
        assert lo <= hi
        public = dict(b.findings).get("Public money", "")
        if cost >= 0.05e6:
            costly += 1
            # every draw of a subsidy scenario spends: the range is a range of spending
            assert lo > 0 and "−" not in cell.sub, (b.name, cell.sub)
            if "Outcome" in dict(b.findings):  # "same as scenario n": no sentences of its own
                continue
            words = f"Budget cost {section.units.money_text(cost)}"
            words += f" (range {cell.sub})" if cell.sub else ","
            assert words in public, (b.name, public)
            assert cell.tone == "neg"
        else:
            assert not public.startswith("Budget cost"), (b.name, public)
    assert costly >= 2  # the NdPr set has subsidy scenarios
    # the headline names the largest spending, as a positive amount
    top = max(
        (b for b in section.scenarios if b.solved),
        key=lambda b: -float(fiscal.sel(scenario=b.name).sum()),
    )
    glance = " ".join(section.glance)
    cost = -float(fiscal.sel(scenario=top.name).sum())
    assert f"largest budget cost is under scenario {top.number} " in glance
    assert section.units.money_text(cost) in glance
    text = norm(pdf_text(render_brief(ds, fmt="pdf"))[0])
    assert not re.search(r"[Bb]udget cost US\$[\d,.]+m/yr \(range −", text)


# -- tampered results files: exit 2 naming the file and what is wrong ----------------------------


def _tamper_markets_json(ds: xr.Dataset) -> None:
    ds.attrs["markets"] = "{not json"


def _tamper_spec_json(ds: xr.Dataset) -> None:
    ds.attrs["scenario_spec"] = "[1,"


def _tamper_markets_list(ds: xr.Dataset) -> None:
    ds.attrs["markets"] = "[1, 2]"


def _tamper_nan_flag(ds: xr.Dataset) -> xr.Dataset:
    flags = ds["converged"].astype(float)
    flags[1, 0] = np.nan
    return ds.assign(converged=flags)


def _tamper_text_flag(ds: xr.Dataset) -> xr.Dataset:
    return ds.assign(converged=ds["converged"].astype(str))


def _tamper_missing(ds: xr.Dataset) -> xr.Dataset:
    return ds.drop_vars("top_supplier_share")


def _tamper_dims(ds: xr.Dataset) -> xr.Dataset:
    return ds.assign(producer_price=ds["producer_price"].isel(region=0, drop=True))


def _tamper_target(ds: xr.Dataset) -> None:
    ds.attrs["target_share"] = "abc"


def _tamper_duplicate_regions(ds: xr.Dataset) -> xr.Dataset:
    regions = [str(r) for r in ds.region.values]
    return ds.assign_coords(region=[regions[0], *regions[:-1]])


@pytest.mark.parametrize(
    ("tamper", "field", "message"),
    [
        (_tamper_markets_json, "attribute markets", "not valid JSON"),
        (_tamper_spec_json, "attribute scenario_spec", "not valid JSON"),
        (_tamper_markets_list, "attribute markets", "not a JSON object"),
        (_tamper_nan_flag, "converged", "values nan (allowed: -1, 0, 1)"),
        (_tamper_text_flag, "converged", "expected numbers"),
        (_tamper_missing, "", "missing top_supplier_share"),
        (_tamper_dims, "producer_price", "dimensions (scenario, commodity), expected"),
        (_tamper_target, "attribute target_share", "'abc' (allowed: 0 < share <= 1, or NaN: none)"),
        (_tamper_duplicate_regions, "region", "coordinate values are not unique"),
    ],
)
def test_cli_brief_tampered_results(results_file, tmp_path, tamper, field, message) -> None:
    ds = tp.open_results(results_file)
    ds = tamper(ds) or ds
    bad = tmp_path / "tampered.nc"
    ds.to_netcdf(bad)
    for suffix in ("pdf", "docx"):
        out = tmp_path / f"brief.{suffix}"
        res = _invoke("brief", str(bad), "-o", str(out))
        text = norm(res.output)
        assert res.exit_code == 2, text
        assert "Traceback" not in text and str(bad) in text, text
        assert message in text and (not field or f"- {field}: " in text), text
        assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_cli_brief_never_overwrites_its_results(results_file) -> None:
    before = results_file.read_bytes()
    same = results_file.with_suffix(".pdf")
    results_file.rename(same)  # a results file named like a brief
    res = _invoke("brief", str(same), "-o", str(same))
    assert res.exit_code == 2 and "would overwrite" in norm(res.output)
    assert same.read_bytes() == before


def test_brief_for_a_set_with_only_a_bloc_target() -> None:
    """A set with ``[target]`` and no per-importer ``target_share`` records NaN for the latter
    ("none"); a brief is still made, reading the bloc target."""
    from tradepolicy.scenario import Target

    market = tp.load_market("ndpr_oxide")
    scen = tp.Scenario(
        name="us_tariff",
        measure=[{"type": "tariff", "importers": ["USA"], "exporters": ["CHN"], "rate": 0.25}],
    )
    sset = tp.ScenarioSet(
        market=market, scenarios=[scen], target=Target(group="g7_partners", max_share=0.6)
    )
    ds = tp.solve(sset)
    assert np.isnan(ds.attrs["target_share"]) and ds.attrs["target_max_share"] == 0.6
    text = norm(html_text(render_brief(ds, fmt="html")))
    assert "60%" in text
