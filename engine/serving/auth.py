"""Incoming authorization: the JWT XDR sends, checked in one of two modes.

- `hs256`: signed with the relay's own SECRET_KEY (the classic serverless relay flow);
- `jwks`: XDR's RS256 configuration token, verified with the key its `kid` names in
  `https://<jwks_host>/.well-known/jwks`, where jwks_host must be on an allow-list (Cisco's relays
  trust any host the token names, which lets anyone mint accepted tokens).

In both modes `aud` must be the module's own URL (`RelayConfig.audience_for`): every vendor of a
deployment shares SECRET_KEY and claim names such as `key`, so a token that named no audience
would carry one vendor's key to any other.

Failures raise RelayError("authorization error", "Authorization failed: <reason>") with the
reasons Cisco's relays use, so XDR users see the messages they know.
"""
from __future__ import annotations

import threading
import time

import jwt
import requests

from engine.errors import authorization_error
from engine.serving.transport import exchange
from engine.serving.vendor_http import VendorFault, read_body

DEFAULT_JWKS_HOSTS = ("visibility.amp.cisco.com", "visibility.eu.amp.cisco.com",
                      "visibility.apjc.amp.cisco.com")
JWKS_TIMEOUT = 5.0
JWKS_CACHE_SECONDS = 300.0
JWKS_MAX_BYTES = 256 * 1024
MIN_SECRET_KEY_BYTES = 32  # 256 bits, as HS256's own key size

HEADER_MISSING = "Authorization header is missing"
WRONG_TYPE = "Wrong authorization type"
WRONG_STRUCTURE = "Wrong JWT structure"
WRONG_PAYLOAD = "Wrong JWT payload structure"
JWKS_HOST_MISSING = "jwks_host is missing in JWT payload. Make sure custom_jwks_host field is present in module_type"
WRONG_JWKS_HOST = ("Wrong jwks_host in JWT payload. Make sure domain follows the "
                   "visibility.<region>.cisco.com structure")
KID_NOT_FOUND = "kid from JWT header not found in API response"
WRONG_KEY = ("Failed to decode JWT with provided key. Make sure domain in custom_jwks_host "
             "corresponds to your SecureX instance region.")
WRONG_SECRET_KEY = ("Failed to decode JWT with provided key. Make sure the token was signed with this relay's "
                    "SECRET_KEY (relay jwt mints one).")
WRONG_AUDIENCE = "Wrong configuration-token-audience"
EXPIRED = "The JWT has expired"
NOT_YET_VALID = "The JWT is not yet valid"


class JwksFetchError(Exception):
    pass


def fetch_jwks_over_https(session: requests.Session, host: str) -> dict:
    """GET https://<host>/.well-known/jwks (never plain HTTP, never a redirect, bounded in size and
    in time: JWKS_TIMEOUT is a deadline for the whole fetch, head and body, so a host dripping bytes
    is given up on). The host is on the operator's allow-list, so it may be on a private network."""
    deadline = time.monotonic() + JWKS_TIMEOUT
    try:
        with exchange(deadline, private_ok=True):
            response = session.get(f"https://{host}/.well-known/jwks", timeout=JWKS_TIMEOUT,
                                   allow_redirects=False, stream=True)
            try:
                if response.status_code != 200:
                    raise JwksFetchError(f"HTTP {response.status_code}")
                content = read_body(response, deadline, JWKS_TIMEOUT, JWKS_MAX_BYTES)
            finally:
                response.close()
        if isinstance(content, VendorFault):
            raise JwksFetchError(content.message)
        document = requests.models.complexjson.loads(content)
    except (requests.RequestException, OSError, ValueError, RecursionError) as problem:  # deep nesting
        raise JwksFetchError(str(problem)[:200]) from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksFetchError("not a JWKS document")
    return document


class JwksCache:
    """JWKS documents by host, kept for a bounded time; one refresh when a kid is not found."""

    def __init__(self, fetch, ttl: float = JWKS_CACHE_SECONDS, clock=time.monotonic):
        self.fetch = fetch
        self.ttl = ttl
        self.clock = clock
        self._documents: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def key(self, host: str, kid: str):
        document = self._document(host, refresh=False)
        found = _find_key(document, kid)
        if found is None and self._age(host) > 30:  # keys rotate: look again, but not on every request
            found = _find_key(self._document(host, refresh=True), kid)
        return found

    def _age(self, host: str) -> float:
        with self._lock:
            stamp = self._documents.get(host, (float("-inf"), None))[0]
        return self.clock() - stamp

    def _document(self, host: str, refresh: bool) -> dict:
        with self._lock:
            cached = self._documents.get(host)
        if cached and not refresh and self.clock() - cached[0] < self.ttl:
            return cached[1]
        document = self.fetch(host)
        with self._lock:
            self._documents[host] = (self.clock(), document)
            if len(self._documents) > 16:  # only allow-listed hosts get here; stay small anyway
                self._documents.pop(next(iter(self._documents)))
        return document


def _find_key(document: dict, kid: str | None):
    if not isinstance(kid, str) or not kid:
        return None
    for entry in document.get("keys", []):
        if isinstance(entry, dict) and entry.get("kid") == kid:
            try:
                return jwt.PyJWK(entry, algorithm="RS256").key
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                return None
    return None


class Authenticator:
    """Turns an Authorization header into verified claims, or raises an authorization error."""

    def __init__(self, mode: str, *, secret_key: str | None = None, jwks_hosts=DEFAULT_JWKS_HOSTS,
                 jwks: JwksCache | None = None, leeway: float = 0):
        if mode not in ("hs256", "jwks"):
            raise ValueError(f"unknown auth mode {mode!r}")
        if mode == "hs256" and not secret_key:
            raise ValueError("hs256 mode needs SECRET_KEY")
        if mode == "hs256" and len(secret_key.encode("utf-8")) < MIN_SECRET_KEY_BYTES:
            raise ValueError(f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes")
        self.mode = mode
        self.secret_key = secret_key
        self.jwks_hosts = frozenset(h.strip().lower() for h in jwks_hosts if h.strip())
        self.jwks = jwks
        self.leeway = leeway

    def claims(self, authorization: str | None, audience: str) -> dict:
        """The verified claims of a token that must carry `aud` == audience."""
        token = bearer_token(authorization)
        try:
            read = jwt.decode_complete(token, options={"verify_signature": False})  # header and claims, one parse
        except jwt.PyJWTError:
            raise authorization_error(WRONG_STRUCTURE) from None
        header, unverified = read["header"], read["payload"]
        if not isinstance(unverified, dict):
            raise authorization_error(WRONG_STRUCTURE)
        if self.mode == "hs256":
            return self._decode(token, self.secret_key, "HS256", audience)
        host = unverified.get("jwks_host")
        if not host:
            raise authorization_error(JWKS_HOST_MISSING)
        if not isinstance(host, str) or host.lower() not in self.jwks_hosts:
            raise authorization_error(WRONG_JWKS_HOST)
        if header.get("alg") != "RS256":
            raise authorization_error(WRONG_KEY)
        try:
            key = self.jwks.key(host.lower(), header.get("kid"))
        except JwksFetchError:
            raise authorization_error(WRONG_JWKS_HOST) from None
        if key is None:
            raise authorization_error(KID_NOT_FOUND)
        return self._decode(token, key, "RS256", audience)

    def _decode(self, token: str, key, algorithm: str, audience: str) -> dict:
        try:
            return jwt.decode(token, key, algorithms=[algorithm], audience=audience, leeway=self.leeway,
                              options={"require": ["aud"]})
        except jwt.InvalidAudienceError:
            raise authorization_error(WRONG_AUDIENCE) from None
        except jwt.MissingRequiredClaimError:
            raise authorization_error(WRONG_AUDIENCE) from None
        except jwt.ExpiredSignatureError:
            raise authorization_error(EXPIRED) from None
        except jwt.ImmatureSignatureError:
            raise authorization_error(NOT_YET_VALID) from None
        except jwt.PyJWTError:
            raise authorization_error(WRONG_KEY if algorithm == "RS256" else WRONG_SECRET_KEY) from None


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise authorization_error(HEADER_MISSING)
    parts = authorization.split()
    if not parts or parts[0].lower() != "bearer":
        raise authorization_error(WRONG_TYPE)
    if len(parts) != 2:
        raise authorization_error(WRONG_STRUCTURE)
    return parts[1]


def required_credentials(claims: dict, spec) -> dict:
    """The spec's credentials from verified claims; a missing one (or a missing required setting,
    such as an on-premises host) is a payload structure error, as in Cisco's relays."""
    credentials = {}
    for credential in spec.credentials:
        value = claims.get(credential.name)
        if value is None or (isinstance(value, str) and not value) or not isinstance(value, (str, int)):
            if credential.required:
                raise authorization_error(WRONG_PAYLOAD)
            continue
        credentials[credential.name] = str(value)
    for setting in spec.settings:
        if setting.required and claims.get(setting.name) in (None, ""):
            raise authorization_error(WRONG_PAYLOAD)
    return credentials
