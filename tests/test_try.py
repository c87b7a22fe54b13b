"""relay try: every step shown in order, secrets redacted, replay, record, JSON, exit codes."""
import json
import shutil
from pathlib import Path

import pytest

from engine.commands.cli import main

ROOT = Path(__file__).resolve().parent.parent
SECRET = "key-that-must-never-show-0f9e8d"


def try_json(capsys, *args):
    code = main(["try", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_replaying_the_examples_shows_each_step_and_the_ctim(capsys):
    code, trace = try_json(capsys, "abuseipdb", "ip", "192.0.2.45", "--replay", "examples")
    assert code == 0
    assert [step["step"] for step in trace["steps"]] == ["categories", "check"]
    check = trace["steps"][1]
    assert check["request"]["url"] == \
        "https://api.abuseipdb.com/api/v2/check?ipAddress=192.0.2.45&maxAgeInDays=30&verbose=true"
    assert check["response"]["status"] == 200 and '"abuseConfidenceScore": 92' in check["response"]["body_preview"]
    assert check["value"]["abuseConfidenceScore"] == 92  # the step's value: body.data
    assert trace["steps"][0]["value"]["18"]["title"] == "Brute-Force"
    assert trace["answer"]["data"]["verdicts"]["docs"][0]["disposition_name"] == "Malicious"
    assert trace["problems"] == []


def test_credentials_are_redacted_everywhere(capsys):
    code = main(["try", "abuseipdb", "ip", "192.0.2.45", "--replay", "examples", "--claim", f"key={SECRET}"])
    text = capsys.readouterr().out
    assert code == 0 and SECRET not in text and "Key: <redacted>" in text
    code, trace = try_json(capsys, "abuseipdb", "ip", "192.0.2.45", "--replay", "examples",
                           "--claim", f"key={SECRET}")
    assert SECRET not in json.dumps(trace)


def test_text_output_is_coloured_only_when_asked(capsys):
    main(["try", "abuseipdb", "ip", "192.0.2.45", "--replay", "examples", "--color", "always"])
    assert "\033[" in capsys.readouterr().out
    main(["try", "abuseipdb", "ip", "192.0.2.45", "--replay", "examples", "--color", "never"])
    out = capsys.readouterr().out
    assert "\033[" not in out and "step check  GET https://api.abuseipdb.com" in out


def test_a_recorded_case_replays_and_passes_conformance(capsys, tmp_path):
    assert main(["try", "abuseipdb", "ip", "192.0.2.45", "--replay", "examples", "--claim", f"key={SECRET}",
                 "--record", str(tmp_path)]) == 0
    capsys.readouterr()
    [case_file] = (tmp_path / "abuseipdb").glob("*.json")
    assert SECRET not in case_file.read_text()  # placeholders stand in for credentials
    case = json.loads(case_file.read_text())
    assert [call["request"]["url"] for call in case["vendor_calls"]] == [
        "https://www.abuseipdb.com/categories",
        "https://api.abuseipdb.com/api/v2/check?ipAddress=192.0.2.45&maxAgeInDays=30&verbose=true"]
    assert main(["conformance", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1 passed, 0 failed"
    code, trace = try_json(capsys, "abuseipdb", "ip", "192.0.2.45", "--replay", str(case_file))
    assert code == 0 and trace["answer"]["data"]["sightings"]["count"] == 3
    assert trace["now"] == case["now"]  # the replay runs on the case's clock


def test_a_vendor_error_shows_in_the_step_and_the_answer(capsys, tmp_path):
    case = {"now": "2026-01-01T00:00:00.000000Z", "request": {"auth": {"jwt_payload": {"key": "k"}}},
            "vendor_calls": [{"request": {"method": "GET", "url": "https://api.abuseipdb.com/api/v2/check?"
                                          "ipAddress=192.0.2.45&maxAgeInDays=30&verbose=true",
                                          "headers": {}, "json": None, "data": None},
                              "response": {"status": 429, "headers": {},
                                           "json": {"errors": [{"detail": "Too fast", "status": 429}]}}}]}
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case))
    code, trace = try_json(capsys, "abuseipdb", "ip", "192.0.2.45", "--endpoint", "deliberate", "--replay", str(path))
    assert code == 1
    assert trace["steps"][0]["outcome"] == "error"
    assert trace["steps"][0]["error"] == {"code": "too many requests", "message": "Too fast", "type": "fatal"}
    assert trace["answer"] == {"errors": [{"code": "too many requests", "message": "Too fast", "type": "fatal"}]}


def test_ctim_problems_are_listed(capsys, tmp_path):
    vendors = tmp_path / "vendors"
    shutil.copytree(ROOT / "vendors", vendors)
    spec = (vendors / "abuseipdb.yaml").read_text().replace('disposition_name: "{{ verdict }}"',
                                                            "disposition_name: Clean")
    (vendors / "abuseipdb.yaml").write_text(spec)
    code = main(["try", "abuseipdb", "ip", "192.0.2.45", "--endpoint", "deliberate", "--replay", "examples",
                 "--vendors", str(vendors), "--color", "never"])
    out = capsys.readouterr().out
    assert code == 1
    assert "verdicts.docs[0].disposition_name: 'Clean' does not match disposition 2" in out


@pytest.mark.parametrize("args, message", [
    (["nobody", "ip", "1.2.3.4"], "no vendor 'nobody'"),
    (["abuseipdb", "domain", "example.test", "--replay", "examples"], "does not answer for 'domain'"),
    (["abuseipdb", "ip", "1.2.3.4", "--endpoint", "refer"], "does not declare /refer"),
    (["abuseipdb", "ip", "1.2.3.4"], "needs credentials"),
    (["abuseipdb", "ip", "1.2.3.4", "--replay", "no-such-case.json"], "cannot replay"),
    (["abuseipdb", "ip", "1.2.3.4", "--claim", "key"], "NAME=VALUE"),
])
def test_usage_problems_are_explained(capsys, args, message):
    assert main(["try", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_key_with_url_characters_is_recorded_as_one_placeholder(capsys, tmp_path):
    odd_key = "k/ey+with=odd&chars"
    assert main(["try", "abuseipdb", "ip", "192.0.2.45", "--replay", "examples", "--claim", f"key={odd_key}",
                 "--record", str(tmp_path)]) == 0
    [case_file] = (tmp_path / "abuseipdb").glob("*.json")
    text = case_file.read_text()
    assert "odd" not in text and "recorded-0" in text
    capsys.readouterr()
    assert main(["conformance", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1 passed, 0 failed"


def test_health_runs_without_an_observable(capsys):
    assert main(["try", "abuseipdb", "--endpoint", "health", "--replay", "examples", "--json"]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["observable"] is None and trace["answer"] == {"data": {"status": "ok"}}
    assert [step["step"] for step in trace["steps"]] == ["probe"]
    assert main(["try", "abuseipdb", "--endpoint", "observe", "--replay", "examples"]) == 2
    assert "/observe needs an observable" in capsys.readouterr().err


def test_replaying_an_observable_the_case_did_not_record_says_so(capsys, tmp_path):
    check = {"request": {"method": "GET", "url": "https://api.abuseipdb.com/api/v2/check?ipAddress=192.0.2.45&"
                                               "maxAgeInDays=30&verbose=true", "headers": {}, "json": None,
                         "data": None},
             "response": {"status": 200, "json": {"data": {}}}}
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"now": None, "vendor_calls": [check],
                                "request": {"auth": {"jwt_payload": {"key": "k"}}}}))
    assert main(["try", "abuseipdb", "ip", "10.0.0.1", "--replay", str(case), "--endpoint", "deliberate",
                 "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert len(problems) == 1
    assert problems[0].startswith(f"{case} has no answer for GET https://api.abuseipdb.com/api/v2/check?ipAddress=10.0.0.1")
    assert "(it recorded GET https://api.abuseipdb.com/api/v2/check?ipAddress=192.0.2.45" in problems[0]
    assert problems[0].endswith("was it recorded for another observable or route?")


def test_a_vendor_without_observe_is_tried_on_its_first_route(capsys):
    code, trace = try_json(capsys, "akamai", "ip", "198.51.100.7", "--replay", "examples")
    assert code == 0 and trace["endpoint"] == "respond"
    assert [action["id"] for action in trace["answer"]["data"]] == ["akamai-add-to-network-list",
                                                                   "akamai-remove-from-network-list"]
