"""Regions and blocs as data (docs/model.md).

One shipped table (``tradepolicy/data/regions.csv``) gives every region code its name, short
name, the form used inside a sentence, a colour and the groups it belongs to (``g7``,
``g7_partners``, ``eu``); a region marked ``aggregate`` (``ROW``, "other Asia") stands for many
countries and is never reported as a single supplier. Every view and every market reads this
table, so a region is spelled and coloured the same everywhere.

A market may describe regions the table does not know under ``[region_info.<CODE>]``
(``name``, ``short_name``, ``groups``, ``aggregate``, ``colour``); code may call
:func:`add_region`. Any other unknown code is an error naming the code.

Groups
------
``g7``
    The G7 members (Canada, France, Germany, Italy, Japan, the United Kingdom, the United
    States) and the European Union, which takes part in the G7.
``g7_partners``
    The G7 and the partners that endorsed the G7 Critical Minerals Action Plan (Kananaskis,
    June 2025): Australia, India and the Republic of Korea. The G7's 2030 target of under 60%
    dependence on a single supplier for rare earths and magnets (Évian, 2026) is read on this
    bloc. The Évian text's own partner list was not available when the table was compiled;
    the Kananaskis endorsers stand in for it.
``eu``
    Member states of the European Union shown as separate regions.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd

__all__ = [
    "DEFAULT_GROUP",
    "GROUPS",
    "Region",
    "UnknownRegionError",
    "add_region",
    "bloc_members",
    "colour",
    "describe_bloc",
    "get",
    "in_text",
    "is_aggregate",
    "name",
    "short_name",
    "table",
]

#: group name -> plain description (what the group stands for)
GROUPS: dict[str, str] = {
    "g7": "the G7 (Canada, France, Germany, Italy, Japan, the United Kingdom, the United "
    "States and the European Union)",
    "g7_partners": "the G7 and its partners (Australia, India and the Republic of Korea)",
    "eu": "the European Union's member states",
}
#: the bloc the G7's dependence target is read on when a set names none
DEFAULT_GROUP = "g7_partners"


class UnknownRegionError(KeyError):
    """A region code that neither the regions table nor the market describes."""

    def __init__(self, code: str) -> None:
        self.code = code
        close = difflib.get_close_matches(code, list(_registry()), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        super().__init__(
            f"unknown region code {code!r}{hint}: not in tradepolicy's regions table; describe "
            f"it in the market file under [region_info.{code}] (name, groups, aggregate)"
        )

    def __str__(self) -> str:
        """Return the message without the quotes ``KeyError`` adds."""
        return str(self.args[0])


@dataclass(frozen=True)
class Region:
    """One region of the table."""

    code: str
    name: str
    short_name: str
    in_text: str
    colour: str
    groups: tuple[str, ...] = field(default_factory=tuple)
    aggregate: bool = False


def _read_table() -> dict[str, Region]:
    text = resources.files("tradepolicy.data").joinpath("regions.csv").read_text("utf-8")
    out = {}
    for row in csv.DictReader(text.splitlines()):
        out[row["code"]] = Region(
            code=row["code"],
            name=row["name"],
            short_name=row["short_name"],
            in_text=row["in_text"],
            colour=row["colour"],
            groups=tuple(row["groups"].split()),
            aggregate=row["aggregate"].strip() == "1",
        )
    return out


@cache
def _registry() -> dict[str, Region]:
    return _read_table()


def add_region(
    code: str,
    name: str,
    *,
    short_name: str | None = None,
    in_text: str | None = None,
    colour: str = "#7f7f7f",
    groups: Iterable[str] = (),
    aggregate: bool = False,
) -> Region:
    """Describe a region the shipped table does not know (or redescribe one) for this session.

    Parameters
    ----------
    code : str
        The region code.
    name : str
        Its name in a table heading.
    short_name : str, optional
        Its name in narrow columns and chart labels (default: ``name``).
    in_text : str, optional
        Its name inside a sentence (default: ``name``).
    colour : str, optional
        Its colour in every chart (hex, default grey).
    groups : iterable of str, optional
        The groups it belongs to (``g7``, ``g7_partners``, ``eu``).
    aggregate : bool, optional
        Whether it stands for many countries (never reported as a single supplier).

    Returns
    -------
    Region
        The table entry added.
    """
    region = Region(
        code=code,
        name=name,
        short_name=short_name or name,
        in_text=in_text or name,
        colour=colour,
        groups=tuple(groups),
        aggregate=bool(aggregate),
    )
    _registry()[code] = region
    return region


def register_market_regions(info: Mapping[str, Mapping[str, Any]]) -> None:
    """Add the ``[region_info]`` entries of a market (codes the table does not know)."""
    for code, entry in info.items():
        add_region(code, **dict(entry))


def get(code: str) -> Region:
    """Return the table entry of a region.

    Parameters
    ----------
    code : str
        A region code.

    Returns
    -------
    Region
        Its entry (name, short name, name in a sentence, colour, groups, aggregate).

    Raises
    ------
    UnknownRegionError
        Neither the shipped table nor a market describes ``code`` (the message suggests close
        codes).

    Examples
    --------
    >>> from tradepolicy import regions
    >>> regions.get("JPN").groups
    ('g7', 'g7_partners')
    """
    try:
        return _registry()[code]
    except KeyError:
        raise UnknownRegionError(code) from None


def known(code: str) -> bool:
    """Whether ``code`` is described (shipped table or added)."""
    return code in _registry()


def _lookup(code: str) -> Region:
    """Lenient lookup for display: an unknown code shows as itself."""
    reg = _registry().get(code)
    return reg or Region(code, code, code, code, "#7f7f7f")


def name(code: str) -> str:
    """Return the region's name in a table heading.

    Parameters
    ----------
    code : str
        A region code (an unknown code shows as itself).

    Returns
    -------
    str
        The name.

    Examples
    --------
    >>> from tradepolicy import regions
    >>> regions.name("USA")
    'United States'
    """
    return _lookup(code).name


def short_name(code: str) -> str:
    """Return the region's short name, for narrow columns and chart labels.

    Parameters
    ----------
    code : str
        A region code (an unknown code shows as itself).

    Returns
    -------
    str
        The short name.

    Examples
    --------
    >>> from tradepolicy import regions
    >>> regions.short_name("USA")
    'US'
    """
    return _lookup(code).short_name


def in_text(code: str) -> str:
    """Return the region's name inside a sentence.

    Parameters
    ----------
    code : str
        A region code (an unknown code shows as itself).

    Returns
    -------
    str
        The name, with an article where English needs one.

    Examples
    --------
    >>> from tradepolicy import regions
    >>> regions.in_text("USA")
    'the United States'
    """
    return _lookup(code).in_text


def colour(code: str) -> str:
    """Return the region's colour in every chart.

    Parameters
    ----------
    code : str
        A region code (an unknown code shows as itself).

    Returns
    -------
    str
        A hex colour (grey for an unknown code).
    """
    return _lookup(code).colour


def is_aggregate(code: str) -> bool:
    """Return whether the region stands for many countries (never a single supplier).

    Parameters
    ----------
    code : str
        A region code (an unknown code shows as itself).

    Returns
    -------
    bool
        True for an aggregate such as ``ROW``.

    Examples
    --------
    >>> from tradepolicy import regions
    >>> regions.is_aggregate("ROW"), regions.is_aggregate("CHN")
    (True, False)
    """
    return _lookup(code).aggregate


def table() -> pd.DataFrame:
    """Return the regions table (shipped and added regions).

    Returns
    -------
    pandas.DataFrame
        One row per region, indexed by code: ``name``, ``short_name``, ``in_text``,
        ``colour``, ``groups`` (space-separated) and ``aggregate``.
    """
    rows = [
        {
            "code": r.code,
            "name": r.name,
            "short_name": r.short_name,
            "in_text": r.in_text,
            "colour": r.colour,
            "groups": " ".join(r.groups),
            "aggregate": r.aggregate,
        }
        for r in _registry().values()
    ]
    return pd.DataFrame(rows).set_index("code")


def bloc_members(bloc: str | Sequence[str], regions: Sequence[str]) -> list[str]:
    """Return the regions of a market that stand for ``bloc`` (a group or a list of codes).

    Aggregate regions are never members: a group's countries inside ``ROW`` cannot be told
    apart from the others there.

    Parameters
    ----------
    bloc : str or sequence of str
        A group name (``g7``, ``g7_partners``, ``eu``) or a list of region codes.
    regions : sequence of str
        The market's region codes.

    Returns
    -------
    list of str
        The members among ``regions``, in their order.

    Raises
    ------
    KeyError
        An unknown group, or listed codes that are not regions of the market.

    Examples
    --------
    >>> from tradepolicy import regions
    >>> regions.bloc_members("g7_partners", ["CHN", "USA", "AUS", "ROW"])
    ['USA', 'AUS']
    """
    if isinstance(bloc, str):
        if bloc not in GROUPS and not any(bloc in r.groups for r in _registry().values()):
            raise KeyError(f"unknown group {bloc!r} (allowed: {', '.join(GROUPS)})")
        return [r for r in regions if bloc in _lookup(r).groups and not is_aggregate(r)]
    unknown = [c for c in bloc if c not in regions]
    if unknown:
        raise KeyError(f"bloc regions {unknown} are not regions of the market")
    return [r for r in regions if r in set(bloc) and not is_aggregate(r)]


def describe_bloc(bloc: str | Sequence[str]) -> str:
    """Describe a bloc in plain words.

    Parameters
    ----------
    bloc : str or sequence of str
        A group name or a list of region codes.

    Returns
    -------
    str
        The group's description, or the regions' names joined as in a sentence.

    Examples
    --------
    >>> from tradepolicy import regions
    >>> regions.describe_bloc(["USA", "JPN"])
    'the United States and Japan'
    """
    if isinstance(bloc, str):
        return GROUPS.get(bloc, bloc)
    names = [in_text(c) for c in bloc]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
