"""Minting relay tokens: the HS256 JWTs of the classic serverless relay flow.

Used by `relay demo` and `relay jwt`; the engine itself only ever verifies tokens (auth.py).
"""
from __future__ import annotations

import functools
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


def demo_credential(credential) -> str:
    """A credential's stand-in: the spec's example of it, a throwaway key for a private key (a
    service account signs with it), else `demo-<name>`."""
    if credential.example is not None:
        return credential.example
    if credential.type == "private_key":
        return throwaway_private_key()
    return f"demo-{credential.name}"


@functools.lru_cache(maxsize=1)
def throwaway_private_key() -> str:
    """An RSA key made for this process only (PEM), for demos and lint's dry run to sign with."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def demo_claims(spec, audience: str | None = None) -> dict:
    """Placeholder credentials and default settings for the spec: what a stand-in vendor accepts."""
    claims = {credential.name: demo_credential(credential) for credential in spec.credentials}
    claims.update({setting.name: setting.default for setting in spec.settings if setting.default is not None})
    claims.update({setting.name: placeholder(setting) for setting in spec.settings if setting.required})
    if audience:
        claims["aud"] = audience
    return claims
