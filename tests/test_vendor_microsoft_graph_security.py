"""Microsoft Graph Security end to end: the spec, the real app, a stand-in Azure AD and Graph on loopback.

The stand-in answers with vendors/examples/microsoft-graph-security (written from Microsoft's docs): a
client-credentials token living 3599 s; two alerts about malware.example.net — one from Microsoft
Defender ATP (confidence 80, high, host WS01 at 192.0.2.10 / 203.0.113.5, connection from 192.0.2.10,
file invoice.exe with its SHA-256, a portal link), one from a Palo Alto Networks NGFW (no confidence,
medium, no host, connection from 192.0.2.11); an empty alert list for the health probe.

The token endpoint and Graph are one stand-in (RELAY_UPSTREAM sends both origins there): the token
request arrives at /<tenant>/oauth2/v2.0/token, Graph's at /v1.0/security/alerts.
"""
import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from engine.ctim import validate_observe_data
from tests.support.misbehaving import MisbehavingVendor, json_answer
from tests.support.relay import RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "vendors" / "examples" / "microsoft-graph-security"
NAME = "microsoft-graph-security"
TENANT = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
SECRET = "Zx8Q~s3cret.of-the-app"
CLAIMS = {"application_id": "11111111-2222-3333-4444-555555555555", "tenant_id": TENANT, "client_secret": SECRET}
TOKEN_PATH = f"/{TENANT}/oauth2/v2.0/token"
ALERTS = "/v1.0/security/alerts"
ACCESS_TOKEN = json.loads((EXAMPLES / "token.json").read_text())["access_token"]
DOMAIN = {"type": "domain", "value": "malware.example.net"}


@pytest.fixture(scope="module")
def graph():
    return load_spec(ROOT / "vendors" / f"{NAME}.yaml")


def example(name):
    return json.loads((EXAMPLES / name).read_text())


def canned(document, status=200) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(document).encode())


def call(graph, path, body, routes=(), **claims):
    """The relay's answer and the calls the stand-in received (hand-written routes win)."""
    with StandInVendor(list(routes) + routes_from_examples(graph)) as stand_in:
        relay = RelayUnderTest({NAME: graph}, {NAME: stand_in.origin})
        reply = relay.post(f"/{NAME}/{path}", body, {**CLAIMS, **claims}).get_json()
    return reply, stand_in.received


def odata_filter(received) -> str:
    return dict(parse_qsl(received.query))["$filter"]


class Tenant:
    """Azure AD and Graph: issues tokens T1, T2, ... (each as `T<n>.access-token`, as long as a secret
    the relay redacts); Graph answers 401 (`refusal`) to a token in `refused`, `graph_answer(request)`
    to the others."""

    def __init__(self, refused=(), refusal=None, graph_answer=None):
        self.issued, self.refused = [], set(refused)
        self.refusal = refusal or example("error-401.json")
        self.graph_answer = graph_answer or (lambda request: json_answer(example("alerts.json")))

    def __call__(self, request):
        if request.path == TOKEN_PATH:
            self.issued.append(f"T{len(self.issued) + 1}")
            return json_answer({"token_type": "Bearer", "expires_in": 3599,
                                "access_token": f"{self.issued[-1]}.access-token"})
        if request.headers.get("authorization", "").removeprefix("Bearer ").split(".")[0] in self.refused:
            return json_answer(self.refusal, 401)
        return self.graph_answer(request)


def ask(graph, tenant, *observables):
    """The answer to one observe request, and the calls made for it (path, token)."""
    with MisbehavingVendor(tenant) as vendor:
        relay = RelayUnderTest({NAME: graph}, {NAME: vendor.origin})
        reply = relay.post(f"/{NAME}/observe/observables", list(observables or [DOMAIN]), CLAIMS).get_json()
    return reply, calls(vendor)


def calls(vendor):
    """(path, the token carried) of each call the stand-in received."""
    return [(r.path, r.headers.get("authorization", "").removeprefix("Bearer ").split(".")[0] or None)
            for r in vendor.requests]


# ---------------------------------------------------------------------------------------- observe


def test_observe_makes_a_sighting_per_alert(graph):
    reply, _ = call(graph, "observe/observables", [DOMAIN])
    assert "errors" not in reply
    assert validate_observe_data(reply["data"]) == []
    defender, firewall = reply["data"]["sightings"]["docs"]
    assert defender["id"].startswith("transient:sighting-")
    assert {key: defender[key] for key in ("title", "source", "sensor", "severity", "confidence", "count",
                                           "external_ids", "observables", "timestamp")} == {
        "title": "Connection to a malware distribution site", "source": "Microsoft Graph Security",
        "sensor": "endpoint", "severity": "High", "confidence": "High", "count": 1,
        "external_ids": ["da637551227677560813_-961444813"], "observables": [DOMAIN],
        "timestamp": "2026-11-27T09:12:05.7654321Z"}
    assert defender["description"].startswith("The device ws01 downloaded a file from malware.example.net")
    assert defender["observed_time"] == {"start_time": "2026-11-27T09:12:05.7654321Z",
                                         "end_time": "2026-11-27T09:12:05.7654321Z"}
    assert defender["external_references"] == [{
        "source_name": "Microsoft Defender ATP",
        "url": "https://security.microsoft.com/alerts/da637551227677560813_-961444813"}]
    assert defender["relations"] == [{"origin": "Microsoft Defender ATP", "relation": "Connected_To",
                                      "source": {"type": "ip", "value": "192.0.2.10"}, "related": DOMAIN}]
    assert defender["targets"] == [{"type": "endpoint", "observed_time": defender["observed_time"], "observables": [
        {"type": "ip", "value": "192.0.2.10"}, {"type": "ip", "value": "203.0.113.5"},
        {"type": "hostname", "value": "WS01"}, {"type": "domain", "value": "ws01.corp.example.com"}]}]
    # A Palo Alto firewall is a network sensor; no confidence reads "None"; no host, no link: empty lists.
    assert (firewall["sensor"], firewall["confidence"], firewall["severity"]) == ("network.firewall", "None", "Medium")
    assert (firewall["targets"], firewall["external_references"]) == ([], [])
    assert firewall["relations"][0]["source"] == {"type": "ip", "value": "192.0.2.11"}


def test_a_file_observable_relates_the_files_name_and_path_to_its_hash(graph):
    reply, _ = call(graph, "observe/observables", [{"type": "file_name", "value": "invoice.exe"}])
    sha256 = {"type": "sha256", "value": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
    assert reply["data"]["sightings"]["docs"][0]["relations"] == [
        {"origin": "Microsoft Defender ATP", "relation": "File_Name_Of",
         "source": {"type": "file_name", "value": "invoice.exe"}, "related": sha256},
        {"origin": "Microsoft Defender ATP", "relation": "File_Path_Of",
         "source": {"type": "file_path", "value": "C:\\Users\\alice\\Downloads\\invoice.exe"}, "related": sha256}]


@pytest.mark.parametrize("observable, expected", [
    ({"type": "domain", "value": "malware.example.net"},
     "networkConnections/any(x: x/destinationDomain eq 'malware.example.net')"),
    ({"type": "ip", "value": "192.0.2.10"},
     "networkConnections/any(x: x/sourceAddress eq '192.0.2.10' or x/destinationAddress eq '192.0.2.10')"),
    ({"type": "url", "value": "https://malware.example.net/dl?f=a b"},
     "networkConnections/any(x: x/destinationUrl eq 'https%3A%2F%2Fmalware.example.net%2Fdl%3Ff%3Da%20b')"),
    ({"type": "hostname", "value": "WS01"}, "hostStates/any(x: x/netBiosName eq 'WS01')"),
    ({"type": "file_name", "value": "invoice.exe"}, "fileStates/any(x: x/name eq 'invoice.exe')"),
    ({"type": "file_path", "value": "C:\\Users\\alice\\invoice.exe"},
     "fileStates/any(x: x/path eq 'C:\\Users\\alice\\invoice.exe')"),
    ({"type": "sha256", "value": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
     "fileStates/any(x: x/fileHash/hashValue eq 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')"),
    # A quote is doubled: the value stays one OData string literal and cannot add a clause.
    ({"type": "file_name", "value": "o'brien.exe') or true or (x/name eq 'x"},
     "fileStates/any(x: x/name eq 'o''brien.exe'') or true or (x/name eq ''x')"),
])
def test_the_odata_filter_names_the_value_by_its_type(graph, observable, expected):
    _, received = call(graph, "observe/observables", [observable], CTR_ENTITIES_LIMIT=25)
    token, alerts = received
    assert (alerts.method, alerts.path) == ("GET", ALERTS)
    assert dict(parse_qsl(alerts.query)) == {"$filter": expected, "$top": "25"}


def test_other_types_are_not_looked_up(graph):
    reply, received = call(graph, "observe/observables", [{"type": "email", "value": "alice@example.com"}])
    assert reply == {"data": {}} and received == []


def test_a_404_means_no_alerts_for_that_observable(graph):
    not_found = {"error": {"code": "ResourceNotFound", "message": "Resource not found"}}

    def graph_answer(request):
        if "nothing.example.org" in request.raw_query:
            return json_answer(not_found, 404)
        return json_answer(example("alerts.json"))

    reply, made = ask(graph, Tenant(graph_answer=graph_answer), {"type": "domain", "value": "nothing.example.org"},
                       DOMAIN)
    assert reply["data"]["sightings"]["count"] == 2 and "errors" not in reply
    assert [path for path, _ in made] == [TOKEN_PATH, ALERTS, ALERTS]

    reply, _ = ask(graph, Tenant(graph_answer=graph_answer), {"type": "domain", "value": "nothing.example.org"})
    assert reply == {"data": {}}


# --------------------------------------------------------------------------------- access tokens


def test_the_token_exchange_sends_the_client_credentials_form(graph):
    _, received = call(graph, "observe/observables", [DOMAIN])
    token, alerts = received
    # The original's GET with a form body, which the recorded cases expect (Microsoft documents POST).
    assert (token.method, token.path, token.query) == ("GET", TOKEN_PATH, "")
    assert dict(parse_qsl(token.body.decode())) == {
        "client_id": CLAIMS["application_id"], "client_secret": SECRET,
        "grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default"}
    assert token.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token.headers["User-Agent"] == "Cisco-SecureXThreatResponseMicrosoftGraphSecurity/1.0.0"
    assert "Authorization" not in token.headers and token.headers.get("Accept") != "application/json"
    assert alerts.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert (alerts.headers["Accept"], alerts.headers["Content-Type"]) == ("application/json", "application/json")


def test_one_token_serves_later_relay_requests_until_it_expires(graph):
    tenant = Tenant()
    with MisbehavingVendor(tenant) as vendor:
        relay = RelayUnderTest({NAME: graph}, {NAME: vendor.origin})
        first = relay.post(f"/{NAME}/observe/observables", [DOMAIN, {"type": "ip", "value": "192.0.2.10"}],
                           CLAIMS).get_json()
        second = relay.post(f"/{NAME}/observe/observables", [DOMAIN], CLAIMS).get_json()
        relay.clock.sleep(3599)  # the token's hour is over
        third = relay.post(f"/{NAME}/observe/observables", [DOMAIN], CLAIMS).get_json()
    assert [reply["data"]["sightings"]["count"] for reply in (first, second, third)] == [4, 2, 2]
    assert calls(vendor) == [
        (TOKEN_PATH, None), (ALERTS, "T1"), (ALERTS, "T1"),  # the first request: one exchange
        (ALERTS, "T1"),                                      # the second: none
        (TOKEN_PATH, None), (ALERTS, "T2")]                  # after expiry: a new token


def test_a_refused_token_is_renewed_once_and_the_call_made_again(graph):
    reply, made = ask(graph, Tenant(refused={"T1"}))
    assert reply["data"]["sightings"]["count"] == 2 and "errors" not in reply
    assert made == [(TOKEN_PATH, None), (ALERTS, "T1"), (TOKEN_PATH, None), (ALERTS, "T2")]


@pytest.mark.parametrize("refusal, message", [
    # Azure AD's words, as the recorded cases have them in Graph's 401.
    ({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret is provided."},
     "Authorization failed: AADSTS7000215: Invalid client secret is provided."),
    # Graph's own error object.
    (example("error-401.json"), "Authorization failed: Access token has expired or is not yet valid."),
])
def test_a_token_refused_again_is_an_authorization_error(graph, refusal, message):
    reply, made = ask(graph, Tenant(refused={"T1", "T2", "T3"}, refusal=refusal), DOMAIN,
                      {"type": "ip", "value": "192.0.2.10"})
    assert reply == {"errors": [{"code": "authorization error", "type": "fatal", "message": message}]}
    # Renewed once only; the error stops the next observable.
    assert made == [(TOKEN_PATH, None), (ALERTS, "T1"), (TOKEN_PATH, None), (ALERTS, "T2")]


def test_a_refused_exchange_is_answered_with_azure_ads_description(graph):
    def tenant(request):
        return json_answer(example("token-error-401.json"), 401)

    reply, made = ask(graph, tenant, DOMAIN, {"type": "ip", "value": "192.0.2.10"})
    assert reply["errors"][0]["code"] == "authorization error"
    assert reply["errors"][0]["message"].startswith("Authorization failed: AADSTS7000215: Invalid client secret provided.")
    assert [path for path, _ in made] == [TOKEN_PATH]  # Graph is never called without a token


def test_the_secret_and_the_token_never_reach_the_answer(graph):
    def graph_answer(request):  # an error that repeats what it was sent
        carried = request.headers["authorization"]
        return json_answer({"error": {"code": "BadRequest",
                                      "message": f"Invalid filter; request carried {carried} for {SECRET}"}}, 400)

    reply, _ = ask(graph, Tenant(graph_answer=graph_answer))
    assert reply == {"errors": [{"code": "invalid argument", "type": "fatal", "message":
                                 "Unexpected response from Microsoft Graph Security: "
                                 "Invalid filter; request carried Bearer <redacted> for <redacted>"}]}
    assert "T1.access-token" not in json.dumps(reply) and SECRET not in json.dumps(reply)


# ---------------------------------------------------------------------------------- vendor errors


@pytest.mark.parametrize("status, body, expected", [
    (403, {"error": {"code": "Forbidden", "message": "Insufficient privileges to complete the operation."}},
     {"code": "permission denied",
      "message": "Unexpected response from Microsoft Graph Security: Insufficient privileges to complete the operation."}),
    (429, {"error": {"code": "TooManyRequests", "message": "Too many requests."}},
     {"code": "too many requests",
      "message": "Too many requests to Microsoft Graph Security have been made. Please try again later."}),
    (500, {"error": {"code": "InternalServerError", "message": "An internal server error occurred."}},
     {"code": "unknown", "message": "Unexpected response from Microsoft Graph Security: An internal server error occurred."}),
    (503, {}, {"code": "service unavailable", "message": "Service temporarily unavailable. Please try again later."}),
])
def test_graph_errors_become_relay_errors(graph, status, body, expected):
    failing = Route(ALERTS, canned(body, status), method="GET")
    reply, _ = call(graph, "observe/observables", [DOMAIN], [failing])
    assert reply == {"errors": [{**expected, "type": "fatal"}]}


def test_an_error_stops_the_next_observables_but_keeps_what_was_found(graph):
    def graph_answer(request):
        if "192.0.2.99" in request.raw_query:
            return json_answer({}, 503)
        return json_answer(example("alerts.json"))

    reply, made = ask(graph, Tenant(graph_answer=graph_answer), DOMAIN, {"type": "ip", "value": "192.0.2.99"},
                       {"type": "ip", "value": "192.0.2.10"})
    assert reply["data"]["sightings"]["count"] == 2
    assert reply["errors"] == [{"code": "service unavailable", "type": "fatal",
                                "message": "Service temporarily unavailable. Please try again later."}]
    assert [path for path, _ in made].count(ALERTS) == 2  # the third observable is not looked up


# ----------------------------------------------------------------------------------------- health


def test_health_asks_for_no_alert_with_a_fresh_token(graph):
    reply, received = call(graph, "health", None)
    assert reply == {"data": {"status": "ok"}}
    assert [(r.method, r.path) for r in received] == [("GET", TOKEN_PATH), ("GET", ALERTS)]
    assert dict(parse_qsl(received[1].query)) == {"$top": "0"}

    refused = Route(ALERTS, canned(example("error-401.json"), 401), method="GET")
    reply, received = call(graph, "health", None, [refused])
    assert reply == {"errors": [{"code": "authorization error", "type": "fatal",
                                 "message": "Authorization failed: Access token has expired or is not yet valid."}]}
    assert [r.path for r in received] == [TOKEN_PATH, ALERTS, TOKEN_PATH, ALERTS]


def test_a_token_without_the_client_secret_is_refused_before_any_call(graph):
    claims = {key: value for key, value in CLAIMS.items() if key != "client_secret"}
    with StandInVendor(routes_from_examples(graph)) as stand_in:
        relay = RelayUnderTest({NAME: graph}, {NAME: stand_in.origin})
        reply = relay.post(f"/{NAME}/observe/observables", [DOMAIN], claims).get_json()
    assert reply == {"errors": [{"code": "authorization error", "type": "fatal",
                                 "message": "Authorization failed: Wrong JWT payload structure"}]}
    assert stand_in.received == []
