"""From schema-valid YAML data to a frozen `Spec`, checking what a schema cannot.

Every expression and template is compiled here (syntax, known functions and arities, names that
are defined where they are used), URLs are checked against the declared origins, and references
between parts of the spec (steps named by endpoints, tables named by lookup()) are resolved.
Problems are collected, not raised, so lint can show them all at once.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from .errors import SpecError
from .expressions import Expression, ExpressionSyntaxError, Template
from .functions import RelayFunctions
from .mapping import CONTROL_KEYS, ForEach, ListNode, ObjectNode
from .spec import (ENDPOINT_OUTPUTS, ENTITY_TYPES, Block, Credential, ErrorRule, ExampleAnswer, Examples,
                   HtmlTableReader, HttpConfig, Setting, Spec, Step, origin_of)
from .yaml_source import Document

REQUEST_NAMES = frozenset({"observable", "settings", "credentials"})  # what every relay-side expression sees
RESPONSE_NAMES = frozenset({"status", "headers", "body", "reason"})
OUTCOME_NAMES = REQUEST_NAMES | RESPONSE_NAMES | {"fault"}
FOR_EACH = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+in\s+(?P<items>.+?)\s*$", re.S)


class Compiler:
    def __init__(self, document: Document):
        self.document = document
        self.data = document.data
        self.problems: list[SpecError] = []
        self.table_like_names: set[str] = set(self.data.get("tables", {})) | set(self.data.get("steps", {}))

    # -- reporting -----------------------------------------------------------------------------
    def error(self, path, message, hint="", *, key=False):
        self.problems.append(self.document.error(tuple(path), message, hint, key=key))

    def warn(self, path, message, hint=""):
        self.problems.append(self.document.error(tuple(path), message, hint, severity="warning"))

    # -- expressions ---------------------------------------------------------------------------
    def expression(self, source: str, path: tuple, names: frozenset) -> Expression | None:
        try:
            expression = Expression(source)
        except ExpressionSyntaxError as problem:
            self.error(path, str(problem))
            return None
        self.check_expression(expression, path, names)
        return expression

    def template(self, source, path: tuple, names: frozenset):
        """A template field: constants stay as they are, text with {{ }} becomes a Template."""
        if not isinstance(source, str):
            return source
        try:
            template = Template(source)
        except ExpressionSyntaxError as problem:
            self.error(path, str(problem))
            return None
        for expression in template.expressions:
            self.check_expression(expression, path, names)
        return source if template.is_constant else template

    def check_expression(self, expression: Expression, path: tuple, names: frozenset) -> None:
        table = RelayFunctions.FUNCTION_TABLE
        for name, count in expression.function_calls():
            if name not in table:
                close = difflib.get_close_matches(name, list(table), n=1)
                self.error(path, f"unknown function {name}() in `{expression.source}`",
                           f"did you mean {close[0]}()?" if close else "see docs/spec-reference.md")
                continue
            signature = table[name]["signature"]
            variadic = bool(signature) and signature[-1].get("variadic")
            if (count < len(signature) - (1 if variadic else 0)) if variadic else count != len(signature):
                self.error(path, f"{name}() takes {len(signature)}{' or more' if variadic else ''} "
                                 f"argument{'s' if len(signature) != 1 else ''}, got {count} in `{expression.source}`")
        for name in sorted(root_names(expression.parsed.parsed) - names):
            close = difflib.get_close_matches(name, sorted(names), n=1)
            self.error(path, f"unknown name {name!r} in `{expression.source}`",
                       f"did you mean {close[0]!r}?" if close else f"known here: {', '.join(sorted(names))}")
        for table_name in literal_lookup_tables(expression.parsed.parsed):
            if table_name not in self.table_like_names and table_name not in names:
                close = difflib.get_close_matches(table_name, sorted(self.table_like_names), n=1)
                self.error(path, f"lookup() names {table_name!r}, which is no table, step or value",
                           f"did you mean {close[0]!r}?" if close else "declare it under `tables:`")

    # -- the spec ------------------------------------------------------------------------------
    def compile(self) -> Spec | None:
        data = self.data
        credentials = tuple(Credential(name, c["label"], c.get("type", "api_key"), c.get("required", True),
                                       c.get("tooltip", "")) for name, c in data.get("credentials", {}).items())
        settings = tuple(Setting(name, s["label"], s["type"], s.get("default"), s.get("minimum"), s.get("maximum"),
                                 tuple(s.get("options", ())), s.get("tooltip", ""))
                         for name, s in data.get("settings", {}).items())
        http = self.http(data.get("http"))
        steps = {name: self.step(name, step) for name, step in data.get("steps", {}).items()}
        endpoints = {}
        for endpoint in ENDPOINT_OUTPUTS:
            if endpoint in data:
                endpoints[endpoint] = self.block(data[endpoint], (endpoint,), endpoint, REQUEST_NAMES, steps,
                                                 top=True)
        health = None
        if "health" in data:
            health = tuple(data["health"]["steps"])
            self.check_step_list(health, ("health", "steps"), steps)
        if (steps or endpoints or health) and http is None:
            self.error((), "steps call a vendor, so the spec needs an `http:` section", key=True)
        input_section = data.get("input", {})
        spec = Spec(
            name=data["name"], title=data["title"], version=str(data["version"]), file=self.document.file,
            description=data.get("description", ""), links=tuple((l["label"], l["url"]) for l in data.get("links", ())),
            credentials=credentials, settings=settings, observable_types=frozenset(data["observable_types"]),
            ctim_schema_version=data.get("ctim_schema_version"), concurrency=data.get("concurrency", 4),
            http=http, steps=MappingProxyType(steps), tables=MappingProxyType(dict(data.get("tables", {}))),
            input_code=input_section.get("code", "invalid argument"),
            input_message=self.template(input_section.get("message"), ("input", "message"),
                                        frozenset({"details", "details_python"})),
            health=health, endpoints=MappingProxyType(endpoints), examples=self.examples(data.get("examples"), steps),
            source=data, marks=MappingProxyType(dict(self.document.marks)),
        )
        return spec

    def examples(self, examples: dict | None, steps: dict) -> Examples | None:
        if examples is None:
            return None
        path = ("examples",)
        observable = examples["observable"]
        if observable["type"] not in self.data["observable_types"]:
            self.error(path + ("observable", "type"), f"{observable['type']!r} is not in observable_types")
        folder = Path(self.document.file).resolve().parent
        answers = {}
        for name, answer in examples["answers"].items():
            if name not in steps:
                close = difflib.get_close_matches(name, list(steps), n=1)
                self.error(path + ("answers", name), f"no step named {name!r}",
                           f"did you mean {close[0]!r}?" if close else "", key=True)
                continue
            file = folder / answer["file"]
            if not file.is_file():
                self.error(path + ("answers", name, "file"), f"no such file: {answer['file']}",
                           "paths are relative to the spec file")
                continue
            content_type = answer.get("content_type", "application/json")
            answers[name] = ExampleAnswer(name, str(file), answer.get("status", 200), content_type)
        return Examples(dict(observable), MappingProxyType(answers))

    def http(self, http: dict | None) -> HttpConfig | None:
        if http is None:
            return None
        path = ("http",)
        allow_plain = http.get("allow_plain_http", False)
        self.check_origin(http["base_url"], path + ("base_url",), allow_plain)
        for index, origin in enumerate(http.get("other_origins", ())):
            self.check_origin(origin, path + ("other_origins", index), allow_plain)
        auth = http.get("auth", {})
        basic = auth.get("basic")
        return HttpConfig(
            base_url=http["base_url"].rstrip("/"),
            other_origins=tuple(origin_of(o) for o in http.get("other_origins", ())),
            timeout=float(http.get("timeout", 10)),
            headers=self.pairs(http.get("headers", {}), path + ("headers",), REQUEST_NAMES),
            auth_headers=self.pairs(auth.get("headers", {}), path + ("auth", "headers"), REQUEST_NAMES),
            auth_query=self.pairs(auth.get("query", {}), path + ("auth", "query"), REQUEST_NAMES),
            auth_basic=None if basic is None else (
                self.template(basic["username"], path + ("auth", "basic", "username"), REQUEST_NAMES),
                self.template(basic["password"], path + ("auth", "basic", "password"), REQUEST_NAMES)),
            errors=self.error_rules(http.get("errors", ()), path + ("errors",)),
            allow_plain_http=allow_plain,
        )

    def check_origin(self, url: str, path: tuple, allow_plain: bool) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            self.error(path, f"{url!r} is not an absolute http(s) URL")
        elif parts.scheme == "http" and not allow_plain:
            self.error(path, f"{url!r} is plain http: credentials and answers would travel unencrypted",
                       "use https, or set http.allow_plain_http: true for a vendor without TLS")

    def pairs(self, mapping: dict, path: tuple, names: frozenset) -> tuple:
        return tuple((key, None if value is None else self.template(value, path + (key,), names))
                     for key, value in mapping.items())

    def error_rules(self, rules, path: tuple) -> tuple:
        compiled = []
        for index, rule in enumerate(rules):
            here = path + (index,)
            when = rule["when"]
            status = when.get("status")
            statuses = None
            if isinstance(status, int):
                statuses = frozenset({status})
            elif isinstance(status, list):
                statuses = frozenset(status)
            elif isinstance(status, str):
                first = int(status[0]) * 100
                statuses = frozenset(range(first, first + 100))
            body = self.expression(when["body"], here + ("when", "body"), OUTCOME_NAMES) if "body" in when else None
            if "fault" in when and ("status" in when or "body" in when):
                self.error(here + ("when",), "a rule is about a fault or about an answer, not both")
            outcome = "error" if "error" in rule else "skip" if "skip" in rule else "accept"
            error = rule.get("error", {})
            compiled.append(ErrorRule(
                statuses=statuses, fault=when.get("fault"), body=body, outcome=outcome, code=error.get("code", ""),
                message=self.template(error.get("message", "Something went wrong."), here + ("error", "message"),
                                      OUTCOME_NAMES),
                type=error.get("type", "fatal"), path=here))
        return tuple(compiled)

    def step(self, name: str, step: dict) -> Step:
        path = ("steps", name)
        # Steps may read earlier steps' results; which ones exist is checked per endpoint below.
        names = REQUEST_NAMES | set(self.data.get("steps", {}))
        if name in REQUEST_NAMES:
            self.error(path, f"{name!r} is a reserved name", key=True)
        read = step.get("read", "json")
        if isinstance(read, dict):
            table = read["html_table"]
            if "key" in table and table["key"] not in table["columns"]:
                self.error(path + ("read", "html_table", "key"), f"key {table['key']!r} is not one of the columns",
                           "one of: " + ", ".join(table["columns"]))
            read = HtmlTableReader(tuple(table["columns"]), table.get("key"), table.get("index", 0))
        url = step["url"]
        url_template = self.template(url, path + ("url",), frozenset(names))
        self.check_step_url(url, path + ("url",))
        if "json" in step and "form" in step:
            self.error(path, "a step sends either `json` or `form`, not both", key=True)
        return Step(
            name=name, url=url_template, once=step.get("once", "per observable"), method=step.get("method", "GET"),
            url_safe=step.get("url_safe", ""),
            query=self.pairs(step.get("query", {}), path + ("query",), frozenset(names)),
            headers=self.pairs(step.get("headers", {}), path + ("headers",), frozenset(names)),
            json=self.json_body(step.get("json"), path + ("json",), frozenset(names)),
            form=self.pairs(step["form"], path + ("form",), frozenset(names)) if "form" in step else None,
            use_auth=step.get("auth", True), timeout=step.get("timeout"), read=read,
            result=self.expression(step["result"], path + ("result",), RESPONSE_NAMES) if "result" in step else None,
            errors=self.error_rules(step.get("errors", ()), path + ("errors",)), path=path,
        )

    def json_body(self, value, path: tuple, names: frozenset):
        if isinstance(value, dict):
            return {key: self.json_body(item, path + (key,), names) for key, item in value.items()}
        if isinstance(value, list):
            return [self.json_body(item, path + (index,), names) for index, item in enumerate(value)]
        return self.template(value, path, names)

    def check_step_url(self, url: str, path: tuple) -> None:
        http = self.data.get("http")
        literal = url.split("{{", 1)[0]
        if http is None or literal.startswith("/") or "://" not in literal:
            if not literal.startswith("/") and "{{" not in url[:2]:
                self.error(path, f"{url!r} should start with '/' (relative to http.base_url) or be an absolute URL")
            return
        origin = origin_of(literal)
        allowed = {origin_of(http["base_url"])} | {origin_of(o) for o in http.get("other_origins", ())}
        if origin not in allowed:
            self.error(path, f"{origin} is not a declared origin", "add it to http.other_origins")
        elif origin.startswith("http:") and not http.get("allow_plain_http"):
            self.error(path, f"{url!r} is plain http", "use https, or set http.allow_plain_http: true")

    def check_step_list(self, names: tuple, path: tuple, steps: dict) -> None:
        seen_observable = False
        for index, name in enumerate(names):
            if name not in steps:
                close = difflib.get_close_matches(name, list(steps), n=1)
                self.error(path + (index,), f"no step named {name!r}",
                           f"did you mean {close[0]!r}?" if close else "declare it under `steps:`")
                continue
            if steps[name].per_request and seen_observable:
                self.error(path + (index,), f"step {name!r} runs once per request, so it must come before "
                                            "the steps that run per observable")
            seen_observable = seen_observable or not steps[name].per_request
            self.check_step_names(steps[name], set(names[:index]))

    def check_step_names(self, step: Step, earlier: set) -> None:
        """A step may use the results of steps listed before it in the same endpoint."""
        later = set(self.data.get("steps", {})) - earlier
        for template in [step.url, *(v for _, v in step.query), *(v for _, v in step.headers)]:
            if isinstance(template, Template):
                for expression in template.expressions:
                    used = root_names(expression.parsed.parsed) & later
                    for name in sorted(used):
                        self.error(step.path, f"uses step {name!r}, which does not run before it here",
                                   "list it earlier in the endpoint's steps")

    # -- mappings ------------------------------------------------------------------------------
    def block(self, data: dict, path: tuple, endpoint: str, names: frozenset, steps: dict, top=False) -> Block:
        step_names = tuple(data.get("steps", ()))
        if top:
            self.check_step_list(step_names, path + ("steps",), steps)
            names = names | set(step_names)
        elif step_names:
            self.error(path + ("steps",), "steps are listed on the endpoint, not in a group", key=True)
        for_each = None
        if "for each" in data:
            for_each, names = self.for_each(data["for each"], path + ("for each",), names)
        where = self.expression(data["where"], path + ("where",), names) if "where" in data else None
        let, names = self.let(data.get("let", {}), path + ("let",), names)
        condition = self.expression(data["if"], path + ("if",), names) if "if" in data else None
        outputs = []
        allowed = ENDPOINT_OUTPUTS[endpoint]
        for key in data:
            if key in ENTITY_TYPES or key == "references":
                if key not in allowed:
                    self.error(path + (key,), f"/{endpoint} answers with {', '.join(allowed)}, not {key}", key=True)
                    continue
                outputs.append((key, self.entity_list(data[key], path + (key,), names, key)))
        groups = tuple(self.block(group, path + ("groups", index), endpoint, names, steps)
                       for index, group in enumerate(data.get("groups", ())))
        if top and not outputs and not groups:
            self.warn(path, f"/{endpoint} makes nothing: add {' or '.join(allowed)}")
        return Block(steps=step_names, let=let, for_each=for_each, where=where, condition=condition,
                     outputs=tuple(outputs), groups=groups, path=path)

    def for_each(self, source: str, path: tuple, names: frozenset):
        match = FOR_EACH.match(source)
        if not match:
            self.error(path, f"{source!r} is not `NAME in EXPRESSION`")
            return None, names
        items = self.expression(match.group("items"), path, names)
        name = match.group("name")
        if name in names:
            self.warn(path, f"{name!r} hides a name already defined here")
        return (ForEach(name, items) if items else None), names | {name}

    def let(self, values: dict, path: tuple, names: frozenset):
        let = []
        for name, value in values.items():
            node = self.node(value, path + (name,), names)
            let.append((name, node))
            names = names | {name}
            self.table_like_names.add(name)
        return tuple(let), names

    def entity_list(self, templates, path: tuple, names: frozenset, plural: str) -> ListNode:
        items = []
        for index, template in enumerate(templates):
            node = self.node(template, path + (index,), names)
            if isinstance(node, ObjectNode) and plural in ENTITY_TYPES:
                node = self.complete_entity(node, plural)
            items.append(node)
        return ListNode(tuple(items))

    def complete_entity(self, node: ObjectNode, plural: str) -> ObjectNode:
        """Every document gets its `type`, and all but verdicts the spec's `schema_version`."""
        keys = {key for key, _ in node.fields}
        extra = []
        if "type" not in keys:
            extra.append(("type", ENTITY_TYPES[plural]))
        version = self.data.get("ctim_schema_version")
        if plural != "verdicts" and version and "schema_version" not in keys:
            extra.append(("schema_version", version))
        return ObjectNode(fields=tuple(extra) + node.fields, let=node.let, for_each=node.for_each, where=node.where,
                          sort=node.sort, descending=node.descending, limit=node.limit, condition=node.condition,
                          path=node.path)

    def node(self, value, path: tuple, names: frozenset):
        if isinstance(value, list):
            return ListNode(tuple(self.node(item, path + (index,), names) for index, item in enumerate(value)))
        if not isinstance(value, dict):
            return self.template(value, path, names)
        for_each, where, sort, limit, condition = None, None, None, None, None
        if "for each" in value:
            for_each, names = self.for_each(value["for each"], path + ("for each",), names)
        if "where" in value:
            where = self.expression(value["where"], path + ("where",), names)
        if "sort" in value:
            sort = self.expression(value["sort"], path + ("sort",), names)
        order = value.get("order", "asc")
        if order not in ("asc", "desc"):
            self.error(path + ("order",), f"order is 'asc' or 'desc', not {order!r}")
        if ("sort" in value or "limit" in value or "where" in value or "order" in value) and for_each is None:
            self.error(path, "where/sort/order/limit work with `for each`", key=True)
        if "limit" in value:
            limit = self.expression(str(value["limit"]), path + ("limit",), names)
        let, names = self.let(value.get("let", {}) if isinstance(value.get("let", {}), dict) else {},
                              path + ("let",), names)
        if "if" in value:
            condition = self.expression(value["if"], path + ("if",), names)
        fields = tuple((key, self.node(item, path + (key,), names))
                       for key, item in value.items() if key not in CONTROL_KEYS)
        return ObjectNode(fields=fields, let=let, for_each=for_each, where=where, sort=sort, descending=order == "desc",
                          limit=limit, condition=condition, path=path)


def root_names(node) -> set:
    """Names an expression reads from its root scope (not from items inside projections)."""
    if not isinstance(node, dict):
        return set()
    kind, children = node.get("type"), node.get("children", [])
    if kind == "field":
        return {node["value"]}
    if kind in ("subexpression", "index_expression", "projection", "value_projection", "filter_projection", "pipe"):
        return root_names(children[0]) if children else set()
    if kind == "expref":
        return set()
    names = set()
    for child in children:
        names |= root_names(child)
    return names


def literal_lookup_tables(node) -> list[str]:
    """Table names given as literal text to lookup(): checked to exist at load time."""
    found = []
    if isinstance(node, dict):
        if node.get("type") == "function_expression" and node.get("value") == "lookup":
            first = (node.get("children") or [None])[0]
            if isinstance(first, dict) and first.get("type") == "literal" and isinstance(first.get("value"), str):
                found.append(first["value"])
        for child in node.get("children", []):
            found += literal_lookup_tables(child)
    return found


def compile_spec(document: Document):
    compiler = Compiler(document)
    spec = compiler.compile()
    return spec, compiler.problems
