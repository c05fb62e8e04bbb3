"""tutorials/assignments.md does what it says: the commands it gives an instructor run in
order, the grader prints exactly the output the page quotes for the mistake it describes,
its table lists every assignment's parts and points as the rubrics do, and its GitHub
Classroom example selects real public tests."""
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

from miniclip.grading import assignment as assignments

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = (ROOT / "tutorials" / "assignments.md").read_text("utf-8")
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", PAGE, re.DOTALL)
COMMANDS = next(code for language, code in BLOCKS if "handout layer_norm" in code)
QUOTED_OUTPUT = next(code for language, code in BLOCKS if code.startswith("Assignment 2:"))
CLASSROOM = next(code for language, code in BLOCKS if language == "json")

# The page's mistake: the mean and variance treated as constants in dL/dx.
RIGHT = ("    gx = rstd * (g - g.mean(axis=-1, keepdims=True)\n"
         "                 - xhat * (g * xhat).mean(axis=-1, keepdims=True))")
WRONG = "    gx = rstd * (g - g.mean(axis=-1, keepdims=True))"


def test_the_instructors_commands_run_and_grade_as_the_page_quotes(tmp_path):
    (tmp_path / "assignments").symlink_to(ROOT / "assignments")
    submission = tmp_path / "submissions" / "alice" / "layer_norm.py"
    submission.parent.mkdir(parents=True)
    solution = (ROOT / "assignments" / "layer_norm" / "solution.py").read_text("utf-8")
    submission.write_text(solution.replace(RIGHT, WRONG), "utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    outputs = []
    for line in COMMANDS.splitlines():
        command = shlex.split(line, comments=True)
        assert command[:3] == ["python", "-m", "miniclip.grade"], line
        done = subprocess.run([sys.executable] + command[1:], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (line, done.stderr)
        outputs.append(done.stdout)
    assert outputs[2] == QUOTED_OUTPUT
    assert sorted(p.name for p in (tmp_path / "handout" / "layer_norm").iterdir()) == [
        "handout.md", "layer_norm.py", "test_layer_norm.py"]
    assert (tmp_path / "student-course" / "miniclip" / "__init__.py").is_file()
    assert (tmp_path / "layer_norm-autograder.zip").stat().st_size > 0


def test_the_table_lists_every_assignments_parts_and_points():
    rows = {match[1]: match[2] for match in re.finditer(r"^\| `(\w+)` \|[^|]*\| (.*) \|$",
                                                        PAGE, re.MULTILINE)}
    folders = sorted((ROOT / "assignments").glob("*/rubric.json"))
    assert sorted(rows) == sorted(path.parent.name for path in folders)
    for path in folders:
        listed = re.findall(r"(A\d[a-z]) [^,(]*\((\d+)\)", rows[path.parent.name])
        parts = assignments.load(path.parent).parts
        assert listed == [(part.id, f"{part.points:g}") for part in parts], path.parent.name


def test_the_classroom_example_selects_the_public_tests_and_gives_ten_points():
    tests = json.loads(CLASSROOM)["tests"]
    public = (ROOT / "assignments" / "layer_norm" / "test_layer_norm.py").read_text("utf-8")
    names = re.findall(r"^def (test_\w+)", public, re.MULTILINE)
    for test in tests:
        selector = re.search(r"-k (\w+)", test["run"])[1]
        assert [name for name in names if selector in name], test["run"]
    assert sum(test["points"] for test in tests) == 10
