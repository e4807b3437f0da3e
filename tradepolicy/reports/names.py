"""Plain names for region codes, as a reader outside the model would write them.

Region codes (``CHN``, ``EU``, ``ROW``...) are the model's labels. Briefs spell them out:
:data:`REGION_NAMES` maps a code to its name in a table heading and to the form used inside a
sentence (with "the" where English needs it). Unknown codes fall back to the code itself, so a
market with new regions still renders.
"""

from __future__ import annotations

from collections.abc import Iterable

#: code -> (name in tables, name inside a sentence)
REGION_NAMES: dict[str, tuple[str, str]] = {
    "ARG": ("Argentina", "Argentina"),
    "AUS": ("Australia", "Australia"),
    "BOL": ("Bolivia", "Bolivia"),
    "BRA": ("Brazil", "Brazil"),
    "CAN": ("Canada", "Canada"),
    "CHL": ("Chile", "Chile"),
    "CHN": ("China", "China"),
    "COD": ("DR Congo", "the DR Congo"),
    "CUB": ("Cuba", "Cuba"),
    "DEU": ("Germany", "Germany"),
    "EU": ("European Union", "the EU"),
    "FIN": ("Finland", "Finland"),
    "FRA": ("France", "France"),
    "GBR": ("United Kingdom", "the United Kingdom"),
    "IDN": ("Indonesia", "Indonesia"),
    "IND": ("India", "India"),
    "ITA": ("Italy", "Italy"),
    "JPN": ("Japan", "Japan"),
    "KAZ": ("Kazakhstan", "Kazakhstan"),
    "KOR": ("Korea", "Korea"),
    "MDG": ("Madagascar", "Madagascar"),
    "MMR": ("Myanmar", "Myanmar"),
    "MOZ": ("Mozambique", "Mozambique"),
    "MYS": ("Malaysia", "Malaysia"),
    "NCL": ("New Caledonia", "New Caledonia"),
    "NOR": ("Norway", "Norway"),
    "PHL": ("Philippines", "the Philippines"),
    "RUS": ("Russia", "Russia"),
    "TUR": ("Türkiye", "Türkiye"),
    "TWN": ("Taiwan", "Taiwan"),
    "UKR": ("Ukraine", "Ukraine"),
    "USA": ("United States", "the United States"),
    "VNM": ("Viet Nam", "Viet Nam"),
    "ROW": ("Rest of world", "the rest of the world"),
    "ZAF": ("South Africa", "South Africa"),
    "ZMB": ("Zambia", "Zambia"),
    "ZWE": ("Zimbabwe", "Zimbabwe"),
}


def region_name(code: str) -> str:
    """Name of a region in a table (``USA`` -> ``United States``); unknown codes unchanged."""
    return REGION_NAMES.get(code, (code, code))[0]


def region_in_text(code: str) -> str:
    """Name of a region inside a sentence (``USA`` -> ``the United States``)."""
    return REGION_NAMES.get(code, (code, code))[1]


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
