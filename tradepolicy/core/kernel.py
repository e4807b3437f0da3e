"""The compiled Newton kernel: the levels model solved scenario by scenario in machine code.

The same equations, Jacobian and globalised Newton method as the numpy reference
(:func:`tradepolicy.model.levels.evaluate`, :func:`tradepolicy.solver.newton.solve_batch`),
written as per-scenario loops compiled with numba and run over scenarios in parallel
(``prange``; compiled once and cached on disk). Each scenario follows the same iterates as on
the reference path (the two agree to rounding, about 1e-15), takes the same number of
iterations and ends in the same state: converged, non-finite or out of iterations, so the
caller's scipy fallback and diagnostics do not change.

The system is assembled from **blocks**, each owning some rows of ``F`` and their Jacobian
entries, all reading and writing one scenario's work arrays (plain arrays):

========================  ==========================================  =====================
block                     what it computes                            rows
========================  ==========================================  =====================
``_landed_prices``        border wedges, pair wedges (λ), floors      (none: prices only)
``_armington``            composite prices, demand, flows             (none: flows only)
``_supply``               supply (isoelastic or capacity-bounded)     clearing rows ``0..N``
                          with price-gap support
``_pairs``                complementarity pairs (box FB)              rows ``N..N+K``
``_chain_supply``,        value chains: input costs from composite    clearing rows ``0..N``
``_chain_flows``          prices, supply on value added, makers'      (instead of
                          demand in market purchases                  ``_supply``)
========================  ==========================================  =====================

``_evaluate`` calls the value parts in order and ``_jacobian`` the derivative parts; the
Newton driver (:func:`_solve_one`), the line search and the linear solve know nothing of the
blocks. ``docs/engine.md`` explains how a new block is added and how the chain block and
capacity-bounded supply were, and where a scenario's time goes: the blocks are compiled
without reference counting and take their exponentials in vectorised loops (:func:`_vexp`).
"""

from __future__ import annotations

import math
import types
from typing import Any

import numba as nb
import numpy as np

from tradepolicy.model.levels import State

FOB, ADV, ADD = 0, 1, 2
CD_TOL = 1e-9  # |1 - σ| below this uses the Cobb-Douglas limit (as the reference path)
SQRT_HALF = math.sqrt(0.5)
ARMIJO = 1e-4
MAX_LOG_STEP = 2.0
MAX_HALVINGS = 30  # halvings of a Newton step before it is taken anyway
MID_MAX_LAM_STEP = 1e6  # natural residuals: a larger step of a scaled λ stalls the row

# The blocks never allocate: compiled without numba's reference counting (``_nrt=False``, a
# target option numba's typing stubs do not declare),
# they neither increment nor decrement the counts of the ~60 arrays each call passes (atomic
# operations that took a quarter of a tariff scenario's time). Only the functions that
# allocate (the parallel loop, which makes the work arrays, and the least-squares step) keep it.
_jit = nb.njit(cache=True, error_model="numpy", nogil=True, _nrt=False)  # type: ignore[call-overload]
_jit_nrt = nb.njit(cache=True, error_model="numpy", nogil=True, _nrt=True)  # type: ignore[call-overload]
# the value blocks of a single market, inlined into the Newton loop (a call passes each of
# its ~30 arrays as separate machine arguments)
_jit_inline = nb.njit(cache=True, error_model="numpy", nogil=True, _nrt=False, forceinline=True)  # type: ignore[call-overload]
# Derivatives and the linear solve may reassociate sums (SIMD); never assume finite values,
# since non-finite numbers are how a scenario reports that it left the model's domain.
_jit_fast = nb.njit(  # type: ignore[call-overload]
    cache=True,
    error_model="numpy",
    nogil=True,
    fastmath={"reassoc", "contract", "nsz", "arcp"},
    _nrt=False,
)


# -- small scalar helpers ------------------------------------------------------------------
# exp(x) = 2^k exp(r), k = round(x / ln 2), r = x − k ln 2 (Cody–Waite: k ln2_hi is exact)
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e00
SHIFT = 6755399441055744.0  # 1.5 · 2^52: x + SHIFT rounds x to an integer held in the low bits
SHIFT_BITS = 0x4338000000000000  # the bits of SHIFT
EXP_SAFE = 700.0  # |x| below this: 2^k is a normal number, the loop's result is exact to ~1 ulp
_EC = tuple(1.0 / math.factorial(i) for i in range(14))  # Taylor terms: |r| ≤ ln 2 / 2


@_jit
def _vexp(x, out, tbuf, n):
    """``out[:n] = exp(x[:n])`` in loops the compiler vectorises (libm's ``exp`` is a scalar
    call: no SVML here); within one unit in the last place of ``math.exp`` (tested), and
    ``math.exp`` itself where ``|x| ≥ EXP_SAFE`` or ``x`` is not finite. ``tbuf``: scratch of
    ``n`` floats. Not compiled with ``fastmath``: the shift trick needs exact rounding."""
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13 = _EC
    bad = False
    for i in range(n):
        xi = x[i]
        bad |= not abs(xi) < EXP_SAFE
        xc = min(max(xi, -EXP_SAFE), EXP_SAFE)
        t = xc * INV_LN2 + SHIFT
        tbuf[i] = t
        k = t - SHIFT
        r = (xc - k * LN2_HI) - k * LN2_LO
        pr = c13 * r + c12
        pr = pr * r + c11
        pr = pr * r + c10
        pr = pr * r + c9
        pr = pr * r + c8
        pr = pr * r + c7
        pr = pr * r + c6
        pr = pr * r + c5
        pr = pr * r + c4
        pr = pr * r + c3
        pr = pr * r + c2
        pr = pr * r + c1
        out[i] = pr * r + c0
    bits = tbuf[:n].view(np.int64)
    for i in range(n):  # 2^k from the integer k in t's low bits
        bits[i] = (bits[i] - SHIFT_BITS + 1023) << 52
    scale = bits.view(np.float64)
    for i in range(n):
        out[i] *= scale[i]
    if bad:
        for i in range(n):
            if not abs(x[i]) < EXP_SAFE:
                out[i] = math.exp(x[i])


@_jit
def _fb(a: float, b: float) -> tuple[float, float, float]:
    """Fischer–Burmeister φ(a,b) = √(a²+b²) − a − b and its partial derivatives."""
    r = math.hypot(a, b)
    if r > 0.0:
        return r - a - b, a / r - 1.0, b / r - 1.0
    return r - a - b, SQRT_HALF - 1.0, SQRT_HALF - 1.0


@_jit
def _box_fb(x: float, lo: float, hi: float, g: float) -> tuple[float, float, float]:
    """Billups' box Fischer–Burmeister function for ``lo ≤ x ≤ hi ⟂ g`` and ∂/∂x, ∂/∂g."""
    if math.isfinite(hi):
        psi, pa_, pb_ = _fb(hi - x, -g)
        inner, didx, didg = psi, -pa_, -pb_
    else:
        inner, didx, didg = g, 0.0, 1.0
    phi, pa, pb = _fb(x - lo, inner)
    return phi, pa + pb * didx, pb * didg


@_jit
def _box_mid(x: float, lo: float, hi: float, g: float) -> tuple[float, float, float]:
    """The natural residual ``x − mid(lo, x − g, hi)`` and ∂/∂x, ∂/∂g (as
    :func:`tradepolicy.model.levels.box_mid`)."""
    y = x - g
    if y <= lo:
        return x - lo, 1.0, 0.0
    if y >= hi:
        return x - hi, 1.0, 0.0
    return g, 0.0, 1.0


# -- blocks: values ------------------------------------------------------------------------
@_jit_inline
def _landed_prices(
    u, N, K, p0, fixed, ef, tf, floor, cap, cell, kind, wc, plain, touched,
    p, pe, fob, tau1, q, hq, lnr, wf, wa, wd, q0, levies, vx,
):  # fmt: skip
    """Producer prices, landed prices (border and pair wedges, variable levies) and ln(q/q0).

    ``fixed`` (2N × N): ``relw = ln((1+x)(1+t)) − ln((1+x0)(1+t0))``, then (for a ``plain``
    scenario, whose wedges are all fixed) the border factor ``(1+x)(1+t)``. Where no pair
    wedge touches a cell and no levy is due, ``ln(q/q0) = z_o + relw_od``, without a logarithm.
    """
    r0 = N * N + N  # producer prices p0 e^z in one vectorised exp (scratch: see _armington)
    _vexp(u, vx[1, r0:], vx[2, r0:], N)
    for o in range(N):
        p[o] = p0[o] * vx[1, r0 + o]
    if plain:  # fixed wedges (pe, fob, tau1, hq and levies are set once per scenario)
        for o in range(N):
            for d in range(N):
                q[o, d] = p[o] * fixed[N + o, d]
                lnr[o, d] = u[o] + fixed[o, d]
        return
    for o in range(N):
        for d in range(N):
            if touched[o, d]:
                wf[o, d] = 0.0
                wa[o, d] = 0.0
                wd[o, d] = 0.0
    for k in range(K):
        lt = u[N + k]
        for m in range(cell.shape[1]):
            c = wc[k, m]
            if c == 0.0:
                continue
            o, d = cell[k, m] // N, cell[k, m] % N
            if kind[k, m] == FOB:
                wf[o, d] += lt * c
            elif kind[k, m] == ADV:
                wa[o, d] += lt * c
            else:
                wd[o, d] += lt * c
    for o in range(N):
        for d in range(N):
            pe[o, d] = p[o] * ef[o, d]
            if not touched[o, d]:
                fob[o, d] = pe[o, d]
                tau1[o, d] = tf[o, d]
                pre = fob[o, d] * tau1[o, d]
            else:
                fob[o, d] = pe[o, d] + wf[o, d]
                tau1[o, d] = tf[o, d] + wa[o, d]
                pre = fob[o, d] * tau1[o, d] + wd[o, d]
            h = 1.0
            levy = 0.0
            if floor[o, d] > 0.0:
                gap = floor[o, d] - pre
                levy = min(max(gap, 0.0), cap[o, d])
                if gap > 0.0 and gap < cap[o, d]:
                    h = 0.0
            q[o, d] = pre + levy
            levies[o, d] = levy
            hq[o, d] = h
            if levy == 0.0 and not touched[o, d]:
                lnr[o, d] = u[o] + fixed[o, d]
            else:
                lnr[o, d] = math.log(q[o, d] / q0[o, d])


@_jit_inline
def _armington(
    N, w, w0, w0sum, lnr, sig, eta, P0, D0, consumer, dm, cp, q, s, P, D, A, X, flows, vx,
):  # fmt: skip
    """CES composite prices, private demand, market purchases and flows per importer.

    ``D0``: base *final* demand (the base use outside chains). With ``flows=False`` (chains)
    market purchases and flows are left to :func:`_chain_flows`, once makers' demand is known.
    ``vx``: scratch ``(4, N² + 3N)`` for the vectorised exponentials (:func:`_vexp`):
    exponents in ``vx[0]``, their powers in ``vx[1]``: the N² cells' ``(q/q0)^(1−σ)``, then
    ``P/P0`` and ``(P/P0)^(−η)`` (from ``N² + N``); ``vx[3, :N]``: ``ln W0`` per importer (set
    once per block of rows by the caller). Importers far from the base (shifted sums) have
    their shifted exponents gathered in ``vx[2]`` and taken in one call once every column has
    been seen, their shifts and indices in ``vx[3, N:3N]``. Flows are written row by row, so
    that the compiler vectorises them over importers (the same arithmetic per cell).
    """
    ve, vE, vt, lw0 = vx[0], vx[1], vx[2], vx[3]
    r1, r2 = N * N + N, N * N + 2 * N  # where ln P and −η ln P go
    for o in range(N):
        for d in range(N):
            ve[o * N + d] = (1.0 - sig[d]) * lnr[o, d]
    _vexp(ve, vE, vt, N * N)
    # importers far from the base: their exponents, shifts and columns (vx[2], vx[3])
    ce, fshift, fcol = vt[: N * N], lw0[N : 2 * N], lw0[2 * N : 3 * N]
    nfar = 0
    for d in range(N):
        if not consumer[d]:
            P[d], D[d], A[d] = P0[d], 0.0, max(cp[d], 0.0)  # P0 is NaN there (as the reference)
            for o in range(N):
                s[o, d] = 0.0
                X[o, d] = 0.0
            ve[r1 + d], ve[r2 + d] = 0.0, 0.0
            continue
        one_m = 1.0 - sig[d]
        if abs(one_m) < CD_TOL:  # Cobb-Douglas: geometric mean, constant value shares
            wsum = 0.0
            for o in range(N):
                wsum += w[o, d]
            if not wsum > 0.0:
                wsum = 1.0
            lnP = 0.0
            for o in range(N):
                if w[o, d] > 0.0:
                    lnP += w[o, d] * lnr[o, d]
            lnP /= wsum
            for o in range(N):
                s[o, d] = w[o, d] / wsum
        else:  # as the reference: ln(W/W0) + ln(1 + T/W) near the base, else shifted
            far = False
            T = 0.0
            removed = 0.0
            near_cd = abs(one_m) < 0.05  # exp(e) − 1 loses ~1e-16/|1-σ| in ln P: use expm1
            for o in range(N):
                if w[o, d] > 0.0:
                    e = ve[o * N + d]  # (1 − σ_d) ln(q_od/q0_od)
                    far |= abs(e) > 1.0
                    t = w[o, d] * (math.expm1(e) if near_cd else vE[o * N + d] - 1.0)
                    s[o, d] = t
                    T += t
                else:
                    s[o, d] = 0.0
                    removed += w0[o, d]
            W = w0sum[d] - removed
            ssum = W + T
            if not far and math.isfinite(ssum) and ssum > 0.0:
                lost = math.log1p(-removed / w0sum[d]) if removed != 0.0 else 0.0
                lnP = (lost + math.log1p(T / W)) / one_m
                inv = 1.0 / ssum
                for o in range(N):
                    s[o, d] = (w[o, d] + s[o, d]) * inv
            else:  # shifted: the column's exponentials are taken with the others' below
                shift = -math.inf
                for o in range(N):
                    if w[o, d] > 0.0:
                        shift = max(shift, one_m * lnr[o, d])
                if not math.isfinite(shift):
                    shift = 0.0
                for o in range(N):
                    ce[nfar * N + o] = ve[o * N + d] - shift if w[o, d] > 0.0 else 0.0
                fshift[nfar], fcol[nfar] = shift, d
                nfar += 1
                continue
        ve[r1 + d], ve[r2 + d] = lnP, -eta[d] * lnP
    if nfar:  # the shifted exponentials of every such importer in one call
        cE, ct = vE[: N * N], ve[: N * N]  # (the cells' own are no longer read)
        _vexp(ce, cE, ct, nfar * N)
        for j in range(nfar):
            d = int(fcol[j])
            ssum = 0.0
            for o in range(N):
                t = w[o, d] * cE[j * N + o] if w[o, d] > 0.0 else 0.0
                s[o, d] = t
                ssum += t
            if not ssum > 0.0:
                ssum = 1.0
            inv = 1.0 / ssum
            for o in range(N):
                s[o, d] *= inv
            lnP = (math.log(ssum) + fshift[j] - lw0[d]) / (1.0 - sig[d])
            ve[r1 + d], ve[r2 + d] = lnP, -eta[d] * lnP
    _vexp(ve[r1:], vE[r1:], vt[r1:], 2 * N)
    PA = vt[:N]  # (scratch: the N² exponentials' is free again)
    for d in range(N):
        PA[d] = 0.0
        if not consumer[d]:
            continue
        P[d] = P0[d] * vE[r1 + d]
        D[d] = D0[d] * vE[r2 + d] * dm[d]
        if flows:
            A[d] = max(D[d] + cp[d], 0.0)
            PA[d] = P[d] * A[d]
    if flows:  # row by row (vectorised over importers); non-consumers' flows stay zero
        for o in range(N):
            for d in range(N):
                X[o, d] = s[o, d] * PA[d] / q[o, d] if w[o, d] > 0.0 and consumer[d] else 0.0


@_jit
def _capacity(r, eps, u0):
    """Capacity-bounded supply relative to base ``g = (1 + a)/(1 + a r^(−b))`` (``u0`` > 0)
    and its elasticity ``b (1 − u0 g)``, as :func:`tradepolicy.model.levels.capacity_curve`."""
    a = (1.0 - u0) / u0
    b = eps / (1.0 - u0)
    g = (1.0 + a) / (1.0 + a * r ** (-b))
    return g, b * (1.0 - u0 * g)


@_jit
def _inverse_supply(g, eps, u0):
    """The relative price at which supply is ``g`` times base (isoelastic at ``u0`` = 0; ∞ at
    or beyond capacity), as :func:`tradepolicy.model.levels.capacity_inverse`."""
    if u0 > 0.0:
        a = (1.0 - u0) / u0
        b = eps / (1.0 - u0)
        u = u0 * g
        if not u < 1.0:
            return math.inf
        return (a * u / (1.0 - u)) ** (1.0 / (b if b > 0.0 else 1.0))
    return g ** (1.0 / (eps if eps > 0.0 else 1.0))


@_jit
def _support_regime(p, p0, m, eps, K1, th, K2, V, u0):
    """A supported producer's top-up ``f`` (negative: claw-back), ``df/dp``, the price it
    produces at, its supply at ``p`` and at ``p + f``, and which regime holds: ``reg_b``
    output at ``p + f`` below the covered volume, ``reg_a`` output at ``p`` above it, neither:
    output at the covered volume ``V`` (a kink). ``m``: base output × capacity factor;
    ``u0`` > 0: the capacity-bounded curve (:func:`_capacity`), whose elasticities at ``p``
    and ``p + f`` come last.

    Top-up (f ≥ 0) on min(S, V): marginal revenue p + f up to V, then p. A claw-back with a
    covered volume is settled on V whatever the output, so output responds to p only.
    """
    f = max(0.0, K1 - p) - th * max(0.0, p - K2)
    fprime = -(1.0 if p < K1 else 0.0) - th * (1.0 if p > K2 else 0.0)
    pc = p + f
    if u0 > 0.0:
        ga, Ea = _capacity(p / p0, eps, u0)
        gb, Eb = _capacity(pc / p0, eps, u0)
        Sa, Sb = m * ga, m * gb
    else:
        Sa = m * (p / p0) ** eps
        Sb = m * (pc / p0) ** eps
        Ea, Eb = eps, eps
    pos = f >= 0.0
    reg_b = (Sb <= V) if pos else (not math.isfinite(V))
    reg_a = (not reg_b) and ((Sa >= V) if pos else True)
    return f, fprime, pc, Sa, Sb, reg_b, reg_a, Ea, Eb


@_jit_inline
def _supply(
    N, p, p0, z, S0s, producer, sm, eps, has_support, K1, th, K2, V, X, vp, S, dS, F, util, ru,
    vx,
):  # fmt: skip
    """Isoelastic supply (with a price-gap top-up or claw-back) and the clearing rows;
    capacity-bounded where the base utilisation ``util[ru, o]`` > 0 (``util``: ``None``
    without capacity, compiled out). ``vx``: scratch of :func:`_armington`."""
    r0 = N * N + N
    if not has_support:  # the isoelastic e^(ε z) in one vectorised exp
        for o in range(N):
            vx[0, r0 + o] = eps[o] * z[o]
        _vexp(vx[0, r0:], vx[1, r0:], vx[2, r0:], N)
    for o in range(N):
        u0 = 0.0
        if util is not None:
            u0 = util[ru, o]
        if has_support:
            _, fprime, pc, Sa, Sb, reg_b, reg_a, Ea, Eb = _support_regime(
                p[o], p0[o], S0s[o] * sm[o], eps[o], K1[o], th[o], K2[o], V[o], u0
            )
            if reg_b:
                S[o], dS[o] = Sb, Eb * Sb * (1.0 + fprime) * p[o] / pc
            elif reg_a:
                S[o], dS[o] = Sa, Ea * Sa
            else:
                S[o], dS[o] = V[o], 0.0
        elif u0 > 0.0:
            a = (1.0 - u0) / u0
            b = eps[o] / (1.0 - u0)
            g = (1.0 + a) / (1.0 + a * math.exp(-b * z[o]))
            S[o] = S0s[o] * sm[o] * g
            dS[o] = b * (1.0 - u0 * g) * S[o]
        else:
            S[o] = S0s[o] * sm[o] * vx[1, r0 + o]
            dS[o] = eps[o] * S[o]
        if not producer[o]:
            S[o] = 0.0
        sold = 0.0
        for d in range(N):
            sold += X[o, d]
        F[o] = (S[o] - sold - vp[o]) / S0s[o] if producer[o] else z[o]


@_jit
def _chain_regime(p, m, eps, v0, c, has_support, K1, th, K2, V, u0):
    """:func:`_support_regime` on the value added ``v = p̃ − c`` of a chain's node (as the
    reference's ``_support_supply``): top-up ``f``, ``df/dp``, ``p̃``, supply at ``p`` and at
    ``p̃``, the value added there, the regimes, the covered volume (∞ without support) and
    the elasticities at ``p`` and ``p̃`` (capacity-bounded where ``u0`` > 0)."""
    if has_support:
        f = max(0.0, K1 - p) - th * max(0.0, p - K2)
        fprime = -(1.0 if p < K1 else 0.0) - th * (1.0 if p > K2 else 0.0)
    else:
        f, fprime, V = 0.0, 0.0, math.inf
    pc = p + f
    va, vb = p - c, pc - c
    if u0 > 0.0:
        ga, Ea = _capacity(max(va, 0.0) / v0, eps, u0)
        gb, Eb = _capacity(max(vb, 0.0) / v0, eps, u0)
        Sa, Sb = m * ga, m * gb
    else:
        Sa = m * (max(va, 0.0) / v0) ** eps
        Sb = m * (max(vb, 0.0) / v0) ** eps
        Ea, Eb = eps, eps
    pos = f >= 0.0
    reg_b = (Sb <= V) if pos else (not math.isfinite(V))
    reg_a = (not reg_b) and ((Sa >= V) if pos else True)
    return f, fprime, pc, Sa, Sb, va, vb, reg_b, reg_a, V, Ea, Eb


# the chain block's work rows (``cw``): composite price (0 where a node uses nothing), unit
# input cost, dS/dc, makers' demand, scratch
PN, CIN, DSC, DER, TMP = 0, 1, 2, 3, 4


@_jit
def _chain_supply(
    N, cidx, ca, rc, p, P, consumer, S0s, producer, sm, eps, has_support, K1, th, K2, V,
    v0, rv, cw, S, dS, util, ru,
):  # fmt: skip
    """Chains: unit input costs ``c_j = Σ_i C[i,j] P_i`` (entries ``i = cidx[0,e]``,
    ``j = cidx[1,e]``, ``C[i,j] = ca[rc,e]``) and supply on the value added ``v = p̃ − c``
    (base ``v0[rv]``), with ``dS/dz`` and ``dS/dc``."""
    for i in range(N):
        cw[PN, i] = P[i] if consumer[i] else 0.0
        cw[CIN, i] = 0.0
    for e in range(cidx.shape[1]):
        cw[CIN, cidx[1, e]] += ca[rc, e] * cw[PN, cidx[0, e]]
    for o in range(N):
        if not producer[o]:
            S[o], dS[o], cw[DSC, o] = 0.0, 0.0, 0.0
            continue
        u0 = 0.0
        if util is not None:
            u0 = util[ru, o]
        _, fprime, _, Sa, Sb, va, vb, reg_b, reg_a, Vo, Ea, Eb = _chain_regime(
            p[o], S0s[o] * sm[o], eps[o], v0[rv, o], cw[CIN, o], has_support, K1[o], th[o],
            K2[o], V[o], u0,
        )  # fmt: skip
        if reg_b:
            eb = Eb * Sb / vb if vb > 0.0 else 0.0
            S[o], dS[o], cw[DSC, o] = Sb, eb * (1.0 + fprime) * p[o], -eb
        elif reg_a:
            ea = Ea * Sa / va if va > 0.0 else 0.0
            S[o], dS[o], cw[DSC, o] = Sa, ea * p[o], -ea
        else:
            S[o], dS[o], cw[DSC, o] = Vo, 0.0, 0.0


@_jit
def _chain_flows(N, cidx, ca, rc, w, consumer, cp, P, D, s, q, S, cw, A, X):
    """Chains: makers' demand ``Σ_j C[i,j] S_j`` joins market purchases; flows follow."""
    for i in range(N):
        cw[DER, i] = 0.0
    for e in range(cidx.shape[1]):
        cw[DER, cidx[0, e]] += ca[rc, e] * S[cidx[1, e]]
    for d in range(N):
        A[d] = max(D[d] + cp[d] + cw[DER, d], 0.0)
        PA = P[d] * A[d] if consumer[d] else 0.0
        for o in range(N):
            X[o, d] = s[o, d] * PA / q[o, d] if w[o, d] > 0.0 else 0.0


@_jit
def _clearing(N, S, S0s, producer, X, vp, z, F):
    """Clearing rows (chains; a single market's are written by :func:`_supply`)."""
    for o in range(N):
        sold = 0.0
        for d in range(N):
            sold += X[o, d]
        F[o] = (S[o] - sold - vp[o]) / S0s[o] if producer[o] else z[o]


@_jit_inline
def _pairs(N, K, u, lo, hi, g0, gsc, cell, gc, X, F, dphi_dx, dphi_dg, g, mid):
    """Complementarity rows ``lo ≤ λ ≤ hi ⟂ g(X)``: box Fischer–Burmeister, or the natural
    residual where ``mid``."""
    for k in range(K):
        graw = g0[k]
        for m in range(cell.shape[1]):
            if gc[k, m] != 0.0:
                graw += gc[k, m] * X[cell[k, m] // N, cell[k, m] % N]
        g[k] = graw / gsc[k]
        if mid:
            phi, dx, dg = _box_mid(u[N + k], lo[k], hi[k], g[k])
        else:
            phi, dx, dg = _box_fb(u[N + k], lo[k], hi[k], g[k])
        F[N + k] = phi
        dphi_dx[k], dphi_dg[k] = dx, dg


@_jit_inline
def _residual_measure(N, n, F, S, S0s):
    """max |F|, clearing rows relative to the larger of base and current output (NaN kept)."""
    grown = False
    for o in range(N):
        if S[o] > S0s[o]:
            grown = True
    res = 0.0
    for i in range(n):
        v = abs(F[i])
        if i < N and grown:
            v *= min(1.0, S0s[i] / (S[i] if S[i] > S0s[i] else S0s[i]))
        if math.isnan(v):
            return math.nan
        if v > res:
            res = v
    return res


# -- blocks: derivatives -------------------------------------------------------------------
@_jit_fast
def _jacobian(
    N, K, plain, w, sig, eta, D, A, X, s, q, dS, S0s, producer, pe, tau1, fob, hq,
    cell, kind, wc, gc, gsc, dphi_dx, dphi_dg, J, kappa, Xk, Xa, sa, aq, v, Xsq, cden, c, cv,
    src, cvT, vaT, mid, F,
):  # fmt: skip
    """The analytic Jacobian of the clearing and pair rows (as the reference path).

    ``src`` (sparse markets only, else ``None``: compiled out): importer ``d``'s origins with
    a weight are ``src[d, 1 : 1 + src[d, 0]]``; the clearing rows × prices skip other cells.
    ``mid`` (natural residuals, residuals ``F``): the clearing rows' column of a pair that sits
    exactly at a bound is left at zero (its step is zero: :func:`_mid_direction` never reads it).
    """
    n = N + K
    for d in range(N):
        Apos = A[d] if A[d] > 0.0 else 1.0
        kappa[d] = sig[d] - eta[d] * D[d] / Apos  # d ln X_od / d ln P_d beyond the σ term
    for o in range(N):
        for d in range(N):
            if plain:  # the landed price moves one for one with the producer price
                Xa[o, d], sa[o, d] = X[o, d], s[o, d]
            else:
                aq[o, d] = hq[o, d] * pe[o, d] * tau1[o, d]  # dq_od/dz_o (rents do not move)
                r = aq[o, d] / q[o, d]
                Xa[o, d], sa[o, d] = X[o, d] * r, s[o, d] * r
    # clearing rows × prices
    for o in range(N):
        if not producer[o]:
            for j in range(n):
                J[o, j] = 1.0 if j == o else 0.0
            continue
        if src is not None:  # a sparse market (stacked chain stages): weighted cells only
            for j in range(N):
                J[o, j] = 0.0
            for d in range(N):
                xk = X[o, d] * kappa[d]
                if xk == 0.0:
                    continue
                for t in range(1, 1 + src[d, 0]):
                    j = src[d, t]
                    J[o, j] += xk * sa[j, d]
        else:  # four columns at a time: four independent sums per pass over d
            for d in range(N):
                Xk[d] = X[o, d] * kappa[d]
            j = 0
            while j + 4 <= N:
                a0, a1, a2, a3 = 0.0, 0.0, 0.0, 0.0
                for d in range(N):
                    xk = Xk[d]
                    a0 += xk * sa[j, d]
                    a1 += xk * sa[j + 1, d]
                    a2 += xk * sa[j + 2, d]
                    a3 += xk * sa[j + 3, d]
                J[o, j], J[o, j + 1], J[o, j + 2], J[o, j + 3] = a0, a1, a2, a3
                j += 4
            while j < N:
                acc = 0.0
                for d in range(N):
                    acc += Xk[d] * sa[j, d]
                J[o, j] = acc
                j += 1
        diag = 0.0
        for d in range(N):
            diag += Xa[o, d] * sig[d]
        J[o, o] -= dS[o] + diag
        scale = -1.0 / S0s[o]
        for j in range(N):
            J[o, j] *= scale
    if K == 0:
        return
    M = cell.shape[1]
    for o in range(N):
        for d in range(N):
            if w[o, d] > 0.0:
                v[o, d] = s[o, d] / q[o, d]  # d ln P_d / d q_od
                Xsq[o, d] = X[o, d] * sig[d] / q[o, d]
            else:
                v[o, d] = 0.0
                Xsq[o, d] = 0.0
    # c_km = dq_od/dλ_k at the pairs' entries; cden: c on the dense grid of cells, per pair;
    # cv_kd = Σ_o v_od c_kod
    for k in range(K):  # (cden is all zeros here: entries are reset after use)
        for d in range(N):
            cv[k, d] = 0.0
    for k in range(K):
        for m in range(M):
            o, d = cell[k, m] // N, cell[k, m] % N
            ck = wc[k, m]
            if kind[k, m] == FOB:
                ck *= tau1[o, d]
            elif kind[k, m] == ADV:
                ck *= fob[o, d]
            ck *= hq[o, d]
            c[k, m] = ck
            cden[cell[k, m], k] += ck
            cv[k, d] += ck * v[o, d]
    for k in range(K):  # clearing rows × λ_k: Σ_d Xsq_od c_kod − Σ_d X_od κ_d cv_kd
        if mid and dphi_dg[k] == 0.0 and F[N + k] == 0.0:
            for o in range(N):
                J[o, N + k] = 0.0
            continue
        for o in range(N):
            if not producer[o]:
                continue
            acc = 0.0
            for d in range(N):
                acc -= X[o, d] * kappa[d] * cv[k, d]
            J[o, N + k] = acc
        for m in range(M):
            o, d = cell[k, m] // N, cell[k, m] % N
            if producer[o]:
                J[o, N + k] += c[k, m] * Xsq[o, d]
        for o in range(N):
            if producer[o]:
                J[o, N + k] /= S0s[o]
    for d in range(N):  # transposed, so that the pair rows' inner loops run over contiguous data
        for k in range(K):
            cvT[d, k] = cv[k, d]
        for j in range(N):
            vaT[d, j] = v[j, d] * aq[j, d]
    for k in range(K):  # pair rows: ∂Φ/∂g · Σ_od G_kod (dX_od/du) / g_scale_k
        for j in range(n):
            J[N + k, j] = 0.0
        for m in range(M):
            G = gc[k, m] * (dphi_dg[k] / gsc[k])
            if G == 0.0:
                continue
            o, d = cell[k, m] // N, cell[k, m] % N
            gxk = G * X[o, d] * kappa[d]
            GXs = G * Xsq[o, d]
            for j in range(N):
                J[N + k, j] += gxk * vaT[d, j]
            J[N + k, o] -= GXs * aq[o, d]
            cm = cell[k, m]
            for l2 in range(K):
                J[N + k, N + l2] += gxk * cvT[d, l2] - GXs * cden[cm, l2]
        J[N + k, N + k] += dphi_dx[k]
    for k in range(K):
        for m in range(M):
            cden[cell[k, m], k] = 0.0


@_jit_fast
def _chain_jacobian(
    N, K, cidx, ca, rc, cnode, producer, S0s, A, X, sa, cv, dS, cell, gc, gsc, dphi_dg, J,
    cw, cm, cl,
):  # fmt: skip
    """Chains: the cross-stage terms, added to the Jacobian ``_jacobian`` wrote (as
    ``jacobian_of``). Nodes ``cnode[N:]`` are bought by makers (``cnode[d]``: 1 for them).

    ``dc_j/dz_k = Σ_i C[i,j] P_i sa[k,i]`` (``sa``: d ln P_i / dz_k), so a node's supply moves
    by ``Gz[j,k] = dS_j/dc_j dc_j/dz_k``, and makers' demand for ``d`` by
    ``H[d,k] = Σ_j C[d,j] (Gz[j,k] + δ_jk dS_j)``: clearing rows get ``(Gz − XA H) / S0``
    with ``XA[o,d] = X_od / A_d``; per λ the same through ``cv`` (``Gl``, ``dAl``); pair rows
    ``gA H`` and ``gA dAl`` where a pair's flow is in a market makers buy from.
    """
    E = cidx.shape[1]
    Gz, H, Gl, dAl = cm[0], cm[1], cl[0], cl[1]
    for j in range(N):
        for k in range(N):
            Gz[j, k] = 0.0
    for e in range(E):
        i, j = cidx[0, e], cidx[1, e]
        f = ca[rc, e] * cw[PN, i] * cw[DSC, j]
        if f == 0.0:
            continue
        for k in range(N):
            Gz[j, k] += f * sa[k, i]
    for t in range(N, cnode.shape[0]):
        for k in range(N):
            H[cnode[t], k] = 0.0
    for e in range(E):
        d, j, a = cidx[0, e], cidx[1, e], ca[rc, e]
        for k in range(N):
            H[d, k] += a * (Gz[j, k] + (dS[j] if k == j else 0.0))
    for o in range(N):  # clearing rows × prices
        if not producer[o]:
            continue
        for k in range(N):
            cw[TMP, k] = 0.0
        for t in range(N, cnode.shape[0]):
            d = cnode[t]
            if X[o, d] == 0.0 or not A[d] > 0.0:
                continue
            xa = X[o, d] / A[d]
            for k in range(N):
                cw[TMP, k] += xa * H[d, k]
        sc = 1.0 / S0s[o]
        for k in range(N):
            J[o, k] += (Gz[o, k] - cw[TMP, k]) * sc
    if K == 0:
        return
    for k in range(K):  # clearing rows × λ_k
        for j in range(N):
            Gl[j, k] = 0.0
        for t in range(N, cnode.shape[0]):
            dAl[cnode[t], k] = 0.0
        for e in range(E):
            i, j = cidx[0, e], cidx[1, e]
            Gl[j, k] += ca[rc, e] * cw[PN, i] * cw[DSC, j] * cv[k, i]
        for e in range(E):
            dAl[cidx[0, e], k] += ca[rc, e] * Gl[cidx[1, e], k]
        for o in range(N):
            if not producer[o]:
                continue
            acc = 0.0
            for t in range(N, cnode.shape[0]):
                d = cnode[t]
                if X[o, d] != 0.0 and A[d] > 0.0:
                    acc += X[o, d] / A[d] * dAl[d, k]
            J[o, N + k] += (Gl[o, k] - acc) / S0s[o]
    for k in range(K):  # pair rows: their flows move with makers' demand
        for m in range(cell.shape[1]):
            o, d = cell[k, m] // N, cell[k, m] % N
            if gc[k, m] == 0.0 or not cnode[d] or not A[d] > 0.0:
                continue
            gA = gc[k, m] * (dphi_dg[k] / gsc[k]) * X[o, d] / A[d]
            for j in range(N):
                J[N + k, j] += gA * H[d, j]
            for l2 in range(K):
                J[N + k, N + l2] += gA * dAl[d, l2]


# -- one scenario --------------------------------------------------------------------------
U1 = np.uint64(1)  # (unsigned indices: numba adds no negative-index wraparound to them)


@_jit_fast
def _lu_solve(J, rhs, n, x):
    """x = J⁻¹ rhs by Gaussian elimination with partial pivoting (J and rhs overwritten).

    Returns False when a pivot is exactly zero (the caller falls back to least squares).
    The indices are unsigned: with signed ones numba corrects every index for Python's
    negative indexing, which kept the row operations scalar (a fifth of the solve's time).
    """
    m = np.uint64(n)
    for col in range(m):
        piv, best = col, abs(J[col, col])
        for r in range(col + U1, m):
            if abs(J[r, col]) > best:
                piv, best = r, abs(J[r, col])
        if best == 0.0:
            return False
        if piv != col:
            for j in range(m):
                J[col, j], J[piv, j] = J[piv, j], J[col, j]
            rhs[col], rhs[piv] = rhs[piv], rhs[col]
        inv = 1.0 / J[col, col]
        for r in range(col + U1, m):
            f = J[r, col] * inv
            if f != 0.0:
                for j in range(col + U1, m):
                    J[r, j] -= f * J[col, j]
                rhs[r] -= f * rhs[col]
    for k in range(m):
        i = m - U1 - k
        acc = rhs[i]
        for j in range(i + U1, m):
            acc -= J[i, j] * x[j]
        x[i] = acc / J[i, i]
    return True


@_jit_inline
def _evaluate(
    x, N, K, plain, touched, has_support, p0, q0, fixed, w, w0, w0sum, S0s, D0, P0, producer,
    consumer, ef, tf, floor, cap, sm, dm, vp, cp, K1, th, K2, V, eps, eta, sig,
    lo, hi, g0, gsc, cell, kind, wc, gc,
    p, pe, fob, tau1, q, hq, lnr, wf, wa, wd, s, P, D, A, X, S, dS, F, dphi_dx, dphi_dg,
    levies, g, util, ru, vx, mid,
):  # fmt: skip
    """Every block's values at ``x``; returns the convergence measure."""
    _landed_prices(
        x, N, K, p0, fixed, ef, tf, floor, cap, cell, kind, wc, plain, touched,
        p, pe, fob, tau1, q, hq, lnr, wf, wa, wd, q0, levies, vx,
    )  # fmt: skip
    _armington(N, w, w0, w0sum, lnr, sig, eta, P0, D0, consumer, dm, cp, q, s, P, D, A, X, True, vx)
    _supply(
        N, p, p0, x, S0s, producer, sm, eps, has_support, K1, th, K2, V, X, vp, S, dS, F, util,
        ru, vx,
    )  # fmt: skip
    _pairs(N, K, x, lo, hi, g0, gsc, cell, gc, X, F, dphi_dx, dphi_dg, g, mid)
    return _residual_measure(N, N + K, F, S, S0s)


# The chain path calls its own compiled copies of the shared blocks, so that each copy has
# one caller and the single-market path compiles (and inlines) exactly as without chains.
_landed_prices_c = _jit(_landed_prices.py_func)
_armington_c = _jit(_armington.py_func)
_pairs_c = _jit(_pairs.py_func)
_residual_measure_c = _jit(_residual_measure.py_func)


@_jit
def _evaluate_chain(
    x, N, K, plain, touched, has_support, p0, q0, fixed, w, w0, w0sum, S0s, D0, P0, producer,
    consumer, ef, tf, floor, cap, sm, dm, vp, cp, K1, th, K2, V, eps, eta, sig,
    lo, hi, g0, gsc, cell, kind, wc, gc,
    p, pe, fob, tau1, q, hq, lnr, wf, wa, wd, s, P, D, A, X, S, dS, F, dphi_dx, dphi_dg,
    levies, g, cidx, ca, rc, v0, rv, cw, util, ru, vx, mid,
):  # fmt: skip
    """:func:`_evaluate` of a chain (``D0``: base final demand): prices first, then input
    costs and supply on value added, then makers' demand, flows and the clearing rows."""
    _landed_prices_c(
        x, N, K, p0, fixed, ef, tf, floor, cap, cell, kind, wc, plain, touched,
        p, pe, fob, tau1, q, hq, lnr, wf, wa, wd, q0, levies, vx,
    )  # fmt: skip
    _armington_c(
        N, w, w0, w0sum, lnr, sig, eta, P0, D0, consumer, dm, cp, q, s, P, D, A, X, False, vx
    )
    _chain_supply(
        N, cidx, ca, rc, p, P, consumer, S0s, producer, sm, eps, has_support, K1, th, K2, V,
        v0, rv, cw, S, dS, util, ru,
    )  # fmt: skip
    _chain_flows(N, cidx, ca, rc, w, consumer, cp, P, D, s, q, S, cw, A, X)
    _clearing(N, S, S0s, producer, X, vp, x, F)
    _pairs_c(N, K, x, lo, hi, g0, gsc, cell, gc, X, F, dphi_dx, dphi_dg, g, mid)
    return _residual_measure_c(N, N + K, F, S, S0s)


@_jit_inline
def _merit(F, n):
    acc = 0.0
    for i in range(n):
        acc += F[i] * F[i]
    return 0.5 * acc


@_jit_fast
def _mid_direction(J, Jbuf, F, N, K, dphi_dg, dvec, rhs, sol, act):
    """The Newton direction ``J d = −F`` with the pairs as natural residuals: a pair at a
    bound has the Jacobian row ``e_k`` (:func:`_box_mid`), so its step is known,
    ``d_k = −F_k``; the clearing rows and the interior pairs solve the system without those
    rows and columns (their known steps moved to the right-hand side). The same step as the
    whole system, with a smaller factorisation. ``J`` (``n × n`` at the start of ``Jbuf``)
    is overwritten; ``rhs``, ``sol``, ``act``: scratch of ``n``. Returns False when the
    reduced system is exactly singular (so is the whole one)."""
    n = N + K
    m = N
    for i in range(N):
        act[i] = i
    for k in range(K):
        if dphi_dg[k] != 0.0:
            act[m] = N + k
            m += 1
        else:
            dvec[N + k] = -F[N + k]
    for a in range(m):
        r = act[a]
        acc = -F[r]
        for k in range(K):
            if dphi_dg[k] == 0.0 and dvec[N + k] != 0.0:
                acc -= J[r, N + k] * dvec[N + k]
        rhs[a] = acc
    if m < n:  # in place: entry (a, c) moves from (act[a], act[c]), never after it
        for a in range(m):
            ra = act[a] * n
            for c in range(m):
                Jbuf[a * m + c] = Jbuf[ra + act[c]]
    ok = _lu_solve(Jbuf[: m * m].reshape((m, m)), rhs, m, sol)
    for a in range(m):
        dvec[act[a]] = sol[a]
    return ok


@_jit_nrt
def _lstsq_direction(J, F, n, dvec):
    """``dvec`` = the least-squares solution of ``J d = −F`` (an exactly singular ``J``, as
    numpy's ``lstsq`` on the reference path); it allocates, so it keeps reference counting."""
    Jc = np.ascontiguousarray(J)
    sol = np.linalg.lstsq(Jc, -F, rcond=2.220446049250313e-16 * n)[0]
    for i in range(n):
        dvec[i] = sol[i]


@_jit
def _solve_one(
    b, u, it0, tol, max_iter, max_halvings, mid, used, has_support, has_access,
    p0, q0, w0, w0sum, vw, relw, S0s, Df0, P0, producer, consumer,
    ef, tf, floor, cap, avail, sm, dm, vp, cp, K1, th, K2, V, eps, eta, sig,
    lo, hi, lsc, g0, gsc, cell, kind, wc, gc, chain,
    vec, mat, rows, Jbuf, cden, cbuf, cvbuf, touched_buf, relwq, sparse, out, util,
    srcbuf, cw, cm, cl, vx, cvtbuf, act,
):  # fmt: skip
    """Globalised Newton for scenario ``b`` from ``u[b]``; returns (status, iterations).

    ``chain``: ``None`` for a single market (the chain block is compiled out), else the
    chain block's inputs ``(v0, cidx, ca, cnode)``.

    Status 1: converged, 2: residuals became non-finite, 0: out of iterations, 3: stalled
    (natural residuals, ``mid``: the Jacobian is exactly singular, a scaled λ would move by
    more than ``MID_MAX_LAM_STEP``, or no step down to ``2^-max_halvings`` decreases the
    merit; the row stays at its last point). As the
    reference path: a Newton direction from the analytic Jacobian (least squares if it is
    exactly singular), its price part capped at ``MAX_LOG_STEP``, then an Armijo
    backtracking search on ½‖F‖² over the steps 1, 1/2, 1/4, ..., the step after
    ``max_halvings`` failures taken anyway.
    """
    N = p0.shape[0]
    K = used[b]
    n = N + K
    M = cell.shape[2]
    fl, avb, efb, tfb = floor[b], avail[b], ef[b], tf[b]
    plain = K == 0
    if plain:
        for o in range(N):
            for d in range(N):
                if fl[o, d] > 0.0:
                    plain = False
    w, touched = mat[17], touched_buf
    if has_access:  # market access: the row's share parameters (as Instruments.access_weights)
        vwb = vw[b]
        access = False
        for o in range(N):
            if vwb[o] != 1.0:
                access = True
        if access:
            wt = mat[18]
            for d in range(N):
                tot = 0.0
                for o in range(N):
                    tot += w0[o, d] * vwb[o]
                if tot > 0.0:
                    sc = w0sum[d] / tot
                    for o in range(N):
                        wt[o, d] = w0[o, d] * vwb[o] * sc
                else:
                    for o in range(N):
                        wt[o, d] = w0[o, d]
            w0 = wt
    for o in range(N):
        for d in range(N):
            w[o, d] = w0[o, d] if avb[o, d] else 0.0
            if not plain:
                touched[o, d] = False
    fixed = relwq[: 2 * N]  # ln-wedge change, then the border factor (1+x)(1+t)
    for o in range(N):
        for d in range(N):
            fixed[o, d] = relw[b, o, d]
            if plain:
                fixed[N + o, d] = efb[o, d] * tfb[o, d]
                mat[2, o, d] = tfb[o, d]  # tau1
                mat[4, o, d] = 1.0  # hq
                mat[16, o, d] = 0.0  # levies
    for k in range(K):
        for m in range(M):
            if wc[b, k, m] != 0.0:
                touched[cell[b, k, m] // N, cell[b, k, m] % N] = True
    if sparse is not None:  # each importer's origins with a weight (bans included)
        src = srcbuf
        for d in range(N):
            src[d, 0] = 0
            for o in range(N):
                if w[o, d] > 0.0:
                    src[d, 0] += 1
                    src[d, src[d, 0]] = o
    else:  # (numba compiles the sparse loops out)
        src = None
    p, P, D, A, S, dS, kappa, Xk = vec[0], vec[1], vec[2], vec[3], vec[4], vec[5], vec[6], vec[7]
    pe, fob, tau1, q, hq, lnr = mat[0], mat[1], mat[2], mat[3], mat[4], mat[5]
    wf, wa, wd, s, X = mat[6], mat[7], mat[8], mat[9], mat[10]
    Xa, sa, aq, v, Xsq = mat[11], mat[12], mat[13], mat[14], mat[15]
    F, dvec, rhs, x, trial = rows[0, :n], rows[1, :n], rows[2, :n], rows[3, :n], rows[4, :n]
    dphi_dx, dphi_dg, g = rows[5, :K], rows[6, :K], rows[7, :K]
    levies = mat[16]
    J = Jbuf[: n * n].reshape((n, n))  # contiguous (a strided view keeps loops scalar)
    c = cbuf[:K]
    cv = cvbuf[:K]
    cvT = cvtbuf[:, :K]
    cellb, kindb, wcb, gcb = cell[b, :K], kind[b, :K], wc[b, :K], gc[b, :K]
    lob, hib, g0b, gscb = lo[b, :K], hi[b, :K], g0[b, :K], gsc[b, :K]
    for i in range(n):
        x[i] = u[b, i]

    # the scenario's rows of the batch arrays, taken once (each view costs reference counting)
    capb, smb, dmb, vpb, cpb = cap[b], sm[b], dm[b], vp[b], cp[b]
    K1b, thb, K2b, Vb, epsb, etab, sigb = K1[b], th[b], K2[b], V[b], eps[b], eta[b], sig[b]
    # final demand (base use outside chains); chains: base value added and coefficients,
    # shared or one row per scenario (rows rv, rc of v0, ca)
    D0b = Df0[b if Df0.shape[0] > 1 else 0]
    rv, rc, ru = 0, 0, 0
    if util is not None and util.shape[0] > 1:  # base capacity utilisation per row
        ru = b
    if chain is not None:  # (numba compiles this out for a single market)
        rv = b if chain[0].shape[0] > 1 else 0
        rc = b if chain[2].shape[0] > 1 else 0

    def evaluate(at):  # every block's values at `at` (a closure numba inlines)
        if chain is not None:
            return _evaluate_chain(
                at, N, K, plain, touched, has_support, p0, q0, fixed, w, w0, w0sum, S0s, D0b,
                P0, producer, consumer, efb, tfb, fl, capb, smb, dmb, vpb, cpb, K1b, thb, K2b,
                Vb, epsb, etab, sigb, lob, hib, g0b, gscb, cellb, kindb, wcb, gcb, p, pe, fob,
                tau1, q, hq, lnr, wf, wa, wd, s, P, D, A, X, S, dS, F, dphi_dx, dphi_dg,
                levies, g, chain[1], chain[2], rc, chain[0], rv, cw, util, ru, vx, mid,
            )  # fmt: skip
        return _evaluate(
            at, N, K, plain, touched, has_support, p0, q0, fixed, w, w0, w0sum, S0s, D0b, P0,
            producer, consumer, efb, tfb, fl, capb, smb, dmb, vpb, cpb, K1b, thb, K2b, Vb,
            epsb, etab, sigb, lob, hib, g0b, gscb, cellb, kindb, wcb, gcb, p, pe, fob,
            tau1, q, hq, lnr, wf, wa, wd, s, P, D, A, X, S, dS, F, dphi_dx, dphi_dg, levies, g,
            util, ru, vx, mid,
        )  # fmt: skip

    def jacobian():  # at the point evaluated last
        _jacobian(
            N, K, plain, w, sigb, etab, D, A, X, s, q, dS, S0s, producer, pe, tau1, fob,
            hq, cellb, kindb, wcb, gcb, gscb, dphi_dx, dphi_dg, J, kappa, Xk, Xa, sa, aq, v,
            Xsq, cden, c, cv, src, cvT, mat[19], mid, F,
        )  # fmt: skip
        if chain is not None:
            _chain_jacobian(
                N, K, chain[1], chain[2], rc, chain[3], producer, S0s, A, X, sa, cv, dS, cellb,
                gcb, gscb, dphi_dg, J, cw, cm, cl,
            )  # fmt: skip

    # One call site of `evaluate` (each is inlined: three copies of every block's code did
    # not stay in the instruction cache): the start, every trial step of the line search and
    # a stalled row's return to its last point all evaluate `trial`.
    for i in range(n):
        trial[i] = x[i]
    it = it0
    status = 0
    search = False  # evaluating a step of the line search (else the point `x` itself)
    stalled = False
    m0 = 0.0
    h = 0
    while True:
        res = evaluate(trial)
        if stalled:  # (back at its last point, for the second pass)
            status = 3
            break
        if search:
            alpha = 0.5**h
            mer = _merit(F, n)
            if not (math.isfinite(mer) and mer <= (1.0 - 2.0 * ARMIJO * alpha) * m0):
                if h < max_halvings:
                    h += 1
                    alpha = 0.5**h
                    for i in range(n):
                        trial[i] = x[i] + alpha * dvec[i]
                    continue
                if mid:  # with natural residuals the row stops where it was
                    stalled = True
                    for i in range(n):
                        trial[i] = x[i]
                    continue
                # (else the step after max_halvings failures is taken anyway)
            for i in range(n):
                x[i] = trial[i]
        if not math.isfinite(res):
            status = 2
            break
        if res <= tol:
            status = 1
            break
        if it >= max_iter:
            break
        it += 1
        jacobian()
        if mid and K > 0:  # pairs at a bound known, the rest from the reduced system
            factored = _mid_direction(J, Jbuf, F, N, K, dphi_dg, dvec, rhs, trial, act)
        else:
            for i in range(n):
                rhs[i] = -F[i]
            factored = _lu_solve(J, rhs, n, dvec)
            if not factored:  # exactly singular: least squares, as numpy
                jacobian()
                _lstsq_direction(J, F, n, dvec)
        if mid:  # (nearly) singular: a runaway multiplier; the row stalls where it is
            runaway = not factored
            for i in range(N, n):
                if abs(dvec[i]) > MID_MAX_LAM_STEP:
                    runaway = True
            if runaway:
                status = 3
                break
        big = 0.0
        for i in range(N):
            a = abs(dvec[i])
            if math.isnan(a) or math.isnan(big):
                big = math.nan
            elif a > big:
                big = a
        factor = min(1.0, MAX_LOG_STEP / (big if big > 0.0 else 1.0))
        for i in range(n):
            dvec[i] *= factor
            if not math.isfinite(dvec[i]):
                dvec[i] = 0.0
        m0 = _merit(F, n)
        h = 0
        search = True
        for i in range(n):  # the full step first (alpha = 1)
            trial[i] = x[i] + dvec[i]
    for i in range(n):
        u[b, i] = x[i]
    if out[0].shape[0]:  # the model state at the point reached
        _export(
            b, N, K, x, u, res, has_support, p0, S0s, producer, sm[b], eps[b], K1[b], th[b],
            K2[b], V[b], lo[b], hi[b], lsc[b], g0[b], gsc[b], plain, efb,
            p, fob, q, levies, P, D, A, X, S, F, g, out, util, ru,
        )  # fmt: skip
        if chain is not None:
            _export_chain(
                b, N, p, S0s, sm[b], eps[b], has_support, K1[b], th[b], K2[b], V[b], chain[0],
                rv, cw, out, util, ru,
            )  # fmt: skip
    return status, it


@_jit
def _export(
    b, N, K, x, u, res, has_support, p0, S0s, producer, sm, eps, K1, th, K2, V, lo, hi, lsc,
    g0, gsc, plain, ef, p, fob, q, levies, P, D, A, X, S, F, g, out, util, ru,
):  # fmt: skip
    """Write scenario ``b``'s state into the batch arrays ``out`` (the fields of
    :class:`~tradepolicy.model.levels.State`, as the reference evaluation gives them)."""
    (o_p, o_lam, o_fob, o_q, o_levy, o_P, o_D, o_A, o_X, o_S, o_f, o_cov, o_pm, o_g, o_F,
     o_res, _, _) = out  # fmt: skip
    Kmax = o_lam.shape[1]
    for o in range(N):
        o_p[b, o], o_P[b, o], o_D[b, o], o_A[b, o], o_S[b, o] = p[o], P[o], D[o], A[o], S[o]
        for d in range(N):
            o_fob[b, o, d] = p[o] * ef[o, d] if plain else fob[o, d]
            o_q[b, o, d] = q[o, d]
            o_levy[b, o, d], o_X[b, o, d] = levies[o, d], X[o, d]
        o_F[b, o] = F[o]
        # price-gap support: the top-up (or claw-back), the volume it is paid on and the
        # effective marginal price (as the supply block's regimes)
        if has_support:
            m = S0s[o] * sm[o]
            u0 = 0.0
            if util is not None:
                u0 = util[ru, o]
            f, _, pc, Sa, Sb, reg_b, reg_a, _, _ = _support_regime(
                p[o], p0[o], m, eps[o], K1[o], th[o], K2[o], V[o], u0
            )
            Su = Sb if reg_b else (Sa if reg_a else V[o])
            if reg_b:
                pm = pc
            elif reg_a:
                pm = p[o]
            else:
                pm = p0[o] * _inverse_supply(V[o] / m, eps[o], u0)
            o_f[b, o], o_pm[b, o] = f, pm
            o_cov[b, o] = (min(Su, V[o]) if f >= 0.0 else V[o]) if math.isfinite(V[o]) else Su
        else:
            o_f[b, o], o_cov[b, o], o_pm[b, o] = 0.0, 0.0, p[o]
    for k in range(Kmax):
        if k < K:
            o_lam[b, k] = x[N + k] * lsc[k]
            o_g[b, k] = g[k]
            o_F[b, N + k] = F[N + k]
        else:  # pairs the scenario does not use (as the reference's trimmed rows)
            o_lam[b, k], o_g[b, k], o_F[b, N + k] = 0.0, 0.0, 0.0
    o_res[b] = res


@_jit
def _export_chain(b, N, p, S0s, sm, eps, has_support, K1, th, K2, V, v0, rv, cw, out, util, ru):
    """A chain's supply regimes on value added (top-up, covered volume, marginal price),
    unit input cost and makers' demand, over what :func:`_export` wrote."""
    o_f, o_cov, o_pm, o_cin, o_der = out[10], out[11], out[12], out[16], out[17]
    for o in range(N):
        m = S0s[o] * sm[o]
        c = cw[CIN, o]
        u0 = 0.0
        if util is not None:
            u0 = util[ru, o]
        f, _, pc, Sa, Sb, _, _, reg_b, reg_a, Vo, _, _ = _chain_regime(
            p[o], m, eps[o], v0[rv, o], c, has_support, K1[o], th[o], K2[o], V[o], u0
        )
        if reg_b:
            pm = pc
        elif reg_a:
            pm = p[o]
        else:
            pm = c + v0[rv, o] * _inverse_supply(Vo / m, eps[o], u0)
        Su = Sb if reg_b else (Sa if reg_a else Vo)
        o_f[b, o], o_pm[b, o] = f, pm
        if has_support:
            o_cov[b, o] = (min(Su, Vo) if f >= 0.0 else Vo) if math.isfinite(Vo) else Su
        else:
            o_cov[b, o] = 0.0
        o_cin[b, o], o_der[b, o] = c, cw[DER, o]


BLOCK = 32  # scenarios per parallel task (they share one set of work arrays)


def _newton_rows(
    rows, u, it, status, tol, max_iter, max_halvings, mid, used, has_support, has_access, out,
    p0, q0, w0, w0sum, vw, relw, S0s, Df0, P0, producer, consumer,
    ef, tf, floor, cap, avail, sm, dm, vp, cp, K1, th, K2, V, eps, eta, sig,
    lo, hi, lsc, g0, gsc, cell, kind, wc, gc, chain, sparse, util,
):  # fmt: skip
    """Solve scenarios ``rows`` in parallel, in place in ``u``, ``it`` and ``status``.

    ``chain``: ``None`` (a single market) or the chain block's ``(v0, cidx, ca, cnode)``;
    ``sparse``: ``None`` (dense) or ``True`` (loop over weighted cells only); ``util``:
    ``None`` (isoelastic supply) or the base capacity utilisation ``(1 or B, N)``."""
    N = p0.shape[0]
    Kmax = lo.shape[1]
    M = cell.shape[2]
    n_blocks = (rows.shape[0] + BLOCK - 1) // BLOCK
    for blk in nb.prange(n_blocks):
        vec = np.empty((8, N))
        mat = np.empty((20, N, N))
        rws = np.empty((8, N + Kmax))
        Jbuf = np.empty((N + Kmax) * (N + Kmax))  # J of a row, contiguous (n × n)
        cden = np.zeros((N * N, Kmax))
        cbuf = np.empty((Kmax, M))
        cvbuf = np.empty((Kmax, N))
        cvtbuf = np.empty((N, Kmax))
        touched = np.empty((N, N), dtype=np.bool_)
        relwq = np.empty((2 * N, N))
        srcbuf = np.empty((N, N + 1), dtype=np.int64)  # sparse markets' weighted origins
        # the chain block's work arrays (unused by a single market)
        cw, cm, cl = np.empty((5, N)), np.empty((2, N, N)), np.empty((2, N, Kmax))
        vx = np.empty((4, N * N + 3 * N))  # the vectorised exponentials' scratch (_armington)
        for d in range(N):  # ln W0, the same for every row (read by _armington)
            vx[3, d] = math.log(w0sum[d])
        act = np.empty(N + Kmax, dtype=np.int64)  # unknowns of the reduced system (_mid_direction)
        for i in range(blk * BLOCK, min((blk + 1) * BLOCK, rows.shape[0])):
            b = rows[i]
            st, itb = _solve_one(
                b, u, it[b], tol, max_iter, max_halvings, mid, used, has_support, has_access,
                p0, q0, w0, w0sum, vw, relw, S0s, Df0, P0, producer, consumer,
                ef, tf, floor, cap, avail, sm, dm, vp, cp, K1, th, K2, V, eps, eta, sig,
                lo, hi, lsc, g0, gsc, cell, kind, wc, gc, chain,
                vec, mat, rws, Jbuf, cden, cbuf, cvbuf, touched, relwq, sparse, out, util,
                srcbuf, cw, cm, cl, vx, cvtbuf, act,
            )  # fmt: skip
            status[b] = st
            it[b] = itb


def _renamed(fn: Any, name: str) -> Any:
    """``fn`` as a distinct function named ``name`` (the same code). Numba's on-disk cache is
    keyed by a function's name and line, not by ``parallel``: two dispatchers of one function
    share a cache entry, and the second silently loads the first's machine code (whichever
    variant happened to compile first ran for both)."""
    out = types.FunctionType(fn.__code__.replace(co_name=name), fn.__globals__, name)
    out.__qualname__ = name
    out.__doc__ = fn.__doc__
    return out


newton_rows = nb.njit(parallel=True, cache=True, nogil=True, error_model="numpy")(_newton_rows)
# a few rows, or too few threads: in the calling thread
newton_rows_serial = nb.njit(cache=True, nogil=True, error_model="numpy")(
    _renamed(_newton_rows, "_newton_rows_serial")
)
#: when the parallel kernel runs (measured on a 2-core machine, side by side): on a single
#: market (12 regions) 2 threads solve about twice as fast as one; on a 40-node chain the
#: parallel variant with 2 threads took 1.5 times the serial time (each thread's work arrays,
#: 19 node × node matrices, no longer stay in cache), so large systems go parallel only
#: from 4 threads on
PARALLEL_MAX_NODES = 24
PARALLEL_FROM_THREADS = 4
SERIAL_BELOW = 2 * BLOCK
SPARSE_BELOW = 0.5  # a market with weights on at most this share of cells loops over them only


def _c(a, dtype=np.float64) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


def _per_row(a, B: int, N: int) -> np.ndarray:
    """``a`` (``(N,)`` or ``(B, N)``) as a contiguous, read-only float ``(B, N)``: a view when
    it has ``B`` rows already, else a copy as :func:`numpy.broadcast_to` would give.

    Always read-only, whatever ``a`` is: numba compiles a kernel once per argument type, and a
    read-only array is another type than a writable one, so passing both (per-draw elasticities
    are read-only views, one row of a market's writable) compiled the whole Newton kernel again
    (tens of seconds on a cold cache)."""
    a = np.asarray(a)
    if a.size == B * N and a.shape[-1:] == (N,) and a.dtype == np.float64 and a.flags.c_contiguous:
        out = a.reshape(B, N)  # a view
    else:
        out = np.array(np.broadcast_to(a, (B, N)), dtype=np.float64, order="C")
    out.flags.writeable = False
    return out


def _model_arrays(cal, B: int) -> tuple[Any, ...]:
    """What the kernel reads beyond the base data and the instruments, kept on the
    calibration (built once, then reused by every solve on it): final demand ``(1 or B,
    N)``; for chains (else ``None``) the base value added ``(1 or B, N)``, the coefficient
    entries (``cidx``: rows and columns ``(2, E)`` of the non-zero entries of ``C``, on the
    union of every scenario's pattern; ``ca``: their values ``(1 or B, E)``) and ``cnode``
    (a flag per node for the nodes makers buy from, then their list); ``True`` when at most
    :data:`SPARSE_BELOW` of the cells have a weight (stacked chain stages are
    block-diagonal), else ``None``. Outside chains the final demand is the base use."""
    key = (cal.C, cal.Df0, cal.v0, cal.w0)  # the arrays they were built from
    kept = cal.__dict__.get("_kernel_arrays")
    if kept is None or any(a is not b for a, b in zip(kept[0], key, strict=True)):
        N = cal.N
        Df0 = _c(np.atleast_2d(cal.Df0))
        sparse = True if np.count_nonzero(cal.w0) <= SPARSE_BELOW * N * N else None
        chain = None
        if cal.is_chain:
            C = np.asarray(cal.C, dtype=float)
            pattern = C != 0.0 if C.ndim == 2 else (C != 0.0).any(axis=0)
            cidx = _c(np.nonzero(pattern), np.int64)
            ca = _c(C[cidx[0], cidx[1]][None] if C.ndim == 2 else C[:, cidx[0], cidx[1]])
            inputs = np.unique(cidx[0])
            flags = np.zeros(N, dtype=np.int64)
            flags[inputs] = 1
            cnode = _c(np.concatenate([flags, inputs]), np.int64)
            chain = (_c(np.atleast_2d(cal.v0)), cidx, ca, cnode)
        kept = (key, Df0, chain, sparse)
        cal.__dict__["_kernel_arrays"] = kept  # (kept out of the dataclass fields)
    _, Df0, chain, sparse = kept
    rows = {Df0.shape[0]} | (set() if chain is None else {chain[0].shape[0], chain[2].shape[0]})
    if rows - {1, B}:
        raise ValueError(f"calibration arrays with other than 1 or {B} rows (the batch's)")
    return Df0, chain, sparse


def solve_rows(
    cal,
    inst,
    u: np.ndarray,
    iterations: np.ndarray,
    rows: np.ndarray,
    tol: float,
    max_iter: int,
    max_halvings: int = MAX_HALVINGS,
    state: bool = False,
    pairs: str = "fb",
):
    """Run the compiled Newton method on scenarios ``rows`` (in place in ``u``, ``iterations``).

    Parameters
    ----------
    cal, inst
        :class:`~tradepolicy.model.levels.Calibration` and
        :class:`~tradepolicy.model.instruments.Instruments` of the whole batch.
    u
        ``(B, N+K)`` starting points, overwritten with the iterates reached.
    iterations
        ``(B,)`` iterations done so far, updated.
    rows
        The scenarios to solve (the others are evaluated at ``u`` when ``state`` is asked for).
    state
        Also return the model state of every scenario at the point reached.
    pairs
        The complementarity function of the pair rows: ``"fb"`` (box Fischer–Burmeister) or
        ``"mid"`` (the natural residual), as :func:`tradepolicy.model.levels.evaluate`.

    Returns
    -------
    converged, nonfinite
        ``(B,)`` booleans for the rows solved (False elsewhere).
    state
        A :class:`~tradepolicy.model.levels.State` (without Jacobian) when ``state=True``.
    """
    if pairs not in ("fb", "mid"):
        raise ValueError(f"pairs {pairs!r} unknown (allowed: fb, mid)")
    mid = pairs == "mid"
    B, N, K = inst.B, cal.N, inst.K
    status = np.zeros(B, dtype=np.int8)
    u_c = _c(u)
    it = _c(iterations, np.int64)
    Df0, chain, sparse = _model_arrays(cal, B)
    e1, e2, e3 = np.empty((0, 0)), np.empty((0, 0, 0)), np.empty(0)
    if state:
        names = ("p", "lam", "fob", "q", "levy", "P", "D", "A", "X", "S", "support",
                 "covered", "p_marginal", "g", "F", "residual")  # fmt: skip
        shapes = {"lam": (B, K), "g": (B, K), "F": (B, N + K), "residual": (B,)}
        cells = ("fob", "q", "levy", "X")
        arrays = {
            name: np.empty(shapes.get(name, (B, N, N) if name in cells else (B, N)))
            for name in names
        }
        if chain is not None:  # chains: unit input cost and makers' demand (as the reference)
            arrays["input_cost"], arrays["derived"] = np.empty((B, N)), np.empty((B, N))
        chain_out = (arrays.get("input_cost", e1), arrays.get("derived", e1))
        out = (*(arrays[name] for name in names), *chain_out)
    else:
        arrays = {}
        out = (e1, e1, e2, e2, e2, e1, e1, e1, e2, e1, e1, e1, e1, e1, e1, e3, e1, e1)
    args = (
        _c(inst.pairs_used, np.int64), bool(inst.has_support), bool(inst.has_access), out,
        _c(cal.p0), _c(cal.q0), _c(cal.w0), _c(cal.w0sum), _c(inst.variety_weight),
        _c(inst.relative_wedge(cal.ln_wedge0)),
        _c(np.where(cal.producer, cal.S0, 1.0)), Df0, _c(cal.P0),
        _c(cal.producer, np.bool_), _c(cal.consumer, np.bool_),
        _c(inst.export_factor), _c(inst.tariff_factor), _c(inst.floor), _c(inst.levy_cap),
        _c(inst.available, np.bool_), _c(inst.supply_mult), _c(inst.demand_mult),
        _c(inst.variety_purchase), _c(inst.composite_purchase), _c(inst.support_strike),
        _c(inst.support_share), _c(inst.support_upper), _c(inst.support_volume),
        _per_row(cal.eps, B, N), _per_row(cal.eta, B, N), _per_row(cal.sigma, B, N),
        _c(inst.lam_lo), _c(inst.lam_hi), _c(inst.lam_scale), _c(inst.g0), _c(inst.g_scale),
        _c(inst.cell, np.int64), _c(inst.wedge, np.int8), _c(inst.wedge_coef), _c(inst.g_coef),
        chain,
        sparse,
        None if cal.utilisation is None else _c(np.atleast_2d(cal.utilisation)),
    )  # fmt: skip
    rows = _c(rows, np.int64)
    # with `state`, the rows not solved are evaluated where they are (their status, which
    # may read non-finite there, is not theirs to report)
    # (as np.setdiff1d(np.arange(B), rows), which costs ~25 µs for one row)
    rest = rows[:0]
    if state:
        left = np.ones(B, dtype=bool)
        left[rows] = False
        rest = np.flatnonzero(left)
    for todo, limit, flags in ((rows, max_iter, status), (rest, 0, np.zeros_like(status))):
        if todo.size:
            parallel = todo.size >= SERIAL_BELOW and (
                N <= PARALLEL_MAX_NODES or nb.get_num_threads() >= PARALLEL_FROM_THREADS
            )
            run = newton_rows if parallel else newton_rows_serial
            run(todo, u_c, it, flags, float(tol), int(limit), int(max_halvings), mid, *args)
    if u_c is not u:
        u[...] = u_c
    iterations[...] = it
    fields: dict[str, Any] = arrays
    st = State(J=None, **fields) if state else None
    return status == 1, status == 2, st
