"""Exceptions raised by tradepolicy."""

from __future__ import annotations


class TradePolicyError(Exception):
    """Base class for tradepolicy errors."""


class InputError(TradePolicyError, ValueError):
    """A market or scenario file (or object) is invalid.

    The message names the file, the field and what is allowed.

    Parameters
    ----------
    source : str
        The file (or object) that is invalid.
    problems : list of (str, str)
        ``(field, what is wrong and what is allowed)`` for each problem found; an empty field
        name for a problem of the whole file.

    Attributes
    ----------
    source : str
        As given.
    problems : list of (str, str)
        As given.

    Examples
    --------
    >>> from tradepolicy import InputError
    >>> print(InputError("m.toml", [("base_year", "must be at least 1900")]))
    m.toml
      - base_year: must be at least 1900
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s)" if len(problems) > 1 else source]
        for field, msg in problems:
            lines.append(f"  - {field}: {msg}" if field else f"  - {msg}")
        super().__init__("\n".join(lines))


class SolverError(TradePolicyError, RuntimeError):
    """The equilibrium could not be computed for a structural reason."""


class InputWarning(UserWarning):
    """An input value that is allowed but doubtful (e.g. a price in the wrong unit)."""
