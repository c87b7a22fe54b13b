"""urlscan.io end to end: the spec, the real app, a stand-in urlscan.io on loopback.

The stand-in answers with vendors/examples/urlscanio (written from urlscan.io's API docs): a search
for http://login.example.com/account/verify finds two scans, listed oldest first — 5f0c2a4e
(2026-11-20, page at 192.0.2.10) and 9b3e7d10 (2026-11-24, page at 2001:db8::10) — and every
/result answer is one phishing verdict (tags phishing, credential-harvesting). Tests that need the
two scans to differ give each /result its own answer.
"""
import json
from pathlib import Path

import pytest

from engine import load_spec
from engine.ctim import validate_observe_data
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.relay import RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "vendors" / "urlscanio.yaml")
EXAMPLES = ROOT / "vendors" / "examples" / "urlscanio"
URL = {"type": "url", "value": "http://login.example.com/account/verify"}
IP = {"type": "ip", "value": "192.0.2.10"}
OLDER, NEWER = "5f0c2a4e-1b7d-4c39-9e8a-2d6f41a7b301", "9b3e7d10-6a2c-4f85-b0c4-7e1d5a9f2c68"
CLAIMS = {"key": "urlscan-test-key"}
ACTION_ID = "respond-urlscan-action-url-http%3A%2F%2Flogin.example.com%2Faccount%2Fverify"
PHISHING_INDICATOR = "transient:indicator-344f10f2-89cc-5bbb-9176-726345d25538"  # uuid5('phishing')


def example(name: str):
    return json.loads((EXAMPLES / name).read_text())


def answer(status: int, body=None) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(body).encode() if body is not None else b"")


def result_of(scan_id: str, malicious=True, categories=("phishing",), tags=("phishing",)) -> Route:
    """/result/<scan_id> answering a verdict of its own."""
    result = example("result.json")
    result["task"].update(uuid=scan_id, reportURL=f"https://urlscan.io/result/{scan_id}/")
    result["verdicts"]["overall"].update(malicious=malicious, categories=list(categories), tags=list(tags))
    return Route(f"/api/v1/result/{scan_id}", answer(200, result))


def ask(route: str, body=(URL,), routes=(), claims=CLAIMS):
    """The relay's answer to POST /urlscanio/<route>, and the calls the stand-in received."""
    with StandInVendor(list(routes) + routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"urlscanio": SPEC}, {"urlscanio": stand_in.origin})
        reply = relay.post(f"/urlscanio/{route}", list(body) if isinstance(body, tuple) else body, claims)
        return reply.get_json(), stand_in.received


# ------------------------------------------------------------------------------------ /observe

def test_every_scan_is_a_sighting_and_a_malicious_one_a_judgement():
    reply, received = ask("observe/observables")
    assert "errors" not in reply
    data = reply["data"]
    assert validate_observe_data(data) == []
    assert {key: value["count"] for key, value in data.items()} == \
        {"sightings": 2, "judgements": 2, "indicators": 1, "relationships": 2}

    sightings = data["sightings"]["docs"]
    assert [s["external_ids"] for s in sightings] == [[NEWER], [OLDER]]  # newest first
    newer = sightings[0]
    assert newer["observables"] == [URL]
    assert newer["source_uri"] == f"https://urlscan.io/result/{NEWER}"
    assert newer["observed_time"] == {"start_time": "2026-11-24T17:02:09.884000Z",
                                      "end_time": "2026-11-24T17:02:09.884000Z"}
    assert newer["data"] == {
        "columns": [{"name": name, "type": "integer"}
                    for name in ["uniqIPs", "uniqCountries", "dataLength", "encodedDataLength", "requests"]],
        "rows": [[1, 1, 51007, 16430, 11]]}
    # the page's address is typed by its IP version
    assert [(r["relation"], r["source"]["type"], r["related"]) for r in newer["relations"]] == [
        ("Contains", "url", {"type": "domain", "value": "login.example.com"}),
        ("Resolved_To", "domain", {"type": "ipv6", "value": "2001:db8::10"}),
        ("Hosted_By", "url", {"type": "ipv6", "value": "2001:db8::10"})]
    assert sightings[1]["relations"][1]["related"] == {"type": "ip", "value": "192.0.2.10"}

    judgement = data["judgements"]["docs"][0]
    assert (judgement["disposition"], judgement["disposition_name"], judgement["reason"]) == \
        (2, "Malicious", "phishing, credential-harvesting")
    assert judgement["valid_time"] == {"start_time": "2026-11-24T17:02:09.884000Z",
                                       "end_time": "2026-12-01T17:02:09.884000Z"}
    assert [ref["description"] for ref in judgement["external_references"]] == ["domURL", "screenshotURL", "reportURL"]

    # one call for the search, one per scan for its verdict
    assert [call.path for call in received] == \
        ["/api/v1/search", f"/api/v1/result/{NEWER}", f"/api/v1/result/{OLDER}"]
    assert received[0].query == "q=page.url.keyword%3A%22http%3A%2F%2Flogin.example.com%2Faccount%2Fverify%22"
    assert received[0].headers["API-Key"] == "urlscan-test-key"


def test_one_indicator_per_category_indicating_every_sighting_of_it():
    """Both scans are phishing: one phishing indicator (tagged as the newest scan), two links."""
    routes = [result_of(NEWER, categories=["phishing", "banking"], tags=["phishing", "newest"]),
              result_of(OLDER, categories=["phishing"], tags=["phishing", "older"])]
    data = ask("observe/observables", routes=routes)[0]["data"]
    assert validate_observe_data(data) == []
    indicators = data["indicators"]["docs"]
    assert [(i["title"], i["tags"]) for i in indicators] == \
        [("phishing", ["phishing", "newest"]), ("banking", ["phishing", "newest"])]
    assert indicators[0]["id"] == PHISHING_INDICATOR
    assert indicators[0]["description"] == "\u0421lassified as phishing"  # the relay's Cyrillic С
    sighting = {s["external_ids"][0]: s["id"] for s in data["sightings"]["docs"]}
    by_title = {i["title"]: i["id"] for i in indicators}
    assert [(r["relationship_type"], r["source_ref"], r["target_ref"]) for r in data["relationships"]["docs"]] == [
        ("indicates", by_title["phishing"], sighting[NEWER]),
        ("indicates", by_title["banking"], sighting[NEWER]),
        ("indicates", by_title["phishing"], sighting[OLDER])]


def test_a_scan_not_judged_malicious_is_a_sighting_only():
    data = ask("observe/observables", routes=[result_of(NEWER, malicious=False, categories=[]),
                                              result_of(OLDER)])[0]["data"]
    assert data["sightings"]["count"] == 2
    assert data["judgements"]["count"] == 1
    assert data["judgements"]["docs"][0]["source_uri"] == f"https://urlscan.io/result/{OLDER}/"
    assert [r["target_ref"] for r in data["relationships"]["docs"]] == [data["sightings"]["docs"][1]["id"]]


def test_the_entities_limit_keeps_the_newest_scans_and_reads_only_their_verdicts():
    reply, received = ask("observe/observables", claims={**CLAIMS, "CTR_ENTITIES_LIMIT": 1})
    assert [s["external_ids"] for s in reply["data"]["sightings"]["docs"]] == [[NEWER]]
    assert [call.path for call in received] == ["/api/v1/search", f"/api/v1/result/{NEWER}"]


def test_a_scan_urlscan_cannot_show_keeps_its_sighting():
    reply, _ = ask("observe/observables", routes=[Route(f"/api/v1/result/{NEWER}", answer(400, {"status": 400}))])
    assert "errors" not in reply
    assert reply["data"]["sightings"]["count"] == 2
    assert [j["source_uri"] for j in reply["data"]["judgements"]["docs"]] == [f"https://urlscan.io/result/{NEWER}/"]
    assert reply["data"]["judgements"]["count"] == 1  # the older scan's verdict only


def test_no_scans_and_unsearchable_values_mean_no_data():
    empty = Route("/api/v1/search", answer(200, example("probe.json")))
    assert ask("observe/observables", routes=[empty])[0] == {"data": {}}
    refused = Route("/api/v1/search", answer(400, {"message": "DNS Error", "status": 400}))
    assert ask("observe/observables", routes=[refused])[0] == {"data": {}}


@pytest.mark.parametrize("status, expected", [
    (401, {"code": "permission denied", "message": "The request is missing a valid API key."}),
    (429, {"code": "too many requests", "message": "Too many requests have been made to URLScan. Please, try again later."}),
    (500, {"code": "internal error", "message": "The URLScan internal error."}),
    (503, {"code": "service unavailable", "message": "The urlscan.io is unavailable. Please, try again later."}),
])
def test_vendor_errors_become_relay_errors(status, expected):
    reply, _ = ask("observe/observables", routes=[Route("/api/v1/search", answer(status))])
    assert reply == {"errors": [{**expected, "type": "fatal"}]}


def test_an_error_stops_the_observables_after_it_and_keeps_what_was_found():
    routes = [Route("/api/v1/search", answer(429)),
              Route("/api/v1/search", answer(200, example("search.json")), query=(("q", 'page.url.keyword:"%s"' % URL["value"]),))]
    reply, received = ask("observe/observables", body=[URL, IP, {"type": "domain", "value": "example.com"}], routes=routes)
    assert reply["errors"] == [{"code": "too many requests", "type": "fatal",
                                "message": "Too many requests have been made to URLScan. Please, try again later."}]
    assert reply["data"]["sightings"]["count"] == 2
    assert [call.path for call in received].count("/api/v1/search") == 2  # the domain was never asked about


# ------------------------------------------------------------------------------------ /refer

def test_refer_links_urlscan_pages_only_when_it_has_scans():
    reply, _ = ask("refer/observables", body=[IP])
    assert reply == {"data": [
        {"id": "ref-urlscan-browse-ip-192.0.2.10", "title": "Browse ip",
         "description": "Check this ip status with urlscan.io", "url": "https://urlscan.io/ip/192.0.2.10",
         "categories": ["Browse", "urlscan.io"]},
        {"id": "ref-urlscan-search-ip-192.0.2.10", "title": "Search for this ip",
         "description": "Check this ip status with urlscan.io", "url": 'https://urlscan.io/search/#ip:"192.0.2.10"',
         "categories": ["Search", "urlscan.io"]}]}
    [link] = ask("refer/observables")[0]["data"]  # a URL has no browse page
    assert link["url"] == 'https://urlscan.io/search/#"http://login.example.com/account/verify"'
    empty = Route("/api/v1/search", answer(200, example("probe.json")))
    assert ask("refer/observables", routes=[empty])[0] == {"data": []}


# ------------------------------------------------------------------------------------ /respond

def test_the_scan_action_is_offered_for_urls_without_a_token_or_a_call():
    reply, received = ask("respond/observables", body=[URL, IP, {"type": "domain", "value": "example.com"}],
                          claims=None)
    assert reply == {"data": [{
        "id": ACTION_ID, "title": "Make Scan in urlscan.io", "description": "Makes a request to scan this observable",
        "categories": ["urlscan.io", "Scan"],
        "query-params": {"observable_type": "url", "observable_value": URL["value"]}}]}
    assert received == []


def trigger(action_id=ACTION_ID, observable=URL, routes=()):
    form = {"action-id": action_id, "observable_type": observable["type"], "observable_value": observable["value"]}
    return ask("respond/trigger", body=form, routes=routes)


@pytest.mark.parametrize("action_id", [ACTION_ID, "test-action-id"])  # the original never read the id
def test_a_trigger_submits_the_url_for_a_public_scan(action_id):
    reply, received = trigger(action_id)
    assert reply == {"data": {"status": "success"}}
    [call] = received
    assert (call.method, call.path) == ("POST", "/api/v1/scan")
    assert json.loads(call.body) == {"url": URL["value"], "public": "on"}
    assert call.headers["API-Key"] == "urlscan-test-key"


@pytest.mark.parametrize("status, expected", [
    (400, {"code": "bad request",
           "message": "You sent weird url. Please check the correctness of your url and try again."}),
    (429, {"code": "too many requests", "message": "Too many requests have been made to URLScan. Please, try again later."}),
    (401, {"code": "permission denied", "message": "The request is missing a valid API key."}),
])
def test_a_failed_scan_answers_its_error_alone(status, expected):
    refused = Route("/api/v1/scan", answer(status, {"message": "Scan prevented", "status": status}))
    reply, received = trigger(routes=[refused])
    assert reply == {"errors": [{**expected, "type": "fatal"}]}
    assert len(received) == 1


def test_only_urls_are_scanned():
    reply, received = trigger(observable=IP)
    assert reply["errors"][0]["code"] == "invalid request"
    assert "data" not in reply
    assert received == []


# ------------------------------------------------------------------------------------ /health

def test_health_searches_once():
    reply, received = ask("health", body=None)
    assert reply == {"data": {"status": "ok"}}
    [call] = received
    assert (call.path, call.query) == ("/api/v1/search", "q=page.ip%3A%221.1.1.1%22")


def test_health_reports_a_refused_key():
    reply, _ = ask("health", body=None, routes=[Route("/api/v1/search", answer(401))])
    assert reply == {"errors": [{"code": "permission denied", "message": "The request is missing a valid API key.",
                                 "type": "fatal"}]}
