"""Every course notebook runs top to bottom without errors (as a student would run it), and
in the student edition every blank fails its check cell cleanly."""
import pathlib
import re

import pytest
from test_notebook_sources import load_build_script

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
STUDENT_EDITIONS = sorted((ROOT / "notebooks" / "student").glob("*.ipynb"))
CHECK_CELL = re.compile(r"^with exercise\(", re.MULTILINE)


def client_for(notebook, path):
    nbclient = pytest.importorskip("nbclient")
    return nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(path.parent)}})


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path):
    nbformat = pytest.importorskip("nbformat")
    client_for(nbformat.read(path, as_version=4), path).execute()


@pytest.mark.notebook
@pytest.mark.parametrize("path", STUDENT_EDITIONS, ids=[p.name for p in STUDENT_EDITIONS])
def test_every_blank_of_the_student_edition_fails_its_check_cleanly(path):
    """Run the student edition up to its last check cell. Every cell runs, except that each
    check cell must stop with ExerciseNotDone; the solution of the exercises it checks is
    then run in the same kernel, so the cells after it see what a finished exercise gives.
    (The solution edition's own run shows that the checks pass on the solutions.)"""
    nbformat = pytest.importorskip("nbformat")
    from nbclient.exceptions import CellExecutionError

    cells = load_build_script().editions(ROOT / "notebooks" / "src" / (path.stem + ".py"))
    checks = [i for i, (kind, _, student) in enumerate(cells)
              if kind == "code" and CHECK_CELL.search(student)]
    assert checks, f"{path.name} has exercises but no check cell"
    notebook = nbformat.read(path, as_version=4)
    client = client_for(notebook, path)
    unchecked = []                      # solutions of the exercises not checked yet
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells[:checks[-1] + 1]):
            if cell.cell_type != "code":
                continue
            if index not in checks:
                client.execute_cell(cell, index)
                if cell.source != cells[index][1]:
                    unchecked.append(cells[index][1])
                continue
            with pytest.raises(CellExecutionError) as failed:
                client.execute_cell(cell, index)
            assert failed.value.ename == "ExerciseNotDone", \
                f"check cell {index} of {path.name} failed otherwise:\n{failed.value}"
            assert unchecked, f"check cell {index} of {path.name} checks no exercise"
            for solution in unchecked:
                client.execute_cell(nbformat.v4.new_code_cell(solution), index)
            unchecked = []
    assert not unchecked, f"{path.name}: an exercise after the last check cell is never checked"
