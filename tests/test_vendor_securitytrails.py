"""SecurityTrails end to end: the spec, the real app, a stand-in SecurityTrails on loopback.

The stand-in answers with vendors/examples/securitytrails (written from SecurityTrails' API docs):
www.example.com's A history holds 192.0.2.10, 192.0.2.11 and 198.51.100.20 (192.0.2.10 twice), its
AAAA history 2001:db8::10; the domain search for 192.0.2.10 finds www.example.com, mail.example.com
and example.net. The relay's clock reads 2026-11-28T12:00:00Z.
"""
import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from engine import load_spec
from engine.ctim import validate_observe_data
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.relay import RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "vendors" / "securitytrails.yaml")
EXAMPLES = ROOT / "vendors" / "examples" / "securitytrails"
DOMAIN = [{"type": "domain", "value": "www.example.com"}]
IP = [{"type": "ip", "value": "192.0.2.10"}]
CLAIMS = {"key": "st-key"}
NOW = "2026-11-28T12:00:00Z"
A_PATH, AAAA_PATH = "/v1/history/www.example.com/dns/a", "/v1/history/www.example.com/dns/aaaa"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def canned(body, status=200, content_type="application/json") -> CannedAnswer:
    return CannedAnswer(status, (body if isinstance(body, str) else json.dumps(body)).encode(), content_type)


def history(*addresses, pages=1, kind="a/ipv4") -> dict:
    field = "ipv6" if kind.endswith("v6") else "ip"
    return {"type": kind, "records": [{"values": [{field: a} for a in addresses], "type": kind.split("/")[0]}],
            "pages": pages}


def search(*hostnames, record_count=None, max_page=1, total_pages=None) -> dict:
    return {"records": [{"hostname": h} for h in hostnames], "record_count": record_count or len(hostnames),
            "meta": {"page": 1, "max_page": max_page, "total_pages": total_pages or max_page}}


def on_page(path: str, page: int, body: dict) -> Route:
    return Route(path, canned(body), query=(("page", str(page)),))


# Both history calls share one example answer (a step has one), so the AAAA history is given here.
AAAA = Route(AAAA_PATH, canned(example("history-aaaa.json")))


def ask(route, body=DOMAIN, routes=(AAAA,), claims=CLAIMS, **settings):
    with StandInVendor(list(routes) + routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"securitytrails": SPEC}, {"securitytrails": stand_in.origin})
        got = relay.post(f"/securitytrails/{route}", body, None if claims is None else {**claims, **settings})
        return got.get_json(), stand_in.received


def observe(body=DOMAIN, routes=(AAAA,), **settings):
    return ask("observe/observables", body, routes, **settings)


def sightings(answer):
    return answer["data"]["sightings"]["docs"]


def resolutions(sighting):
    return [(r["source"]["value"], r["related"]["type"], r["related"]["value"]) for r in sighting["relations"]]


def test_a_domain_gets_a_sighting_of_its_ipv4_and_one_of_its_ipv6_addresses():
    answer, received = observe()
    assert "errors" not in answer
    assert validate_observe_data(answer["data"]) == []
    ipv4, ipv6 = sightings(answer)
    assert (ipv4["count"], ipv4["description"]) == (3, "IPv4 addresses that www.example.com resolves to")
    assert resolutions(ipv4) == [("www.example.com", "ip", "192.0.2.10"), ("www.example.com", "ip", "192.0.2.11"),
                                 ("www.example.com", "ip", "198.51.100.20")]
    assert (ipv6["count"], ipv6["description"]) == (1, "IPv6 addresses that www.example.com resolves to")
    assert resolutions(ipv6) == [("www.example.com", "ipv6", "2001:db8::10")]
    for sighting in (ipv4, ipv6):
        assert sighting["observables"] == DOMAIN
        assert sighting["observed_time"] == {"start_time": NOW, "end_time": NOW}
        assert sighting["source_uri"] == "https://securitytrails.com/domain/www.example.com/dns"
        assert sighting["id"].startswith("transient:sighting-")
        assert (sighting["title"], sighting["confidence"]) == ("Found in SecurityTrails", "High")
    assert [(r.method, r.path, r.query) for r in received] == [("GET", A_PATH, "page=1"), ("GET", AAAA_PATH, "page=1")]
    assert (received[0].headers["APIKEY"], received[0].headers["Accept"]) == ("st-key", "application/json")


@pytest.mark.parametrize("observable, filter_name", [(IP[0], "ipv4"), ({"type": "ipv6", "value": "2001:db8::10"}, "ipv6")])
def test_an_address_gets_a_sighting_of_the_domains_that_resolve_to_it(observable, filter_name):
    found = search("www.example.com", "mail.example.com", "example.net", record_count=2750, max_page=100, total_pages=28)
    answer, received = observe([observable], [Route("/v1/domains/list", canned(found))])
    assert validate_observe_data(answer["data"]) == []
    [sighting] = sightings(answer)
    assert sighting["count"] == 2750  # SecurityTrails' own count, not the records of the page read
    assert sighting["description"] == f"Domains that have resolved to {observable['value']}"
    assert [(r["source"], r["related"]) for r in sighting["relations"]] == [
        ({"type": "domain", "value": v}, observable) for v in ("example.net", "mail.example.com", "www.example.com")]
    assert sighting["source_uri"] == f"https://securitytrails.com/list/ip/{observable['value']}"
    [call] = received  # one page: the default
    assert (call.method, call.path, call.query) == ("POST", "/v1/domains/list", "page=1")
    assert json.loads(call.body) == {"filter": {filter_name: observable["value"]}}


def test_more_pages_are_read_when_the_settings_ask_and_their_records_join():
    routes = [on_page(A_PATH, 1, history("192.0.2.10", pages=4)), on_page(A_PATH, 2, history("192.0.2.99", "192.0.2.10", pages=4)),
              on_page(A_PATH, 3, history("198.51.100.7", pages=4)), AAAA]
    answer, received = observe(routes=routes, NUMBER_OF_PAGES=3)
    ipv4 = sightings(answer)[0]
    assert ipv4["count"] == 3
    assert [value for _, _, value in resolutions(ipv4)] == ["192.0.2.10", "192.0.2.99", "198.51.100.7"]
    assert [(r.path, r.query) for r in received] == [(A_PATH, "page=1"), (A_PATH, "page=2"), (A_PATH, "page=3"),
                                                     (AAAA_PATH, "page=1")]


@pytest.mark.parametrize("settings", [{}, {"NUMBER_OF_PAGES": 1}, {"NUMBER_OF_PAGES": -2}, {"NUMBER_OF_PAGES": "many"}])
def test_one_page_is_read_unless_asked_for_more(settings):
    routes = [on_page(A_PATH, 1, history("192.0.2.10", pages=20)), AAAA]
    _, received = observe(routes=routes, **settings)
    assert [(r.path, r.query) for r in received] == [(A_PATH, "page=1"), (AAAA_PATH, "page=1")]


@pytest.mark.parametrize("settings", [{"NUMBER_OF_PAGES": 0}, {"GET_ALL_PAGES": True}, {"GET_ALL_PAGES": "true"}])
def test_all_pages_are_read_until_the_last_or_an_empty_one(settings):
    routes = [on_page(A_PATH, 1, history("192.0.2.1", pages=9)), on_page(A_PATH, 2, history("192.0.2.2", pages=9)),
              on_page(A_PATH, 3, {"type": "a/ipv4", "records": [], "pages": 9}), AAAA]
    answer, received = observe(routes=routes, **settings)
    assert [value for _, _, value in resolutions(sightings(answer)[0])] == ["192.0.2.1", "192.0.2.2"]
    assert [r.query for r in received if r.path == A_PATH] == ["page=1", "page=2", "page=3"]
    assert "errors" not in answer


def test_a_search_that_has_more_pages_than_securitytrails_serves_warns():
    first = search("www.example.com", record_count=408, max_page=2, total_pages=5)
    routes = [on_page("/v1/domains/list", 1, first), on_page("/v1/domains/list", 2, search("mail.example.com"))]
    answer, received = observe(IP, routes, GET_ALL_PAGES=True)
    assert [r.query for r in received] == ["page=1", "page=2"]
    [sighting] = sightings(answer)
    assert (sighting["count"], len(sighting["relations"])) == (408, 2)
    assert answer["errors"] == [{"type": "warning", "code": "unprocessed pages",
                                 "message": "There are 3 page(s) left unprocessed for 192.0.2.10. "
                                            "Please contact support@securitytrails.com to download the data"}]
    # Fewer pages asked than SecurityTrails serves: nothing is left out that was wanted.
    answer, _ = observe(IP, routes, NUMBER_OF_PAGES=1)
    assert "errors" not in answer


def test_an_invalid_domain_answers_nothing_but_the_other_history_still_counts():
    invalid = canned("The requested domain is invalid", 400, "text/plain")
    answer, received = observe(routes=[Route(A_PATH, invalid), AAAA])
    [ipv6] = sightings(answer)
    assert ipv6["description"] == "IPv6 addresses that www.example.com resolves to"
    assert [r.path for r in received] == [A_PATH, AAAA_PATH]
    nothing, _ = observe(routes=[Route(A_PATH, invalid), Route(AAAA_PATH, canned("Not found", 404, "text/plain"))])
    assert nothing == {"data": {}}


@pytest.mark.parametrize("status, body, expected", [
    (403, '{"message": "Invalid authentication credentials"}',
     {"code": "authorization error", "message": "Authorization failed: Invalid authentication credentials"}),
    (401, '{"message": "Unauthorized"}',
     {"code": "unauthorized", "message": 'Unexpected response from SecurityTrails: {"message": "Unauthorized"}'}),
    (429, '{"message": "You\'ve exceeded the usage limits for your account."}',
     {"code": "too many requests",
      "message": 'Unexpected response from SecurityTrails: {"message": "You\'ve exceeded the usage limits for your account."}'}),
    (500, "Internal Server Error", {"code": "unknown", "message": "Unexpected response from SecurityTrails: Internal Server Error"}),
])
def test_vendor_errors_become_relay_errors(status, body, expected):
    answer, received = observe(routes=[Route(A_PATH, canned(body, status))])
    assert answer == {"errors": [{**expected, "type": "fatal"}]}
    assert [r.path for r in received] == [A_PATH]  # the error ends the lookup: AAAA is not asked


def test_observables_are_asked_in_order_and_an_error_keeps_what_was_found_before():
    body = IP + [{"type": "domain", "value": "locked.example.org"}, {"type": "ip", "value": "198.51.100.1"}]
    locked = canned('{"message": "Invalid authentication credentials"}', 403)
    answer, received = observe(body, [Route("/v1/history/locked.example.org/dns/a", locked)])
    assert [r.path for r in received] == ["/v1/domains/list", "/v1/history/locked.example.org/dns/a"]
    assert sightings(answer)[0]["observables"] == IP
    assert answer["errors"] == [{"type": "fatal", "code": "authorization error",
                                     "message": "Authorization failed: Invalid authentication credentials"}]


def test_observe_needs_the_key_even_for_types_it_does_not_look_up():
    for body in (DOMAIN, [{"type": "sha256", "value": "0" * 64}]):
        answer, received = ask("observe/observables", body, claims={"NUMBER_OF_PAGES": 2})
        assert answer["errors"][0]["message"] == "Authorization failed: Wrong JWT payload structure"
        assert received == []


def test_refer_links_to_the_securitytrails_site_without_a_token():
    body = DOMAIN + [{"type": "ipv6", "value": "2001:db8::10"}, {"type": "sha256", "value": "0" * 64}]
    answer, received = ask("refer/observables", body, claims=None)
    assert answer == {"data": [
        {"id": "ref-securitytrails-search-domain-www.example.com", "title": "Search for this domain",
         "description": "Lookup this domain on SecurityTrails",
         "url": "https://securitytrails.com/domain/www.example.com/dns", "categories": ["Search", "SecurityTrails"]},
        {"id": "ref-securitytrails-search-ipv6-2001:db8::10", "title": "Search for this IPv6",
         "description": "Lookup this IPv6 on SecurityTrails",
         "url": "https://securitytrails.com/list/ip/2001:db8::10", "categories": ["Search", "SecurityTrails"]}]}
    assert received == []


@pytest.mark.parametrize("ping, expected", [
    (None, {"data": {"status": "ok"}}),
    (canned('{"message": "Invalid authentication credentials"}', 403),
     {"errors": [{"code": "authorization error", "type": "fatal",
                  "message": "Authorization failed: Invalid authentication credentials"}]}),
])
def test_health_pings_securitytrails(ping, expected):
    answer, received = ask("health", None, [Route("/v1/ping", ping)] if ping else [])
    assert answer == expected
    [call] = received
    assert (call.path, parse_qs(call.query), call.headers["APIKEY"]) == ("/v1/ping", {"page": ["1"]}, "st-key")
