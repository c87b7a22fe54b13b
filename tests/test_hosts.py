"""Requests go only to the hosts a spec declares: observable values cannot steer them elsewhere.

A relay request's observables come from whatever an analyst investigates (an e-mail, a web page),
so their values are hostile input. Wherever a spec puts a value into a call — the path, the query,
right after the host, the whole URL, a header — the call keeps the spec's scheme, host and port
(or is refused with a relay error); a path value stays one path segment; redirects to other hosts
are not followed (tests/test_faults.py); and `relay lint` refuses plain-http origins unless the
spec says `allow_plain_http: true`.

The property tests send through a recording transport (no network): what they check is the URL
requests would really put on the wire, after its own parsing and normalisation.
"""
from __future__ import annotations

import io
from urllib.parse import quote, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.commands.cli import main as relay_command
from engine.errors import SpecErrors
from engine.spec.load import check_file, load_spec
from tests.support.misbehaving import MisbehavingVendor, RelayAgainst, json_answer

HOST = "api.acme.test"
HOSTILE = ["..", ".", "../", "/", "\\", "@", "#", "?", ":", "%", "%2e", "%2E%2e", "%2F", "%00", "\r", "\n", "\r\n",
           "\t", " ", "&", "=", "+", ";", ",", "~", "evil.test", HOST, "https://", "http://", "//", ":443", ":8080",
           "[::1]", "user:pass@", "é", "€", "\u3002", "\uff0e", "\u2025", "\u202e", "\ufeff", "\x00", "\x7f", "𝔢",
           "Host: evil.test", "X-Injected: 1"]
VALUES = st.one_of(
    st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=6).map("".join),
    st.text(min_size=1, max_size=30),
    st.sampled_from(["..", ".", "../../admin", "@evil.test", "#frag", "?q=1", "\r\nHost: evil.test",
                     "évil", "https://evil.test/", f"https://{HOST}@evil.test/", f"https://{HOST}#@evil.test",
                     f"https://{HOST}\\@evil.test", ".evil.test", f"{HOST}.evil.test", ":8443/x"]),
)
FUZZ = settings(max_examples=150, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Where a spec may put the value, each as one step (the rest of the spec is SPEC below).
STEPS = {
    "path": 'url: "/ip/{{ observable.value }}/details"',
    "query": 'url: /search\n    query: {q: "{{ observable.value }}"}',
    "after-host": f'url: "https://{HOST}{{{{ observable.value }}}}"',
    "whole-url": 'url: "{{ observable.value }}"',
    "path-with-url-safe": 'url: "/user/{{ observable.value }}/info"\n    url_safe: "@:/"',
    "header": 'url: /lookup\n    headers: {X-Query: "{{ observable.value }}"}',
    "json-body": 'url: /lookup\n    method: POST\n    json: {q: "{{ observable.value }}"}',
}
SPEC = """
spec_version: 1
name: {name}
title: Acme
version: 1.0.0
credentials:
  key: {{label: API key}}
observable_types: [ip, url]
http:
  base_url: https://{host}/v1
  auth:
    headers: {{X-Key: "{{{{ credentials.key }}}}"}}
steps:
  lookup:
    {step}
deliberate:
  steps: [lookup]
  verdicts: [{{observable: "{{{{ observable }}}}", disposition: 1, valid_time: {{}}}}]
"""


class Recorder(requests.adapters.BaseAdapter):
    """A transport that records each prepared request and answers 200 {} without any network."""

    def __init__(self):
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.sent.append(request)
        response = requests.Response()
        response.status_code, response.reason, response.url, response.request = 200, "OK", request.url, request
        response.headers["Content-Type"] = "application/json"
        response.raw = io.BytesIO(b"{}")
        return response

    def close(self):
        pass


@pytest.fixture(scope="module")
def relays(tmp_path_factory):
    """One relay per step shape, each with its own recording transport."""
    folder = tmp_path_factory.mktemp("host-specs")
    built = {}
    for shape, step in STEPS.items():
        name = "acme-" + shape
        path = folder / f"{name}.yaml"
        path.write_text(SPEC.format(name=name, host=HOST, step=step))
        recorder, session = Recorder(), requests.Session()
        session.trust_env = False
        session.mount("https://", recorder)
        session.mount("http://", recorder)
        built[shape] = (name, RelayAgainst({name: load_spec(path)}, session=session), recorder)
    return built


def send(relays, shape: str, value: str):
    name, relay, recorder = relays[shape]
    recorder.sent.clear()
    response = relay.post(name, "deliberate/observables", [{"type": "url", "value": value}])
    assert response.status_code == 200, response.get_data()[:300]
    return response.get_json(), list(recorder.sent)


def assert_on_the_declared_host(sent: list, shape: str) -> None:
    for request in sent:
        parts = urlsplit(request.url)
        assert (parts.scheme, parts.hostname, parts.port, parts.username) == ("https", HOST, None, None), request.url
        if shape != "whole-url":  # a whole-URL template chooses any path of the origin: that is what it says
            assert parts.path.startswith("/v1/"), request.url


@pytest.mark.parametrize("shape", list(STEPS))
@FUZZ
@given(value=VALUES)
def test_a_value_never_changes_scheme_host_or_port(relays, shape, value):
    answer, sent = send(relays, shape, value)
    assert_on_the_declared_host(sent, shape)
    if not sent:  # refused: a relay error says so (invalid input, or the call it would not make)
        assert answer["errors"][0]["code"] in ("invalid argument", "unknown", "connection error"), answer


@FUZZ
@given(value=VALUES)
def test_a_value_in_the_path_is_exactly_one_segment(relays, value):
    answer, sent = send(relays, "path", value)
    if value.strip() in (".", "..") and sent == []:
        return
    if "errors" in answer:  # not a valid observable value (blank, lone surrogate...): nothing is sent
        assert sent == [] and answer["errors"][0]["code"] == "invalid argument", answer
        return
    (request,) = sent
    assert urlsplit(request.url).path == "/v1/ip/" + quote(value, safe="") + "/details"


@pytest.mark.parametrize("value", [".", "..", "%2e%2e", "%2E."])
def test_a_value_that_is_a_dot_segment_is_refused_not_sent(relays, value):
    """HTTP clients remove dot segments: /v1/ip/../details would be sent as /v1/details."""
    answer, sent = send(relays, "path", value)
    if value.startswith("%"):  # percent signs are encoded: %252e%252e is no dot segment
        assert urlsplit(sent[0].url).path == "/v1/ip/" + quote(value, safe="") + "/details"
        return
    assert sent == []
    assert answer["errors"][0]["code"] == "unknown"
    assert "'..' segment" in answer["errors"][0]["message"]


@pytest.mark.parametrize(("value", "query"), [
    ("1.2.3.4&key=stolen", "q=1.2.3.4%26key%3Dstolen"),
    ("a#b?c", "q=a%23b%3Fc"),
    ("\r\nX-Injected: 1", "q=%0D%0AX-Injected%3A+1"),
    ("é€", "q=%C3%A9%E2%82%AC"),
])
def test_a_value_in_the_query_is_one_parameter(relays, value, query):
    _, (request,) = send(relays, "query", value)
    assert urlsplit(request.url).query == query


@pytest.mark.parametrize("value", ["https://evil.test/x", f"https://{HOST}@evil.test/", "HTTPS://evil.test/x",
                                   f"https://{HOST}:8443/x", f"http://{HOST}/x", f"https://{HOST}.evil.test/"])
def test_a_whole_url_template_cannot_leave_the_declared_origin(relays, value):
    answer, sent = send(relays, "whole-url", value)
    assert sent == []
    assert answer["errors"][0]["code"] == "unknown" and "is not a declared origin" in answer["errors"][0]["message"]


@pytest.mark.parametrize(("value", "url"), [
    (f"https://{HOST}/v1/ip/1.2.3.4", f"https://{HOST}/v1/ip/1.2.3.4"),
    ("//evil.test/x", f"https://{HOST}/v1//evil.test/x"),  # a value starting with / is a path under base_url
])
def test_a_whole_url_template_may_name_the_declared_origin(relays, value, url):
    _, (request,) = send(relays, "whole-url", value)
    assert request.url == url


# ------------------------------------------------------------------------------------ on the wire

@pytest.fixture(scope="module")
def wire_relays(tmp_path_factory):
    """The same specs against a real loopback server, to see what arrives there byte for byte."""
    folder = tmp_path_factory.mktemp("wire-specs")
    vendor = MisbehavingVendor(json_answer({"disposition": 1})).start()
    built = {}
    for shape in ("path", "query", "header"):
        name = "wire-" + shape
        path = folder / f"{name}.yaml"
        path.write_text(SPEC.format(name=name, host=HOST, step=STEPS[shape]))
        built[shape] = (name, RelayAgainst({name: load_spec(path)}, {name: vendor.origin}))
    yield vendor, built
    vendor.stop()


@pytest.mark.parametrize("shape", ["path", "query", "header"])
@pytest.mark.parametrize("value", ["x\r\nX-Injected: 1", "x\nX-Injected: 1", "x\rX-Injected: 1",
                                   "x\r\n\r\nGET /admin HTTP/1.1", "x\x00y", "é", "€"])
def test_no_value_splits_a_request_or_adds_a_header(wire_relays, shape, value, caplog):
    vendor, built = wire_relays
    name, relay = built[shape]
    vendor.requests.clear()
    answer = relay.ask(name, "deliberate/observables", [{"type": "ip", "value": value}])

    assert all("x-injected" not in request.headers for request in vendor.requests)
    assert all(request.path.startswith("/v1/") for request in vendor.requests)
    assert len(vendor.requests) <= 1
    if shape == "header" and vendor.requests:
        assert vendor.requests[0].headers["x-query"] == value.encode("utf-8").decode("latin-1") or \
            vendor.requests[0].headers["x-query"] == value
    if not vendor.requests:  # a header value HTTP cannot carry: this observable's error, nothing sent
        assert shape == "header" and answer["errors"] == [{
            "code": "invalid argument", "type": "fatal",
            "message": "Acme cannot be asked about this observable: a header would hold a character HTTP cannot carry"}]
    assert not [record for record in caplog.records if record.exc_info]


def test_the_upstream_override_keeps_the_operators_origin_whatever_the_value(wire_relays):
    vendor, built = wire_relays
    name, relay = built["path"]
    vendor.requests.clear()
    relay.ask(name, "deliberate/observables", [{"type": "ip", "value": "@evil.test:1/x"}])
    (request,) = vendor.requests
    assert request.headers["host"] == vendor.origin.split("://")[1]
    assert request.path == "/v1/ip/%40evil.test%3A1%2Fx/details"


# ------------------------------------------------------------------------------------ lint

LINTED = """
spec_version: 1
name: {name}
title: Acme
version: 1.0.0
observable_types: [ip]
http:
  base_url: {base}
{more}
steps:
  lookup: {{url: "{url}"}}
deliberate:
  steps: [lookup]
  verdicts: [{{observable: "{{{{ observable }}}}", disposition: 1, valid_time: {{}}}}]
"""


@pytest.mark.parametrize(("base", "more", "url", "problem"), [
    ("http://api.acme.test", "", "/ip", "http.base_url: 'http://api.acme.test' is plain http"),
    ("https://api.acme.test", "  other_origins: [http://files.acme.test]", "/ip",
     "http.other_origins[0]: 'http://files.acme.test' is plain http"),
    ("https://api.acme.test", "", "http://api.acme.test/ip", "steps.lookup.url: http://api.acme.test is not a declared"),
    ("https://api.acme.test", "", "https://evil.test/ip", "steps.lookup.url: https://evil.test is not a declared"),
], ids=["plain-base-url", "plain-other-origin", "plain-step-url", "undeclared-step-origin"])
def test_lint_refuses_plain_http_and_undeclared_origins(tmp_path, capsys, base, more, url, problem):
    path = tmp_path / "acme.yaml"
    path.write_text(LINTED.format(name="acme", base=base, more=more, url=url))

    assert relay_command(["lint", str(path)]) == 1
    assert problem in capsys.readouterr().out
    with pytest.raises(SpecErrors):  # and the relay refuses to load it: such a spec is never served
        load_spec(path)


def test_lint_accepts_plain_http_when_the_spec_says_so(tmp_path, capsys):
    path = tmp_path / "acme.yaml"
    path.write_text(LINTED.format(name="acme", base="http://api.acme.test", url="/ip",
                                  more="  allow_plain_http: true\n  other_origins: [http://files.acme.test]"))

    assert relay_command(["lint", str(path)]) == 0
    assert load_spec(path).http.allow_plain_http is True


# ------------------------------------------------------------------------------------ addresses

def address_fault(url: str, **client):
    from engine.serving.transport import new_session
    from engine.serving.vendor_http import VendorClient, VendorRequest
    return VendorClient(new_session(), **client).send(VendorRequest("GET", url), 2.0)


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/iam/security-credentials/",
                                 "http://[fd00:ec2::254]/latest/meta-data/", "http://169.254.170.2/v2/credentials",
                                 "http://[::ffff:169.254.169.254]/", "http://0.0.0.0:9/"])
@pytest.mark.parametrize("client", [{}, {"private_ok": True}, {"upstream": "http://169.254.169.254"}],
                         ids=["public", "private-network", "upstream"])
def test_metadata_and_link_local_addresses_are_never_reached(url, client):
    """Found by the attack run: a spec naming 169.254.169.254 was connected to (on Lambda it hands
    out the function's own AWS credentials). Refused before any packet, whatever allows what."""
    fault = address_fault(url, **client)
    assert fault.kind == "address", fault
    assert "never connects to" in fault.message


def test_a_name_resolving_to_loopback_is_refused_unless_private_addresses_are_allowed():
    with MisbehavingVendor(json_answer({"ok": True})) as vendor:
        url = f"http://localhost:{vendor.port}/x"
        refused = address_fault(url)
        reached = address_fault(url, private_ok=True)
    assert refused.kind == "address" and "private or loopback" in refused.message
    assert reached.status == 200 and len(vendor.requests) == 1


def appliance_spec(tmp_path, origin: str) -> object:
    """A spec for an appliance on the operator's network: its base URL is the loopback vendor."""
    text = SPEC.format(name="appliance", host=origin.split("://")[1], step=STEPS["query"]).replace(
        "https://", "http://").replace("http:\n", "http:\n  allow_plain_http: true\n  private_network: true\n")
    path = tmp_path / "appliance.yaml"
    path.write_text(text)
    return load_spec(path)


@pytest.mark.parametrize(("operator_allows", "reached"), [
    (("appliance",), True), (("*",), True), ((), False), (("other",), False),
])
def test_a_vendor_on_a_private_network_needs_the_spec_and_the_operator(tmp_path, operator_allows, reached):
    with MisbehavingVendor(json_answer({"disposition": 1})) as vendor:
        spec = appliance_spec(tmp_path, vendor.origin)
        relay = RelayAgainst({"appliance": spec}, {}, private_vendors=frozenset(operator_allows))
        answer = relay.ask("appliance", "deliberate/observables", [{"type": "ip", "value": "192.0.2.1"}])
    assert bool(vendor.requests) == reached
    if reached:
        assert answer["data"]["verdicts"]["count"] == 1
    else:
        assert answer["errors"][0]["code"] == "unknown"
        assert "resolves to a private or loopback address" in answer["errors"][0]["message"]


def test_lint_refuses_a_private_origin_that_the_spec_does_not_declare_private(tmp_path):
    text = SPEC.format(name="appliance", host="10.1.2.3", step=STEPS["query"])
    path = tmp_path / "appliance.yaml"
    path.write_text(text)
    _, problems = check_file(path)
    assert [p.message for p in problems if p.severity == "error"] == ["10.1.2.3 is a loopback or private address"]
    path.write_text(text.replace("http:\n", "http:\n  private_network: true\n"))
    _, problems = check_file(path)
    assert [p for p in problems if p.severity == "error"] == []


@pytest.mark.parametrize("key", [" leading-blank", "k\u00e9y-with-a-letter", "key\r\nX-Injected: 1", "key\x00"])
def test_a_key_that_cannot_go_in_a_header_is_an_authorization_error_before_any_call(wire_relays, key):
    """Found by the attack run: it answered "connection error" and failed the request at random."""
    vendor, built = wire_relays
    name, relay = built["header"]
    vendor.requests.clear()
    answer = relay.ask(name, "deliberate/observables", [{"type": "ip", "value": "192.0.2.1"},
                                                       {"type": "ip", "value": "192.0.2.2"}], key=key)
    assert vendor.requests == []
    assert answer == {"errors": [{"code": "authorization error", "type": "fatal", "message": (
        "Authorization failed: the credentials cannot be sent to Acme: they hold a character an HTTP header "
        "cannot carry (a blank before the key, a line break, a non-ASCII letter?)")}]}


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_the_relay_refuses_to_start_with_a_guessable_secret_key(secret, monkeypatch, capsys, tmp_path):
    from engine.serving.config import ConfigError, RelayConfig
    if secret:
        with pytest.raises(ConfigError, match="use at least 32"):
            RelayConfig.from_environ({"SECRET_KEY": secret})
    with pytest.raises(ConfigError):
        RelayConfig.from_environ({"SECRET_KEY": secret, "RELAY_AUTH": "hs256"})
    monkeypatch.setenv("SECRET_KEY", secret or "tiny")
    monkeypatch.setenv("RELAY_AUTH", "hs256")
    assert relay_command(["serve", "--port", "1"]) == 1
    assert "relay: SECRET_KEY" in capsys.readouterr().err
