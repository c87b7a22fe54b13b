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
    """What /deliberate, /observe, /refer or /respond/observables answers for what the flows gathered."""
    if route in ("refer", "respond"):
        return enveloped(gathered.outputs.get("references" if route == "refer" else "actions", []), gathered.errors)
    data = {}
    for key, docs in gathered.outputs.items():
        docs = without_repeats(docs)
        if docs:
            data[key] = {"count": len(docs), "docs": docs}
    return enveloped(data, gathered.errors)


def without_repeats(docs: list) -> list:
    """A document made again for another observable (same id, same content) is answered once."""
    seen, kept = {}, []  # id -> the contents kept under it (compared only when an id comes again)
    for doc in docs:
        key = doc.get("id") if isinstance(doc, dict) else None
        if not isinstance(key, str):
            kept.append(doc)
            continue
        if key in seen and doc in seen[key]:
            continue
        seen.setdefault(key, []).append(doc)
        kept.append(doc)
    return kept
