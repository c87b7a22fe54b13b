"""The benchmarks stay runnable and honest: the hand-written relay they compare with answers what
the engine answers, and the last line of `python -m benchmarks` is the JSON the docs quote.
(No timing is asserted here: figures come from a run of `python -m benchmarks`.)"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import __main__ as benchmarks_main
from benchmarks import coldstart, overhead
from benchmarks.common import ROOT, SECRET_KEY, environment


def test_the_hand_written_relay_does_the_engines_work():
    figures = overhead.run(rounds=1, requests_per_round=1)  # asserts the two answers are the same
    assert figures["engine_cpu_ms"] > 0 and figures["handwritten_cpu_ms"] > 0


def test_the_last_line_is_the_figures_as_json(capsys):
    assert benchmarks_main.main(["--quick", "--only", "lint"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = json.loads(last)
    assert figures["lint_specs"] >= 18 and figures["lint_s"] > 0


def test_an_unknown_benchmark_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        benchmarks_main.main(["--only", "nothing"])
    assert stop.value.code == 2
    assert "unknown benchmark(s): nothing" in capsys.readouterr().err


def test_the_cold_start_floor_imports_only_what_the_engine_imports_to_serve(tmp_path):
    """The floor is what the engine must import anyway: were the engine to stop importing one of
    these at start, the floor would flatter it."""
    def modules_after(code: str) -> set:
        done = subprocess.run([sys.executable, "-c", code + "; import sys; print(' '.join(sys.modules))"],
                              cwd=ROOT, env=environment(SECRET_KEY=SECRET_KEY, RELAY_VENDORS_DIR=str(ROOT / "vendors"),
                                                        RELAY_SPEC_CACHE=str(tmp_path)),
                              capture_output=True, text=True, check=True)
        return set(done.stdout.split())

    modules_after(coldstart.ENGINE)  # fills the spec cache: the measured starts read it
    floor, engine = modules_after(coldstart.DEPENDENCIES), modules_after(coldstart.ENGINE)
    assert "yaml" not in engine  # the specs came from the cache
    assert {"flask", "requests", "jwt", "cryptography"} <= floor
    assert floor - engine == set()
