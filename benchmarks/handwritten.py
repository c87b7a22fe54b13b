"""A minimal AbuseIPDB relay written by hand, in the style of Cisco's relays, for the overhead
benchmark: the same token check (HS256 with the module's audience), the same vendor calls (the
categories page once a day, as the spec's `cache: P1D` keeps it, then /check per IP), the same CTIM
as vendors/abuseipdb.yaml makes.
It keeps only what the benchmark exercises: no error table beyond a failed call, no limits.

    create_app(vendor_origin, secret_key) -> Flask
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import quote

import jwt
import requests
from flask import Flask, jsonify, request

SCHEMA_VERSION = "1.0.17"
HEADERS = {"User-Agent": "SecureX Threat Response Integrations <tr-integrations-support@cisco.com>",
           "Accept": "application/json"}


class CategoryTable(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self._row, self._cell = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def categories(session, origin):
    page = session.get(f"{origin}/categories", headers={**HEADERS, "Accept": "text/html"}, timeout=10)
    page.raise_for_status()
    table = CategoryTable()
    table.feed(page.text)
    return {row[0]: {"id": row[0], "title": row[1], "description": row[2] or None} for row in table.rows}


_kept: dict = {}  # origin -> (monotonic time it expires, the categories table)


def kept_categories(session, origin):
    expires, table = _kept.get(origin, (0.0, None))
    if time.monotonic() >= expires:
        table = categories(session, origin)
        _kept[origin] = (time.monotonic() + 86400, table)
    return table


def iso_micro(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def observe(observable, check, table):
    now = datetime.now(timezone.utc)
    check_url = f"https://www.abuseipdb.com/check/{quote(observable['value'], safe='')}"
    verdict = "Malicious" if check["abuseConfidenceScore"] >= 86 else "Suspicious"
    docs = {"verdicts": [{"type": "verdict", "observable": observable, "disposition": 2 if verdict == "Malicious" else 3,
                          "disposition_name": verdict,
                          "valid_time": {"start_time": now.isoformat().replace("+00:00", "Z"),
                                         "end_time": (now + timedelta(days=30)).isoformat().replace("+00:00", "Z")}}],
            "judgements": [], "sightings": [], "relationships": [], "indicators": []}
    reports = sorted(check["reports"], key=lambda report: report["reportedAt"], reverse=True)[:100]
    for report in reports:
        reported = datetime.fromisoformat(report["reportedAt"])
        sighting_id = f"transient:sighting-{uuid.uuid4()}"
        docs["judgements"].append({
            "type": "judgement", "schema_version": SCHEMA_VERSION, "id": f"transient:judgement-{uuid.uuid4()}",
            "observable": observable, "disposition": 2, "disposition_name": "Malicious", "source": "AbuseIPDB",
            "source_uri": check_url, "confidence": "Medium", "severity": "Medium", "priority": 85,
            "reason": ", ".join(table[str(c)]["title"] for c in report["categories"]),
            "valid_time": {"start_time": iso_micro(reported), "end_time": iso_micro(reported + timedelta(days=7))}})
        sighting = {
            "type": "sighting", "schema_version": SCHEMA_VERSION, "id": sighting_id, "count": 1,
            "title": "Reported to AbuseIPDB", "description": report["comment"], "confidence": "Medium",
            "internal": False, "source": "AbuseIPDB", "source_uri": check_url, "observables": [observable],
            "observed_time": {"start_time": iso_micro(reported), "end_time": iso_micro(reported)},
            "external_references": [{"source_name": "AbuseIPDB", "url": check_url}]}
        if check.get("domain"):
            sighting["relations"] = [{"origin": "AbuseIPDB Enrichment Module", "origin_uri": check_url,
                                      "relation": "Resolved_To", "source": {"type": "domain", "value": check["domain"]},
                                      "related": observable}]
        docs["sightings"].append(sighting)
        for category in report["categories"]:
            docs["relationships"].append({
                "type": "relationship", "schema_version": SCHEMA_VERSION, "id": f"transient:relationship-{uuid.uuid4()}",
                "relationship_type": "sighting-of", "source_ref": sighting_id,
                "target_ref": f"transient:indicator-{uuid.uuid5(uuid.NAMESPACE_X500, str(category))}"})
    seen = []
    for category in (c for report in reports for c in report["categories"]):
        if category in seen:
            continue
        seen.append(category)
        row = table[str(category)]
        docs["indicators"].append({
            "type": "indicator", "schema_version": SCHEMA_VERSION,
            "id": f"transient:indicator-{uuid.uuid5(uuid.NAMESPACE_X500, str(category))}", "producer": "AbuseIPDB",
            "confidence": "Medium", "valid_time": {}, "title": row["title"],
            "description": row["description"] or row["title"], "short_description": row["description"] or row["title"],
            "external_ids": [str(category)],
            "external_references": [{"source_name": "AbuseIPDB", "description": "AbuseIPDB attack categories",
                                     "url": "https://www.abuseipdb.com/categories", "external_id": str(category)}]})
    return docs


def create_app(vendor_origin: str, secret_key: str) -> Flask:
    app = Flask("handwritten")
    session = requests.Session()

    @app.route("/abuseipdb/observe/observables", methods=["POST"])
    def observe_observables():
        header = request.headers.get("Authorization", "")
        try:
            claims = jwt.decode(header.removeprefix("Bearer "), secret_key, algorithms=["HS256"],
                                audience=request.url_root.rstrip("/") + "/abuseipdb")
            key = claims["key"]
        except (jwt.PyJWTError, KeyError):
            return jsonify({"errors": [{"code": "authorization error", "message": "Authorization failed",
                                        "type": "fatal"}]})
        body = request.get_json(silent=True)
        if not isinstance(body, list) or not all(isinstance(o, dict) and o.get("type") and o.get("value") for o in body):
            return jsonify({"errors": [{"code": "invalid argument", "message": "Invalid JSON payload received.",
                                        "type": "fatal"}]})
        wanted = [{"type": o["type"].lower(), "value": o["value"]} for o in body if o["type"].lower() in ("ip", "ipv6")]
        if not wanted:
            return jsonify({"data": {}})
        table = kept_categories(session, vendor_origin)
        data = {}
        for observable in wanted:
            answer = session.get(f"{vendor_origin}/api/v2/check", headers={**HEADERS, "Key": key}, timeout=10,
                                 params={"ipAddress": observable["value"], "maxAgeInDays": 30, "verbose": "true"})
            answer.raise_for_status()
            for name, made in observe(observable, answer.json()["data"], table).items():
                if made:
                    data.setdefault(name, []).extend(made)
        return jsonify({"data": {name: {"count": len(docs), "docs": docs} for name, docs in data.items()}})

    return app
