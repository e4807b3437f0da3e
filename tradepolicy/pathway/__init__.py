"""Pathways: scenario sets over years.

With capacity, investment under price risk and a dependence target (docs/pathways.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradepolicy.solver.newton import DEFAULT_TOL

if TYPE_CHECKING:
    import xarray as xr

    from tradepolicy.pathway.spec import PathwaySet

__all__ = ["solve_pathway"]


def solve_pathway(
    pset: PathwaySet,
    *,
    draws: int = 0,
    seed: int | None = None,
    tol: float = DEFAULT_TOL,
    history: str | None = None,
) -> xr.Dataset:
    """Run a pathway set year by year and return its results Dataset.

    The Dataset has dims ``year``, ``scenario``, ``stage``, ``region``; ``draw`` on the bloc
    indicators and present values.

    Parameters
    ----------
    pset
        A pathway set (:func:`tradepolicy.load_scenarios` on a file with ``years``).
    draws
        Monte Carlo draws besides the central run (draw 0): elasticities, a chain's input
        coefficients and the projects' documented ranges; in ``mode = "draws"`` each draw
        also takes yes/no investment decisions. The probability of meeting the target is
        read over the draws (over the central run alone without draws).
    seed
        Seed of the draws (recorded); None picks one.
    tol
        Solver tolerance on clearing residuals relative to base output, in every year.
    history
        A line recorded in the Dataset's ``history`` attribute.

    Returns
    -------
    xarray.Dataset
        The pathway results (read them with ``ds.tp.trajectory``, ``ds.tp.pathway_options``
        and ``ds.tp.risk_table``).

    Raises
    ------
    ValueError
        ``draws`` is 1.
    InputError
        A risk set (``[risk]``) is run without draws.
    """
    from tradepolicy.pathway.loop import run_years
    from tradepolicy.pathway.results import build

    if draws and draws < 2:
        raise ValueError(f"draws must be 0 (none) or at least 2; got {draws}")
    if pset.risk and not draws:
        from tradepolicy.errors import InputError

        raise InputError(
            str(pset.path or "<scenarios>"),
            [
                (
                    "risk",
                    "events are drawn per Monte Carlo draw and draw 0, the central run, has "
                    "none: run a risk set with draws (e.g. --draws 200)",
                )
            ],
        )
    run = run_years(pset, draws=draws, seed=seed, tol=tol)
    return build(run, pset, history)
