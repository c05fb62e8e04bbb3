"""A student's setup: the README's course command,
``python -m pip install -e ".[course]" && python -m jupyter lab notebooks/student``,
installs JupyterLab and pytest, and the server it starts lists the student notebooks."""
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
COURSE_COMMAND = 'python -m pip install -e ".[course]" && python -m jupyter lab notebooks/student'


def extra(name):
    """The requirements of a pyproject extra, by name (without the version bounds)."""
    text = (ROOT / "pyproject.toml").read_text("utf-8")
    found = re.search(rf"^{name} = \[(.*?)\]", text, re.MULTILINE | re.DOTALL)
    assert found, f"pyproject.toml has no extra {name!r}"
    return {re.split(r"[<>=!~ ]", item.strip().strip('"'))[0]
            for item in found[1].split(",") if item.strip()}


def test_the_course_extra_installs_jupyterlab_and_pytest():
    assert {"jupyterlab", "pytest"} <= extra("course")


def test_the_course_command_is_stated_where_the_extra_is_defined():
    assert COURSE_COMMAND in (ROOT / "pyproject.toml").read_text("utf-8")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_jupyter_lab_on_notebooks_student_lists_the_student_notebooks(tmp_path):
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (the course extra)")
    port, token = free_port(), "course-test"
    command = [sys.executable, "-m", "jupyter", "lab", "notebooks/student", "--no-browser",
               f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
               "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        command.append("--allow-root")               # a container's root, not a student
    environment = dict(os.environ, HOME=str(tmp_path), JUPYTER_CONFIG_DIR=str(tmp_path / "c"),
                       JUPYTER_RUNTIME_DIR=str(tmp_path / "r"), JUPYTER_DATA_DIR=str(tmp_path / "d"))
    server = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        listing, deadline = None, time.monotonic() + 90
        while listing is None and time.monotonic() < deadline:
            assert server.poll() is None, "jupyter lab exited before serving"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?"
                                            f"token={token}", timeout=5) as reply:
                    listing = json.load(reply)
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "jupyter lab did not answer within 90 s"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}",
                                    timeout=10) as page:
            assert b"JupyterLab" in page.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
    served = sorted(item["name"] for item in listing["content"] if item["type"] == "notebook")
    assert served == sorted(p.name for p in (ROOT / "notebooks" / "student").glob("*.ipynb"))
    assert len(served) >= 14
