"""Run a conformance corpus against the specs: relay conformance [DIR] [options].

    relay conformance [DIR] [--vendor NAME,...] [--expect FILE] [--waive FILE] [--json] [-v]

Prints a table per vendor and a last line `N passed, M failed`. `--expect FILE` (one case id a
line) names cases that must pass: a listed case that fails, or is missing from the corpus, is a
regression. `--waive FILE` names cases a spec deliberately does not reproduce (a plain bug of the
original relay, explained in the spec): they are run and shown, but count neither as passed nor as
failed. Exit codes: 0 every case run passed (or is waived), 1 a case failed or a listed case
regressed, 2 usage errors.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("directory", nargs="?", default="../shared/conformance")
    parser.add_argument("--vendor", help="only these vendors' cases (comma-separated names)")
    parser.add_argument("--vendors", help="folder of vendor specs (default: ./vendors)")
    parser.add_argument("--expect", help="file of case ids (one a line) that must pass")
    parser.add_argument("--waive", help="file of case ids (one a line) not counted: each a bug of the original")
    parser.add_argument("--json", action="store_true", help="machine-readable results")
    parser.add_argument("-v", "--verbose", action="store_true", help="list failed cases, expected beside actual")


def read_ids(path: str | None) -> list:
    if not path:
        return []
    return [line.split("#", 1)[0].strip() for line in Path(path).read_text().splitlines()
            if line.split("#", 1)[0].strip()]


def run(args) -> int:
    from engine.commands.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _specs
    from engine.conformance.runner import run_corpus, summarize
    if not Path(args.directory).is_dir():
        print(f"relay conformance: no corpus at {args.directory}", file=sys.stderr)
        return EXIT_USAGE
    try:
        expected_ids, waived_ids = read_ids(args.expect), set(read_ids(args.waive))
    except OSError as problem:
        print(f"relay conformance: {problem}", file=sys.stderr)
        return EXIT_USAGE
    vendors = [name.strip() for name in (args.vendor or "").split(",") if name.strip()] or None
    results = run_corpus(args.directory, _specs(args.vendors, vendors or []), vendors, waived_ids)
    report = summarize(results)
    by_id = {result.id: result for result in results}
    regressions = [case_id for case_id in expected_ids if case_id not in by_id or not by_id[case_id].passed]
    if args.json:
        report["regressions"] = regressions
        print(json.dumps(report, indent=2))
    else:
        print(conformance_table(report))
        for result in results:
            if result.passed:
                continue
            label = "WAIVED" if result.waived else "FAILED"
            if args.verbose:
                print(f"{label} {result.id}")
                print("\n".join(side_by_side(problem) for problem in result.problems))
            elif result.id in expected_ids:
                print(f"{label} {result.id}: {result.reason}")
        for case_id in regressions:
            if case_id not in by_id:
                print(f"MISSING {case_id}: listed in {args.expect} but not in the corpus")
        if regressions:
            print(f"{len(regressions)} case(s) listed in {args.expect} no longer pass")
        if report["waived"]:
            print(f"{report['waived']} waived (see {args.waive})")
        print(f"{report['passed']} passed, {report['failed']} failed")
    return EXIT_FAILED if regressions or report["failed"] else EXIT_OK


DIFFERENCE = re.compile(r"^(?P<path>.*?): expected (?P<expected>.*), got (?P<actual>.*)$", re.S)


def side_by_side(problem: str) -> str:
    """One difference of a failed case, expected above actual, so the two line up."""
    found = DIFFERENCE.match(problem)
    if not found:
        return f"  {problem}"
    return f"  {found['path']}\n    expected: {found['expected']}\n    actual:   {found['actual']}"


def conformance_table(report: dict) -> str:
    width = max([len(name) for name in report["vendors"]] + [6])
    lines = [f"{'vendor':<{width}}  passed  failed"]
    for name, tally in sorted(report["vendors"].items()):
        lines.append(f"{name:<{width}}  {tally['passed']:>6}  {tally['failed']:>6}")
    return "\n".join(lines)


