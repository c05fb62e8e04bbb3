"""Build the course notebooks ``notebooks/*.ipynb`` from their sources ``notebooks/src/*.py``.

Each source is a plain Python file in the "percent" format (the one Jupytext, VS Code
and Spyder understand): ``# %%`` starts a code cell and ``# %% [markdown]`` a markdown
cell whose lines are comments (``# `` is stripped). Sources are what we edit and review:
they diff like code and can be run as scripts. The ``.ipynb`` files are what students
open; they are written here without outputs and with fixed cell ids, so building twice
gives the same bytes and a change to a source changes only the cells it touches.

**Exercises.** In a code cell, the lines between ``# BEGIN SOLUTION <label>`` and
``# END SOLUTION`` (same indentation) are what a student writes. A source with such
regions gives two editions:

* the *solution edition*, ``notebooks/NAME.ipynb``: the source as it is, markers included
  (they show the reader which lines the exercise asks for);
* the *student edition*, ``notebooks/student/NAME.ipynb``: each region replaced by
  ``raise NotImplementedError("exercise <label>")`` at the region's indentation.

The regions are cut by ``miniclip.grading.solutions.student_code``, the parser that also
makes the assignments' starter files and the package's student edition.

Put each region inside a function, so that the cell defining it still runs in the student
edition, and follow it with a check cell, ``with exercise("<label>") as check: ...``
(``miniclip/grading/checks.py``), which calls the function and reports what is wrong.

    python scripts/build_notebooks.py             # write every notebook, both editions
    python scripts/build_notebooks.py --check     # exit 1 if a notebook is out of date
    python scripts/build_notebooks.py --execute   # build, then run each one and time it
    python scripts/build_notebooks.py 03 06       # only the notebooks whose name starts so
"""
import argparse
import pathlib
import re
import sys
import time

import nbformat

from miniclip.grading.solutions import student_code

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "src"
STUDENT = NOTEBOOKS / "student"

_CELL_MARKER = re.compile(r"^# %%(?P<markdown> \[markdown\])?\s*$")

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def parse_cells(text, source_name):
    """``[(kind, text), ...]`` of a percent-format source (kind is "code" or "markdown")."""
    lines = text.splitlines()
    if not lines or not _CELL_MARKER.match(lines[0]):
        raise ValueError(f"{source_name}: the first line must be a '# %%' cell marker")
    cells = []
    for line in lines:
        match = _CELL_MARKER.match(line)
        if match:
            cells.append(("markdown" if match["markdown"] else "code", []))
            continue
        kind, body = cells[-1]
        if kind == "markdown":
            if line and not line.startswith("#"):
                raise ValueError(f"{source_name}: markdown line not commented out: {line!r}")
            line = line[2:] if line.startswith("# ") else line[1:]
        body.append(line)
    return [(kind, "\n".join(body).strip("\n")) for kind, body in cells]


def editions(source):
    """``[(kind, solution text, student text), ...]``: the cells of both editions."""
    cells = parse_cells(source.read_text("utf-8"), source.name)
    return [(kind, text, text if kind == "markdown" else
             student_code(text, f"{source.name}, cell {index}"))
            for index, (kind, text) in enumerate(cells)]


def build(source):
    """``(solution edition, student edition)`` of one source file, as ``nbformat`` nodes;
    the student edition is None when the source has no exercises."""
    cells = editions(source)
    solution = _notebook([(kind, text) for kind, text, _ in cells])
    has_exercises = any(text != student for _, text, student in cells)
    student = _notebook([(kind, text) for kind, _, text in cells]) if has_exercises else None
    return solution, student


def _notebook(cells):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    for index, (kind, text) in enumerate(cells):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        # Fixed ids (nbformat would draw random ones) keep rebuilt files identical.
        notebook.cells.append(make(text, id=f"cell-{index:03d}"))
    nbformat.validate(notebook)
    return notebook


def render(notebook):
    return nbformat.writes(notebook) + "\n"


def execute(path):
    """Run a notebook top to bottom in a fresh kernel, as the test suite does; return seconds."""
    import nbclient

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="only notebooks whose name starts so")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a notebook differs from its source")
    parser.add_argument("--execute", action="store_true",
                        help="after building, run each notebook and report its wall time")
    args = parser.parse_args(argv)

    sources = sorted(p for p in SOURCES.glob("*.py")
                     if not args.prefixes or p.name.startswith(tuple(args.prefixes)))
    stale, targets = [], set()
    for source in sources:
        for folder, notebook in zip((NOTEBOOKS, STUDENT), build(source)):
            if notebook is None:
                continue
            target = folder / (source.stem + ".ipynb")
            targets.add(target)
            text = render(notebook)
            current = target.read_text("utf-8") if target.exists() else None
            if text == current:
                continue
            if args.check:
                stale.append(str(target.relative_to(NOTEBOOKS)))
            else:
                folder.mkdir(exist_ok=True)
                target.write_text(text, "utf-8")
                print(f"wrote {target.relative_to(ROOT)}")
    if args.check and not args.prefixes:
        stale += [f"{p.relative_to(NOTEBOOKS)} (no source, or no exercises in it)"
                  for p in sorted([*NOTEBOOKS.glob("*.ipynb"), *STUDENT.glob("*.ipynb")])
                  if p not in targets]
    if stale:
        print(f"out of date (run python scripts/build_notebooks.py): {', '.join(stale)}")
        return 1
    if args.execute:
        total = 0.0
        for source in sources:
            seconds = execute(NOTEBOOKS / (source.stem + ".ipynb"))
            total += seconds
            print(f"{source.stem + '.ipynb':32s} {seconds:6.1f} s", flush=True)
        print(f"{'total':32s} {total:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
