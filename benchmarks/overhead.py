"""CPU per /observe request in-process: the engine against the hand-written relay (handwritten.py),
both answering the same request from the same stand-in vendor, which runs in its own process so
that its work is not counted. Rounds alternate between the two; medians are compared."""
from __future__ import annotations

import re
import statistics
import time

from benchmarks import handwritten
from benchmarks.common import ROOT, SECRET_KEY, observables, relay_token, stand_in_vendor

TRANSIENT = re.compile(r"transient:([a-z]+)-[0-9a-f-]{36}")


def engine_app(origin: str):
    from engine import create_app, load_spec
    from engine.serving.config import RelayConfig
    config = RelayConfig(auth_mode="hs256", secret_key=SECRET_KEY, upstreams={"ABUSEIPDB": origin})
    return create_app({"abuseipdb": load_spec(ROOT / "vendors" / "abuseipdb.yaml")}, config)


def comparable(answer: dict) -> dict:
    """The answer with random ids numbered in order and the verdict's now-based times dropped."""
    seen = {}

    def number(match):
        return seen.setdefault(match.group(0), f"transient:{match.group(1)}-#{len(seen)}")

    def walk(value):
        if isinstance(value, dict):
            return {key: walk(item) for key, item in sorted(value.items())}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return TRANSIENT.sub(number, value) if isinstance(value, str) and "-4" in value else value

    for verdict in answer.get("data", {}).get("verdicts", {}).get("docs", []):
        verdict.pop("valid_time", None)
    return walk(answer)


def cpu_per_request(client, body, headers, requests_per_round: int) -> float:
    started = time.process_time()
    for _ in range(requests_per_round):
        answer = client.post("/abuseipdb/observe/observables", json=body, headers=headers)
        assert answer.status_code == 200
    return (time.process_time() - started) / requests_per_round


def run(rounds: int = 7, requests_per_round: int = 40) -> dict:
    body, headers = observables(1), {"Authorization": f"Bearer {relay_token()}"}
    with stand_in_vendor() as origin:
        engine = engine_app(origin).test_client()
        plain = handwritten.create_app(origin, SECRET_KEY).test_client()
        ours = engine.post("/abuseipdb/observe/observables", json=body, headers=headers).get_json()
        theirs = plain.post("/abuseipdb/observe/observables", json=body, headers=headers).get_json()
        assert "errors" not in ours and comparable(ours) == comparable(theirs), "the two relays answer differently"
        engine_cpu, plain_cpu = [], []
        for _ in range(rounds):
            engine_cpu.append(cpu_per_request(engine, body, headers, requests_per_round))
            plain_cpu.append(cpu_per_request(plain, body, headers, requests_per_round))
    engine_ms, plain_ms = statistics.median(engine_cpu) * 1000, statistics.median(plain_cpu) * 1000
    return {"engine_cpu_ms": round(engine_ms, 2), "handwritten_cpu_ms": round(plain_ms, 2),
            "overhead_ratio": round(engine_ms / plain_ms, 2)}


def report(figures: dict) -> list[str]:
    return ["CPU per /observe request (1 IP, 25 reports -> 134 CTIM documents), in-process:",
            f"  engine {figures['engine_cpu_ms']:.2f} ms   hand-written relay {figures['handwritten_cpu_ms']:.2f} ms"
            f"   ratio {figures['overhead_ratio']:.2f}"]
