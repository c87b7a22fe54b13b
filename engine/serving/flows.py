"""Run an endpoint for a list of observables: request steps, then mappings, then one relay answer.

    per request:    steps marked `once: per request` (e.g. a side lookup), in order
    per observable: the remaining steps in order, then the endpoint's block of mappings;
                    observables run concurrently (spec.concurrency), and the first fatal error
                    stops observables not yet started, while data already gathered is kept.

Every call is cut to what is left of the request's budget, and none starts once the budget is
spent or the client has gone: observables left unfinished are named in one `timeout` error.

Everything an expression can see lives in one scope: observable, settings, credentials, the
results of the steps by name, and the `let` values and `for each` items of the mapping.
"""
from __future__ import annotations

import base64
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from engine.errors import AUTH_FAILED, RelayError, format_yaml_path
from engine.language.expressions import EvaluationError, Scope, Template, render_value
from engine.language.functions import to_text
from engine.language.mapping import ABSENT, MappingError, bind_let, evaluation_failed, render, truthy
from engine.serving.budget import Budget
from engine.serving.observables import Observable
from engine.serving.outcomes import decide
from engine.serving.readers import UnreadableBody, read_body
from engine.spec.model import Block, Spec, Step, origin_of
from engine.serving.vendor_http import VendorAnswer, VendorClient, VendorFault, VendorRequest

log = logging.getLogger("relay")


class StepSkipped(Exception):
    """The vendor's answer means: nothing to report for this observable."""


class StepFailed(Exception):
    """The step ends this observable with an error; `stops`: and the observables not started yet
    (a rate limit or bad credentials will fail them too; a value only this observable has will not)."""

    def __init__(self, error: RelayError, stops: bool = True):
        super().__init__(str(error))
        self.error = error
        self.stops = stops


class OutOfTime(Exception):
    """The request's budget is spent, or its client has gone: no further call starts."""


@dataclass
class Call:
    """One vendor exchange and what the step made of it, kept for `relay try` traces."""

    step: str
    request: VendorRequest
    result: object  # VendorAnswer or VendorFault
    outcome: str = ""  # accept, skip or error
    value: object = None  # the step's value, when accepted
    error: RelayError | None = None


@dataclass
class Work:
    """What one relay request runs with."""

    spec: Spec
    client: VendorClient
    runtime: object
    credentials: dict
    settings: dict
    budget: Budget | None = None  # None: no limit (a tool running one observable by hand)
    calls: list = field(default_factory=list)
    notes: object | None = None  # lint's dry run: told what the mappings make and where they fail

    def base_scope(self) -> Scope:
        values = {"observable": None, "settings": self.settings, "credentials": self.credentials}
        return Scope(values, self.runtime, dict(self.spec.tables), self.notes)


@dataclass
class Gathered:
    """Documents by output key (in the order made) and errors, for one relay answer."""

    outputs: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    stops: bool = False  # an error here stops the observables not started yet
    unfinished: int = 0  # observables the budget (or a client gone) left unfinished

    def add(self, other: "Gathered") -> None:
        for key, docs in other.outputs.items():
            self.outputs.setdefault(key, []).extend(docs)
        for error in other.errors:
            if error.to_json() not in [e.to_json() for e in self.errors]:
                self.errors.append(error)
        self.unfinished += other.unfinished


def failed(failure: StepFailed) -> Gathered:
    return Gathered(errors=[failure.error], stops=failure.stops)


# -- steps --------------------------------------------------------------------------------------

def run_step(step: Step, scope: Scope, work: Work):
    """Call the vendor for one step; returns the step's value or raises StepSkipped / StepFailed."""
    http = work.spec.http
    if step.condition is not None and not truthy(_evaluate_step_condition(step, scope, work)):
        return None  # a call this observable does not need (e.g. a type-specific endpoint)
    request = build_request(step, scope, work)
    timeout = step.timeout or http.timeout
    if work.budget is not None:
        if not work.budget.allows_a_call():
            raise OutOfTime()
        timeout = work.budget.call_timeout(timeout)
    result = work.client.send(request, timeout)
    if isinstance(result, VendorFault) and result.kind == "timeout" and work.budget is not None \
            and timeout < (step.timeout or http.timeout) and work.budget.spent():
        raise OutOfTime()  # the vendor was cut off by the request's budget, not by its own timeout
    call = Call(step.name, request, result)
    work.calls.append(call)
    outcome = decide(step.errors + http.errors, result, scope, work.spec.title)
    call.outcome, call.error = outcome.kind, outcome.error
    if outcome.kind == "skip":
        raise StepSkipped()
    if outcome.kind == "error":
        raise StepFailed(outcome.error)
    assert isinstance(result, VendorAnswer)
    try:
        body = read_body(step.read, result)
    except UnreadableBody as problem:
        call.outcome, call.error = "error", RelayError("unknown", f"{work.spec.title} sent an unexpected answer: "
                                                                  f"{problem}.")
        raise StepFailed(call.error) from None
    if step.result is None:
        call.value = body
        return body
    try:
        call.value = step.result.evaluate(Scope({"status": result.status, "headers": result.headers, "body": body,
                                                 "reason": result.reason}, work.runtime, dict(work.spec.tables)))
    except EvaluationError as failure:
        call.outcome, call.error = "error", spec_runtime_error(work.spec, step.path + ("result",), failure.reason,
                                                               scope)
        raise StepFailed(call.error) from None
    return call.value


def _evaluate_step_condition(step: Step, scope: Scope, work: Work):
    try:
        return step.condition.evaluate(scope)
    except EvaluationError as failure:
        raise StepFailed(spec_runtime_error(work.spec, step.path + ("if",), failure.reason, scope)) from None


def build_request(step: Step, scope: Scope, work: Work) -> VendorRequest:
    http = work.spec.http

    def text(value, *where):
        """A request part as text (None when it renders to null: the part is then left out)."""
        try:
            return as_text(value, scope)
        except EvaluationError as failure:
            raise StepFailed(spec_runtime_error(work.spec, step.path + where, failure.reason, scope)) from None

    url = text(step.url, "url") if not isinstance(step.url, Template) or step.url.whole else \
        encoded_url(step, scope, work)
    if url.startswith("/"):
        url = http.base_url + url
    origin = origin_of(url)
    if origin != http.origin and origin not in http.other_origins:
        # A template must never steer a call (and credentials) to a host the spec did not declare.
        raise StepFailed(spec_runtime_error(work.spec, step.path + ("url",), f"{origin} is not a declared origin",
                                            scope))
    with_auth = step.use_auth and origin == http.origin
    params = [(name, text(value, "query", name)) for name, value in step.query]
    headers = {}
    for name, value in http.headers + step.headers:
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = text(value, "headers", name)
    if with_auth:
        params += [(name, text(value, "auth", "query", name)) for name, value in http.auth_query]
        for name, value in http.auth_headers:
            headers[name] = text(value, "auth", "headers", name)
        if http.auth_basic:
            user, password = (text(part, "auth", "basic") for part in http.auth_basic)
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    params = [(name, value) for name, value in params if value is not None]
    headers = {name: value for name, value in headers.items() if value is not None}
    check_header_values(headers, work)
    try:
        body = render_value(step.json, scope) if step.json is not None else None
    except EvaluationError as failure:
        raise StepFailed(spec_runtime_error(work.spec, step.path + ("json",), failure.reason, scope)) from None
    form = None
    if step.form is not None:
        form = tuple((name, text(value, "form", name)) for name, value in step.form)
    return VendorRequest(step.method, url, tuple(params), headers, body, form)


# What HTTP lets a header value hold: no control characters, nothing but blanks before the value.
# Credentials are ASCII: a key with other characters is a key pasted wrongly, not one to send.
SENDABLE_HEADER = re.compile(r"([\x21-\x7e\x80-\xff][\x20-\x7e\x80-\xff\t]*)?")
SENDABLE_CREDENTIAL = re.compile(r"([\x21-\x7e][\x20-\x7e\t]*)?")


def check_header_values(headers: dict, work: Work) -> None:
    """A header value HTTP cannot carry fails the whole request when it holds a credential (every
    observable would send it: Cisco's relays answer an authorization error), else only this
    observable (the value came from it); either way before anything is sent."""
    credentials = [value for value in work.credentials.values() if value]
    for value in headers.values():
        with_credential = any(credential in value for credential in credentials)
        if (SENDABLE_CREDENTIAL if with_credential else SENDABLE_HEADER).fullmatch(value):
            continue
        if with_credential:
            raise StepFailed(RelayError("authorization error", AUTH_FAILED + f"the credentials cannot be sent to "
                                        f"{work.spec.title}: they hold a character an HTTP header cannot carry "
                                        "(a blank before the key, a line break, a non-ASCII letter?)"))
        raise StepFailed(RelayError("invalid argument", f"{work.spec.title} cannot be asked about this observable: "
                                    "a header would hold a character HTTP cannot carry"), stops=False)


def encoded_url(step: Step, scope: Scope, work: Work) -> str:
    """Values are percent-encoded into the URL, so an observable can never change host or path."""
    try:
        return step.url.render_text(scope, lambda text: quote(text, safe=step.url_safe))
    except EvaluationError as failure:
        raise StepFailed(spec_runtime_error(work.spec, step.path + ("url",), failure.reason, scope)) from None


def as_text(value, scope: Scope):
    if isinstance(value, Template):
        value = value.render(scope)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return to_text(value)
    return str(value)


def spec_runtime_error(spec: Spec, path: tuple, reason: str, scope: Scope | None = None) -> RelayError:
    """A spec that failed on live data: logged with file, line and path, answered as a clear relay error."""
    observable = (scope.values.get("observable") if scope else None) or {}
    where = f"{Path(spec.file).name}:{spec.line_of(path)} {format_yaml_path(path)}"
    log.error("vendor %s: %s: %s (observable %s %s)", spec.name, where, reason,
              observable.get("type", "-"), observable.get("value", "-"))
    return RelayError("unknown", f"The {spec.title} integration failed at {where}: {reason}.")


# -- an endpoint --------------------------------------------------------------------------------

def run_endpoint(work: Work, endpoint: str, observables: list[Observable]) -> Gathered:
    block = work.spec.endpoint(endpoint)
    steps = [work.spec.steps[name] for name in block.steps]
    scope = work.base_scope()
    for step in (s for s in steps if s.per_request):
        try:
            scope = scope.with_values(**{step.name: run_step(step, scope, work)})
        except StepSkipped:
            return Gathered()
        except StepFailed as failure:
            return failed(failure)
        except OutOfTime:
            return with_budget_error(Gathered(unfinished=len(observables)), work, len(observables))
    per_observable = [s for s in steps if not s.per_request]
    return run_observables(work, block, per_observable, scope, observables)


def run_observables(work: Work, block: Block, steps: list, scope: Scope, observables: list) -> Gathered:
    stopped = []  # a fatal error stops observables not started yet

    def one(observable: Observable) -> Gathered:
        if stopped:
            return Gathered()
        if work.budget is not None and not work.budget.allows_a_call():
            return Gathered(unfinished=1)
        gathered = run_observable(work, block, steps, scope.with_values(observable=observable.to_json()))
        if gathered.stops and any(error.type == "fatal" for error in gathered.errors):
            stopped.append(True)
        return gathered

    total = Gathered()
    if work.spec.concurrency <= 1 or len(observables) <= 1:
        results = [one(observable) for observable in observables]
    else:
        with ThreadPoolExecutor(max_workers=min(work.spec.concurrency, len(observables))) as pool:
            results = list(pool.map(one, observables))
    for gathered in results:
        total.add(gathered)
    return with_budget_error(total, work, len(observables))


def with_budget_error(gathered: Gathered, work: Work, total: int) -> Gathered:
    """One error naming the observables the budget left unfinished (none when all finished)."""
    if gathered.unfinished and work.budget is not None:
        why = "its client has gone" if work.budget.gone else \
            f"a relay request may take {work.budget.seconds:g} s (RELAY_REQUEST_BUDGET); ask about fewer at once"
        gathered.errors.append(RelayError("timeout", f"No answer from {work.spec.title} in time for "
                                                     f"{gathered.unfinished} of {total} observable"
                                                     f"{'s' if total != 1 else ''}: {why}."))
    return gathered


def run_observable(work: Work, block: Block, steps: list, scope: Scope) -> Gathered:
    for step in steps:
        try:
            scope = scope.with_values(**{step.name: run_step(step, scope, work)})
        except StepSkipped:
            return Gathered()
        except StepFailed as failure:
            return failed(failure)
        except OutOfTime:
            return Gathered(unfinished=1)
    gathered = Gathered()
    try:
        emit(block, scope, gathered.outputs)
    except MappingError as failure:
        gathered.outputs.clear()
        gathered.errors.append(spec_runtime_error(work.spec, failure.path, failure.reason, scope))
        if work.notes is not None:
            work.notes.failed(failure, gathered.errors[-1])
    return gathered


def emit(block: Block, scope: Scope, outputs: dict) -> None:
    """Render a block's documents (and its groups', in order) into `outputs`."""
    scopes = [scope]
    if block.for_each is not None:
        items = _evaluate(block.for_each.items, scope, block.path + ("for each",))
        if items is not None and not isinstance(items, list):
            raise MappingError(block.path + ("for each",), "`for each` needs a list")
        scopes = [scope.with_values(**{block.for_each.name: item}) for item in items or []]
        if block.where is not None:
            scopes = [s for s in scopes if truthy(_evaluate(block.where, s, block.path + ("where",)))]
    for item_scope in scopes:
        item_scope = bind_let(block.let, item_scope, block.path)
        if block.condition is not None and not truthy(_evaluate(block.condition, item_scope, block.path + ("if",))):
            continue
        for key, node in block.outputs:
            docs = render(node, item_scope)
            if docs is not ABSENT:
                outputs.setdefault(key, []).extend(docs)
        for group in block.groups:
            emit(group, item_scope, outputs)


def _evaluate(expression, scope: Scope, path: tuple):
    try:
        return expression.evaluate(scope)
    except EvaluationError as failure:
        raise evaluation_failed(path, failure, scope) from None


def run_health(work: Work) -> Gathered:
    scope = work.base_scope()
    for name in work.spec.health:
        step = work.spec.steps[name]
        try:
            scope = scope.with_values(**{step.name: run_step(step, scope, work)})
        except StepSkipped:
            break
        except StepFailed as failure:
            return failed(failure)
        except OutOfTime:
            return Gathered(errors=[RelayError("timeout", f"{work.spec.title} did not answer the health check "
                                                          "within the relay's time budget.")])
    return Gathered()
