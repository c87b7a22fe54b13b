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
