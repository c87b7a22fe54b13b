"""Zappa's hooks (zappa_settings.json) for `zappa package`, `deploy` and `update`.

`prebuild_script`: lint the catalogue first, and stop before building when a spec has errors; then
compile every spec into a fresh `spec-cache/`, packed with the project, which the function reads
at start (RELAY_SPEC_CACHE) instead of compiling the catalogue on every cold start.

`callbacks.zip`: put the bytecode of every Python file into the zip. Zappa leaves `__pycache__`
out, and Lambda's /var/task is read-only, so without it every cold start compiles Flask, requests,
PyJWT and the engine from source again. The bytecode is checked against its source's hash, not
its time (a zip does not keep times faithfully): a file changed since is compiled as usual.

A relay started with a broken spec still serves the others (the broken vendor answers
`misconfigured module`), but shipping one is never what the deployer meant: it is refused here,
where the deployer sees why.
"""
from __future__ import annotations

import py_compile
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

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


LAMBDA_TASK_ROOT = "/var/task"  # where Lambda unpacks the zip: the paths tracebacks show


def bytecode_into_package(cli) -> None:
    """Zappa's `zip` callback: `cli` is Zappa's command, which knows the zip and the stage."""
    runtime = cli.stage_config.get("runtime", "")
    running = "python%d.%d" % sys.version_info[:2]
    if runtime != running:  # bytecode is per Python version: Lambda's would not read this one's
        print(f"bytecode: not added (this is {running}; the function runs {runtime})")
        return
    added = add_bytecode(Path(cli.zip_path))
    print(f"bytecode: {added} modules compiled for {running} into {Path(cli.zip_path).name}")


def add_bytecode(zip_path: Path) -> int:
    """Add `__pycache__/NAME.<this Python's tag>.pyc` beside every `.py` of the zip; the number added.
    Files this Python cannot compile (another version's syntax, templates named .py) are left as
    they are: they would fail at import anyway, or are never imported."""
    tag = sys.implementation.cache_tag
    with tempfile.TemporaryDirectory() as scratch, zipfile.ZipFile(zip_path, "a", zipfile.ZIP_DEFLATED) as archive:
        present = set(archive.namelist())
        added = 0
        for name in sorted(present):
            if not name.endswith(".py"):
                continue
            path = PurePosixPath(name)
            target = str(path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc")
            if target in present:
                continue
            source = Path(scratch, "source.py")
            source.write_bytes(archive.read(name))
            compiled = Path(scratch, "compiled.pyc")
            try:
                py_compile.compile(str(source), cfile=str(compiled), dfile=f"{LAMBDA_TASK_ROOT}/{name}", doraise=True,
                                   invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
            except (py_compile.PyCompileError, SyntaxError, ValueError):
                continue
            entry = zipfile.ZipInfo(target, date_time=(1980, 1, 1, 0, 0, 0))
            entry.create_system, entry.external_attr = 3, 0o644 << 16  # Unix, readable by Lambda's user
            archive.writestr(entry, compiled.read_bytes(), zipfile.ZIP_DEFLATED)
            added += 1
    return added
