"""Write a commented starter spec: relay new NAME.

Creates vendors/NAME.yaml and vendors/examples/NAME/lookup.json: a small, complete integration (an
API key header, one lookup per observable, an error table, a verdict, a judgement, a sighting and a
refer link) that lints clean and runs with `relay try NAME ip 192.0.2.10 --replay examples`, ready to
be bent into the real vendor's shape.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")

SPEC = """\
# {title}: a starter spec written by `relay new`. Replace every part with the vendor's real API;
# the guide is docs/spec-language.md, every key is in docs/spec-reference.md.
spec_version: 1
name: {name}
title: {title}
version: 0.1.0
description: Looks observables up in {title}.
links:
  - {{label: {title} API documentation, url: "https://docs.{name}.example/api"}}

# Claims the XDR token carries. Credentials are required and never logged.
credentials:
  api_key: {{label: API key, type: api_key}}
settings:
  CTR_ENTITIES_LIMIT: {{label: Entities limit, type: integer, default: 100, minimum: 1}}

observable_types: [ip, domain]
ctim_schema_version: 1.3.29

http:
  base_url: https://api.{name}.example/v1
  timeout: 10
  headers: {{Accept: application/json}}
  auth:
    headers: {{X-Api-Key: "{{{{ credentials.api_key }}}}"}}
  # First match wins; without a match, 2xx is a success and anything else an `unknown` error.
  errors:
    - when: {{status: [401, 403]}}
      error: {{code: authorization error, message: "Authorization failed: {{{{ body.message }}}}"}}
    - when: {{status: 404}}
      skip: true  # the vendor has never seen it: no data, no error
    - when: {{status: 429}}
      error: {{code: too many requests, message: "{title} rate limit reached."}}

steps:
  lookup:
    url: /lookup
    query: {{type: "{{{{ observable.type }}}}", value: "{{{{ observable.value }}}}"}}
  # /health has no observable: it asks something fixed that proves the key works (the vendor's
  # account or status endpoint when it has one; here, a known address).
  probe:
    url: /lookup
    query: {{type: ip, value: 192.0.2.1}}

tables:
  disposition_by_score:
    ranges:
      - {{from: 0, to: 29, value: Clean}}
      - {{from: 30, to: 69, value: Suspicious}}
      - {{from: 70, to: 100, value: Malicious}}

health:
  steps: [probe]

# Parts written once and used by several routes with {{use: NAME}}.
define:
  verdict:
    let:
      verdict: "{{{{ lookup('disposition_by_score', lookup.score) }}}}"
    observable: "{{{{ observable }}}}"
    disposition: "{{{{ disposition(verdict) }}}}"
    disposition_name: "{{{{ verdict }}}}"
    valid_time:
      start_time: "{{{{ now() }}}}"
      end_time: "{{{{ time_add(now(), 'P7D') }}}}"

deliberate:
  steps: [lookup]
  verdicts: [{{use: verdict}}]

observe:
  steps: [lookup]
  verdicts: [{{use: verdict}}]
  judgements:
    - id: "transient:judgement-{{{{ uuid4() }}}}"
      observable: "{{{{ observable }}}}"
      disposition: "{{{{ disposition(lookup('disposition_by_score', lookup.score)) }}}}"
      disposition_name: "{{{{ lookup('disposition_by_score', lookup.score) }}}}"
      source: {title}
      source_uri: "https://app.{name}.example/{{{{ observable.type }}}}/{{{{ observable.value }}}}"
      confidence: Medium
      severity: Medium
      priority: 85
      reason: "{title} score {{{{ lookup.score }}}}"
      valid_time: {{start_time: "{{{{ now() }}}}", end_time: "{{{{ time_add(now(), 'P7D') }}}}"}}
  sightings:
    # One sighting per event the vendor reports, newest first, at most CTR_ENTITIES_LIMIT.
    - for each: event in lookup.events
      sort: event.seen_at
      order: desc
      limit: settings.CTR_ENTITIES_LIMIT
      id: "transient:sighting-{{{{ uuid4() }}}}"
      count: 1
      confidence: Medium
      title: Seen by {title}
      description: "{{{{ event.summary }}}}"
      source: {title}
      observables: ["{{{{ observable }}}}"]
      observed_time: {{start_time: "{{{{ event.seen_at }}}}", end_time: "{{{{ event.seen_at }}}}"}}

refer:
  references:
    - id: "ref-{name}-detail-{{{{ observable.type }}}}-{{{{ url_quote(observable.value) }}}}"
      title: Open in {title}
      description: Look this {{{{ observable.type }}}} up in {title}
      url: "https://app.{name}.example/{{{{ observable.type }}}}/{{{{ url_quote(observable.value) }}}}"
      categories: [{title}, Browse]

# Answers written from the vendor's documentation: relay demo, relay try --replay examples and the
# tests use them offline.
examples:
  observable: {{type: ip, value: 192.0.2.10}}
  answers:
    lookup: {{file: examples/{name}/lookup.json}}
    probe: {{file: examples/{name}/lookup.json}}
"""

EXAMPLE = """\
{
  "value": "192.0.2.10",
  "score": 74,
  "events": [
    {"seen_at": "2026-11-20T08:00:00Z", "summary": "Scanned TCP 22 across many hosts"},
    {"seen_at": "2026-11-26T17:30:00Z", "summary": "Reported for SSH brute force"}
  ]
}
"""


def add_arguments(parser) -> None:
    parser.add_argument("name", help="vendor name: lower case letters, digits and -")
    parser.add_argument("--title", help="human name (default: from NAME)")
    parser.add_argument("--vendors", default="vendors", help="folder to write into (default: vendors)")


def run(args) -> int:
    try:
        spec_path, example_path = write_starter(args.name, Path(args.vendors), args.title)
    except ValueError as problem:
        print(f"relay new: {problem}", file=sys.stderr)
        return 2
    print(f"wrote {spec_path} and {example_path}")
    print(f"next: relay lint {spec_path} && relay try {args.name} ip 192.0.2.10 --replay examples")
    return 0


def write_starter(name: str, vendors: Path, title: str | None = None) -> tuple[Path, Path]:
    if not NAME.match(name):
        raise ValueError(f"{name!r} is not a vendor name: use lower case letters, digits and '-'")
    spec_path = vendors / f"{name}.yaml"
    if spec_path.exists():
        raise ValueError(f"{spec_path} exists; choose another name or remove it")
    title = title or name.replace("-", " ").title()
    example_path = vendors / "examples" / name / "lookup.json"
    example_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(SPEC.format(name=name, title=title))
    example_path.write_text(EXAMPLE)
    return spec_path, example_path
