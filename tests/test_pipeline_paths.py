"""Faster paths of the whole pipeline equal the per-scenario formulas they replace, bit for bit.

* the share of stock releases sold, for many rows at once (``sold_shares``) equals
  ``sold_share`` row by row, also where releases exceed what users buy;
* booking reads the quota masks applying found (``remembered_masks``), equal to the masks of
  ``mask_keys``, and the caps and pairs it kept; without them (a pair index that holds
  none) booking finds the same;
* Monte Carlo draws book with the central groups (``PairIndex.tile``);
* validation still refuses, with the file, field and allowed values, what it refused before.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import tradepolicy as tp
from tradepolicy import api
from tradepolicy.errors import InputError
from tradepolicy.measures import base as mbase
from tradepolicy.measures.base import BookContext
from tradepolicy.measures.quotas import ExportQuota, ImportQuota, TariffRateQuota
from tradepolicy.measures.stocks import StockpileRelease, sold_share, sold_shares
from tradepolicy.scenario import Scenario, ScenarioSet
from tradepolicy.testing import every_measure_scenarios, random_market


@pytest.fixture(scope="module")
def market():
    return random_market(np.random.default_rng(21))


def _book_context(market, lists, pair_index=None):
    cal = market.calibration
    inst, pi = api.build_instruments(market, cal, lists)
    st = api.solve_batch(cal, inst).state
    return BookContext(
        market=market,
        cal=cal,
        inst=inst,
        state=st,
        pair_index=pi if pair_index is None else pair_index(pi),
        ledger=api.welfare.generic_parts(cal, inst, st),
        flows={k: np.zeros_like(st.X) for k in ("quota_rent", "diversification_shadow_price")},
        regional={k: np.zeros_like(st.p) for k in ("public_purchases", "stock_change")},
        extra={"measures": lists},
    )


def test_sold_shares_equal_sold_share_row_by_row(market) -> None:
    rng = np.random.default_rng(5)
    lists = [[], *every_measure_scenarios(rng, market, 80)]
    use = market.flows.sum(axis=0)
    regions = market.regions
    # more releases, some of them near the region's whole use: users buy less than released
    for b, ms in enumerate(lists[1:], start=1):
        if b % 2:
            d = int(rng.integers(len(regions)))
            if use[d] > 0:
                ms.insert(
                    int(rng.integers(len(ms) + 1)),
                    StockpileRelease(region=regions[d], quantity=float(use[d]) * 0.99),
                )
    ctx = _book_context(market, lists)
    st, inst = ctx.state, ctx.inst
    rows, d = np.nonzero(np.ones_like(st.p, dtype=bool))
    planned = inst.composite_purchase[rows, d]
    realised = st.A[rows, d] - st.D[rows, d]
    got = sold_shares(ctx, rows, d, planned, realised)
    want = np.array(
        [sold_share(ctx, int(b), int(o)) for b, o in zip(rows, d, strict=True)], dtype=float
    )
    assert np.array_equal(got, want)
    assert (want < 1.0).any() and (want == 1.0).any()  # some releases were not all sold


@pytest.mark.parametrize("cls", [ImportQuota, TariffRateQuota, ExportQuota])
def test_remembered_masks_equal_the_masks_of_their_keys(market, cls) -> None:
    lists = [[], *every_measure_scenarios(np.random.default_rng(8), market, 60)]
    ctx = _book_context(market, lists)
    ms = [m for ms in lists for m in ms if type(m) is cls]
    assert len(ms) > 20
    got = ctx.remembered_masks(ms)
    assert got is not None
    assert np.array_equal(got, ctx.masks(cls.mask_keys(ctx, ms)))
    # a measure the batch did not apply has none: the caller builds the keys
    other = ms[0].model_copy(deep=True)
    assert ctx.remembered_masks([*ms[:3], other]) is None


def test_booking_without_remembered_masks_is_the_same(market) -> None:
    lists = [[], *every_measure_scenarios(np.random.default_rng(9), market, 60)]
    fast = _book_context(market, lists)
    plain = _book_context(market, lists, pair_index=lambda pi: list(pi))  # keeps no masks
    assert plain.remembered_masks([m for ms in lists for m in ms][:5]) is None
    # applying kept the caps of every quota type (which are caps, their pairs, masks)
    kept = [v[0][0] for k, v in fast.pair_index.kept.items() if k[0] == "caps"]
    assert {type(m) for m in kept} == {ImportQuota, TariffRateQuota, ExportQuota}
    mbase.book_batch(fast, lists)
    mbase.book_batch(plain, lists)
    for part in ("ledger", "flows", "regional"):
        for k, v in getattr(plain, part).items():
            assert np.array_equal(getattr(fast, part)[k], v, equal_nan=True), (part, k)
    assert np.abs(fast.ledger["quota_rent_income"]).sum() > 0


def test_validation_still_names_file_field_and_allowed_values(market) -> None:
    r = market.regions
    good = Scenario(name="ok", measures=[tp.measures.Tariff(importers=[r[0]], rate=0.1)])
    bad = Scenario(
        name="bad",
        measures=[
            tp.measures.SupplyShock(region=r[1], fraction=0.1),
            tp.measures.Tariff(importers=["XXX"], rate=0.1),
        ],
    )
    with pytest.raises(InputError) as exc:
        ScenarioSet(market=market, scenarios=[good, bad])
    text = str(exc.value)
    assert "scenario[1].measure[1].importers" in text
    assert "unknown region 'XXX'" in text and f"allowed: {', '.join(r)}" in text
    assert "[in scenario 'bad']" in text
    # a static set refuses years (and names the field), measure by measure
    dated = Scenario(
        name="dated",
        measures=[
            tp.measures.Tariff(importers=[r[0]], rate=0.1),
            tp.measures.Tariff(importers=[r[1]], rate=0.1, end_year=2030),
        ],
    )
    with pytest.raises(InputError) as exc:
        ScenarioSet(market=market, scenarios=[good, dated])
    assert "scenario[1].measure[1].end_year" in str(exc.value)
    assert "scenario[0]" not in str(exc.value)


def test_tiled_pair_index_has_the_groups_of_the_repeated_lists(market) -> None:
    lists = [[], *every_measure_scenarios(np.random.default_rng(12), market, 25)]
    _, pi = api.build_instruments(market, market.calibration, lists)
    tiled = pi.tile(3)
    assert list(tiled) == list(pi) * 3
    assert tiled.n_measures == 3 * pi.n_measures and tiled.mask_rows is pi.mask_rows
    want = mbase._group_all(lists * 3)
    assert len(tiled.groups) == len(want)
    for (j, c, rows, ms), (j2, c2, rows2, ms2) in zip(tiled.groups, want, strict=True):
        assert (j, c, rows) == (j2, c2, rows2)
        assert all(a is b for a, b in zip(ms, ms2, strict=True)) and len(ms) == len(ms2)
    assert mbase._groups_for(tiled, lists * 3) is tiled.groups


def test_markets_attribute_is_written_as_before(market) -> None:
    """The ``markets`` provenance attribute, kept per market object, equals json.dumps of
    the markets' definitions (one market, several, and again from the memo)."""
    import json

    from tradepolicy.results.builder import _markets_json, provenance_attrs

    other = tp.load_market("ndpr_oxide")
    assert other.id != market.id
    for ms in ([market], [other, market], [market, other], [market]):
        want = json.dumps({m.id: m.to_dict() for m in ms}, sort_keys=True)
        assert _markets_json(ms) == want
        assert provenance_attrs(ms, {}, "levels")["markets"] == want


def _dataset_reference(market, names, variables, attrs):
    """The results Dataset as xarray's public constructor builds it (every array checked,
    the coordinates and indexes made for this Dataset alone)."""
    import xarray as xr

    from tradepolicy.results.builder import FLAGS, _units, result_fields

    fields = result_fields()
    data_vars = {}
    for name, arr in variables.items():
        meta = fields[name]
        a = np.expand_dims(np.asarray(arr), 1)
        var_attrs = {"long_name": meta["long_name"], "description": meta["description"]}
        if a.dtype.kind != "O":
            var_attrs = {"units": _units(meta["units"], market), **var_attrs}
        var_attrs.update(FLAGS.get(name, {}))
        data_vars[name] = (tuple(meta["dims"].split()), a, var_attrs)
    regions = np.array(list(market.regions), dtype=object)
    coords = {
        "scenario": ("scenario", np.array(names, dtype=object)),
        "commodity": ("commodity", np.array([market.id], dtype=object), {"long_name": "market id"}),
        "region": ("region", regions),
        "exporter": ("exporter", regions.copy()),
        "importer": ("importer", regions.copy()),
        "commodity_name": (
            "commodity",
            np.array([market.commodity], dtype=object),
            {"long_name": "commodity"},
        ),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def test_dataset_equals_the_public_constructor_and_stands_alone(market, monkeypatch) -> None:
    """``build_dataset`` (the market's axes built once, the Dataset put together directly)
    gives the Dataset xarray's constructor gives, variable order included; Datasets of the
    same market share no attributes; arrays that do not fit the axes are refused by xarray."""
    import xarray as xr

    from tradepolicy.results import builder

    lists = every_measure_scenarios(np.random.default_rng(5), market, 6)
    seen = {}
    real = builder.build_dataset

    def spy(*args):
        seen["args"] = args
        return real(*args)

    monkeypatch.setattr(api, "build_dataset", spy)
    scenarios = [Scenario(name=f"s{i}", measures=ms) for i, ms in enumerate(lists)]
    first = tp.solve(ScenarioSet(market=market, scenarios=scenarios))
    mkt, names, variables, attrs = seen["args"]
    want = _dataset_reference(mkt, names, variables, attrs)
    for got in (first, real(mkt, names, variables, attrs)):  # the second from the memo
        xr.testing.assert_identical(got, want)
        assert list(got.variables) == list(want.variables)
        assert got.sizes == want.sizes and set(got.xindexes) == set(want.xindexes)
    other = real(mkt, names, variables, attrs)
    other["region"].attrs["note"] = "changed"
    other["commodity_name"].attrs["long_name"] = "changed"
    assert "note" not in first["region"].attrs
    assert first["commodity_name"].attrs["long_name"] == "commodity"
    bad = dict(variables, production=variables["production"][:, :-1])
    with pytest.raises(ValueError, match="region"):
        real(mkt, names, bad, attrs)


def test_masks_found_while_checking_give_the_instruments_of_the_reference(market) -> None:
    """Validation finds each type's pair masks while checking its measures
    (``prepare_pair_masks``) and applying reads them: the instruments, the pairs of each
    measure and the masks kept for booking equal those of applying without them and of
    the per-row reference, bit for bit; also where a scenario with a bad measure is left
    out (the groups holding it are not the ones checked) and for a notebook subclass that
    applies one row at a time."""
    from test_batch_measures import assert_same_instruments, pairs_by_position

    from tradepolicy.measures.base import ReadOnCheck
    from tradepolicy.measures.trade import Tariff

    class OneByOneTariff(Tariff):  # per-row apply only: never reads prepared masks
        def apply(self, ctx, b):
            super().apply(ctx, b)

    lists = every_measure_scenarios(np.random.default_rng(31), market, 40)
    rng = np.random.default_rng(2)
    for ms in lists[::4]:
        rng.shuffle(ms)
    lists[5].append(OneByOneTariff(importers=[market.regions[0]], rate=0.1))
    seen = {}
    real = mbase.apply_batch

    def spy(ctx, measure_lists, groups=None):
        seen["ctx"], seen["lists"] = ctx, [list(ms) for ms in measure_lists]
        return real(ctx, measure_lists, groups)

    cal = market.calibration
    for bad in (None, 7):
        scen = [Scenario(name=f"s{i}", measures=ms) for i, ms in enumerate(lists)]
        if bad is not None:  # an unknown region: scenario 7 is checked but not applied
            bad_tariff = Tariff(importers=["NOWHERE"], rate=0.1)
            scen[bad] = Scenario(name=f"s{bad}", measures=[*lists[bad], bad_tariff])
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("tradepolicy.scenario.apply_batch", spy)
            if bad is None:
                inst, pi = ScenarioSet(market=market, scenarios=scen).take_inputs()
            else:
                with pytest.raises(InputError, match="NOWHERE"):
                    ScenarioSet(market=market, scenarios=scen)
        ctx, applied = seen["ctx"], seen["lists"]
        prepared = ctx.prepared
        assert isinstance(prepared, ReadOnCheck) and prepared.by_type and prepared.spans
        sent = pickle.loads(pickle.dumps(prepared))  # (ids mean nothing in another process)
        assert not (sent.by_type or sent.columns or sent.spans)
        assert OneByOneTariff not in prepared.by_type and ExportQuota in prepared.by_type
        assert (Tariff in prepared.by_type) == (bad is None)  # (none for a type with a problem)
        for ms, cls, _, _ in prepared.spans.values():  # keys read back from the mask table
            if cls in prepared.by_type:
                keys, table, rows = prepared.get(cls, ms, market)
                assert keys == cls.pair_keys(ctx, ms)
                assert rows.tolist() == [table.ids[k] for k in keys]
        assert applied[bad + 1 if bad is not None else 0] == []
        want, wi = api.build_instruments_per_row(market, cal, applied)
        plain, plain_i = api.build_instruments(market, cal, applied)
        assert_same_instruments(plain, want)
        if bad is not None:
            inst, pi = ctx.builder.build(), None
        assert_same_instruments(inst, want)
        if pi is None:
            continue
        assert pairs_by_position(applied, pi) == pairs_by_position(applied, wi)
        book = BookContext(market, cal, inst, None, pi)
        for cls in (ImportQuota, TariffRateQuota, ExportQuota):
            ms = [m for row in applied for m in row if type(m) is cls]
            got = book.remembered_masks(ms)
            assert got is not None and len(ms) > 5
            assert np.array_equal(got, book.masks(cls.mask_keys(book, ms)))
        # booking reads the columns validation read: the ledgers of booking without them
        assert pi.prepared is prepared and plain_i.prepared is None
        books = []
        for index in (pi, plain_i):
            ctx = _book_context(market, applied, lambda _, index=index: index)
            mbase.book_batch(ctx, applied)
            books.append(ctx)
        for part in ("ledger", "flows", "regional"):
            a, b = getattr(books[0], part), getattr(books[1], part)
            assert a.keys() == b.keys()
            assert all(np.array_equal(a[k], b[k]) for k in a), part


def test_a_pickled_set_solves_as_the_original() -> None:
    """A copy of a validated set (pickled, as a sweep sends it to a worker) solves to the same
    Dataset: the instruments validation kept are keyed by the original measure objects, so
    the copy builds its own (they once lost the diversification caps' shadow prices)."""
    sset = tp.load_scenarios("ndpr_oxide")
    copy = pickle.loads(pickle.dumps(sset))
    got, want = tp.solve(copy), tp.solve(sset)
    assert float(abs(want.diversification_shadow_price).sum()) > 0  # (the test can fail)
    for name, var in want.data_vars.items():
        np.testing.assert_array_equal(got[name].values, var.values, err_msg=name)


def test_applying_and_booking_read_no_field_of_the_measures(market) -> None:
    """Validation reads each type's fields while checking (``Measure.columns``, pair keys);
    applying and booking the same measures read none of them again (diversification caps,
    price-gap subsidies and the releases' sold shares included). Without what validation read
    (``prepare_pair_masks`` doing nothing) they read the measures: the spy sees reads."""
    from tradepolicy.measures import MEASURES
    from tradepolicy.results import welfare

    lists = every_measure_scenarios(np.random.default_rng(31), market, 40)
    reads: dict[tuple[str, str], int] = {}
    on = [False]

    def during(real):
        def spy(*args, **kwargs):
            on[0] = True
            try:
                return real(*args, **kwargs)
            finally:
                on[0] = False

        return spy

    def run(mp) -> dict[tuple[str, str], int]:
        reads.clear()
        for cls in set(MEASURES.values()):
            fields = frozenset(cls.model_fields)

            def get(self, name, fields=fields, cls=cls):
                if on[0] and name in fields:
                    reads[cls.__name__, name] = reads.get((cls.__name__, name), 0) + 1
                return object.__getattribute__(self, name)

            mp.setattr(cls, "__getattribute__", get, raising=False)
        mp.setattr("tradepolicy.scenario.apply_batch", during(mbase.apply_batch))
        mp.setattr(welfare, "book_batch", during(mbase.book_batch))
        scen = [Scenario(name=f"s{i}", measures=ms) for i, ms in enumerate(lists)]
        ds = tp.solve(ScenarioSet(market=market, scenarios=scen))
        assert bool(ds.converged.all())
        return dict(reads)

    with pytest.MonkeyPatch.context() as mp:
        assert run(mp) == {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("tradepolicy.scenario.prepare_pair_masks", lambda *a: None)
        got = run(mp)
    for cls, name in [
        ("DiversificationCap", "max_share"),
        ("DiversificationCap", "importers"),
        ("PriceGapSubsidy", "strike"),
        ("PriceGapSubsidy", "producers"),
        ("StockpileRelease", "quantity"),
    ]:
        assert got.get((cls, name), 0) > 0, (cls, name)


@pytest.mark.parametrize("shape", [(7,), (4, 4)])
def test_compiled_claims_equal_the_array_operations(shape) -> None:
    """``_claim_rows`` (one compiled pass) leaves the owner array and returns the rows as
    ``_claim_rows_numpy`` does: rows with a clash untouched, cells already the measure's
    own not a clash; repeated rows (never in a batch) take the array operations."""
    rng = np.random.default_rng(5)
    mixed = 0
    for trial in range(40):
        B = 9
        owner = np.where(rng.random((B, *shape)) < 0.15, rng.integers(0, 4, (B, *shape)), -1)
        owner = owner.astype(np.int32)
        R = int(rng.integers(1, B + 1))
        rows = rng.choice(B, size=R, replace=trial % 5 == 0)
        cells = rng.random((R, *shape)) < 0.3
        j = int(rng.integers(0, 4))
        want_owner = owner.copy()
        want = mbase._claim_rows_numpy(want_owner, rows, cells, j)
        got = mbase._claim_rows(owner, rows, cells, j)
        assert got.dtype == bool and np.array_equal(got, want)
        assert np.array_equal(owner, want_owner)
        mixed += bool(0 < want.sum() < R)
    assert mixed > 10  # (rows with and without a clash)
    assert mbase._claim_pass.signatures  # (the compiled pass ran)


def test_mask_cells_and_put_cells_equal_nonzero_indexing() -> None:
    """``mask_cells`` gives ``np.nonzero``'s cells (as mask and flat cell ``o·N + d``) in its
    order, and ``put_cells`` writes what indexing with ``np.nonzero``'s three arrays writes,
    into a contiguous array (one flat index) and a strided view alike."""
    rng = np.random.default_rng(11)
    for R, N in [(0, 5), (1, 1), (6, 5), (40, 12)]:
        masks = rng.random((R, N, N)) < 0.3
        i, cell = mbase.mask_cells(masks)
        r, o, d = np.nonzero(masks)
        assert i.dtype == r.dtype and np.array_equal(i, r)
        assert np.array_equal(cell, o * N + d)
        B = R + 3
        rows = rng.permutation(B)[:R]
        values = rng.random(R)
        want = rng.random((B, N, N))
        base = want.copy()
        want[rows[r], o, d] = values[r]
        got = base.copy()
        mbase.put_cells(got, rows[i], cell, values[i])
        assert np.array_equal(got, want)
        wide = np.repeat(base, 2, axis=2)  # a strided view: written through three indexes
        view = wide[:, :, ::2]
        assert not view.flags.c_contiguous
        mbase.put_cells(view, rows[i], cell, values[i])
        assert np.array_equal(view, want) and np.array_equal(wide[:, :, 1::2], base)
        flags = np.zeros((B, N, N), dtype=bool)
        mbase.put_cells(flags, rows[i], cell, True)
        assert flags.sum() == masks.sum() and np.array_equal(flags[rows], masks)


def test_levy_parts_on_the_undertakings_rows_equal_the_whole_batch() -> None:
    """The levy parts computed on the rows with undertakings only equal the formula on
    every row, bit for bit (rows without one: all levy to importers, no rent)."""
    from types import SimpleNamespace

    from tradepolicy.results.welfare import levy_parts

    rng = np.random.default_rng(2)
    B, N = 40, 6
    st = SimpleNamespace(levy=rng.uniform(0, 2, (B, N, N)), X=rng.uniform(0, 5, (B, N, N)))
    st.p = np.zeros((B, N))
    to_exp = (rng.uniform(size=(B, N, N)) < 0.2) & (np.arange(B) % 3 == 0)[:, None, None]
    inst = SimpleNamespace(levy_to_exporter=to_exp, tariff=rng.uniform(0, 0.3, (B, N, N)))
    amount = st.levy * st.X
    margin = np.where(to_exp, amount / (1.0 + inst.tariff), 0.0)
    want = (
        np.where(to_exp, 0.0, amount).sum(axis=1),
        margin.sum(axis=2),
        (np.where(to_exp, amount, 0.0) - margin).sum(axis=1),
    )
    got = levy_parts(inst, st)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
    assert got[1].any() and not got[1][1].any()


def test_validity_flags_against_one_baseline_row_equal_the_row_per_scenario(market) -> None:
    """One baseline for the whole batch, compared by broadcasting, gives the flags of the
    baseline's rows taken for each scenario."""
    from tradepolicy.results.indicators import validity_flags

    lists = every_measure_scenarios(np.random.default_rng(8), market, 30)
    st = api.solve_batch(
        market.calibration, api.build_instruments(market, market.calibration, [[], *lists])[0]
    ).state
    base = np.zeros(len(st.p), dtype=int)
    got = validity_flags(st.p, st.p[0], st.P, st.P[0], st.X, st.X[0], st.S, st.S[0])
    want = validity_flags(st.p, st.p[base], st.P, st.P[base], st.X, st.X[base], st.S, st.S[base])
    assert np.array_equal(got, want)
    # large shocks flag something, so the comparison sees both values
    big = validity_flags(st.p * 20, st.p[0], st.P, st.P[0], st.X * 0, st.X[0], st.S, st.S[0])
    assert big.any()
