"""The `http` section and error tables: origins (TLS, userinfo, private and metadata addresses),
header and query templates, auth, and the rules that turn vendor answers into relay outcomes."""
from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

from engine.language.expressions import Template
from engine.serving.addresses import FORBIDDEN, PRIVATE, host_kind
from engine.serving.signing import SCHEMES
from engine.spec.check_steps import step_reads
from engine.spec.checker import OUTCOME_NAMES, REQUEST_NAMES, RESPONSE_NAMES
from engine.spec.model import TOKEN_STEP, ErrorRule, HttpConfig, TokenRequest, origin_of


class HttpChecks:
    def http(self, http: dict | None) -> HttpConfig | None:
        if http is None:
            return None
        path = ("http",)
        allow_plain, private = http.get("allow_plain_http", False), http.get("private_network", False)
        base_template = self.base_url_template(http["base_url"], path + ("base_url",), allow_plain)
        if base_template is None:
            self.check_origin(http["base_url"], path + ("base_url",), allow_plain, private)
        for index, origin in enumerate(http.get("other_origins", ())):
            self.check_origin(origin, path + ("other_origins", index), allow_plain, private)
        auth = http.get("auth", {})
        basic = auth.get("basic")
        token = self.token_request(auth["token"], path + ("auth", "token")) if "token" in auth else None
        auth_names = REQUEST_NAMES | {TOKEN_STEP} if token is not None else REQUEST_NAMES
        return HttpConfig(
            base_url=http["base_url"].rstrip("/"), base_template=base_template,
            other_origins=tuple(origin_of(o) for o in http.get("other_origins", ())),
            timeout=float(http.get("timeout", 10)),
            rate_limit=(http["rate_limit"]["calls"], float(http["rate_limit"]["seconds"])) if "rate_limit" in http else None,
            headers=self.pairs(http.get("headers", {}), path + ("headers",), REQUEST_NAMES),
            auth_headers=self.pairs(auth.get("headers", {}), path + ("auth", "headers"), auth_names),
            auth_query=self.pairs(auth.get("query", {}), path + ("auth", "query"), auth_names),
            auth_token=token,
            auth_sign=self.signing(auth["sign"], path + ("auth", "sign")) if "sign" in auth else None,
            auth_basic=None if basic is None else (
                self.template(basic["username"], path + ("auth", "basic", "username"), REQUEST_NAMES),
                self.template(basic["password"], path + ("auth", "basic", "password"), REQUEST_NAMES)),
            errors=self.error_rules(http.get("errors", ()), path + ("errors",)),
            allow_plain_http=allow_plain, private_network=private,
        )

    def token_request(self, token: dict, path: tuple) -> TokenRequest | None:
        """`http.auth.token`: a request of its own, made without the auth it provides, whose
        templates read the credentials and settings only (one token serves every observable)."""
        step = self.step(TOKEN_STEP, {"method": "POST", "result": "body.access_token", **token, "auth": False},
                         path=path)
        for name in sorted(step_reads(dataclasses.replace(step, result=None)) - {"credentials", "settings"}):
            self.error(path, f"the token request reads {name!r}; it may read only credentials and settings",
                       "one token serves every observable and step of a request")
        if not (self.data.get("http", {}).get("auth", {}).keys() & {"headers", "query"}):
            self.error(path, "the token is asked for but never sent",
                       'send it with http.auth.headers, e.g. {Authorization: "Bearer {{ token }}"}')
        answered = frozenset({"credentials", "settings"}) | RESPONSE_NAMES
        expires_in = self.expression(token.get("expires_in", "body.expires_in"), path + ("expires_in",), answered)
        return TokenRequest(step, expires_in, frozenset(token.get("refresh_on", (401,))))

    def signing(self, sign: dict, path: tuple) -> tuple | None:
        """`http.auth.sign`: a scheme of signing.SCHEMES and its parameters, templates over the
        credentials and settings."""
        scheme = SCHEMES.get(sign["scheme"])
        if scheme is None:
            self.error(path + ("scheme",), f"no signing scheme {sign['scheme']!r}", "one of: " + ", ".join(SCHEMES))
            return None
        given = [name for name in sign if name != "scheme"]
        for name in given:
            if name not in scheme.parameters:
                self.error(path + (name,), f"{sign['scheme']} takes no parameter {name!r}",
                           "its parameters: " + ", ".join(scheme.parameters), key=True)
        missing = [name for name in scheme.parameters if name not in given]
        if missing:
            self.error(path, f"{sign['scheme']} needs {', '.join(missing)}",
                       "give each as a template, e.g. client_secret: \"{{ credentials.client_secret }}\"")
        names = frozenset({"credentials", "settings"})
        return sign["scheme"], tuple((name, self.template(sign[name], path + (name,), names)) for name in given)

    def base_url_template(self, url: str, path: tuple, allow_plain: bool):
        """A base URL whose host comes from the token (an on-premises API): a template that may read
        `settings` and `credentials` only, whose scheme is written out. The rendered URL is checked
        per request (vendor_origin.render_base_url); the addresses it reaches, at connection."""
        if "{{" not in url:
            return None
        schemes = ("https://", "http://") if allow_plain else ("https://",)
        if not url.startswith(schemes):
            self.error(path, f"{url!r}: a base URL taken from the token starts with its scheme, written out",
                       "e.g. https://{{ settings.host }}/api/v1")
            return None
        template = self.template(url.rstrip("/"), path, frozenset({"settings", "credentials"}))
        return template if isinstance(template, Template) else None

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

    def error_rules(self, rules, path: tuple, names: frozenset = frozenset(), polls: bool = False) -> tuple:
        """`names`: what a step's own rules see beside the answer (its `for each` item, `page`,
        earlier steps); the spec-wide rules see the answer and the request only. `polls`: the
        rules are a polling step's, so `timed_out` rules have an answer to judge."""
        names = OUTCOME_NAMES | names
        compiled = []
        for index, rule in enumerate(rules):
            here = path + (index,)
            when = rule["when"]
            status = when.get("status")
            statuses = None if status is None else frozenset().union(
                *(status_set(one) for one in (status if isinstance(status, list) else [status])))
            body = self.expression(when["body"], here + ("when", "body"), names) if "body" in when else None
            if "fault" in when and ("status" in when or "body" in when):
                self.error(here + ("when",), "a rule is about a fault or about an answer, not both",
                           "split it into two rules")
            if when.get("timed_out") and not polls:
                self.error(here + ("when", "timed_out"), "only a step that polls (`poll:`) runs out of time "
                                                         "with an answer to judge",
                           "move the rule to the errors of the step that polls", key=True)
            elif when.get("timed_out") and "fault" in when:
                self.error(here + ("when",), "a poll out of time has an answer, not a fault",
                           "match its status or body")
            if "warning" in rule and "accept" not in rule:
                self.error(here + ("warning",), "a rule's `warning` goes with `accept: true`",
                           "with an error instead, write `error: {..., type: warning}`", key=True)
            outcome = "error" if "error" in rule else "accept" if "accept" in rule else \
                "skip step" if rule["skip"] == "step" else "skip"
            error, warning = rule.get("error", {}), rule.get("warning")
            compiled.append(ErrorRule(
                statuses=statuses, fault=when.get("fault"), body=body, outcome=outcome,
                code=self.template(error.get("code", ""), here + ("error", "code"), names),
                message=self.template(error.get("message", "Something went wrong."), here + ("error", "message"),
                                      names),
                type=error_type(error.get("type", "fatal")), path=here, timed_out=when.get("timed_out", False),
                warning=None if warning is None else (
                    self.template(warning["code"], here + ("warning", "code"), names),
                    self.template(warning["message"], here + ("warning", "message"), names))))
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


def status_set(status) -> frozenset:
    """`404` -> {404}; `4xx` -> 400..499."""
    if isinstance(status, str):
        first = int(status[0]) * 100
        return frozenset(range(first, first + 100))
    return frozenset({status})


def error_type(written: str) -> str | None:
    """The `type` an error is answered with; `none` leaves it out (a few relays answer without one)."""
    return None if written == "none" else written


def catches_all_of(earlier: ErrorRule, rule: ErrorRule) -> bool:
    """Does `earlier` match every outcome `rule` matches?"""
    if earlier.timed_out != rule.timed_out:
        return False  # they judge different answers
    if rule.fault is not None:
        return earlier.fault in (rule.fault, "any")
    return (earlier.fault is None and earlier.body is None and earlier.statuses is not None
            and rule.statuses is not None and rule.statuses <= earlier.statuses)


def _statuses_text(status) -> str:
    return ", ".join(map(str, status)) if isinstance(status, list) else str(status)

