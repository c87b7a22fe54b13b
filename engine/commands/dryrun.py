"""Lint's dry run: every endpoint of a spec, run on the spec's own example answers.

A mapping field that renders null on the examples is probably a wrong path (JMESPath answers null
for a typo, silently); a mapping that fails, or makes CTIM that does not validate, certainly is a
mistake. Each becomes a located warning. The vendor is a stand-in on loopback serving the examples.
"""
from __future__ import annotations

from engine.ctim import validate_observe_data, validate_refer_data
from engine.serving.envelope import endpoint_answer
from engine.errors import SpecError
from engine.serving.flows import Work, run_endpoint
from engine.serving.observables import Observable
from engine.serving.runtime import Runtime
from engine.spec.model import Spec
from engine.commands.standin import StandInVendor, routes_from_examples
from engine.commands.tokens import demo_claims
from engine.serving.readers import UnreadableBody, read_body
from engine.serving.vendor_http import VendorAnswer, VendorClient


def example_warnings(spec: Spec) -> list[SpecError]:
    if spec.examples is None or not spec.endpoints:
        return []
    unreadable = unreadable_examples(spec)
    if unreadable:
        return unreadable
    observable = Observable(spec.examples.observable["type"], spec.examples.observable["value"])
    claims = demo_claims(spec)
    credentials = {c.name: str(claims[c.name]) for c in spec.credentials}
    settings = {setting.name: setting.read(claims) for setting in spec.settings}
    warnings = []
    with StandInVendor(routes_from_examples(spec)) as stand_in:
        runtime = Runtime()
        client = VendorClient(runtime.session, stand_in.origin)
        for endpoint in spec.endpoints:
            work = Work(spec, client, runtime, credentials, settings, left_out=[])
            answer = endpoint_answer(endpoint, run_endpoint(work, endpoint, [observable]))
            warnings += [_warning(spec, path, "renders null on the spec's example answers, so it is left out "
                                              "(a misspelt path?)") for path in dict.fromkeys(work.left_out)]
            for error in answer.get("errors", []):
                warnings.append(_warning(spec, (endpoint,), f"fails on the spec's example answers: "
                                                            f"{error['code']}: {error['message']}"))
            data = answer.get("data")
            if data:
                problems = validate_refer_data(data) if endpoint == "refer" else validate_observe_data(data)
                warnings += [_warning(spec, (endpoint,), f"makes invalid CTIM on the examples: {problem}")
                             for problem in problems]
    return warnings


def unreadable_examples(spec: Spec) -> list[SpecError]:
    """Example files the step cannot read as it declares (`read:`): said without their content."""
    problems = []
    for name, example in spec.examples.answers.items():
        answer = VendorAnswer(example.status, "", {"Content-Type": example.content_type}, example.content(), "")
        if not answer.ok:
            continue
        try:
            read_body(spec.steps[name].read, answer)
        except UnreadableBody as problem:
            path = ("examples", "answers", name, "file")
            problems.append(SpecError(f"the example answer of step {name!r} cannot be read: {problem.reason}",
                                      spec.file, *_mark(spec, path), path))
    return problems


def _warning(spec: Spec, path: tuple, message: str) -> SpecError:
    line, column = _mark(spec, path)
    return SpecError(message, spec.file, line, column, tuple(path), severity="warning")


def _mark(spec: Spec, path: tuple) -> tuple[int, int]:
    probe = tuple(path)
    while probe and probe not in spec.marks:
        probe = probe[:-1]
    return spec.marks.get(probe, (1, 1))
