"""Print the Cisco XDR module type JSON of a vendor, derived from its spec.

    relay module-type VENDOR [--url URL] [--auth hs256|jwks] [--secret-key KEY]
                             [--region us|eu|apjc] [--audience URL] [--stage STAGE] [--settings FILE]

What Cisco XDR (and SecureX before it: the relay API is the same) needs to offer the vendor as a
module: its title, descriptions, tips, logo and categories (the spec's `module:` section), one
`configuration_spec` field per credential and setting (key `custom_<CLAIM>`: XDR puts the value in
the configuration token as claim <CLAIM>), the capabilities and supported APIs of the routes the
spec declares, and the auth properties of the relay's mode:

- hs256: `configuration-token` signed HS256 with `configuration-token-key`, the relay's SECRET_KEY
  (`--secret-key`, else $SECRET_KEY, else a new key, printed on stderr);
- jwks: `configuration-token` signed RS256 by XDR, whose keys the relay fetches from
  `custom_jwks_host` (the region's visibility host).

In both, `configuration-token-audience` is the module URL (or `--audience`, behind a custom
domain): the relay accepts only tokens bound to the module they are sent to.

The default mode is the relay's own: hs256 when a key is given, else jwks. Without `--url`, the URL
has the deployment's shape with `<api-id>` left to fill in (`zappa status` shows it).
Exit codes: 0 printed, 2 usage errors (unknown vendor, bad settings file).
"""
from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

from engine.commands.jwt_tool import JwtToolError, deployment_stage, module_url
from engine.commands.tokens import new_secret_key

JWKS_HOST_BY_REGION = {"us": "visibility.amp.cisco.com", "eu": "visibility.eu.amp.cisco.com",
                       "apjc": "visibility.apjc.amp.cisco.com"}
CREDENTIAL_FIELD_TYPES = {"api_key": "api_key", "password": "password", "string": "string", "private_key": "password"}

# The relay routes a spec can declare: (spec part, supported API, capability description).
ROUTES = (
    ("health", "health", "Checks that the relay reaches {title} with the module's credentials."),
    ("deliberate", "deliberate/observables", "Verdicts on observables from {title}."),
    ("observe", "observe/observables", "What {title} knows about observables: verdicts, judgements, sightings "
                                       "and more."),
    ("refer", "refer/observables", "Links to {title}'s pages about observables."),
    ("respond", "respond/observables", "Response actions {title} takes on observables."),
    ("trigger", "respond/trigger", None),  # part of the respond capability
    ("tiles", "tiles", "Dashboard tiles of what {title} sees over a period."),
    ("tile", "tiles/tile", None),  # part of the tiles capability
    ("tile_data", "tiles/tile-data", None),
)


def declared_routes(spec) -> list:
    return [route for route in ROUTES if spec.declares(route[0])]


def supported_apis(spec) -> list:
    return [api for _, api, _ in declared_routes(spec)]


def capabilities(spec) -> list:
    return [{"id": name, "description": text.format(title=spec.title)} for name, _, text in declared_routes(spec)
            if text is not None]


def configuration_spec(spec) -> list:
    """One field per claim the relay reads; `custom_` makes XDR deliver it as a token claim."""
    fields = []
    for credential in spec.credentials:
        field = {"key": f"custom_{credential.name}", "type": CREDENTIAL_FIELD_TYPES[credential.type],
                 "label": credential.label, "required": credential.required}
        if credential.tooltip:
            field["tooltip"] = credential.tooltip
        fields.append(field)
    for setting in spec.settings:
        field = {"key": f"custom_{setting.name}", "type": setting_field_type(setting), "label": setting.label,
                 "required": False}
        if setting.options:
            field["options"] = [{"value": option, "label": option} for option in setting.options]
            field["strict-options"] = True
        if setting.default is not None:
            field["default_value"] = setting.default
        tooltip = setting.tooltip or setting_tooltip(setting)
        if tooltip:
            field["tooltip"] = tooltip
        fields.append(field)
    return fields


def setting_field_type(setting) -> str:
    if setting.type in ("integer", "boolean"):
        return setting.type
    return "options" if setting.options else "string"


def setting_tooltip(setting) -> str:
    bounds = setting.bounds()
    if setting.default is not None:
        bounds.append(f"default {json.dumps(setting.default)}")
    return ", ".join(bounds)


def hs256_properties(secret_key: str, audience: str | None = None) -> dict:
    properties = {"auth-type": "configuration-token", "configuration-token-alg": "HS256",
                  "configuration-token-key": secret_key}
    return with_audience(properties, audience)


def jwks_properties(jwks_host: str, audience: str | None = None) -> dict:
    properties = {"auth-type": "configuration-token", "configuration-token-alg": "RS256",
                  "custom_jwks_host": jwks_host}
    return with_audience(properties, audience)


def with_audience(properties: dict, audience: str | None) -> dict:
    if audience:
        properties["configuration-token-audience"] = audience.rstrip("/")
    return properties


PRODUCT_CATEGORIES = {"siem": "SIEM", "threat-intel": "Threat Intelligence", "email-security": "Email Security",
                      "ndr": "Network Detection and Response", "rf-security": "RF Security",
                      "cloud-firewall": "Cloud Firewall", "itsm": "IT Service Management",
                      "edr": "Endpoint Detection and Response", "cloud-security": "Cloud Security",
                      "firewall": "Firewall"}
LOGO_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def module_type(spec, url: str, auth_properties: dict) -> dict:
    """The module type document XDR's IROH API takes (POST /iroh/iroh-int/module-type), keys in
    the order XDR's module maker writes them; only what an analyst or an administrator reads."""
    look = spec.module
    description = spec.description.strip() or spec.title
    short = look.short_description or description.split(". ")[0].rstrip(".") + "."
    asked = " and ".join(c.label for c in spec.credentials) or "nothing"
    document = {
        "title": spec.title,
        "default_name": spec.title,
        "short_description": short,
        "description": description,
        "tips": look.tips or (f"When adding {spec.title}, give the {asked} of your {spec.title} account. The relay "
                              "keeps no credentials: Cisco XDR sends them with every request."),
        "external_references": [{"label": label, "link": link} for label, link in spec.links],
        "configuration_spec": configuration_spec(spec),
        "capabilities": capabilities(spec),
        "properties": {"url": url.rstrip("/"), "supported-apis": supported_apis(spec), **auth_properties},
    }
    if look.product_categories:
        document["product_categories"] = [{"id": category, "description": PRODUCT_CATEGORIES[category]}
                                          for category in look.product_categories]
    if look.logo:
        logo = Path(look.logo)
        document["logo"] = f"data:{LOGO_TYPES[logo.suffix.lower()]};base64,{base64.b64encode(logo.read_bytes()).decode()}"
    return document


# -- the command ---------------------------------------------------------------------------------

def add_arguments(parser) -> None:
    parser.add_argument("vendor", help="the vendor's spec name")
    parser.add_argument("--url", help="the module URL, e.g. "
                                      "https://<api-id>.execute-api.<region>.amazonaws.com/dev/VENDOR")
    parser.add_argument("--auth", choices=("hs256", "jwks"),
                        help="the relay's RELAY_AUTH (default: hs256 when a key is given, else jwks)")
    parser.add_argument("--secret-key", metavar="KEY",
                        help="hs256: the relay's SECRET_KEY (default: $SECRET_KEY, else a new key)")
    parser.add_argument("--region", choices=tuple(JWKS_HOST_BY_REGION), default="us",
                        help="jwks: the XDR region whose keys sign the tokens (default: us)")
    parser.add_argument("--audience", metavar="URL",
                        help="configuration-token-audience, the `aud` of the module's tokens (default: the URL)")
    parser.add_argument("--stage", default="dev", help="the zappa_settings.json stage for the URL (default: dev)")
    parser.add_argument("--settings", default="zappa_settings.json", metavar="FILE",
                        help="Zappa settings for the URL (default: ./zappa_settings.json)")
    parser.add_argument("--vendors", help="folder of vendor specs (default: ./vendors)")


def run(args, environ=None, out=None, err=None) -> int:
    from engine.commands.cli import _specs
    environ = os.environ if environ is None else environ
    out, err = out or sys.stdout, err or sys.stderr
    specs = _specs(args.vendors, [args.vendor])
    spec = specs.get(args.vendor)
    if spec is None:
        print(f"relay module-type: no vendor {args.vendor!r}; the catalogue has: {', '.join(sorted(specs))}", file=err)
        return 2
    url = args.url
    if not url:
        try:
            url = module_url(deployment_stage(args.settings, args.stage), args.stage, spec.name)
        except JwtToolError as problem:
            print(f"relay module-type: {problem}", file=err)
            return 2
        print(f"note: replace <api-id> in properties.url ({url}), or give --url", file=err)
    secret_key = args.secret_key or environ.get("SECRET_KEY")
    mode = args.auth or ("hs256" if secret_key else "jwks")
    if mode == "hs256":
        if not secret_key:
            secret_key = new_secret_key()
            print(f"note: new SECRET_KEY {secret_key}: set it on the relay's Lambda function", file=err)
        print("note: configuration-token-key is the relay's SECRET_KEY: keep this document private", file=err)
        properties = hs256_properties(secret_key, args.audience or url)
    else:
        properties = jwks_properties(JWKS_HOST_BY_REGION[args.region], args.audience or url)
    if args.audience and args.audience.rstrip("/") != url.rstrip("/"):
        root = args.audience.rstrip("/").removesuffix(f"/{spec.name}")
        print(f"note: set RELAY_AUDIENCE={root} on the relay (the public root the tokens are bound to)", file=err)
    print(json.dumps(module_type(spec, url, properties), indent=2), file=out)
    return 0
