"""Response actions on a small spec, through the real app and a loopback vendor: the actions offered
depend on what the vendor says about the observable now, a trigger runs only an action the listing
offers, with the credentials it needs, and a failed call is never a success."""
from __future__ import annotations

import json
import textwrap

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor
from engine.spec.load import check_file
from tests.support.relay import RelayUnderTest
from tests.support.specs import acme_head

# Acme blocks addresses: GET /blocks/<value> answers the block (404: none), POST /blocks makes one,
# DELETE /blocks/<id> lifts it. The listing offers `block` or `unblock` as the state says.
SPEC = acme_head("ip, url") + """%(top)s
steps:
  state:
    url: "/blocks/{{ observable.value }}"
    errors:
      - when: {status: 404}
        skip: step
  block:
    method: POST
    url: /blocks
    json: {value: "{{ observable.value }}", reason: "{{ params.reason }}"}
  unblock:
    method: DELETE
    url: "/blocks/{{ state.id }}"
respond:
  steps: [state]
  actions:
    block:
      if: "observable.type == 'ip' && !state"
      id: "acme-block-{{ observable.value }}"
      title: Block in Acme
      description: "Block this {{ observable.type }} at the Acme firewall"
      categories: [Acme, Block]
      query-params: {reason: Asked from XDR}
      trigger: {steps: [block]}
    unblock:
      if: state
      id: acme-unblock
      title: Unblock in Acme
      description: Lift Acme's block
      categories: [Acme, Unblock]
      query-params: {block_id: "{{ state.id }}"}
      trigger: {steps: [unblock]}
%(respond)s
"""
IP = {"type": "ip", "value": "192.0.2.1"}
BLOCKED = Route("/v1/blocks/192.0.2.1", CannedAnswer(200, b'{"id": "b-7"}'))
MADE = Route("/v1/blocks", CannedAnswer(201, b'{"id": "b-8"}'))
LIFTED = Route("/v1/blocks/b-7", CannedAnswer(204, b""))


def relay(write_spec, routes=(), top: str = "", respond: str = ""):
    text = textwrap.dedent(SPEC % {"top": top, "respond": textwrap.indent(textwrap.dedent(respond), "  ")})
    spec = load_spec(write_spec(text))
    vendor = StandInVendor(list(routes)).start()
    return RelayUnderTest({"acme": spec}, {"acme": vendor.origin}), vendor


def trigger_form(action_id: str, **params) -> dict:
    """What XDR sends back: the action's id and query-params (both actions' params here)."""
    return {"action-id": action_id, "observable_type": "ip", "observable_value": "192.0.2.1",
            "reason": "Asked from XDR", "block_id": "b-7", **params}


def test_the_actions_offered_follow_the_vendors_state(write_spec):
    test_relay, vendor = relay(write_spec)  # no block yet: the stand-in answers 404
    try:
        answer = test_relay.post("/acme/respond/observables", [IP, {"type": "url", "value": "https://a.example"}],
                                 {"key": "k"}).get_json()
    finally:
        vendor.stop()
    assert answer == {"data": [{
        "id": "acme-block-192.0.2.1", "title": "Block in Acme", "description": "Block this ip at the Acme firewall",
        "categories": ["Acme", "Block"],
        "query-params": {"observable_type": "ip", "observable_value": "192.0.2.1", "reason": "Asked from XDR"}}]}

    test_relay, vendor = relay(write_spec, [BLOCKED])
    try:
        answer = test_relay.post("/acme/respond/observables", [IP], {"key": "k"}).get_json()
    finally:
        vendor.stop()
    assert [action["id"] for action in answer["data"]] == ["acme-unblock"]
    assert answer["data"][0]["query-params"]["block_id"] == "b-7"


def test_a_trigger_runs_the_offered_action_with_its_params(write_spec):
    test_relay, vendor = relay(write_spec, [MADE])
    try:
        answer = test_relay.post("/acme/respond/trigger", trigger_form("acme-block-192.0.2.1", reason="phish"),
                                 {"key": "k"}).get_json()
    finally:
        vendor.stop()
    assert answer == {"data": {"status": "success"}}
    made = vendor.received[-1]
    assert (made.method, made.path, json.loads(made.body)) == ("POST", "/v1/blocks",
                                                               {"value": "192.0.2.1", "reason": "phish"})
    assert made.headers["X-Key"] == "k"


def test_a_trigger_reads_the_state_again_before_it_acts(write_spec):
    """The address is blocked now: `unblock` is offered and runs; `block` is no longer offered."""
    test_relay, vendor = relay(write_spec, [BLOCKED, LIFTED])
    try:
        lifted = test_relay.post("/acme/respond/trigger", trigger_form("acme-unblock"), {"key": "k"}).get_json()
        again = test_relay.post("/acme/respond/trigger", trigger_form("acme-block-192.0.2.1"), {"key": "k"}).get_json()
    finally:
        vendor.stop()
    assert lifted == {"data": {"status": "success"}}
    assert ("DELETE", "/v1/blocks/b-7") in [(call.method, call.path) for call in vendor.received]
    assert again == {"data": {"status": "failure"}, "errors": [{
        "code": "invalid request", "message": "Acme offers no action 'acme-block-192.0.2.1' for this observable",
        "type": "fatal"}]}
    assert "POST" not in [call.method for call in vendor.received]


FAILED = {"code": "unknown", "message": "Unexpected response from Acme: HTTP 500 Internal Server Error.", "type": "fatal"}


@pytest.mark.parametrize(("respond", "expected"), [
    ("", {"data": {"status": "failure"}, "errors": [FAILED]}),
    ("failure_status: false", {"errors": [FAILED]}),
])
def test_a_failed_call_is_never_a_success(write_spec, respond, expected):
    test_relay, vendor = relay(write_spec, [Route("/v1/blocks", CannedAnswer(500, b"{}"))], respond=respond)
    try:
        answer = test_relay.post("/acme/respond/trigger", trigger_form("acme-block-192.0.2.1"), {"key": "k"})
    finally:
        vendor.stop()
    assert answer.get_json() == expected


def test_a_trigger_without_the_credentials_runs_nothing(write_spec):
    test_relay, vendor = relay(write_spec, [MADE])
    try:
        no_token = test_relay.post("/acme/respond/trigger", trigger_form("acme-block-192.0.2.1")).get_json()
        no_key = test_relay.post("/acme/respond/trigger", trigger_form("acme-block-192.0.2.1"), {"other": 1}).get_json()
    finally:
        vendor.stop()
    assert no_token["errors"][0]["code"] == "authorization error"
    assert no_key["errors"][0]["message"] == "Authorization failed: Wrong JWT payload structure"
    assert no_token["data"] == no_key["data"] == {"status": "failure"}  # a trigger's every error says so
    assert vendor.received == []


@pytest.mark.parametrize(("form", "expected"), [
    ([IP], {"_schema": ["Invalid input type."]}),
    ({"observable_type": "ip", "observable_value": "192.0.2.1"}, {"action-id": ["Missing data for required field."]}),
    ({**trigger_form("x"), "observable_value": " "}, {"observable_value": ["Field may not be blank."]}),
    ({**trigger_form("x"), "extra": 3}, {"extra": ["Not a valid string."]}),
])
def test_a_malformed_trigger_is_invalid_input(write_spec, form, expected):
    test_relay, vendor = relay(write_spec)
    try:
        answer = test_relay.post("/acme/respond/trigger", form, {"key": "k"}).get_json()
    finally:
        vendor.stop()
    assert answer == {"data": {"status": "failure"}, "errors": [{"code": "invalid argument", "type": "fatal",
                                  "message": "Invalid JSON payload received. " + json.dumps(expected)}]}
    assert vendor.received == []


def test_a_trigger_must_send_back_the_params_its_action_offered(write_spec):
    test_relay, vendor = relay(write_spec, [MADE])
    try:
        form = {key: value for key, value in trigger_form("acme-block-192.0.2.1").items() if key != "reason"}
        answer = test_relay.post("/acme/respond/trigger", form, {"key": "k"}).get_json()
    finally:
        vendor.stop()
    assert answer["errors"] == [{"code": "invalid argument", "type": "fatal", "message":
                                 'Invalid JSON payload received. {"reason": ["Missing data for required field."]}'}]
    assert "POST" not in [call.method for call in vendor.received]


TRUSTING = """
  verify_offer: false
  not_offered: {code: invalid argument, message: "Unsupported action: {{ action_id }}."}
"""


def test_without_verifying_the_offer_a_trigger_acts_on_what_it_is_sent(write_spec):
    """The vendor is not asked again which actions it offers: the one named by the id runs."""
    test_relay, vendor = relay(write_spec, [BLOCKED, LIFTED, MADE], respond=TRUSTING)
    try:
        blocked = test_relay.post("/acme/respond/trigger", trigger_form("acme-block-192.0.2.1"), {"key": "k"})
        unknown = test_relay.post("/acme/respond/trigger", trigger_form("acme-nothing"), {"key": "k"})
    finally:
        vendor.stop()
    assert blocked.get_json() == {"data": {"status": "success"}}  # although the address is blocked already
    assert [(call.method, call.path) for call in vendor.received] == [("POST", "/v1/blocks")]
    assert unknown.get_json() == {"data": {"status": "failure"}, "errors": [
        {"code": "invalid argument", "message": "Unsupported action: acme-nothing.", "type": "fatal"}]}


def test_lint_keeps_trusting_ids_to_what_a_trigger_is_sent(write_spec):
    text = (SPEC % {"top": "", "respond": TRUSTING}).replace('id: acme-unblock', 'id: "acme-unblock-{{ state.id }}"')
    _, problems = check_file(write_spec(text))
    assert any("with `verify_offer: false` an action's id is made from the observable and the params sent back "
               "only, not from state" in problem.message for problem in problems)


def test_a_type_the_spec_does_not_take_is_unsupported(write_spec):
    test_relay, vendor = relay(write_spec)
    try:
        answer = test_relay.post("/acme/respond/trigger", {**trigger_form("x"), "observable_type": "sha256"},
                                 {"key": "k"}).get_json()
    finally:
        vendor.stop()
    assert answer == {"data": {"status": "failure"}, "errors": [
        {"code": "unsupported type", "message": "Unsupported observable type sha256", "type": "fatal"}]}
    assert vendor.received == []


def test_an_unknown_action_may_run_the_spec_s_one_action_when_offered(write_spec):
    """`unknown_action`: for relays that never read the id; still only where the action is offered."""
    test_relay, vendor = relay(write_spec, [MADE], respond="unknown_action: block")
    try:
        ran = test_relay.post("/acme/respond/trigger", trigger_form("any-id"), {"key": "k"}).get_json()
        url = test_relay.post("/acme/respond/trigger", {**trigger_form("any-id"), "observable_type": "url"},
                              {"key": "k"}).get_json()
    finally:
        vendor.stop()
    assert ran == {"data": {"status": "success"}}
    assert url["errors"][0]["code"] == "invalid request"  # `block` is offered for IPs only
    assert [call.method for call in vendor.received].count("POST") == 1


def test_respond_without_actions_answers_as_the_relay_template(write_spec):
    text = acme_head() + "respond: {actions: {}}\n"
    test_relay = RelayUnderTest({"acme": load_spec(write_spec(text))}, {})
    assert test_relay.post("/acme/respond/observables", raw=b"null").get_json() == {"data": []}
    assert test_relay.post("/acme/respond/trigger", raw=b"null").get_json() == {"data": {"status": "failure"}}


def test_a_spec_without_respond_has_no_respond_routes(write_spec):
    test_relay = RelayUnderTest({"acme": load_spec(write_spec(acme_head()))}, {})
    assert test_relay.post("/acme/respond/observables", [IP], {"key": "k"}).status_code == 404
    assert test_relay.post("/acme/respond/trigger", trigger_form("x"), {"key": "k"}).status_code == 404


@pytest.mark.parametrize(("change", "message"), [
    (("      title: Unblock in Acme\n", ""), "missing required key 'title'"),
    (("      categories: [Acme, Block]\n", "      categories: [Acme, Block]\n      url: https://x.example\n"),
     "unknown key 'url'"),
    (("trigger: {steps: [unblock]}", "trigger: {steps: [unblok]}"), "no step named 'unblok'"),
    (("%(respond)s", "  unknown_action: scan"), "no action named 'scan'"),
    (("  state:\n    url: \"/blocks/{{ observable.value }}\"",
      "  state:\n    url: \"/blocks/{{ params.block_id }}\""), "step 'state' reads `params`, which only a trigger has"),
])
def test_lint_checks_actions(write_spec, change, message):
    text = SPEC.replace(*change) % {"top": "", "respond": ""}
    _, problems = check_file(write_spec(text))
    assert any(message in problem.message for problem in problems), [p.message for p in problems]


# ------------------------------------------------------------------------------------ the commands

EXAMPLES = """
examples:
  observable: {type: ip, value: 192.0.2.1}
  answers:
    state: {file: examples/acme/no-block.json, status: 404}
    block: {file: examples/acme/made.json, status: 201}
"""


@pytest.fixture
def catalogue(tmp_path):
    """A vendors folder holding the Acme spec with example answers: nothing is blocked yet."""
    (tmp_path / "examples" / "acme").mkdir(parents=True)
    (tmp_path / "examples" / "acme" / "no-block.json").write_text('{"error": "no such block"}')
    (tmp_path / "examples" / "acme" / "made.json").write_text('{"id": "b-8"}')
    (tmp_path / "acme.yaml").write_text(textwrap.dedent(SPEC % {"top": "", "respond": ""}) + EXAMPLES)
    return tmp_path


def test_module_type_declares_the_respond_capability(catalogue):
    from engine.commands.module_type import capabilities, supported_apis
    spec = load_spec(catalogue / "acme.yaml")
    assert supported_apis(spec)[-2:] == ["respond/observables", "respond/trigger"]
    assert [c["id"] for c in capabilities(spec)] == ["respond"]


def test_try_lists_the_actions_and_runs_the_first(catalogue, capsys):
    from engine.commands.cli import main
    base = ["try", "acme", "ip", "192.0.2.1", "--replay", "examples", "--vendors", str(catalogue), "--json"]
    assert main(base + ["--endpoint", "respond"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [action["id"] for action in listed["answer"]["data"]] == ["acme-block-192.0.2.1"]
    assert main(base + ["--endpoint", "trigger"]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["answer"] == {"data": {"status": "success"}}
    assert [step["step"] for step in trace["steps"]] == ["state", "state", "block"]  # listing, trigger, action
    assert trace["steps"][-1]["request"]["json"] == {"value": "192.0.2.1", "reason": "Asked from XDR"}
    assert main(base + ["--endpoint", "trigger", "--action", "acme-unblock"]) == 1
    assert json.loads(capsys.readouterr().out)["answer"]["errors"][0]["code"] == "invalid request"
    # An action named by its id is sent with the query-params the listing offers it with.
    assert main(base + ["--endpoint", "trigger", "--action", "acme-block-192.0.2.1"]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["answer"] == {"data": {"status": "success"}}
    assert trace["steps"][-1]["request"]["json"] == {"value": "192.0.2.1", "reason": "Asked from XDR"}


def test_demo_triggers_the_first_action_on_the_examples(catalogue, capsys):
    from engine.commands.cli import main
    assert main(["demo", "acme", "--once", "--vendors", str(catalogue)]) == 0
    out = capsys.readouterr().out
    assert "Response actions offered:\n  acme-block-192.0.2.1: Block in Acme" in out
    assert "Triggered acme-block-192.0.2.1: success" in out


def test_lint_triggers_the_offered_actions_on_the_examples(catalogue):
    from engine.commands.lint import lint_paths
    (catalogue / "examples" / "acme" / "made.json").write_text('{"error": "quota"}')
    text = (catalogue / "acme.yaml").read_text().replace("status: 201}", "status: 429}")
    (catalogue / "acme.yaml").write_text(text)
    problems = lint_paths([catalogue / "acme.yaml"]).errors
    assert [(p.path, p.message) for p in problems] == [(
        ("respond", "actions", "block", "trigger"),
        "a trigger of 'acme-block-192.0.2.1' fails on the spec's example answers: too many requests: "
        "Too many requests have been made to Acme: please, try again later.")]
