"""Transports that let the engine's real HTTP client talk to recorded vendors and a harness JWKS.

`ReplayAdapter` is mounted on the engine's requests.Session: every vendor call goes through the
engine's own code path (headers, auth, timeouts, error table) and is answered by the case's
`StandInLedger`, or fails the way the case recorded it (TLS, connection, timeout).
`JwksAdapter` serves the harness's JWKS at https://visibility.amp.cisco.com/.well-known/jwks and
refuses every other host, as FORMAT.md prescribes.
"""
from __future__ import annotations

import io
import json
import ssl
from http import HTTPStatus
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from .compare import StandInLedger

HARNESS_JWKS_HOST = "visibility.amp.cisco.com"


def recorded_request(prepared: requests.PreparedRequest) -> dict:
    """The call as FORMAT.md records it: method, url, headers, json or data."""
    body = prepared.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    content_type = prepared.headers.get("Content-Type", "")
    sent_json, data = None, None
    if body:
        if "json" in content_type:
            try:
                sent_json = json.loads(body)
            except ValueError:
                data = body
        else:
            data = body
    return {"method": prepared.method, "url": prepared.url, "headers": dict(prepared.headers),
            "json": sent_json, "data": data}


def build_response(prepared: requests.PreparedRequest, recorded: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = recorded["status"]
    response.reason = recorded.get("reason") or _phrase(recorded["status"])
    headers = CaseInsensitiveDict(recorded.get("headers") or {})
    if "json" in recorded:
        content = json.dumps(recorded["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    else:
        content = (recorded.get("text") or "").encode()
        headers.setdefault("Content-Type", "text/plain")
    response.headers = headers
    response.raw = io.BytesIO(content)
    response.url = prepared.url
    response.request = prepared
    response.encoding = "utf-8"
    return response


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def raise_fault(recorded: dict, prepared: requests.PreparedRequest):
    kind, message = recorded["error"], recorded.get("message", "")
    if kind == "ssl":
        certificate_error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
        certificate_error.verify_message = message
        raise requests.exceptions.SSLError(certificate_error, request=prepared)
    if kind == "timeout":
        raise requests.exceptions.ReadTimeout(message, request=prepared)
    raise requests.exceptions.ConnectionError(message, request=prepared)


class ReplayAdapter(BaseAdapter):
    def __init__(self, ledger: StandInLedger):
        super().__init__()
        self.ledger = ledger

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        if verify is False:  # a relay that turns TLS checks off fails the case, whatever it then receives
            self.ledger.refuse(f"call made with TLS verification off: {request.method} {request.url}")
            raise requests.exceptions.SSLError("TLS verification was turned off", request=request)
        recorded = self.ledger.answer(recorded_request(request))
        if recorded is None:
            raise requests.exceptions.ConnectionError("no recorded call matches", request=request)
        if "error" in recorded:
            raise_fault(recorded, request)
        return build_response(request, recorded)

    def close(self):
        pass


class JwksAdapter(BaseAdapter):
    """Answers the JWKS fetch for the harness host only; every other host is unreachable."""

    def __init__(self, jwks: dict):
        super().__init__()
        self.jwks = jwks
        self.fetches = 0

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        if parts.scheme != "https" or parts.hostname != HARNESS_JWKS_HOST or parts.path != "/.well-known/jwks":
            raise requests.exceptions.ConnectionError(f"{parts.hostname} is unreachable", request=request)
        self.fetches += 1
        return build_response(request, {"status": 200, "json": self.jwks})

    def close(self):
        pass


def session_with(adapter: BaseAdapter) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or CA bundles from the environment in a replay
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
