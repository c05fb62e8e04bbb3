"""The rendered course pages (``docs/course/``, made by ``scripts/render_notebooks.py``) show
every notebook with its current code and figures: a page whose code differs from its
notebook is out of date (re-run the script)."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CODE_BLOCK = re.compile(r"^````python\n(.*?)\n````$", re.MULTILINE | re.DOTALL)
FIGURE = re.compile(r"!\[[^\]]*\]\((figures/[^)]+)\)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_each_notebook_has_a_page_showing_its_current_code_and_its_figures(path):
    nbformat = pytest.importorskip("nbformat")
    page = ROOT / "docs" / "course" / (path.stem + ".md")
    assert page.exists(), f"no rendered page for {path.name}: run scripts/render_notebooks.py"
    text = page.read_text(encoding="utf-8")
    notebook = nbformat.read(path, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert CODE_BLOCK.findall(text) == code, \
        f"{page.name} is out of date with {path.name}: run scripts/render_notebooks.py {path.stem}"
    for figure in FIGURE.findall(text):
        assert (page.parent / figure).is_file(), f"{page.name} links a missing {figure}"
