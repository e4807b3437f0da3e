"""Welfare accounting (DESIGN §5): generic parts plus what each measure books.

All entries are changes from the baseline (scenario 0 of the batch), per region, in currency
per year; costs are negative in the paying region, so ``welfare_change`` is the plain sum.
"""

from __future__ import annotations

import numpy as np

from tradepolicy.measures.base import WELFARE_ENTRIES, BookContext
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


def levy_revenue(inst, st) -> np.ndarray:
    """Variable-levy revenue by importer, or undertaking margins by exporter (B, N)."""
    amount = st.levy * st.X
    if inst.levy_to_exporter is None or not inst.levy_to_exporter.any():
        return amount.sum(axis=1)
    to_exp = inst.levy_to_exporter
    return np.where(to_exp, 0.0, amount).sum(axis=1) + np.where(to_exp, amount, 0.0).sum(axis=2)


def generic_parts(cal, inst, st, formulation: str = "levels") -> dict[str, np.ndarray]:
    """Consumer and producer surplus and border revenue changes against scenario 0."""
    B, N = st.p.shape
    out = {k: np.zeros((B, N)) for k in WELFARE_ENTRIES}
    if formulation == "levels":
        out["consumer_surplus_change"] = consumer_surplus_change(cal, inst, st)
        ps = producer_surplus_total(cal, inst, st)
        out["producer_surplus_change"] = ps - ps[:1]
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
    out["tariff_revenue_change"] = tr - tr[:1]
    out["levy_revenue"] = levy_revenue(inst, st)
    xr_ = export_tax_revenue(inst, st)
    out["export_tax_revenue_change"] = xr_ - xr_[:1]
    return out


def book_measures(ctx: BookContext, scenario_measures: list[list]) -> None:
    """Let each measure book its own entries (rents, levies, fiscal costs)."""
    for b, measures in enumerate(scenario_measures):
        for m in measures:
            m.book(ctx, b)


def total(ledger: dict[str, np.ndarray]) -> np.ndarray:
    """``welfare_change``: the plain sum of the parts."""
    return sum(ledger[k] for k in WELFARE_ENTRIES)
