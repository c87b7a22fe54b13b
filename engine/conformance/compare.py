"""Comparison rules of the conformance corpus (see the corpus's FORMAT.md).

Three jobs, all stdlib only:

* Relay responses: `canonicalize` renumbers random (uuid4) transient ids so two
  runs can be compared, and `compare_documents` reports every difference between
  an actual and an expected JSON document, treating the lists named in a case's
  `unordered` as multisets.
* Vendor calls: `call_matches` decides whether a call the engine made is the
  same as a recorded one (method, URL with unordered query, recorded headers,
  body); `describe_call` names a call in one line for reports.
* `StandInLedger` plays the recorded vendor: it answers each call with the
  response of the first unused recorded call it matches and keeps track of
  unexpected calls and recorded calls that were never made.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections import Counter, deque
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit

JSONValue = Any
Segments = tuple[str, ...]

# Path segment standing for "every element of a list".
ANY_ELEMENT = "[]"
MAX_SHOWN_CHARS = 120
# Recorded but never compared: it names the recording HTTP client, not the relay.
IGNORED_HEADERS = frozenset({"user-agent"})
DEFAULT_PORTS = {"http": 80, "https": 443}

# The uuid is always the last 36 characters; anything before its dash is the name.
_TRANSIENT_ID = re.compile(
    r"^(?P<prefix>transient:(?:.*-)?)"
    r"(?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)


# --------------------------------------------------------------------------
# Unordered paths
# --------------------------------------------------------------------------


def parse_unordered_path(path: str) -> Segments:
    """Split `data.sightings.docs[].relations` into
    `("data", "sightings", "docs", "[]", "relations")`."""
    segments: list[str] = []
    for part in path.split(".") if path else []:
        key = part
        element_markers = 0
        while key.endswith(ANY_ELEMENT):
            key = key[: -len(ANY_ELEMENT)]
            element_markers += 1
        if key:
            segments.append(key)
        segments.extend([ANY_ELEMENT] * element_markers)
    return tuple(segments)


def parse_unordered_paths(paths: Iterable[str] | None) -> frozenset[Segments]:
    return frozenset(parse_unordered_path(path) for path in paths or ())


# --------------------------------------------------------------------------
# Transient-id canonicalisation
# --------------------------------------------------------------------------


def random_id_prefix(value: Any) -> str | None:
    """`transient:<name>-` (or `transient:`) when value is a transient id
    with a version-4 uuid, else None."""
    if not isinstance(value, str):
        return None
    match = _TRANSIENT_ID.match(value)
    if match is None:
        return None
    if uuid.UUID(match.group("uuid")).version != 4:
        return None
    return match.group("prefix")


def canonicalize(document: JSONValue, unordered_paths: Iterable[str] | None = ()) -> JSONValue:
    """Return a copy of document with every random transient id replaced by
    `transient:<name>-#<n>`, numbered as FORMAT.md describes."""
    unordered = parse_unordered_paths(unordered_paths)
    numbers = _number_random_ids(document, unordered)
    return _replace_random_ids(document, numbers)


def _number_random_ids(document: JSONValue, unordered: frozenset[Segments]) -> dict[str, int]:
    numbers: dict[str, int] = {}
    deferred: deque[tuple[list, Segments]] = deque()
    _number_in_walk_order(document, (), unordered, numbers, deferred)
    # Ids met only inside unordered lists: their position there means nothing,
    # so walk each list's elements in an order both sides agree on.
    while deferred:
        items, segments = deferred.popleft()
        element_segments = segments + (ANY_ELEMENT,)
        for element in sorted(items, key=lambda item: _masked_text(item, element_segments, unordered, numbers)):
            _number_in_walk_order(element, element_segments, unordered, numbers, deferred)
    return numbers


def _number_in_walk_order(
    node: JSONValue,
    segments: Segments,
    unordered: frozenset[Segments],
    numbers: dict[str, int],
    deferred: deque[tuple[list, Segments]],
) -> None:
    """Number new random ids depth-first, keys sorted, leaving unordered lists for later."""
    if isinstance(node, str):
        if node not in numbers and random_id_prefix(node) is not None:
            numbers[node] = len(numbers) + 1
    elif isinstance(node, dict):
        for key in sorted(node):
            _number_in_walk_order(node[key], segments + (key,), unordered, numbers, deferred)
    elif isinstance(node, list):
        if segments in unordered:
            deferred.append((node, segments))
            return
        for element in node:
            _number_in_walk_order(element, segments + (ANY_ELEMENT,), unordered, numbers, deferred)


def _masked_text(
    node: JSONValue, segments: Segments, unordered: frozenset[Segments], numbers: Mapping[str, int]
) -> str:
    return json.dumps(_masked(node, segments, unordered, numbers), sort_keys=True, ensure_ascii=False)


def _masked(
    node: JSONValue, segments: Segments, unordered: frozenset[Segments], numbers: Mapping[str, int]
) -> JSONValue:
    """The node as it sorts: numbered ids as `#<n>`, the others as `*`,
    nested unordered lists sorted, integral floats as ints (1.0 sorts as 1)."""
    if isinstance(node, str):
        prefix = random_id_prefix(node)
        if prefix is None:
            return node
        return prefix + (f"#{numbers[node]}" if node in numbers else "*")
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, float) and node.is_integer():
        return int(node)
    if isinstance(node, dict):
        return {key: _masked(value, segments + (key,), unordered, numbers) for key, value in node.items()}
    if isinstance(node, list):
        elements = [_masked(element, segments + (ANY_ELEMENT,), unordered, numbers) for element in node]
        if segments in unordered:
            elements.sort(key=lambda element: json.dumps(element, sort_keys=True, ensure_ascii=False))
        return elements
    return node


def _replace_random_ids(node: JSONValue, numbers: Mapping[str, int]) -> JSONValue:
    if isinstance(node, str):
        prefix = random_id_prefix(node)
        return node if prefix is None else f"{prefix}#{numbers[node]}"
    if isinstance(node, dict):
        return {key: _replace_random_ids(value, numbers) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace_random_ids(element, numbers) for element in node]
    return copy.deepcopy(node)


# --------------------------------------------------------------------------
# Document comparison
# --------------------------------------------------------------------------


def compare_documents(
    actual: JSONValue, expected: JSONValue, unordered_paths: Iterable[str] | None = ()
) -> list[str]:
    """Human-readable differences between actual and expected; [] when they match."""
    unordered = parse_unordered_paths(unordered_paths)
    return _differences(
        canonicalize(actual, unordered_paths), canonicalize(expected, unordered_paths), (), "", unordered
    )


def json_equal(
    actual: JSONValue, expected: JSONValue, unordered: frozenset[Segments] = frozenset(), segments: Segments = ()
) -> bool:
    """Exact JSON equality (1 == 1.0, true != 1), unordered lists as multisets.
    No id canonicalisation."""
    kind = _kind(expected)
    if _kind(actual) != kind:
        return False
    if kind == "object":
        return actual.keys() == expected.keys() and all(
            json_equal(actual[key], expected[key], unordered, segments + (key,)) for key in expected
        )
    if kind == "array":
        if len(actual) != len(expected):
            return False
        element_segments = segments + (ANY_ELEMENT,)
        if segments in unordered:
            return not _unmatched_elements(actual, expected, element_segments, unordered)[0]
        return all(json_equal(a, e, unordered, element_segments) for a, e in zip(actual, expected))
    return actual == expected


def _kind(value: JSONValue) -> str:
    # bool before numbers: in Python True is an int, in JSON it is not a number.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _differences(
    actual: JSONValue, expected: JSONValue, segments: Segments, where: str, unordered: frozenset[Segments]
) -> list[str]:
    kind = _kind(expected)
    if kind == _kind(actual) == "object":
        return _object_differences(actual, expected, segments, where, unordered)
    if kind == _kind(actual) == "array":
        if segments in unordered:
            return _multiset_differences(actual, expected, segments, where, unordered)
        return _list_differences(actual, expected, segments, where, unordered)
    if json_equal(actual, expected):
        return []
    return [f"{_label(where)}: expected {_show(expected)}, got {_show(actual)}"]


def _object_differences(
    actual: Mapping, expected: Mapping, segments: Segments, where: str, unordered: frozenset[Segments]
) -> list[str]:
    found: list[str] = []
    for key in sorted(expected):
        if key not in actual:
            found.append(f"{_key_path(where, key)}: missing key")
        else:
            found.extend(_differences(actual[key], expected[key], segments + (key,), _key_path(where, key), unordered))
    found.extend(f"{_label(where)}: unexpected key {key!r}" for key in sorted(actual) if key not in expected)
    return found


def _list_differences(
    actual: Sequence, expected: Sequence, segments: Segments, where: str, unordered: frozenset[Segments]
) -> list[str]:
    found: list[str] = []
    if len(actual) != len(expected):
        found.append(f"{_label(where)}: expected {len(expected)} elements, got {len(actual)}")
    element_segments = segments + (ANY_ELEMENT,)
    for index, (a, e) in enumerate(zip(actual, expected)):
        found.extend(_differences(a, e, element_segments, f"{where}[{index}]", unordered))
    return found


def _multiset_differences(
    actual: Sequence, expected: Sequence, segments: Segments, where: str, unordered: frozenset[Segments]
) -> list[str]:
    element_segments = segments + (ANY_ELEMENT,)
    missing, extra_indexes = _unmatched_elements(actual, expected, element_segments, unordered)
    if len(missing) == 1 and len(extra_indexes) == 1:
        # One element differs: say how, rather than printing both whole.
        index = extra_indexes[0]
        return _differences(actual[index], missing[0], element_segments, f"{where}[{index}]", unordered)
    found = [f"{_label(where)}: missing element {_show(element)}" for element in missing]
    found.extend(f"{where}[{index}]: unexpected element {_show(actual[index])}" for index in extra_indexes)
    return found


def _unmatched_elements(
    actual: Sequence, expected: Sequence, element_segments: Segments, unordered: frozenset[Segments]
) -> tuple[list[JSONValue], list[int]]:
    """Expected elements with no equal actual one, and indexes of actual elements left over.
    Greedy matching is enough because equality is an equivalence."""
    unused = list(range(len(actual)))
    missing: list[JSONValue] = []
    for element in expected:
        for position, index in enumerate(unused):
            if json_equal(actual[index], element, unordered, element_segments):
                del unused[position]
                break
        else:
            missing.append(element)
    return missing, unused


def _key_path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _label(where: str) -> str:
    return where or "<root>"


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"


# --------------------------------------------------------------------------
# Vendor calls
# --------------------------------------------------------------------------


def call_matches(actual: Mapping[str, Any], recorded: Mapping[str, Any]) -> bool:
    """Whether a call the engine made is the recorded call (FORMAT.md,
    "Comparing vendor calls")."""
    return (
        methods_match(actual.get("method"), recorded.get("method"))
        and urls_match(actual.get("url") or "", recorded.get("url") or "")
        and headers_match(actual.get("headers"), recorded.get("headers"))
        and bodies_match(actual, recorded)
    )


def describe_call(call: Mapping[str, Any]) -> str:
    return f"{str(call.get('method') or '?').upper()} {call.get('url') or '?'}"


def methods_match(actual: Any, recorded: Any) -> bool:
    return str(actual or "").upper() == str(recorded or "").upper()


def urls_match(actual: str, recorded: str) -> bool:
    return _url_identity(actual) == _url_identity(recorded)


def _url_identity(url: str) -> tuple:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        # Unparseable port: fall back to the literal netloc so only the same text matches.
        return (scheme, parts.netloc, url)
    return (
        scheme,
        (parts.hostname or "").lower(),
        port,
        parts.username,
        parts.password,
        # The path as sent, percent-encoding included; only "" and "/" are the same.
        parts.path or "/",
        Counter(parse_qsl(parts.query, keep_blank_values=True)),
    )


def headers_match(actual: Mapping[str, Any] | None, recorded: Mapping[str, Any] | None) -> bool:
    """Every recorded header but User-Agent is sent with the same value; extras are fine."""
    sent = {str(name).lower(): _header_text(value) for name, value in (actual or {}).items()}
    return all(
        sent.get(str(name).lower()) == _header_text(value)
        for name, value in (recorded or {}).items()
        if str(name).lower() not in IGNORED_HEADERS
    )


def _header_text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def bodies_match(actual: Mapping[str, Any], recorded: Mapping[str, Any]) -> bool:
    recorded_json = recorded.get("json")
    recorded_data = recorded.get("data")
    if recorded_json is not None:
        return json_equal(_sent_json(actual), recorded_json)
    if recorded_data is not None:
        if actual.get("json") is not None:
            return False
        if isinstance(recorded_data, Mapping):
            return form_fields(actual.get("data")) == form_fields(recorded_data)
        return _raw_body_text(actual.get("data")) == _raw_body_text(recorded_data)
    return actual.get("json") is None and not actual.get("data")


def _sent_json(actual: Mapping[str, Any]) -> JSONValue:
    """The JSON body of a call; a JSON document sent as raw data is the same bytes on the wire."""
    if actual.get("json") is not None:
        return actual["json"]
    data = actual.get("data")
    if isinstance(data, (str, bytes)) and data:
        try:
            return json.loads(data)
        except ValueError:
            return None
    return None


def form_fields(data: Any) -> dict[str, list[str]]:
    """A form body as {name: [values...]}, whether given encoded or as a mapping."""
    if data is None:
        return {}
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    if isinstance(data, str):
        fields: dict[str, list[str]] = {}
        for name, value in parse_qsl(data, keep_blank_values=True):
            fields.setdefault(name, []).append(value)
        return fields
    if isinstance(data, Mapping):
        return {str(name): _form_values(value) for name, value in data.items()}
    # A list of pairs, as HTTP clients also accept.
    fields = {}
    for name, value in data:
        fields.setdefault(str(name), []).extend(_form_values(value))
    return fields


def _form_values(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [_form_text(item) for item in value]
    return [_form_text(value)]


def _form_text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _raw_body_text(data: Any) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8")
    if isinstance(data, Mapping):
        # A mapping goes on the wire form-encoded.
        return urlencode(data, doseq=True)
    return str(data)


# --------------------------------------------------------------------------
# Stand-in vendor bookkeeping
# --------------------------------------------------------------------------


class StandInLedger:
    """Answers the engine's vendor calls from a case's `vendor_calls` and
    remembers what did not line up. Safe to use from several threads."""

    def __init__(self, vendor_calls: Iterable[Mapping[str, Any]]) -> None:
        self._recorded = [(call["request"], call["response"]) for call in vendor_calls]
        self._used = [False] * len(self._recorded)
        self._unexpected: list[Mapping[str, Any]] = []
        self._refused: list[str] = []
        self._lock = threading.Lock()

    def answer(self, actual_request: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The response of the first unused recorded call that matches, or None."""
        with self._lock:
            for index, (recorded_request, response) in enumerate(self._recorded):
                if not self._used[index] and call_matches(actual_request, recorded_request):
                    self._used[index] = True
                    # A copy, so a caller that edits the response cannot change the case.
                    return copy.deepcopy(response)
            self._unexpected.append(copy.deepcopy(dict(actual_request)))
            return None

    def refuse(self, problem: str) -> None:
        """A call the harness refused outright (e.g. made without TLS verification)."""
        with self._lock:
            self._refused.append(problem)

    @property
    def recorded(self) -> list:
        """(request, response) of every recorded call, in recorded order."""
        return list(self._recorded)

    def problems(self) -> list[str]:
        """Unexpected calls first, then recorded calls never made, in recorded order."""
        with self._lock:
            found = list(self._refused)
            found += [f"unexpected call: {describe_call(call)}" for call in self._unexpected]
            found.extend(
                f"call never made: {describe_call(request)}"
                for (request, _), used in zip(self._recorded, self._used)
                if not used
            )
            return found
