"""The second hosting path: the README's gunicorn command serves the relay, end to end over loopback.

The command is taken from the README's Deploying section and started as a process of its own
(bound to a free loopback port instead of 0.0.0.0:8080), with the relay's environment and a
stand-in AbuseIPDB; the tests ask it for /health and /observe/observables, read its access log,
and hang up on it mid-request, then stop it.
"""
from __future__ import annotations

import json
import queue
import re
import shlex
import socket
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
from tests.support.misbehaving import MisbehavingVendor, abuseipdb_examples

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


class Gunicorn:
    """The README's gunicorn command as a process; its stdout (the access log) and stderr collected."""

    def __init__(self, upstream: str, home):
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
               "SECRET_KEY": SECRET_KEY, "RELAY_UPSTREAM_ABUSEIPDB": upstream, "NO_PROXY": "127.0.0.1"}
        self.process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), *readme_gunicorn_arguments()],
                                        cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.output: list = []
        for stream in (self.process.stderr, self.process.stdout):
            threading.Thread(target=self._collect, args=(stream,), daemon=True).start()
        self.base = f"http://127.0.0.1:{listening_port(self.process, self.lines)}"

    def _collect(self, stream) -> None:
        for line in stream:
            self.output.append(line)
            self.lines.put(line)

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        time.sleep(0.2)  # the collecting threads read what was left in the pipes
        return "".join(self.output)


@pytest.fixture
def gunicorn(stand_in, tmp_path):
    server = Gunicorn(stand_in.origin, tmp_path)
    try:
        yield server.base
    finally:
        server.stop()


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


def test_the_access_log_keeps_no_query_string(stand_in, tmp_path):
    """Found by the attack run: a token sent as `?jwt=...` was refused but written to the access log.
    The relay reads nothing from the query string, so it drops it before gunicorn logs the request."""
    server = Gunicorn(stand_in.origin, tmp_path)
    try:
        ask(server.base, "/abuseipdb/health")  # the workers are up
        leaked = "eyJhbGciOiJIUzI1NiJ9.leaked-token-in-the-query"
        refused = requests.post(f"{server.base}/abuseipdb/health?jwt={leaked}&key=also-secret", timeout=10).json()
    finally:
        log = server.stop()
    assert refused["errors"][0]["code"] == "authorization error"
    assert '"POST /abuseipdb/health HTTP/1.1" 200' in log  # the access log is there, request by request
    assert leaked not in log and "also-secret" not in log


def test_under_gunicorn_no_vendor_call_starts_after_the_client_hangs_up(tmp_path):
    def slow(request):
        answer = abuseipdb_examples(request)
        if request.path.endswith("/check"):
            time.sleep(0.3)
        return answer

    with MisbehavingVendor(slow) as vendor:
        server = Gunicorn(vendor.origin, tmp_path)
        try:
            ask(server.base, "/abuseipdb/health")
            port = int(server.base.rsplit(":", 1)[1])
            body = json.dumps([{"type": "ip", "value": f"192.0.2.{n}"} for n in range(1, 81)]).encode()
            token = mint_hs256({"key": VENDOR_KEY, "aud": f"{server.base}/abuseipdb"}, SECRET_KEY)
            connection = socket.create_connection(("127.0.0.1", port))
            connection.sendall((f"POST /abuseipdb/deliberate/observables HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                                f"Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n"
                                f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
            checks = lambda: len([r for r in vendor.requests if r.path.endswith("/check")])  # noqa: E731
            deadline = time.monotonic() + 10
            while checks() < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            connection.close()
            seen = -1
            while seen != checks():  # 80 calls, 20 at a time, would take 1.2 s: wait for quiet
                seen = checks()
                time.sleep(1.0)
        finally:
            server.stop()
    assert 4 <= seen <= 40, seen  # the first round (20) and the calls already under way; never all 80
