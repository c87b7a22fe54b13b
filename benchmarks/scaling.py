"""How cost grows: engine CPU per /observe request with the answer's size (reports an IP, each
making a judgement, a sighting and its relationships), and the time to load each spec of the
catalogue, compiled from YAML or read back from the spec cache."""
from __future__ import annotations

import statistics
import tempfile
import time

from benchmarks.common import ROOT, observables, relay_token, stand_in_vendor
from benchmarks.overhead import engine_app

REPORTS = (0, 3, 25, 100)


def cpu_for(reports: int, requests: int) -> float:
    headers = {"Authorization": f"Bearer {relay_token()}"}
    with stand_in_vendor(reports=reports) as origin:
        client = engine_app(origin).test_client()
        client.post("/abuseipdb/observe/observables", json=observables(1), headers=headers)
        started = time.process_time()
        for _ in range(requests):
            client.post("/abuseipdb/observe/observables", json=observables(1), headers=headers)
        return (time.process_time() - started) / requests


def load_times(repeats: int) -> tuple[float, float]:
    from engine.spec.cache import SpecCache
    from engine.spec.load import load_catalogue
    compiling, cached = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            started = time.perf_counter()
            load_catalogue(ROOT / "vendors")
            compiling.append(time.perf_counter() - started)
            load_catalogue(ROOT / "vendors", SpecCache(folder))
            started = time.perf_counter()
            load_catalogue(ROOT / "vendors", SpecCache(folder))
            cached.append(time.perf_counter() - started)
    return statistics.median(compiling), statistics.median(cached)


def run(requests: int = 40, repeats: int = 5) -> dict:
    figures = {f"cpu_ms_reports_{count}": round(cpu_for(count, requests) * 1000, 2) for count in REPORTS}
    specs = len(list((ROOT / "vendors").glob("*.yaml")))
    compiling, cached = load_times(repeats)
    figures.update({"load_ms_per_spec_compiled": round(compiling / specs * 1000, 2),
                    "load_ms_per_spec_cached": round(cached / specs * 1000, 2)})
    return figures


def report(figures: dict) -> list[str]:
    sizes = "   ".join(f"{count} reports {figures[f'cpu_ms_reports_{count}']:.2f} ms" for count in REPORTS)
    return ["Scaling: engine CPU per /observe request (1 IP) by answer size:", f"  {sizes}",
            f"  loading a spec: {figures['load_ms_per_spec_compiled']:.2f} ms compiled from YAML, "
            f"{figures['load_ms_per_spec_cached']:.2f} ms from the spec cache"]
