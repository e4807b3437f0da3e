"""Process-wide caches shared by the dashboard's sessions: bounded, thread-safe, single-flight.

A served dashboard runs the sessions' solves on a pool of solve threads
(:mod:`tradepolicy.dashboard.jobs`), so the caches every session reads are entered from
several threads at once. :class:`SingleFlight` makes sure that a value asked for by several
threads at the same time is computed once (ten negotiators opening the same market load it
once); :func:`memoize` is a least-recently-used cache bounded in count built on it, and
:class:`PerObject` one of values derived from shared objects (a solved pathway's tables).
:data:`WARNINGS_LOCK` is held by every dashboard module that changes the warning filters.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

#: held while the warning filters are changed (``warnings.catch_warnings`` is not thread-safe:
#: two threads inside it at once can leave the other's filters in place); only around checks
#: and conversions, never around a solve
WARNINGS_LOCK = threading.RLock()


class SingleFlight:
    """One computation per key at a time: a thread asking for a key that another thread is
    computing waits for that result instead of computing it again.

    An exception raised by the computation reaches every thread that waited for it; the next
    call computes again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Hashable, _Flight] = {}

    def run(self, key: Hashable, compute: Callable[[], T]) -> tuple[T, bool]:
        """``compute()``'s result for ``key`` and whether this thread computed it (False: it
        waited for another thread's result)."""
        with self._lock:
            flight = self._running.get(key)
            leader = flight is None
            if flight is None:
                flight = self._running[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value, False
        try:
            flight.value = compute()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._running[key]
            flight.done.set()
        return flight.value, True


class _Flight:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class _Bounded:
    """A least-recently-used store of at most ``max_items`` values, thread-safe, each value
    computed once even when asked for by several threads at the same time (the core of
    :func:`memoize` and :class:`PerObject`)."""

    def __init__(self, max_items: int) -> None:
        if max_items < 1:
            raise ValueError("a cache needs room for at least one result")
        self.max_items = max_items
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._flights = SingleFlight()

    def get(
        self, key: Hashable, compute: Callable[[], T], valid: Callable[[Any], bool] | None = None
    ) -> T:
        """The value kept under ``key`` (if ``valid(value)``), else ``compute()``, kept."""
        with self._lock:
            if key in self._items and (valid is None or valid(self._items[key])):
                self._items.move_to_end(key)
                return self._items[key]

        def run() -> T:
            value = compute()
            with self._lock:
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
            return value

        return self._flights.run(key, run)[0]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def memoize(max_items: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Cache a function of hashable arguments: at most ``max_items`` results, the least
    recently used dropped first; thread-safe, each result computed once even when asked for
    by several threads at the same time. The wrapper has ``cache_clear()`` and
    ``cache_len()``."""
    if max_items < 1:  # refused at once, before any function is decorated
        raise ValueError("a cache needs room for at least one result")

    def decorate(func: Callable[..., T]) -> Callable[..., T]:
        cache = _Bounded(max_items)  # one per function

        @functools.wraps(func)
        def wrapper(*args: Hashable, **kwargs: Hashable) -> T:
            key = (args, tuple(sorted(kwargs.items())))
            return cache.get(key, functools.partial(func, *args, **kwargs))

        wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
        wrapper.cache_len = cache.__len__  # type: ignore[attr-defined]
        return wrapper

    return decorate


class PerObject:
    """Values derived from objects (e.g. a solved Dataset, shared by the sessions through a
    solve cache), computed once per object and key: at most ``max_items`` values, the least
    recently used dropped first; thread-safe and single-flight like :func:`memoize`.

    An entry holds its object, so an ``id`` is never mistaken for that of a later object.
    Values are shared: callers must not change them.
    """

    def __init__(self, max_items: int) -> None:
        self._cache = _Bounded(max_items)
        self.max_items = max_items

    def get(self, obj: Any, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` for ``obj`` and ``key``, computed once."""
        entry = self._cache.get(
            (id(obj), key), lambda: (obj, compute()), lambda entry: entry[0] is obj
        )
        return entry[1]

    def put(self, obj: Any, key: Hashable, value: Any) -> None:
        """Keep ``value`` as that of ``obj`` and ``key`` unless one is kept already (derived
        elsewhere, e.g. in a solve process, from a copy of ``obj``)."""
        self.get(obj, key, lambda: value)

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)


__all__ = ["WARNINGS_LOCK", "PerObject", "SingleFlight", "memoize"]
