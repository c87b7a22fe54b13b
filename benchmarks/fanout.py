"""Fan-out: one relay request for N observables, the vendor answering each call after a latency.
The engine looks observables up concurrently (the spec's `concurrency`, 20 by default for
AbuseIPDB, which sets none); the hand-written relay, like Cisco's, one after the other. Both keep
the categories page from an earlier request, so each request makes one call per IP."""
from __future__ import annotations

from benchmarks import handwritten
from benchmarks.common import median_seconds, observables, relay_token, stand_in_vendor
from benchmarks.overhead import engine_app
from benchmarks.common import SECRET_KEY

COUNTS = (1, 5, 20, 50)


def run(latency: float = 0.05, repeats: int = 5, reports: int = 3) -> dict:
    """`reports`: the size of each check answer (3, as in the spec's examples: the time is the
    calls'; with 25, mapping 134 documents an IP adds CPU that threads share)."""
    headers = {"Authorization": f"Bearer {relay_token()}"}
    rows = {}
    with stand_in_vendor(latency, reports) as origin:
        relays = {"engine": engine_app(origin).test_client(),
                  "handwritten": handwritten.create_app(origin, SECRET_KEY).test_client()}
        for name, client in relays.items():
            client.post("/abuseipdb/observe/observables", json=observables(1), headers=headers)  # warm
            for count in COUNTS:
                def ask():
                    answer = client.post("/abuseipdb/observe/observables", json=observables(count), headers=headers)
                    assert answer.get_json()["data"]["verdicts"]["count"] == count
                rows[(name, count)] = median_seconds(ask, repeats)
    figures = {"latency_ms": latency * 1000, "reports": reports}
    for name in ("engine", "handwritten"):
        for count in COUNTS:
            figures[f"fanout_{name}_{count}_s"] = round(rows[(name, count)], 3)
            figures[f"fanout_{name}_ratio_{count}"] = round(rows[(name, count)] / rows[(name, 1)], 2)
    figures["fanout_ratio_20"] = figures["fanout_engine_ratio_20"]
    return figures


def report(figures: dict) -> list[str]:
    lines = [f"Fan-out: one /observe request for N IPs, vendor at {figures['latency_ms']:.0f} ms a call, "
             f"{figures['reports']} reports an IP (a check per IP; both relays keep the categories page a day):",
             "  N     engine (s)  ratio to N=1   hand-written (s)  ratio to N=1   N x one, in sequence (s)"]
    for count in COUNTS:
        lines.append(f"  {count:<5} {figures[f'fanout_engine_{count}_s']:>9.3f}  {figures[f'fanout_engine_ratio_{count}']:>10.2f}"
                     f"   {figures[f'fanout_handwritten_{count}_s']:>15.3f}  {figures[f'fanout_handwritten_ratio_{count}']:>11.2f}"
                     f"   {figures['fanout_engine_1_s'] * count:>18.3f}")
    return lines
