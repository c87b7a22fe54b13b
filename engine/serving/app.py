"""The relay API as a Flask app: every spec in the catalogue under /<vendor>/..., one at the root.

    create_app(specs=None, config=None, runtime=None) -> Flask

Routes are the relay API of Cisco's relays: POST /health, /deliberate/observables,
/observe/observables, /refer/observables, /respond/observables, /respond/trigger, /tiles,
/tiles/tile, /tiles/tile-data, /version, GET /watchdog. Relay errors are HTTP 200 with
`{"errors": [...]}` next to whatever data was gathered; an engine failure is logged and answered
as a relay error, never as a stack trace.

Every answer leaves through `serve`, which cuts the request's credentials and SECRET_KEY out of
all of it (data, codes, messages) in every spelling, whatever a vendor echoed or a template did.
"""
from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, Response, g, json, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from engine.serving.answercache import cache_for
from engine.serving.auth import Authenticator, JwksCache, fetch_jwks_over_https, required_credentials
from engine.serving.budget import Budget, client_socket_watch
from engine.serving.config import RelayConfig
from engine.serving.envelope import endpoint_answer, errors_only
from engine.errors import RelayError
from engine.serving.flows import Work, run_endpoint, run_health
from engine.spec.load import load_catalogue
from engine.serving.observables import (MAX_BODY_BYTES, TOO_LARGE, InvalidInput, input_error, parse_json_body,
                                        supported_observables, validate_observables)
from engine.serving.ratelimit import RateLimit
from engine.serving.requestlog import RequestLog
from engine.serving.respond import STUB_LISTING, STUB_TRIGGER, failure, run_trigger, validate_trigger
from engine.serving.redaction import REQUEST_LINES_WITHOUT_QUERY, SECRETS_OUT_OF_LOGS, redactor_for
from engine.serving.runtime import Runtime
from engine.serving.tiles import asked_tile, run_tile_data, tile_list
from engine.spec.model import Spec
from engine.serving.vendor_http import VendorClient

log = logging.getLogger("relay")

RELAY_ROUTES = {
    "health": ("POST", "/health"),
    "deliberate": ("POST", "/deliberate/observables"),
    "observe": ("POST", "/observe/observables"),
    "refer": ("POST", "/refer/observables"),
    "respond": ("POST", "/respond/observables"),
    "trigger": ("POST", "/respond/trigger"),
    "tiles": ("POST", "/tiles"),
    "tile": ("POST", "/tiles/tile"),
    "tile_data": ("POST", "/tiles/tile-data"),
    "version": ("POST", "/version"),
    "watchdog": ("GET", "/watchdog"),
}


def routes_of(spec: Spec) -> list:
    """The relay routes a spec serves (the ones it declares, and /version and /watchdog)."""
    declared = [RELAY_ROUTES[name][1] for name in ("health", "deliberate", "observe", "refer", "respond", "trigger",
                                                    "tiles", "tile", "tile_data") if spec.declares(name)]
    return declared + [RELAY_ROUTES["version"][1], RELAY_ROUTES["watchdog"][1]]


class Relay:
    """The engine behind the routes: specs, auth, the vendor client, the runtime."""

    def __init__(self, specs: dict, config: RelayConfig, runtime: Runtime, authenticator: Authenticator):
        self.specs = specs
        self.config = config
        self.runtime = runtime
        self.authenticator = authenticator
        self.clients = {name: VendorClient(runtime.session, config.upstream_for(name),
                                           private_ok=spec.http is not None and spec.http.private_network
                                           and config.may_reach_private(name),
                                           rate_limit=rate_limit_of(spec),
                                           answers=cache_for(spec, runtime.clock, config.answer_cache_bytes))
                        for name, spec in specs.items()}

    # -- the relay routes -------------------------------------------------------------------
    def answer(self, spec: Spec, route: str, audience: str):
        if route == "version":
            return {"version": spec.version}
        if route == "watchdog":
            token = request.headers.get("Health-Check")
            if not token:
                return errors_only([RelayError("health check failed", spec.watchdog_message)])
            return {"data": token}
        if not spec.declares(route):
            return None
        if route == "health":
            errors = run_health(self.work(spec, audience, "health")).errors
            return errors_only(errors) if errors else {"data": {"status": "ok"}}
        if route in ("deliberate", "observe", "refer"):
            return self.enrich(spec, route, audience)
        if route in ("respond", "trigger"):
            if not spec.respond.actions:  # declared without actions: the relay template's stubs
                return dict(STUB_LISTING if route == "respond" else STUB_TRIGGER)
            return self.enrich(spec, route, audience) if route == "respond" else self.trigger(spec, audience)
        return self.tiles(spec, route, audience)

    def enrich(self, spec: Spec, route: str, audience: str):
        empty = [] if route in ("refer", "respond") else {}
        # Most relays read the body first; some check the token before anything else.
        work = self.work(spec, audience, route) if spec.read_token_first else None
        try:
            observables = validate_observables(request_json())
        except InvalidInput as problem:
            return errors_only([input_error(spec, problem)])
        observables = g.observables = supported_observables(observables, spec.observable_types)
        if not observables:  # nothing to look up: most relays answer before reading the token
            return {"data": empty}
        work = work or self.work(spec, audience, route)
        return endpoint_answer(route, run_endpoint(work, route, observables))

    def trigger(self, spec: Spec, audience: str):
        """A trigger's every error, a refused token or bad input included, says `failure`."""
        try:
            work = self.work(spec, audience, "trigger") if spec.read_token_first else None
            asked = validate_trigger(request_json())
            g.observables = [asked.observable]
            return run_trigger(work or self.work(spec, audience, "trigger"), asked)
        except InvalidInput as problem:
            return failure(spec, [input_error(spec, problem)])
        except RelayError as refused:
            return failure(spec, [refused])

    def tiles(self, spec: Spec, route: str, audience: str):
        """/tiles, /tiles/tile and /tiles/tile-data: the token is read on each, as Cisco's relays did."""
        work = self.work(spec, audience, route) if spec.read_token_first or route == "tiles" else None
        if route == "tiles":
            return tile_list(spec)
        try:
            tile, period = asked_tile(spec, request_json(), with_period=route == "tile_data")
        except InvalidInput as problem:
            return errors_only([input_error(spec, problem)])
        work = work or self.work(spec, audience, route)
        return {"data": dict(tile.definition)} if route == "tile" else run_tile_data(work, tile, period)

    def work(self, spec: Spec, audience: str, route: str) -> Work:
        # A route of a vendor that needs no credentials reads no token, as such Cisco relays do.
        reads_token = spec.reads_token(route)
        claims = self.authenticator.claims(request.headers.get("Authorization"), audience) if reads_token else {}
        credentials = required_credentials(claims, spec) if reads_token else {}
        g.secrets_in_flight = SECRETS_OUT_OF_LOGS.add(credentials.values())  # until the request ends
        settings = {setting.name: setting.read(claims) for setting in spec.settings}
        g.work = Work(spec, self.clients[spec.name], self.runtime, credentials, settings, budget=g.budget)
        return g.work

    def answer_text(self, body: dict) -> str:
        """The answer as JSON without the request's credentials or SECRET_KEY, in any spelling: a
        vendor may echo its key (an error page quoting the URL), a template may upper-case or encode it."""
        work = g.get("work")
        obtained = work.obtained_secrets if work is not None else ()
        return redactor_for([*g.get("secrets_in_flight", ()), *obtained, self.config.secret_key]).json_text(body)


def spec_cache(config: RelayConfig):
    if not config.spec_cache:
        return None
    from engine.spec.cache import SpecCache
    return SpecCache(config.spec_cache)


def request_id(environ: dict) -> str:
    """Lambda's request id (the one in its own log lines and in `zappa tail`), else a new one."""
    context = environ.get("lambda.context")
    return getattr(context, "aws_request_id", None) or uuid.uuid4().hex


def rate_limit_of(spec: Spec) -> RateLimit | None:
    if spec.http is None or spec.http.rate_limit is None:
        return None
    return RateLimit(*spec.http.rate_limit)


def request_json():
    """The request's body as JSON (None when empty or not JSON); InvalidInput when too large."""
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:  # a Content-Length beyond the maximum: refused before it is read
        raw = None
    if raw is None or len(raw) > MAX_BODY_BYTES:  # a streamed body is cut one byte past the maximum
        raise InvalidInput({"_schema": [TOO_LARGE]})
    return parse_json_body(raw)


def with_data_as_spec_says(body: dict, spec: Spec) -> dict:
    """Next to errors, `data` as the spec's `data_with_errors` says: what was gathered (the
    default), always (`{}` when nothing was), or never (errors alone)."""
    if "errors" not in body or spec.data_with_errors == "gathered":
        return body
    if spec.data_with_errors == "never":
        return {"errors": body["errors"]}
    return {"data": body.get("data", {}), "errors": body["errors"]}


def misconfigured(vendor: str) -> RelayError:
    """What every route of a vendor whose spec does not load answers: the operator's problem, said
    so that the analyst who sees it in XDR knows whom to ask (the details are in the relay's log)."""
    return RelayError("misconfigured module", f"The {vendor} module is misconfigured on this relay: its "
                                              "spec does not load. The relay's operator can see why in its log "
                                              "or with `relay lint`.")


def framework_error(error: HTTPException) -> Response:
    """Unknown routes and methods answer as Cisco's relays' Flask catch-all does."""
    body = {"code": error.code, "message": error.description,
            "reason": f"{type(error).__module__}.{type(error).__name__}"}
    return Response(json.dumps(body), status=error.code, mimetype="application/json")


def build_authenticator(config: RelayConfig, runtime: Runtime) -> Authenticator:
    jwks = JwksCache(lambda host: fetch_jwks_over_https(runtime.jwks_session, host))
    return Authenticator(config.auth_mode, secret_key=config.secret_key, jwks_hosts=config.jwks_hosts, jwks=jwks)


class QueryForgetting:
    """WSGI middleware: the relay API takes nothing from the query string, so it is dropped before
    anything can log it. A token sent as `?jwt=...` is refused like any token-less request, and
    gunicorn's access log, written from the same environ after the answer, does not keep it
    (Zappa and Werkzeug log from their own copy: `RequestLinesWithoutQuery` cleans their lines)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        environ["QUERY_STRING"] = ""
        for name in ("RAW_URI", "REQUEST_URI"):
            if name in environ:
                environ[name] = environ[name].split("?", 1)[0]
        return self.app(environ, start_response)


def create_app(specs: dict | None = None, config: RelayConfig | None = None, runtime: Runtime | None = None,
               authenticator: Authenticator | None = None, broken: dict | None = None,
               request_log: RequestLog | None = None) -> Flask:
    """`specs` by name (default: the catalogue in config.vendors_dir); `broken`: the problems, by
    vendor name, of specs that do not load, whose routes answer that the module is misconfigured."""
    config = config or RelayConfig.from_environ()
    runtime = runtime or Runtime()
    if specs is None:
        catalogue = load_catalogue(config.vendors_dir, spec_cache(config))
        specs, broken = catalogue.specs, catalogue.broken
    broken = dict(broken or {})
    for name, problems in broken.items():  # said once, at start: each request then says it in short
        log.error("vendor %s does not load; its routes answer `misconfigured module` until it is fixed:\n%s",
                  name, "\n".join(f"  {problem}" for problem in problems))
    if config.root_vendor and config.root_vendor not in specs and config.root_vendor not in broken:
        raise ValueError(f"RELAY_VENDOR={config.root_vendor!r}, but there is no vendors/{config.root_vendor}.yaml")
    relay = Relay(specs, config, runtime, authenticator or build_authenticator(config, runtime))
    if request_log is None and config.request_log:
        request_log = RequestLog(observables=config.log_observables, metrics=config.metrics)

    SECRETS_OUT_OF_LOGS.install().add([config.secret_key])
    REQUEST_LINES_WITHOUT_QUERY.install()
    app = Flask("relay")
    # One byte more than the maximum is read, so a longer body (streamed without Content-Length,
    # which Werkzeug cuts silently) shows itself and is refused as too large, not as bad JSON.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES + 1
    app.url_map.strict_slashes = False
    app.config["RELAY"] = relay

    def serve(route: str, vendor: str | None):
        started = time.perf_counter()
        answer = answer_of(route, vendor)
        if request_log is not None and g.get("answered") is not None:
            request_log.emit(g.answered, route, request_id(request.environ), (time.perf_counter() - started) * 1000,
                             g.answered_body, g.get("observables", ()), getattr(g.get("work"), "calls", ()))
        return answer

    def answer_of(route: str, vendor: str | None):
        name = vendor or config.root_vendor or ""
        spec = relay.specs.get(name)
        if spec is None and name in broken:
            g.answered, g.answered_body = name, errors_only([misconfigured(name)])
            return Response(json.dumps(g.answered_body), status=200, mimetype="application/json")
        if spec is None:
            return framework_error(_not_found())
        g.budget = Budget(config.request_budget, runtime.clock, client_socket_watch(request.environ))
        try:
            body = relay.answer(spec, route, config.audience_for(request.url_root, vendor))
        except RelayError as error:
            body = errors_only([error])
        except Exception:  # an engine bug must not show a stack trace to XDR
            log.exception("vendor %s: %s failed", spec.name, request.path)
            body = errors_only([RelayError("unknown", "Something went wrong.")])
        if body is None:
            return framework_error(_not_found())
        if route not in ("version", "watchdog", "trigger"):  # a trigger's data is its status
            body = with_data_as_spec_says(body, spec)
        g.answered, g.answered_body = spec.name, body
        return Response(relay.answer_text(body), status=200, mimetype="application/json")

    for route, (method, path) in RELAY_ROUTES.items():
        app.add_url_rule(f"/<vendor>{path}", f"{route}-vendor", lambda vendor, route=route: serve(route, vendor),
                         methods=[method])
        if config.root_vendor:
            app.add_url_rule(path, f"{route}-root", lambda route=route: serve(route, None), methods=[method])

    @app.teardown_request
    def forget_secrets(_error):
        SECRETS_OUT_OF_LOGS.discard(g.pop("secrets_in_flight", []))
        work = g.get("work")
        if work is not None:
            SECRETS_OUT_OF_LOGS.discard(work.obtained_secrets)

    app.register_error_handler(HTTPException, framework_error)
    app.wsgi_app = QueryForgetting(app.wsgi_app)
    return app


def _not_found():
    from werkzeug.exceptions import NotFound
    return NotFound()
