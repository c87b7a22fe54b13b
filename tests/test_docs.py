"""Docs that cannot drift: the generated reference, every key and function described, README commands."""
from pathlib import Path

from jmespath import functions as jp

from engine.commands.cli import build_parser
from engine.language.functions import FUNCTION_DOCS, RelayFunctions
from engine.spec.load import spec_schema
from engine.commands.reference import reference

ROOT = Path(__file__).resolve().parent.parent


def test_the_committed_reference_is_current():
    assert (ROOT / "docs" / "spec-reference.md").read_text() == reference(), \
        "run: python -m engine.commands.reference > docs/spec-reference.md"


def test_every_key_has_a_description():
    assert "| |\n" not in reference().replace("|  |\n", "| |\n").split("## Functions")[0]


def test_every_function_is_documented():
    custom = set(RelayFunctions.FUNCTION_TABLE) - set(jp.Functions.FUNCTION_TABLE)
    assert custom == set(FUNCTION_DOCS)
    for name, text in FUNCTION_DOCS.items():
        assert text.startswith(f"{name}("), name


def test_the_guide_covers_every_top_level_key():
    guide = (ROOT / "docs" / "spec-language.md").read_text()
    missing = [key for key in spec_schema()["properties"] if f"`{key}" not in guide and f"{key}:" not in guide]
    assert missing == []


def test_the_readme_starts_with_the_two_commands_and_lists_every_command():
    readme = (ROOT / "README.md").read_text()
    blocks = readme.split("```")
    assert readme.startswith("```sh\n")
    assert blocks[1].strip().endswith(".venv/bin/relay demo")
    assert blocks[3].strip().endswith(".venv/bin/python -m pytest -q")
    assert blocks[3].strip().splitlines()[-1] in (ROOT / ".ci" / "run").read_text()
    commands = build_parser()._subparsers._group_actions[0].choices
    for command in commands:
        assert f"relay {command}" in readme, command


def test_the_catalogue_table_lists_every_vendor_with_its_current_size():
    rows = {}
    for line in (ROOT / "docs" / "catalogue.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 6 and cells[3].isdigit():
            rows[cells[0]] = int(cells[3])
    sizes = {path.stem: sum(1 for line in path.read_text().splitlines()
                            if line.strip() and not line.strip().startswith("#"))
             for path in sorted((ROOT / "vendors").glob("*.yaml"))}
    assert rows == sizes, "update the spec lines in docs/catalogue.md"
