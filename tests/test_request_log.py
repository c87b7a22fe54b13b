"""One JSON line per relay request (engine/serving/requestlog.py): what an operator needs to act on
"module error", never a credential, observable values only when asked, CloudWatch metrics on Lambda."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from engine import create_app, load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from engine.commands.tokens import mint_hs256
from engine.serving.config import ConfigError, RelayConfig
from engine.serving.requestlog import RequestLog

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "vendors" / "abuseipdb.yaml")
SECRET = "request-log-secret-key-0123456789abcdef"
KEY = "vendor-key-never-logged-7f3a"


def served(vendor, log: RequestLog, environ=None):
    config = RelayConfig(auth_mode="hs256", secret_key=SECRET, upstreams={"ABUSEIPDB": vendor.origin})
    app = create_app({"abuseipdb": SPEC}, config, request_log=log)
    token = mint_hs256({"key": KEY, "aud": "http://localhost/abuseipdb"}, SECRET)
    return app.test_client(), {"Authorization": f"Bearer {token}"}, environ or {}


def lines(stream: io.StringIO) -> list:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_request_makes_one_line_with_its_calls_and_outcome():
    stream = io.StringIO()
    with StandInVendor(routes_from_examples(SPEC)) as vendor:
        client, headers, _ = served(vendor, RequestLog(stream))
        client.post("/abuseipdb/observe/observables", json=[{"type": "ip", "value": "192.0.2.45"},
                                                            {"type": "domain", "value": "dropped.example"}],
                    headers=headers, environ_base={"lambda.context": type("C", (), {"aws_request_id": "req-1"})()})
    [line] = lines(stream)
    assert {key: line[key] for key in ("type", "request_id", "vendor", "route", "observables", "observable_types",
                                       "outcome", "errors")} == {
        "type": "relay-request", "request_id": "req-1", "vendor": "abuseipdb", "route": "observe",
        "observables": 1, "observable_types": {"ip": 1}, "outcome": "ok", "errors": []}
    assert [(call["step"], call["method"], call["status"], call["outcome"]) for call in line["calls"]] == [
        ("categories", "GET", 200, "accept"), ("check", "GET", 200, "accept")]
    assert all(call["ms"] >= 0 for call in line["calls"]) and line["duration_ms"] > 0
    assert "observable_values" not in line and "192.0.2.45" not in json.dumps(line)
    assert "_aws" not in line


def test_vendor_errors_and_faults_show_without_a_secret_even_when_the_vendor_echoes_it():
    stream = io.StringIO()
    echo = CannedAnswer(429, json.dumps({"errors": [{"detail": f"key {KEY} is over its quota"}]}).encode())
    with StandInVendor([Route("/categories", CannedAnswer(200, b"<table></table>", "text/html")),
                        Route("/api/v2/check", echo)]) as vendor:
        client, headers, _ = served(vendor, RequestLog(stream))
        client.post("/abuseipdb/deliberate/observables", json=[{"type": "ip", "value": "192.0.2.1"}], headers=headers)
    [line] = lines(stream)
    assert line["outcome"] == "errors" and line["errors"] == ["too many requests"]
    assert line["calls"][-1]["status"] == 429 and line["calls"][-1]["outcome"] == "error"
    assert KEY not in stream.getvalue() and SECRET not in stream.getvalue()


def test_observable_values_only_when_the_operator_asks():
    stream = io.StringIO()
    with StandInVendor(routes_from_examples(SPEC)) as vendor:
        client, headers, _ = served(vendor, RequestLog(stream, observables=True))
        client.post("/abuseipdb/deliberate/observables", json=[{"type": "ip", "value": "192.0.2.45"}], headers=headers)
    assert lines(stream)[0]["observable_values"] == ["192.0.2.45"]


def test_on_lambda_the_line_carries_embedded_metrics():
    stream = io.StringIO()
    with StandInVendor(routes_from_examples(SPEC)) as vendor:
        client, headers, _ = served(vendor, RequestLog(stream, metrics=True))
        client.post("/abuseipdb/observe/observables", json=[{"type": "ip", "value": "192.0.2.45"}], headers=headers)
    [line] = lines(stream)
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "RelayEngine" and directive["Dimensions"] == [["vendor", "route"]]
    names = [metric["Name"] for metric in directive["Metrics"]]
    assert names == ["Requests", "Errors", "VendorCalls", "VendorErrors", "CacheHits", "Duration", "VendorLatency"]
    assert all(name in line for name in names) and line["vendor"] == "abuseipdb" and line["route"] == "observe"
    assert (line["Requests"], line["Errors"], line["VendorCalls"], line["VendorErrors"]) == (1, 0, 2, 0)
    assert len(line["VendorLatency"]) == 2 and isinstance(line["_aws"]["Timestamp"], int)


def test_unauthorized_and_misconfigured_requests_are_logged_too(tmp_path):
    stream = io.StringIO()
    config = RelayConfig(auth_mode="hs256", secret_key=SECRET)
    client = create_app({"abuseipdb": SPEC}, config, broken={"shodan": []}, request_log=RequestLog(stream)).test_client()
    client.post("/abuseipdb/health", headers={"Authorization": "Bearer not-a-token"})
    client.post("/shodan/refer/observables", json=[])
    first, second = lines(stream)
    assert first["errors"] == ["authorization error"] and first["calls"] == []
    assert second["vendor"] == "shodan" and second["errors"] == ["misconfigured module"]


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, (True, False, False)),
    ({"AWS_LAMBDA_FUNCTION_NAME": "relay"}, (True, False, True)),
    ({"RELAY_REQUEST_LOG": "off", "RELAY_LOG_OBSERVABLES": "true", "RELAY_METRICS": "on"}, (False, True, True)),
])
def test_the_environment_says_what_is_logged(environ, expected):
    config = RelayConfig.from_environ({"SECRET_KEY": SECRET, **environ})
    assert (config.request_log, config.log_observables, config.metrics) == expected


def test_a_switch_that_is_not_true_or_false_stops_the_start():
    with pytest.raises(ConfigError, match="RELAY_LOG_OBSERVABLES is 'maybe': give true or false"):
        RelayConfig.from_environ({"SECRET_KEY": SECRET, "RELAY_LOG_OBSERVABLES": "maybe"})
