"""Text as the payer meant it, from captures: markdown, page chrome, rotated-letter runs, glue.

Much real "text" is not typed by the payer but captured by someone's tool: a page's visible text
on one line (menus, login panel and footer included), a PDF's text with rotated side notes
spelt one letter per line, Markdown transcriptions whose links move. Each function here takes
lines (or one line) of such text and returns what the payer wrote; all are pure and idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# ---- Markdown -------------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\n.*?\n---[ \t]*\n", re.DOTALL)
_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
# [text](url "title"), text may hold one level of brackets ("[**Criteria**]").
_MD_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
_MD_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_MD_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_ATTR_LIST = re.compile(r"\{\s*:?[^{}\n]*(?:target|rel|\.|#|=)[^{}\n]*\}")
_HTML_TAG = re.compile(r"</?(?:br|span|div|p|sup|sub|u|b|i|em|strong|font|a)\b[^>]*>", re.I)
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")  # deleted text, as <del> in HTML
_PAIRED = (
    re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"),
    re.compile(r"(?<![\w\\])__(?=\S)(.+?)(?<=\S)__(?!\w)"),
    re.compile(r"\^\^(?=\S)(.+?)(?<=\S)\^\^"),  # mkdocs "insert" (underline)
    re.compile(r"==(?=\S)(.+?)(?<=\S)=="),  # mkdocs "mark" (highlight)
    re.compile(r"(?<![\w*\\])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])"),
    re.compile(r"(?<![\w\\])_(?=[^\s_])([^_\n]+?)(?<=[^\s_])_(?!\w)"),
)
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|=~^])")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_MD_SIGNS = re.compile(
    r"^\s{0,3}#{1,6}\s+\S|\]\([^)]*\)|^\s*\|.*\|\s*$|\*\*\S|^\s*[-*+]\s+\[", re.MULTILINE
)


def looks_like_markdown(text: str) -> bool:
    """Front matter, or several lines of Markdown headings, links and pipe tables."""
    if _FRONT_MATTER.match(text):
        return True
    return len(_MD_SIGNS.findall(text[:20000])) >= 4 and bool(
        re.search(r"^\s{0,3}#{1,6}\s+\S", text[:20000], re.MULTILINE)
    )


def markdown_lines(text: str) -> list[tuple[str, bool]]:
    """Markdown as (plain line, is heading): links keep their text, emphasis its words.

    A pair whose only change is where a link points, or how a word is emphasised, gives the
    same lines. Pipe-table rows keep their filled cells, joined by " | "; rule rows go.
    """
    text = _FRONT_MATTER.sub("", text, count=1)
    out: list[tuple[str, bool]] = []
    for raw in text.split("\n"):
        if _TABLE_RULE.match(raw) and "-" in raw:
            continue
        heading = _MD_HEADING.match(raw)
        line = heading.group(2) if heading else raw
        line = markdown_inline(line)
        if line.strip().startswith("|") or line.rstrip().endswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            while cells and not cells[-1]:
                cells.pop()
            line = " | ".join(cells)
        out.append((line, bool(heading)))
    return out


def markdown_inline(line: str) -> str:
    """One line's inline Markdown removed: links, images, attribute lists, emphasis, tags."""
    line = _ATTR_LIST.sub("", line)
    line = _MD_IMAGE.sub(r"\1", line)
    for _ in range(3):  # links inside emphasis inside links
        changed = _MD_LINK.sub(r"\1", line)
        changed = _MD_REF_LINK.sub(r"\1", changed)
        if changed == line:
            break
        line = changed
    line = _MD_AUTOLINK.sub(r"\1", line)
    line = _HTML_TAG.sub(" ", line)
    line = _STRIKE.sub("", line)
    for _ in range(2):
        for pattern in _PAIRED:
            line = pattern.sub(r"\1", line)
    # An unbalanced "**" left by a link that cut a pair in two ("[**Criteria](…)").
    line = re.sub(r"\*\*|\^\^", "", line)
    # Backslash escapes ("\\>10", "\\<=6 months") are Markdown, not text.
    return _MD_ESCAPE.sub(r"\1", line)


# ---- Page chrome in captured visible text ----------------------------------------------------

_SKIP_LINK = re.compile(r"\bskip\s+(?:to\s+(?:the\s+)?(?:main\s+)?content|navigation)\b", re.I)
_FOOTER_CUES = re.compile(
    r"\b(?:about\s+us|newsroom|careers|privacy\s+(?:policy|practices)|contact\s+us|"
    r"terms\s+(?:of\s+use|and\s+conditions)|website\s+user\s+agreement|site\s*map|"
    r"accessibility|non-?discrimination|fraud\s*(?:&|and)\s*abuse|transparency\s+in\s+coverage|"
    r"locations|member\s+forms|language\s+assistance|legal\s+notices?)\b",
    re.I,
)
_FOOTER_WINDOW = 400
_FOOTER_CUES_NEEDED = 4


def strip_capture_chrome(text: str) -> str:
    """The main text of a captured web page: the site's header menus and footer cut off.

    Only for a capture that shows it is one (a "Skip to main content" link near its start), so
    a policy that merely mentions "Contact Us" is never cut. The header ends where the page's
    title (the capture's first words, before " | ") is repeated as the content's heading; the
    footer starts at the first place where several footer links ("About Us", "Newsroom",
    "Privacy Policy" …) sit close together in the last two thirds of the text.
    """
    skip = _SKIP_LINK.search(text[:600])
    if not skip:
        return text
    start = 0
    title = text[: skip.start()].split(" | ", 1)[0].strip()
    if len(title) >= 8 and " | " in text[: skip.start()]:
        # The last repeat of the title before the first half ends: the content's own heading.
        found = text.rfind(title, skip.end(), len(text) // 2)
        if found > 0:
            start = found
    end = len(text)
    cues = list(_FOOTER_CUES.finditer(text, max(start, len(text) // 3)))
    for i in range(len(cues) - _FOOTER_CUES_NEEDED + 1):
        window = cues[i : i + _FOOTER_CUES_NEEDED]
        if window[-1].end() - window[0].start() <= _FOOTER_WINDOW:
            end = window[0].start()
            break
    if start == 0 and end == len(text):
        return text
    head = text[: skip.start()].rstrip() if start else ""
    return f"{head}\n{text[start:end].strip()}".strip()


# A phrase of 3 to 20 words said three or more times in a row ("Medical Policy Manual Click
# here to see this page in full context" × 21): the count changes, the page does not.
_REPEATED_RUN = re.compile(r"((?:\S+\s+){2,19}?\S+)(?:\s+\1){2,}(?=\s|$)")


def drop_repeated_runs(line: str) -> str:
    """Remove every run of a link-like phrase repeated three or more times back to back.

    A phrase with sentence punctuation is text, however often it repeats; link and menu text
    has none."""
    if len(line) < 60:
        return line

    def drop(match: re.Match[str]) -> str:
        return match.group(0) if re.search(r"[.;:!?]", match.group(1)) else " "

    dropped = _REPEATED_RUN.sub(drop, line)
    return line if dropped == line else re.sub(r"\s{2,}", " ", dropped).strip()


# ---- Rotated letters and stray characters ---------------------------------------------------


def _stray_kind(text: str) -> int:
    """2: scattered letters ("ot", "n    b", " d i  l"); 1: might be ("ino", "12"); 0: text."""
    tokens = text.split()
    if not tokens:
        return 0
    if all(len(token) <= 2 for token in tokens) and not all(t.isdigit() for t in tokens):
        return 2
    return 1 if len(tokens) == 1 and len(tokens[0]) <= 3 else 0


STRAY_RUN = 3


def stray_runs(lines: Sequence[str]) -> set[int]:
    """Indexes of lines in runs of scattered letters: rotated side text captured one glyph at a
    time. A run needs `STRAY_RUN` lines, two of them plainly letters; blank lines inside a run
    do not end it. A lone "OR", "a." or "12" between real lines, or a column of "C18", "C19"
    codes, stays."""
    dropped: set[int] = set()
    run: list[int] = []
    strong = 0

    def close() -> None:
        nonlocal strong
        if len(run) >= STRAY_RUN and strong >= 2:
            dropped.update(run)
        run.clear()
        strong = 0

    for i, text in enumerate(lines):
        if not text.strip():
            continue
        kind = _stray_kind(text)
        if kind:
            run.append(i)
            strong += kind == 2
        else:
            close()
    close()
    return dropped


# ---- Codes glued to their descriptions ------------------------------------------------------

# "81120IDH1 (isocitrate …", "0022UTargeted …": a CPT/HCPCS code at the start of a table row
# whose cell gap the capture lost. The code must be followed by a capital (gene symbols,
# descriptions), so "81120-81121" and "0001U," stay.
_GLUED_CODE = re.compile(r"^(\s*(?:\d{4}[0-9UTF]|[A-V]\d{4}))(?=[A-Z(\[])")


def unglue_code(line: str) -> str:
    return _GLUED_CODE.sub(r"\1 ", line, count=1)


def capture_lines(lines: Iterable[str]) -> list[str]:
    """Per-line capture fixes that do not need the neighbours: repeated runs, glued codes."""
    return [unglue_code(drop_repeated_runs(line)) for line in lines]
