"""Response actions: the `respond:` section, compiled into the listing's Block (the actions offered
per observable, made like any mapping) and the `Respond` a trigger runs from."""
from __future__ import annotations

from dataclasses import replace

from engine.language.expressions import Template
from engine.language.mapping import ListNode, ObjectNode
from engine.spec.check_steps import step_reads
from engine.spec.checker import REQUEST_NAMES
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
            actions.append(Action(name, self.complete_offer(offer, where), trigger, where))
        unknown = data.get("unknown_action")
        if unknown is not None and unknown not in data["actions"]:
            self.error(path + ("unknown_action",), f"no action named {unknown!r}",
                       f"name one of: {', '.join(data['actions']) or '(none declared)'}")
        block = Block(steps=listing, let=let, outputs=(("actions", ListNode(tuple(a.offer for a in actions))),),
                      path=path, token=data.get("token"))
        return block, Respond(tuple(actions), unknown, data.get("failure_status", True))

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
