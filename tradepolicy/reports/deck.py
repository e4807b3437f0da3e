"""Slide decks (python-pptx): the brief's answer, key tables and charts as a 16:9 PPTX.

The deck is made from the same context as the PDF, HTML and DOCX briefs
(:class:`~tradepolicy.reports.context.Brief` or
:class:`~tradepolicy.reports.pathway.PathwayBrief`), so its numbers are the brief's: a title
slide, the answer (question and answer lines), the options at a glance, dependence per stage
(chains and pathways), who pays, the cost of inaction (when the results carry disruption
risk), one slide per chart (the brief's matplotlib charts as PNG), validity warnings, and
method, sources and provenance. Tables are real PowerPoint tables (editable); charts are
pictures.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.enum.text import PP_ALIGN
from pptx.presentation import Presentation as PresentationFile
from pptx.util import Emu, Inches, Pt

from tradepolicy.reports import charts
from tradepolicy.reports.context import Brief, ChartSpec, Table, clip
from tradepolicy.reports.pathway import PathwayBrief

log = logging.getLogger(__name__)

#: slide size (16:9) and margins, inches
WIDTH, HEIGHT, MARGIN = 13.333, 7.5, 0.45
NAVY = RGBColor(0x0B, 0x3A, 0x5D)
GREY = RGBColor(0x55, 0x55, 0x55)
POS = RGBColor(0x00, 0x60, 0x3A)
NEG = RGBColor(0xA4, 0x00, 0x00)
HEAD_FILL = RGBColor(0xEE, 0xF3, 0xF7)
WHITE = RGBColor(0xFF, 0xFF, 0xFF)
#: table rows on one slide before the table continues on the next
ROWS_PER_SLIDE = 12
#: a slide heading longer than this (characters) is set smaller
LONG_HEADING = 60
#: the blank layout of the default template
BLANK = 6


@dataclass
class _Deck:
    """The presentation being built and its running table and figure numbers."""

    prs: PresentationFile
    title: str

    def slide(self, heading: str):
        slide = self.prs.slides.add_slide(self.prs.slide_layouts[BLANK])
        box = slide.shapes.add_textbox(
            Inches(MARGIN), Inches(0.25), Inches(WIDTH - 2 * MARGIN), Inches(0.7)
        )
        tf = box.text_frame
        tf.word_wrap = True
        run = tf.paragraphs[0].add_run()
        run.text = heading
        run.font.size = Pt(24 if len(heading) <= LONG_HEADING else 18)
        run.font.bold = True
        run.font.color.rgb = NAVY
        foot = slide.shapes.add_textbox(
            Inches(MARGIN), Inches(HEIGHT - 0.4), Inches(WIDTH - 2 * MARGIN), Inches(0.3)
        )
        r = foot.text_frame.paragraphs[0].add_run()
        r.text = clip(self.title, 150)
        r.font.size = Pt(9)
        r.font.color.rgb = GREY
        return slide


def _text(
    slide,
    lines: Iterable[str],
    top: float,
    height: float,
    size: float,
    *,
    bullets: bool = False,
    color: RGBColor | None = None,
    bold_first: bool = False,
) -> None:
    box = slide.shapes.add_textbox(
        Inches(MARGIN), Inches(top), Inches(WIDTH - 2 * MARGIN), Inches(height)
    )
    tf = box.text_frame
    tf.word_wrap = True
    first = True
    for i, line in enumerate(lines):
        para = tf.paragraphs[0] if first else tf.add_paragraph()
        first = False
        run = para.add_run()
        run.text = ("\u2022 " if bullets else "") + line
        run.font.size = Pt(size)
        if color is not None:
            run.font.color.rgb = color
        if bold_first and i == 0:
            run.font.bold = True
        para.space_after = Pt(size * 0.45)


def _lines_height(lines: list[str], size: float, width: float = WIDTH - 2 * MARGIN) -> float:
    """A rough height in inches of ``lines`` wrapped at ``size`` points (for stacking boxes)."""
    per_line = max(1, int(width * 72 / (size * 0.56)))  # ~0.56 em a character
    rows = sum(1 + len(line) // per_line for line in lines)
    return rows * size * 1.45 / 72


def _table(deck: _Deck, table: Table, heading: str, number: int) -> None:
    """``table`` on one slide or more (at most :data:`ROWS_PER_SLIDE` rows each)."""
    chunks = [
        table.rows[i : i + ROWS_PER_SLIDE] for i in range(0, len(table.rows), ROWS_PER_SLIDE)
    ] or [[]]
    for k, rows in enumerate(chunks):
        slide = deck.slide(heading + (" (continued)" if k else ""))
        _text(slide, [f"Table {number}. {table.caption}"], 0.95, 0.45, 12, color=GREY)
        ncols = len(table.header)
        size = 12 if ncols <= 6 else (10 if ncols <= 8 else 9)
        note = [table.note] if table.note and k == len(chunks) - 1 else []
        note_h = _lines_height(note, 9) + 0.1 if note else 0.0
        top = 1.45
        avail = HEIGHT - 0.5 - top - note_h
        row_h = min(0.42, avail / (len(rows) + 1.6))
        frame = slide.shapes.add_table(
            len(rows) + 1,
            ncols,
            Inches(MARGIN),
            Inches(top),
            Inches(WIDTH - 2 * MARGIN),
            Inches(row_h * (len(rows) + 1)),
        )
        grid = frame.table
        total = Inches(WIDTH - 2 * MARGIN)
        # the label column and a last column of words ("does not move dependence") wider
        weights = [2.2] + [1.0] * (ncols - 2) + [1.5] if ncols > 2 else [1.0] * ncols
        for j, col in enumerate(grid.columns):
            col.width = Emu(int(total * weights[j] / sum(weights)))
        for j, head in enumerate(table.header):
            cell = grid.cell(0, j)
            _tight(cell)
            cell.fill.solid()
            cell.fill.fore_color.rgb = HEAD_FILL
            para = cell.text_frame.paragraphs[0]
            para.alignment = PP_ALIGN.LEFT if j == 0 else PP_ALIGN.RIGHT
            run = para.add_run()
            run.text = head
            run.font.size = Pt(size)
            run.font.bold = True
            run.font.color.rgb = NAVY
        for i, row in enumerate(rows, start=1):
            for j, c in enumerate(row):
                cell = grid.cell(i, j)
                _tight(cell)
                cell.fill.solid()
                cell.fill.fore_color.rgb = WHITE
                para = cell.text_frame.paragraphs[0]
                para.alignment = PP_ALIGN.LEFT if c.label or j == 0 else PP_ALIGN.RIGHT
                run = para.add_run()
                run.text = c.text
                run.font.size = Pt(size)
                if c.tone:
                    run.font.color.rgb = POS if c.tone == "pos" else NEG
                if c.flag:
                    mark = para.add_run()
                    mark.text = f" {c.flag}"
                    mark.font.size = Pt(size)
                    mark.font.color.rgb = NEG
                if c.sub:
                    small = para.add_run()
                    small.text = f"  {c.sub}"
                    small.font.size = Pt(size - 2)
                    small.font.color.rgb = GREY
        if note:
            _text(slide, note, HEIGHT - 0.45 - note_h, note_h, 9, color=GREY)


def _tight(cell) -> None:
    """Small cell margins, so a row is one line of text where it fits."""
    cell.margin_left = cell.margin_right = Inches(0.05)
    cell.margin_top = cell.margin_bottom = Inches(0.02)


def _chart(deck: _Deck, chart: ChartSpec, number: int) -> None:
    slide = deck.slide(chart.title if len(chart.title) <= LONG_HEADING else f"Figure {number}")
    _text(slide, [f"Figure {number}. {chart.title}"], 0.95, 0.4, 12, color=GREY)
    png = charts.render(chart, "png", dpi=200)
    cap = [chart.caption]
    cap_h = _lines_height(cap, 10) + 0.05
    room_h = HEIGHT - 0.5 - 1.4 - cap_h
    pic = slide.shapes.add_picture(io.BytesIO(png), Inches(MARGIN), Inches(1.4))
    # fit the picture into the room left, keeping its aspect ratio, centred
    scale = min(Inches(WIDTH - 2 * MARGIN) / pic.width, Inches(room_h) / pic.height)
    pic.width, pic.height = int(pic.width * scale), int(pic.height * scale)
    pic.left = int((Inches(WIDTH) - pic.width) / 2)
    _text(slide, cap, 1.4 + pic.height / 914400 + 0.05, cap_h, 10, color=GREY)


def _sources(deck: _Deck, method: str, sources: list[tuple[str, str]], prov) -> None:
    """Method, sources and provenance, on as many slides as the text needs."""
    items = [f"{k}: {v}" for k, v in sources]
    prov_line = "Provenance: " + "; ".join(f"{k}: {v}" for k, v in prov)
    room = HEIGHT - 0.6 - 1.0 - _lines_height([prov_line], 9)  # inches for text on a slide
    pages: list[list[str]] = [[]]
    used = _lines_height([method], 11) + 0.1
    for item in items:
        h = _lines_height([item], 10)
        if used + h > room and pages[-1]:
            pages.append([])
            used = 0.0
        pages[-1].append(item)
        used += h
    for k, page in enumerate(pages):
        slide = deck.slide("Method and sources" + (" (continued)" if k else ""))
        top = 1.0
        if k == 0:
            h = _lines_height([method], 11) + 0.1
            _text(slide, [method], top, h, 11)
            top += h
        h = _lines_height(page, 10) + 0.1
        _text(slide, page, top, h, 10, bullets=True)
        top += h
        if k == len(pages) - 1:
            _text(slide, [prov_line], top, HEIGHT - 0.5 - top, 9, color=GREY)


def _title(deck: _Deck, brief: Brief | PathwayBrief, kicker: str) -> None:
    slide = deck.prs.slides.add_slide(deck.prs.slide_layouts[BLANK])
    _text(slide, [f"{kicker} · {brief.date}"], 1.6, 0.4, 14, color=GREY)
    box = slide.shapes.add_textbox(
        Inches(MARGIN), Inches(2.1), Inches(WIDTH - 2 * MARGIN), Inches(1.8)
    )
    tf = box.text_frame
    tf.word_wrap = True
    run = tf.paragraphs[0].add_run()
    run.text = brief.title
    run.font.size = Pt(36)
    run.font.bold = True
    run.font.color.rgb = NAVY
    _text(slide, [brief.subtitle], 4.2, 1.6, 16, color=GREY)


def _answer(deck: _Deck, heading: str, question: str, answer: list[str]) -> None:
    slide = deck.slide(heading)
    q_h = _lines_height([question], 12) + 0.1
    _text(slide, [question], 1.0, q_h, 12, color=GREY)
    room = HEIGHT - 0.6 - 1.1 - q_h
    # the largest type the answer fits in
    size = next((z for z in (20, 18, 16, 14, 12) if _lines_height(answer, z) <= room), 11)
    _text(slide, answer, 1.0 + q_h + 0.1, room, size, bullets=True)


def _warnings(deck: _Deck, warnings: list[str]) -> None:
    if warnings:
        slide = deck.slide("Validity warnings")
        size = 12 if sum(map(len, warnings)) < 1500 else 10
        _text(slide, [f"\u26a0 {w}." for w in warnings], 1.0, HEIGHT - 1.6, size, color=NEG)


def _new(brief: Brief | PathwayBrief) -> _Deck:
    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(WIDTH), Inches(HEIGHT)
    props = prs.core_properties
    props.title = clip(brief.title, 253)
    props.subject = clip(brief.subtitle, 253)
    props.author = "tradepolicy"
    return _Deck(prs, brief.title)


def _pathway(deck: _Deck, brief: PathwayBrief) -> None:
    _title(deck, brief, "Policy brief")
    _answer(deck, "The answer", brief.question, brief.answer)
    n = 1
    _table(deck, brief.options, "Options at a glance", n)
    stages = next((t for t in brief.tables if t.key == "stages"), None)
    if stages is not None:
        n += 1
        _table(deck, stages, f"Dependence per stage in {brief.target_year}", n)
    if brief.payers is not None:
        n += 1
        _table(deck, brief.payers, "Who pays", n)
    if brief.risk is not None:
        n += 1
        slide = deck.slide("The cost of inaction")
        _text(slide, [brief.risk.inaction, *brief.risk.lines], 1.0, 2.0, 14, bold_first=True)
        _table(deck, brief.risk.table, "Disruption risk by option", n)
    for k, c in enumerate(brief.charts, start=1):
        _chart(deck, c, k)
    _warnings(deck, brief.warnings)
    _sources(deck, brief.method_note, brief.sources, brief.provenance)


def _static(deck: _Deck, brief: Brief) -> None:
    _title(deck, brief, "Scenario brief")
    n = 0
    for sm in brief.summaries:
        suffix = f": {sm.heading}" if sm.heading else ""
        head = f"The answer ({sm.year}){suffix}" if sm.year else f"The answer{suffix}"
        _answer(deck, head, sm.question, sm.answer)
        n += 1
        _table(deck, sm.options, f"Options at a glance{suffix}", n)
        if sm.stages is not None:
            n += 1
            _table(deck, sm.stages, f"Dependence per stage{suffix}", n)
        if sm.payers is not None:
            n += 1
            _table(deck, sm.payers, f"Who pays{suffix}", n)
    k = 0
    for s in brief.sections:
        for c in s.charts:
            k += 1
            _chart(deck, c, k)
    warnings = list(brief.chain.warnings) if brief.chain is not None else []
    if brief.chain is None:
        warnings = [
            f"Scenario {b.number} ({b.label}): {w}"
            for s in brief.sections
            for b in s.scenarios
            for w in b.warnings
        ]
    _warnings(deck, warnings)
    sources: list[tuple[str, str]] = []
    for s in brief.sections:
        pre = f"{s.commodity}, " if len(brief.sections) > 1 else ""
        sources += [(pre + k.capitalize(), v) for k, v in s.sources]
    _sources(deck, brief.method_note, sources, brief.provenance)


def render_pptx(brief: Brief | PathwayBrief) -> bytes:
    """The brief as a 16:9 PPTX slide deck (bytes)."""
    deck = _new(brief)
    if isinstance(brief, PathwayBrief):
        _pathway(deck, brief)
    else:
        _static(deck, brief)
    buf = io.BytesIO()
    deck.prs.save(buf)
    log.debug("deck of %d slides", len(deck.prs.slides))
    return buf.getvalue()
