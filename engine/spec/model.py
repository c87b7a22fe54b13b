"""The loaded form of a vendor spec: frozen objects with every expression already compiled.

Built once per process by `loader.load_spec`; nothing here changes while requests are served.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from engine.language.expressions import Expression, Template

# The relay's plural keys for CTIM entities and the `type` each document gets.
ENTITY_TYPES = MappingProxyType({
    "verdicts": "verdict", "judgements": "judgement", "sightings": "sighting",
    "indicators": "indicator", "relationships": "relationship", "incidents": "incident", "notes": "note",
})
ENDPOINT_OUTPUTS = MappingProxyType({
    "deliberate": ("verdicts", "warnings"),
    "observe": (*ENTITY_TYPES, "warnings"),
    "refer": ("references", "warnings"),
    "respond": ("actions", "warnings"),  # the actions offered; see `Respond` for what a trigger runs
})


@dataclass(frozen=True)
class Credential:
    name: str
    label: str
    type: str = "api_key"
    required: bool = True
    tooltip: str = ""
    example: str | None = None  # a value of the right form for demo, lint and try --replay examples


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    type: str
    default: object = None
    minimum: int | None = None
    maximum: int | None = None
    options: tuple = ()
    tooltip: str = ""
    required: bool = False  # refuse tokens without it, as for a credential

    def bounds(self) -> list[str]:
        """Its limits in words, for prompts and tooltips: ['at least 1', 'at most 1000']."""
        words = []
        if self.minimum is not None:
            words.append(f"at least {self.minimum}")
        if self.maximum is not None:
            words.append(f"at most {self.maximum}")
        return words

    def read(self, claims: dict):
        """The setting's value from the JWT claims; a missing or unusable value gives the default."""
        value = claims.get(self.name)
        if self.type == "integer":
            if isinstance(value, bool):
                return self.default
            try:
                value = int(value) if isinstance(value, (int, str)) else None
            except ValueError:
                value = None
            if value is None or (self.minimum is not None and value < self.minimum):
                return self.default
            if self.maximum is not None and value > self.maximum:
                return self.maximum
            return value
        if self.type == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            return self.default
        if value is None or (self.options and value not in self.options):
            return self.default
        return str(value)


@dataclass(frozen=True)
class ErrorRule:
    statuses: frozenset | None  # None: any status
    fault: str | None  # ssl, connection, timeout, any; None: the rule is about answers
    body: Expression | None
    outcome: str  # "error", "skip" (the observable), "skip step" (this call) or "accept"
    code: Template | str = ""
    message: Template | str = ""
    type: str | None = "fatal"  # None: the error is answered without a `type`
    path: tuple = ()
    timed_out: bool = False  # judges only the last answer of a poll out of time (and nothing else)
    warning: tuple | None = None  # with accept: (code, message) templates of a warning answered beside the data


@dataclass(frozen=True)
class HtmlTableReader:
    columns: tuple
    key: str | None = None
    index: int = 0


@dataclass(frozen=True)
class Pages:
    """Ask page after page while `more` holds, at most `max` pages."""

    more: Expression
    max: int


@dataclass(frozen=True)
class Poll:
    """Ask again, waiting between calls, until `until` holds or the time (or attempts) run out."""

    until: Expression
    waits: tuple  # seconds before the 2nd call, the 3rd, ...; the last one repeats
    seconds: float | None = None  # how long the polls may go on, from the second call
    attempts: int | None = None  # calls at most, the first included


@dataclass(frozen=True)
class Step:
    name: str
    url: Template | str
    once: str = "per observable"
    for_each: object = None  # mapping.ForEach: one call per item
    method: str = "GET"
    condition: Expression | None = None  # `if:` the call is made only when true
    url_safe: str = ""  # characters left unescaped when values are put into the URL
    query: tuple = ()  # ((name, template-or-constant), ...)
    headers: tuple = ()
    json: object = None
    form: tuple | None = None
    use_auth: bool = True
    timeout: float | None = None
    cache_seconds: float | None = None  # keep accepted answers this long (answercache.py)
    read: object = "json"  # "json", "ndjson", "text" or HtmlTableReader
    result: Expression | None = None
    pages: Pages | None = None
    poll: Poll | None = None
    cleanup: bool = False  # undoes what earlier steps made: runs even when the budget is spent
    reads_steps: frozenset = frozenset()  # the steps whose values it reads (a cleanup needs them all)
    errors: tuple = ()
    path: tuple = ()

    @property
    def per_request(self) -> bool:
        return self.once == "per request"


TOKEN_STEP = "token"  # the name of a token request, in traces, logs and `examples`


@dataclass(frozen=True)
class TokenRequest:
    """`http.auth.token`: how the vendor issues an access token for the credentials."""

    step: Step  # the request, named TOKEN_STEP; its templates read credentials and settings only
    expires_in: Expression  # seconds the token lives, over the answer
    refresh_on: frozenset = frozenset({401})  # a call answered so gets a new token, and is made once more


@dataclass(frozen=True)
class HttpConfig:
    base_url: str  # as written; a template when `base_template` is set
    base_template: Template | None = None  # the host from settings or credentials, rendered per request
    other_origins: tuple = ()
    timeout: float = 10.0
    headers: tuple = ()
    auth_headers: tuple = ()
    auth_query: tuple = ()
    auth_basic: tuple | None = None  # (username template, password template)
    auth_token: TokenRequest | None = None
    auth_sign: tuple | None = None  # (scheme name, ((parameter, template), ...)): signing.SCHEMES
    errors: tuple = ()
    allow_plain_http: bool = False
    private_network: bool = False  # the spec's half of reaching a private address (the operator has the other)
    rate_limit: tuple | None = None  # (calls, seconds): at most so many calls start within any such window

    @property
    def origin(self) -> str:
        return origin_of(self.base_url)

    @property
    def base_path(self) -> str:
        """The path part of the base URL (also of one whose host comes from the token)."""
        after_scheme = self.base_url.split("://", 1)[-1]
        after_host = after_scheme.split("}}")[-1] if self.base_template is not None else after_scheme
        return "/" + after_host.split("/", 1)[1] if "/" in after_host else ""


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True)
class ExampleAnswer:
    """A canned vendor answer for one step, from a file next to the spec."""

    step: str
    file: str  # absolute path
    status: int = 200
    content_type: str = "application/json"

    def content(self) -> bytes:
        with open(self.file, "rb") as handle:
            return handle.read()


@dataclass(frozen=True)
class Examples:
    observable: dict
    answers: MappingProxyType  # step name -> ExampleAnswer


@dataclass(frozen=True)
class Block:
    """An endpoint's mapping (or a nested group): what to call, what to name, what to make."""

    steps: tuple = ()
    let: tuple = ()
    for_each: object = None  # mapping.ForEach
    where: Expression | None = None
    condition: Expression | None = None
    outputs: tuple = ()  # ((plural key, ListNode), ...)
    groups: tuple = ()
    path: tuple = ()
    token: str | None = None  # `none`: this route reads no token (None: as the spec says)


@dataclass(frozen=True)
class Action:
    """A response action: what /respond/observables offers (the `offer` mapping: id, title,
    description, categories, query-params), and the steps /respond/trigger runs for it."""

    name: str
    offer: object  # mapping.ObjectNode
    steps: tuple
    path: tuple = ()
    params: tuple = ()  # names of the query-params it offers beside the observable's: a trigger sends them back


@dataclass(frozen=True)
class Respond:
    """The spec's response actions. The listing itself is the `respond` endpoint's Block."""

    actions: tuple = ()  # Action, in the order offered; none: the routes answer as stubs
    unknown_action: str | None = None  # run this action for an id the listing does not offer
    failure_status: bool = True  # a failed trigger answers {"status": "failure"} beside its errors
    verify_offer: bool = True  # a trigger runs the listing's steps again to see the action is offered now
    not_offered: tuple | None = None  # (code, message) templates for an id the relay does not offer


@dataclass(frozen=True)
class Tile:
    """A dashboard tile: its definition, and how its data is made for a period."""

    id: str
    definition: MappingProxyType  # what /tiles and /tiles/tile answer: id, type, title, periods, ...
    let: tuple = ()
    steps: tuple = ()  # its own, after the spec-wide tiles.steps
    data: object = None  # mapping node of its tile_data
    path: tuple = ()

    @property
    def periods(self) -> tuple:
        return tuple(self.definition["periods"])


@dataclass(frozen=True)
class Tiles:
    """`tiles:`: the periods tile-data takes, the tiles, and what every tile's data shares."""

    periods: tuple  # ((name, seconds), ...) in the order written
    tiles: tuple  # Tile, in the order /tiles lists them
    steps: tuple = ()
    data: object = None  # mapping node every tile's data holds
    unknown: tuple = ("invalid argument", "Invalid tile id")  # (code, message) for an id not declared

    def tile(self, tile_id: str) -> Tile | None:
        return next((tile for tile in self.tiles if tile.id == tile_id), None)


@dataclass(frozen=True)
class ModuleLook:
    """How the module shows in XDR (relay module-type): the spec's `module:` section."""

    short_description: str = ""
    tips: str = ""
    logo: str | None = None  # absolute path of an image next to the spec
    product_categories: tuple = ()


@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    version: str
    file: str
    description: str = ""
    links: tuple = ()
    module: ModuleLook = field(default_factory=ModuleLook)
    credentials: tuple = ()
    settings: tuple = ()
    observable_types: frozenset = frozenset()
    ctim_schema_version: str | None = None
    concurrency: int = 20
    http: HttpConfig | None = None
    steps: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    tables: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    input_code: str = "invalid argument"
    input_message: Template | str | None = None
    input_type: str | None = "fatal"
    on_error: str = "stop"  # or "continue": an observable's fatal error does not stop the others
    data_with_errors: str = "gathered"  # or "always" ({} next to errors) or "never" (errors alone)
    unexpected_data: tuple | None = None  # (code, message template) for answers the mappings cannot read
    watchdog_message: str = "Invalid Health Check"
    health: tuple | None = None  # step names, or None when the spec has no /health
    health_token: str | None = None
    token: str = "required"  # `none`: relay requests carry no token, the vendor needs no credentials
    read_token_first: bool = False  # check the token before dropping unsupported observables
    endpoints: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # name -> Block
    respond: Respond | None = None  # None: /respond/* answer 404, as an undeclared route
    tiles: Tiles | None = None  # None: /tiles* answer 404
    examples: Examples | None = None
    # The YAML it came from, with the position of every value: run-time errors and lint's dry run
    # point into the file with it.
    document: object = field(default=None, compare=False, repr=False)

    def line_of(self, path: tuple) -> int:
        return self.document.where(tuple(path))[0] if self.document is not None else 0

    def problem(self, path: tuple, message: str, hint: str = "", *, severity: str = "error",
                offset: int | None = None):
        """A SpecError located at `path` (and `offset` characters into its text, where known)."""
        return self.document.error(tuple(path), message, hint, severity=severity, offset=offset)

    def endpoint(self, name: str) -> Block | None:
        return self.endpoints.get(name)

    def call_named(self, name: str) -> Step | None:
        """A step by name, or the token request (`token`): the calls examples answer."""
        if name == TOKEN_STEP and self.http is not None and self.http.auth_token is not None:
            return self.http.auth_token.step
        return self.steps.get(name)

    def declares(self, route: str) -> bool:
        """Whether the spec serves this relay route (health, deliberate, observe, refer, respond, trigger,
        tiles, tile, tile_data)."""
        if route == "health":
            return self.health is not None
        if route == "trigger":
            return self.respond is not None
        if route in ("tiles", "tile", "tile_data"):
            return self.tiles is not None
        return self.endpoint(route) is not None

    def reads_token(self, route: str) -> bool:
        """Whether this route authenticates the request (a route's own `token` wins over the spec's)."""
        own = self.health_token if route == "health" else getattr(self.endpoint(route), "token", None)
        return (own or self.token) != "none"

    def supports(self, observable_type: str) -> bool:
        return observable_type in self.observable_types

    @property
    def required_credentials(self) -> tuple:
        return tuple(c for c in self.credentials if c.required)
