"""One JSON line per relay request, for the operator who hears "module error" from an analyst.

    {"type": "relay-request", "time": ..., "request_id": ..., "vendor": "abuseipdb", "route": "observe",
     "observables": 2, "observable_types": {"ip": 2}, "calls": [{"step": "check", "status": 200,
     "ms": 48.1, "outcome": "accept"}, ...], "outcome": "errors", "errors": ["too many requests"],
     "duration_ms": 131.7}

What it never holds: a credential, a token, a vendor's answer, or the URL of a call (a query may
carry a key); the observables' values only when the operator says so (RELAY_LOG_OBSERVABLES: they
are the customer's investigation). On Lambda the same line also carries CloudWatch metrics in the
Embedded Metric Format (requests, errors, vendor calls and their errors, durations and vendor
latencies per vendor and route): CloudWatch turns the log line into metrics, no agent or API call.
"""
from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from datetime import datetime, timezone

METRICS_NAMESPACE = "RelayEngine"


class RequestLog:
    def __init__(self, stream=None, observables: bool = False, metrics: bool = False,
                 namespace: str = METRICS_NAMESPACE):
        self.stream = stream if stream is not None else sys.stdout
        self.observables = observables  # the values too, not only their number and types
        self.metrics = metrics  # Embedded Metric Format (on Lambda)
        self.namespace = namespace
        self._lock = threading.Lock()  # one whole line at a time, whatever the threads

    def emit(self, vendor: str, route: str, request_id: str, duration_ms: float, body: dict,
             observables: list = (), calls: list = (), now: datetime | None = None) -> dict:
        record = self.record(vendor, route, request_id, duration_ms, body, observables, calls, now)
        line = json.dumps(record, separators=(",", ":"), default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()
        return record

    def record(self, vendor, route, request_id, duration_ms, body, observables, calls, now=None) -> dict:
        now = now or datetime.now(timezone.utc)
        errors = [error.get("code") for error in body.get("errors", ()) if isinstance(error, dict)]
        record = {"type": "relay-request", "time": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                  "request_id": request_id, "vendor": vendor, "route": route,
                  "observables": len(observables),
                  "observable_types": dict(Counter(observable.type for observable in observables)),
                  "calls": [call_record(call) for call in calls],
                  "outcome": "errors" if errors else "ok", "errors": errors, "duration_ms": round(duration_ms, 1)}
        if self.observables:
            record["observable_values"] = [observable.value for observable in observables]
        if self.metrics:
            record.update(embedded_metrics(record, self.namespace, now))
        return record


def call_record(call) -> dict:
    """A vendor call, without anything it sent or received but its status."""
    found = {"step": call.step, "method": call.request.method}
    status = getattr(call.result, "status", None)
    if status is not None:
        found["status"] = status
    else:
        found["fault"] = getattr(call.result, "kind", "unknown")
    found["ms"] = round(call.ms, 1)
    found["outcome"] = call.outcome or "error"
    if call.cache:
        found["cache"] = call.cache
    return found


def embedded_metrics(record: dict, namespace: str, now: datetime) -> dict:
    """The Embedded Metric Format directive and values for this request (dimensions: vendor, route)."""
    calls = record["calls"]
    asked = [call for call in calls if call.get("cache") != "hit"]
    failed = [call for call in asked if "fault" in call or call["outcome"] == "error"]
    values = {"Requests": 1, "Errors": 1 if record["errors"] else 0, "VendorCalls": len(asked),
              "VendorErrors": len(failed), "CacheHits": len(calls) - len(asked), "Duration": record["duration_ms"]}
    if asked:
        values["VendorLatency"] = [call["ms"] for call in asked]
    units = {"Duration": "Milliseconds", "VendorLatency": "Milliseconds"}
    metrics = [{"Name": name, "Unit": units.get(name, "Count")} for name in values]
    return {"_aws": {"Timestamp": int(now.timestamp() * 1000), "CloudWatchMetrics": [
        {"Namespace": namespace, "Dimensions": [["vendor", "route"]], "Metrics": metrics}]}, **values}
