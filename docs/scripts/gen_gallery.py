"""The notebook gallery of the documentation site (mkdocs-gen-files + mkdocs-jupyter).

For every notebook in ``notebooks/`` writes ``gallery/<name>.ipynb``: the notebook with, after
its title, the question it answers and what it shows, both read from the table in
``docs/notebooks.md`` (one source, so the gallery cannot drift from that page), and a
``gallery/index.md`` listing the questions. mkdocs-jupyter renders the pages; it executes them
at build time unless ``TRADEPOLICY_DOCS_EXECUTE=false`` (mkdocs.yml), which the strict-build
test sets because nbmake already executes every notebook in ``make test``.

A notebook without a row in the table, or a row without a notebook, fails the build.
"""

from __future__ import annotations

import re
from pathlib import Path

import mkdocs_gen_files
import nbformat

NOTEBOOKS = Path("notebooks")
TABLE = Path("docs/notebooks.md")
_ROW = re.compile(r"^\|\s*`(?P<name>[^`]+\.ipynb)`\s*\|(?P<question>[^|]+)\|(?P<shows>.+)\|\s*$")


def table_rows(text: str) -> dict[str, tuple[str, str]]:
    """``{notebook file name: (question, what it shows)}`` from the table of docs/notebooks.md."""
    rows = {}
    for line in text.splitlines():
        m = _ROW.match(line)
        if m:
            rows[m["name"]] = (m["question"].strip(), m["shows"].strip())
    return rows


def with_intro(nb: nbformat.NotebookNode, name: str, question: str, shows: str) -> None:
    """Insert the question and what the notebook shows after its title (its first ``# `` line)."""
    intro = nbformat.v4.new_markdown_cell(
        f"> **The question:** {question}\n>\n> **What it shows:** {shows}\n>\n"
        f"> *`notebooks/{name}`, executed when this site was built. Run it yourself with "
        # a site URL, not a docs path: mkdocs does not resolve links in a notebook's cells
        f"`make lab`; see [Notebooks](../../notebooks/).*",
        id=f"gallery-intro-{Path(name).stem}"[:64],
    )
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "markdown" and first.source.startswith("# "):
        title, _, rest = first.source.partition("\n")
        first.source = title
        cells = [first, intro]
        if rest.strip():
            cells.append(nbformat.v4.new_markdown_cell(rest.strip("\n"), id=f"{first.id}-rest"))
        nb.cells[:1] = cells
    else:
        nb.cells.insert(0, intro)


rows = table_rows(TABLE.read_text(encoding="utf-8"))
names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
unlisted = sorted(set(names) - set(rows))
missing = sorted(set(rows) - set(names))
if unlisted or missing:
    raise SystemExit(
        f"docs/notebooks.md and notebooks/ disagree: notebooks without a row {unlisted}, "
        f"rows without a notebook {missing}"
    )

index = [
    "# Gallery",
    "",
    "The notebooks of `notebooks/`, each answering one question, rendered with the outputs of",
    "a run when this site was built. They are stored without outputs; `make lab` opens them in",
    "JupyterLab and `make test` runs every one ([Notebooks](../notebooks.md)).",
    "",
    "| question | notebook |",
    "|---|---|",
]
for name in names:
    question, shows = rows[name]
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    with_intro(nb, name, question, shows)
    path = f"gallery/{name}"
    with mkdocs_gen_files.open(path, "w") as f:
        nbformat.write(nb, f)
    index.append(f"| [{question}]({name}) | `{name}` |")

with mkdocs_gen_files.open("gallery/index.md", "w") as f:
    f.write("\n".join(index) + "\n")
