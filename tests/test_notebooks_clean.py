"""Committed notebooks carry no outputs and no execution counts (nbmake executes them).

Fix a failure with ``.venv/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb``
(or "Edit > Clear Outputs of All Cells" in JupyterLab, then save).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = (
    "01_quickstart.ipynb",
    "02_floor_subsidy_offtake.ipynb",
    "03_export_ban_response.ipynb",
    "04_calibration.ipynb",
    "05_extending.ipynb",
    "06_gsim.ipynb",
)


def _notebooks() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def dirty_cells(nb: nbformat.NotebookNode) -> list[str]:
    """Descriptions of the code cells that carry outputs or an execution count."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {i}: {len(cell.outputs)} output(s)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {i}: execution_count {cell.execution_count}")
    return problems


def test_expected_notebooks_present() -> None:
    names = {p.name for p in _notebooks()}
    missing = sorted(set(EXPECTED) - names)
    assert not missing, f"notebooks missing from {NOTEBOOKS}: {missing}"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_is_stripped(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    problems = dirty_cells(nb)
    assert not problems, (
        f"{path.name} has outputs or execution counts ({'; '.join(problems)}); strip them with "
        f"`jupyter nbconvert --clear-output --inplace {path.relative_to(NOTEBOOKS.parent)}`"
    )
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    assert kernel == "python3", f"{path.name}: kernelspec {kernel!r}, expected 'python3'"


def test_dirty_cells_detects_outputs_and_counts() -> None:
    cell = nbformat.v4.new_code_cell("1 + 1")
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("text")])
    assert dirty_cells(nb) == []
    cell.execution_count = 3
    cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"})]
    assert dirty_cells(nb) == ["cell 0: 1 output(s)", "cell 0: execution_count 3"]
