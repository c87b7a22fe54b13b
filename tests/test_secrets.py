"""Secrets: the vendor credentials and SECRET_KEY never appear in logs, relay answers, `relay try`
traces or exception texts.

An error-heavy run drives every kind of failure through the real app — refused connections,
TLS failures, timeouts, slow drips, redirects, rate limits, vendors that echo the request (URL,
query, key) back in their error pages, a spec whose mapping fails on a credential, an engine crash
whose exception quotes the URL, bad tokens, bad input — with the key in a header, in the query
and in the path, and with every log record captured at DEBUG (the relay's and every library's).
Then the captured text and every answer are searched for the key in each form it may take
(as is, and percent-encoded), for SECRET_KEY, and for the tokens that carried the key.
"""
from __future__ import annotations

import base64
import dataclasses
import html
import json
import logging
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import pytest
import requests

from engine import load_spec
from engine.commands.cli import main as relay_command
from engine.serving.config import RelayConfig
from engine.serving.vendor_http import VendorClient, VendorRequest
from tests.support.misbehaving import (
    API_KEY, SECRET_KEY, Answer, Close, Drip, Hang, MisbehavingVendor, RelayAgainst, closed_port, json_answer,
    loopback_session, make_certificate, redirect, server_context,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "vendors" / "examples" / "abuseipdb"
CHECK = (EXAMPLES / "check.json").read_bytes()
CATEGORIES = (EXAMPLES / "categories.html").read_bytes()
ABUSEIPDB = load_spec(ROOT / "vendors" / "abuseipdb.yaml")
FAST = dataclasses.replace(ABUSEIPDB, http=dataclasses.replace(ABUSEIPDB.http, timeout=0.5))
SECRET_FORMS = sorted({API_KEY, quote(API_KEY, safe=""), quote_plus(API_KEY), SECRET_KEY}, key=len)

# The key in the query, in the path, and a mapping that fails on it; the error rules show the
# vendor's own text (fault messages, bodies), as a spec author may well write them.
SPEC = """
spec_version: 1
name: {name}
title: Acme
version: 1.0.0
credentials:
  key: {{label: API key}}
observable_types: [ip]
http:
  base_url: https://api.acme.test/v1
  timeout: 0.5
{auth}
  errors:
    - when: {{fault: any}}
      error: {{code: unknown, message: "Acme failed: {{{{ fault.message }}}}"}}
    - when: {{status: "4xx"}}
      error: {{code: authorization error, message: "Acme refused: {{{{ body }}}}"}}
    - when: {{status: "5xx"}}
      error: {{code: unknown, message: "Acme is down: {{{{ body }}}}"}}
steps:
  lookup:
    url: "{url}"
    query: {{q: "{{{{ observable.value }}}}"}}
deliberate:
  steps: [lookup]
  verdicts:
    - observable: "{{{{ observable }}}}"
      disposition: "{{{{ lookup.disposition }}}}"
      valid_time: {{start_time: "{valid_from}"}}
"""
ACME = {
    "acme-query": {"auth": '  auth:\n    query: {apikey: "{{ credentials.key }}"}', "url": "/ip",
                   "valid_from": "{{ format_time(now(), 'iso') }}"},
    "acme-path": {"auth": "", "url": "/keys/{{ credentials.key }}/ip", "valid_from": "{{ format_time(now(), 'iso') }}"},
    # A spec mistake: it reads the credential as a time, so the failure's text quotes the credential.
    "acme-mistake": {"auth": '  auth:\n    headers: {X-Key: "{{ credentials.key }}"}', "url": "/ip",
                     "valid_from": "{{ time_add(credentials.key, 'P1D') }}"},
}


def echo(status: int):
    """A vendor error page quoting the request back: target, query and key header included."""
    def plan(request):
        quoted = f"{request.method} {request.path}?{urlencode(request.query)} key={request.headers.get('key', '')}"
        if request.path == "/categories":
            return Answer(200, CATEGORIES, content_type="text/html")
        if status == 200:
            return Answer(200, f"<html>{quoted}</html>".encode(), content_type="text/html")  # not JSON
        return json_answer({"errors": [{"detail": f"Invalid request {quoted}"}], "echo": quoted}, status)
    return plan


def well_behaved(request):
    if request.path == "/categories":
        return Answer(200, CATEGORIES, content_type="text/html")
    return Answer(200, CHECK) if request.path.endswith("/check") else json_answer({"disposition": 2})


class Exploding(requests.adapters.BaseAdapter):
    """A transport failing in a way the engine does not expect, its error quoting the whole URL."""

    def send(self, request, **kwargs):
        raise RuntimeError(f"transport exploded while sending {request.url} with {dict(request.headers)}")

    def close(self):
        pass


def leaks(text: str) -> list:
    return [form for form in SECRET_FORMS if form in text]


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("secret-specs")
    for name, parts in ACME.items():
        (folder / f"{name}.yaml").write_text(SPEC.format(name=name, **parts))
    return {"abuseipdb": FAST, **{name: load_spec(folder / f"{name}.yaml") for name in ACME}}, folder


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    return server_context(*make_certificate(tmp_path_factory.mktemp("self-signed")))


def error_heavy_run(specs: dict, self_signed) -> tuple[list, list]:
    """Every fault against every spec; returns (answers as text, tokens used)."""
    answers, tokens = [], []
    behaviours = [echo(401), echo(403), echo(429), echo(500), echo(200), Hang(), Drip(CHECK, 0.05, 1),
                  Close(reset=True), lambda request: redirect(f"http://127.0.0.1:{closed_port()}/x?{urlencode(request.query)}"),
                  well_behaved]
    observables = [{"type": "ip", "value": "192.0.2.45"}, {"type": "ip", "value": "198.51.100.7"}]

    def run(relay, name, tls=False):
        for route in ("deliberate/observables", "observe/observables", "health"):
            if route != "deliberate/observables" and name != "abuseipdb":
                continue
            response = relay.post(name, route, observables)
            assert response.status_code == 200
            answers.append(response.get_data(as_text=True) + json.dumps(dict(response.headers)))
            tokens.append(relay.token(name))

    for name in specs:
        for behaviour in behaviours:
            with MisbehavingVendor(behaviour) as vendor:
                run(RelayAgainst(specs, {name: vendor.origin}), name)
        with MisbehavingVendor(Answer(200, CHECK), tls=self_signed) as vendor:  # TLS the relay cannot verify
            run(RelayAgainst(specs, {name: vendor.origin}), name)
        run(RelayAgainst(specs, {name: f"http://127.0.0.1:{closed_port()}"}), name)  # refused
        exploding = requests.Session()
        exploding.mount("http://", Exploding())
        exploding.mount("https://", Exploding())
        run(RelayAgainst(specs, {name: "http://127.0.0.1:9"}, session=exploding), name)  # an engine crash
    relay = RelayAgainst(specs, {})
    for name in specs:  # refused before any vendor call: bad tokens (carrying the key), bad input
        for token in (relay.token(name, exp=1), relay.token(name, aud="http://elsewhere"),
                      relay.token(name)[:-4] + "AAAA"):
            tokens.append(token)
            answers.append(relay.post(name, "deliberate/observables", observables, token=token).get_data(as_text=True))
        answers.append(relay.post(name, "deliberate/observables", raw=b"not json " + API_KEY.encode()).get_data(
            as_text=True).replace(API_KEY, "<echoed input>"))  # the client's own input may be echoed: not a leak
    return answers, tokens


def test_no_secret_in_any_log_record_or_answer_of_an_error_heavy_run(specs, self_signed, caplog):
    caplog.set_level(logging.DEBUG)  # the relay's and every library's records, at their most verbose
    answers, tokens = error_heavy_run(specs[0], self_signed)

    records = [logging.Formatter("%(levelname)s %(name)s %(message)s").format(r) for r in caplog.records]
    logged = "\n".join(records) + caplog.text
    assert len(caplog.records) > 100 and "Traceback" in logged  # the run did fail a lot, the crash included
    assert "<redacted>" in logged  # ... and secrets were on their way into the log
    assert leaks(logged) == []
    assert [token for token in set(tokens) if token in logged] == []
    assert leaks("\n".join(answers)) == []
    assert [token for token in set(tokens) if token in "\n".join(answers)] == []


def test_a_vendor_echoing_the_key_is_answered_with_the_key_cut_out(specs):
    with MisbehavingVendor(echo(401)) as vendor:
        answer = RelayAgainst(specs[0], {"abuseipdb": vendor.origin}).ask(
            "abuseipdb", "deliberate/observables", [{"type": "ip", "value": "192.0.2.45"}])
    (error,) = answer["errors"]
    assert error["code"] == "authorization error"
    assert error["message"].startswith("Authorization failed: Invalid request GET /api/v2/check?")
    assert "key=<redacted>" in error["message"] and leaks(error["message"]) == []


@pytest.mark.parametrize("name", ["acme-query", "acme-path"])
def test_fault_messages_never_carry_the_url(specs, name):
    """A refused connection's text quotes the URL (and the key in its query or path) in requests."""
    answer = RelayAgainst(specs[0], {name: f"http://127.0.0.1:{closed_port()}"}).ask(
        name, "deliberate/observables", [{"type": "ip", "value": "192.0.2.45"}])
    (error,) = answer["errors"]
    assert error["message"] == "Acme failed: [Errno 111] Connection refused"


# ------------------------------------------------------------------------------------ exceptions

def test_vendor_faults_name_the_cause_not_the_url(self_signed):
    params = (("q", "1.2.3.4"), ("apikey", API_KEY))
    client = VendorClient(loopback_session(), private_ok=True)
    faults = [client.send(VendorRequest("GET", f"http://127.0.0.1:{closed_port()}/keys/{quote(API_KEY, safe='')}/x",
                                        params), 1.0)]
    with MisbehavingVendor(Answer(200, b"{}"), tls=self_signed) as vendor:
        faults.append(client.send(VendorRequest("GET", vendor.origin + "/x", params), 1.0))
    with MisbehavingVendor(on_connect=b"HTTP/1.1 400 Bad\r\n\r\n") as vendor:
        faults.append(client.send(VendorRequest("GET", vendor.origin.replace("http:", "https:") + "/x", params), 1.0))
    with MisbehavingVendor(Close(reset=True)) as vendor:
        faults.append(client.send(VendorRequest("GET", vendor.origin + "/x", params), 1.0))
    faults.append(client.send(VendorRequest("GET", "http://127.0.0.1:9/x", params,
                                            {"Key": API_KEY + "\r\nX-Injected: 1"}), 1.0))

    assert [fault.kind for fault in faults] == ["connection", "ssl", "ssl", "connection", "connection"]
    assert [leaks(repr(fault)) for fault in faults] == [[]] * len(faults)
    assert all("/x" not in fault.message and "?" not in fault.message for fault in faults)


def test_library_debug_lines_never_quote_a_request_target(caplog):
    """Outside a relay request too (e.g. `relay try`), urllib3's debug lines name no path or query."""
    caplog.set_level(logging.DEBUG)
    with MisbehavingVendor(json_answer({})) as vendor:
        VendorClient(loopback_session(), private_ok=True).send(
            VendorRequest("GET", f"{vendor.origin}/keys/{quote(API_KEY, safe='')}/x", (("apikey", API_KEY),)), 2.0)
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("urllib3")]
    assert any('"GET <target> HTTP/1.1" 200' in line for line in lines), lines
    assert leaks("\n".join(lines)) == []


def test_reprs_that_reach_tracebacks_hold_no_secret():
    request = VendorRequest("POST", "https://api.acme.test/x", (("apikey", API_KEY),), {"Key": API_KEY},
                            {"key": API_KEY}, (("key", API_KEY),))
    assert leaks(repr(request)) == []
    assert leaks(repr(RelayConfig(auth_mode="hs256", secret_key=SECRET_KEY))) == []


def test_relay_errors_from_authorization_never_quote_the_token(specs):
    relay = RelayAgainst(specs[0], {})
    for token in (relay.token("abuseipdb", exp=1), relay.token("abuseipdb")[:-4] + "AAAA", "x" + API_KEY):
        answer = relay.ask("abuseipdb", "deliberate/observables", [{"type": "ip", "value": "192.0.2.45"}], token=token)
        assert answer["errors"][0]["code"] == "authorization error"
        assert token not in json.dumps(answer) and leaks(json.dumps(answer)) == []


# ------------------------------------------------------------------------------------ relay try

def relay_try(specs_folder, vendor: str, upstream: str, *arguments, monkeypatch, capsys) -> str:
    monkeypatch.setenv("RELAY_UPSTREAM_" + vendor.upper().replace("-", "_"), upstream)
    monkeypatch.setenv("SECRET_KEY", SECRET_KEY)
    relay_command(["try", vendor, "ip", "192.0.2.45", "--endpoint", "deliberate", "--vendors", str(specs_folder),
                   "--claim", f"key={API_KEY}", "--color", "never", *arguments])
    captured = capsys.readouterr()
    return captured.out + captured.err


@pytest.fixture
def catalogue(specs, tmp_path):
    """The test specs and AbuseIPDB in one folder, as `relay try --vendors` reads them."""
    folder = specs[1]
    (folder / "abuseipdb.yaml").write_text((ROOT / "vendors" / "abuseipdb.yaml").read_text())
    examples = folder / "examples" / "abuseipdb"
    examples.mkdir(parents=True, exist_ok=True)
    for file in EXAMPLES.iterdir():
        (examples / file.name).write_bytes(file.read_bytes())
    return folder


@pytest.mark.parametrize("arguments", [(), ("--json",)], ids=["text", "json"])
@pytest.mark.parametrize("behaviour", [echo(401), echo(500), Close(reset=True), well_behaved],
                         ids=["401-echo", "500-echo", "reset", "answers"])
def test_relay_try_traces_hold_no_secret_with_the_key_in_a_header(catalogue, behaviour, arguments, monkeypatch,
                                                                   capsys, tmp_path):
    with MisbehavingVendor(behaviour) as vendor:
        output = relay_try(catalogue, "abuseipdb", vendor.origin, *arguments, "--record", str(tmp_path),
                           monkeypatch=monkeypatch, capsys=capsys)
    recorded = "".join(path.read_text() for path in tmp_path.rglob("*.json"))
    assert "GET " in output or '"method"' in output  # the trace is there
    assert leaks(output) == [] and leaks(recorded) == []


@pytest.mark.parametrize("vendor_name", ["acme-query", "acme-path"])
def test_relay_try_traces_hold_no_secret_with_the_key_in_the_url(catalogue, vendor_name, monkeypatch, capsys,
                                                                  tmp_path):
    """Found here: the trace redacted a key as written, not as percent-encoded into the URL."""
    with MisbehavingVendor(json_answer({"disposition": 2})) as vendor:
        output = relay_try(catalogue, vendor_name, vendor.origin, "--record", str(tmp_path),
                           monkeypatch=monkeypatch, capsys=capsys)
    recorded = "".join(path.read_text() for path in tmp_path.rglob("*.json"))
    assert "GET " in output
    assert leaks(output) == [] and leaks(recorded) == []


# ------------------------------------------------------------------------------------ echoes in any spelling

# Characters that JSON, HTML, URLs and letter case all spell differently.
ECHO_KEY = 'Ab"c\\d/é+=&<k3y>-5f0e2d9c'
ECHO_SPEC = r"""
spec_version: 1
name: acme-echo
title: Acme
version: 1.0.0
credentials:
  key: {label: API key}
observable_types: [ip]
http:
  base_url: https://api.acme.test/v1
  auth:
    query: {apikey: "{{ credentials.key }}"}
  errors:
    - when: {status: 503}
      error:
        code: "{{ lower(reason) }}"
        message: "{{ upper(reason) }} {{ headers.\"x-echo\" }} {{ to_string(body) }}"
steps:
  lookup:
    url: /ip
    query: {q: "{{ observable.value }}"}
    result: "{body: body, header: headers.\"X-Echo\", reason: reason}"
observe:
  steps: [lookup]
  sightings:
    - count: 1
      confidence: High
      internal: false
      observed_time: {start_time: "2026-01-01T00:00:00Z"}
      observables: ["{{ observable }}"]
      title: "{{ upper(lookup.header) }}"
      description: "{{ lookup.body.url }}"
      short_description: "{{ base64(lookup.body.key) }}"
      source: "{{ to_string(lookup.body) }}"
      source_uri: "{{ lookup.body.html }}"
      external_ids: ["{{ lower(lookup.body.key) }}", "{{ url_quote(lookup.body.key) }}", "{{ lookup.reason }}",
                     "{{ base64(concat('Basic:', lookup.body.key)) }}"]
"""


def every_spelling(secret: str) -> set:
    """The secret as a vendor, a library or a template may spell it: written here independently of
    the engine's redaction, so the test does not grade the engine with its own list."""
    encoded = secret.encode()
    forms = {secret, secret.upper(), secret.lower(), quote(secret, safe=""), quote_plus(secret), quote(secret),
             json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], html.escape(secret),
             secret.encode().decode("latin-1")}  # UTF-8 bytes read as Latin-1: a header or reason phrase
    for filler in range(3):  # the key inside a longer base64 value, at each of the three alignments
        text = base64.b64encode(b"x" * filler + encoded).decode()
        inner = text[(filler * 8 + 5) // 6:(filler + len(encoded)) * 8 // 6]
        forms |= {inner, inner.replace("+", "-").replace("/", "_")}
    return forms


def spelled(text: str, secret: str = ECHO_KEY) -> list:
    return sorted(form for form in every_spelling(secret) if form.lower() in text.lower())


def echoing_vendor(status: int):
    """Echoes the key (from the query) in its reason phrase, a header and a JSON body of URLs, HTML
    and raw text: the worst a vendor's error page or debug answer does."""
    def plan(request):
        key = request.param("apikey", "")
        body = {"url": f"https://api.acme.test{request.path}?{urlencode(request.query)}", "key": key,
                "html": f"<p>key={html.escape(key)}</p>"}
        return json_answer(body, status, headers={"X-Echo": key.encode().decode("latin-1")},
                           reason=f"Unavailable Bearer {key}".encode().decode("latin-1"))
    return plan


@pytest.fixture(scope="module")
def echo_spec(tmp_path_factory):
    folder = tmp_path_factory.mktemp("echo")
    (folder / "acme-echo.yaml").write_text(ECHO_SPEC)
    return load_spec(folder / "acme-echo.yaml"), folder


@pytest.mark.parametrize("status", [200, 503])
def test_a_key_echoed_in_any_spelling_reaches_no_answer_and_no_log(echo_spec, status, caplog):
    """Found by the attack run: redaction covered error messages only, by exact-case match, so a
    lower-cased reason became an error `code` holding the key, and CTIM data quoted the vendor's echo."""
    caplog.set_level(logging.DEBUG)
    with MisbehavingVendor(echoing_vendor(status)) as vendor:
        relay = RelayAgainst({"acme-echo": echo_spec[0]}, {"acme-echo": vendor.origin})
        response = relay.post("acme-echo", "observe/observables", [{"type": "ip", "value": "192.0.2.45"}],
                              key=ECHO_KEY)
    assert vendor.requests and vendor.requests[0].param("apikey") == ECHO_KEY  # the key did travel, and came back
    answer = response.get_json()
    shown = response.get_data(as_text=True) + json.dumps(answer, ensure_ascii=False)
    if status == 200:
        assert answer["data"]["sightings"]["docs"][0]["title"].startswith("<REDACTED>") or \
            "<redacted>" in answer["data"]["sightings"]["docs"][0]["title"].lower()
    else:
        assert answer["errors"][0]["code"] == "unavailable bearer <redacted>"
    assert spelled(shown) == []
    assert spelled(caplog.text + "\n".join(record.getMessage() for record in caplog.records)) == []


@pytest.mark.parametrize("status", [200, 503])
@pytest.mark.parametrize("arguments", [(), ("--json",)], ids=["text", "json"])
def test_a_key_echoed_in_any_spelling_reaches_no_relay_try_trace(echo_spec, status, arguments, monkeypatch, capsys):
    with MisbehavingVendor(echoing_vendor(status)) as vendor:
        monkeypatch.setenv("RELAY_UPSTREAM_ACME_ECHO", vendor.origin)
        relay_command(["try", "acme-echo", "ip", "192.0.2.45", "--vendors", str(echo_spec[1]),
                       "--claim", f"key={ECHO_KEY}", "--color", "never", *arguments])
    captured = capsys.readouterr()
    assert "/ip" in captured.out and spelled(captured.out + captured.err) == []


def test_the_spellings_cover_what_the_echo_test_sends():
    """Guards the test: every form the echo spec produces is among the spellings searched for."""
    key = ECHO_KEY
    produced = [key.upper(), key.lower(), quote(key, safe=""), base64.b64encode(key.encode()).decode().rstrip("="),
                json.dumps(key)[1:-1], html.escape(key), quote_plus(key)]
    assert all(spelled(f"[{form}]") for form in produced)
    assert spelled(base64.b64encode(b"Basic:" + key.encode()).decode())


@pytest.mark.parametrize("logger", ["werkzeug", "zappa.wsgi"])
def test_request_lines_are_logged_without_their_query(logger, caplog):
    from engine.serving.redaction import REQUEST_LINES_WITHOUT_QUERY
    REQUEST_LINES_WITHOUT_QUERY.install()
    caplog.set_level(logging.INFO, logger=logger)
    logging.getLogger(logger).info('%s - - [%s] "%s" %s -', "127.0.0.1", "04/Dec/2026 12:00:00",
                                   f"POST /abuseipdb/health?jwt=eyJ.{API_KEY} HTTP/1.1", 200)
    assert '"POST /abuseipdb/health HTTP/1.1" 200' in caplog.text and API_KEY not in caplog.text
