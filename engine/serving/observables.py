"""Relay request bodies: parse, validate and normalise the observables XDR sends.

Validation errors are built the way Cisco's relays report them (a marshmallow-style map of field
errors, by list index), so a spec can reproduce a relay's exact message; unsupported types are
dropped silently, types lower-cased, exact repeats removed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from engine.errors import RelayError
from engine.language.expressions import EvaluationError, Scope, Template

MAX_OBSERVABLES = 1000
MAX_VALUE_LENGTH = 8192
MAX_BODY_BYTES = 10 * 1024 * 1024  # a request body; API Gateway's own limit is 10 MB as well

MISSING = "Missing data for required field."
BLANK = "Field may not be blank."
NOT_TEXT = "Not a valid string."
UNKNOWN_FIELD = "Unknown field."
INVALID_TYPE = "Invalid input type."
TOO_LARGE = f"The request body is larger than {MAX_BODY_BYTES} bytes."


class InvalidInput(ValueError):
    """Carries the field errors: {index: {field: [messages]}} or {'_schema': [...]}."""

    def __init__(self, details: dict, summary: str = ""):
        super().__init__(summary or json.dumps(details))
        self.details = details

    def as_json(self) -> str:
        return json.dumps(self.details)

    def as_python(self) -> str:
        return repr(self.details)


@dataclass(frozen=True)
class Observable:
    type: str
    value: str

    def to_json(self) -> dict:
        return {"type": self.type, "value": self.value}


def parse_json_body(raw: bytes):
    """The body as JSON, or None when it is empty or not JSON (as Flask's get_json(silent=True))."""
    if not raw or not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        return None


def validate_observables(body) -> list[Observable]:
    if not isinstance(body, list):
        raise InvalidInput({"_schema": [INVALID_TYPE]})
    if len(body) > MAX_OBSERVABLES:
        raise InvalidInput({"_schema": [f"Longer than maximum length {MAX_OBSERVABLES}."]})
    errors, observables = {}, []
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            errors[index] = {"_schema": [INVALID_TYPE]}
            continue
        problems = {}
        for field in ("type", "value"):
            problem = field_problem(item, field)
            if problem:
                problems[field] = [problem]
        for key in item:
            if key not in ("type", "value"):
                problems[key] = [UNKNOWN_FIELD]
        if problems:
            errors[index] = problems
        else:
            observables.append(Observable(item["type"], item["value"]))
    if errors:
        raise InvalidInput(errors)
    return observables


def field_problem(item: dict, field: str) -> str | None:
    if field not in item or item[field] is None:
        return MISSING
    if not isinstance(item[field], str) or not _encodable(item[field]):
        return NOT_TEXT
    if not item[field].strip():
        return BLANK
    if len(item[field]) > MAX_VALUE_LENGTH:
        return f"Longer than maximum length {MAX_VALUE_LENGTH}."
    return None


def _encodable(text: str) -> bool:
    """JSON may carry lone surrogates (\\ud800), which no URL, header or UTF-8 body can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def supported_observables(observables: list[Observable], supported: frozenset) -> list[Observable]:
    """Lower-cased types, exact repeats removed (first kept), unsupported types dropped."""
    seen, result = set(), []
    for observable in observables:
        normal = Observable(observable.type.lower(), observable.value)
        if normal.type in supported and normal not in seen:
            seen.add(normal)
            result.append(normal)
    return result


def input_error(spec, problem: InvalidInput) -> RelayError:
    """The relay error for bad input, in the spec's words (`input:`)."""
    message = "Invalid JSON payload received. " + problem.as_json()
    if isinstance(spec.input_message, Template):
        scope = Scope({"details": problem.as_json(), "details_python": problem.as_python()}, None, {})
        try:
            message = str(spec.input_message.render(scope))
        except EvaluationError:
            pass
    elif isinstance(spec.input_message, str):
        message = spec.input_message
    return RelayError(spec.input_code, message, spec.input_type)
