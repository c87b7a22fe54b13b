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
from engine.serving.transport import loopback_session
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
    if not any(spec.declares(route) for route in ("observe", "deliberate", "refer", "respond")):
        raise DemoError(f"vendors/{vendor}.yaml declares no route that takes observables")
    stand_in = StandInVendor(routes_from_examples(spec)).start()
    secret = new_secret_key()
    upstream = upstream_variable(vendor)[len("RELAY_UPSTREAM_"):]
    config = RelayConfig(auth_mode="hs256", secret_key=secret, upstreams={upstream: stand_in.origin})
    app = create_app(specs, config, Runtime(session=loopback_session()))
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    relay_url = f"http://127.0.0.1:{server.server_port}/{vendor}"
    token = mint_hs256(demo_claims(spec, relay_url), secret)
    return stand_in, server, relay_url, token


def demo_route(spec) -> str | None:
    """The richest route the spec declares: what the demo asks (None: the spec only responds)."""
    return next((route for route in ("observe", "deliberate", "refer") if spec.declares(route)), None)


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
        lines.append(f"  verdict for {verdict['observable']['value']}: "
                     f"{verdict.get('disposition_name') or 'disposition ' + str(verdict.get('disposition'))}")
    for error in answer.get("errors", []):
        lines.append(f"  error: {error['code']}: {error['message']}")
    return "\n".join(lines)


def relay_client() -> requests.Session:
    """The demo asking its own relay on 127.0.0.1: no proxy of the environment in between."""
    session = requests.Session()
    session.trust_env = False
    return session


def respond_demo(spec, relay_url: str, token: str, observable: dict, out) -> bool:
    """The actions offered for the observable, and a trigger of the first: True when it succeeds
    (or when the spec offers none)."""
    if spec.respond is None or not spec.respond.actions:
        return True
    headers = {"Authorization": f"Bearer {token}"}
    offered = relay_client().post(f"{relay_url}/respond/observables", json=[observable], headers=headers, timeout=30).json()
    actions = offered.get("data") or []
    print("Response actions offered:", file=out)
    print("\n".join(f"  {action['id']}: {action['title']}" for action in actions) or "  none", file=out)
    if not actions:
        return not offered.get("errors")
    form = {"action-id": actions[0]["id"], **actions[0]["query-params"]}
    result = relay_client().post(f"{relay_url}/respond/trigger", json=form, headers=headers, timeout=30).json()
    print(f"Triggered {actions[0]['id']}: {(result.get('data') or {}).get('status', 'failure')}", file=out)
    for error in result.get("errors", []):
        print(f"  error: {error['code']}: {error['message']}", file=out)
    return result.get("data") == {"status": "success"}


def run_demo(specs: dict, vendor: str, port: int, once: bool, out) -> int:
    stand_in, server, relay_url, token = start_demo(specs, vendor, port)
    observable = specs[vendor].examples.observable
    route = demo_route(specs[vendor])
    try:
        print(f"Relay for {specs[vendor].title} at {relay_url} (stand-in vendor at {stand_in.origin})", file=out)
        print("Ask it yourself:\n", file=out)
        print(curl_command(relay_url, token, observable, route or "respond") + "\n", file=out)
        answered = True
        if route is not None:
            answer = relay_client().post(f"{relay_url}/{route}/observables", json=[observable],
                                   headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
            print(f"It answered for {observable['type']} {observable['value']}:", file=out)
            print(summary(answer), file=out)
            answered = bool(answer.get("data")) and not answer.get("errors")
        acted = respond_demo(specs[vendor], relay_url, token, observable, out)
        if once:
            return 0 if answered and acted else 1
        print("\nServing until Ctrl-C.", file=out, flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        stand_in.stop()
    return 0
