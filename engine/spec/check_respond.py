"""Response actions: the `respond:` section, compiled into the listing's Block (the actions offered
per observable, made like any mapping) and the `Respond` a trigger runs from."""
from __future__ import annotations

from dataclasses import replace

from engine.language.expressions import Template
from engine.language.mapping import ListNode, ObjectNode
from engine.spec.check_steps import step_reads
from engine.spec.checker import REQUEST_NAMES, root_names
from engine.spec.model import Action, Block, Respond

# XDR sends these back in every trigger: every action's query-params start with them.
OBSERVABLE_PARAMS = (("observable_type", "{{ observable.type }}"), ("observable_value", "{{ observable.value }}"))


class RespondChecks:
    def respond(self, data: dict, steps: dict) -> tuple[Block, Respond]:
        path = ("respond",)
        listing = tuple(data.get("steps", ()))
        names = REQUEST_NAMES | self.check_step_list(listing, path + ("steps",), steps)
        let, names = self.let(data.get("let", {}), path + ("let",), names)
        actions = []
        for name, written in data["actions"].items():
            where = path + ("actions", name)
            offer = self.node({key: value for key, value in written.items() if key != "trigger"}, where, names)
            trigger = tuple(written["trigger"]["steps"])
            self.check_step_list(trigger, where + ("trigger", "steps"), steps, earlier=listing)
            extra = written.get("query-params", {}) if isinstance(written.get("query-params"), dict) else {}
            actions.append(Action(name, self.complete_offer(offer, where), trigger, where,
                                  tuple(key for key in extra if key not in ("observable_type", "observable_value"))))
            if not data.get("verify_offer", True):
                self.check_id_needs_no_listing(written.get("id"), where + ("id",), listing, offer)
        unknown = data.get("unknown_action")
        if unknown is not None and unknown not in data["actions"]:
            self.error(path + ("unknown_action",), f"no action named {unknown!r}",
                       f"name one of: {', '.join(data['actions']) or '(none declared)'}")
        not_offered = data.get("not_offered")
        if not_offered is not None:
            names_there = frozenset(REQUEST_NAMES | {"action_id"})
            not_offered = (self.template(not_offered["code"], path + ("not_offered", "code"), names_there),
                           self.template(not_offered["message"], path + ("not_offered", "message"), names_there))
        block = Block(steps=listing, let=let, outputs=(("actions", ListNode(tuple(a.offer for a in actions))),),
                      path=path, token=data.get("token"))
        return block, Respond(tuple(actions), unknown, data.get("failure_status", True),
                              data.get("verify_offer", True), not_offered)

    def check_id_needs_no_listing(self, written, path: tuple, listing: tuple, offer) -> None:
        """`verify_offer: false`: a trigger finds its action by an id made without the listing's
        steps or items, so the id may read only the request's names and `params`."""
        if not isinstance(written, str) or "{{" not in written:
            return
        template = dict(offer.fields).get("id")
        read = {root for expression in getattr(template, "expressions", ()) for root in root_names(expression.parsed.parsed)}
        beyond = sorted(read - REQUEST_NAMES)
        if beyond:
            self.error(path, f"with `verify_offer: false` an action's id is made from the observable and the params "
                             f"sent back only, not from {', '.join(beyond)}",
                       "make the id from observable, params, settings or credentials, or verify the offer")

    def complete_offer(self, offer, path: tuple):
        """The action's query-params completed with the observable's (the schema checked its fields)."""
        if not isinstance(offer, ObjectNode):
            return offer
        fields = dict(offer.fields)
        params = fields.get("query-params")
        if params is not None and not isinstance(params, ObjectNode):
            self.error(path + ("query-params",), "query-params is a mapping of name to text",
                       "query-params: {indicator_id: \"{{ state.id }}\"}")
            return offer
        given = dict(params.fields) if params is not None else {}
        completed = tuple((name, given.pop(name, None) or Template(source)) for name, source in OBSERVABLE_PARAMS)
        params = ObjectNode(fields=completed + tuple(given.items()), path=path + ("query-params",))
        fields["query-params"] = params
        return replace(offer, fields=tuple(fields.items()))

    def check_params_read_by_triggers_only(self, steps: dict) -> None:
        """`params` (what XDR sends back with a trigger) is empty anywhere else."""
        triggered = triggered_steps(self.data)
        for name, step in steps.items():
            if name not in triggered and "params" in step_reads(step):
                self.warn(("steps", name), f"step {name!r} reads `params`, which only a trigger has",
                          "list the step in an action's `trigger: {steps: [...]}`", key=True)


def triggered_steps(data: dict) -> set:
    """The steps some action's trigger runs."""
    return {name for action in data.get("respond", {}).get("actions", {}).values()
            for name in action["trigger"]["steps"]}
