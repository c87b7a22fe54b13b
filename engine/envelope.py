"""The relay's answer shapes: `{"data": ...}`, `{"errors": [...]}`, or both."""
from __future__ import annotations


def enveloped(data, errors: list) -> dict:
    """Data next to errors; empty data is left out when there are errors."""
    if not errors:
        return {"data": data}
    body = {"errors": [error.to_json() for error in errors]}
    if data:
        body["data"] = data
    return body


def errors_only(errors: list) -> dict:
    return {"errors": [error.to_json() for error in errors]}


def endpoint_answer(route: str, gathered) -> dict:
    """What /deliberate, /observe or /refer answers for what the flows gathered."""
    if route == "refer":
        return enveloped(gathered.outputs.get("references", []), gathered.errors)
    data = {key: {"count": len(docs), "docs": docs} for key, docs in gathered.outputs.items() if docs}
    return enveloped(data, gathered.errors)
