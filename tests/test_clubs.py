"""The club helper writes ordinary measures: free trade inside, a common floor outside."""

from __future__ import annotations

import numpy as np
import pytest

import tradepolicy as tp
from tradepolicy.measures import PriceFloor, PriceGapSubsidy, StockpileRelease, Tariff

CLUB = ["USA", "EU", "JPN", "MYS"]


@pytest.fixture(scope="module")
def ndpr():
    return tp.load_market("ndpr_oxide")


def test_club_measures_and_members(ndpr):
    sc = tp.club_scenario(
        ndpr,
        "club",
        CLUB,
        floor=110_000.0,
        subsidy_strike=110_000.0,
        stockpile_release=600.0,
    )
    kinds = [type(m) for m in sc.measures]
    assert kinds[:3] == [Tariff, PriceFloor, PriceGapSubsidy]
    floor = sc.measures[1]
    assert set(floor.exempt) == set(CLUB)
    # importers are the members that consume; MYS consumes nothing in the base data
    assert "MYS" not in floor.importers
    sub = sc.measures[2]
    assert set(sub.producers) == {"USA", "MYS"}  # the members that produce
    assert sum(sub.payers.values()) == pytest.approx(1.0)
    releases = [m for m in sc.measures if isinstance(m, StockpileRelease)]
    assert sum(m.quantity for m in releases) == pytest.approx(600.0)
    assert "USA, EU, JPN and MYS" in sc.description


def test_club_floor_exempts_members_and_levies_outsiders(ndpr):
    sc = tp.club_scenario(ndpr, "club", CLUB, floor=110_000.0)
    ds = tp.solve([sc], ndpr).isel(commodity=0).sel(scenario="club")
    assert int(ds.converged) == 1
    levy, flow = ds.levy.to_pandas(), ds.trade_flow.to_pandas()
    # no levy is reported where nothing is traded
    np.testing.assert_array_equal(levy.isna().to_numpy(), (flow == 0).to_numpy())
    levy = levy.fillna(0.0)
    for imp in ("USA", "EU", "JPN"):
        for exp in CLUB:
            assert levy.loc[exp, imp] == 0.0
        assert levy.loc["CHN", imp] > 0.0
        # outsiders land exactly at the floor while the levy binds
        assert ds.landed_price.sel(exporter="CHN", importer=imp) == pytest.approx(110_000.0)
    # non-members do not apply the floor
    assert np.all(levy.loc[:, ["CHN", "KOR", "ROW"]].to_numpy() == 0.0)
    assert float(ds.levy_revenue.sum()) > 0.0


def test_club_rejects_unknown_member_and_empty_club(ndpr):
    with pytest.raises(ValueError, match="not regions"):
        tp.club_scenario(ndpr, "x", ["USA", "AUSX"], floor=1.0e5)
    with pytest.raises(ValueError, match="no measure"):
        tp.club_scenario(ndpr, "x", ["USA"], free_trade=False)
