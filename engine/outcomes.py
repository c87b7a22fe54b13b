"""The one place where a vendor's answer (or a failed call) becomes a relay outcome.

Rules are tried in order (the step's own, then the spec's `http.errors`, then the defaults below);
the first that matches decides: `accept` (use the answer), `skip` (no data for this observable, no
error) or `error` (a RelayError whose message template sees status, headers, body, reason, fault).
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import RelayError
from .expressions import EvaluationError, Scope, Template
from .mapping import truthy
from .spec import ErrorRule
from .vendor_http import VendorAnswer, VendorFault


@dataclass(frozen=True)
class Outcome:
    kind: str  # accept, skip, error
    error: RelayError | None = None


ACCEPT = Outcome("accept")
SKIP = Outcome("skip")


def decide(rules: tuple, result: VendorAnswer | VendorFault, scope: Scope, vendor_title: str) -> Outcome:
    facts = outcome_facts(result)
    rule_scope = scope.with_values(**facts)
    for rule in rules:
        if matches(rule, result, rule_scope):
            if rule.outcome == "accept":
                return ACCEPT
            if rule.outcome == "skip":
                return SKIP
            return Outcome("error", RelayError(rule.code, render_message(rule.message, rule_scope), rule.type))
    return default_outcome(result, vendor_title)


def outcome_facts(result: VendorAnswer | VendorFault) -> dict:
    if isinstance(result, VendorFault):
        return {"status": None, "headers": {}, "body": None, "reason": None,
                "fault": {"kind": result.kind, "message": result.message}}
    return {"status": result.status, "headers": result.headers, "body": result.body_for_errors(),
            "reason": result.reason, "fault": None}


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


def render_message(message, scope: Scope) -> str:
    if not isinstance(message, Template):
        return str(message)
    try:
        value = message.render(scope)
    except EvaluationError:
        value = None
    return value if isinstance(value, str) and value else (str(value) if value not in (None, "") else
                                                            "Something went wrong.")


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
    reason = f" {result.reason}" if result.reason else ""
    return Outcome("error", RelayError("unknown", f"Unexpected response from {title}: HTTP {result.status}{reason}."))
