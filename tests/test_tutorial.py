"""docs/tutorial.md runs as written: its files are written and its `$` commands run in a copy of the project.

Fenced blocks with `file=PATH` are written to PATH; in `console` blocks, each `$ ` line is run with
the project's `relay` on PATH, and the lines after it must appear in its output, in order.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```\n", re.S | re.M)


def blocks(text: str):
    for match in FENCE.finditer(text):
        yield match.group("info").strip(), match.group("body")


def commands(body: str):
    """(command, expected lines) for each `$ ` line of a console block."""
    current = None
    for line in body.splitlines():
        if line.startswith("$ "):
            if current:
                yield current
            current = (line[2:], [])
        elif current and line.strip():
            current[1].append(line.strip())
    if current:
        yield current


def assert_in_order(expected: list, output: str, command: str):
    lines = [line.strip() for line in output.splitlines()]
    position = 0
    for wanted in expected:
        while position < len(lines) and wanted not in lines[position]:
            position += 1
        assert position < len(lines), f"`{command}` did not print {wanted!r} (in order); it printed:\n{output}"
        position += 1


def test_the_tutorial_runs_as_written(tmp_path):
    shutil.copytree(ROOT / "vendors", tmp_path / "vendors")
    assert not (tmp_path / "vendors" / "greynoise.yaml").exists(), "the tutorial's vendor must be a new one"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}
    ran = 0
    for info, body in blocks((ROOT / "docs" / "tutorial.md").read_text()):
        file = re.search(r"file=(\S+)", info)
        if file:
            target = tmp_path / file.group(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)
        elif info == "console":
            for command, expected in commands(body):
                done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                                      timeout=60)
                assert done.returncode == 0, f"`{command}` failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                assert_in_order(expected, done.stdout, command)
                ran += 1
    assert ran >= 8


def test_the_tutorials_spec_answers_health_when_served(tmp_path):
    """The spec the tutorial ends with, served by the relay: its /health works without an observable."""
    from engine import load_spec
    from tests.test_new import served_health
    for info, body in blocks((ROOT / "docs" / "tutorial.md").read_text()):
        file = re.search(r"file=(\S+)", info)
        if file and file.group(1).startswith("vendors/"):
            target = tmp_path / file.group(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)
    answer, paths = served_health(load_spec(tmp_path / "vendors" / "greynoise.yaml"))
    assert answer == {"data": {"status": "ok"}}
    assert paths == {"/v3/community/8.8.8.8"}
