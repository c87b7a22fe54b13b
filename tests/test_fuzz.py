"""The relay API as the shipped OpenAPI document describes it, fuzzed in-process with schemathesis.

engine/schema/relay-api.openapi.json ships with the package. Here it is checked to describe every
route the app serves, then every operation is fuzzed against the real WSGI app (AbuseIPDB, vendor
calls to a loopback stand-in, a valid token) with schema-conforming and schema-violating requests:
no answer may be a 5xx, every answer must conform to the document (status, content type, body),
and every 200 must be a relay envelope. The budget is fixed and derandomized, so CI is stable.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from engine import load_spec
from engine.serving.app import RELAY_ROUTES
from engine.ctim import validate_observe_data
from tests.support.misbehaving import Answer, MisbehavingVendor, RelayAgainst

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT_FILE = resources.files("engine") / "schema" / "relay-api.openapi.json"
DOCUMENT = json.loads(DOCUMENT_FILE.read_text())
SPEC = load_spec(ROOT / "vendors" / "abuseipdb.yaml")
EXAMPLES = ROOT / "vendors" / "examples" / "abuseipdb"
OPERATIONS = [(path, method.upper()) for path, item in DOCUMENT["paths"].items() for method in item]
# Schema-violating requests need something to violate: the vendor and the token are fixed, so only
# the operations that take a body get them (the others: malformed JSON, shapes, limits below).
FUZZ_RUNS = [(path, method, mode) for path, method in OPERATIONS for mode in GenerationMode
             if mode == GenerationMode.POSITIVE or "requestBody" in DOCUMENT["paths"][path][method.lower()]]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# No shrinking: a failure is reported as found (print_blob reproduces it) instead of costing minutes of CI.
BUDGET = settings(max_examples=25, derandomize=True, database=None, deadline=None, print_blob=True,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.reuse, Phase.generate])


def test_the_document_ships_with_the_package_and_is_openapi_3():
    assert DOCUMENT["openapi"].startswith("3.")
    schemathesis.openapi.from_dict(json.loads(DOCUMENT_FILE.read_text()))  # raises on an invalid document
    setup = (ROOT / "setup.cfg").read_text()
    assert "schema/*.json" in setup  # package_data: the document is in every install


def test_the_document_describes_exactly_the_routes_the_app_serves():
    served = {(f"/{{vendor}}{path}", method) for method, path in RELAY_ROUTES.values()}
    assert set(OPERATIONS) == served


@pytest.fixture(scope="module")
def fuzzed():
    check = (EXAMPLES / "check.json").read_bytes()
    categories = (EXAMPLES / "categories.html").read_bytes()

    def plan(request):
        if request.path == "/categories":
            return Answer(200, categories, content_type="text/html")
        return Answer(200, check)

    with MisbehavingVendor(plan) as vendor:
        relay = RelayAgainst({"abuseipdb": SPEC}, {"abuseipdb": vendor.origin})
        schema = schemathesis.openapi.from_dict(for_abuseipdb(DOCUMENT))
        schema.app = relay.app  # in-process WSGI calls
        yield schema, relay


def for_abuseipdb(document: dict) -> dict:
    """The document narrowed to the vendor under test: observable types are AbuseIPDB's (in any
    case) and a few it drops, so generated requests reach the vendor instead of being dropped."""
    narrowed = json.loads(json.dumps(document))
    types = sorted(SPEC.observable_types) + ["IP", "Ipv6", "domain", "sha256"]
    narrowed["components"]["schemas"]["Observable"]["properties"]["type"] = {"type": "string", "enum": types}
    return narrowed


def envelope_schema(path: str, method: str) -> dict:
    """The document's 200 schema of the operation, with its components, for jsonschema."""
    answer = DOCUMENT["paths"][path][method.lower()]["responses"]["200"]["content"]["application/json"]["schema"]
    return {**answer, "components": DOCUMENT["components"]}


@pytest.mark.parametrize(("path", "method", "mode"), FUZZ_RUNS, ids=[f"{m} {p} {mode}" for p, m, mode in FUZZ_RUNS])
def test_fuzzing_finds_no_server_error_and_only_documented_answers(fuzzed, path, method, mode):
    schema, relay = fuzzed
    operation = schema[path][method]
    token = relay.token("abuseipdb", aud=None)  # HS256 without `aud`, whatever host the calls name
    strategy = operation.as_strategy(mode, path_parameters={"vendor": "abuseipdb"},
                                     headers={"Authorization": f"Bearer {token}"})
    validator = jsonschema.Draft4Validator(envelope_schema(path, method))
    seen = []

    @BUDGET
    @given(case=strategy)
    def fuzz(case):
        response = case.call()
        seen.append(response.status_code)
        case.validate_response(response, checks=CHECKS)
        if response.status_code == 200:
            errors = sorted(validator.iter_errors(response.json()), key=str)
            assert not errors, errors[0]

    fuzz()
    assert seen and max(seen) < 500


@BUDGET
@given(vendor=st.text(min_size=1, max_size=20).filter(lambda name: "/" not in name and name != "abuseipdb"),
       route=st.sampled_from(OPERATIONS))
def test_an_unknown_vendor_is_a_404_in_the_relay_shape(fuzzed, vendor, route):
    _, relay = fuzzed
    path, method = route
    response = relay.client.open(path.replace("{vendor}", vendor.replace("?", "%3F").replace("#", "%23")),
                                 method=method, base_url="http://localhost")
    assert response.status_code in (404, 405), response.status_code  # 405: e.g. ".." resolving onto a route
    body = response.get_json()
    assert set(body) == {"code", "message", "reason"} and body["code"] == response.status_code


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                       max_size=4),
                    max_leaves=12)
OBSERVABLE = st.fixed_dictionaries({"type": st.sampled_from(["ip", "IP", "ipv6", "domain", "", " "]) | st.text(),
                                    "value": st.text(max_size=40) | JSON}, optional={"extra": JSON})


@BUDGET
@given(body=st.one_of(JSON, st.lists(OBSERVABLE | JSON, max_size=5)))
def test_any_json_body_is_an_envelope(fuzzed, body):
    """Hypothesis directly: any JSON at all, close to observables or not, is answered with an envelope."""
    _, relay = fuzzed
    for route in ("deliberate/observables", "observe/observables", "refer/observables"):
        response = relay.post("abuseipdb", route, raw=json.dumps(body).encode(), aud=None)
        if route == "refer/observables":
            assert response.status_code == 404  # AbuseIPDB declares no /refer
            continue
        assert response.status_code == 200
        answer = response.get_json()
        assert set(answer) <= {"data", "errors"} and answer
        for error in answer.get("errors", []):
            assert set(error) == {"type", "code", "message"} and error["code"] in ("invalid argument",)


@BUDGET
@given(addresses=st.lists(st.ip_addresses().map(str), min_size=1, max_size=3, unique=True))
def test_real_addresses_make_valid_ctim(fuzzed, addresses):
    _, relay = fuzzed
    observables = [{"type": "ip" if ":" not in address else "ipv6", "value": address} for address in addresses]
    data = relay.ask("abuseipdb", "observe/observables", observables)["data"]
    assert data["verdicts"]["count"] == len(addresses)
    assert validate_observe_data(data) == []


def test_an_unusual_value_still_makes_valid_ctim_uris(fuzzed):
    """Found by fuzzing: AbuseIPDB's spec wrote the value into check_url unquoted."""
    _, relay = fuzzed
    data = relay.ask("abuseipdb", "observe/observables", [{"type": "ip", "value": "192.0.2.45 "}])["data"]
    assert [problem for problem in validate_observe_data(data) if "URI" in problem] == []


def test_indicators_shared_by_two_observables_are_answered_once(fuzzed):
    """Two IPs reported for the same attack categories: one indicator per category, not two
    (found by fuzzing: identical documents made for different observables were all answered)."""
    _, relay = fuzzed
    observables = [{"type": "ip", "value": "192.0.2.45"}, {"type": "ip", "value": "192.0.2.46"}]
    data = relay.ask("abuseipdb", "observe/observables", observables)["data"]
    ids = [indicator["id"] for indicator in data["indicators"]["docs"]]
    assert len(ids) == len(set(ids)) == 4, ids
    assert validate_observe_data(data) == []
