"""Expressions run compiled (engine/language/compiled.py); JMESPath's interpreter is the reference.
For every kind of node, on generated data, both give the same value, or both fail."""
from __future__ import annotations

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.language.expressions import EvaluationError, Expression, Interpreter, Scope
from engine.language.functions import RelayFunctions

SOURCES = [
    "a", "a.b", "a.b.c", "a[0]", "a[-1]", "a[1:3]", "a[::-1]", "a[*].b", "a[].b", "a[]", "*.b", "a.*",
    "a[?b == `1`]", "a[?b > `1`].c", "a[?b < c]", "a[?!b]", "a && b", "a || b", "!a", "!`0`", "a == b",
    "a != b", "a <= b", "a >= `2`", "`\"x\"`", "'text'", "@", "a | [0]", "{x: a, y: b.c}", "[a, b]",
    "length(a)", "keys(a)", "sort_by(a, &b)", "max_by(a, &b)", "map(&b, a)", "join(', ', a)",
    "to_string(a)", "to_number(a)", "contains(a, b)", "if_else(a, b, c)", "if_else(a, b, length(c))",
    "default(a, 'none')", "take(a, `2`)", "unique(a)", "order_by(a, &b, 'desc')", "a.b[?c].d | length(@)",
    "not_null(a, b)", "sum(a)", "a[?contains(['x', 'y'], b)]",
]
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "x", "y", "1"]),
                   st.floats(-2, 2, allow_nan=False))
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner, max_size=4)),
    max_leaves=12)
DATA = st.dictionaries(st.sampled_from(["a", "b", "c"]), VALUES, max_size=3)


def interpreted(source: str, data: dict):
    functions = RelayFunctions(data, None, {})
    try:
        return ("value", Interpreter(jmespath.Options(custom_functions=functions)).visit(
            jmespath.compile(source).parsed, data))
    except (jmespath.exceptions.JMESPathError, TypeError, ValueError, ArithmeticError, Exception) as failure:
        return ("failure", type(failure).__name__)


def compiled(source: str, data: dict):
    try:
        return ("value", Expression(source).evaluate(Scope(data, None, {})))
    except EvaluationError:
        return ("failure", None)


@pytest.mark.parametrize("source", SOURCES)
@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(data=DATA)
def test_compiled_expressions_answer_as_the_interpreter(source, data):
    expected, found = interpreted(source, data), compiled(source, data)
    if expected[0] == "failure":
        assert found[0] == "failure", (source, data, found)
    else:
        assert found == expected, (source, data)
