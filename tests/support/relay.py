"""A relay under test: the real app, HS256 tokens, stand-in vendors on loopback, a frozen clock."""
from __future__ import annotations

from datetime import datetime, timezone

from engine.serving.app import create_app
from engine.serving.config import RelayConfig, upstream_variable
from engine.serving.runtime import FrozenClock, Runtime
from engine.commands.tokens import mint_hs256

SECRET = "tests-secret-key-0123456789abcdef"
BASE_URL = "http://localhost"
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)


class RelayUnderTest:
    def __init__(self, specs: dict, upstreams: dict | None = None, root_vendor: str | None = None, now=NOW):
        self.specs = specs
        upstreams = {upstream_variable(name)[len("RELAY_UPSTREAM_"):]: origin
                     for name, origin in (upstreams or {}).items()}
        self.config = RelayConfig(auth_mode="hs256", secret_key=SECRET, upstreams=upstreams, root_vendor=root_vendor)
        self.clock = FrozenClock(now)
        self.app = create_app(specs, self.config, Runtime(clock=self.clock))
        self.client = self.app.test_client()

    def token(self, claims: dict, path: str = "/") -> str:
        """A token bound to the module the path belongs to (claims may name another `aud`)."""
        return mint_hs256({"aud": self.audience(path), **claims}, SECRET)

    def audience(self, path: str) -> str:
        vendor = path.strip("/").split("/", 1)[0]
        return f"{BASE_URL}/{vendor}" if vendor in self.specs else BASE_URL

    def post(self, path: str, body=None, claims: dict | None = None, headers: dict | None = None, raw=None):
        headers = dict(headers or {})
        if claims is not None:
            headers["Authorization"] = "Bearer " + self.token(claims, path)
        if raw is not None:
            return self.client.post(path, data=raw, headers=headers, base_url=BASE_URL)
        if body is None:
            return self.client.post(path, headers=headers, base_url=BASE_URL)
        return self.client.post(path, json=body, headers=headers, base_url=BASE_URL)
