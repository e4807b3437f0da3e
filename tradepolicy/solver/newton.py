"""Batched globalised semismooth Newton for the market equations.

:func:`solve_batch` runs the compiled kernel (:mod:`tradepolicy.core.kernel`) by default; the
numpy path here is the reference it is tested against. On that path all scenarios are solved
at once, in chunks of similar ones: each round evaluates residuals
(and, where a Newton iteration follows, analytic Jacobians) as ``(B, n)`` / ``(B, n, n)``
arrays, solves the linear systems in one LAPACK call and runs a vectorised Armijo
backtracking line search on the merit ``½‖F‖²`` (each scenario has its own step).
Complementarity pairs enter in two passes: first as natural residuals
``λ − mid(lo, λ − g, hi)`` (piecewise linear: about a fifth fewer iterations), for at most
:data:`MID_PASS_ITER` iterations; a row that does not converge there (it stalls: no step down to
``2^-MID_PASS_HALVINGS`` decreases the merit, or a multiplier would run off) starts again from
its start with the box Fischer–Burmeister function, whose smooth merit is the robust
globalisation. Both functions vanish exactly on the complementarity set, so the equilibria are
the same. Scenarios that stall fall back to :func:`scipy.optimize.root` (``hybr`` then
``lm``) on the same equations; a scenario that still fails is reported as not converged with
a message, never returned as if solved.

Each scenario follows the same iterates whatever it is batched with (only the padding of
complementarity pairs changes rounding): the batching, the pooling of a chunk's last
scenarios with other chunks' and the trying of several steps at once only save calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import optimize

from tradepolicy.core import kernel
from tradepolicy.model.instruments import Instruments
from tradepolicy.model.levels import Calibration, State, evaluate, initial_guess, jacobian_of

log = logging.getLogger(__name__)

DEFAULT_TOL = 1e-11
MAX_LOG_STEP = 2.0  # largest change of ln p in one Newton step
ARMIJO = 1e-4
CHUNK = 512  # scenarios per Newton block: keeps temporaries in cache
MAX_HALVINGS = kernel.MAX_HALVINGS  # halvings of a Newton step before it is taken anyway
MID_PASS_ITER = 20  # iterations of the first pass (pairs as natural residuals) ...
MID_PASS_HALVINGS = 8  # ... and halvings before a row of it stalls (goes to the second)
JACOBIAN_ALL = 0.7  # Jacobians for all trial points when at least this share need one
TRIAL_ROWS = 64  # when this few scenarios are left, those backtracking try several steps ...
MAX_STEPS = 8  # ... at most this many in one evaluation


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
    """Calibration restricted to scenarios ``idx`` when parameters vary by scenario."""
    shapes = [np.shape(a)[0] for a in (cal.eps, cal.eta, cal.sigma) if np.ndim(a) == 2]
    if cal.C is not None and cal.C.ndim == 3:
        shapes.append(cal.C.shape[0])
    if cal.utilisation is not None and cal.utilisation.ndim == 2:
        shapes.append(cal.utilisation.shape[0])
    if not shapes:
        return cal
    return cal.take_rows(idx, max(shapes))


def _merit(F: np.ndarray) -> np.ndarray:
    return 0.5 * np.einsum("bi,bi->b", F, F)


def _newton_direction(J: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solutions of ``J d = −F`` (least squares where ``J`` is exactly singular) and which
    rows were."""
    singular = np.zeros(F.shape[0], dtype=bool)
    try:
        return np.linalg.solve(J, -F[..., None])[..., 0], singular
    except np.linalg.LinAlgError:
        out = np.empty_like(F)
        for i in range(F.shape[0]):
            try:
                out[i] = np.linalg.solve(J[i], -F[i])
            except np.linalg.LinAlgError:
                out[i] = np.linalg.lstsq(J[i], -F[i], rcond=None)[0]
                singular[i] = True
        return out, singular


def infeasibility(cal: Calibration, inst: Instruments) -> list[str]:
    """Scenarios that have no equilibrium by construction (empty string when fine)."""
    msgs = list(inst.infeasible) if inst.infeasible else [""] * inst.B
    if not inst.has_access and inst.available.all():
        # nothing removed (nothing essential) and the base shares: a consumer is stranded
        # only when no origin sells to it at base; the general path below when one is
        if not (cal.consumer & ~(cal.w0 > 0).any(axis=-2)).any():
            return msgs
    sigma = np.broadcast_to(cal.sigma, (inst.B, cal.N))
    removed = (~inst.available) & (cal.X0 > 0)
    essential = removed & (sigma[:, None, :] <= 1.0)
    w0 = inst.access_weights(cal.w0, cal.w0sum) if inst.has_access else cal.w0
    left = np.where(inst.available, w0 > 0, False).any(axis=1)  # (B,N) any variety left
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
    return take_calibration(cal, idx), inst.take(idx, model_only=True)


def solve_batch(
    cal: Calibration,
    inst: Instruments,
    u0: np.ndarray | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = 60,
    fallback: bool | np.ndarray = True,
    chunk: int = CHUNK,
    engine: Literal["compiled", "numpy"] = "compiled",
    report: bool = True,
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
        Newton iterations of the second pass (Fischer–Burmeister pairs) before the scipy
        fallback; the first pass (natural residuals) takes at most ``min(max_iter,
        MID_PASS_ITER)``. ``iterations`` counts both passes.
    fallback
        Whether stalled scenarios are retried with :func:`scipy.optimize.root`, or a
        ``(B,)`` boolean mask of the scenarios that may be.
    chunk
        Scenarios processed together on the numpy path (bounds the size of temporaries;
        results do not depend on it).
    engine
        ``"compiled"`` (default): the numba kernel (:mod:`tradepolicy.core.kernel`), one
        scenario per task, scenarios in parallel. ``"numpy"``: the batched reference path.
        Both follow the same iterates (equal to rounding) with the same diagnostics.
    """
    if engine not in ("compiled", "numpy"):
        raise ValueError(f"engine {engine!r} unknown (allowed: compiled, numpy)")
    B = inst.B
    u = initial_guess(cal, inst) if u0 is None else np.array(u0, dtype=float)
    if u.shape != (B, cal.N + inst.K):  # the kernel does not check its bounds
        raise ValueError(
            f"start u0 has shape {u.shape}, the batch's unknowns are ({B}, {cal.N + inst.K}) "
            f"({cal.N} prices and {inst.K} complementarity pairs): map a start from another "
            "layout with map_unknowns"
        )
    converged = np.zeros(B, dtype=bool)
    iterations = np.zeros(B, dtype=int)
    messages = infeasibility(cal, inst)
    method = ["newton"] * B
    todo = np.flatnonzero([not m for m in messages])
    # first pass: the pairs as natural residuals (fewer iterations), a short budget
    start = u[todo]
    final_state, bad = _newton_pass(
        cal, inst, u, iterations, converged, todo, tol, min(max_iter, MID_PASS_ITER), engine,
        chunk, "mid", MID_PASS_HALVINGS,
    )  # fmt: skip
    again = todo[~converged[todo]]
    if again.size:  # second pass: the rest from their start with Fischer–Burmeister pairs
        sub_cal, sub_inst = _sub(cal, inst, again, B)
        u_a = start[np.searchsorted(todo, again)]
        it_a = np.zeros(again.size, dtype=int)
        conv_a = np.zeros(again.size, dtype=bool)
        st_a, bad_a = _newton_pass(
            sub_cal, sub_inst, u_a, it_a, conv_a, np.arange(again.size), tol, max_iter,
            engine, chunk, "fb", MAX_HALVINGS,
        )  # fmt: skip
        u[again], converged[again], bad[again] = u_a, conv_a, bad_a
        iterations[again] += it_a
        _put_rows(final_state, again, st_a)
    for row in np.flatnonzero(bad):
        messages[row] = "residuals became non-finite"
    eligible = np.broadcast_to(np.asarray(fallback, dtype=bool), (B,))
    if eligible.any():
        retried = []
        for row in np.flatnonzero(~converged & np.array([not m for m in messages]) & eligible):
            ok, ub, nit, how = _scipy_fallback(cal, inst, row, u[row], tol)
            if ok:
                u[row], converged[row] = ub, True
                iterations[row] += nit
                method[row] = how
                retried.append(row)
        if retried:  # their state where scipy left them
            rows = np.array(retried, dtype=int)
            _put_rows(final_state, rows, _evaluate_rows(cal, inst, u, rows))
    max_res = final_state.residual.copy()
    max_res = np.where(np.isfinite(max_res), max_res, np.inf)
    converged &= max_res <= tol
    for b in range(B):
        if not converged[b] and not messages[b]:
            messages[b] = (
                f"not converged after {iterations[b]} iterations "
                f"(max residual {max_res[b]:.3g} > tolerance {tol:g})"
            )
    if report and (~converged).any():
        log.warning("%d of %d scenarios did not converge", int((~converged).sum()), B)
    return SolveResult(u, final_state, converged, iterations, max_res, messages, method)


def _newton_pass(
    cal: Calibration,
    inst: Instruments,
    u: np.ndarray,
    iterations: np.ndarray,
    converged: np.ndarray,
    todo: np.ndarray,
    tol: float,
    max_iter: int,
    engine: str,
    chunk: int,
    pairs: str,
    max_halvings: int,
) -> tuple[State, np.ndarray]:
    """Newton on rows ``todo`` with the pairs' function ``pairs`` (in place in ``u``,
    ``iterations``, ``converged``); every row's state and the non-finite rows."""
    if engine == "compiled":
        conv, bad, st = kernel.solve_rows(
            cal, inst, u, iterations, todo, tol, max_iter, max_halvings, True, pairs
        )
        converged[todo] = conv[todo]
        if st is None:
            raise RuntimeError("the kernel returned no state")
        return st, bad
    return _solve_numpy(
        cal, inst, u, iterations, converged, todo, tol, max_iter, chunk, pairs, max_halvings
    )


def map_unknowns(
    u: np.ndarray,
    N: int,
    src: np.ndarray | list[int],
    dst: np.ndarray | list[int],
    fill: np.ndarray | None = None,
) -> np.ndarray:
    """Unknowns ``u`` ``(B, N + src[-1])`` laid out in another batch's layout ``(B, N +
    dst[-1])``: the N prices as they are, then each block of complementarity pairs
    (``src[s]:src[s+1]`` to ``dst[s]:dst[s+1]``, e.g. a chain's stages) by position: the
    pairs both layouts share keep their value, a pair only the destination has starts at
    ``fill`` (its lower bound, ``(B, dst[-1])``; default 0), a pair only the source has is
    dropped. Pairs are written first to last with padding at the end, so the measures a row
    keeps come first: a layout that appends measures (an event year's) keeps the
    multipliers of the others."""
    src, dst = np.asarray(src, dtype=int), np.asarray(dst, dtype=int)
    if src.size != dst.size:
        raise ValueError(f"{src.size - 1} pair blocks mapped to {dst.size - 1}")
    if u.shape[1] != N + src[-1]:
        raise ValueError(f"unknowns of width {u.shape[1]}, layout {N} + {src[-1]}")
    if np.array_equal(src, dst):
        return np.array(u, dtype=float)
    out = np.zeros((u.shape[0], N + int(dst[-1])))
    if fill is not None:
        out[:, N:] = fill
    out[:, :N] = u[:, :N]
    for s in range(src.size - 1):
        k = min(src[s + 1] - src[s], dst[s + 1] - dst[s])
        out[:, N + dst[s] : N + dst[s] + k] = u[:, N + src[s] : N + src[s] + k]
    return out


def solve_warm(
    cal: Calibration,
    inst: Instruments,
    u0: np.ndarray,
    tol: float = DEFAULT_TOL,
    max_iter: int = 60,
    fallback_rows: np.ndarray | None = None,
    homotopy: Homotopy | None = None,
) -> SolveResult:
    """:func:`solve_batch` from a warm start ``u0`` (e.g. the year before, in a pathway):
    rows that do not converge from there are solved again from the default start (a measure
    that came into force can put the old solution far away), and only those that still do
    not converge go to the scipy fallback (only ``fallback_rows`` when given: e.g. the
    central rows of a Monte Carlo batch, whose draws are many and may be left unsolved).

    ``homotopy``: a path of calibrations ending at ``cal`` (e.g. from medium-run to short-run
    elasticities in a pathway's event years). Rows of it that do not converge from ``u0`` are
    first followed along it (:func:`continuation`) before the default start is tried: the
    same equations at the end, the same tolerance."""
    first = solve_batch(cal, inst, u0=u0, tol=tol, max_iter=max_iter, fallback=False, report=False)
    bad = np.flatnonzero(~first.converged)
    if bad.size and homotopy is not None:
        along = bad[homotopy.rows[bad]]
        if along.size:
            ok, u_h, it_h = continuation(
                homotopy, inst.take(along), u0[along], along, tol, max_iter
            )
            first.iterations[along[~ok]] += it_h[~ok]  # counted in their message
            done = along[ok]
            if done.size:
                st = solve_batch(
                    take_calibration(cal, done),
                    inst.take(done),
                    u0=u_h[ok],
                    tol=tol,
                    max_iter=max_iter,
                    fallback=False,
                    report=False,
                )  # the end point again on the target's own arrays: its state and check
                keep = st.converged
                done = done[keep]
                first.u[done] = st.u[keep]
                first.converged[done] = True
                first.iterations[done] += it_h[ok][keep] + st.iterations[keep]
                first.max_residual[done] = st.max_residual[keep]
                _put_rows(first.state, done, _evaluate_rows(cal, inst, first.u, done))
                for r in done.tolist():
                    first.method[r], first.messages[r] = "newton-continuation", ""
            bad = np.flatnonzero(~first.converged)
    if not bad.size:
        return first
    allowed = True if fallback_rows is None else np.isin(bad, fallback_rows)
    again = solve_batch(
        take_calibration(cal, bad),
        inst.take(bad),
        tol=tol,
        max_iter=max_iter,
        fallback=allowed,
        report=False,
    )
    first.u[bad] = again.u
    first.converged[bad] = again.converged
    first.iterations[bad] += again.iterations
    first.max_residual[bad] = again.max_residual
    _put_rows(first.state, bad, again.state)
    for j, r in enumerate(bad.tolist()):
        first.method[r] = again.method[j]
        first.messages[r] = again.messages[j]
        if again.messages[j].startswith("not converged"):  # both passes' iterations
            first.messages[r] = (
                f"not converged after {first.iterations[r]} iterations "
                f"(max residual {first.max_residual[r]:.3g} > tolerance {tol:g})"
            )
    return first


@dataclass
class Homotopy:
    """A path of calibrations for some rows of a batch: ``at(rows, t)`` is the calibration of
    batch rows ``rows`` at ``t`` (one per row, in [0, 1]); ``t = 1`` is the batch's own
    calibration, ``t = 0`` an easier problem (e.g. the medium-run elasticities of a row
    solved at short-run ones). ``rows``: ``(B,)`` bool, the rows that have such a path."""

    rows: np.ndarray
    at: Callable[[np.ndarray, np.ndarray], Calibration]


#: continuation: first step in t, and the smallest before a row is given up
CONTINUATION_STEP = 0.25
CONTINUATION_MIN_STEP = 1.0 / 512
CONTINUATION_ROUNDS = 24


def continuation(
    homotopy: Homotopy,
    inst: Instruments,
    u0: np.ndarray,
    rows: np.ndarray,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Follow batch rows ``rows`` (instruments ``inst``, starts ``u0``) along ``homotopy``
    from t = 0 to 1: each step is a Newton solve warm-started from the last solved point;
    a step that does not converge is tried again a quarter as long, one that does lets the
    next be twice as long. Returns which rows reached t = 1, their unknowns there and the
    Newton iterations spent (all steps, the failed ones too)."""
    n = rows.size
    u = np.array(u0, dtype=float)
    t = np.zeros(n)
    h = np.full(n, CONTINUATION_STEP)
    its = np.zeros(n, dtype=int)
    first = True
    live = np.ones(n, dtype=bool)
    for _ in range(CONTINUATION_ROUNDS):
        idx = np.flatnonzero(live)
        if not idx.size:
            break
        tn = np.zeros(idx.size) if first else np.minimum(1.0, t[idx] + h[idx])
        sol = solve_batch(
            homotopy.at(rows[idx], tn),
            inst.take(idx),
            u0=u[idx],
            tol=tol,
            max_iter=max_iter,
            fallback=False,
            report=False,
        )
        its[idx] += sol.iterations
        ok = sol.converged
        u[idx[ok]] = sol.u[ok]
        t[idx[ok]] = tn[ok]
        if first:  # no easier end to start from: given up
            live[idx[~ok]] = False
            first = False
        else:
            h[idx[ok]] *= 2.0
            h[idx[~ok]] /= 4.0
        live &= (t < 1.0) & (h >= CONTINUATION_MIN_STEP)
    return t >= 1.0, u, its


def _solve_numpy(
    cal: Calibration,
    inst: Instruments,
    u: np.ndarray,
    iterations: np.ndarray,
    converged: np.ndarray,
    todo: np.ndarray,
    tol: float,
    max_iter: int,
    chunk: int,
    pairs: str = "fb",
    max_halvings: int = MAX_HALVINGS,
) -> tuple[State, np.ndarray]:
    """The reference path: Newton on rows ``todo`` in chunks of similar scenarios (in place in
    ``u``, ``iterations``, ``converged``); returns every row's state and the non-finite rows.
    ``pairs``: the complementarity function (:func:`~tradepolicy.model.levels.evaluate`).

    Chunks group scenarios with similar numbers of complementarity pairs, each trimmed to the
    pairs it uses (padding costs time in every Jacobian). A chunk stops when few of its
    scenarios are left: those stragglers are pooled with the other chunks' and continue
    together (small batches cost a call overhead per iteration).
    """
    B, N = inst.B, cal.N
    final = _StateRows(B, N, inst.K)
    bad = np.zeros(B, dtype=bool)
    unsolved = np.setdiff1d(np.arange(B), todo)  # evaluated where they are, at the end
    used = inst.pairs_used
    defer = chunk // 16
    while todo.size:
        todo = todo[np.argsort(used[todo], kind="stable")]
        starts = range(0, todo.size, chunk)
        later = []
        for start in starts:
            idx = todo[start : start + chunk]
            kc = int(used[idx].max(initial=0))
            cal_c = take_calibration(cal, idx)
            inst_c = inst.take(idx, model_only=True, pairs=kc)
            u_c, conv_c, it_c, bad_c, rows_c, stalled_c = _newton(
                cal_c,
                inst_c,
                u[idx, : N + kc],
                iterations[idx],
                tol,
                max_iter,
                stop_below=defer if len(starts) > 1 else 0,
                max_halvings=max_halvings,
                pairs=pairs,
            )
            u[idx, : N + kc] = u_c
            final.put(idx, rows_c.state(inst_c))
            converged[idx], iterations[idx], bad[idx] = conv_c, it_c, bad_c
            later.append(idx[~conv_c & ~bad_c & ~stalled_c & (it_c < max_iter)])
        todo = np.concatenate(later)
    if unsolved.size:
        final.put(unsolved, _evaluate_rows(cal, inst, u, unsolved, pairs))
    return final.state(inst), bad


_STATE_FIELDS = tuple(f for f in State.__dataclass_fields__ if f not in ("J", "parts"))
_CHAIN_FIELDS = ("input_cost", "derived")


class _StateRows:
    """Model states of a batch, row by row: the last state recorded for each row wins.

    Recorded rows are copied into arrays for the whole batch at once, so the memory is that
    of one state of the batch however many trial points are recorded. ``K``: the widest
    complementarity-pair axis recorded (narrower states are padded with zeros).
    """

    def __init__(self, n: int, N: int, K: int) -> None:
        self.n, self.N, self.K = n, N, K
        self.arrays: dict[str, np.ndarray] = {}
        self.lean = np.zeros(n, dtype=bool)  # rows recorded without fob and levy
        self.seen = np.zeros(n, dtype=bool)

    def put(self, rows: np.ndarray | slice, st: State, sel: np.ndarray | None = None) -> None:
        """Record ``st`` (rows ``sel``: positions; default all) for ``rows``."""
        rows = np.arange(self.n)[rows]
        if not self.arrays:
            widths = {"lam": (self.K,), "g": (self.K,), "F": (self.N + self.K,)}
            for name in _STATE_FIELDS:
                if name in _CHAIN_FIELDS and getattr(st, name) is None:
                    continue  # a chain's quantities, absent outside chains
                shape = (getattr(st, name) if name not in ("fob", "levy") else st.q).shape[1:]
                self.arrays[name] = np.empty((self.n, *widths.get(name, shape)))
        for name, arr in self.arrays.items():
            val = getattr(st, name)
            if val is None:
                continue
            val = val if sel is None else val[sel]
            if name in ("lam", "g", "F") and val.shape[1] < arr.shape[1]:
                arr[rows, : val.shape[1]] = val
                arr[rows, val.shape[1] :] = 0.0
            else:
                arr[rows] = val
        self.lean[rows] = st.fob is None
        self.seen[rows] = True

    def state(self, inst: Instruments) -> State:
        """The recorded rows; ``inst`` fills what lean evaluations left out."""
        if not self.seen.all():
            raise RuntimeError("a row has no recorded state")
        a: dict[str, Any] = self.arrays  # the State fields but J and parts
        if self.lean.any():  # plain wedges: fob = p (1 + x), no levy
            rows = np.flatnonzero(self.lean)
            a["fob"][rows] = a["p"][rows][:, :, None] * inst.export_factor[rows]
            a["levy"][rows] = 0.0
        return State(**a)


def _put_rows(state: State, rows: np.ndarray, st: State) -> None:
    """Overwrite rows of a full-width state with a state of those rows."""
    for name in _STATE_FIELDS:
        if name in _CHAIN_FIELDS and getattr(state, name) is None:
            continue
        getattr(state, name)[rows] = getattr(st, name)


def _evaluate_rows(
    cal: Calibration, inst: Instruments, u: np.ndarray, rows: np.ndarray, pairs: str = "fb"
):
    sub_cal, sub_inst = _sub(cal, inst, rows, inst.B)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return evaluate(sub_cal, sub_inst, u[rows], jacobian=False, pairs=pairs)


def _newton(
    cal: Calibration,
    inst: Instruments,
    u: np.ndarray,
    it0: np.ndarray,
    tol: float,
    max_iter: int,
    stop_below: int = 0,
    max_halvings: int = MAX_HALVINGS,
    pairs: str = "fb",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, _StateRows, np.ndarray]:
    """Globalised Newton on one chunk, whose scenarios have had ``it0`` iterations already.

    Every scenario runs its own Newton iteration with an Armijo line search on ``½‖F‖²``:
    it takes the first of the steps 1, 1/2, 1/4, ... along its Newton direction that
    decreases the merit enough (after ``max_halvings`` failures, the next smaller step). The
    scenarios advance together in rounds: each round evaluates one trial point per scenario
    (a full step or the next step of its backtracking) in one call, so backtracking never
    costs a call of its own; when few scenarios are left, those backtracking try several of
    their next steps at once (accepting the same step as trying them one by one). Trial
    points are evaluated without their Jacobian, which follows (from what the evaluation
    kept) only at the accepted points that have not converged, where the next direction is
    solved at once.

    With ``pairs="mid"`` (natural residuals) a scenario whose step ``2^-max_halvings`` fails
    too stops there (stalled) instead of taking it.

    Stops when every scenario has converged, become non-finite, stalled or reached
    ``max_iter``, or when fewer than ``stop_below`` are left. Returns iterates, converged,
    iterations, non-finite flags, the model states at the returned iterates (kept from the
    accepted trial points, so no extra evaluation) and stalled flags. A scenario stopped
    half-way through a line search is returned at its last accepted point, with the iteration
    it was in not counted.
    """
    n = u.shape[0]
    u = u.copy()
    pr = _Progress(cal.N, u.shape, it0, tol, max_iter, mid=pairs == "mid")
    rows = _StateRows(n, cal.N, inst.K)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        st = evaluate(cal, inst, u, jacobian=True, lean=True, pairs=pairs)
    rows.put(slice(None), st)
    pr.arrive(np.arange(n), st.F, st.residual, st.J)
    last = None  # the scenarios of the last round's trial points and their instruments
    while True:
        act = np.flatnonzero(pr.active)
        if act.size == 0 or act.size < stop_below:
            pr.iterations[act] -= 1  # their current iteration starts again when resumed
            break
        # trial points: one step per scenario; a few more while backtracking in a small batch
        h = pr.halved[act]
        m = np.where(h > 0, max(1, TRIAL_ROWS // act.size), 1)
        m = np.clip(np.minimum(m, MAX_STEPS), 1, np.maximum(max_halvings - h, 1))
        who = np.repeat(act, m)
        first = np.cumsum(m) - m  # where each scenario's trial points start
        step = pr.halved[who] + np.arange(who.size) - np.repeat(first, m)
        # no sufficient decrease: take this step anyway (natural residuals: the row stalls)
        forced = (step >= max_halvings) & (pairs != "mid")
        alpha = 0.5**step
        trial = u[who] + alpha[:, None] * pr.d[who]
        if last is None or not np.array_equal(who, last[0]):  # (same scenarios: no copy)
            last = (who, *_sub(cal, inst, who, n))
        sub_cal, sub_inst = last[1:]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            st = evaluate(
                sub_cal, sub_inst, trial, jacobian=False, lean=True, keep=True, pairs=pairs
            )
        mer = _merit(st.F)
        ok = forced | (np.isfinite(mer) & (mer <= (1.0 - 2.0 * ARMIJO * alpha) * pr.m0[who]))
        # each scenario's largest accepted step
        pos = np.where(ok, np.arange(who.size), who.size)
        sel = np.minimum.reduceat(pos, first)
        hit = sel < who.size
        pr.halved[act[~hit]] += m[~hit]
        stall = act[~hit][pr.halved[act[~hit]] > max_halvings]
        pr.active[stall], pr.stalled[stall] = False, True
        acc, sel = act[hit], sel[hit]
        if not acc.size:
            continue
        u[acc] = trial[sel]
        rows.put(acc, st, sel)
        F, res = st.F[sel], st.residual[sel]
        go = pr.goes_on(acc, res)
        J = _jacobian_at(sub_cal, sub_inst, st, sel[go]) if go.any() else None
        st.parts = None
        pr.arrive(acc, F, res, J, go)
    return u, pr.converged, pr.iterations, pr.bad, rows, pr.stalled


class _Progress:
    """Where each scenario of a chunk stands: converged, non-finite, still iterating (its
    Newton direction, the merit there and how often the step has been halved)."""

    def __init__(
        self,
        N: int,
        shape: tuple[int, int],
        it0: np.ndarray,
        tol: float,
        max_iter: int,
        mid: bool = False,
    ):
        n = shape[0]
        self.N, self.tol, self.max_iter = N, tol, max_iter
        self.converged = np.zeros(n, dtype=bool)
        self.bad = np.zeros(n, dtype=bool)
        self.active = np.zeros(n, dtype=bool)
        self.iterations = np.array(it0, dtype=int)
        self.d = np.zeros(shape)
        self.m0 = np.zeros(n)
        self.halved = np.zeros(n, dtype=int)  # steps 1 ... 2^-(halved-1) along d have failed
        self.stalled = np.zeros(n, dtype=bool)  # no step decreased the merit (natural residuals)
        self.mid = mid

    def goes_on(self, at: np.ndarray, res: np.ndarray) -> np.ndarray:
        """Which of scenarios ``at``, arriving at residual measures ``res``, iterate on."""
        return np.isfinite(res) & (res > self.tol) & (self.iterations[at] < self.max_iter)

    def arrive(
        self,
        at: np.ndarray,
        F: np.ndarray,
        res: np.ndarray,
        J: np.ndarray | None,
        go: np.ndarray | None = None,
    ) -> None:
        """Scenarios ``at`` arrive at points with residuals ``F``: they converge, become
        non-finite or stop there, or start their next iteration (``J``: the Jacobians of all
        of them, or of the ``go`` ones when given)."""
        finite = np.isfinite(res)
        self.converged[at] = finite & (res <= self.tol)
        self.bad[at] = ~finite
        if go is None:
            go = self.goes_on(at, res)
            J = J[go] if J is not None and not go.all() else J
        self.active[at] = go
        if not go.any():
            return
        on, F = at[go], F[go]
        if J is None:
            raise RuntimeError("Newton step without the Jacobians of the scenarios going on")
        self.iterations[on] += 1
        d, singular = _newton_direction(J, F)
        if self.mid:  # (nearly) singular: a runaway multiplier; the row stalls there
            runaway = singular | np.any(np.abs(d[:, self.N :]) > kernel.MID_MAX_LAM_STEP, axis=1)
            self.active[on[runaway]] = False
            self.stalled[on[runaway]] = True
            on, d, F = on[~runaway], d[~runaway], F[~runaway]
        big = np.max(np.abs(d[:, : self.N]), axis=1, initial=0.0)
        d *= np.minimum(1.0, MAX_LOG_STEP / np.where(big > 0, big, 1.0))[:, None]
        self.d[on] = np.where(np.isfinite(d), d, 0.0)
        self.m0[on] = _merit(F)
        self.halved[on] = 0


def _jacobian_at(cal: Calibration, inst: Instruments, st: State, sel: np.ndarray) -> np.ndarray:
    """Jacobians at rows ``sel`` of a state evaluated with ``keep=True``; all rows are done
    at once when most of them are asked for (cheaper than slicing)."""
    if st.parts is None:
        raise RuntimeError("Jacobian asked of a state evaluated without keep=True")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if sel.size == inst.B and np.array_equal(sel, np.arange(inst.B)):
            return jacobian_of(cal, inst, st.parts)
        if sel.size >= JACOBIAN_ALL * inst.B:
            return jacobian_of(cal, inst, st.parts)[sel]
        sub_cal, sub_inst = _sub(cal, inst, sel, inst.B)
        return jacobian_of(sub_cal, sub_inst, st.parts.take(sel))


def _scipy_fallback(
    cal: Calibration, inst: Instruments, b: int | np.integer, u_last: np.ndarray, tol: float
) -> tuple[bool, np.ndarray, int, str]:
    """Retry one scenario with scipy's MINPACK solvers on the same equations."""
    sub_cal, sub_inst = take_calibration(cal, np.array([b])), inst.take(np.array([b]))

    def fun(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            st = evaluate(sub_cal, sub_inst, x[None], jacobian=True)
        if st.J is None:
            raise RuntimeError("evaluate(jacobian=True) returned no Jacobian")
        return st.F[0], st.J[0]

    starts = [u_last, initial_guess(sub_cal, sub_inst)[0]]
    for how in ("hybr", "lm"):
        for x0 in starts:
            try:  # (MINPACK's lm forms a covariance we do not use; it may overflow)
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    sol = optimize.root(fun, x0, jac=True, method=how, tol=tol * 1e-2)
            except (ValueError, FloatingPointError):
                continue
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                check = evaluate(sub_cal, sub_inst, sol.x[None], jacobian=False)
            if np.all(np.isfinite(check.F)) and check.residual[0] <= tol:
                return True, sol.x, int(getattr(sol, "nfev", 0)), f"scipy-{how}"
    return False, u_last, 0, "failed"
