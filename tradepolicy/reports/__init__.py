"""Scenario briefs for policy staff: PDF, DOCX, HTML and a PPTX deck from a results Dataset.

::

    from tradepolicy.reports import render_brief, write_brief
    pdf = render_brief(ds, ["club_floor_110"], fmt="pdf")      # bytes
    write_brief("results.nc", "brief.docx")                      # format from the suffix
    deck = render_brief(ds, fmt="pptx")                          # the slide deck

One context (:func:`~tradepolicy.reports.context.build_context`) feeds every format. Needs the
``reports`` extra (Jinja2, WeasyPrint, python-docx, python-pptx, matplotlib).
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import date
from pathlib import Path

import xarray as xr

from tradepolicy.errors import InputError
from tradepolicy.reports.context import Brief, build_context

__all__ = ["FORMATS", "Brief", "build_context", "render_brief", "write_brief"]

log = logging.getLogger(__name__)

#: output formats and their file suffixes
FORMATS = {"pdf": ".pdf", "docx": ".docx", "html": ".html", "pptx": ".pptx"}


def check_format(fmt: str) -> str:
    """Normalise ``fmt`` (``PDF`` -> ``pdf``); an unknown format is an :class:`InputError`."""
    f = str(fmt).lower().lstrip(".")
    if f == "htm":
        f = "html"
    if f not in FORMATS:
        raise InputError(
            "--format", [("", f"unknown format {fmt!r} (allowed: pdf, docx, html, pptx)")]
        )
    return f


def render_brief(
    ds: xr.Dataset,
    scenarios: list[str] | None = None,
    fmt: str = "pdf",
    *,
    today: date | None = None,
    source: str = "results",
) -> bytes:
    """Render the brief of ``ds`` as bytes in ``fmt`` (``pdf``, ``docx``, ``html`` or ``pptx``).

    Parameters
    ----------
    ds
        A tradepolicy results Dataset (``tp.solve`` or ``tp.open_results``).
    scenarios
        Scenario names to show (default: every scenario; the baseline is the reference).
    fmt
        ``pdf``, ``docx``, ``html`` (UTF-8) or ``pptx`` (a 16:9 slide deck of the answer, the
        key tables and the charts).
    today
        The brief's date (default: today, UTC).
    source
        What error messages call the results (the file name when read from a file).

    Raises
    ------
    InputError
        An unknown format or scenario, or ``ds`` is not a tradepolicy result.
    """
    fmt = check_format(fmt)
    brief = build_context(ds, scenarios, today=today, source=source)
    if fmt == "pdf":
        from tradepolicy.reports.html import render_pdf

        return render_pdf(brief)
    if fmt == "html":
        from tradepolicy.reports.html import render_html

        return render_html(brief).encode("utf-8")
    if fmt == "pptx":
        from tradepolicy.reports.deck import render_pptx

        return render_pptx(brief)
    from tradepolicy.reports.word import render_docx

    return render_docx(brief)


def write_brief(
    ds_or_path: xr.Dataset | str | os.PathLike,
    path: str | os.PathLike,
    scenarios: list[str] | None = None,
    fmt: str | None = None,
) -> Path:
    """Write the brief to ``path`` (format from ``fmt`` or the suffix) atomically.

    The file is written to a temporary file beside ``path`` and renamed, so a failure leaves
    nothing half-written. Returns ``path``.
    """
    from tradepolicy.results.io import open_results

    path = Path(path)
    suffix = path.suffix.lower()
    known = suffix in (*FORMATS.values(), ".htm")
    if fmt is None:
        if not known:
            raise InputError(
                str(path),
                [
                    (
                        "",
                        "cannot tell the format from the suffix "
                        "(allowed: .pdf, .docx, .html, .pptx)",
                    )
                ],
            )
        fmt = suffix
    fmt = check_format(fmt)
    if known and check_format(suffix) != fmt:
        raise InputError(
            str(path), [("", f"the suffix {path.suffix} does not match the format {fmt!r}")]
        )
    if isinstance(ds_or_path, xr.Dataset):
        ds, source = ds_or_path, "results"
    else:
        source = str(ds_or_path)
        if path.exists() and Path(ds_or_path).exists() and path.samefile(ds_or_path):
            raise InputError(
                str(path), [("", "the brief would overwrite its results file; choose another -o")]
            )
        ds = open_results(ds_or_path)
    data = render_brief(ds, scenarios, fmt, source=source)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=f"{path.suffix}.part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("wrote %s (%d bytes)", path, len(data))
    return path
