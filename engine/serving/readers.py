"""How a step reads a successful answer's body: as JSON, NDJSON, text, or an HTML table.

The HTML table reader takes the n-th `<table>` of a page, keeps the rows made of `<td>` cells
(header rows of `<th>` are skipped), names the cells after the declared columns, and, given a
`key` column, returns an object keyed by it (in page order) ready for lookup().
"""
from __future__ import annotations

import json
from html.parser import HTMLParser

from engine.spec.model import HtmlTableReader
from engine.serving.vendor_http import VendorAnswer


class UnreadableBody(ValueError):
    """The body is not what the step declared it reads (e.g. not JSON); `preview`: how it starts,
    shown to operators of a live vendor, never by lint (whose bodies are files it was told to read)."""

    def __init__(self, reason: str, preview: str | None = None):
        super().__init__(reason + (f" (starts with {preview!r})" if preview is not None else ""))
        self.reason = reason


def read_body(reader, answer: VendorAnswer):
    if reader == "text":
        return answer.text
    if reader == "ndjson":
        return read_ndjson(answer.text)
    if isinstance(reader, HtmlTableReader):
        return read_html_table(answer.text, reader)
    if not answer.content.strip():
        return None
    try:
        return answer.json()
    except ValueError:
        raise UnreadableBody("the answer is not JSON", answer.text[:80].replace("\n", " ")) from None


def read_ndjson(text: str) -> list:
    """One JSON value a line (blank lines skipped), as vendors such as DNSDB stream their records."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except (ValueError, RecursionError):
                raise UnreadableBody(f"line {number} of the answer is not JSON") from None
    return records


def read_html_table(html: str, reader: HtmlTableReader):
    parser = _TableParser(reader.index)
    parser.feed(html)
    parser.close()
    rows = []
    for cells in parser.rows:
        if not cells:
            continue
        row = {name: (cells[i] if i < len(cells) else None) for i, name in enumerate(reader.columns)}
        rows.append(row)
    if reader.key is None:
        return rows
    return {str(row[reader.key]): row for row in rows if row.get(reader.key) is not None}


class _TableParser(HTMLParser):
    def __init__(self, wanted_index: int):
        super().__init__(convert_charrefs=True)
        self.wanted_index = wanted_index
        self.table_index = -1
        self.depth = 0  # nesting inside the wanted table
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            if self.depth:
                self.depth += 1
                return
            self.table_index += 1
            if self.table_index == self.wanted_index:
                self.depth = 1
        elif self.depth == 1 and tag == "tr":
            self.rows.append([])
        elif self.depth == 1 and tag == "td" and self.rows:
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
        elif tag == "td" and self.cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
