"""relay lint: every broken spec in tests/broken_specs is caught at the right place.

Each file holds one mistake; its first line says where and what lint must report:
`# expect: LINE:COLUMN SEVERITY: message | hint: hint`.
"""
import json
import re
from pathlib import Path

import pytest

from engine.cli import main
from engine.lint import lint_paths
from engine.loader import check_file

HERE = Path(__file__).parent
BROKEN = sorted((HERE / "broken_specs").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (?P<line>\d+):(?P<column>\d+) (?P<severity>error|warning): "
                    r"(?P<message>.*?)(?: \| hint: (?P<hint>.*))?$")


def expectation(path: Path) -> dict:
    match = EXPECT.match(path.read_text().splitlines()[0])
    assert match, f"{path.name}: first line must be `# expect: LINE:COL SEVERITY: message | hint: ...`"
    return match.groupdict()


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_each_mistake_is_reported_where_it_is(path):
    expected = expectation(path)
    spec, problems = check_file(path)
    assert spec is None or expected["severity"] == "warning"
    found = [p for p in problems if expected["message"] in p.message]
    assert found, f"lint missed it; it said: {[p.format() for p in problems]}"
    problem = found[0]
    assert (problem.line, problem.column, problem.severity) == \
        (int(expected["line"]), int(expected["column"]), expected["severity"]), problem.format()
    if expected["hint"]:
        assert expected["hint"] in problem.hint
    assert problem.format().startswith(f"{path}:{problem.line}:{problem.column}: {problem.severity}: ")


def test_the_suite_covers_the_mistakes_lint_must_find():
    assert len(BROKEN) >= 20
    messages = " ".join(expectation(p)["message"] for p in BROKEN)
    for kind in ("unknown key", "expected a", "JMESPath syntax", "unknown function", "is not allowed here",
                 "unknown name", "no step named", "lookup() names"):
        assert kind in messages


def test_the_valid_base_and_the_catalogue_lint_clean():
    report = lint_paths([HERE / "valid-spec.yaml", HERE.parent / "vendors"])
    assert report.errors == [] and report.exit_code == 0


def test_lint_exit_codes_and_json(capsys, tmp_path):
    assert main(["lint", str(HERE / "broken_specs" / "unknown-http-key.yaml")]) == 1
    assert "unknown key 'heders'" in capsys.readouterr().out
    assert main(["lint", str(tmp_path / "missing")]) == 2
    assert main(["lint", str(tmp_path)]) == 2  # a folder with no spec: nothing was checked
    capsys.readouterr()
    assert main(["lint", "--json", str(HERE / "broken_specs" / "unknown-function.yaml")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] >= 1 and report["problems"][0]["path"] == "deliberate.verdicts[0].disposition"


def test_a_spec_named_unlike_its_file_is_refused(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text((HERE / "valid-spec.yaml").read_text())
    spec, problems = check_file(path)
    assert spec is None and "differs from the file name" in problems[0].message
