"""The `tables` section: gaps and overlaps in `ranges`, and values disposition() cannot read."""
from __future__ import annotations

import difflib

from engine.language.functions import CTIM_DISPOSITIONS, DISPOSITION_NUMBERS

INFINITY = float("inf")


class TableChecks:
    def check_tables(self) -> None:
        """Gaps and overlaps in `ranges`; values that disposition() cannot read."""
        fed_to_disposition = {self.let_tables.get(name, name) for name in self.disposition_inputs}
        for name, table in self.data.get("tables", {}).items():
            path = ("tables", name)
            for index, message, hint in range_problems(table.get("ranges", [])):
                row = table["ranges"][index]
                self.warn(path + ("ranges", index) + (("from",) if "from" in row else ()), message, hint)
            if name in fed_to_disposition:
                self.check_disposition_values(table, path)

    def check_disposition_values(self, table: dict, path: tuple) -> None:
        values = [(path + ("ranges", index, "value"), row.get("value"))
                  for index, row in enumerate(table.get("ranges", ()))]
        values += [(path + ("values", key), value) for key, value in table.get("values", {}).items()]
        if "default" in table:
            values.append((path + ("default",), table["default"]))
        for where, value in values:
            if not is_ctim_disposition(value):
                names = list(DISPOSITION_NUMBERS)
                close = difflib.get_close_matches(str(value).capitalize(), names, n=1)
                self.warn(where, f"{value!r} is not a CTIM disposition, and disposition() reads this table",
                          (f"did you mean {close[0]!r}? " if close else "") + f"one of: {', '.join(names)} (or 1 to 5)")


def range_problems(rows: list) -> list[tuple[int, str, str]]:
    """Rows of a `ranges` table that match nothing, overlap, or leave gaps: (row index, message, hint).

    Bounds are inclusive. Whole-number bounds are read as whole-number ranges (`to: 49` then
    `from: 50` leaves no gap); with fractional bounds, rows may share their boundary value (the first
    listed wins), as there is no other way to write touching ranges."""
    found, spans = [], []
    for index, row in enumerate(rows):
        low, high = row.get("from", -INFINITY), row.get("to", INFINITY)
        if low > high:
            found.append((index, f"this row matches nothing: from {_number(low)} is above to {_number(high)}",
                          "swap from and to"))
        else:
            spans.append((low, high, index))
    reach = None  # (highest value matched so far, the row matching it), going through rows by `from`
    for low, high, index in sorted(spans):
        if reach is not None:
            top, top_row = reach
            step = 1 if _whole(top) and _whole(low) else 0
            if low > top + step:
                gap = _span(top + 1, low - 1) if step else f"the values between {_number(top)} and {_number(low)}"
                found.append((index, f"gap between rows: no row matches {gap} (ranges[{top_row}] ends at "
                                     f"{_number(top)}, ranges[{index}] starts at {_number(low)})",
                              f"start ranges[{index}] at {_number(top + step)}, "
                              f"or end ranges[{top_row}] at {_number(low - step)}"))
            elif low < top or (step and low == top):
                fixes = []
                if high >= top and low > -INFINITY:  # (for a row inside another, ending the outer one is no fix)
                    fixes.append(f"end ranges[{top_row}] at {_number(low - step)}")
                if high > top:
                    fixes.append(f"start ranges[{index}] at {_number(top + step)}")
                first, second = sorted((top_row, index))
                found.append((index, f"overlapping rows: ranges[{first}] and ranges[{second}] both match "
                                     f"{_span(low, min(high, top))} (the first listed wins)",
                              ", or ".join(fixes) or f"remove ranges[{index}], or change its bounds"))
        if reach is None or high > reach[0]:
            reach = (high, index)
    return found


def _whole(number) -> bool:
    return isinstance(number, int) or (isinstance(number, float) and number.is_integer())


def _number(number):
    return int(number) if isinstance(number, float) and number.is_integer() else number


def _span(low, high) -> str:
    if low == -INFINITY:
        return "every number" if high == INFINITY else f"everything up to {_number(high)}"
    if high == INFINITY:
        return f"everything from {_number(low)} up"
    return f"{_number(low)}" if low == high else f"{_number(low)} to {_number(high)}"


def is_ctim_disposition(value) -> bool:
    """A name or number disposition() accepts."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and \
        (value in DISPOSITION_NUMBERS or value in CTIM_DISPOSITIONS)

