"""Views of value-chain results: ``ds.tp`` per stage and for the whole chain, the CLI and the
briefs (docs/chains.md, DESIGN §5, §7, §10)."""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import docx
import numpy as np
import pypdf
import pytest
import xarray as xr
from chains import TOY_CHAIN_TOML, TOY_MAGNET
from toy import TOY_MARKET
from typer.testing import CliRunner

import tradepolicy as tp
from tradepolicy.cli import app
from tradepolicy.market import list_chains
from tradepolicy.reports import build_context, render_brief
from tradepolicy.reports.formatting import fmt_share

runner = CliRunner()
ENV = {"COLUMNS": "250"}

CHAIN_SCENARIOS = """\
market = "toy_chain.toml"
target_share = 0.6
target = { group = "g7", max_share = 0.6 }

[[scenario]]
name = "oxide_floor"
[[scenario.measure]]
type = "price_floor"
stage = "toy"
importers = ["USA", "EU"]
floor = 60000.0
exempt = ["AUS"]

[[scenario]]
name = "magnet_tariff"
[[scenario.measure]]
type = "tariff"
stage = "toy_magnet"
importers = ["USA", "EU"]
exporters = ["CHN"]
rate = 0.25
"""


@pytest.fixture
def chain_set(write_toml) -> Path:
    """The toy chain's files and a scenario set on it (an oxide floor, a magnet tariff)."""
    write_toml(copy.deepcopy(TOY_MARKET), "toy.toml")
    write_toml(copy.deepcopy(TOY_MAGNET), "toy_magnet.toml")
    write_toml(TOY_CHAIN_TOML, "toy_chain.toml")
    return write_toml(CHAIN_SCENARIOS, "toy_chain_scenarios.toml")


@pytest.fixture
def chain_ds(chain_set) -> xr.Dataset:
    return tp.solve(tp.load_scenarios(chain_set))


def invoke(*args: str):
    return runner.invoke(app, list(args), env=ENV)


# -- ds.tp ------------------------------------------------------------------------------------
def test_stage_view_is_the_stage_as_one_market(chain_ds) -> None:
    t = chain_ds.tp
    assert t.is_chain and t.stages == ["toy", "toy_magnet"] and t.target_stage == "toy_magnet"
    assert t.stage_order() == ["toy_magnet", "toy"]
    assert t.downstream_stages() == ["toy_magnet"]
    view = t.stage("toy_magnet")
    assert not view.tp.is_chain and view.tp.commodities == ["toy_magnet"]
    # the magnet stage's own regions (AUS neither makes nor uses magnets)
    assert list(view.region.values) == ["CHN", "USA", "EU", "ROW"]
    regions = view.region.values
    for var in ("consumer_price", "production", "welfare_change", "trade_flow"):
        dims = {d: regions for d in ("region", "exporter", "importer") if d in chain_ds[var].dims}
        np.testing.assert_array_equal(
            view[var].sel(commodity="toy_magnet").values,
            chain_ds[var].sel(stage="toy_magnet", **dims).values,
        )
    # the stage's measures only, and its market definition
    import json

    spec = json.loads(view.attrs["scenario_spec"])
    by = {s["name"]: s["measure"] for s in spec["scenario"]}
    assert by["oxide_floor"] == [] and [m["type"] for m in by["magnet_tariff"]] == ["tariff"]
    assert list(json.loads(view.attrs["markets"])) == ["toy_magnet"]
    # single-market views work on it and equal the chain's per-stage calls
    assert view.tp.options().equals(t.options("toy_magnet"))
    with pytest.raises(KeyError, match="no stage"):
        t.stage("nope")


def test_dependence_by_stage_reads_each_stage(chain_ds) -> None:
    dep = chain_ds.tp.dependence_by_stage()
    assert list(dict.fromkeys(dep.index.get_level_values("stage"))) == ["toy_magnet", "toy"]
    assert dep.loc[("toy_magnet", "baseline"), "target_stage"]
    assert not dep.loc[("toy", "baseline"), "target_stage"]
    for st in ("toy", "toy_magnet"):
        for scen in chain_ds.tp.scenarios:
            want = float(chain_ds.bloc_dependency.sel(stage=st, scenario=scen))
            assert dep.loc[(st, scen), "dependence"] == pytest.approx(want, rel=1e-12)
            base = float(chain_ds.bloc_dependency.sel(stage=st, scenario="baseline"))
            assert dep.loc[(st, scen), "points_removed"] == pytest.approx(100 * (base - want))
    # the target read upstream: the upstream stage comes first
    up = chain_ds.assign_attrs(target_stage="toy")
    assert up.tp.stage_order() == ["toy", "toy_magnet"]


def test_chain_totals_add_up_over_stages(chain_ds) -> None:
    t = chain_ds.tp
    opts = t.options()
    for scen in t.scenarios[1:]:
        total = t.who_pays(scen)
        parts = [t.who_pays(scen, st) for st in t.stages]
        for col in ("cost_to_buyers", "producers", "budget_cost", "revenue_and_rents", "welfare"):
            want = sum(float(p[col].sum()) for p in parts)
            assert float(total[col].sum()) == pytest.approx(want, rel=1e-12, abs=1e-9)
        world = t.money(float(chain_ds.welfare_change.sel(scenario=scen).sum()))
        assert opts.loc[scen, "world_welfare"] == pytest.approx(world, rel=1e-12)
        wel = t.welfare_by_stage(scen)
        np.testing.assert_allclose(wel["total"].values, wel[t.stages].sum(axis=1).values)
        assert wel.loc["World", "total"] == pytest.approx(world, rel=1e-12)
    # dependence of the whole chain's options is read at the target stage
    np.testing.assert_allclose(
        opts["dependence"].values,
        chain_ds.bloc_dependency.sel(stage="toy_magnet").values,
    )
    assert opts.attrs["target_stage"] == "toy_magnet"


def test_competitiveness_is_members_output_weighted_value_added(chain_ds) -> None:
    comp = chain_ds.tp.competitiveness()
    assert list(dict.fromkeys(comp.index.get_level_values("stage"))) == ["toy_magnet"]
    members = chain_ds.tp.bloc()
    for scen in chain_ds.tp.scenarios:
        sub = chain_ds.sel(stage="toy_magnet", scenario=scen)
        S = sub["production"].sel(region=[r for r in members if r in sub.region.values])
        S = S.where(S > 0)
        va = float((S * sub["value_added_price"]).sum() / S.sum())
        cost = float((S * sub["input_cost"]).sum() / S.sum())
        price = float((S * sub["effective_producer_price"]).sum() / S.sum())
        r = comp.loc[("toy_magnet", scen)]
        assert r["bloc_value_added"] == pytest.approx(va, rel=1e-12)
        assert r["bloc_input_cost"] == pytest.approx(cost, rel=1e-12)
        # value added is the price less the input cost (§10)
        assert r["bloc_value_added"] + r["bloc_input_cost"] == pytest.approx(price, rel=1e-9)
        assert r["bloc_output"] == pytest.approx(float(sub["bloc_output"]), rel=1e-12)
    # a floor on members' oxide imports raises members' magnet makers' input cost and cuts
    # their value added: the competitiveness effect of an upstream measure
    base, floor = comp.loc[("toy_magnet", "baseline")], comp.loc[("toy_magnet", "oxide_floor")]
    assert floor["bloc_input_cost"] > base["bloc_input_cost"]
    assert floor["bloc_value_added_pct"] < 0 and floor["bloc_output_pct"] < 0


def test_single_market_results_are_not_chains(toy_market) -> None:
    ds = tp.solve(tp.ScenarioSet(market=toy_market, scenarios=[]))
    assert not ds.tp.is_chain and ds.tp.stages == [] and ds.tp.target_stage is None
    with pytest.raises(KeyError, match="not of a value chain"):
        ds.tp.dependence_by_stage()


# -- CLI --------------------------------------------------------------------------------------
def test_cli_run_on_a_chain(chain_set, chain_ds, tmp_path) -> None:
    out = tmp_path / "chain.nc"
    res = invoke("run", str(chain_set), "-o", str(out))
    assert res.exit_code == 0, res.output
    text = res.output
    assert "Value chain toy_chain" in text
    # the dependence per stage, the target stage first and marked
    assert text.index("★ Toy magnet") < text.index("Toy oxide", text.index("★ Toy magnet"))
    for st in ("toy", "toy_magnet"):
        assert fmt_share(float(chain_ds.bloc_dependency.sel(stage=st, scenario="baseline"))) in (
            text
        )
    # measures described with their stage market (prices in its unit)
    assert "Toy oxide: A landed price floor of 60,000 USD/t" in text
    assert "Toy magnet: " in text and "tariff" in text
    assert "Who pays, summed over the chain's stages" in text
    assert "Downstream competitiveness at the Toy magnet stage" in text
    assert "Options: value chain toy_chain" in text
    assert "Welfare change by stage" in text
    assert xr.open_dataset(out).tp.is_chain


def test_cli_validate_and_markets_name_chains(chain_set, tmp_path) -> None:
    res = invoke("validate", str(chain_set.parent / "toy_chain.toml"), str(chain_set))
    assert res.exit_code == 0, res.output
    assert "chain 'toy_chain': 2 stages" in res.output
    assert "toy → toy_magnet 0.4" in res.output
    assert "scenario set for market" in res.output and "2 scenarios" in res.output
    res = invoke("markets")
    assert res.exit_code == 0, res.output
    for cid in list_chains():
        assert "Shipped value chains" in res.output and cid in res.output


def test_cli_refuses_a_chain_stacked_with_another_set(chain_set, toy_files) -> None:
    res = invoke("run", str(chain_set), str(toy_files[1]))
    assert res.exit_code == 2
    assert "runs on its own" in res.output


@pytest.mark.skipif("ree_magnets" not in list_chains(), reason="no shipped chain")
def test_cli_run_and_validate_on_the_shipped_chain_set() -> None:
    res = invoke("validate", "ree_magnets")
    assert res.exit_code == 0, res.output
    res = invoke("run", "ree_magnets")
    assert res.exit_code == 0, res.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = tp.solve(tp.load_scenarios("ree_magnets"))
    goal = ds.tp.target_stage
    head = f"★ {ds.tp.stage_name(goal)}"
    assert head in res.output
    base = float(ds.bloc_dependency.sel(stage=goal, scenario="baseline"))
    assert f"{base:.1%}" in res.output
    for st in ds.tp.stages:
        assert ds.tp.stage_name(st) in res.output


# -- briefs -----------------------------------------------------------------------------------
def _pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)


def _docx_text(data: bytes) -> str:
    d = docx.Document(io.BytesIO(data))
    parts = [p.text for p in d.paragraphs]
    for t in d.tables:
        for row in t.rows:
            parts += [c.text for c in row.cells]
    return " ".join(" ".join(parts).split())


def test_chain_brief_shows_dependence_per_stage(chain_ds) -> None:
    brief = build_context(chain_ds)
    assert brief.chain is not None
    assert [s.id for s in brief.sections] == ["toy_magnet", "toy"]  # the target stage first
    assert brief.sections[0].commodity == "Toy magnet (target stage)"
    keys = [t.key for t in brief.chain.tables]
    assert keys[:3] == ["options", "stage_welfare", "who_pays"]
    assert "competitiveness" in keys
    # dependence per stage is on page 1 (the summary), not repeated in the overview
    dep = brief.summaries[0].stages
    assert dep is not None and dep.key == "stage_dependence"
    assert dep.header[1].startswith("Toy magnet (target stage")
    # an oxide measure is shown in the magnet section too, named by its stage
    magnet = {b.name: b for b in brief.sections[0].scenarios}
    assert magnet["oxide_floor"].measures[0].startswith("At the Toy oxide stage:")
    # the target is read at the target stage only
    assert brief.sections[0].target_share == 0.6 and brief.sections[1].target_share is None
    shares = [
        fmt_share(float(chain_ds.bloc_dependency.sel(stage=st, scenario=scen)))
        for st in ("toy", "toy_magnet")
        for scen in chain_ds.tp.scenarios
    ]
    wel = [
        f"{chain_ds.tp.money(float(chain_ds.welfare_change.sel(scenario=s).sum())):+.1f}"
        for s in chain_ds.tp.scenarios[1:]
    ]
    texts = {
        "pdf": _pdf_text(render_brief(chain_ds, fmt="pdf")),
        "docx": _docx_text(render_brief(chain_ds, fmt="docx")),
        "html": render_brief(chain_ds, fmt="html").decode("utf-8"),
    }
    for fmt, text in texts.items():
        text = text.replace("\u2212", "-")
        assert "per stage of the chain" in text, fmt
        assert "Downstream competitiveness at the Toy magnet stage" in text, fmt
        assert "Stage: Toy magnet (target stage)" in text, fmt
        assert "Stage: Toy oxide" in text, fmt
        for share in shares:
            assert share in text, (fmt, share)
        for w in wel:
            assert w.lstrip("+") in text, (fmt, w)


def test_single_market_brief_has_no_chain_overview(toy_market) -> None:
    ds = tp.solve(
        tp.ScenarioSet(
            market=toy_market,
            scenarios=[
                tp.Scenario(
                    name="t",
                    measure=[
                        {"type": "tariff", "importers": ["USA"], "exporters": ["CHN"], "rate": 0.2}
                    ],
                )
            ],
            target_share=0.6,
        )
    )
    brief = build_context(ds)
    assert brief.chain is None
    html = render_brief(ds, fmt="html").decode("utf-8")
    assert "per stage of the chain" not in html and "Stage:" not in html
