"""Shared fixtures: the catalogue's specs, and a way to write throwaway specs for a test."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine import load_spec

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def abuseipdb():
    return load_spec(ROOT / "vendors" / "abuseipdb.yaml")


@pytest.fixture
def write_spec(tmp_path):
    """write_spec(text, name='acme') -> path of a spec file holding the dedented text."""
    def write(text: str, name: str = "acme") -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(textwrap.dedent(text).lstrip())
        return path
    return write
