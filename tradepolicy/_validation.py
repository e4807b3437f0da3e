"""Helpers that turn pydantic errors into one clear :class:`InputError`."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tradepolicy.errors import InputError


def loc_to_field(loc: tuple[Any, ...], rename: dict[str, str] | None = None) -> str:
    """Format a pydantic error location as ``scenario[2].measure[0].rate``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = (rename or {}).get(str(part), str(part))
            out += f".{part}" if out else part
    return out


def _allowed_hint(err: dict[str, Any]) -> str:
    msg = err["msg"]
    ctx = err.get("ctx") or {}
    if err["type"] == "extra_forbidden":
        return "unknown field (not allowed here; check the spelling against the documented fields)"
    if err["type"] == "missing":
        return "required field is missing"
    if "expected" in ctx and "expected" not in msg:
        msg += f" (allowed: {ctx['expected']})"
    return msg


def problems_from_validation_error(exc: ValidationError) -> list[tuple[str, str]]:
    """Flatten a pydantic ``ValidationError`` to (field, message) pairs."""
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # Tagged unions add the tag as a location element; drop it for readability.
        loc = tuple(p for p in loc if p not in _TAG_NAMES)
        msg = _allowed_hint(err)
        if "input" in err and err["type"] not in ("missing", "extra_forbidden"):
            value = err["input"]
            if not isinstance(value, dict | list):
                msg += f"; got {value!r}"
        problems.append((loc_to_field(loc), msg))
    return problems


_TAG_NAMES: set[str] = set()


def register_tag(name: str) -> None:
    """Remember a discriminator tag so it is dropped from error locations."""
    _TAG_NAMES.add(name)


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, raising :class:`InputError` naming the file on failure."""
    if not path.exists():
        raise InputError(str(path), [("", "file does not exist")])
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), [("", f"not valid TOML: {exc}")]) from None
