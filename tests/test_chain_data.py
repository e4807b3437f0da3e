"""Shipped value-chain data (DESIGN section 10): the stage markets obey the chain calibration rules.

For every link (input i -> output s) and region o, with S0 = base production (row sums of the
flows), U0 = base use (column sums), P0_{i,o} the unit value of o's purchases of i at landed,
tariff-inclusive prices and p0_{s,o} the base producer price of s in o:

- base final demand of i in o, ``U0_{i,o} - sum_links a * S0_{s,o}``, is >= 0;
- base value added ``v0_{s,o} = p0_{s,o} - sum_links a * P0_{i,o}`` is > 0 where o produces s.

Stages may list different regions (a region a stage does not list neither makes nor uses it);
the rules are applied region by region, by code. The chain files are parsed with tomllib (the
chain loader is separate).
"""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import numpy as np
import pytest

import tradepolicy as tp
from tradepolicy.chain import Chain

ROOT = Path(__file__).resolve().parents[1]
CHAIN_DIRS = (ROOT / "models" / "chains", ROOT / "models" / "equilibrium")
CHAINS = ("ree_magnets", "cobalt_chain")


def _chain(chain_id: str) -> dict:
    for d in CHAIN_DIRS:
        path = d / f"{chain_id}.toml"
        if path.exists():
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            if data.get("kind") == "chain":
                return data
    raise FileNotFoundError(chain_id)


def _unit_value_paid(mkt: tp.Market) -> np.ndarray:
    """Sum q0*X0 / sum X0 per destination, at landed prices with base tariffs and export taxes."""
    flows = mkt.flows
    landed = mkt.base_price[:, None] * (1 + mkt.base_export_tax) * (1 + mkt.base_tariff)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (landed * flows).sum(axis=0) / flows.sum(axis=0)


def _final_demand_and_margin(chain: dict) -> tuple[dict, dict]:
    """Base final demand per input stage and value-added margin per output stage, by region.

    Regions are matched by code: the makers of an output stage in region o buy the input
    stage in the same region o (which must be one of the input stage's regions).
    """
    stages = {s: tp.load_market(s) for s in chain["stages"]}
    final = {s: m.flows.sum(axis=0).astype(float) for s, m in stages.items()}
    cost = {s: np.zeros(m.n) for s, m in stages.items()}
    for link in chain["link"]:
        out, inp, a = stages[link["output"]], stages[link["input"]], link["coefficient"]
        made = dict(zip(out.regions, out.flows.sum(axis=1), strict=True))
        paid = dict(zip(inp.regions, _unit_value_paid(inp), strict=True))
        for k, r in enumerate(inp.regions):
            final[link["input"]][k] -= a * made.get(r, 0.0)
        for k, r in enumerate(out.regions):
            if r in paid:
                cost[link["output"]][k] += a * paid[r]
    outputs = {link["output"] for link in chain["link"]}
    margin = {s: stages[s].base_price - cost[s] for s in outputs}
    return final, margin


def _at_high_end(chain: dict) -> dict:
    """The chain with every coefficient at the high end of its documented range."""
    return {**chain, "link": [{**k, "coefficient": k["high"]} for k in chain["link"]]}


def test_ree_stages_share_one_region_list() -> None:
    chain = _chain("ree_magnets")
    lists = {s: tuple(tp.load_market(s).regions) for s in chain["stages"]}
    assert len(set(lists.values())) == 1, lists
    assert next(iter(lists.values()))[-1] == "ROW"


@pytest.mark.parametrize("chain_id", CHAINS)
def test_every_region_that_makes_an_output_stage_can_buy_its_inputs(chain_id) -> None:
    """A region that makes a downstream stage must be a region of each of its input stages."""
    chain = _chain(chain_id)
    for link in chain["link"]:
        out, inp = tp.load_market(link["output"]), tp.load_market(link["input"])
        makers = {r for r, q in zip(out.regions, out.flows.sum(axis=1), strict=True) if q > 0}
        assert makers <= set(inp.regions), (link["input"], sorted(makers - set(inp.regions)))
    for stage in chain["stages"]:
        assert tp.load_market(stage).regions[-1] == "ROW", stage


@pytest.mark.parametrize("chain_id", CHAINS)
def test_links_are_known_stages_inputs_first(chain_id) -> None:
    chain = _chain(chain_id)
    order = {s: k for k, s in enumerate(chain["stages"])}
    for link in chain["link"]:
        assert order[link["input"]] < order[link["output"]], link


@pytest.mark.parametrize("chain_id", CHAINS)
def test_coefficients_lie_in_their_documented_range(chain_id) -> None:
    for link in _chain(chain_id)["link"]:
        assert 0 < link["low"] <= link["coefficient"] <= link["high"], link
        assert link["source"].strip(), link


@pytest.mark.parametrize("end", ["point", "high"])
@pytest.mark.parametrize("chain_id", CHAINS)
def test_base_final_demand_is_not_negative(chain_id, end) -> None:
    chain = _chain(chain_id)
    final, _ = _final_demand_and_margin(chain if end == "point" else _at_high_end(chain))
    for stage, f in final.items():
        regions = tp.load_market(stage).regions
        bad = {r: round(float(v), 3) for r, v in zip(regions, f, strict=True) if v < 0}
        assert not bad, f"{stage}: negative base final demand {bad}"


@pytest.mark.parametrize("end", ["point", "high"])
@pytest.mark.parametrize("chain_id", CHAINS)
def test_base_value_added_is_positive_where_produced(chain_id, end) -> None:
    chain = _chain(chain_id)
    _, margin = _final_demand_and_margin(chain if end == "point" else _at_high_end(chain))
    for stage, v in margin.items():
        mkt = tp.load_market(stage)
        made = mkt.flows.sum(axis=1) > 0
        bad = {r: float(x) for r, x, m in zip(mkt.regions, v, made, strict=True) if m and x <= 0}
        assert not bad, f"{stage}: value added not positive {bad}"


def test_rules_catch_a_region_that_makes_more_than_it_buys() -> None:
    """The final-demand rule can fail: raising the metal coefficient past Japan's headroom does."""
    chain = _chain("ree_magnets")
    for link in chain["link"]:
        if link["input"] == "ree_ndpr_metal":
            link["coefficient"] = 0.6
    final, _ = _final_demand_and_margin(chain)
    assert (final["ree_ndpr_metal"] < 0).any()


def test_rules_catch_a_negative_margin() -> None:
    chain = _chain("ree_magnets")
    for link in chain["link"]:
        if link["output"] == "ree_ndpr_metal":
            link["coefficient"] = 1.3  # 1.3 x 55,000 > 67,940 USD/t metal
    _, margin = _final_demand_and_margin(chain)
    assert (margin["ree_ndpr_metal"] <= 0).all()


@pytest.mark.parametrize("chain_id", CHAINS)
def test_every_stage_csv_row_has_a_public_source(chain_id) -> None:
    for stage in _chain(chain_id)["stages"]:
        folder = ROOT / "calibration" / "data" / stage
        files = sorted(folder.glob("*.csv"))
        assert files, stage
        for path in files:
            with path.open(encoding="utf-8") as f:
                for k, row in enumerate(csv.DictReader(f), start=2):
                    text = row.get("source", row.get("text", ""))
                    assert text and text.strip(), f"{path.name} line {k}: no source"
                    for tag in ("UNVERIFIED", "NOTES.md", "shared/data", "DUPLICATE-OF"):
                        assert tag not in text, f"{path.name} line {k}: internal tag {tag}"


@pytest.mark.parametrize("chain_id", CHAINS)
def test_world_use_equals_world_production_per_stage(chain_id) -> None:
    for stage in _chain(chain_id)["stages"]:
        flows = tp.load_market(stage).flows
        assert flows.sum(axis=0).sum() == pytest.approx(flows.sum(axis=1).sum(), rel=1e-12)


# -- cobalt_chain --------------------------------------------------------------------------


def _by_region(mkt: tp.Market, axis: int) -> dict[str, float]:
    return dict(zip(mkt.regions, mkt.flows.sum(axis=axis).tolist(), strict=True))


def test_cobalt_intermediates_balance_world_mine_output_and_refining() -> None:
    """World intermediate output is USGS world mine output; refiners outside China use exactly
    coefficient x refined output; China's final use (stock build) is the world residual
    ``mine output - coefficient x world refining``, an independent formula."""
    chain = _chain("cobalt_chain")
    (link,) = chain["link"]
    a = link["coefficient"]
    inter, refined = tp.load_market("co_intermediate"), tp.load_market("co_refined")
    made, used = _by_region(inter, 1), _by_region(inter, 0)
    refining = _by_region(refined, 1)
    # flows are stored to 10 significant digits, so totals hold to about 1e-9 (calibration/README)
    assert sum(made.values()) == pytest.approx(302_000, rel=1e-9)  # USGS MCS 2026, 2024
    assert sum(refining.values()) == pytest.approx(250_150, rel=1e-9)  # IEA, 2024
    for r, q in refining.items():
        if r != "CHN" and q > 0:
            assert used[r] == pytest.approx(a * q, abs=1.0), r  # rounded up to whole t
    final, _ = _final_demand_and_margin(chain)
    stock_build = dict(zip(inter.regions, final["co_intermediate"].tolist(), strict=True))
    world_gap = sum(made.values()) - a * sum(refining.values())
    assert stock_build["CHN"] == pytest.approx(world_gap, abs=3.0)
    assert stock_build["CHN"] > 0.1 * a * refining["CHN"]  # a real stock build, not noise


def test_cobalt_regions_differ_by_stage() -> None:
    """The DRC makes intermediates but no refined cobalt; Korea uses refined cobalt only."""
    inter, refined = tp.load_market("co_intermediate"), tp.load_market("co_refined")
    assert "COD" in inter.regions and "COD" not in refined.regions
    assert "KOR" in refined.regions and "KOR" not in inter.regions
    assert _by_region(inter, 1)["COD"] / inter.flows.sum() == pytest.approx(226 / 302)
    chain = tp.load_market("cobalt_chain")
    assert set(chain.regions) == set(inter.regions) | set(refined.regions)
    assert chain.regions[-1] == "ROW"


def test_co_refined_keeps_the_refined_cobalt_base() -> None:
    """The refined stage is the shipped refined_cobalt market's base data, cell by cell."""
    stage, market = tp.load_market("co_refined"), tp.load_market("refined_cobalt")
    assert stage.regions == market.regions
    np.testing.assert_allclose(stage.flows, market.flows, rtol=1e-12)
    np.testing.assert_allclose(stage.base_price, market.base_price, rtol=0)


def test_cobalt_coefficient_range_stops_where_the_balance_does() -> None:
    """Above 1.05 the refiners outside China would need more intermediates than their base use:
    the loader rejects such a range, naming the stage and a region."""
    chain = _chain("cobalt_chain")
    chain["link"][0]["high"] = 1.09
    final, _ = _final_demand_and_margin(_at_high_end(chain))
    inter = tp.load_market("co_intermediate")
    short = {r for r, v in zip(inter.regions, final["co_intermediate"], strict=True) if v < 0}
    assert {"EU", "JPN", "IDN", "CAN", "ROW"} <= short and "CHN" not in short
    path = ROOT / "models" / "equilibrium" / "cobalt_chain.toml"
    with pytest.raises(tp.InputError) as err:
        Chain.from_dict(chain, path=path)
    assert "co_intermediate" in str(err.value) and "high end" in str(err.value)


@pytest.fixture(scope="module")
def cobalt_results():
    return tp.solve(tp.load_scenarios(ROOT / "scenarios" / "cobalt_chain.toml"))


def test_cobalt_set_converges_everywhere(cobalt_results) -> None:
    assert bool((cobalt_results.converged == 1).all()), cobalt_results.converged.to_pandas()


@pytest.mark.parametrize(
    ("scenario", "quota"), [("drc_quota_2025", 85_900.0), ("drc_quota_2026_27", 96_600.0)]
)
def test_drc_quota_binds_on_intermediates_and_its_rent_goes_to_the_drc(
    cobalt_results, scenario, quota
) -> None:
    ds = cobalt_results.sel(scenario=scenario)
    inter = ds.sel(stage="co_intermediate")
    flows = inter.trade_flow.sel(exporter="COD")
    exports = float(flows.sum() - flows.sel(importer="COD"))
    assert exports == pytest.approx(quota, rel=1e-6)  # binds: base exports were 226,000 t
    rent = float(inter.quota_rent.sel(exporter="COD", importer="CHN"))
    income = ds.quota_rent_income.sum("stage")
    # the licence rent is the per-unit rent times the capped exports, booked to the DRC only
    assert float(income.sel(region="COD")) == pytest.approx(rent * quota, rel=1e-6)
    assert float(abs(income.drop_sel(region="COD")).max()) == 0.0
    # the rent is the wedge between the DRC's sales price and its producer price
    landed = float(inter.landed_price.sel(exporter="COD", importer="CHN"))
    producer = float(inter.producer_price.sel(region="COD"))
    assert landed == pytest.approx(producer + rent, rel=1e-9)
    # the upstream quota reaches refined cobalt: dearer in every region that uses it
    base = cobalt_results.sel(scenario="baseline", stage="co_refined").consumer_price
    now = ds.sel(stage="co_refined").consumer_price
    used = base.notnull()
    assert bool((now.where(used) > base.where(used)).sum() == used.sum())


def test_the_tighter_2025_quota_costs_more(cobalt_results) -> None:
    price = cobalt_results.consumer_price.sel(stage="co_refined", region="EU")
    assert float(price.sel(scenario="drc_quota_2025")) > float(
        price.sel(scenario="drc_quota_2026_27")
    )
