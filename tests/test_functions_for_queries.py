"""Functions for SIEM-style vendors: a value quoted into a query language stays one value, JSON in a
vendor's spelling, positions, time ranges, and a service account's signed assertion (real keys)."""
from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.language.expressions import EvaluationError, Expression, Scope


def evaluate(source: str, **values):
    return Expression(source).evaluate(Scope(values, None, {}))


@pytest.mark.parametrize("value", ['plain', 'say "hi"', 'a\\" OR "x"="x', 'trailing\\', '" | delete'])
def test_a_quoted_value_cannot_close_its_quotes(value):
    query = evaluate("concat('\"', escape(v, '\"'), '\"')", v=value)
    assert json.loads(query) == value  # JSON's string rules are the same: one string, the value itself


@pytest.mark.parametrize("value", ["O'Brien", "x' OR '1'='1", "''"])
def test_doubled_quotes_for_aql_and_odata(value):
    quoted = evaluate(r"concat('\'', escape(v, '\'', '\''), '\'')", v=value)
    assert quoted[1:-1].replace("''", "'") == value and quoted.count("'") % 2 == 0


def test_to_json_spells_compact_or_as_python_does():
    value = {"terms": {"field": "a", "size": 5}}
    assert evaluate("to_json(v)", v=value) == '{"terms":{"field":"a","size":5}}'
    assert evaluate("to_json(v, 'python')", v=value) == '{"terms": {"field": "a", "size": 5}}'
    with pytest.raises(EvaluationError, match="'compact' or 'python'"):
        evaluate("to_json(v, 'yaml')", v=value)


def test_index_of_compares_json_types():
    assert evaluate("index_of(v, `1`)", v=[True, 1, "1"]) == 1
    assert evaluate("index_of(v, '1')", v=[True, 1, "1"]) == 2
    assert evaluate("index_of(v, 'z')", v=["a"]) is None


def test_time_range_goes_either_way_and_stops_at_its_end():
    assert evaluate("time_range('2026-03-01T00:00:00Z', '2026-03-02T12:00:00Z', 'P1D')") == [
        "2026-03-01T00:00:00.000000Z", "2026-03-02T00:00:00.000000Z"]
    assert len(evaluate("time_range('2026-03-31T00:00:00Z', '2026-03-02T00:00:00Z', '-P1D')")) == 30
    assert evaluate("time_range('2026-03-01T00:00:00Z', '2026-02-01T00:00:00Z', 'P1D')") == []
    with pytest.raises(EvaluationError, match="a step that moves"):
        evaluate("time_range('2026-03-01T00:00:00Z', '2026-03-02T00:00:00Z', 'PT0S')")
    with pytest.raises(EvaluationError, match="more than 1000"):
        evaluate("time_range('2026-01-01T00:00:00Z', '2026-12-01T00:00:00Z', 'PT1M')")


def test_jwt_makes_an_assertion_the_vendors_public_key_verifies():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    claims = {"iss": "relay@project.example", "aud": "https://oauth2.example/token", "scope": "read", "iat": 1,
              "exp": 4102444800}
    token = evaluate("jwt({alg: 'RS256', typ: 'JWT', kid: kid}, claims, key)", kid="k-1", claims=claims, key=pem)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": "k-1"}
    assert jwt.decode(token, key.public_key(), algorithms=["RS256"], audience="https://oauth2.example/token") == claims


@pytest.mark.parametrize(("alg", "key", "message"), [
    ("none", "k", "signs with RS256"),
    ("RS256", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----", "cannot sign with this key"),
])
def test_jwt_refuses_what_it_cannot_sign_without_quoting_the_key(alg, key, message):
    with pytest.raises(EvaluationError) as failure:
        evaluate("jwt({alg: alg}, {iss: 'x'}, key)", alg=alg, key=key)
    assert message in failure.value.reason and "not a key" not in failure.value.reason
