"""The checker's core: where a spec's problems are collected, and how one expression or template
is compiled and checked (syntax, functions and arities, names defined where they are used).

The sections of a spec are checked by the mixins of `check_*.py` (http, steps, mappings, tables,
examples), which `compiler.Compiler` puts together; they share this core's state: the document,
the problems found, and what expressions read (for the "never used" warnings).
"""
from __future__ import annotations

import difflib
import re

from engine.language.expressions import Expression, ExpressionSyntaxError, Template
from engine.language.functions import ExpressionFailure, RelayFunctions, parse_duration
from engine.errors import SpecError
from engine.spec.document import Document

# What every relay-side expression sees: the observable, and all the request's (for a batch call).
REQUEST_NAMES = frozenset({"observable", "observables", "settings", "credentials", "params"})  # params: a trigger's
RESPONSE_NAMES = frozenset({"status", "headers", "body", "reason", "text"})
OUTCOME_NAMES = REQUEST_NAMES | RESPONSE_NAMES | {"fault"}
PAGE_NAMES = frozenset({"page", "previous"})  # a `pages` step's templates see these
RESERVED_NAMES = REQUEST_NAMES | RESPONSE_NAMES | PAGE_NAMES | {"fault", "token"}  # no step may be named so
CALL_LIKE = re.compile(r"\s*(?P<name>[a-z_][a-z0-9_]*)\(.*\)\s*", re.S)  # text that reads like a function call
NEGATED_PATH = re.compile(r"!\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")  # !a.b, not !(a.b)
PATH_LIKE = re.compile(r"\s*(?P<root>[A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])+\s*")  # like `row.title`


class Checker:
    def __init__(self, document: Document):
        self.document = document
        self.data = document.data
        self.problems: list[SpecError] = []
        self.table_like_names: set[str] = set(self.data.get("tables", {})) | set(self.data.get("steps", {}))
        # What the expressions use, for the "never used" warnings given once everything is compiled.
        self.reads: set[tuple] = set()  # (root name, member or None), e.g. ('settings', 'limit')
        self.tables_named: set[str] = set()  # literal first arguments of lookup()
        self.lookup_by_name_only = True  # False when some lookup() names its table with an expression
        self.let_values: list[tuple] = []  # (name, path) of every `let` value
        self.let_tables: dict[str, str] = {}  # let name -> table, for `let: {x: "{{ lookup('t', ...) }}"}`
        self.disposition_inputs: set[str] = set()  # tables and let names given to disposition()
        self.definitions_used: set[str] = set()  # names of `define:` parts some `use:` names
        self.expression_like: dict[tuple, str] = {}  # path -> hint, for text that reads like an expression
        self.defining: list[str] = []  # definitions being compiled, innermost last (to stop a cycle)

    def error(self, path, message, hint="", *, key=False, offset=None):
        self.problems.append(self.document.error(tuple(path), message, hint, key=key, offset=offset))

    def warn(self, path, message, hint="", *, key=False, offset=None):
        self.problems.append(self.document.error(tuple(path), message, hint, key=key, offset=offset,
                                                 severity="warning"))

    def expression(self, source: str, path: tuple, names: frozenset, base: int = 0) -> Expression | None:
        """`base`: where the expression starts in the YAML value (after `report in ` for `for each`)."""
        bare = source.strip()
        if bare.startswith("{{") and bare.endswith("}}"):  # a template where bare JMESPath is expected
            self.error(path, "this field takes an expression, not a template: write it without `{{ }}`",
                       f"write `{bare[2:-2].strip()}`", offset=base + source.index("{{"))
            return None
        try:
            expression = Expression(source)
        except ExpressionSyntaxError as problem:
            self.error(path, str(problem), offset=base + problem.offset)
            return None
        self.check_expression(expression, path, names, base)
        return expression

    def template(self, source, path: tuple, names: frozenset):
        """A template field: constants stay as they are, text with {{ }} becomes a Template."""
        if not isinstance(source, str):
            return source
        try:
            template = Template(source)
        except ExpressionSyntaxError as problem:
            self.error(path, str(problem), "every `{{` needs its `}}`" if "{{" in str(problem) else "",
                       offset=problem.offset)
            return None
        if template.is_constant:
            self.warn_if_expression_like(source, path, names)
        end = 0
        for expression in template.expressions:  # find each part in the text, so errors can point into it
            start = source.find(expression.source, source.find("{{", end) + 2)
            end = start + len(expression.source)
            self.check_expression(expression, path, names, start)
        return source if template.is_constant else template

    def warn_if_expression_like(self, text: str, path: tuple, names: frozenset) -> None:
        """Text that reads like a call or like a path from a known name, written without `{{ }}`:
        `title: row.title` sends the words "row.title". A warning (it may be meant), which
        check_ctim_literals makes an error where the text also breaks CTIM."""
        call, dotted = CALL_LIKE.fullmatch(text), PATH_LIKE.fullmatch(text)
        if call and call["name"] in RelayFunctions.FUNCTION_TABLE:
            message = f"{text!r} is plain text here, not a call of {call['name']}()"
        elif dotted and dotted["root"] in names:
            message = f"{text!r} is plain text here, not the value of `{text.strip()}`"
        else:
            return
        hint = f'to compute it, write "{{{{ {text.strip()} }}}}"'
        self.expression_like[tuple(path)] = hint
        self.warn(path, message, hint)

    def check_expression(self, expression: Expression, path: tuple, names: frozenset, base: int = 0) -> None:
        """Functions exist and get the right number of arguments, names are defined, tables exist.
        `base` is where the expression's text starts in the YAML value, to point at the culprit."""
        parsed = expression.parsed.parsed
        reads = root_reads(parsed)
        self.note_uses(parsed, reads)
        self.check_functions(expression, path, base)
        self.check_names(expression, reads, path, names, base)
        self.warn_about_negated_paths(expression, path, base)
        self.warn_about_literal_names(parsed, reads, expression, path, base)
        for table_name in literal_lookup_tables(parsed):
            if table_name not in self.table_like_names and table_name not in names:
                close = difflib.get_close_matches(table_name, sorted(self.table_like_names), n=1)
                self.error(path, f"lookup() names {table_name!r}, which is no table, step or value",
                           f"did you mean {close[0]!r}?" if close else "declare it under `tables:`",
                           offset=offset_of(rf"['\"`]({re.escape(table_name)})['\"`]", expression.source, base))

    def warn_about_negated_paths(self, expression: Expression, path: tuple, base: int) -> None:
        """`!settings.AGGREGATE` is `(!settings).AGGREGATE` in JMESPath, always null: `!` binds
        tighter than `.`, so a condition written so never holds."""
        for found in NEGATED_PATH.finditer(expression.source):
            written = found.group(1)
            self.warn(path, f"`!{written}` negates `{written.split('.')[0]}`, not the path: it is always null",
                      f"write `!({written})`", offset=base + found.start())

    def warn_about_literal_names(self, parsed: dict, reads: set, expression: Expression, path: tuple,
                                 base: int) -> None:
        """`[?score != null]` compares with the item's field named `null` (there is none: always
        null, so the filter seems to work until a record has null there). At the root the name is an
        error (unknown name); inside a filter or projection it is said here."""
        at_root = {name for name, _ in reads}
        for name in sorted(field_names(parsed) & {"null", "true", "false"} - at_root):
            self.warn(path, f"`{name}` here reads a field named {name!r} of the item, not the literal",
                      f"JMESPath writes literals in backticks: `{name}`",
                      offset=offset_of(rf"(?<![\w.@'\"`])({name})(?![\w`'\"])", expression.source, base))

    def check_functions(self, expression: Expression, path: tuple, base: int) -> None:
        table, text = RelayFunctions.FUNCTION_TABLE, expression.source
        for name, count in expression.function_calls():
            where = offset_of(rf"(?<![\w.])({re.escape(name)})\s*\(", text, base)
            if name not in table:
                close = difflib.get_close_matches(name, list(table), n=1)
                self.error(path, f"unknown function {name}() in `{text}`",
                           f"did you mean {close[0]}()?" if close else "see docs/spec-reference.md", offset=where)
                continue
            signature = table[name]["signature"]
            variadic = bool(signature) and signature[-1].get("variadic")
            self.check_literal_arguments(expression, name, path, base)
            if (count < len(signature) - (1 if variadic else 0)) if variadic else count != len(signature):
                self.error(path, f"{name}() takes {len(signature)}{' or more' if variadic else ''} "
                                 f"argument{'s' if len(signature) != 1 else ''}, got {count} in `{text}`",
                           offset=where)

    def check_literal_arguments(self, expression: Expression, name: str, path: tuple, base: int) -> None:
        """A constant argument a function would refuse at run time, refused now: time_add's duration."""
        if name != "time_add":
            return
        for call in function_nodes(expression.parsed.parsed):
            arguments = call.get("children", [])
            if call.get("value") == "time_add" and len(arguments) == 2 and arguments[1].get("type") == "literal" \
                    and isinstance(arguments[1].get("value"), str):
                try:
                    parse_duration(arguments[1]["value"])
                except ExpressionFailure as problem:
                    literal = arguments[1]["value"]
                    self.error(path, str(problem), offset=offset_of(rf"['`]({re.escape(literal)})['`]",
                                                                     expression.source, base))

    def check_names(self, expression: Expression, reads: set, path: tuple, names: frozenset, base: int) -> None:
        text = expression.source
        for group, member in sorted(reads, key=str):  # settings.X and credentials.X must be declared
            declared = sorted(self.data.get(group, {}))
            if group in ("settings", "credentials") and group in names and member not in (None, *declared):
                close = difflib.get_close_matches(member, declared, n=1)
                self.error(path, f"unknown {group[:-1]} {member!r} in `{text}`",
                           f"did you mean {close[0]!r}?" if close else
                           f"declared: {', '.join(declared)}" if declared else f"declare it under `{group}:`",
                           offset=offset_of(rf"{group}\s*\.\s*({re.escape(member)})", text, base))
        for name in sorted({root for root, _ in reads} - names):
            # The name itself, not a function or a field of that name.
            where = offset_of(rf"(?<![\w.@'\"`])({re.escape(name)})(?!\w|\s*\()", text, base)
            if name in self.data.get("steps", {}):  # declared, but this endpoint does not run it
                self.error(path, f"step {name!r} does not run here: the endpoint does not list it",
                           f"add it to {path[0]}.steps", offset=where)
                continue
            close = difflib.get_close_matches(name, sorted(names), n=1)
            if name in ("null", "true", "false"):  # a JMESPath literal written as a name reads a field
                hint = f"JMESPath writes literals in backticks: `{name}`"
            else:
                hint = f"did you mean {close[0]!r}?" if close else f"known here: {', '.join(sorted(names))}"
            self.error(path, f"unknown name {name!r} in `{text}`", hint, offset=where)

    def note_uses(self, parsed: dict, reads: set) -> None:
        """Remember what an expression uses, for the warnings given once the whole spec is compiled."""
        self.reads |= reads
        self.tables_named.update(literal_lookup_tables(parsed))
        for call in function_nodes(parsed):
            if call["value"] == "lookup" and lookup_table_of(call) is None:
                self.lookup_by_name_only = False
            if call["value"] in ("disposition", "disposition_name") and call["children"]:
                argument = call["children"][0]
                given = lookup_table_of(argument) or (argument["value"] if argument.get("type") == "field" else None)
                if given:
                    self.disposition_inputs.add(given)


def root_reads(node) -> set:
    """(name, member) for every name an expression reads from its root scope (not from items inside
    projections): `settings.limit` reads ('settings', 'limit'), a bare `reports` ('reports', None)."""
    if not isinstance(node, dict):
        return set()
    kind, children = node.get("type"), node.get("children", [])
    if kind == "field":
        return {(node["value"], None)}
    if kind == "subexpression" and len(children) > 1 and children[0].get("type") == children[1].get("type") == "field":
        return {(children[0]["value"], children[1]["value"])}
    if kind in ("subexpression", "index_expression", "projection", "value_projection", "filter_projection", "pipe"):
        return root_reads(children[0]) if children else set()
    if kind == "expref":
        return set()
    reads = set()
    for child in children:
        reads |= root_reads(child)
    return reads


def field_names(node) -> set:
    """Every field name an expression reads, anywhere (inside projections and filters too)."""
    if isinstance(node, list):
        return set().union(*(field_names(child) for child in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    names = {node["value"]} if node.get("type") == "field" else set()
    return names | field_names(node.get("children", []))


def root_names(node) -> set:
    """Names an expression reads from its root scope."""
    return {name for name, _ in root_reads(node)}


def function_nodes(node):
    """Every function call in a parsed expression."""
    if isinstance(node, dict):
        if node.get("type") == "function_expression":
            yield node
        for child in node.get("children", []):
            yield from function_nodes(child)


def lookup_table_of(node) -> str | None:
    """The table a `lookup('name', ...)` call names as literal text, else None."""
    if not (isinstance(node, dict) and node.get("type") == "function_expression" and node.get("value") == "lookup"):
        return None
    first = (node.get("children") or [None])[0]
    if isinstance(first, dict) and first.get("type") == "literal" and isinstance(first.get("value"), str):
        return first["value"]
    return None


def literal_lookup_tables(node) -> list[str]:
    """Table names given as literal text to lookup(): checked to exist at load time."""
    return [name for call in function_nodes(node) if (name := lookup_table_of(call))]


def offset_of(pattern: str, text: str, base: int) -> int | None:
    """Where the first group of `pattern` is found in an expression's text, counted from the YAML value."""
    found = re.search(pattern, text)
    return base + found.start(1) if found else None

