"""The package's facts are stated once, or kept equal where the design states them twice:
the version in ``miniclip/__init__.py``, the runtime dependencies in ``pyproject.toml``
and ``requirements.txt``."""
import pathlib
import re
import sys

import pytest

import miniclip

ROOT = pathlib.Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def requirement_lines(path):
    """The requirements of a pip requirements file, without comments and blank lines."""
    lines = (line.split("#")[0].strip() for line in path.read_text("utf-8").splitlines())
    return [line for line in lines if line]


def test_requirements_txt_lists_the_runtime_dependencies_of_pyproject():
    assert requirement_lines(ROOT / "requirements.txt") == PYPROJECT["project"]["dependencies"]


def test_the_dev_requirements_start_from_the_runtime_ones():
    assert requirement_lines(ROOT / "requirements-dev.txt")[0] == "-r requirements.txt"


def test_the_version_is_stated_once_in_the_package():
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "miniclip.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", miniclip.__version__)


def test_the_changelog_has_an_entry_for_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text("utf-8")
    assert f"\n## {miniclip.__version__}\n" in changelog
