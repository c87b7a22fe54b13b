"""The relay's settings, read once from the environment into a frozen object.

    RELAY_AUTH             hs256 | jwks (default: hs256 when SECRET_KEY is set, else jwks)
    SECRET_KEY             the HS256 signing key (at least 32 bytes)
    RELAY_JWKS_HOSTS       comma-separated allow-list of jwks_host values (default: the XDR regions)
    RELAY_AUDIENCE         the deployment's public URL root; a token's `aud` must be it plus
                           `/<vendor>` (default: the URL root the request came to)
    RELAY_VENDOR           also serve this vendor at the root
    RELAY_VENDORS_DIR      where the specs are (default: ./vendors, else the packaged catalogue)
    RELAY_UPSTREAM_<NAME>  send every call of vendor NAME to this origin (path and query kept)
    RELAY_PRIVATE_VENDORS  comma-separated vendors (or *) whose spec says `http.private_network`
                           and which may be reached on loopback or private addresses
    RELAY_REQUEST_BUDGET   seconds one relay request may take, all its vendor calls included
                           (default 20, at most 28: API Gateway gives up at 29)

A setting that cannot be used stops the start with a `ConfigError` naming the variable.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.serving.auth import DEFAULT_JWKS_HOSTS, MIN_SECRET_KEY_BYTES
from engine.serving.budget import DEFAULT_REQUEST_BUDGET, MAX_REQUEST_BUDGET


class ConfigError(ValueError):
    """An environment setting the relay cannot start with."""


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
    private_vendors: frozenset = frozenset()
    request_budget: float = DEFAULT_REQUEST_BUDGET
    spec_cache: str | None = None  # a folder of compiled specs (spec/cache.py), when the operator names one
    request_log: bool = False  # one JSON line per request on stdout (requestlog.py); on when served
    log_observables: bool = False  # and the observables' values in it
    metrics: bool = False  # CloudWatch metrics in those lines (Embedded Metric Format): on Lambda
    answer_cache_bytes: int = 32 * 1024 * 1024  # vendor answers kept by steps that ask (answercache.py)

    def __post_init__(self):
        if self.auth_mode not in ("hs256", "jwks"):
            raise ConfigError(f"RELAY_AUTH is {self.auth_mode!r}: it is hs256 or jwks")
        if self.auth_mode == "hs256" and not self.secret_key:
            raise ConfigError("RELAY_AUTH=hs256 needs SECRET_KEY (`relay jwt` makes one)")
        if self.secret_key and len(self.secret_key.encode("utf-8")) < MIN_SECRET_KEY_BYTES:
            raise ConfigError(f"SECRET_KEY is {len(self.secret_key.encode('utf-8'))} bytes: anyone could guess it "
                              f"and mint tokens; use at least {MIN_SECRET_KEY_BYTES} (`relay jwt` makes one)")
        # No limit (inf) only for a harness replaying recorded cases in frozen time (conformance),
        # never from the environment (from_environ).
        if not (0 < self.request_budget <= MAX_REQUEST_BUDGET or self.request_budget == math.inf):
            raise ConfigError(f"RELAY_REQUEST_BUDGET is {self.request_budget:g}: give seconds, more than 0 and "
                              f"at most {MAX_REQUEST_BUDGET:g} (API Gateway gives up at 29)")

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
            jwks_hosts=_names(hosts) if hosts else DEFAULT_JWKS_HOSTS,
            audience=environ.get("RELAY_AUDIENCE") or None, root_vendor=environ.get("RELAY_VENDOR") or None,
            vendors_dir=environ.get("RELAY_VENDORS_DIR") or default_vendors_dir(), upstreams=upstreams,
            private_vendors=frozenset(_names(environ.get("RELAY_PRIVATE_VENDORS", ""))),
            request_budget=min(_number(environ, "RELAY_REQUEST_BUDGET", DEFAULT_REQUEST_BUDGET, "seconds"),
                               MAX_REQUEST_BUDGET + 1),  # `inf` is refused like any budget past the maximum
            spec_cache=environ.get("RELAY_SPEC_CACHE") or None,
            request_log=_switch(environ, "RELAY_REQUEST_LOG", True),
            log_observables=_switch(environ, "RELAY_LOG_OBSERVABLES", False),
            metrics=_switch(environ, "RELAY_METRICS", bool(environ.get("AWS_LAMBDA_FUNCTION_NAME"))),
            answer_cache_bytes=int(_number(environ, "RELAY_ANSWER_CACHE_MB", 32, "MiB") * 1024 * 1024),
        )

    def upstream_for(self, vendor: str) -> str | None:
        return self.upstreams.get(upstream_variable(vendor)[len("RELAY_UPSTREAM_"):])

    def may_reach_private(self, vendor: str) -> bool:
        """The operator's half of reaching a vendor on a private network (the spec says the other)."""
        return vendor in self.private_vendors or "*" in self.private_vendors

    def audience_for(self, url_root: str, vendor: str | None) -> str:
        """The `aud` a token must carry on this vendor's routes: the deployment's root, plus
        `/<vendor>` on the per-vendor routes, so a token minted for one vendor opens no other."""
        root = (self.audience or url_root).rstrip("/")
        return f"{root}/{vendor}" if vendor else root


def _names(text: str) -> tuple:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _switch(environ, name: str, default: bool) -> bool:
    text = (environ.get(name) or "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} is {text!r}: give true or false")


def _number(environ, name: str, default: float, unit: str) -> float:
    text = (environ.get(name) or "").strip()
    if not text:
        return default
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{name} is {text!r}: give a number of {unit}") from None
    if number < 0:
        raise ConfigError(f"{name} is {text!r}: give a number of {unit}, 0 or more")
    return number


def default_vendors_dir() -> str:
    """./vendors when run from a checkout (or a Lambda package), else next to the package."""
    local = Path("vendors")
    if local.is_dir():
        return str(local)
    return str(Path(__file__).resolve().parents[2] / "vendors")
