"""Generate docs/spec-reference.md from the spec JSON Schema, the mapping control keys and the
function library (whose examples are evaluated here, so each shows the output it really gives).

    python -m engine.commands.reference > docs/spec-reference.md

A test fails when the committed file differs from what this prints, so the reference cannot
drift from the code.
"""
from __future__ import annotations

import json
from datetime import datetime
from uuid import UUID

from jmespath import functions as jp

from engine.language.expressions import Expression, Scope
from engine.language.functions import (EXAMPLE_NOW, FUNCTION_DOCS, FUNCTION_EXAMPLES, TIME_FORMATS, RelayFunctions,
                                       render_time)
from engine.language.mapping import CONTROL_KEY_DOCS
from engine.serving.runtime import FrozenClock, Runtime
from engine.spec.load import spec_schema

HEADER = """# Spec reference

Generated from `engine/schema/spec.schema.json`, `engine/language/mapping.py` and
`engine/language/functions.py` by `python -m engine.commands.reference`; do not edit by hand. The
guide is `docs/spec-language.md`.

## Keys

`deliberate`, `observe` and `refer` take the same keys (written `ENDPOINT` below); `groups` take them
too, but `steps` and `token`.
"""


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].split("/")[-1]]
    return node


def type_of(schema: dict, node: dict) -> str:
    node = resolve(schema, node)
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        values = node["enum"]
        shown = ", ".join(f"`{v}`" for v in values[:12]) + (", ..." if len(values) > 12 else "")
        return f"one of {shown}"
    if "oneOf" in node:
        return " or ".join(type_of(schema, alternative) for alternative in node["oneOf"] if "required" not in alternative
                           or len(alternative) > 1) or "mapping"
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"list of {type_of(schema, node.get('items', {}))}"
    if kind == "object" and "properties" not in node and isinstance(node.get("additionalProperties"), dict):
        return f"mapping of name to {type_of(schema, node['additionalProperties'])}"
    return kind or "any"


ENDPOINTS = ("deliberate", "observe", "refer")


def walk(schema: dict, node: dict, path: str, lines: list, seen: set) -> None:
    node = resolve(schema, node)
    properties = node.get("properties", {})
    if not properties and isinstance(node.get("additionalProperties"), dict):
        inner = resolve(schema, node["additionalProperties"])
        if inner.get("properties"):
            walk(schema, inner, f"{path}.NAME", lines, seen)
        return
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        walk(schema, node["items"], f"{path}[]", lines, seen)
        return
    required = set(node.get("required", ()))
    for key, child in properties.items():
        if not path and key in ENDPOINTS[1:]:
            continue  # the three endpoints share their keys: shown once, as ENDPOINT
        here = f"{path}.{key}" if path else ("ENDPOINT" if key in ENDPOINTS else key)
        target = resolve(schema, child)
        marker = id(target)
        description = child.get("description") or target.get("description", "")
        if not path and key in ENDPOINTS:
            description = "/deliberate/observables (verdicts), /observe/observables (CTIM entities), " \
                          "/refer/observables (links): the steps to run and the documents to make."
        lines.append(f"| `{here}` | {type_of(schema, child)} | {'yes' if key in required else ''} | {description} |")
        if marker in seen:  # recursive definitions (groups) are shown once
            continue
        seen = seen | {marker}
        walk(schema, target, here, lines, seen)


def mapping_lines() -> list[str]:
    lines = ["", "## Mapping objects", "",
             "An entity, reference or any object under `ENDPOINT.<entities>` is written as the document it makes:",
             "its keys are the document's fields, its leaves constants or templates. These keys are not fields: "
             "they say how many documents to make and when.", "", "| key | takes | what it does |", "|---|---|---|"]
    lines += [f"| `{key}` | {takes} | {what} |" for key, (takes, what) in CONTROL_KEY_DOCS.items()]
    return lines


def example_runtime() -> Runtime:
    moment = datetime.fromisoformat(EXAMPLE_NOW.replace("Z", "+00:00"))
    return Runtime(clock=FrozenClock(moment), new_uuid=lambda: UUID("5b2f0c8e-8f4e-4d53-9a61-3c1e2d7f9a10"))


def function_lines() -> list[str]:
    built_in = set(jp.Functions.FUNCTION_TABLE)
    lines = ["", "## Functions", "", "JMESPath's own functions (`length`, `join`, `map`, `sort_by`, ...) plus the "
             f"ones below. Each example runs on the data beside it, with the clock at {EXAMPLE_NOW}.", ""]
    runtime = example_runtime()
    for name in sorted(set(RelayFunctions.FUNCTION_TABLE) - built_in):
        lines.append(f"- `{FUNCTION_DOCS[name]}`" if name in FUNCTION_DOCS else f"- `{name}()`: UNDOCUMENTED")
        if name in FUNCTION_EXAMPLES:
            source, data = FUNCTION_EXAMPLES[name]
            output = Expression(source).evaluate(Scope(data, runtime, {}))
            given = f" with `{json.dumps(data)}`" if data else ""
            lines.append(f"  `{source}`{given} gives `{json.dumps(output)}`")
    return lines


def time_format_lines() -> list[str]:
    moment = example_runtime().clock.now()
    lines = ["", "### Time formats", "", f"`format_time(time, format)` for {EXAMPLE_NOW}:", "",
             "| format | gives |", "|---|---|"]
    for name in ["iso", *TIME_FORMATS, "epoch", "epoch_ms", "%d %b %Y %H:%M"]:
        lines.append(f"| `{name}` | `{json.dumps(render_time(moment, name))}` |")
    lines += ["", "`parse_time(value, format)` reads `iso`, `epoch`, `epoch_ms` or a strptime pattern "
              "(`%Y-%m-%d %H:%M:%S`); durations for `time_add` are ISO-8601: `P1Y`, `P3M`, `P2W`, `P30D`, "
              "`PT12H`, `-P7D`, `P1Y2M3DT4H5M6S`."]
    return lines


def reference() -> str:
    schema = spec_schema()
    lines = [HEADER, "| key | type | required | what it is |", "|---|---|---|---|"]
    walk(schema, schema, "", lines, set())
    return "\n".join(lines + mapping_lines() + function_lines() + time_format_lines()) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
