"""The two kinds of error the engine knows, each able to show itself.

`SpecError` is a mistake in a vendor file, found at load time: it carries the file, line, column,
the YAML path and a hint, and formats itself the way `relay lint` prints it.

`RelayError` is what a relay answers instead of (or next to) data: `{"type", "code", "message"}`,
returned with HTTP 200 as Cisco's relays do.
"""
from __future__ import annotations

from dataclasses import dataclass


def format_yaml_path(path: tuple) -> str:
    """`('steps', 'check', 'query', 0)` -> `steps.check.query[0]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "<root>"


# Exceptions are plain (hashable) dataclasses, not frozen ones: Python's own machinery sets
# `__traceback__` on an exception passing through a `with` block, which a frozen one refuses.
@dataclass(unsafe_hash=True)
class SpecError(Exception):
    """A located problem in a vendor spec file."""

    message: str
    file: str = "<spec>"
    line: int = 0
    column: int = 0
    path: tuple = ()
    hint: str = ""
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        return self.format()

    def format(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.severity}: {format_yaml_path(self.path)}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_json(self) -> dict:
        return {
            "file": self.file, "line": self.line, "column": self.column, "severity": self.severity,
            "path": format_yaml_path(self.path), "message": self.message, "hint": self.hint,
        }


class SpecErrors(Exception):
    """Every problem found while loading one or more spec files."""

    def __init__(self, errors: list[SpecError]):
        self.errors = errors
        super().__init__("\n".join(e.format() for e in errors))


@dataclass(unsafe_hash=True)
class RelayError(Exception):
    """An error the relay reports to XDR: serialises to `{"type", "code", "message"}`."""

    code: str
    message: str = "Something went wrong."
    type: str | None = "fatal"  # None: answered without a `type`, as a few relays do

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_json(self) -> dict:
        shown = {"code": self.code, "message": self.message}
        return shown if self.type is None else {**shown, "type": self.type}


AUTH_FAILED = "Authorization failed: "


def authorization_error(reason: str) -> RelayError:
    return RelayError("authorization error", AUTH_FAILED + reason)


def invalid_argument(message: str) -> RelayError:
    return RelayError("invalid argument", message)
