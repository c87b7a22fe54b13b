"""Keeping secrets out of what the relay shows: answers, logs, traces and recorded cases.

A credential can surface as given or percent-encoded into a URL (a vendor echoing the request, a
library quoting it in an exception); every such spelling is cut out.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 4  # shorter values are no secret worth mangling messages for ("HTTP 429" holds "42")


def spellings(secret: str) -> list:
    """One secret as it may appear in text: as is, and percent-encoded into a URL path or query."""
    return sorted({secret, quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)},
                  key=len, reverse=True)


def secret_forms(values) -> list:
    """Every spelling of every secret worth hiding, longest first (so no spelling is cut in half)."""
    forms = set()
    for value in values:
        if value and len(str(value)) >= MIN_SECRET_LENGTH:
            forms |= set(spellings(str(value)))
    return sorted(forms, key=len, reverse=True)


def redact(value, forms: list):
    """The value (text, or a JSON-like structure of it) with every form replaced by REDACTED."""
    if isinstance(value, str):
        for form in forms:
            value = value.replace(form, REDACTED)
        return value
    if isinstance(value, list):
        return [redact(item, forms) for item in value]
    if isinstance(value, dict):
        return {redact(key, forms): redact(item, forms) for key, item in value.items()}
    return value


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
        forms = secret_forms(values)
        with self._lock:
            self._in_flight.update(forms)
        return forms

    def discard(self, forms: list) -> None:
        with self._lock:
            self._in_flight.subtract(forms)
            self._in_flight += Counter()  # drop the forms no request holds any more

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = sorted(self._in_flight, key=len, reverse=True)
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed log call: leave it to logging's own error report
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        message = redact(message, secrets)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        record.msg, record.args = message, None
        return True


SECRETS_OUT_OF_LOGS = SecretsOutOfLogs()
