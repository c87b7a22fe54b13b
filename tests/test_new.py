"""relay new: a starter spec that lints clean and runs on its own examples out of the box."""
import json

from engine.commands.cli import main
from engine.commands.lint import lint_paths


def test_the_starter_lints_clean_and_replays(tmp_path, capsys):
    vendors = tmp_path / "vendors"
    assert main(["new", "acme-intel", "--vendors", str(vendors)]) == 0
    assert "relay try acme-intel ip 192.0.2.10 --replay examples" in capsys.readouterr().out
    report = lint_paths([vendors])
    assert report.problems == [], report.text()
    for endpoint in ("observe", "deliberate", "refer", "health"):
        code = main(["try", "acme-intel", "ip", "192.0.2.10", "--replay", "examples", "--endpoint", endpoint,
                     "--vendors", str(vendors), "--json"])
        trace = json.loads(capsys.readouterr().out)
        assert code == 0, trace
    assert trace["answer"] == {"data": {"status": "ok"}}


def test_the_starter_makes_every_kind_of_document(tmp_path, capsys):
    vendors = tmp_path / "vendors"
    main(["new", "acme-intel", "--vendors", str(vendors)])
    capsys.readouterr()
    main(["try", "acme-intel", "ip", "192.0.2.10", "--replay", "examples", "--vendors", str(vendors), "--json"])
    data = json.loads(capsys.readouterr().out)["answer"]["data"]
    assert {key: value["count"] for key, value in data.items()} == {"verdicts": 1, "judgements": 1, "sightings": 2}
    assert data["verdicts"]["docs"][0]["disposition_name"] == "Malicious"  # score 74
    assert [s["observed_time"]["start_time"] for s in data["sightings"]["docs"]] == \
        ["2026-11-26T17:30:00Z", "2026-11-20T08:00:00Z"]  # newest first


def test_new_refuses_bad_names_and_existing_files(tmp_path, capsys):
    vendors = tmp_path / "vendors"
    assert main(["new", "Bad Name", "--vendors", str(vendors)]) == 2
    assert main(["new", "acme", "--vendors", str(vendors)]) == 0
    assert main(["new", "acme", "--vendors", str(vendors)]) == 2
    assert "exists" in capsys.readouterr().err


def served_health(spec) -> dict:
    """/health of a spec, asked of the relay itself with its vendor a stand-in serving the examples."""
    from engine.commands.standin import StandInVendor, routes_from_examples
    from tests.support.relay import RelayUnderTest
    with StandInVendor(routes_from_examples(spec)) as stand_in:
        relay = RelayUnderTest({spec.name: spec}, {spec.name: stand_in.origin})
        answer = relay.post(f"/{spec.name}/health", claims={c.name: "k" for c in spec.credentials}).get_json()
    paths = {call.path for call in stand_in.received}
    return answer, paths


def test_the_starters_health_works_when_served(tmp_path):
    """Found by a new user: the starter's /health used the lookup step, which reads the observable
    that /health never has, so a deployed relay answered an error to every health check."""
    from engine import load_spec
    main(["new", "acme-intel", "--vendors", str(tmp_path)])
    answer, paths = served_health(load_spec(tmp_path / "acme-intel.yaml"))
    assert answer == {"data": {"status": "ok"}}
    assert paths == {"/v1/lookup"}
