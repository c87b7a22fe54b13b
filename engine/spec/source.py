"""Load YAML into plain JSON-like data while remembering where every value came from.

`load_yaml(text, file)` returns a `Document`: the data (dicts, lists, str, int, float, bool, None)
and a map from each value's path, e.g. `('steps', 'check', 'url')`, to its line and column, so
that every later check can point at the exact place in the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import yaml

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


class _Builder(yaml.constructor.SafeConstructor):
    """Turns composed nodes into plain data, recording marks per path."""

    def __init__(self, document: Document):
        super().__init__()
        self.document = document

    def build(self, node: yaml.Node, path: tuple):
        self.document.marks[path] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # resolves YAML merge keys (`<<: *anchor`)
            result = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                key = key if isinstance(key, str) else str(key)  # paths and JSON want text keys
                child = path + (key,)
                if key in result:
                    raise SpecError(f"duplicate key {key!r}", self.document.file, *_mark(key_node), child,
                                    "a key appears once in a mapping: keep one of the two")
                self.document.key_marks[child] = _mark(key_node)
                result[key] = self.build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (index,)) for index, item in enumerate(node.value)]
        if _text_is_value(node):
            quote = 1 if node.style in ("'", '"') else 0
            self.document.text_starts[path] = (node.start_mark.line + 1, node.start_mark.column + 1 + quote)
        value = self.construct_object(node, deep=True)
        if hasattr(value, "isoformat"):  # YAML timestamps stay text: the engine has its own clock types
            value = node.value
        return value


def _text_is_value(node: yaml.ScalarNode) -> bool:
    """One line, plain or quoted, and as wide as its value: no escapes or doubled quotes."""
    start, end = node.start_mark, node.end_mark
    if node.style not in (None, "'", '"') or start.line != end.line:
        return False
    quotes = 0 if node.style is None else 2
    return end.column - start.column == len(node.value) + quotes


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load_yaml(text: str, file: str = "<spec>") -> Document:
    """Parse one YAML document; syntax errors become a located `SpecError`."""
    document = Document(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as problem:
        mark = problem.problem_mark or problem.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SpecError(f"YAML syntax: {problem.problem or problem}", file, line, column) from None
    if node is None:
        document.data = None
        return document
    document.data = _Builder(document).build(node, ())
    return document
