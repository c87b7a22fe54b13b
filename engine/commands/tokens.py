"""Minting relay tokens: the HS256 JWTs of the classic serverless relay flow.

Used by `relay demo` and `relay jwt`; the engine itself only ever verifies tokens (auth.py).
"""
from __future__ import annotations

import secrets

import jwt


def new_secret_key() -> str:
    """A fresh SECRET_KEY: 256 bits from the OS's random source."""
    return secrets.token_urlsafe(32)


def mint_hs256(claims: dict, secret_key: str) -> str:
    return jwt.encode(claims, secret_key, algorithm="HS256")


def placeholder(setting):
    """A value for a required setting (one without default): `demo-<name>` passes for a host name,
    which the stand-in vendor's origin then replaces."""
    if setting.options:
        return setting.options[0]
    if setting.type == "integer":
        return setting.minimum if setting.minimum is not None else 1
    if setting.type == "boolean":
        return False
    return f"demo-{setting.name.lower().replace('_', '-')}"  # a host name too: no `_`, no capitals


def demo_claims(spec, audience: str | None = None) -> dict:
    """Placeholder credentials and default settings for the spec: what a stand-in vendor accepts."""
    claims = {credential.name: f"demo-{credential.name}" for credential in spec.credentials}
    claims.update({setting.name: setting.default for setting in spec.settings if setting.default is not None})
    claims.update({setting.name: placeholder(setting) for setting in spec.settings if setting.required})
    if audience:
        claims["aud"] = audience
    return claims
