"""Validate CTIM entities and relay response payloads.

The structural rules (required fields, closed vocabularies, length limits, id and time
patterns, no unknown fields) live in `engine/schema/ctim.schema.json`; this module runs that
schema with `jsonschema` and adds the rules a JSON Schema cannot express:

* `disposition_name` must be the name of `disposition` (1 Clean ... 5 Unknown);
* every time interval has `start_time <= end_time`;
* every time lies in [1970-01-01, 2525-01-01T00:01Z) (checked through the schema's
  custom `ctim-time` format, so it is applied wherever a Time appears);
* in an observe/deliberate `data` object: `count == len(docs)`, ids are unique, and
  transient ids used by relationships, verdicts and notes point at documents of the same
  response.

Every function returns a list of problem strings, each starting with a JSON-ish path to the
offending value, e.g. `judgements.docs[0].disposition_name: 'Clean' does not match disposition 2`.
An empty list means the document is valid.
"""
from __future__ import annotations

import difflib
import json
import re
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from typing import Any, Iterator

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

Path = tuple[str | int, ...]
Problem = tuple[Path, str]

# type constant -> schema definition
ENTITY_DEFS: dict[str, str] = {
    "verdict": "Verdict",
    "judgement": "Judgement",
    "sighting": "Sighting",
    "indicator": "Indicator",
    "relationship": "Relationship",
    "incident": "Incident",
    "note": "Note",
}
# Entity kinds a relay may return that are not modelled in detail: base fields only.
OTHER_ENTITY_TYPES: dict[str, str] = {
    "actors": "actor",
    "attack_patterns": "attack-pattern",
    "campaigns": "campaign",
    "coas": "coa",
    "data_tables": "data-table",
    "feedbacks": "feedback",
    "identity_assertions": "identity-assertion",
    "malwares": "malware",
    "tools": "tool",
    "vulnerabilities": "vulnerability",
    "weaknesses": "weakness",
}
# plural key of the observe envelope -> entity type constant
PLURAL_KEYS: dict[str, str] = {
    **{f"{t}s": t for t in ENTITY_DEFS},
    **OTHER_ENTITY_TYPES,
}

DISPOSITIONS: dict[int, str] = {
    1: "Clean",
    2: "Malicious",
    3: "Suspicious",
    4: "Common",
    5: "Unknown",
}

# CTIM's spec range: >= 1970-01-01 and < 2525-01-01T00:00:00.000-00:01.
TIME_MIN = datetime(1970, 1, 1, tzinfo=timezone.utc)
TIME_MAX = datetime(2525, 1, 1, 0, 1, tzinfo=timezone.utc)

# Objects whose content is free-form: time-like keys inside them are not CTIM times.
_FREE_FORM_KEYS = frozenset({"relation_info", "rows", "meta", "scores", "query-params"})

_MAX_ENUM_LISTED = 8
_MAX_REPR = 120


# --------------------------------------------------------------------------- schema loading


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The CTIM schema document, read once from the package."""
    text = (resources.files("engine") / "schema" / "ctim.schema.json").read_text("utf-8")
    return json.loads(text)


def _parse_time(value: str) -> datetime:
    """An aware datetime; a missing offset would be ambiguous, so treat it as UTC."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _check_ctim_time(value: object) -> bool:
    """Format check for `ctim-time`: a real calendar instant inside CTIM's range."""
    if not isinstance(value, str) or not _time_pattern().match(value):
        return True  # `type` / `pattern` report those, once
    try:
        moment = _parse_time(value)
    except ValueError:
        raise ValueError("not a real date/time") from None
    if not TIME_MIN <= moment < TIME_MAX:
        raise ValueError("outside [1970-01-01T00:00Z, 2525-01-01T00:01Z)")
    return True


@lru_cache(maxsize=1)
def _time_pattern() -> re.Pattern[str]:
    return re.compile(load_schema()["$defs"]["Time"]["pattern"])


@lru_cache(maxsize=1)
def _format_checker() -> FormatChecker:
    # Only our own format: the stock ones would need optional packages.
    checker = FormatChecker(formats=())
    checker.checks("ctim-time", raises=ValueError)(_check_ctim_time)
    return checker


@lru_cache(maxsize=None)
def _validator(def_name: str) -> Draft202012Validator:
    """A validator for one `$defs` entry, resolving refs against the whole schema."""
    root = load_schema()
    if def_name not in root["$defs"]:
        raise KeyError(f"no definition {def_name!r} in ctim.schema.json")
    schema = {**root, "$ref": f"#/$defs/{def_name}"}
    return Draft202012Validator(schema, format_checker=_format_checker())


# --------------------------------------------------------------------------- rendering


def format_path(path: Path) -> str:
    """`('judgements', 'docs', 0, 'id')` -> `judgements.docs[0].id`; `()` -> `<root>`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "<root>"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _sort_key(problem: Problem) -> tuple:
    path, message = problem
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in path), message


def _render(problems: list[Problem]) -> list[str]:
    unique = dict.fromkeys(problems)  # same problem found twice (e.g. by two `if` branches)
    return [f"{format_path(path)}: {message}" for path, message in sorted(unique, key=_sort_key)]


# --------------------------------------------------------------------------- schema errors


def _required_problems(error: ValidationError, path: Path) -> Iterator[Problem]:
    match = re.fullmatch(r"'(.+)' is a required property", error.message)
    if match:
        yield path + (match.group(1),), "required field missing"
    else:
        yield path, error.message


def _unknown_field_problems(error: ValidationError, path: Path) -> Iterator[Problem]:
    known = error.schema.get("properties", {})
    what = "unknown entity key" if error.schema.get("title") == "ObserveData" else "unknown field"
    for key in error.instance:
        if key not in known:
            yield path + (key,), what


def _enum_message(error: ValidationError) -> str:
    allowed = error.validator_value
    if len(allowed) <= _MAX_ENUM_LISTED:
        return f"{_short(error.instance)} is not one of {allowed!r}"
    return f"{_short(error.instance)} is not a valid {error.schema.get('title', 'value')}"


def _message(error: ValidationError) -> str:
    """A short message for one schema error (jsonschema's own can quote huge values)."""
    keyword, value, instance = error.validator, error.validator_value, error.instance
    title = error.schema.get("title", "value")
    if keyword == "enum":
        return _enum_message(error)
    if keyword == "const":
        return f"{_short(instance)} is not {value!r}"
    if keyword == "type":
        return f"expected {value}, got {_json_type(instance)}"
    if keyword == "maxLength":
        return f"too long: {len(instance)} characters, at most {value} allowed ({title})"
    if keyword == "minLength":
        return "must not be empty" if value == 1 else f"shorter than {value} characters"
    if keyword == "pattern":
        return f"{_short(instance)} is not a valid {title}"
    if keyword == "format":
        return f"{_short(instance)} is not a valid {title}: {error.cause}"
    return error.message


def _schema_problems(def_name: str, instance: Any, prefix: Path) -> list[Problem]:
    problems: list[Problem] = []
    for error in _validator(def_name).iter_errors(instance):
        path = prefix + tuple(error.absolute_path)
        if error.validator == "required":
            problems.extend(_required_problems(error, path))
        elif error.validator == "additionalProperties" and error.validator_value is False:
            problems.extend(_unknown_field_problems(error, path))
        else:
            problems.append((path, _message(error)))
    return problems


# --------------------------------------------------------------------------- cross-field rules


def _disposition_problems(doc: dict, path: Path) -> list[Problem]:
    number, name = doc.get("disposition"), doc.get("disposition_name")
    if isinstance(number, bool) or number not in DISPOSITIONS:
        return []  # a bad number or a missing name is the schema's finding
    if not isinstance(name, str) or name not in DISPOSITIONS.values():
        return []
    if DISPOSITIONS[number] != name:
        return [(path + ("disposition_name",), f"{name!r} does not match disposition {number}")]
    return []


def _safe_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _parse_time(value)
    except ValueError:
        return None


def _interval_problems(node: Any, path: Path) -> Iterator[Problem]:
    """`start_time <= end_time` for every interval object (valid/observed times, intervals...)."""
    if isinstance(node, dict):
        start, end = _safe_time(node.get("start_time")), _safe_time(node.get("end_time"))
        if start and end and start > end:
            yield (path + ("end_time",),
                   f"end_time {node['end_time']!r} is before start_time {node['start_time']!r}")
        for key, child in node.items():
            if key not in _FREE_FORM_KEYS:
                yield from _interval_problems(child, path + (key,))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _interval_problems(child, path + (index,))


def _cross_field_problems(doc: dict, path: Path) -> list[Problem]:
    return _disposition_problems(doc, path) + list(_interval_problems(doc, path))


# --------------------------------------------------------------------------- entities


def _entity_def(entity_type: str) -> str | None:
    if entity_type in ENTITY_DEFS:
        return ENTITY_DEFS[entity_type]
    if entity_type in OTHER_ENTITY_TYPES.values():
        return "OtherEntity"
    return None


def _entity_problems(doc: Any, path: Path) -> list[Problem]:
    if not isinstance(doc, dict):
        return [(path, f"expected a CTIM entity object, got {_json_type(doc)}")]
    if "type" not in doc:
        return [(path + ("type",), "required field missing")]
    entity_type = doc["type"]
    def_name = _entity_def(entity_type) if isinstance(entity_type, str) else None
    if def_name is None:
        return [(path + ("type",), f"unknown entity type {_short(entity_type)}")]
    return _schema_problems(def_name, doc, path) + _cross_field_problems(doc, path)


def validate_entity(doc: Any) -> list[str]:
    """Problems of one CTIM entity, chosen by its `type`; paths are relative to the entity."""
    return _render(_entity_problems(doc, ()))


# --------------------------------------------------------------------------- observe / deliberate


def _iter_docs(data: dict) -> Iterator[tuple[str, Path, dict]]:
    """(plural key, path, doc) for every dict doc under a known key."""
    for key, bundle in data.items():
        if key not in PLURAL_KEYS or not isinstance(bundle, dict):
            continue
        docs = bundle.get("docs")
        if not isinstance(docs, list):
            continue
        for index, doc in enumerate(docs):
            if isinstance(doc, dict):
                yield key, (key, "docs", index), doc


def _count_problems(data: dict) -> list[Problem]:
    problems: list[Problem] = []
    for key, bundle in data.items():
        if key not in PLURAL_KEYS or not isinstance(bundle, dict):
            continue
        count, docs = bundle.get("count"), bundle.get("docs")
        if isinstance(count, int) and not isinstance(count, bool) and isinstance(docs, list):
            if count != len(docs):
                problems.append(((key, "count"), f"count {count} does not match len(docs) {len(docs)}"))
    return problems


def _collect_ids(data: dict) -> tuple[dict[str, Path], dict[str, Path], list[Problem]]:
    """All ids (first location), judgement ids, and duplicate-id problems."""
    ids: dict[str, Path] = {}
    judgement_ids: dict[str, Path] = {}
    problems: list[Problem] = []
    for key, path, doc in _iter_docs(data):
        doc_id = doc.get("id")
        if not isinstance(doc_id, str):
            continue
        if doc_id in ids:
            problems.append((path + ("id",), f"duplicate id {_short(doc_id)} (first at {format_path(ids[doc_id])})"))
            continue
        ids[doc_id] = path
        if key == "judgements":
            judgement_ids[doc_id] = path
    return ids, judgement_ids, problems


def _dangling(value: Any, known: dict[str, Path]) -> bool:
    # Only transient ids must resolve locally; long ids point at stored CTIA entities.
    return isinstance(value, str) and value.startswith("transient:") and value not in known


def _reference_problems(data: dict, ids: dict[str, Path], judgement_ids: dict[str, Path]) -> list[Problem]:
    problems: list[Problem] = []
    missing = "transient id {} does not match any {} in this response"
    for key, path, doc in _iter_docs(data):
        if key == "relationships":
            for field in ("source_ref", "target_ref"):
                if _dangling(doc.get(field), ids):
                    problems.append((path + (field,), missing.format(_short(doc[field]), "id")))
        elif key == "verdicts" and _dangling(doc.get("judgement_id"), judgement_ids):
            problems.append((path + ("judgement_id",), missing.format(_short(doc["judgement_id"]), "judgement id")))
        elif key == "notes" and isinstance(doc.get("related_entities"), list):
            for index, related in enumerate(doc["related_entities"]):
                if isinstance(related, dict) and _dangling(related.get("entity_id"), ids):
                    problems.append((path + ("related_entities", index, "entity_id"),
                                     missing.format(_short(related["entity_id"]), "id")))
    return problems


def validate_observe_data(data: Any) -> list[str]:
    """Problems of the `data` object of an /observe or /deliberate response."""
    return _render(observe_data_problems(data))


# --------------------------------------------------------------------------- refer / respond


def validate_refer_data(data: Any) -> list[str]:
    """Problems of the `data` list of a /refer/observables response (Ref objects)."""
    return _render(refer_data_problems(data))


def validate_respond_data(data: Any) -> list[str]:
    """Problems of the `data` list of a /respond/observables response (Action objects)."""
    return _render(_schema_problems("RespondData", data, ()))


# --------------------------------------------------------------------------- one field, for lint

# Open vocabularies: CTIM suggests these values (and Cisco's relays use a few more). Any text is
# valid CTIM, so lint calls a value outside them an error only when it is a near miss of one.
OBSERVED_RELATIONS = frozenset("""
Allocated Allocated_By Attached_To Bound Bound_By Characterized_By Characterizes Child_Of Closed Closed_By
Compressed Compressed_By Compressed_From Compressed_Into Connected_From Connected_To Contained_Within Contains
Copied Copied_By Copied_From Copied_To Created Created_By Decoded Decoded_By Decompressed Decompressed_By
Decrypted Decrypted_By Deleted Deleted_By Deleted_From Downloaded Downloaded_By Downloaded_From Downloaded_To
Dropped Dropped_By Encoded Encoded_By Encrypted Encrypted_By Encrypted_From Encrypted_To Extracted_From FQDN_Of
Freed Freed_By Hooked Hooked_By Initialized_By Initialized_To Injected Injected_As Injected_By Injected_Into
Installed Installed_By Joined Joined_By Killed Killed_By Listened_On Listened_On_By Loaded_From Loaded_Into
Locked Locked_By Mapped_By Mapped_Into Merged Merged_By Modified_Properties_Of Monitored Monitored_By Moved
Moved_By Moved_From Moved_To Opened Opened_By Packed Packed_By Packed_From Packed_Into Parent_Of Paused
Paused_By Previously_Contained Properties_Modified_By Properties_Queried Properties_Queried_By Read_From
Read_From_By Received Received_By Received_From Received_Via_Upload Redirects_To Refers_To Related_To Renamed
Renamed_By Renamed_From Renamed_To Resolved_To Resumed Resumed_By Root_Domain_Of Searched_For Searched_For_By
Sent Sent_By Sent_To Sent_Via_Upload Set_From Set_To Sub-domain_Of Supra-domain_Of Suspended Suspended_By
Unhooked Unhooked_By Unlocked Unlocked_By Unpacked Unpacked_By Uploaded Uploaded_By Uploaded_From Uploaded_To
Used Used_By Values_Enumerated Values_Enumerated_By Written_To_By Wrote_To
Hosted_By Leaked_From
""".split())
RELATIONSHIP_TYPES = frozenset("""
attributed-to based-on derived-from detects duplicate-of element-of exploits indicates member-of mitigates
phase-of related-to sighting-of subtechnique-of targets task-of technique-of uses variant-of
""".split())
OPEN_VOCABULARIES = {"relation": OBSERVED_RELATIONS, "relationship_type": RELATIONSHIP_TYPES}
# What authors write for an observable type CTIM spells otherwise.
LIKELY_MEANT = {"ipv4": "ip", "ip4": "ip", "ipaddress": "ip", "ip_address": "ip", "fqdn": "domain",
                "e-mail": "email", "email_address": "email", "uri": "url", "hash": "sha256", "file_hash": "sha256"}


def field_schema(entity_type: str, path: tuple):
    """The CTIM schema of the field at `path` (keys, and any int for a list element) in an entity
    of `entity_type` (or in a schema definition such as `Ref`), `$ref`s resolved; None when the
    path leaves what the schema describes."""
    definitions = load_schema()["$defs"]
    schema = definitions.get(entity_type if entity_type in definitions else _entity_def(entity_type) or "")
    for part in path:
        schema = _resolved(schema, definitions)
        if schema is None:
            return None
        if isinstance(part, int):
            schema = schema.get("items")
        elif part in schema.get("properties", {}):
            schema = schema["properties"][part]
        else:
            return None
    return _resolved(schema, definitions)


def _resolved(schema, definitions):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
    return schema if isinstance(schema, dict) else None


def unknown_field(entity_type: str, path: tuple, key: str) -> list | None:
    """The known field names when the object at `path` allows no field `key`, else None."""
    parent = field_schema(entity_type, path)
    if parent is None or parent.get("additionalProperties") is not False or key in parent.get("properties", {}):
        return None
    return sorted(parent.get("properties", {}))


def literal_problem(entity_type: str, path: tuple, value) -> tuple[str, list] | None:
    """(message, close or allowed values) when a constant written in a spec breaks CTIM at `path`;
    None when it is valid, or when CTIM says nothing about that field."""
    schema = field_schema(entity_type, path)
    if schema is None:
        return None
    name = path[-1] if path and isinstance(path[-1], str) else None
    vocabulary = OPEN_VOCABULARIES.get(name)
    if vocabulary is not None and isinstance(value, str) and value not in vocabulary:
        close = _close(value, vocabulary)
        return (f"{value!r} is not a valid CTIM {name.replace('_', ' ')}", close) if close else None
    if "enum" in schema and value not in schema["enum"]:
        meant = LIKELY_MEANT.get(str(value).lower())
        close = [meant] if meant in schema["enum"] else _close(value, schema["enum"])
        what = "observable type" if schema.get("title") == "ObservableType" else (name or "value").replace("_", " ")
        return f"{value!r} is not a valid CTIM {what}", close or list(schema["enum"])
    errors = list(Draft202012Validator(schema, format_checker=_format_checker()).iter_errors(value)) \
        if "properties" not in schema else []
    if errors:
        return f"{_short(value)}: {_message(errors[0])}", []
    return None


def _close(value, choices) -> list:
    text = str(value)
    by_case = {str(choice).lower(): choice for choice in choices}
    if text.lower() in by_case:
        return [by_case[text.lower()]]
    starting = [choice for choice in choices if text and str(choice).lower().startswith(text.lower())]
    if len(starting) == 1:  # an abbreviation: 'Med' for 'Medium'
        return starting
    return difflib.get_close_matches(text, [str(choice) for choice in choices], n=1, cutoff=0.75)


def observe_data_problems(data) -> list[Problem]:
    """The problems of an observe/deliberate `data` object, with their paths, for lint to locate."""
    if not isinstance(data, dict):
        return [((), f"expected an object, got {_json_type(data)}")]
    problems = _schema_problems("ObserveData", data, ())
    problems += _count_problems(data)
    for _key, path, doc in _iter_docs(data):
        problems += _cross_field_problems(doc, path)
    ids, judgement_ids, duplicates = _collect_ids(data)
    return problems + duplicates + _reference_problems(data, ids, judgement_ids)


def refer_data_problems(data) -> list[Problem]:
    return _schema_problems("ReferData", data, ())
