"""Access tokens a vendor issues for the credentials (`http.auth.token`): OAuth2 client
credentials, a service account's signed assertion, any exchange of credentials for a token.

A token is asked for when a call first needs one. It is kept in memory only, never on disk, until
shortly before it expires, under a key made of the spec and every credential and setting of the
request: one tenant's token never serves another tenant's credentials. Calls that need a token
at the same moment wait for one exchange. A call answered with a `refresh_on` status (401) forgets
the token it carried; the step asks for a new one and makes the call once more.

Every token, fetched or kept, is a secret of the requests that use it: redacted from answers,
logs and traces like a credential.
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict

from engine.errors import RelayError
from engine.language.expressions import EvaluationError, Template
from engine.serving.failures import StepFailed

MAX_KEPT = 1000  # tokens kept per vendor: one per tenant of a shared relay
MARGIN = 60.0  # seconds before its expiry a kept token is no longer used (a call takes a while)


class TokenCache:
    """Tokens by key, each with the monotonic time it stops being used."""

    def __init__(self, max_kept: int = MAX_KEPT):
        self._kept: OrderedDict = OrderedDict()
        self._locks: dict = {}
        self._lock = threading.Lock()
        self.max_kept = max_kept

    def lock_for(self, key: str) -> threading.Lock:
        """One lock per key: the calls that need the same token wait for one exchange."""
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: str, now: float) -> str | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept[1] <= now:
                self._kept.pop(key, None)
                return None
            self._kept.move_to_end(key)
            return kept[0]

    def put(self, key: str, token: str, until: float) -> None:
        with self._lock:
            self._kept[key] = (token, until)
            self._kept.move_to_end(key)
            while len(self._kept) > self.max_kept:
                old, _ = self._kept.popitem(last=False)
                self._locks.pop(old, None)

    def forget(self, key: str, token: str) -> None:
        """Drop `token` if it is still the one kept (another call may have replaced it already)."""
        with self._lock:
            if self._kept.get(key, (None,))[0] == token:
                del self._kept[key]


def token_key(work) -> str:
    """The spec, and every credential and setting of the request: what a token is issued for."""
    facts = json.dumps([work.spec.name, work.credentials, work.settings], sort_keys=True, default=str)
    return hashlib.sha256(facts.encode()).hexdigest()


def access_token(work, refused: str | None = None) -> str:
    """The token for this request's credentials: the request's own, a kept one, or a new one.
    `refused`: the token a call was just refused with, forgotten first. Raises StepFailed (the
    token request's error, once per request) or OutOfTime."""
    if refused is None and work.token is not None:
        return work.token  # this request has its token: no lock, no key
    config = work.spec.http.auth_token
    cache, clock = work.client.tokens, work.runtime.clock
    key = token_key(work)
    with cache.lock_for(key):
        if refused is not None and work.token == refused:
            cache.forget(key, refused)
            work.token = None
        if work.token is not None:
            return work.token
        if work.token_error is not None:
            raise StepFailed(work.token_error)
        token = cache.get(key, clock.monotonic())
        if token is None:
            try:
                token, lifetime = fetch(config, work)
            except StepFailed as failure:
                work.token_error = failure.error  # the other observables of the request fail with it, no call
                raise
            if lifetime is not None:
                cache.put(key, token, clock.monotonic() + lifetime - min(MARGIN, lifetime / 10))
        work.note_secret(token)
        work.token = token
        return token


def fetch(config, work) -> tuple:
    """(token, seconds it lives or None) from the vendor's token request."""
    from engine.serving.steps import exchange, judge  # steps calls this module for the token its calls carry

    call = exchange(config.step, work.base_scope(), work)
    for (name, written), (_, sent) in zip(config.step.form or (), call.request.form or ()):
        if isinstance(written, Template) and sent:
            work.note_secret(sent)  # what the request makes from credentials (a signed assertion) is secret too
    value, answered = judge(config.step, call, work.base_scope(), work, [])
    token = value if isinstance(value, str) and value else None
    if token is None:
        raise StepFailed(RelayError("authorization error", f"Authorization failed: {work.spec.title} issued no "
                                                           "access token for these credentials."))
    try:
        lifetime = config.expires_in.evaluate(answered)
    except EvaluationError:
        lifetime = None
    lifetime = float(lifetime) if isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool) \
        and lifetime > 0 else None
    return token, lifetime
