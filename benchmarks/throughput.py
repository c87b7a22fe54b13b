"""Throughput: the relay as deployed with gunicorn (2 workers, 4 threads each) on loopback, asked
/observe for one IP by 8 clients at once for a few seconds, the vendor answering at once."""
from __future__ import annotations

import socket
import statistics
import subprocess
import tempfile
import threading
import time

import requests

from benchmarks.common import ROOT, SECRET_KEY, environment, observables, python, relay_token, stand_in_vendor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(base: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.post(f"{base}/abuseipdb/version", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def run(seconds: float = 5.0, clients: int = 8) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with stand_in_vendor() as origin, tempfile.TemporaryDirectory() as cache:
        environ = environment(SECRET_KEY=SECRET_KEY, RELAY_UPSTREAM_ABUSEIPDB=origin, RELAY_SPEC_CACHE=cache,
                              RELAY_VENDORS_DIR=str(ROOT / "vendors"))
        server = subprocess.Popen([python(), "-m", "gunicorn", "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}",
                                   "engine.wsgi:app"], cwd=ROOT, env=environ, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            wait_until_up(base)
            headers = {"Authorization": f"Bearer {relay_token(f'{base}/abuseipdb')}"}
            latencies, failures, stop = [], [], time.monotonic() + seconds

            def client():
                session = requests.Session()
                session.trust_env = False
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    answer = session.post(f"{base}/abuseipdb/observe/observables", json=observables(1),
                                          headers=headers, timeout=30)
                    elapsed = time.perf_counter() - started
                    (latencies if answer.ok and "data" in answer.json() else failures).append(elapsed)

            threads = [threading.Thread(target=client) for _ in range(clients)]
            began = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            took = time.monotonic() - began
        finally:
            server.terminate()
            server.wait(timeout=10)
    latencies.sort()
    return {"throughput_rps": round(len(latencies) / took, 1), "throughput_failures": len(failures),
            "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
            "latency_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1)}


def report(figures: dict) -> list[str]:
    return ["Throughput under gunicorn (2 workers x 4 threads, 8 clients, /observe for 1 IP, 134 documents):",
            f"  {figures['throughput_rps']:.1f} requests/s, latency p50 {figures['latency_p50_ms']:.1f} ms, "
            f"p95 {figures['latency_p95_ms']:.1f} ms, failures {figures['throughput_failures']}"]
