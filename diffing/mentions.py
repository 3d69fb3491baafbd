"""What a MAC bulletin mentions, and a bulletin as `Criteria` and as changes. Pure.

`find_mentions(text)` finds LCD and Article ids (L39902, A57520, proposed DL39902/DA57520),
CPT and HCPCS codes, ICD-10-CM codes and drug names, each with the sentence it came from.

The rules that keep numbers out which are not codes:
- LCD/Article ids: L, A, DL or DA and exactly five digits, standing alone (not inside a word,
  path or longer number); also "LCD 39902" / "Article 57520".
- HCPCS Level II (a letter A-V and four digits: J3245, Q4101): accepted anywhere they stand
  alone, except after "Form", "Room" or a hyphen (CMS-1500).
- CPT (five digits, or four digits and F/T/U): only in a sentence that speaks of codes (CPT,
  HCPCS, procedure, "code", "billed") or right after such a line (a table header), and never
  after a state abbreviation (a ZIP code), "P.O. Box", "Suite", "CR"/"Change Request",
  "Transmittal", "MM"/"SE" article numbers or "#"; never as part of a ZIP+4, a phone number,
  an amount, a date or a dose ("10000 units").
- ICD-10-CM: with its dot (L20.9, L40.0) anywhere but after "section", "chapter", "version";
  without the dot (L209) only in a sentence about ICD-10 codes or diagnoses.
- Drugs: the extraction vocabulary (`diffing.extract.vocabulary.DRUGS`), canonical names.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from diffing.diff import diff_criteria
from diffing.extract.vocabulary import DRUGS, find_terms
from diffing.model import Change, ChangeKind, Criteria, PolicyDiff, RawDocument, Section
from diffing.severity import bulletin_severity
from diffing.text import html_to_text, sentences

BULLETIN_DOC_TYPE = "mac_bulletin"
_MAX_RANGE = 50  # "11102-11107" becomes six codes; wider ranges keep their two ends
_CONTEXT_LINES = 2  # a table's header line lends its "CPT code" context to the rows below


class MentionKind(StrEnum):
    LCD = "lcd"
    ARTICLE = "article"
    HCPCS = "hcpcs"  # CPT and HCPCS Level II share one table in CMS data
    ICD10 = "icd10"
    DRUG = "drug"


_KIND_ORDER = {kind: rank for rank, kind in enumerate(MentionKind)}


@dataclass(frozen=True, kw_only=True, slots=True)
class Mention:
    """One thing a bulletin names. `document_key` is the monitored document it points at
    (LCD and Article ids: "L39902" also for a proposed "DL39902"); None for codes and drugs."""

    kind: MentionKind
    value: str  # as normalised: "L39902", "DL39902", "17110", "J3245", "L20.9", "dupilumab"
    document_key: str | None = None
    sentence: str = field(default="", compare=False)

    @property
    def sort_key(self) -> tuple[int, str]:
        return (_KIND_ORDER[self.kind], self.value)


_ALONE_BEFORE = r"(?<![\w.$/#\-–,])"
_ALONE_AFTER = r"(?![\w/]|\.\d|,\d)"
_JOIN = r"\s*(?:-|–|through|thru|to)\s*"
_DOC_ID = re.compile(
    rf"{_ALONE_BEFORE}(?P<draft>D?)(?P<letter>[LA])(?P<number>\d{{5}}){_ALONE_AFTER}"
)
_DOC_WORD = re.compile(
    r"\b(?P<word>LCD|Article)s?\s*(?:ID\s*)?(?:#\s*|No\.\s*)?(?P<number>\d{5})(?![\w/]|\.\d)"
)
_HCPCS2 = r"[A-V]\d{4}"
_HCPCS2_CODE = re.compile(
    rf"{_ALONE_BEFORE}(?P<low>{_HCPCS2})(?:{_JOIN}(?P<high>{_HCPCS2}))?{_ALONE_AFTER}"
)
_HCPCS2_NOT_AFTER = re.compile(r"\b(?:form|room|model|flight|unit)\s*$", re.IGNORECASE)
_CPT = r"\d{5}|\d{4}[FTU]"
_CPT_CODE = re.compile(
    rf"{_ALONE_BEFORE}(?P<low>{_CPT})(?:{_JOIN}(?P<high>{_CPT}))?"
    r"(?![\w/]|\.\d|,\d|-\d{4}(?!\d)|\s*(?:mg|mcg|ml|units?|%|percent|miles?)\b)",
    re.IGNORECASE,
)
_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR VI GU AS MP"
)  # US states and territories: what stands before a ZIP code
_CPT_NOT_AFTER = re.compile(
    rf"(?:\b(?:{_STATES.replace(' ', '|')}),?\s*$"
    r"|(?i:\b(?:p\.?\s*o\.?\s*box|box|suite|ste\.?|zip(?:\s*code)?|cr|change\s+request|"
    r"transmittal|mm|se|pub\.?|publication|no\.?|number|route|phone|fax|tty|ext\.?|"
    r"page|pages|claim\s+number|npi|ptan|tin)\s*:?\s*$)|#\s*$)"
)
_LEADING_CODE = re.compile(rf"^\s*(?:{_CPT}|{_HCPCS2})\b")
_CODE_CONTEXT = re.compile(
    r"\b(?:CPT|HCPCS|procedure\s+codes?|codes?|coding|coded|billed|bill\s+with|report(?:ed)?\s+"
    r"(?:with|using))\b",
    re.IGNORECASE,
)
_ICD = r"[A-TV-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4}|[0-9A-Z]{0,4})"
_ICD_CODE = re.compile(rf"{_ALONE_BEFORE}(?P<low>{_ICD})(?:{_JOIN}(?P<high>{_ICD}))?{_ALONE_AFTER}")
_ICD_CONTEXT = re.compile(r"\bICD|\bdiagnos", re.IGNORECASE)
_ICD_NOT_AFTER = re.compile(
    r"\b(?:section|chapter|version|figure|table|item|step|part)\s*$", re.IGNORECASE
)


def _before(text: str, start: int, width: int = 30) -> str:
    return text[max(0, start - width) : start]


def _expand(low: str, high: str | None) -> list[str]:
    """A range of same-shaped codes becomes each code (up to `_MAX_RANGE`), else its ends."""
    if high is None or high == low:
        return [low]
    a, b = re.fullmatch(r"(\D?)(\d+)(\D?)", low), re.fullmatch(r"(\D?)(\d+)(\D?)", high)
    if a and b and (a[1], a[3], len(a[2])) == (b[1], b[3], len(b[2])):
        first, last = int(a[2]), int(b[2])
        if 0 < last - first < _MAX_RANGE:
            return [f"{a[1]}{n:0{len(a[2])}d}{a[3]}" for n in range(first, last + 1)]
    return [low, high]


def _document_ids(sentence: str) -> Iterable[Mention]:
    for match in _DOC_ID.finditer(sentence):
        key = f"{match['letter']}{match['number']}"
        yield Mention(
            kind=MentionKind.LCD if match["letter"] == "L" else MentionKind.ARTICLE,
            value=f"{match['draft']}{key}",
            document_key=key,
            sentence=sentence,
        )
    for match in _DOC_WORD.finditer(sentence):
        lcd = match["word"].upper() == "LCD"
        key = f"{'L' if lcd else 'A'}{match['number']}"
        yield Mention(
            kind=MentionKind.LCD if lcd else MentionKind.ARTICLE,
            value=key,
            document_key=key,
            sentence=sentence,
        )


def _hcpcs(sentence: str, code_context: bool) -> Iterable[Mention]:
    for match in _HCPCS2_CODE.finditer(sentence):
        if _HCPCS2_NOT_AFTER.search(_before(sentence, match.start())):
            continue
        for code in _expand(match["low"], match["high"]):
            yield Mention(kind=MentionKind.HCPCS, value=code, sentence=sentence)
    if not code_context:
        return
    for match in _CPT_CODE.finditer(sentence):
        if _CPT_NOT_AFTER.search(_before(sentence, match.start())):
            continue
        for code in _expand(match["low"].upper(), (match["high"] or "").upper() or None):
            yield Mention(kind=MentionKind.HCPCS, value=code, sentence=sentence)


def _icd10(sentence: str) -> Iterable[Mention]:
    says_icd = bool(_ICD_CONTEXT.search(sentence))
    for match in _ICD_CODE.finditer(sentence):
        if _ICD_NOT_AFTER.search(_before(sentence, match.start())):
            continue
        codes = _expand(match["low"], match["high"]) if "." not in match["low"] else None
        for code in codes or [c for c in (match["low"], match["high"]) if c]:
            if "." not in code and not says_icd:
                continue  # "J15" is a jurisdiction, "B12" a vitamin: dotless needs context
            if _DOC_ID.fullmatch(code) or re.fullmatch(_HCPCS2, code):
                continue  # an LCD id or a HCPCS code, not a dotless diagnosis
            yield Mention(kind=MentionKind.ICD10, value=code, sentence=sentence)


def find_mentions(text: str) -> tuple[Mention, ...]:
    """Every distinct thing `text` mentions, in kind order (ids, codes, diagnoses, drugs);
    each keeps the first sentence it appeared in."""
    found: dict[tuple[MentionKind, str], Mention] = {}
    recent: list[str] = []
    list_open = False
    for sentence in sentences(text):
        # The rows of a code list ("96910 Photochemotherapy …") keep the context of its header
        # however long the list is; any other line ends the list.
        row = list_open and bool(_LEADING_CODE.match(sentence))
        code_context = row or any(_CODE_CONTEXT.search(s) for s in (*recent, sentence))
        list_open = code_context
        candidates: list[Mention] = [
            *_document_ids(sentence),
            *_hcpcs(sentence, code_context),
            *_icd10(sentence),
            *(
                Mention(kind=MentionKind.DRUG, value=match.canonical, sentence=sentence)
                for match in find_terms(sentence, DRUGS)
            ),
        ]
        for mention in candidates:
            found.setdefault((mention.kind, mention.value), mention)
        recent = [*recent, sentence][-_CONTEXT_LINES:]
    return tuple(sorted(found.values(), key=lambda m: m.sort_key))


def criteria_text(criteria: Criteria) -> str:
    return "\n\n".join(section.text for section in criteria.sections)


def mentions_in_criteria(criteria: Criteria) -> tuple[Mention, ...]:
    return find_mentions(criteria_text(criteria))


_LABELS = {
    MentionKind.HCPCS: "CPT/HCPCS",
    MentionKind.ICD10: "ICD-10",
    MentionKind.DRUG: "drugs",
}


def describe_mentions(mentions: Sequence[Mention]) -> str:
    """ "L33979, A57520; CPT/HCPCS 17110, J3245; ICD-10 L82.0; drugs tildrakizumab"."""
    groups: list[str] = []
    ids = [m.value for m in mentions if m.kind in (MentionKind.LCD, MentionKind.ARTICLE)]
    if ids:
        groups.append(", ".join(ids))
    for kind, label in _LABELS.items():
        values = [m.value for m in mentions if m.kind is kind]
        if values:
            groups.append(f"{label} {', '.join(values)}")
    return "; ".join(groups)


# --- a bulletin as criteria ---------------------------------------------------------------


def bulletin_criteria(raw: RawDocument) -> Criteria:
    """A bulletin's bytes (the article body as HTML, or a PDF) as `Criteria`: its title, its
    date as `effective_date`, its MAC as `payer` and its text as sections (tables' rows folded
    into the section they sit in, so code tables are diffed and searched too)."""
    from diffing.parse import parse_document  # pdfplumber and bs4 load on first use
    from monitor.errors import ParseError

    try:
        document = parse_document(raw.content, raw.content_type, document_id=raw.key)
        sections = _with_tables(document.sections, document.tables)
        title = raw.title or document.title
    except ParseError as exc:
        # A short news item is still news: keep its text when the parser's only objection
        # is its length (the canonical page holds just the selected body, never site chrome).
        if "almost no text" not in exc.reason or "html" not in raw.content_type:
            raise
        text = html_to_text(raw.content.decode("utf-8", errors="replace"))
        sections = (Section(name="preamble", text=text),) if text else ()
        title = raw.title
    bulletin_date = raw.meta("bulletin_date")
    return Criteria(
        document_id=raw.key,
        doc_type=BULLETIN_DOC_TYPE,
        title=title,
        version=None,
        status="active",
        effective_date=dt.date.fromisoformat(bulletin_date) if bulletin_date else None,
        payer=raw.meta("mac"),
        sections=sections,
    )


def _with_tables(sections: tuple[Section, ...], tables: Sequence[object]) -> tuple[Section, ...]:
    extra: dict[str | None, list[str]] = {}
    for table in tables:
        rows = getattr(table, "rows", ())
        extra.setdefault(getattr(table, "section", None), []).extend(" ".join(r) for r in rows)
    if not extra:
        return sections
    out = []
    for section in sections:
        lines = extra.pop(section.name, [])
        out.append(
            dataclasses.replace(section, text="\n".join([section.text, *lines]))
            if lines
            else section
        )
    leftover = [line for lines in extra.values() for line in lines]
    if leftover:
        out.append(Section(name="tables", text="\n".join(leftover)))
    return tuple(out)


def bulletin_heading(criteria: Criteria) -> str:
    """ "Novitas bulletin of 2026-02-03" (the MAC and the date, when known)."""
    who = criteria.payer or "MAC"
    when = f" of {criteria.effective_date.isoformat()}" if criteria.effective_date else ""
    return f"{who} bulletin{when}"


def diff_bulletin(old: Criteria | None, new: Criteria, *, today: dt.date) -> PolicyDiff:
    """A new bulletin is one `bulletin_published` change listing what it mentions; an edited
    one gets the ordinary text diff, with mentions its new text adds named in the evidence."""
    mentions = mentions_in_criteria(new)
    if old is None:
        heading = bulletin_heading(new)
        after = f"{heading} mentions {describe_mentions(mentions)}" if mentions else heading
        first = next((m.sentence for m in mentions if m.document_key), None)
        published = Change(
            kind=ChangeKind.BULLETIN_PUBLISHED,
            severity=bulletin_severity(
                documents=sum(m.document_key is not None for m in mentions),
                codes=sum(m.kind in (MentionKind.HCPCS, MentionKind.ICD10) for m in mentions),
            ),
            field="bulletin",
            after=after,
            evidence=first or (mentions[0].sentence if mentions else new.title),
            effective_date=new.effective_date,
        )
        return PolicyDiff(
            document_id=new.document_id, old_version=None, new_version=None, changes=(published,)
        )
    diff = diff_criteria(old, new, today=today)
    added = [m for m in mentions if m not in set(mentions_in_criteria(old))]
    if not added or not diff.changes:
        return diff
    note = f"now also mentions {describe_mentions(added)}"
    lead, *rest = diff.changes
    lead = dataclasses.replace(lead, evidence=f"{lead.evidence}; {note}" if lead.evidence else note)
    return dataclasses.replace(diff, changes=(lead, *rest))
