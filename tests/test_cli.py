"""The command line behaves like the tools people know: --version, pipes, what `serve` serves, one
default spec folder for every command."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import load_specs
from engine.commands.cli import main, serving_summary
from engine.serving.config import RelayConfig

ROOT = Path(__file__).resolve().parent.parent


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("relay 0.")


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`relay lint --json | head` closed the pipe while lint was writing: a traceback, once."""
    reader = subprocess.Popen(["head", "-c", "10"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    done = subprocess.run([sys.executable, "-m", "engine.commands.cli", "lint", "--json", "tests/broken_specs"],
                          cwd=ROOT, stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=120)
    reader.stdin.close()
    reader.wait(timeout=10)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
    assert done.returncode == 1


@pytest.mark.parametrize(("environ", "why"), [
    ({"SECRET_KEY": "k" * 40}, "HS256 tokens signed with SECRET_KEY (SECRET_KEY is set)"),
    ({}, "XDR's RS256 tokens, keys from visibility.amp.cisco.com, visibility.eu.amp.cisco.com, "
         "visibility.apjc.amp.cisco.com (no SECRET_KEY is set)"),
    ({"SECRET_KEY": "k" * 40, "RELAY_AUTH": "jwks"}, "(RELAY_AUTH=jwks)"),
])
def test_serve_says_how_it_checks_tokens_and_what_it_serves(environ, why, monkeypatch):
    for name in ("SECRET_KEY", "RELAY_AUTH"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    text = serving_summary(RelayConfig.from_environ(environ), load_specs(ROOT / "vendors"), "http://127.0.0.1:8080")
    lines = text.splitlines()
    assert lines[0].startswith("auth: ") and lines[0].endswith(why)
    assert "http://127.0.0.1:8080/abuseipdb  AbuseIPDB: /health /deliberate/observables /observe/observables " \
           "/version /watchdog" in lines
    assert "http://127.0.0.1:8080/shodan  Shodan: /health /refer/observables /version /watchdog" in lines


def test_lint_and_serve_read_the_same_default_folder(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "catalogue"
    shutil.copytree(ROOT / "vendors", folder)
    (folder / "shodan.yaml").write_text((folder / "shodan.yaml").read_text().replace("title: Shodan", "title: 7"))
    monkeypatch.setenv("RELAY_VENDORS_DIR", str(folder))
    monkeypatch.chdir(tmp_path)  # no ./vendors here: only the variable says where the specs are
    assert main(["lint"]) == 1
    assert f"{folder / 'shodan.yaml'}" in capsys.readouterr().out
    assert main(["try", "abuseipdb", "ip", "192.0.2.45", "--replay", "examples"]) == 0  # the good ones still run
    assert "note: left out shodan: its spec does not load (relay lint shows why)" in capsys.readouterr().err
    assert main(["demo", "shodan", "--once"]) == 1  # the broken one is named with its problems
    assert "shodan.yaml:" in capsys.readouterr().err
