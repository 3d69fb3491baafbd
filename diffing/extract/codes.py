"""Billing codes with validated formats, from prose, code lists and `Table`s.

CPT is five digits or four digits and a letter (Category II `F`, III `T`, PLA `U`, MAAA `M`);
HCPCS Level II a letter A-V and four digits; ICD-10-CM is checked against the code set itself
(`simple-icd-10-cm`), so "B12" (a vitamin) or "E45" are no codes. Bare numbers are only
codes where the text says it is talking about codes, or where lines read as a code table (a code
with its description, a code alone, a description ending in its code), so years, doses, phone
numbers and policy numbers stay out. `document_codes` finds code tables wherever a document puts
them, whatever its section headings say.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from diffing.extract import icd10cm, memo
from diffing.extract.folded import found_in, lowered_pattern
from diffing.model import CodeRef, CodeSystem, CoverageFlag, PolicyDocument, Table

MAX_RANGE_EXPANSION = 50  # "11400-11446" becomes 47 codes; wider ranges keep their two ends

_CPT = r"\d{5}|\d{4}[FTUM]"
_HCPCS = r"[A-V]\d{4}"
_ICD10 = r"[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?"
_ANY = rf"(?:{_CPT}|{_HCPCS}|{_ICD10})"
_BEFORE = r"(?<![\w.$/\-#])"
# A code followed by a lone capital letter ("G1244 E", "A1555 G genotyping") is a protein or
# nucleotide variant whose last letter a capture split off, not a code and a description.
_AFTER = (
    r"(?![\w/]|\.\d|-[A-Za-z]|\s*(?:mg|mcg|ml|mL|units?|%|percent)\b"
    r"|\s[A-Z](?:\s*$|[,;)]|\s+[a-z]))"
)
_RANGE_JOIN = r"\s*(?:-|–|through|thru|to)\s*"
_CLAUSES = re.compile(r";\s*|(?<=[a-z)])\.\s+")

_CODE = re.compile(rf"{_BEFORE}(?P<code>{_ANY}){_AFTER}")
_CODE_OR_RANGE = re.compile(rf"{_BEFORE}(?P<low>{_ANY})(?:{_RANGE_JOIN}(?P<high>{_ANY}))?{_AFTER}")
# A line of a code list starts with its codes: "J0517 Injection, …", "11400 - 11446 Excision …"
_LEADING_CODES = re.compile(
    rf"^\s*(?P<codes>{_ANY}(?:{_RANGE_JOIN}{_ANY})?(?:\s*(?:,|;|and|or)?\s*{_ANY}"
    rf"(?:{_RANGE_JOIN}{_ANY})?)*){_AFTER}[\s:,;\-–]*(?P<rest>.*)$"
)
CODE_KEYWORDS = re.compile(
    r"\b(?:CPT|HCPCS?|ICD-?10(?:-CM)?|ICD|codes?|coding|billed|bill"
    r"|report(?:ed)? (?:with|using))\b",
    re.IGNORECASE,
)
_CODE_KEYWORDS_LOWERED = lowered_pattern(CODE_KEYWORDS)
_NONCOVERED = re.compile(
    r"\bnot\s+(?:be\s+)?(?:considered\s+)?(?:covered|medically necessary|reasonable)"
    r"|\bnon-?covered\b|\bexperimental\b|\binvestigational\b|\bunproven\b|\bexcluded\b"
    r"|\bdo(?:es)? not support\b|\bnot eligible\b",
    re.IGNORECASE,
)
_COVERED = re.compile(
    r"\bcovered\b|\bmedically necessary\b|\bsupport(?:s|ing)? medical necessity\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeMention:
    system: CodeSystem
    code: str
    clause: str = field(default="", compare=False)  # the clause it was named in


def code_system(code: str) -> CodeSystem | None:
    """The system a code belongs to, or None when it is no valid code: CPT/HCPCS by shape,
    ICD-10-CM by the code set."""
    if re.fullmatch(_CPT, code) or re.fullmatch(_HCPCS, code):
        return CodeSystem.HCPCS
    if re.fullmatch(_ICD10, code) and is_icd10cm(code):
        return CodeSystem.ICD10
    return None


def is_icd10cm(code: str) -> bool:
    """Whether `code` (with or without its dot) is a category or code of ICD-10-CM (the code set
    of `simple_icd_10_cm`, shipped as a compact file: `diffing.extract.icd10cm`)."""
    return icd10cm.is_valid_item(code)


def coverage_flag(heading: str) -> CoverageFlag | None:
    """What a heading says about the codes under it: covered, not covered, or nothing."""
    if _NONCOVERED.search(heading):
        return CoverageFlag.NONCOVERED
    if _COVERED.search(heading):
        return CoverageFlag.COVERED
    return None


def _expand(low: str, high: str | None) -> list[str]:
    if high is None or high == low:
        return [low]
    same_shape = (
        len(low) == len(high)
        and code_system(low) is CodeSystem.HCPCS
        and code_system(high) is CodeSystem.HCPCS
    )
    if same_shape:
        prefix_low, digits_low, suffix_low = _split_numeric(low)
        prefix_high, digits_high, suffix_high = _split_numeric(high)
        if (prefix_low, suffix_low) == (prefix_high, suffix_high):
            first, last = int(digits_low), int(digits_high)
            if 0 < last - first < MAX_RANGE_EXPANSION:
                width = len(digits_low)
                return [f"{prefix_low}{n:0{width}d}{suffix_low}" for n in range(first, last + 1)]
    # ICD-10 ranges are hierarchical and wide ranges unbounded: keep the ends only.
    return [low, high]


def _split_numeric(code: str) -> tuple[str, str, str]:
    match = re.fullmatch(r"([A-Z]?)(\d+)([A-Z]?)", code)
    assert match is not None  # only called on CPT/HCPCS-shaped codes
    return match.group(1), match.group(2), match.group(3)


def _mentions(text: str, pattern: re.Pattern[str]) -> Iterator[CodeMention]:
    for match in pattern.finditer(text):
        for code in _expand(match.group("low"), match.group("high")):
            system = code_system(code)
            if system is not None:
                yield CodeMention(system=system, code=code)


def codes_in_prose(text: str, *, in_code_list: bool = False) -> list[CodeMention]:
    """Codes named in a sentence, clause by clause. Outside a code list the clause must speak of
    codes, and an ICD-10 code without its dot must be called a diagnosis ("B12" is a vitamin)."""
    out: list[CodeMention] = []
    if not _DIGIT.search(text):  # every code has a digit; most sentences none
        return out
    joined = _joined_dots(text)
    if not in_code_list and not found_in(CODE_KEYWORDS, _CODE_KEYWORDS_LOWERED, joined):
        # A clause is a piece of the text between separators (never word characters), so a
        # keyword of a clause is one of the text: without one in the text, no clause speaks of
        # codes (most sentences with a number).
        return out
    for clause in _CLAUSES.split(joined):
        if not in_code_list and not CODE_KEYWORDS.search(clause):
            continue
        for match in _CODE_OR_RANGE.finditer(clause):
            if _COUNTS.search(clause, max(0, match.start() - 20), match.start()):
                continue  # "analysis of 30000 DNA methylation loci" counts, it lists no code
            # A clause as long as a page (a PDL captured as one line) does not speak of codes
            # as a whole: the word "code" or "diagnosis" must come just before this one.
            scope = clause if len(clause) <= _MAX_CLAUSE_CHARS else _reach(clause, match.start())
            if not in_code_list and not CODE_KEYWORDS.search(scope):
                continue
            says_icd = bool(_SAYS_ICD.search(scope))
            for code in _expand(match.group("low"), match.group("high")):
                system = code_system(code)
                if system is None:
                    continue
                dotless_icd = system is CodeSystem.ICD10 and "." not in code
                if dotless_icd and not (in_code_list or says_icd):
                    continue
                mention = CodeMention(system=system, code=code, clause=clause)
                if mention not in out:
                    out.append(mention)
    return out


_MAX_CLAUSE_CHARS = 400
_DIGIT = re.compile(r"\d")  # what each of `_ANY`'s shapes has (the same `\d`)
_COUNTS = re.compile(r"(?<!\bcode )(?<!\bcodes )\b(?:of|than|about|approximately|least)\s*$")
# "G30. 0 - G30.9": a capture split an ICD-10 code after its dot.
# ". " before a digit, as in every `_SPLIT_DOT` (a search for a literal start: quick)
_DOT_DIGIT = re.compile(r"\. \d")
_SPLIT_DOT = re.compile(r"(?<![\w.])([A-Z]\d[0-9A-Z])\. (?=\d[0-9A-Z]{0,3}\b)")


def _joined_dots(text: str) -> str:
    if ". " not in text or not _DOT_DIGIT.search(text):
        return text  # what `_SPLIT_DOT` needs: most sentences have no split code
    return _SPLIT_DOT.sub(lambda m: m.group(1) + ".", text)


_KEYWORD_REACH = 150  # characters before a code in a long clause where its keyword must be
_SAYS_ICD = re.compile(r"\bICD|\bdiagnos", re.IGNORECASE)


def _reach(clause: str, start: int) -> str:
    return clause[max(0, start - _KEYWORD_REACH) : start]


def leading_codes(line: str) -> tuple[list[CodeMention], str] | None:
    """The codes a code-list line starts with and the description after them, or None."""
    match = _LEADING_CODES.match(_joined_dots(line))
    if match is None:
        return None
    return list(_mentions(match.group("codes"), _CODE_OR_RANGE)), match.group("rest").strip()


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeRow:
    ref: CodeRef
    text: str  # the row or line it came from, for evidence


def codes_in_lines(lines: list[str], *, flag: CoverageFlag = CoverageFlag.COVERED) -> list[CodeRow]:
    """A code list written as lines (a "Coding Information" section): heading lines switch the
    coverage flag, code lines give codes and descriptions."""
    default = flag
    rows: list[CodeRow] = []
    for line in lines:
        found = leading_codes(line)
        if found:
            codes, description = found
            rows.extend(_rows(codes, description, flag, line))
            continue
        inline = codes_in_prose(line)
        if inline:
            rows.extend(_rows(inline, "", coverage_flag(line) or flag, line))
        elif line.strip():
            flag = _next_flag(line, flag, default)
    return rows


def codes_in_table(table: Table, *, flag: CoverageFlag = CoverageFlag.COVERED) -> list[CodeRow]:
    """Codes in a table whose first column holds codes; rows without codes are subheadings."""
    default = coverage_flag(table.section or "") or flag
    current = default
    rows: list[CodeRow] = []
    for cells in table.rows:
        if not cells:
            continue
        row_text = " | ".join(cells)
        found = _leading_codes(cells[0])
        if found and found[0] and not found[1]:
            description = cells[1] if len(cells) > 1 else ""
            rows.extend(_rows(found[0], description, current, row_text))
        elif found and found[0]:
            rows.extend(_rows(found[0], found[1], current, row_text))
        elif (
            not any(_CODE.search(cell) for cell in cells[1:]) or len(cells) == 1
        ) and not _looks_like_header(cells):
            current = _next_flag(row_text, current, default)
    return rows


_NAMES_A_CODE_SET = re.compile(r"\b(?:CPT|HCPCS|ICD-?10(?:-CM)?|PLA)\b", re.IGNORECASE)


def _next_flag(line: str, current: CoverageFlag, default: CoverageFlag) -> CoverageFlag:
    """The flag after a line without codes: a heading that says covered or not sets it, a
    heading naming a code set ("Other CPT codes related to the CPB:") starts over from the
    default; a test's name between a heading and its codes, a disclaimer or prose keep it."""
    flag = heading_flag(line)
    if flag is not None:
        return flag
    if _is_heading(line) and _NAMES_A_CODE_SET.search(line):
        return default
    return current


def _looks_like_header(cells: tuple[str, ...]) -> bool:
    words = " ".join(cells).lower()
    return "code" in words and ("description" in words or "descriptor" in words)


def _rows(
    codes: Sequence[CodeMention], description: str, flag: CoverageFlag, text: str
) -> list[CodeRow]:
    return [
        CodeRow(
            ref=CodeRef(system=c.system, flag=flag, code=c.code, description=description),
            text=text,
        )
        for c in codes
    ]


def is_code_table(table: Table) -> bool:
    """Whether a table's first column holds codes in at least one row."""
    return any(row and _leading_codes(row[0]) for row in table.rows)


# --- code tables wherever a document puts them ----------------------------------------------

MIN_TABLE_LINES = 3  # code-list lines a section needs before codes inside reflowed lines count
_HISTORY_NAME = re.compile(
    r"(?:policy|revision|review|document|publication|approval) history|revision information"
    r"|^\s*(?:history|revisions?|change log)\s*$",
    re.IGNORECASE,
)
# A description glued to its code ("81120IDH1 (isocitrate …", "0018UOncology"): the code is
# followed by a capital letter that begins a word of two or more characters.
_GLUED = re.compile(rf"^\s*(?P<code>{_CPT}|{_HCPCS})(?=[A-Z][A-Za-z0-9])")
# A two-column table read row-wise ends its description with the code: "… instability 81458".
_TRAILING = re.compile(rf"\s(?P<codes>(?:{_CPT}|{_HCPCS})(?:\s*[,;]\s*(?:{_CPT}|{_HCPCS}))*)\s*$")
_MAX_ROW_CHARS = 400  # a table row read as one line; longer lines are prose or reflow
# Codes inside a line that reflowed a code table: "… risk score 0018U Oncology (thyroid), …".
_EMBEDDED = re.compile(
    rf"(?<=\s)(?P<code>{_CPT}|{_HCPCS})(?:\s+(?=[A-Z(])|(?=[A-Z][A-Za-z])|\s*$)|\((?P<paren>{_CPT}|{_HCPCS})\)"
)


# A short row naming a test and its code(s): "Afirma 81546", "0245U+0018U)".
_SHORT_ROW = re.compile(
    rf"^\s*\(?(?:[A-Z][\w®™-]*\s+){{0,2}}(?P<codes>(?:{_CPT}|{_HCPCS})(?:\s*\+\s*(?:{_CPT}|{_HCPCS}))*)"
    r"\)?\s*$"
)


def _table_line_codes(
    line: str, *, short_rows: bool = False
) -> tuple[list[CodeMention], str] | None:
    """The codes of one code-table line and its description; None for any other line. A row
    whose description is one word ("Afirma 81546") counts only with `short_rows`."""
    found = leading_codes(line)
    if found and found[0]:
        return found
    glued = _GLUED.match(line)
    if glued:
        code = glued.group("code")
        system = code_system(code)
        if system is not None:
            return [CodeMention(system=system, code=code)], line[glued.end() :].strip()
    short = _SHORT_ROW.match(line) if len(line) <= _MAX_ROW_CHARS else None
    if short:
        codes = [
            CodeMention(system=system, code=code)
            for code in re.split(r"\s*\+\s*", short.group("codes"))
            if (system := code_system(code)) is not None
        ]
        if codes:
            return codes, line.replace(short.group("codes"), "").strip(" ()")
    trailing = _TRAILING.search(line) if len(line) <= _MAX_ROW_CHARS else None
    if trailing:
        rest = line[: trailing.start()].strip()
        wide_enough = len(rest.split()) >= (1 if short_rows else 2)
        if wide_enough and re.search(r"[A-Za-z)\]]", rest):
            codes = list(_mentions(trailing.group("codes"), _CODE_OR_RANGE))
            if codes:
                return codes, rest
    return None


def document_codes(document: PolicyDocument) -> list[CodeRow]:
    """Every code a document lists, wherever its tables are: code sections, code-table lines in
    any section (a code with its description, alone, glued to it or at the end of the row),
    codes inside reflowed table lines, `Table`s, and prose that speaks of codes. History
    sections name removed codes and are skipped."""
    rows: list[CodeRow] = []
    for section in document.sections:
        if _HISTORY_NAME.search(section.name):
            continue
        rows.extend(_section_codes(section.name, section.text.split("\n")))
    for table in document.tables:
        if is_code_table(table):
            rows.extend(codes_in_table(table))
    return rows


def _section_codes(name: str, lines: list[str]) -> list[CodeRow]:
    default = coverage_flag(name) or CoverageFlag.COVERED
    code_section = bool(_CODE_SECTION_NAME.search(name))
    flag = default
    first_reading = [_line_codes(line, False) for line in lines]
    is_table = sum(1 for found in first_reading if found) >= MIN_TABLE_LINES
    # Under a heading naming a code set ("CPT codes not covered for indications listed in the
    # CPB:") the lines are a code list, however few and whatever the section is called.
    listing = False
    rows: list[CodeRow] = []
    for line, first in zip(lines, first_reading, strict=True):
        if _HISTORY_HEADING.match(line):
            break  # a history table run into the section: its codes are logged, not listed
        in_list = is_table or code_section or listing
        # `short_rows` only adds rows: a line read without it reads the same with it.
        short = is_table and first is None
        found = _line_codes(line, True) if short else first
        codes, description = (list(found[0]), found[1]) if found and in_list else ([], "")
        known = {m.code for m in codes}
        extra = list(_prose_codes(line, code_section or listing))
        if in_list:
            extra += [*_embedded_codes(line), *_siblings(codes, description)]
        if codes and all(m.system is CodeSystem.HCPCS for m in codes):
            # A procedure's description names genes and markers ("HER-2, K20"), never
            # diagnoses: ICD-10-shaped words in it are no codes.
            extra = [m for m in extra if m.system is not CodeSystem.ICD10]
        for mention in extra:
            if mention.code not in known:
                known.add(mention.code)
                codes.append(mention)
        if codes:
            line_flag = flag if found else (_heading_flag(line) or flag)
            rows.extend(_rows(codes, description, line_flag, line))
        elif line.strip() and not _looks_like_header((line,)):
            flag = _line_flag(line, flag, default)
            heading = _line_is_heading(line)
            if heading and _NAMES_A_CODE_SET.search(line):
                listing = True
            elif not heading:
                listing = False
    return rows


# What `_section_codes` reads of each line, remembered for short lines (`diffing.extract.memo`):
# a payer's code lists and the lines around them recur from policy to policy. Lists are
# remembered as tuples (the same mentions: `CodeMention` is frozen).
def _frozen_line_codes(line: str, short_rows: bool) -> tuple[tuple[CodeMention, ...], str] | None:
    found = _table_line_codes(line, short_rows=short_rows)
    return None if found is None else (tuple(found[0]), found[1])


_line_codes = memo.per_short_text(_frozen_line_codes)


def _frozen_leading_codes(cell: str) -> tuple[tuple[CodeMention, ...], str] | None:
    found = leading_codes(cell)
    return None if found is None else (tuple(found[0]), found[1])


# A table's first cells, read by `is_code_table` (three times a table) and `codes_in_table`.
_leading_codes = memo.per_short_text(_frozen_leading_codes)
_prose_codes = memo.per_short_text(
    lambda line, in_code_list: tuple(codes_in_prose(line, in_code_list=in_code_list))
)
_embedded_codes = memo.per_short_text(lambda line: tuple(_embedded(line)))
# (two readers defined further down: looked up when called)
_heading_flag = memo.per_short_text(lambda line: heading_flag(line))
_line_flag = memo.per_short_text(_next_flag)
_line_is_heading = memo.per_short_text(lambda line: _is_heading(line))


# A line that is only a history heading ("History", "Policy History/Revision Information"); a
# page's navigation line ("Criteria | Codes | Revision History …") is not one.
_HISTORY_HEADING = re.compile(
    r"^\s*(?:(?:policy|revision|review|document|publication|approval)\s+history"
    r"(?:\s*/\s*revision information)?|history|revisions?|change log|revision information)"
    r"\s*:?\s*$",
    re.IGNORECASE,
)
_SIBLING_DISTANCE = 10


def _siblings(codes: list[CodeMention], description: str) -> list[CodeMention]:
    """Codes a reflowed code list ran into the previous code's description: "88360 Morphometric
    analysis …; manual 88361 using computer-assisted technology". Only a number next to the
    line's own code counts, so counts and sizes in a description ("30000 loci") stay out."""
    leading = [c.code for c in codes if c.code.isdigit()]
    out: list[CodeMention] = []
    for match in re.finditer(r"(?<![\w.,/-])(\d{5})(?![\w.,/%-])", description):
        number = match.group(1)
        if any(
            abs(int(number) - int(code)) <= _SIBLING_DISTANCE and number != code for code in leading
        ):
            out.append(CodeMention(system=CodeSystem.HCPCS, code=number))
    return out


_MAX_HEADING_WORDS = 14


def _is_heading(line: str) -> bool:
    """A line short enough to head a code list ("CPT codes not covered for indications listed in
    the CPB:", "Unproven Molecular Tests"); sentences of prose, disclaimers and lines a reflow cut
    out of them are not, so a code keeps its table whatever format the document came in."""
    text = line.strip()
    # Split no further than the limit: a paragraph's words are not all counted.
    words = len(text.split(None, _MAX_HEADING_WORDS))
    return words <= _MAX_HEADING_WORDS and not _NOT_HEADING.search(text)


_NOT_HEADING = re.compile(r"[.;,]$|^[a-z\]\-.)]")


def heading_flag(line: str) -> CoverageFlag | None:
    """The coverage flag a code-list heading line gives, None for other lines and for headings
    that name both ("a covered or non-covered health service")."""
    if not _is_heading(line) or _BOTH.search(line):
        return None
    return coverage_flag(line)


_BOTH = re.compile(r"\bcovered\s+(?:or|and|/)\s+non-?covered\b", re.IGNORECASE)


_CODE_SECTION_NAME = re.compile(r"\bcod(?:es|ing)\b|\bCPT\b|\bHCPCS\b|\bICD", re.IGNORECASE)


# A number a description counts with ("analysis of 30000 DNA methylation loci") follows one
# of these words; a code a reflowed table ran into the line follows the end of a description.
_COUNTED = re.compile(
    r"\b(?:of|to|than|and|or|by|with|from|for|at|in|over|under|up|about|approximately|least)\s*$"
)


def _embedded(line: str) -> list[CodeMention]:
    known: set[str] = set()
    out: list[CodeMention] = []
    for match in _EMBEDDED.finditer(line):
        if match.group("code") and _COUNTED.search(line, max(0, match.start() - 20), match.start()):
            continue
        code = match.group("code") or match.group("paren")
        system = code_system(code)
        if system is not None and code not in known:
            known.add(code)
            out.append(CodeMention(system=system, code=code))
    return out
