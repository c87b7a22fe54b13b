"""`relay jwt`: the claims come from the spec, the token opens the relay, the key and links are right.

Answers are given through a Prompter (what the terminal would type) or a pipe into the real
command; the tokens are checked by the relay itself against a stand-in vendor.
"""
from __future__ import annotations

import dataclasses
import io
import json
import shutil
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from engine.serving.app import create_app
from engine.commands.cli import build_parser
from engine.serving.config import RelayConfig
from engine.commands.jwt_tool import (JwtToolError, Prompter, ask_claims, deployment_stage, lambda_console_link, module_url,
                             read_claims_file, resolve_secret_key, run)
from engine.spec.load import load_spec, load_specs
from engine.commands.standin import StandInVendor, routes_from_examples

ROOT = Path(__file__).resolve().parent.parent


class Typist:
    """Answers prompts in order and remembers which prompt went to which kind of input."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked, self.asked_secretly, self.told = [], [], []

    def prompter(self) -> Prompter:
        return Prompter(ask=lambda prompt: self._answer(self.asked, prompt),
                        ask_secret=lambda prompt: self._answer(self.asked_secretly, prompt),
                        say=self.told.append)

    def _answer(self, log, prompt):
        log.append(prompt)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)


def parse(*argv):
    return build_parser().parse_args(["jwt", *argv])


@pytest.fixture
def spec_with_every_kind(write_spec):
    text = (ROOT / "vendors" / "abuseipdb.yaml").read_text().replace(
        "credentials:\n  key: {label: API key, type: api_key}\n",
        "credentials:\n  key: {label: API key, type: api_key}\n  user: {label: User name, type: string}\n"
        "  password: {label: Password, type: password, required: false}\n").replace(
        "settings:\n", "settings:\n  VERBOSE: {label: Verbose, type: boolean, default: false}\n"
                       "  REGION: {label: Region, type: string, options: [us, eu], default: us}\n")
    path = write_spec(text, "abuseipdb")
    shutil.copytree(ROOT / "vendors" / "examples", path.parent / "examples")
    return load_spec(path)


def test_each_declared_credential_and_setting_is_asked_for_secrets_without_echo(spec_with_every_kind):
    typist = Typist("", "api-key-1", "alice", "", "yes", "eu", "abc", "0", "25")
    claims = ask_claims(spec_with_every_kind, typist.prompter())
    assert claims == {"key": "api-key-1", "user": "alice", "VERBOSE": True, "REGION": "eu", "CTR_ENTITIES_LIMIT": 25}
    assert [p.split(" (")[0] for p in typist.asked_secretly] == ["API key", "API key", "Password"]
    assert [p.split(" (")[0] for p in typist.asked] == ["User name", "Verbose", "Region", "Entities limit",
                                                       "Entities limit", "Entities limit"]
    assert typist.told == ["API key is required.", "CTR_ENTITIES_LIMIT is a whole number, not 'abc'",
                           "CTR_ENTITIES_LIMIT is at least 1"]
    assert "Enter for 100" in typist.asked[-1] and "one of us, eu" in typist.asked[2]


def test_an_empty_answer_leaves_a_setting_to_its_default(abuseipdb):
    assert ask_claims(abuseipdb, Typist("k", "").prompter()) == {"key": "k"}


def test_input_that_ends_before_the_questions_is_a_usage_error(abuseipdb):
    with pytest.raises(JwtToolError, match="no answer for key"):
        ask_claims(abuseipdb, Typist().prompter())


def test_a_claims_file_is_checked_against_the_spec(abuseipdb, tmp_path):
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({"key": "k", "CTR_ENTITIES_LIMIT": "40"}))
    assert read_claims_file(path, abuseipdb) == {"key": "k", "CTR_ENTITIES_LIMIT": 40}
    for content, problem in (({"Key": "k"}, "declares no claim Key"), ({"CTR_ENTITIES_LIMIT": 5}, "key are missing"),
                             ({"key": 7}, "key is a string"), ({"key": "k", "CTR_ENTITIES_LIMIT": 0}, "at least 1"),
                             ([1, 2], "not a JSON object")):
        path.write_text(json.dumps(content))
        with pytest.raises(JwtToolError, match=problem):
            read_claims_file(path, abuseipdb)


def test_the_key_is_the_one_given_else_the_environments_else_new():
    assert resolve_secret_key("given", {"SECRET_KEY": "env"}) == ("given", False)
    assert resolve_secret_key(None, {"SECRET_KEY": "env"}) == ("env", False)
    key, new = resolve_secret_key(None, {})
    assert new and len(key) >= 43 and key != resolve_secret_key(None, {})[0]


MODULE_URL = "https://relay.test/dev/abuseipdb"


def test_the_printed_token_opens_the_relay_and_carries_the_typed_credential(abuseipdb, capsys):
    out = io.StringIO()
    assert run(parse("abuseipdb", "--json", "--url", MODULE_URL), prompter=Typist("typed-key", "3").prompter(),
               environ={}, out=out) == 0
    printed = json.loads(out.getvalue())
    assert printed["secret_key_is_new"] is True
    claims = jwt.decode(printed["token"], printed["secret_key"], algorithms=["HS256"], audience=MODULE_URL)
    assert claims.pop("exp") - time.time() == pytest.approx(365 * 86400, abs=60)
    assert claims == {"key": "typed-key", "CTR_ENTITIES_LIMIT": 3, "aud": MODULE_URL}

    with StandInVendor(routes_from_examples(abuseipdb)) as stand_in:
        config = RelayConfig(auth_mode="hs256", secret_key=printed["secret_key"],
                             upstreams={"ABUSEIPDB": stand_in.origin})
        client = create_app({"abuseipdb": abuseipdb}, config).test_client()
        headers = {"Authorization": "Bearer " + printed["token"]}
        assert client.post("/abuseipdb/health", headers=headers, base_url="https://relay.test/dev").get_json() == \
            {"data": {"status": "ok"}}
        answer = client.post("/abuseipdb/observe/observables", headers=headers, base_url="https://relay.test/dev",
                             json=[{"type": "ip", "value": "192.0.2.45"}]).get_json()
    assert answer["data"]["judgements"]["count"] == 3  # the typed Entities limit
    assert {call.headers["Key"] for call in stand_in.received if call.path == "/api/v2/check"} == {"typed-key"}


def test_a_token_bound_to_the_module_url_opens_it_and_nothing_else(abuseipdb):
    """Every vendor of a deployment shares SECRET_KEY and the claim `key`: only `aud` keeps an
    AbuseIPDB token (and its key) away from another vendor's routes."""
    out = io.StringIO()
    run(parse("abuseipdb", "--json", "--secret-key", "k" * 40, "--url", "https://relay.test/dev/abuseipdb/"),
        prompter=Typist("key-1", "").prompter(), environ={}, out=out)
    headers = {"Authorization": "Bearer " + json.loads(out.getvalue())["token"]}
    other = dataclasses.replace(abuseipdb, name="other")
    with StandInVendor(routes_from_examples(abuseipdb)) as stand_in:
        config = RelayConfig(auth_mode="hs256", secret_key="k" * 40,
                             upstreams={"ABUSEIPDB": stand_in.origin, "OTHER": stand_in.origin})
        client = create_app({"abuseipdb": abuseipdb, "other": other}, config).test_client()
        here = client.post("/abuseipdb/health", base_url="https://relay.test/dev", headers=headers).get_json()
        other_vendor = client.post("/other/health", base_url="https://relay.test/dev", headers=headers).get_json()
        elsewhere = client.post("/abuseipdb/health", base_url="https://relay.test/prod", headers=headers).get_json()
    assert here == {"data": {"status": "ok"}}
    for refused in (other_vendor, elsewhere):
        assert refused["errors"][0]["message"] == "Authorization failed: Wrong configuration-token-audience"
    assert len(stand_in.received) == 1  # the key went to the vendor it was minted for, only


@pytest.mark.parametrize("url", [None, "https://<api-id>.execute-api.us-east-1.amazonaws.com/dev/abuseipdb",
                                 "relay.test/dev/abuseipdb"])
def test_a_token_needs_the_module_url_before_any_question(url, capsys):
    typist = Typist("never-asked")
    arguments = ("abuseipdb",) + (("--url", url) if url else ())
    assert run(parse(*arguments), prompter=typist.prompter(), environ={}, out=io.StringIO()) == 2
    assert "give --url https://<api-id>.execute-api.us-east-1.amazonaws.com/dev/abuseipdb" in capsys.readouterr().err
    assert typist.answers == ["never-asked"]


def test_a_token_for_the_modules_whole_life_has_no_expiry():
    out = io.StringIO()
    run(parse("abuseipdb", "--json", "--secret-key", "k" * 40, "--url", MODULE_URL, "--no-expiry"),
        prompter=Typist("key-1", "").prompter(), environ={}, out=out)
    printed = json.loads(out.getvalue())
    assert printed["expires"] is None
    assert "exp" not in jwt.decode(printed["token"], "k" * 40, algorithms=["HS256"], audience=MODULE_URL)


def test_links_follow_the_stage_of_the_zappa_settings():
    dev = deployment_stage(ROOT / "zappa_settings.json", "dev")
    single = deployment_stage(ROOT / "zappa_settings.json", "abuseipdb")
    assert single["runtime"] == dev["runtime"] and single["aws_environment_variables"]["RELAY_VENDOR"] == "abuseipdb"
    assert lambda_console_link(dev, "dev") == ("https://console.aws.amazon.com/lambda/home?region=us-east-1#/functions/"
                                               "tr-relay-engine-dev/edit/environment-variables?tab=configuration")
    assert module_url(dev, "dev", "abuseipdb") == "https://<api-id>.execute-api.us-east-1.amazonaws.com/dev/abuseipdb"
    assert module_url(single, "abuseipdb", "abuseipdb") == \
        "https://<api-id>.execute-api.us-east-1.amazonaws.com/abuseipdb"
    assert deployment_stage(ROOT / "no-such-settings.json", "dev") is None
    with pytest.raises(JwtToolError, match="no usable stage 'prod'"):
        deployment_stage(ROOT / "zappa_settings.json", "prod")


def test_the_text_output_shows_token_key_console_and_xdr(abuseipdb):
    out = io.StringIO()
    run(parse("abuseipdb", "--secret-key", "kept-key-" + "x" * 30, "--url", MODULE_URL),
        prompter=Typist("k", "").prompter(), environ={}, out=out)
    text = out.getvalue()
    assert "SECRET_KEY (the one given" in text and "kept-key-" in text
    assert "tr-relay-engine-dev/edit/environment-variables" in text
    assert "Administration > Integrations" in text
    for console in ("https://xdr.us.security.cisco.com", "https://xdr.eu.security.cisco.com",
                    "https://xdr.apjc.security.cisco.com"):
        assert console in text


def test_an_unknown_vendor_is_a_usage_error(capsys):
    assert run(parse("nosuch"), prompter=Typist().prompter(), environ={}, out=io.StringIO()) == 2
    assert "no vendor 'nosuch'" in capsys.readouterr().err


def test_the_command_reads_answers_from_a_pipe(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    done = subprocess.run([sys.executable, "-m", "engine.commands.cli", "jwt", "abuseipdb", "--json", "--url",
                           MODULE_URL, "--no-expiry"], cwd=ROOT, env=env, input="piped-key\n\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert jwt.decode(printed["token"], printed["secret_key"], algorithms=["HS256"], audience=MODULE_URL) == \
        {"key": "piped-key", "aud": MODULE_URL}
    assert "API key (key): " in done.stderr  # prompts go to stderr, the JSON alone to stdout
    assert load_specs(ROOT / "vendors")["abuseipdb"].name == printed["vendor"]


def test_with_several_vendors_the_tool_asks_which(capsys):
    out = io.StringIO()
    assert run(parse("--secret-key", "kept-key-" + "x" * 30, "--url", "https://relay.test/dev/shodan"),
               prompter=Typist("shodan").prompter(),
               environ={}, out=out) == 0
    assert "Token for the shodan module" in out.getvalue()
