"""The pair entries of :meth:`InstrumentBuilder.build` (``_entries``, sparse) equal the
dense construction it replaced: the coefficients written into a dense (pair, plane, cell)
array in registration order, then read plane by plane."""

from __future__ import annotations

import numpy as np
import pytest

from tradepolicy.model.instruments import ADD, _entries


def dense_reference(pair, plane, cell, value, scale, n_pairs, nn):
    """The former dense path: write, then find each pair's entries plane by plane."""
    dense = np.zeros((n_pairs, 4, nn))
    val = np.where(plane < 3, value * scale[pair], value)
    for p, k, c, v in zip(pair, plane, cell, val, strict=True):  # later replaces earlier
        dense[p, k, c] = v
    C, G = dense[:, :3], dense[:, 3]
    present = np.empty((n_pairs, 4, nn), dtype=bool)
    present[:, :3] = C != 0
    earlier = np.logical_or.accumulate(present[:, :3], axis=1)
    present[:, 3] = (G != 0) & ~earlier[:, 2]
    first = present.copy()
    first[:, 1:3] &= ~earlier[:, :2]
    pr, flat = np.nonzero(present.reshape(n_pairs, 4 * nn))
    counts = np.bincount(pr, minlength=n_pairs)
    pos = np.arange(pr.size) - np.repeat(np.cumsum(counts) - counts, counts)
    kind, at = np.divmod(flat, nn)
    coef = np.where(kind < 3, C[pr, np.minimum(kind, 2), at], 0.0)
    g = np.where(first.reshape(n_pairs, 4 * nn)[pr, flat], G[pr, at], 0.0)
    return pr, pos, at, np.minimum(kind, ADD), coef, g


@pytest.mark.parametrize("seed", range(8))
def test_entries_equal_the_dense_construction(seed) -> None:
    rng = np.random.default_rng(seed)
    n_pairs, nn = int(rng.integers(1, 40)), int(rng.integers(1, 5)) ** 2
    size = int(rng.integers(0, 6 * n_pairs))
    pair = rng.integers(0, n_pairs, size)
    plane = rng.choice(4, size, p=[0.3, 0.2, 0.2, 0.3])
    cell = rng.integers(0, nn, size)  # repeats: the same cell in several planes, duplicates
    value = np.where(rng.random(size) < 0.15, 0.0, rng.normal(size=size))
    scale = rng.uniform(0.5, 3.0, n_pairs)
    got = _entries(pair, plane, cell, value, scale, nn)
    want = dense_reference(pair, plane, cell, value, scale, n_pairs, nn)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and np.array_equal(a, b)
    g_only = (got[3] == ADD) & (got[4] == 0.0) & (got[5] != 0.0)
    assert size < 20 or g_only.any()  # slack-only cells are compared too


def test_masks_equal_pair_mask_as_the_table_grows() -> None:
    from tradepolicy.measures.base import ApplyContext
    from tradepolicy.model.instruments import InstrumentBuilder
    from tradepolicy.testing import random_market

    market = random_market(np.random.default_rng(2), n=6)
    ctx = ApplyContext(
        market=market,
        cal=market.calibration,
        builder=InstrumentBuilder(1, market.base_tariff, market.base_export_tax),
    )
    rng = np.random.default_rng(3)
    r = list(market.regions)

    def some() -> tuple[str, ...]:
        return tuple(r[i] for i in sorted(rng.choice(6, int(rng.integers(1, 4)), replace=False)))

    keys = [(some(), None if rng.random() < 0.4 else some(), some()[:1]) for _ in range(150)]
    for part in (keys[:5], keys, keys[::-1], []):  # new keys, grown table, repeats, none
        got = ctx.masks(part)
        want = [ctx.pair_mask(list(i), None if e is None else list(e), x) for i, e, x in part]
        assert got.shape == (len(part), 6, 6) and got.dtype == bool
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))
    assert len(set(keys)) > 16  # the table grew past its first size


@pytest.mark.parametrize("seed", range(6))
def test_compiled_entries_equal_the_array_operations(seed) -> None:
    """The compiled pass of ``_entries`` equals ``_entries_numpy`` (its array-operation
    reference) entry for entry, on many pairs with repeated, zero and slack-only cells."""
    from tradepolicy.model.instruments import _entries_numpy

    rng = np.random.default_rng(100 + seed)
    n_pairs, nn = int(rng.integers(50, 400)), int(rng.integers(2, 13)) ** 2
    size = int(rng.integers(10 * n_pairs, 30 * n_pairs))
    pair = rng.integers(0, n_pairs, size)
    plane = rng.choice(4, size, p=[0.3, 0.15, 0.15, 0.4])
    cell = rng.integers(0, nn, size)
    value = np.where(rng.random(size) < 0.1, 0.0, rng.normal(size=size))
    scale = np.where(rng.random(n_pairs) < 0.05, 0.0, rng.uniform(0.5, 3.0, n_pairs))
    got = _entries(pair, plane, cell, value, scale, nn)
    want = _entries_numpy(pair, plane, cell, value, scale, nn)
    assert len(got) == len(want) == 6
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert (got[3] == ADD).any() and (got[5] != 0).any()


def test_entries_of_nothing() -> None:
    empty = np.zeros(0, dtype=np.intp)
    got = _entries(empty, empty, empty, np.zeros(0), np.ones(3), 4)
    assert all(a.size == 0 for a in got)
