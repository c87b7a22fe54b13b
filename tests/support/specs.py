"""The head of the small made-up specs that tests of one construct write: an "acme" vendor with one
API key sent in a header, so that a test shows only the part it is about."""
from __future__ import annotations


def acme_head(types: str = "ip", base_url: str = "https://api.acme.test/v1") -> str:
    return f"""
spec_version: 1
name: acme
title: Acme
version: 1.0.0
credentials:
  key: {{label: API key}}
observable_types: [{types}]
ctim_schema_version: 1.3.29
http:
  base_url: {base_url}
  auth:
    headers: {{X-Key: "{{{{ credentials.key }}}}"}}
"""
