"""IBM X-Force Exchange end to end: the spec, the real app, a stand-in X-Force on loopback.

The domain answers are vendors/examples/ibm-xforce-exchange (written from X-Force's API
documentation): login-update.example.com, score 7.1, categories "Phishing URLs" and "Malware",
resolving to 192.0.2.41, 198.51.100.17 and 2001:db8::41, member of two collections (the newer one
owned by the user). IP and file answers are written below.
"""
import json
from pathlib import Path

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from engine.ctim import validate_observe_data
from tests.support.relay import RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "vendors" / "ibm-xforce-exchange.yaml")
EXAMPLES = ROOT / "vendors" / "examples" / "ibm-xforce-exchange"
DOMAIN = {"type": "domain", "value": "login-update.example.com"}
IP = {"type": "ip", "value": "203.0.113.9"}
SHA256 = {"type": "sha256", "value": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
CLAIMS = {"key": "xf-key", "password": "xf-password"}
PAGE = "https://exchange.xforce.ibmcloud.com"


def answer(body, status=200) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(body).encode())


def example(name) -> CannedAnswer:
    return CannedAnswer(200, (EXAMPLES / name).read_bytes())


IP_REPORT = answer({"ip": "203.0.113.9", "score": 4.3, "reason": "Regional Internet Registry",
                    "cats": {"Spam": 43, "Dynamic IPs": 71}, "geo": {"country": "Example", "countrycode": "EX"},
                    "history": [], "subnets": [], "tags": []})
IP_RESOLVE = answer({"RDNS": ["host-9.example.net"], "Passive": {"query": "0x00000000", "records": [
    {"value": "www.example.org", "type": "url", "recordType": "A", "first": "2026-09-01T00:00:00Z",
     "last": "2026-11-01T00:00:00Z"}]}, "total_rows": 1})


def file_report(risk) -> CannedAnswer:
    return answer({"malware": {"type": "sha256", "hash": "0x" + SHA256["value"].upper(), "risk": risk,
                               "created": "2026-10-01T00:00:00Z", "family": ["examplebot"], "origins": {}}})


def call(route, body, routes=(), claims=CLAIMS, examples=True):
    """Answer from `routes` first, else (unless examples=False) from the spec's examples."""
    with StandInVendor(list(routes) + (routes_from_examples(SPEC) if examples else [])) as stand_in:
        relay = RelayUnderTest({"ibm-xforce-exchange": SPEC}, {"ibm-xforce-exchange": stand_in.origin})
        return relay.post(f"/ibm-xforce-exchange/{route}", body, claims).get_json(), stand_in.received


def api(request) -> str:
    """The X-Force API a request called: /url/x is url, /api/resolve/x is resolve."""
    parts = request.path.split("/")
    return parts[2] if parts[1] == "api" else parts[1]


def docs(data, kind):
    return data.get(kind, {}).get("docs", [])


def test_a_domain_gets_its_risk_categories_dns_and_collections():
    result, received = call("observe/observables", [DOMAIN])
    data = result["data"]
    assert "errors" not in result
    assert validate_observe_data(data) == []
    assert [(r.path, r.query) for r in received] == [
        ("/url/login-update.example.com", ""),
        ("/api/resolve/login-update.example.com", "basicResolve=true"),
        ("/api/linkage/url/login-update.example.com", "maxpertype=20")]
    assert received[0].headers["Authorization"] == "Basic eGYta2V5OnhmLXBhc3N3b3Jk"  # xf-key:xf-password

    [verdict], [judgement] = docs(data, "verdicts"), docs(data, "judgements")
    assert (verdict["disposition_name"], judgement["disposition_name"], judgement["severity"]) == \
        ("Malicious", "Malicious", "High")  # score 7.1
    assert verdict["valid_time"] == {"start_time": "2026-11-28T12:00:00Z", "end_time": "2026-12-28T12:00:00Z"}
    assert judgement["valid_time"]["end_time"] == "2026-12-05T12:00:00Z"

    sightings = docs(data, "sightings")
    assert [s["title"] for s in sightings] == [
        "Malware", "Phishing URLs", "DNS Information",
        "Contained in Collection: Open investigations",
        "Contained in Collection: Credential phishing kit, autumn 2026"]
    assert [i["tags"] for i in docs(data, "indicators")[:2]] == [["True"], ["True"]]
    assert [r["relationship_type"] for r in docs(data, "relationships")] == \
        ["sighting-of", "sighting-of", "member-of", "member-of"]


def test_dns_lists_every_address_once_in_order():
    dns = docs(call("observe/observables", [DOMAIN])[0]["data"], "sightings")[2]
    assert dns["description"] == "IP addresses that login-update.example.com resolves to"
    assert [(r["source"]["value"], r["related"]) for r in dns["relations"]] == [
        ("login-update.example.com", {"type": "ip", "value": "192.0.2.41"}),
        ("login-update.example.com", {"type": "ip", "value": "198.51.100.17"}),
        ("login-update.example.com", {"type": "ipv6", "value": "2001:db8::41"})]


def test_collections_link_to_their_quoted_pages_and_carry_every_collection_id():
    data = call("observe/observables", [DOMAIN])[0]["data"]
    newest = docs(data, "sightings")[3]
    assert newest["internal"] is True  # a collection the user owns
    assert newest["observed_time"]["start_time"] == "2026-11-25T16:02:47.005Z"
    assert newest["source_uri"] == f"{PAGE}/collection/Open%20investigations-a1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert newest["external_ids"] == ["0f1e2d3c4b5a69788796a5b4c3d2e1f0", "a1b2c3d4e5f60718293a4b5c6d7e8f90"]
    indicator = docs(data, "indicators")[2]
    assert (indicator["title"], indicator["producer"]) == ("Open investigations", "Analyst One")


def test_an_ip_gets_a_judgement_per_scored_category():
    result, received = call("observe/observables", [IP], [
        Route("/ipr/", IP_REPORT, prefix=True), Route("/api/resolve/", IP_RESOLVE, prefix=True),
        Route("/api/linkage/", answer({"linkedEntities": []}), prefix=True)])
    data = result["data"]
    assert validate_observe_data(data) == []
    assert [r.path for r in received] == ["/ipr/203.0.113.9", "/api/resolve/203.0.113.9",
                                          "/api/linkage/ip/203.0.113.9"]
    assert docs(data, "verdicts")[0]["disposition_name"] == "Suspicious"  # score 4.3
    judgements = docs(data, "judgements")
    # "Dynamic IPs" (71 of 100) then "Spam" (43): by name; no judgement of the address as a whole.
    assert [(j["disposition_name"], j["severity"]) for j in judgements] == [("Malicious", "High"),
                                                                          ("Suspicious", "Medium")]
    assert "tags" not in docs(data, "indicators")[0]
    sighting, indicator = docs(data, "sightings")[0], docs(data, "indicators")[0]
    assert [(r["relationship_type"], r["source_ref"], r["target_ref"]) for r in docs(data, "relationships")[:2]] \
        == [("based-on", sighting["id"], judgements[0]["id"]), ("based-on", judgements[0]["id"], indicator["id"])]
    dns = docs(data, "sightings")[2]
    assert dns["description"] == "Domains that have resolved to 203.0.113.9"
    assert [(r["source"], r["related"]) for r in dns["relations"]] == [
        ({"type": "domain", "value": "host-9.example.net"}, IP),
        ({"type": "domain", "value": "www.example.org"}, IP)]


@pytest.mark.parametrize("risk, disposition, severity", [
    ("high", "Malicious", "High"), ("Medium", "Suspicious", "Medium"), (None, "Unknown", "None")])
def test_a_file_is_judged_by_its_risk_and_its_verdict_does_not_expire(risk, disposition, severity):
    result, received = call("observe/observables", [SHA256], [
        Route("/malware/", file_report(risk), prefix=True), Route("/api/linkage/", CannedAnswer(404, b"{}"), True)])
    data = result["data"]
    [verdict], [judgement] = docs(data, "verdicts"), docs(data, "judgements")
    assert (verdict["disposition_name"], judgement["severity"]) == (disposition, severity)
    assert verdict["valid_time"]["end_time"] == "2525-01-01T00:00:00Z"
    assert judgement["valid_time"]["end_time"] == "2026-12-05T12:00:00Z"
    assert [r.path for r in received] == [f"/malware/{SHA256['value']}", f"/api/linkage/malware/{SHA256['value']}"]


@pytest.mark.parametrize("limit, calls, sightings", [
    (2, ["url"], ["Malware", "Phishing URLs"]),
    (3, ["url", "resolve"], ["Malware", "Phishing URLs", "DNS Information"]),
    (4, ["url", "resolve", "linkage"],
     ["Malware", "Phishing URLs", "DNS Information", "Contained in Collection: Open investigations"]),
])
def test_the_entities_limit_is_a_budget_of_sightings_spent_in_order(limit, calls, sightings):
    result, received = call("observe/observables", [DOMAIN], claims={**CLAIMS, "CTR_ENTITIES_LIMIT": limit})
    assert [s["title"] for s in docs(result["data"], "sightings")] == sightings
    assert [api(r) for r in received] == calls


def test_x_force_knowing_nothing_is_no_error_and_the_other_lookups_still_run():
    not_found = CannedAnswer(404, b'{"error": "Not found."}')
    result, received = call("observe/observables", [DOMAIN], [Route("/", not_found, prefix=True)], examples=False)
    assert result == {"data": {}}
    assert [api(r) for r in received] == ["url", "resolve", "linkage"]
    result, _ = call("deliberate/observables", [DOMAIN], [Route("/", not_found, prefix=True)], examples=False)
    assert result == {"data": {}}


@pytest.mark.parametrize("status, code, message", [
    (401, "authorization error", "Authorization failed: Authorization failed on IBM X-Force Exchange side"),
    (403, "permission denied", "Unexpected response from IBM X-Force Exchange: Access denied."),
    (429, "too many requests", "Unexpected response from IBM X-Force Exchange: Access denied."),
    (503, "unknown", "Unexpected response from IBM X-Force Exchange: Access denied."),
])
def test_vendor_errors_become_relay_errors(status, code, message):
    failing = Route("/url/", answer({"error": "Access denied."}, status), prefix=True)
    result, received = call("deliberate/observables", [DOMAIN], [failing])
    assert result == {"errors": [{"code": code, "message": message, "type": "fatal"}]}


def test_deliberate_reads_only_the_report():
    result, received = call("deliberate/observables", [DOMAIN])
    assert list(result["data"]) == ["verdicts"]
    assert [r.path for r in received] == ["/url/login-update.example.com"]


@pytest.mark.parametrize("status, expected", [
    (200, {"data": {"status": "ok"}}),
    (401, {"errors": [{"code": "authorization error", "type": "fatal",
                       "message": "Authorization failed: Authorization failed on IBM X-Force Exchange side"}]}),
])
def test_health_reads_the_usage_of_the_subscriptions(status, expected):
    usage = example("usage.json") if status == 200 else answer({"error": "Not authorized."}, status)
    result, received = call("health", None, [Route("/all-subscriptions/usage", usage)])
    assert result == expected
    assert [r.path for r in received] == ["/all-subscriptions/usage"]


def test_refer_links_without_a_token():
    result, received = call("refer/observables", [DOMAIN, IP], claims=None)
    assert [(ref["title"], ref["url"]) for ref in result["data"]] == [
        ("Search for this domain", f"{PAGE}/url/login-update.example.com"),
        ("Search for this IP", f"{PAGE}/ip/203.0.113.9")]
    assert received == []
