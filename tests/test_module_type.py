"""`relay module-type`: the SecureX module type of a spec, and SecureX's side of its contract.

Besides the document's shape, two round trips play SecureX: the values typed into the module's
`configuration_spec` fields become token claims with `custom_` stripped, the token's `aud` is
`properties.url`, and it is signed as `properties` say (HS256 with `configuration-token-key`, or
RS256 with keys served from `custom_jwks_host`). The relay must accept those tokens.
"""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import jwt
import pytest
from jwt.algorithms import RSAAlgorithm

from engine.serving.app import create_app
from engine.serving.auth import DEFAULT_JWKS_HOSTS
from engine.commands.cli import build_parser
from engine.serving.config import RelayConfig
from engine.spec.load import check_file, load_spec
from engine.commands.module_type import (JWKS_HOST_BY_REGION, capabilities, configuration_spec, hs256_properties,
                                jwks_properties, module_type, run, supported_apis)
from engine.serving.runtime import Runtime
from engine.commands.standin import StandInVendor, routes_from_examples
from engine.commands.starter import write_starter
from tests.support.tls import JwksServer, TestPki, new_rsa_key, trusting_session

ROOT = Path(__file__).resolve().parent.parent
URL = "https://a1b2c3.execute-api.us-east-1.amazonaws.com/dev/abuseipdb"
SECRET = "module-type-test-secret-0123456789abcdef"
STARTER_LIKE = """
spec_version: 1
name: acme
title: Acme
version: 1.0.0
description: Looks up IP addresses in Acme.
credentials:
  key: {label: API key}
observable_types: [ip]
http:
  base_url: https://api.acme.example
refer:
  token: none
  references:
    - id: "ref-acme-{{ observable.value }}"
      title: Browse
      description: Browse it on Acme
      url: "https://acme.example/ip/{{ observable.value }}"
      categories: [Browse, Acme]
"""


def parse(*argv):
    return build_parser().parse_args(["module-type", *argv])


def securex_token(document: dict, typed: dict, key, algorithm: str, headers=None) -> str:
    """What SecureX sends: each filled `custom_X` field as claim X, the jwks host, aud = the module URL."""
    claims = {field["key"][len("custom_"):]: typed[field["key"]] for field in document["configuration_spec"]
              if field["key"] in typed}
    properties = document["properties"]
    if "custom_jwks_host" in properties:
        claims["jwks_host"] = properties["custom_jwks_host"]
    claims["aud"] = properties.get("configuration-token-audience", properties["url"])
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def test_the_abuseipdb_module_type(abuseipdb):
    document = module_type(abuseipdb, URL, hs256_properties(SECRET))
    assert list(document) == ["title", "default_name", "short_description", "description", "tips",
                              "external_references", "configuration_spec", "capabilities", "properties"]
    assert document["title"] == document["default_name"] == "AbuseIPDB"
    assert document["external_references"] == [{"label": "AbuseIPDB API", "link": "https://docs.abuseipdb.com/"}]
    assert document["configuration_spec"] == [
        {"key": "custom_key", "type": "api_key", "label": "API key", "required": True},
        {"key": "custom_CTR_ENTITIES_LIMIT", "type": "integer", "label": "Entities limit", "required": False,
         "default_value": 100, "tooltip": "at least 1, default 100"}]
    assert [c["id"] for c in document["capabilities"]] == ["health", "deliberate", "observe"]
    assert document["properties"] == {
        "url": URL, "supported-apis": ["health", "deliberate/observables", "observe/observables"],
        "auth-type": "configuration-token", "configuration-token-alg": "HS256", "configuration-token-key": SECRET}


# What XDR's IROH API takes when a module type is created (NewModuleTypeParams, no other key).
IROH_KEYS = {"title", "default_name", "short_description", "description", "tips", "external_references",
             "configuration_spec", "capabilities", "properties", "logo", "logo_dark", "product_categories",
             "flags", "app_link", "max_nb_instances", "enabled"}


def test_every_vendor_makes_a_module_type_xdr_takes_without_engine_words():
    for path in sorted((ROOT / "vendors").glob("*.yaml")):
        document = module_type(load_spec(path), URL, hs256_properties(SECRET))
        assert set(document) <= IROH_KEYS, path.name
        shown = json.dumps({key: document[key] for key in ("short_description", "description", "tips")})
        for internal in (r"vendors/", r"\.yaml\b", r"\bspecs?\b", r"relay engine", r"SecureX"):
            assert not re.search(internal, shown), (path.name, internal)


def test_the_spec_says_how_the_module_looks(write_spec, tmp_path):
    logo = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><circle cx="4" cy="4" r="3"/></svg>'
    (tmp_path / "acme.svg").write_bytes(logo)
    spec = load_spec(write_spec(STARTER_LIKE + """
module:
  short_description: Acme reputation for IPs.
  tips: "Find the key under **Settings > API** in Acme."
  logo: acme.svg
  product_categories: [threat-intel, edr]
"""))
    document = module_type(spec, URL, hs256_properties(SECRET))
    assert document["short_description"] == "Acme reputation for IPs."
    assert document["tips"] == "Find the key under **Settings > API** in Acme."
    assert document["logo"] == "data:image/svg+xml;base64," + base64.b64encode(logo).decode()
    assert document["product_categories"] == [{"id": "threat-intel", "description": "Threat Intelligence"},
                                              {"id": "edr", "description": "Endpoint Detection and Response"}]


@pytest.mark.parametrize(("module", "message"), [
    ("module: {logo: ../outside.svg}", "../outside.svg is outside the spec's folder"),
    ("module: {logo: missing.png}", "no such file: missing.png"),
    ("module: {logo: big.png}", "big.png is 70000 bytes; a logo is at most 65536"),
    ("module: {product_categories: [threat-intelligence]}", "'threat-intelligence' is not allowed here"),
    ("module: {logo: acme.gif}", "expected text matching"),
])
def test_lint_checks_the_module_look(write_spec, tmp_path, module, message):
    (tmp_path / "big.png").write_bytes(b"\x89PNG" + bytes(69996))
    (tmp_path.parent / "outside.svg").write_text("<svg/>")
    _, problems = check_file(write_spec(STARTER_LIKE + module + "\n"))
    assert any(message in problem.message for problem in problems), [p.message for p in problems]


def test_field_types_follow_the_declared_types(write_spec):
    text = (ROOT / "vendors" / "abuseipdb.yaml").read_text().replace(
        "credentials:\n  key: {label: API key, type: api_key}\n",
        "credentials:\n  key: {label: API key, type: api_key}\n  user: {label: User, type: string, tooltip: Login}\n"
        "  password: {label: Password, type: password, required: false}\n").replace(
        "settings:\n", "settings:\n  VERBOSE: {label: Verbose, type: boolean, default: false}\n"
                       "  REGION: {label: Region, type: string, options: [us, eu]}\n"
                       "  NOTE: {label: Note, type: string}\n")
    path = write_spec(text, "abuseipdb")
    shutil.copytree(ROOT / "vendors" / "examples", path.parent / "examples")
    fields = {field["key"]: field for field in configuration_spec(load_spec(path))}
    assert {key: field["type"] for key, field in fields.items()} == {
        "custom_key": "api_key", "custom_user": "string", "custom_password": "password", "custom_VERBOSE": "boolean",
        "custom_REGION": "options", "custom_NOTE": "string", "custom_CTR_ENTITIES_LIMIT": "integer"}
    assert fields["custom_password"]["required"] is False and fields["custom_user"]["tooltip"] == "Login"
    assert fields["custom_REGION"]["options"] == [{"value": "us", "label": "us"}, {"value": "eu", "label": "eu"}]
    assert fields["custom_VERBOSE"]["default_value"] is False


def test_capabilities_and_apis_are_the_routes_the_spec_declares(tmp_path):
    spec_path, _ = write_starter("acme", tmp_path)
    every = load_spec(spec_path)
    assert supported_apis(every) == ["health", "deliberate/observables", "observe/observables", "refer/observables"]
    assert [c["id"] for c in capabilities(every)] == ["health", "deliberate", "observe", "refer"]
    spec_path.write_text(spec_path.read_text().replace("health:\n  steps: [probe]\n", "").replace(
        "    probe: {file: examples/acme/lookup.json}\n", ""))
    without_health = load_spec(spec_path)
    assert "health" not in supported_apis(without_health)
    assert all(c["description"] and "Acme" in c["description"] for c in capabilities(without_health))


def test_jwks_properties_name_a_host_the_relay_trusts_by_default():
    assert set(JWKS_HOST_BY_REGION.values()) == set(DEFAULT_JWKS_HOSTS)
    assert jwks_properties(JWKS_HOST_BY_REGION["eu"]) == {
        "auth-type": "configuration-token", "configuration-token-alg": "RS256",
        "custom_jwks_host": "visibility.eu.amp.cisco.com"}
    assert jwks_properties("visibility.amp.cisco.com", "https://relay.test/x/")["configuration-token-audience"] == \
        "https://relay.test/x"


def test_securex_tokens_made_from_an_hs256_module_type_open_the_relay(abuseipdb):
    document = module_type(abuseipdb, URL, hs256_properties(SECRET))
    properties = document["properties"]
    token = securex_token(document, {"custom_key": "typed-in-securex", "custom_CTR_ENTITIES_LIMIT": 2},
                          properties["configuration-token-key"], properties["configuration-token-alg"])
    with StandInVendor(routes_from_examples(abuseipdb)) as stand_in:
        config = RelayConfig(auth_mode="hs256", secret_key=SECRET, upstreams={"ABUSEIPDB": stand_in.origin})
        client = create_app({"abuseipdb": abuseipdb}, config).test_client()
        answer = client.post("/abuseipdb/observe/observables", base_url=URL.rsplit("/abuseipdb", 1)[0],
                             headers={"Authorization": f"Bearer {token}"},
                             json=[{"type": "ip", "value": "192.0.2.45"}]).get_json()
    assert answer["data"]["judgements"]["count"] == 2
    assert {c.headers["Key"] for c in stand_in.received if c.path == "/api/v2/check"} == {"typed-in-securex"}


def test_securex_tokens_made_from_a_jwks_module_type_open_the_relay(abuseipdb, tmp_path):
    pki, signing_key = TestPki.create(tmp_path), new_rsa_key()
    served = {"keys": [{**RSAAlgorithm.to_jwk(signing_key.public_key(), as_dict=True), "kid": "securex-1",
                        "use": "sig", "alg": "RS256"}]}
    with JwksServer(pki, served) as jwks_server, StandInVendor(routes_from_examples(abuseipdb)) as stand_in:
        document = module_type(abuseipdb, URL, jwks_properties(jwks_server.host))
        token = securex_token(document, {"custom_key": "typed-in-securex"}, signing_key,
                              document["properties"]["configuration-token-alg"], {"kid": "securex-1"})
        config = RelayConfig(auth_mode="jwks", jwks_hosts=(jwks_server.host,), upstreams={"ABUSEIPDB": stand_in.origin})
        client = create_app({"abuseipdb": abuseipdb}, config, Runtime(jwks_session=trusting_session(pki.ca_path)))
        answer = client.test_client().post("/abuseipdb/health", base_url=URL.rsplit("/abuseipdb", 1)[0],
                                           headers={"Authorization": f"Bearer {token}"}).get_json()
    assert answer == {"data": {"status": "ok"}}


def test_the_command_picks_the_relays_mode_from_the_key(capsys):
    assert run(parse("abuseipdb", "--url", URL), environ={"SECRET_KEY": SECRET}) == 0
    properties = json.loads(capsys.readouterr().out)["properties"]
    assert properties["configuration-token-key"] == SECRET
    assert properties["configuration-token-audience"] == URL  # the module's tokens open this module only
    assert run(parse("abuseipdb", "--url", URL, "--region", "apjc"), environ={}) == 0
    properties = json.loads(capsys.readouterr().out)["properties"]
    assert properties["configuration-token-alg"] == "RS256"
    assert properties["custom_jwks_host"] == "visibility.apjc.amp.cisco.com"


def test_hs256_without_a_key_makes_one_and_says_so():
    out, err = io.StringIO(), io.StringIO()
    assert run(parse("abuseipdb", "--auth", "hs256", "--url", URL), environ={}, out=out, err=err) == 0
    key = json.loads(out.getvalue())["properties"]["configuration-token-key"]
    assert len(key) >= 43 and f"new SECRET_KEY {key}" in err.getvalue()


def test_without_a_url_the_deployments_shape_is_used_and_flagged():
    out, err = io.StringIO(), io.StringIO()
    assert run(parse("abuseipdb", "--stage", "abuseipdb", "--settings", str(ROOT / "zappa_settings.json")),
               environ={}, out=out, err=err) == 0
    assert json.loads(out.getvalue())["properties"]["url"] == \
        "https://<api-id>.execute-api.us-east-1.amazonaws.com/abuseipdb"
    assert "replace <api-id>" in err.getvalue()


def test_an_unknown_vendor_is_a_usage_error():
    err = io.StringIO()
    assert run(parse("nosuch"), environ={}, out=io.StringIO(), err=err) == 2
    assert "no vendor 'nosuch'" in err.getvalue()
