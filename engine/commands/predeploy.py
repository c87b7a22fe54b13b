"""Zappa's `prebuild_script` (zappa_settings.json): `zappa package`, `deploy` and `update` lint the
catalogue first, and stop before building when a spec has errors; then they compile every spec
into a fresh `spec-cache/`, packed with the project, which the function reads at start
(RELAY_SPEC_CACHE) instead of compiling the catalogue on every cold start.

A relay started with a broken spec still serves the others (the broken vendor answers
`misconfigured module`), but shipping one is never what the deployer meant: it is refused here,
where the deployer sees why.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

SPEC_CACHE = "spec-cache"  # the folder zappa_settings.json's RELAY_SPEC_CACHE names


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
    fill_spec_cache(folder, SPEC_CACHE)


def fill_spec_cache(folder: str, cache: str) -> None:
    """A new cache, made by this Python from these specs: whatever was there is not packed."""
    from engine.spec.cache import SpecCache
    from engine.spec.load import load_catalogue
    shutil.rmtree(cache, ignore_errors=True)
    catalogue = load_catalogue(folder, SpecCache(cache))
    print(f"spec cache: {len(catalogue.specs)} specs compiled into {cache}/ for Python {sys.version.split()[0]}")
