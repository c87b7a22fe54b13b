"""JMESPath expressions compiled to Python closures, once, at load.

The interpreter walks the parsed tree on every evaluation, dispatching on each node's type; a
mapping evaluates hundreds of small expressions per request, so that walk was most of a request's
cost. `compile_tree` turns the tree into nested closures with the interpreter's semantics, node for
node (jmespath.visitor.TreeInterpreter is the reference: null for a field of a non-object, the
ordering comparisons only between numbers or strings, JMESPath's own truth). Functions are called
through the same registry and argument checks as the interpreter's, so errors read the same.
"""
from __future__ import annotations

from jmespath import visitor as jp_visitor
from jmespath.functions import REVERSE_TYPES_MAP

from engine.language.functions import RelayFunctions

Closure = object  # (value, functions) -> result


def is_false(value) -> bool:
    return value == "" or value == [] or value == {} or value is None or value is False


def compile_tree(node: dict):
    """A function of (value, functions) equal to `interpreter.visit(node, value)`."""
    return _COMPILERS[node["type"]](node)


def _field(node):
    name = node["value"]

    def field(value, functions):
        return value.get(name) if isinstance(value, dict) else None
    return field


def _chain(node):
    parts = [compile_tree(child) for child in node["children"]]

    def chain(value, functions):
        for part in parts:
            value = part(value, functions)
        return value
    return chain


def _literal(node):
    constant = node["value"]
    return lambda value, functions: constant


def _current(node):
    return lambda value, functions: value


def _comparator(node):
    operator = node["value"]
    compare = jp_visitor.TreeInterpreter.COMPARATOR_FUNC[operator]
    left, right = (compile_tree(child) for child in node["children"])
    if operator in ("eq", "ne"):
        return lambda value, functions: compare(left(value, functions),
                                                             right(value, functions))

    def ordering(value, functions):
        a, b = left(value, functions), right(value, functions)
        if not (jp_visitor._is_comparable(a) and jp_visitor._is_comparable(b)):
            return None
        return compare(a, b)
    return ordering


class _Expression(jp_visitor._Expression):
    """An `&expression` argument (map, sort_by...): functions call `ref.visit(ref.expression, item)`.
    Named as JMESPath's own class: its argument checks know an expref by that class name."""

    def __init__(self, expression, run, functions):
        super().__init__(expression, None)
        self._run, self._functions = run, functions

    def visit(self, node, value, *args, **kwargs):
        if node is self.expression:
            return self._run(value, self._functions)
        return self._functions.interpreter().visit(node, value, *args, **kwargs)


def _expref(node):
    inner = node["children"][0]
    run = compile_tree(inner)
    return lambda value, functions: _Expression(inner, run, functions)


def _function(node):
    name, arguments = node["value"], [compile_tree(child) for child in node["children"]]
    if name == "if_else" and len(arguments) == 3:  # the branch not taken is never evaluated
        condition, then, otherwise = arguments

        def if_else(value, functions):
            chosen = otherwise if is_false(condition(value, functions)) else then
            return chosen(value, functions)
        return if_else

    entry = RelayFunctions.FUNCTION_TABLE.get(name)
    if entry is None or not _arity_fits(entry["signature"], len(arguments)):
        def call(value, functions):  # the registry raises the interpreter's error
            return functions.call_function(name, [argument(value, functions) for argument in arguments])
        return call
    function, signature = entry["function"], entry["signature"]
    checks = _argument_checks(signature)

    def invalid(values, functions):
        functions._validate_arguments(values, signature, name)  # raises, or passes a typed list

    # Most calls take no, one or two arguments: those skip building and walking lists.
    if not arguments:
        return lambda value, functions: function(functions)
    allowed = dict(checks)
    if len(arguments) == 1:
        (argument,), only = arguments, allowed.get(0, ANY)

        def direct_1(value, functions):
            first = argument(value, functions)
            if only is not ANY and (only is None or type(first).__name__ not in only):
                invalid([first], functions)
            return function(functions, first)
        return direct_1
    if len(arguments) == 2:
        (argument_1, argument_2), allowed_1, allowed_2 = arguments, allowed.get(0, ANY), allowed.get(1, ANY)

        def direct_2(value, functions):
            first, second = argument_1(value, functions), argument_2(value, functions)
            if (allowed_1 is not ANY and (allowed_1 is None or type(first).__name__ not in allowed_1)) or \
                    (allowed_2 is not ANY and (allowed_2 is None or type(second).__name__ not in allowed_2)):
                invalid([first, second], functions)
            return function(functions, first, second)
        return direct_2

    def direct(value, functions):
        values = [argument(value, functions) for argument in arguments]
        for index, allowed_here in checks:
            if allowed_here is None or type(values[index]).__name__ not in allowed_here:
                invalid(values, functions)
                break
        return function(functions, *values)
    return direct


ANY = object()  # a parameter of any type: nothing to check


def _arity_fits(signature, count: int) -> bool:
    if signature and signature[-1].get("variadic"):
        return count >= len(signature)
    return count == len(signature)


def _argument_checks(signature) -> list:
    """(position, the Python type names allowed there) for each typed parameter; None where the
    element types of a list are checked too (left to JMESPath's full check)."""
    checks = []
    for index, parameter in enumerate(signature):
        types = parameter["types"]
        if not types:
            continue
        if any("-" in kind for kind in types):
            checks.append((index, None))
        else:
            checks.append((index, frozenset(name for kind in types for name in REVERSE_TYPES_MAP[kind])))
    return checks


def _filter_projection(node):
    base, project, condition = (compile_tree(child) for child in node["children"])

    def filter_projection(value, functions):
        items = base(value, functions)
        if not isinstance(items, list):
            return None
        kept = []  # condition and projection item by item, as the interpreter does
        for item in items:
            current = project(item, functions) if not is_false(condition(item, functions)) else None
            if current is not None:
                kept.append(current)
        return kept
    return filter_projection


def _flatten(node):
    base = compile_tree(node["children"][0])

    def flatten(value, functions):
        items = base(value, functions)
        if not isinstance(items, list):
            return None
        merged = []
        for item in items:
            merged.extend(item) if isinstance(item, list) else merged.append(item)
        return merged
    return flatten


def _index(node):
    position = node["value"]

    def index(value, functions):
        if not isinstance(value, list):
            return None
        try:
            return value[position]
        except IndexError:
            return None
    return index


def _slice(node):
    cut = slice(*node["children"])
    return lambda value, functions: value[cut] if isinstance(value, list) else None


def _key_val_pair(node):
    return compile_tree(node["children"][0])


def _multi_select_dict(node):
    pairs = [(child["value"], compile_tree(child)) for child in node["children"]]

    def multi_select_dict(value, functions):
        if value is None:
            return None
        return {key: part(value, functions) for key, part in pairs}
    return multi_select_dict


def _multi_select_list(node):
    parts = [compile_tree(child) for child in node["children"]]

    def multi_select_list(value, functions):
        if value is None:
            return None
        return [part(value, functions) for part in parts]
    return multi_select_list


def _or(node):
    left, right = (compile_tree(child) for child in node["children"])

    def either(value, functions):
        matched = left(value, functions)
        return right(value, functions) if is_false(matched) else matched
    return either


def _and(node):
    left, right = (compile_tree(child) for child in node["children"])

    def both(value, functions):
        matched = left(value, functions)
        return matched if is_false(matched) else right(value, functions)
    return both


def _not(node):
    inner = compile_tree(node["children"][0])

    def negated(value, functions):
        result = inner(value, functions)
        if jp_visitor._is_actual_number(result) and result == 0:
            return False  # !0 is false in JMESPath
        return not result
    return negated


def _projection(node):
    base, project = (compile_tree(child) for child in node["children"])

    def projection(value, functions):
        items = base(value, functions)
        return _projected(items, project, functions) if isinstance(items, list) else None
    return projection


def _value_projection(node):
    base, project = (compile_tree(child) for child in node["children"])

    def value_projection(value, functions):
        found = base(value, functions)
        try:
            items = found.values()
        except AttributeError:
            return None
        return _projected(items, project, functions)
    return value_projection


def _projected(items, project, functions) -> list:
    """A projection's results: null ones are left out."""
    kept = []
    for item in items:
        current = project(item, functions)
        if current is not None:
            kept.append(current)
    return kept


_COMPILERS = {
    "field": _field, "subexpression": _chain, "index_expression": _chain, "pipe": _chain,
    "literal": _literal, "current": _current, "identity": _current, "comparator": _comparator,
    "expref": _expref, "function_expression": _function, "filter_projection": _filter_projection,
    "flatten": _flatten, "index": _index, "slice": _slice, "key_val_pair": _key_val_pair,
    "multi_select_dict": _multi_select_dict, "multi_select_list": _multi_select_list,
    "or_expression": _or, "and_expression": _and, "not_expression": _not, "projection": _projection,
    "value_projection": _value_projection,
}
