"""HTML mail bodies turned into plain text without rendering anything.

An HTML-only mail is read with the stdlib tokenizer (``html.parser``): no
browser, no CSS, no script engine, no fetching of images or links. Scripts,
styles and the head are dropped outright; event-handler attributes never reach
the text because only text nodes are kept. Quoted replies (``<blockquote>``,
Yahoo's quote div) become ``> `` lines so
that ``quoting.strip_quoted`` treats them like quotes in a plain-text mail.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is never text for the reader.
_DROP = frozenset({"script", "style", "head", "title", "noscript", "template", "iframe", "object", "svg", "math"})
# What may stand in <head>; anything else starts the body even without <body>.
_HEAD_CONTENT = frozenset({"title", "style", "script", "meta", "link", "base", "noscript", "template", "object"})
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figcaption",
        "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
        "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
    }
)  # fmt: skip
# Blocks followed by an empty line.
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "dl", "pre"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._lines: list[tuple[int, str]] = []  # (quote depth, text)
        self._current: list[str] = []
        self._drop: list[str] = []  # open dropped elements, innermost last
        self._quote: list[str] = []  # tags that opened a quote level, innermost last
        self._pre = 0

    # Line handling -------------------------------------------------------------------------

    def _depth(self) -> int:
        return len(self._quote)

    def _break(self, hard: bool = False) -> None:
        """End the current line; a soft break (block boundary) adds no empty line."""
        text = "".join(self._current)
        self._current = []
        if not self._pre:
            text = _SPACES.sub(" ", text).strip()
        if text or hard:
            self._lines.append((self._depth(), text))

    def _paragraph(self) -> None:
        self._break()
        if self._lines and self._lines[-1][1]:
            self._lines.append((self._depth(), ""))

    # Tokenizer callbacks -------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            # Broken mail often never closes <head>: the body starts fresh.
            self._drop = []
            return
        if self._drop == ["head"] and tag not in _HEAD_CONTENT:
            self._drop = []  # body content without <body>: the head ended implicitly
        if self._drop:
            if tag in _DROP and tag not in _VOID:
                self._drop.append(tag)
            return
        if tag in _DROP:
            self._drop.append(tag)
            return
        if tag == "br":
            self._break(hard=True)
            return
        if tag in _BLOCK:
            self._break()
        if tag == "li":
            self._current.append("- ")
        elif tag == "pre":
            self._pre += 1
        elif tag in ("td", "th"):
            self._current.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self._current.append(alt)
        if tag not in _VOID and self._opens_quote(tag, dict(attrs)):
            self._quote.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID or tag in _DROP:
            self.handle_starttag(tag, attrs)
            if tag in _DROP and self._drop and self._drop[-1] == tag:
                self._drop.pop()
        else:
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._drop:
            if tag in self._drop:
                # Close up to the matching element, tolerating unclosed inner ones.
                while self._drop and self._drop.pop() != tag:
                    pass
            return
        if tag in _PARAGRAPH:
            self._paragraph()
        elif tag in _BLOCK:
            self._break()
        if tag == "pre" and self._pre:
            self._pre -= 1
        if self._quote and tag in self._quote:
            self._break()
            while self._quote and self._quote.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self._drop == ["head"] and data.strip():
            self._drop = []  # text straight in <head> starts the body, as in a browser
        if self._drop:
            return
        if self._pre:
            for i, chunk in enumerate(data.split("\n")):
                if i:
                    self._break(hard=True)
                self._current.append(chunk)
        else:
            self._current.append(data.replace("\n", " "))

    @staticmethod
    def _opens_quote(tag: str, attrs: dict[str, str | None]) -> bool:
        # Gmail and Apple Mail quote in <blockquote>; Yahoo wraps the quote in a div. Outlook's
        # reply header (#divRplyFwdMsg) is a sibling of the quoted mail, so it stays text and
        # strip_quoted cuts at its From:/Sent: block.
        return tag == "blockquote" or "yahoo_quoted" in (attrs.get("class") or "").lower()

    # Result --------------------------------------------------------------------------------

    def text(self) -> str:
        self._break()
        out: list[str] = []
        for depth, line in self._lines:
            if not line and out and out[-1] == "":
                continue  # collapse runs of empty lines
            if depth and line:
                out.append("> " * depth + line)
            else:
                out.append(line)
        return "\n".join(out).strip("\n")


def html_to_text(html: str) -> str:
    """Readable text of an HTML body; never raises (falls back to stripping tags)."""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
        return extractor.text()
    except Exception:  # noqa: BLE001 - a tokenizer bug must not lose the mail
        without_dropped = re.sub(r"(?is)<(script|style|head)\b.*?(</\1\s*>|$)", " ", html)
        return _SPACES.sub(" ", re.sub(r"<[^>]*>", " ", without_dropped)).strip()
