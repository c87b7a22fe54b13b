"""Run an endpoint for a list of observables: request steps, then mappings, then one relay answer.

    per request:    steps marked `once: per request` (a side lookup, or one call for all the
                    request's observables, which every expression sees as `observables`), in order
    per observable: the remaining steps in order (steps.py), then the endpoint's block of mappings;
                    observables run concurrently (spec.concurrency), and the first fatal error
                    stops observables not yet started (unless the spec says `on_error: continue`),
                    while data already gathered is kept.

Every call is cut to what is left of the request's budget, and none starts once the budget is
spent or the client has gone: observables left unfinished are named in one `timeout` error.
Warnings (error rules of `type: warning`, and a mapping's `warnings:`) go next to the data and
stop nothing.

Everything an expression can see lives in one scope: observable, observables, settings,
credentials, the results of the steps by name, and the `let` values and `for each` items of the
mapping.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import RelayError
from engine.language.expressions import EvaluationError, Scope
from engine.language.mapping import ABSENT, MappingError, bind_let, evaluation_failed, render, truthy
from engine.serving.budget import Budget
from engine.serving.failures import OutOfTime, StepFailed, StepSkipped, spec_runtime_error
from engine.serving.observables import Observable
from engine.serving.redaction import SECRETS_OUT_OF_LOGS
from engine.serving.steps import run_steps
from engine.serving.vendor_http import VendorClient
from engine.serving.workers import run_concurrently
from engine.spec.model import Block, Spec


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
    rendered_base_url: str | None = None  # a base URL taken from the token, once rendered
    token: str | None = None  # the access token this request's calls carry (access_tokens.py)
    token_error: object = None  # the RelayError of a token request that failed: not asked again
    obtained_secrets: list = field(default_factory=list)  # tokens the vendor issued: redacted like credentials

    def note_secret(self, value: str) -> None:
        """A secret the relay obtained while serving (an access token): kept out of answers and logs."""
        if value not in self.obtained_secrets:
            self.obtained_secrets.append(value)
            SECRETS_OUT_OF_LOGS.add([value])

    def secrets(self) -> list:
        """Everything to redact from what this request shows: its credentials and obtained tokens."""
        return [*(value for value in self.credentials.values() if value), *self.obtained_secrets]

    def base_scope(self) -> Scope:
        values = {"observable": None, "observables": [], "params": {}, "settings": self.settings,
                  "credentials": self.credentials}
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
            self.note(error)
        self.unfinished += other.unfinished

    def note(self, error: RelayError) -> None:
        """An error or warning, once: the same error met by two observables is answered once."""
        if error.to_json() not in [e.to_json() for e in self.errors]:
            self.errors.append(error)


def failed(failure: StepFailed, warnings: list = ()) -> Gathered:
    gathered = Gathered(errors=[failure.error], stops=failure.stops)
    for warning in warnings:
        gathered.note(warning)
    return gathered


# -- an endpoint --------------------------------------------------------------------------------

def run_endpoint(work: Work, endpoint: str, observables: list[Observable]) -> Gathered:
    block = work.spec.endpoint(endpoint)
    steps = [work.spec.steps[name] for name in block.steps]
    scope = work.base_scope().with_values(observables=[observable.to_json() for observable in observables])
    warnings: list = []
    try:
        scope = run_steps([s for s in steps if s.per_request], scope, work, warnings)
    except StepSkipped:
        return Gathered()
    except StepFailed as failure:
        return failed(failure, warnings)
    except OutOfTime:
        return with_budget_error(Gathered(unfinished=len(observables)), work, len(observables))
    per_observable = [s for s in steps if not s.per_request]
    gathered = run_observables(work, block, per_observable, scope, observables)
    for warning in warnings:
        gathered.note(warning)
    return gathered


def run_observables(work: Work, block: Block, steps: list, scope: Scope, observables: list) -> Gathered:
    stopped = []  # a fatal error stops observables not started yet (on_error: stop)

    def one(observable: Observable) -> Gathered:
        if stopped:
            return Gathered()
        if work.budget is not None and not work.budget.allows_a_call():
            return Gathered(unfinished=1)
        gathered = run_observable(work, block, steps, scope.with_values(observable=observable.to_json()))
        if work.spec.on_error == "stop" and gathered.stops and any(e.type == "fatal" for e in gathered.errors):
            stopped.append(True)
        return gathered

    total = Gathered()
    for gathered in run_concurrently(one, observables, work.spec.concurrency):
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
    warnings: list = []
    try:
        scope = run_steps(steps, scope, work, warnings)
    except StepSkipped:
        return failed_quietly(warnings)
    except StepFailed as failure:
        return failed(failure, warnings)
    except OutOfTime:
        return Gathered(unfinished=1)
    gathered = Gathered()
    try:
        emit(block, scope, gathered.outputs)
    except MappingError as failure:
        gathered.outputs.clear()
        gathered.errors.append(spec_runtime_error(work.spec, failure.path, failure.reason, scope, data=True))
        if work.notes is not None:
            work.notes.failed(failure, gathered.errors[-1])
    for warning in warnings + made_warnings(gathered.outputs.pop("warnings", [])):
        gathered.note(warning)
    return gathered


def failed_quietly(warnings: list) -> Gathered:
    """Nothing to report for the observable, but the warnings met on the way."""
    gathered = Gathered()
    for warning in warnings:
        gathered.note(warning)
    return gathered


def made_warnings(documents: list) -> list:
    """A mapping's `warnings:` documents, as relay errors of type `warning`."""
    return [RelayError(str(document.get("code", "warning")), str(document.get("message", "")), "warning")
            for document in documents if isinstance(document, dict)]


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
    try:
        run_steps([work.spec.steps[name] for name in work.spec.health], scope, work, [])
    except StepSkipped:
        pass  # the vendor has nothing to say about the probe's question: it answered, so it is up
    except StepFailed as failure:
        return failed(failure)
    except OutOfTime:
        return Gathered(errors=[RelayError("timeout", f"{work.spec.title} did not answer the health check "
                                                      "within the relay's time budget.")])
    return Gathered()
