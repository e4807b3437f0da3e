"""Measures applied and booked a batch at a time equal the per-row reference, bit for bit.

``apply_batch`` applies the measures at each position of their scenarios by type
(:meth:`Measure.apply_rows`); ``api.build_instruments_per_row`` applies them one at a time
(:meth:`Measure.apply`), the reference. Both must give the same arrays (``np.array_equal``,
no tolerance), the same pairs per measure, the same infeasibility messages and the same
conflict errors; booking (:meth:`Measure.book_rows`) must give the same ledgers; and
``tp.solve`` the same Dataset as a solve whose measures are applied and booked one by one.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import pytest

import tradepolicy as tp
from tradepolicy import api
from tradepolicy.measures import base as mbase
from tradepolicy.measures.base import ApplyContext, BookContext, Measure, MeasureConflict
from tradepolicy.model.instruments import InstrumentBuilder, Instruments
from tradepolicy.scenario import Scenario, ScenarioSet
from tradepolicy.testing import every_measure_scenarios, random_market

#: every array of the instruments (the dataclass fields but labels, messages and caches)
ARRAYS = tuple(
    f.name
    for f in dataclasses.fields(Instruments)
    if f.name not in ("pair_labels", "infeasible", "_relative_wedge", "_access")
)


def assert_same_instruments(got, want) -> None:
    for name in ARRAYS:
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert np.array_equal(a, b), name
    assert got.pair_labels == want.pair_labels
    assert got.infeasible == want.infeasible


def pairs_by_position(lists, pair_index):
    """pair indices of measure j of scenario b (comparable across two builds)."""
    return [
        {j: pair_index[b].get(id(m), []) for j, m in enumerate(ms)} for b, ms in enumerate(lists)
    ]


@pytest.fixture(scope="module")
def market():
    return random_market(np.random.default_rng(7))


@pytest.fixture(scope="module")
def lists(market):
    out = every_measure_scenarios(np.random.default_rng(11), market, 150)
    rng = np.random.default_rng(3)
    for ms in out[::3]:  # other orders: what a measure sees of the ones before it changes
        rng.shuffle(ms)
    return [[], *out]


def test_batched_apply_equals_per_row_on_every_measure_scenarios(market, lists) -> None:
    cal = market.calibration
    got, gi = api.build_instruments(market, cal, lists)
    want, wi = api.build_instruments_per_row(market, cal, lists)
    assert got.K > 5 and (~got.available).any() and (got.levy_to_exporter).any()
    assert_same_instruments(got, want)
    assert pairs_by_position(lists, gi) == pairs_by_position(lists, wi)


def book_contexts(market, lists, **extra):
    """A maker of fresh booking contexts (empty ledgers) of ``lists`` solved on ``market``."""
    cal = market.calibration
    inst, pair_index = api.build_instruments(market, cal, lists)
    st = api.solve_batch(cal, inst).state

    def ctx() -> BookContext:
        return BookContext(
            market=market,
            cal=cal,
            inst=inst,
            state=st,
            pair_index=pair_index,
            ledger=api.welfare.generic_parts(cal, inst, st),
            flows={k: np.zeros_like(st.X) for k in ("quota_rent", "diversification_shadow_price")},
            regional={k: np.zeros_like(st.p) for k in ("public_purchases", "stock_change")},
            extra=extra,
        )

    return ctx


def test_batched_book_equals_per_row(market, lists) -> None:
    ctx = book_contexts(market, lists, measures=lists)
    batched, single = ctx(), ctx()
    mbase.book_batch(batched, lists)
    for b, ms in enumerate(lists):
        for m in ms:
            m.book(single, b)
    for part in ("ledger", "flows", "regional"):
        for k, v in getattr(single, part).items():
            assert np.array_equal(getattr(batched, part)[k], v, equal_nan=True), (part, k)
    assert np.abs(batched.ledger["quota_rent_income"]).sum() > 0
    assert np.abs(batched.flows["diversification_shadow_price"]).sum() > 0


# -- conflicts -------------------------------------------------------------------------------
def _conflicting(market) -> list[list[Measure]]:
    r = market.regions
    T, F = tp.measures.Tariff, tp.measures.PriceFloor
    TRQ, S = tp.measures.TariffRateQuota, tp.measures.PriceGapSubsidy
    return [
        [T(importers=[r[0]], rate=0.1)],
        # a second tariff on a shared pair (the first shared cell is named)
        [T(importers=[r[1], r[0]], rate=0.1), T(importers=[r[0]], exporters=[r[2]], rate=0.2)],
        # a tariff-rate quota on a pair a tariff set, after a measure that does not claim
        [
            T(importers=[r[3]], exporters=[r[4]], rate=0.1),
            tp.measures.SupplyShock(region=r[1], fraction=0.1),
            TRQ(importers=[r[3]], quantity=1.0, in_rate=0.0, out_rate=0.3),
        ],
        # floors combine: the highest floor wins; same level, other cap: refused
        [F(importers=[r[0]], floor=1.0), F(importers=[r[0], r[1]], floor=2.0)],
        [F(importers=[r[0]], floor=1.0), F(importers=[r[0]], floor=1.0, levy_cap=0.1)],
        [F(importers=[r[0]], floor=3.0), F(importers=[r[0]], floor=1.0)],
        # two subsidies on one producer; the scenario after it is unaffected
        [S(producers=[r[0], r[1]], strike=1.0), S(producers=[r[1]], strike=2.0)],
        [T(importers=[r[5]], rate=0.2), T(importers=[r[6]], rate=0.3)],
    ]


def test_conflicts_give_the_per_row_errors(market) -> None:
    cal = market.calibration
    lists = _conflicting(market)
    bld = InstrumentBuilder(len(lists), market.base_tariff, market.base_export_tax)
    ctx = ApplyContext(market=market, cal=cal, builder=bld)
    mbase.apply_batch(ctx, lists)
    want = {}
    for b, ms in enumerate(lists):
        problems = mbase.conflict_problems(market, ms)
        if problems:
            want[b] = problems[0]
    assert set(want) == {1, 2, 4, 6}
    assert {b: (f"measure[{j}]", msg) for b, (j, msg) in ctx.errors.items()} == want
    # the scenarios without a conflict are written as alone
    ok = [ms for b, ms in enumerate(lists) if b not in want]
    got, _ = api.build_instruments(market, cal, ok)
    ref, _ = api.build_instruments_per_row(market, cal, ok)
    assert_same_instruments(got, ref)
    assert got.floor[1].max() == 2.0 and got.floor[2].max() == 3.0  # the highest floor
    with pytest.raises(MeasureConflict) as err:
        api.build_instruments(market, cal, lists)
    assert str(err.value) == want[1][1]  # the first scenario's conflict, as before


# -- a measure registered with per-row methods only -------------------------------------------
@mbase.register
class _Royalty(Measure):
    """A test measure: a supply levy written and booked per row only."""

    type: Literal["_test_royalty"] = "_test_royalty"
    exporter: str
    rate: float

    region_fields = ("exporter",)

    def apply(self, ctx: ApplyContext, b: int) -> None:
        cells = np.zeros(ctx.builder.supply_mult.shape[1], dtype=bool)
        cells[ctx.idx(self.exporter)] = True
        ctx.claim(b, "royalty", cells, "one royalty per producer")
        ctx.builder.supply_mult[b][cells] *= 1.0 - self.rate

    def book(self, ctx: BookContext, b: int) -> None:
        ctx.add("export_tax_revenue_change", b, self.exporter, 1.0)


CALLS: list[int] = []


class _SubQuota(tp.measures.ImportQuota):
    """A subclass overriding the per-row apply: the batch must use it, not the parent's."""

    def apply(self, ctx: ApplyContext, b: int) -> None:
        CALLS.append(b)
        super().apply(ctx, b)
        ctx.builder.demand_mult[b] *= 2.0


def test_a_per_row_measure_works_inside_a_batch(market, lists) -> None:
    r = market.regions
    extra = [
        [_Royalty(exporter=r[b % 12], rate=0.05), *ms]
        if b % 2
        else [*ms, _SubQuota(importers=[r[b % 12]], quantity=1.0)]
        for b, ms in enumerate(lists[1:40], start=1)
    ]
    mixed = [[], *extra]
    cal = market.calibration
    CALLS.clear()
    got, gi = api.build_instruments(market, cal, mixed)
    assert sorted(CALLS) == list(range(2, 40, 2))  # the subclass's own apply, in every row it is in
    want, wi = api.build_instruments_per_row(market, cal, mixed)
    assert_same_instruments(got, want)
    assert pairs_by_position(mixed, gi) == pairs_by_position(mixed, wi)
    # its conflicts are found and worded as alone
    clash = [
        [_Royalty(exporter=r[0], rate=0.1), tp.measures.Tariff(importers=[r[1]], rate=0.1)],
        [_Royalty(exporter=r[0], rate=0.1), _Royalty(exporter=r[0], rate=0.2)],
    ]
    bld = InstrumentBuilder(2, market.base_tariff, market.base_export_tax)
    ctx = ApplyContext(market=market, cal=cal, builder=bld)
    mbase.apply_batch(ctx, clash)
    assert list(ctx.errors) == [1]
    assert [(f"measure[{ctx.errors[1][0]}]", ctx.errors[1][1])] == mbase.conflict_problems(
        market, clash[1]
    )
    # and it books inside the batch, in a solve
    scen = [Scenario(name=f"s{b}", measures=ms) for b, ms in enumerate(extra[:6])]
    ds = tp.solve(ScenarioSet(market=market, scenarios=scen))
    assert ds.converged.values.sum() >= 5
    got_x = ds.export_tax_revenue_change.sel(scenario="s0", region=r[1]).item()
    assert got_x == pytest.approx(1.0, abs=1e-6) or not ds.converged.values[1, 0]


# -- the whole solve ---------------------------------------------------------------------------
def test_solve_equals_the_per_row_pipeline(market, lists, monkeypatch) -> None:
    scen = [Scenario(name=f"s{b}", measures=ms) for b, ms in enumerate(lists[1:60])]
    fast = tp.solve(ScenarioSet(market=market, scenarios=scen), draws=2, seed=4)

    def per_row_book(ctx, measure_lists):
        for b, ms in enumerate(measure_lists):
            for m in ms:
                m.book(ctx, b)

    monkeypatch.setattr(api, "build_instruments", api.build_instruments_per_row)
    monkeypatch.setattr(api.welfare, "book_measures", per_row_book)
    monkeypatch.setattr(ScenarioSet, "take_inputs", lambda self: None)
    slow = tp.solve(ScenarioSet(market=market, scenarios=scen), draws=2, seed=4)
    assert set(fast.data_vars) == set(slow.data_vars)
    for name in fast.data_vars:
        a, b = fast[name].values, slow[name].values
        if a.dtype.kind == "f":
            assert np.array_equal(a, b, equal_nan=True), name
        else:
            assert (a == b).all(), name
    for key in set(fast.attrs) - {"history", "date_created"}:
        assert str(fast.attrs[key]) == str(slow.attrs[key]), key


def test_batched_offtake_booking_equals_per_row(market) -> None:
    """Offtakes of one to four sellers (one naming a seller twice), several buyers, resold or
    stockpiled: booked a batch at a time as one at a time, bit for bit."""
    r = market.regions
    Off = tp.measures.Offtake
    rng = np.random.default_rng(5)
    lists: list[list[Measure]] = [[]]
    for b in range(60):
        k = 1 + b % 4
        sellers = [r[i] for i in rng.choice(len(r), size=k, replace=False)]
        if b % 10 == 7:
            sellers = [sellers[0], *sellers]  # a seller named twice
        buyers = [r[i] for i in rng.choice(len(r), size=1 + b % 3, replace=False)]
        shares = rng.dirichlet(np.ones(len(buyers)))
        lists.append(
            [
                Off(
                    sellers=sellers,
                    buyers=dict(zip(buyers, shares.tolist(), strict=True)),
                    volume=float(rng.uniform(0.5, 3.0)),
                    price=float(rng.uniform(0.8, 1.5)),
                    disposition="stockpile" if b % 2 else "resell",
                )
            ]
        )
    ctx = book_contexts(market, lists)
    batched, single = ctx(), ctx()
    mbase.book_batch(batched, lists)
    for b, ms in enumerate(lists):
        for m in ms:
            m.book(single, b)
    for part in ("ledger", "regional"):
        for k, v in getattr(single, part).items():
            assert np.array_equal(getattr(batched, part)[k], v, equal_nan=True), (part, k)
    assert np.abs(batched.ledger["offtake_cost"]).sum() > 0
    assert np.abs(batched.regional["stock_change"]).sum() > 0
