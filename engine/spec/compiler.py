"""From schema-valid YAML data to a frozen `Spec`, checking what a schema cannot.

Every expression and template is compiled here (syntax, known functions and arities, names that
are defined where they are used), URLs are checked against the declared origins, and references
between parts of the spec (steps named by endpoints, tables named by lookup()) are resolved.
Problems are collected, not raised, so lint can show them all at once. Warnings point at likely
mistakes that still load: parts declared but never used, lookup tables with gaps or overlaps, error
rules that can never match.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from engine.ctim import field_schema, literal_problem, unknown_field
from engine.errors import SpecError
from engine.language.expressions import Expression, ExpressionSyntaxError, Template
from engine.language.functions import (CTIM_DISPOSITIONS, DISPOSITION_NUMBERS, ExpressionFailure, RelayFunctions,
                                       parse_duration)
from engine.language.mapping import CONTROL_KEYS, ForEach, ListNode, ObjectNode
from engine.serving.addresses import FORBIDDEN, PRIVATE, host_kind
from engine.spec.model import (ENDPOINT_OUTPUTS, ENTITY_TYPES, Block, Credential, ErrorRule, ExampleAnswer, Examples,
                   HtmlTableReader, HttpConfig, Setting, Spec, Step, origin_of)
from engine.spec.source import Document

REQUEST_NAMES = frozenset({"observable", "settings", "credentials"})  # what every relay-side expression sees
RESPONSE_NAMES = frozenset({"status", "headers", "body", "reason"})
OUTCOME_NAMES = REQUEST_NAMES | RESPONSE_NAMES | {"fault"}
CALL_LIKE = re.compile(r"\s*(?P<name>[a-z_][a-z0-9_]*)\(.*\)\s*", re.S)  # text that reads like a function call
PATH_LIKE = re.compile(r"\s*(?P<root>[A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])+\s*")  # like `row.title`
FOR_EACH = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+in\s+(?P<items>.+?)\s*$", re.S)


class Compiler:
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

    # -- reporting -----------------------------------------------------------------------------
    def error(self, path, message, hint="", *, key=False, offset=None):
        self.problems.append(self.document.error(tuple(path), message, hint, key=key, offset=offset))

    def warn(self, path, message, hint="", *, key=False, offset=None):
        self.problems.append(self.document.error(tuple(path), message, hint, key=key, offset=offset,
                                                 severity="warning"))

    # -- expressions ---------------------------------------------------------------------------
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
        for table_name in literal_lookup_tables(parsed):
            if table_name not in self.table_like_names and table_name not in names:
                close = difflib.get_close_matches(table_name, sorted(self.table_like_names), n=1)
                self.error(path, f"lookup() names {table_name!r}, which is no table, step or value",
                           f"did you mean {close[0]!r}?" if close else "declare it under `tables:`",
                           offset=offset_of(rf"['\"`]({re.escape(table_name)})['\"`]", expression.source, base))

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
            self.error(path, f"unknown name {name!r} in `{text}`",
                       f"did you mean {close[0]!r}?" if close else f"known here: {', '.join(sorted(names))}",
                       offset=where)

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
            self.check_health_needs_no_observable(health, steps)
        self.check_tokenless_routes(endpoints, health, steps, http)
        if data.get("token") == "none" and any(c.get("required", True) for c in data.get("credentials", {}).values()):
            self.error(("token",), "a spec whose requests carry no token cannot require credentials",
                       "mark the credentials `required: false`, or drop `token: none`")
        if (steps or endpoints or health) and http is None:
            self.error((), "steps call a vendor, so the spec needs an `http:` section",
                       "add http: {base_url: https://api.example.com/v1}", key=True)
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
            health=health, health_token=data.get("health", {}).get("token"), token=data.get("token", "required"),
            read_token_first=data.get("read_token_first", False),
            endpoints=MappingProxyType(endpoints), examples=self.examples(data.get("examples"), steps),
            document=self.document,
        )
        if not any(problem.severity == "error" for problem in self.problems):
            self.warn_about_unused_parts()  # after an error it would mislead: a broken expression reads nothing
        self.check_tables()
        return spec

    # -- likely mistakes (warnings) ----------------------------------------------------------------
    def warn_about_unused_parts(self) -> None:
        """Settings, credentials, steps, tables and `let` values that nothing uses."""
        data = self.data
        read_whole = {root for root, member in self.reads if member is None}
        for name in data.get("settings", {}):
            if "settings" not in read_whole and ("settings", name) not in self.reads:
                self.warn(("settings", name), f"setting {name!r} is never used",
                          f"read it as {{{{ settings.{name} }}}} in a template, or remove it", key=True)
        for name in data.get("credentials", {}):
            if "credentials" not in read_whole and ("credentials", name) not in self.reads:
                self.warn(("credentials", name), f"credential {name!r} is never used",
                          f"send it with {{{{ credentials.{name} }}}}, e.g. under http.auth, or remove it: "
                          "tokens without it are refused", key=True)
        listed = {name for endpoint in ("health", *ENDPOINT_OUTPUTS)
                  for name in data.get(endpoint, {}).get("steps", ())}
        read_names = {root for root, _ in self.reads} | self.tables_named
        probes = set(data.get("health", {}).get("steps", ()))
        for name in data.get("steps", {}):
            if name not in listed:
                self.warn(("steps", name), f"step {name!r} never runs: no endpoint lists it",
                          "add it to the `steps:` of an endpoint (or of health), or remove it", key=True)
            elif name not in read_names and name not in probes:
                self.warn(("steps", name), f"step {name!r} runs, but nothing reads its answer",
                          f"read it as {{{{ {name}... }}}} in a mapping or a later step, or remove it", key=True)
        if self.lookup_by_name_only:  # else a table may be named by a computed name
            for name in data.get("tables", {}):
                if name not in self.tables_named:
                    self.warn(("tables", name), f"table {name!r} is never used",
                              f"read it with lookup('{name}', key), or remove it", key=True)
        for name in data.get("define", {}):
            if name not in self.definitions_used:
                self.warn(("define", name), f"definition {name!r} is never used",
                          f"use it with {{use: {name}}}, or remove it", key=True)
        names_read = {root for root, _ in self.reads} | self.tables_named
        for name, path in self.let_values:
            if name not in names_read:
                self.warn(path, f"let value {name!r} is never used", "use it below, or remove it", key=True)

    def check_tables(self) -> None:
        """Gaps and overlaps in `ranges`; values that disposition() cannot read."""
        fed_to_disposition = {self.let_tables.get(name, name) for name in self.disposition_inputs}
        for name, table in self.data.get("tables", {}).items():
            path = ("tables", name)
            for index, message, hint in range_problems(table.get("ranges", [])):
                row = table["ranges"][index]
                self.warn(path + ("ranges", index) + (("from",) if "from" in row else ()), message, hint)
            if name in fed_to_disposition:
                self.check_disposition_values(table, path)

    def check_disposition_values(self, table: dict, path: tuple) -> None:
        values = [(path + ("ranges", index, "value"), row.get("value"))
                  for index, row in enumerate(table.get("ranges", ()))]
        values += [(path + ("values", key), value) for key, value in table.get("values", {}).items()]
        if "default" in table:
            values.append((path + ("default",), table["default"]))
        for where, value in values:
            if not is_ctim_disposition(value):
                names = list(DISPOSITION_NUMBERS)
                close = difflib.get_close_matches(str(value).capitalize(), names, n=1)
                self.warn(where, f"{value!r} is not a CTIM disposition, and disposition() reads this table",
                          (f"did you mean {close[0]!r}? " if close else "") + f"one of: {', '.join(names)} (or 1 to 5)")

    def examples(self, examples: dict | None, steps: dict) -> Examples | None:
        if examples is None:
            return None
        path = ("examples",)
        observable = examples["observable"]
        if observable["type"] not in self.data["observable_types"]:
            self.error(path + ("observable", "type"), f"{observable['type']!r} is not in observable_types",
                       "one of: " + ", ".join(self.data["observable_types"]))
        folder = Path(self.document.file).resolve().parent
        answers = {}
        for name, answer in examples["answers"].items():
            if name not in steps:
                close = difflib.get_close_matches(name, list(steps), n=1)
                self.error(path + ("answers", name), f"no step named {name!r}",
                           f"did you mean {close[0]!r}?" if close else "", key=True)
                continue
            file = (folder / answer["file"]).resolve()
            if not file.is_relative_to(folder):
                # Lint runs in CI on specs from anyone: a path out of the spec's folder could read
                # /proc/self/environ or a key file into a warning.
                self.error(path + ("answers", name, "file"), f"{answer['file']} is outside the spec's folder",
                           "example answers live next to the spec, e.g. examples/<vendor>/<step>.json")
                continue
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
        allow_plain, private = http.get("allow_plain_http", False), http.get("private_network", False)
        self.check_origin(http["base_url"], path + ("base_url",), allow_plain, private)
        for index, origin in enumerate(http.get("other_origins", ())):
            self.check_origin(origin, path + ("other_origins", index), allow_plain, private)
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
            allow_plain_http=allow_plain, private_network=private,
        )

    def check_origin(self, url: str, path: tuple, allow_plain: bool, private: bool) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            self.error(path, f"{url!r} is not an absolute http(s) URL",
                       f"write it with its scheme: https://{url}" if "://" not in url else "")
            return
        if parts.scheme == "http" and not allow_plain:
            self.error(path, f"{url!r} is plain http: credentials and answers would travel unencrypted",
                       "use https, or set http.allow_plain_http: true for a vendor without TLS")
        if "@" in parts.netloc:
            self.error(path, "the URL carries a user name or password (`user:pass@`): it would be sent to the "
                             "vendor, logged and shown", "put credentials under `credentials:` and send them "
                                                          "with http.auth")
            return
        kind = host_kind(parts.hostname or "")
        if kind == FORBIDDEN:
            self.error(path, f"{parts.hostname} is a link-local or cloud metadata address, which the relay never "
                             "reaches (it would hand out the function's own cloud credentials)")
        elif kind == PRIVATE and not private:
            self.error(path, f"{parts.hostname} is a loopback or private address",
                       "for an appliance on a private network, set http.private_network: true (the operator "
                       "must then also list the vendor in RELAY_PRIVATE_VENDORS); to test against a local "
                       "stand-in, keep the real URL and set RELAY_UPSTREAM_<NAME>")

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
                self.error(here + ("when",), "a rule is about a fault or about an answer, not both",
                           "split it into two rules")
            outcome = "error" if "error" in rule else "skip" if "skip" in rule else "accept"
            error = rule.get("error", {})
            compiled.append(ErrorRule(
                statuses=statuses, fault=when.get("fault"), body=body, outcome=outcome, code=self.template(error.get("code", ""), here + ("error", "code"), OUTCOME_NAMES),
                message=self.template(error.get("message", "Something went wrong."), here + ("error", "message"),
                                      OUTCOME_NAMES),
                type=error.get("type", "fatal"), path=here))
        self.warn_about_unreachable_rules(compiled, rules)
        return tuple(compiled)

    def warn_about_unreachable_rules(self, compiled: list, rules: list) -> None:
        """The first matching rule decides, so a rule whose every case an earlier one takes never runs."""
        for index, rule in enumerate(compiled):
            earlier = next((i for i, before in enumerate(compiled[:index]) if catches_all_of(before, rule)), None)
            if earlier is not None:
                when = rules[index]["when"]
                what = f"{rule.fault} faults" if rule.fault else f"status {_statuses_text(when['status'])}"
                self.warn(rule.path + ("when", "fault" if rule.fault else "status"),
                          f"this rule never matches: errors[{earlier}] above it already takes {what}",
                          f"move it above errors[{earlier}], or remove it")

    def step(self, name: str, step: dict) -> Step:
        path = ("steps", name)
        # Steps may read earlier steps' results; which ones exist is checked per endpoint below.
        names = REQUEST_NAMES | set(self.data.get("steps", {}))
        if name in REQUEST_NAMES:
            self.error(path, f"{name!r} is a reserved name", f"rename the step: expressions read {name!r} as "
                                                             f"the request's {name}", key=True)
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
            self.error(path + ("form",), "a step sends either `json` or `form`, not both",
                       "json: sends a JSON body, form: a form-encoded one; keep one", key=True)
        return Step(
            name=name, url=url_template, once=step.get("once", "per observable"), method=step.get("method", "GET"),
            condition=self.expression(step["if"], path + ("if",), frozenset(names)) if "if" in step else None,
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
                self.error(path, f"{url!r} should start with '/' (relative to http.base_url) or be an absolute URL",
                           f"write '/{url}'")
            return
        origin = origin_of(literal)
        allowed = {origin_of(http["base_url"])} | {origin_of(o) for o in http.get("other_origins", ())}
        if origin not in allowed:
            self.error(path, f"{origin} is not a declared origin", "add it to http.other_origins")
        elif origin.startswith("http:") and not http.get("allow_plain_http"):
            self.error(path, f"{url!r} is plain http", "use https, or set http.allow_plain_http: true")

    def check_step_list(self, names: tuple, path: tuple, steps: dict) -> set:
        """Checks the list; returns the steps it runs, a misspelt one read as the suggested step so
        that the expressions using that step are not reported too."""
        seen_observable, runs = False, set()
        for index, name in enumerate(names):
            if name not in steps:
                close = difflib.get_close_matches(name, list(steps), n=1)
                self.error(path + (index,), f"no step named {name!r}",
                           f"did you mean {close[0]!r}?" if close else "declare it under `steps:`")
                runs |= set(close)
                continue
            runs.add(name)
            if steps[name].per_request and seen_observable:
                in_order = sorted(names, key=lambda n: not (n in steps and steps[n].per_request))
                self.error(path + (index,), f"step {name!r} runs once per request, so it must come before "
                                            "the steps that run per observable", f"steps: [{', '.join(in_order)}]")
            seen_observable = seen_observable or not steps[name].per_request
            self.check_step_names(steps[name], set(names[:index]))
        return runs

    def check_tokenless_routes(self, endpoints: dict, health: tuple | None, steps: dict, http) -> None:
        """A route that reads no token has no credentials: its steps can send none."""
        routes = {name: (block.token, (name, "steps"), block.steps) for name, block in endpoints.items()}
        if health is not None:
            routes["health"] = (self.data["health"].get("token"), ("health", "steps"), health)
        sends_auth = http is not None and bool(http.auth_headers or http.auth_query or http.auth_basic)
        for route, (token, path, names) in routes.items():
            if (token or self.data.get("token", "required")) != "none":
                continue
            for index, name in enumerate(names):
                step = steps.get(name)
                if step is not None and ("credentials" in step_reads(step) or (sends_auth and step.use_auth)):
                    self.error(path + (index,), f"/{route} reads no token (`token: none`), so step {name!r} has "
                                                "no credentials to send",
                               "give the step `auth: false` if the vendor answers without them, or let the route "
                               "read the token")

    def check_health_needs_no_observable(self, health: tuple, steps: dict) -> None:
        """/health gets no observables: a step that reads one fails there on every call."""
        for index, name in enumerate(health):
            if name in steps and "observable" in step_reads(steps[name]):
                self.error(("health", "steps", index), f"step {name!r} reads the observable, and /health has none",
                           "give /health a step of its own that asks something fixed (the vendor's account, "
                           "status or quota endpoint, or a known value)")

    def check_step_names(self, step: Step, earlier: set) -> None:
        """A step may use the results of steps listed before it in the same endpoint."""
        later = set(self.data.get("steps", {})) - earlier - REQUEST_NAMES  # a reserved name is reported once
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
            names = names | self.check_step_list(step_names, path + ("steps",), steps)
        elif step_names:
            self.error(path + ("steps",), "steps are listed on the endpoint, not in a group",
                       f"move them to {endpoint}.steps", key=True)
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
        if top and not groups and not any(key in ENTITY_TYPES or key == "references" for key in data):
            self.warn(path, f"/{endpoint} makes nothing: add {' or '.join(allowed)}",
                      "or remove the endpoint: SecureX then gets 404, as from Cisco's relays", key=True)
        if "token" in data and not top:
            self.error(path + ("token",), "`token` is said of a route, not of a group", key=True)
        return Block(steps=step_names, let=let, for_each=for_each, where=where, condition=condition,
                     outputs=tuple(outputs), groups=groups, path=path, token=data.get("token"))

    def for_each(self, source: str, path: tuple, names: frozenset):
        match = FOR_EACH.match(source)
        if not match:
            self.error(path, f"{source!r} is not `NAME in EXPRESSION`")
            return None, names
        items = self.expression(match.group("items"), path, names, base=match.start("items"))
        name = match.group("name")
        if name in names:
            self.warn(path, f"{name!r} hides a name already defined here",
                      f"pick another name: inside, {name!r} no longer means the outer one")
        return (ForEach(name, items) if items else None), names | {name}

    def let(self, values: dict, path: tuple, names: frozenset):
        let = []
        for name, value in values.items():
            node = self.node(value, path + (name,), names)
            let.append((name, node))
            names = names | {name}
            self.table_like_names.add(name)
            self.let_values.append((name, path + (name,)))
            if isinstance(node, Template) and node.whole and lookup_table_of(node.parts[0].parsed.parsed):
                self.let_tables[name] = lookup_table_of(node.parts[0].parsed.parsed)
        return tuple(let), names

    def entity_list(self, templates, path: tuple, names: frozenset, plural: str) -> ListNode:
        items = []
        for index, template in enumerate(templates):
            node = self.node(template, path + (index,), names)
            if isinstance(node, ObjectNode) and plural in ENTITY_TYPES:
                node = self.complete_entity(node, plural)
            self.check_ctim_literals(node, ENTITY_TYPES.get(plural, "Ref"), (), path + (index,))
            items.append(node)
        return ListNode(tuple(items))

    def check_ctim_literals(self, node, kind: str, where: tuple, path: tuple) -> None:
        """Field names and constant values of a mapping checked against CTIM without running
        anything: `confidence: Med`, `relation: Hosted_Byy`, `disposition: 7`, `confidense:`."""
        if isinstance(node, ObjectNode):
            for key, child in node.fields:
                known = unknown_field(kind, where, key)
                if known is not None:
                    close = difflib.get_close_matches(key, known, n=1)
                    owner = (field_schema(kind, where) or {}).get("title", kind)
                    self.error(node.path + (key,), f"{key!r} is not a field of CTIM's {owner}",
                               f"did you mean {close[0]!r}?" if close else "see the CTIM schema", key=True)
                    continue
                self.check_ctim_literals(child, kind, where + (key,), node.path + (key,))
        elif isinstance(node, ListNode):
            for index, item in enumerate(node.items):
                self.check_ctim_literals(item, kind, where + (0,), path + (index,))
        elif node is not None and not isinstance(node, Template):
            problem = literal_problem(kind, where, node)
            if problem:
                message, choices = problem
                hint = f"did you mean {choices[0]!r}?" if len(choices) == 1 else \
                    f"one of: {', '.join(map(str, choices))}" if choices else ""
                if tuple(path) in self.expression_like:  # the text was meant as an expression: say so
                    hint = self.expression_like[tuple(path)]
                    self.problems = [p for p in self.problems if not (p.path == tuple(path) and p.severity == "warning")]
                    message += ", and reads like an expression written without `{{ }}`"
                self.error(path, message, hint)

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
        if "use" in value:
            return self.definition(value, path, names)
        for_each, where, sort, limit, condition = None, None, None, None, None
        if "for each" in value:
            for_each, names = self.for_each(value["for each"], path + ("for each",), names)
        if "where" in value:
            where = self.expression(value["where"], path + ("where",), names)
        if "sort" in value:
            sort = self.expression(value["sort"], path + ("sort",), names)
        order = value.get("order", "asc")
        if order not in ("asc", "desc"):
            self.error(path + ("order",), f"order is 'asc' or 'desc', not {order!r}",
                       "desc puts the largest sort key first")
        needs_items = [key for key in ("where", "sort", "order", "limit") if key in value]
        if needs_items and for_each is None:
            self.error(path + (needs_items[0],), f"{needs_items[0]} works with `for each`, and this object has none",
                       "add `for each: NAME in EXPRESSION`; for a condition on one object, use `if:`", key=True)
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

    def definition(self, value: dict, path: tuple, names: frozenset):
        """`{use: NAME}`: the part written under `define: NAME`, compiled here, with the names in scope
        here (so a definition is checked at every place it is used, and its errors point into it)."""
        name, definitions = value["use"], self.data.get("define", {})
        if len(value) > 1:
            self.error(path + (next(key for key in value if key != "use"),), "`use` stands alone in its mapping",
                       "put the other keys into the definition, or define a smaller part", key=True)
        if not isinstance(name, str) or name not in definitions:
            close = difflib.get_close_matches(str(name), list(definitions), n=1)
            self.error(path + ("use",), f"no definition named {name!r}",
                       f"did you mean {close[0]!r}?" if close else "write it under `define:`")
            return None
        self.definitions_used.add(name)
        if name in self.defining:
            self.error(path + ("use",), f"definition {name!r} uses itself", "a definition cannot contain itself")
            return None
        self.defining.append(name)
        try:
            return self.node(definitions[name], ("define", name), names)
        finally:
            self.defining.pop()


def step_reads(step: Step) -> set:
    """Root names every expression of a step reads (its URL, query, headers, body and condition)."""
    values = [step.url, *(v for _, v in step.query), *(v for _, v in step.headers), *(v for _, v in step.form or ())]
    expressions = [step.condition] if step.condition is not None else []
    pending = values + [step.json]
    while pending:
        value = pending.pop()
        if isinstance(value, Template):
            expressions += value.expressions
        elif isinstance(value, dict):
            pending += list(value.values())
        elif isinstance(value, list):
            pending += value
    return {name for expression in expressions for name in root_names(expression.parsed.parsed)}


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


INFINITY = float("inf")


def range_problems(rows: list) -> list[tuple[int, str, str]]:
    """Rows of a `ranges` table that match nothing, overlap, or leave gaps: (row index, message, hint).

    Bounds are inclusive. Whole-number bounds are read as whole-number ranges (`to: 49` then
    `from: 50` leaves no gap); with fractional bounds, rows may share their boundary value (the first
    listed wins), as there is no other way to write touching ranges."""
    found, spans = [], []
    for index, row in enumerate(rows):
        low, high = row.get("from", -INFINITY), row.get("to", INFINITY)
        if low > high:
            found.append((index, f"this row matches nothing: from {_number(low)} is above to {_number(high)}",
                          "swap from and to"))
        else:
            spans.append((low, high, index))
    reach = None  # (highest value matched so far, the row matching it), going through rows by `from`
    for low, high, index in sorted(spans):
        if reach is not None:
            top, top_row = reach
            step = 1 if _whole(top) and _whole(low) else 0
            if low > top + step:
                gap = _span(top + 1, low - 1) if step else f"the values between {_number(top)} and {_number(low)}"
                found.append((index, f"gap between rows: no row matches {gap} (ranges[{top_row}] ends at "
                                     f"{_number(top)}, ranges[{index}] starts at {_number(low)})",
                              f"start ranges[{index}] at {_number(top + step)}, "
                              f"or end ranges[{top_row}] at {_number(low - step)}"))
            elif low < top or (step and low == top):
                fixes = []
                if high >= top and low > -INFINITY:  # (for a row inside another, ending the outer one is no fix)
                    fixes.append(f"end ranges[{top_row}] at {_number(low - step)}")
                if high > top:
                    fixes.append(f"start ranges[{index}] at {_number(top + step)}")
                first, second = sorted((top_row, index))
                found.append((index, f"overlapping rows: ranges[{first}] and ranges[{second}] both match "
                                     f"{_span(low, min(high, top))} (the first listed wins)",
                              ", or ".join(fixes) or f"remove ranges[{index}], or change its bounds"))
        if reach is None or high > reach[0]:
            reach = (high, index)
    return found


def _whole(number) -> bool:
    return isinstance(number, int) or (isinstance(number, float) and number.is_integer())


def _number(number):
    return int(number) if isinstance(number, float) and number.is_integer() else number


def _span(low, high) -> str:
    if low == -INFINITY:
        return "every number" if high == INFINITY else f"everything up to {_number(high)}"
    if high == INFINITY:
        return f"everything from {_number(low)} up"
    return f"{_number(low)}" if low == high else f"{_number(low)} to {_number(high)}"


def offset_of(pattern: str, text: str, base: int) -> int | None:
    """Where the first group of `pattern` is found in an expression's text, counted from the YAML value."""
    found = re.search(pattern, text)
    return base + found.start(1) if found else None


def is_ctim_disposition(value) -> bool:
    """A name or number disposition() accepts."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and \
        (value in DISPOSITION_NUMBERS or value in CTIM_DISPOSITIONS)


def catches_all_of(earlier: ErrorRule, rule: ErrorRule) -> bool:
    """Does `earlier` match every outcome `rule` matches?"""
    if rule.fault is not None:
        return earlier.fault in (rule.fault, "any")
    return (earlier.fault is None and earlier.body is None and earlier.statuses is not None
            and rule.statuses is not None and rule.statuses <= earlier.statuses)


def _statuses_text(status) -> str:
    return ", ".join(map(str, status)) if isinstance(status, list) else str(status)


def compile_spec(document: Document):
    compiler = Compiler(document)
    spec = compiler.compile()
    return spec, compiler.problems
