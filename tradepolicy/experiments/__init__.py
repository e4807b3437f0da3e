"""Experiments: sweeps over scenarios × parameter grids × draws (``docs/sweeps.md``).

:func:`sweep` solves a sweep spec block by block into a Zarr store, locally in worker
processes or on a dask.distributed cluster; :func:`load_sweep` validates a spec;
:func:`open_sweep` reads a store back.
"""

from tradepolicy.experiments.grid import DEFAULT_VARIABLES, SweepPlan, SweepSpec, load_sweep
from tradepolicy.experiments.sweep import open_sweep, sweep

__all__ = ["DEFAULT_VARIABLES", "SweepPlan", "SweepSpec", "load_sweep", "open_sweep", "sweep"]
