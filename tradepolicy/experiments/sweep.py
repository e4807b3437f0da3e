"""Sweeps: solve a plan block by block and stream each block into a Zarr store.

Each block is a box of rows (:meth:`SweepPlan.chunks`) and exactly one Zarr chunk of every
variable, so no two writers ever touch one chunk. Blocks are solved by local worker
processes or on a dask.distributed cluster; the client process writes each block's slice as
it comes back, then its ``block_done`` marker. A rerun skips the blocks marked done, so an
interrupted sweep resumes; a store made from another spec is refused.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import product
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import xarray as xr

from tradepolicy.errors import InputError, InputWarning
from tradepolicy.experiments.grid import SweepPlan, load_sweep
from tradepolicy.results.builder import result_fields
from tradepolicy.scenario import ScenarioSet

if TYPE_CHECKING:
    import zarr

log = logging.getLogger(__name__)

__all__ = ["open_sweep", "sweep"]

#: rows per block when none is given (raised to draws + 1 when that is larger)
DEFAULT_BLOCK_SIZE = 4096
#: attribute marking a store as a tradepolicy sweep (its spec hash)
HASH_ATTR = "sweep_spec_hash"
STATUS_ATTR = "sweep_status"


@dataclass(frozen=True)
class Layout:
    """Where each block sits: the chunk shape and the number of chunks along each row dim."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]

    @property
    def grid(self) -> tuple[int, ...]:
        return tuple(-(-n // c) for n, c in zip(self.shape, self.chunks, strict=True))

    @property
    def n_blocks(self) -> int:
        return int(np.prod(self.grid))

    def slices(self, b: int) -> tuple[slice, ...]:
        """Row-dim slices of block ``b`` (C order over the chunk grid)."""
        idx = np.unravel_index(b, self.grid)
        return tuple(
            slice(int(i) * c, min((int(i) + 1) * c, n))
            for i, c, n in zip(idx, self.chunks, self.shape, strict=True)
        )


# -- solving one block ----------------------------------------------------------------------
def solve_block(plan: SweepPlan, layout: Layout, b: int) -> dict[str, np.ndarray]:
    """Solve block ``b``: ``{variable: array}`` shaped (block rows dims…, variable dims…).

    Builds the block's market (its point of the elasticity axes) and one renamed scenario per
    (scenario, measure-axis point), and calls :func:`tradepolicy.solve` with the plan's draws
    and seed, so every row is what ``tp.solve`` gives for those inputs.
    """
    from tradepolicy.api import solve

    sl = layout.slices(b)
    dims = plan.dims
    axes = {a.name: a for a in plan.axes}
    market = plan.market_at(
        {n: float(axes[n].values[s.start]) for n, s in zip(dims, sl, strict=False) if n in axes}
    )
    base_offset = 1 if plan.spec.include_baseline else 0
    inner = [(n, s) for n, s in zip(dims[1:-1], sl[1:-1], strict=True)]
    ranges = [range(sl[0].start, sl[0].stop)] + [range(s.start, s.stop) for _, s in inner]
    row_names: list[str] = []
    scenarios = []
    solved: dict[tuple[int, ...], str] = {}  # rows an axis does not touch are solved once
    for combo in product(*ranges):
        s = combo[0] - base_offset
        if s < 0:
            row_names.append("baseline")
            continue
        used = [(n, k) for (n, _), k in zip(inner, combo[1:], strict=True) if s in axes[n].targets]
        key = (s, *(k for _, k in used))
        if key not in solved:
            flat = int(np.ravel_multi_index((*combo, 0), plan.shape))
            name = f"{plan.sset.names[s][:80]}.{flat}"
            point = {n: float(axes[n].values[k]) for n, k in used}
            scenarios.append(plan.scenario_at(s, point, name))
            solved[key] = name
        row_names.append(solved[key])
    with warnings.catch_warnings():  # advice on values was given once, when the spec was read
        warnings.simplefilter("ignore", InputWarning)
        sset = ScenarioSet(
            market=market,
            scenarios=scenarios,
            target_share=plan.sset.target_share,
            target=plan.sset.target,
            title=plan.sset.title,
            path=plan.sset.path,
        )
    ds = solve(sset, draws=plan.spec.draws, seed=plan.spec.seed, variables=plan.variables)
    return extract(ds, plan, row_names, [s.stop - s.start for s in sl])


def extract(
    ds: xr.Dataset, plan: SweepPlan, row_names: list[str], block_shape: list[int]
) -> dict[str, np.ndarray]:
    """Return the plan's variables for ``row_names`` (rows in block order) as block arrays."""
    pos = {str(n): i for i, n in enumerate(ds["scenario"].values)}
    rows = np.array([pos[n] for n in row_names])
    out = {}
    for name in plan.variables:
        src = "draw_converged" if name == "converged" and "draw_converged" in ds else name
        da = ds[src].isel(commodity=0)
        if "draw" not in da.dims:
            da = da.expand_dims("draw")
        rest = [d for d in da.dims if d not in ("scenario", "draw")]
        arr = da.transpose("scenario", "draw", *rest).values[rows]
        out[name] = arr.reshape(*block_shape, *arr.shape[2:])
    return out


# -- the store ------------------------------------------------------------------------------
def _variable_meta(plan: SweepPlan) -> tuple[dict[str, tuple[tuple[str, ...], Any, dict]], dict]:
    """Describe each variable and the global attributes from a probe solve.

    Dims, dtype and attributes of each variable, and global attributes, from a probe solve
    of the first scenario (labels and units come from the field table via the builder).
    """
    from tradepolicy.api import solve

    scen = plan.sset.scenarios[:1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        probe = ScenarioSet(
            market=plan.sset.market,
            scenarios=scen,
            target_share=plan.sset.target_share,
            target=plan.sset.target,
            title=plan.sset.title,
        )
    ds = solve(probe)
    fields = result_fields()
    meta = {}
    for name in plan.variables:
        dims = tuple(d for d in fields[name]["dims"].split() if d not in ("scenario", "commodity"))
        attrs = dict(ds[name].attrs)
        if name == "converged" and plan.spec.draws:
            attrs["long_name"] = "solve of the row (scenario, grid point, draw) converged"
        meta[name] = (dims, ds[name].dtype, attrs)
    return meta, dict(ds.attrs)


def _template(plan: SweepPlan, layout: Layout, history: str) -> xr.Dataset:
    import dask.array as dsa

    market = plan.sset.market
    regions = np.array(market.regions, dtype=object)
    meta, attrs = _variable_meta(plan)
    data_vars = {}
    for name, (dims, dtype, var_attrs) in meta.items():
        extra = tuple(len(regions) for _ in dims)
        fill = np.nan if np.dtype(dtype).kind == "f" else 0
        arr = dsa.full(layout.shape + extra, fill, dtype=dtype, chunks=layout.chunks + extra)
        data_vars[name] = xr.Variable(plan.dims + dims, arr, attrs=var_attrs)
    data_vars["block_done"] = xr.Variable(
        ("block",),
        dsa.zeros(layout.n_blocks, dtype=np.int8, chunks=1),
        attrs={
            "long_name": "block written completely",
            "units": "1",
            "flag_values": np.array([0, 1], dtype=np.int8),
            "flag_meanings": "pending written",
        },
    )
    coords: dict[str, Any] = {
        "scenario": ("scenario", np.array(plan.scenario_names, dtype=object)),
        "draw": ("draw", np.arange(plan.n_draws)),
        "region": ("region", regions),
        "exporter": ("exporter", regions),
        "importer": ("importer", regions),
    }
    for a in plan.axes:
        coords[a.name] = (a.name, a.values, {"units": a.units, "long_name": a.long_name})
    used = {d for v in data_vars.values() for d in v.dims} | {"scenario", "draw"}
    coords = {k: v for k, v in coords.items() if k in used}
    ds = xr.Dataset(data_vars, coords=coords)
    ds["draw"].attrs = {"long_name": "Monte Carlo draw (0 = central estimate)", "units": "1"}
    ds["scenario"].attrs = {"long_name": "scenario"}
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    attrs.update(
        title=plan.spec.title or attrs.get("title", "tradepolicy sweep"),
        history=f"{now}: {history}",
        date_created=now,
        scenario_spec=json.dumps(plan.sset.to_dict(), sort_keys=True),
        commodity=market.id,
        sweep_spec=json.dumps(plan.raw, sort_keys=True, default=str),
        sweep_source=plan.source,
        sweep_block_size=int(np.prod(layout.chunks)),
        sweep_chunks=" ".join(map(str, layout.chunks)),
        sweep_rows=int(plan.rows),
        sweep_blocks=int(layout.n_blocks),
        draws=int(plan.spec.draws),
        draw_seed=int(plan.spec.seed) if plan.spec.seed is not None else -1,
        **{HASH_ATTR: plan.spec_hash, STATUS_ATTR: "incomplete"},
    )
    if plan.spec.draws:
        attrs["draw_method"] = (
            "elasticities drawn log-normally (median = the grid point's value, log sd = "
            "se/value) with the same seed at every grid point; draw 0 is the central estimate"
        )
    ds.attrs = attrs
    return ds


def _is_sweep_store(path: Path) -> bool:
    import zarr

    try:
        group = zarr.open_group(path, mode="r")
    except Exception:  # not a Zarr group at all
        return False
    return HASH_ATTR in group.attrs


def _prepare(
    plan: SweepPlan, out: Path, block_size: int | None, resume: bool, history: str
) -> tuple[Layout, np.ndarray]:
    """Create the store (atomically) or reopen it for resuming; returns layout and done flags."""
    import zarr

    if out.exists() or out.is_symlink():
        if not _is_sweep_store(out):
            raise InputError(
                f"-o {out}",
                [("", "exists and is not a tradepolicy sweep store; choose another path")],
            )
        group = zarr.open_group(out, mode="r")
        if resume:
            if group.attrs[HASH_ATTR] != plan.spec_hash:
                raise InputError(
                    f"-o {out}",
                    [
                        (
                            "",
                            "was made from a different sweep spec (or scenarios or market "
                            "data); rerun with --overwrite (resume=False) to start again, or "
                            "choose another path",
                        )
                    ],
                )
            chunks = tuple(int(c) for c in str(group.attrs["sweep_chunks"]).split())
            if block_size is not None and plan.chunks(block_size) != chunks:
                raise InputError(
                    "block_size",
                    [
                        (
                            "",
                            f"{block_size} differs from the store's blocks of "
                            f"{int(np.prod(chunks))} rows; leave it out to resume",
                        )
                    ],
                )
            layout = Layout(plan.shape, chunks)
            done = np.asarray(_array(group, "block_done")[:]) == 1
            log.info("resuming %s: %d of %d blocks done", out, int(done.sum()), done.size)
            return layout, done
    size = block_size if block_size is not None else max(DEFAULT_BLOCK_SIZE, plan.n_draws)
    layout = Layout(plan.shape, plan.chunks(size))
    template = _template(plan, layout, history)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        template.to_zarr(tmp, mode="w", compute=False, consolidated=False, zarr_format=3)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp creates 0700; give the usual permissions
        if out.exists():  # an earlier sweep store, to be overwritten (checked above)
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return layout, np.zeros(layout.n_blocks, dtype=bool)


def _array(group: Any, name: str) -> zarr.Array:
    """Return an array of the store (the group holds only arrays: variables and coordinates)."""
    return cast("zarr.Array", group[name])


class _Writer:
    """Writes blocks into the store from the client process, then their done markers."""

    def __init__(self, out: Path, plan: SweepPlan, layout: Layout) -> None:
        import zarr

        self.group = zarr.open_group(out, mode="r+")
        self.arrays = {name: _array(self.group, name) for name in plan.variables}
        self.done = _array(self.group, "block_done")
        self.layout = layout

    def write(self, b: int, values: dict[str, np.ndarray]) -> None:
        sl = self.layout.slices(b)
        for name, arr in values.items():
            self.arrays[name][sl] = arr
        self.done[b] = 1  # after the data: a block is done only once all of it is written

    def finish(self) -> bool:
        complete = bool((np.asarray(self.done[:]) == 1).all())
        self.group.attrs[STATUS_ATTR] = "complete" if complete else "incomplete"
        return complete


# -- backends -------------------------------------------------------------------------------
def _solve_local(plan: SweepPlan, layout: Layout, b: int) -> dict[str, np.ndarray]:
    return solve_block(plan, layout, b)


def _run_serial(plan, layout, todo, on_done) -> None:
    for b in todo:
        on_done(b, solve_block(plan, layout, b))


def _run_processes(plan, layout, todo, on_done, workers: int) -> None:
    """Local worker processes (spawned: no fork of a threaded parent), a bounded window."""
    window = 2 * workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending: dict[Future, int] = {}
        queue: Iterator[int] = iter(todo)
        try:
            for b in queue:
                pending[pool.submit(_solve_local, plan, layout, b)] = b
                if len(pending) >= window:
                    break
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    b = pending.pop(fut)
                    on_done(b, fut.result())
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending[pool.submit(_solve_local, plan, layout, nxt)] = nxt
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


def _run_dask(plan, layout, todo, on_done, scheduler: str, workers: int | None) -> None:
    """Blocks as tasks on a dask.distributed cluster; results written as they come back."""
    from distributed import Client, as_completed

    with Client(scheduler, set_as_default=False) as client:
        n = workers or max(1, len(client.scheduler_info().get("workers", {})))
        plan_f = client.scatter(plan, broadcast=True)
        queue = iter(todo)
        first = [next(queue, None) for _ in range(2 * n)]
        futures = {
            client.submit(solve_block, plan_f, layout, b, pure=False): b
            for b in first
            if b is not None
        }
        done = as_completed(list(futures), loop=client.loop)
        try:
            for fut in done:
                b = futures.pop(fut)
                on_done(b, fut.result())
                fut.release()
                nxt = next(queue, None)
                if nxt is not None:
                    new = client.submit(solve_block, plan_f, layout, nxt, pure=False)
                    futures[new] = nxt
                    done.add(new)
        except BaseException:
            client.cancel(list(futures))
            raise


def _progress_wanted(progress: bool) -> bool:
    return progress and sys.stderr.isatty() and not os.environ.get("CI")


def sweep(
    spec_or_path: str | Path | SweepPlan,
    out: str | Path = "sweep.zarr",
    *,
    block_size: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = True,
    progress: bool = True,
    history: str | None = None,
) -> Path:
    """Solve a sweep (scenarios × grid points × draws) into a Zarr store, block by block.

    Parameters
    ----------
    spec_or_path
        A sweep spec TOML file (``docs/sweeps.md``) or a plan from
        :func:`~tradepolicy.experiments.grid.load_sweep`.
    out
        The Zarr store (a folder) to create, or to resume.
    block_size
        Most rows per block (= per Zarr chunk); default 4096 (at least draws + 1). Memory
        of each worker is bounded by one block. When resuming, leave it out.
    workers
        Local worker processes (default: the CPU count; 1 solves in this process), or the
        number of blocks kept in flight per worker on a cluster.
    scheduler
        Address of a dask.distributed scheduler (``"tcp://host:8786"``) to solve on.
    resume
        Skip blocks an earlier run of the same spec wrote; ``False`` starts again
        (``--overwrite``). A store from another spec is refused either way.
    progress
        Show a progress bar (only on a terminal, never on CI).
    history
        A line recorded in the store's ``history`` attribute (default: the spec's path).

    Returns
    -------
    Path
        The store, complete (``sweep_status = "complete"``); read it with :func:`open_sweep`.

    Raises
    ------
    InputError
        The spec is invalid, ``block_size`` or ``workers`` is not a whole number ≥ 1, or
        ``out`` holds a store of another spec; nothing is solved before these checks pass.
    RuntimeError
        A block was not written (never expected: every block is checked).
    """
    plan = spec_or_path if isinstance(spec_or_path, SweepPlan) else load_sweep(spec_or_path)
    if block_size is not None and (
        isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1
    ):
        raise InputError(
            "block_size", [("", f"must be a whole number ≥ 1 (rows per block); got {block_size!r}")]
        )
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InputError("workers", [("", f"must be a whole number ≥ 1; got {workers!r}")])
    out = Path(out)
    layout, done = _prepare(
        plan, out, block_size, resume, history or f"tradepolicy.sweep {plan.source}"
    )
    todo = [int(b) for b in np.flatnonzero(~done)]
    writer = _Writer(out, plan, layout)
    rows_per_block = int(np.prod(layout.chunks))
    log.info(
        "sweep %s: %d rows in %d blocks of up to %d rows; %d to solve",
        plan.source,
        plan.rows,
        layout.n_blocks,
        rows_per_block,
        len(todo),
    )
    with _Progress(progress, layout.n_blocks, int(done.sum())) as advance:

        def on_done(b: int, values: dict[str, np.ndarray]) -> None:
            writer.write(b, values)
            advance()

        if scheduler is not None:
            _run_dask(plan, layout, todo, on_done, scheduler, workers)
        else:
            n = workers if workers is not None else (os.cpu_count() or 1)
            n = min(n, max(1, len(todo)))
            if n == 1:
                _run_serial(plan, layout, todo, on_done)
            else:
                _run_processes(plan, layout, todo, on_done, n)
    if not writer.finish():  # pragma: no cover - every block was written above
        raise RuntimeError(f"{out}: some blocks were not written")
    return out


class _Progress:
    """A rich progress bar over blocks (a no-op when off, not a terminal or on CI)."""

    def __init__(self, wanted: bool, total: int, completed: int) -> None:
        self.on = _progress_wanted(wanted)
        self.total, self.completed = total, completed

    def __enter__(self) -> Callable[[], None]:
        if not self.on:
            return lambda: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("sweep blocks"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.bar.start()
        task = self.bar.add_task("sweep", total=self.total, completed=self.completed)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.on:
            self.bar.stop()


def open_sweep(path: str | Path, *, allow_incomplete: bool = False) -> xr.Dataset:
    """Open a sweep store lazily (dask arrays); refuses an incomplete store unless asked.

    An interrupted sweep's store reads NaN (0 for integer flags) in the blocks not yet
    written; ``block_done`` says which blocks are written.

    Parameters
    ----------
    path : str or Path
        The Zarr store written by :func:`sweep`.
    allow_incomplete : bool, optional
        Open a store whose sweep has not finished (default: refuse it).

    Returns
    -------
    xarray.Dataset
        The sweep's results, lazily loaded (dims ``scenario``, the grid's parameters and
        ``draw``).

    Raises
    ------
    InputError
        ``path`` is not a sweep store, or the sweep is incomplete and ``allow_incomplete``
        is False.
    """
    path = Path(path)
    if not path.exists() or not _is_sweep_store(path):
        raise InputError(str(path), [("", "not a tradepolicy sweep store")])
    ds = xr.open_zarr(path, consolidated=False)
    if ds.attrs.get(STATUS_ATTR) != "complete" and not allow_incomplete:
        done = int(ds["block_done"].sum())
        raise InputError(
            str(path),
            [
                (
                    "",
                    f"the sweep is incomplete ({done} of {ds.sizes['block']} blocks written); "
                    "rerun `tradepolicy sweep` with the same spec to finish it, or pass "
                    "allow_incomplete=True",
                )
            ],
        )
    return ds
