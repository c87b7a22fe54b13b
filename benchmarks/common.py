"""What every benchmark shares: the stand-in vendor process, tokens, timing helpers."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "benchmark-secret-key-0123456789abcdefghij"
VENDOR_KEY = "benchmark-abuseipdb-key"
AUDIENCE = "http://localhost/abuseipdb"  # the Flask test client's URL root, plus the vendor


def python() -> str:
    return sys.executable


@contextmanager
def stand_in_vendor(latency: float = 0.0, reports: int = 25):
    """The stand-in AbuseIPDB in its own process (its CPU is not the relay's); yields its origin."""
    process = subprocess.Popen([python(), "-m", "benchmarks.vendor", "--latency", str(latency),
                                "--reports", str(reports)],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        origin = process.stdout.readline().strip()
        if not origin.startswith("http://"):
            raise RuntimeError("the stand-in vendor did not start")
        yield origin
    finally:
        process.terminate()
        process.wait(timeout=10)


def relay_token(audience: str = AUDIENCE) -> str:
    import jwt
    return jwt.encode({"key": VENDOR_KEY, "aud": audience}, SECRET_KEY, algorithm="HS256")


def observables(count: int) -> list:
    return [{"type": "ip", "value": f"192.0.2.{n + 1}"} for n in range(count)]


def median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def environment(**more) -> dict:
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(("RELAY_", "SECRET_KEY", "HTTP_PROXY", "HTTPS_PROXY"))}
    environ.update(more)
    return environ


def machine() -> str:
    """The machine in one line: CPU model, cores, Python."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"


def as_json(figures: dict) -> str:
    return json.dumps(figures, sort_keys=True)
