"""Typed leaves from one criteria item ("ii. Patient has tried methotrexate for 3 months; AND"):
age, prescriber, step therapy, threshold, diagnosis, exclusion, response, time on therapy,
dosing, else documentation. The item is read on its own; notes and examples never are."""

from __future__ import annotations

import functools
import re

from diffing.extract import memo
from diffing.extract.ages import remembered_age_limits
from diffing.extract.durations import DurationKind, remembered_durations
from diffing.extract.measures import remembered_thresholds
from diffing.extract.steps import find_steps
from diffing.model import Evidence
from diffing.tree.nodes import (
    AGE,
    DIAGNOSIS,
    DOCUMENTATION,
    DOSING,
    EXCLUSION,
    ON_THERAPY,
    PRESCRIBER,
    RESPONSE,
    STEP_THERAPY,
    THRESHOLD,
    CriterionLeaf,
)


def number_text(value: float) -> str:
    return f"{value:g}"


CONNECTOR_END = re.compile(
    r"(?:[;,.]?\s*(?:\*\*)?\s*-?(?:AND|OR|and|or)-?(?:\*\*)?\s*|\s*[;,.])\s*$"
)
# Every character `CONNECTOR_END` can match, but whitespace: a match lies in the run of these
# (and whitespace) that ends the text, so the search starts there rather than at every position.
_CONNECTOR_CHARS = frozenset(";,.*-ANDORandor")
_EXCLUSION = re.compile(
    r"\bnot (?:be )?(?:receiving|taking|using|used|given|administered|in combination)\b"
    r"|\bnot being (?:used|given|taken|administered)\b|\bconcurrent(?:ly)? use\b"
    r"|\bshould not be (?:administered|used|given)\b|\bin combination with\b[^.;]*\bnot\b",
    re.IGNORECASE,
)
_EXCLUSION_OBJECT = re.compile(
    r"\b(?:in combination with|concurrently with|concurrent use with|together with|with)\s+"
    r"(?P<what>[^.;:\[\]]{3,120})",
    re.IGNORECASE,
)
_PRESCRIBED = re.compile(
    r"\b(?:prescribed|ordered|recommended|managed)\b[^.;]{0,40}?\bby\b|\bin consultation with\b",
    re.IGNORECASE,
)
_SPECIALIST = re.compile(
    r"\b(?P<name>[a-z]+olog(?:ist|y)|dermatolog\w*|podiatrist|allergist|transplant center"
    r"|specialist in [a-z ]+?)s?\b",
    re.IGNORECASE,
)
_ON_THERAPY = re.compile(
    r"\b(?:established on|been on|receiving|continuous(?:ly)? on)\b[^.;]{0,40}?\bfor at least\s+"
    r"(?P<amount>\d+|one|two|three|four|six|twelve)\s+(?P<unit>days?|weeks?|months?|years?)",
    re.IGNORECASE,
)
_RESPONSE_OBJECTIVE = re.compile(r"beneficial clinical response|objective measure", re.I)
_RESPONSE_SYMPTOM = re.compile(r"improvement in at least one symptom", re.IGNORECASE)
_RESPONSE_OTHER = re.compile(
    r"\b(?:clinical response|positive response|disease (?:stability|improvement)|responded)\b",
    re.IGNORECASE,
)
_TRIED = re.compile(
    r"\b(?:has tried|have tried|tried|trial of|inadequate (?:clinical )?response|failed"
    r"|failure of|failure to|failure, contraindication|intoleran\w+ to|is currently taking"
    r"|previous treatment with|previously treated with)\b",
    re.IGNORECASE,
)
_TRIED_OBJECT = re.compile(
    r"\b(?:tried|trial of|response (?:of at least [^.;]*? )?(?:with|to)|failure of|failed"
    r"|failure(?:,? (?:or )?(?:contraindication|intolerance))*,? (?:or )?(?:adverse \w+ )?to"
    r"|previously treated with)\s+"
    r"(?:at least\s+)?(?:(?:one|ONE|two|TWO|1|2)\s+)?(?:of the following[^:]*:\s*)?"
    r"(?:or is currently taking\s+)?(?P<what>[^.;:]{3,100})",
    re.IGNORECASE,
)
# "has a documented contraindication or intolerance to X" (no trial named): documentation of
# why a trial was skipped, not a trial.
_ONLY_CONTRAINDICATED = re.compile(
    r"^(?!.*\b(?:tried|trial|failed|failure|inadequate)\b).*\b(?:contraindicat|intoleran)",
    re.IGNORECASE,
)
# a dose limit stated as a criterion ("Infliximab is dosed no higher than 10 mg/kg")
_DOSED = re.compile(
    r"\bis dosed (?:no higher than|up to|not to exceed|at)\s+(?=\d+(?:\.\d+)?\s*(?:mg|mcg|units?))",
    re.IGNORECASE,
)
_DOSE = re.compile(r"\b(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>mg/kg|mg|mcg|units?/kg|mL)\b", re.I)
_DIAGNOSIS = re.compile(
    r"\b(?:diagnosis of|diagnosed with|patient (?:has|had|with|developed(?= an? ))|members? with"
    r"|individuals? with"
    r"|patients? with)\s+(?:a |an |the )?(?:diagnosis of\s+)?(?P<what>[^.;:]{3,100})",
    re.IGNORECASE,
)
# "Myelodysplastic syndrome or myeloproliferative neoplasm is suspected (as evidenced by …)"
_SUSPECTED = re.compile(r"^(?P<what>[A-Za-z][^.;:]{2,100}?) (?:is|are) (?:strongly )?suspected\b")
_CLAUSE_END = re.compile(
    r"\s*(?:\(|\[|;|,\s*(?:unless|or was|or is|who|as )|\bunless\b|\bwho\b|\bwhen\b"
    r"|\bfor at least\b|\bfor a minimum of\b|\bfor (?:a period of )?(?:≥|>=)?\s*\d|\bapplied\b"
    r"|\bgiven for\b|\bfor the treatment\b|\bbeing considered\b|\bthat\b|\bAND\b|\bOR\b)",
)
_VERB_START = re.compile(
    r"^(?:patient|member|the|must|has|have|is|are|was|were|according|when|compared|if|"
    r"documentation|prescriber|request|provider|approve|note)\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "six": 6, "twelve": 12}


def strip_connector(text: str) -> tuple[str, str | None]:
    """The item without its trailing "; AND" / "; OR", and that connector ("and", "or")."""
    start = len(text)
    while start and (text[start - 1] in _CONNECTOR_CHARS or text[start - 1].isspace()):
        start -= 1
    match = CONNECTOR_END.search(text, start)
    if match is None:
        return text.strip(), None
    tail = match.group(0)
    word = re.search(r"and|or", tail, re.IGNORECASE)
    return text[: match.start()].strip(), word.group(0).lower() if word else None


def _clause(text: str) -> str:
    cut = _CLAUSE_END.search(text)
    text = text[: cut.start()] if cut else text
    return re.sub(r"\s+", " ", text).strip(" ,:-").lower()


def duration_as_written(amount: str, unit: str) -> tuple[str, int]:
    number = _NUMBER_WORDS.get(amount.lower()) or int(amount)
    unit = unit.lower().rstrip("s")
    per = {"day": 1.0, "week": 7.0, "month": 30.4375, "year": 365.0}[unit]
    return f"{number} {unit}{'s' if number != 1 else ''}", round(number * per)


def _age_leaves(text: str, evidence: Evidence) -> list[CriterionLeaf]:
    out = []
    for finding in remembered_age_limits(text):
        amount = finding.years if finding.amount is None else finding.amount
        unit = finding.unit
        out.append(
            CriterionLeaf(
                kind=AGE,
                value=f"{finding.op} {amount} {unit}",
                subject=finding.op[:1],
                text=text,
                op=finding.op,
                number=float(amount),
                unit=unit,
                evidence=evidence,
            )
        )
    return out


def specialties(text: str) -> tuple[str, ...]:
    found = set()
    for match in _SPECIALIST.finditer(text):
        name = match.group("name").lower()
        if name.startswith("transplant"):
            found.add("transplant")
        elif name.endswith("ology"):
            found.add(name[: -len("ology")] + "ologist")
        elif name.startswith("dermatolog"):
            found.add("dermatologist")
        else:
            found.add(name)
    return tuple(sorted(found))


def typed_leaves(text: str, *, evidence: Evidence, in_dosing: bool = False) -> list[CriterionLeaf]:
    """The typed leaves one item states (never empty for an item with words)."""
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return []
    if in_dosing:
        dose = _DOSE.search(text)
        if dose is None:
            return []
        shown = f"{number_text(float(dose.group('amount')))} {dose.group('unit').lower()}"
        return [
            CriterionLeaf(
                kind=DOSING,
                value=shown,
                subject="dose",
                text=text,
                number=float(dose.group("amount")),
                unit=dose.group("unit").lower(),
                evidence=evidence,
            )
        ]
    leaf = _single(text, evidence)
    if leaf is not None:
        return [leaf]
    dosed = _DOSED.search(text)
    if dosed:
        return typed_leaves(text[dosed.start() :], evidence=evidence, in_dosing=True)
    out: list[CriterionLeaf] = []
    out.extend(_age_leaves(text, evidence))
    if _PRESCRIBED.search(text):
        names = specialties(text)
        if names:
            out.append(
                CriterionLeaf(
                    kind=PRESCRIBER,
                    value=", ".join(names),
                    subject="prescriber",
                    text=text,
                    evidence=evidence,
                )
            )
    for threshold in remembered_thresholds(text):
        shown = f"{threshold.measure} {threshold.op} {number_text(threshold.value)}{threshold.unit}"
        out.append(
            CriterionLeaf(
                kind=THRESHOLD,
                value=shown,
                subject=f"{threshold.measure}|{threshold.op[:1]}",
                text=text,
                op=threshold.op,
                number=threshold.value,
                unit=threshold.unit,
                evidence=evidence,
            )
        )
    if _TRIED.search(text) and not _ONLY_CONTRAINDICATED.search(text):
        out.extend(_step_leaves(text, evidence))
    suspected = _SUSPECTED.match(text)
    if not out and suspected:
        what = _clause(suspected.group("what")) + " (suspected)"
        out.append(
            CriterionLeaf(kind=DIAGNOSIS, value=what, subject=what, text=text, evidence=evidence)
        )
    if not out:
        diagnosis = _DIAGNOSIS.search(text)
        if (
            diagnosis
            and not re.search(r"\btried\b|\bresponse\b", text, re.IGNORECASE)
            and not _ONLY_CONTRAINDICATED.search(text)
        ):
            what = _clause(diagnosis.group("what"))
            if what:
                out.append(
                    CriterionLeaf(
                        kind=DIAGNOSIS, value=what, subject=what, text=text, evidence=evidence
                    )
                )
    if not out:
        out.append(_documentation(text, evidence))
    return out


# `typed_leaves` remembered by text, evidence and branch: a payer's items recur from policy to
# policy, under the same section (`Evidence` and `CriterionLeaf` are frozen: calls share them).
_remembered_leaves = functools.lru_cache(maxsize=memo.SIZE)(
    lambda text, evidence, in_dosing: tuple(
        typed_leaves(text, evidence=evidence, in_dosing=in_dosing)
    )
)


def remembered_leaves(
    text: str, *, evidence: Evidence, in_dosing: bool = False
) -> list[CriterionLeaf]:
    """`typed_leaves`, remembered for short texts (`diffing.extract.memo`)."""
    if len(text) > memo.MAX_CHARS or len(evidence.sentence) > memo.MAX_CHARS:
        return typed_leaves(text, evidence=evidence, in_dosing=in_dosing)
    return list(_remembered_leaves(text, evidence, in_dosing))


def _single(text: str, evidence: Evidence) -> CriterionLeaf | None:
    """Items that are one thing whatever else they mention: an exclusion, time on therapy, a
    response."""
    if _EXCLUSION.search(text):
        # examples in brackets ("(e.g., Adbry, Ebglyss)") are not what is excluded
        match = _EXCLUSION_OBJECT.search(re.sub(r"\s*[(\[][^)\]]*[)\]]", "", text))
        what = _clause(match.group("what")) if match else _clause(text)
        return CriterionLeaf(kind=EXCLUSION, value=what, subject=what, text=text, evidence=evidence)
    on = _ON_THERAPY.search(text)
    if on:
        shown, days = duration_as_written(on.group("amount"), on.group("unit"))
        return CriterionLeaf(
            kind=ON_THERAPY,
            value=shown,
            subject="on therapy",
            text=text,
            days=days,
            duration_text=shown,
            evidence=evidence,
        )
    if _RESPONSE_OBJECTIVE.search(text):
        value = "objective measure"
    elif _RESPONSE_SYMPTOM.search(text):
        value = "symptom improvement"
    elif (
        _RESPONSE_OTHER.search(text)
        and not _TRIED.search(text)
        and not re.search(r"\b(?:not|never) (?:responded|had a response)", text, re.I)
    ):
        value = _documentation(text, evidence).value
    else:
        return None
    return CriterionLeaf(kind=RESPONSE, value=value, subject=value, text=text, evidence=evidence)


def _step_leaves(text: str, evidence: Evidence) -> list[CriterionLeaf]:
    durations = [d for d in remembered_durations(text) if d.kind is DurationKind.MINIMUM]
    duration = durations[0] if durations else None
    shown = re.sub(r"\s+", " ", duration.text).strip() if duration else None
    if shown:
        shown = re.sub(r"^(?:at least|a minimum of|minimum of|≥|>=)\s*", "", shown, flags=re.I)
    count_match = re.search(r"\b(?:at least\s+)?(one|two|three|ONE|TWO|THREE|all|ALL)\b", text)
    count: int | None = None
    if count_match and count_match.group(1).lower() != "all":
        count = _NUMBER_WORDS.get(count_match.group(1).lower())
    obj = _TRIED_OBJECT.search(text)
    what = _clause(obj.group("what")) if obj else ""
    if not what:
        # The extractor's reading only when the item's own words name nothing tried.
        findings, _lead = find_steps(text)
        what = findings[0].prerequisite if findings else ""
    if not what:
        return []
    return [
        CriterionLeaf(
            kind=STEP_THERAPY,
            value=what + (f" for {shown}" if shown else ""),
            subject=what,
            text=text,
            days=duration.days if duration else None,
            duration_text=shown,
            count=count,
            evidence=evidence,
        )
    ]


def _documentation(text: str, evidence: Evidence) -> CriterionLeaf:
    words = re.sub(
        r"^(?:must provide documentation of|documentation of|patient has|patient is)\s+",
        "",
        text,
        flags=re.IGNORECASE,
    )
    value = _clause(words) or text.lower()
    value = " ".join(value.split()[:14])
    return CriterionLeaf(
        kind=DOCUMENTATION, value=value, subject=value, text=text, evidence=evidence
    )


def is_bare_term(text: str) -> bool:
    """A list item that is only a name ("Acute myeloid leukemia"): a diagnosis in an "any of
    the following" list of conditions."""
    words = text.split()
    return (
        0 < len(words) <= 12
        and not _VERB_START.match(text)
        and not re.search(r"\b(?:must|has|have|is|are|was|tried|approve)\b", text, re.IGNORECASE)
        # a finding ("Sacroiliitis reported on MRI", "CRP elevated …") is documented, not a name
        and not _FINDING.search(text)
    )


_FINDING = re.compile(
    r"\b(?:reported|elevated|documented|confirmed|measured|demonstrated|shown)"
    r" (?:on|by|beyond|in)\b",
    re.IGNORECASE,
)


def step_leaf(text: str, evidence: Evidence) -> CriterionLeaf:
    """A therapy named in a list of therapies tried ("• Azathioprine (Imuran)")."""
    value = _clause(text) or text.lower()
    return CriterionLeaf(
        kind=STEP_THERAPY, value=value, subject=value, text=text, count=1, evidence=evidence
    )


def diagnosis_leaf(text: str, evidence: Evidence) -> CriterionLeaf:
    value = _clause(text) or text.lower()
    return CriterionLeaf(kind=DIAGNOSIS, value=value, subject=value, text=text, evidence=evidence)
