"""Figures of the property suites, printed in pytest's terminal summary (see conftest)."""

from __future__ import annotations

LINES: list[str] = []


def report(line: str) -> None:
    """Keep ``line`` for the terminal summary (and print it, for ``pytest -s``)."""
    LINES.append(line)
    print(line)  # shown with -s; the summary hook shows it otherwise
