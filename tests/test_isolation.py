"""One spec that does not load never takes the others down: the relay starts, says so once in its
log with file and line, serves every good vendor, and answers the broken vendor's routes with a
relay error an analyst can act on (not a 404, not a 500)."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import create_app
from engine.commands.cli import serving_summary
from engine.serving.config import RelayConfig
from engine.spec.load import load_catalogue

ROOT = Path(__file__).resolve().parent.parent
MISCONFIGURED = {"code": "misconfigured module", "type": "fatal", "message": (
    "The shodan module is misconfigured on this relay: its spec does not load. The relay's operator can see "
    "why in its log or with `relay lint`.")}


@pytest.fixture
def catalogue(tmp_path):
    """AbuseIPDB as shipped, and a Shodan whose spec has a mistake on line 3."""
    folder = tmp_path / "vendors"
    shutil.copytree(ROOT / "vendors", folder, ignore=shutil.ignore_patterns("*.yaml"))
    shutil.copy(ROOT / "vendors" / "abuseipdb.yaml", folder)
    text = (ROOT / "vendors" / "shodan.yaml").read_text()
    (folder / "shodan.yaml").write_text(text.replace("observable_types:", "observable_typos:"))
    return folder


def config(folder: Path, **more) -> RelayConfig:
    return RelayConfig(auth_mode="hs256", secret_key="s" * 40, vendors_dir=str(folder), **more)


@pytest.mark.parametrize("route", ["/shodan/refer/observables", "/shodan/health", "/shodan/observe/observables",
                                   "/shodan/version"])
def test_the_broken_vendor_answers_that_it_is_misconfigured(catalogue, route):
    client = create_app(config=config(catalogue)).test_client()
    answer = client.post(route, json=[{"type": "ip", "value": "192.0.2.1"}])
    assert (answer.status_code, answer.get_json()) == (200, {"errors": [MISCONFIGURED]})


def test_the_good_vendors_are_served_and_the_problem_is_logged_once_with_its_place(catalogue, caplog):
    with caplog.at_level(logging.ERROR, logger="relay"):
        client = create_app(config=config(catalogue)).test_client()
        for _ in range(3):
            client.post("/shodan/health")
    assert client.post("/abuseipdb/version").get_json() == {"version": "2.0.7"}
    assert client.post("/nobody/version").status_code == 404  # an unknown vendor stays unknown
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 1
    assert "vendor shodan does not load" in logged[0]
    assert f"{catalogue / 'shodan.yaml'}:" in logged[0] and "unknown key 'observable_typos'" in logged[0]


def test_a_broken_root_vendor_is_answered_at_the_root_too(catalogue):
    client = create_app(config=config(catalogue, root_vendor="shodan")).test_client()
    assert client.post("/refer/observables", json=[]).get_json() == {"errors": [MISCONFIGURED]}


def test_serve_lists_the_broken_vendor(catalogue):
    loaded = load_catalogue(catalogue)
    text = serving_summary(config(catalogue), loaded.specs, "http://127.0.0.1:8080", loaded.broken)
    assert "http://127.0.0.1:8080/shodan  MISCONFIGURED: its spec does not load (relay lint shows why); its " \
           "routes answer `misconfigured module`" in text.splitlines()
    assert any(line.startswith("http://127.0.0.1:8080/abuseipdb  AbuseIPDB:") for line in text.splitlines())


def test_the_wsgi_entry_point_starts_with_a_broken_spec(catalogue):
    """What Zappa's handler and gunicorn import: it must not fail (a 502 for every vendor on Lambda)."""
    environ = {**os.environ, "RELAY_VENDORS_DIR": str(catalogue), "SECRET_KEY": "s" * 40}
    script = ("from engine.wsgi import app; import json; c = app.test_client(); "
              "print(json.dumps([c.post('/abuseipdb/version').get_json(), c.post('/shodan/health').get_json()]))")
    done = subprocess.run([sys.executable, "-c", script], env=environ, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    *logged, printed = done.stdout.splitlines()
    assert json.loads(printed) == [{"version": "2.0.7"}, {"errors": [MISCONFIGURED]}]
    assert [json.loads(line)["vendor"] for line in logged] == ["abuseipdb", "shodan"]  # the request log
    assert "vendor shodan does not load" in done.stderr
