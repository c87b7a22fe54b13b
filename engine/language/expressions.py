"""Expressions (JMESPath plus the function library) and string templates, compiled once at load.

Two forms, and every spec field says which it takes:

- an *expression* is bare JMESPath: `check.data.reports`, `report.comment != null`;
- a *template* is text in which `{{ expression }}` parts are replaced by their values. A template
  that is exactly one `{{ expression }}` yields the value itself, keeping its type (a number stays a
  number, an object an object); otherwise every part is rendered as text (`null` as '').
"""
from __future__ import annotations

import jmespath
import jmespath.parser
from jmespath import exceptions as jp_errors
from jmespath import visitor as jp_visitor

from engine.language.compiled import compile_tree
from engine.language.functions import ExpressionFailure, RelayFunctions, to_text


class ExpressionSyntaxError(ValueError):
    """An expression or template that does not compile; `offset` is the character in the source."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.offset = offset


class EvaluationError(Exception):
    """An expression failed on the data it met at run time."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{reason} (in `{source}`)")
        self.source = source
        self.reason = reason


class Scope:
    """What an expression sees: the context values plus the runtime and the spec's tables.

    A plain class with slots rather than a frozen dataclass: a mapping makes one for every `for
    each` item and `let`, and a frozen dataclass's __init__ sets each field through
    object.__setattr__. Nothing reassigns a scope's fields after it is made."""

    __slots__ = ("values", "runtime", "tables", "notes", "_functions")

    def __init__(self, values: dict, runtime: object, tables: dict, notes: object | None = None):
        self.values = values
        self.runtime = runtime
        self.tables = tables
        self.notes = notes  # lint's dry run: told of fields left out and documents made (dryrun.Notes)
        self._functions: RelayFunctions | None = None

    def with_values(self, **more) -> "Scope":
        return Scope({**self.values, **more}, self.runtime, self.tables, self.notes)

    @property
    def functions(self) -> RelayFunctions:
        """The function library bound to this scope, made at its first function call."""
        found = self._functions
        if found is None:
            found = self._functions = RelayFunctions(self.values, self.runtime, self.tables)
        return found


class Interpreter(jp_visitor.TreeInterpreter):
    """JMESPath's interpreter, with the one function whose arguments are not all evaluated:
    `if_else(condition, then, otherwise)` evaluates the branch its condition picks, so the other
    may fail on the data (e.g. format a time that is null) without failing the expression.
    (Evaluations run compiled: compiled.py. The interpreter is the reference they follow.)"""

    def visit_function_expression(self, node, value):
        if node["value"] == "if_else" and len(node["children"]) == 3:
            condition, then, otherwise = node["children"]
            return self.visit(otherwise if self._is_false(self.visit(condition, value)) else then, value)
        return super().visit_function_expression(node, value)


class Expression:
    """One JMESPath expression, compiled to Python closures (compiled.py) with the interpreter's
    semantics; a bare path (`report.comment`), most of a mapping's expressions, is a few lookups."""

    __slots__ = ("source", "parsed", "path", "run")

    def __init__(self, source: str):
        self.source = source
        try:
            self.parsed = jmespath.compile(source)
        except jp_errors.ParseError as problem:
            raise ExpressionSyntaxError(f"JMESPath syntax: {_parse_reason(problem)}",
                                        getattr(problem, "lex_position", 0) or 0) from None
        except jp_errors.LexerError as problem:
            raise ExpressionSyntaxError(f"JMESPath syntax: {problem.msg}",
                                        getattr(problem, "lex_position", 0) or 0) from None
        self.path = _field_path(self.parsed.parsed)
        self.run = compile_tree(self.parsed.parsed)

    def evaluate(self, scope: Scope):
        if self.path is not None:
            value = scope.values
            for key in self.path:
                value = value.get(key) if isinstance(value, dict) else None
            return value
        run = self.run
        if run is None:  # read back from the spec cache: compiled at its first use
            run = self.run = compile_tree(self.parsed.parsed)
        functions = scope._functions or scope.functions
        try:
            return run(scope.values, functions)
        except ExpressionFailure as failure:
            raise EvaluationError(self.source, str(failure)) from None
        except jp_errors.JMESPathError as failure:
            raise EvaluationError(self.source, str(failure).replace("\n", " ")) from None
        except (TypeError, ValueError, ArithmeticError) as failure:
            raise EvaluationError(self.source, f"{type(failure).__name__}: {failure}") from None

    def __getstate__(self):
        """Pickled (spec cache) as its text and parsed tree: the closures are made again."""
        return self.source, self.parsed.parsed

    def __setstate__(self, state):
        self.source, tree = state
        self.parsed = jmespath.parser.ParsedResult(self.source, tree)
        self.path = _field_path(tree)
        self.run = None

    def function_calls(self) -> list[tuple[str, int]]:
        """Every (function name, argument count) in the expression, for lint."""
        calls: list[tuple[str, int]] = []
        _collect_calls(self.parsed.parsed, calls)
        return calls

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def _field_path(node: dict) -> tuple | None:
    """('report', 'comment') for `report.comment`; None for anything but a chain of plain fields."""
    if node.get("type") == "field":
        return (node["value"],)
    if node.get("type") == "subexpression":
        parts = [_field_path(child) for child in node["children"]]
        if all(part is not None for part in parts):
            return tuple(key for part in parts for key in part)
    return None


def _parse_reason(problem: jp_errors.ParseError) -> str:
    if isinstance(problem, jp_errors.IncompleteExpressionError):
        return "the expression ends too early (an unclosed bracket, parenthesis or quote?)"
    token, kind, position = problem.token_value, problem.token_type, problem.lex_position
    detail = problem.msg if problem.msg != "invalid token" else "unexpected"
    if kind == "EOF":
        return f"{detail} at the end"
    if token not in (None, ""):
        return f"{detail} at character {position}, near {token!r}"
    return f"{detail} at character {position}"


def _collect_calls(node, calls: list) -> None:
    if isinstance(node, dict):
        if node.get("type") == "function_expression":
            calls.append((node.get("value"), len(node.get("children", []))))
        for child in node.get("children", []):
            _collect_calls(child, calls)


class Template:
    """Text with `{{ expression }}` parts."""

    __slots__ = ("source", "parts", "whole")

    def __init__(self, source: str):
        self.source = source
        self.parts: list = []  # str literals and Expressions, in order
        position = 0
        while True:
            start = source.find("{{", position)
            if start < 0:
                break
            end = _closing_braces(source, start + 2)
            if end < 0:
                raise ExpressionSyntaxError("`{{` without a matching `}}`", start)
            if start > position:
                self.parts.append(source[position:start])
            raw = source[start + 2:end]
            inner = raw.strip()
            if not inner:
                raise ExpressionSyntaxError("empty `{{ }}`", start)
            try:
                self.parts.append(Expression(inner))
            except ExpressionSyntaxError as problem:  # the offset counts in the source text, blanks included
                lead = len(raw) - len(raw.lstrip())
                raise ExpressionSyntaxError(str(problem), start + 2 + lead + problem.offset) from None
            position = end + 2
        if position < len(source):
            self.parts.append(source[position:])
        # A lone `{{ expr }}` keeps the value's type.
        self.whole = len(self.parts) == 1 and isinstance(self.parts[0], Expression)

    @property
    def expressions(self) -> list[Expression]:
        return [part for part in self.parts if isinstance(part, Expression)]

    @property
    def is_constant(self) -> bool:
        return not self.expressions

    def render(self, scope: Scope):
        if self.whole:
            return self.parts[0].evaluate(scope)
        return self.render_text(scope)

    def render_text(self, scope: Scope, encode=None) -> str:
        """Always text; `encode` (e.g. URL quoting) applies to the values, never to the literal parts."""
        if encode is None:
            parts = self.parts
            if len(parts) == 2:  # "prefix-{{ id }}", the usual shape of a CTIM id or a link
                first, second = parts
                if type(first) is str:
                    return first + to_text(second.evaluate(scope))
                if type(second) is str:
                    return to_text(first.evaluate(scope)) + second
            return "".join([part if type(part) is str else to_text(part.evaluate(scope)) for part in parts])
        return "".join([part if type(part) is str else encode(to_text(part.evaluate(scope))) for part in self.parts])

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def _closing_braces(source: str, index: int) -> int:
    """Index of the `}}` that ends an expression starting at `index` (quotes and nesting respected)."""
    depth, quote = 0, None
    while index < len(source):
        char = source[index]
        if quote:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = None
        elif char in "'\"`":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0 and source.startswith("}}", index):
                return index
            depth = max(depth - 1, 0)
        index += 1
    return -1


def compile_value(value):
    """A YAML value whose strings are templates -> the same shape with Templates (constants kept)."""
    if isinstance(value, str):
        template = Template(value)
        return value if template.is_constant else template
    if isinstance(value, list):
        return [compile_value(item) for item in value]
    if isinstance(value, dict):
        return {key: compile_value(item) for key, item in value.items()}
    return value


def render_value(value, scope: Scope):
    """Evaluate a value produced by `compile_value`."""
    if isinstance(value, Template):
        return value.render(scope)
    if isinstance(value, list):
        return [render_value(item, scope) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, scope) for key, item in value.items()}
    return value
