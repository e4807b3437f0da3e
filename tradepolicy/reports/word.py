"""DOCX briefs (python-docx): Word styles and real, editable tables.

Headings use ``Title``, ``Heading 1`` and ``Heading 2``; lists use ``List Bullet``; tables use
the built-in ``Light List Accent 1`` style (header row repeated on each page); charts are PNG
pictures (Word has no SVG support in python-docx). The content is the same
:class:`~tradepolicy.reports.context.Brief` as the HTML and PDF.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import docx
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

from tradepolicy.reports import charts
from tradepolicy.reports.context import Brief, Cell, Table, clip
from tradepolicy.reports.pathway import PathwayBrief
from tradepolicy.reports.summary import Summary

TABLE_STYLE = "Light List Accent 1"
FONT = "Calibri"
TEXT_WIDTH_CM = 17.4
FIRST_COL_CM = 4.8
POS = RGBColor(0x00, 0x60, 0x3A)
NEG = RGBColor(0xA4, 0x00, 0x00)
GREY = RGBColor(0x66, 0x66, 0x66)
#: Word's limit on a core document property (title, subject)
CORE_PROPERTY_CHARS = 255


def _setup(document: docx.document.Document, brief: Brief | PathwayBrief) -> None:
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Cm(1.8))
    section.top_margin, section.bottom_margin = Cm(1.6), Cm(1.6)
    normal = document.styles["Normal"]
    normal.font.name = FONT
    normal.font.size = Pt(9)
    normal.paragraph_format.space_after = Pt(3)
    for name, size in (("Title", 20), ("Heading 1", 13), ("Heading 2", 10.5), ("Caption", 8.5)):
        document.styles[name].font.size = Pt(size)
        document.styles[name].font.name = FONT
    props = document.core_properties
    # Word's core properties hold at most 255 characters (two stacked markets exceed it)
    props.title = clip(brief.title, CORE_PROPERTY_CHARS - 2)
    props.subject = clip(brief.subtitle, CORE_PROPERTY_CHARS - 2)
    props.author = "tradepolicy"
    props.created = datetime.now(UTC).replace(tzinfo=None)
    # footer: title and page number
    para = section.footer.paragraphs[0]
    para.text = f"{brief.title} · page "
    para.runs[0].font.size = Pt(7.5)
    _page_field(para, Pt(7.5))


def _page_field(para, size) -> None:
    """A PAGE field (begin, instruction, separate, placeholder, end), which Word updates."""
    for kind, text in (
        ("begin", None),
        (None, " PAGE "),
        ("separate", None),
        (None, "1"),
        ("end", None),
    ):
        run = para.add_run()
        run.font.size = size
        if kind:
            el = OxmlElement("w:fldChar")
            el.set(qn("w:fldCharType"), kind)
        elif text == " PAGE ":
            el = OxmlElement("w:instrText")
            el.set(qn("xml:space"), "preserve")
            el.text = text
        else:
            el = OxmlElement("w:t")
            el.text = text
        run._r.append(el)


def _bullet(document, text: str, topic: str = "") -> None:
    para = document.add_paragraph(style="List Bullet")
    para.paragraph_format.space_after = Pt(1)
    if topic:
        para.add_run(f"{topic}: ").bold = True
    para.add_run(text)


def _repeat_header(row) -> None:
    props = row._tr.get_or_add_trPr()
    flag = OxmlElement("w:tblHeader")
    flag.set(qn("w:val"), "true")
    props.append(flag)


def _table(document, table: Table, number: int, size: float = 7.5) -> None:
    cap = document.add_paragraph(style="Caption")
    cap.add_run(f"Table {number}. ").bold = True
    cap.add_run(table.caption)
    cap.paragraph_format.keep_with_next = True
    t = document.add_table(rows=1 + len(table.rows), cols=len(table.header))
    t.style = document.styles[TABLE_STYLE]
    t.alignment = WD_TABLE_ALIGNMENT.CENTER
    t.autofit = False
    first = min(FIRST_COL_CM, TEXT_WIDTH_CM / 2)
    rest = (TEXT_WIDTH_CM - first) / max(1, len(table.header) - 1)
    for j, column in enumerate(t.columns):
        column.width = Cm(first if j == 0 else rest)  # the grid (LibreOffice reads this)
        for cell in column.cells:
            cell.width = Cm(first if j == 0 else rest)  # each cell (Word reads this)
    for j, head in enumerate(table.header):
        cell = t.rows[0].cells[j]
        cell.text = head
        para = cell.paragraphs[0]
        para.alignment = WD_ALIGN_PARAGRAPH.LEFT if j == 0 else WD_ALIGN_PARAGRAPH.RIGHT
        for run in para.runs:
            run.font.size = Pt(size)
            run.bold = True
    _repeat_header(t.rows[0])
    for i, row in enumerate(table.rows, start=1):
        for j, c in enumerate(row):
            para = t.rows[i].cells[j].paragraphs[0]
            para.paragraph_format.space_after = Pt(0)
            para.alignment = WD_ALIGN_PARAGRAPH.LEFT if c.label else WD_ALIGN_PARAGRAPH.RIGHT
            run = para.add_run(c.text)
            run.font.size = Pt(size)
            run.bold = False
            if c.tone:
                run.font.color.rgb = POS if c.tone == "pos" else NEG
            if c.flag:
                mark = para.add_run(f" {c.flag}")
                mark.font.size = Pt(size)
                mark.font.color.rgb = NEG
            if c.sub:
                small = para.add_run("\n" + c.sub)
                small.font.size = Pt(size - 1.5)
                small.font.color.rgb = GREY
    if table.note:
        note = document.add_paragraph(table.note)
        for run in note.runs:
            run.font.size = Pt(7.5)
            run.font.color.rgb = GREY


def _chain(document, brief: Brief, start: int = 0) -> int:
    """The value chain's overview (before its stage sections); returns the last table number
    (the tables are numbered after ``start``)."""
    chain = brief.chain
    if chain is None:
        return start
    lede = chain.lede + (" Ranges are 5–95% Monte Carlo ranges." if brief.has_ranges else "")
    document.add_paragraph(lede)
    if chain.glance:
        document.add_heading("Headline findings", level=1)
        for line in chain.glance:
            _bullet(document, line)
    if chain.warnings:
        document.add_heading("Validity warnings", level=1)
        for w in chain.warnings:
            para = document.add_paragraph(f"\u26a0 {w}.")
            para.runs[0].font.color.rgb = NEG
    document.add_heading("The chain stage by stage", level=1)
    for n, t in enumerate(chain.tables, start=start + 1):
        _table(document, t, n)
    return start + len(chain.tables)


def _grey_note(document, text: str) -> None:
    note = document.add_paragraph(text)
    for run in note.runs:
        run.font.size = Pt(7.5)
        run.font.color.rgb = GREY


def _sources(document, rows: list[tuple[str, str]]) -> None:
    """One small paragraph per source: its subject in bold, then the text."""
    for what, text in rows:
        para = document.add_paragraph()
        para.add_run(f"{what}: ").bold = True
        para.add_run(text)
        for run in para.runs:
            run.font.size = Pt(8)


def _provenance(document, rows: list[tuple[str, str]]) -> None:
    t = document.add_table(rows=len(rows), cols=2)
    t.style = document.styles["Table Grid"]
    for i, (k, v) in enumerate(rows):
        t.rows[i].cells[0].text = k
        t.rows[i].cells[1].text = v
        for cell in t.rows[i].cells:
            for run in cell.paragraphs[0].runs:
                run.font.size = Pt(8)
        t.rows[i].cells[0].paragraphs[0].runs[0].bold = True


def _summary(document, sm: Summary, n_table: int) -> int:
    """Page 1 of a static brief (one market's or the chain's); returns the last table number."""
    if sm.heading:
        document.add_heading(sm.heading, level=1)
    document.add_heading("The question", level=1)
    document.add_paragraph(sm.question)
    document.add_heading(f"The answer ({sm.year})" if sm.year else "The answer", level=1)
    for line in sm.answer:
        _bullet(document, line)
    for t in (sm.options, sm.stages, sm.payers):
        if t is not None:
            n_table += 1
            _table(document, t, n_table)
    document.add_page_break()
    return n_table


def render_pathway_docx(brief: PathwayBrief) -> bytes:
    """The brief of a pathway set as DOCX bytes: the same content and order as the PDF."""
    document = docx.Document()
    _setup(document, brief)
    kicker = document.add_paragraph(f"Policy brief · {brief.date}")
    kicker.runs[0].font.color.rgb = GREY
    document.add_paragraph(brief.title, style="Title")
    document.add_paragraph(brief.subtitle, style="Subtitle")
    document.add_heading("The question", level=1)
    document.add_paragraph(brief.question)
    document.add_heading("The answer", level=1)
    for line in brief.answer:
        _bullet(document, line)
    n = 1
    _table(document, brief.options, n)
    for w in brief.shared_warnings:  # once for the options they apply to
        para = document.add_paragraph(f"\u26a0 {w}.")
        para.runs[0].font.color.rgb = NEG
    if len(brief.warnings) > len(brief.shared_warnings):
        para = document.add_paragraph("\u26a0 marks an option with a validity warning (below).")
        para.runs[0].font.color.rgb = NEG
    if brief.payers is not None:
        n += 1
        _table(document, brief.payers, n)
    if brief.risk is not None:
        document.add_heading("Disruptions and the cost of inaction", level=1)
        document.add_paragraph(brief.risk.inaction).runs[0].bold = True
        for line in brief.risk.lines:
            document.add_paragraph(line)
        n += 1
        _table(document, brief.risk.table, n)
    document.add_page_break()
    years = brief.charts[0].data["years"] if brief.charts else []
    if years:
        document.add_heading(f"Dependence {years[0]}–{years[-1]}", level=1)
    for k, c in enumerate(brief.charts, start=1):
        cap = document.add_paragraph(style="Caption")
        cap.add_run(f"Figure {k}. ").bold = True
        cap.add_run(c.title)
        cap.paragraph_format.keep_with_next = True
        document.add_picture(io.BytesIO(charts.render(c, "png", dpi=200)), width=Cm(17.0))
        _grey_note(document, c.caption)
    for t in brief.tables:
        n += 1
        _table(document, t, n)
    document.add_heading("Validity warnings", level=1)
    if brief.warnings:
        for w in brief.warnings:
            para = document.add_paragraph(f"\u26a0 {w}.")
            para.runs[0].font.color.rgb = NEG
    else:
        document.add_paragraph(
            "None: every option solved in every year of every draw, and no price moved more "
            "than three times (or below a third of) its no-policy level."
        )
    document.add_heading("Method", level=1)
    document.add_paragraph(brief.method_note)
    document.add_heading("Sources", level=1)
    _sources(document, brief.sources)
    _grey_note(
        document,
        "Long notes are shortened (…); the full text is in the market definition stored in "
        "the results file (attribute markets).",
    )
    document.add_heading("Provenance", level=1)
    _provenance(document, list(brief.provenance))
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def render_docx(brief: Brief | PathwayBrief) -> bytes:
    """The brief as DOCX bytes."""
    if isinstance(brief, PathwayBrief):
        return render_pathway_docx(brief)
    document = docx.Document()
    _setup(document, brief)
    kicker = document.add_paragraph(f"Scenario brief · {brief.date}")
    kicker.runs[0].font.color.rgb = GREY
    document.add_paragraph(brief.title, style="Title")
    document.add_paragraph(brief.subtitle, style="Subtitle")
    n_table = n_figure = 0
    for sm in brief.summaries:  # page 1: the answer first
        n_table = _summary(document, sm, n_table)
    if brief.chain is not None:
        n_table = _chain(document, brief, n_table)
    for s in brief.sections:
        if len(brief.sections) > 1:
            document.add_heading(("Stage: " if brief.chain else "") + s.commodity, level=1)
        lede = (
            f"{len(s.scenarios)} scenario{'s' if len(s.scenarios) != 1 else ''} compared with "
            f"the baseline. Prices in {s.units.price_unit}, money in {s.units.money_unit} "
            "(million per year)."
        )
        if s.dependence_note:
            lede += f" {s.dependence_note}."
        if s.warning_note:
            lede += f" {s.warning_note}."
        if brief.has_ranges:
            lede += " Ranges are 5–95% Monte Carlo ranges."
        document.add_paragraph(lede)
        if s.glance:
            document.add_heading("Headline findings", level=1)
            for line in s.glance:
                _bullet(document, line)
        document.add_heading("Scenarios and findings", level=1)
        for b in s.scenarios:
            head = document.add_heading(f"{b.number}. {b.label}", level=2)
            sid = head.add_run(f"  ({b.name})")
            sid.font.size = Pt(8)
            sid.font.color.rgb = GREY
            what = document.add_paragraph(". ".join(b.measures) + ".")
            for run in what.runs:
                run.italic = True
            if not b.solved:
                warn = document.add_paragraph(
                    f"Not solved: {b.message or 'the solver did not converge'}. No results are "
                    "shown for this scenario."
                )
                warn.runs[0].bold = True
                warn.runs[0].font.color.rgb = NEG
                continue
            for w in b.warnings:
                para = document.add_paragraph(f"\u26a0 Validity warning: {w}.")
                para.runs[0].font.color.rgb = NEG
            for topic, text in b.findings:
                _bullet(document, text, topic)
        document.add_heading("Comparison with the baseline", level=1)
        for t in s.tables:
            n_table += 1
            _table(document, t, n_table)
        for c in s.charts:
            n_figure += 1
            cap = document.add_paragraph(style="Caption")
            cap.add_run(f"Figure {n_figure}. ").bold = True
            cap.add_run(c.title)
            cap.paragraph_format.keep_with_next = True
            document.add_picture(io.BytesIO(charts.render(c, "png", dpi=200)), width=Cm(17.0))
            note = document.add_paragraph(c.caption)
            note.runs[0].font.size = Pt(7.5)
            note.runs[0].font.color.rgb = GREY
        document.add_heading("Assumptions", level=1)
        n_table += 1
        elast = Table(
            key="elasticities",
            caption="Elasticities used in the model",
            header=["Elasticity", "Value", "Uncertainty", "Basis"],
            rows=[
                [
                    Cell(e.kind, label=True),
                    Cell(e.value),
                    Cell(e.uncertainty, label=True),
                    Cell(e.basis, label=True),
                ]
                for e in s.elasticities
            ],
        )
        _table(document, elast, n_table)
        src = document.add_paragraph()
        src.add_run("Source of the elasticities: ").bold = True
        src.add_run(s.elasticity_source)
        document.add_heading("Caveats that apply to these measures", level=2)
        for caveat in s.caveats:
            _bullet(document, caveat)
        document.add_heading("Market data sources", level=1)
        _sources(document, [(k.capitalize(), v) for k, v in s.sources])
        note = document.add_paragraph(
            "Long notes are shortened (…); the full text is in the market definition stored in "
            "the results file (attribute markets)."
        )
        note.runs[0].font.size = Pt(7.5)
        note.runs[0].font.color.rgb = GREY
    document.add_heading("Method and provenance", level=1)
    document.add_paragraph(brief.method_note)
    _provenance(document, list(brief.provenance))
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()
