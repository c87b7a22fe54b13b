"""Cold start: a fresh interpreter importing what serves requests (`engine.wsgi`, which loads every
spec of the catalogue), against one importing Flask and making a bare app. Wall time and the
process's peak resident memory, medians of interleaved runs. The engine starts as deployed, with
the compiled specs of RELAY_SPEC_CACHE (the Zappa build packs them); its first start, compiling
every spec, is shown beside.

Between the two stands the floor: a process importing what any relay of this design must import
to serve (Flask, requests, PyJWT with cryptography, fixed by the design's dependencies) and
making a bare app. The engine's own share of a start is what it takes over that floor."""
from __future__ import annotations

import statistics
import subprocess
import tempfile
import time

from benchmarks.common import ROOT, SECRET_KEY, environment, python

ENGINE = "import engine.wsgi as wsgi"
BARE_FLASK = "import flask; app = flask.Flask('bare')"
DEPENDENCIES = "import flask, requests, jwt; app = flask.Flask('bare')"
# The peak resident set of this process: VmHWM starts afresh at exec (getrusage's ru_maxrss does
# not: a child forked from a big benchmark process would report the parent's size).
REPORT_RSS = ("; print([int(line.split()[1]) for line in open('/proc/self/status') "
              "if line.startswith('VmHWM:')][0])")


def start(code: str, cache: str | None = None) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one interpreter running `code`."""
    environ = environment(SECRET_KEY=SECRET_KEY, RELAY_VENDORS_DIR=str(ROOT / "vendors"),
                          **({"RELAY_SPEC_CACHE": cache} if cache else {}))
    # As deployed (the Zappa build packs bytecode): a shell that sets PYTHONDONTWRITEBYTECODE
    # would otherwise leave every edited module to be compiled again at each start.
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    done = subprocess.run([python(), "-c", code + REPORT_RSS], cwd=ROOT, env=environ, capture_output=True,
                          text=True, check=True)
    return time.perf_counter() - started, int(done.stdout.splitlines()[-1]) / 1024


def run(repeats: int = 9) -> dict:
    engine, bare, floor, compiling = [], [], [], []
    with tempfile.TemporaryDirectory() as cache:
        start(ENGINE, cache)  # fills the cache (and writes the bytecode of edited modules)
        for _ in range(repeats):
            engine.append(start(ENGINE, cache))
            bare.append(start(BARE_FLASK))
            floor.append(start(DEPENDENCIES))
            compiling.append(start(ENGINE))
    specs = len(list((ROOT / "vendors").glob("*.yaml")))
    engine_s, bare_s = statistics.median(t for t, _ in engine), statistics.median(t for t, _ in bare)
    floor_s = statistics.median(t for t, _ in floor)
    return {"cold_start_s": round(engine_s, 3), "bare_flask_s": round(bare_s, 3),
            "cold_start_ratio": round(engine_s / bare_s, 2),
            "dependencies_s": round(floor_s, 3), "dependencies_ratio": round(floor_s / bare_s, 2),
            "cold_start_rss_mb": round(statistics.median(m for _, m in engine), 1),
            "bare_flask_rss_mb": round(statistics.median(m for _, m in bare), 1), "specs": specs,
            "first_start_s": round(statistics.median(t for t, _ in compiling), 3)}


def report(figures: dict) -> list[str]:
    return [f"Cold start: a fresh interpreter, import and load (every spec: {figures['specs']}):",
            f"  engine {figures['cold_start_s']:.3f} s, {figures['cold_start_rss_mb']:.1f} MiB   bare Flask "
            f"{figures['bare_flask_s']:.3f} s, {figures['bare_flask_rss_mb']:.1f} MiB   ratio {figures['cold_start_ratio']:.2f}",
            f"  the floor (Flask, requests and PyJWT imported, a bare app): {figures['dependencies_s']:.3f} s, "
            f"ratio {figures['dependencies_ratio']:.2f} to bare Flask",
            f"  (the engine's first start, compiling every spec into the cache: {figures['first_start_s']:.3f} s)"]
