"""Keeping secrets out of what the relay shows: answers, logs, traces and recorded cases.

A credential can come back in many spellings: a vendor echoing the request (its URL percent-encoded,
its headers in an HTML or JSON error page), a library quoting a URL in an exception, a spec's
template changing its case (`upper(reason)`) or encoding it (`base64(...)`). A `Redactor` cuts
every one of these out, case-insensitively, from text and from JSON-like values: the whole answer
(data, error codes and messages), every log record, every `relay try` trace.
"""
from __future__ import annotations

import base64
import html
import json
import logging
import re
import threading
from collections import Counter
from functools import lru_cache
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 4  # shorter values are no secret worth mangling messages for ("HTTP 429" holds "42")
MIN_BASE64_FRAGMENT = 8  # a shorter run of base64 text matches too much that is not the secret


def spellings(secret: str) -> list:
    """One secret as it may appear in text: as is, percent-encoded, JSON- and HTML-escaped, base64,
    and as its UTF-8 bytes read as Latin-1 (how HTTP libraries decode a header or reason phrase)."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret),
             json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], html.escape(secret),
             secret.encode("utf-8").decode("latin-1")}
    forms |= set(base64_fragments(secret.encode("utf-8")))
    return sorted((form for form in forms if form), key=len, reverse=True)


def base64_fragments(data: bytes) -> list:
    """The base64 text that encodes `data` wherever it stands in a longer value (as in
    `Basic base64(user:key)`): for each of the three alignments, the characters that depend on
    `data` alone, in the standard and the URL-safe alphabet."""
    fragments = []
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + data).decode("ascii")
        first = -(-offset * 8 // 6)  # characters holding bits of the leading filler
        last = (offset + len(data)) * 8 // 6  # characters made of whole bytes of data
        fragment = encoded[first:last]
        if len(fragment) >= MIN_BASE64_FRAGMENT:
            fragments += [fragment, fragment.replace("+", "-").replace("/", "_")]
    return fragments


def secret_forms(values) -> list:
    """Every spelling of every secret worth hiding, longest first (so no spelling is cut in half)."""
    forms = set()
    for value in values:
        if value and len(str(value)) >= MIN_SECRET_LENGTH:
            forms |= set(spellings(str(value)))
    return sorted(forms, key=len, reverse=True)


class Redactor:
    """Replaces every spelling of the given secrets by REDACTED, whatever its letter case."""

    def __init__(self, forms: list):
        self._pattern = re.compile("|".join(map(re.escape, forms)), re.IGNORECASE) if forms else None
        # Serialised JSON shows a spelling JSON-escaped: the detector knows both forms. Escapes of
        # letters beyond ASCII do not follow their case, so non-ASCII secrets are always walked.
        needles = {json.dumps(form)[1:-1].lower() for form in forms} | {form.lower() for form in forms}
        self._needles = tuple(needles) if forms and all(form.isascii() for form in forms) else None

    def text(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text) if self._pattern else text

    def json_text(self, value) -> str:
        """`value` serialised as JSON, redacted: searched once as text, walked only when a spelling
        of a secret shows (or when a secret is not ASCII)."""
        text = json.dumps(value)
        if self._pattern is None:
            return text
        if self._needles is not None:
            lowered = text.lower()  # ASCII spellings: lower case is what IGNORECASE matches
            if not any(needle in lowered for needle in self._needles):
                return text
        return json.dumps(self.value(value))

    def value(self, value):
        """A JSON-like value with every string (keys included) redacted."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self._pattern.sub(REDACTED, value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {self.value(key): self.value(item) for key, item in value.items()}
        return value


@lru_cache(maxsize=256)
def _redactor(values: tuple) -> Redactor:
    return Redactor(secret_forms(values))


def redactor_for(values) -> Redactor:
    """The Redactor for these secrets (built once per set of secrets: requests repeat them)."""
    return _redactor(tuple(sorted({str(value) for value in values if value})))


def redact(value, secrets) -> object:
    """`value` (text or JSON-like) without any spelling of any of `secrets` (raw values)."""
    return redactor_for(secrets).value(value)


class SecretsOutOfLogs(logging.Filter):
    """Log records never carry a credential of a request being served, nor SECRET_KEY.

    Installed on the engine's and urllib3's loggers: whatever put a secret into a message or an
    exception's text (a library quoting a URL, a spec failing on a credential), it is cut out of
    the record, traceback included, before any handler sees it.
    """

    LOGGERS = ("relay", "urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry", "urllib3.response")

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._in_flight: Counter = Counter()

    def install(self) -> "SecretsOutOfLogs":
        for name in self.LOGGERS:
            if self not in logging.getLogger(name).filters:
                logging.getLogger(name).addFilter(self)
        return self

    def add(self, values) -> list:
        values = [str(value) for value in values if value]
        with self._lock:
            self._in_flight.update(values)
        return values

    def discard(self, values: list) -> None:
        with self._lock:
            self._in_flight.subtract(values)
            self._in_flight += Counter()  # drop the values no request holds any more

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = list(self._in_flight)
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed log call: leave it to logging's own error report
            return True
        redactor = redactor_for(secrets)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.text(record.exc_text)
        record.msg, record.args = redactor.text(message), None
        return True


SECRETS_OUT_OF_LOGS = SecretsOutOfLogs()


class RequestLinesWithoutQuery(logging.Filter):
    """Access-log lines (`"POST /path?jwt=... HTTP/1.1" 200`) written without the query string: the
    relay reads nothing from it, and a token or key sent there by mistake must not be kept. Installed
    on the loggers of the servers that log request lines themselves: Zappa's handler and Werkzeug's
    development server (gunicorn's access log is kept clean by `app.QueryForgetting`)."""

    LOGGERS = ("zappa.wsgi", "werkzeug")
    REQUEST_LINE = re.compile(r'("[A-Z]+ [^"?\s]*)\?[^"\s]*( HTTP/[\d.]+")')

    def install(self) -> "RequestLinesWithoutQuery":
        for name in self.LOGGERS:
            if self not in logging.getLogger(name).filters:
                logging.getLogger(name).addFilter(self)
        return self

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        if "?" in message:
            record.msg, record.args = self.REQUEST_LINE.sub(r"\1\2", message), None
        return True


REQUEST_LINES_WITHOUT_QUERY = RequestLinesWithoutQuery()
