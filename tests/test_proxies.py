"""Proxies and CA bundles come from the environment once, when the session is made (requests
would read the environment again on every call); stand-ins on loopback use none of them."""
from __future__ import annotations

import pytest
import requests

from engine.commands.standin import CannedAnswer, Route, StandInVendor
from engine.serving.transport import exchange, loopback_session, new_session


@pytest.fixture
def proxy():
    """A stand-in playing an HTTP proxy: it sees the absolute URL's host in `Host`."""
    with StandInVendor([Route("/", CannedAnswer(200, b'{"via": "proxy"}'), prefix=True)]) as stand_in:
        yield stand_in


def test_calls_go_through_the_proxy_of_the_environment_it_was_made_with(proxy, monkeypatch):
    session = new_session({"HTTP_PROXY": proxy.origin})
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # later changes are not read
    assert session.get("http://vendor.example/v1/x", timeout=5).json() == {"via": "proxy"}
    assert [(call.path, call.headers["Host"]) for call in proxy.received] == [("/v1/x", "vendor.example")]


@pytest.mark.parametrize("no_proxy", ["vendor.example", ".example", "*", "other.test, vendor.example"])
def test_no_proxy_hosts_are_reached_directly(proxy, no_proxy):
    session = new_session({"http_proxy": proxy.origin, "no_proxy": no_proxy})
    with pytest.raises(requests.ConnectionError):  # directly: the name does not resolve here
        session.get("http://vendor.example/v1/x", timeout=5)
    assert proxy.received == []


def test_a_ca_bundle_of_the_environment_is_kept_and_verification_is_never_off(tmp_path):
    bundle = tmp_path / "ca.pem"
    assert new_session({"REQUESTS_CA_BUNDLE": str(bundle)}).verify == str(bundle)
    assert new_session({}).verify is True
    assert new_session({"REQUESTS_CA_BUNDLE": ""}).verify is True


def test_a_loopback_session_ignores_the_environment(proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy that is not there
    with StandInVendor([Route("/x", CannedAnswer(200, b'{"direct": true}'))]) as vendor, \
            exchange(deadline=None, private_ok=True):  # as the relay calls an upstream stand-in
        assert loopback_session().get(f"{vendor.origin}/x", timeout=5).json() == {"direct": True}
