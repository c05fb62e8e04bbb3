"""The front door: README.md's commands are the ones CI runs, its examples run, and every
relative link of the README and the pages under docs/ and tutorials/ leads to a file."""
import pathlib
import re
import runpy

import numpy as np
import pytest

from miniclip import nn
from miniclip.models import create_model

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text("utf-8")
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "tutorials").glob("*.md"))]
#: [text](target) and ![alt](target), the target up to a space, a ) or a #fragment
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s#>]*)[^)]*\)")


def relative_links(page):
    text = re.sub(r"```.*?```", "", page.read_text("utf-8"), flags=re.DOTALL)  # not in code
    return [target for target in LINK.findall(text)
            if target and not re.match(r"[a-z][a-z0-9+.-]*:", target)]  # http:, mailto:


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_in_the_repository(page):
    for target in relative_links(page):
        path = (page.parent / target).resolve()
        assert path.exists(), f"{page.relative_to(ROOT)}: the link {target} leads nowhere"
        assert ROOT in path.parents or path == ROOT, f"{page.relative_to(ROOT)}: {target} " \
                                                     "leads outside the repository"


def test_the_readme_gives_the_commands_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text("utf-8").strip().splitlines()[-1]
    assert ci == "python -m pip install -r requirements-dev.txt -e . && python -m pytest -n 2"
    for command in (ci, "python -m pip install -e . && python -m miniclip.train --tiny",
                    'python -m pip install -e ".[course]" && python -m jupyter lab '
                    "notebooks/student"):
        assert f"```bash\n{command}\n```" in README, command


def test_the_readme_is_an_entry_page_of_about_200_lines_at_most():
    assert len(README.splitlines()) <= 210


def test_the_readme_examples_run(tmp_path, monkeypatch, capsys):
    # The example loads the tiny run's checkpoint; a tiny model's random weights stand in.
    nn.manual_seed(0)
    weights = {name: array for name, array in create_model("tiny-vit").state_dict().items()}
    (tmp_path / "runs" / "tiny").mkdir(parents=True)
    np.savez(tmp_path / "runs" / "tiny" / "checkpoint.npz", **weights)
    monkeypatch.chdir(tmp_path)
    examples = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
    assert len(examples) == 2
    for number, code in enumerate(examples):
        script = tmp_path / f"example_{number}.py"
        script.write_text(code, "utf-8")
        namespace = runpy.run_path(str(script))
        if number == 0:
            assert namespace["probabilities"].shape == (8, 30)
            assert namespace["logits_per_image"].shape == (8, 1)
        else:
            assert namespace["x"].grad.shape == (4, 3)
    assert len(capsys.readouterr().out.splitlines()) == 8  # one line per picture
