"""Generate docs/spec-reference.md from the spec JSON Schema and the function library.

    python -m engine.commands.reference > docs/spec-reference.md

A test fails when the committed file differs from what this prints, so the reference cannot
drift from the code.
"""
from __future__ import annotations

import json

from jmespath import functions as jp

from engine.language.functions import FUNCTION_DOCS, RelayFunctions
from engine.spec.load import spec_schema

HEADER = """# Spec reference

Generated from `engine/schema/spec.schema.json` and `engine/language/functions.py` by
`python -m engine.commands.reference`; do not edit by hand. The guide is `docs/spec-language.md`.

## Keys
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
        here = f"{path}.{key}" if path else key
        target = resolve(schema, child)
        marker = id(target)
        description = child.get("description") or target.get("description", "")
        lines.append(f"| `{here}` | {type_of(schema, child)} | {'yes' if key in required else ''} | {description} |")
        if marker in seen:  # recursive definitions (groups) are shown once
            continue
        seen = seen | {marker}
        walk(schema, target, here, lines, seen)


def function_lines() -> list[str]:
    built_in = set(jp.Functions.FUNCTION_TABLE)
    lines = ["", "## Functions", "", "JMESPath's own functions (`length`, `join`, `map`, `sort_by`, ...) plus:", ""]
    for name in sorted(set(RelayFunctions.FUNCTION_TABLE) - built_in):
        lines.append(f"- `{FUNCTION_DOCS[name]}`" if name in FUNCTION_DOCS else f"- `{name}()`: UNDOCUMENTED")
    return lines


def reference() -> str:
    schema = spec_schema()
    lines = [HEADER, "| key | type | required | what it is |", "|---|---|---|---|"]
    walk(schema, schema, "", lines, set())
    return "\n".join(lines + function_lines()) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
