"""The loading pipeline: YAML (with positions) -> JSON Schema check -> compile with semantic checks.

    load_spec(path)        one file -> Spec, or SpecErrors listing every problem found
    check_file(path)       one file -> (Spec or None, [SpecError]) for lint
    load_specs(directory)  every vendors/*.yaml -> {name: Spec}
"""
from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jsonschema

from .compiler import compile_spec
from .errors import SpecError, SpecErrors
from .yaml_source import Document, load_yaml


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
        return None, [document.error((), "a spec is a YAML mapping (spec_version, name, title, ...)")]
    problems = schema_problems(document)
    if any(p.severity == "error" for p in problems):
        return None, problems
    spec, more = compile_spec(document)
    problems += more
    return (spec if not any(p.severity == "error" for p in problems) else None), problems


def check_file(path) -> tuple:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        return None, [SpecError(f"cannot read: {problem}", str(path), 1, 1)]
    spec, problems = check_text(text, str(path))
    if spec is not None and path.stem != spec.name:
        problems.append(SpecError(f"name {spec.name!r} differs from the file name {path.stem!r}",
                                  str(path), *_where(text, "name"), ("name",)))
        spec = None
    return spec, problems


def load_spec(path):
    spec, problems = check_file(path)
    errors = [p for p in problems if p.severity == "error"]
    if errors or spec is None:
        raise SpecErrors(errors or problems)
    return spec


def spec_files(directory) -> list[Path]:
    return sorted(Path(directory).glob("*.yaml"))


def load_specs(directory) -> dict:
    """Every spec in a folder; one bad file stops the start, with every problem listed."""
    specs, errors = {}, []
    for path in spec_files(directory):
        spec, problems = check_file(path)
        errors += [p for p in problems if p.severity == "error"]
        if spec is not None:
            specs[spec.name] = spec
    if errors:
        raise SpecErrors(errors)
    return specs


def _where(text: str, key: str) -> tuple[int, int]:
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(key + ":"):
            return number, 1
    return 1, 1


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
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        unknown = [key for key in error.instance if key not in schema.get("properties", {})]
        return [document.error(path + (key,), f"unknown key {key!r}", _suggest(key, allowed, "keys"), key=True)
                for key in unknown]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [document.error(path, f"missing required key {missing!r}", key=True)]
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return [document.error(path, f"expected {_article(expected)}, got {_json_type(error.instance)} "
                                     f"{_short(error.instance)}")]
    if error.validator == "enum":
        choices = [str(c) for c in error.validator_value]
        hint = _suggest(str(error.instance), choices, "values") if len(choices) > 8 else \
            "one of: " + ", ".join(choices)
        return [document.error(path, f"{_short(error.instance)} is not allowed here", hint)]
    if error.validator == "const":
        return [document.error(path, f"must be {_short(error.validator_value)}, got {_short(error.instance)}")]
    if error.validator == "pattern":
        return [document.error(path, f"{_short(error.instance)} does not have the expected form",
                               schema.get("description", f"pattern {error.validator_value}"))]
    if error.validator in ("oneOf", "anyOf"):
        alternatives = error.validator_value
        if all(set(alt) == {"required"} for alt in alternatives):
            names = ", ".join(alt["required"][0] for alt in alternatives)
            return [document.error(path, f"needs exactly one of: {names}", key=True)]
        if error.context:
            deepest = max(error.context, key=lambda e: len(e.absolute_path))
            return explain(deepest, document)
    if error.validator == "propertyNames":
        return [document.error(path, f"{error.message}", "names are letters, digits and _")]
    return [document.error(path, error.message)]


def _suggest(word: str, choices: list[str], what: str) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known {what}: {', '.join(choices)}" if choices and len(choices) <= 25 else ""


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


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
