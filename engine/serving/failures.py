"""How a step or a mapping ends short of an answer: the exceptions the flows catch, and the relay
error for a spec that fails on the data it meets."""
from __future__ import annotations

import logging
from pathlib import Path

from engine.errors import RelayError, format_yaml_path
from engine.language.expressions import EvaluationError

log = logging.getLogger("relay")


class StepSkipped(Exception):
    """The vendor's answer means: nothing to report for this observable."""


class StepFailed(Exception):
    """The step ends this observable with an error; `stops`: and the observables not started yet
    (a rate limit or bad credentials will fail them too; a value only this observable has will not)."""

    def __init__(self, error: RelayError, stops: bool = True):
        super().__init__(str(error))
        self.error = error
        self.stops = stops


class OutOfTime(Exception):
    """The request's budget is spent, or its client has gone: no further call starts."""


def spec_runtime_error(spec, path: tuple, reason: str, scope=None, *, data: bool = False) -> RelayError:
    """A spec that failed on live data: logged with file, line and path, answered as a clear relay
    error. `data`: the failure is the vendor's data having another shape than the mapping reads
    (a field missing): the spec's `unexpected_data` error says so in the vendor's words, if it has one."""
    observable = (scope.values.get("observable") if scope else None) or {}
    where = f"{Path(spec.file).name}:{spec.line_of(path)} {format_yaml_path(path)}"
    log.error("vendor %s: %s: %s (observable %s %s)", spec.name, where, reason,
              observable.get("type", "-"), observable.get("value", "-"))
    if data and spec.unexpected_data is not None and scope is not None:
        code, message = (render_plain(part, scope) for part in spec.unexpected_data)
        return RelayError(code, message)
    return RelayError("unknown", f"The {spec.title} integration failed at {where}: {reason}.")


def render_plain(text, scope) -> str:
    """A message template rendered as text; the template itself when it cannot be rendered."""
    if isinstance(text, str):
        return text
    try:
        return str(text.render(scope))
    except EvaluationError:
        return text.source
