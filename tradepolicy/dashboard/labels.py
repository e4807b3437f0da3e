"""Region labels for the dashboard: full names from the regions table, the code on hover.

Every view names a region by its full name (``USA`` -> ``United States``,
:func:`tradepolicy.regions.name`); the code stays one hover away: a ``title`` attribute in
HTML (tables, KPI cards) and a ``code`` column in the Bokeh hover of every chart.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Iterable

import pandas as pd

from tradepolicy import regions as region_table

#: characters per line of a region name under a bar (longer names wrap onto more lines)
WRAP = 11


def region_name(code: str) -> str:
    """The full name of ``code`` (an unknown code shows as itself)."""
    return region_table.name(str(code))


def axis_label(code: str, width: int = WRAP) -> str:
    """The full name wrapped onto lines of at most ``width`` characters (whole words) for a
    category axis: ``COD`` -> ``"Democratic\\nRepublic of\\nthe Congo"``."""
    return textwrap.fill(region_name(code), width, break_long_words=False)


def region_html(code: str) -> str:
    """The full name as HTML with the code on hover:
    ``<span class="tp-region" title="USA">United States</span>``."""
    code = str(code)
    return (
        f'<span class="tp-region" title="{html.escape(code)}">'
        f"{html.escape(region_name(code))}</span>"
    )


def mark_regions(text: str, codes: Iterable[str] | None = None) -> str:
    """Escape ``text`` as HTML and give every full region name in it its code on hover.

    ``codes`` limits the names looked for (default: every region of the regions table); a
    longer name wins over a shorter one it contains, and only whole words match.
    """
    pool = list(region_table.table().index) if codes is None else [str(c) for c in codes]
    by_name: dict[str, str] = {}
    for code in pool:
        by_name.setdefault(region_name(code), code)
    escaped = html.escape(text)
    if not by_name:
        return escaped
    names = sorted(by_name, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(re.escape(html.escape(n)) for n in names) + r")\b")
    lookup = {html.escape(n): c for n, c in by_name.items()}
    return pattern.sub(
        lambda m: (
            f'<span class="tp-region" title="{html.escape(lookup[m.group(1)])}">{m.group(1)}</span>'
        ),
        escaped,
    )


def html_frame(frame: pd.DataFrame, region_columns: Iterable[str] = ()) -> pd.DataFrame:
    """A frame indexed by region codes ready for ``pn.pane.DataFrame(escape=False)``: the
    index (and the columns in ``region_columns``, which hold codes) as :func:`region_html`,
    every other text cell escaped; numbers are left as they are."""
    out = frame.copy().astype(object)
    cols = set(region_columns)
    for col in out.columns:
        if col in cols:
            out[col] = [region_html(v) if v and v != "—" else "—" for v in frame[col]]
        else:
            out[col] = [html.escape(v) if isinstance(v, str) else v for v in out[col]]
    out.index = pd.Index([region_html(str(r)) for r in frame.index], name=frame.index.name)
    out.columns = [html.escape(str(c)) for c in out.columns]
    return out


__all__ = ["WRAP", "axis_label", "html_frame", "mark_regions", "region_html", "region_name"]
