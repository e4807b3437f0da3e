"""Shipped value-chain data (DESIGN section 10): the stage markets obey the chain calibration rules.

For every link (input i -> output s) and region o, with S0 = base production (row sums of the
flows), U0 = base use (column sums), P0_{i,o} the unit value of o's purchases of i at landed,
tariff-inclusive prices and p0_{s,o} the base producer price of s in o:

- base final demand of i in o, ``U0_{i,o} - sum_links a * S0_{s,o}``, is >= 0;
- base value added ``v0_{s,o} = p0_{s,o} - sum_links a * P0_{i,o}`` is > 0 where o produces s.

The chain files are parsed with tomllib (the chain loader is separate).
"""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import numpy as np
import pytest

import tradepolicy as tp

ROOT = Path(__file__).resolve().parents[1]
CHAIN_DIRS = (ROOT / "models" / "chains", ROOT / "models" / "equilibrium")
CHAINS = ("ree_magnets",)


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
    """Base final demand per input stage and value-added margin per output stage, by region."""
    stages = {s: tp.load_market(s) for s in chain["stages"]}
    final = {s: m.flows.sum(axis=0).astype(float) for s, m in stages.items()}
    cost = {s: np.zeros(m.n) for s, m in stages.items()}
    for link in chain["link"]:
        out, inp, a = stages[link["output"]], stages[link["input"]], link["coefficient"]
        final[link["input"]] -= a * out.flows.sum(axis=1)
        cost[link["output"]] += a * _unit_value_paid(inp)
    outputs = {link["output"] for link in chain["link"]}
    margin = {s: stages[s].base_price - cost[s] for s in outputs}
    return final, margin


@pytest.mark.parametrize("chain_id", CHAINS)
def test_stages_share_one_region_list(chain_id) -> None:
    chain = _chain(chain_id)
    lists = {s: tuple(tp.load_market(s).regions) for s in chain["stages"]}
    assert len(set(lists.values())) == 1, lists
    assert next(iter(lists.values()))[-1] == "ROW"


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


@pytest.mark.parametrize("chain_id", CHAINS)
def test_base_final_demand_is_not_negative(chain_id) -> None:
    final, _ = _final_demand_and_margin(_chain(chain_id))
    for stage, f in final.items():
        regions = tp.load_market(stage).regions
        bad = {r: round(float(v), 3) for r, v in zip(regions, f, strict=True) if v < 0}
        assert not bad, f"{stage}: negative base final demand {bad}"


@pytest.mark.parametrize("chain_id", CHAINS)
def test_base_value_added_is_positive_where_produced(chain_id) -> None:
    _, margin = _final_demand_and_margin(_chain(chain_id))
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
