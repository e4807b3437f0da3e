"""Batched globalised semismooth Newton for the market equations.

All scenarios are solved at once: each iteration evaluates residuals and analytic Jacobians
as ``(B, n)`` / ``(B, n, n)`` arrays, solves the B linear systems in one LAPACK call and runs a
vectorised Armijo backtracking line search on the merit ``½‖F‖²`` (each scenario has its own
step). Complementarity pairs enter through the Fischer–Burmeister function, which makes the
system semismooth. Scenarios that stall fall back to :func:`scipy.optimize.root` (``hybr`` then
``lm``) on the same equations; a scenario that still fails is reported as not converged with
a message, never returned as if solved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from tradepolicy.model.instruments import Instruments
from tradepolicy.model.levels import Calibration, State, evaluate, initial_guess

log = logging.getLogger(__name__)

DEFAULT_TOL = 1e-11
MAX_LOG_STEP = 2.0  # largest change of ln p in one Newton step
ARMIJO = 1e-4
CHUNK = 512  # scenarios per Newton block: keeps temporaries in cache


@dataclass
class SolveResult:
    """Solution arrays and diagnostics for a batch of scenarios."""

    u: np.ndarray  # (B, N+K) unknowns
    state: State  # model evaluated at the solution
    converged: np.ndarray  # (B,) bool
    iterations: np.ndarray  # (B,) int
    max_residual: np.ndarray  # (B,)
    messages: list[str] = field(default_factory=list)
    method: list[str] = field(default_factory=list)


def take_calibration(cal: Calibration, idx: np.ndarray) -> Calibration:
    """Calibration restricted to scenarios ``idx`` when elasticities vary by scenario."""
    if all(np.ndim(a) == 1 for a in (cal.eps, cal.eta, cal.sigma)):
        return cal
    B = max(np.shape(a)[0] for a in (cal.eps, cal.eta, cal.sigma) if np.ndim(a) == 2)

    def pick(a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(a, (B, cal.N))[idx] if np.ndim(a) == 2 else a

    return cal.with_elasticities(pick(cal.eps), pick(cal.eta), pick(cal.sigma))


def _merit(F: np.ndarray) -> np.ndarray:
    return 0.5 * np.einsum("bi,bi->b", F, F)


def _newton_direction(J: np.ndarray, F: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(J, -F[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.empty_like(F)
        for i in range(F.shape[0]):
            try:
                out[i] = np.linalg.solve(J[i], -F[i])
            except np.linalg.LinAlgError:
                out[i] = np.linalg.lstsq(J[i], -F[i], rcond=None)[0]
        return out


def infeasibility(cal: Calibration, inst: Instruments) -> list[str]:
    """Scenarios that have no equilibrium by construction (empty string when fine)."""
    msgs = list(inst.infeasible) if inst.infeasible else [""] * inst.B
    sigma = np.broadcast_to(cal.sigma, (inst.B, cal.N))
    removed = (~inst.available) & (cal.X0 > 0)
    essential = removed & (sigma[:, None, :] <= 1.0)
    left = np.where(inst.available, cal.w0 > 0, False).any(axis=1)  # (B,N) any variety left
    stranded = cal.consumer & ~left
    for b in np.flatnonzero(stranded.any(axis=1)):
        if not msgs[b]:
            d = int(np.flatnonzero(stranded[b])[0])
            msgs[b] = (
                f"infeasible: every supplier of {cal.regions[d]} is removed, so it can buy "
                "nothing at any price (the composite price is unbounded)"
            )
    for b in np.flatnonzero(essential.any(axis=(1, 2))):
        if msgs[b]:
            continue
        o, d = np.argwhere(essential[b])[0]
        msgs[b] = (
            f"infeasible: removing {cal.regions[o]}'s supply to {cal.regions[d]} leaves no "
            f"equilibrium because varieties are essential there (substitution elasticity "
            f"{sigma[b, d]:g} <= 1)"
        )
    return msgs


def _sub(cal: Calibration, inst: Instruments, idx: np.ndarray, n: int):
    """Calibration and instruments of scenarios ``idx`` (no copy when ``idx`` is 0..n-1)."""
    if idx.size == n and (n == 0 or (idx[0] == 0 and np.all(np.diff(idx) == 1))):
        return cal, inst
    return take_calibration(cal, idx), inst.take(idx)


def solve_batch(
    cal: Calibration,
    inst: Instruments,
    u0: np.ndarray | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = 60,
    fallback: bool = True,
    chunk: int = CHUNK,
) -> SolveResult:
    """Solve B scenarios at once.

    Parameters
    ----------
    cal, inst
        Calibration (elasticities ``(N,)`` or ``(B, N)``) and batched instruments.
    u0
        Starting point ``(B, N+K)``; default base prices and λ at lower bounds.
    tol
        Convergence when ``max |F| <= tol``: clearing residuals relative to the larger of
        base and current output, complementarity residuals as they are.
    max_iter
        Newton iterations before the scipy fallback.
    fallback
        Whether stalled scenarios are retried with :func:`scipy.optimize.root`.
    chunk
        Scenarios processed together (bounds the size of temporaries; results do not depend
        on it).
    """
    B = inst.B
    u = initial_guess(cal, inst) if u0 is None else np.array(u0, dtype=float)
    converged = np.zeros(B, dtype=bool)
    iterations = np.zeros(B, dtype=int)
    messages = infeasibility(cal, inst)
    method = ["newton"] * B
    todo = np.flatnonzero([not m for m in messages])
    final = _StateRows(B)
    redo = np.setdiff1d(np.arange(B), todo)  # rows whose final state is evaluated at the end
    # chunks of scenarios with similar numbers of complementarity pairs, each trimmed to
    # the pairs it uses (padding costs time in every Jacobian)
    used = inst.pairs_used
    todo = todo[np.argsort(used[todo], kind="stable")]
    N = cal.N
    for start in range(0, todo.size, chunk):
        idx = todo[start : start + chunk]
        kc = int(used[idx].max(initial=0))
        cal_c, inst_c = _sub(cal, inst, idx, B)
        inst_c = inst_c.trim(kc)
        u_c, conv_c, it_c, bad_c, rows_c = _newton(cal_c, inst_c, u[idx, : N + kc], tol, max_iter)
        u[idx, : N + kc] = u_c
        final.merge(idx, rows_c)
        converged[idx], iterations[idx] = conv_c, it_c
        for b in idx[bad_c]:
            messages[b] = "residuals became non-finite"

    if fallback:
        retried = []
        for b in np.flatnonzero(~converged & np.array([not m for m in messages])):
            ok, ub, nit, how = _scipy_fallback(cal, inst, b, u[b], tol)
            if ok:
                u[b], converged[b] = ub, True
                iterations[b] += nit
                method[b] = how
                retried.append(b)
        redo = np.union1d(redo, np.array(retried, dtype=int))
    if redo.size:
        st_r = _evaluate_rows(cal, inst, u, redo)
        final.put(redo, st_r)
    final = final.state(inst)
    max_res = final.residual.copy()
    max_res = np.where(np.isfinite(max_res), max_res, np.inf)
    converged &= max_res <= tol
    for b in range(B):
        if not converged[b] and not messages[b]:
            messages[b] = (
                f"not converged after {iterations[b]} iterations "
                f"(max residual {max_res[b]:.3g} > tolerance {tol:g})"
            )
    if (~converged).any():
        log.warning("%d of %d scenarios did not converge", int((~converged).sum()), B)
    return SolveResult(u, final, converged, iterations, max_res, messages, method)


_STATE_FIELDS = tuple(f for f in State.__dataclass_fields__ if f != "J")


class _StateRows:
    """Model states of a batch, row by row: the last state recorded for each row wins.

    Recording keeps references only; rows are copied once, when :meth:`state` assembles them.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.parts: list[tuple[State, np.ndarray]] = []
        self.owner = np.full(n, -1)  # which part holds each row's state ...
        self.pos = np.zeros(n, dtype=int)  # ... and at which row of that part

    def put(self, rows: np.ndarray | slice, st: State, sel: np.ndarray | None = None) -> None:
        """Record ``st`` (rows ``sel``: a mask or positions; default all) for ``rows``."""
        rows = np.arange(self.n)[rows]
        if sel is None:
            where = np.arange(st.F.shape[0])
        elif sel.dtype == bool:
            where = np.flatnonzero(sel)
        else:
            where = sel
        self.owner[rows] = len(self.parts)
        self.pos[rows] = where
        self.parts.append((st, where))

    def merge(self, rows: np.ndarray, other: _StateRows) -> None:
        """Take over the records of ``other``, whose row i is row ``rows[i]`` here."""
        for k, (st, _) in enumerate(other.parts):
            mine = np.flatnonzero(other.owner == k)
            if mine.size:
                self.put(rows[mine], st, other.pos[mine])

    def state(self, inst: Instruments) -> State:
        """Assemble the recorded rows; ``inst`` fills what lean evaluations left out."""
        if (self.owner < 0).any():
            raise RuntimeError("a row has no recorded state")
        lean = [st.fob is None for st, _ in self.parts]
        if len(self.parts) == 1 and not lean[0] and np.array_equal(self.pos, np.arange(self.n)):
            st = self.parts[0][0]
            return State(**{name: getattr(st, name) for name in _STATE_FIELDS})
        first = self.parts[0][0]
        arrays = {}
        for name in _STATE_FIELDS:
            a = getattr(first, name)
            shape = (first.X if a is None else a).shape[1:]
            if name in ("lam", "g", "F"):  # chunks may use fewer pairs: pad with zeros
                shape = (max(getattr(st, name).shape[1] for st, _ in self.parts),)
                arrays[name] = np.zeros((self.n, *shape))
            else:
                arrays[name] = np.empty((self.n, *shape))
        for k, (st, _) in enumerate(self.parts):
            rows = np.flatnonzero(self.owner == k)
            if not rows.size:
                continue
            at = self.pos[rows]
            for name, arr in arrays.items():
                val = getattr(st, name)
                if val is None:
                    continue
                if name in ("lam", "g", "F"):
                    arr[rows, : val.shape[1]] = val[at]
                else:
                    arr[rows] = val[at]
            if lean[k]:  # plain wedges: fob = p (1 + x), no levy
                arrays["fob"][rows] = arrays["p"][rows][:, :, None] * inst.export_factor[rows]
                arrays["levy"][rows] = 0.0
        return State(**arrays)


def _evaluate_rows(cal: Calibration, inst: Instruments, u: np.ndarray, rows: np.ndarray):
    sub_cal, sub_inst = _sub(cal, inst, rows, inst.B)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return evaluate(sub_cal, sub_inst, u[rows], jacobian=False)


def _newton(
    cal: Calibration, inst: Instruments, u: np.ndarray, tol: float, max_iter: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, _StateRows]:
    """Globalised Newton on one chunk.

    Returns iterates, converged, iterations, non-finite flags and the model states at the
    returned iterates (kept from the last accepted trial point, so no extra evaluation).
    """
    n = inst.B
    u = u.copy()
    converged = np.zeros(n, dtype=bool)
    iterations = np.zeros(n, dtype=int)
    bad_all = np.zeros(n, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        st = evaluate(cal, inst, u, jacobian=True, lean=True)
    rows = _StateRows(n)
    rows.put(slice(None), st)
    F, J, res = st.F, st.J, st.residual
    active = np.arange(n)
    for it in range(max_iter + 1):
        bad = ~np.isfinite(res)
        done = (res <= tol) & ~bad
        converged[active[done]] = True
        iterations[active[done]] = it
        bad_all[active[bad]] = True
        keep = ~done & ~bad
        active, F, J, res = active[keep], F[keep], J[keep], res[keep]
        if it == max_iter or active.size == 0:
            iterations[active] = it
            break
        d = _newton_direction(J, F)
        N = cal.N
        big = np.max(np.abs(d[:, :N]), axis=1, initial=0.0)
        d *= np.minimum(1.0, MAX_LOG_STEP / np.where(big > 0, big, 1.0))[:, None]
        d = np.where(np.isfinite(d), d, 0.0)
        u[active], F, J, res = _line_search(cal, inst, active, u[active], d, _merit(F), rows)
    return u, converged, iterations, bad_all, rows


def _line_search(
    cal: Calibration,
    inst: Instruments,
    idx: np.ndarray,
    u: np.ndarray,
    d: np.ndarray,
    m0: np.ndarray,
    rows: _StateRows,
    max_halvings: int = 30,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised Armijo backtracking for scenarios ``idx`` of the chunk.

    Trial points are evaluated with their Jacobian, so the accepted point's residual and
    Jacobian are returned for the next Newton iteration without a second evaluation; its
    model state goes to ``rows``.
    """
    n = len(idx)
    alpha = np.ones(n)
    out = u + d
    F = np.empty((n, u.shape[1]))
    J = np.empty((n, u.shape[1], u.shape[1]))
    res = np.empty(n)
    pending = np.arange(n)
    for _ in range(max_halvings):
        trial = u[pending] + alpha[pending, None] * d[pending]
        sub_cal, sub_inst = _sub(cal, inst, idx[pending], inst.B)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            st = evaluate(sub_cal, sub_inst, trial, jacobian=True, lean=True)
        m = _merit(st.F)
        ok = np.isfinite(m) & (m <= (1.0 - 2.0 * ARMIJO * alpha[pending]) * m0[pending])
        acc = pending[ok]
        out[acc], F[acc], J[acc], res[acc] = trial[ok], st.F[ok], st.J[ok], st.residual[ok]
        rows.put(idx[acc], st, ok)
        pending = pending[~ok]
        if pending.size == 0:
            return out, F, J, res
        alpha[pending] *= 0.5
    # no sufficient decrease: take the smallest step tried
    out[pending] = u[pending] + alpha[pending, None] * d[pending]
    sub_cal, sub_inst = _sub(cal, inst, idx[pending], inst.B)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        st = evaluate(sub_cal, sub_inst, out[pending], jacobian=True, lean=True)
    F[pending], J[pending], res[pending] = st.F, st.J, st.residual
    rows.put(idx[pending], st)
    return out, F, J, res


def _scipy_fallback(
    cal: Calibration, inst: Instruments, b: int, u_last: np.ndarray, tol: float
) -> tuple[bool, np.ndarray, int, str]:
    """Retry one scenario with scipy's MINPACK solvers on the same equations."""
    sub_cal, sub_inst = take_calibration(cal, np.array([b])), inst.take(np.array([b]))

    def fun(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            st = evaluate(sub_cal, sub_inst, x[None], jacobian=True)
        return st.F[0], st.J[0]

    starts = [u_last, initial_guess(sub_cal, sub_inst)[0]]
    for how in ("hybr", "lm"):
        for x0 in starts:
            try:
                sol = optimize.root(fun, x0, jac=True, method=how, tol=tol * 1e-2)
            except (ValueError, FloatingPointError):
                continue
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                check = evaluate(sub_cal, sub_inst, sol.x[None], jacobian=False)
            if np.all(np.isfinite(check.F)) and check.residual[0] <= tol:
                return True, sol.x, int(getattr(sol, "nfev", 0)), f"scipy-{how}"
    return False, u_last, 0, "failed"
