"""Run one observable through a spec and show every step: relay try VENDOR TYPE VALUE.

Shows, in order: each vendor request as sent (credentials redacted), the answer (status, headers,
a bounded body preview), the value the step produced, the relay's answer (the mapped CTIM) and
the CTIM problems found in it. The vendor is the real one, or with `--replay examples` the spec's
own example answers (served by a stand-in on loopback), or with `--replay CASE.json` the answers
recorded in a conformance case. `--record DIR` saves the exchange as a replayable case.

Exit codes: 0 an answer without errors or CTIM problems, 1 otherwise, 2 usage errors.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import requests

from engine.serving.answercache import cache_for
from engine.serving.auth import required_credentials
from engine.ctim import validate_observe_data, validate_refer_data
from engine.serving.envelope import endpoint_answer, errors_only
from engine.errors import RelayError
from engine.serving.flows import Work, run_endpoint, run_health
from engine.serving.observables import Observable
from engine.serving.redaction import redact, spellings
from engine.serving.respond import TriggerRequest, run_trigger
from engine.serving.runtime import FrozenClock, PinnedClock, Runtime
from engine.serving.tiles import run_tile_data
from engine.serving.transport import loopback_session
from engine.commands.tokens import demo_claims
from engine.serving.vendor_http import VendorAnswer, VendorClient

ENDPOINTS = ("observe", "deliberate", "refer", "respond", "trigger", "health", "tile-data")
NO_OBSERVABLE = ("health", "tile-data")
PREVIEW_CHARS = 1200


class TryError(Exception):
    """A usage problem: unknown vendor or type, missing credentials, unreadable case."""


def add_arguments(parser) -> None:
    parser.add_argument("vendor")
    parser.add_argument("type", nargs="?", help="observable type, e.g. ip (none for --endpoint health)")
    parser.add_argument("value", nargs="?", help="observable value")
    parser.add_argument("--endpoint", choices=ENDPOINTS,
                        help="default: observe, else the first route the spec declares; respond: the actions "
                             "offered; trigger: run one (see --action)")
    parser.add_argument("--action", metavar="ID", help="with --endpoint trigger: the action id to run "
                                                       "(default: the first one offered for the observable)")
    parser.add_argument("--tile", metavar="ID", help="with --endpoint tile-data: the tile (default: the first)")
    parser.add_argument("--period", metavar="NAME", help="with --endpoint tile-data: the period (default: the "
                                                         "tile's default, else its first)")
    parser.add_argument("--replay", metavar="CASE.json|examples",
                        help="answer from a recorded case or the spec's examples instead of the vendor")
    parser.add_argument("--record", metavar="DIR", help="save the exchange as a replayable case under DIR/VENDOR/")
    parser.add_argument("--claims", metavar="FILE", help="JSON file of token claims (credentials and settings)")
    parser.add_argument("--claim", action="append", default=[], metavar="NAME=VALUE", help="one claim (repeatable)")
    parser.add_argument("--vendors", help="folder of vendor specs (default: ./vendors)")
    parser.add_argument("--json", action="store_true", help="the trace as JSON")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")


def run(args) -> int:
    from engine.commands.cli import _specs
    try:
        specs = _specs(args.vendors, [args.vendor])
        args.endpoint = args.endpoint or default_endpoint(specs.get(args.vendor))
        if args.endpoint in NO_OBSERVABLE:
            observable = None  # /health and tiles ask nothing about an observable: none is given
        elif args.type is None or args.value is None:
            raise TryError(f"/{args.endpoint} needs an observable: relay try {args.vendor} TYPE VALUE")
        else:
            observable = Observable(args.type.lower(), args.value)
        trace = try_observable(specs, args.vendor, observable, args.endpoint, replay=args.replay,
                               claims=read_claims(args), action=args.action, tile=args.tile, period=args.period)
    except TryError as problem:
        print(f"relay try: {problem}", file=sys.stderr)
        return 2
    if args.record:
        path = record_case(trace, Path(args.record))
        print(f"recorded {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(trace.to_json(), indent=2))
    else:
        colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty()
                                            and not os.environ.get("NO_COLOR"))
        print(render_text(trace, Painter(colour)))
    return 0 if trace.ok else 1


def default_endpoint(spec) -> str:
    """observe, or for a spec without it (a respond-only vendor) the first route it declares."""
    if spec is None or spec.declares("observe"):
        return "observe"
    return next((name for name in ENDPOINTS if spec.declares(name.replace("-", "_"))), "observe")


def read_claims(args) -> dict | None:
    claims = {}
    if args.claims:
        try:
            claims.update(json.loads(Path(args.claims).read_text()))
        except (OSError, ValueError) as problem:
            raise TryError(f"cannot read claims from {args.claims}: {problem}") from None
    for item in args.claim:
        name, sep, value = item.partition("=")
        if not sep:
            raise TryError(f"--claim wants NAME=VALUE, got {item!r}")
        claims[name] = int(value) if value.isdigit() else value
    return claims or None


# -- running ------------------------------------------------------------------------------------

@dataclass
class Trace:
    vendor: str
    endpoint: str
    observable: Observable | None  # None for /health
    replay: str | None
    now: datetime
    claims: dict
    secrets: list
    calls: list = field(default_factory=list)
    answer: dict = field(default_factory=dict)
    form: dict | None = None  # a trigger's request body
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.answer.get("errors") and not self.problems

    def redact(self, value):
        return redact(value, self.secrets)

    def to_json(self) -> dict:
        return self.redact({
            "vendor": self.vendor, "endpoint": self.endpoint,
            "observable": self.observable.to_json() if self.observable else None,
            "replay": self.replay, "now": self.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "steps": [call_json(call) for call in self.calls], "answer": self.answer, "problems": self.problems,
        })


def try_observable(specs: dict, vendor: str, observable: Observable | None, endpoint: str = "observe",
                   replay: str | None = None, claims: dict | None = None, action: str | None = None,
                   tile: str | None = None, period: str | None = None) -> Trace:
    spec = specs.get(vendor)
    if spec is None:
        raise TryError(f"no vendor {vendor!r}; the catalogue has: {', '.join(sorted(specs))}")
    if not spec.declares(endpoint.replace("-", "_")):
        declared = [name for name in ENDPOINTS if spec.declares(name.replace("-", "_"))]
        raise TryError(f"{vendor} does not declare /{endpoint}; it has: {', '.join(declared)}")
    if endpoint == "tile-data":
        tile, period = chosen_tile(spec, tile, period)
    elif endpoint != "health" and not spec.supports(observable.type):
        raise TryError(f"{vendor} does not answer for {observable.type!r}; it knows: "
                       f"{', '.join(sorted(spec.observable_types))}")
    runtime, client, stop, case_claims, ledger = _vendor_for(spec, replay)
    client.answers = cache_for(spec, runtime.clock)  # one request: its cached steps show as misses
    claims = claims if claims is not None else case_claims
    reads_token = spec.reads_token(endpoint)
    if claims is None and reads_token:
        stop()
        raise TryError("the vendor needs credentials: give them with --claim NAME=VALUE or --claims FILE "
                       f"({', '.join(c.name for c in spec.credentials) or 'none declared'})")
    claims = claims or {}
    trace = Trace(vendor, endpoint, observable, replay, runtime.clock.now(), claims, _secrets(spec, claims))
    try:
        try:
            credentials = required_credentials(claims, spec) if reads_token else {}
        except RelayError as problem:
            needed = [c.name for c in spec.required_credentials] + [s.name for s in spec.settings if s.required]
            raise TryError(f"{problem.message}: the spec needs {', '.join(needed)}") from None
        settings = {setting.name: setting.read(claims) for setting in spec.settings}
        work = Work(spec, client, runtime, credentials, settings)
        if endpoint == "health":
            errors = run_health(work).errors
            trace.answer = errors_only(errors) if errors else {"data": {"status": "ok"}}
        elif endpoint == "tile-data":
            trace.form = {"tile_id": tile.id, "period": period}
            trace.answer = run_tile_data(work, tile, period)
        elif endpoint == "trigger":
            asked = trigger_request(work, observable, action)
            trace.form = {"action-id": asked.action_id, **asked.params}
            trace.answer = run_trigger(work, asked)
        else:
            trace.answer = endpoint_answer(endpoint, run_endpoint(work, endpoint, [observable]))
        trace.calls = list(work.calls)
        trace.secrets = sorted(set(trace.secrets) | set(work.obtained_secrets), key=len, reverse=True)
    finally:
        stop()
    trace.problems = ctim_problems(endpoint, trace.answer) + replay_problems(ledger, replay)
    return trace


def chosen_tile(spec, tile_id: str | None, period: str | None) -> tuple:
    """(the Tile, the period): as asked, or the first tile and its default (else first) period."""
    tiles = spec.tiles.tiles
    tile = tiles[0] if tile_id is None else spec.tiles.tile(tile_id)
    if tile is None:
        raise TryError(f"{spec.name} has no tile {tile_id!r}; it has: {', '.join(t.id for t in tiles)}")
    period = period or tile.definition.get("default_period") or tile.periods[0]
    if period not in tile.periods:
        raise TryError(f"the tile {tile.id} has no period {period!r}; it has: {', '.join(tile.periods)}")
    return tile, period


def trigger_request(work: Work, observable: Observable, action: str | None) -> TriggerRequest:
    """The trigger XDR would send for the action the listing offers: by id, or the first one (the
    listing's calls are shown in the trace too). An id not offered is sent with the observable's
    params alone, as XDR could never send it: to see how the relay answers such a trigger."""
    listing = endpoint_answer("respond", run_endpoint(work, "respond", [observable]))
    offered = [one for one in listing.get("data") or [] if action is None or one.get("id") == action]
    if action is not None and not offered:
        return TriggerRequest(action, observable, observable_params(observable))
    if not offered:
        raise TryError(f"{work.spec.name} offers no action for {observable.type} {observable.value}"
                       + (f": {listing['errors'][0]['message']}" if listing.get("errors") else ""))
    return TriggerRequest(offered[0]["id"], observable, offered[0].get("query-params") or observable_params(observable))


def observable_params(observable: Observable) -> dict:
    return {"observable_type": observable.type, "observable_value": observable.value}


def replay_problems(ledger, replay: str | None) -> list:
    """A call the recorded case has no answer for: say so (the run saw a "connection error")."""
    if ledger is None:
        return []
    from engine.conformance.compare import describe_call
    recorded = ", ".join(describe_call(request) for request, _ in ledger.recorded) or "no call"
    return [f"{replay} has no answer for {problem.removeprefix('unexpected call: ')} (it recorded {recorded}): "
            "was it recorded for another observable or route?"
            for problem in ledger.problems() if problem.startswith("unexpected call: ")]


def _vendor_for(spec, replay: str | None):
    """(runtime, client, stop, claims): the real vendor, the examples' stand-in, or a recorded case."""
    from engine.serving.config import RelayConfig
    start = datetime.now(timezone.utc)
    if replay is None:
        runtime = Runtime(clock=PinnedClock(start))
        return runtime, VendorClient(runtime.session, RelayConfig.from_environ().upstream_for(spec.name)), \
            (lambda: None), None, None
    if replay == "examples":
        from engine.commands.standin import StandInVendor, routes_from_examples
        if spec.examples is None:
            raise TryError(f"vendors/{spec.name}.yaml has no `examples:` to replay")
        stand_in = StandInVendor(routes_from_examples(spec)).start()
        runtime = Runtime(clock=FrozenClock(start), session=loopback_session())
        return runtime, VendorClient(runtime.session, stand_in.origin), stand_in.stop, demo_claims(spec), None
    from engine.conformance.compare import StandInLedger
    from engine.conformance.replay import ReplayAdapter, session_with
    try:
        case = json.loads(Path(replay).read_text())
        calls, claims = case["vendor_calls"], case["request"]["auth"].get("jwt_payload")
    except (OSError, ValueError, KeyError, TypeError) as problem:
        raise TryError(f"cannot replay {replay}: {problem}") from None
    now = case.get("now")
    start = datetime.fromisoformat(now.replace("Z", "+00:00")) if now else start
    ledger = StandInLedger(calls)
    runtime = Runtime(clock=FrozenClock(start), session=session_with(ReplayAdapter(ledger)))
    return runtime, VendorClient(runtime.session), (lambda: None), claims, ledger


def _secrets(spec, claims: dict) -> list:
    names = {credential.name for credential in spec.credentials}
    values = [str(claims[name]) for name in names if claims.get(name) not in (None, "")]
    values += [os.environ["SECRET_KEY"]] if os.environ.get("SECRET_KEY") else []
    return sorted(set(values), key=len, reverse=True)



def ctim_problems(endpoint: str, answer: dict) -> list:
    data = answer.get("data")
    if data is None or endpoint in ("health", "respond", "trigger", "tile-data"):  # no CTIM in these
        return []
    return validate_refer_data(data) if endpoint == "refer" else validate_observe_data(data)


# -- presenting ---------------------------------------------------------------------------------

def full_url(request) -> str:
    return requests.Request(request.method, request.url, params=list(request.params)).prepare().url


def call_json(call) -> dict:
    request = {"method": call.request.method, "url": full_url(call.request), "headers": call.request.headers}
    if call.request.json is not None:
        request["json"] = call.request.json
    if call.request.form is not None:
        request["form"] = dict(call.request.form)
    if isinstance(call.result, VendorAnswer):
        text = call.result.text
        response = {"status": call.result.status, "reason": call.result.reason,
                    "headers": call.result.headers, "bytes": len(call.result.content),
                    "body_preview": text[:PREVIEW_CHARS] + ("..." if len(text) > PREVIEW_CHARS else "")}
    else:
        response = {"fault": call.result.kind, "message": call.result.message}
    found = {"step": call.step, "request": request, "response": response, "outcome": call.outcome,
             "value": call.value, "error": call.error.to_json() if call.error else None}
    if call.cache:
        found["cache"] = call.cache  # the step keeps its answers: a hit is no call to the vendor
    return found


class Painter:
    CODES = {"title": "1", "step": "1;36", "ok": "32", "bad": "31", "dim": "2", "key": "33"}

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, kind: str, text: str) -> str:
        return f"\033[{self.CODES[kind]}m{text}\033[0m" if self.enabled else text


def render_text(trace: Trace, paint: Painter) -> str:
    data = trace.to_json()
    source = {None: "live vendor", "examples": "the spec's examples"}.get(trace.replay, trace.replay)
    asked = f" {trace.observable.type} {trace.observable.value}" if trace.observable else ""
    lines = [paint("title", f"{trace.vendor} /{trace.endpoint}{asked}  (answers from {source})")]
    for step in data["steps"]:
        request, response = step["request"], step["response"]
        cache = f"  (cache {step['cache']})" if step.get("cache") else ""
        lines += ["", paint("step", f"step {step['step']}") + f"  {request['method']} {request['url']}{cache}"]
        for name, value in request["headers"].items():
            lines.append(f"  {paint('key', name)}: {value}")
        for part in ("json", "form"):
            if part in request:
                lines.append(f"  {paint('key', part)}: {json.dumps(request[part])}")
        if "fault" in response:
            lines.append("  " + paint("bad", f"no answer: {response['fault']}: {response['message']}"))
        else:
            good = 200 <= response["status"] < 300
            content_type = response["headers"].get("Content-Type", "")
            lines.append("  " + paint("ok" if good else "bad", f"{response['status']} {response['reason']}")
                         + paint("dim", f"  {content_type}  {response['bytes']} bytes"))
            lines += ["  " + paint("dim", line) for line in response["body_preview"].splitlines()[:20]]
        outcome = step["outcome"]
        if step["error"]:
            lines.append("  " + paint("bad", f"{outcome}: {step['error']['code']}: {step['error']['message']}"))
        elif outcome == "skip":
            lines.append("  " + paint("key", "skip: no data for this observable"))
        else:
            lines.append(f"  {paint('key', 'value')}: " + _short_json(step["value"]))
    lines += ["", paint("title", "answer")] + ["  " + line for line in json.dumps(data["answer"], indent=2).splitlines()]
    lines += ["", paint("title", "problems (CTIM, replay)")]
    lines += ["  " + paint("bad", problem) for problem in data["problems"]] or ["  " + paint("ok", "none")]
    return "\n".join(lines)


def _short_json(value, limit: int = 400) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


# -- recording ----------------------------------------------------------------------------------

def record_case(trace: Trace, folder: Path) -> Path:
    """Save the exchange in the conformance case format, credentials replaced by placeholders."""
    # One placeholder per credential, for every spelling of it, so the case replays consistently.
    placeholders = [(spelling, f"recorded-{index}") for index, secret in enumerate(trace.secrets)
                    for spelling in spellings(secret)]

    def scrub(value):
        if isinstance(value, str):
            for spelling, placeholder in placeholders:
                value = value.replace(spelling, placeholder)
            return value
        if isinstance(value, list):
            return [scrub(item) for item in value]
        if isinstance(value, dict):
            return {scrub(key): scrub(item) for key, item in value.items()}
        return value

    path_by_endpoint = {"observe": "/observe/observables", "deliberate": "/deliberate/observables",
                        "refer": "/refer/observables", "respond": "/respond/observables",
                        "trigger": "/respond/trigger", "health": "/health", "tile-data": "/tiles/tile-data"}
    target = folder / trace.vendor
    target.mkdir(parents=True, exist_ok=True)
    number = len(list(target.glob(f"try-{trace.endpoint}-*.json"))) + 1
    name = f"try-{trace.endpoint}-{trace.observable.type if trace.observable else 'none'}-{number}"
    case = scrub({
        "id": f"{trace.vendor}/{name}", "vendor": trace.vendor,
        "origin": {"repo": "local", "commit": None, "test": "relay try"},
        "kind": "success" if trace.ok else "vendor-error",
        "now": trace.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "request": {"method": "POST", "path": path_by_endpoint[trace.endpoint],
                    "auth": {"jwt_payload": trace.claims}, "headers": {},
                    "json": trace.form if trace.form is not None else
                    [trace.observable.to_json()] if trace.observable else None},
        "vendor_calls": [recorded_call(call) for call in trace.calls],
        "expected": {"status": 200, "json": trace.answer},
        "unordered": [], "notes": f"recorded by relay try ({trace.replay or 'live vendor'})",
    })
    path = target / f"{name}.json"
    path.write_text(json.dumps(case, indent=2) + "\n")
    return path


def recorded_call(call) -> dict:
    request = {"method": call.request.method, "url": full_url(call.request), "headers": dict(call.request.headers),
               "json": call.request.json, "data": dict(call.request.form) if call.request.form is not None else None}
    if not isinstance(call.result, VendorAnswer):
        kind = call.result.kind if call.result.kind in ("ssl", "connection", "timeout") else "connection"
        return {"request": request, "response": {"error": kind, "message": call.result.message}}
    response = {"status": call.result.status, "headers": {"Content-Type": call.result.headers.get("Content-Type", "")}}
    try:
        response["json"] = call.result.json() if call.result.content.strip() else None
        if response["json"] is None:
            raise ValueError
    except ValueError:
        response.pop("json", None)
        response["text"] = call.result.text
    return {"request": request, "response": response}
