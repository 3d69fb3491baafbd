"""A page's content streams read at one pass of a regular expression, for pdfminer's interpreter.

pdfminer reads a content stream a byte state at a time (a fifth of a policy's parse) and looks
each operator's method up by name every time it meets it. This interpreter splits the streams
into the same objects with one pattern and keeps each operator's method once found. Whatever it
does not read exactly as pdfminer would (inline images, escaped names, procedures, unbalanced
arrays or dictionaries, a string or token cut by the end of a stream) it leaves to pdfminer's
own reader, for the whole page, so the objects the interpreter sees are always pdfminer's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from pdfminer.pdfinterp import PDFPageInterpreter
from pdfminer.pdftypes import PDFStream, stream_value
from pdfminer.psparser import (
    HEX_PAIR,
    KWD,
    LIT,
    SPC,
    PSKeyword,
    keyword_name,
    literal_name,
)
from pdfminer.utils import choplist

# One token after any white space, as pdfminer's `_parse_main` tells them apart by their first
# byte: a number, a keyword (a letter first), a name (without "#" escapes), a string with no
# parenthesis or backslash inside, any other string (read by `_string`), "<<", a hexadecimal
# string, ">>", ">", a comment, a NUL (skipped), and any other byte (a keyword of its own).
_TOKEN: Final = re.compile(
    rb"[ \t\n\r\f\v]*(?:"
    rb"(?P<number>[-+0-9][0-9]*(?:\.[0-9]*)?|\.[0-9]*)"
    rb"|(?P<keyword>[A-Za-z][^#/%\[\]()<>{}\s]*)"
    rb"|/(?P<name>[^#/%\[\]()<>{}\s]*)"
    rb"|\((?P<plain>[^()\\]*)\)"
    rb"|(?P<string>\()"
    rb"|(?P<dict><<)"
    rb"|<(?P<hex>[\s0-9a-fA-F]*)"
    rb"|(?P<end_dict>>>)"
    rb"|(?P<close>>)"
    rb"|(?P<comment>%[^\r\n]*)"
    rb"|(?P<nul>\x00)"
    rb"|(?P<other>[^\s]))",
    re.DOTALL,
)
_STRING_END: Final = re.compile(rb"[()\\]")
_OCTAL: Final = re.compile(rb"[0-7]{1,3}")
_ESCAPES: Final = {
    ord("b"): b"\x08",
    ord("t"): b"\t",
    ord("n"): b"\n",
    ord("f"): b"\x0c",
    ord("r"): b"\r",
    ord("("): b"(",
    ord(")"): b")",
    ord("\\"): b"\\",
}
_CHUNK: Final = 4096  # pdfminer reads a stream 4,096 bytes at a time (see `_string`)
_TRUE, _FALSE = b"true", b"false"
_UNREAD = frozenset((b"BI", b"ID", b"{", b"}"))  # inline images and procedures: pdfminer's
_ARRAY_BEGIN, _ARRAY_END = KWD(b"["), KWD(b"]")


class _Unread(Exception):
    """Something this reader leaves to pdfminer's."""


class ContentInterpreter(PDFPageInterpreter):
    """pdfminer's interpreter, with the content streams read by `content_objects`."""

    def dup(self) -> ContentInterpreter:
        return self.__class__(self.rsrcmgr, self.device)

    def execute(self, streams: Sequence[object]) -> None:
        valid: list[PDFStream] = []
        for obj in streams:  # what pdfminer's `execute` would read (no circular references)
            stream = stream_value(obj)
            if stream.objid is not None and stream.objid not in self.parent_stream_ids:
                valid.append(stream)
        objects = content_objects([stream.get_data() for stream in valid])
        if objects is None:
            super().execute(streams)
            return
        self.stream_ids.clear()
        self.stream_ids.update(stream.objid for stream in valid if stream.objid is not None)
        operators: dict[PSKeyword, tuple[Callable[..., Any] | None, int]] = {}
        push = self.argstack.append
        for obj in objects:
            if not isinstance(obj, PSKeyword):
                push(obj)
                continue
            operator = operators.get(obj)
            if operator is None:
                operator = operators[obj] = self._operator(obj)
            func, nargs = operator
            if func is None:
                continue
            if nargs:
                args = self.pop(nargs)
                if len(args) == nargs:
                    func(*args)
            else:
                func()
            push = self.argstack.append  # `pop` puts a new list in place

    def do_TJ(self, seq: Any) -> None:
        """pdfminer's, without its copy of the graphic state for every string shown where the
        device keeps none (`_GlyphDevice`: a glyph is a tuple without colours); a policy shows
        thousands of strings, often a word each."""
        if self.textstate.font is None or not getattr(self.device, "keeps_no_state", False):
            super().do_TJ(seq)
            return
        self.device.render_string(self.textstate, seq, self.graphicstate.ncs, self.graphicstate)

    def do_Tj(self, s: Any) -> None:
        self.do_TJ([s])

    def _operator(self, keyword: PSKeyword) -> tuple[Callable[..., Any] | None, int]:
        """The method pdfminer's `execute` calls for `keyword`, and its number of operands."""
        name = keyword_name(keyword)
        method = "do_" + name.replace("*", "_a").replace('"', "_w").replace("'", "_q")
        func = getattr(self, method, None)
        if func is None:
            return None, 0
        return func, func.__code__.co_argcount - 1


def content_objects(streams: Sequence[bytes]) -> list[Any] | None:
    """The objects pdfminer's content parser gives for these streams, in order, or None where
    this reader would not be sure to give the same (pdfminer's reader is then used)."""
    try:
        return _objects(streams)
    except _Unread:
        return None


def _objects(streams: Sequence[bytes]) -> list[Any] | None:
    results: list[Any] = []
    stack: list[Any] = results  # where values go: the results, or the open array or dict
    context: list[tuple[str, list[Any]]] = []  # the open arrays and dicts, outermost first
    for data in streams:
        position, size = 0, len(data)
        match = _TOKEN.match
        while position < size:
            token = match(data, position)
            if token is None:  # nothing but white space is left
                break
            kind = token.lastgroup
            position = token.end()
            value: object
            if kind == "number":
                text = token.group(kind)
                try:
                    value = float(text) if b"." in text else int(text)
                except ValueError:
                    continue  # "-" or "." alone: pdfminer drops it too
            elif kind == "keyword":
                text = token.group(kind)
                if text == _TRUE:
                    value = True
                elif text == _FALSE:
                    value = False
                elif text in _UNREAD:
                    return None
                else:
                    value = KWD(text)
            elif kind == "plain":
                value = token.group(kind)
            elif kind == "name":
                text = token.group(kind)
                if data[position : position + 1] == b"#" or (not text and position >= size):
                    return None  # "#" escapes; a bare "/" that the next stream would name
                try:
                    value = LIT(str(text, "utf-8"))
                except UnicodeDecodeError:
                    value = LIT(text)
            elif kind == "string":
                value, position = _string(data, position)
            elif kind == "hex":
                if position >= size:
                    return None  # pdfminer would read on into the next stream
                value = HEX_PAIR.sub(_hex_byte, SPC.sub(b"", token.group(kind)))
            elif kind == "comment" or kind == "nul":
                continue
            elif kind == "close":
                if position >= size:
                    return None  # a ">" the next stream may make ">>"
                continue
            elif kind == "dict":
                context.append(("d", stack))
                stack = []
                continue
            elif kind == "end_dict":
                if not context or context[-1][0] != "d" or len(stack) % 2:
                    return None
                value = {literal_name(k): v for (k, v) in choplist(2, stack) if v is not None}
                stack = context.pop()[1]
            else:  # "other": one byte, a keyword of its own ("'", '"', "[", "]", …)
                text = token.group("other")
                if text in _UNREAD:
                    return None
                keyword = KWD(text)
                if keyword is _ARRAY_BEGIN:
                    context.append(("a", stack))
                    stack = []
                    continue
                if keyword is _ARRAY_END:
                    if not context or context[-1][0] != "a":
                        return None
                    value = stack
                    stack = context.pop()[1]
                else:
                    value = keyword
            stack.append(value)
    return None if context else results


def _string(data: bytes, position: int) -> tuple[bytes, int]:
    """A literal string with parentheses or escapes, from just after its "(": its bytes as
    pdfminer's `_parse_string` reads them, and where it ends."""
    parts: list[bytes] = []
    depth = 1
    size = len(data)
    while True:
        found = _STRING_END.search(data, position)
        if found is None:
            raise _Unread  # runs on past the stream: pdfminer would read on into the next
        at = found.start()
        parts.append(data[position:at])
        special = data[at]
        if special == 0x5C:  # a backslash
            after = at + 1
            if after >= size:
                raise _Unread
            octal = _OCTAL.match(data, after)
            if octal is not None:
                code = int(octal.group(), 8)
                if code > 255:
                    raise _Unread  # pdfminer fails an assertion
                parts.append(bytes((code,)))
                position = octal.end()
            elif data[after] in _ESCAPES:
                parts.append(_ESCAPES[data[after]])
                position = after + 1
            elif data[after] == 0x0D and data[after + 1 : after + 2] == b"\n":
                # A line end escaped is dropped; pdfminer looks for its "\n" only within the
                # 4,096 bytes it holds, so where "\r" ends them the "\n" stays in the string.
                position = after + 2 if (after + 1) % _CHUNK else after + 1
            else:
                position = after + 1  # any other escaped byte is dropped
        elif special == 0x28:  # "("
            depth += 1
            parts.append(b"(")
            position = at + 1
        else:  # ")"
            depth -= 1
            position = at + 1
            if not depth:
                return b"".join(parts), position
            parts.append(b")")


def _hex_byte(pair: re.Match[bytes]) -> bytes:
    return bytes((int(pair.group(0), 16),))
