"""Compiled specs kept between processes, as Python keeps .pyc files: parsing, validating and
compiling every spec of the catalogue was most of a cold start; an unchanged spec is read back in
well under a millisecond.

    SpecCache(folder).read(path) -> Spec or None    .write(path, spec)

A file's name is its key: the SHA-256 of the engine (its code and schemas), the Python version
and the spec's bytes, so any change to either compiles the spec again, and a stale file is never
read. The files are pickles, which run code when read: a cache lives only in a folder the
operator names (RELAY_SPEC_CACHE), never beside the specs, where anyone who can propose a spec
could also leave a file. The relay fills it as it starts; the Zappa build fills a fresh one into
the package (engine/commands/predeploy.py).
"""
from __future__ import annotations

import copyreg
import hashlib
import os
import pickle
import sys
import tempfile
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from engine.startup import without_collections


def read_only(mapping: dict) -> MappingProxyType:
    return MappingProxyType(mapping)


copyreg.pickle(MappingProxyType, lambda proxy: (read_only, (dict(proxy),)))  # a Spec's steps, tables...


@lru_cache(maxsize=1)
def engine_fingerprint() -> bytes:
    """The engine's code and schemas as they are now, and the Python running them."""
    digest = hashlib.sha256(f"{sys.version_info[:2]}".encode())
    root = Path(__file__).resolve().parent.parent
    for path in sorted(p for p in [*root.rglob("*.py"), *root.rglob("*.json")] if "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.digest()


class SpecCache:
    def __init__(self, folder):
        self.folder = Path(folder)

    def file_for(self, path: Path, text: bytes) -> Path:
        key = hashlib.sha256(engine_fingerprint() + text).hexdigest()[:32]
        return self.folder / f"{Path(path).stem}-{key}.pickle"

    def read(self, path):
        """The compiled spec of `path` as it is now, or None (no such entry, or unreadable)."""
        try:
            with without_collections():  # thousands of new objects, none of them garbage
                entry = self.file_for(path, Path(path).read_bytes())
                with open(entry, "rb") as file:
                    spec = pickle.load(file)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
            return None
        return spec if getattr(spec, "file", None) == str(path) else None

    def write(self, path, spec) -> bool:
        """Keep `spec`; False when the folder cannot be written (a read-only deployment)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            entry = self.file_for(path, Path(path).read_bytes())
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(handle, "wb") as file:  # what serving needs: the examples (paths of this machine) stay out
                pickle.dump(replace(spec, examples=None), file, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, entry)  # readers see the whole file or none
        except OSError:
            return False
        stem = Path(path).stem
        for stale in self.folder.glob(f"{stem}-*.pickle"):  # the same spec, compiled before a change
            key = stale.name[len(stem) + 1:-len(".pickle")]
            if stale != entry and len(key) == 32 and all(c in "0123456789abcdef" for c in key):
                stale.unlink(missing_ok=True)
        return True
