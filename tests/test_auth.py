"""Tests of engine.serving.auth: the SecureX JWT checked in jwks and hs256 mode, through the Flask app and directly.

The JWKS is served over real TLS from a loopback server (tests/support/tls.py) whose certificate a
throwaway test CA signed; tokens are real RS256 / HS256 tokens made with PyJWT.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from types import SimpleNamespace

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

import engine.serving.auth
from engine import create_app, load_spec
from engine.serving.auth import (
    EXPIRED,
    HEADER_MISSING,
    JWKS_HOST_MISSING,
    KID_NOT_FOUND,
    NOT_YET_VALID,
    WRONG_AUDIENCE,
    WRONG_JWKS_HOST,
    WRONG_KEY,
    WRONG_SECRET_KEY,
    WRONG_PAYLOAD,
    WRONG_STRUCTURE,
    WRONG_TYPE,
    Authenticator,
    JwksCache,
    JwksFetchError,
    bearer_token,
    fetch_jwks_over_https,
    required_credentials,
)
from engine.serving.config import RelayConfig
from engine.errors import RelayError
from engine.serving.runtime import Runtime
from engine.spec.model import Credential, Setting
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.tls import JwksServer, TestPki, new_rsa_key, trusting_session, untrusting_session

SPEC = load_spec(str(Path(__file__).resolve().parent.parent / "vendors" / "abuseipdb.yaml"))
AUD = "http://localhost/abuseipdb"  # the relay URL root of the /abuseipdb/... routes under base_url http://localhost
KID = "securex-2024"
API_KEY = "abuseipdb-api-key"
SECRET = "relay-secret-key-" + "0123456789abcdef" * 4  # long enough for HS512 too: no key-length warnings
OBSERVABLES = [{"type": "ip", "value": "192.0.2.45"}]
DROP = object()  # a claim value meaning "leave this claim out"

# Real keys, made once for the module: the one the JWKS serves, a stranger's, and a rotated one.
SERVED_KEY = new_rsa_key()
OTHER_KEY = new_rsa_key()
ROTATED_KEY = new_rsa_key()


# ------------------------------------------------------------------------------ helpers


def jwk(private_key, kid: str = KID) -> dict:
    entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    return {**entry, "kid": kid, "use": "sig", "alg": "RS256"}


def jwks(*entries) -> dict:
    return {"keys": list(entries) or [jwk(SERVED_KEY)]}


def claims(host: str | None, **changes) -> dict:
    """A SecureX configuration token's claims; `name=DROP` leaves a claim out."""
    now = int(time.time())
    base = {"jwks_host": host, "aud": AUD, "key": API_KEY, "iat": now, "exp": now + 300}
    base.update(changes)
    return {name: value for name, value in base.items() if value is not DROP}


def token(payload: dict, key=SERVED_KEY, kid: str | None = KID, alg: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid} if kid is not None else None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed_hs256(payload: dict, secret: bytes, kid: str = KID) -> str:
    """An HS256 token PyJWT would refuse to make: here signed with an RSA public key PEM as the secret."""
    signing_input = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + "." + \
        _b64(json.dumps(payload).encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def public_pem(private_key) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


def with_payload_of(signed: str, other: str) -> str:
    """`signed`'s header and signature around `other`'s payload: a tampered token."""
    header, _, signature = signed.split(".")
    return f"{header}.{other.split('.')[1]}.{signature}"


def bearer(value: str) -> str:
    return f"Bearer {value}"


def refusal(reason: str) -> dict:
    return {"errors": [{"code": "authorization error", "message": f"Authorization failed: {reason}",
                        "type": "fatal"}]}


def post(client, authorization: str | None, route: str = "health", path_prefix: str = "/abuseipdb"):
    headers = {} if authorization is None else {"Authorization": authorization}
    return client.post(f"{path_prefix}/{route}", json=OBSERVABLES, headers=headers, base_url="http://localhost")


def assert_refused(response, reason: str) -> None:
    assert response.status_code == 200
    assert response.get_json() == refusal(reason)


def assert_auth_error(call, reason: str) -> None:
    with pytest.raises(RelayError) as caught:
        call()
    assert caught.value == RelayError("authorization error", f"Authorization failed: {reason}")


def loopback_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the stand-in is plain HTTP on 127.0.0.1: no proxy may see it
    return session


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def jwks_server(pki):
    with JwksServer(pki, jwks()) as server:
        yield server


@pytest.fixture(scope="module")
def stand_in_server():
    with StandInVendor(routes_from_examples(SPEC)) as vendor:
        yield vendor


@pytest.fixture
def stand_in(stand_in_server):
    """The module's stand-in vendor, its `received` list emptied for each test."""
    stand_in_server.received.clear()
    return stand_in_server


@pytest.fixture
def make_client(pki, jwks_server, stand_in):
    """A test client of the real app: allow-list = the JWKS server, vendor calls go to the stand-in."""
    def build(*, jwks_session=None, **config):
        config.setdefault("jwks_hosts", (jwks_server.host,))
        config.setdefault("upstreams", {"ABUSEIPDB": stand_in.origin})
        runtime = Runtime(session=loopback_session(), jwks_session=jwks_session or trusting_session(pki.ca_path))
        return create_app({"abuseipdb": SPEC}, RelayConfig(**config), runtime).test_client()
    return build


@pytest.fixture
def client(make_client):
    return make_client()


def jwks_authenticator(pki, host: str, clock=None, **options) -> Authenticator:
    """An Authenticator whose cache fetches over TLS with a session that trusts the test CA."""
    session = trusting_session(pki.ca_path)
    cache = JwksCache(lambda name: fetch_jwks_over_https(session, name), **({"clock": clock} if clock else {}))
    return Authenticator("jwks", jwks_hosts=(host,), jwks=cache, **options)


# ------------------------------------------------------------------------------ jwks mode: accepted


def test_a_token_signed_with_the_served_key_is_accepted_and_the_vendor_is_called(client, jwks_server, stand_in):
    response = post(client, bearer(token(claims(jwks_server.host))))

    assert response.status_code == 200
    assert response.get_json() == {"data": {"status": "ok"}}
    assert jwks_server.fetches == 1
    assert [(call.method, call.path) for call in stand_in.received] == [("GET", "/api/v2/check")]
    assert stand_in.received[0].headers["Key"] == API_KEY  # the credential came from the verified claims


def test_authenticator_returns_the_verified_claims(pki, jwks_server):
    payload = claims(jwks_server.host, CTR_ENTITIES_LIMIT="5")

    assert jwks_authenticator(pki, jwks_server.host).claims(bearer(token(payload)), AUD) == payload


def test_a_second_request_within_the_cache_lifetime_does_not_fetch_again(client, jwks_server):
    first = post(client, bearer(token(claims(jwks_server.host))))
    second = post(client, bearer(token(claims(jwks_server.host, key="another-key"))))

    assert first.get_json() == second.get_json() == {"data": {"status": "ok"}}
    assert jwks_server.fetches == 1


def test_the_allow_list_and_the_token_host_are_compared_without_case(make_client, jwks_server):
    client = make_client(jwks_hosts=(f" {jwks_server.host.upper()} ",))
    response = post(client, bearer(token(claims(jwks_server.host.upper()))))

    assert response.get_json() == {"data": {"status": "ok"}}
    assert jwks_server.fetches == 1


def test_the_jwks_may_hold_several_keys(client, jwks_server):
    jwks_server.answer(jwks(jwk(OTHER_KEY, "old"), {"kid": "sym", "kty": "oct", "k": "c2VjcmV0"}, jwk(SERVED_KEY)))

    assert post(client, bearer(token(claims(jwks_server.host)))).get_json() == {"data": {"status": "ok"}}


@pytest.mark.parametrize(("limit", "sightings"), [(1, 1), ("2", 2), (DROP, 3), ("abc", 3), (0, 3)])
def test_observe_reads_credentials_and_settings_from_the_token(client, jwks_server, stand_in, limit, sightings):
    response = post(client, bearer(token(claims(jwks_server.host, CTR_ENTITIES_LIMIT=limit))), "observe/observables")

    body = response.get_json()
    assert "errors" not in body
    assert body["data"]["sightings"]["count"] == sightings  # the example answer has 3 reports
    check_calls = [call for call in stand_in.received if call.path == "/api/v2/check"]
    assert [call.headers["Key"] for call in check_calls] == [API_KEY]


# ------------------------------------------------------------------------------ TLS


def test_the_jwks_is_fetched_over_verified_tls(make_client, jwks_server, stand_in):
    untrusting = make_client(jwks_session=untrusting_session())

    assert_refused(post(untrusting, bearer(token(claims(jwks_server.host)))), WRONG_JWKS_HOST)
    assert jwks_server.fetches == 0  # the handshake failed: no request reached the server
    assert stand_in.received == []

    trusting = make_client()  # control: the same server and token pass with the test CA trusted
    assert post(trusting, bearer(token(claims(jwks_server.host)))).get_json() == {"data": {"status": "ok"}}
    assert jwks_server.fetches == 1


def test_fetch_jwks_over_https_returns_the_served_document(pki, jwks_server):
    assert fetch_jwks_over_https(trusting_session(pki.ca_path), jwks_server.host) == jwks()
    assert jwks_server.fetches == 1


def test_a_jwks_host_speaking_plain_http_is_refused(make_client, monkeypatch):
    monkeypatch.setattr(engine.serving.auth, "JWKS_TIMEOUT", 0.5)  # plain HTTP may wait for a line that never comes
    document = json.dumps(jwks()).encode()
    with StandInVendor([Route("/.well-known/jwks", CannedAnswer(200, document))]) as plain:
        host = plain.origin.removeprefix("http://")
        client = make_client(jwks_hosts=(host,))
        response = post(client, bearer(token(claims(host))))

    assert_refused(response, WRONG_JWKS_HOST)
    assert plain.received == []  # the relay never sent a plain-HTTP GET


# ------------------------------------------------------------------------------ refusals: the header


@pytest.mark.parametrize("route", ["health", "observe/observables"])
@pytest.mark.parametrize(("authorization", "reason"), [
    (None, HEADER_MISSING),
    ("", HEADER_MISSING),
    ("Basic x", WRONG_TYPE),
    ("Token abc.def.ghi", WRONG_TYPE),
    ("Bearer", WRONG_STRUCTURE),
    ("Bearer a.b.c extra", WRONG_STRUCTURE),
    ("Bearer not-a-jwt", WRONG_STRUCTURE),
    ("Bearer a.b.c", WRONG_STRUCTURE),
], ids=["missing", "empty", "basic", "other-scheme", "bearer-alone", "three-parts", "not-a-jwt", "bad-base64"])
def test_a_bad_authorization_header_is_refused_without_any_call(client, jwks_server, stand_in, authorization, reason,
                                                                route):
    assert_refused(post(client, authorization, route), reason)
    assert jwks_server.fetches == 0
    assert stand_in.received == []


@pytest.mark.parametrize(("authorization", "expected"), [
    ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc"), ("Bearer\tabc", "abc"),
])
def test_bearer_token_takes_the_scheme_without_case(authorization, expected):
    assert bearer_token(authorization) == expected


# ------------------------------------------------------------------------------ refusals: the token (jwks mode)

# (id, token made from the JWKS server's host, reason, JWKS fetches expected)
TOKEN_REFUSALS = [
    ("no-jwks_host", lambda host: token(claims(host, jwks_host=DROP)), JWKS_HOST_MISSING, 0),
    ("empty-jwks_host", lambda host: token(claims(host, jwks_host="")), JWKS_HOST_MISSING, 0),
    ("jwks_host-not-a-string", lambda host: token(claims(host, jwks_host=[host])), WRONG_JWKS_HOST, 0),
    ("cisco-region-not-allow-listed", lambda host: token(claims("visibility.amp.cisco.com")), WRONG_JWKS_HOST, 0),
    # An allow-listed host as a mere prefix: a prefix match would fetch (and accept) these.
    ("allow-listed-host-then-fragment", lambda host: token(claims(f"{host}/.well-known/jwks#")), WRONG_JWKS_HOST, 0),
    ("allow-listed-host-as-userinfo", lambda host: token(claims(f"{host}@127.0.0.1:{host.split(':')[1]}")),
     WRONG_JWKS_HOST, 0),
    ("alg-none", lambda host: jwt.encode(claims(host), None, algorithm="none", headers={"kid": KID}), WRONG_KEY, 0),
    ("hs256-with-the-public-key-pem-as-secret",
     lambda host: hand_signed_hs256(claims(host), public_pem(SERVED_KEY)), WRONG_KEY, 0),
    ("hs256-with-a-secret", lambda host: token(claims(host), key=SECRET, alg="HS256"), WRONG_KEY, 0),
    ("unknown-kid", lambda host: token(claims(host), kid="another-kid"), KID_NOT_FOUND, 1),
    ("no-kid", lambda host: token(claims(host), kid=None), KID_NOT_FOUND, 1),
    ("signed-by-another-key", lambda host: token(claims(host), key=OTHER_KEY), WRONG_KEY, 1),
    ("tampered-payload", lambda host: with_payload_of(token(claims(host)), token(claims(host, key="stolen"))),
     WRONG_KEY, 1),
    ("ps256-with-the-served-key", lambda host: token(claims(host), alg="PS256"), WRONG_KEY, 0),
    ("wrong-aud", lambda host: token(claims(host, aud="http://localhost/other")), WRONG_AUDIENCE, 1),
    ("another-relays-aud", lambda host: token(claims(host, aud="https://relay.example.com/abuseipdb")),
     WRONG_AUDIENCE, 1),
    ("no-aud", lambda host: token(claims(host, aud=DROP)), WRONG_AUDIENCE, 1),
    ("expired", lambda host: token(claims(host, iat=int(time.time()) - 600, exp=int(time.time()) - 60)), EXPIRED, 1),
    ("not-yet-valid", lambda host: token(claims(host, nbf=int(time.time()) + 3600)), NOT_YET_VALID, 1),
    ("no-key-credential", lambda host: token(claims(host, key=DROP)), WRONG_PAYLOAD, 1),
    ("empty-key-credential", lambda host: token(claims(host, key="")), WRONG_PAYLOAD, 1),
    ("key-credential-not-a-string", lambda host: token(claims(host, key={"value": API_KEY})), WRONG_PAYLOAD, 1),
]


@pytest.mark.parametrize(("make_token", "reason", "fetches"), [row[1:] for row in TOKEN_REFUSALS],
                         ids=[row[0] for row in TOKEN_REFUSALS])
def test_a_bad_token_is_refused_with_the_exact_reason_and_no_vendor_call(client, jwks_server, stand_in, make_token,
                                                                          reason, fetches):
    assert_refused(post(client, bearer(make_token(jwks_server.host))), reason)
    assert jwks_server.fetches == fetches
    assert stand_in.received == []


def test_a_live_jwks_host_off_the_allow_list_is_never_fetched(pki, make_client, jwks_server, stand_in):
    with JwksServer(pki, jwks()) as stranger:  # serves the right key, but nobody allow-listed it
        response = post(make_client(), bearer(token(claims(stranger.host))))
        assert stranger.fetches == 0

    assert_refused(response, WRONG_JWKS_HOST)
    assert jwks_server.fetches == 0
    assert stand_in.received == []


def test_the_default_allow_list_is_securex_only(make_client, jwks_server, stand_in):
    response = post(make_client(jwks_hosts=RelayConfig().jwks_hosts), bearer(token(claims(jwks_server.host))))

    assert_refused(response, WRONG_JWKS_HOST)
    assert jwks_server.fetches == 0
    assert stand_in.received == []


# ------------------------------------------------------------------------------ refusals: JWKS trouble

@pytest.mark.parametrize("answer", [
    {"status": 500},
    {"status": 404},
    {"body": b"<html>not json</html>"},
    {"body": b"\xff\xfe\x00garbage"},
    {"body": b""},
    {"document": {"no": "keys"}},
    {"body": b'[{"keys": []}]'},
    {"document": {"keys": {"kid": KID}}},
    {"document": {"keys": [jwk(SERVED_KEY)], "padding": "x" * (300 * 1024)}},
], ids=["500", "404", "html", "binary", "empty", "no-keys", "list", "keys-not-a-list", "too-large"])
def test_a_jwks_host_answering_badly_is_refused(client, jwks_server, stand_in, answer):
    status = answer.pop("status", 200)
    jwks_server.answer(status=status, **answer)

    assert_refused(post(client, bearer(token(claims(jwks_server.host)))), WRONG_JWKS_HOST)
    assert jwks_server.fetches == 1
    assert stand_in.received == []


def test_a_redirect_from_the_jwks_host_is_not_followed(pki, client, jwks_server, stand_in):
    with JwksServer(pki, jwks()) as elsewhere:  # serves the right key, on a host nobody allow-listed
        jwks_server.answer(jwks(), status=302, headers=(("Location", elsewhere.url),))
        response = post(client, bearer(token(claims(jwks_server.host))))
        assert elsewhere.fetches == 0

    assert_refused(response, WRONG_JWKS_HOST)
    assert jwks_server.fetches == 1
    assert stand_in.received == []


def test_a_jwks_too_deeply_nested_to_decode_is_refused_as_wrong_jwks_host(client, jwks_server, stand_in):
    # Valid JSON (well under JWKS_MAX_BYTES) that json.loads cannot decode: it raises RecursionError,
    # which is not a ValueError, so the fetch error escapes as "unknown: Something went wrong.".
    jwks_server.answer(body=b"[" * 50_000 + b"]" * 50_000)

    assert_refused(post(client, bearer(token(claims(jwks_server.host)))), WRONG_JWKS_HOST)
    assert stand_in.received == []


def test_a_jwks_host_that_is_down_is_refused(make_client, pki, stand_in):
    with JwksServer(pki, jwks()) as server:
        host = server.host
    client = make_client(jwks_hosts=(host,))  # the port is closed now

    assert_refused(post(client, bearer(token(claims(host)))), WRONG_JWKS_HOST)
    assert stand_in.received == []


def test_a_slow_jwks_host_is_given_up_on(client, jwks_server, stand_in, monkeypatch):
    monkeypatch.setattr(engine.serving.auth, "JWKS_TIMEOUT", 0.2)
    jwks_server.answer(jwks(), delay=3)
    started = time.monotonic()

    assert_refused(post(client, bearer(token(claims(jwks_server.host)))), WRONG_JWKS_HOST)
    assert time.monotonic() - started < 2
    assert stand_in.received == []


def test_a_failed_fetch_is_not_cached(client, jwks_server):
    jwks_server.answer(status=500)
    assert_refused(post(client, bearer(token(claims(jwks_server.host)))), WRONG_JWKS_HOST)

    jwks_server.answer(jwks())
    assert post(client, bearer(token(claims(jwks_server.host)))).get_json() == {"data": {"status": "ok"}}
    assert jwks_server.fetches == 2


@pytest.mark.parametrize("entry", [
    {"kid": KID, "kty": "oct", "k": "c2VjcmV0"},
    {"kid": KID, "kty": "RSA", "e": "AQAB"},
    {"kid": KID, "kty": "RSA", "n": "!!!", "e": "AQAB"},
    {"kid": KID, "kty": "RSA", "n": 12345, "e": "AQAB"},
    {"kid": KID},
], ids=["symmetric", "no-modulus", "bad-modulus", "numeric-modulus", "no-kty"])
def test_an_unusable_key_under_the_tokens_kid_counts_as_not_found(client, jwks_server, stand_in, entry):
    jwks_server.answer({"keys": ["not a key", entry]})

    assert_refused(post(client, bearer(token(claims(jwks_server.host)))), KID_NOT_FOUND)
    assert stand_in.received == []


# ------------------------------------------------------------------------------ the JWKS cache


def test_the_cached_jwks_expires_after_its_lifetime(pki, jwks_server):
    clock = FakeClock()
    authenticator = jwks_authenticator(pki, jwks_server.host, clock=clock)
    header = bearer(token(claims(jwks_server.host)))

    authenticator.claims(header, AUD)
    clock.now += engine.serving.auth.JWKS_CACHE_SECONDS - 1
    authenticator.claims(header, AUD)
    assert jwks_server.fetches == 1

    clock.now += 2
    authenticator.claims(header, AUD)
    assert jwks_server.fetches == 2


def test_an_unknown_kid_refreshes_the_jwks_only_when_the_copy_is_older_than_30_seconds(pki, jwks_server):
    clock = FakeClock()
    authenticator = jwks_authenticator(pki, jwks_server.host, clock=clock)
    authenticator.claims(bearer(token(claims(jwks_server.host))), AUD)
    jwks_server.answer(jwks(jwk(ROTATED_KEY, "rotated"), jwk(SERVED_KEY)))  # SecureX rotates its keys
    rotated = bearer(token(claims(jwks_server.host), key=ROTATED_KEY, kid="rotated"))

    clock.now += 10
    assert_auth_error(lambda: authenticator.claims(rotated, AUD), KID_NOT_FOUND)
    assert jwks_server.fetches == 1  # unknown kids must not make every request fetch

    clock.now += 21
    assert authenticator.claims(rotated, AUD)["key"] == API_KEY
    assert jwks_server.fetches == 2
    assert authenticator.claims(rotated, AUD)["key"] == API_KEY
    assert jwks_server.fetches == 2


def test_the_cache_keeps_one_document_per_host():
    fetched = []
    cache = JwksCache(lambda host: fetched.append(host) or jwks(jwk(SERVED_KEY, host)), clock=FakeClock())

    assert cache.key("a.example", "a.example") is not None
    assert cache.key("b.example", "b.example") is not None
    assert cache.key("a.example", "a.example") is not None
    assert fetched == ["a.example", "b.example"]


def test_a_fetch_error_reaches_the_authenticator_as_wrong_jwks_host():
    def failing(host):
        raise JwksFetchError("HTTP 503")

    authenticator = Authenticator("jwks", jwks_hosts=("jwks.example",), jwks=JwksCache(failing))

    assert_auth_error(lambda: authenticator.claims(bearer(token(claims("jwks.example"))), AUD), WRONG_JWKS_HOST)


# ------------------------------------------------------------------------------ audience


@pytest.mark.parametrize(("aud", "accepted"), [
    ("https://relay.example.com/abuseipdb", True),
    (["https://relay.example.com/abuseipdb", "other"], True),
    (AUD, False),
    ("https://relay.example.com", False),
    ("https://relay.example.com/is-it-phishing", False),
])
def test_relay_audience_is_the_deployments_root_and_the_vendor_follows_it(make_client, jwks_server, aud, accepted):
    client = make_client(audience="https://relay.example.com/")
    response = post(client, bearer(token(claims(jwks_server.host, aud=aud))))

    if accepted:
        assert response.get_json() == {"data": {"status": "ok"}}
    else:
        assert_refused(response, WRONG_AUDIENCE)


@pytest.mark.parametrize(("path_prefix", "aud", "accepted"), [
    ("", "http://localhost", True),
    ("", AUD, False),
    ("/abuseipdb", AUD, True),
    ("/abuseipdb", "http://localhost", False),
])
def test_the_audience_is_the_url_root_of_the_route_used(make_client, jwks_server, path_prefix, aud, accepted):
    client = make_client(root_vendor="abuseipdb")
    response = post(client, bearer(token(claims(jwks_server.host, aud=aud))), path_prefix=path_prefix)

    if accepted:
        assert response.get_json() == {"data": {"status": "ok"}}
    else:
        assert_refused(response, WRONG_AUDIENCE)


# ------------------------------------------------------------------------------ hs256 mode


HS256_AUTHENTICATOR = Authenticator("hs256", secret_key=SECRET)


@pytest.mark.parametrize("payload", [
    {"key": API_KEY, "aud": AUD},
    {"key": API_KEY, "aud": [AUD, "another"]},
    {"key": API_KEY, "aud": AUD, "exp": int(time.time()) + 60},
], ids=["right-aud", "aud-list", "not-expired"])
def test_hs256_accepts_a_token_signed_with_the_secret(payload):
    header = bearer(token(payload, key=SECRET, kid=None, alg="HS256"))

    assert HS256_AUTHENTICATOR.claims(header, AUD) == payload


@pytest.mark.parametrize(("make_token", "reason"), [
    (lambda: token({"key": API_KEY, "aud": AUD}, key="not-the-relay-secret-but-long-enough", kid=None, alg="HS256"),
     WRONG_SECRET_KEY),
    (lambda: token({"key": API_KEY, "aud": "http://localhost/other"}, key=SECRET, kid=None, alg="HS256"),
     WRONG_AUDIENCE),
    (lambda: token({"key": API_KEY}, key=SECRET, kid=None, alg="HS256"), WRONG_AUDIENCE),  # bound to no module
    (lambda: token({"key": API_KEY, "aud": AUD}), WRONG_SECRET_KEY),
    (lambda: jwt.encode({"key": API_KEY, "aud": AUD}, None, algorithm="none"), WRONG_SECRET_KEY),
    (lambda: token({"key": API_KEY, "aud": AUD, "exp": int(time.time()) - 60}, key=SECRET, kid=None, alg="HS256"),
     EXPIRED),
    (lambda: token({"key": API_KEY, "aud": AUD, "nbf": int(time.time()) + 3600}, key=SECRET, kid=None,
                   alg="HS256"), NOT_YET_VALID),
    (lambda: token({"key": API_KEY, "aud": AUD}, key=SECRET, kid=None, alg="HS512"), WRONG_SECRET_KEY),
], ids=["wrong-secret", "wrong-aud", "no-aud", "rs256", "alg-none", "expired", "not-yet-valid", "hs512"])
def test_hs256_refuses(make_token, reason):
    assert_auth_error(lambda: HS256_AUTHENTICATOR.claims(bearer(make_token()), AUD), reason)


def test_hs256_mode_through_the_app_never_fetches_a_jwks(make_client, jwks_server, stand_in):
    client = make_client(auth_mode="hs256", secret_key=SECRET)
    good = token({"key": API_KEY, "jwks_host": jwks_server.host, "aud": AUD}, key=SECRET, kid=None, alg="HS256")
    rs256 = token(claims(jwks_server.host))

    assert post(client, bearer(good)).get_json() == {"data": {"status": "ok"}}
    assert stand_in.received[0].headers["Key"] == API_KEY
    assert_refused(post(client, bearer(rs256)), WRONG_SECRET_KEY)
    assert len(stand_in.received) == 1
    assert jwks_server.fetches == 0


@pytest.mark.parametrize(("mode", "options"), [
    ("rs256", {}), ("", {}), ("hs256", {}), ("hs256", {"secret_key": ""}), ("hs256", {"secret_key": "short"}),
    ("hs256", {"secret_key": "x" * 31}),
])
def test_an_authenticator_needs_a_known_mode_and_hs256_a_secret(mode, options):
    with pytest.raises(ValueError):
        Authenticator(mode, **options)


# ------------------------------------------------------------------------------ credentials and settings

SPEC_WITH_OPTIONAL = SimpleNamespace(credentials=(Credential("key", "API key"),
                                                  Credential("region", "Region", required=False)),
                                     settings=())


@pytest.mark.parametrize(("payload", "expected"), [
    ({"key": "abc"}, {"key": "abc"}),
    ({"key": 42}, {"key": "42"}),
    ({"key": "abc", "region": "eu"}, {"key": "abc", "region": "eu"}),
    ({"key": "abc", "region": ""}, {"key": "abc"}),
    ({"key": "abc", "region": ["eu"]}, {"key": "abc"}),
    ({"key": "abc", "other": "ignored"}, {"key": "abc"}),
])
def test_required_credentials_takes_the_specs_credentials(payload, expected):
    assert required_credentials(payload, SPEC_WITH_OPTIONAL) == expected


@pytest.mark.parametrize("payload", [{}, {"key": None}, {"key": ""}, {"key": ["abc"]}, {"key": {"a": 1}},
                                     {"KEY": "abc"}, {"region": "eu"}])
def test_a_missing_required_credential_is_a_payload_structure_error(payload):
    assert_auth_error(lambda: required_credentials(payload, SPEC_WITH_OPTIONAL), WRONG_PAYLOAD)


@pytest.mark.parametrize("host", [None, ""])
def test_a_missing_required_setting_is_a_payload_structure_error_too(host):
    """An on-premises vendor's host: not secret, but the relay cannot call without it."""
    spec = SimpleNamespace(credentials=(Credential("key", "API key"),),
                           settings=(Setting("host", "Host", "string", required=True),))
    assert required_credentials({"key": "k", "host": "qradar.example.com"}, spec) == {"key": "k"}
    assert_auth_error(lambda: required_credentials({"key": "k", "host": host}, spec), WRONG_PAYLOAD)


def test_the_abuseipdb_spec_requires_its_key():
    assert required_credentials({"key": API_KEY, "aud": AUD}, SPEC) == {"key": API_KEY}
    assert_auth_error(lambda: required_credentials({"aud": AUD}, SPEC), WRONG_PAYLOAD)


@pytest.mark.parametrize(("payload", "expected"), [
    ({}, 100), ({"CTR_ENTITIES_LIMIT": 0}, 100), ({"CTR_ENTITIES_LIMIT": -3}, 100), ({"CTR_ENTITIES_LIMIT": "abc"}, 100),
    ({"CTR_ENTITIES_LIMIT": None}, 100), ({"CTR_ENTITIES_LIMIT": True}, 100), ({"CTR_ENTITIES_LIMIT": ""}, 100),
    ({"CTR_ENTITIES_LIMIT": "5"}, 5), ({"CTR_ENTITIES_LIMIT": 5}, 5), ({"CTR_ENTITIES_LIMIT": 1}, 1),
])
def test_the_entities_limit_setting_falls_back_to_its_default(payload, expected):
    (setting,) = [s for s in SPEC.settings if s.name == "CTR_ENTITIES_LIMIT"]

    assert setting.read(payload) == expected
