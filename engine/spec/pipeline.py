"""The loading pipeline: YAML (with positions) -> JSON Schema check -> compile with semantic checks.

    check_text(text, file)  one spec's text -> (Spec or None, [SpecError]), every problem found

Imported only when a spec must be compiled (load.py reads compiled specs back from a cache
otherwise): it brings YAML, JSON Schema and every check with it.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import replace
from functools import lru_cache
from importlib import resources

import jsonschema

from engine.ctim import LIKELY_MEANT
from engine.errors import SpecError
from engine.spec.compiler import compile_spec
from engine.spec.document import Document
from engine.spec.source import load_yaml


@lru_cache(maxsize=1)
def spec_schema() -> dict:
    return json.loads((resources.files("engine") / "schema" / "spec.schema.json").read_text())


def check_text(text: str, file: str = "<spec>"):
    """Run the whole pipeline on one spec's text; returns (Spec or None, problems)."""
    try:
        document = load_yaml(text, file)
    except SpecError as problem:
        return None, [problem]
    if not isinstance(document.data, dict):
        what = "the file is empty" if document.data is None else f"the file holds {_json_type(document.data)}"
        return None, [document.error((), f"{what}: a spec is a YAML mapping (spec_version, name, title, ...)",
                                     "`relay new NAME` writes a starter spec")]
    problems = schema_problems(document)
    if any(p.severity == "error" for p in problems):
        return None, problems
    spec, more = compile_spec(document)
    problems = _unique(problems + more)  # a YAML alias (`*verdict`) is compiled, and checked, once per use
    return (spec if not any(p.severity == "error" for p in problems) else None), problems


# -- schema errors, located and explained ------------------------------------------------------

def schema_problems(document: Document) -> list[SpecError]:
    validator = jsonschema.Draft202012Validator(spec_schema())
    problems = []
    for error in sorted(validator.iter_errors(document.data), key=lambda e: list(map(str, e.absolute_path))):
        problems += explain(error, document)
    return _unique(problems)


def explain(error: jsonschema.ValidationError, document: Document) -> list[SpecError]:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    value, kind = error.instance, error.validator
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(schema.get("properties", {}))
        unknown = [key for key in value if key not in schema.get("properties", {})]
        return [document.error(path + (key,), f"unknown key {key!r}", _suggest(key, allowed, "keys"), key=True)
                for key in unknown]
    if "propertyNames" in error.schema_path:  # a name (of a setting, step, table...) that is no identifier
        return [document.error(path + (value,), f"{value!r} is not a usable name: expected {NAME_RULE}",
                               f"did you mean {_as_name(value)!r}?", key=True)]
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        description = schema.get("properties", {}).get(missing, {}).get("description", "")
        return [document.error(path, f"missing required key {missing!r}", f"{missing}: {description}"
                               if description else "", key=True)]
    if kind == "type":
        return [document.error(path, f"expected {_expected_type(error.validator_value)}, got {_got(value)}")]
    if kind == "enum":
        return [document.error(path, f"{_short(value)} is not allowed here", _choose(value, error.validator_value))]
    if kind == "const":
        return [document.error(path, f"expected {_short(error.validator_value)}, got {_short(value)}",
                               schema.get("description", ""))]
    if kind == "pattern":
        return [document.error(path, f"expected {_pattern_meaning(error.validator_value)}, got {_short(value)}",
                               schema.get("description", ""))]
    if kind in ("oneOf", "anyOf"):
        return _explain_alternatives(error, document)
    if kind in BOUNDS:
        return [document.error(path, f"expected {BOUNDS[kind]} {error.validator_value}, got {_short(value)}",
                               schema.get("description", ""))]
    if kind in ("minItems", "minProperties", "minLength"):
        what = {"minItems": "item", "minProperties": "key", "minLength": "character"}[kind]
        count = error.validator_value
        keys = sorted(schema.get("properties", {}))
        return [document.error(path, f"expected at least {count} {what}{'s' if count != 1 else ''}, got {_got(value)}",
                               f"give at least one of: {', '.join(keys)}" if keys else schema.get("description", ""))]
    if kind == "uniqueItems" and isinstance(value, list):
        twice = next(item for index, item in enumerate(value) if item in value[:index])
        return [document.error(path + (_last_index(value, twice),), f"{_short(twice)} is listed twice",
                               "remove the second one")]
    return [document.error(path, error.message)]


def _explain_alternatives(error: jsonschema.ValidationError, document: Document) -> list[SpecError]:
    """oneOf/anyOf: say which alternatives exist, or explain the one the value was meant for."""
    path, value = tuple(error.absolute_path), error.instance
    alternatives = error.validator_value
    if all(set(alt) == {"required"} for alt in alternatives):  # "exactly one of these keys"
        names = [alt["required"][0] for alt in alternatives]
        given = [name for name in names if isinstance(value, dict) and name in value]
        got = f", got {' and '.join(given)}" if given else ""
        hint = "a rule does one thing: keep one of them" if len(given) > 1 else ""
        return [document.error(path, f"needs exactly one of: {', '.join(names)}{got}", hint, key=True)]
    # The alternative whose type fits the value is the one the author meant: explain its problems.
    meant = [e for e in error.context if _fits_type(alternatives[e.relative_schema_path[0]], value)]
    if meant:
        branch = meant[0].relative_schema_path[0]
        problems = _unique([p for e in meant if e.relative_schema_path[0] == branch for p in explain(e, document)])
        # At the value itself, the hint tells every form the value may take, not just this one's.
        forms = error.schema.get("description") or "expected " + ", or ".join(_describe(alt) for alt in alternatives)
        return [replace(p, hint=forms) if p.path == path else p for p in problems]
    expected = ", or ".join(_describe(alt) for alt in alternatives)
    return [document.error(path, f"expected {expected}; got {_got(value)}")]


NAME_RULE = "letters, digits and _, not starting with a digit"
PATTERN_MEANINGS = {
    "^[a-z0-9][a-z0-9-]*$": "lower-case letters, digits and '-'",
    "^[A-Za-z_][A-Za-z0-9_]*$": NAME_RULE,
    "^[1-5]xx$": "a status class such as 4xx or 5xx",
    "^\\s*[A-Za-z_][A-Za-z0-9_]*\\s+in\\s+\\S": "`NAME in EXPRESSION`",
    "^P(?:\\d+D)?(?:T(?:\\d+H)?(?:\\d+M)?(?:\\d+S)?)?$":
        "a duration in days, hours, minutes and seconds (PT10M, P1D: a month has no fixed length)",
}
BOUNDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
          "exclusiveMaximum": "less than"}
TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "text", "integer": "a whole number",
              "number": "a number", "boolean": "true or false", "null": "null"}
PLURALS = {"object": "mappings", "array": "lists", "string": "texts", "integer": "whole numbers",
           "number": "numbers", "boolean": "booleans"}
JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int,
              "number": (int, float), "null": type(None)}


def _expected_type(expected) -> str:
    kinds = expected if isinstance(expected, list) else [expected]
    return " or ".join(TYPE_WORDS.get(kind, kind) for kind in kinds)


def _fits_type(schema: dict, value) -> bool:
    """Could `value` be meant for this alternative? (its type, or the type of its enum values)"""
    if "enum" in schema:
        return any(type(value) is type(choice) for choice in schema["enum"])
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    if isinstance(value, bool):
        return "boolean" in kinds
    return any(isinstance(value, JSON_TYPES.get(kind, ())) for kind in kinds)


def _describe(schema: dict) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if schema.get("type") == "array":
        return f"a list of {PLURALS.get(schema.get('items', {}).get('type'), 'values')}"
    if "pattern" in schema:
        return _pattern_meaning(schema["pattern"])
    return _expected_type(schema.get("type", "value"))


def _pattern_meaning(pattern: str) -> str:
    return PATTERN_MEANINGS.get(pattern, f"text matching {pattern}")


def _as_name(word: str) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in word)
    return name if name[:1].isalpha() or name[:1] == "_" else "_" + name


def _choose(value, choices: list) -> str:
    """'did you mean ...?' for a misspelt (or wrongly cased) value, then the choices when few."""
    texts = [str(c) for c in choices]
    by_case = {text.lower(): text for text in texts}
    meant = LIKELY_MEANT.get(str(value).lower())  # `ipv4` means `ip`, though `ipv6` is spelt closer
    close = [by_case[str(value).lower()]] if str(value).lower() in by_case else [meant] if meant in texts else \
        difflib.get_close_matches(str(value), texts, n=1, cutoff=0.6)
    listed = "one of: " + ", ".join(texts) if len(texts) <= 12 else ""
    return " ".join(part for part in (f"did you mean {close[0]!r}?" if close else "", listed) if part)


def _suggest(word: str, choices: list[str], what: str) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known {what}: {', '.join(choices)}" if choices and len(choices) <= 25 else ""


def _got(value) -> str:
    if isinstance(value, (dict, list)) and not value:
        return "an empty " + ("mapping" if isinstance(value, dict) else "list")
    return f"{_json_type(value)} {_short(value)}"


def _last_index(items: list, item) -> int:
    return len(items) - 1 - items[::-1].index(item)


def _json_type(value) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unique(problems: list[SpecError]) -> list[SpecError]:
    seen, result = set(), []
    for problem in problems:
        key = (problem.line, problem.column, problem.message)
        if key not in seen:
            seen.add(key)
            result.append(problem)
    return result
