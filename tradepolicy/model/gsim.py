"""GSIM-v1 compatible linearised formulation (Francois & Hall) for border-price scenarios.

Percent-change form, with hats for proportional changes from the base::

    P̂_rv = T̂_rv + P̂*_r                       T = (1 + x)(1 + t), T̂ = T1/T0 − 1
    P̂_v  = Σ_r θ_rv P̂_rv                     θ: import (value) shares at internal prices
    M̂_rv = E_m,v P̂_v − E_s,v (P̂_rv − P̂_v)    E_m = −η, E_s = σ
    Σ_v φ_rv M̂_rv = E_x,r P̂*_r                φ: export shares at world prices, E_x = ε

Every flow, including the domestic diagonal, is a "variety" here so that the formulation is
the exact first-order expansion of the levels model; it is linear in P̂* and solved directly
for all scenarios at once. Welfare uses GSIM's trapezoid (second-order) approximations.
"""

from __future__ import annotations

import numpy as np

from tradepolicy.model.instruments import Instruments
from tradepolicy.model.levels import Calibration, State


def solve_linear(cal: Calibration, inst: Instruments) -> tuple[State, np.ndarray]:
    """Solve the linear system; returns a levels-like :class:`State` and the residuals."""
    B, N = inst.B, cal.N
    sigma = np.broadcast_to(cal.sigma, (B, N))
    eta = np.broadcast_to(cal.eta, (B, N))
    eps = np.broadcast_to(cal.eps, (B, N))
    T0 = (1.0 + cal.x0) * (1.0 + cal.t0)
    That = (1.0 + inst.export_tax) * (1.0 + inst.tariff) / T0 - 1.0
    theta = cal.w0  # (N,N) importer columns sum to 1
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.where(
            cal.producer[:, None], cal.X0 / np.where(cal.producer, cal.S0, 1)[:, None], 0
        )
    sm = (sigma - eta)[:, None, :]  # (B,1,N)
    # M_om = Σ_d φ_od (σ_d − η_d) θ_md − δ_om (Σ_d φ_od σ_d + ε_o)
    M = np.einsum("od,bod,md->bom", phi, np.broadcast_to(sm, (B, N, N)), theta)
    diag = np.einsum("od,bd->bo", phi, sigma) + eps
    M[:, np.arange(N), np.arange(N)] -= diag
    # rhs_o = −Σ_d φ_od [(σ_d − η_d) Σ_o' θ_o'd T̂_o'd − σ_d T̂_od]
    PT = np.einsum("od,bod->bd", theta, That)
    rhs = -(
        np.einsum("od,bd->bo", phi, (sigma - eta) * PT)
        - np.einsum("od,bd,bod->bo", phi, sigma, That)
    )
    prod = cal.producer
    M = np.where(prod[None, :, None], M, np.eye(N)[None])
    rhs = np.where(prod[None, :], rhs, 0.0)
    ph = np.linalg.solve(M, rhs[..., None])[..., 0]
    resid = np.max(np.abs(np.einsum("bom,bm->bo", M, ph) - rhs), axis=1)

    qh = That + ph[:, :, None]
    Ph = np.einsum("od,bod->bd", theta, qh)
    Xh = -eta[:, None, :] * Ph[:, None, :] - sigma[:, None, :] * (qh - Ph[:, None, :])
    p = cal.p0 * (1.0 + ph)
    fob = p[:, :, None] * (1.0 + inst.export_tax)
    q = cal.q0 * (1.0 + qh)
    P = cal.P0 * (1.0 + Ph)
    X = cal.X0 * (1.0 + Xh)
    D = np.where(cal.consumer, cal.D0 * (1.0 - eta * Ph), 0.0)
    S = np.where(prod, cal.S0 * (1.0 + eps * ph), 0.0)
    zeros = np.zeros((B, N))
    st = State(
        p=p,
        lam=np.zeros((B, 0)),
        fob=fob,
        q=q,
        levy=np.zeros((B, N, N)),
        P=P,
        D=D,
        A=D.copy(),
        X=X,
        S=S,
        support=zeros,
        covered=zeros,
        p_marginal=p,
        g=np.zeros((B, 0)),
        F=np.zeros((B, N)),
        residual=resid,
    )
    return st, resid
