"""From schema-valid YAML data to a frozen `Spec`, checking what a schema cannot.

Every expression and template is compiled here (syntax, known functions and arities, names that
are defined where they are used), URLs are checked against the declared origins, and references
between parts of the spec (steps named by endpoints, tables named by lookup()) are resolved.
Problems are collected, not raised, so lint can show them all at once. Warnings point at likely
mistakes that still load: parts declared but never used, lookup tables with gaps or overlaps, error
rules that can never match.

Each section of a spec has its checks in a module of its own (`check_http`, `check_steps`,
`check_mappings`, `check_tables`, `check_examples`), on the shared core of `checker.py`.
"""
from __future__ import annotations

from types import MappingProxyType

from engine.spec.check_examples import ExampleChecks
from engine.spec.check_http import HttpChecks, error_type
from engine.spec.check_mappings import MappingChecks
from engine.spec.check_respond import RespondChecks, triggered_steps
from engine.spec.check_steps import StepChecks
from engine.spec.check_tables import TableChecks
from engine.spec.check_tiles import TILE_NAMES, TileChecks
from engine.spec.checker import REQUEST_NAMES, Checker
from engine.spec.model import ENDPOINT_OUTPUTS, TOKEN_STEP, Credential, Setting, Spec
from engine.spec.document import Document


class Compiler(Checker, HttpChecks, StepChecks, MappingChecks, RespondChecks, TileChecks, TableChecks,
               ExampleChecks):
    def compile(self) -> Spec | None:
        data = self.data
        credentials = tuple(Credential(name, c["label"], c.get("type", "api_key"), c.get("required", True),
                                       c.get("tooltip", ""), c.get("example"))
                            for name, c in data.get("credentials", {}).items())
        settings = tuple(Setting(name, s["label"], s["type"], s.get("default"), s.get("minimum"), s.get("maximum"),
                                 tuple(s.get("options", ())), s.get("tooltip", ""), s.get("required", False))
                         for name, s in data.get("settings", {}).items())
        for name, setting in data.get("settings", {}).items():
            if setting.get("required") and "default" in setting:
                self.error(("settings", name, "default"), "a required setting has no default: tokens without it "
                                                          "are refused", "remove `default`, or `required`", key=True)
        http = self.http(data.get("http"))
        in_tiles, seen_by_tiles = tile_steps(data), tile_names(data)
        steps = {name: self.step(name, step, extra=seen_by_tiles if name in in_tiles else frozenset())
                 for name, step in data.get("steps", {}).items()}
        endpoints = {}
        for endpoint in ("deliberate", "observe", "refer"):
            if endpoint in data:
                endpoints[endpoint] = self.block(data[endpoint], (endpoint,), endpoint, REQUEST_NAMES, steps,
                                                 top=True)
        respond = None
        if "respond" in data:
            endpoints["respond"], respond = self.respond(data["respond"], steps)
        tiles = self.tiles(data["tiles"], steps) if "tiles" in data else None
        self.check_params_read_by_triggers_only(steps)
        health = None
        if "health" in data:
            health = tuple(data["health"]["steps"])
            self.check_step_list(health, ("health", "steps"), steps)
            self.check_health_needs_no_observable(health, steps)
        self.check_tokenless_routes(endpoints, health, steps, http)
        if data.get("token") == "none" and any(c.get("required", True) for c in data.get("credentials", {}).values()):
            self.error(("token",), "a spec whose requests carry no token cannot require credentials",
                       "mark the credentials `required: false`, or drop `token: none`")
        if (steps or endpoints or health or tiles) and http is None:
            self.error((), "steps call a vendor, so the spec needs an `http:` section",
                       "add http: {base_url: https://api.example.com/v1}", key=True)
        input_section = data.get("input", {})
        spec = Spec(
            name=data["name"], title=data["title"], version=str(data["version"]), file=self.document.file,
            description=data.get("description", ""), links=tuple((l["label"], l["url"]) for l in data.get("links", ())),
            module=self.module_look(data.get("module")),
            credentials=credentials, settings=settings, observable_types=frozenset(data["observable_types"]),
            ctim_schema_version=data.get("ctim_schema_version"), concurrency=data.get("concurrency", 20),
            http=http, steps=MappingProxyType(steps), tables=MappingProxyType(dict(data.get("tables", {}))),
            input_code=input_section.get("code", "invalid argument"),
            input_type=error_type(input_section.get("type", "fatal")),
            on_error=data.get("on_error", "stop"), data_with_errors=data.get("data_with_errors", "gathered"),
            unexpected_data=self.unexpected_data(data.get("unexpected_data")),
            watchdog_message=data.get("watchdog", {}).get("message", "Invalid Health Check"),
            input_message=self.template(input_section.get("message"), ("input", "message"),
                                        frozenset({"details", "details_python"})),
            health=health, health_token=data.get("health", {}).get("token"), token=data.get("token", "required"),
            read_token_first=data.get("read_token_first", False),
            endpoints=MappingProxyType(endpoints), respond=respond, tiles=tiles,
            examples=self.examples(data.get("examples"), calls_answered(http, steps)),
            document=self.document,
        )
        if not any(problem.severity == "error" for problem in self.problems):
            self.warn_about_unused_parts()  # after an error it would mislead: a broken expression reads nothing
        self.check_tables()
        return spec

    def unexpected_data(self, section: dict | None):
        """(code, message): the relay error for an answer the mappings cannot read."""
        if section is None:
            return None
        path = ("unexpected_data",)
        return (self.template(section["code"], path + ("code",), frozenset(REQUEST_NAMES)),
                self.template(section["message"], path + ("message",), frozenset(REQUEST_NAMES)))

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
        triggered = triggered_steps(data)
        listed = triggered | tile_steps(data) | {name for endpoint in ("health", *ENDPOINT_OUTPUTS)
                                                 for name in data.get(endpoint, {}).get("steps", ())}
        read_names = {root for root, _ in self.reads} | self.tables_named
        # Called for what they do, not what they say: triggers, health probes, a job's cleanup, and
        # a poll (it waits for the job the next step reads).
        done_for_effect = {name for name, step in data.get("steps", {}).items()
                           if isinstance(step, dict) and (step.get("cleanup") or "poll" in step)}
        probes = triggered | done_for_effect | set(data.get("health", {}).get("steps", ()))
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


def tile_steps(data: dict) -> set:
    """The steps the tiles run, for any of them."""
    tiles = data.get("tiles", {})
    return set(tiles.get("steps", ())) | {name for tile in tiles.get("list", ()) for name in tile.get("steps", ())}


def tile_names(data: dict) -> frozenset:
    """What the steps the tiles run may read beyond the request: `tile`, `period` and the tiles' `let` values."""
    tiles = data.get("tiles", {})
    return TILE_NAMES | {name for tile in tiles.get("list", ()) for name in tile.get("let", {})}


def calls_answered(http, steps: dict) -> dict:
    """The calls an example may answer: the steps, and the token request."""
    if http is None or http.auth_token is None:
        return steps
    return {**steps, TOKEN_STEP: http.auth_token.step}


def compile_spec(document: Document):
    compiler = Compiler(document)
    spec = compiler.compile()
    return spec, compiler.problems

