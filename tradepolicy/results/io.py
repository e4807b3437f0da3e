"""Reading and writing results as netCDF (atomic: nothing half-written on error)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import xarray as xr

from tradepolicy.errors import InputError

REQUIRED = ("trade_flow", "welfare_change", "converged")


def write_results(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to netCDF at ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".nc.part", dir=path.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def open_results(path: str | Path) -> xr.Dataset:
    """Open a tradepolicy results file (fully loaded, file closed)."""
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
