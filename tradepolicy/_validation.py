"""Helpers that turn pydantic errors into one clear :class:`InputError`."""

from __future__ import annotations

import difflib
import tomllib
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ValidationError

from tradepolicy._files import read_text
from tradepolicy.errors import InputError


def reject_bool(value: Any) -> Any:
    """Refuse ``true``/``false`` where a number is expected (pydantic would read 1 or 0)."""
    if isinstance(value, bool):
        raise ValueError("a number is required, not true/false")
    return value


#: A float field that refuses booleans (``floor = true``); finiteness comes from the model's
#: ``allow_inf_nan=False``.
Float = Annotated[float, BeforeValidator(reject_bool)]

#: Longest name (ids, commodity, scenario names) and longest free text accepted.
MAX_NAME = 200
MAX_TEXT = 100_000


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` (difflib), else ``""``."""
    close = difflib.get_close_matches(word[:MAX_NAME], list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis and the full length."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text):,} characters)"


def loc_to_field(loc: tuple[Any, ...], rename: dict[str, str] | None = None) -> str:
    """Format a pydantic error location as ``scenario[2].measure[0].rate``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = shorten((rename or {}).get(str(part), str(part)), 40)
            out += f".{part}" if out else part
    return out


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``list[Model] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def allowed_fields(root: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str] | None:
    """Field names allowed at the parent of ``loc`` (walking models, lists and measure tags)."""
    model = root
    for part in loc[:-1]:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        if part in _TAGS:
            model = _TAGS[part]
            continue
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        fields.update(model.model_fields)
        if part not in fields:
            return None
        model = _model_in(fields[part].annotation)
    if model is None:
        return None
    return [f.alias or n for n, f in model.model_fields.items() if n != "type"]


def _allowed_hint(err: Mapping[str, Any], root: type[BaseModel] | None = None) -> str:
    msg = err["msg"]
    ctx = err.get("ctx") or {}
    if err["type"] == "extra_forbidden":
        allowed = allowed_fields(root, tuple(err["loc"]))
        if allowed:
            hint = did_you_mean(str(err["loc"][-1]), allowed)
            return f"unknown field{hint} (allowed: {', '.join(allowed)})"
        return "unknown field (not allowed here; check the spelling against the documented fields)"
    if err["type"] == "union_tag_invalid" and ctx.get("discriminator") == "'type'":
        tags = sorted(_TAGS)
        tag = str(ctx.get("tag", ""))
        return (
            f"unknown measure type {shorten(repr(tag))}{did_you_mean(tag, tags)} "
            f"(allowed: {', '.join(tags)})"
        )
    if err["type"] == "missing":
        return "required field is missing"
    if err["type"] == "value_error" and msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]  # our own validators' messages read as they are
    if "expected" in ctx and "expected" not in msg:
        msg += f" (allowed: {ctx['expected']})"
    return msg


def problems_from_validation_error(
    exc: ValidationError, root: type[BaseModel] | None = None
) -> list[tuple[str, str]]:
    """Flatten a pydantic ``ValidationError`` to (field, message) pairs.

    ``root`` is the validated model; with it unknown-field errors list the allowed fields.
    """
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # Tagged unions add the tag as a location element; drop it for readability.
        loc = tuple(p for p in loc if p not in _TAGS)
        msg = _allowed_hint(err, root)
        if "input" in err and err["type"] not in ("missing", "extra_forbidden"):
            value = err["input"]
            if not isinstance(value, dict | list):
                msg += f"; got {shorten(repr(value))}"
        problems.append((loc_to_field(loc), msg))
    return problems


_TAGS: dict[str, type[BaseModel]] = {}


def register_tag(name: str, model: type[BaseModel]) -> None:
    """Remember a discriminator tag (dropped from error locations, used to find fields)."""
    _TAGS[name] = model


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, raising :class:`InputError` naming the file on failure.

    The file must be a regular UTF-8 file within the size limit of :mod:`tradepolicy._files`.
    """
    text = read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), [("", f"not valid TOML: {exc}")]) from None
