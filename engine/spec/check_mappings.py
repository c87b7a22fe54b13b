"""The routes' mappings: blocks, groups, `for each`/`let`/`if`, definitions used with `use`, and
the CTIM the constants of an entity make, checked without running anything."""
from __future__ import annotations

import difflib
from dataclasses import replace
import re

from engine.ctim import field_schema, literal_problem, unknown_field
from engine.language.expressions import Template
from engine.language.mapping import CONTROL_KEYS, ForEach, ListNode, ObjectNode
from engine.spec.checker import lookup_table_of
from engine.spec.model import ENDPOINT_OUTPUTS, ENTITY_TYPES, Block

OUTPUT_KEYS = frozenset({*ENTITY_TYPES, "references", "warnings"})
FOR_EACH = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+in\s+(?P<items>.+?)\s*$", re.S)


class MappingChecks:
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
            if key in OUTPUT_KEYS:
                if key not in allowed:
                    made = [output for output in allowed if output != "warnings"]  # every route may warn
                    self.error(path + (key,), f"/{endpoint} answers with {', '.join(made)}, not {key}", key=True)
                    continue
                outputs.append((key, self.entity_list(data[key], path + (key,), names, key)))
        groups = tuple(self.block(group, path + ("groups", index), endpoint, names, steps)
                       for index, group in enumerate(data.get("groups", ())))
        if top and not groups and not any(key in OUTPUT_KEYS for key in data):
            self.warn(path, f"/{endpoint} makes nothing: add {' or '.join(allowed)}",
                      "or remove the endpoint: XDR then gets 404, as from Cisco's relays", key=True)
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
            if plural == "warnings":
                self.check_warning(node, path + (index,))
            else:
                self.check_ctim_literals(node, ENTITY_TYPES.get(plural, "Ref"), (), path + (index,))
            items.append(node)
        return ListNode(tuple(items))

    def check_warning(self, node, path: tuple) -> None:
        """A warning is `{code, message}` (answered with `type: warning`)."""
        if not isinstance(node, ObjectNode):
            return
        keys = {key for key, _ in node.fields}
        for missing in sorted({"code", "message"} - keys):
            self.error(path, f"a warning needs `{missing}`", "warnings: [{code: ..., message: ...}]", key=True)
        for extra in sorted(keys - {"code", "message"}):
            self.error(path + (extra,), f"{extra!r} is not part of a warning: it has `code` and `message`", key=True)

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
        return replace(node, fields=tuple(extra) + node.fields)

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

