"""HTML to Markdown, for vendors that describe things in HTML where CTIM fields take Markdown.

Inline elements become their Markdown (`<b>` **, `<i>` *, `<a href>` [text](href), `<code>`
backticks), blocks their own lines (paragraphs, line breaks, list items, headings, preformatted
text); any other element gives its text, `<script>` and `<style>` nothing. Text is unescaped from
HTML and Markdown's own marks in it are escaped, so a vendor's `*` or `_` stays literal. Malformed
HTML never fails: whatever is left open is closed at the end.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

INLINE = {"b": "**", "strong": "**", "i": "*", "em": "*", "code": "`"}
HEADINGS = {f"h{level}": "#" * level for level in range(1, 7)}
BLOCKS = {"p", "div", "section", "article", "blockquote", "table", "tr", "ul", "ol", *HEADINGS}
SILENT = {"script", "style", "head", "title"}
ESCAPED = re.compile(r"([\\*_`\[\]])")


def html_to_markdown(html: str) -> str:
    converter = _Converter()
    converter.feed(html)
    converter.close()
    return converter.markdown()


class _Converter(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[tuple[str | None, int]] = []  # (href, where its text starts in parts)
        self.lists: list[str] = []  # "ul" or "ol", innermost last
        self.numbers: list[int] = []
        self.silent = 0
        self.preformatted = 0

    def handle_starttag(self, tag, attrs):
        if tag in SILENT:
            self.silent += 1
        elif tag in INLINE:
            self.parts.append(INLINE[tag])
        elif tag == "a":
            self.links.append((dict(attrs).get("href"), len(self.parts)))
        elif tag == "br":
            self.parts.append("  \n")
        elif tag == "pre":
            self.preformatted += 1
            self.parts.append("\n\n```\n")
        elif tag in ("ul", "ol"):
            self.lists.append(tag)
            self.numbers.append(0)
            self.parts.append("\n")
        elif tag == "li":
            marker = "*"
            if self.lists and self.lists[-1] == "ol":
                self.numbers[-1] += 1
                marker = f"{self.numbers[-1]}."
            self.parts.append("\n" + "  " * max(len(self.lists) - 1, 0) + marker + " ")
        elif tag in HEADINGS:
            self.parts.append(f"\n\n{HEADINGS[tag]} ")
        elif tag in BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in SILENT:
            self.silent = max(self.silent - 1, 0)
        elif tag in INLINE:
            self.parts.append(INLINE[tag])
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            text = "".join(self.parts[start:])
            del self.parts[start:]
            if not href:
                self.parts.append(text)
            elif text.strip() in ("", href):
                self.parts.append(f"<{href}>")
            else:
                self.parts.append(f"[{text}]({href})")
        elif tag == "pre":
            self.preformatted = max(self.preformatted - 1, 0)
            self.parts.append("\n```\n\n")
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self.numbers.pop()
            self.parts.append("\n\n")
        elif tag in BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self.silent:
            return
        if self.preformatted:
            self.parts.append(data)
            return
        self.parts.append(ESCAPED.sub(r"\\\1", re.sub(r"\s+", " ", data)))

    def markdown(self) -> str:
        text = "".join(self.parts)  # a link never closed keeps its text, without the link
        text = re.sub(r"[ \t]+\n", lambda match: "  \n" if match.group(0).startswith("  ") else "\n", text)
        text = re.sub(r"\n{3,}", "\n\n", text)
        return "\n".join(line.strip() if not line.endswith("  ") else line.lstrip() for line in
                         text.split("\n")).strip()
