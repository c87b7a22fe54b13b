"""Tests for engine.ctim and engine/schema/ctim.schema.json."""
from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.ctim import (
    load_schema,
    validate_entity,
    validate_observe_data,
    validate_refer_data,
    validate_respond_data,
)

JUDGEMENT_ID = "transient:judgement-1f0c6b1e-3a5d-4a8e-9a55-2d7b0f4f6c11"
SIGHTING_ID = "transient:sighting-6b3e0c55-1d9a-4f1e-8f43-0c9f3e2a7b10"
INDICATOR_ID = "transient:indicator-2c7d5a0e-8a4b-5c3d-9e1f-4b6a8c2d0e13"
RELATIONSHIP_ID = "transient:relationship-9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
INCIDENT_ID = "transient:incident-4d5e6f70-8192-4a3b-9c4d-5e6f708192a3"
NOTE_ID = "transient:note-7e8f9012-3456-4789-8abc-def012345678"
LONG_ID = "https://private.intel.amp.cisco.com/ctia/judgement/judgement-de305d54-75b4-431b-adb2-eb6b9e546014"
IP = {"type": "ip", "value": "192.0.2.10"}


def verdict() -> dict[str, Any]:
    return {
        "type": "verdict",
        "disposition": 2,
        "disposition_name": "Malicious",
        "observable": dict(IP),
        "valid_time": {"start_time": "2024-01-01T00:00:00.000Z", "end_time": "2024-01-08T00:00:00.000Z"},
        "judgement_id": JUDGEMENT_ID,
    }


def judgement() -> dict[str, Any]:
    return {
        "id": JUDGEMENT_ID,
        "type": "judgement",
        "schema_version": "1.3.29",
        "source": "Example Intel",
        "observable": dict(IP),
        "disposition": 2,
        "disposition_name": "Malicious",
        "priority": 85,
        "confidence": "Medium",
        "severity": "Medium",
        "valid_time": {"start_time": "2024-01-01T00:00:00.000Z"},
    }


def sighting() -> dict[str, Any]:
    return {
        "id": SIGHTING_ID,
        "type": "sighting",
        "schema_version": "1.3.29",
        "count": 1,
        "confidence": "High",
        "observed_time": {"start_time": "2024-01-01T10:00:00.000Z"},
    }


def indicator() -> dict[str, Any]:
    return {
        "id": INDICATOR_ID,
        "type": "indicator",
        "schema_version": "1.3.29",
        "producer": "Example Intel",
        "valid_time": {},
    }


def relationship() -> dict[str, Any]:
    return {
        "id": RELATIONSHIP_ID,
        "type": "relationship",
        "schema_version": "1.3.29",
        "relationship_type": "sighting-of",
        "source_ref": SIGHTING_ID,
        "target_ref": INDICATOR_ID,
    }


def incident() -> dict[str, Any]:
    return {
        "id": INCIDENT_ID,
        "type": "incident",
        "schema_version": "1.3.29",
        "confidence": "High",
        "status": "New",
        "incident_time": {"opened": "2024-01-01T10:05:00.000Z"},
    }


def note() -> dict[str, Any]:
    return {
        "id": NOTE_ID,
        "type": "note",
        "schema_version": "1.3.29",
        "note_class": "analysis",
        "content": "Markdown text",
        "related_entities": [{"entity_type": "incident", "entity_id": INCIDENT_ID}],
    }


MINIMAL = [verdict, judgement, sighting, indicator, relationship, incident, note]


def bundle(*docs: dict[str, Any]) -> dict[str, Any]:
    return {"count": len(docs), "docs": list(docs)}


def observe_data() -> dict[str, Any]:
    return {
        "verdicts": bundle(verdict()),
        "judgements": bundle(judgement()),
        "sightings": bundle(sighting()),
        "indicators": bundle(indicator()),
        "relationships": bundle(relationship()),
        "incidents": bundle(incident()),
        "notes": bundle(note()),
    }


def ref() -> dict[str, Any]:
    return {
        "id": "ref-example-search-ip-192.0.2.10",
        "title": "Search for this IP",
        "description": "Lookup this IP on Example",
        "url": "https://example.com/search?q=192.0.2.10",
        "categories": ["Search", "Example"],
    }


def action() -> dict[str, Any]:
    return {
        "id": "example-block",
        "title": "Block this IP",
        "description": "Add the IP to the Example block list",
        "categories": ["Example", "Block"],
        "query-params": {"observable_type": "ip", "observable_value": "192.0.2.10"},
    }


# --------------------------------------------------------------------------- the schema file


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert len(schema["$defs"]["ObservableType"]["enum"]) == 63


def test_schema_is_loaded_once() -> None:
    assert load_schema() is load_schema()


# --------------------------------------------------------------------------- valid documents


@pytest.mark.parametrize("make", MINIMAL, ids=lambda f: f.__name__)
def test_minimal_entities_are_valid(make) -> None:
    assert validate_entity(make()) == []


def test_rich_sighting_is_valid() -> None:
    doc = sighting()
    doc.update(
        title="Seen on host-1",
        description="**markdown**",
        source="Example EDR",
        source_uri="https://edr.example.com/events/1",
        internal=True,
        resolution="detected",
        sensor="endpoint",
        severity="Critical",
        tlp="amber",
        timestamp="2024-01-01T10:00:00Z",
        observables=[{"type": "domain", "value": "example.com"}],
        relations=[{
            "origin": "Example",
            "relation": "Resolved_To",
            "relation_info": {"anything": [1, 2]},
            "source": {"type": "domain", "value": "example.com"},
            "related": dict(IP),
        }],
        targets=[{
            "type": "endpoint.laptop",
            "os": "Windows 11",
            "observables": [{"type": "hostname", "value": "host-1"}],
            "observed_time": {"start_time": "2024-01-01T10:00:00Z", "end_time": "2024-01-01T10:00:00Z"},
        }],
        sensor_coordinates={"type": "endpoint", "observables": [{"type": "hostname", "value": "host-1"}]},
        data={
            "columns": [{"name": "port", "type": "integer"}, {"name": "proto", "type": "string", "required": False}],
            "rows": [[22, "tcp"], [53, None]],
            "row_count": 2,
        },
        external_references=[{"source_name": "Example", "url": "https://example.com/x", "hashes": ["abc"]}],
        activity_interval={"start_time": "2024-01-01T09:00:00Z", "end_time": "2024-01-01T11:00:00Z"},
        context={"netflow_events": [{
            "type": "NetflowEvent",
            "time": {"start_time": "2024-01-01T10:00:00Z"},
            "process_id": 4,
            "process_name": "svc.exe",
            "traffic": {
                "protocol": 6,
                "source_ip": "10.0.0.1",
                "destination_ip": "192.0.2.10",
                "source_port": 50000,
                "destination_port": 443,
                "direction": "outgoing",
            },
        }]},
    )
    assert validate_entity(doc) == []


def test_rich_indicator_and_incident_are_valid() -> None:
    ind = indicator()
    ind.update(
        indicator_type=["IP Watchlist", "C2"],
        tags=["botnet"],
        confidence="High",
        kill_chain_phases=[
            {"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "delivery"},
            {"kill_chain_name": "mitre-attack", "phase_name": "defense-evasion"},
        ],
        composite_indicator_expression={"operator": "and", "indicator_ids": [LONG_ID]},
        specification={"type": "Snort", "snort_sig": "alert tcp any any -> any any"},
    )
    inc = incident()
    inc.update(
        status="Closed: False Positive",
        promotion_method="Automated",
        detection_status="active",
        scores={"ttp": 50, "global": 1.5},
        meta={"ai": True, "count": 3, "who": "bot"},
        categories=["Malicious Code"],
    )
    assert validate_entity(ind) == []
    assert validate_entity(inc) == []


def test_schema_version_may_be_any_string() -> None:
    doc = judgement()
    doc["schema_version"] = "foo"
    assert validate_entity(doc) == []


def test_long_ids_and_offsets_are_accepted() -> None:
    doc = judgement()
    doc["id"] = LONG_ID
    # 10:00+02:00 is 08:00Z, before the 09:00Z end
    doc["valid_time"] = {"start_time": "2024-01-01T10:00:00+02:00", "end_time": "2024-01-01T09:00:00Z"}
    assert validate_entity(doc) == []


def test_forever_end_time_is_accepted() -> None:
    doc = judgement()
    doc["valid_time"]["end_time"] = "2525-01-01T00:00:00.000Z"
    assert validate_entity(doc) == []


def test_whole_observe_refer_and_respond_payloads_are_valid() -> None:
    assert validate_observe_data(observe_data()) == []
    assert validate_observe_data({}) == []
    assert validate_refer_data([ref()]) == []
    assert validate_refer_data([]) == []
    assert validate_respond_data([action()]) == []


# --------------------------------------------------------------------------- broken entities


def test_missing_required_field() -> None:
    doc = judgement()
    del doc["source"]
    assert validate_entity(doc) == ["source: required field missing"]


def test_missing_nested_required_field() -> None:
    doc = sighting()
    doc["observed_time"] = {"end_time": "2024-01-01T10:00:00Z"}
    assert validate_entity(doc) == ["observed_time.start_time: required field missing"]


def test_unknown_field() -> None:
    doc = indicator()
    doc["colour"] = "red"
    assert validate_entity(doc) == ["colour: unknown field"]


def test_verdict_has_no_base_fields() -> None:
    doc = verdict()
    doc["id"] = "transient:verdict-1"
    assert validate_entity(doc) == ["id: unknown field"]


def test_bad_enums() -> None:
    doc = judgement()
    doc["confidence"] = "medium"
    doc["observable"]["type"] = "ipv4"
    doc["tlp"] = "orange"
    problems = validate_entity(doc)
    assert len(problems) == 3
    assert problems[0].startswith("confidence: 'medium' is not one of")
    assert problems[1] == "observable.type: 'ipv4' is not a valid ObservableType"
    assert problems[2].startswith("tlp: 'orange' is not one of")


def test_bad_indicator_type_and_incident_status() -> None:
    ind = indicator()
    ind["indicator_type"] = ["IP Watchlist", "Botnet"]
    inc = incident()
    inc["status"] = "Pending"
    assert validate_entity(ind) == ["indicator_type[1]: 'Botnet' is not a valid IndicatorType"]
    assert validate_entity(inc) == ["status: 'Pending' is not a valid IncidentStatus"]


def test_disposition_name_mismatch() -> None:
    doc = judgement()
    doc["disposition_name"] = "Clean"
    assert validate_entity(doc) == ["disposition_name: 'Clean' does not match disposition 2"]


def test_disposition_out_of_range() -> None:
    doc = verdict()
    doc["disposition"] = 6
    assert validate_entity(doc) == ["disposition: 6 is not one of [1, 2, 3, 4, 5]"]


def test_end_before_start_in_valid_time() -> None:
    doc = verdict()
    doc["valid_time"] = {"start_time": "2024-01-08T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"}
    assert validate_entity(doc) == [
        "valid_time.end_time: end_time '2024-01-01T00:00:00Z' is before start_time '2024-01-08T00:00:00Z'"
    ]


@pytest.mark.parametrize("field", ["observed_time", "activity_interval", "detection_interval", "modification_interval"])
def test_end_before_start_in_observed_times(field: str) -> None:
    doc = sighting()
    doc[field] = {"start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"}
    problems = validate_entity(doc)
    assert len(problems) == 1
    assert problems[0].startswith(f"{field}.end_time: end_time ")


def test_end_before_start_in_target() -> None:
    doc = sighting()
    doc["targets"] = [{
        "type": "endpoint",
        "observables": [{"type": "hostname", "value": "h"}],
        "observed_time": {"start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"},
    }]
    problems = validate_entity(doc)
    assert len(problems) == 1
    assert problems[0].startswith("targets[0].observed_time.end_time: ")


@pytest.mark.parametrize("value", ["1969-12-31T23:59:59Z", "2525-01-01T00:01:00Z", "3000-01-01T00:00:00Z"])
def test_time_out_of_range(value: str) -> None:
    doc = sighting()
    doc["observed_time"] = {"start_time": value}
    problems = validate_entity(doc)
    assert len(problems) == 1
    assert problems[0].startswith(f"observed_time.start_time: '{value}' is not a valid Time: outside")


@pytest.mark.parametrize("value", ["2024-01-01", "2024-01-01 10:00:00Z", "2024-01-01T10:00:00", "yesterday"])
def test_time_not_iso_8601(value: str) -> None:
    doc = judgement()
    doc["timestamp"] = value
    assert validate_entity(doc) == [f"timestamp: '{value}' is not a valid Time"]


def test_time_not_a_real_date() -> None:
    doc = judgement()
    doc["timestamp"] = "2024-02-30T00:00:00Z"
    assert validate_entity(doc) == ["timestamp: '2024-02-30T00:00:00Z' is not a valid Time: not a real date/time"]


@pytest.mark.parametrize("bad_id", [
    "judgement-1f0c6b1e",
    "transient-judgement-1",
    "https://intel.example.com/ctia/judgement/sighting-de305d54-75b4-431b-adb2-eb6b9e546014",
    "https://intel.example.com/ctia/judgement/judgement-DE305D54-75B4-431B-ADB2-EB6B9E546014",
])
def test_bad_id(bad_id: str) -> None:
    doc = judgement()
    doc["id"] = bad_id
    assert validate_entity(doc) == [f"id: {bad_id!r} is not a valid ID"]


def test_bad_reference() -> None:
    doc = relationship()
    doc["target_ref"] = "indicator-1"
    assert validate_entity(doc) == ["target_ref: 'indicator-1' is not a valid ID"]


def test_id_too_long() -> None:
    doc = judgement()
    doc["id"] = "transient:" + "x" * 2048
    assert validate_entity(doc) == ["id: too long: 2058 characters, at most 2048 allowed (ID)"]


def test_over_long_title() -> None:
    doc = sighting()
    doc["title"] = "x" * 1024
    assert validate_entity(doc) == []
    doc["title"] = "x" * 1025
    assert validate_entity(doc) == ["title: too long: 1025 characters, at most 1024 allowed (ShortString)"]


def test_over_long_description_and_short_description() -> None:
    doc = indicator()
    doc["description"] = "d" * 5001
    doc["short_description"] = "s" * 2049
    assert validate_entity(doc) == [
        "description: too long: 5001 characters, at most 5000 allowed (Markdown)",
        "short_description: too long: 2049 characters, at most 2048 allowed (MedString)",
    ]


def test_negative_count_and_wrong_types() -> None:
    doc = sighting()
    doc["count"] = -1
    doc["internal"] = "yes"
    assert validate_entity(doc) == [
        "count: -1 is less than the minimum of 0",
        "internal: expected boolean, got string",
    ]


def test_kill_chain_lockheed_martin_phase() -> None:
    doc = indicator()
    doc["kill_chain_phases"] = [{"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "defense-evasion"}]
    problems = validate_entity(doc)
    assert len(problems) == 1
    assert problems[0].startswith("kill_chain_phases[0].phase_name: 'defense-evasion' is not one of ")


def test_kill_chain_open_vocab_is_lowercase() -> None:
    doc = indicator()
    doc["kill_chain_phases"] = [{"kill_chain_name": "mitre-attack", "phase_name": "Defense Evasion"}]
    assert validate_entity(doc) == ["kill_chain_phases[0].phase_name: 'Defense Evasion' is not a valid OpenVocab"]


def test_indicator_specification_is_discriminated() -> None:
    doc = indicator()
    doc["specification"] = {"type": "Judgement", "judgements": [JUDGEMENT_ID]}
    assert validate_entity(doc) == ["specification.required_judgements: required field missing"]


def test_sighting_data_table_column_type() -> None:
    doc = sighting()
    doc["data"] = {"columns": [{"name": "n", "type": "text"}], "rows": [["a"]]}
    problems = validate_entity(doc)
    assert len(problems) == 1
    assert problems[0].startswith("data.columns[0].type: 'text' is not one of")


def test_uri_with_whitespace() -> None:
    doc = judgement()
    doc["source_uri"] = "https://example.com/a b"
    assert validate_entity(doc) == ["source_uri: 'https://example.com/a b' is not a valid URI"]


def test_unknown_entity_type_and_non_object() -> None:
    assert validate_entity({"type": "judgment"}) == ["type: unknown entity type 'judgment'"]
    assert validate_entity({"id": JUDGEMENT_ID}) == ["type: required field missing"]
    assert validate_entity([judgement()]) == ["<root>: expected a CTIM entity object, got array"]


# --------------------------------------------------------------------------- observe / deliberate data


def test_observe_paths_include_the_envelope() -> None:
    data = observe_data()
    data["judgements"]["docs"][0]["disposition_name"] = "Clean"
    del data["sightings"]["docs"][0]["confidence"]
    assert validate_observe_data(data) == [
        "judgements.docs[0].disposition_name: 'Clean' does not match disposition 2",
        "sightings.docs[0].confidence: required field missing",
    ]


def test_count_mismatch() -> None:
    data = observe_data()
    data["judgements"]["count"] = 3
    assert validate_observe_data(data) == ["judgements.count: count 3 does not match len(docs) 1"]


def test_envelope_shape() -> None:
    lone_verdict = verdict()
    del lone_verdict["judgement_id"]
    data = {"verdicts": {"docs": [lone_verdict]}, "judgments": bundle(judgement())}
    assert validate_observe_data(data) == [
        "judgments: unknown entity key",
        "verdicts.count: required field missing",
    ]
    assert validate_observe_data([]) == ["<root>: expected an object, got array"]


def test_doc_under_the_wrong_key() -> None:
    data = {"judgements": bundle(sighting())}
    problems = validate_observe_data(data)
    assert "judgements.docs[0].type: 'sighting' is not 'judgement'" in problems


def test_dangling_relationship_ref() -> None:
    data = observe_data()
    data["relationships"]["docs"][0]["target_ref"] = "transient:indicator-00000000-0000-4000-8000-000000000000"
    assert validate_observe_data(data) == [
        "relationships.docs[0].target_ref: transient id 'transient:indicator-00000000-0000-4000-8000-000000000000' "
        "does not match any id in this response"
    ]


def test_long_id_refs_need_not_resolve() -> None:
    data = observe_data()
    data["relationships"]["docs"][0]["target_ref"] = LONG_ID
    data["verdicts"]["docs"][0]["judgement_id"] = LONG_ID
    assert validate_observe_data(data) == []


def test_verdict_judgement_id_must_name_a_judgement() -> None:
    data = observe_data()
    data["verdicts"]["docs"][0]["judgement_id"] = SIGHTING_ID  # present, but not a judgement
    problems = validate_observe_data(data)
    assert problems == [
        f"verdicts.docs[0].judgement_id: transient id {SIGHTING_ID!r} does not match any judgement id in this response"
    ]


def test_dangling_note_entity_id() -> None:
    data = observe_data()
    del data["incidents"]
    assert validate_observe_data(data) == [
        f"notes.docs[0].related_entities[0].entity_id: transient id {INCIDENT_ID!r} "
        "does not match any id in this response"
    ]


def test_duplicate_ids() -> None:
    data = observe_data()
    second = copy.deepcopy(data["indicators"]["docs"][0])
    second["producer"] = "Other"
    data["indicators"] = bundle(data["indicators"]["docs"][0], second)
    assert validate_observe_data(data) == [
        f"indicators.docs[1].id: duplicate id {INDICATOR_ID!r} (first at indicators.docs[0])"
    ]


def test_deliberate_time_order_inside_envelope() -> None:
    v = verdict()
    v["valid_time"] = {"start_time": "2024-01-08T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"}
    del v["judgement_id"]
    problems = validate_observe_data({"verdicts": bundle(v)})
    assert problems == [
        "verdicts.docs[0].valid_time.end_time: end_time '2024-01-01T00:00:00Z' is before start_time '2024-01-08T00:00:00Z'"
    ]


def test_other_entity_kinds_get_base_checks() -> None:
    malware = {"id": "transient:malware-1", "type": "malware", "schema_version": "1.3.29", "title": "Zeus"}
    assert validate_observe_data({"malwares": bundle(malware)}) == []
    del malware["schema_version"]
    assert validate_observe_data({"malwares": bundle(malware)}) == [
        "malwares.docs[0].schema_version: required field missing"
    ]


# --------------------------------------------------------------------------- refer / respond


def test_refer_missing_url_and_bad_scheme() -> None:
    missing = ref()
    del missing["url"]
    relative = ref()
    relative["url"] = "/search?q=1"
    assert validate_refer_data([missing, relative]) == [
        "[0].url: required field missing",
        "[1].url: '/search?q=1' is not a valid absolute http(s) URL",
    ]


def test_refer_categories_unique_and_required() -> None:
    dup = ref()
    dup["categories"] = ["Search", "Search"]
    none = ref()
    del none["categories"]
    assert validate_refer_data([dup, none]) == [
        "[0].categories: ['Search', 'Search'] has non-unique elements",
        "[1].categories: required field missing",
    ]


def test_refer_data_must_be_a_list() -> None:
    assert validate_refer_data({}) == ["<root>: expected array, got object"]


def test_respond_query_params() -> None:
    doc = action()
    del doc["query-params"]["observable_value"]
    doc["query-params"]["indicator_id"] = 7
    doc["extra"] = 1
    assert validate_respond_data([doc]) == [
        "[0].extra: unknown field",
        "[0].query-params.indicator_id: expected string, got number",
        "[0].query-params.observable_value: required field missing",
    ]
