"""Small value chains for tests: the toy market as oxide, a toy magnet stage, random chains."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from toy import TOY_MARKET

import tradepolicy as tp
from tradepolicy.api import build_instruments
from tradepolicy.chain import Chain, stack_instruments
from tradepolicy.model.instruments import Instruments
from tradepolicy.testing import every_measure_scenarios, random_market

#: magnets made from the toy oxide: CHN, USA and EU make them, ROW only buys (AUS is absent)
TOY_MAGNET: dict[str, Any] = {
    **copy.deepcopy(TOY_MARKET),
    "id": "toy_magnet",
    "commodity": "Toy magnet",
    "description": "Magnets made from the toy oxide, for tests.",
    "regions": ["CHN", "USA", "EU", "ROW"],
    "base_price": {"default": 100000.0},
    "elasticities": {
        "supply": {"default": 1.5},
        "demand": {"default": 0.6},
        "substitution": {"default": 2.5},
    },
    "flows": {
        "CHN": {"CHN": 40000.0, "USA": 8000.0, "EU": 10000.0, "ROW": 2000.0},
        "USA": {"USA": 2000.0},
        "EU": {"EU": 5000.0, "ROW": 500.0},
    },
}
TOY_MAGNET.pop("base_tariffs")

TOY_CHAIN_TOML = """\
id = "toy_chain"
kind = "chain"
description = "Toy oxide to toy magnets"
stages = ["toy.toml", "toy_magnet.toml"]

[[link]]
input = "toy"
output = "toy_magnet"
coefficient = 0.4
low = 0.3
high = 0.5
source = "invented for tests"
"""


def toy_chain(coefficient: float = 0.4, **magnet: Any) -> Chain:
    """The toy chain built in code (``magnet`` overrides entries of :data:`TOY_MAGNET`)."""
    oxide = tp.Market.from_dict(copy.deepcopy(TOY_MARKET))
    spec = copy.deepcopy(TOY_MAGNET) | magnet
    mag = tp.Market.from_dict(spec)
    return Chain.from_markets(
        "toy_chain",
        [oxide, mag],
        [{"input": "toy", "output": "toy_magnet", "coefficient": coefficient}],
    )


def renamed(market: tp.Market, market_id: str, price_factor: float = 1.0) -> tp.Market:
    """``market`` under another id, with prices scaled (a stage of a random chain)."""
    d = market.spec.model_dump(mode="json", exclude_none=True)
    d["id"] = market_id
    d.pop("flows_file", None)
    d.pop("seed_shares", None)
    d["flows"] = {
        e: {
            i: float(market.flows[a, b]) for b, i in enumerate(market.regions) if market.flows[a, b]
        }
        for a, e in enumerate(market.regions)
    }
    d["base_price"] = {k: v * price_factor for k, v in d["base_price"].items()}
    return tp.Market.from_dict(d)


def random_chain(rng: np.random.Generator, n: int = 6, coefficient: float = 0.3) -> Chain:
    """Two random n-region markets, the second made from the first (downstream prices ×10,
    so value added stays positive)."""
    up = renamed(random_market(rng, n=n), "up")
    down = renamed(random_market(rng, n=n), "down", 10.0)
    return Chain.from_markets(
        "random_chain", [up, down], [{"input": "up", "output": "down", "coefficient": coefficient}]
    )


def every_measure_chain(
    rng: np.random.Generator, n: int = 6, n_scen: int = 11, coefficient: float = 0.3
) -> tuple[Chain, Instruments]:
    """:func:`random_chain` and the stacked instruments of a baseline and ``n_scen``
    scenarios, each using every measure in every stage."""
    chain = random_chain(rng, n=n, coefficient=coefficient)
    parts = [
        build_instruments(m, m.calibration, [[], *every_measure_scenarios(rng, m, n_scen)])[0]
        for m in chain.stages
    ]
    return chain, stack_instruments(parts, chain.positions, chain.n)[0]
