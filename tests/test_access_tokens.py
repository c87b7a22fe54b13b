"""Access tokens a vendor issues (`http.auth.token`): asked for once, kept per credentials until
they expire, renewed once on a 401, never shown; a service account's signed assertion.

The token endpoint and the API are one stand-in on loopback (RELAY_UPSTREAM sends both origins
there); the relay's clock is frozen, so expiry is a matter of moving it.
"""
from __future__ import annotations

import json
import logging
import threading
from urllib.parse import parse_qsl

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine import create_app, load_spec
from engine.commands.lint import lint_paths
from engine.commands.tokens import mint_hs256
from engine.commands.trying import try_observable
from engine.serving.config import RelayConfig
from engine.serving.observables import Observable
from engine.serving.runtime import FrozenClock, Runtime
from tests.support.misbehaving import SECRET_KEY, MisbehavingVendor, json_answer, loopback_session
from tests.support.relay import NOW

SPEC = """
spec_version: 1
name: acme-cloud
title: Acme Cloud
version: 1.0.0
credentials:
  client_id: {label: Client ID, type: string}
  client_secret: {label: Client secret, type: password}
observable_types: [ip]
concurrency: 10
http:
  base_url: https://api.acme.test/v2
  other_origins: [https://login.acme.test]
  auth:
    token:
      url: https://login.acme.test/oauth2/token
      form:
        grant_type: client_credentials
        client_id: "{{ credentials.client_id }}"
        client_secret: "{{ credentials.client_secret }}"
      errors:
        - when: {status: [400, 401]}
          error: {code: authorization error, message: "Authorization failed: {{ body.error_description }}"}
    headers: {Authorization: "Bearer {{ token }}"}
  errors:
    - when: {status: 401}
      error: {code: authorization error, message: "Authorization failed: {{ body.message }}"}
steps:
  alerts:
    url: /alerts
    query: {ip: "{{ observable.value }}"}
    result: body.alerts
observe:
  steps: [alerts]
  sightings:
    - for each: alert in alerts
      id: "transient:sighting-{{ alert.id }}"
      confidence: High
      count: 1
      observed_time: {start_time: "2026-01-01T00:00:00Z"}
      description: "{{ alert.title }}"
"""


class Vendor:
    """Issues tokens `T1`, `T2`, ... (`expires_in` as given); the API answers 401 to a token it
    does not take (all but the newest, or those listed in `refused`)."""

    def __init__(self, expires_in=3600, refused=(), bad_secret=False, echo=False):
        self.issued, self.refused = [], set(refused)
        self.expires_in, self.bad_secret, self.echo = expires_in, bad_secret, echo
        self.lock = threading.Lock()

    def __call__(self, request):
        if request.path == "/oauth2/token":
            form = dict(parse_qsl(request.body.decode()))
            if self.bad_secret or form.get("grant_type") != "client_credentials":
                return json_answer({"error": "invalid_client", "error_description": "The client secret is wrong."}, 401)
            with self.lock:
                self.issued.append((f"T{len(self.issued) + 1}-{form['client_id']}", form))
                token = self.issued[-1][0]
            return json_answer({"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})
        carried = request.headers.get("authorization", "").removeprefix("Bearer ")
        if carried in self.refused or not self.issued or carried not in [t for t, _ in self.issued]:
            message = f"token {carried} refused" if self.echo else "token refused"
            return json_answer({"message": message}, 401)
        return json_answer({"alerts": [{"id": request.param("ip"), "title": "seen"}]})


class Relay:
    def __init__(self, tmp_path, vendor, spec_text=SPEC):
        (tmp_path / "acme-cloud.yaml").write_text(spec_text)
        self.spec = load_spec(tmp_path / "acme-cloud.yaml")
        self.vendor = MisbehavingVendor(vendor).start()
        self.clock = FrozenClock(NOW)
        config = RelayConfig(auth_mode="hs256", secret_key=SECRET_KEY, upstreams={"ACME_CLOUD": self.vendor.origin})
        self.app = create_app({"acme-cloud": self.spec}, config, Runtime(clock=self.clock, session=loopback_session()))

    def ask(self, *ips, client_id="alice", client_secret="s3cret-of-alice"):
        token = mint_hs256({"client_id": client_id, "client_secret": client_secret,
                            "aud": "http://localhost/acme-cloud"}, SECRET_KEY)
        return self.app.test_client().post("/acme-cloud/observe/observables",
                                           json=[{"type": "ip", "value": ip} for ip in ips],
                                           headers={"Authorization": f"Bearer {token}"}).get_json()

    def calls(self):
        return [(r.path, r.headers.get("authorization")) for r in self.vendor.requests]

    def close(self):
        self.vendor.stop()


@pytest.fixture
def relay(tmp_path):
    made = []

    def make(vendor, spec_text=SPEC):
        made.append(Relay(tmp_path, vendor, spec_text))
        return made[-1]
    yield make
    for one in made:
        one.close()


def test_one_token_serves_every_call_and_later_requests_until_it_expires(relay):
    vendor = Vendor(expires_in=3600)
    relay = relay(vendor)
    first = relay.ask("192.0.2.1", "192.0.2.2", "192.0.2.3")
    assert first["data"]["sightings"]["count"] == 3 and "errors" not in first
    assert [path for path, _ in relay.calls()].count("/oauth2/token") == 1  # the observables waited for one
    token_form = vendor.issued[0][1]
    assert token_form == {"grant_type": "client_credentials", "client_id": "alice", "client_secret": "s3cret-of-alice"}
    assert {auth for path, auth in relay.calls() if path == "/v2/alerts"} == {"Bearer T1-alice"}

    relay.clock.sleep(3000)  # still well inside its hour
    relay.ask("192.0.2.4")
    assert len(vendor.issued) == 1
    relay.clock.sleep(560)  # within the last minute of its life: not used any more
    relay.ask("192.0.2.5")
    assert len(vendor.issued) == 2 and relay.calls()[-1] == ("/v2/alerts", "Bearer T2-alice")


def test_a_token_without_a_lifetime_serves_one_request(relay):
    vendor = Vendor(expires_in=None)
    relay = relay(vendor)
    relay.ask("192.0.2.1", "192.0.2.2")
    relay.ask("192.0.2.3")
    assert len(vendor.issued) == 2


def test_tokens_are_kept_per_credentials(relay):
    vendor = Vendor()
    relay = relay(vendor)
    relay.ask("192.0.2.1", client_id="alice")
    relay.ask("192.0.2.1", client_id="bob", client_secret="s3cret-of-bob")
    relay.ask("192.0.2.1", client_id="alice", client_secret="another-secret")  # same id, other secret
    relay.ask("192.0.2.2", client_id="alice")
    issued = [token for token, _ in vendor.issued]
    assert issued == ["T1-alice", "T2-bob", "T3-alice"]
    assert [auth for path, auth in relay.calls() if path == "/v2/alerts"] == \
        ["Bearer T1-alice", "Bearer T2-bob", "Bearer T3-alice", "Bearer T1-alice"]


def test_a_refused_token_is_renewed_once_and_the_call_made_again(relay):
    vendor = Vendor()
    relay = relay(vendor)
    relay.ask("192.0.2.1")
    vendor.refused.add("T1-alice")  # revoked at the vendor's end
    answer = relay.ask("192.0.2.2")
    assert answer["data"]["sightings"]["count"] == 1 and "errors" not in answer
    assert relay.calls()[-3:] == [("/v2/alerts", "Bearer T1-alice"), ("/oauth2/token", None),
                                  ("/v2/alerts", "Bearer T2-alice")]


def test_a_token_refused_again_is_the_vendors_error_after_one_renewal(relay):
    vendor = Vendor()
    relay = relay(vendor)
    vendor.refused.update({"T1-alice", "T2-alice", "T3-alice"})
    answer = relay.ask("192.0.2.1")
    assert [path for path, _ in relay.calls()] == ["/oauth2/token", "/v2/alerts", "/oauth2/token", "/v2/alerts"]
    assert answer == {"errors": [{"code": "authorization error", "type": "fatal",
                                  "message": "Authorization failed: token refused"}]}


def test_a_refused_token_request_fails_every_observable_with_one_call(relay):
    vendor = Vendor(bad_secret=True)
    relay = relay(vendor)
    answer = relay.ask("192.0.2.1", "192.0.2.2", "192.0.2.3")
    assert [path for path, _ in relay.calls()] == ["/oauth2/token"]
    assert answer == {"errors": [{"code": "authorization error", "type": "fatal",
                                  "message": "Authorization failed: The client secret is wrong."}]}


def test_a_token_never_reaches_the_answer_or_the_logs(relay, caplog):
    vendor = Vendor(echo=True, refused={"T1-alice", "T2-alice"})
    relay = relay(vendor)
    with caplog.at_level(logging.DEBUG):
        answer = relay.ask("192.0.2.1")
    assert answer["errors"][0]["message"] == "Authorization failed: token <redacted> refused"
    assert "T2-alice" not in json.dumps(answer) and "T2-alice" not in caplog.text


def test_relay_try_shows_the_token_exchange_without_the_token_or_secret(relay, monkeypatch):
    relay = relay(Vendor())
    monkeypatch.setenv("RELAY_UPSTREAM_ACME_CLOUD", relay.vendor.origin)  # as an operator points it at a stand-in
    trace = try_observable({"acme-cloud": relay.spec}, "acme-cloud", Observable("ip", "192.0.2.1"),
                           claims={"client_id": "alice", "client_secret": "s3cret-of-alice"})
    shown = json.dumps(trace.to_json())
    assert [step["step"] for step in trace.to_json()["steps"]] == ["token", "alerts"]
    assert "T1-alice" not in shown and "s3cret-of-alice" not in shown
    assert trace.answer["data"]["sightings"]["count"] == 1


# -- a service account's signed assertion ---------------------------------------------------------

ASSERTION_SPEC = SPEC.replace('''      form:
        grant_type: client_credentials
        client_id: "{{ credentials.client_id }}"
        client_secret: "{{ credentials.client_secret }}"''', '''      form:
        grant_type: urn:ietf:params:oauth:grant-type:jwt-bearer
        assertion: >-
          {{ jwt({alg: 'RS256', typ: 'JWT'},
                 {iss: credentials.client_id, aud: 'https://login.acme.test/oauth2/token', scope: 'alerts.read',
                  iat: to_int(format_time(now(), 'epoch')), exp: to_int(format_time(time_add(now(), 'PT1H'), 'epoch'))},
                 credentials.client_secret) }}''')


def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return key, pem


class AssertingVendor(Vendor):
    """Issues a token only for an assertion signed by the service account's key."""

    def __init__(self, public_key):
        super().__init__()
        self.public_key, self.claims = public_key, []

    def __call__(self, request):
        if request.path == "/oauth2/token":
            form = dict(parse_qsl(request.body.decode()))
            try:
                # The relay's clock is frozen in the past: its times are checked by the test, not here.
                claims = pyjwt.decode(form["assertion"], self.public_key, algorithms=["RS256"],
                                      audience="https://login.acme.test/oauth2/token",
                                      options={"verify_exp": False, "verify_iat": False})
            except (KeyError, pyjwt.InvalidTokenError) as problem:
                return json_answer({"error": "invalid_grant", "error_description": str(problem)}, 400)
            self.claims.append(claims)
            self.issued.append((f"T{len(self.issued) + 1}-{claims['iss']}", form))
            return json_answer({"access_token": self.issued[-1][0], "expires_in": 3600})
        return super().__call__(request)


def test_a_service_account_trades_a_signed_assertion_for_a_token(relay):
    key, pem = rsa_key()
    vendor = AssertingVendor(key.public_key())
    relay = relay(vendor, ASSERTION_SPEC)
    answer = relay.ask("192.0.2.1", client_id="robot@acme.test", client_secret=pem)
    assert answer["data"]["sightings"]["count"] == 1 and "errors" not in answer
    now = int(NOW.timestamp())
    assert vendor.claims == [{"iss": "robot@acme.test", "aud": "https://login.acme.test/oauth2/token",
                              "scope": "alerts.read", "iat": now, "exp": now + 3600}]


def test_a_key_that_signs_nothing_is_an_authorization_error_with_no_call(relay):
    key, _ = rsa_key()
    vendor = AssertingVendor(key.public_key())
    relay = relay(vendor, ASSERTION_SPEC)
    answer = relay.ask("192.0.2.1", client_id="robot@acme.test", client_secret="-----BEGIN PRIVATE KEY-----\nnope")
    assert relay.calls() == []
    error = answer["errors"][0]
    assert error["code"] == "authorization error"
    assert error["message"].startswith("Authorization failed: Acme Cloud cannot be asked for a token with these "
                                       "credentials: ")


def test_an_assertion_signed_by_another_key_is_refused_by_the_vendor(relay):
    key, _ = rsa_key()
    _, other_pem = rsa_key()
    relay = relay(AssertingVendor(key.public_key()), ASSERTION_SPEC)
    answer = relay.ask("192.0.2.1", client_id="robot@acme.test", client_secret=other_pem)
    assert answer["errors"][0]["message"] == "Authorization failed: Signature verification failed"


# -- lint ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    (('client_id: "{{ credentials.client_id }}"', 'client_id: "{{ observable.value }}"'),
     "the token request reads 'observable'; it may read only credentials and settings"),
    (('    headers: {Authorization: "Bearer {{ token }}"}\n', ""), "the token is asked for but never sent"),
    (("https://login.acme.test/oauth2/token", "https://login.elsewhere.test/oauth2/token"),
     "https://login.elsewhere.test is not a declared origin"),
])
def test_lint_refuses_token_requests_that_cannot_work(tmp_path, change, message):
    path = tmp_path / "acme-cloud.yaml"
    path.write_text(SPEC.replace(*change))
    report = lint_paths([path])
    assert report.exit_code == 1
    assert any(message in problem.message for problem in report.problems), [p.format() for p in report.problems]


def test_token_is_read_only_where_it_is_sent(tmp_path):
    path = tmp_path / "acme-cloud.yaml"
    path.write_text(SPEC.replace('query: {ip: "{{ observable.value }}"}', 'query: {ip: "{{ token }}"}'))
    report = lint_paths([path])
    assert any("token" in problem.message for problem in report.problems), [p.format() for p in report.problems]


def test_demo_and_lint_sign_with_a_key_made_for_the_run(tmp_path):
    """A `private_key` credential gets a throwaway key, and `example` a value of the right form,
    so lint's dry run and relay demo exercise a signed token request end to end."""
    from engine.commands.tokens import demo_claims
    text = ASSERTION_SPEC.replace("  client_secret: {label: Client secret, type: password}",
                                  "  client_secret: {label: Service account key, type: private_key}").replace(
        "  client_id: {label: Client ID, type: string}",
        "  client_id: {label: Client email, type: string, example: robot@acme.test}").replace(
        "observable_types: [ip]", "observable_types: [ip]\nctim_schema_version: 1.1.6") + """
examples:
  observable: {type: ip, value: 192.0.2.1}
  answers:
    token: {file: token.json}
    alerts: {file: alerts.json}
"""
    (tmp_path / "acme-cloud.yaml").write_text(text)
    (tmp_path / "token.json").write_text('{"access_token": "example-token", "expires_in": 3600}')
    (tmp_path / "alerts.json").write_text('{"alerts": [{"id": "a1", "title": "seen"}]}')
    report = lint_paths([tmp_path / "acme-cloud.yaml"])
    assert report.exit_code == 0 and not report.problems, [p.format() for p in report.problems]
    claims = demo_claims(load_spec(tmp_path / "acme-cloud.yaml"))
    assert claims["client_id"] == "robot@acme.test"
    assert claims["client_secret"].startswith("-----BEGIN PRIVATE KEY-----")
    # Without the key made for the run, the token request could not be signed: lint would say so.
    broken = text.replace("type: private_key", "type: password")
    (tmp_path / "acme-cloud.yaml").write_text(broken)
    assert any("cannot be asked for a token" in p.message for p in lint_paths([tmp_path / "acme-cloud.yaml"]).problems)
