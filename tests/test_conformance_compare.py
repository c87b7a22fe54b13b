"""Tests of engine.conformance.compare: the corpus's comparison rules."""

from __future__ import annotations

import threading
import uuid

import pytest

from engine.conformance.compare import (
    StandInLedger,
    call_matches,
    canonicalize,
    compare_documents,
    describe_call,
    parse_unordered_path,
)

# Fixed ids so failures are reproducible.
RANDOM_A = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
RANDOM_B = "6fa459ea-ee8a-4ca4-894e-db77e160355e"
RANDOM_C = "9c5b94b1-35ad-49bb-b118-8e8fc24abf80"
NAMED = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://example.com/x"))


def test_uuids_have_the_versions_the_tests_rely_on() -> None:
    assert {uuid.UUID(u).version for u in (RANDOM_A, RANDOM_B, RANDOM_C)} == {4}
    assert uuid.UUID(NAMED).version == 5


# ---------------------------------------------------------------- canonicalize


def test_random_ids_are_numbered_by_first_appearance_with_keys_sorted() -> None:
    document = {"z": f"transient:sighting-{RANDOM_A}", "a": [f"transient:judgement-{RANDOM_B}"]}
    assert canonicalize(document, []) == {
        "z": "transient:sighting-#2",
        "a": ["transient:judgement-#1"],
    }


def test_id_without_name_and_name_with_hyphens() -> None:
    document = [f"transient:{RANDOM_A}", f"transient:sighting-of-thing-{RANDOM_B}"]
    assert canonicalize(document, []) == ["transient:#1", "transient:sighting-of-thing-#2"]


def test_same_random_id_twice_gets_the_same_number() -> None:
    sighting = f"transient:sighting-{RANDOM_A}"
    document = {"a": sighting, "b": {"source_ref": sighting, "target_ref": f"transient:judgement-{RANDOM_B}"}}
    assert canonicalize(document, []) == {
        "a": "transient:sighting-#1",
        "b": {"source_ref": "transient:sighting-#1", "target_ref": "transient:judgement-#2"},
    }


def test_uuid5_ids_and_other_strings_are_left_alone() -> None:
    document = [f"transient:indicator-{NAMED}", f"indicator-{RANDOM_A}", f"transient:x-{RANDOM_A}-tail"]
    assert canonicalize(document, []) == document


def test_canonicalize_does_not_modify_its_input() -> None:
    document = {"id": f"transient:sighting-{RANDOM_A}"}
    canonicalize(document, [])
    assert document == {"id": f"transient:sighting-{RANDOM_A}"}


def test_ids_only_in_unordered_lists_are_numbered_after_the_rest() -> None:
    document = {
        "a": [f"transient:sighting-{RANDOM_A}"],
        "b": f"transient:judgement-{RANDOM_B}",
    }
    # "a" is walked first when ordered; as unordered its ids come after "b".
    assert canonicalize(document, []) == {"a": ["transient:sighting-#1"], "b": "transient:judgement-#2"}
    assert canonicalize(document, ["a"]) == {"a": ["transient:sighting-#2"], "b": "transient:judgement-#1"}


def test_unordered_list_numbering_does_not_depend_on_element_order() -> None:
    first = {"docs": [{"id": f"transient:s-{RANDOM_A}", "v": 1}, {"id": f"transient:s-{RANDOM_B}", "v": 2}]}
    second = {"docs": [{"id": f"transient:s-{RANDOM_C}", "v": 2}, {"id": f"transient:s-{RANDOM_A}", "v": 1}]}
    # Elements sort by their text with ids masked, so v=1 is walked first on both sides.
    assert canonicalize(first, ["docs"])["docs"] == [{"id": "transient:s-#1", "v": 1}, {"id": "transient:s-#2", "v": 2}]
    assert canonicalize(second, ["docs"])["docs"] == [{"id": "transient:s-#2", "v": 2}, {"id": "transient:s-#1", "v": 1}]


def test_already_numbered_ids_steer_the_order_inside_unordered_lists() -> None:
    # Elements differ only by which entity they point at; the pointed-at ids are
    # numbered outside the list, so the relationships are told apart by those numbers.
    document = {
        "entities": [f"transient:e-{RANDOM_A}", f"transient:e-{RANDOM_B}"],
        "relations": [
            {"id": f"transient:r-{RANDOM_C}", "ref": f"transient:e-{RANDOM_B}"},
            {"id": "transient:r-" + str(uuid.UUID(int=0x1234, version=4)), "ref": f"transient:e-{RANDOM_A}"},
        ],
    }
    result = canonicalize(document, ["relations"])
    assert result["entities"] == ["transient:e-#1", "transient:e-#2"]
    assert result["relations"] == [
        {"id": "transient:r-#4", "ref": "transient:e-#2"},
        {"id": "transient:r-#3", "ref": "transient:e-#1"},
    ]


def test_parse_unordered_path_handles_element_markers() -> None:
    assert parse_unordered_path("data.sightings.docs[].relations") == (
        "data",
        "sightings",
        "docs",
        "[]",
        "relations",
    )


# ---------------------------------------------------------- compare_documents


def test_equal_documents_have_no_differences() -> None:
    document = {"data": {"verdicts": {"count": 1, "docs": [{"disposition": 2}]}}}
    assert compare_documents(document, document, []) == []


def test_random_ids_compare_by_number_not_by_value() -> None:
    actual = {"id": f"transient:sighting-{RANDOM_A}", "ref": f"transient:sighting-{RANDOM_A}"}
    expected = {"id": f"transient:sighting-{RANDOM_B}", "ref": f"transient:sighting-{RANDOM_B}"}
    assert compare_documents(actual, expected, []) == []


def test_random_ids_with_a_different_link_structure_differ() -> None:
    actual = {"id": f"transient:sighting-{RANDOM_A}", "ref": f"transient:sighting-{RANDOM_C}"}
    expected = {"id": f"transient:sighting-{RANDOM_B}", "ref": f"transient:sighting-{RANDOM_B}"}
    assert compare_documents(actual, expected, []) == [
        'ref: expected "transient:sighting-#1", got "transient:sighting-#2"'
    ]


def test_uuid5_ids_are_compared_exactly() -> None:
    other_named = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://example.com/y"))
    differences = compare_documents(
        {"id": f"transient:indicator-{other_named}"}, {"id": f"transient:indicator-{NAMED}"}, []
    )
    assert len(differences) == 1 and differences[0].startswith("id: expected")


def test_integer_and_float_with_the_same_value_are_equal() -> None:
    assert compare_documents({"score": 1}, {"score": 1.0}, []) == []


def test_true_and_one_are_not_equal() -> None:
    assert compare_documents({"flag": 1}, {"flag": True}, []) == ["flag: expected true, got 1"]
    assert compare_documents({"flag": False}, {"flag": 0}, []) == ["flag: expected 0, got false"]


def test_value_difference_names_its_path() -> None:
    actual = {"data": {"verdicts": {"docs": [{"disposition": 3}]}}}
    expected = {"data": {"verdicts": {"docs": [{"disposition": 2}]}}}
    assert compare_documents(actual, expected, []) == ["data.verdicts.docs[0].disposition: expected 2, got 3"]


def test_missing_and_unexpected_keys_are_reported_with_paths() -> None:
    assert compare_documents({"data": {}}, {"data": {"judgements": {}}}, []) == ["data.judgements: missing key"]
    assert compare_documents({"errors": [{"code": "x", "foo": 1}]}, {"errors": [{"code": "x"}]}, []) == [
        "errors[0]: unexpected key 'foo'"
    ]


def test_type_difference_is_reported() -> None:
    assert compare_documents({"n": "2"}, {"n": 2}, []) == ['n: expected 2, got "2"']


def test_ordered_lists_compare_in_order() -> None:
    differences = compare_documents({"docs": [2, 1]}, {"docs": [1, 2]}, [])
    assert differences == ["docs[0]: expected 1, got 2", "docs[1]: expected 2, got 1"]


def test_list_length_difference_is_reported() -> None:
    assert compare_documents({"docs": [1]}, {"docs": [1, 2]}, []) == ["docs: expected 2 elements, got 1"]


def test_unordered_lists_compare_as_multisets() -> None:
    assert compare_documents({"docs": [2, 1, 1]}, {"docs": [1, 2, 1]}, ["docs"]) == []
    assert compare_documents({"docs": [2, 2, 1]}, {"docs": [1, 2, 1]}, ["docs"]) != []


def test_unordered_list_with_ids_inside_matches_in_any_order() -> None:
    def relation(source: str, target: str) -> dict:
        return {"source_ref": f"transient:s-{source}", "target_ref": f"transient:j-{target}"}

    actual = {"data": {"relationships": {"docs": [relation(RANDOM_A, RANDOM_B), relation(RANDOM_C, RANDOM_A)]}}}
    expected = {"data": {"relationships": {"docs": [relation(RANDOM_B, RANDOM_A), relation(RANDOM_A, RANDOM_C)]}}}
    assert compare_documents(actual, expected, ["data.relationships.docs"]) == []


def test_nested_unordered_path_with_element_marker() -> None:
    actual = {"docs": [{"relations": [1, 2]}, {"relations": [3, 4]}]}
    expected = {"docs": [{"relations": [2, 1]}, {"relations": [4, 3]}]}
    assert compare_documents(actual, expected, ["docs[].relations"]) == []
    # The outer list is still ordered.
    assert compare_documents(actual, {"docs": expected["docs"][::-1]}, ["docs[].relations"]) != []


def test_unordered_list_reports_the_one_differing_element() -> None:
    differences = compare_documents({"docs": [{"v": 1}, {"v": 3}]}, {"docs": [{"v": 2}, {"v": 1}]}, ["docs"])
    assert differences == ["docs[1].v: expected 2, got 3"]


def test_unordered_list_reports_missing_and_unexpected_elements() -> None:
    differences = compare_documents({"docs": [1, 5, 6]}, {"docs": [1, 2]}, ["docs"])
    assert differences == ["docs: missing element 2", "docs[1]: unexpected element 5", "docs[2]: unexpected element 6"]


def test_long_values_are_truncated() -> None:
    [difference] = compare_documents({"text": "a" * 500}, {"text": "b"}, [])
    assert len(difference) < 200


# ---------------------------------------------------------------- call_matches


def make_call(url: str, method: str = "GET", headers: dict | None = None, json: object = None, data: object = None) -> dict:
    return {"method": method, "url": url, "headers": headers or {}, "json": json, "data": data}


def test_identical_calls_match() -> None:
    call = make_call("https://api.example.com/v2/check?ip=1.2.3.4", headers={"Key": "k"})
    assert call_matches(call, call)


def test_method_is_case_insensitive_but_must_be_the_same() -> None:
    recorded = make_call("https://api.example.com/x", method="GET")
    assert call_matches(make_call("https://api.example.com/x", method="get"), recorded)
    assert not call_matches(make_call("https://api.example.com/x", method="POST"), recorded)


def test_query_order_is_ignored_and_values_are_decoded() -> None:
    recorded = make_call("https://api.example.com/check?a=1&b=x%20y&a=2")
    assert call_matches(make_call("https://api.example.com/check?b=x+y&a=1&a=2"), recorded)
    assert not call_matches(make_call("https://api.example.com/check?a=1&b=x%20y"), recorded)
    assert not call_matches(make_call("https://api.example.com/check?a=2&b=x%20y&a=2"), recorded)


def test_blank_query_values_count() -> None:
    recorded = make_call("https://api.example.com/check?a=&b=1")
    assert call_matches(make_call("https://api.example.com/check?b=1&a="), recorded)
    assert not call_matches(make_call("https://api.example.com/check?b=1"), recorded)


def test_path_encoding_is_compared_exactly() -> None:
    recorded = make_call("https://api.example.com/v2.0/ip/*@%5E")
    assert call_matches(make_call("https://api.example.com/v2.0/ip/*@%5E"), recorded)
    assert not call_matches(make_call("https://api.example.com/v2.0/ip/*@^"), recorded)
    assert not call_matches(make_call("https://api.example.com/v2.0/ip/*@%5e"), recorded)
    assert not call_matches(make_call("https://api.example.com/v2.0/ip/*@%5E/"), recorded)


def test_host_case_default_port_and_empty_path() -> None:
    recorded = make_call("https://api.example.com/")
    assert call_matches(make_call("https://API.Example.com:443"), recorded)
    assert not call_matches(make_call("https://api.example.com:8443/"), recorded)
    assert not call_matches(make_call("http://api.example.com/"), recorded)
    assert not call_matches(make_call("https://other.example.com/"), recorded)


def test_user_agent_is_ignored_and_extra_headers_allowed() -> None:
    recorded = make_call("https://api.example.com/", headers={"User-Agent": "Recorder/1.0", "Key": "k"})
    actual = make_call("https://api.example.com/", headers={"user-agent": "Engine/9", "KEY": "k", "Accept": "*/*"})
    assert call_matches(actual, recorded)


def test_missing_or_different_recorded_header_fails() -> None:
    recorded = make_call("https://api.example.com/", headers={"Key": "k", "Accept": "application/json"})
    assert not call_matches(make_call("https://api.example.com/", headers={"Key": "k"}), recorded)
    assert not call_matches(
        make_call("https://api.example.com/", headers={"Key": "other", "Accept": "application/json"}), recorded
    )


def test_json_body_compares_as_json() -> None:
    recorded = make_call("https://api.example.com/", method="POST", json={"q": [1, 2], "flag": True})
    assert call_matches(make_call("https://api.example.com/", method="POST", json={"flag": True, "q": [1.0, 2]}), recorded)
    assert not call_matches(make_call("https://api.example.com/", method="POST", json={"q": [2, 1], "flag": True}), recorded)
    assert not call_matches(make_call("https://api.example.com/", method="POST", json={"q": [1, 2], "flag": 1}), recorded)
    assert not call_matches(make_call("https://api.example.com/", method="POST"), recorded)


def test_json_body_ids_are_not_canonicalised() -> None:
    recorded = make_call("https://api.example.com/", method="POST", json={"id": f"transient:s-{RANDOM_A}"})
    actual = make_call("https://api.example.com/", method="POST", json={"id": f"transient:s-{RANDOM_B}"})
    assert not call_matches(actual, recorded)


def test_form_body_matches_encoded_or_as_a_dict() -> None:
    recorded = make_call(
        "https://login.example.com/token", method="POST", data={"grant_type": "client_credentials", "scope": ["a", "b"]}
    )
    url = "https://login.example.com/token"
    assert call_matches(make_call(url, method="POST", data="scope=a&grant_type=client_credentials&scope=b"), recorded)
    assert call_matches(make_call(url, method="POST", data=b"grant_type=client_credentials&scope=a&scope=b"), recorded)
    assert call_matches(make_call(url, method="POST", data={"scope": ["a", "b"], "grant_type": "client_credentials"}), recorded)
    assert not call_matches(make_call(url, method="POST", data="grant_type=client_credentials&scope=a"), recorded)
    assert not call_matches(make_call(url, method="POST", data={"grant_type": "password", "scope": ["a", "b"]}), recorded)


def test_form_values_compare_as_strings() -> None:
    recorded = make_call("https://api.example.com/", method="POST", data={"limit": "10"})
    assert call_matches(make_call("https://api.example.com/", method="POST", data={"limit": 10}), recorded)


def test_raw_body_compares_as_text() -> None:
    recorded = make_call("https://api.example.com/", method="POST", data="SELECT 1")
    assert call_matches(make_call("https://api.example.com/", method="POST", data=b"SELECT 1"), recorded)
    assert not call_matches(make_call("https://api.example.com/", method="POST", data="SELECT 2"), recorded)


def test_call_recorded_without_body_must_carry_none() -> None:
    recorded = make_call("https://api.example.com/")
    assert call_matches(make_call("https://api.example.com/", data=b""), recorded)
    assert not call_matches(make_call("https://api.example.com/", json={}), recorded)
    assert not call_matches(make_call("https://api.example.com/", data="x=1"), recorded)


def test_describe_call() -> None:
    assert describe_call(make_call("https://api.example.com/x?a=1", method="post")) == "POST https://api.example.com/x?a=1"


# -------------------------------------------------------------- StandInLedger


def vendor_call(url: str, status: int, body: object) -> dict:
    return {"request": make_call(url), "response": {"status": status, "headers": {}, "json": body}}


def test_ledger_answers_identical_calls_in_recorded_order() -> None:
    status_url = "https://api.example.com/status/1"
    ledger = StandInLedger([vendor_call(status_url, 200, {"done": False}), vendor_call(status_url, 200, {"done": True})])
    assert ledger.answer(make_call(status_url))["json"] == {"done": False}
    assert ledger.answer(make_call(status_url))["json"] == {"done": True}
    assert ledger.problems() == []


def test_ledger_matches_by_content_not_position() -> None:
    ledger = StandInLedger([vendor_call("https://a.example.com/", 200, "a"), vendor_call("https://b.example.com/", 201, "b")])
    assert ledger.answer(make_call("https://b.example.com/"))["status"] == 201
    assert ledger.answer(make_call("https://a.example.com/"))["status"] == 200
    assert ledger.problems() == []


def test_ledger_reports_unexpected_and_never_made_calls() -> None:
    ledger = StandInLedger([vendor_call("https://a.example.com/x", 200, {}), vendor_call("https://a.example.com/x", 200, {})])
    assert ledger.answer(make_call("https://a.example.com/x")) is not None
    assert ledger.answer(make_call("https://a.example.com/y", method="post")) is None
    assert ledger.problems() == [
        "unexpected call: POST https://a.example.com/y",
        "call never made: GET https://a.example.com/x",
    ]


def test_ledger_response_edits_do_not_leak_into_the_case() -> None:
    ledger = StandInLedger([vendor_call("https://a.example.com/", 200, {"k": 1}), vendor_call("https://a.example.com/", 200, {"k": 1})])
    ledger.answer(make_call("https://a.example.com/"))["json"]["k"] = 2
    assert ledger.answer(make_call("https://a.example.com/"))["json"] == {"k": 1}


def test_ledger_gives_each_recorded_response_once_under_concurrency() -> None:
    url = "https://api.example.com/poll"
    ledger = StandInLedger([vendor_call(url, 200, n) for n in range(50)])
    answers: list[object] = []
    answers_lock = threading.Lock()

    def call_many() -> None:
        for _ in range(10):
            response = ledger.answer(make_call(url))
            with answers_lock:
                answers.append(None if response is None else response["json"])

    threads = [threading.Thread(target=call_many) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == list(range(50))
    assert ledger.problems() == []


@pytest.mark.parametrize("extra_calls", [1, 3])
def test_ledger_reports_each_surplus_call(extra_calls: int) -> None:
    url = "https://api.example.com/once"
    ledger = StandInLedger([vendor_call(url, 200, {})])
    for _ in range(1 + extra_calls):
        ledger.answer(make_call(url))
    assert ledger.problems() == [f"unexpected call: GET {url}"] * extra_calls
