"""Each session's solves off the server's event loop, one at a time and in order.

A served page's widget events are handled by Panel on the server's event loop, in the order
they arrive (``panel.config.nthreads`` stays unset: with Panel's worker threads two events of
one page may be handled at once and out of order). What is slow, a solve, is not run there:
each session (:class:`SessionJobs`, one per :class:`~tradepolicy.dashboard.store.DashboardStore`)
hands it to a small process-wide pool of worker threads (:func:`use_solve_threads`) through
its own serial queue:

- a job is ``compute`` (run in a worker thread, on values read on the loop when the job was
  submitted; it must not touch the page's widgets or models) and ``publish`` (run back on the
  event loop with its result, where it may change the page);
- a session runs one job at a time; the next starts when the previous one has published;
- jobs have a key (``"current"``: the one-year solve, ``"live"``: the 2030 pathway of the
  edited scenario): a job waiting in the queue is replaced by a later job of the same key, so
  after a burst of changes only the latest settings are solved (coalescing); lower
  ``priority`` runs first;
- a job submitted with ``idle`` (seconds) starts only once the session has submitted and
  published nothing else for that long: the one-year solve while no one-year view is on
  screen (the 2030 tab) waits while the changes keep coming, and runs in the first pause or
  at once when a one-year tab opens (``DashboardStore.one_year_shown``);
- a result whose key was submitted again or cancelled since (a market switch,
  :meth:`SessionJobs.cancel`) or whose session closed (:meth:`SessionJobs.close`) is dropped
  without publishing;
- :attr:`SessionJobs.pending` lists the keys whose latest request is not answered yet: a key
  enters it when submitted and leaves it when its result is published (the list already
  without it while ``publish`` runs), when its solve fails (``fail``) or when it is
  cancelled. A view whose numbers a pending job will replace marks them as updating
  (``views.updating_html``, ``views.mark_updating``), so that a slow solve (a cold compile
  cache) never leaves the previous result on screen as if it were that of the settings shown.

The pool takes jobs in the order they came, whatever their session and priority. Tried and
left out: a pool ordered by priority across sessions (one session's 2030 KPIs before other
sessions' charts) left a page's one-year KPIs on an older result after a market switch in the
browser suite (``test_market_switches_keep_widgets_and_results_equal`` failed in 4 runs of 4,
passed in order of arrival; the cause is not found); publishing a result with the document
held (``panel.io.hold``, one message) made BokehJS fail on the 2030 view ("Cannot read
properties of undefined (reading 'parent_style')").

The solver's compiled kernels release the GIL, so two sessions' solves run in parallel on two
cores. With no worker thread (``use_solve_threads(0)``) a job runs on the event loop in the
next tick, after the changes made so far have been sent to the browser. Outside a served page
(a notebook, a test) :meth:`SessionJobs.submit` computes and publishes at once.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import param

log = logging.getLogger(__name__)

#: solve threads of a served dashboard unless told otherwise (``tradepolicy dashboard
#: --threads``): as many as the cores of a laptop; more threads than cores add little
DEFAULT_SOLVE_THREADS = 2
THREAD_PREFIX = "tp-solve"

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_computing = 0  # jobs computing now, every session's (see solves_running)
_computing_lock = threading.Lock()


def use_solve_threads(threads: int) -> None:
    """Run the sessions' solves on a pool of ``threads`` worker threads shared by every
    session of the process (0: on the event loop); a pool of another size is replaced (jobs
    already running finish on the old one)."""
    global _pool
    threads = int(threads)
    if threads < 0:
        raise ValueError(f"threads must be 0 (solves on the event loop) or more, not {threads}")
    with _pool_lock:
        old = _pool
        if old is not None and old._max_workers == threads:
            return
        _pool = (
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix=THREAD_PREFIX)
            if threads
            else None
        )
    if old is not None:
        old.shutdown(wait=False)


def solve_threads() -> int:
    """The number of solve threads (0: solves run on the event loop)."""
    pool = _pool
    return 0 if pool is None else int(pool._max_workers)


def solves_running() -> int:
    """The jobs computing now, every session's (a solve process serves the solve threads
    when two or more run at once: :mod:`tradepolicy.dashboard.workers`)."""
    return _computing


def served_document() -> Any | None:
    """The Bokeh document of the served page being handled, or None (a notebook, a test)."""
    import panel as pn

    doc = pn.state.curdoc
    if doc is None or getattr(doc, "session_context", None) is None:
        return None
    return doc


@dataclass
class _Job:
    key: str
    gen: int
    order: int
    priority: int
    compute: Callable[[], Any]
    publish: Callable[[Any], None]
    fail: Callable[[BaseException], None] | None = None
    #: seconds the session must have been quiet before the job starts (0: at once)
    idle: float = 0.0
    #: perf_counter times: submitted, started, on a thread, computed, back on the loop
    #: (for the timing log)
    times: list[float] = field(default_factory=list)


class SessionJobs(param.Parameterized):
    """One session's serial queue of jobs (see the module's description)."""

    pending = param.List(
        default=[],
        item_type=str,
        doc="Keys whose latest request is not answered yet (changed on the event loop only)",
    )

    _orders = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pending: dict[str, _Job] = {}
        self._running: _Job | None = None
        self._gen: dict[str, int] = {}
        self._closed = False
        self._doc: Any = None
        self._kick = False  # a start of the queue scheduled for the next tick
        self._waking = False  # a start scheduled for when an idle job may run
        self._quiet_since = time.perf_counter()  # the last submit or publish
        self.published = 0  # results published (for tests and logs)
        self.dropped = 0  # results computed but stale, not published

    @property
    def closed(self) -> bool:
        return self._closed

    def busy(self) -> bool:
        """Whether a job is running or waiting."""
        with self._lock:
            return self._running is not None or bool(self._pending) or self._kick

    def submit(
        self,
        key: str,
        compute: Callable[[], Any],
        publish: Callable[[Any], None],
        priority: int = 0,
        fail: Callable[[BaseException], None] | None = None,
        idle: float = 0.0,
    ) -> None:
        """Queue ``compute`` (worker thread) then ``publish(result)`` (event loop) under
        ``key``; a job of the same key still waiting is replaced. ``fail(exc)`` (event loop)
        is told when ``compute`` raises (default: logged only). With ``idle`` (seconds) the
        job starts only once the session has submitted and published nothing else for that
        long: a job whose result is not on screen waits while changes keep coming (it is
        pending meanwhile). Outside a served page both run now. Call on the event loop."""
        doc = served_document()
        if doc is None:
            with self._lock:
                self._gen[key] = self._gen.get(key, 0) + 1
                self._pending.pop(key, None)
            publish(compute())
            return
        with self._lock:
            if self._closed:
                return
            self._doc = doc
            gen = self._gen[key] = self._gen.get(key, 0) + 1
            self._pending[key] = _Job(
                key,
                gen,
                next(self._orders),
                priority,
                compute,
                publish,
                fail,
                times=[time.perf_counter()],
                idle=max(0.0, float(idle)),
            )
            self._quiet_since = time.perf_counter()
            if self._running is None and not self._kick:
                # started in the next tick: every job submitted while handling this event
                # (one change reaches several views) is waiting by then, the first in
                # priority runs first
                self._kick = True
                doc.add_next_tick_callback(self._start_waiting)
        if key not in self.pending:
            self.pending = [*self.pending, key]

    def cancel(self, *keys: str) -> None:
        """Drop the waiting jobs of ``keys`` (every key when none is given) and the result of
        a running one (it finishes but does not publish)."""
        with self._lock:
            for key in keys or tuple({*self._gen, *self._pending}):
                self._gen[key] = self._gen.get(key, 0) + 1
                self._pending.pop(key, None)
        left = [k for k in self.pending if k not in keys] if keys else []
        if left != self.pending:
            self.pending = left

    def close(self) -> None:
        """The session is gone: nothing more runs or publishes."""
        with self._lock:
            self._closed = True
            self._pending.clear()
            self._doc = None

    # -- internals (called holding self._lock, or on the event loop) --------------------------
    def _start_waiting(self) -> None:
        with self._lock:
            self._kick = False
            if self._running is None:
                self._start_next()

    def _wake(self) -> None:
        with self._lock:
            self._waking = False
            if self._running is None and not self._kick:
                self._start_next()

    def _start_next(self) -> None:
        if not self._pending or self._closed:
            return
        quiet = time.perf_counter() - self._quiet_since
        ready = [j for j in self._pending.values() if j.idle <= quiet]
        if not ready:  # only idle jobs, and the session was busy lately: later
            if not self._waking:
                wait = min(j.idle for j in self._pending.values()) - quiet
                try:
                    self._doc.add_timeout_callback(self._wake, max(1, int(1000 * wait) + 1))
                    self._waking = True
                except Exception as exc:  # the document is gone with its session
                    log.debug("a closed session's idle job was dropped: %s", exc)
            return
        job = min(ready, key=lambda j: (j.priority, j.order))
        del self._pending[job.key]
        self._running = job
        job.times.append(time.perf_counter())
        doc = self._doc
        pool = _pool
        if pool is not None:
            pool.submit(self._run, job, doc)
        else:  # on the event loop, in the next tick
            doc.add_next_tick_callback(functools.partial(self._run, job, doc))

    def _run(self, job: _Job, doc: Any) -> None:
        """Compute a job (a worker thread, or the loop) and publish it on the loop."""
        global _computing
        job.times.append(time.perf_counter())
        result: Any = None
        error: BaseException | None = None
        if self._current(job):
            with _computing_lock:
                _computing += 1
            try:
                result = job.compute()
            except Exception as exc:  # reported on the loop; the queue goes on
                error = exc
            finally:
                with _computing_lock:
                    _computing -= 1
        job.times.append(time.perf_counter())
        if self._closed:  # the session closed meanwhile: its document is going away
            with self._lock:
                self._running = None
                self.dropped += 1
            return
        try:
            doc.add_next_tick_callback(functools.partial(self._finish, job, doc, result, error))
        except Exception as exc:  # the document is gone with its session
            log.debug("a closed session's result was dropped: %s", exc)
            with self._lock:
                self._running = None

    def _current(self, job: _Job) -> bool:
        return not self._closed and self._gen.get(job.key) == job.gen

    def _finish(self, job: _Job, doc: Any, result: Any, error: BaseException | None) -> None:
        """On the event loop: publish a result that is still wanted, then start the next job."""
        from panel.io.state import set_curdoc

        job.times.append(time.perf_counter())
        with self._lock:
            self._running = None
            wanted = self._current(job)
        try:
            if not wanted:  # (superseded: the later request is pending; cancelled: not)
                self.dropped += 1
            else:
                with set_curdoc(doc), param.parameterized.batch_call_watchers(self):
                    # the key leaves ``pending`` first, and the views watching it hear of
                    # it after the result is shown: the mark goes with the same redraw
                    self.pending = [k for k in self.pending if k != job.key]
                    if error is not None:
                        log.error("a dashboard solve failed", exc_info=error)
                        if job.fail is not None:
                            job.fail(error)
                    else:
                        job.publish(result)
                        self.published += 1
        except Exception:
            log.exception("publishing a dashboard result failed")
        finally:
            if log.isEnabledFor(logging.DEBUG):
                _log_timing(job, wanted)
            with self._lock:
                if wanted:
                    self._quiet_since = time.perf_counter()
                if self._running is None:
                    self._start_next()


def _log_timing(job: _Job, published: bool) -> None:
    """One line per job (DEBUG): milliseconds waiting in the session's queue, for a solve
    thread, computing, waiting for the event loop and publishing (``bench_dashboard_load.py``
    sums them)."""
    t = [*job.times, time.perf_counter()]
    if len(t) != 6:
        return
    ms = [1000 * (b - a) for a, b in itertools.pairwise(t)]
    log.debug(
        "tp-job key=%s session_ms=%.0f pool_ms=%.0f compute_ms=%.0f loop_ms=%.0f "
        "publish_ms=%.0f published=%d",
        job.key,
        *ms,
        published,
    )


__all__ = [
    "DEFAULT_SOLVE_THREADS",
    "THREAD_PREFIX",
    "SessionJobs",
    "served_document",
    "solve_threads",
    "solves_running",
    "use_solve_threads",
]
