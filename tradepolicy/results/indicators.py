"""Dependency indicators and validity flags (docs/model.md), on solved arrays (no labels).

Bloc dependence is the G7 question: the largest share of the bloc's total use that comes from
one origin outside the bloc. Members' supply to each other is not dependence, and an aggregate
region (``ROW``) is never reported as a single supplier; its share is reported beside the
figure as "unattributed".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: validity thresholds (docs/model.md): beyond them a result is outside what the model represents
PRICE_RATIO_LIMIT = 3.0  # a price more than ×3 (or below a third of) its base
VARIETY_LOSS_SHARE = 0.05  # a variety that held at least 5% of the importer's base use ...
VARIETY_LOSS_LIMIT = 0.95  # ... and lost at least 95% of its volume
OUTPUT_RATIO_LIMIT = 2.0  # an origin's output more than doubled in one equilibrium

#: bit of each validity flag (``validity_flag`` carries their sum per region)
FLAG_PRICE = 1
FLAG_VARIETY = 2
FLAG_OUTPUT = 4
FLAG_MEANINGS = {
    FLAG_PRICE: "price_beyond_3x_base",
    FLAG_VARIETY: "variety_nearly_lost",
    FLAG_OUTPUT: "output_beyond_plausible_capacity",
}


@dataclass(frozen=True)
class BlocDependency:
    """Arrays of one batch (B rows)."""

    share: np.ndarray  # (B,) largest non-member, non-aggregate origin's share of bloc use
    top: np.ndarray  # (B,) index of that origin (-1 when none)
    aggregate_share: np.ndarray  # (B,) share of aggregate non-member origins (unattributed)


def bloc_dependency(X: np.ndarray, members: np.ndarray, aggregate: np.ndarray) -> BlocDependency:
    """Dependence of a bloc on its largest single outside supplier.

    ``max_o Σ_{d∈B} X_od / Σ_{d∈B} C_d`` over origins ``o`` outside the bloc that are not
    aggregates, with ``C_d = Σ_o X_od`` the total use of ``d`` (own production included).

    Parameters
    ----------
    X
        Flows (B, N exporter, N importer).
    members, aggregate
        Boolean masks (N,) of the bloc's regions and of aggregate regions.
    """
    B = X.shape[0]
    to_bloc = X[:, :, members]
    use = to_bloc.sum(axis=(1, 2))
    from_origin = to_bloc.sum(axis=2)  # (B, N)
    outside = ~members & ~aggregate
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = from_origin / use[:, None]
    if not members.any() or not outside.any():
        nan = np.full(B, np.nan)
        agg = np.where(use > 0, shares[:, ~members & aggregate].sum(axis=1), np.nan)
        return BlocDependency(nan, np.full(B, -1), agg if members.any() else nan)
    cand = np.where(outside[None, :], np.nan_to_num(shares, nan=-np.inf), -np.inf)
    top = np.argmax(cand, axis=1)
    share = cand[np.arange(B), top]
    ok = use > 0
    share = np.where(ok, np.maximum(share, 0.0), np.nan)
    top = np.where(ok & (share > 0), top, -1)
    agg = np.where(ok, shares[:, ~members & aggregate].sum(axis=1), np.nan)
    return BlocDependency(share, top, agg)


def validity_flags(
    p: np.ndarray,
    p0: np.ndarray,
    P: np.ndarray,
    P0: np.ndarray,
    X: np.ndarray,
    X0: np.ndarray,
    S: np.ndarray,
    S0: np.ndarray,
) -> np.ndarray:
    """Bit flags (B, N) of results outside what the model can represent, per region.

    - :data:`FLAG_PRICE`: the region's producer or consumer price is more than
      :data:`PRICE_RATIO_LIMIT` times its base, or below its base divided by that;
    - :data:`FLAG_VARIETY`: as importer, a variety that held at least
      :data:`VARIETY_LOSS_SHARE` of its base use lost :data:`VARIETY_LOSS_LIMIT` of its volume
      (CES welfare of a lost variety grows without bound);
    - :data:`FLAG_OUTPUT`: as producer, output above :data:`OUTPUT_RATIO_LIMIT` times base.

    ``p0, P0, S0`` are (N,) or (B, N) baselines and ``X0`` (N, N) or (B, N, N).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        rp = p / p0
        rP = P / P0
        price = np.zeros(p.shape, dtype=bool)
        for r in (rp, rP):
            price |= np.isfinite(r) & ((r > PRICE_RATIO_LIMIT) | (r < 1.0 / PRICE_RATIO_LIMIT))
        use0 = X0.sum(axis=-2)  # (…, N importer)
        share0 = X0 / np.where(use0 > 0, use0, np.inf)[..., None, :]
        lost = (share0 >= VARIETY_LOSS_SHARE) & (X <= (1.0 - VARIETY_LOSS_LIMIT) * X0)
        variety = lost.any(axis=-2)
        output = (S0 > 0) & (S > OUTPUT_RATIO_LIMIT * S0)
    flags = np.zeros(p.shape, dtype=np.int16)
    flags |= np.where(price, FLAG_PRICE, 0).astype(np.int16)
    flags |= np.where(variety, FLAG_VARIETY, 0).astype(np.int16)
    flags |= np.where(output, FLAG_OUTPUT, 0).astype(np.int16)
    return flags
