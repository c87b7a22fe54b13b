"""Google Chronicle end to end: the spec, the real app, and a stand-in Google on loopback.

The relay's Chronicle calls were never recorded (the original talked through google-auth over
httplib2), so these tests carry the vendor's behaviour. The stand-in is Google's token endpoint and
Chronicle's Search API on one origin (RELAY_UPSTREAM sends both there): the token endpoint checks
the service account's assertion against the public half of a throwaway RSA key, as Google does,
and issues tokens `ya29.token-1`, `ya29.token-2`, ...; the Search API takes only a token it issued
and not revoked, and answers vendors/examples/google-chronicle (written from the Search API docs):

  listassets for example.com: finance-laptop-07 (hostname) first reached cdn.example.com on
    2026-09-02 and last example.com on 2026-11-20; 192.0.2.61 (an address) reached example.com
    once, 2026-10-11 (first = last: one sighting);
  listiocdetails: "Malware Command and Control Server" (score "102") and "Phishing Site" ("Medium").
"""
import json
import logging
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine import load_spec
from engine.commands.standin import StandInVendor, routes_from_examples
from engine.ctim import validate_observe_data
from tests.support.misbehaving import Answer, MisbehavingVendor, json_answer
from tests.support.relay import NOW, RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "vendors" / "examples" / "google-chronicle"
TOKEN_URI = "https://oauth2.googleapis.com/token"
CLIENT_EMAIL = "relay@demo-project.iam.gserviceaccount.com"
KEY_ID = "5f0c1b7e2d9a4c3b8e6f"
SCOPE = "https://www.googleapis.com/auth/chronicle-backstory"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DOMAIN = [{"type": "domain", "value": "example.com"}]
UNAUTHENTICATED = {"error": {"code": 401, "status": "UNAUTHENTICATED",
                             "message": "Request had invalid authentication credentials."}}


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "vendors" / "google-chronicle.yaml")


@pytest.fixture(scope="module")
def key():
    """A throwaway service-account key: (the private key, its PEM as XDR's form sends it: line
    breaks as the two characters \\n)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return private, pem.replace("\n", "\\n")


def claims(key, **changes):
    """The service account's key file, as the module's JWT carries it."""
    made = {"type": "service_account", "project_id": "demo-project", "private_key_id": KEY_ID,
            "private_key": key[1], "client_email": CLIENT_EMAIL, "client_id": "104857600000000000001",
            "token_uri": TOKEN_URI, **changes}
    return {name: value for name, value in made.items() if value is not None}


class Google:
    """Google's token endpoint (POST /token) and Chronicle's Search API (/v1/...) on loopback."""

    def __init__(self, public_key, answers=None, token_answer=None):
        self.public_key = public_key
        self.answers = {"/v1/artifact/listassets": json_answer(example("assets.json")),
                        "/v1/artifact/listiocdetails": json_answer(example("iocs.json")), **(answers or {})}
        self.token_answer = token_answer  # an Answer instead of checking the assertion
        self.issued, self.revoked = [], set()
        self.assertions = []  # (header, claims) of every assertion accepted
        self.vendor = MisbehavingVendor(self).start()

    def __call__(self, request):
        if request.path == "/token":
            return self.token(request)
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in \
                set(self.issued) - self.revoked:
            return json_answer(UNAUTHENTICATED, 401)
        answer = self.answers.get(request.path)
        return answer(request) if callable(answer) else answer or json_answer({"error": {"code": 404}}, 404)

    def token(self, request):
        """Google's checks of a service account's assertion (RFC 7523), then a token."""
        if self.token_answer is not None:
            return self.token_answer
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        form = dict(parse_qsl(request.body.decode()))
        if form.get("grant_type") != JWT_BEARER:
            return json_answer({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, 400)
        try:
            header = pyjwt.get_unverified_header(form["assertion"])
            # The relay's clock is frozen: the times are checked by the tests, not here.
            signed = pyjwt.decode(form["assertion"], self.public_key, algorithms=["RS256"], audience=TOKEN_URI,
                                  issuer=CLIENT_EMAIL, options={"verify_exp": False, "verify_iat": False,
                                                                "require": ["iss", "aud", "iat", "exp"]})
        except (KeyError, pyjwt.InvalidTokenError):
            return json_answer({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, 400)
        if signed.get("scope") != SCOPE:
            return json_answer({"error": "invalid_scope", "error_description": "Invalid OAuth scope."}, 400)
        if header.get("kid") != KEY_ID:
            return json_answer({"error": "invalid_grant", "error_description": "Invalid key id."}, 400)
        self.assertions.append((header, signed))
        self.issued.append(f"ya29.token-{len(self.issued) + 1}")
        return json_answer({"access_token": self.issued[-1], "expires_in": 3599, "token_type": "Bearer"})

    def calls(self):
        return [(r.method, r.path) for r in self.vendor.requests]

    def api_calls(self):
        return [r for r in self.vendor.requests if r.path.startswith("/v1/")]

    def stop(self):
        self.vendor.stop()


@pytest.fixture
def google(key):
    made = []

    def make(**options):
        made.append(Google(key[0].public_key(), **options))
        return made[-1]
    yield make
    for one in made:
        one.stop()


def relay_for(spec, google):
    return RelayUnderTest({"google-chronicle": spec}, {"google-chronicle": google.vendor.origin})


def ask(relay, key, body=DOMAIN, path="/google-chronicle/observe/observables", **changes):
    answer = relay.post(path, body, claims(key, **changes)).get_json()
    never_shows_secrets(answer, key)
    return answer


def never_shows_secrets(answer, key, *more):
    shown = json.dumps(answer)
    for secret in (key[1], key[1].split("\\n")[1], *more):  # the key, and a line of it
        assert secret not in shown


def observe(spec, google, key, body=DOMAIN, **changes):
    return ask(relay_for(spec, google), key, body, **changes)


# -- the token ------------------------------------------------------------------------------------

def test_a_signed_assertion_is_traded_for_a_token_that_every_call_carries(spec, google, key):
    vendor = google()
    answer = observe(spec, vendor, key)
    assert "errors" not in answer
    assert vendor.calls() == [("POST", "/token"), ("GET", "/v1/artifact/listassets"),
                              ("GET", "/v1/artifact/listiocdetails")]
    [(header, signed)] = vendor.assertions
    assert header == {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}
    now = int(NOW.timestamp())
    assert signed == {"iss": CLIENT_EMAIL, "scope": SCOPE, "aud": TOKEN_URI, "iat": now, "exp": now + 3600}
    assert {r.headers["authorization"] for r in vendor.api_calls()} == {"Bearer ya29.token-1"}


def test_a_key_with_real_line_breaks_signs_too(spec, google, key):
    vendor = google()
    answer = observe(spec, vendor, key, private_key=key[1].replace("\\n", "\n"))
    assert "errors" not in answer and len(vendor.assertions) == 1


def test_a_key_file_without_a_key_id_sends_no_kid(spec, google, key):
    vendor = google()
    observe(spec, vendor, key, private_key_id=None)
    assert vendor.calls() == [("POST", "/token")]  # Google wants the kid: the stand-in refuses
    request = vendor.vendor.requests[0]
    assertion = dict(parse_qsl(request.body.decode()))["assertion"]
    assert "kid" not in pyjwt.get_unverified_header(assertion)


def test_one_token_serves_two_relay_requests_until_it_expires(spec, google, key):
    vendor = google()
    relay = relay_for(spec, vendor)
    first = ask(relay, key)
    second = ask(relay, key, [{"type": "ip", "value": "192.0.2.61"}])
    assert "errors" not in first and "errors" not in second
    assert [path for _, path in vendor.calls()].count("/token") == 1
    assert {r.headers["authorization"] for r in vendor.api_calls()} == {"Bearer ya29.token-1"}
    relay.clock.sleep(3599)  # Google's token has expired
    ask(relay, key)
    assert vendor.issued == ["ya29.token-1", "ya29.token-2"]
    assert vendor.api_calls()[-1].headers["authorization"] == "Bearer ya29.token-2"


def test_a_401_from_chronicle_renews_the_token_once_and_the_call_is_made_again(spec, google, key):
    vendor = google()
    relay = relay_for(spec, vendor)
    ask(relay, key)
    vendor.revoked.add("ya29.token-1")  # revoked at Google's end
    answer = ask(relay, key)
    assert "errors" not in answer and answer["data"]["sightings"]["count"] == 3
    assert vendor.calls()[3:] == [("GET", "/v1/artifact/listassets"), ("POST", "/token"),
                                  ("GET", "/v1/artifact/listassets"), ("GET", "/v1/artifact/listiocdetails")]
    assert [r.headers["authorization"] for r in vendor.api_calls()[2:]] == \
        ["Bearer ya29.token-1", "Bearer ya29.token-2", "Bearer ya29.token-2"]


def test_a_token_refused_again_after_its_renewal_is_chronicles_error(spec, google, key):
    vendor = google(answers={"/v1/artifact/listassets": json_answer(UNAUTHENTICATED, 401)})
    answer = observe(spec, vendor, key)
    assert vendor.calls() == [("POST", "/token"), ("GET", "/v1/artifact/listassets"),
                              ("POST", "/token"), ("GET", "/v1/artifact/listassets")]
    assert answer == {"errors": [{"code": "unauthenticated", "type": "fatal", "message":
                                  "Unexpected response from Google Chronicle: Request had invalid authentication "
                                  "credentials."}]}


def test_a_private_key_that_does_not_parse_is_an_authorization_error_and_no_call(spec, google, key):
    vendor = google()
    answer = observe(spec, vendor, key, private_key="-----BEGIN PRIVATE KEY-----\\nbm90IGEga2V5\\n")
    assert vendor.calls() == []
    [error] = answer["errors"]
    assert error["code"] == "authorization error" and error["type"] == "fatal"
    assert error["message"].startswith("Authorization failed: Google Chronicle cannot be asked for a token")


@pytest.mark.parametrize("token_uri", ["https://oauth2.example.com/token", "http://oauth2.googleapis.com/token",
                                       "not a URL"])
def test_a_token_uri_off_googles_token_endpoint_is_refused_before_any_call(spec, google, key, token_uri):
    vendor = google()
    answer = observe(spec, vendor, key, token_uri=token_uri)
    assert vendor.calls() == []
    [error] = answer["errors"]
    assert error["code"] == "authorization error"
    assert error["message"].startswith("Authorization failed: Google Chronicle cannot be asked for a token")


def test_an_assertion_signed_by_another_key_is_refused_by_google(spec, google, key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    vendor = google()
    answer = observe(spec, vendor, key, private_key=other_pem)
    assert vendor.calls() == [("POST", "/token")]
    assert answer == {"errors": [{"code": "authorization error", "type": "fatal",
                                  "message": "Authorization failed: Invalid Client Email"}]}


@pytest.mark.parametrize("token_answer, message", [
    (json_answer({"error": "invalid_grant", "error_description": "Invalid grant: account not found"}, 400),
     "Invalid Client Email"),
    (json_answer({"token_type": "Bearer"}), "Invalid Client Email"),  # JSON, but no token in it
    (Answer(404, b"<html><body>Not Found</body></html>", content_type="text/html"), "Invalid Token URI"),
    (Answer(200, b"<html><body>Sign in</body></html>", content_type="text/html"), "Invalid Token URI"),
])
def test_token_endpoint_refusals_in_the_original_relays_words(spec, google, key, token_answer, message):
    vendor = google(token_answer=token_answer)
    answer = observe(spec, vendor, key)
    assert vendor.calls() == [("POST", "/token")]
    assert answer == {"errors": [{"code": "authorization error", "type": "fatal",
                                  "message": f"Authorization failed: {message}"}]}


def test_the_token_the_assertion_and_the_key_never_reach_the_answer_or_the_logs(spec, google, key, caplog):
    def echo(request):  # a vendor that quotes what it was sent
        return json_answer({"error": {"code": 403, "status": "PERMISSION_DENIED",
                                      "message": f"{request.headers['authorization']} may not read assets"}}, 403)
    vendor = google(answers={"/v1/artifact/listassets": echo})
    with caplog.at_level(logging.DEBUG):
        answer = observe(spec, vendor, key)
    assertion = dict(parse_qsl(vendor.vendor.requests[0].body.decode()))["assertion"]
    assert answer == {"errors": [{"code": "permission denied", "type": "fatal", "message":
                                  "Unexpected response from Google Chronicle: Bearer <redacted> may not read assets"}]}
    for secret in ("ya29.token-1", assertion, key[1], key[1].split("\\n")[1]):
        assert secret not in json.dumps(answer) and secret not in caplog.text


def test_a_missing_key_file_field_is_refused_before_any_call(spec, google, key):
    vendor = google()
    answer = observe(spec, vendor, key, token_uri=None)
    assert vendor.calls() == []
    assert answer == {"errors": [{"code": "authorization error", "type": "fatal",
                                  "message": "Authorization failed: Wrong JWT payload structure"}]}


# -- what Chronicle finds -------------------------------------------------------------------------

def test_a_domain_makes_a_sighting_per_first_and_last_seen_and_an_indicator_per_feed(spec, google, key):
    vendor = google()
    data = observe(spec, vendor, key)["data"]
    assert validate_observe_data(data) == []
    assert {name: value["count"] for name, value in data.items()} == \
        {"sightings": 3, "indicators": 2, "relationships": 6}

    sightings = data["sightings"]["docs"]
    assert [s["observed_time"]["start_time"] for s in sightings] == \
        ["2026-11-20T16:41:03Z", "2026-10-11T22:05:40Z", "2026-09-02T08:14:55Z"]  # newest first
    assert [s["observables"] for s in sightings] == [[{"type": "domain", "value": "example.com"}]] * 2 + \
        [[{"type": "domain", "value": "cdn.example.com"}]]
    assert [s["targets"][0]["observables"] for s in sightings] == [
        [{"type": "hostname", "value": "finance-laptop-07.corp.example.com"}],
        [{"type": "ip", "value": "192.0.2.61"}],
        [{"type": "hostname", "value": "finance-laptop-07.corp.example.com"}]]
    first = sightings[0]
    assert {key: first[key] for key in ("confidence", "count", "internal", "source", "title")} == \
        {"confidence": "High", "count": 2, "internal": True, "source": "Chronicle", "title": "Found in Chronicle"}
    assert first["source_uri"] == example("assets.json")["uri"][0]
    assert first["observed_time"] == first["targets"][0]["observed_time"] == \
        {"start_time": "2026-11-20T16:41:03Z", "end_time": "2026-11-20T16:41:03Z"}
    # Only the sub-domain is related to the domain looked up.
    assert "relations" not in sightings[0] and "relations" not in sightings[1]
    assert sightings[2]["relations"] == [{"origin": "Chronicle Enrichment Module", "relation": "Supra-domain_Of",
                                          "source": {"type": "domain", "value": "example.com"},
                                          "related": {"type": "domain", "value": "cdn.example.com"}}]

    indicators = data["indicators"]["docs"]
    assert [(i["title"], i["short_description"], i["confidence"], i["severity"], i["producer"])
            for i in indicators] == [
        ("Malware Command and Control Server", "Malware Command and Control Server", "High", "High", "Chronicle"),
        ("Phishing Site", "Phishing Site", "Medium", "Medium", "Chronicle")]
    assert indicators[0]["external_references"] == [{"source_name": "Chronicle IOC",
                                                     "url": "https://feeds.example.net/c2-servers"}]
    # Every sighting is a sighting of every feed's indicator.
    pairs = {(r["source_ref"], r["target_ref"]) for r in data["relationships"]["docs"]}
    assert pairs == {(s["id"], i["id"]) for s in sightings for i in indicators}
    assert {r["relationship_type"] for r in data["relationships"]["docs"]} == {"sighting-of"}


def test_the_calls_name_the_artifact_and_the_last_90_days(spec, google, key):
    vendor = google()
    observe(spec, vendor, key)
    assets, iocs = vendor.api_calls()
    assert assets.query == {"artifact.domain_name": "example.com", "start_time": "2026-08-30T12:00:00Z",
                            "end_time": "2026-11-28T12:00:00Z", "page_size": "100"}
    assert iocs.query == {"artifact.domain_name": "example.com"}
    assert assets.headers["accept"] == "application/json"
    assert (NOW - timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ") == assets.query["start_time"]


def test_an_address_relates_the_domains_resolved_to_it(spec, google, key):
    found = {"assets": [
        {"asset": {"assetIpAddress": "2001:db8::17", "assetMacAddress": "00:00:5e:00:53:17"},
         "firstSeenArtifactInfo": {"artifactIndicator": {"destinationIpAddress": "198.51.100.7"},
                                   "seenTime": "2026-11-01T10:00:00Z"},
         "lastSeenArtifactInfo": {"artifactIndicator": {"domainName": "www.example.org"},
                                  "seenTime": "2026-11-02T10:00:00Z"}}],
        "uri": ["https://demo.backstory.chronicle.security/ipResults?ip=198.51.100.7"]}
    vendor = google(answers={"/v1/artifact/listassets": json_answer(found)})
    data = observe(spec, vendor, key, [{"type": "ip", "value": "198.51.100.7"}])["data"]
    assert validate_observe_data(data) == []
    assert [r.query.get("artifact.destination_ip_address") for r in vendor.api_calls()] == ["198.51.100.7"] * 2
    resolved, direct = data["sightings"]["docs"]
    assert resolved["observables"] == [{"type": "domain", "value": "www.example.org"}]
    assert resolved["relations"] == [{"origin": "Chronicle Enrichment Module", "relation": "Resolved_To",
                                      "source": {"type": "domain", "value": "www.example.org"},
                                      "related": {"type": "ip", "value": "198.51.100.7"}}]
    assert direct["observables"] == [{"type": "ip", "value": "198.51.100.7"}] and "relations" not in direct
    assert direct["targets"][0]["observables"] == [{"type": "ipv6", "value": "2001:db8::17"},
                                                   {"type": "mac_address", "value": "00:00:5e:00:53:17"}]


def test_a_hash_is_looked_up_in_assets_only(spec, google, key):
    sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    found = {"assets": [{"asset": {"hostname": "build-01"},
                         "firstSeenArtifactInfo": {"artifactIndicator": {"hashSha256": sha256},
                                                   "seenTime": "2026-11-27T09:30:00Z"},
                         "lastSeenArtifactInfo": {"artifactIndicator": {"hashSha256": sha256},
                                                  "seenTime": "2026-11-27T09:30:00Z"}}],
             "uri": ["https://demo.backstory.chronicle.security/hashResults?hash=e3b0"]}
    vendor = google(answers={"/v1/artifact/listassets": json_answer(found)})
    data = observe(spec, vendor, key, [{"type": "sha256", "value": sha256}])["data"]
    assert [(r.path, r.query.get("artifact.hash_sha256")) for r in vendor.api_calls()] == \
        [("/v1/artifact/listassets", sha256)]
    assert list(data) == ["sightings"] and data["sightings"]["count"] == 1
    assert data["sightings"]["docs"][0]["observables"] == [{"type": "sha256", "value": sha256}]


def test_the_entities_limit_keeps_the_newest_sightings_and_the_first_feeds(spec, google, key):
    vendor = google()
    data = observe(spec, vendor, key, CTR_ENTITIES_LIMIT=1)["data"]
    assert vendor.api_calls()[0].query["page_size"] == "1"
    assert data["sightings"]["docs"][0]["observed_time"]["start_time"] == "2026-11-20T16:41:03Z"
    assert [i["title"] for i in data["indicators"]["docs"]] == ["Malware Command and Control Server"]
    assert {name: value["count"] for name, value in data.items()} == \
        {"sightings": 1, "indicators": 1, "relationships": 1}


@pytest.mark.parametrize("score, severity, confidence, kept_severity", [
    ("20", "Low", "Low", "Low"), ("44", "Info", "Medium", "Info"), ("127", "High", "High", "High"),
    ("", "n/a", None, None), ("Low", "Medium", "Low", "Medium"),
])
def test_a_feeds_score_and_severity(spec, google, key, score, severity, confidence, kept_severity):
    sources = {"sources": [{"category": "Spam Source", "rawSeverity": severity,
                            "confidenceScore": {"strRawConfidenceScore": score}}]}
    vendor = google(answers={"/v1/artifact/listiocdetails": json_answer(sources)})
    [indicator] = observe(spec, vendor, key)["data"]["indicators"]["docs"]
    assert (indicator.get("confidence"), indicator.get("severity")) == (confidence, kept_severity)
    assert "external_references" not in indicator  # the feed gave no sourceUrl


def test_nothing_known_is_no_data_and_no_error(spec, google, key):
    vendor = google(answers={"/v1/artifact/listassets": json_answer({"error": {"code": 404}}, 404),
                             "/v1/artifact/listiocdetails": json_answer({"error": {"code": 400}}, 400)})
    assert observe(spec, vendor, key) == {"data": {}}
    assert len(vendor.api_calls()) == 2


def test_feeds_without_assets_are_indicators_alone(spec, google, key):
    vendor = google(answers={"/v1/artifact/listassets": json_answer({})})
    data = observe(spec, vendor, key)["data"]
    assert list(data) == ["indicators"] and data["indicators"]["count"] == 2


@pytest.mark.parametrize("status, body, expected", [
    (429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded."}},
     {"code": "too many requests",
      "message": "Too many requests to Google Chronicle have been made. Please, try again later."}),
    (500, {"error": {"code": 500, "status": "INTERNAL", "message": "Internal error."}},
     {"code": "unknown", "message": "Unexpected response from Google Chronicle: Internal Server Error"}),
    (403, {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "Permission denied on resource."}},
     {"code": "permission denied",
      "message": "Unexpected response from Google Chronicle: Permission denied on resource."}),
    (503, {"error": {"code": 503, "status": "UNAVAILABLE", "message": "The service is currently unavailable."}},
     {"code": "unavailable", "message": "Unexpected response from Google Chronicle: The service is currently "
                                        "unavailable."}),
    (502, None, {"code": "unknown", "message": "Unexpected response from Google Chronicle: Bad Gateway"}),
])
def test_chronicle_errors_become_relay_errors(spec, google, key, status, body, expected):
    answer = Answer(status, json.dumps(body).encode() if body else b"<html>Bad Gateway</html>",
                    content_type="application/json" if body else "text/html")
    vendor = google(answers={"/v1/artifact/listassets": answer})
    assert observe(spec, vendor, key) == {"errors": [{**expected, "type": "fatal"}]}


def test_an_error_keeps_what_other_observables_found(spec, google, key):
    sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"

    def quota_for_the_hash(request):
        if request.query.get("artifact.hash_sha1"):
            return json_answer({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota."}}, 429)
        return json_answer(example("assets.json"))
    vendor = google(answers={"/v1/artifact/listassets": quota_for_the_hash})
    answer = observe(spec, vendor, key, DOMAIN + [{"type": "sha1", "value": sha1}])
    assert answer["errors"] == [{"code": "too many requests", "type": "fatal",
                                 "message": "Too many requests to Google Chronicle have been made. Please, try again "
                                            "later."}]
    assert {name: value["count"] for name, value in answer["data"].items()} == \
        {"sightings": 3, "indicators": 2, "relationships": 6}


# -- health and the examples -----------------------------------------------------------------------

def test_health_looks_up_an_artifact_every_chronicle_knows(spec, google, key):
    vendor = google()
    answer = ask(relay_for(spec, vendor), key, None, path="/google-chronicle/health")
    assert answer == {"data": {"status": "ok"}}
    [probe] = vendor.api_calls()
    assert probe.path == "/v1/artifact/listassets" and probe.query["artifact.domain_name"] == "www.google.com"
    assert probe.headers["authorization"] == "Bearer ya29.token-1"


def test_health_reports_a_refused_service_account(spec, google, key):
    vendor = google(token_answer=json_answer({"error": "invalid_grant", "error_description": "Invalid grant"}, 400))
    answer = ask(relay_for(spec, vendor), key, None, path="/google-chronicle/health")
    assert answer == {"errors": [{"code": "authorization error", "type": "fatal",
                                  "message": "Authorization failed: Invalid Client Email"}]}


def test_the_examples_serve_the_whole_exchange(spec, key):
    """What relay demo serves (its token answer included), with a key that can sign."""
    with StandInVendor(routes_from_examples(spec)) as stand_in:
        relay = RelayUnderTest({"google-chronicle": spec}, {"google-chronicle": stand_in.origin})
        answer = ask(relay, key)
        received = [(r.method, r.path) for r in stand_in.received]
    assert "errors" not in answer and validate_observe_data(answer["data"]) == []
    assert received == [("POST", "/token"), ("GET", "/v1/artifact/listassets"),
                        ("GET", "/v1/artifact/listiocdetails")]
    never_shows_secrets(answer, key, example("token.json")["access_token"])
