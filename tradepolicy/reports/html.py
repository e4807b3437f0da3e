"""HTML and PDF briefs: one Jinja2 template (autoescaped) rendered to HTML, then by WeasyPrint.

Nothing is fetched from the network: the stylesheet is inlined, charts are ``data:`` URIs
(SVG, so the PDF keeps vector graphics), the PDF's fonts are the DejaVu fonts that matplotlib
ships, and WeasyPrint's URL fetcher refuses every scheme except ``file:`` and ``data:``.
"""

from __future__ import annotations

import base64
import logging
import re
from functools import cache
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from tradepolicy.reports import charts
from tradepolicy.reports.context import Brief
from tradepolicy.reports.pathway import PathwayBrief

log = logging.getLogger(__name__)

#: URL schemes WeasyPrint may open (packaged fonts and inline images only)
ALLOWED_SCHEMES = ("file", "data")
_FONT_FACES = (
    ("DejaVuSans.ttf", "normal", "normal"),
    ("DejaVuSans-Bold.ttf", "bold", "normal"),
    ("DejaVuSans-Oblique.ttf", "normal", "italic"),
    ("DejaVuSans-BoldOblique.ttf", "bold", "italic"),
)


#: a parenthesised part of a column header: "(5–95%)", "(bn USD)", "(spending > 0)"
_PARENS = re.compile(r"\([^()]*\)")


def keep_parentheses(text: str) -> Markup:
    """``text`` escaped, each parenthesised part kept on one line (a header may break before
    "(5–95%)" but not after its dash, nor inside "(bn USD)")."""
    out, last = [], 0
    for m in _PARENS.finditer(text):
        out.append(escape(text[last : m.start()]))
        out.append(Markup('<span class="nobr">%s</span>') % m.group(0))
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tradepolicy.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["keep_parentheses"] = keep_parentheses
    return env


@cache
def _css() -> str:
    return resources.files("tradepolicy.reports").joinpath("templates/brief.css").read_text("utf-8")


@cache
def font_css() -> str:
    """``@font-face`` rules for the packaged DejaVu Sans fonts (matplotlib's copies)."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    rules = []
    for name, weight, style in _FONT_FACES:
        path = folder / name
        if path.exists():
            rules.append(
                f'@font-face {{ font-family: "Brief Sans"; src: url("{path.as_uri()}"); '
                f"font-weight: {weight}; font-style: {style}; }}"
            )
    return "\n".join(rules)


def _uri(svg: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def _chart_uris(brief: Brief | PathwayBrief) -> dict[str, str]:
    if isinstance(brief, PathwayBrief):
        return {c.key: _uri(charts.render(c, "svg")) for c in brief.charts}
    out = {}
    for s in brief.sections:
        for c in s.charts:
            svg = charts.render(c, "svg")
            out[f"{s.id}/{c.key}"] = "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
    return out


def render_html(brief: Brief | PathwayBrief, for_pdf: bool = False) -> str:
    """The brief as one self-contained HTML page (inline CSS, charts as ``data:`` URIs)."""
    css = _css()
    if for_pdf:
        css = font_css() + "\n" + css
    name = "pathway.html.j2" if isinstance(brief, PathwayBrief) else "brief.html.j2"
    template = _environment().get_template(name)
    # the stylesheet is packaged, trusted text: not escaped (quotes must stay quotes)
    return template.render(brief=brief, css=Markup(css), chart_uris=_chart_uris(brief))


def url_fetcher():
    """A WeasyPrint URL fetcher that refuses every scheme but ``file:`` and ``data:``."""
    try:
        from weasyprint.urls import URLFetcher
    except ImportError:  # WeasyPrint < 67: function fetchers
        from weasyprint import default_url_fetcher

        def fetch(url: str, *args, **kwargs):
            if url.split(":", 1)[0].lower() not in ALLOWED_SCHEMES:
                raise ValueError(f"refused to fetch {url!r}: briefs use no remote resources")
            return default_url_fetcher(url, *args, **kwargs)

        return fetch
    return URLFetcher(allowed_protocols=ALLOWED_SCHEMES)


def render_pdf(brief: Brief | PathwayBrief) -> bytes:
    """The brief as PDF bytes (WeasyPrint)."""
    import weasyprint

    html = render_html(brief, for_pdf=True)
    doc = weasyprint.HTML(string=html, base_url=None, url_fetcher=url_fetcher())
    return doc.write_pdf()
