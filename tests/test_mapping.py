"""CTIM mappings: control keys, left-out values and per-item scopes."""
import textwrap

import pytest

from engine.spec.compiler import Compiler
from engine.language.expressions import Scope
from engine.language.mapping import ABSENT, MappingError, render
from engine.serving.runtime import Runtime
from engine.spec.source import load_yaml


def mapping(yaml_text: str, names=("data",)):
    document = load_yaml(textwrap.dedent(yaml_text), "mapping.yaml")
    compiler = Compiler(load_yaml("spec_version: 1\n", "spec.yaml"))
    node = compiler.node(document.data, (), frozenset(names))
    assert not compiler.problems, [p.format() for p in compiler.problems]
    return node


def make(yaml_text: str, **values):
    return render(mapping(yaml_text, tuple(values) or ("data",)), Scope(values, Runtime(), {}))


def test_for_each_where_sort_limit():
    docs = make("""
        - for each: r in data
          where: r.score > `1`
          sort: r.score
          order: desc
          limit: "`2`"
          name: "{{ r.name }}"
    """, data=[{"name": "a", "score": 1}, {"name": "b", "score": 5}, {"name": "c", "score": 3},
               {"name": "d", "score": 2}])
    assert docs == [{"name": "b"}, {"name": "c"}]


def test_null_fields_are_left_out_and_constants_kept():
    assert make("{a: '{{ data.missing }}', b: 0, c: false, d: '{{ data.x }}'}", data={"x": []}) == \
        {"b": 0, "c": False, "d": []}


def test_if_leaves_out_an_object_and_a_list_it_empties():
    template = """
        relations:
          - if: data.domain
            source: "{{ data.domain }}"
    """
    assert make(template, data={"domain": "example.test"}) == {"relations": [{"source": "example.test"}]}
    assert make(template, data={"domain": None}) == {}


def test_let_values_are_seen_in_order_and_per_item():
    docs = make("""
        - for each: x in data
          let:
            double: "{{ x.n }}{{ x.n }}"
            label: "n={{ double }}"
          label: "{{ label }}"
    """, data=[{"n": 1}, {"n": 2}])
    assert docs == [{"label": "n=11"}, {"label": "n=22"}]


def test_nested_for_each_sees_outer_items():
    docs = make("""
        - for each: r in data
          pairs:
            - for each: c in r.cats
              pair: "{{ r.id }}-{{ c }}"
    """, data=[{"id": "a", "cats": [1, 2]}, {"id": "b", "cats": []}])
    assert docs == [{"pairs": [{"pair": "a-1"}, {"pair": "a-2"}]}, {}]


def test_for_each_over_null_makes_nothing_and_over_text_fails_clearly():
    assert make("- {for each: x in data, v: '{{ x }}'}", data=None) == ABSENT
    with pytest.raises(MappingError, match="not a list"):
        make("- {for each: x in data, v: '{{ x }}'}", data="text")


def test_an_evaluation_failure_names_the_field():
    with pytest.raises(MappingError) as problem:
        make("{when: \"{{ time_add(data, 'P1D') }}\"}", data="not a time")
    assert problem.value.path == ("when",)


DEFINED = """
    spec_version: 1
    name: acme
    title: Acme
    version: 1.0.0
    observable_types: [ip]
    token: none
    http: {base_url: "https://api.acme.test"}
    steps:
      lookup: {url: "/ip/{{ observable.value }}"}
    define:
      verdict:
        observable: "{{ observable }}"
        disposition: "{{ lookup.score }}"
        valid_time: {}
      %s
    deliberate:
      steps: [lookup]
      verdicts: [{use: verdict}]
    observe:
      steps: [lookup]
      verdicts: [{use: verdict}]
"""


def test_a_definition_is_compiled_where_it_is_used(write_spec):
    from engine import load_spec
    from engine.language.mapping import ObjectNode
    spec = load_spec(write_spec(DEFINED % ""))
    for route in ("deliberate", "observe"):
        (node,) = dict(spec.endpoint(route).outputs)["verdicts"].items
        assert isinstance(node, ObjectNode) and node.path == ("define", "verdict")
        assert ("type", "verdict") in node.fields  # completed as a verdict where it is used


@pytest.mark.parametrize(("extra", "message"), [
    ("unused: {title: x}", "definition 'unused' is never used"),
    ("loop: {use: loop}\n      again: [{use: loop}]", "definition 'loop' uses itself"),
])
def test_definitions_never_used_or_using_themselves_are_reported(write_spec, extra, message):
    from engine.spec.load import check_file
    text = DEFINED % extra
    if "loop" in extra:
        text = text.replace("verdicts: [{use: verdict}]\n    observe", "verdicts: [{use: verdict}]\n      let: "
                                                                       "{x: {use: again}}\n    observe")
    _, problems = check_file(write_spec(text))
    assert any(message in problem.message for problem in problems), [p.format() for p in problems]
