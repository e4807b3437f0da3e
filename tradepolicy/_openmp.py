"""OpenMP settings of the compiled solve, applied when :mod:`tradepolicy` is imported.

The solve's parallel loop runs on numba's ``omp`` threading layer. Its OpenMP threads sleep
when they are idle instead of spinning: spinning, they took a core from the Python work that
follows each parallel loop (bookkeeping, result variables, the Dataset) on a busy machine
(docs/engine.md, "The whole pipeline"). The OpenMP runtime reads the policy when it loads,
which numba does at the first parallel loop, after this import; an ``OMP_WAIT_POLICY``
already set is kept.
"""

from __future__ import annotations

import os

#: the ``OMP_WAIT_POLICY`` set when none is
WAIT_POLICY = "PASSIVE"

os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
