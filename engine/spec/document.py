"""A spec's data with the place in its file of every value: what lint, the compiler and run-time
errors point at. (Read from YAML by source.py; kept with the compiled Spec, and in its cache.)"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import SpecError


@dataclass
class Document:
    file: str
    data: object
    marks: dict = field(default_factory=dict)  # path tuple -> (line, column), 1-based
    key_marks: dict = field(default_factory=dict)  # path tuple -> (line, column) of the key itself
    # path tuple -> (line, column) of a scalar's first character, for scalars written on one line
    # whose text is exactly the value (no escapes, no folding): there `offset` maps to a column.
    text_starts: dict = field(default_factory=dict)

    def where(self, path: tuple, *, key: bool = False, offset: int | None = None) -> tuple[int, int]:
        """The closest known position for `path` (walking up to a parent when needed); `offset`
        points at a character inside the value when the scalar's text allows it."""
        if offset is not None and tuple(path) in self.text_starts:
            line, column = self.text_starts[tuple(path)]
            return line, column + offset
        table = self.key_marks if key else self.marks
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.marks:
                return self.marks[probe]
            probe = probe[:-1]
        return self.marks.get((), (1, 1))

    def error(self, path: tuple, message: str, hint: str = "", *, key: bool = False,
              severity: str = "error", offset: int | None = None) -> SpecError:
        line, column = self.where(path, key=key, offset=offset)
        return SpecError(message, self.file, line, column, tuple(path), hint, severity)
