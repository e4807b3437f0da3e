"""Reading and writing results as netCDF (atomic: nothing half-written on error)."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import xarray as xr

from tradepolicy.errors import InputError

REQUIRED = ("trade_flow", "welfare_change", "converged")


_HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _held_signals() -> Iterator[list[int]]:
    """Hold Ctrl+C (SIGINT) and SIGTERM while a file is written; yields the signals received.

    HDF5 is not safe to interrupt mid-write (an exception raised inside it can deadlock or
    leave a partial file), so the signals are recorded and acted on after the write returns.
    Only the main thread can set handlers; elsewhere nothing is held.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def record(signum: int, frame: object) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, record) for sig in _HELD}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)


def write_results(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to netCDF at ``path`` via a temporary file and an atomic rename.

    The temporary file (``.<name>.*.part`` in the target folder) is removed on any error. A
    Ctrl+C or SIGTERM during the write is held until the write returns, then the temporary
    file is removed, ``path`` is left as it was and the interrupt is raised
    (``KeyboardInterrupt``, or ``SystemExit(143)`` for SIGTERM).

    Parameters
    ----------
    ds : xarray.Dataset
        A results Dataset (:func:`~tradepolicy.solve`).
    path : str or Path
        The netCDF file to write (its folder is created if needed).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    KeyboardInterrupt
        Ctrl+C arrived during the write (``path`` is left as it was).
    SystemExit
        SIGTERM arrived during the write (exit status 143; ``path`` is left as it was).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp: str | None = None
    try:
        with _held_signals() as received:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            os.close(fd)
            ds.to_netcdf(tmp, engine="netcdf4")
            if not received:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
                os.replace(tmp, path)
                tmp = None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    if signal.SIGTERM in received:
        raise SystemExit(128 + signal.SIGTERM)
    if received:
        raise KeyboardInterrupt
    return path


def open_results(path: str | os.PathLike[str]) -> xr.Dataset:
    """Open a tradepolicy results file (fully loaded, file closed).

    Parameters
    ----------
    path : str or path-like
        A netCDF file written by :func:`write_results` or ``tradepolicy run``.

    Returns
    -------
    xarray.Dataset
        The results, with the ``ds.tp`` accessor.

    Raises
    ------
    InputError
        The file does not exist, is not readable netCDF or is not a tradepolicy result.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), [("", "file does not exist")])
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    except (OSError, ValueError) as exc:
        raise InputError(str(path), [("", f"not a readable netCDF file ({exc})")]) from None
    missing = [v for v in REQUIRED if v not in ds]
    if missing or not str(ds.attrs.get("source", "")).startswith("tradepolicy"):
        raise InputError(
            str(path), [("", f"not a tradepolicy result (missing {missing or 'source attribute'})")]
        )
    return ds
