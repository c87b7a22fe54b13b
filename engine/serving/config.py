"""The relay's settings, read once from the environment into a frozen object.

    RELAY_AUTH            hs256 | jwks (default: hs256 when SECRET_KEY is set, else jwks)
    SECRET_KEY            the HS256 signing key
    RELAY_JWKS_HOSTS      comma-separated allow-list of jwks_host values (default: SecureX regions)
    RELAY_AUDIENCE        expected `aud` (default: the relay's URL root)
    RELAY_VENDOR          also serve this vendor at the root
    RELAY_VENDORS_DIR     where the specs are (default: ./vendors, else the packaged catalogue)
    RELAY_UPSTREAM_<NAME> send every call of vendor NAME to this origin (path and query kept)
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.serving.auth import DEFAULT_JWKS_HOSTS


def upstream_variable(vendor: str) -> str:
    return "RELAY_UPSTREAM_" + vendor.upper().replace("-", "_")


@dataclass(frozen=True)
class RelayConfig:
    auth_mode: str = "jwks"
    secret_key: str | None = field(default=None, repr=False)
    jwks_hosts: tuple = DEFAULT_JWKS_HOSTS
    audience: str | None = None
    root_vendor: str | None = None
    vendors_dir: str = "vendors"
    upstreams: dict = field(default_factory=dict)

    @classmethod
    def from_environ(cls, environ=None) -> "RelayConfig":
        environ = os.environ if environ is None else environ
        secret = environ.get("SECRET_KEY") or None
        mode = (environ.get("RELAY_AUTH") or ("hs256" if secret else "jwks")).strip().lower()
        hosts = environ.get("RELAY_JWKS_HOSTS")
        upstreams = {key[len("RELAY_UPSTREAM_"):]: value for key, value in environ.items()
                     if key.startswith("RELAY_UPSTREAM_") and value}
        return cls(
            auth_mode=mode, secret_key=secret,
            jwks_hosts=tuple(h.strip() for h in hosts.split(",") if h.strip()) if hosts else DEFAULT_JWKS_HOSTS,
            audience=environ.get("RELAY_AUDIENCE") or None, root_vendor=environ.get("RELAY_VENDOR") or None,
            vendors_dir=environ.get("RELAY_VENDORS_DIR") or default_vendors_dir(), upstreams=upstreams,
        )

    def upstream_for(self, vendor: str) -> str | None:
        return self.upstreams.get(upstream_variable(vendor)[len("RELAY_UPSTREAM_"):])


def default_vendors_dir() -> str:
    """./vendors when run from a checkout (or a Lambda package), else next to the package."""
    local = Path("vendors")
    if local.is_dir():
        return str(local)
    return str(Path(__file__).resolve().parents[2] / "vendors")
