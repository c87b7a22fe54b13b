"""The function library that spec expressions may call, on top of JMESPath's built-ins.

JMESPath selects and reshapes; it cannot tell time, make ids, look things up by a computed key or
join text. These functions close that gap. Every function is pure except `now()` and `uuid4()`,
which read the clock and the id source of the `Runtime` (both injected, so tests freeze them).

`FUNCTION_DOCS` documents each function (the spec reference is generated from it) and
`RelayFunctions.FUNCTION_TABLE` gives lint the names and arities it checks.
"""
from __future__ import annotations

import base64
import calendar
import ipaddress
import json
import re
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import jmespath
from jmespath import functions as jp

from engine.language.markdown import html_to_markdown

CTIM_DISPOSITIONS = {1: "Clean", 2: "Malicious", 3: "Suspicious", 4: "Common", 5: "Unknown"}
DISPOSITION_NUMBERS = {name: number for number, name in CTIM_DISPOSITIONS.items()}

_NUMBER = r"\d+(?:\.\d+)?"
_DURATION = re.compile(
    rf"^(?P<sign>-)?P(?:(?P<years>{_NUMBER})Y)?(?:(?P<months>{_NUMBER})M)?(?:(?P<weeks>{_NUMBER})W)?"
    rf"(?:(?P<days>{_NUMBER})D)?(?:T(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?$"
)

# Named output formats for format_time(); anything else is a strftime pattern.
TIME_FORMATS = {
    "iso_micro": "%Y-%m-%dT%H:%M:%S.%fZ",
    "iso_millis": None,  # computed: strftime has no milliseconds
    "iso_seconds": "%Y-%m-%dT%H:%M:%SZ",
    "date": "%Y-%m-%d",
}


class ExpressionFailure(Exception):
    """A function was given a value it cannot work with (reported with the step and field)."""


@dataclass(frozen=True)
class Duration:
    """An ISO-8601 duration: whole calendar months (years are 12 of them) and a fixed time span."""

    months: int
    span: timedelta

    def added_to(self, moment: datetime) -> datetime:
        """Months move the calendar date, the day kept or clamped to the month's last (Jan 31 + P1M is
        Feb 28 or 29); then the span is added."""
        if self.months:
            index = moment.month - 1 + self.months
            year, month = moment.year + index // 12, index % 12 + 1
            if not 1 <= year <= 9999:
                raise ExpressionFailure("the time moves out of the calendar's years 1 to 9999")
            moment = moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))
        return moment + self.span


@lru_cache(maxsize=256)  # a spec writes a few durations, met on every document
def parse_duration(text: str) -> Duration:
    match = _DURATION.match(text or "")
    if not match or text in ("P", "-P", "PT", "-PT") or text.endswith("T"):
        raise ExpressionFailure(f"not an ISO-8601 duration: {text!r} (e.g. 'P1Y', 'P3M', 'P30D', 'PT1H', '-P7D')")
    parts = {k: float(v) for k, v in match.groupdict().items() if v and k != "sign"}
    if any(not parts.get(unit, 0.0).is_integer() for unit in ("years", "months")):
        raise ExpressionFailure(f"{text!r}: years and months are whole numbers (a month has no fixed length)")
    sign = -1 if match.group("sign") else 1
    span = timedelta(weeks=parts.get("weeks", 0), days=parts.get("days", 0), hours=parts.get("hours", 0),
                     minutes=parts.get("minutes", 0), seconds=parts.get("seconds", 0))
    return Duration(sign * int(parts.get("years", 0) * 12 + parts.get("months", 0)), sign * span)


def parse_time(value) -> datetime:
    """An ISO-8601 text or epoch seconds -> aware UTC datetime."""
    if isinstance(value, bool) or value is None:
        raise ExpressionFailure(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return _parse_time_text(str(value))


# A mapping reads and writes the same few times many times over (a report's time for its
# judgement, sighting and their ends): these pure conversions are kept for the texts last seen.
@lru_cache(maxsize=4096)
def _parse_time_text(value: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ExpressionFailure(f"not an ISO-8601 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


@lru_cache(maxsize=4096)
def canonical_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@lru_cache(maxsize=4096)
def render_time(moment: datetime, fmt: str) -> str:
    moment = moment.astimezone(timezone.utc)
    if fmt == "iso":  # Python's isoformat(): fraction only when there is one
        return moment.replace(tzinfo=None).isoformat() + "Z"
    if fmt == "iso_millis":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if fmt == "epoch":
        return int(moment.timestamp())
    if fmt == "epoch_ms":
        return int(moment.timestamp() * 1000)
    return moment.strftime(TIME_FORMATS.get(fmt) or fmt)


def lookup_in_table(table, key):
    """A declared table: `{"ranges": [...]}` (numeric, bounds inclusive) or `{"values": {...}}`."""
    if isinstance(table, dict) and "ranges" in table and isinstance(table["ranges"], list):
        if isinstance(key, bool) or not isinstance(key, (int, float)):
            return table.get("default")
        for row in table["ranges"]:
            low, high = row.get("from"), row.get("to")
            if (low is None or key >= low) and (high is None or key <= high):
                return row.get("value")
        return table.get("default")
    if isinstance(table, dict) and isinstance(table.get("values"), dict):
        return table["values"].get(_key_text(key), table.get("default"))
    if isinstance(table, dict):
        return table.get(_key_text(key))
    return None


def _key_text(key) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return json.dumps(key) if key is not None else "null"


def _is_empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _optional(arguments: tuple, name: str, fixed: int = 1):
    """The one optional argument of a function written with JMESPath's variadic form (after
    `fixed` required ones)."""
    if len(arguments) > 1:
        raise ExpressionFailure(f"{name}() takes {fixed} or {fixed + 1} arguments, got {len(arguments) + fixed}")
    return arguments[0] if arguments else None


def _is_false(value) -> bool:
    """JMESPath's falsehood: null, false, and empty text, lists and objects."""
    return value is None or value is False or _is_empty(value)


JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "HS256")


def signed_jwt(header: dict, claims: dict, key: str) -> str:
    import jwt  # PyJWT: the relay's own token check uses it too
    algorithm = header.get("alg")
    if algorithm not in JWT_ALGORITHMS:
        raise ExpressionFailure(f"jwt() signs with {', '.join(JWT_ALGORITHMS)}, not {algorithm!r}")
    try:
        return jwt.encode(claims, key, algorithm=algorithm,
                          headers={name: value for name, value in header.items() if value is not None})
    except (ValueError, TypeError, jwt.PyJWTError) as problem:  # a key that is no key: never quoted
        raise ExpressionFailure(f"jwt() cannot sign with this key ({type(problem).__name__})") from None


@lru_cache(maxsize=4096)
def name_based_uuid(text: str) -> str:
    """uuid5 under NAMESPACE_X500, what Cisco's relays use for deterministic transient ids (the
    same few names come again and again: one indicator id per category, per relationship)."""
    return str(uuid.uuid5(uuid.NAMESPACE_X500, text))


class RelayFunctions(jp.Functions):
    """Custom functions. An evaluation sets `scope`, `runtime` and `tables` before it runs (one
    instance per thread: see expressions.Expression.evaluate)."""

    def __init__(self, scope: dict | None = None, runtime=None, tables: dict | None = None):
        super().__init__()
        self.scope = scope if scope is not None else {}  # the scope's own dict: `let` fills it in
        self.runtime = runtime
        self.tables = tables or {}

    _allowed_pytypes: dict = {}

    def interpreter(self):
        """JMESPath's interpreter with these functions (expressions run compiled: this is the
        fallback for a function that visits some other part of an `&expression`)."""
        from engine.language.expressions import Interpreter
        return Interpreter(jmespath.Options(custom_functions=self))

    @jp.signature({"types": []})
    def _func_to_string(self, value):
        """JMESPath's own, without a JSON encoder for the text and whole numbers it is mostly given."""
        if type(value) is str:
            return value
        if type(value) is int:
            return str(value)
        return json.dumps(value, separators=(",", ":"), default=str)

    def _get_allowed_pytypes(self, types):
        """JMESPath works this out from the signature's type names on every call: once is enough."""
        key = tuple(types)
        found = self._allowed_pytypes.get(key)
        if found is None:
            found = self._allowed_pytypes[key] = super()._get_allowed_pytypes(types)
        return found

    # -- time ---------------------------------------------------------------------------------
    @jp.signature()
    def _func_now(self):
        return canonical_time(self.runtime.clock.now())

    @jp.signature({"types": ["string", "number"]}, {"types": ["string"]})
    def _func_time_add(self, moment, duration):
        try:
            return canonical_time(parse_duration(duration).added_to(parse_time(moment)))
        except OverflowError:
            raise ExpressionFailure(f"{moment!r} moved by {duration!r} is out of the calendar") from None

    @jp.signature({"types": ["string", "number"]}, {"types": ["string"]})
    def _func_format_time(self, moment, fmt):
        return render_time(parse_time(moment), fmt)

    @jp.signature({"types": ["string", "number", "null"]}, {"types": ["string"]})
    def _func_parse_time(self, value, fmt):
        """Vendor time -> canonical ISO; fmt is 'iso', 'epoch', 'epoch_ms' or a strptime pattern."""
        if value is None:
            return None
        if fmt == "epoch_ms":
            return canonical_time(parse_time(float(value) / 1000))
        if fmt in ("iso", "epoch"):
            return canonical_time(parse_time(float(value) if fmt == "epoch" else value))
        try:
            moment = datetime.strptime(str(value), fmt)
        except ValueError:
            raise ExpressionFailure(f"{value!r} does not match time format {fmt!r}") from None
        return canonical_time(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))

    # -- ids ----------------------------------------------------------------------------------
    @jp.signature()
    def _func_uuid4(self):
        return str(self.runtime.new_uuid())

    @jp.signature({"types": ["string", "number"]})
    def _func_uuid5(self, name):
        return name_based_uuid(_key_text(name))

    # -- text ---------------------------------------------------------------------------------
    @jp.signature({"types": [], "variadic": True})
    def _func_concat(self, *values):
        return "".join(to_text(value) for value in values)

    @jp.signature({"types": ["string"]})
    def _func_lower(self, text):
        return text.lower()

    @jp.signature({"types": ["string"]})
    def _func_upper(self, text):
        return text.upper()

    @jp.signature({"types": ["string"]})
    def _func_capitalize(self, text):
        return text.capitalize()

    @jp.signature({"types": ["string"], "variadic": True})  # trim(text) or trim(text, characters)
    def _func_trim(self, text, *chars):
        return text.strip(_optional(chars, "trim") or None)

    @jp.signature({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_replace(self, text, old, new):
        return text.replace(old, new)

    @jp.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_split(self, text, separator):
        return text.split(separator)

    @jp.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_regex_match(self, text, pattern):
        return re.search(pattern, text) is not None

    @jp.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_regex_extract(self, text, pattern):
        match = re.search(pattern, text)
        if not match:
            return None
        return match.group(1) if match.groups() else match.group(0)

    @jp.signature({"types": ["string"], "variadic": True})  # url_quote(text) or url_quote(text, safe)
    def _func_url_quote(self, text, *safe):
        return urllib.parse.quote(text, safe=_optional(safe, "url_quote") or "")

    @jp.signature({"types": ["string"]}, {"types": ["string"], "variadic": True})  # escape(text, chars[, escape])
    def _func_escape(self, text, characters, *escape):
        """Quoting for a vendor's query language: each of `characters`, and the escape itself,
        preceded by the escape (a backslash by default), so a value stays one value."""
        mark = _optional(escape, "escape", fixed=2) or "\\"
        return "".join(mark + char if char in characters or char == mark else char for char in text)

    @jp.signature({"types": [], "variadic": True})  # to_json(value) or to_json(value, style)
    def _func_to_json(self, value, *style):
        """JSON text: `compact` (no spaces), or `python` (Python's json.dumps: ', ' and ': ')."""
        style = _optional(style, "to_json") or "compact"
        if style not in ("compact", "python"):
            raise ExpressionFailure(f"to_json() style is 'compact' or 'python', not {style!r}")
        return json.dumps(value, separators=(",", ":")) if style == "compact" else json.dumps(value)

    @jp.signature({"types": ["array"]}, {"types": []})
    def _func_index_of(self, items, value):
        """The first 0-based position of an equal value (of the same JSON type), else null."""
        for index, item in enumerate(items):
            if type(item) is type(value) and item == value:
                return index
        return None

    @jp.signature({"types": ["string", "number"]}, {"types": ["string", "number"]}, {"types": ["string"]})
    def _func_time_range(self, start, end, step):
        """Times from `start` by `step` (a duration, may be negative) not past `end`, at most 1000."""
        moment, last, duration = parse_time(start), parse_time(end), parse_duration(step)
        if duration.added_to(moment) == moment:
            raise ExpressionFailure(f"time_range() needs a step that moves, not {step!r}")
        forward = duration.added_to(moment) > moment
        times = []
        while (moment <= last) if forward else (moment >= last):
            times.append(canonical_time(moment))
            if len(times) > 1000:
                raise ExpressionFailure("time_range() would make more than 1000 times")
            moment = duration.added_to(moment)
        return times

    @jp.signature({"types": ["object"]}, {"types": ["object"]}, {"types": ["string"]})
    def _func_jwt(self, header, claims, key):
        """A signed JSON Web Token (a service account's assertion): `header.alg` RS256, RS384,
        RS512 or ES256 with a PEM private key, HS256 with a secret."""
        return signed_jwt(header, claims, key)

    @jp.signature({"types": ["string", "null"]})
    def _func_html_to_markdown(self, html):
        return None if html is None else html_to_markdown(html)

    @jp.signature({"types": ["string"]})
    def _func_base64(self, text):
        return base64.b64encode(text.encode()).decode()

    @jp.signature({"types": ["string"]})
    def _func_json_parse(self, text):
        try:
            return json.loads(text)
        except ValueError:
            raise ExpressionFailure(f"not JSON text: {text[:60]!r}") from None

    @jp.signature({"types": ["string"]})
    def _func_ip_version(self, text):
        try:
            return ipaddress.ip_address(text).version
        except ValueError:
            return None

    # -- values and tables --------------------------------------------------------------------
    @jp.signature({"types": []}, {"types": []}, {"types": []})
    def _func_if_else(self, condition, then, otherwise):
        # Never called: expressions.Interpreter evaluates only the branch the condition picks.
        return then if not _is_false(condition) else otherwise

    @jp.signature({"types": []}, {"types": []})
    def _func_default(self, value, fallback):
        return fallback if _is_empty(value) else value

    @jp.signature({"types": []})
    def _func_required(self, value):
        if value is None:
            raise ExpressionFailure("a value the mapping requires is missing from the vendor's answer")
        return value

    @jp.signature({"types": ["number"]}, {"types": ["number"]})
    def _func_add(self, first, second):
        return first + second

    @jp.signature({"types": ["number"]}, {"types": ["number"]})
    def _func_subtract(self, first, second):
        return first - second

    @jp.signature({"types": ["number"]}, {"types": ["number"]})
    def _func_multiply(self, first, second):
        return first * second

    @jp.signature({"types": ["number"]}, {"types": ["number"]})
    def _func_divide(self, first, second):
        if second == 0:
            raise ExpressionFailure("division by zero")
        return first / second

    @jp.signature({"types": []})
    def _func_to_int(self, value):
        try:
            return int(float(value)) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            return None

    @jp.signature({"types": ["object", "null"]}, {"types": ["string", "number"]})
    def _func_get(self, obj, key):
        return (obj or {}).get(_key_text(key))

    @jp.signature({"types": ["string", "object"]}, {"types": []})
    def _func_lookup(self, table, key):
        """Look `key` up in a declared table, or in a named value of the scope (a step's table)."""
        if isinstance(table, str):
            name = table
            table = self.tables.get(name, self.scope.get(name))
            if table is None:
                raise ExpressionFailure(f"no table or value named {name!r}")
        return lookup_in_table(table, key)

    @jp.signature({"types": ["string", "number"]})
    def _func_disposition(self, name_or_number):
        if name_or_number in CTIM_DISPOSITIONS:
            return name_or_number
        if name_or_number not in DISPOSITION_NUMBERS:
            raise ExpressionFailure(f"not a CTIM disposition: {name_or_number!r}")
        return DISPOSITION_NUMBERS[name_or_number]

    @jp.signature({"types": ["string", "number"]})
    def _func_disposition_name(self, name_or_number):
        if name_or_number in DISPOSITION_NUMBERS:
            return name_or_number
        if name_or_number not in CTIM_DISPOSITIONS:
            raise ExpressionFailure(f"not a CTIM disposition: {name_or_number!r}")
        return CTIM_DISPOSITIONS[name_or_number]

    # -- arrays and objects -------------------------------------------------------------------
    @jp.signature({"types": ["array"]})
    def _func_unique(self, items):
        seen, result = set(), []
        for item in items:
            # Text and numbers are their own marker (with their type: 1, 1.0 and true stay three
            # values, as in JSON); objects and lists are compared by their JSON spelling.
            kind = type(item)
            marker = (kind, item) if kind in (str, int, float, bool) or item is None \
                else json.dumps(item, sort_keys=True)
            if marker not in seen:
                seen.add(marker)
                result.append(item)
        return result

    @jp.signature({"types": ["array", "null"]}, {"types": ["number", "null"]})
    def _func_take(self, items, count):
        items = items or []
        return items if count is None else items[: max(int(count), 0)]

    @jp.signature({"types": ["array", "null"]}, {"types": ["expref"]}, {"types": ["string"]})
    def _func_order_by(self, items, key, direction):
        """A stable sort in either direction (equal keys keep their order, unlike reverse(sort_by))."""
        if direction not in ("asc", "desc"):
            raise ExpressionFailure(f"order_by direction must be 'asc' or 'desc', not {direction!r}")
        items = items or []
        keyed = [(key.visit(key.expression, item), item) for item in items]
        present = [pair for pair in keyed if pair[0] is not None]
        missing = [pair[1] for pair in keyed if pair[0] is None]  # items without the key go last
        present.sort(key=lambda pair: pair[0], reverse=direction == "desc")
        return [item for _, item in present] + missing

    @jp.signature({"types": ["array", "null"]}, {"types": ["number"]})
    def _func_chunks(self, items, size):
        if isinstance(size, bool) or int(size) != size or size < 1:
            raise ExpressionFailure(f"chunks() takes a whole number of at least 1, not {size!r}")
        items, size = items or [], int(size)
        return [items[start:start + size] for start in range(0, len(items), size)]

    @jp.signature({"types": ["array", "null"]}, {"types": ["expref"]})
    def _func_group_by(self, items, key):
        groups: dict = {}
        for item in items or []:
            found = key.visit(key.expression, item)
            if found is not None:
                groups.setdefault(_key_text(found), []).append(item)
        return groups

    @jp.signature({"types": ["array", "null"]}, {"types": ["expref"]})
    def _func_index_by(self, items, key):
        index: dict = {}
        for item in items or []:
            found = key.visit(key.expression, item)
            if found is not None:
                index.setdefault(_key_text(found), item)
        return index

    @jp.signature({"types": ["array"]})
    def _func_from_items(self, pairs):
        return {_key_text(pair[0]): pair[1] for pair in pairs if isinstance(pair, list) and len(pair) == 2}

    @jp.signature({"types": ["object"]})
    def _func_items(self, obj):
        return [[key, value] for key, value in obj.items()]


def to_text(value) -> str:
    """How a value reads inside a string template: JSON spelling for everything but text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


FUNCTION_DOCS = {
    "now": "now() -> the runtime clock's current UTC time, as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.",
    "time_add": "time_add(time, duration) -> time moved by an ISO-8601 duration ('P1Y', 'P3M', 'P30D', 'PT1H', "
                "'-P7D'); years and months follow the calendar, the day clamped to the month's end.",
    "format_time": "format_time(time, format) -> text: 'iso' (Python isoformat + Z), 'iso_micro', "
                   "'iso_millis', 'iso_seconds', 'date', 'epoch', 'epoch_ms', or a strftime pattern.",
    "parse_time": "parse_time(value, format) -> canonical time from 'iso', 'epoch', 'epoch_ms' or a strptime pattern; "
                  "null stays null.",
    "uuid4": "uuid4() -> a random UUID (for `transient:<type>-<uuid>` ids).",
    "uuid5": "uuid5(name) -> the UUID5 of `name` in the X.500 namespace: a stable id for the same name.",
    "concat": "concat(value, ...) -> the values as text, joined; null reads as ''.",
    "lower": "lower(text) -> text in lower case.",
    "upper": "upper(text) -> text in upper case.",
    "capitalize": "capitalize(text) -> the first character in upper case, the rest in lower case.",
    "trim": "trim(text[, characters]) -> text without the surrounding white space (or characters: "
            "trim(name, '.') drops a DNS name's trailing dot).",
    "replace": "replace(text, old, new) -> text with every `old` replaced by `new`.",
    "split": "split(text, separator) -> array of the parts.",
    "regex_match": "regex_match(text, pattern) -> true when the Python regular expression matches anywhere.",
    "regex_extract": "regex_extract(text, pattern) -> group 1 (or the whole match) of the first match, else null.",
    "url_quote": "url_quote(text[, safe]) -> text percent-encoded for a URL path segment (nothing left unescaped, "
                 "but the characters of `safe`).",
    "escape": "escape(text, characters[, escape]) -> text with each of `characters`, and the escape itself, "
              "preceded by the escape (a backslash by default): a value quoted for a vendor's query language "
              "stays one value. escape(v, '\"') inside \"...\" (Lucene, KQL, Sumo Logic); escape(v, \"'\", \"'\") "
              "doubles quotes inside '...' (AQL, SQL, OData).",
    "to_json": "to_json(value[, style]) -> the value as JSON text, `compact` (the default) or `python` "
               "(Python's json.dumps spacing, as some vendors' recorded bodies have it).",
    "index_of": "index_of(array, value) -> the first 0-based position of an equal value (same JSON type), or null.",
    "time_range": "time_range(start, end, step) -> the times from start by step (an ISO-8601 duration, negative "
                  "to go back) that do not pass end, at most 1000 (daily index names, a chart's days).",
    "jwt": "jwt(header, claims, key) -> a signed JSON Web Token, `header.alg` RS256/RS384/RS512/ES256 with a PEM "
           "private key or HS256 with a secret: a service account's assertion for a token request.",
    "html_to_markdown": "html_to_markdown(html) -> the Markdown of an HTML text (bold, italics, links, lists, "
                        "paragraphs), Markdown's own marks in the text escaped; null stays null.",
    "base64": "base64(text) -> the Base64 encoding of the UTF-8 text.",
    "json_parse": "json_parse(text) -> the JSON value the text holds.",
    "ip_version": "ip_version(text) -> 4 or 6 for an IP address, else null.",
    "if_else": "if_else(condition, then, otherwise) -> `then` when condition is true (not null, false, '', [] "
               "or {}), else `otherwise`; only the chosen branch is evaluated. Unlike `a && b || c`, an empty "
               "`then` is kept.",
    "default": "default(value, fallback) -> fallback when value is null, '', [] or {}; else value.",
    "to_int": "to_int(value) -> an integer, or null when the value is not a number.",
    "required": "required(value) -> the value; null fails the mapping as data the vendor should have sent "
                "(answered with the spec's `unexpected_data` error).",
    "add": "add(a, b) -> a + b.",
    "subtract": "subtract(a, b) -> a - b: what is left of a limit.",
    "multiply": "multiply(a, b) -> a * b.",
    "divide": "divide(a, b) -> a / b; by zero is an error.",
    "chunks": "chunks(array, size) -> the array in consecutive slices of at most `size` items (a vendor taking "
              "at most so many values a call).",
    "group_by": "group_by(array, &key) -> object of key text -> the items with that key, in order (items "
                "without the key are left out).",
    "index_by": "index_by(array, &key) -> object of key text -> the first item with that key.",
    "get": "get(object, key) -> object[key] for a key computed at run time.",
    "lookup": "lookup(table, key) -> the value for key in a declared table (`ranges` or `values`), "
              "or in a named object of the scope (a step's table); table is a name or an object.",
    "disposition": "disposition(name_or_number) -> the CTIM disposition number (1 Clean .. 5 Unknown).",
    "disposition_name": "disposition_name(name_or_number) -> the CTIM disposition name.",
    "unique": "unique(array) -> the array without repeats, in order of first appearance.",
    "take": "take(array, count) -> the first `count` items (all of them when count is null).",
    "order_by": "order_by(array, &key, 'asc'|'desc') -> a stable sort; items without the key go last.",
    "from_items": "from_items(array of [key, value]) -> object.",
    "items": "items(object) -> array of [key, value].",
}

# One example a function, shown in the reference with the output it really gives (the reference is
# generated by evaluating them, at EXAMPLE_NOW, and a test keeps it current): (expression, scope).
EXAMPLE_NOW = "2026-03-31T12:30:00.000000Z"
FUNCTION_EXAMPLES = {
    "now": ("now()", {}),
    "time_add": ("time_add(now(), 'P1M')", {}),
    "format_time": ("format_time(report.reportedAt, 'iso_millis')", {"report": {"reportedAt": "2026-03-31T12:30:00+00:00"}}),
    "parse_time": ("parse_time(seen, 'epoch')", {"seen": 1774960200}),
    "uuid4": ("concat('transient:sighting-', uuid4())", {}),
    "uuid5": ("uuid5('AbuseIPDB category 18')", {}),
    "concat": ("concat(observable.type, ':', observable.value)", {"observable": {"type": "ip", "value": "192.0.2.1"}}),
    "lower": ("lower(reason)", {"reason": "Service Unavailable"}),
    "upper": ("upper(code)", {"code": "tlp:amber"}),
    "capitalize": ("capitalize(level)", {"level": "mEDIUM"}),
    "trim": ("trim(rrname, '.')", {"rrname": "www.example.com."}),
    "replace": ("replace(status, '_', ' ')", {"status": "RESOURCE_EXHAUSTED"}),
    "split": ("split(url, '://')", {"url": "http://example.com/x"}),
    "regex_match": ("regex_match(message, '^Malicious')", {"message": "Malicious panel"}),
    "regex_extract": ("regex_extract(rrname, '^(.*?)\\.?$')", {"rrname": "www.example.com."}),
    "url_quote": ("url_quote(observable.value, '@')", {"observable": {"value": "a b/c@d"}}),
    "escape": ("concat('\"', escape(observable.value, '\"'), '\"')", {"observable": {"value": 'say "hi"'}}),
    "to_json": ("to_json(aggs, 'python')", {"aggs": {"terms": {"field": "category"}}}),
    "index_of": ("index_of(names, 'b')", {"names": ["a", "b", "c"]}),
    "time_range": ("time_range('2026-03-03T00:00:00Z', '2026-03-01T00:00:00Z', '-P1D')", {}),
    "jwt": ("jwt({alg: 'HS256', typ: 'JWT'}, {iss: 'relay', aud: 'https://vendor.example/token'}, secret)",
            {"secret": "a-secret-of-32-bytes-or-more-xxxxx"}),
    "html_to_markdown": ("html_to_markdown(breach.Description)",
                         {"breach": {"Description": "Leaked by <a href=\"https://example.com\">a forum</a> in "
                                                    "<b>2019</b>."}}),
    "base64": ("base64(concat(credentials.user, ':', credentials.key))", {"credentials": {"user": "u", "key": "k"}}),
    "json_parse": ("json_parse(body.data)", {"body": {"data": "{\"score\": 90}"}}),
    "ip_version": ("ip_version(address)", {"address": "2001:db8::1"}),
    "if_else": ("if_else(report.verified, report.tags, 'unverified')", {"report": {"verified": True, "tags": []}}),
    "default": ("default(report.title, 'No title')", {"report": {"title": ""}}),
    "to_int": ("to_int(count)", {"count": "42"}),
    "required": ("required(report.score)", {"report": {"score": 0}}),
    "add": ("add(length(categories), `1`)", {"categories": ["a", "b"]}),
    "subtract": ("subtract(settings.CTR_ENTITIES_LIMIT, length(categories))",
                 {"settings": {"CTR_ENTITIES_LIMIT": 10}, "categories": ["a", "b"]}),
    "multiply": ("multiply(score, `10`)", {"score": 8.5}),
    "divide": ("divide(score, `10`)", {"score": 85}),
    "chunks": ("chunks(observables[].value, `2`)", {"observables": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}),
    "group_by": ("group_by(matches, &threat.url)",
                 {"matches": [{"threat": {"url": "a.test"}, "type": "MALWARE"},
                              {"threat": {"url": "a.test"}, "type": "UNWANTED_SOFTWARE"}]}),
    "index_by": ("index_by(catalogs, &id).\"17551\".title", {"catalogs": [{"id": 17551, "title": "Combo list"}]}),
    "get": ("get(scores, observable.value)", {"scores": {"192.0.2.1": 87}, "observable": {"value": "192.0.2.1"}}),
    "lookup": ("lookup(`{\"ranges\": [{\"to\": 49, \"value\": \"Clean\"}, {\"from\": 50, \"value\": \"Malicious\"}]}`, score)",
               {"score": 87}),
    "disposition": ("disposition('Malicious')", {}),
    "disposition_name": ("disposition_name(`3`)", {}),
    "unique": ("unique(categories)", {"categories": [18, 22, 18, 4]}),
    "take": ("take(reports, `2`)", {"reports": ["a", "b", "c"]}),
    "order_by": ("order_by(reports, &at, 'desc')[].id", {"reports": [{"id": 1, "at": "2026-01"}, {"id": 2, "at": "2026-03"}]}),
    "from_items": ("from_items([['ip', 'IP'], ['domain', 'Domain']])", {}),
    "items": ("items(counts)", {"counts": {"a": 1, "b": 2}}),
}
