"""Dashboard tiles: the `tiles:` section, compiled into the definitions /tiles answers and, per
tile, the `let`, steps and mapping that make its data for a period."""
from __future__ import annotations

from types import MappingProxyType

from engine.language.functions import parse_duration
from engine.spec.check_steps import step_reads
from engine.spec.model import Tile, Tiles

# The tile types XDR is known to draw (Cisco's relays and XDR's tile documentation).
TILE_TYPES = ("metric_group", "donut_graph", "horizontal_bar_chart", "vertical_bar_chart", "line_chart",
              "markdown", "threat_map")
DEFINITION_KEYS = ("id", "type", "title", "description", "short_description", "tags", "periods", "default_period")
TILE_NAMES = frozenset({"tile", "period"})  # what a tile's let, steps and data see beside the request's


class TileChecks:
    def tiles(self, data: dict, steps: dict) -> Tiles:
        path = ("tiles",)
        periods = tuple((name, parse_duration(written).span.total_seconds())
                        for name, written in data["periods"].items())
        for (name, seconds), written in zip(periods, data["periods"].values()):
            if seconds <= 0:
                self.error(path + ("periods", name), f"{written!r} is no length of time", "e.g. P1D or PT1H")
        shared_steps = tuple(data.get("steps", ()))
        names = frozenset({"settings", "credentials"}) | TILE_NAMES  # a tile has no observable
        common_names = names | self.check_step_list(shared_steps, path + ("steps",), steps)
        common = self.node(data["tile_data"], path + ("tile_data",), common_names) if "tile_data" in data else None
        tiles, seen = [], set()
        for index, written in enumerate(data["list"]):
            where = path + ("list", index)
            if written["id"] in seen:
                self.error(where + ("id",), f"two tiles have the id {written['id']!r}", "give each tile its own id")
            seen.add(written["id"])
            tiles.append(self.tile(written, where, dict(periods), shared_steps, steps, common_names))
        for name in shared_steps + tuple(name for tile in tiles for name in tile.steps):
            if name in steps and "observable" in step_reads(steps[name]):
                self.error(path + ("steps",), f"step {name!r} reads the observable, and a tile has none",
                           "a tile's steps read `period`, `tile` and the tile's `let` values")
        unknown = data.get("unknown_tile")
        return Tiles(periods, tuple(tiles), shared_steps, common,
                     (unknown["code"], unknown["message"]) if unknown else Tiles.unknown)

    def tile(self, written: dict, path: tuple, periods: dict, shared_steps: tuple, steps: dict,
             names: frozenset) -> Tile:
        if written["type"] not in TILE_TYPES:
            self.warn(path + ("type",), f"{written['type']!r} is not a tile type XDR is known to draw",
                      "one of: " + ", ".join(TILE_TYPES))
        for index, period in enumerate(written["periods"]):
            if period not in periods:
                self.error(path + ("periods", index), f"no period {period!r} in tiles.periods",
                           "one of: " + ", ".join(periods))
        default = written.get("default_period")
        if default is not None and default not in written["periods"]:
            self.error(path + ("default_period",), f"{default!r} is not one of the tile's periods")
        let, names = self.let(written.get("let", {}), path + ("let",), names)
        own_steps = tuple(written.get("steps", ()))
        names = names | self.check_step_list(own_steps, path + ("steps",), steps, earlier=shared_steps)
        definition = {key: written[key] for key in DEFINITION_KEYS if key in written}
        return Tile(written["id"], MappingProxyType(definition), let, own_steps,
                    self.node(written["tile_data"], path + ("tile_data",), names), path)
