"""Templates and expressions: parsing, typed vs interpolated results, compile errors."""
import pytest

from engine.language.expressions import EvaluationError, Expression, ExpressionSyntaxError, Scope, Template
from engine.serving.runtime import Runtime


def scope(**values):
    return Scope(values, Runtime(), {})


def test_a_lone_expression_keeps_its_type():
    assert Template("{{ a.b }}").render(scope(a={"b": [1, 2]})) == [1, 2]
    assert Template("{{ n }}").render(scope(n=3)) == 3


def test_text_with_parts_renders_each_part_as_text():
    rendered = Template("n={{ n }} ok={{ ok }} none={{ missing }} obj={{ o }}").render(
        scope(n=3.0, ok=True, o={"x": 1}))
    assert rendered == 'n=3 ok=true none= obj={"x":1}'


def test_braces_and_quotes_inside_an_expression_do_not_end_it():
    template = Template("{{ {k: 'a}}b'} }}")
    assert template.render(scope()) == {"k": "a}}b"}


def test_constant_text_is_constant():
    assert Template("plain text").is_constant


@pytest.mark.parametrize("source, fragment", [
    ("{{ a. }}", "JMESPath syntax"),
    ("{{ a", "without a matching"),
    ("{{ }}", "empty"),
])
def test_syntax_errors_say_what_is_wrong(source, fragment):
    with pytest.raises(ExpressionSyntaxError) as problem:
        Template(source)
    assert fragment in str(problem.value)


def test_function_calls_are_listed_for_lint():
    calls = Expression("join(', ', map(&lookup('t', @), xs))").function_calls()
    assert ("join", 2) in calls and ("map", 2) in calls and ("lookup", 2) in calls


def test_a_failing_function_names_the_expression():
    with pytest.raises(EvaluationError) as problem:
        Expression("time_add(t, 'soon')").evaluate(scope(t="2020-01-01T00:00:00Z"))
    assert "time_add(t, 'soon')" in str(problem.value) and "duration" in str(problem.value)
