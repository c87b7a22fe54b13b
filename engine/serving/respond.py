"""Response actions: /respond/trigger runs the action XDR names for one observable.

(/respond/observables, the listing, is the `respond` endpoint: flows.run_endpoint makes its
actions like any mapping.) A trigger:

    1. reads {"action-id", "observable_type", "observable_value", ...query-params} (all text);
    2. refuses an observable type the spec does not take (`unsupported type`);
    3. runs the listing's steps and makes the actions offered for the observable now; the one whose
       id is the `action-id` is run (or the spec's `unknown_action`, if it is offered), else the
       trigger is an `invalid request`: an action is run only where the relay would offer it;
    4. runs the action's trigger steps with the query-params as `params`: `success` when every call
       succeeds, else `failure` with the errors (never `success` after a failed call).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.errors import RelayError
from engine.language.mapping import ABSENT, ListNode, MappingError, bind_let, render
from engine.serving.envelope import errors_only
from engine.serving.failures import OutOfTime, StepFailed, StepSkipped, render_plain, spec_runtime_error
from engine.serving.observables import (INVALID_TYPE, MISSING, NOT_TEXT, InvalidInput, Observable, field_problem,
                                        input_error)
from engine.serving.steps import run_steps

TRIGGER_FIELDS = ("action-id", "observable_type", "observable_value")
STUB_LISTING = {"data": []}  # a spec that declares no actions answers as Cisco's relay template
STUB_TRIGGER = {"data": {"status": "failure"}}


@dataclass(frozen=True)
class TriggerRequest:
    action_id: str
    observable: Observable
    params: dict  # every query-param sent back, observable_type and observable_value included


def validate_trigger(body) -> TriggerRequest:
    """The trigger's form, or InvalidInput with the field errors (extra fields are query-params)."""
    if not isinstance(body, dict):
        raise InvalidInput({"_schema": [INVALID_TYPE]})
    problems = {name: [problem] for name in TRIGGER_FIELDS if (problem := field_problem(body, name))}
    problems |= {name: [NOT_TEXT] for name, value in body.items()
                 if name not in TRIGGER_FIELDS and not isinstance(value, str)}
    if problems:
        raise InvalidInput(problems)
    params = {name: value for name, value in body.items() if name != "action-id"}
    return TriggerRequest(body["action-id"], Observable(body["observable_type"].lower(), body["observable_value"]),
                          params)


def run_trigger(work, asked: TriggerRequest) -> dict:
    """The trigger's answer: {"data": {"status": "success"}}, or its errors (with `failure`)."""
    return triggered(work, asked)[0]


def triggered(work, asked: TriggerRequest) -> tuple[dict, object]:
    """(the trigger's answer, the Action it ran or None)."""
    spec = work.spec
    if not spec.supports(asked.observable.type):
        error = RelayError("unsupported type", f"Unsupported observable type {asked.observable.type}")
        return failure(spec, [error]), None
    scope = work.base_scope().with_values(observable=asked.observable.to_json(),
                                          observables=[asked.observable.to_json()], params=asked.params)
    warnings: list = []
    action = None
    respond = spec.respond
    try:
        if respond.verify_offer:
            scope = run_steps([spec.steps[name] for name in spec.endpoint("respond").steps], scope, work, warnings)
            action = chosen_action(work, scope, asked.action_id)
        else:
            action = named_action(work, scope, asked.action_id)
        if action is None:
            return failure(spec, [not_offered(respond, scope, asked, spec.title)]), None
        missing = [name for name in action.params if name not in asked.params]
        if missing:  # what the action's offer asked XDR to send back
            problem = InvalidInput({name: [MISSING] for name in missing})
            return failure(spec, [input_error(spec, problem)]), action
        run_steps([spec.steps[name] for name in action.steps], scope, work, warnings)
    except StepSkipped:  # the vendor answered that there is nothing to act on: nothing was done
        return failure(spec, warnings), action
    except StepFailed as failed:
        return failure(spec, [failed.error, *warnings]), action
    except OutOfTime:
        return failure(spec, [RelayError("timeout", f"No answer from {spec.title} in time to finish the "
                                                    "action.")]), action
    except MappingError as broken:
        return failure(spec, [spec_runtime_error(spec, broken.path, broken.reason, scope, data=True)]), action
    body = {"data": {"status": "success"}}
    if warnings:
        body["errors"] = [warning.to_json() for warning in warnings]
    return body, action


def chosen_action(work, scope, action_id: str):
    """The action offered now for the observable under this id (or the spec's `unknown_action`, if
    offered at all); None when the relay would not offer it."""
    respond = work.spec.respond
    block = work.spec.endpoint("respond")
    scope = bind_let(block.let, scope, block.path)
    offered = {}
    for action in respond.actions:
        documents = render(ListNode((action.offer,)), scope)
        ids = [document.get("id") for document in documents if isinstance(document, dict)] \
            if documents is not ABSENT else []
        if action_id in ids:
            return action
        offered[action.name] = bool(ids)
    if respond.unknown_action and offered.get(respond.unknown_action):
        return next(action for action in respond.actions if action.name == respond.unknown_action)
    return None


def named_action(work, scope, action_id: str):
    """`verify_offer: false`: the action whose id, made from the observable and the params sent
    back, is `action_id` (the listing's steps are not run; lint keeps these ids to those names)."""
    respond = work.spec.respond
    for action in respond.actions:
        id_template = dict(action.offer.fields).get("id")
        made = id_template.render(scope) if hasattr(id_template, "render") else id_template
        if made == action_id:
            return action
    if respond.unknown_action:
        return next(action for action in respond.actions if action.name == respond.unknown_action)
    return None


def not_offered(respond, scope, asked: TriggerRequest, title: str) -> RelayError:
    """The error for an action id the relay does not offer for the observable (`not_offered:`)."""
    if respond.not_offered is None:
        return RelayError("invalid request", f"{title} offers no action {asked.action_id!r} for this observable")
    code, message = (render_plain(part, scope.with_values(action_id=asked.action_id)) for part in respond.not_offered)
    return RelayError(code, message)


def failure(spec, errors: list) -> dict:
    """A failed trigger: its errors, beside `status: failure` unless the spec says errors alone."""
    if not errors:
        return dict(STUB_TRIGGER)
    body = errors_only(errors)
    return {**STUB_TRIGGER, **body} if spec.respond.failure_status else body
