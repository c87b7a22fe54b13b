"""A bounded load test of the relay on loopback: real server, real vendor faults, mixed tokens.

    .venv/bin/python bench/load.py                       # 3000 requests, 16 at a time
    .venv/bin/python bench/load.py --requests 12000 --max-seconds 600 --no-oversized   # memory over a long run

What it runs, all on 127.0.0.1:
- the relay as deployed: `gunicorn engine.wsgi:app` with 2 worker processes (8 threads each),
  configured from the environment (hs256, RELAY_UPSTREAM_ABUSEIPDB), serving vendors/abuseipdb.yaml
  with one change: its timeout cut from 10 s to 2 s, so injected hangs cost seconds, not minutes;
- a misbehaving AbuseIPDB (tests/support/misbehaving.py) that answers by observable: the example
  answer, slow answers, 429, 500, 503, malformed JSON, resets, hangs past the deadline, bodies
  over the size limit;
- a client sending a fixed, seeded mix: good tokens on /observe, /deliberate and /health, bad
  tokens (expired, wrong key, alg none, no credential), bad bodies, unsupported types, /version,
  /watchdog.

Every answer is checked against what its request and its injected faults explain (e.g. a request
whose second observable hits a 429 may answer data and `too many requests`, nothing else); anything
else — a 5xx, a connection failure, an error code the request cannot explain — is "unexplained".
Memory is the resident set of each worker, read from /proc after warm-up, at half-time and at the
end. It prints its figures; docs/reliability.md keeps them. It is not run by pytest.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.commands.tokens import mint_hs256  # noqa: E402
from tests.support.misbehaving import (  # noqa: E402
    Answer, Close, Hang, Later, MisbehavingVendor, json_answer,
)

SECRET = "load-test-secret-" + "9" * 32
EXAMPLES = ROOT / "vendors" / "examples" / "abuseipdb"
KINDS = {"verdicts", "judgements", "sightings", "indicators", "relationships", "incidents", "notes"}

# Observables by what the vendor does for them, and the relay error each one explains.
FAULTS = {
    "good": (None, None), "slow": (None, None),
    "429": ("too many requests", None), "500": ("internal error", None), "503": ("service unavailable", None),
    "badjson": ("unknown", None), "reset": ("connection error", None), "hang": ("timeout", None),
    "oversized": ("unknown", None),
}
WEIGHTS = {"good": 70, "slow": 8, "429": 5, "500": 4, "503": 4, "badjson": 4, "reset": 3, "hang": 1, "oversized": 1}


def vendor_plan(check: bytes, categories: bytes, address_kind: dict):
    oversized = Answer(200, b" " * (10 * 1024 * 1024 + 1))
    by_kind = {
        "slow": Later(Answer(200, check), 0.3), "429": json_answer({"errors": [{"detail": "Rate limited", "status": 429}]},
                                                                    429, headers={"Retry-After": "60"}),
        "500": Answer(500, b"oops"), "503": Answer(503, b""), "badjson": Answer(200, b'{"data": '),
        "reset": Close(reset=True), "hang": Hang(), "oversized": oversized,
    }

    def plan(request):
        if request.path == "/categories":
            return Answer(200, categories, content_type="text/html")
        kind = address_kind.get(request.param("ipAddress"), "good")
        behaviour = by_kind.get(kind)
        if kind == "slow":  # a fresh Later each time: it waits only on its first use
            return Later(Answer(200, check), 0.3)
        return behaviour or Answer(200, check)
    return plan


# ------------------------------------------------------------------------------------ the mix

class Mix:
    """A seeded sequence of requests, each with the answers that would explain it."""

    def __init__(self, seed: int, count: int):
        self.random = random.Random(seed)
        self.count = count
        self.address_kind: dict[str, str] = {}
        self.next_address = 0

    def address(self, kind: str) -> str:
        self.next_address += 1
        address = f"10.{self.next_address // 65536 % 256}.{self.next_address // 256 % 256}.{self.next_address % 256}"
        self.address_kind[address] = kind
        return address

    def token(self, **claims) -> str:
        """The classic serverless-relay token: HS256, no `aud` (the relay's URL root has a port here)."""
        return mint_hs256({"key": "load-test-key", **claims}, SECRET)

    def requests(self) -> list[dict]:
        made = []
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        for index in range(self.count):
            roll = self.random.random()
            if roll < 0.62:  # good token, 1-4 observables, faults as drawn
                route = self.random.choice(["observe/observables", "deliberate/observables"])
                drawn = self.random.choices(kinds, weights, k=self.random.randint(1, 4))
                body = [{"type": "ip", "value": self.address(kind)} for kind in drawn]
                made.append({"kind": "enrich", "method": "POST", "path": f"/abuseipdb/{route}", "json": body,
                             "token": self.token(), "codes": {FAULTS[k][0] for k in drawn} - {None},
                             "data_possible": any(k in ("good", "slow") for k in drawn)})
            elif roll < 0.77:  # a bad token: refused before any vendor call
                token = self.random.choice([
                    self.token(exp=1),                                            # expired
                    mint_hs256({"key": "k"}, "not-the-relay-secret-" + "0" * 20),  # signed with another key
                    self.token()[:-6] + "AAAAAA",                                 # signature tampered with
                    jwt.encode({"key": "k"}, None, algorithm="none"),             # alg none
                    mint_hs256({"CTR_ENTITIES_LIMIT": 5}, SECRET),                # no credential
                    "not.a.jwt", ""])
                made.append({"kind": "bad-token", "method": "POST", "path": "/abuseipdb/observe/observables",
                             "json": [{"type": "ip", "value": self.address("good")}], "token": token,
                             "codes": {"authorization error"}, "data_possible": False})
            elif roll < 0.85:  # bad input
                raw = self.random.choice([b"not json", b"{}", json.dumps([{"type": "ip"}]).encode(),
                                          json.dumps([{"type": "ip", "value": "1"}] * 1001).encode(),
                                          json.dumps([{"type": "ip", "value": "1" * 9000}]).encode(),
                                          b"[" * 50_000 + b"]" * 50_000])
                made.append({"kind": "bad-input", "method": "POST", "path": "/abuseipdb/deliberate/observables",
                             "raw": raw, "token": self.token(), "codes": {"invalid argument"},
                             "data_possible": False})
            elif roll < 0.90:  # nothing AbuseIPDB knows: answered without a vendor call
                made.append({"kind": "unsupported", "method": "POST", "path": "/abuseipdb/observe/observables",
                             "json": [{"type": "domain", "value": f"d{index}.test"}, {"type": "sha256", "value": "x"}],
                             "token": self.token(), "codes": set(), "expect": {"data": {}}})
            elif roll < 0.95:
                made.append({"kind": "health", "method": "POST", "path": "/abuseipdb/health", "token": self.token(),
                             "codes": set(), "expect": {"data": {"status": "ok"}}})
            elif roll < 0.975:
                made.append({"kind": "version", "method": "POST", "path": "/abuseipdb/version", "codes": set(),
                             "expect": {"version": None}})
            else:
                made.append({"kind": "watchdog", "method": "GET", "path": "/abuseipdb/watchdog",
                             "headers": {"Health-Check": f"ping-{index}"}, "codes": set(),
                             "expect": {"data": f"ping-{index}"}})
        return made


def explained(request: dict, status: int, body) -> str | None:
    """None when the answer is one the request explains; else why not."""
    if status != 200:
        return f"HTTP {status}"
    if not isinstance(body, dict):
        return "not a JSON object"
    if "expect" in request:
        expected = request["expect"]
        if "version" in expected:
            return None if isinstance(body.get("version"), str) and set(body) == {"version"} else f"answer {body}"
        return None if body == expected else f"answer {str(body)[:200]}"
    if not set(body) <= {"data", "errors"} or not body:
        return f"keys {sorted(body)}"
    codes = {error.get("code") for error in body.get("errors", [])}
    if not codes <= request["codes"]:
        return f"unexplained codes {sorted(codes - request['codes'])}"
    data = body.get("data")
    if data:
        if not request.get("data_possible") or not set(data) <= KINDS:
            return f"unexpected data {sorted(data)}"
        if any(entry["count"] != len(entry["docs"]) for entry in data.values()):
            return "count differs from docs"
    if not data and not codes and request["kind"] == "enrich":
        return "neither data nor errors"
    return None


# ------------------------------------------------------------------------------------ processes

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def start_relay(port: int, vendors_dir: Path, upstream: str, workers: int, threads: int, log) -> subprocess.Popen:
    env = {**os.environ, "SECRET_KEY": SECRET, "RELAY_AUTH": "hs256", "RELAY_VENDORS_DIR": str(vendors_dir),
           "RELAY_UPSTREAM_ABUSEIPDB": upstream, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
               "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "60", "engine.wsgi:app"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(base: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the relay did not start (see its log above)")
        try:
            if requests.post(base + "/abuseipdb/version", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit("the relay did not answer within 30 s")


# ------------------------------------------------------------------------------------ the run

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=240, help="stop sending after this long")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--no-oversized", action="store_true",
                        help="leave out the 10 MiB answers (whose buffers glibc keeps in its arenas), to read memory")
    args = parser.parse_args(argv)
    if args.no_oversized:
        WEIGHTS["oversized"] = 0

    mix = Mix(args.seed, args.requests)
    planned = mix.requests()
    work = Path(tempfile.mkdtemp(prefix="relay-load-"))
    spec = (ROOT / "vendors" / "abuseipdb.yaml").read_text().replace("  timeout: 10\n", "  timeout: 2\n")
    (work / "abuseipdb.yaml").write_text(spec)
    shutil.copytree(ROOT / "vendors" / "examples", work / "examples")

    plan = vendor_plan((EXAMPLES / "check.json").read_bytes(), (EXAMPLES / "categories.html").read_bytes(),
                       mix.address_kind)
    vendor = MisbehavingVendor(plan, keep_requests=False).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_log = open(work / "gunicorn.log", "w+")
    relay = start_relay(port, work, vendor.origin, args.workers, args.threads, server_log)
    results, unexplained, memory, cpu = [], [], {}, {}
    lock = threading.Lock()
    local = threading.local()
    try:
        wait_ready(base, relay)
        workers = children(relay.pid)
        cpu_before = {pid: cpu_seconds(pid) for pid in workers}

        def send(item: dict):
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
                session.trust_env = False
            # A connection per request, as API Gateway opens them: kept-alive connections would all stay
            # with the worker that accepted them first (one core), and reusing one that gunicorn is
            # closing for idleness is a reset no relay can answer (seen with the 2 s default).
            headers = {"Connection": "close", **item.get("headers", {})}
            if item.get("token") is not None:
                headers["Authorization"] = f"Bearer {item['token']}"
            started = time.monotonic()
            try:
                response = session.request(item["method"], base + item["path"], headers=headers, timeout=30,
                                           **({"data": item["raw"]} if "raw" in item else
                                              {"json": item["json"]} if "json" in item else {}))
                status = response.status_code
                try:
                    body = response.json()
                except ValueError:
                    body = None
            except requests.RequestException as problem:
                status, body = 0, f"{type(problem).__name__}: {problem}"
            elapsed = time.monotonic() - started
            why = explained(item, status, body) if status else f"no answer: {body}"
            codes = sorted({e.get("code") for e in body.get("errors", [])}) if isinstance(body, dict) else []
            with lock:
                results.append((item["kind"], elapsed, status, codes))
                if why:
                    unexplained.append((item["kind"], item["path"], why))

        began = time.monotonic()
        warm, half = max(len(planned) // 10, 1), len(planned) // 2
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            for start, stop, label in ((0, warm, "after warm-up"), (warm, half, "at half-time"),
                                       (half, len(planned), "at the end")):
                if time.monotonic() - began > args.max_seconds:
                    break
                list(pool.map(send, planned[start:stop]))
                memory[label] = {pid: rss_kib(pid) for pid in workers}
        duration = time.monotonic() - began
        cpu = {pid: cpu_seconds(pid) - cpu_before[pid] for pid in workers}
    finally:
        relay.send_signal(signal.SIGTERM)
        try:
            relay.wait(timeout=15)
        except subprocess.TimeoutExpired:
            relay.kill()
        vendor.stop()
        server_log.seek(0)
        logged = server_log.read()
        server_log.close()
        shutil.rmtree(work, ignore_errors=True)

    report(args, results, unexplained, memory, duration, workers)
    print("worker CPU seconds: " + "  ".join(f"pid {pid}: {seconds:.1f}" for pid, seconds in sorted(cpu.items())))
    # The relay logs a vendor's fault as a relay error, not at WARNING: anything here is unexplained.
    print(f"\nrelay server log at WARNING and above: {len(logged.splitlines())} lines")
    for line in logged.splitlines()[:20]:
        print("  " + line)
    if logged.strip():
        return 1
    return 1 if unexplained or len(results) < len(planned) else 0


def report(args, results, unexplained, memory, duration, workers) -> None:
    latencies = sorted(elapsed for _, elapsed, _, _ in results)

    def percentile(values, fraction):
        return values[min(int(len(values) * fraction), len(values) - 1)] * 1000 if values else 0.0

    print(f"relay load test: {len(results)} requests in {duration:.1f} s ({len(results) / duration:.0f} req/s), "
          f"{args.concurrency} concurrent, gunicorn {args.workers} workers x {args.threads} threads, "
          f"{os.cpu_count()} CPUs")
    print(f"latency ms: p50 {percentile(latencies, .5):.0f}  p95 {percentile(latencies, .95):.0f}  "
          f"p99 {percentile(latencies, .99):.0f}  max {latencies[-1] * 1000:.0f}")
    by_kind = defaultdict(list)
    for kind, elapsed, status, codes in results:
        by_kind[kind].append((elapsed, status, codes))
    print("\nrequests by kind        count   p50 ms   p95 ms   HTTP statuses")
    for kind, rows in sorted(by_kind.items()):
        times = sorted(row[0] for row in rows)
        statuses = Counter(row[1] for row in rows)
        print(f"  {kind:<20} {len(rows):>6} {percentile(times, .5):>8.0f} {percentile(times, .95):>8.0f}   "
              + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    codes = Counter(code for _, _, _, answer_codes in results for code in answer_codes)
    print("\nrelay errors answered:  " + ", ".join(f"{code}: {n}" for code, n in codes.most_common()))
    print(f"server errors (5xx): {sum(1 for r in results if r[2] >= 500)}   "
          f"no answer: {sum(1 for r in results if r[2] == 0)}   unexplained answers: {len(unexplained)}")
    for kind, path, why in unexplained[:20]:
        print(f"  UNEXPLAINED {kind} {path}: {why}")
    print("\nworker resident memory (MiB):")
    for label, sizes in memory.items():
        print(f"  {label:<14} " + "  ".join(f"pid {pid}: {kib / 1024:.1f}" for pid, kib in sorted(sizes.items())))
    for start, label in (("after warm-up", "growth from warm-up to end"), ("at half-time", "growth over 2nd half")):
        if start in memory and "at the end" in memory:
            growth = {pid: (memory["at the end"][pid] - memory[start][pid]) / 1024 for pid in workers
                      if pid in memory["at the end"]}
            print(f"  {label}: " + "  ".join(f"pid {pid}: {mib:+.1f}" for pid, mib in sorted(growth.items())))


if __name__ == "__main__":
    sys.exit(main())
