"""relay lint: every broken spec in tests/broken_specs is caught at the right place.

Each file holds one mistake; its first line says where and what lint must report:
`# expect: LINE:COLUMN SEVERITY: message | hint: hint`. Lint reports each mistake once: a file
whose mistake also shows up as a second, consequential problem fails.
"""
import json
import re
from pathlib import Path

import pytest

from engine.commands.cli import main
from engine.spec.check_tables import range_problems
from engine.commands.lint import lint_paths
from engine.spec.load import check_file, check_text
from engine.spec.source import load_yaml

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
    """Through lint as a user runs it: loading, then the dry run on the spec's examples."""
    expected = expectation(path)
    report = lint_paths([path])
    problems = report.problems
    assert report.exit_code == (1 if expected["severity"] == "error" else 0)  # warnings alone pass
    found = [p for p in problems if expected["message"] in p.message]
    assert found, f"lint missed it; it said: {[p.format() for p in problems]}"
    assert len(problems) == 1, f"one mistake, one report; it said: {[p.format() for p in problems]}"
    problem = found[0]
    assert (problem.line, problem.column, problem.severity) == \
        (int(expected["line"]), int(expected["column"]), expected["severity"]), problem.format()
    if expected["hint"]:
        assert expected["hint"] in problem.hint
    assert problem.format().startswith(f"{path}:{problem.line}:{problem.column}: {problem.severity}: ")


def test_the_suite_covers_the_mistakes_lint_must_find():
    messages = [expectation(p)["message"] for p in BROKEN]
    # Distinct kinds, not one mistake in many places: names, numbers and code blanked out.
    kinds = {re.sub(r"'[^']*'|`[^`]*`|[\d.]+", "_", message) for message in messages}
    assert len(BROKEN) >= 40 and len(kinds) >= 40
    text = " ".join(messages)
    for kind in ("unknown key", "expected a", "JMESPath syntax", "unknown function", "is not allowed here",
                 "unknown name", "no step named", "lookup() names", "unknown setting", "YAML syntax",
                 "setting 'CTR_TIMEOUT' is never used", "credential 'secret' is never used", "never runs",
                 "let value 'score' is never used", "gap between rows", "overlapping rows", "matches nothing",
                 "is not a CTIM disposition", "this rule never matches", "is null on the spec's example answers",
                 "is not a valid CTIM confidence", "is not a valid CTIM relation", "is not a field of CTIM's",
                 "is plain text here", "reads the observable", "this quote is never closed",
                 "nothing reads its answer", "no definition named", "outside the spec's folder",
                 "expands to more than", "link-local or cloud metadata", "loopback or private address",
                 "user name or password", "not an ISO-8601 duration"):
        assert kind in text, kind
    assert sum(expectation(p)["severity"] == "warning" for p in BROKEN) >= 10


def test_the_valid_base_and_the_catalogue_lint_clean():
    report = lint_paths([HERE / "valid-spec.yaml", HERE.parent / "vendors"])
    assert report.errors == [] and report.exit_code == 0
    assert lint_paths([HERE / "valid-spec.yaml"]).problems == []  # a warning here would show in every broken spec


def test_lint_exit_codes_and_json(capsys, tmp_path):
    assert main(["lint", str(HERE / "broken_specs" / "unknown-http-key.yaml")]) == 1
    assert "unknown key 'heders'" in capsys.readouterr().out
    assert main(["lint", str(HERE / "broken_specs" / "range-gap.yaml")]) == 0  # warnings only
    assert "0 errors, 1 warning" in capsys.readouterr().out
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


@pytest.mark.parametrize("rows, expected", [
    ([(0, 49), (50, 100)], []),  # whole numbers: 49 then 50 leaves nothing out
    ([(0, 0.5), (0.5, 1)], []),  # fractions: touching rows share their boundary, the first wins
    ([(None, 10), (11, None)], []),
    ([(0, 49), (51, 100)], ["no row matches 50 "]),
    ([(0, 49), (60, 100)], ["no row matches 50 to 59 "]),
    ([(0, 0.5), (0.7, 1)], ["no row matches the values between 0.5 and 0.7 "]),
    ([(0, 49), (49, 100)], ["ranges[0] and ranges[1] both match 49 "]),
    ([(0, 100), (10, 20)], ["ranges[0] and ranges[1] both match 10 to 20 "]),
    ([(50, 100), (0, 60)], ["ranges[0] and ranges[1] both match 50 to 60 "]),  # found whatever the order
    ([(50, None), (60, None)], ["ranges[0] and ranges[1] both match everything from 60 up "]),
    ([(60, 40)], ["from 60 is above to 40"]),
])
def test_range_tables_gaps_and_overlaps(rows, expected):
    table = [{key: bound for key, bound in (("from", low), ("to", high)) if bound is not None} for low, high in rows]
    messages = [message for _, message, _ in range_problems(table)]
    assert len(messages) == len(expected)
    for message, fragment in zip(messages, expected):
        assert fragment in message + " "


def test_columns_point_into_plain_and_quoted_values_but_not_escaped_ones():
    document = load_yaml('a: x y\nb: "x y"\nc: "\\u0078 y"\n')
    assert document.where(("a",), offset=2) == (1, 6)
    assert document.where(("b",), offset=2) == (2, 7)  # after the opening quote
    assert document.where(("c",), offset=2) == (3, 4)  # escapes: the value's start, not a guess


def test_expression_errors_point_at_the_character():
    text = (HERE / "valid-spec.yaml").read_text()
    text = text.replace('"{{ disposition(verdict) }}"', '"{{   disposition(verdict }}"')
    line = next(number for number, row in enumerate(text.splitlines(), 1) if "disposition(verdict }}" in row)
    _, problems = check_text(text, "valid-spec.yaml")
    column = text.splitlines()[line - 1].index(" }}") + 1  # where the `)` is missing
    assert [(p.line, p.column) for p in problems] == [(line, column)], [p.format() for p in problems]


def test_the_dry_run_warns_about_a_field_that_renders_null_on_the_examples(tmp_path):
    import shutil
    vendors = tmp_path / "vendors"
    shutil.copytree(HERE.parent / "vendors", vendors)
    spec = vendors / "abuseipdb.yaml"
    spec.write_text(spec.read_text().replace("description: \"{{ report.comment }}\"",
                                             "description: \"{{ report.coment }}\""))
    report = lint_paths([spec])
    assert report.errors == []
    [warning] = report.warnings
    assert warning.path == ("observe", "groups", 0, "sightings", 0, "description")
    assert "`report.coment` is null on the spec's example answers (report has no `coment`)" in warning.message
    assert warning.hint.startswith("did you mean 'comment'? report has: categories, comment,")
    assert warning.line == next(number for number, line in enumerate(spec.read_text().splitlines(), 1)
                                if "report.coment" in line)


# ------------------------------------------------------------------------------------ hostile files

@pytest.mark.parametrize("depth", [100, 100_000])
def test_deep_nesting_is_a_lint_error_not_a_traceback(tmp_path, capsys, depth):
    path = tmp_path / "deep.yaml"
    path.write_text("spec_version: 1\nname: deep\nlaughs: " + "[" * depth + "]" * depth + "\n")
    assert main(["lint", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:3:" in out and "nesting" in out and "Traceback" not in out


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_text("spec_version: 1\n" + "# padding\n" * 200_000)
    assert main(["lint", str(path)]) == 1
    assert "a spec is at most 1048576" in capsys.readouterr().out


def test_a_billion_laughs_is_refused_without_being_expanded(capsys):
    import tracemalloc
    tracemalloc.start()
    assert main(["lint", str(HERE / "broken_specs" / "billion-laughs.yaml")]) == 1
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 1024 * 1024  # it once grew to 23.8 GB before the kernel killed it
    assert "expands to more than 100000 values" in capsys.readouterr().out


@pytest.mark.parametrize("target", ["/etc/passwd", "/proc/self/environ"])
def test_an_example_file_out_of_the_folder_is_neither_read_nor_shown(tmp_path, capsys, target):
    spec = (HERE / "broken_specs" / "example-outside-folder.yaml").read_text().replace(
        "../../../../etc/passwd", target).replace("example-outside-folder", "outside")
    (tmp_path / "outside.yaml").write_text(spec)
    (tmp_path / "inside").mkdir()
    (tmp_path / "inside" / "link.json").symlink_to(target)  # a link out of the folder is out of it too
    linked = tmp_path / "linked.yaml"
    linked.write_text(spec.replace(target, "inside/link.json").replace("name: outside", "name: linked"))
    assert main(["lint", str(tmp_path / "outside.yaml"), str(linked)]) == 1
    out = capsys.readouterr().out
    assert out.count("is outside the spec's folder") == 2
    assert "root:" not in out and "PATH=" not in out


def test_an_example_that_is_not_what_the_step_reads_is_an_error_without_its_content(tmp_path, capsys):
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "lookup.json").write_text("SECRET_KEY=do-not-print-me\n")
    spec = (HERE / "broken_specs" / "example-outside-folder.yaml").read_text().replace(
        "../../../../etc/passwd", "examples/lookup.json").replace("example-outside-folder", "notjson")
    (tmp_path / "notjson.yaml").write_text(spec)
    assert main(["lint", str(tmp_path / "notjson.yaml")]) == 1
    out = capsys.readouterr().out
    assert "the example answer of step 'lookup' cannot be read: the answer is not JSON" in out
    assert "do-not-print-me" not in out
