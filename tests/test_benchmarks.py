"""The benchmarks stay runnable and honest: the hand-written relay they compare with answers what
the engine answers, and the last line of `python -m benchmarks` is the JSON the docs quote.
(No timing is asserted here: figures come from a run of `python -m benchmarks`.)"""
from __future__ import annotations

import json

import pytest

from benchmarks import __main__ as benchmarks_main
from benchmarks import overhead


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
