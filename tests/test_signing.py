"""Signed requests (`http.auth.sign`): a named scheme signs each call as it goes on the wire.

EdgeGrid is checked against Akamai's published test vectors (the EdgeGrid clients' shared test
data: fixed tokens, secret, timestamp and nonce), then end to end: what the stand-in received is
what was signed, the time and nonce come from the runtime, and the secret never leaves.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import unquote

import pytest

from engine import create_app, load_spec
from engine.commands.lint import lint_paths
from engine.commands.tokens import mint_hs256
from engine.serving.config import RelayConfig
from engine.serving.runtime import FrozenClock, Runtime
from engine.serving.signing import SCHEMES, WireRequest, edgegrid
from tests.support.misbehaving import SECRET_KEY, MisbehavingVendor, json_answer, loopback_session
from tests.support.relay import NOW

# Akamai's EdgeGrid test data (the values every EdgeGrid client library tests against).
VECTOR = {"client_token": "akab-client-token-xxx-xxxxxxxxxxxxxxxx",
          "access_token": "akab-access-token-xxx-xxxxxxxxxxxxxxxx", "client_secret": "x" * 43 + "="}
VECTOR_HOST = "https://akaa-baseurl-xxxxxxxxxxx-xxxxxxxxxxxxx.luna.akamaiapis.net"
VECTOR_TIME = datetime(2014, 3, 21, 19, 34, 21, tzinfo=timezone.utc)
VECTOR_NONCE = "nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
VECTOR_PREFIX = ("EG1-HMAC-SHA256 client_token=akab-client-token-xxx-xxxxxxxxxxxxxxxx;"
                 "access_token=akab-access-token-xxx-xxxxxxxxxxxxxxxx;timestamp=20140321T19:34:21+0000;"
                 "nonce=nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx;signature=")


@pytest.mark.parametrize("request_, signature", [
    (WireRequest("GET", VECTOR_HOST + "/", b""), "tL+y4hxyHxgWVD30X3pWnGKHcPzmrIF+LThiAOhMxYU="),
    (WireRequest("POST", VECTOR_HOST + "/testapi/v1/t3", b"datadatadatadatadatadatadatadata"),
     "hXm4iCxtpN22m4cbZb4lVLW5rhX8Ca82vCFqXzSTPe4="),
])
def test_edgegrid_signs_as_akamais_test_vectors(request_, signature):
    assert edgegrid(request_, VECTOR, VECTOR_TIME, VECTOR_NONCE) == {"Authorization": VECTOR_PREFIX + signature}


def test_edgegrid_hashes_only_a_post_body():
    get = edgegrid(WireRequest("PUT", VECTOR_HOST + "/x", b"body"), VECTOR, VECTOR_TIME, VECTOR_NONCE)
    bare = edgegrid(WireRequest("PUT", VECTOR_HOST + "/x", b""), VECTOR, VECTOR_TIME, VECTOR_NONCE)
    assert get == bare


SPEC = """
spec_version: 1
name: acme-edge
title: Acme Edge
version: 1.0.0
credentials:
  client_token: {label: Client token, type: string}
  access_token: {label: Access token, type: string}
  client_secret: {label: Client secret, type: password}
observable_types: [ip, ipv6]
http:
  base_url: https://akab-acme.luna.akamaiapis.test
  other_origins: [https://docs.acme.test]
  auth:
    sign:
      scheme: edgegrid
      client_token: "{{ credentials.client_token }}"
      access_token: "{{ credentials.access_token }}"
      client_secret: "{{ credentials.client_secret }}"
  errors:
    - when: {status: 401}
      error: {code: authorization error, message: "Authorization failed: {{ body.detail }}"}
steps:
  lists:
    url: /network-list/v2/network-lists
    query: {listType: IP, search: "{{ observable.value }}"}
  report:
    method: POST
    url: /reports
    json: {element: "{{ observable.value }}", lists: "{{ lists.ids }}"}
  notes:
    url: https://docs.acme.test/notes
    query: {ip: "{{ observable.value }}"}
observe:
  steps: [lists, report, notes]
  sightings:
    - id: "transient:sighting-{{ report.id }}"
      confidence: High
      count: 1
      observed_time: {start_time: "2026-01-01T00:00:00Z"}
      description: "{{ notes.text }}"
"""
CLAIMS = {"client_token": "akab-client-1", "access_token": "akab-access-1", "client_secret": "c2VjcmV0LW9mLWFjbWU="}


def vendor_plan(request):
    if request.path == "/reports":
        return json_answer({"id": "r1"})
    if request.path == "/notes":
        return json_answer({"text": "noted"})
    return json_answer({"ids": ["L1", "L2"]})


def ask(tmp_path, value="2001:db8::7", plan=vendor_plan, nonces=None):
    (tmp_path / "acme-edge.yaml").write_text(SPEC)
    spec = load_spec(tmp_path / "acme-edge.yaml")
    nonces = iter(nonces or ["n-1", "n-2", "n-3", "n-4"])
    with MisbehavingVendor(plan) as vendor:
        config = RelayConfig(auth_mode="hs256", secret_key=SECRET_KEY, upstreams={"ACME_EDGE": vendor.origin})
        runtime = Runtime(clock=FrozenClock(NOW), session=loopback_session(), new_nonce=lambda: next(nonces))
        app = create_app({"acme-edge": spec}, config, runtime)
        token = mint_hs256({**CLAIMS, "aud": "http://localhost/acme-edge"}, SECRET_KEY)
        answer = app.test_client().post("/acme-edge/observe/observables", json=[{"type": "ip", "value": value}],
                                        headers={"Authorization": f"Bearer {token}"}).get_json()
    return answer, vendor.requests


def test_each_call_is_signed_over_what_was_sent(tmp_path):
    answer, requests = ask(tmp_path)
    assert answer["data"]["sightings"]["docs"][0]["description"] == "noted"
    lists, report, notes = requests
    values = {"client_token": "akab-client-1", "access_token": "akab-access-1", "client_secret": CLAIMS["client_secret"]}
    for received, nonce in ((lists, "n-1"), (report, "n-2")):
        target = received.path + (f"?{received.raw_query}" if received.raw_query else "")
        sent = WireRequest(received.method, "https://akab-acme.luna.akamaiapis.test" + target, received.body)
        assert received.headers["authorization"] == edgegrid(sent, values, NOW, nonce)["Authorization"]
        assert "timestamp=20261128T12:00:00+0000;" in received.headers["authorization"]
    assert unquote(lists.raw_query) == "listType=IP&search=2001:db8::7"  # the query signed as encoded on the wire
    assert json.loads(report.body) == {"element": "2001:db8::7", "lists": ["L1", "L2"]}  # the body hashed as sent
    assert "authorization" not in notes.headers  # another origin gets neither credentials nor signature


def test_the_secret_never_leaves(tmp_path):
    def echoing(request):
        return json_answer({"detail": f"bad signature for secret {CLAIMS['client_secret']}"}, 401)
    answer, requests = ask(tmp_path, plan=echoing)
    assert answer == {"errors": [{"code": "authorization error", "type": "fatal",
                                  "message": "Authorization failed: bad signature for secret <redacted>"}]}
    sent = json.dumps([[r.path, r.raw_query, dict(r.headers), r.body.decode()] for r in requests])
    assert CLAIMS["client_secret"] not in sent


@pytest.mark.parametrize("change, message", [
    (("scheme: edgegrid", "scheme: sigv5"), "no signing scheme 'sigv5'"),
    (('      client_secret: "{{ credentials.client_secret }}"\n', ""), "edgegrid needs client_secret"),
    (('      client_secret: "{{ credentials.client_secret }}"\n',
      '      client_secret: "{{ credentials.client_secret }}"\n      region: eu\n'), "edgegrid takes no parameter 'region'"),
    (('client_token: "{{ credentials.client_token }}"', 'client_token: "{{ observable.value }}"'), "observable"),
])
def test_lint_refuses_a_signing_block_that_cannot_work(tmp_path, change, message):
    path = tmp_path / "acme-edge.yaml"
    path.write_text(SPEC.replace(*change))
    report = lint_paths([path])
    assert report.exit_code == 1
    assert any(message in problem.message for problem in report.problems), [p.format() for p in report.problems]


def test_every_scheme_names_its_parameters():
    assert SCHEMES["edgegrid"].parameters == ("client_token", "access_token", "client_secret")
