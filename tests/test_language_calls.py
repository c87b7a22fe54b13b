"""The step constructs, each on its own small spec through the real app and a loopback vendor:
one call per item, page after page, one call for many observables, a call that finds nothing
for its step only, warnings that stop nothing, status classes in lists, the answer as text."""
from __future__ import annotations

import json
import textwrap

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor
from tests.support.relay import RelayUnderTest
from tests.support.specs import acme_head

HEAD = acme_head("ip, domain, url")
SIGHTING = """
      id: "transient:sighting-{{ uuid5(%s) }}"
      count: 1
      confidence: High
      observed_time: {start_time: "2026-01-01T00:00:00Z"}
      observables: ["{{ observable }}"]
"""


def json_answer(document, status: int = 200) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(document).encode())


def ask(write_spec, body: str, routes: list, observables=None, route: str = "observe", claims=None):
    spec = load_spec(write_spec(HEAD + textwrap.dedent(body)))
    with StandInVendor(routes) as vendor:
        relay = RelayUnderTest({"acme": spec}, {"acme": vendor.origin})
        answer = relay.post(f"/acme/{route}/observables", observables or [{"type": "ip", "value": "192.0.2.1"}],
                            claims or {"key": "k"}).get_json()
    return answer, [(call.path, call.query) for call in vendor.received]


# ------------------------------------------------------------------------------------ for each

FOR_EACH = """
steps:
  pulses:
    url: "/ip/{{ observable.value }}/pulses"
    result: body.ids
  details:
    for each: pulse in pulses
    url: "/pulses/{{ pulse }}"
    result: "{id: pulse, name: body.name}"
    errors:
      - when: {status: 404}
        skip: step
observe:
  steps: [pulses, details]
  sightings:
    - for each: detail in details
      title: "{{ detail.name }}"
""" + SIGHTING % "detail.id"


def test_for_each_makes_one_call_per_item_in_order_and_leaves_out_what_is_not_found(write_spec):
    routes = [Route("/v1/ip/192.0.2.1/pulses", json_answer({"ids": ["p1", "p2", "p3"]})),
              Route("/v1/pulses/p1", json_answer({"name": "first"})),
              Route("/v1/pulses/p2", json_answer({}, 404)),
              Route("/v1/pulses/p3", json_answer({"name": "third"}))]
    answer, calls = ask(write_spec, FOR_EACH, routes)
    assert [doc["title"] for doc in answer["data"]["sightings"]["docs"]] == ["first", "third"]
    assert [path for path, _ in calls] == ["/v1/ip/192.0.2.1/pulses", "/v1/pulses/p1", "/v1/pulses/p2",
                                           "/v1/pulses/p3"]
    assert "errors" not in answer


def test_for_each_over_nothing_makes_no_call(write_spec):
    answer, calls = ask(write_spec, FOR_EACH, [Route("/v1/ip/192.0.2.1/pulses", json_answer({"ids": None}))])
    assert answer == {"data": {}} and len(calls) == 1


def test_an_error_on_one_item_ends_the_observable(write_spec):
    routes = [Route("/v1/ip/192.0.2.1/pulses", json_answer({"ids": ["p1", "p2", "p3"]})),
              Route("/v1/pulses/p1", json_answer({"name": "first"})),
              Route("/v1/pulses/p2", json_answer({}, 500))]
    answer, calls = ask(write_spec, FOR_EACH, routes)
    assert answer["errors"][0]["message"] == "Unexpected response from Acme: HTTP 500 Internal Server Error."
    assert "data" not in answer and [path for path, _ in calls][-1] == "/v1/pulses/p2"  # p3 never asked


def test_for_each_over_something_else_than_a_list_is_a_clear_error(write_spec):
    answer, _ = ask(write_spec, FOR_EACH, [Route("/v1/ip/192.0.2.1/pulses", json_answer({"ids": "p1"}))])
    assert "`for each` needs a list, not str" in answer["errors"][0]["message"]


# ------------------------------------------------------------------------------------ pages

PAGES = """
steps:
  indicators:
    url: /indicators
    query: {q: "{{ observable.value }}", page: "{{ page }}", after: "{{ previous.body.cursor }}"}
    pages: {while: "body.cursor != `null` && !contains(body.items, 'wanted')", max: %d}
    result: body.items
observe:
  steps: [indicators]
  sightings:
    - for each: item in indicators
      title: "{{ item }}"
""" + SIGHTING % "item"


def pages(*contents):
    return [Route("/v1/indicators", json_answer({"items": items, "cursor": cursor}), query=(("page", str(number)),))
            for number, (items, cursor) in enumerate(contents, 1)]


def test_pages_are_asked_while_the_condition_holds_and_joined(write_spec):
    routes = pages((["a", "b"], "c1"), (["wanted"], "c2"), (["never"], None))
    answer, calls = ask(write_spec, PAGES % 10, routes)
    assert [doc["title"] for doc in answer["data"]["sightings"]["docs"]] == ["a", "b", "wanted"]
    assert [query for _, query in calls] == ["q=192.0.2.1&page=1", "q=192.0.2.1&page=2&after=c1"]


def test_pages_stop_at_their_budget_quietly(write_spec):
    routes = pages((["a"], "c1"), (["b"], "c2"), (["c"], "c3"))
    answer, calls = ask(write_spec, PAGES % 2, routes)
    assert [doc["title"] for doc in answer["data"]["sightings"]["docs"]] == ["a", "b"]
    assert len(calls) == 2 and "errors" not in answer


def test_the_last_page_is_the_one_without_a_cursor(write_spec):
    answer, calls = ask(write_spec, PAGES % 10, pages((["a"], None)))
    assert len(calls) == 1 and answer["data"]["sightings"]["count"] == 1


def test_a_steps_own_error_rules_see_its_page_and_item(write_spec):
    """A rule of the step sees what its calls see: here the page that failed."""
    rule = """    errors:
      - when: {status: 429, body: "page > `1`"}
        error: {code: too many requests, message: "Acme stopped at page {{ page }} of {{ observable.value }}"}
"""
    text = PAGES.replace("    result: body.items\n", "    result: body.items\n" + rule) % 10
    routes = pages((["a"], "c1")) + [Route("/v1/indicators", json_answer({}, 429), query=(("page", "2"),))]
    answer, calls = ask(write_spec, text, routes)
    assert answer["errors"] == [{"code": "too many requests", "message": "Acme stopped at page 2 of 192.0.2.1",
                                 "type": "fatal"}]
    assert len(calls) == 2


# ------------------------------------------------------------------------------------ a limit shared by steps

SHARED_LIMIT = """
settings:
  LIMIT: {label: Entities limit, type: integer, default: 3, minimum: 1}
steps:
  categories:
    url: "/ip/{{ observable.value }}/categories"
    result: body.names
  dns:
    if: "length(categories) < settings.LIMIT"   # room left after one sighting per category?
    url: "/ip/{{ observable.value }}/dns"
    result: body.names
observe:
  steps: [categories, dns]
  sightings:
    - for each: item in take([categories, dns || `[]`][], settings.LIMIT)
      title: "{{ item }}"
""" + SIGHTING % "item"


@pytest.mark.parametrize(("limit", "titles", "asked"), [
    (3, ["malware", "phishing", "a.example"], ["categories", "dns"]),
    (2, ["malware", "phishing"], ["categories"]),  # no room: the DNS lookup is not made
])
def test_a_limit_is_spent_across_steps_in_order(write_spec, limit, titles, asked):
    routes = [Route("/v1/ip/192.0.2.1/categories", json_answer({"names": ["malware", "phishing"]})),
              Route("/v1/ip/192.0.2.1/dns", json_answer({"names": ["a.example", "b.example"]}))]
    answer, calls = ask(write_spec, SHARED_LIMIT, routes, claims={"key": "k", "LIMIT": limit})
    assert [doc["title"] for doc in answer["data"]["sightings"]["docs"]] == titles
    assert [path.rsplit("/", 1)[1] for path, _ in calls] == asked


# ------------------------------------------------------------------------------------ many observables at once

BATCH = """
steps:
  find:
    once: per request
    for each: chunk in chunks(observables[].value, `2`)
    method: POST
    url: /find
    json: {entries: "{{ chunk }}"}
    result: body.matches || `[]`
observe:
  steps: [find]
  let:
    mine: "{{ get(group_by(find[], &url), observable.value) }}"
  sightings:
    - for each: match in mine
      title: "{{ match.threat }}"
""" + SIGHTING % "concat(match.url, match.threat)"


def test_one_call_carries_many_observables_in_chunks_and_each_takes_its_part(write_spec):
    observables = [{"type": "url", "value": value} for value in ("http://a.test", "http://b.test", "http://c.test")]
    routes = [Route("/v1/find", json_answer({"matches": [{"url": "http://a.test", "threat": "MALWARE"},
                                                         {"url": "http://c.test", "threat": "PHISHING"},
                                                         {"url": "http://a.test", "threat": "UNWANTED"}]}))]
    spec = load_spec(write_spec(HEAD + textwrap.dedent(BATCH)))
    with StandInVendor(routes) as vendor:
        relay = RelayUnderTest({"acme": spec}, {"acme": vendor.origin})
        answer = relay.post("/acme/observe/observables", observables, {"key": "k"}).get_json()
    bodies = [json.loads(call.body) for call in vendor.received]
    assert bodies == [{"entries": ["http://a.test", "http://b.test"]}, {"entries": ["http://c.test"]}]
    titles = [(doc["observables"][0]["value"], doc["title"]) for doc in answer["data"]["sightings"]["docs"]]
    # both calls answered the same canned matches: each observable took its own twice
    assert sorted(set(titles)) == [("http://a.test", "MALWARE"), ("http://a.test", "UNWANTED"),
                                   ("http://c.test", "PHISHING")]


# ------------------------------------------------------------------------------------ skip: step, warnings

SIDE_LOOKUP = """
steps:
  check:
    url: "/ip/{{ observable.value }}"
  extra:
    url: "/extra/{{ observable.value }}"
    errors:
      - when: {status: [400, 404]}
        skip: step
      - when: {status: 429}
        error: {code: too many requests, message: "extra lookups are rate limited", type: warning}
observe:
  steps: [check, extra]
  sightings:
    - title: "{{ check.name }} / {{ extra.name || 'no extra' }}"
""" + SIGHTING % "check.name" + """
  warnings:
    - if: "!extra"
      code: not found
      message: "Acme has no extra data on {{ observable.value }}"
"""


@pytest.mark.parametrize(("status", "warnings"), [
    (404, [{"code": "not found", "message": "Acme has no extra data on 192.0.2.1", "type": "warning"}]),
    (429, [{"code": "too many requests", "message": "extra lookups are rate limited", "type": "warning"},
           {"code": "not found", "message": "Acme has no extra data on 192.0.2.1", "type": "warning"}]),
])
def test_a_side_lookup_that_finds_nothing_keeps_the_observable_and_warns(write_spec, status, warnings):
    routes = [Route("/v1/ip/192.0.2.1", json_answer({"name": "main"})), Route("/v1/extra/192.0.2.1",
                                                                            json_answer({}, status))]
    answer, _ = ask(write_spec, SIDE_LOOKUP, routes)
    assert answer["data"]["sightings"]["docs"][0]["title"] == "main / no extra"
    assert answer["errors"] == warnings


def test_when_the_side_lookup_answers_there_is_no_warning(write_spec):
    routes = [Route("/v1/ip/192.0.2.1", json_answer({"name": "main"})),
              Route("/v1/extra/192.0.2.1", json_answer({"name": "more"}))]
    answer, _ = ask(write_spec, SIDE_LOOKUP, routes)
    assert answer == {"data": {"sightings": {"count": 1, "docs": [answer["data"]["sightings"]["docs"][0]]}}}
    assert answer["data"]["sightings"]["docs"][0]["title"] == "main / more"


# ------------------------------------------------------------------------------------ rules

RULES = """
http:
  base_url: https://api.acme.test/v1
  auth:
    headers: {X-Key: "{{ credentials.key }}"}
  errors:
    - when: {status: [400, 404, 5xx]}
      error: {code: "{{ status }}", message: "{{ observable.value }}: {{ text }}"}
steps:
  check:
    url: "/ip/{{ observable.value }}"
observe:
  steps: [check]
  sightings:
    - title: x
""" + SIGHTING % "'x'"


@pytest.mark.parametrize("status", [400, 404, 502])
def test_a_rule_takes_statuses_and_classes_and_sees_the_text_and_the_observable(write_spec, status):
    spec = load_spec(write_spec(HEAD.split("http:")[0] + textwrap.dedent(RULES)))
    with StandInVendor([Route("/v1/ip/192.0.2.1", CannedAnswer(status, b"plain words", "text/plain"))]) as vendor:
        answer = RelayUnderTest({"acme": spec}, {"acme": vendor.origin}).post(
            "/acme/observe/observables", [{"type": "ip", "value": "192.0.2.1"}], {"key": "k"}).get_json()
    assert answer["errors"] == [{"code": str(status), "message": "192.0.2.1: plain words", "type": "fatal"}]


def test_lint_refuses_a_for_each_that_is_not_name_in_expression(write_spec):
    from engine.spec.load import check_file
    _, problems = check_file(write_spec(HEAD + textwrap.dedent(FOR_EACH.replace("pulse in pulses", "pulses"))))
    assert any(problem.path == ("steps", "details", "for each") for problem in problems)


# ------------------------------------------------------------------------------------ a vendor's rate limit

RATE_LIMITED = """
steps:
  check:
    url: "/ip/{{ observable.value }}"
deliberate:
  steps: [check]
  verdicts:
    - observable: "{{ observable }}"
      disposition: 5
      valid_time: {}
"""


def rate_limited_relay(write_spec, calls: int, seconds: int):
    head = HEAD.replace("http:\n", f"http:\n  rate_limit: {{calls: {calls}, seconds: {seconds}}}\n", 1)
    spec = load_spec(write_spec(head + RATE_LIMITED))
    vendor = StandInVendor([Route("/v1/ip/", json_answer({}), prefix=True)]).start()
    return RelayUnderTest({"acme": spec}, {"acme": vendor.origin}), vendor


def test_calls_wait_for_the_vendors_rate_limit(write_spec):
    """2 calls a second, 5 observables: calls start at 0, 0, 1, 1 and 2 s (the clock is the test's)."""
    relay, vendor = rate_limited_relay(write_spec, calls=2, seconds=1)
    started = relay.clock.now()
    try:
        answer = relay.post("/acme/deliberate/observables",
                            [{"type": "ip", "value": f"192.0.2.{n}"} for n in range(1, 6)], {"key": "k"}).get_json()
    finally:
        vendor.stop()
    assert answer["data"]["verdicts"]["count"] == 5 and "errors" not in answer
    assert len(vendor.received) == 5
    assert (relay.clock.now() - started).total_seconds() == 2


def test_a_rate_limit_the_budget_cannot_wait_for_ends_the_request_in_time(write_spec):
    relay, vendor = rate_limited_relay(write_spec, calls=1, seconds=60)  # the budget is 20 s
    try:
        answer = relay.post("/acme/deliberate/observables",
                            [{"type": "ip", "value": f"192.0.2.{n}"} for n in range(1, 4)], {"key": "k"}).get_json()
    finally:
        vendor.stop()
    assert len(vendor.received) == 1 and answer["data"]["verdicts"]["count"] == 1
    assert answer["errors"][0]["code"] == "timeout"
    assert answer["errors"][0]["message"].startswith("No answer from Acme in time for 2 of 3 observables")
