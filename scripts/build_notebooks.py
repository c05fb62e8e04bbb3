"""Build the course notebooks ``notebooks/*.ipynb`` from their sources ``notebooks/src/*.py``.

Each source is a plain Python file in the "percent" format (the one Jupytext, VS Code
and Spyder understand): ``# %%`` starts a code cell and ``# %% [markdown]`` a markdown
cell whose lines are comments (``# `` is stripped). Sources are what we edit and review:
they diff like code and can be run as scripts. The ``.ipynb`` files are what students
open; they are written here without outputs and with fixed cell ids, so building twice
gives the same bytes and a change to a source changes only the cells it touches.

    python scripts/build_notebooks.py             # write every notebook
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

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "src"

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


def build(source):
    """The notebook (an ``nbformat`` node) of one source file."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    for index, (kind, text) in enumerate(parse_cells(source.read_text("utf-8"), source.name)):
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
    stale = []
    for source in sources:
        target = NOTEBOOKS / (source.stem + ".ipynb")
        text = render(build(source))
        current = target.read_text("utf-8") if target.exists() else None
        if text == current:
            continue
        if args.check:
            stale.append(target.name)
        else:
            target.write_text(text, "utf-8")
            print(f"wrote {target.relative_to(ROOT)}")
    if args.check and not args.prefixes:
        built = {source.stem + ".ipynb" for source in sources}
        stale += [f"{p.name} (no source)" for p in sorted(NOTEBOOKS.glob("*.ipynb"))
                  if p.name not in built]
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
