"""The generated measure and results reference (docs/scripts/gen_reference.py) covers the code:
every registered measure type and each of its fields, every result variable, and the pathway
and risk variables the guides list."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field

from tradepolicy import docs_reference as ref
from tradepolicy.measures import MEASURES, Measure, measure_types, register
from tradepolicy.results.builder import result_fields

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _section(page: str, name: str) -> str:
    """The section of measure ``name`` in the measures page."""
    start = page.index(f"## `{name}`\n")
    end = page.find("\n## ", start + 1)
    return page[start : end if end >= 0 else None]


def test_every_measure_and_field_appears() -> None:
    page = ref.measures_page()
    types = measure_types()
    assert types
    for name, cls in types.items():
        section = _section(page, name)
        assert f"`{cls.__module__}.{cls.__qualname__}`" in section
        for field, info in cls.model_fields.items():
            assert f"| `{field}` |" in section, (name, field)
            if info.description:
                assert ref._cell(info.description) in section
        if cls.caveat:
            assert ref._cell(cls.caveat) in section
        if cls.pathway_only:
            assert "**Pathway sets only**" in section


def test_every_field_has_a_description() -> None:
    """A field without ``Field(description=...)`` leaves a blank in the reference: add it to
    the measure's field (the reference is read from the code)."""
    missing = [
        f"{name}.{row['name']}"
        for name, cls in measure_types().items()
        if not name.startswith("_")  # measures registered by tests
        for row in ref.measure_fields(cls)
        if not row["description"]
    ]
    assert missing == []


@pytest.fixture
def registered():
    """A measure type registered at test time (removed afterwards)."""

    @register
    class _DocRoyalty(Measure):
        """A royalty registered by a test: it must appear in the reference."""

        type: Literal["_doc_royalty"] = "_doc_royalty"
        producer: str = Field(description="region levying the royalty")
        rate: float = Field(0.1, ge=0.0, le=1.0, description="royalty rate")

    yield _DocRoyalty
    del MEASURES["_doc_royalty"]


def test_a_measure_registered_at_test_time_appears(registered) -> None:
    section = _section(ref.measures_page(), "_doc_royalty")
    assert "A royalty registered by a test" in section
    assert "| `producer` | str | required |  | region levying the royalty |" in section
    assert "| `rate` | float | `0.1` | ≥ 0, ≤ 1 | royalty rate |" in section


def test_pathway_only_fields_and_types_are_marked() -> None:
    rows = {r["name"]: r for r in ref.measure_fields(MEASURES["tariff"])}
    assert rows["start_year"]["pathway_only"] == "yes"
    assert rows["rate"]["pathway_only"] == ""
    policy = ref.measure_fields(MEASURES["stockpile_policy"])
    assert all(r["pathway_only"] == "yes" for r in policy)


def test_every_result_variable_appears() -> None:
    page = ref.results_page()
    for name, meta in result_fields().items():
        assert f"| `{name}` | {meta['dims']} | {ref._cell(meta['units'] or '')}" in page


def _listed(path: Path, heading: str) -> set[str]:
    """Variable names in the first column of the table under ``heading`` of a guide."""
    text = path.read_text("utf-8")
    table = text[text.index(heading) :].split("\n\n| ", 1)[1].split("\n\n", 1)[0]
    names = set()
    for line in table.splitlines()[2:]:
        first = line.split("|")[1]
        names.update(re.findall(r"`([a-z_0-9]+)`", first))
    return names


def test_pathway_and_risk_variables_the_guides_list_appear() -> None:
    rows = {r["name"]: r for r in ref.pathway_rows()}
    listed = _listed(DOCS / "pathways.md", "## Results") | _listed(DOCS / "risk.md", "## Outputs")
    listed -= {"consumer_surplus_change"} - set(rows)  # the guide's "..." row
    assert listed, "no variables read from the guides"
    assert listed <= set(rows), sorted(listed - set(rows))
    assert rows["disruption_loss_p05"]["dims"] == "scenario"
    assert rows["grant_paid"]["units"] == "{currency}/year"
    assert rows["producer_price"]["dims"] == "year scenario stage region"
    assert all(r["long_name"] for r in rows.values())


def test_pathway_rows_match_a_solved_risk_set() -> None:
    """The rows read from the builder's source are the variables a solved pathway set with
    events and a stockpile holds, with the same dims and long names (the project variables
    need a pipeline, which the toy market has not)."""
    from builders import stockpile_policy, toy_short_run

    import tradepolicy as tp
    from tradepolicy.pathway.risk import RiskEvent
    from tradepolicy.pathway.spec import PathwaySet
    from tradepolicy.scenario import Target

    market = toy_short_run("toy-docs")
    stock = stockpile_policy(build_years=[2024, 2025])
    cut = MEASURES["export_quota"](exporter="CHN", destinations=["USA", "EU"], quantity_share=0.3)
    pset = PathwaySet(
        market=market,
        scenarios=[tp.Scenario(name="stock", measure=[stock])],
        years=(2024, 2026),
        risk=[RiskEvent(name="cut", measure=cut, annual_probability=0.5)],
        target=Target(bloc=["USA", "EU"], max_share=0.6),
    )
    ds = tp.solve(pset, draws=2, seed=1)
    rows = {r["name"]: r for r in ref.pathway_rows()}
    assert set(ds.data_vars) == set(rows) - {"project_probability", "project_decided"}
    for name, var in ds.data_vars.items():
        row = rows[name]
        assert row["dims"] == " ".join(var.dims), name
        if "{" not in row["long_name"]:
            assert row["long_name"] == var.attrs["long_name"], name
        units = row["units"].format(
            price=market.price_unit, quantity=market.quantity_unit, currency=market.currency
        )
        assert units == var.attrs.get("units", ""), name
