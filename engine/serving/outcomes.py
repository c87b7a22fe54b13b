"""The one place where a vendor's answer (or a failed call) becomes a relay outcome.

Rules are tried in order (the step's own, then the spec's `http.errors`, then the defaults below);
the first that matches decides: `accept` (use the answer, with a warning if the rule gives one),
`skip` (no data for this observable, no error), `skip step` (nothing from this call, the observable
goes on) or `error` (a RelayError whose templates see status, headers, body, text, reason, fault and
the step's scope). Rules `when: {timed_out: true}` judge only the last answer of a poll that ran
out of time, and only they do; none matching, that answer is a `timeout` error.

Rate limits: the relay never waits and retries inside a request (XDR would time out first and a
retry spends more of the customer's quota); a 429 answers at once, by default as `too many requests`
saying when the vendor asked to be called again (its Retry-After header).
"""
from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from engine.errors import RelayError
from engine.language.expressions import EvaluationError, Scope, Template
from engine.language.mapping import truthy
from engine.spec.model import ErrorRule
from engine.serving.vendor_http import VendorAnswer, VendorFault


@dataclass(frozen=True)
class Outcome:
    kind: str  # accept, skip, error
    error: RelayError | None = None  # with accept: a warning to answer beside the data


ACCEPT = Outcome("accept")
SKIP = Outcome("skip")  # nothing for this observable
SKIP_STEP = Outcome("skip step")  # nothing from this call: the step's value is null


def decide(rules: tuple, result: VendorAnswer | VendorFault, scope: Scope, vendor_title: str,
           timed_out: bool = False) -> Outcome:
    facts = outcome_facts(result)
    rule_scope = scope.with_values(**facts)
    for rule in rules:
        if rule.timed_out == timed_out and matches(rule, result, rule_scope):
            if rule.outcome == "accept":
                return ACCEPT if rule.warning is None else Outcome("accept", RelayError(
                    render_message(rule.warning[0], rule_scope) or "warning",
                    render_message(rule.warning[1], rule_scope) or "", "warning"))
            if rule.outcome in ("skip", "skip step"):
                return SKIP if rule.outcome == "skip" else SKIP_STEP
            message = render_message(rule.message, rule_scope)
            if message is None:  # the template found nothing to say (e.g. no JSON body): say what happened
                fallback = default_outcome(result, vendor_title).error
                message = fallback.message if fallback else unexpected(result, vendor_title)
            code = render_message(rule.code, rule_scope) or "unknown"  # e.g. "{{ lower(reason) }}"
            return Outcome("error", RelayError(code, message, rule.type))
    if timed_out:
        return Outcome("error", RelayError("timeout", f"{vendor_title} did not finish in time."))
    return default_outcome(result, vendor_title)


def outcome_facts(result: VendorAnswer | VendorFault) -> dict:
    if isinstance(result, VendorFault):
        return {"status": None, "headers": {}, "body": None, "reason": None, "text": None,
                "fault": {"kind": result.kind, "message": result.message}}
    # Header names as sent, and in lower case too: `headers."retry-after"` works whatever the vendor's case.
    headers = {**{name.lower(): value for name, value in result.headers.items()}, **result.headers}
    return {"status": result.status, "headers": headers, "body": result.body_for_errors(),
            "reason": result.reason, "text": result.text, "fault": None}


def matches(rule: ErrorRule, result, scope: Scope) -> bool:
    if isinstance(result, VendorFault):
        return rule.fault in (result.kind, "any")
    if rule.fault is not None:
        return False
    if rule.statuses is not None and result.status not in rule.statuses:
        return False
    if rule.body is not None:
        try:
            return truthy(rule.body.evaluate(scope))
        except EvaluationError:
            return False  # a body of another shape than the rule expects does not match it
    return True


def render_message(message, scope: Scope) -> str | None:
    """The rule's message; None when its template renders to nothing (or fails on this answer)."""
    if not isinstance(message, Template):
        return str(message)
    try:
        value = message.render(scope)
    except EvaluationError:
        value = None
    return value if isinstance(value, str) and value else (str(value) if value not in (None, "") else None)


def default_outcome(result, title: str) -> Outcome:
    if isinstance(result, VendorFault):
        if result.kind == "ssl":
            return Outcome("error", RelayError("unknown", f"Unable to verify SSL certificate: {result.message}"))
        if result.kind == "timeout":
            return Outcome("error", RelayError("timeout", f"{title} did not answer in time: {result.message}."))
        if result.kind == "connection":
            return Outcome("error", RelayError("connection error", f"Unable to connect to {title}."))
        return Outcome("error", RelayError("unknown", f"{title}: {result.message}."))
    if result.ok:
        return ACCEPT
    if result.status == 429:
        wait = retry_after(result.headers)
        later = f"retry after {wait}" if wait else "please, try again later"
        return Outcome("error", RelayError("too many requests",
                                           f"Too many requests have been made to {title}: {later}."))
    return Outcome("error", RelayError("unknown", unexpected(result, title)))


def unexpected(result: VendorAnswer, title: str) -> str:
    reason = f" {result.reason}" if result.reason else ""
    return f"Unexpected response from {title}: HTTP {result.status}{reason}."


def retry_after(headers: dict) -> str | None:
    """A vendor's Retry-After as words: "30 seconds", or the HTTP date it sent; None when absent or unusable."""
    value = next((str(v).strip() for k, v in headers.items() if k.lower() == "retry-after"), "")
    if value.isdigit():
        return f"{int(value)} seconds"
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return value[:64]
