"""Dashboard tiles: /tiles lists a spec's tile definitions, /tiles/tile answers one, and
/tiles/tile-data makes one tile's data for a period.

A tile's data is made like an endpoint's answer, for no observable: the tile's `let` values (the
aggregation it asks for, the field it counts), then the spec-wide tile steps and the tile's own,
then the spec-wide `tile_data` mapping with the tile's own added to it. Everything sees `tile` (its
definition) and `period` ({name, start_time, end_time}, the period ending now).

Bodies are checked the way Cisco's relays checked them (marshmallow): the declared fields in order,
each required, text, and for `period` one of the spec's periods; then unknown fields.
"""
from __future__ import annotations

from datetime import timedelta

from engine.errors import RelayError
from engine.language.functions import canonical_time
from engine.language.mapping import ABSENT, MappingError, bind_let, render
from engine.serving.envelope import errors_only
from engine.serving.failures import OutOfTime, StepFailed, StepSkipped, spec_runtime_error
from engine.serving.observables import BLANK, INVALID_TYPE, MISSING, NOT_TEXT, UNKNOWN_FIELD, InvalidInput
from engine.serving.steps import run_steps


def tile_list(spec) -> dict:
    return {"data": [dict(tile.definition) for tile in spec.tiles.tiles]}


def asked_tile(spec, body, with_period: bool):
    """(the Tile, the period's name or None) a /tiles/tile or /tiles/tile-data body asks for;
    InvalidInput for a body that is not one, RelayError for a tile the spec does not declare."""
    periods = [name for name, _ in spec.tiles.periods]
    fields = {"period": periods, "tile_id": None} if with_period else {"tile_id": None}
    if not isinstance(body, dict):
        raise InvalidInput({"_schema": [INVALID_TYPE]})
    problems = {}
    for name, choices in fields.items():
        value = body.get(name)
        if value is None:
            problems[name] = [MISSING]
        elif not isinstance(value, str):
            problems[name] = [NOT_TEXT]
        elif choices is not None and value not in choices:
            problems[name] = ["Must be one of: " + ", ".join(choices) + "."]
        elif value == "":
            problems[name] = [BLANK]
    problems |= {name: [UNKNOWN_FIELD] for name in body if name not in fields}
    if problems:
        raise InvalidInput(problems)
    tile = spec.tiles.tile(body["tile_id"])
    if tile is None:
        raise RelayError(*spec.tiles.unknown)
    period = body.get("period")
    if period is not None and period not in tile.periods:
        raise RelayError("invalid argument", f"The tile {tile.id} has no data for {period}; it has: "
                                             f"{', '.join(tile.periods)}.")
    return tile, period


def run_tile_data(work, tile, period_name: str) -> dict:
    """{"data": the tile's data for the period}, or the errors met making it."""
    spec, now = work.spec, work.runtime.clock.now()
    seconds = dict(spec.tiles.periods)[period_name]
    period = {"name": period_name, "start_time": canonical_time(now - timedelta(seconds=seconds)),
              "end_time": canonical_time(now)}
    scope = work.base_scope().with_values(tile=dict(tile.definition), period=period)
    warnings: list = []
    try:
        scope = bind_let(tile.let, scope, tile.path)
        steps = [spec.steps[name] for name in spec.tiles.steps + tile.steps]
        scope = run_steps(steps, scope, work, warnings)
        data = {}
        for node in (spec.tiles.data, tile.data):
            made = render(node, scope) if node is not None else ABSENT
            if isinstance(made, dict):
                data.update(made)
    except StepSkipped:
        data = {}
    except StepFailed as failure:
        return errors_only([failure.error, *warnings])
    except OutOfTime:
        return errors_only([RelayError("timeout", f"No answer from {spec.title} in time for the tile {tile.id}.")])
    except MappingError as failure:
        return errors_only([spec_runtime_error(spec, failure.path, failure.reason, scope, data=True)])
    answer = {"data": data}
    if warnings:
        answer["errors"] = [warning.to_json() for warning in warnings]
    return answer
