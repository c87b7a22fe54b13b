"""IsItPhishing end to end: a POST per URL, status tables, error codes from the HTTP reason phrase."""
import json
from pathlib import Path

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor
from tests.support.relay import RelayUnderTest

SPEC = load_spec(Path(__file__).resolve().parent.parent / "vendors" / "is-it-phishing.yaml")
URL = [{"type": "url", "value": "http://login.bank.example/verify"}]
CLAIMS = {"key": "iip-key", "aud": "http://localhost/is-it-phishing"}


def ask(route, answer: CannedAnswer, body=URL, claims=CLAIMS):
    with StandInVendor([Route("/api/v2/url", answer)]) as stand_in:
        relay = RelayUnderTest({"is-it-phishing": SPEC}, {"is-it-phishing": stand_in.origin})
        return relay.post(f"/is-it-phishing/{route}", body, claims).get_json(), stand_in.received


@pytest.mark.parametrize("status, disposition, severity", [
    ("PHISHING", "Malicious", "High"), ("SPAM", "Suspicious", "Medium"), ("NOT_EXPLORED", "Unknown", "Unknown")])
def test_the_status_decides_verdict_and_judgement(status, disposition, severity):
    answer, received = ask("observe/observables", CannedAnswer(200, json.dumps({"status": status}).encode()))
    data = answer["data"]
    assert data["verdicts"]["docs"][0]["disposition_name"] == disposition
    assert data["judgements"]["docs"][0]["severity"] == severity
    assert json.loads(received[0].body) == {"url": URL[0]["value"], "force": False, "smart": True, "timeout": 8000}
    assert received[0].headers["Authorization"] == "Bearer iip-key"


def test_an_unexpected_status_is_reported_by_its_reason_phrase():
    answer, _ = ask("deliberate/observables", CannedAnswer(503, b""))
    assert answer == {"errors": [{"code": "service unavailable", "type": "fatal",
                                  "message": "Unexpected response from IsItPhishing: Service Unavailable"}]}


def test_the_token_is_checked_even_when_no_observable_is_supported():
    answer, received = ask("observe/observables", CannedAnswer(200, b"{}"), body=[{"type": "ip", "value": "x"}],
                           claims={"aud": "http://localhost/is-it-phishing"})
    assert answer["errors"][0]["message"] == "Authorization failed: Wrong JWT payload structure"
    assert received == []
