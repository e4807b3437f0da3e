"""Pathway measures on projects: capex_grant, loan_guarantee, public_equity, project_terms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from tradepolicy.measures import (
    MEASURES,
    CapexGrant,
    LoanGuarantee,
    Measure,
    Offtake,
    PriceFloor,
    PriceGapSubsidy,
    PublicEquity,
)
from tradepolicy.pathway.investment import Terms, project_terms, stack_terms

USA_PROJECT = {
    "project": "White Mesa",
    "region": "USA",
    "stage": "ree_ndpr_oxide",
    "capacity": 6000.0,
    "capex": 4.1e8,
}
AUS_PROJECT = {**USA_PROJECT, "project": "Nolans", "region": "AUS", "capacity": 4440.0}


def _fields(exc: ValidationError) -> set[str]:
    return {".".join(map(str, e["loc"])) for e in exc.errors()}


def test_pathway_only_flag() -> None:
    assert Measure.pathway_only is False
    assert {t for t, cls in MEASURES.items() if cls.pathway_only} == {
        "capex_grant",
        "loan_guarantee",
        "public_equity",
        "stockpile_policy",  # a stock run over years (docs/risk.md)
    }


@pytest.mark.parametrize(
    ("cls", "kw", "field"),
    [
        (CapexGrant, {"share": 1.5, "payers": {"USA": 1.0}}, "share"),
        (CapexGrant, {"share": 0.0, "payers": {"USA": 1.0}}, "share"),
        (CapexGrant, {"amount": -5.0, "payers": {"USA": 1.0}}, "amount"),
        (CapexGrant, {"share": 0.2, "payers": {"USA": 0.5}}, "payers"),
        (CapexGrant, {"share": 0.2, "payers": {"USA": 1.0}, "regions": []}, "regions"),
        (CapexGrant, {"share": 0.2, "payers": {"USA": 1.0}, "max_capacity": 0}, "max_capacity"),
        (LoanGuarantee, {"coverage": 1.2, "payers": {"USA": 1.0}}, "coverage"),
        (LoanGuarantee, {"coverage": 0.5, "fee": -0.01, "payers": {"USA": 1.0}}, "fee"),
        (LoanGuarantee, {"coverage": 0.5}, "payers"),
        (PublicEquity, {"share": 0.0, "payers": {"USA": 1.0}}, "share"),
        (PublicEquity, {"share": 0.3, "payers": {"USA": 1.0}, "sector": "x"}, "sector"),
    ],
)
def test_validation_errors_name_the_field(cls, kw, field) -> None:
    with pytest.raises(ValidationError) as err:
        cls(**kw)
    assert field in _fields(err.value), err.value


def test_a_grant_needs_exactly_one_of_share_or_amount() -> None:
    for kw in ({}, {"share": 0.2, "amount": 1e6}):
        with pytest.raises(ValidationError, match=r"exactly one of share .* or amount"):
            CapexGrant(payers={"USA": 1.0}, **kw)


def test_check_names_unknown_regions(toy_market) -> None:
    g = CapexGrant(share=0.2, payers={"XXX": 1.0}, regions=["USA", "YYY"])
    problems = g.check(toy_market)
    assert [f for f, _ in problems] == ["payers", "regions"]
    assert "unknown region 'XXX'" in problems[0][1] and "allowed: CHN" in problems[0][1]
    assert LoanGuarantee(coverage=0.5, payers={"USA": 1.0}).check(toy_market) == []
    rows = CapexGrant.check_rows(toy_market, [CapexGrant(share=0.2, payers={"USA": 1.0}), g])
    assert rows == [[], problems]


def test_describe_in_plain_words(toy_market) -> None:
    g = CapexGrant(share=0.25, payers={"USA": 0.6, "EU": 0.4}, regions=["USA", "AUS"])
    text = g.describe(toy_market)
    assert text.startswith("A capex grant of 25% of the capex of projects in USA and AUS")
    assert "paid by USA (60%) and EU (40%)" in text
    amount = CapexGrant(amount=5e7, payers={"USA": 1.0}, projects=["White Mesa"], max_capacity=5e3)
    text = amount.describe(toy_market)
    assert "50,000,000" in text and "White Mesa" in text and "5,000 t/yr" in text
    lg = LoanGuarantee(coverage=0.8, fee=0.01, payers={"USA": 1.0}, stage="ree_ndpr_oxide")
    assert lg.describe(toy_market) == (
        "A loan guarantee of 80% of the debt of projects at the ree_ndpr_oxide stage for an "
        "annual fee of 1%; paid by USA"
    )
    assert PublicEquity(share=0.3, payers={"EU": 1.0}).describe(toy_market) == (
        "Public equity of 30% in projects; paid by EU"
    )


def test_they_write_nothing_into_the_static_instruments(toy_market) -> None:
    from tradepolicy.api import build_instruments

    ms = [
        CapexGrant(share=0.2, payers={"USA": 1.0}),
        LoanGuarantee(coverage=0.5, payers={"USA": 1.0}),
        PublicEquity(share=0.3, payers={"USA": 1.0}),
    ]
    cal = toy_market.calibration
    with_them = build_instruments(toy_market, cal, [[], ms])[0]
    for name, value in vars(with_them).items():
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == 2:
            np.testing.assert_array_equal(value[0], value[1], err_msg=name)


def test_applies_to_reads_region_project_and_stage() -> None:
    assert CapexGrant(share=0.2, payers={"USA": 1.0}).applies_to(USA_PROJECT)
    assert CapexGrant(share=0.2, payers={"USA": 1.0}, regions=["USA"]).applies_to(USA_PROJECT)
    assert not CapexGrant(share=0.2, payers={"USA": 1.0}, regions=["EU"]).applies_to(USA_PROJECT)
    named = CapexGrant(share=0.2, payers={"USA": 1.0}, projects=["Nolans"])
    assert named.applies_to(AUS_PROJECT) and not named.applies_to(USA_PROJECT)
    staged = PublicEquity(share=0.2, payers={"USA": 1.0}, stage="ree_ndfeb_magnet")
    assert not staged.applies_to(USA_PROJECT)
    assert staged.applies_to({**USA_PROJECT, "stage": "ree_ndfeb_magnet"})


def test_project_terms_pick_the_measures_a_project_faces() -> None:
    measures = [
        PriceFloor(importers=["USA", "EU"], floor=110_000.0, start_year=2026),  # 0
        PriceFloor(importers=["EU"], floor=150_000.0),  # 1: not for a US producer
        PriceGapSubsidy(
            producers=["USA"],
            strike=90_000.0,
            covered_volume=3000.0,
            payers={"USA": 0.5, "EU": 0.5},
            end_year=2035,
        ),  # 2
        Offtake(buyers={"USA": 1.0}, sellers=["USA"], volume=1500.0, price=100_000.0),  # 3
        Offtake(buyers={"EU": 1.0}, sellers=["USA", "AUS"], volume=1500.0, price=80_000.0),  # 4
        CapexGrant(share=0.2, payers={"USA": 1.0}, regions=["USA"]),  # 5
        CapexGrant(amount=1e7, payers={"EU": 1.0}),  # 6
        LoanGuarantee(coverage=0.6, fee=0.01, payers={"USA": 1.0}),  # 7
        LoanGuarantee(coverage=0.8, fee=0.02, payers={"EU": 1.0}, regions=["AUS"]),  # 8
        PublicEquity(share=0.3, payers={"USA": 1.0}, stage="ree_ndfeb_magnet"),  # 9
    ]
    got = project_terms(measures, USA_PROJECT, 2027)
    t = got.terms
    assert t.floor == 110_000.0 and math.isnan(t.floor_end)
    assert (t.strike, t.covered_share, t.subsidy_end) == (90_000.0, 0.5, 2035.0)
    assert math.isnan(t.upside_threshold) and t.upside_share == 0.0
    assert t.offtake_share == pytest.approx(3000.0 / 6000.0)
    assert t.offtake_price == pytest.approx(90_000.0)  # volume-weighted
    assert (t.grant_share, t.grant_amount) == (0.2, 1e7)
    assert (t.guarantee_coverage, t.guarantee_fee) == (0.6, 0.01)
    assert t.equity_share == 0.0
    assert got.measures == {
        "floor": [0],
        "subsidy": [2],
        "offtake": [3, 4],
        "grant": [5, 6],
        "guarantee": [7],
    }
    assert got.payers["floor"] == {"USA": 0.5, "EU": 0.5}
    assert got.payers["subsidy"] == {"USA": 0.5, "EU": 0.5}
    assert got.payers["offtake"] == {"USA": 0.5, "EU": 0.5}
    grant_usa = 0.2 * USA_PROJECT["capex"]
    assert got.payers["grant"] == pytest.approx(
        {"USA": grant_usa / (grant_usa + 1e7), "EU": 1e7 / (grant_usa + 1e7)}
    )
    # before the floor starts, and for another region
    assert project_terms(measures, USA_PROJECT, 2025).terms.floor == 0.0
    aus = project_terms(measures, AUS_PROJECT, 2027)
    assert aus.terms.floor == 0.0 and aus.terms.strike == 0.0
    assert aus.terms.offtake_share == pytest.approx(1500.0 / 4440.0)
    assert (aus.terms.guarantee_coverage, aus.payers["guarantee"]) == (0.8, {"EU": 1.0})
    # a collar and a two-sided contract carry their claw-back
    collar = PriceGapSubsidy(
        producers=["AUS"], strike=80.0, kind="collar", upside_threshold=120.0, upside_share=0.5
    )
    c = project_terms([collar], AUS_PROJECT, 2030).terms
    assert (c.upside_threshold, c.upside_share, c.covered_share) == (120.0, 0.5, 1.0)
    two = PriceGapSubsidy(producers=["AUS"], strike=80.0, kind="two_sided")
    assert project_terms([two], AUS_PROJECT, 2030).terms.upside_threshold == 80.0


def test_no_measures_give_no_terms_and_terms_stack() -> None:
    got = project_terms([], USA_PROJECT, 2030)
    assert got.terms == Terms() and got.measures == {} and got.payers == {}
    big = Offtake(buyers={"USA": 1.0}, sellers=["USA"], volume=1e6, price=1.0)
    stacked = stack_terms(
        [project_terms([big], USA_PROJECT, 2030).terms, project_terms([], AUS_PROJECT, 2030).terms]
    )
    assert stacked.offtake_share.tolist() == [1.0, 0.0]  # capped at the capacity
    assert stacked.shape() == (2,)
