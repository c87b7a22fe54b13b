"""Request signing schemes (`http.auth.sign`): a vendor that authenticates each request by a
signature over the request itself, made with a secret that is never sent.

A scheme is one entry of SCHEMES: the parameters a spec gives it (templates over credentials and
settings) and a function from the request as it goes on the wire to the headers that sign it. The
time and the nonce come from the runtime, so tests and recorded cases sign exactly as they were
signed. AWS Signature Version 4, or another HMAC scheme, is one more function and one more entry.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Callable
from urllib.parse import urlsplit

import requests


@dataclass(frozen=True)
class WireRequest:
    """A request as it will be sent: what a signature covers."""

    method: str
    url: str  # scheme, host, path and query exactly as sent
    body: bytes


@dataclass(frozen=True)
class Scheme:
    parameters: tuple  # the names a spec gives values for
    sign: Callable  # (WireRequest, {parameter: value}, now, nonce) -> {header: value}


def wire_request(method: str, url: str, params: tuple, headers: dict, body_kwargs: dict) -> WireRequest:
    """Prepared the way the vendor client sends it, so the signed URL and body are the sent ones."""
    prepared = requests.Request(method, url, params=list(params) or None, headers=headers, **body_kwargs).prepare()
    body = prepared.body or b""
    return WireRequest(method, prepared.url, body.encode() if isinstance(body, str) else body)


# -- Akamai EdgeGrid (EG1-HMAC-SHA256) ----------------------------------------------------------------

EDGEGRID_MAX_BODY = 131072  # bytes of a POST body the content hash covers, as Akamai's clients hash


def _hmac_base64(key: bytes, text: str) -> str:
    return base64.b64encode(hmac.new(key, text.encode(), hashlib.sha256).digest()).decode()


def edgegrid(request: WireRequest, values: dict, now: datetime, nonce: str) -> dict:
    """Akamai's EdgeGrid: an HMAC-SHA256 over the method, scheme, host, path and query, the hash of
    a POST body and the header's unsigned part, keyed by an HMAC of the timestamp with the client
    secret. No request header is signed."""
    timestamp = now.strftime("%Y%m%dT%H:%M:%S+0000")
    unsigned = (f"EG1-HMAC-SHA256 client_token={values['client_token']};access_token={values['access_token']};"
                f"timestamp={timestamp};nonce={nonce};")
    parts = urlsplit(request.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    content_hash = ""
    if request.method == "POST" and request.body:
        content_hash = base64.b64encode(hashlib.sha256(request.body[:EDGEGRID_MAX_BODY]).digest()).decode()
    signed = "\t".join([request.method, parts.scheme, parts.netloc, target, "", content_hash, unsigned])
    signing_key = _hmac_base64(values["client_secret"].encode(), timestamp)
    return {"Authorization": unsigned + "signature=" + _hmac_base64(signing_key.encode(), signed)}


SCHEMES = {
    "edgegrid": Scheme(("client_token", "access_token", "client_secret"), edgegrid),
}
