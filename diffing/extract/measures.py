"""Severity thresholds in one sentence: BSA ≥ 10 %, EASI of 16 or greater, IGA 3 or 4, Hurley
stage II or III, lesions at least 20 mm, "BSA of 3% to 10%".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diffing.extract.durations import parse_number
from diffing.extract.folded import lowered_alternation
from diffing.extract.memo import per_text
from diffing.extract.vocabulary import any_of


@dataclass(frozen=True, kw_only=True, slots=True)
class Measure:
    name: str  # as reported: "BSA", "EASI", "Hurley stage", …
    alias: str  # regular expression
    unit: str = ""
    maximum: float = 100.0  # larger values are not this measure (a year, a dose, an age)
    roman: bool = False  # values are stages: "II", "III"


MEASURES: tuple[Measure, ...] = (
    Measure(
        name="BSA",
        alias=r"(?:total )?body[- ]surface[- ]area(?:\s*\(BSA\))?|(?-i:BSA)",
        unit="%",
    ),
    Measure(
        name="EASI",
        alias=r"Eczema Area and Severity Index(?:\s*\(EASI\))?|(?-i:EASI)",
        maximum=72,
    ),
    Measure(
        name="IGA",
        alias=r"(?:validated )?Investigator'?s'? (?:Static )?Global Assessment"
        r"(?:\s*\((?:v)?IGA(?:-AD)?\))?|(?-i:v?IGA)(?:-AD)?",
        maximum=4,
    ),
    Measure(
        name="PASI",
        alias=r"Psoriasis Area and Severity Index(?:\s*\(PASI\))?|(?-i:PASI)",
        maximum=72,
    ),
    Measure(
        name="DLQI",
        alias=r"(?:Children'?s )?Dermatology Life Quality Index(?:\s*\(C?DLQI\))?|(?-i:C?DLQI)",
        maximum=30,
    ),
    Measure(
        name="PGA",
        alias=r"(?:static )?Physician'?s'? Global Assessment(?:\s*\(s?PGA\))?|(?-i:s?PGA)",
        maximum=4,
    ),
    Measure(
        name="itch NRS",
        alias=r"(?:(?:peak|worst)[- ](?:itch|pruritus) )?(?:itch |pruritus )?numeric rating scale"
        r"(?:\s*\((?:PP-|WI-)?NRS\))?|(?-i:(?:PP-|WI-)?NRS)",
        maximum=10,
    ),
    Measure(
        name="UAS7",
        alias=r"(?:weekly )?Urticaria Activity Score(?: over 7 days)?(?:\s*\(UAS7\))?|(?-i:UAS7)",
        maximum=42,
    ),
    Measure(
        name="SALT",
        alias=r"Severity of Alopecia Tool(?:\s*\(SALT\))?|(?-i:SALT)",
        unit="%",
    ),
    Measure(
        name="AN count",
        alias=r"(?:total )?(?:abscess and (?:inflammatory )?nodule(?:\s*\((?-i:AN)\))?|(?-i:AN))"
        r" count",
        maximum=500,
    ),
    Measure(name="Hurley stage", alias=r"Hurley(?: stage)?", roman=True, maximum=3),
)
_MEASURE_PATTERNS = tuple(
    (re.compile(rf"(?<![\w-])(?:{m.alias})(?![\w]|-\d)", re.IGNORECASE), m) for m in MEASURES
)
# A pre-check: whether any measure is named (most sentences name none), before the searches of
# each. In lower-cased ASCII text, case-sensitive (`diffing.extract.folded`: it finds a name
# wherever one of `_MEASURE_PATTERNS` does, "easi" too); in other text, their alternation.
_ANY_MEASURE = any_of(pattern for pattern, _ in _MEASURE_PATTERNS)
_LOWERED_ALIASES = lowered_alternation([m.alias for m in MEASURES])
_ANY_MEASURE_LOWERED = (
    None
    if _LOWERED_ALIASES is None
    else re.compile(rf"(?<![\w-])(?:{_LOWERED_ALIASES})(?![\w]|-\d)")
)


def names_a_measure(text: str) -> bool:
    """False when no measure of `_MEASURE_PATTERNS` is in `text`."""
    if _ANY_MEASURE_LOWERED is not None and text.isascii():
        return _ANY_MEASURE_LOWERED.search(text.lower()) is not None
    return _ANY_MEASURE.search(text) is not None


_GE = (
    r"≥|>=|=>|at least|a minimum of|minimum of|no less than|not less than|"
    r"greater than or equal to|equal to or greater than|more than or equal to"
)
_GT = r">|greater than|more than|above|over|exceeding|in excess of|higher than"
_LE = r"≤|<=|=<|at most|no more than|not more than|no greater than|less than or equal to|up to"
_LT = r"<|less than|below|under|fewer than|lower than"
_COMPARATOR = "|".join(
    f"(?P<{name}>{pattern})"
    for name, pattern in (("ge", _GE), ("le", _LE), ("gt", _GT), ("lt", _LT))
)
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4}
_VALUE = r"(?P<value>\d+(?:\.\d+)?|(?-i:IV|III|II|I)\b)"
_SUFFIX = (
    r"(?:\s*(?P<sfx_ge>or (?:greater|more|higher|above|worse)|and (?:above|higher|greater)|\+)"
    r"|\s*(?P<sfx_le>or (?:less|lower|fewer|below|better)|and (?:below|lower)))?"
)
_OR_NEXT = (
    r"(?:\s*\([^()]{0,20}\))?"  # "3 (moderate) or 4 (severe)"
    r"(?:\s*(?P<joint>or|and|/|-|to|–|through)\s*(?P<next>\d+(?:\.\d+)?|(?-i:IV|III|II|I)\b))?"
)
_FILLER = (
    r"(?:\s*(?:\((?-i:[A-Z0-9-]{2,8})\)|(?:scores?|involvement|affected|affecting|total|value"
    r"|of|at baseline|baseline|is|was|must be|of the|with|level|rating|grade|stage)\b|:))*"
)
_FORWARD = re.compile(
    rf"^{_FILLER}\s*(?:(?P<between>between)\s+|(?:{_COMPARATOR})\s*)?{_VALUE}\s*(?P<unit>%|percent)?"
    rf"{_OR_NEXT}{_SUFFIX}",
    re.IGNORECASE,
)
_BACKWARD = re.compile(
    rf"(?:(?:{_COMPARATOR})\s*)?(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>%|percent){_SUFFIX}"
    r"\s*(?:of\s+(?:the\s+|their\s+|the\s+patient'?s\s+)?)?(?:total\s+)?$",
    re.IGNORECASE,
)
_LESION = re.compile(
    rf"(?:(?:{_COMPARATOR})\s*)(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>mm|cm|millimeters?|centimeters?)\b"
    r"|(?P<value2>\d+(?:\.\d+)?)\s*(?P<unit2>mm|cm)\s+(?P<sfx_ge>or (?:greater|larger|more))\b",
    re.IGNORECASE,
)


_WINDOW_END = re.compile(
    r";|,\s*(?:and|or)\b|(?<!\d)(?<!\d%)\s+and\b(?!\s+(?:above|higher|greater|over))"
    r"|(?<=\d)\s+and\b(?!\s+(?:\d|above|higher|greater|over))"
    r"|(?<=\d%)\s+and\b(?!\s+(?:\d|above|higher|greater|over))"
    r"|\bor\b(?!\s*(?:\d|I|greater|more|higher|above|worse|less|lower|fewer|below|better))"
)


_LENGTH_UNIT = re.compile(r"\d\s*(?:mm|cm|millimet|centimet)", re.IGNORECASE)  # pre-check


@dataclass(frozen=True, kw_only=True, slots=True)
class ThresholdFinding:
    measure: str
    op: str
    value: float
    unit: str


def _op(match: re.Match[str]) -> str:
    groups = match.groupdict()
    if groups.get("sfx_ge"):
        return ">="
    if groups.get("sfx_le"):
        return "<="
    for name, op in (("ge", ">="), ("le", "<="), ("gt", ">"), ("lt", "<")):
        if groups.get(name):
            return op
    return "="


def _number(text: str) -> float | None:
    roman = _ROMAN.get(text.lower())
    return float(roman) if roman is not None and text.isupper() else parse_number(text)


def find_thresholds(text: str) -> list[ThresholdFinding]:
    """Every severity threshold in a sentence, in order."""
    if not names_a_measure(text):
        return _lesion_sizes(text, [])
    mentions = sorted(
        (
            (m.start(), m.end(), measure)
            for pattern, measure in _MEASURE_PATTERNS
            for m in pattern.finditer(text)
        ),
        key=lambda item: (item[0], item[0] - item[1]),
    )
    chosen: list[tuple[int, int, Measure]] = []
    for mention in mentions:
        if not chosen or mention[0] >= chosen[-1][1]:
            chosen.append(mention)
    found: list[ThresholdFinding] = []
    for index, (start, end, measure) in enumerate(chosen):
        if re.match(r"-?\d", text[end : end + 2]) and not measure.roman:
            continue  # EASI-75, PASI 90: a response, not a threshold
        window_end = chosen[index + 1][0] if index + 1 < len(chosen) else len(text)
        window = _WINDOW_END.split(text[end:window_end])[0]
        findings = _forward(window, measure)
        if not findings:
            previous_end = chosen[index - 1][1] if index else 0
            backward = _backward(text[max(previous_end, start - 40) : start], measure)
            findings = [backward] if backward is not None else []
        found.extend(findings)
    found.extend(_lesion_sizes(text, [(s, e) for s, e, _ in chosen]))
    return found


# `find_thresholds` remembered for short texts (`diffing.extract.memo`): what the extractor and the
# tree call, sentence after sentence and item after item, many of them a payer's recurring ones.
remembered_thresholds = per_text(find_thresholds)


def _forward(window: str, measure: Measure) -> list[ThresholdFinding]:
    match = _FORWARD.match(window)
    if match is None:
        return []
    value = _number(match.group("value"))
    if value is None or value > measure.maximum:
        return []
    if not measure.roman and not match.group("value")[0].isdigit():
        return []
    op = _op(match)
    next_value = _number(match.group("next")) if match.group("next") else None
    if (
        match.group("joint")
        and match.group("joint").lower() == "and"
        and not match.group("between")
    ):
        next_value = None  # "PASI 10 and 5 nodules": only "between 5 and 10" is a range
    if next_value is not None and value < next_value <= measure.maximum and op == "=":
        # "IGA 3 or 4" is 3 and up when 4 is the top of the scale, "IGA 0 or 1" is 1 and down,
        # and "BSA of 3% to 10%" is both bounds.
        if next_value >= measure.maximum:
            op = ">="
        elif value == 0:
            op, value = "<=", next_value
        elif match.group("joint").lower() != "or":
            return [
                ThresholdFinding(measure=measure.name, op=">=", value=value, unit=measure.unit),
                ThresholdFinding(
                    measure=measure.name, op="<=", value=next_value, unit=measure.unit
                ),
            ]
    return [ThresholdFinding(measure=measure.name, op=op, value=value, unit=measure.unit)]


def _backward(before: str, measure: Measure) -> ThresholdFinding | None:
    if not measure.unit:
        return None
    match = _BACKWARD.search(before)
    if match is None:
        return None
    value = float(match.group("value"))
    if value > measure.maximum:
        return None
    return ThresholdFinding(measure=measure.name, op=_op(match), value=value, unit=measure.unit)


def _lesion_sizes(text: str, taken: list[tuple[int, int]]) -> list[ThresholdFinding]:
    found: list[ThresholdFinding] = []
    if not _LENGTH_UNIT.search(text):
        return found
    for match in _LESION.finditer(text):
        if any(s <= match.start() < e for s, e in taken):
            continue
        value = float(match.group("value") or match.group("value2"))
        unit = (match.group("unit") or match.group("unit2")).lower()
        if unit.startswith("c"):
            value *= 10
        found.append(ThresholdFinding(measure="lesion size", op=_op(match), value=value, unit="mm"))
    return found
