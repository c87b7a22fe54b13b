"""relay conformance on a small corpus written here: passes, failures, --expect, --json."""
import json

import pytest

from engine.commands.cli import main

SPEC = """
spec_version: 1
name: acme
title: Acme
version: 3.1.4
credentials:
  key: {label: API key}
observable_types: [domain]
ctim_schema_version: 1.3.29
http:
  base_url: https://api.acme.test/v2
  auth: {headers: {X-Key: "{{ credentials.key }}"}}
  errors:
    - when: {status: 404}
      skip: true
steps:
  lookup: {url: "/domains/{{ observable.value }}"}
observe:
  steps: [lookup]
  sightings:
    - id: "transient:sighting-{{ uuid4() }}"
      count: 1
      confidence: High
      observed_time: {start_time: "{{ now() }}"}
"""


def case(name, *, answer=None, expected=None, url="https://api.acme.test/v2/domains/example.test", **more):
    return {
        "id": f"acme/{name}", "vendor": "acme", "kind": "success", "now": "2020-01-02T03:04:05.000000Z",
        "request": {"method": "POST", "path": "/observe/observables", "auth": {"jwt_payload": {"key": "k1"}},
                    "headers": {}, "json": [{"type": "domain", "value": "example.test"}]},
        "vendor_calls": [{"request": {"method": "GET", "url": url, "headers": {"X-Key": "k1"},
                                      "json": None, "data": None},
                          "response": answer or {"status": 200, "headers": {}, "json": {}}}],
        "expected": expected or {"status": 200, "json": {"data": {"sightings": {"count": 1, "docs": [{
            "id": "transient:sighting-5d3c3f0e-8b0e-4b6e-9a53-2f9a3f6b1c11", "type": "sighting",
            "schema_version": "1.3.29", "count": 1, "confidence": "High",
            "observed_time": {"start_time": "2020-01-02T03:04:05.000000Z"}}]}}}},
        "unordered": [], "notes": "", **more,
    }


@pytest.fixture
def corpus(tmp_path):
    vendors = tmp_path / "vendors"
    vendors.mkdir()
    (vendors / "acme.yaml").write_text(SPEC)
    cases = tmp_path / "corpus" / "acme"
    cases.mkdir(parents=True)
    written = [
        case("passes"),
        case("skips-on-404", answer={"status": 404, "headers": {}, "text": ""},
             expected={"status": 200, "json": {"data": {}}}),
        case("wrong-answer", expected={"status": 200, "json": {"data": {}}}),
        case("unexpected-call", url="https://api.acme.test/v2/domains/other.test"),
        case("version", expected={"status": 200, "json": {"version": "3.1.4"}},
             request={"method": "POST", "path": "/version", "auth": {"authorization": None}, "headers": {}},
             vendor_calls=[]),
        case("no-token", expected={"status": 200, "json": {"errors": [{
            "code": "authorization error", "message": "Authorization failed: Authorization header is missing",
            "type": "fatal"}]}}, vendor_calls=[],
             request={"method": "POST", "path": "/observe/observables",
                      "auth": {"authorization": None, "auth_mode": "rs256-jwks"}, "headers": {},
                      "json": [{"type": "domain", "value": "example.test"}]}),
        case("hs256-wrong-key", vendor_calls=[], expected={"status": 200, "json": {"errors": [{
            "code": "authorization error", "type": "fatal", "message": "Authorization failed: Failed to decode JWT "
            "with provided key. Make sure the token was signed with this relay's SECRET_KEY (relay jwt mints one)."}]}},
             request={"method": "POST", "path": "/observe/observables", "headers": {},
                      "auth": {"authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJrZXkiOiJrMSJ9.c2lnbmF0dXJl",
                               "auth_mode": "hs256"},
                      "json": [{"type": "domain", "value": "example.test"}]}),
    ]
    for item in written:
        (cases / (item["id"].split("/")[1] + ".json")).write_text(json.dumps(item))
    other = tmp_path / "corpus" / "nospec"
    other.mkdir()
    (other / "health.json").write_text(json.dumps({**case("x"), "id": "nospec/health", "vendor": "nospec"}))
    return tmp_path


def run(corpus, *args):
    return main(["conformance", str(corpus / "corpus"), "--vendors", str(corpus / "vendors"), *args])


def test_the_table_and_the_last_line(corpus, capsys):
    assert run(corpus) == 1  # cases failed: the run says so, with or without --expect
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "5 passed, 3 failed"
    assert any(line.split() == ["acme", "5", "2"] for line in lines)
    assert any(line.split() == ["nospec", "0", "1"] for line in lines)


def test_json_reports_every_case_with_a_reason(corpus, capsys):
    run(corpus, "--json")
    report = json.loads(capsys.readouterr().out)
    assert (report["passed"], report["failed"]) == (5, 3)
    assert report["vendors"]["acme"] == {"passed": 5, "failed": 2}
    reasons = {case["id"]: case["reason"] for case in report["cases"]}
    assert reasons["acme/passes"] == ""
    assert "data: unexpected key 'sightings'" in reasons["acme/wrong-answer"]
    assert "unexpected call: GET https://api.acme.test/v2/domains/example.test" in reasons["acme/unexpected-call"]
    assert "call never made" in reasons["acme/unexpected-call"]
    assert reasons["nospec/health"] == "vendors/nospec.yaml is missing or does not load"


def test_expect_names_what_must_pass_and_every_failure_counts(corpus, tmp_path, capsys):
    good = tmp_path / "good.txt"
    good.write_text("# baseline\nacme/passes\nacme/version\nacme/hs256-wrong-key\n")
    assert run(corpus, "--expect", str(good)) == 1  # the listed cases pass, but others failed
    waived = tmp_path / "waived.txt"
    waived.write_text("acme/wrong-answer  # a bug of the original\nacme/unexpected-call\n")
    assert run(corpus, "--vendor", "acme", "--expect", str(good), "--waive", str(waived)) == 0
    out = capsys.readouterr().out
    assert "2 waived" in out and out.strip().splitlines()[-1] == "5 passed, 0 failed"
    bad = tmp_path / "bad.txt"
    bad.write_text("acme/passes\nacme/wrong-answer\nacme/gone\n")
    assert run(corpus, "--expect", str(bad)) == 1
    out = capsys.readouterr().out
    assert "FAILED acme/wrong-answer" in out and "MISSING acme/gone" in out


def test_vendor_filter_and_a_missing_corpus(corpus, capsys):
    assert run(corpus, "--vendor", "nospec") == 1
    assert capsys.readouterr().out.strip().splitlines()[-1] == "0 passed, 1 failed"
    assert main(["conformance", str(corpus / "nowhere")]) == 2


def test_verbose_shows_expected_and_actual_side_by_side_and_the_calls(corpus, capsys):
    run(corpus, "-v")
    out = capsys.readouterr().out
    block = out.split("FAILED acme/wrong-answer\n", 1)[1].split("FAILED", 1)[0]
    assert "  data\n    expected: {}\n    actual:   {" in block or "unexpected key 'sightings'" in block
    calls = out.split("FAILED acme/unexpected-call\n", 1)[1]
    assert "  unexpected call: GET https://api.acme.test/v2/domains/example.test" in calls
    assert "  call never made: GET https://api.acme.test/v2/domains/other.test" in calls


def write_case(corpus, item: dict) -> None:
    (corpus / "corpus" / "acme" / (item["id"].split("/")[1] + ".json")).write_text(json.dumps(item))


def test_a_json_null_answer_is_compared_like_any_other(corpus, capsys):
    write_case(corpus, case("null-body", vendor_calls=[], expected={"status": 200, "json": None},
                            request={"method": "POST", "path": "/version", "auth": {"authorization": None},
                                     "headers": {}}))
    run(corpus, "--vendor", "acme", "--json")
    reasons = {item["id"]: item["reason"] for item in json.loads(capsys.readouterr().out)["cases"]}
    assert reasons["acme/null-body"] == '<root>: expected null, got {"version": "3.1.4"}'


def test_a_case_that_crashes_the_engine_fails_alone_and_the_run_goes_on(corpus, capsys):
    write_case(corpus, case("crashes", request="not a request"))
    assert run(corpus, "--vendor", "acme", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    reasons = {item["id"]: item["reason"] for item in report["cases"]}
    assert reasons["acme/crashes"].startswith("the engine crashed: ")
    assert reasons["acme/passes"] == ""  # the cases after it ran


def test_a_call_made_without_tls_verification_fails_the_case():
    import requests
    from engine.conformance.compare import StandInLedger
    from engine.conformance.replay import ReplayAdapter, session_with
    ledger = StandInLedger(case("x")["vendor_calls"])
    session = session_with(ReplayAdapter(ledger))
    with pytest.raises(requests.exceptions.SSLError):
        session.get("https://api.acme.test/v2/domains/example.test", headers={"X-Key": "k1"}, verify=False)
    assert ledger.problems()[0] == ("call made with TLS verification off: GET "
                                    "https://api.acme.test/v2/domains/example.test")


def test_the_nonce_of_a_signed_case_comes_from_its_notes():
    from engine.conformance.compare import StandInLedger
    from engine.conformance.runner import Harness, case_runtime
    item = {**case("signed"), "notes": "Signed with EdgeGrid; the nonce fixed to 00000000-0000-4000-8000-000000000000."}
    runtime = case_runtime(item, StandInLedger([]), Harness())
    assert runtime.new_nonce() == runtime.new_nonce() == "00000000-0000-4000-8000-000000000000"
    assert case_runtime(case("unsigned"), StandInLedger([]), Harness()).new_nonce() != runtime.new_nonce()
