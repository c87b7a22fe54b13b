"""Run a conformance corpus (FORMAT.md) against the engine and the specs in vendors/.

For each case: the engine is built with the case's vendor served at the root, a frozen clock at
the case's `now`, a vendor transport answering from the recorded calls, and a harness JWKS; a
token is minted for the configured mode (or the literal Authorization header is sent); then the
relay's answer and the vendor calls it made are compared with the recording.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.serving.app import create_app
from engine.serving.config import RelayConfig
from engine.serving.runtime import FrozenClock, Runtime
from .compare import StandInLedger, compare_documents
from .replay import HARNESS_JWKS_HOST, JwksAdapter, ReplayAdapter, session_with

HARNESS_KID = "relay-conformance-harness"
HARNESS_SECRET = "relay-conformance-harness-secret"
URL_ROOT = "http://localhost"
# Cases whose outcome does not depend on the clock carry `now: null`; any instant will do.
DEFAULT_NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass
class CaseResult:
    id: str
    vendor: str
    passed: bool
    reason: str = ""
    problems: tuple = ()  # every difference, for `relay conformance -v`
    waived: bool = False  # failed, but listed as a bug of the original relay: counted as neither

    def to_json(self) -> dict:
        return {"id": self.id, "passed": self.passed, "reason": self.reason, **({"waived": True} if self.waived else {})}


class Harness:
    """Keys and tokens shared by every case of a run."""

    def __init__(self):
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        self.jwks = {"keys": [{**public_jwk, "kid": HARNESS_KID, "alg": "RS256", "use": "sig"}]}

    def token(self, payload: dict, mode: str) -> str:
        claims = {"jwks_host": HARNESS_JWKS_HOST, "aud": URL_ROOT, **payload}
        if mode == "hs256":
            return jwt.encode(claims, HARNESS_SECRET, algorithm="HS256")
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": HARNESS_KID})


def load_cases(directory, vendors=None) -> list[dict]:
    """The corpus's cases (of these vendors only: a name or a list of names)."""
    vendors = [vendors] if isinstance(vendors, str) else vendors
    cases = []
    for path in sorted(Path(directory).glob("*/*.json")):
        if vendors and path.parent.name not in vendors:
            continue
        case = json.loads(path.read_text(encoding="utf-8"))
        case.setdefault("vendor", path.parent.name)
        case.setdefault("id", f"{path.parent.name}/{path.stem}")
        cases.append(case)
    return cases


def auth_mode_of(case: dict) -> str:
    return "hs256" if case["request"].get("auth", {}).get("auth_mode") == "hs256" else "jwks"


NONCE = re.compile(r"nonce(?::|\s+fixed\s+to)\s*`?([0-9A-Za-z-]{8,})")
NO_ANSWER = object()  # the relay's body was not JSON (JSON `null` is an answer like any other)


def run_case(case: dict, specs: dict, harness: Harness) -> CaseResult:
    """One case; an engine that crashes on it fails that case, and the run goes on."""
    try:
        return replay_case(case, specs, harness)
    except Exception as crash:  # noqa: BLE001 - a crash is this case's finding, not the run's end
        reason = f"the engine crashed: {type(crash).__name__}: {crash}"
        return CaseResult(case["id"], case["vendor"], False, reason, (reason,))


def replay_case(case: dict, specs: dict, harness: Harness) -> CaseResult:
    vendor = case["vendor"]
    if vendor not in specs:
        return CaseResult(case["id"], vendor, False, f"vendors/{vendor}.yaml is missing or does not load")
    mode = auth_mode_of(case)
    ledger = StandInLedger(case.get("vendor_calls", []))
    runtime = case_runtime(case, ledger, harness)
    # Time is frozen and moves only as the engine sleeps (FORMAT.md): a case that polls runs its
    # course, as recorded. The request budget, a deployment's limit, has tests of its own.
    config = RelayConfig(auth_mode=mode, secret_key=HARNESS_SECRET if mode == "hs256" else None,
                         root_vendor=vendor, request_budget=math.inf)
    app = create_app({vendor: specs[vendor]}, config, runtime)
    response = send(app, case["request"], harness, mode)
    expected = case["expected"]
    problems = []
    if response.status_code != expected["status"]:
        problems.append(f"status: expected {expected['status']}, got {response.status_code}")
    try:
        actual = json.loads(response.get_data())
    except ValueError:
        actual = NO_ANSWER
        problems.append(f"the answer is not JSON: {response.get_data()[:120]!r}")
    if actual is not NO_ANSWER:
        problems += compare_documents(actual, expected["json"], case.get("unordered", []))
    problems += ledger.problems()
    return CaseResult(case["id"], vendor, not problems, "; ".join(problems[:5]), tuple(problems))


def case_runtime(case: dict, ledger: StandInLedger, harness: Harness) -> Runtime:
    """The engine's outside world for one case: its clock at `now`, its vendor answering from the
    ledger, the harness's JWKS, and the nonce its notes name (FORMAT.md: a signed call's nonce
    comes from the harness, as the clock does)."""
    runtime = Runtime(clock=FrozenClock(_parse_now(case.get("now"))), session=session_with(ReplayAdapter(ledger)),
                      jwks_session=session_with(JwksAdapter(harness.jwks)))
    nonce = NONCE.search(case.get("notes") or "")
    if nonce:
        runtime.new_nonce = lambda: nonce.group(1)
    return runtime


def send(app, request: dict, harness: Harness, mode: str):
    auth = request.get("auth") or {}
    headers = dict(request.get("headers") or {})
    if "jwt_payload" in auth:
        headers["Authorization"] = "Bearer " + harness.token(auth["jwt_payload"], mode)
    elif auth.get("authorization") is not None:
        headers["Authorization"] = auth["authorization"]
    body = request.get("json")
    kwargs = {"data": json.dumps(body), "content_type": "application/json"} if body is not None else {}
    client = app.test_client()
    return client.open(request["path"], method=request["method"], headers=headers, base_url=URL_ROOT, **kwargs)


def _parse_now(text: str | None) -> datetime:
    if not text:
        return DEFAULT_NOW
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def run_corpus(directory, specs: dict, vendors=None, waived: set = frozenset()) -> list[CaseResult]:
    harness = Harness()
    results = [run_case(case, specs, harness) for case in load_cases(directory, vendors)]
    return [replace(result, waived=True) if result.id in waived and not result.passed else result
            for result in results]


def summarize(results: list[CaseResult]) -> dict:
    vendors: dict = {}
    for result in results:
        tally = vendors.setdefault(result.vendor, {"passed": 0, "failed": 0})
        if not result.waived:
            tally["passed" if result.passed else "failed"] += 1
    passed = sum(r.passed for r in results)
    waived = sum(r.waived for r in results)
    return {"passed": passed, "failed": len(results) - passed - waived, "waived": waived, "vendors": vendors,
            "cases": [r.to_json() for r in results]}

