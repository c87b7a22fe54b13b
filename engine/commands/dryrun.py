"""Lint's dry run: every endpoint of a spec, run on the spec's own example answers.

What it finds, each located in the spec file:

- a mapping that fails on the examples, or makes CTIM the schema or its vocabularies refuse, is an
  error: the spec would fail the same way on a real answer. The failure is put where its cause is
  when that can be told: the path that came out null because the example answer has no such field
  (`check.abuseConfidenceScor`), with the fields it does have and a "did you mean";
- a field that renders null on the examples is left out of its document: a warning (it may be
  meant, for a field the vendor sends only sometimes), explained the same way;
- an example the step cannot read (`read: json` on a file that is not JSON) is an error that never
  quotes the file.

The vendor is a stand-in on loopback serving the examples.
"""
from __future__ import annotations

import difflib
import logging
import re

from engine.ctim import observe_data_problems, refer_data_problems
from engine.errors import SpecError, format_yaml_path
from engine.language.expressions import Expression, Scope, Template
from engine.language.mapping import ListNode, ObjectNode
from engine.serving.envelope import endpoint_answer
from engine.serving.flows import Work, run_endpoint, run_health
from engine.serving.observables import Observable
from engine.serving.readers import UnreadableBody, read_body
from engine.serving.respond import TriggerRequest, triggered
from engine.serving.runtime import Runtime
from engine.serving.tiles import run_tile_data
from engine.serving.transport import loopback_session
from engine.serving.vendor_http import VendorAnswer, VendorClient
from engine.spec.model import Block, Spec
from engine.commands.standin import StandInVendor, routes_from_examples
from engine.commands.tokens import demo_claims


class Notes:
    """What the mappings tell the dry run: documents made (by which mapping object), fields left
    out, failures."""

    def __init__(self):
        self.made_by: dict[int, ObjectNode] = {}
        self.made_docs: list = []  # keeps the documents alive, so their ids stay theirs
        self.left: list = []  # (spec path, template, scope)
        self.failures: list = []  # (MappingError, RelayError)

    def made(self, document: dict, node: ObjectNode) -> None:
        self.made_by[id(document)] = node
        self.made_docs.append(document)

    def left_out(self, path: tuple, template: Template, scope: Scope) -> None:
        self.left.append((path, template, scope))

    def failed(self, failure, error) -> None:
        self.failures.append((failure, error))


def example_problems(spec: Spec) -> list[SpecError]:
    if spec.examples is None or not spec.endpoints:
        return []
    unreadable = unreadable_examples(spec)
    if unreadable:
        return unreadable
    observable = Observable(spec.examples.observable["type"], spec.examples.observable["value"])
    claims = demo_claims(spec)
    credentials = {c.name: str(claims[c.name]) for c in spec.credentials}
    settings = {setting.name: setting.read(claims) for setting in spec.settings}
    problems = []
    relay_log = logging.getLogger("relay")
    quiet, relay_log.disabled = relay_log.disabled, True  # the failures are lint's findings, not log lines
    try:
        with StandInVendor(routes_from_examples(spec)) as stand_in:
            runtime = Runtime(session=loopback_session())
            client = VendorClient(runtime.session, stand_in.origin)
            for endpoint in spec.endpoints:
                notes = Notes()
                work = Work(spec, client, runtime, credentials, settings, notes=notes)
                answer = endpoint_answer(endpoint, run_endpoint(work, endpoint, [observable]))
                problems += endpoint_problems(spec, endpoint, answer, notes)
                if endpoint == "respond":
                    problems += trigger_problems(spec, work, observable, answer.get("data") or [])
            if spec.health is not None:
                for error in run_health(Work(spec, client, runtime, credentials, settings)).errors:
                    problems.append(spec.problem(("health",), f"/health fails on the spec's example answers: "
                                                              f"{error.code}: {error.message}"))
            if spec.tiles is not None:
                problems += tile_problems(spec, Work(spec, client, runtime, credentials, settings))
    finally:
        relay_log.disabled = quiet
    return once_per_place(problems)


def trigger_problems(spec: Spec, work: Work, observable: Observable, offered: list) -> list[SpecError]:
    """Each action offered on the examples, triggered on them: it must succeed."""
    problems = []
    for offer in offered:
        answer, action = triggered(work, TriggerRequest(offer["id"], observable, offer["query-params"]))
        if answer.get("data") != {"status": "success"}:
            why = "; ".join(f"{e['code']}: {e['message']}" for e in answer.get("errors", ())) or \
                "the vendor had nothing to act on"
            problems.append(spec.problem(action.path + ("trigger",) if action else ("respond",),
                                         f"a trigger of {offer['id']!r} fails on the spec's example answers: {why}"))
    return problems


def tile_problems(spec: Spec, work: Work) -> list[SpecError]:
    """Each tile's data for its first period, made from the examples: it must not fail. (One
    example answers a step for every tile, so a tile may find nothing there; that is no problem.)"""
    problems = []
    for tile in spec.tiles.tiles:
        answer = run_tile_data(work, tile, tile.periods[0])
        for error in answer.get("errors", ()):
            if error.get("type") != "warning":
                problems.append(spec.problem(tile.path, f"the data of tile {tile.id!r} fails on the spec's example "
                                                        f"answers: {error['code']}: {error['message']}"))
    return problems


def once_per_place(problems: list) -> list:
    """One report per place: a mapping shared by two endpoints fails (or warns) once."""
    seen, kept = set(), []
    for problem in problems:
        if (problem.line, problem.column, problem.severity) not in seen:
            seen.add((problem.line, problem.column, problem.severity))
            kept.append(problem)
    return kept


def endpoint_problems(spec: Spec, endpoint: str, answer: dict, notes: Notes) -> list[SpecError]:
    lets = let_definitions(spec)
    problems = [failure_problem(spec, failure, lets) for failure, _ in notes.failures]
    explained = {error.message for _, error in notes.failures}
    for error in answer.get("errors", []):
        if error["message"] not in explained:  # a vendor outcome, from the spec's error table
            problems.append(spec.problem((endpoint,), f"fails on the spec's example answers: "
                                                      f"{error['code']}: {error['message']}"))
    for path, template, scope in unique_by_path(notes.left):
        problems.append(left_out_problem(spec, path, template, scope, lets))
    data = answer.get("data")
    if data and endpoint != "respond":  # actions are no CTIM
        found = refer_data_problems(data) if endpoint == "refer" else observe_data_problems(data)
        for output_path, message in found:
            problems.append(spec.problem(spec_path_of(data, output_path, notes) or (endpoint,),
                                         f"makes invalid CTIM on the example answers: "
                                         f"{format_yaml_path(output_path)}: {message}"))
    return problems


def unique_by_path(entries: list) -> list:
    seen, kept = set(), []
    for entry in entries:
        if entry[0] not in seen:
            seen.add(entry[0])
            kept.append(entry)
    return kept


# -- where the cause is -------------------------------------------------------------------------

def failure_problem(spec: Spec, failure, lets: dict) -> SpecError:
    reason = failure.reason
    if failure.source is not None and failure.scope is not None:
        found = explain_null(spec, Expression(failure.source), failure.path, failure.scope, lets)
        if found:
            path, offset, text, why, hint = found
            return spec.problem(path, f"`{text}` is null on the spec's example answers ({why}): "
                                      f"`{failure.source}` then fails", hint, offset=offset)
    return spec.problem(failure.path, f"fails on the spec's example answers: {reason}")


def left_out_problem(spec: Spec, path: tuple, template: Template, scope: Scope, lets: dict) -> SpecError:
    for expression in template.expressions:
        found = explain_null(spec, expression, path, scope, lets)
        if found:
            where, offset, text, why, hint = found
            return spec.problem(where, f"`{text}` is null on the spec's example answers ({why}), so "
                                       f"{format_yaml_path(path)} is left out", hint, severity="warning",
                                offset=offset)
    return spec.problem(path, "renders null on the spec's example answers, so it is left out (a misspelt path?)",
                        severity="warning")


def explain_null(spec: Spec, expression: Expression, path: tuple, scope: Scope, lets: dict, depth: int = 0):
    """(spec path, offset, path text, why, hint) for the first field path of `expression` that is
    null because a name in it is missing from the data (a misspelling, most likely), following
    `let` values that came out null to their own expressions; None when no such cause is found."""
    for chain in field_chains(expression.parsed.parsed):
        value = scope.values
        for index, name in enumerate(chain):
            if not isinstance(value, dict):
                break
            if name not in value:
                if index == 0:
                    break  # not a name of the scope (lint has checked those)
                text, parent = ".".join(chain[:index + 1]), ".".join(chain[:index])
                have = sorted(value)
                close = difflib.get_close_matches(name, have, n=1)
                hint = (f"did you mean {close[0]!r}? " if close else "") + \
                    f"{parent} has: {', '.join(have[:12])}{', ...' if len(have) > 12 else ''}"
                return path, offset_in(raw_text(spec, path), text), text, f"{parent} has no `{name}`", hint
            value = value[name]
            if value is None and index == 0 and name in lets and depth < 8:
                let_path, let_template = nearest(lets[name], path)
                for inner in getattr(let_template, "expressions", []):
                    found = explain_null(spec, inner, let_path, scope, lets, depth + 1)
                    if found:
                        return found
                break
    return None


def field_chains(node) -> list:
    """The plain paths an expression reads from its scope: `check.data.score` -> [check, data, score]."""
    chains = []
    if not isinstance(node, dict):
        return chains
    kind, children = node.get("type"), node.get("children", [])
    if kind == "field":
        return [[node["value"]]]
    if kind == "subexpression":
        names = []
        for child in children:
            if child.get("type") != "field":
                break
            names.append(child["value"])
        if len(names) == len(children):
            return [names]
    if kind in ("projection", "filter_projection", "value_projection", "index_expression"):
        return field_chains(children[0]) if children else []
    for child in children:
        chains += field_chains(child)
    return chains


def offset_in(source, text: str) -> int | None:
    """Where `text` (a dotted path) first stands as a whole in a value's text (None: not text)."""
    found = re.search(rf"(?<![\w.]){re.escape(text)}(?![\w])", source) if isinstance(source, str) else None
    return found.start() if found else None


def raw_text(spec: Spec, path: tuple):
    """The value written at `path` in the spec file (a template's whole text), or None."""
    value = spec.document.data
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def let_definitions(spec: Spec) -> dict:
    """Every `let` of the spec's mappings: name -> [(spec path, template)], to follow a null."""
    found: dict = {}

    def visit(node) -> None:
        if isinstance(node, (Block, ObjectNode)):
            for name, value in node.let:
                found.setdefault(name, []).append((node.path + ("let", name), value))
        if isinstance(node, Block):
            for _, child in node.outputs:
                visit(child)
            for group in node.groups:
                visit(group)
        elif isinstance(node, ObjectNode):
            for _, child in node.fields:
                visit(child)
        elif isinstance(node, ListNode):
            for item in node.items:
                visit(item)

    for block in spec.endpoints.values():
        visit(block)
    return found


def nearest(definitions: list, path: tuple):
    """The `let` of that name whose mapping encloses `path` most closely."""
    def shared(candidate) -> int:
        let_path = candidate[0][:-2]
        return len(let_path) if path[:len(let_path)] == let_path else -1
    return max(definitions, key=shared)


def spec_path_of(data, output_path: tuple, notes: Notes) -> tuple | None:
    """The spec path of the mapping that made the value at `output_path` of the answer's data: the
    innermost document a mapping object made on the way, plus the field names below it."""
    value, best = data, None
    for index, part in enumerate(output_path):
        if isinstance(value, dict) and id(value) in notes.made_by:
            best = (notes.made_by[id(value)].path, index)
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            break
    else:
        if isinstance(value, dict) and id(value) in notes.made_by:
            return notes.made_by[id(value)].path
    if best is None:
        return None
    node_path, index = best
    return node_path + tuple(part for part in output_path[index:] if isinstance(part, str))


# -- examples that cannot be read ---------------------------------------------------------------

def unreadable_examples(spec: Spec) -> list[SpecError]:
    """Example files the step cannot read as it declares (`read:`): said without their content."""
    problems = []
    for name, example in spec.examples.answers.items():
        answer = VendorAnswer(example.status, "", {"Content-Type": example.content_type}, example.content(), "")
        if not answer.ok:
            continue
        try:
            read_body(spec.call_named(name).read, answer)
        except UnreadableBody as problem:
            problems.append(spec.problem(("examples", "answers", name, "file"),
                                         f"the example answer of step {name!r} cannot be read: {problem.reason}"))
    return problems
