"""Mint an HS256 token for a vendor's Cisco XDR module, and a SECRET_KEY when none is given.

    relay jwt [VENDOR] --url MODULE_URL [--claims FILE] [--secret-key KEY] [--days N | --no-expiry]
              [--stage STAGE] [--settings FILE] [--vendors DIR] [--json]

The token's claims are what the vendor's spec declares: every credential and setting is asked for
in turn (credentials of type api_key or password without echo on a terminal; an empty answer keeps
a setting's default), or the whole payload comes from `--claims FILE` (a JSON object). The key is
`--secret-key`, else the SECRET_KEY variable, else a new one: every module of one deployment is
signed with the same key, the one set as SECRET_KEY on its Lambda function.

The token is bound to its module: `aud` is the module's URL (`--url`, the deployment's URL that
`zappa deploy` prints plus `/<vendor>`), so a token minted for one vendor opens no other vendor of
the deployment, although they share SECRET_KEY and claim names. It expires after `--days` (365 by
default): a leaked token stops working, and a module whose token expired answers "The JWT has
expired" until a new one is minted and saved in the module. `--no-expiry` mints a token for the
module's whole life, as Cisco's generator does; then only a new SECRET_KEY revokes it (and with
it every token of the deployment).

Printed: the token, the key, the AWS console page where SECRET_KEY is set (from the stage in
zappa_settings.json), the module's URL and Cisco XDR's consoles (one a region), where the module is
added under Administration > Integrations (SecureX, its predecessor, took the same tokens).
Exit codes: 0 token printed, 2 usage errors (unknown vendor, unreadable claims, no answer).
"""
from __future__ import annotations

import getpass
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.commands.tokens import mint_hs256, new_secret_key

# Cisco XDR's consoles, one a region: modules are added under Administration > Integrations.
XDR_CONSOLES = {
    "us": "https://xdr.us.security.cisco.com",
    "eu": "https://xdr.eu.security.cisco.com",
    "apjc": "https://xdr.apjc.security.cisco.com",
}
SECRET_TYPES = ("api_key", "password")
DEFAULT_DAYS = 365
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "y", "1"), ("false", "no", "n", "0")


class JwtToolError(Exception):
    """A problem the user can fix: shown as `relay jwt: <message>`, exit code 2."""


# -- asking for the claims ----------------------------------------------------------------------

@dataclass(frozen=True)
class Prompter:
    """Where answers come from: `ask` for plain ones, `ask_secret` for credentials (no echo)."""

    ask: Callable[[str], str]
    ask_secret: Callable[[str], str]
    say: Callable[[str], None]


def terminal_prompter(stdin=None, stderr=None) -> Prompter:
    """input() and getpass on a terminal; lines of stdin (prompts on stderr) when piped."""
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr

    def say(text: str) -> None:
        print(text, file=stderr)

    if stdin.isatty():
        return Prompter(ask=input, ask_secret=getpass.getpass, say=say)

    def read_line(prompt: str) -> str:
        stderr.write(prompt)
        stderr.flush()
        line = stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\r\n")

    return Prompter(ask=read_line, ask_secret=read_line, say=say)


def ask_claims(spec, prompter: Prompter) -> dict:
    """Ask for each credential (again while a required one is empty) and each setting."""
    claims = {}
    for credential in spec.credentials:
        ask = prompter.ask_secret if credential.type in SECRET_TYPES else prompter.ask
        hint = "" if credential.required else ", optional"
        while True:
            answer = _answer(ask, f"{credential.label} ({credential.name}{hint}): ", credential.name).strip()
            if answer or not credential.required:
                break
            prompter.say(f"{credential.label} is required.")
        if answer:
            claims[credential.name] = answer
    for setting in spec.settings:
        while True:
            answer = _answer(prompter.ask, setting_prompt(setting), setting.name).strip()
            if not answer:
                break  # the relay uses the spec's default for a claim the token lacks
            try:
                claims[setting.name] = setting_value(setting, answer)
                break
            except ValueError as problem:
                prompter.say(str(problem))
    return claims


def _answer(ask, prompt: str, name: str) -> str:
    try:
        return ask(prompt)
    except EOFError:
        raise JwtToolError(f"no answer for {name}: the input ended") from None


def setting_prompt(setting) -> str:
    facts = []
    if setting.options:
        facts.append("one of " + ", ".join(setting.options))
    facts += setting.bounds()
    if setting.default is not None:
        facts.append(f"Enter for {json.dumps(setting.default)}")
    return f"{setting.label} ({setting.name}{'; ' + '; '.join(facts) if facts else ''}): "


def setting_value(setting, value):
    """A setting's claim value from an answer or a JSON value; ValueError says what is accepted."""
    if setting.type == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"{setting.name} is a whole number")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"{setting.name} is a whole number, not {value!r}") from None
        if setting.minimum is not None and number < setting.minimum:
            raise ValueError(f"{setting.name} is at least {setting.minimum}")
        if setting.maximum is not None and number > setting.maximum:
            raise ValueError(f"{setting.name} is at most {setting.maximum}")
        return number
    if setting.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in TRUE_WORDS + FALSE_WORDS:
            return value.lower() in TRUE_WORDS
        raise ValueError(f"{setting.name} is true or false")
    if not isinstance(value, str):
        raise ValueError(f"{setting.name} is text")
    if setting.options and value not in setting.options:
        raise ValueError(f"{setting.name} is one of {', '.join(setting.options)}")
    return value


def read_claims_file(path, spec) -> dict:
    """A JSON object of claims, checked against the spec: required credentials there, no strangers."""
    try:
        claims = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as problem:
        raise JwtToolError(f"cannot read claims from {path}: {problem}") from None
    if not isinstance(claims, dict):
        raise JwtToolError(f"{path} holds {type(claims).__name__}, not a JSON object of claims")
    declared = {item.name for item in spec.credentials + spec.settings} | {"aud"}
    unknown = sorted(set(claims) - declared)
    if unknown:
        raise JwtToolError(f"{path}: {spec.name} declares no claim {', '.join(unknown)} "
                           f"(it has: {', '.join(sorted(declared - {'aud'}))})")
    missing = [c.name for c in spec.required_credentials if claims.get(c.name) in (None, "")]
    if missing:
        raise JwtToolError(f"{path}: the credential(s) {', '.join(missing)} are missing")
    for credential in spec.credentials:
        if credential.name in claims and not isinstance(claims[credential.name], str):
            raise JwtToolError(f"{path}: {credential.name} is a string")
    try:
        for setting in spec.settings:
            if setting.name in claims:
                claims[setting.name] = setting_value(setting, claims[setting.name])
    except ValueError as problem:
        raise JwtToolError(f"{path}: {problem}") from None
    return claims


# -- the key, the token, the links ---------------------------------------------------------------

def resolve_secret_key(given: str | None, environ) -> tuple[str, bool]:
    """(key, made here?): the given key, else SECRET_KEY from the environment, else a new one."""
    key = given or environ.get("SECRET_KEY")
    if key:
        return key, False
    return new_secret_key(), True


def module_token(claims: dict, secret_key: str, audience: str, expires: int | None) -> str:
    """A token for one module: bound to its URL, expiring at `expires` (epoch seconds) unless None."""
    payload = {**claims, "aud": audience.rstrip("/")}
    if expires is not None:
        payload["exp"] = expires
    return mint_hs256(payload, secret_key)


def expiry(days: int | None, now: float | None = None) -> int | None:
    return None if days is None else int((time.time() if now is None else now) + days * 86400)


def deployment_stage(settings_path, stage: str) -> dict | None:
    """The stage's settings from zappa_settings.json, `extends` resolved; None when there is no file."""
    try:
        stages = json.loads(Path(settings_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as problem:
        raise JwtToolError(f"cannot read {settings_path}: {problem}") from None
    resolved, seen = {}, []
    while stage:
        if stage not in stages or stage in seen:
            known = ", ".join(sorted(stages))
            raise JwtToolError(f"{settings_path} has no usable stage {stage!r} (stages: {known})")
        seen.append(stage)
        resolved = {**stages[stage], **resolved}
        stage = stages[stage].get("extends")
    resolved.pop("extends", None)
    return resolved


def function_name(stage_settings: dict, stage: str) -> str:
    return f"{stage_settings.get('project_name', 'tr-relay-engine')}-{stage}"


def lambda_console_link(stage_settings: dict, stage: str) -> str:
    region = stage_settings.get("aws_region", "us-east-1")
    return (f"https://console.aws.amazon.com/lambda/home?region={region}#/functions/"
            f"{function_name(stage_settings, stage)}/edit/environment-variables?tab=configuration")


def module_url(stage_settings: dict | None, stage: str, vendor: str) -> str:
    """The module URL's shape; API Gateway picks <api-id> at the first deploy (`zappa status` shows it)."""
    settings = stage_settings or {}
    region = settings.get("aws_region", "us-east-1")
    root = f"https://<api-id>.execute-api.{region}.amazonaws.com/{stage}"
    served_at_root = settings.get("aws_environment_variables", {}).get("RELAY_VENDOR") == vendor
    return root if served_at_root else f"{root}/{vendor}"


# -- the command ---------------------------------------------------------------------------------

def add_arguments(parser) -> None:
    parser.add_argument("vendor", nargs="?", help="the vendor's spec name (asked for when the catalogue has several)")
    parser.add_argument("--claims", metavar="FILE", help="JSON object of claims instead of questions")
    parser.add_argument("--secret-key", metavar="KEY", help="sign with this key (default: $SECRET_KEY, else a new key)")
    parser.add_argument("--url", metavar="MODULE_URL",
                        help="the module's URL, which the token is bound to (claim `aud`): the URL `zappa deploy` "
                             "printed, plus /VENDOR")
    lifetime = parser.add_mutually_exclusive_group()
    lifetime.add_argument("--days", type=int, default=DEFAULT_DAYS,
                          help=f"the token expires after this many days (default: {DEFAULT_DAYS})")
    lifetime.add_argument("--no-expiry", action="store_true",
                          help="a token for the module's whole life (only a new SECRET_KEY revokes it)")
    parser.add_argument("--stage", default="dev", help="the zappa_settings.json stage (default: dev)")
    parser.add_argument("--settings", default="zappa_settings.json", metavar="FILE",
                        help="Zappa settings for the links (default: ./zappa_settings.json)")
    parser.add_argument("--vendors", help="folder of vendor specs (default: ./vendors)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args, prompter: Prompter | None = None, environ=None, out=None) -> int:
    from engine.commands.cli import _specs
    out = out or sys.stdout
    environ = os.environ if environ is None else environ
    prompter = prompter or terminal_prompter()
    try:
        spec = choose_vendor(_specs(args.vendors, [args.vendor] if args.vendor else []), args.vendor, prompter)
        stage = deployment_stage(args.settings, args.stage)
        if args.days <= 0 and not args.no_expiry:
            raise JwtToolError("--days is a number of days, 1 or more (or --no-expiry)")
        claims = read_claims_file(args.claims, spec) if args.claims else {}
        audience = args.url or claims.pop("aud", None)  # checked before any question is asked
        if not isinstance(audience, str) or not audience.startswith(("https://", "http://")) \
                or "<api-id>" in audience:
            raise JwtToolError("the token is bound to its module's URL: give --url "
                               f"{module_url(stage, args.stage, spec.name)} with the API id that "
                               f"`zappa deploy {args.stage}` (or `zappa status {args.stage}`) printed")
        claims = claims or ask_claims(spec, prompter)
    except JwtToolError as problem:
        print(f"relay jwt: {problem}", file=sys.stderr)
        return 2
    secret_key, made_here = resolve_secret_key(args.secret_key, environ)
    expires = None if args.no_expiry else expiry(args.days)
    result = {
        "vendor": spec.name,
        "token": module_token(claims, secret_key, audience, expires),
        "expires": None if expires is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
        "secret_key": secret_key,
        "secret_key_is_new": made_here,
        "function": function_name(stage, args.stage) if stage else None,
        "lambda_console": lambda_console_link(stage, args.stage) if stage else None,
        "module_url": audience.rstrip("/"),
        "xdr": dict(XDR_CONSOLES),
    }
    print(json.dumps(result, indent=2) if args.json else render(result), file=out)
    return 0


def choose_vendor(specs: dict, name: str | None, prompter: Prompter):
    if not specs:
        raise JwtToolError("the catalogue has no vendor specs")
    if name is None and len(specs) == 1:
        name = next(iter(specs))
    while name is None:
        name = _answer(prompter.ask, f"Vendor ({', '.join(sorted(specs))}): ", "the vendor").strip() or None
    if name not in specs:
        raise JwtToolError(f"no vendor {name!r}; the catalogue has: {', '.join(sorted(specs))}")
    return specs[name]


def render(result: dict) -> str:
    lasts = f"expires {result['expires']}" if result["expires"] else "never expires"
    lines = [f"Token for the {result['vendor']} module at {result['module_url']} ({lasts}; Cisco XDR sends it as "
             "`Authorization: Bearer ...`):", result["token"], ""]
    if result["secret_key_is_new"]:
        lines.append("SECRET_KEY (new; set it on the Lambda function and reuse it for every further module):")
    else:
        lines.append("SECRET_KEY (the one given; the function must have the same):")
    lines += [result["secret_key"], ""]
    if result["lambda_console"]:
        lines += [f"Set SECRET_KEY on {result['function']} (Configuration > Environment variables):",
                  "  " + result["lambda_console"], ""]
    lines += ["The module's URL (the token opens it and no other):", "  " + result["module_url"], "",
              "Add the module in Cisco XDR, as an administrator: Administration > Integrations, the module type",
              "(`relay module-type`, see aws/HOWTO.md), then this URL and token:"]
    lines += [f"  {region.upper():<5} {link}" for region, link in result["xdr"].items()]
    return "\n".join(lines)
