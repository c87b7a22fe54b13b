"""Compiled specs kept between starts (engine/spec/cache.py): read back only while neither the spec
nor the engine has changed, never at the price of a wrong or broken spec."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.commands.standin import StandInVendor, routes_from_examples
from engine.spec import load as loading
from engine.spec.cache import SpecCache
from engine.spec.load import load_catalogue
from tests.support.relay import RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def catalogue(tmp_path):
    folder = tmp_path / "vendors"
    shutil.copytree(ROOT / "vendors", folder)
    return folder


def compiled(monkeypatch) -> list:
    """The files compiled from YAML from now on."""
    seen = []
    real = loading.check_file
    monkeypatch.setattr(loading, "check_file", lambda path: seen.append(Path(path).name) or real(path))
    return seen


def test_an_unchanged_catalogue_is_read_back_and_answers_the_same(catalogue, tmp_path, monkeypatch):
    cache = SpecCache(tmp_path / "cache")
    first = load_catalogue(catalogue, cache)
    seen = compiled(monkeypatch)
    again = load_catalogue(catalogue, cache)
    assert seen == [] and again.specs.keys() == first.specs.keys()
    assert again.specs["abuseipdb"].examples is None  # kept without them: serving needs none
    answers = []
    for spec in (first.specs["abuseipdb"], again.specs["abuseipdb"]):
        with StandInVendor(routes_from_examples(first.specs["abuseipdb"])) as vendor:
            relay = RelayUnderTest({"abuseipdb": spec}, {"abuseipdb": vendor.origin})
            answer = relay.post("/abuseipdb/deliberate/observables", [{"type": "ip", "value": "192.0.2.45"}],
                                {"key": "k"}).get_json()
        answers.append(answer)
    assert answers[0] == answers[1] and answers[0]["data"]["verdicts"]["docs"][0]["disposition_name"] == "Malicious"


def test_a_changed_spec_is_compiled_again_and_its_old_entry_dropped(catalogue, tmp_path, monkeypatch):
    cache = SpecCache(tmp_path / "cache")
    load_catalogue(catalogue, cache)
    spec = catalogue / "shodan.yaml"
    spec.write_text(spec.read_text().replace("title: Shodan", "title: Shodan, changed"))
    seen = compiled(monkeypatch)
    again = load_catalogue(catalogue, cache)
    assert seen == ["shodan.yaml"] and again.specs["shodan"].title == "Shodan, changed"
    assert len(list((tmp_path / "cache").glob("shodan-*.pickle"))) == 1


def test_a_broken_change_is_not_hidden_by_the_cache(catalogue, tmp_path):
    cache = SpecCache(tmp_path / "cache")
    load_catalogue(catalogue, cache)
    spec = catalogue / "shodan.yaml"
    spec.write_text(spec.read_text().replace("observable_types:", "observable_typos:"))
    again = load_catalogue(catalogue, cache)
    assert "shodan" not in again.specs and "shodan" in again.broken


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05garbage"])
def test_a_damaged_entry_is_compiled_again(catalogue, tmp_path, monkeypatch, damage):
    cache = SpecCache(tmp_path / "cache")
    load_catalogue(catalogue, cache)
    for entry in (tmp_path / "cache").glob("shodan-*.pickle"):
        entry.write_bytes(damage)
    seen = compiled(monkeypatch)
    assert "shodan" in load_catalogue(catalogue, cache).specs and seen == ["shodan.yaml"]


def test_an_entry_is_only_for_the_file_it_was_made_from(catalogue, tmp_path, monkeypatch):
    """The same text in another folder has the same key: its entry names the other file."""
    cache = SpecCache(tmp_path / "cache")
    load_catalogue(catalogue, cache)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(catalogue, elsewhere)
    seen = compiled(monkeypatch)
    load_catalogue(elsewhere, cache)
    assert len(seen) == len(list(catalogue.glob("*.yaml")))


def test_a_cache_that_cannot_be_written_still_serves(catalogue, tmp_path):
    """As on Lambda, where the package is read-only: here the folder cannot even be made."""
    (tmp_path / "a-file").write_text("")
    cache = SpecCache(tmp_path / "a-file" / "cache")
    assert cache.write(catalogue / "shodan.yaml", object()) is False
    assert "shodan" in load_catalogue(catalogue, cache).specs


def test_without_a_cache_nothing_is_written_beside_the_specs(catalogue):
    before = sorted(path.name for path in catalogue.rglob("*"))
    load_catalogue(catalogue)
    assert sorted(path.name for path in catalogue.rglob("*")) == before
