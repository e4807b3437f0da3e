"""Solve processes: the edited scenario's 2030 pathway solved outside the server's process.

A served dashboard's Python work shares one interpreter lock (the GIL): the pages' events and
updates on the event loop, and the bookkeeping around each solve on the solve threads
(:mod:`tradepolicy.dashboard.jobs`; the compiled kernels release the lock, the year loop
around them does not). With ten sessions changing measures at once, the solve threads held
the lock the event loop waited for. So the heaviest job of a change, the 2030 pathway of the
edited scenario (``answer.live_job``), is solved in a small pool of worker processes
(:func:`use_solve_processes`): the solve thread that runs the job sends it there and waits
for the result without holding the lock, and the solve runs on another core.

- The workers are started with ``spawn`` (a fork of a process with threads can deadlock)
  when the pool is made, without running the server's script again (its ``__main__``
  hidden meanwhile), ignore Ctrl+C (the server stops them) and end by themselves when the
  server's process ends (they watch their parent).
- ``use_solve_processes(None)`` (the server's default) is the automatic mode: one process on
  a machine of two cores or more (none on one), used only while two solves run at once (two
  sessions changing settings together); a job solved alone runs in the solve thread,
  quicker for one user (no copy of the job and its result).
- A worker takes jobs once it has loaded the solver's compiled kernels
  (``answer.warm_solver``, a second or two after it starts); until then, jobs run in the
  solve threads.
- A job is pickled in the solve thread. One that cannot be pickled, or that a fresh
  process cannot unpickle (a measure class defined in a notebook, ``__main__``), is run in
  the solve thread as without processes, so a measure registered in a notebook still works
  in a dashboard served from it.
- A worker that ended while solving (killed, out of memory) breaks the pool: it is replaced,
  the job is run in the solve thread and the log says so. Workers that cannot start are
  given up: every solve then runs in the server's process (logged once).
- Each worker keeps its own bounded caches; a result comes back as a copy.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from tradepolicy.dashboard.jobs import solves_running

log = logging.getLogger(__name__)

T = TypeVar("T")

#: how often a worker checks that the server's process is still there (seconds)
PARENT_CHECK_S = 1.0

_pool: ProcessPoolExecutor | None = None
_lock = threading.RLock()  # (a done-callback may run in the thread making the pool)
#: the automatic mode: the processes are used only while solves overlap
_automatic = False


class NotPortable(Exception):
    """A job that a fresh worker process cannot unpickle (its code is not importable there)."""


def use_solve_processes(processes: int | None) -> None:
    """Solve the edited scenario's pathway in ``processes`` worker processes shared by every
    session (0: in the solve threads; None: the automatic mode, see the module's
    description); a pool of another size is replaced (jobs running on the old one finish
    there). The workers are started at once, so that they are ready before the first page
    asks."""
    global _pool, _automatic
    n = auto_processes() if processes is None else int(processes)
    if n < 0:
        raise ValueError(f"processes must be 0 (solves in the server's process) or more, not {n}")
    with _lock:
        _automatic = processes is None and n > 0
        if n == solve_processes():
            return
        old = _pool
        _pool = _new_pool(n) if n else None
    if old is not None:
        old.shutdown(wait=False, cancel_futures=True)


def auto_processes() -> int:
    """The automatic mode's processes: one on a machine of two cores or more, else none."""
    return 1 if (os.cpu_count() or 1) >= 2 else 0


def automatic() -> bool:
    """Whether the solve processes are in the automatic mode (used while solves overlap)."""
    return _automatic


def solve_processes() -> int:
    """The number of solve processes (0: solves run in the server's process)."""
    pool = _pool
    return 0 if pool is None else int(pool._max_workers)  # type: ignore[attr-defined]


def ready() -> bool:
    """Whether the solve processes take jobs (started, kernels loaded)."""
    return _taking_jobs(_pool)


def _taking_jobs(pool: ProcessPoolExecutor | None) -> bool:
    """Whether a worker of ``pool`` has started and loaded the solver (see :func:`_started`)."""
    return bool(getattr(pool, "_tp_started", False))


def wait_ready(timeout: float = 60.0) -> bool:
    """Wait until the solve processes take jobs (:func:`ready`); False if there are none or
    they are not ready within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while _pool is not None and not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    return ready()


def worker_pids() -> list[int]:
    """The process ids of the running solve processes."""
    pool = _pool
    procs = getattr(pool, "_processes", None) or {}
    return [int(pid) for pid, p in list(procs.items()) if p.is_alive()]


def shutdown() -> None:
    """Stop the solve processes (jobs running finish first); later jobs run in the threads."""
    use_solve_processes(0)


def run(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a solve process, or here when there is none ready, the automatic
    mode's solve runs alone, or the job cannot go there (see the module's description);
    ``func``'s own exceptions are raised here."""
    pool = _pool
    alone = _automatic and solves_running() < 2
    if pool is None or alone or not _taking_jobs(pool):
        return func(*args)
    try:
        payload = pickle.dumps((func, args), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # a lock, a lambda, an object of a notebook's session...
        log.debug("solved in the server's process: the job cannot be pickled (%s)", exc)
        return func(*args)
    try:
        future = pool.submit(_call, payload)
    except RuntimeError as exc:  # the pool broke, or was shut down or replaced, meanwhile
        if isinstance(exc, BrokenProcessPool):
            _replace(pool, exc)
        return func(*args)
    try:
        return future.result()
    except NotPortable as exc:
        log.debug("solved in the server's process: %s", exc)
    except CancelledError:  # the pool was replaced while the job waited
        pass
    except BrokenProcessPool as exc:  # a worker ended while solving
        _replace(pool, exc)
    return func(*args)


def _replace(broken: ProcessPoolExecutor, exc: BaseException) -> None:
    """A new pool for a broken one (once, whichever thread sees it first), or none when its
    workers never started (they would fail again): logged."""
    global _pool
    with _lock:
        if _pool is not broken:
            return  # replaced or shut down meanwhile
        started = _taking_jobs(broken)
        _pool = _new_pool(solve_processes()) if started else None
    broken.shutdown(wait=False, cancel_futures=True)
    if started:
        log.warning(
            "a solve process ended unexpectedly (%s): the solve processes are restarted and "
            "the solve is run in the server's process",
            exc,
        )
    else:
        log.warning(
            "the solve processes could not start (%s): every solve runs in the server's process",
            exc,
        )


def _new_pool(n: int) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(
        max_workers=n,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    # started now (each import takes a second or two; with ``spawn`` a submit starts the
    # process in this thread, and every one is started by the last of these)
    with _main_script_hidden():
        for _ in range(n):
            pool.submit(time.sleep, 0).add_done_callback(functools.partial(_started, pool))
    return pool


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Workers started meanwhile do not run the server's script again.

    ``spawn`` runs the parent's main script in each new process (as ``__mp_main__``): a
    script calling ``serve()`` outside ``if __name__ == "__main__":`` would redo everything
    before that call in each worker (write its files again, solve again) and then fail. With
    the script's ``__file__`` and ``__spec__`` hidden while the workers start, they import
    only what the jobs need; a job defined in the script then runs in the server's process.
    """
    main = sys.modules.get("__main__")
    saved = {k: v for k, v in vars(main).items() if k in ("__file__", "__spec__")} if main else {}
    try:
        if main is not None:
            main.__spec__ = None
            if "__file__" in saved:
                del main.__file__
        yield
    finally:
        if main is not None:
            vars(main).update(saved)
            if "__spec__" not in saved:
                del main.__spec__


def _started(pool: ProcessPoolExecutor, future: Future) -> None:
    """A worker's first (empty) job came back, or the pool broke before any did."""
    if future.cancelled():
        return
    exc = future.exception()
    if exc is None:
        pool._tp_started = True  # type: ignore[attr-defined]
    elif isinstance(exc, BrokenProcessPool):
        _replace(pool, exc)


def _init_worker(parent: int) -> None:
    """A worker's start: Ctrl+C is the server's to handle; a thread ends the worker when
    the server's process is gone (its parent changed); the solver loaded (its first job
    as quick as the next)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="tp-parent-watch", daemon=True).start()
    from tradepolicy.dashboard.answer import warm_solver  # (the jobs' module)

    try:
        warm_solver()
    except Exception as exc:  # (a shipped file unreadable here: the first job loads them)
        log.warning("a solve process could not load the solver in advance: %s", exc)


def _call(payload: bytes) -> Any:
    try:
        func, args = pickle.loads(payload)
    except Exception as exc:
        raise NotPortable(f"a solve process cannot load the job ({exc})") from None
    return func(*args)


__all__ = [
    "NotPortable",
    "auto_processes",
    "automatic",
    "ready",
    "run",
    "shutdown",
    "solve_processes",
    "use_solve_processes",
    "wait_ready",
    "worker_pids",
]
