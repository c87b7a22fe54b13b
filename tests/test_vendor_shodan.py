"""Shodan end to end: links that need no token, and a HEAD health probe against a loopback stand-in."""
from pathlib import Path

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor
from tests.support.relay import RelayUnderTest

SPEC = load_spec(Path(__file__).resolve().parent.parent / "vendors" / "shodan.yaml")


def relay(stand_in=None):
    return RelayUnderTest({"shodan": SPEC}, {"shodan": stand_in.origin} if stand_in else None)


def test_an_ip_gets_a_search_and_a_browse_link_without_any_token():
    answer = relay().post("/shodan/refer/observables", [{"type": "IP", "value": "198.51.100.23"}]).get_json()
    assert [ref["url"] for ref in answer["data"]] == ["https://www.shodan.io/search?query=198.51.100.23",
                                                      "https://www.shodan.io/host/198.51.100.23"]
    assert answer["data"][0]["title"] == "Search for this IP"


def test_a_domain_gets_a_search_link_and_values_are_quoted():
    answer = relay().post("/shodan/refer/observables", [{"type": "domain", "value": "a b/c.example"}],
                          headers={"Authorization": "Bearer not-even-a-token"}).get_json()
    [ref] = answer["data"]
    assert ref == {"id": "ref-shodan-search-domain-a%20b%2Fc.example", "title": "Search for this domain",
                   "description": "Lookup this domain on Shodan", "categories": ["Search", "Shodan"],
                   "url": "https://www.shodan.io/search?query=a%20b%2Fc.example"}


@pytest.mark.parametrize("status, expected", [
    (200, {"data": {"status": "ok"}}),
    (500, {"errors": [{"code": "internal error", "message": "The Shodan internal error occurred.",
                       "type": "fatal"}]}),
])
def test_health_is_a_head_request_to_the_site(status, expected):
    with StandInVendor([Route("/", CannedAnswer(status, b"", "text/html"))]) as stand_in:
        assert relay(stand_in).post("/shodan/health").get_json() == expected
    assert [(r.method, r.path) for r in stand_in.received] == [("HEAD", "/")]


def test_a_spec_without_a_token_cannot_require_credentials(write_spec):
    from engine.spec.load import check_file
    text = (Path(__file__).resolve().parent.parent / "vendors" / "shodan.yaml").read_text()
    path = write_spec(text.replace("name: shodan", "name: acme").replace(
        "token: none\n", "token: none\ncredentials:\n  key: {label: API key}\n"))
    spec, problems = check_file(path)
    assert spec is None
    assert any("cannot require credentials" in p.message and p.path == ("token",) for p in problems)
