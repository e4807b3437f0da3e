"""Welfare accounting (docs/model.md): generic parts plus what each measure books.

All entries are changes from the baseline (scenario 0 of the batch), per region, in currency
per year; costs are negative in the paying region, so ``welfare_change`` is the plain sum.
"""

from __future__ import annotations

import numpy as np

from tradepolicy.measures.base import WELFARE_ENTRIES, BookContext, book_batch
from tradepolicy.model.levels import (
    consumer_surplus_change,
    producer_surplus_total,
)


def tariff_revenue(inst, st) -> np.ndarray:
    """Ad valorem tariff revenue by importer (B, N): Σ_o t_od · fob_od · X_od."""
    return np.einsum("bod,bod,bod->bd", inst.tariff, st.fob, st.X)


def export_tax_revenue(inst, st) -> np.ndarray:
    """Export tax revenue by exporter (B, N): Σ_d x_od · p_o · X_od."""
    return np.einsum("bod,bo,bod->bo", inst.export_tax, st.p, st.X)


def levy_parts(inst, st) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Levy revenue, undertaking rent and the extra tariff revenue of undertakings (B, N).

    A variable levy ``L`` per unit is revenue of the importer (``levy_revenue``). Under a
    minimum-import-price undertaking exporters raise their FOB price by ``L/(1 + t)`` so the
    landed price meets the floor: the exporter keeps that margin (``undertaking_rent``, never a
    levy) and the importer's ad valorem tariff collects ``t·L/(1 + t)`` on it.
    """
    amount = st.levy * st.X
    to_exp = inst.levy_to_exporter
    levy = amount.sum(axis=1)
    rent = np.zeros_like(st.p)
    tariff = np.zeros_like(st.p)
    if to_exp is None:
        return levy, rent, tariff
    # the undertakings' rows only: in the others every levy is the importer's revenue (the
    # same sums), and rent and extra tariff revenue are 0
    rows = np.flatnonzero(to_exp.reshape(len(to_exp), -1).any(axis=1))
    if not rows.size:
        return levy, rent, tariff
    amount, to_exp = amount[rows], to_exp[rows]
    margin = np.where(to_exp, amount / (1.0 + inst.tariff[rows]), 0.0)
    levy[rows] = np.where(to_exp, 0.0, amount).sum(axis=1)
    rent[rows] = margin.sum(axis=2)
    tariff[rows] = (np.where(to_exp, amount, 0.0) - margin).sum(axis=1)
    return levy, rent, tariff


def generic_parts(
    cal, inst, st, formulation: str = "levels", base: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Consumer and producer surplus and border revenue changes against the baseline.

    ``base`` gives each row's baseline row (default: row 0 for every row; Monte Carlo
    batches hold one baseline per draw).
    """
    B, N = st.p.shape
    base = np.zeros(B, dtype=int) if base is None else base
    out = {k: np.zeros((B, N)) for k in WELFARE_ENTRIES}
    if formulation == "levels":
        out["consumer_surplus_change"] = consumer_surplus_change(cal, inst, st)
        ps = producer_surplus_total(cal, inst, st)
        out["producer_surplus_change"] = ps - ps[base]
    else:  # GSIM-style trapezoid approximations on the linearised solution
        eta = np.broadcast_to(cal.eta, (B, N))
        eps = np.broadcast_to(cal.eps, (B, N))
        with np.errstate(invalid="ignore", divide="ignore"):
            Ph = np.where(cal.consumer, st.P / cal.P0 - 1.0, 0.0)
            ph = np.where(cal.producer, st.p / cal.p0 - 1.0, 0.0)
        E0 = np.where(cal.consumer, cal.E0, 0.0)
        out["consumer_surplus_change"] = -E0 * Ph * (1.0 - 0.5 * eta * Ph)
        R0 = np.where(cal.producer, cal.p0 * cal.S0, 0.0)
        out["producer_surplus_change"] = R0 * ph * (1.0 + 0.5 * eps * ph)
    tr = tariff_revenue(inst, st)
    out["tariff_revenue_change"] = tr - tr[base]
    levy, rent, undertaking_tariff = levy_parts(inst, st)
    out["levy_revenue"] = levy
    out["undertaking_rent"] = rent
    out["tariff_revenue_change"] += undertaking_tariff
    xr_ = export_tax_revenue(inst, st)
    out["export_tax_revenue_change"] = xr_ - xr_[base]
    return out


def book_measures(ctx: BookContext, scenario_measures: list[list]) -> None:
    """Let each measure book its own entries (rents, levies, fiscal costs), the measures of
    each type at each position of their scenarios at once (:func:`book_batch`; equal to
    booking scenario by scenario)."""
    book_batch(ctx, scenario_measures)


def total(ledger: dict[str, np.ndarray]) -> np.ndarray:
    """``welfare_change``: the plain sum of the parts."""
    out = sum(ledger[k] for k in WELFARE_ENTRIES)
    if not isinstance(out, np.ndarray):  # WELFARE_ENTRIES is not empty
        raise TypeError("the welfare ledger has no entries")
    return out
