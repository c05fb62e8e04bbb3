"""The committed notebooks, both editions, are exactly what ``scripts/build_notebooks.py``
makes from their sources in ``notebooks/src/`` (edit the sources, then run the script), and
the script turns solution regions into stubs."""
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_build_script():
    spec = importlib.util.spec_from_file_location("build_notebooks",
                                                  ROOT / "scripts" / "build_notebooks.py")
    build_notebooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_notebooks)
    return build_notebooks


def test_every_notebook_is_built_from_its_current_source(capsys):
    pytest.importorskip("nbformat")
    assert load_build_script().main(["--check"]) == 0, capsys.readouterr().out


def test_a_solution_region_becomes_a_stub_in_the_student_edition():
    pytest.importorskip("nbformat")
    build_notebooks = load_build_script()
    solution = ("def f(x):\n"
                "    y = 2 * x\n"
                "    # BEGIN SOLUTION 1a: doubling\n"
                "    y = y + 1\n"
                "    return y\n"
                "    # END SOLUTION\n"
                "print(f)")
    assert build_notebooks.student_code(solution, "cell") == (
        "def f(x):\n"
        "    y = 2 * x\n"
        "    raise NotImplementedError('exercise 1a: doubling')\n"
        "print(f)")


@pytest.mark.parametrize("text, problem", [
    ("    # BEGIN SOLUTION 1a: x\n    pass", "never closed"),
    ("    pass\n    # END SOLUTION", "without a BEGIN"),
    ("    # BEGIN SOLUTION 1a: x\n    # BEGIN SOLUTION 1b: y\n", "inside another"),
    ("    # BEGIN SOLUTION 1a: x\n    pass\n# END SOLUTION", "not indented like"),
    ("    # BEGIN SOLUTION 1a: x\npass\n    # END SOLUTION", "left of its markers"),
])
def test_malformed_solution_regions_are_refused(text, problem):
    pytest.importorskip("nbformat")
    with pytest.raises(ValueError, match=problem):
        load_build_script().student_code(text, "cell")
