"""The `steps` section and the step lists of routes: what each call sends, which steps run before
which, and what /health and token-less routes may call."""
from __future__ import annotations

import dataclasses
import difflib

from engine.language.expressions import Template
from engine.language.functions import parse_duration
from engine.spec.checker import PAGE_NAMES, REQUEST_NAMES, RESERVED_NAMES, RESPONSE_NAMES, root_names
from engine.spec.model import HtmlTableReader, Pages, Poll, Step, origin_of


class StepChecks:
    def step(self, name: str, step: dict, path: tuple | None = None, extra: frozenset = frozenset()) -> Step:
        """`extra`: names the step sees where it runs beside the request's (a tile's `period`)."""
        path = path or ("steps", name)
        # Steps may read earlier steps' results; which ones exist is checked per endpoint below.
        names = frozenset(REQUEST_NAMES | set(self.data.get("steps", {}))) | extra
        if name in RESERVED_NAMES and path == ("steps", name):
            self.error(path, f"{name!r} is a reserved name", f"rename the step: expressions read {name!r} as "
                                                             "the request's or the answer's", key=True)
        for_each = None
        if "for each" in step:
            for_each, names = self.for_each(step["for each"], path + ("for each",), names)
        if "pages" in step:
            names = names | PAGE_NAMES
        read = step.get("read", "json")
        if isinstance(read, dict):
            table = read["html_table"]
            if "key" in table and table["key"] not in table["columns"]:
                self.error(path + ("read", "html_table", "key"), f"key {table['key']!r} is not one of the columns",
                           "one of: " + ", ".join(table["columns"]))
            read = HtmlTableReader(tuple(table["columns"]), table.get("key"), table.get("index", 0))
        url = step["url"]
        url_template = self.template(url, path + ("url",), names)
        self.check_step_url(url, path + ("url",))
        if "json" in step and "form" in step:
            self.error(path + ("form",), "a step sends either `json` or `form`, not both",
                       "json: sends a JSON body, form: a form-encoded one; keep one", key=True)
        answered = names | RESPONSE_NAMES  # `result` and `pages.while` see the answer and the step's scope
        pages = step.get("pages")
        if "poll" in step and "cache" in step:
            self.error(path + ("cache",), "a polled step's answers are not kept: each poll must ask the vendor again",
                       "remove `cache`", key=True)
        if "pages" in step and "poll" in step:
            self.error(path + ("poll",), "a step asks page after page (`pages`) or polls a job (`poll`), not both",
                       "poll the job's state in one step, and read its pages in the next", key=True)
        compiled = Step(
            name=name, url=url_template, once=step.get("once", "per observable"), method=step.get("method", "GET"),
            for_each=for_each,
            # `if` is decided once for the step, before its `for each` items exist.
            condition=self.expression(step["if"], path + ("if",), frozenset(REQUEST_NAMES | set(self.data.get(
                "steps", {})))) if "if" in step else None,
            url_safe=step.get("url_safe", ""),
            query=self.pairs(step.get("query", {}), path + ("query",), names),
            headers=self.pairs(step.get("headers", {}), path + ("headers",), names),
            json=self.json_body(step.get("json"), path + ("json",), names),
            form=self.pairs(step["form"], path + ("form",), names) if "form" in step else None,
            use_auth=step.get("auth", True), timeout=step.get("timeout"), read=read,
            cache_seconds=self.cache_seconds(step.get("cache"), path + ("cache",)),
            result=self.expression(step["result"], path + ("result",), answered) if "result" in step else None,
            pages=None if pages is None else Pages(self.expression(pages["while"], path + ("pages", "while"), answered),
                                                   pages["max"]),
            poll=self.poll(step["poll"], path + ("poll",), answered) if "poll" in step else None,
            cleanup=step.get("cleanup", False),
            errors=self.error_rules(step.get("errors", ()), path + ("errors",), names, polls="poll" in step),
            path=path,
        )
        steps = set(self.data.get("steps", {}))
        return dataclasses.replace(compiled, reads_steps=frozenset(step_reads(compiled) & steps))

    def poll(self, poll: dict, path: tuple, names: frozenset) -> Poll:
        waits = tuple(poll["wait"]) if isinstance(poll["wait"], list) else (poll["wait"],)
        if waits[-1] == 0 and poll.get("attempts") is None:
            self.error(path + ("wait",), "the last wait is 0 s: the vendor would be asked again at once, "
                                         "as often as it answers, until the time runs out",
                       "wait a second or more between calls, e.g. wait: [0, 3]")
        return Poll(self.expression(poll["until"], path + ("until",), names), waits, poll.get("for"),
                    poll.get("attempts"))

    def cache_seconds(self, written: str | None, path: tuple) -> float | None:
        if written is None:
            return None
        seconds = parse_duration(written).span.total_seconds()
        if seconds <= 0:
            self.error(path, f"{written!r} keeps nothing", "give a time to live, e.g. PT10M or P1D")
            return None
        return seconds

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

    def check_step_list(self, names: tuple, path: tuple, steps: dict, earlier: tuple = ()) -> set:
        """Checks the list (run after the steps `earlier`); returns the steps it runs, a misspelt one
        read as the suggested step so that the expressions using that step are not reported too."""
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
            self.check_step_names(steps[name], set(earlier) | set(names[:index]))
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
        """A step may use the results of steps listed before it in the same endpoint (in any of its
        parts: URL, query, headers, body, `if`, `for each`, `result`)."""
        later = set(self.data.get("steps", {})) - earlier - REQUEST_NAMES  # a reserved name is reported once
        for name in sorted(step_reads(step) & later):
            self.error(step.path, f"uses step {name!r}, which does not run before it here",
                       "list it earlier in the endpoint's steps")


def step_reads(step: Step) -> set:
    """Root names the expressions of a step read: its URL, query, headers, body, condition, items,
    result, page condition and poll condition (a `for each` item's own name included)."""
    values = [step.url, *(v for _, v in step.query), *(v for _, v in step.headers), *(v for _, v in step.form or ())]
    expressions = [e for e in (step.condition, step.result, getattr(step.for_each, "items", None),
                               getattr(step.pages, "more", None), getattr(step.poll, "until", None))
                   if e is not None]
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

