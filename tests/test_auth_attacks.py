"""JWT attacks that tests/test_auth.py does not cover yet (it covers the rest: alg none, HS256 with
the RS256 public key, expiry, nbf, aud, allow-list, unknown kid, a JWKS down / slow / garbage,
missing credentials, the cache's lifetime).

Here: tokens that name their own keys (jku, x5u, jwk, x5c), every other `alg` spelling, hostile
`kid` values, claims of the wrong type, unknown critical extensions, a JWKS host that drips its
answer byte by byte, and the hs256 mode through the app. Every refusal is `authorization error`
with Cisco's message, and no vendor call is made.
"""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

import engine.serving.auth
from engine import create_app, load_spec
from engine.serving.auth import (EXPIRED, KID_NOT_FOUND, NOT_YET_VALID, WRONG_AUDIENCE, WRONG_JWKS_HOST, WRONG_KEY,
                                 WRONG_PAYLOAD, WRONG_SECRET_KEY, WRONG_STRUCTURE)
from engine.serving.config import RelayConfig
from engine.serving.runtime import Runtime
from tests.support.misbehaving import abuseipdb_examples, Drip, DripHead, MisbehavingVendor, loopback_session, make_certificate, \
    server_context
from tests.support.tls import JwksServer, TestPki, make_ca, new_rsa_key, trusting_session

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "vendors" / "abuseipdb.yaml")
AUD = "http://localhost/abuseipdb"
KID = "securex-2024"
SECRET = "relay-attack-tests-secret-" + "0123456789abcdef" * 4
SERVED_KEY, ATTACKER_KEY = new_rsa_key(), new_rsa_key()
OBSERVE = [{"type": "ip", "value": "192.0.2.45"}]


def jwk(private_key, kid: str = KID) -> dict:
    return {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key())), "kid": kid, "alg": "RS256"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict, payload: dict, signature: bytes = b"") -> str:
    """A token assembled by hand: any header, any signature (PyJWT would refuse to make these)."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


def claims(host: str, **changes) -> dict:
    now = int(time.time())
    return {"jwks_host": host, "aud": AUD, "key": "abuseipdb-api-key", "iat": now, "exp": now + 300, **changes}


def refusal(reason: str) -> dict:
    return {"errors": [{"code": "authorization error", "message": f"Authorization failed: {reason}", "type": "fatal"}]}


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def jwks_server(pki):
    with JwksServer(pki, {"keys": [jwk(SERVED_KEY)]}) as server:
        yield server


@pytest.fixture
def attacker(pki):
    """The attacker's own JWKS, on a live host that nobody allow-listed."""
    with JwksServer(pki, {"keys": [jwk(ATTACKER_KEY)]}) as server:
        yield server


@pytest.fixture
def vendor():
    with MisbehavingVendor(abuseipdb_examples) as stand_in:
        yield stand_in


def client_for(pki, vendor, **config):
    config.setdefault("upstreams", {"ABUSEIPDB": vendor.origin})
    runtime = Runtime(session=loopback_session(), jwks_session=trusting_session(pki.ca_path))
    return create_app({"abuseipdb": SPEC}, RelayConfig(**config), runtime).test_client()


def ask(client, token: str) -> dict:
    response = client.post("/abuseipdb/observe/observables", json=OBSERVE, headers={"Authorization": f"Bearer {token}"},
                           base_url="http://localhost")
    assert response.status_code == 200
    return response.get_json()


# ------------------------------------------------------------------------------------ jwks mode

ATTACKS = [
    # A token that names where its key is: the relay must use only the allow-listed host's JWKS.
    ("jku-to-attacker", lambda host, evil: jwt.encode(claims(host), ATTACKER_KEY, algorithm="RS256",
                                                      headers={"kid": KID, "jku": evil.url}), WRONG_KEY, 1),
    ("x5u-to-attacker", lambda host, evil: jwt.encode(claims(host), ATTACKER_KEY, algorithm="RS256",
                                                      headers={"kid": KID, "x5u": evil.url}), WRONG_KEY, 1),
    ("embedded-jwk", lambda host, evil: jwt.encode(claims(host), ATTACKER_KEY, algorithm="RS256",
                                                   headers={"kid": KID, "jwk": jwk(ATTACKER_KEY)}), WRONG_KEY, 1),
    ("attacker-jwks-host", lambda host, evil: jwt.encode(claims(evil.host), ATTACKER_KEY, algorithm="RS256",
                                                         headers={"kid": KID}), WRONG_JWKS_HOST, 0),
    # alg spellings: only RS256 is ever verified in jwks mode.
    *[(f"alg-{alg}", (lambda alg: lambda host, evil: forged({"alg": alg, "kid": KID}, claims(host)))(alg),
       WRONG_KEY, 0) for alg in ("none", "None", "NONE", "nOnE", "", "rs256", "RS256 ", "HS256", "ES256", "EdDSA")],
    ("alg-missing", lambda host, evil: forged({"kid": KID}, claims(host)), WRONG_KEY, 0),
    ("alg-not-a-string", lambda host, evil: forged({"alg": ["RS256"], "kid": KID}, claims(host)), WRONG_KEY, 0),
    ("rs256-empty-signature", lambda host, evil: forged({"alg": "RS256", "kid": KID}, claims(host)), WRONG_KEY, 1),
    # kid values that must only ever be looked up in the allow-listed document.
    ("kid-path", lambda host, evil: jwt.encode(claims(host), SERVED_KEY, algorithm="RS256",
                                               headers={"kid": "../../../etc/passwd"}), KID_NOT_FOUND, 1),
    ("kid-url", lambda host, evil: jwt.encode(claims(host), SERVED_KEY, algorithm="RS256",
                                              headers={"kid": evil.url}), KID_NOT_FOUND, 1),
    ("kid-huge", lambda host, evil: jwt.encode(claims(host), SERVED_KEY, algorithm="RS256",
                                               headers={"kid": "k" * 100_000}), KID_NOT_FOUND, 1),
    ("kid-number", lambda host, evil: forged({"alg": "RS256", "kid": 1}, claims(host)), WRONG_STRUCTURE, 0),
    ("kid-object", lambda host, evil: forged({"alg": "RS256", "kid": {"$ne": ""}}, claims(host)), WRONG_STRUCTURE, 0),
    # Claims of the wrong type are never read as valid.
    # (PyJWT reads a numeric text exp/nbf as a number: harmless, only the key's holder signs; but checked.)
    ("exp-as-text-in-the-past", lambda host, evil: jwt.encode(claims(host, exp="1"), SERVED_KEY, algorithm="RS256",
                                                              headers={"kid": KID}), EXPIRED, 1),
    ("nbf-as-text-in-the-future", lambda host, evil: jwt.encode(claims(host, nbf=str(int(time.time()) + 3600)),
                                                                SERVED_KEY, algorithm="RS256", headers={"kid": KID}),
     NOT_YET_VALID, 1),
    ("exp-not-a-number", lambda host, evil: jwt.encode(claims(host, exp="tomorrow"), SERVED_KEY, algorithm="RS256",
                                                       headers={"kid": KID}), WRONG_KEY, 1),
    ("aud-as-object", lambda host, evil: jwt.encode(claims(host, aud={"in": AUD}), SERVED_KEY, algorithm="RS256",
                                                    headers={"kid": KID}), WRONG_AUDIENCE, 1),
    ("aud-empty-list", lambda host, evil: jwt.encode(claims(host, aud=[]), SERVED_KEY, algorithm="RS256",
                                                     headers={"kid": KID}), WRONG_AUDIENCE, 1),
    ("expired-by-one-second", lambda host, evil: jwt.encode(claims(host, exp=int(time.time()) - 1), SERVED_KEY,
                                                            algorithm="RS256", headers={"kid": KID}), EXPIRED, 1),
    ("not-valid-for-a-minute", lambda host, evil: jwt.encode(claims(host, nbf=int(time.time()) + 60), SERVED_KEY,
                                                             algorithm="RS256", headers={"kid": KID}),
     NOT_YET_VALID, 1),
    ("unknown-critical-extension", lambda host, evil: jwt.encode(claims(host), SERVED_KEY, algorithm="RS256",
                                                                 headers={"kid": KID, "crit": ["x-relay"],
                                                                          "x-relay": 1}), WRONG_STRUCTURE, 0),
    ("payload-not-an-object", lambda host, evil: forged({"alg": "RS256", "kid": KID}, ["key"]), WRONG_STRUCTURE, 0),
    ("credential-only-in-header", lambda host, evil: jwt.encode(claims(host, key=None), SERVED_KEY, algorithm="RS256",
                                                                headers={"kid": KID, "key": "from-header"}),
     WRONG_PAYLOAD, 1),
]


@pytest.mark.parametrize(("make_token", "reason", "fetches"), [row[1:] for row in ATTACKS],
                         ids=[row[0] for row in ATTACKS])
def test_a_forged_token_is_refused_without_a_vendor_call(pki, jwks_server, attacker, vendor, make_token, reason,
                                                          fetches):
    client = client_for(pki, vendor, jwks_hosts=(jwks_server.host,))

    assert ask(client, make_token(jwks_server.host, attacker)) == refusal(reason)
    assert attacker.fetches == 0  # the attacker's JWKS is never read, whatever the token says
    assert jwks_server.fetches == fetches
    assert vendor.requests == []


def test_the_control_token_is_accepted(pki, jwks_server, attacker, vendor):
    """Same setup, a token SecureX would send: proves the refusals above are about the attack."""
    client = client_for(pki, vendor, jwks_hosts=(jwks_server.host,))
    token = jwt.encode(claims(jwks_server.host), SERVED_KEY, algorithm="RS256", headers={"kid": KID})

    assert ask(client, token)["data"]["verdicts"]["count"] == 1
    assert [r.headers.get("key") for r in vendor.requests if r.path == "/api/v2/check"] == ["abuseipdb-api-key"]


# A JWKS host that drips: its body a byte at a time (the old flaw: 21 s for 426 bytes against
# 0.5 s), or its status line and headers a few bytes at a time (found by the attack run: a header a
# second held a request 120 s against 5 s, as a socket timeout counts from the last byte).
JWKS_DRIPS = {"body": lambda document: Drip(document, interval=0.05, size=1),  # ~25 s in all
              "head": lambda document: DripHead(document)}  # ~30 s for the head alone


@pytest.mark.parametrize("drip", sorted(JWKS_DRIPS))
def test_a_jwks_host_dripping_is_given_up_on_at_the_deadline(drip, tmp_path, vendor, monkeypatch):
    monkeypatch.setattr(engine.serving.auth, "JWKS_TIMEOUT", 0.5)
    ca_key, ca_cert = make_ca("dripping JWKS CA")
    ca_path = tmp_path / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    context = server_context(*make_certificate(tmp_path, issuer=(ca_key, ca_cert)))
    behaviour = JWKS_DRIPS[drip](json.dumps({"keys": [jwk(SERVED_KEY)]}).encode())
    with MisbehavingVendor(behaviour, tls=context) as server:
        host = server.origin.removeprefix("https://")
        runtime = Runtime(session=loopback_session(), jwks_session=trusting_session(ca_path))
        config = RelayConfig(jwks_hosts=(host,), upstreams={"ABUSEIPDB": vendor.origin})
        client = create_app({"abuseipdb": SPEC}, config, runtime).test_client()
        token = jwt.encode(claims(host), SERVED_KEY, algorithm="RS256", headers={"kid": KID})

        started = time.monotonic()
        assert ask(client, token) == refusal(WRONG_JWKS_HOST)
        assert time.monotonic() - started < 3
    assert vendor.requests == []


# ------------------------------------------------------------------------------------ hs256 mode

def hs256(payload: dict, key: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=alg)


HS256_ATTACKS = [
    ("alg-none", lambda: forged({"alg": "none"}, {"key": "k", "aud": AUD}), WRONG_SECRET_KEY),
    ("alg-None", lambda: forged({"alg": "None"}, {"key": "k", "aud": AUD}), WRONG_SECRET_KEY),
    ("hs256-empty-signature", lambda: forged({"alg": "HS256"}, {"key": "k", "aud": AUD}), WRONG_SECRET_KEY),
    ("hs256-another-secret", lambda: hs256({"key": "k", "aud": AUD}, "another-secret-" + "x" * 32), WRONG_SECRET_KEY),
    ("hs256-empty-secret", lambda: forged({"alg": "HS256"}, {"key": "k", "aud": AUD}, b"\x00" * 32), WRONG_SECRET_KEY),
    ("hs512-with-the-secret", lambda: hs256({"key": "k", "aud": AUD}, alg="HS512"), WRONG_SECRET_KEY),
    ("rs256-attacker-key", lambda: jwt.encode({"key": "k", "aud": AUD}, ATTACKER_KEY, algorithm="RS256"),
     WRONG_SECRET_KEY),
    ("expired", lambda: hs256({"key": "k", "aud": AUD, "exp": int(time.time()) - 1}), EXPIRED),
    ("not-yet-valid", lambda: hs256({"key": "k", "aud": AUD, "nbf": int(time.time()) + 60}), NOT_YET_VALID),
    ("another-vendors-aud", lambda: hs256({"key": "k", "aud": "http://localhost/shodan"}), WRONG_AUDIENCE),
    ("no-aud", lambda: hs256({"key": "k"}), WRONG_AUDIENCE),  # bound to no module: would open every vendor
    ("no-credential", lambda: hs256({"CTR_ENTITIES_LIMIT": 5, "aud": AUD}), WRONG_PAYLOAD),
    ("credential-null", lambda: hs256({"key": None, "aud": AUD}), WRONG_PAYLOAD),
    ("credential-list", lambda: hs256({"key": ["k"], "aud": AUD}), WRONG_PAYLOAD),
    ("payload-a-string", lambda: forged({"alg": "HS256"}, "key"), WRONG_STRUCTURE),
]


@pytest.mark.parametrize(("make_token", "reason"), [row[1:] for row in HS256_ATTACKS],
                         ids=[row[0] for row in HS256_ATTACKS])
def test_hs256_mode_refuses_through_the_app_without_a_vendor_call(pki, vendor, make_token, reason):
    client = client_for(pki, vendor, auth_mode="hs256", secret_key=SECRET)

    assert ask(client, make_token()) == refusal(reason)
    assert vendor.requests == []


def test_hs256_mode_accepts_the_control_token(pki, vendor):
    client = client_for(pki, vendor, auth_mode="hs256", secret_key=SECRET)
    assert ask(client, hs256({"key": "k", "aud": AUD}))["data"]["verdicts"]["count"] == 1
    assert [r.headers.get("key") for r in vendor.requests if r.path == "/api/v2/check"] == ["k"]
