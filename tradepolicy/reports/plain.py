"""Text a brief can print as it is: no internal tags, no file references, no XML-invalid characters.

Market definitions carry source notes written for the modellers: certainty tags in brackets
(``[assumption: ...]``, ``[UNVERIFIED recollection]``, ``[gap]``, ``[2nd]``), references to
project files that are not in the package (``NOTES.md §6``, ``shared/data/...``) and, from
the gravity fit, ``(se nan)``. :func:`plain_note` is the brief's defensive boundary for those
texts: a tag becomes its plain-words qualifier in parentheses (``[assumption: X]`` ->
``(assumed: X)``, ``[UNVERIFIED]`` -> ``(not verified)``), so no number and no statement of
uncertainty is lost; a file reference is dropped (a bare data folder becomes "the project
data set"); numeric brackets such as a prior range ``[0.1, 0.8]`` stay as they are.

:func:`xml_safe` removes the characters XML 1.0 (and so Word and HTML) does not allow;
:func:`clean_strings` applies it to every string of a brief context.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

#: characters XML 1.0 does not allow (C0 controls except tab, newline and carriage return,
#: surrogates, U+FFFE and U+FFFF)
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: bracket tags: (pattern at the start of the bracket's text, plain words)
_TAG_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^assumption\b", re.I), "assumed"),
    (re.compile(r"^gap\b", re.I), "data gap"),
    (re.compile(r"^2nd\b", re.I), "secondary source"),
    (re.compile(r"^secondary\b(?!\s+source)", re.I), "secondary source"),
)
#: words inside a tag, anywhere: (pattern, plain words)
_INNER_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bUNVERIFIED\s+recollection\b(?:\s+of\b)?", re.I), "not verified"),
    (re.compile(r"\bUNVERIFIED\b", re.I), "not verified"),
    (re.compile(r"\bverify\s+against\b", re.I), "not checked against"),
    (re.compile(r"\bnumber\s+not\s+retrieved\b", re.I), "number not found"),
)
#: an internal field reference such as ``[seed_shares.AUS]``
_FIELD_REF = re.compile(r"^[a-z][a-z0-9_]*(?:\.[A-Za-z0-9_]+)+$")
#: a project file with an optional section (``NOTES.md §6``, ``baseline_facts.csv``)
_FILE = re.compile(
    r"(?<![\w./-])[\w.-]*[A-Za-z][\w-]*\.(?:md|csv|json|toml|nc|py|txt|xlsx?|ipynb|yaml|yml)"
    r"(?![\w/])(?:\s*§\s*\d+(?:\.\d+)*)?",
    re.I,
)
#: a project data folder named without a file (``shared/data``): the project's data set
_DATA_FOLDER = re.compile(r"(?<![\w./-])(?:\.\./)*shared/data/?(?![\w./-])")
_CAL_FOLDER = re.compile(r"(?<![\w./-])(?:\.\./)*calibration/data/?(?![\w./-])")
#: any other path into the project tree (``shared/data/raw/x/iea.json``, ``calibration/...``)
_PATH = re.compile(
    r"(?<![\w./-])(?:\.\./)*(?:shared|calibration|tradepolicy|models|scenarios|notebooks|docs|"
    r"tests|benchmarks|work|data)/[\w./§-]*"
)
#: the project's own documents by name (``DESIGN §1``, ``NOTES §6``)
_PROJECT_DOC = re.compile(r"\b(?:DESIGN|NOTES|README)\b(?:\.md)?(?:\s*§\s*\d+(?:\.\d+)*)?")
_SECTION = re.compile(r"(?<![\w])§\s*\d+(?:\.\d+)*")
_SE_NAN = re.compile(r"\s*\(\s*(?:se|s\.e\.)\s*[:=]?\s*(?:nan|inf)\s*\)", re.I)
_NAN = re.compile(r"(?<![\w.])[-+]?(?:nan|inf)(?![\w.])", re.I)
_BRACKET = re.compile(r"\[([^\[\]]*)\]")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 does not allow (NUL, other C0 controls)."""
    return _XML_INVALID.sub("", text)


def _bracket(match: re.Match[str]) -> str:
    inner = match.group(1).strip()
    if not inner or _FIELD_REF.match(inner):
        return ""
    if not re.search(r"[A-Za-z]", inner):
        return match.group(0)  # numbers only: a range such as [0.1, 0.8]
    for pattern, words in _INNER_WORDS:
        inner = pattern.sub(words, inner)
    for pattern, words in _TAG_WORDS:
        if pattern.match(inner):
            inner = pattern.sub(words, inner, count=1)
            break
    return f"({inner})"


def _tidy(text: str) -> str:
    """Punctuation left behind by a removed reference."""
    for _ in range(3):
        before = text
        text = re.sub(r"\b(?:in|from|see|via|at|and)\s+(?=[,;:.)]|$)", "", text)
        text = re.sub(r"\(\s*[,;:]*\s*\)", "", text)
        text = re.sub(r"\(\s*[,;:]\s*", "(", text)
        text = re.sub(r"\s*[,;:]\s*\)", ")", text)
        text = re.sub(r"([,;:])\s*(?=[,;:.])", "", text)
        text = re.sub(r"[,;:]\s*$", "", text)
        text = re.sub(r"\(([^()]*),\s*\(([^()]*)\)\)", r"(\1; \2)", text)
        text = re.sub(r"[ \t]+([,;:.)])", r"\1", text)
        text = re.sub(r"[ \t]{2,}", " ", text)
        if text == before:
            break
    return text.strip()


def plain_note(text: str) -> str:
    """A source or caveat note as a reader outside the project should see it.

    Bracketed certainty tags become plain qualifiers in parentheses, references to project
    files and folders are dropped, ``(se nan)`` and other non-finite numbers are removed; every
    number of the note is kept.
    """
    text = xml_safe(str(text))
    text = _SE_NAN.sub("", text)
    text = _DATA_FOLDER.sub("the project data set", text)
    text = _CAL_FOLDER.sub("the calibration data", text)
    text = _PATH.sub("", text)
    text = _FILE.sub("", text)
    text = _PROJECT_DOC.sub("", text)
    text = _SECTION.sub("", text)
    for _ in range(5):  # innermost brackets first: tags may nest
        new = _BRACKET.sub(_bracket, text)
        if new == text:
            break
        text = new
    text = _NAN.sub("not available", text)
    return _tidy(text)


def clean_strings(obj: Any) -> Any:
    """``obj`` (a brief context: dataclasses, lists, tuples, dicts) with :func:`xml_safe` on
    every string, in place for dataclasses; returns ``obj``."""
    if isinstance(obj, str):
        return xml_safe(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # typeshed's DataclassInstance declares only __dataclass_fields__, not the params
        if obj.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            return obj  # display units and the like: no free text
        for f in dataclasses.fields(obj):
            setattr(obj, f.name, clean_strings(getattr(obj, f.name)))
        return obj
    if isinstance(obj, list):
        return [clean_strings(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(clean_strings(v) for v in obj)
    if isinstance(obj, dict):
        return {clean_strings(k): clean_strings(v) for k, v in obj.items()}
    return obj
