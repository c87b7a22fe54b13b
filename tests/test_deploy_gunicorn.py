"""The second hosting path: the README's gunicorn command serves the relay, end to end over loopback.

The command is taken from the README's Deploying section and started as a process of its own
(bound to a free loopback port instead of 0.0.0.0:8080), with the relay's environment and a
stand-in AbuseIPDB; the test asks it for /health and /observe/observables, then stops it.
"""
from __future__ import annotations

import queue
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from engine import load_spec
from engine.commands.standin import StandInVendor, routes_from_examples
from engine.commands.tokens import mint_hs256

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "gunicorn-test-secret-0123456789abcdefghij"
VENDOR_KEY = "stand-in-abuseipdb-key"


def readme_gunicorn_arguments() -> list:
    """The gunicorn arguments of the README's command, with the bind address made loopback."""
    section = (ROOT / "README.md").read_text().split("## Deploying", 1)[1].split("\n## ", 1)[0]
    line = next(line for line in section.splitlines() if "bin/gunicorn " in line)
    words = shlex.split(line[line.index("bin/gunicorn "):])[1:]
    assert "engine.wsgi:app" in words
    bind = words.index("--bind")
    words[bind + 1] = "127.0.0.1:0"  # any free port; gunicorn says which
    return words


@pytest.fixture
def stand_in():
    with StandInVendor(routes_from_examples(load_spec(ROOT / "vendors" / "abuseipdb.yaml"))) as vendor:
        yield vendor


@pytest.fixture
def gunicorn(stand_in, tmp_path):
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "SECRET_KEY": SECRET_KEY, "RELAY_UPSTREAM_ABUSEIPDB": stand_in.origin, "NO_PROXY": "127.0.0.1"}
    process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), *readme_gunicorn_arguments()],
                               cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listening_port(process, lines)}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def listening_port(process, lines: queue.Queue, timeout: float = 30.0) -> int:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            assert process.poll() is None, "gunicorn stopped:\n" + "".join(seen)
            continue
        seen.append(line)
        found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
        if found:
            return int(found.group(1))
    raise AssertionError("gunicorn did not start listening:\n" + "".join(seen))


def ask(base: str, path: str, body=None) -> dict:
    token = mint_hs256({"key": VENDOR_KEY, "aud": f"{base}/abuseipdb"}, SECRET_KEY)
    deadline = time.monotonic() + 20
    while True:  # the master listens before its workers have booted
        try:
            answer = requests.post(f"{base}{path}", json=body, headers={"Authorization": f"Bearer {token}"},
                                   timeout=10)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_readme_gunicorn_command_serves_health_and_observe(gunicorn, stand_in):
    assert ask(gunicorn, "/abuseipdb/health") == {"data": {"status": "ok"}}
    answer = ask(gunicorn, "/abuseipdb/observe/observables", [{"type": "ip", "value": "192.0.2.45"}])
    assert "errors" not in answer, answer
    assert answer["data"]["verdicts"]["docs"][0]["observable"] == {"type": "ip", "value": "192.0.2.45"}
    assert answer["data"]["sightings"]["count"] > 0
    assert {call.headers.get("Key") for call in stand_in.received if call.path == "/api/v2/check"} == {VENDOR_KEY}
