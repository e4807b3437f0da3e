"""The market pages of the documentation site (docs/scripts/gen_markets.py) cover every shipped
market and show the market file's own numbers: every shipped market (chain stages included)
has a page and a nav entry, the generated section's base data, prices and elasticities equal
the loaded market file, and the calibration estimates on the page are those of the current
calibration."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

import tradepolicy as tp
from tradepolicy import docs_reference as ref
from tradepolicy import regions as region_table

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "docs" / "markets"
MARKETS = tp.list_markets()


def _nav_pages(node: object) -> list[str]:
    """Every page path in the nav of mkdocs.yml."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for item in node for p in _nav_pages(item)]
    if isinstance(node, dict):
        return [p for v in node.values() for p in _nav_pages(v)]
    return []


class _Loader(yaml.SafeLoader):
    """mkdocs.yml with its ``!ENV`` tags read as plain values."""


_Loader.add_constructor("!ENV", lambda loader, node: None)


def _number(cell: str) -> float:
    """A quantity cell (``**45,072**``, ``1,424``, ``–``) as a number (0 for ``–``)."""
    text = cell.strip().strip("*").replace(",", "")
    return 0.0 if text in ("–", "") else float(text)


def _base_rows(section: str) -> dict[str, list[str]]:
    """The rows of the base-data table: ``{region code or "world": cells}``."""
    start = section.index("### Base data as loaded")
    table = section[start:].split("\n\n")[2]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].split("`")[1] if "`" in cells[0] else cells[0].strip("*")] = cells
    return rows


def test_shipped_markets_are_the_thirteen() -> None:
    """Seven markets and the six stages of the two shipped chains."""
    stages = {s for c in tp.list_chains() for s in tp.load_chain(c).stage_ids}
    assert len(MARKETS) == 13
    assert stages <= set(MARKETS)
    assert len(set(MARKETS) - stages) == 7


@pytest.mark.parametrize("mid", MARKETS)
def test_every_market_has_a_page_in_the_nav(mid: str) -> None:
    page = PAGES / f"{mid}.md"
    assert page.is_file(), f"no docs/markets/{mid}.md"
    assert page.read_text(encoding="utf-8").count(ref.MARKET_MARKER) == 1
    nav = _nav_pages(yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), _Loader)["nav"])
    assert f"markets/{mid}.md" in nav
    assert f"]({mid}.md)" in ref.markets_index_page()


def test_no_page_without_a_market() -> None:
    pages = {p.stem for p in PAGES.glob("*.md")} - {"index"}
    assert pages == set(MARKETS)


@pytest.mark.parametrize("mid", MARKETS)
def test_page_numbers_equal_the_market_file(mid: str) -> None:
    market = tp.load_market(mid)
    page = ref.market_page(market, (PAGES / f"{mid}.md").read_text(encoding="utf-8"))
    assert ref.MARKET_MARKER not in page
    section = page[page.index("## The market file") :]
    rows = _base_rows(section)
    assert list(rows) == [*market.regions, "world"]
    world = market.production.sum()
    for i, r in enumerate(market.regions):
        cells = rows[r]
        assert cells[0] == f"`{r}` {region_table.name(r)}"
        for col, value in ((1, market.production[i]), (3, market.consumption[i])):
            shown = _number(cells[col])
            assert shown == pytest.approx(value, rel=1e-3, abs=0.5), (r, col, shown, value)
        share = cells[2]
        if market.production[i] / world >= 0.0005:
            assert float(share.rstrip("%")) == pytest.approx(
                100 * market.production[i] / world, abs=0.05
            )
    assert _number(rows["world"][1]) == pytest.approx(world, rel=1e-4, abs=0.5)
    assert _number(rows["world"][3]) == pytest.approx(market.consumption.sum(), rel=1e-4, abs=0.5)
    # the base prices, as in the file
    prices = re.search(r"\*\*Base prices?\*\*[^:]*: (.*)", section)
    assert prices is not None
    shown = [float(x.replace(",", "")) for x in re.findall(r"(\d[\d,]*\.?\d*)", prices[1])]
    expected = sorted(set(market.base_price.tolist()))
    assert sorted(set(shown)) == pytest.approx(expected, rel=1e-5)
    # the medium-run elasticities, each as in the file
    for kind, label in ref._ELASTICITY_NAMES.items():
        for key, value in getattr(market.spec.elasticities, kind).items():
            assert f"| medium run | {label} | {key} | {value:g} |" in section, (kind, key)
    # the calibration estimates written by `tradepolicy calibrate` are the current ones
    estimates = re.findall(r"calibration id `([^`]+)`", page)
    assert estimates and set(estimates) == {market.spec.calibration_id}


def test_largest_foreign_supplier_is_computed_from_the_flows() -> None:
    """An independent check of one cell: the largest non-own supplier of Japan's NdPr oxide."""
    market = tp.load_market("ndpr_oxide")
    j = market.regions.index("JPN")
    col = market.flows[:, j].copy()
    col[j] = 0.0
    top = int(np.argmax(col))
    expected = f"{market.regions[top]} {100 * col[top] / market.consumption[j]:.1f}%"
    assert _base_rows(ref.market_file_section(market))["JPN"][5] == expected


def test_a_market_without_a_page_gets_one(tmp_path: Path) -> None:
    market = tp.load_market("gallium")
    page = ref.market_page(market, None)
    assert page.startswith(f"# Market: {market.spec.commodity} (`gallium`)")
    assert "### Base data as loaded" in page


def test_a_page_without_the_marker_is_refused() -> None:
    market = tp.load_market("gallium")
    with pytest.raises(ValueError, match="market-file"):
        ref.market_page(market, "# Gallium\n\nNo marker here.\n")
