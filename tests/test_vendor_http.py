"""The vendor client: upstream override, redirects, limits and faults, against loopback servers."""
import socket


from engine.serving.runtime import new_session
from engine.commands.standin import CannedAnswer, Route, StandInVendor
from engine.serving.vendor_http import VendorAnswer, VendorClient, VendorFault, VendorRequest


def get(client, url, timeout=2.0):
    return client.send(VendorRequest("GET", url, (("q", "a b"),), {"X-Test": "1"}), timeout)


def test_the_upstream_override_keeps_path_and_query():
    with StandInVendor([Route("/v1/thing", CannedAnswer(200, b'{"ok": true}'))]) as stand_in:
        client = VendorClient(new_session(), upstream=stand_in.origin)
        answer = get(client, "https://api.vendor.test/v1/thing")
    assert isinstance(answer, VendorAnswer) and answer.json() == {"ok": True}
    assert stand_in.received[0].path == "/v1/thing" and stand_in.received[0].query == "q=a+b"
    assert stand_in.received[0].headers["X-Test"] == "1"


def test_a_redirect_within_the_origin_is_followed_but_not_to_another_host():
    with StandInVendor([]) as stand_in:
        stand_in.routes += [
            Route("/old", CannedAnswer(302, b"", headers=(("Location", "/new"),))),
            Route("/new", CannedAnswer(200, b'"moved"')),
            Route("/away", CannedAnswer(302, b"", headers=(("Location", "https://elsewhere.test/x"),))),
        ]
        client = VendorClient(new_session(), private_ok=True)
        assert get(client, stand_in.origin + "/old").json() == "moved"
        refused = get(client, stand_in.origin + "/away")
    assert isinstance(refused, VendorFault) and refused.kind == "redirect"
    assert [r.path for r in stand_in.received] == ["/old", "/new", "/away"]


def test_a_slow_vendor_is_a_timeout():
    with StandInVendor([Route("/slow", CannedAnswer(200, b"{}", delay=1.0))]) as stand_in:
        fault = get(VendorClient(new_session(), private_ok=True), stand_in.origin + "/slow", timeout=0.2)
    assert isinstance(fault, VendorFault) and fault.kind == "timeout"


def test_an_oversized_answer_is_refused():
    with StandInVendor([Route("/big", CannedAnswer(200, b"x" * 5000))]) as stand_in:
        fault = get(VendorClient(new_session(), max_body_bytes=1000, private_ok=True), stand_in.origin + "/big")
    assert isinstance(fault, VendorFault) and fault.kind == "oversized"


def test_a_closed_port_is_a_connection_fault():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fault = get(VendorClient(new_session(), private_ok=True), f"http://127.0.0.1:{port}/")
    assert isinstance(fault, VendorFault) and fault.kind == "connection"


def test_a_cookie_a_vendor_sets_is_never_sent_with_a_later_call():
    """One session serves every tenant: a vendor's session cookie for one customer's key must not
    travel with another customer's call."""
    setting = CannedAnswer(200, b"{}", headers=(("Set-Cookie", "session=tenant-a-secret; Path=/"),))
    with StandInVendor([Route("/login", setting), Route("/data", CannedAnswer(200, b"{}"))]) as stand_in:
        client = VendorClient(new_session(), private_ok=True)
        get(client, stand_in.origin + "/login")
        get(client, stand_in.origin + "/data")
    assert [call.headers.get("Cookie") for call in stand_in.received] == [None, None]
    assert len(client.session.cookies) == 0


def test_the_session_headers_go_with_every_call_unless_the_request_sets_them():
    with StandInVendor([Route("/x", CannedAnswer(200, b"{}"))]) as stand_in:
        client = VendorClient(new_session(), private_ok=True)
        client.send(VendorRequest("GET", stand_in.origin + "/x", (), {"Accept": "text/html"}), 2.0)
    headers = stand_in.received[0].headers
    assert headers["Accept"] == "text/html" and headers["User-Agent"].startswith("python-requests/")
    assert headers["Accept-Encoding"] and headers["Connection"] == "keep-alive"
