"""Load YAML into plain JSON-like data while remembering where every value came from.

`load_yaml(text, file)` returns a `Document`: the data (dicts, lists, str, int, float, bool, None)
and a map from each value's path, e.g. `('steps', 'check', 'url')`, to its line and column, so
that every later check can point at the exact place in the file.

A spec may come from anyone (a pull request, a downloaded example), and lint runs in CI, so the
loader is safe on hostile YAML: only plain data tags, a bounded size and nesting depth (checked on
the event stream, before anything recursive runs), and aliases bounded by the number of values
they would expand to (a "billion laughs" file is refused, not expanded). Every such problem is a
located SpecError, never a traceback. libyaml's C parser is used when PyYAML has it.
"""
from __future__ import annotations

import yaml

from engine.errors import SpecError
from engine.spec.document import Document

MAX_SPEC_BYTES = 1024 * 1024
MAX_DEPTH = 64  # nested mappings and lists; real specs use about 12
MAX_VALUES = 100_000  # values once aliases are expanded; real specs have a few thousand
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    style = node.style or None  # plain: None from PyYAML's parser, '' from libyaml's
    if style not in (None, "'", '"') or start.line != end.line:
        return False
    quotes = 0 if style is None else 2
    return end.column - start.column == len(node.value) + quotes


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load_yaml(text: str, file: str = "<spec>") -> Document:
    """Parse one YAML document; syntax errors and hostile shapes become a located `SpecError`."""
    document = Document(file=file, data=None)
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"the file is {size} bytes; a spec is at most {MAX_SPEC_BYTES}", file, 1, 1)
    try:
        _check_depth(text)
        node = yaml.compose(text, Loader=LOADER)
        if node is None:
            return document
        _check_expanded_size(node, file)
        document.data = _Builder(document).build(node, ())
    except yaml.MarkedYAMLError as problem:
        mark = problem.problem_mark or problem.context_mark
        if "quoted scalar" in str(problem.context or "") and problem.context_mark is not None:
            mark = problem.context_mark  # an unclosed quote: where it opens, not where the file ran out
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = "YAML" if isinstance(problem, yaml.constructor.ConstructorError) else "YAML syntax"
        opened = _unclosed_quote(text, line) if not isinstance(problem, yaml.constructor.ConstructorError) else None
        if (mark is problem.context_mark and problem.context) or opened:
            line, column = opened or (mark.line + 1, mark.column + 1)
            raise SpecError(f"{what}: this quote is never closed", file, line, column,
                            hint="close it on the same line, or write a `|` block for text over several lines") \
                from None
        raise SpecError(f"{what}: {_first_line(problem.problem or problem)}", file, line, column,
                        hint=_hint(problem)) from None
    except yaml.YAMLError as problem:  # e.g. a character YAML does not allow, without a mark
        raise SpecError(f"YAML: {_first_line(problem)}", file, 1, 1) from None
    return document


def _check_depth(text: str) -> None:
    """Nesting deeper than MAX_DEPTH is refused from the event stream (iterative in libyaml and in
    PyYAML alike) before composing, whose recursion such a file would exhaust."""
    depth = 0
    for event in yaml.parse(text, Loader=LOADER):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise yaml.MarkedYAMLError(problem=f"nesting deeper than {MAX_DEPTH} levels",
                                           problem_mark=event.start_mark)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_expanded_size(root: yaml.Node, file: str) -> None:
    """How many values the document holds once every alias is expanded, counted without expanding
    (each node's count is remembered): a few aliases of aliases can stand for billions. The error
    points at the first (innermost) value whose expansion passes the limit."""
    counts: dict[int, int] = {}
    culprit: list = []

    def count(node: yaml.Node) -> int:
        if id(node) in counts:
            return counts[id(node)]
        counts[id(node)] = 0  # a node met again while counting itself: a cycle, which YAML forbids
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(count(key) + count(value) for key, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(count(item) for item in node.value)
        else:
            total = 1
        if total > MAX_VALUES and not culprit:
            culprit.append(node.start_mark)
        counts[id(node)] = min(total, MAX_VALUES + 1)
        return counts[id(node)]

    if count(root) > MAX_VALUES:
        mark = culprit[0]
        raise SpecError(f"this value expands to more than {MAX_VALUES} values", file, mark.line + 1,
                        mark.column + 1, hint="YAML aliases (*name) that repeat one another multiply the "
                                              "document; a spec needs no more than a few aliases")


def _unclosed_quote(text: str, error_line: int) -> tuple[int, int] | None:
    """Where a double quote opens that its line never closes, above the line YAML stumbled on: a
    quoted scalar runs on into the next lines, so YAML reports the mistake lines later."""
    for number, line in enumerate(text.splitlines()[:error_line - 1], 1):
        quotes = [index for index, char in enumerate(line) if char == '"' and (index == 0 or line[index - 1] != "\\")]
        comment = line.find(" #")
        if comment >= 0 and (not quotes or comment < quotes[0]):
            continue
        if len(quotes) % 2:
            return number, quotes[-1] + 1
    return None


def _first_line(problem) -> str:
    return str(problem).strip().splitlines()[0] if str(problem).strip() else type(problem).__name__


def _hint(problem: yaml.MarkedYAMLError) -> str:
    if isinstance(problem, yaml.constructor.ConstructorError) and "tag" in str(problem.problem or ""):
        return "a spec holds plain data: mappings, lists, text, numbers, true/false and null"
    return ""
