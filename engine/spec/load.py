"""Loading specs: the files of a folder, checked and compiled, or read back from a cache.

    load_spec(path)        one file -> Spec, or SpecErrors listing every problem found
    check_file(path)       one file -> (Spec or None, [SpecError]) for lint
    load_specs(directory)  every vendors/*.yaml -> {name: Spec}; SpecErrors if any does not load
    load_catalogue(directory, cache=None)  the same, but the specs that load, and the problems of
                           those that do not (the relay serves the good ones and says the broken
                           ones are broken); with a SpecCache, unchanged specs are not compiled again

The pipeline itself (YAML, JSON Schema, the checks) is engine/spec/pipeline.py, imported when a
spec is compiled.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import SpecError, SpecErrors


def spec_schema() -> dict:
    from engine.spec.pipeline import spec_schema as schema
    return schema()


def check_text(text: str, file: str = "<spec>"):
    """Run the whole pipeline on one spec's text; returns (Spec or None, problems)."""
    from engine.spec.pipeline import check_text as check
    return check(text, file)


def check_file(path) -> tuple:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        return None, [SpecError(f"cannot read: {problem}", str(path), 1, 1)]
    spec, problems = check_text(text, str(path))
    if spec is not None and path.stem != spec.name:
        problems.append(SpecError(f"name {spec.name!r} differs from the file name {path.stem!r}",
                                  str(path), *_where(text, "name"), ("name",)))
        spec = None
    return spec, problems


def load_spec(path):
    spec, problems = check_file(path)
    errors = [p for p in problems if p.severity == "error"]
    if errors or spec is None:
        raise SpecErrors(errors or problems)
    return spec


def spec_files(directory) -> list[Path]:
    return sorted(Path(directory).glob("*.yaml"))


@dataclass
class Catalogue:
    specs: dict = field(default_factory=dict)  # name -> Spec
    broken: dict = field(default_factory=dict)  # file stem -> [SpecError]: the files that do not load


def load_catalogue(directory, cache=None) -> Catalogue:
    """Every spec in a folder: one that does not load is set aside with its problems, and the
    others load as if it were not there. `cache` (cache.SpecCache): compiled specs read back when
    neither the spec nor the engine has changed, and kept for next time."""
    catalogue = Catalogue()
    for path in spec_files(directory):
        spec = cache.read(path) if cache is not None else None
        problems = []
        if spec is None:
            spec, problems = check_file(path)
            if spec is not None and cache is not None:
                cache.write(path, spec)
        if spec is not None:
            catalogue.specs[spec.name] = spec
        else:
            catalogue.broken[path.stem] = [p for p in problems if p.severity == "error"] or problems
    return catalogue


def load_specs(directory) -> dict:
    """Every spec in a folder; a file that does not load is an error, with every problem listed."""
    catalogue = load_catalogue(directory)
    if catalogue.broken:
        raise SpecErrors([problem for problems in catalogue.broken.values() for problem in problems])
    return catalogue.specs


def _where(text: str, key: str) -> tuple[int, int]:
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(key + ":"):
            return number, 1
    return 1, 1
