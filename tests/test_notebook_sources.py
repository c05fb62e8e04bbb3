"""The committed notebooks are exactly what ``scripts/build_notebooks.py`` makes from
their sources in ``notebooks/src/`` (edit the sources, then run the script)."""
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_every_notebook_is_built_from_its_current_source(capsys):
    pytest.importorskip("nbformat")
    spec = importlib.util.spec_from_file_location("build_notebooks",
                                                  ROOT / "scripts" / "build_notebooks.py")
    build_notebooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_notebooks)
    assert build_notebooks.main(["--check"]) == 0, capsys.readouterr().out
