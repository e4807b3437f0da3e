"""Where shipped markets and scenario sets live (a wheel or a source checkout)."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _first_existing(*candidates: Path) -> Path | None:
    for c in candidates:
        if c.is_dir():
            return c
    return None


def markets_dir() -> Path | None:
    """Directory of shipped market files."""
    return _first_existing(_PKG / "_shipped" / "markets", _PKG.parent / "models" / "equilibrium")


def scenarios_dir() -> Path | None:
    """Directory of shipped scenario sets."""
    return _first_existing(_PKG / "_shipped" / "scenarios", _PKG.parent / "scenarios")


def market_files() -> list[Path]:
    d = markets_dir()
    return sorted(d.glob("*.toml")) if d else []


def scenario_files() -> list[Path]:
    d = scenarios_dir()
    return sorted(d.glob("*.toml")) if d else []


def find_market(market_id: str) -> Path | None:
    for p in market_files():
        if p.stem == market_id:
            return p
    return None


def find_scenarios(name: str) -> Path | None:
    for p in scenario_files():
        if p.stem == name:
            return p
    return None


def calibration_dir() -> Path | None:
    """``calibration/`` (source data and estimates): the checkout's, or the copy a wheel ships."""
    root = checkout_root()
    if root is not None:
        return root / "calibration"
    return _first_existing(_PKG / "_shipped" / "calibration")


def checkout_root() -> Path | None:
    """The source checkout holding this package (None when installed from a wheel)."""
    root = _PKG.parent
    return root if (root / "calibration" / "data").is_dir() else None
