"""Zappa's `prebuild_script` (zappa_settings.json): `zappa package`, `deploy` and `update` lint the
catalogue first, and stop before building when a spec has errors.

A relay started with a broken spec still serves the others (the broken vendor answers
`misconfigured module`), but shipping one is never what the deployer meant: it is refused here,
where the deployer sees why.
"""
from __future__ import annotations

import sys
from pathlib import Path


def lint_before_build(folder: str = "vendors") -> None:
    from click import ClickException  # Zappa's CLI is built on click: its errors end the command cleanly

    from engine.commands.lint import lint_paths
    if not Path(folder).is_dir():
        raise ClickException(f"relay lint: no {folder}/ folder here: run zappa from the project's root")
    report = lint_paths([folder])
    if report.errors:
        print(report.text(), file=sys.stderr)
        raise ClickException(f"relay lint found {len(report.errors)} error(s) in {folder}/: "
                             "fix them before deploying (nothing was built)")
    print(f"relay lint: {folder}/ is clean")
