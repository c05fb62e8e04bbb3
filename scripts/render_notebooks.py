"""Render the course notebooks as Markdown pages with their figures, readable without running.

    python scripts/render_notebooks.py [NAME ...]      # all notebooks, or those named

Each solution-edition notebook in ``notebooks/`` is executed and written to
``docs/course/<name>.md``: its prose, its code, the text it prints (cut to a few lines) and
its figures, saved as PNG files in ``docs/course/figures/``. GitHub shows the pages with
their pictures, so a student browsing the repository sees what every notebook draws.

Why pages and not executed notebooks: a notebook's outputs hold timings and the last
digits of floating-point results, which change on every run and bury a real change in a
diff; here the text is the source's and the printed output is kept short, so a page's diff
shows what changed. ``tests/test_rendered_pages.py`` fails when a page's code no longer
matches its notebook: re-run this script after editing a notebook.
"""
import base64
import os
import pathlib
import sys

import nbclient
import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PAGES = ROOT / "docs" / "course"
FIGURES = PAGES / "figures"
MAX_OUTPUT_LINES = 12


def code_cells(notebook):
    """The sources of a notebook's code cells, in order (what a page must show)."""
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def printed_text(outputs):
    """What the cell printed (streams and plain-text results), cut to MAX_OUTPUT_LINES."""
    lines = []
    for output in outputs:
        if output.output_type == "stream":
            lines += output.text.rstrip("\n").splitlines()
        elif output.output_type == "execute_result" and "image/png" not in output.data:
            lines += output.data.get("text/plain", "").splitlines()
    if len(lines) > MAX_OUTPUT_LINES:
        lines = lines[:MAX_OUTPUT_LINES] + [f"... ({len(lines) - MAX_OUTPUT_LINES} more lines)"]
    return lines


def render(path):
    """Execute the notebook at ``path`` and write its page and figures; returns the page."""
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    for old in FIGURES.glob(f"{path.stem}_*.png"):
        old.unlink()
    parts = [f"<!-- Rendered from notebooks/{path.name} by scripts/render_notebooks.py: "
             "edit the notebook's source, not this page. -->\n"]
    figure = 0
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source + "\n")
            continue
        # four backticks: a notebook's prose may hold ```python blocks of its own
        parts.append("````python\n" + cell.source + "\n````\n")
        text = printed_text(cell.outputs)
        if text:
            parts.append("```text\n" + "\n".join(text) + "\n```\n")
        for output in cell.outputs:
            png = getattr(output, "data", {}).get("image/png")
            if png:
                figure += 1
                name = f"{path.stem}_{figure}.png"
                (FIGURES / name).write_bytes(base64.b64decode(png))
                parts.append(f"![figure {figure}](figures/{name})\n")
    page = PAGES / (path.stem + ".md")
    page.write_text("\n".join(parts), encoding="utf-8")
    return page


def main(argv=None):
    names = sys.argv[1:] if argv is None else argv
    FIGURES.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # kernels inherit it
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        if not names or path.stem in names or path.name in names:
            print(f"{path.name} -> {render(path).relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
