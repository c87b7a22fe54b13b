"""The function library, one behaviour per test."""
import uuid
from datetime import datetime, timezone

import pytest

from engine.language.expressions import EvaluationError, Expression, Scope
from engine.language.functions import FUNCTION_EXAMPLES
from engine.serving.runtime import FrozenClock, Runtime, random_uuid
from tests.support.forking import in_forked_child

NOW = datetime(2020, 3, 11, 10, 0, 0, tzinfo=timezone.utc)


def run(source, tables=None, **values):
    runtime = Runtime(clock=FrozenClock(NOW), new_uuid=lambda: uuid.UUID(int=7))
    return Expression(source).evaluate(Scope(values, runtime, tables or {}))


def test_now_reads_the_injected_clock():
    assert run("now()") == "2020-03-11T10:00:00.000000Z"


def test_time_arithmetic_and_formats():
    assert run("format_time(time_add(now(), 'P30D'), 'iso')") == "2020-04-10T10:00:00Z"
    assert run("format_time(time_add(t, 'P7D'), 'iso_micro')", t="2020-03-10T23:11:57+00:00") == \
        "2020-03-17T23:11:57.000000Z"
    assert run("format_time(t, 'iso_millis')", t="2020-03-10T23:11:57.123456Z") == "2020-03-10T23:11:57.123Z"
    assert run("format_time(t, '%d/%m/%Y')", t="2020-03-10T23:11:57Z") == "10/03/2020"
    assert run("time_add(t, '-PT1H30M')", t="2020-03-10T00:00:00Z") == "2020-03-09T22:30:00.000000Z"


def test_iso_format_keeps_a_fraction_when_there_is_one():
    assert run("format_time(t, 'iso')", t="2020-03-10T23:11:57.5Z") == "2020-03-10T23:11:57.500000Z"


def test_parse_time_reads_epochs_and_patterns():
    assert run("parse_time(`1583920800`, 'epoch')") == "2020-03-11T10:00:00.000000Z"
    assert run("parse_time(`1583920800000`, 'epoch_ms')") == "2020-03-11T10:00:00.000000Z"
    assert run("parse_time('11/03/2020 10:00', '%d/%m/%Y %H:%M')") == "2020-03-11T10:00:00.000000Z"
    assert run("parse_time(`null`, 'epoch')") is None


def test_bad_times_and_durations_are_clear_errors():
    with pytest.raises(EvaluationError, match="ISO-8601 time"):
        run("time_add('yesterday', 'P1D')")
    with pytest.raises(EvaluationError, match="duration"):
        run("time_add(now(), '30 days')")


def test_ids():
    assert run("uuid4()") == str(uuid.UUID(int=7))
    assert run("uuid5('15')") == "83d9886d-7699-596d-87a4-eb4cd6659b91"  # X.500 namespace, as relays use
    assert run("uuid5(`15`)") == run("uuid5('15')")


def test_lookup_in_range_and_value_tables():
    tables = {"score": {"ranges": [{"from": 0, "to": 85, "value": "Suspicious"},
                                   {"from": 86, "to": 100, "value": "Malicious"}], "default": "Unknown"},
              "names": {"values": {"1": "one"}, "default": "?"}}
    assert run("lookup('score', `85`)", tables) == "Suspicious"
    assert run("lookup('score', `85.5`)", tables) == "Unknown"  # bounds are inclusive, gaps fall through
    assert run("lookup('score', `86`)", tables) == "Malicious"
    assert run("lookup('score', 'high')", tables) == "Unknown"
    assert run("lookup('names', `1`)", tables) == "one"
    assert run("lookup('names', `2`)", tables) == "?"


def test_lookup_reads_a_named_value_of_the_scope():
    assert run("lookup('rows', `15`).title", rows={"15": {"title": "Hacking"}}) == "Hacking"
    with pytest.raises(EvaluationError, match="no table or value named 'nope'"):
        run("lookup('nope', `1`)")


def test_dispositions():
    assert run("disposition('Malicious')") == 2
    assert run("disposition_name(`3`)") == "Suspicious"
    with pytest.raises(EvaluationError, match="not a CTIM disposition"):
        run("disposition('Evil')")


def test_order_by_is_stable_in_both_directions():
    items = [{"k": 1, "n": "a"}, {"k": 2, "n": "b"}, {"k": 1, "n": "c"}, {"n": "no key"}]
    assert [i["n"] for i in run("order_by(xs, &k, 'desc')", xs=items)] == ["b", "a", "c", "no key"]
    assert [i["n"] for i in run("order_by(xs, &k, 'asc')", xs=items)] == ["a", "c", "b", "no key"]


def test_unique_take_default_and_text_helpers():
    assert run("unique(xs)", xs=[15, 21, 15, 18]) == [15, 21, 18]
    assert run("take(xs, `2`)", xs=[1, 2, 3]) == [1, 2]
    assert run("take(xs, `null`)", xs=[1, 2, 3]) == [1, 2, 3]
    assert run("default('', 'x')") == "x" and run("default('y', 'x')") == "y"
    assert run("concat('a', `1`, `null`, `true`)") == "a1true"
    assert run("regex_extract('id=42;', 'id=(\\d+)')") == "42"
    assert run("ip_version('2001:db8::1')") == 6 and run("ip_version('nope')") is None
    assert run("url_quote('a/b c')") == "a%2Fb%20c"
    assert run("get(o, `1`)", o={"1": "x"}) == "x"


@pytest.mark.parametrize(("moment", "duration", "expected"), [
    ("2026-01-31T10:00:00Z", "P1M", "2026-02-28T10:00:00.000000Z"),  # clamped to the month's last day
    ("2024-01-31T10:00:00Z", "P1M", "2024-02-29T10:00:00.000000Z"),  # a leap year
    ("2024-02-29T10:00:00Z", "P1Y", "2025-02-28T10:00:00.000000Z"),
    ("2026-03-31T00:00:00Z", "-P1M", "2026-02-28T00:00:00.000000Z"),
    ("2026-11-15T00:00:00Z", "P1Y2M3DT4H", "2028-01-18T04:00:00.000000Z"),
    ("2026-01-01T00:00:00Z", "P2W", "2026-01-15T00:00:00.000000Z"),
])
def test_durations_with_months_and_years_follow_the_calendar(moment, duration, expected):
    """Found by a new user: `time_add(now(), 'P1M')` answered "not an ISO-8601 duration"."""
    assert run("time_add(t, d)", t=moment, d=duration) == expected


@pytest.mark.parametrize("duration", ["P1.5M", "P1X", "P", "P1DT", "1M"])
def test_a_duration_that_is_not_one_is_a_clear_error(duration):
    with pytest.raises(EvaluationError, match="duration|whole numbers"):
        run("time_add(now(), d)", d=duration)


def test_if_else_keeps_an_empty_value_and_evaluates_one_branch():
    assert run("if_else(ok, tags, 'none')", ok=True, tags=[]) == []
    assert run("ok && tags || 'none'", ok=True, tags=[]) == "none"  # what it replaces falls through
    assert run("if_else(ok, format_time(t, 'iso'), 'no time')", ok=False, t=None) == "no time"  # not evaluated
    assert run("if_else(`[]`, 'then', 'otherwise')") == "otherwise"  # JMESPath's truth


def test_every_function_example_of_the_reference_runs():
    from engine.commands.reference import function_lines
    lines = function_lines()
    assert not [line for line in lines if "UNDOCUMENTED" in line]
    assert sum(" gives `" in line for line in lines) == len(FUNCTION_EXAMPLES)


def test_random_ids_are_version_4_uuids_and_differ():
    made = [random_uuid() for _ in range(5000)]
    assert len(set(made)) == 5000
    for text in made[:500]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_worker_draws_its_own_random_ids():
    """gunicorn --preload forks workers from a parent that may already have drawn random bytes."""
    random_uuid()  # the parent holds random bytes not used yet
    childs = in_forked_child(random_uuid)
    assert uuid.UUID(childs) and childs != random_uuid()
