"""`relay demo`: the relay and a stand-in vendor on loopback, a minted token, a ready curl command.

Everything runs on 127.0.0.1 with the spec's own example answers: no account, no network.
"""
from __future__ import annotations

import json
import shlex
import threading

import requests
from werkzeug.serving import make_server

from engine.serving.app import create_app
from engine.serving.config import RelayConfig, upstream_variable
from engine.serving.runtime import Runtime
from engine.commands.standin import StandInVendor, routes_from_examples
from engine.commands.tokens import demo_claims, mint_hs256, new_secret_key


class DemoError(Exception):
    pass


def start_demo(specs: dict, vendor: str, port: int = 0):
    spec = specs.get(vendor)
    if spec is None:
        raise DemoError(f"no vendor {vendor!r}; the catalogue has: {', '.join(sorted(specs))}")
    if spec.examples is None:
        raise DemoError(f"vendors/{vendor}.yaml has no `examples:` section to answer from")
    if not any(spec.endpoint(route) for route in ("observe", "deliberate", "refer")):
        raise DemoError(f"vendors/{vendor}.yaml declares no route that takes observables")
    stand_in = StandInVendor(routes_from_examples(spec)).start()
    secret = new_secret_key()
    upstream = upstream_variable(vendor)[len("RELAY_UPSTREAM_"):]
    config = RelayConfig(auth_mode="hs256", secret_key=secret, upstreams={upstream: stand_in.origin})
    app = create_app(specs, config, Runtime())
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    relay_url = f"http://127.0.0.1:{server.server_port}/{vendor}"
    token = mint_hs256(demo_claims(spec, relay_url), secret)
    return stand_in, server, relay_url, token


def demo_route(spec) -> str:
    """The richest route the spec declares: what the demo asks."""
    return next(route for route in ("observe", "deliberate", "refer") if spec.endpoint(route))


def curl_command(relay_url: str, token: str, observable: dict, route: str = "observe") -> str:
    body = json.dumps([observable])
    return (f"curl -s -X POST {relay_url}/{route}/observables -H 'Content-Type: application/json' "
            f"-H {shlex.quote('Authorization: Bearer ' + token)} -d {shlex.quote(body)}")


def summary(answer: dict) -> str:
    data = answer.get("data") or {}
    if isinstance(data, list):  # /refer: links
        return "\n".join(f"  {ref.get('title')}: {ref.get('url')}" for ref in data)
    lines = [f"  {key}: {value.get('count', 0)}" for key, value in data.items() if isinstance(value, dict)]
    for verdict in (data.get("verdicts") or {}).get("docs", []):
        lines.append(f"  verdict for {verdict['observable']['value']}: {verdict.get('disposition_name')}")
    for error in answer.get("errors", []):
        lines.append(f"  error: {error['code']}: {error['message']}")
    return "\n".join(lines)


def run_demo(specs: dict, vendor: str, port: int, once: bool, out) -> int:
    stand_in, server, relay_url, token = start_demo(specs, vendor, port)
    observable = specs[vendor].examples.observable
    route = demo_route(specs[vendor])
    try:
        print(f"Relay for {specs[vendor].title} at {relay_url} (stand-in vendor at {stand_in.origin})", file=out)
        print("Ask it yourself:\n", file=out)
        print(curl_command(relay_url, token, observable, route) + "\n", file=out)
        answer = requests.post(f"{relay_url}/{route}/observables", json=[observable],
                               headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
        print(f"It answered for {observable['type']} {observable['value']}:", file=out)
        print(summary(answer), file=out)
        if once:
            return 0 if answer.get("data") and not answer.get("errors") else 1
        print("\nServing until Ctrl-C.", file=out, flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        stand_in.stop()
    return 0
