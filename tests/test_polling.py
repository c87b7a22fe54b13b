"""Search jobs: a step that polls until the job is done, the rules for a job out of time, and the
cleanup call that deletes it, inside the request's budget.

The vendor is a stand-in on loopback whose job states follow a script; the relay's clock is
frozen and moves only when the engine sleeps, so a 50 s patience costs no real time and every
wait the engine makes is seen exactly.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from engine import create_app, load_spec
from engine.commands.lint import lint_paths
from engine.commands.standin import StandInVendor, routes_from_examples
from engine.commands.tokens import mint_hs256
from engine.serving.config import RelayConfig
from engine.serving.runtime import FrozenClock, Runtime
from tests.support.misbehaving import SECRET_KEY, MisbehavingVendor, json_answer, loopback_session
from tests.support.relay import NOW

SPEC = """
spec_version: 1
name: acme-logs
title: Acme Logs
version: 1.0.0
credentials:
  key: {label: API key}
observable_types: [ip, domain]
concurrency: 1
http:
  base_url: https://api.acme.test/v1
  auth: {headers: {X-Key: "{{ credentials.key }}"}}
steps:
  lookup:
    url: /lookup
    query: {q: "{{ observable.value }}"}
  job:
    method: POST
    url: /jobs
    json: {query: "\\"{{ escape(observable.value, '\\"') }}\\""}
    result: body.id
  job_state:
    url: "/jobs/{{ job }}"
    poll: {until: "body.state == 'DONE'", wait: [0, 3], POLL_LIMIT}
    errors:
      - when: {timed_out: true, body: "body.state == 'QUEUED'"}
        error: {code: not started, message: "The search for {{ observable.value }} did not start in time"}
      - when: {timed_out: true, body: "body.state == 'RUNNING'"}
        accept: true
        warning: {code: search unfinished, message: "The search for {{ observable.value }} did not finish: partial results"}
      - when: {status: 200, body: "body.state == 'CANCELLED'"}
        error: {code: cancelled, message: "The search was cancelled"}
    result: body.found
  job_messages:
    url: "/jobs/{{ job }}/messages"
    result: body.messages
  job_deleted:
    method: DELETE
    url: "/jobs/{{ job }}"
    cleanup: true
observe:
  steps: [STEPS]
  sightings:
    - for each: message in job_messages
      id: "transient:sighting-{{ message.id }}"
      confidence: High
      count: 1
      observed_time: {start_time: "2026-01-01T00:00:00Z"}
      description: "{{ message.text }} ({{ job_state }} found)"
"""
STEPS = "job, job_state, job_messages, job_deleted"


class Job:
    """A vendor whose search job answers `states` in turn (the last one repeats)."""

    def __init__(self, states, clock=None, slow_path=None):
        self.states = list(states)
        self.clock, self.slow_path = clock, slow_path

    def __call__(self, request):
        if self.slow_path and request.path.endswith(self.slow_path):
            self.clock.sleep(60)  # this call takes the rest of the request's budget
        if request.method == "POST":
            return json_answer({"id": "job-7"})
        if request.path.endswith("/messages"):
            return json_answer({"messages": [{"id": "m1", "text": "seen"}]})
        if request.method == "DELETE" or request.path.endswith("/lookup"):
            return json_answer({})
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return json_answer({"state": state, "found": 4})


def ask(tmp_path, job, *, limit="for: 10", steps=STEPS, budget=20.0, observables=None):
    path = tmp_path / "acme-logs.yaml"
    path.write_text(SPEC.replace("POLL_LIMIT", limit).replace("STEPS", steps))
    clock = job.clock or FrozenClock(NOW)
    job.clock = clock
    with MisbehavingVendor(job) as vendor:
        config = RelayConfig(auth_mode="hs256", secret_key=SECRET_KEY, request_budget=budget,
                             upstreams={"ACME_LOGS": vendor.origin})
        app = create_app({"acme-logs": load_spec(path)}, config, Runtime(clock=clock, session=loopback_session()))
        token = mint_hs256({"key": "k", "aud": "http://localhost/acme-logs"}, SECRET_KEY)
        answer = app.test_client().post("/acme-logs/observe/observables",
                                        json=observables or [{"type": "ip", "value": "192.0.2.1"}],
                                        headers={"Authorization": f"Bearer {token}"}).get_json()
    calls = [f"{r.method} {r.path.removeprefix('/v1')}" for r in vendor.requests]
    return answer, calls, clock.now() - NOW, vendor.requests


def test_a_job_is_polled_until_done_then_read_and_deleted(tmp_path):
    answer, calls, waited, requests = ask(tmp_path, Job(["QUEUED", "RUNNING", "RUNNING", "DONE"]))
    assert calls == ["POST /jobs"] + ["GET /jobs/job-7"] * 4 + ["GET /jobs/job-7/messages", "DELETE /jobs/job-7"]
    assert waited == timedelta(seconds=0 + 3 + 3)  # the first wait, then the last one repeated
    assert answer == {"data": {"sightings": {"count": 1, "docs": [{
        "id": "transient:sighting-m1", "confidence": "High", "count": 1, "description": "seen (4 found)",
        "observed_time": {"start_time": "2026-01-01T00:00:00Z"}, "type": "sighting"}]}}}
    assert json.loads(requests[0].body) == {"query": '"192.0.2.1"'}


def test_a_job_still_running_when_time_is_up_gives_its_results_so_far_and_a_warning(tmp_path):
    answer, calls, waited, _ = ask(tmp_path, Job(["RUNNING"]), limit="for: 10")
    # Calls at 0 s and 0 s (the first wait), then every 3 s while at most 10 s past the second call.
    assert calls == ["POST /jobs"] + ["GET /jobs/job-7"] * 5 + ["GET /jobs/job-7/messages", "DELETE /jobs/job-7"]
    assert waited == timedelta(seconds=12)
    assert answer["data"]["sightings"]["count"] == 1
    assert answer["errors"] == [{"code": "search unfinished", "type": "warning",
                                 "message": "The search for 192.0.2.1 did not finish: partial results"}]


def test_attempts_bound_the_calls(tmp_path):
    _, calls, waited, _ = ask(tmp_path, Job(["RUNNING"]), limit="attempts: 3")
    assert calls.count("GET /jobs/job-7") == 3 and waited == timedelta(seconds=3)


def test_a_job_not_started_in_time_is_an_error_and_nothing_after_it_runs(tmp_path):
    answer, calls, _, _ = ask(tmp_path, Job(["QUEUED"]))
    assert "GET /jobs/job-7/messages" not in calls and "DELETE /jobs/job-7" not in calls
    assert answer == {"errors": [{"code": "not started", "type": "fatal",
                                  "message": "The search for 192.0.2.1 did not start in time"}]}


def test_a_state_no_timed_out_rule_words_is_a_timeout_error(tmp_path):
    answer, _, _, _ = ask(tmp_path, Job(["PAUSED"]))
    assert answer == {"errors": [{"code": "timeout", "type": "fatal", "message": "Acme Logs did not finish in time."}]}


def test_timed_out_rules_judge_only_a_poll_out_of_time(tmp_path):
    # QUEUED then DONE: the `timed_out` rule for QUEUED does not judge the first answer.
    answer, calls, _, _ = ask(tmp_path, Job(["QUEUED", "DONE"]))
    assert calls.count("GET /jobs/job-7") == 2 and "errors" not in answer


def test_a_failed_job_ends_the_polls_at_once(tmp_path):
    answer, calls, waited, _ = ask(tmp_path, Job(["RUNNING", "CANCELLED"]))
    assert calls.count("GET /jobs/job-7") == 2 and waited == timedelta(0)
    assert answer["errors"][0]["code"] == "cancelled"


def test_the_request_budget_ends_the_polls_before_their_own_time(tmp_path):
    answer, calls, waited, _ = ask(tmp_path, Job(["RUNNING"]), limit="for: 50", budget=8)
    # 0 s, 0 s, 3 s, 6 s: waiting 3 s more would leave nothing of the 8 s budget.
    assert calls.count("GET /jobs/job-7") == 4 and waited == timedelta(seconds=6)
    assert waited < timedelta(seconds=8)
    assert answer["errors"][0]["code"] == "search unfinished" and answer["data"]["sightings"]["count"] == 1
    assert calls[-1] == "DELETE /jobs/job-7"


def test_a_budget_spent_before_the_job_is_read_still_deletes_the_job(tmp_path):
    job = Job(["DONE"], FrozenClock(NOW), slow_path="/lookup")
    answer, calls, _, _ = ask(tmp_path, job, steps="job, job_state, lookup, job_messages, job_deleted", budget=8)
    # The lookup takes what is left of the budget: the messages are not asked for, the job is deleted.
    assert calls == ["POST /jobs", "GET /jobs/job-7", "GET /lookup", "DELETE /jobs/job-7"]
    assert answer["errors"][0]["code"] == "timeout" and "1 of 1 observable" in answer["errors"][0]["message"]


def test_no_cleanup_for_a_job_that_was_never_made(tmp_path):
    job = Job(["DONE"], FrozenClock(NOW), slow_path="/lookup")
    answer, calls, _, _ = ask(tmp_path, job, steps="lookup, job, job_state, job_messages, job_deleted", budget=8)
    assert calls == ["GET /lookup"]
    assert answer["errors"][0]["code"] == "timeout"


@pytest.mark.parametrize("change, message", [
    (("    cleanup: true\n", "    cleanup: true\n    errors:\n      - when: {timed_out: true}\n"
                             "        error: {code: x, message: y}\n"),
     "only a step that polls (`poll:`) runs out of time with an answer to judge"),
    (("        accept: true\n", "        error: {code: x, message: y}\n"), "a rule's `warning` goes with `accept: true`"),
    (("wait: [0, 3]", "wait: 0"), "the last wait is 0 s"),
    (("poll: {", "pages: {while: 'true', max: 2}\n    poll: {"), "not both"),
    (("poll: {", "cache: PT1M\n    poll: {"), "a polled step's answers are not kept"),
])
def test_lint_refuses_polls_that_cannot_work(tmp_path, change, message):
    path = tmp_path / "acme-logs.yaml"
    path.write_text(SPEC.replace("STEPS", STEPS).replace("POLL_LIMIT", "for: 10").replace(*change))
    report = lint_paths([path])
    assert report.exit_code == 1
    assert any(message in problem.message for problem in report.problems), [p.format() for p in report.problems]


def test_the_polling_spec_lints_clean(tmp_path):
    path = tmp_path / "acme-logs.yaml"
    without_lookup = SPEC.replace('  lookup:\n    url: /lookup\n    query: {q: "{{ observable.value }}"}\n', "")
    path.write_text(without_lookup.replace("STEPS", STEPS).replace("POLL_LIMIT", "for: 10"))
    report = lint_paths([path])
    assert report.exit_code == 0 and not report.problems, [p.format() for p in report.problems]


def test_the_stand_in_tells_a_jobs_calls_apart_by_method_and_segments(tmp_path):
    """`relay demo` and `relay try --replay examples` serve each step its own example, though the
    state, the messages and the delete share the job's path."""
    spec_text = SPEC.replace("STEPS", STEPS).replace("POLL_LIMIT", "for: 10") + """
examples:
  observable: {type: ip, value: 192.0.2.1}
  answers:
    job: {file: job.json}
    job_state: {file: state.json}
    job_messages: {file: messages.json}
    job_deleted: {file: deleted.json}
"""
    for name, document in {"job": {"id": "j1"}, "state": {"state": "DONE", "found": 1},
                           "messages": {"messages": [{"id": "m", "text": "t"}]}, "deleted": {"gone": True}}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(document))
    (tmp_path / "acme-logs.yaml").write_text(spec_text)
    with StandInVendor(routes_from_examples(load_spec(tmp_path / "acme-logs.yaml"))) as stand_in:
        answers = {call: stand_in.answer_for(path, "", method) for call, (method, path) in {
            "state": ("GET", "/v1/jobs/j1"), "messages": ("GET", "/v1/jobs/j1/messages"),
            "deleted": ("DELETE", "/v1/jobs/j1"), "made": ("POST", "/v1/jobs"), "none": ("PUT", "/v1/jobs/j1")}.items()}
    assert json.loads(answers["state"].body)["state"] == "DONE"
    assert json.loads(answers["messages"].body)["messages"][0]["id"] == "m"
    assert json.loads(answers["deleted"].body) == {"gone": True}
    assert json.loads(answers["made"].body) == {"id": "j1"}
    assert answers["none"] is None
