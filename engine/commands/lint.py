"""`relay lint`: check spec files and print every problem as `file:line:col: severity: path: message (hint)`.

Exit codes: 0 no errors (warnings allowed), 1 at least one error, 2 nothing to check. The format
and the exit codes are documented in docs/spec-language.md, "Checking a spec".
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.commands.dryrun import example_problems
from engine.spec.load import check_file, spec_files

EXIT_CLEAN, EXIT_ERRORS, EXIT_NOTHING = 0, 1, 2


@dataclass
class LintReport:
    files: list
    problems: list

    @property
    def errors(self) -> list:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def exit_code(self) -> int:
        if not self.files:
            return EXIT_NOTHING
        return EXIT_ERRORS if self.errors else EXIT_CLEAN

    def text(self) -> str:
        lines = [problem.format() for problem in self.problems]
        lines.append(f"{len(self.files)} file{'s' if len(self.files) != 1 else ''} checked: "
                     f"{len(self.errors)} error{'s' if len(self.errors) != 1 else ''}, "
                     f"{len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''}")
        return "\n".join(lines)

    def json(self) -> str:
        return json.dumps({"files": [str(f) for f in self.files], "errors": len(self.errors),
                           "warnings": len(self.warnings), "problems": [p.to_json() for p in self.problems]},
                          indent=2)


def lint_paths(paths) -> LintReport:
    files = []
    for path in map(Path, paths):
        files += spec_files(path) if path.is_dir() else [path]
    problems = []
    for file in files:
        spec, found = check_file(file)
        problems += found
        if spec is not None:  # a spec that loads is also run on its own example answers
            problems += example_problems(spec)
    problems.sort(key=lambda p: (p.file, p.line, p.column))
    return LintReport(files, problems)
