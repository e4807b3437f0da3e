"""The documentation site (mkdocs.yml) builds with ``mkdocs build --strict``: a broken link, a
missing page in the nav, an API object that does not exist or any other warning fails."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:  # the parent package is missing
        return True


_MISSING = [
    m
    for m in (
        "mkdocs",
        "material",
        "mkdocstrings_handlers.python",
        "mkdocs_gen_files",
        "mkdocs_jupyter",
    )
    if _missing(m)
]
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"the docs extra is not installed (missing {', '.join(_MISSING)}): "
    "`make test` installs it with the dev extras, `make docs` with the docs extra",
)


def _build(config_dir: Path, site_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["DISABLE_MKDOCS_2_WARNING"] = "true"
    env["NO_MKDOCS_2_WARNING"] = "1"
    # the gallery renders the notebooks without running them: nbmake runs them in `make test`
    env["TRADEPOLICY_DOCS_EXECUTE"] = "false"
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=config_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    result = _build(ROOT, site)
    assert result.returncode == 0, result.stdout + result.stderr
    for page in (
        "index.html",
        "getting-started/index.html",
        "guide/negotiators/index.html",
        "guide/policy-staff/index.html",
        "guide/economists/index.html",
        "model/index.html",
        "calibration/index.html",
        "chains/index.html",
        "pathways/index.html",
        "risk/index.html",
        "sweeps/index.html",
        "markets/ndpr_oxide/index.html",
        "reference/measures/index.html",
        "reference/results/index.html",
        "changelog/index.html",
        "gallery/index.html",
        "gallery/risk/index.html",
    ):
        assert (site / page).is_file(), page
    # the model page states its assumptions; the calibration guide is calibration/README.md
    model = (site / "model" / "index.html").read_text(encoding="utf-8")
    assert 'id="assumptions-and-caveats"' in model
    calibration = (site / "calibration" / "index.html").read_text(encoding="utf-8")
    assert "Calibration pipeline" in calibration and "--8&lt;--" not in calibration
    # market pages carry the section generated from their market file (gen_markets.py)
    for mid in ("ndpr_oxide", "ree_ndfeb_magnet", "gallium"):
        market_html = (site / "markets" / mid / "index.html").read_text(encoding="utf-8")
        assert "Base data as loaded" in market_html, mid
        assert "<!-- market-file -->" not in market_html, mid
    api = (site / "api" / "tradepolicy" / "index.html").read_text(encoding="utf-8")
    for name in ("load_market", "load_scenarios", "solve", "ScenarioSet", "Scenario"):
        assert f'id="tradepolicy.{name}"' in api, name
    accessor = (site / "api" / "accessor" / "index.html").read_text(encoding="utf-8")
    assert 'id="tradepolicy.results.accessor.TradePolicyAccessor.summary"' in accessor
    pathway = (site / "api" / "pathway" / "index.html").read_text(encoding="utf-8")
    assert 'id="tradepolicy.pathway.views.options_table"' in pathway
    # Sphinx roles in docstrings render as code spans (docs/scripts/griffe_sphinx_roles.py)
    for html in (api, accessor, pathway):
        assert ":func:`" not in html and ":class:`" not in html
    # the gallery: one page per notebook, introduced by its question from docs/notebooks.md
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    for stem in notebooks:
        page = (site / "gallery" / stem / "index.html").read_text(encoding="utf-8")
        assert "The question:" in page, stem
    risk = (site / "gallery" / "risk" / "index.html").read_text(encoding="utf-8")
    assert "The cost of inaction" in risk and "risk_table()" in risk
    # release notes are the changelog itself
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    first_version = next(ln[3:].strip() for ln in changelog.splitlines() if ln.startswith("## "))
    assert first_version in (site / "changelog" / "index.html").read_text(encoding="utf-8")
    # offline: no web fonts or other fetched assets
    html = (site / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis" not in html and "fonts.gstatic" not in html


@pytest.mark.parametrize(
    ("page", "text", "message"),
    [
        ("getting-started.md", "\nSee [nowhere](no-such-page.md).\n", "no-such-page.md"),
        ("api/tradepolicy.md", "\n::: tradepolicy.no_such_function\n", "no_such_function"),
        ("guide/index.md", "\nSee [the model](../model.md#no-such-section).\n", "no-such-section"),
        ("getting-started.md", '\n--8<-- "no/such/file.md"\n', "no/such/file.md"),
        ("orphan.md", "# A page the nav does not list\n", "orphan.md"),
    ],
    ids=["broken-link", "missing-api-object", "broken-anchor", "missing-snippet", "not-in-nav"],
)
def test_strict_build_fails(tmp_path, page, text, message):
    """A copy of the site with one defect does not build."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copy(ROOT / "CHANGELOG.md", tmp_path / "CHANGELOG.md")
    (tmp_path / "calibration").mkdir()  # snippets: the calibration guide is its README
    shutil.copy(ROOT / "calibration" / "README.md", tmp_path / "calibration" / "README.md")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    (tmp_path / "tradepolicy").symlink_to(ROOT / "tradepolicy", target_is_directory=True)
    with (tmp_path / "docs" / page).open("a", encoding="utf-8") as f:
        f.write(text)
    result = _build(tmp_path, tmp_path / "site")
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
