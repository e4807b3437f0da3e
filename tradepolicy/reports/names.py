"""Plain names for region codes, as a reader outside the model would write them.

Region codes (``CHN``, ``EU``, ``ROW``...) are the model's labels. Briefs spell them out with
the shipped regions table (:mod:`tradepolicy.regions`): the name in a table heading and the
form used inside a sentence (with "the" where English needs it).
"""

from __future__ import annotations

from collections.abc import Iterable

from tradepolicy import regions


def region_name(code: str) -> str:
    """Name of a region in a table (``USA`` -> ``United States``); unknown codes unchanged."""
    return regions.name(code)


def region_in_text(code: str) -> str:
    """Name of a region inside a sentence (``USA`` -> ``the United States``)."""
    return regions.in_text(code)


def join_words(items: Iterable[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def regions_in_text(codes: Iterable[str]) -> str:
    """Several regions inside a sentence: ``the EU, Japan and the United States``."""
    return join_words(region_in_text(c) for c in codes)


def sentence_case(text: str) -> str:
    """Capitalise the first letter only (``the United States ...`` -> ``The United ...``)."""
    return text[:1].upper() + text[1:] if text else text
