"""The worked example of tutorials/assignments.md does what the page says: its grader, run on
its starter file completed three ways, gives full marks to a correct backward, 0 to a
submission that calls miniclip's own layer norm instead of writing one, and, for the common
mistake the page describes, exactly the output the page quotes."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = (ROOT / "tutorials" / "assignments.md").read_text("utf-8")
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", PAGE, re.DOTALL)
STARTER = next(code for language, code in BLOCKS if "Assignment 3" in code)
GRADER = next(code for language, code in BLOCKS if "Grader for assignment 3" in code)
QUOTED_OUTPUT = next(code for language, code in BLOCKS if "max |diff|" in code)
STUB = '        raise NotImplementedError("your code here")\n'

CORRECT = '''        g = gy * self.w
        mean_g = g.mean(axis=-1, keepdims=True)
        mean_gx = (g * self.xhat).mean(axis=-1, keepdims=True)
        axes = tuple(range(gy.ndim - 1))
        return (self.rstd * (g - mean_g - self.xhat * mean_gx),
                (gy * self.xhat).sum(axis=axes), gy.sum(axis=axes))
'''
# The page's common mistake: the mean and variance treated as constants.
FORGETS_THE_STATISTICS = '''        g = gy * self.w
        axes = tuple(range(gy.ndim - 1))
        return (self.rstd * (g - g.mean(axis=-1, keepdims=True)),
                (gy * self.xhat).sum(axis=axes), gy.sum(axis=axes))
'''
SHORTCUT = '''def layer_norm(x, w, b, eps=1e-5):
    import miniclip.functional as F
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)
'''


def grade(tmp_path, submission):
    (tmp_path / "student_layernorm.py").write_text(submission, "utf-8")
    (tmp_path / "test_grader.py").write_text(GRADER, "utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "test_grader.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    return done.stdout + done.stderr


def test_the_starter_file_is_what_the_grader_expects():
    assert STUB in STARTER and "def layer_norm(x, w, b, eps=1e-5):" in STARTER


def test_a_correct_backward_scores_full_marks(tmp_path):
    output = grade(tmp_path, STARTER.replace(STUB, CORRECT))
    assert "4 passed" in output, output


def test_calling_miniclips_layer_norm_without_a_backward_scores_zero(tmp_path):
    starter_call = STARTER[STARTER.index("def layer_norm(x, w, b, eps=1e-5):"):]
    output = grade(tmp_path, STARTER.replace(starter_call, SHORTCUT))
    assert "4 failed" in output, output


def test_the_common_mistake_gives_the_output_the_page_quotes(tmp_path):
    output = grade(tmp_path, STARTER.replace(STUB, FORGETS_THE_STATISTICS))
    assert "4 failed" in output, output
    quoted = [line[len("E"):].strip() for line in QUOTED_OUTPUT.splitlines()
              if re.match(r"E     [\w.]+ +\(", line)]              # rows of compare_grads' table
    assert len(quoted) == 5
    printed = [line.strip() for line in output.splitlines()]
    for line in quoted:
        assert any(p.endswith(line) for p in printed), (line, output)
