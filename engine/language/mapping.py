"""CTIM mappings: YAML shaped like the documents they produce, compiled once, rendered per observable.

A mapping is an object whose leaves are constants or templates, plus a few control keys that say
how many documents to make and when:

    for each: NAME in EXPRESSION   one document per item, the item visible as NAME
    where:    EXPRESSION           keep only items for which it is true
    sort:     EXPRESSION           order items by this key (with `order: desc` for newest first)
    limit:    EXPRESSION           at most this many items
    if:       EXPRESSION           make the object only when true
    let:      {NAME: TEMPLATE}     named values, evaluated in order, visible below
    use:      NAME                 the part written under `define: NAME` (alone in its mapping)

A field whose value renders to null is left out; so is an object whose `if` is false, and a list
whose every element was left out. Control keys are spelled so that no CTIM field can clash.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.language.expressions import EvaluationError, Expression, Scope, Template

# The keys of a mapping object that are not fields of the document it makes (the reference shows these).
CONTROL_KEY_DOCS = {
    "for each": ("`NAME in EXPRESSION`", "One document per item of the list the expression gives, the item visible "
                                          "as NAME; null makes none."),
    "where": ("expression", "With `for each`: keep only the items for which it is true."),
    "sort": ("expression", "With `for each`: order the items by this key (items whose key is null go last)."),
    "order": ("`asc` or `desc`", "With `sort`: the direction (default `asc`; `desc` puts the largest key first)."),
    "limit": ("expression", "With `for each`: at most this many items (after `where` and `sort`)."),
    "if": ("expression", "Make the object only when true."),
    "let": ("mapping of name to template", "Named values, each seeing the ones before, visible in the object."),
    "use": ("name", "Stands for the part written under `define: NAME`, compiled here; alone in its mapping."),
}
CONTROL_KEYS = tuple(key for key in CONTROL_KEY_DOCS if key != "use")
ABSENT = object()  # a value that is left out of its parent


@dataclass(frozen=True)
class ForEach:
    name: str
    items: Expression


@dataclass(frozen=True)
class ObjectNode:
    fields: tuple  # ((key, node), ...)
    let: tuple = ()  # ((name, node), ...)
    for_each: ForEach | None = None
    where: Expression | None = None
    sort: Expression | None = None
    descending: bool = False
    limit: Expression | None = None
    condition: Expression | None = None
    path: tuple = ()  # where it stands in the spec, for run-time errors
    # How each field is made, worked out once: (key, kind, what, node). Rendering walks this plan
    # instead of dispatching on every field's type: most fields are constants or bare paths.
    plan: tuple = field(default=(), compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "plan", tuple(_plan_field(key, node) for key, node in self.fields))


CONSTANT, NAME, PATH, EXPRESSION, TEXT, NESTED = range(6)


def _plan_field(key: str, node) -> tuple:
    kind = type(node)
    if kind is Template:
        if not node.whole:
            return key, TEXT, node, node
        expression = node.parts[0]
        if expression.path is not None and len(expression.path) == 1:  # a name in scope: one lookup
            return key, NAME, expression.path[0], node
        return (key, PATH, expression.path, node) if expression.path is not None else (key, EXPRESSION, expression, node)
    if kind is ObjectNode or kind is ListNode:
        return key, NESTED, node, node
    return key, CONSTANT, node, node


@dataclass(frozen=True)
class ListNode:
    items: tuple


class MappingError(Exception):
    """A mapping failed on the data it met; `path` is where in the spec, `source` the expression
    that failed and `scope` what it saw (for lint to explain the failure), when known."""

    def __init__(self, path: tuple, reason: str, source: str | None = None, scope: Scope | None = None):
        super().__init__(reason)
        self.path = path
        self.reason = reason
        self.source = source
        self.scope = scope


def evaluation_failed(path: tuple, failure: EvaluationError, scope: Scope) -> MappingError:
    return MappingError(path, f"{failure.reason} (in `{failure.source}`)", failure.source, scope)


def truthy(value) -> bool:
    """JMESPath's notion of truth: false, null, '', [], {} are false."""
    return not (value is None or value is False or value == "" or value == [] or value == {})


def render(node, scope: Scope):
    """Render a compiled node; may return ABSENT. (Exact type checks: this runs for every field
    of every document, and `isinstance` chains were a fair part of a request's cost.)"""
    kind = type(node)
    if kind is Template:
        value = node.render(scope)
        return ABSENT if value is None else value
    if kind is ObjectNode:
        if node.for_each is not None:  # outside a list, a repeated object yields a list
            items = render_each(node, scope)
            return items if items else ABSENT
        return render_object(node, scope)
    if kind is ListNode:
        return render_list(node, scope)
    return node


def render_list(node: ListNode, scope: Scope):
    result = []
    for item in node.items:
        if type(item) is ObjectNode and item.for_each is not None:
            result.extend(render_each(item, scope))
            continue
        value = render(item, scope)
        if value is not ABSENT:
            result.append(value)
    if node.items and not result:
        return ABSENT
    return result


def render_each(node: ObjectNode, scope: Scope) -> list:
    items = _evaluate(node.for_each.items, scope, node.path + ("for each",))
    if items is None:
        return []
    if not isinstance(items, list):
        raise MappingError(node.path + ("for each",), f"`{node.for_each.items.source}` gave "
                                                      f"{type(items).__name__}, not a list")
    name = node.for_each.name
    if node.where is not None:
        items = [item for item in items
                 if truthy(_evaluate(node.where, scope.with_values(**{name: item}), node.path + ("where",)))]
    if node.sort is not None:
        keyed = [(_evaluate(node.sort, scope.with_values(**{name: item}), node.path + ("sort",)), item)
                 for item in items]
        present = [pair for pair in keyed if pair[0] is not None]
        try:
            present.sort(key=lambda pair: pair[0], reverse=node.descending)
        except TypeError:
            raise MappingError(node.path + ("sort",), "sort keys of different types") from None
        items = [item for _, item in present] + [item for key, item in keyed if key is None]
    if node.limit is not None:
        limit = _evaluate(node.limit, scope, node.path + ("limit",))
        if isinstance(limit, (int, float)) and not isinstance(limit, bool):
            items = items[: max(int(limit), 0)]
    result = []
    for item in items:
        value = render_object(node, scope, {name: item})
        if value is not ABSENT:
            result.append(value)
    return result


def render_object(node: ObjectNode, scope: Scope, item: dict | None = None):
    """The object's document; `item`, a `for each` item by its name, is bound with its `let`s."""
    scope = bind_let(node.let, scope, node.path, item)
    if node.condition is not None and not truthy(_evaluate(node.condition, scope, node.path + ("if",))):
        return ABSENT
    result = {}
    values = scope.values
    for key, kind, what, child in node.plan:
        if kind == CONSTANT:
            result[key] = what
            continue
        try:
            if kind == NAME:
                value = values.get(what)
            elif kind == PATH:
                value = values
                for part in what:
                    value = value.get(part) if isinstance(value, dict) else None
            elif kind == EXPRESSION:
                value = what.evaluate(scope)
            elif kind == TEXT:
                value = what.render_text(scope)
            else:
                value = render(what, scope)
        except EvaluationError as failure:
            raise evaluation_failed(node.path + (key,), failure, scope) from None
        if value is not None and value is not ABSENT:
            result[key] = value
        elif kind != NESTED and scope.notes is not None:
            scope.notes.left_out(node.path + (key,), child, scope)
    if scope.notes is not None:
        scope.notes.made(result, node)
    return result


def bind_let(let: tuple, scope: Scope, path: tuple, bound: dict | None = None) -> Scope:
    """The scope with `bound` and the `let` values, each seeing those before it. One new scope
    whose values fill in as they are made (its function library reads that very dict): nothing
    else sees it until it is returned."""
    if not let and not bound:
        return scope
    scope = scope.with_values(**(bound or {}))
    values = scope.values
    for name, value_node in let:
        try:
            value = render(value_node, scope)
        except EvaluationError as failure:
            raise evaluation_failed(path + ("let", name), failure, scope) from None
        values[name] = None if value is ABSENT else value
    return scope


def _evaluate(expression: Expression, scope: Scope, path: tuple):
    try:
        return expression.evaluate(scope)
    except EvaluationError as failure:
        raise evaluation_failed(path, failure, scope) from None
