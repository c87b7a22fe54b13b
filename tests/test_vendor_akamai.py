"""Akamai Network Lists end to end: the spec, the real app, a stand-in Akamai API host on loopback.

The stand-in answers with vendors/examples/akamai (written from the Network Lists API v2 docs): the
IP lists "Blocked Addresses" (holding 198.51.100.7), "Watch List" (not holding it) and Akamai's
read-only "Tor Exit Nodes". Every call must carry an EdgeGrid signature over what was sent, made
with the relay's clock and the nonces the runtime hands out; the tests sign what the stand-in
received with Akamai's algorithm (engine.serving.signing.edgegrid, checked against Akamai's test
vectors in test_signing.py) and compare.
"""
import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from engine import create_app, load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from engine.serving.runtime import Runtime
from engine.serving.signing import WireRequest, edgegrid
from tests.support.relay import NOW, RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
HOST = "akab-test0000-relay.luna.akamaiapis.net"
SECRET = "c2VjcmV0LW9mLXRoZS1hcGktY2xpZW50LTAwMDAwMDA="
CLAIMS = {"clientToken": "akab-client-token-0001", "accessToken": "akab-access-token-0001",
          "clientSecret": SECRET, "baseUrl": HOST}
SIGNING = {"client_token": CLAIMS["clientToken"], "access_token": CLAIMS["accessToken"], "client_secret": SECRET}
LISTS = "/network-list/v2/network-lists"
IP = {"type": "ip", "value": "198.51.100.7"}


@pytest.fixture(scope="module")
def akamai():
    return load_spec(ROOT / "vendors" / "akamai.yaml")


class SignedRelay(RelayUnderTest):
    """The relay under test, its runtime handing out the nonces n-1, n-2, ... in turn."""

    def __init__(self, specs, upstreams):
        super().__init__(specs, upstreams)
        counter = iter(range(1, 1000))
        self.app = create_app(specs, self.config, Runtime(clock=self.clock, new_nonce=lambda: f"n-{next(counter)}"))
        self.client = self.app.test_client()


def answer(document, status=200) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(document).encode())


def call(akamai, path, body, routes=(), **claims):
    """The relay's answer and the calls the stand-in received (hand-written routes win)."""
    with StandInVendor(list(routes) + routes_from_examples(akamai)) as stand_in:
        relay = SignedRelay({"akamai": akamai}, {"akamai": stand_in.origin})
        reply = relay.post(f"/akamai/{path}", body, {**CLAIMS, **claims}).get_json()
    return reply, stand_in.received


def trigger(action_id, network_list_id="38070_WATCHLIST", observable=IP):
    return {"action-id": action_id, "network_list_id": network_list_id,
            "observable_type": observable["type"], "observable_value": observable["value"]}


def assert_signed(received, nonce):
    """The call carries the EdgeGrid header for exactly what was sent to the configured host, at
    the relay's time, with the runtime's nonce."""
    target = received.path + (f"?{received.query}" if received.query else "")
    sent = WireRequest(received.method, f"https://{HOST}{target}", received.body)
    assert received.headers["Authorization"] == edgegrid(sent, SIGNING, NOW, nonce)["Authorization"]
    assert received.headers["Authorization"].startswith(
        "EG1-HMAC-SHA256 client_token=akab-client-token-0001;access_token=akab-access-token-0001;"
        f"timestamp=20261128T12:00:00+0000;nonce={nonce};signature=")


# ---------------------------------------------------------------------------------------- listing


def test_each_writable_list_offers_add_or_remove(akamai):
    reply, received = call(akamai, "respond/observables", [IP])
    assert reply == {"data": [
        {"id": "akamai-add-to-network-list", "title": "Add to Watch List", "description": "Add IP to Network List",
         "categories": ["Akamai"], "query-params": {"observable_type": "ip", "observable_value": "198.51.100.7",
                                                    "network_list_id": "38070_WATCHLIST"}},
        {"id": "akamai-remove-from-network-list", "title": "Remove from Blocked Addresses",
         "description": "Remove IP from Network List", "categories": ["Akamai"],
         "query-params": {"observable_type": "ip", "observable_value": "198.51.100.7",
                          "network_list_id": "38069_BLOCKEDADDRESSES"}},
    ]}  # Akamai's read-only "Tor Exit Nodes" offers nothing
    [lists] = received
    assert (lists.method, lists.path, parse_qsl(lists.query)) == \
        ("GET", LISTS, [("listType", "IP"), ("includeElements", "True")])
    assert lists.headers["Accept"] == "application/json"
    assert_signed(lists, "n-1")


def test_actions_come_in_title_order_and_a_list_without_read_only_is_writable(akamai):
    lists = {"networkLists": [
        {"uniqueId": "3_ZULU", "name": "Zulu", "type": "IP", "readOnly": False, "list": ["2001:db8::7"]},
        {"uniqueId": "2_MIKE", "name": "Mike", "type": "IP", "list": []},
        {"uniqueId": "1_ALPHA", "name": "Alpha", "type": "IP", "readOnly": False, "elementCount": 0},
        {"uniqueId": "9_AKAMAI", "name": "Akamai Managed", "type": "IP", "readOnly": True, "list": []},
    ]}
    ipv6 = {"type": "ipv6", "value": "2001:db8::7"}
    reply, _ = call(akamai, "respond/observables", [ipv6, {"type": "domain", "value": "example.com"}],
                    [Route(LISTS, answer(lists), method="GET")])
    assert [(a["title"], a["description"], a["query-params"]["network_list_id"]) for a in reply["data"]] == [
        ("Add to Alpha", "Add IPv6 to Network List", "1_ALPHA"),
        ("Add to Mike", "Add IPv6 to Network List", "2_MIKE"),
        ("Remove from Zulu", "Remove IPv6 from Network List", "3_ZULU"),
    ]


def test_the_lists_are_asked_once_for_all_addresses(akamai):
    reply, received = call(akamai, "respond/observables", [IP, {"type": "ip", "value": "192.0.2.10"}])
    assert [r.path for r in received] == [LISTS]
    # Each address's actions in turn (the original sorted the whole listing by title).
    assert [(a["title"], a["query-params"]["observable_value"]) for a in reply["data"]] == [
        ("Add to Watch List", "198.51.100.7"), ("Remove from Blocked Addresses", "198.51.100.7"),
        ("Add to Blocked Addresses", "192.0.2.10"), ("Remove from Watch List", "192.0.2.10")]


def test_other_types_get_no_actions_and_no_call(akamai):
    reply, received = call(akamai, "respond/observables", [{"type": "domain", "value": "example.com"}])
    assert reply == {"data": []} and received == []


# --------------------------------------------------------------------------------------- triggers


def test_add_puts_the_address_in_the_list_named_without_listing_again(akamai):
    reply, received = call(akamai, "respond/trigger", trigger("akamai-add-to-network-list"))
    assert reply == {"data": {"status": "success"}}
    [put] = received
    assert (put.method, put.path, parse_qsl(put.query)) == \
        ("PUT", f"{LISTS}/38070_WATCHLIST/elements", [("element", "198.51.100.7")])
    assert_signed(put, "n-1")


def test_remove_deletes_the_address_from_the_list_named(akamai):
    ipv6 = {"type": "ipv6", "value": "2001:db8::7"}
    reply, received = call(akamai, "respond/trigger",
                           trigger("akamai-remove-from-network-list", "38069_BLOCKEDADDRESSES", ipv6))
    assert reply == {"data": {"status": "success"}}
    [delete] = received
    assert (delete.method, delete.path, parse_qsl(delete.query)) == \
        ("DELETE", f"{LISTS}/38069_BLOCKEDADDRESSES/elements", [("element", "2001:db8::7")])
    assert_signed(delete, "n-1")  # signed over the query as encoded on the wire (the colons quoted)


def test_an_action_id_not_offered_calls_nothing(akamai):
    reply, received = call(akamai, "respond/trigger", trigger("akamai-block-ip"))
    assert reply == {"data": {"status": "failure"},
                     "errors": [{"code": "invalid argument", "message": "Unsupported action.", "type": "fatal"}]}
    assert received == []


def test_a_trigger_without_the_list_it_acts_on_calls_nothing(akamai):
    body = trigger("akamai-add-to-network-list")
    del body["network_list_id"]
    reply, received = call(akamai, "respond/trigger", body)
    assert reply["data"] == {"status": "failure"}
    assert [(e["code"], "network_list_id" in e["message"]) for e in reply["errors"]] == [("invalid argument", True)]
    assert received == []


# ----------------------------------------------------------------------------------------- errors

DENIED = {"type": "https://problems.luna.akamaiapis.net/-/pep-authn/deny", "title": "Not authorized",
          "status": 401, "detail": "The signature does not match", "instance": "https://example.com/x",
          "method": "GET", "requestId": "1a2b3c"}


def test_a_401_is_an_authorization_error(akamai):
    reply, _ = call(akamai, "respond/observables", [IP], [Route(LISTS, answer(DENIED, 401), method="GET")])
    assert reply == {"errors": [{"code": "authorization error", "type": "fatal",
                                 "message": "Authorization failed: The signature does not match"}]}


def test_a_refused_trigger_fails(akamai):
    conflict = {"type": "https://problems.luna.akamaiapis.net/network-lists/error-types/CONFLICT",
                "title": "Conflict", "status": 409, "detail": "The list was changed by another client."}
    route = Route(f"{LISTS}/38070_WATCHLIST/elements", answer(conflict, 409), method="PUT")
    reply, _ = call(akamai, "respond/trigger", trigger("akamai-add-to-network-list"), [route])
    assert reply == {"data": {"status": "failure"}, "errors": [
        {"code": "state conflict", "type": "fatal",
         "message": "Unexpected response from Akamai: The list was changed by another client."}]}


def test_an_answer_without_detail_is_quoted_as_text(akamai):
    route = Route(LISTS, CannedAnswer(502, b"Bad Gateway", "text/plain"), method="GET")
    reply, _ = call(akamai, "health", None, [route])
    assert reply == {"errors": [{"code": "unknown", "type": "fatal",
                                 "message": "Unexpected response from Akamai: Bad Gateway"}]}


def test_the_client_secret_never_leaves_even_when_the_vendor_echoes_it(akamai):
    echoed = {**DENIED, "detail": f"Invalid signature made with {SECRET}"}
    route = Route(f"{LISTS}/38070_WATCHLIST/elements", answer(echoed, 401), method="PUT")
    reply, received = call(akamai, "respond/trigger", trigger("akamai-add-to-network-list"), [route])
    assert SECRET not in json.dumps(reply)
    assert reply["errors"][0]["code"] == "authorization error"
    assert reply["errors"][0]["message"].startswith("Authorization failed: Invalid signature made with ")
    [put] = received
    assert SECRET not in json.dumps([put.path, put.query, put.headers, put.body.decode()])


# ----------------------------------------------------------------------------------------- health


def test_health_lists_the_lists_without_their_elements(akamai):
    reply, received = call(akamai, "health", None)
    assert reply == {"data": {"status": "ok"}}
    [probe] = received
    assert (probe.path, parse_qsl(probe.query)) == (LISTS, [("listType", "IP"), ("includeElements", "False")])
    assert_signed(probe, "n-1")
