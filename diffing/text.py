"""Turn the HTML-bearing text fields of coverage documents into clean, comparable text.

CMS serves HTML entity-encoded, sometimes twice (``&amp;ldquo;``); a re-encoded or re-indented
field must compare equal to the original, so everything that is presentation is removed here.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "tr",
        "table",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "blockquote",
        "dd",
        "dt",
        "hr",
    }
)
_SKIP_TAGS = frozenset({"script", "style", "head"})
_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
        "\u2009": " ",
        "\u200b": "",
        "\ufeff": "",
        "\u00ad": "",
    }
)
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")
# A sentence ends at . ! ? or ; followed by space and an upper-case letter, digit or bracket.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_MAX_UNESCAPE_ROUNDS = 4


def unescape_fully(text: str) -> str:
    """Undo entity encoding applied any number of times (bounded)."""
    for _ in range(_MAX_UNESCAPE_ROUNDS):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return text


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag == "td" or tag == "th":
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS and self._skip_depth:
            self._skip_depth -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            # In HTML a line break inside text is just a space; only block tags end a line.
            self.parts.append(data.replace("\r", " ").replace("\n", " "))


def normalize_text(text: str) -> str:
    """Unicode-normalise, straighten quotes and dashes, collapse whitespace within lines."""
    if text.isascii() and "  " not in text and "\n" not in text and "\t" not in text:
        return text.strip()  # the common case (code descriptions): nothing to normalise
    text = unicodedata.normalize("NFKC", text).translate(_PUNCTUATION)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def html_to_text(fragment: str | None) -> str:
    """Clean text of an HTML fragment that may be entity-encoded (once or twice)."""
    if not fragment:
        return ""
    decoded = unescape_fully(fragment)
    if "<" in decoded:
        extractor = _TextExtractor()
        extractor.feed(decoded)
        extractor.close()
        decoded = "".join(extractor.parts)
    return normalize_text(decoded)


def sentences(text: str) -> list[str]:
    """Split clean text into sentences (line breaks always end one)."""
    out: list[str] = []
    for line in _BLANK_LINES.split(text):
        out.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return out
