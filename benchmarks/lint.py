"""`relay lint vendors`, as a user runs it: a fresh process checking and dry-running every spec."""
from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.common import ROOT, environment


def run(repeats: int = 3) -> dict:
    relay = shutil.which("relay", path=str(Path(__import__("sys").executable).parent)) or "relay"
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([relay, "lint", "vendors"], cwd=ROOT, env=environment(), capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return {"lint_s": round(statistics.median(times), 3), "lint_specs": len(list((ROOT / "vendors").glob("*.yaml")))}


def report(figures: dict) -> list[str]:
    return [f"relay lint vendors ({figures['lint_specs']} specs, each also run on its examples): "
            f"{figures['lint_s']:.2f} s"]
