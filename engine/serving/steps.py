"""Run one step: build its request, call the vendor, decide what the answer means, read its value.

A step is one call, or with `for each` one call per item of a list (its value: the list of their
values, in item order), with `pages` one call per page while its condition holds (its value:
the pages' values joined), and with `poll` the same call after each wait until a job is done (its
value: the last answer's). Each call goes through the error table (`outcomes.decide`):

    accept       the answer is read (`read`) and becomes the value (`result`, if given); a
                 rule's `warning` is noted beside it
    skip         nothing to report for this observable: StepSkipped
    skip: step   this call found nothing: the step's value is null (an item is left out)
    error        the observable ends with it (StepFailed); a `warning` is noted and the call is
                 taken as having found nothing, so the observable goes on

Every call is cut to what is left of the request's budget, and none starts once it is spent,
except a `cleanup` step's (a search job deleted), which also runs when the budget ran out before it.
"""
from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from engine.errors import AUTH_FAILED, RelayError
from engine.language.expressions import EvaluationError, Scope, Template, render_value
from engine.language.functions import to_text
from engine.language.mapping import truthy
from engine.serving.access_tokens import access_token
from engine.serving.answercache import answer_key
from engine.serving.budget import Budget
from engine.serving.failures import OutOfTime, StepFailed, StepSkipped, spec_runtime_error
from engine.serving.outcomes import decide
from engine.serving.readers import UnreadableBody, read_body
from engine.serving.signing import SCHEMES, wire_request
from engine.serving.vendor_http import VendorAnswer, VendorFault, VendorRequest, body_kwargs
from engine.spec.model import Step, origin_of

SKIPPED = object()  # a call that found nothing for this step only (`skip: step`, a warning)
MAX_ITEMS = 1000  # calls one `for each` step may make, as many as observables in a request
CLEANUP_GRACE = 2.0  # seconds a cleanup call may take once the request's budget is spent


@dataclass
class Call:
    """One vendor exchange and what the step made of it, kept for `relay try` traces."""

    step: str
    request: VendorRequest
    result: object  # VendorAnswer or VendorFault
    outcome: str = ""  # accept, skip, skip step or error
    value: object = None  # the step's value, when accepted
    error: RelayError | None = None
    ms: float = 0.0  # how long the exchange took
    cache: str = ""  # "hit" (answered from the vendor-answer cache) or "miss", for steps that keep answers
    cache_key: str | None = None  # a missed answer's key, until it is accepted, read and kept
    kept: object = None  # answercache.Kept: the cache's entry that answered (a hit)


def run_steps(steps, scope: Scope, work, warnings: list) -> Scope:
    """The scope with each step's value under its name, the steps run in order; raises as run_step.
    When the budget runs out, the cleanup steps ahead still run (clean_up)."""
    for index, step in enumerate(steps):
        try:
            value = run_step(step, scope, work, warnings)
        except OutOfTime:
            clean_up(steps[index + 1:], scope, work)
            raise
        scope = scope.with_values(**{step.name: value})
    return scope


def clean_up(steps, scope: Scope, work) -> None:
    """The cleanup steps among `steps` whose every step read has a value (a job was made, so it is
    deleted), for what they do: their answers and errors are not reported."""
    for step in steps:
        if step.cleanup and all(scope.values.get(name) is not None for name in step.reads_steps):
            try:
                run_step(step, scope, work, [])
            except (StepFailed, StepSkipped, OutOfTime):
                pass


def run_step(step: Step, scope: Scope, work, warnings: list):
    """The step's value; raises StepSkipped, StepFailed or OutOfTime. Warnings are added to `warnings`."""
    if step.condition is not None and not truthy(evaluated(step.condition, scope, work, step.path + ("if",))):
        return None  # a call this observable does not need (e.g. a type-specific endpoint)
    if step.for_each is None:
        value = run_pages(step, scope, work, warnings)
        return None if value is SKIPPED else value
    items = evaluated(step.for_each.items, scope, work, step.path + ("for each",))
    if items is None:
        return []
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        reason = f"`for each` needs a list, not {type(items).__name__}" if not isinstance(items, list) else \
            f"`for each` would make {len(items)} calls; a step makes at most {MAX_ITEMS}"
        raise StepFailed(spec_runtime_error(work.spec, step.path + ("for each",), reason, scope, data=True))
    values = []
    for item in items:
        value = run_pages(step, scope.with_values(**{step.for_each.name: item}), work, warnings)
        if value is not SKIPPED:
            values.append(value)
    return values


def run_pages(step: Step, scope: Scope, work, warnings: list):
    """One call, or page after page while `pages.while` holds (at most `pages.max`), or a job
    polled until it is done."""
    if step.poll is not None:
        return run_poll(step, scope, work, warnings)
    if step.pages is None:
        return call_once(step, scope, work, warnings)[0]
    joined, previous = [], None
    for page in range(1, step.pages.max + 1):
        value, answered = call_once(step, scope.with_values(page=page, previous=previous), work, warnings)
        if value is SKIPPED:
            return SKIPPED if page == 1 else joined
        joined.extend(value) if isinstance(value, list) else joined.append(value)
        previous = {name: answered.values[name] for name in ("status", "headers", "body")}
        if not truthy(evaluated(step.pages.more, answered, work, step.path + ("pages", "while"), data=True)):
            break
    return joined


def call_once(step: Step, scope: Scope, work, warnings: list):
    """(value or SKIPPED, the scope with the answer's facts) of one call."""
    return judge(step, exchange(step, scope, work), scope, work, warnings)


def exchange(step: Step, scope: Scope, work) -> Call:
    """One call made (or answered from the vendor-answer cache) and recorded; a call whose access
    token the vendor refused is made once more with a new token."""
    request = build_request(step, scope, work)
    call = send(step, request, work)
    token = work.spec.http.auth_token
    if request.token is not None and isinstance(call.result, VendorAnswer) and call.result.status in token.refresh_on:
        call.outcome = "token refused"
        access_token(work, refused=request.token)
        call = send(step, build_request(step, scope, work), work)
    return call


def send(step: Step, request: VendorRequest, work) -> Call:
    """The request sent (or answered from the vendor-answer cache) and recorded; raises OutOfTime
    when the request's budget allows no call. A cleanup step is never refused: when the budget is
    spent it gets a short grace of its own."""
    timeout = step.timeout or work.spec.http.timeout
    answers = work.client.answers if step.cache_seconds else None
    key = answer_key(request) if answers is not None else None
    kept = answers.get(key) if answers is not None else None
    started = time.perf_counter()
    if kept is not None:
        result = kept.answer
    else:
        budget = work.budget
        if budget is not None and step.cleanup and not budget.allows_a_call():
            budget = Budget(CLEANUP_GRACE, work.runtime.clock)
        if budget is not None and not budget.allows_a_call():
            raise OutOfTime()
        limit = work.client.rate_limit
        if limit is not None and not limit.wait_for_a_slot(work.runtime.clock, budget):
            raise OutOfTime()  # the vendor's rate limit leaves no slot within the request's budget
        if budget is not None:
            timeout = budget.call_timeout(timeout)
        result = work.client.send(request, timeout)
        if isinstance(result, VendorFault) and result.kind == "timeout" and budget is not None \
                and timeout < (step.timeout or work.spec.http.timeout) and budget.spent():
            raise OutOfTime()  # the vendor was cut off by the request's budget, not by its own timeout
    call = Call(step.name, request, result, ms=(time.perf_counter() - started) * 1000,
                cache="" if answers is None else "hit" if kept is not None else "miss")
    if answers is not None and kept is None:
        call.cache_key = key
    call.kept = kept
    work.calls.append(call)
    return call


def judge(step: Step, call: Call, scope: Scope, work, warnings: list, timed_out: bool = False):
    """(value or SKIPPED, the scope with the answer's facts) of a call, by the error table; with
    `timed_out`, the last answer of a poll out of time, by the rules for that."""
    result = call.result
    outcome = decide(step.errors + work.spec.http.errors, result, scope, work.spec.title, timed_out)
    call.outcome, call.error = outcome.kind, outcome.error
    if outcome.kind == "skip":
        raise StepSkipped()
    if outcome.kind == "skip step":
        return SKIPPED, scope
    if outcome.kind == "error":
        if outcome.error.type == "warning":  # noted, and the observable goes on without this answer
            warnings.append(outcome.error)
            return SKIPPED, scope
        raise StepFailed(outcome.error)
    assert isinstance(result, VendorAnswer)
    if outcome.error is not None:  # accepted with a warning (e.g. a job's results so far)
        warnings.append(outcome.error)
    try:
        body = read_body(step.read, result) if call.kept is None else \
            call.kept.read_by(step.name, lambda: read_body(step.read, result))
    except UnreadableBody as problem:
        call.outcome, call.error = "error", RelayError("unknown", f"{work.spec.title} sent an unexpected answer: "
                                                                  f"{problem}.")
        raise StepFailed(call.error) from None
    if call.cache_key is not None:  # accepted and readable: kept for its time to live
        work.client.answers.put(call.cache_key, result, step.cache_seconds, step.name, body)
        call.cache_key = None
    answered = scope.with_values(status=result.status, headers=result.headers, body=body, reason=result.reason,
                                 text=result.text)
    call.value = body if step.result is None else \
        evaluated(step.result, answered, work, step.path + ("result",), data=True)
    return call.value, answered


def run_poll(step: Step, scope: Scope, work, warnings: list):
    """The same call again, after each wait, until `poll.until` holds on an accepted answer.

    The polls end when `poll.attempts` calls are made, when the time since the second call passes
    `poll.for`, or when the request's budget could not hold the next wait; the last answer is then
    judged by the `timed_out` rules (an error, or accepted with a warning). A client gone ends
    them at once (OutOfTime: the cleanup steps run).
    """
    poll, clock, budget = step.poll, work.runtime.clock, work.budget
    calls, deadline = 0, None
    while True:
        call = exchange(step, scope, work)
        calls += 1
        value, answered = judge(step, call, scope, work, warnings)
        if value is SKIPPED or truthy(evaluated(poll.until, answered, work, step.path + ("poll", "until"), data=True)):
            return value
        wait = poll.waits[min(calls, len(poll.waits)) - 1]
        if budget is not None and budget.client_gone():
            raise OutOfTime()
        if (poll.attempts is not None and calls >= poll.attempts) or (budget is not None and budget.remaining() <= wait):
            return judge(step, call, scope, work, warnings, timed_out=True)[0]
        clock.sleep(wait)
        if deadline is None and poll.seconds is not None:
            deadline = clock.monotonic() + poll.seconds
        if deadline is not None and clock.monotonic() > deadline:
            return judge(step, call, scope, work, warnings, timed_out=True)[0]


def evaluated(expression, scope: Scope, work, path: tuple, *, data: bool = False):
    try:
        return expression.evaluate(scope)
    except EvaluationError as failure:
        raise StepFailed(spec_runtime_error(work.spec, path, failure.reason, scope, data=data)) from None


# -- the request --------------------------------------------------------------------------------

def build_request(step: Step, scope: Scope, work) -> VendorRequest:
    http = work.spec.http

    def text(value, *where):
        """A request part as text (None when it renders to null: the part is then left out)."""
        try:
            return as_text(value, scope)
        except EvaluationError as failure:
            raise request_failed(step, where, failure.reason, scope, work) from None

    url = text(step.url, "url") if not isinstance(step.url, Template) or step.url.whole else \
        encoded_url(step, scope, work)
    base = base_url(work, scope)
    if url.startswith("/"):
        url = base + url
    origin, base_origin = origin_of(url), origin_of(base)
    if origin != base_origin and origin not in http.other_origins:
        # A template must never steer a call (and credentials) to a host the spec did not declare.
        where = f"{origin} is not a declared origin" if origin.startswith(("https://", "http://")) else \
            "it is not an absolute http(s) URL"
        raise request_failed(step, ("url",), f"the URL cannot be called: {where}", scope, work)
    with_auth = step.use_auth and origin == base_origin
    token = access_token(work) if with_auth and http.auth_token is not None else None
    if token is not None:
        scope = scope.with_values(token=token)
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
        raise request_failed(step, ("json",), failure.reason, scope, work) from None
    form = None
    if step.form is not None:
        form = tuple((name, text(value, "form", name)) for name, value in step.form)
    request = VendorRequest(step.method, url, tuple(params), headers, body, form, token)
    if with_auth and http.auth_sign is not None:
        scheme, parameters = http.auth_sign
        values = {name: text(value, "auth", "sign", name) or "" for name, value in parameters}
        wire = wire_request(step.method, url, request.params, headers, body_kwargs(request))
        request.headers.update(SCHEMES[scheme].sign(wire, values, work.runtime.clock.now(), work.runtime.new_nonce()))
    return request


def request_failed(step: Step, where: tuple, reason: str, scope: Scope, work) -> StepFailed:
    """A request that cannot be built. The token request reads only credentials and settings, so
    when it fails they are at fault (a key that does not parse, a token URL on another host): an
    authorization error. Any other step's failure is the spec's, located in its file."""
    if step.path[:3] == ("http", "auth", "token"):
        return StepFailed(RelayError("authorization error", AUTH_FAILED + f"{work.spec.title} cannot be asked for "
                                                                          f"a token with these credentials: {reason}."))
    return StepFailed(spec_runtime_error(work.spec, step.path + where, reason, scope))


HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?"
                  r"|\[[0-9A-Fa-f:.]+\]")


def base_url(work, scope: Scope) -> str:
    """The vendor's base URL: as the spec writes it, or, when its host comes from the token (an
    on-premises API), rendered once per request and checked to be a plain `scheme://host[:port]`
    with the spec's own path. A value that is not one is the vendor's `connection` fault, which the
    spec's error table words (e.g. "validate the configured API endpoint")."""
    http = work.spec.http
    if http.base_template is None:
        return http.base_url
    if work.rendered_base_url is None:
        try:
            rendered = str(http.base_template.render_text(scope))
        except EvaluationError as failure:
            rendered, problem = "", failure.reason
        else:
            problem = base_url_problem(rendered, http)
        if problem:
            outcome = decide(http.errors, VendorFault("connection", problem), scope, work.spec.title)
            raise StepFailed(outcome.error)
        work.rendered_base_url = rendered.rstrip("/")
    return work.rendered_base_url


def base_url_problem(url: str, http) -> str | None:
    parts = urlsplit(url)
    schemes = ("https", "http") if http.allow_plain_http else ("https",)
    if parts.scheme not in schemes or parts.query or parts.fragment or "@" in parts.netloc or "\\" in url:
        return "the configured API address is not a plain https URL"
    host, _, port = parts.netloc.rpartition(":") if not parts.netloc.endswith("]") else (parts.netloc, "", "")
    if not host:  # no port given
        host, port = parts.netloc, ""
    if not HOST.fullmatch(host) or (port and not port.isdigit()):
        return "the configured API host is not a host name or address"
    return None


# What HTTP lets a header value hold: no control characters, nothing but blanks before the value.
# Credentials are ASCII: a key with other characters is a key pasted wrongly, not one to send.
SENDABLE_HEADER = re.compile(r"([\x21-\x7e\x80-\xff][\x20-\x7e\x80-\xff\t]*)?")
SENDABLE_CREDENTIAL = re.compile(r"([\x21-\x7e][\x20-\x7e\t]*)?")


def check_header_values(headers: dict, work) -> None:
    """A header value HTTP cannot carry fails the whole request when it holds a credential (every
    observable would send it: Cisco's relays answer an authorization error), else only this
    observable (the value came from it); either way before anything is sent."""
    credentials = work.secrets()
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


def encoded_url(step: Step, scope: Scope, work) -> str:
    """Values are percent-encoded into the URL, so an observable can never change host or path."""
    try:
        return step.url.render_text(scope, lambda text: quote(text, safe=step.url_safe))
    except EvaluationError as failure:
        raise request_failed(step, ("url",), failure.reason, scope, work) from None


def as_text(value, scope: Scope):
    """A request part's text as a template spells its values; None stays None (the part is left out)."""
    if isinstance(value, Template):
        value = value.render(scope)
    return None if value is None else to_text(value)
