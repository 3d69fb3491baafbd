"""How severe a change is for a billing team. The rules, in one place:

high   covered code removed (CPT/HCPCS or ICD-10 covered): claims with it start to deny
high   non-covered code added (ICD-10 non-covered): a diagnosis newly excluded
high   document retired, or a retirement date set where there was none
medium covered code added or non-covered code removed: coverage widened
medium modifier added or removed; code moved to another group (changes how to code a claim)
medium status changed (other than retirement); upcoming version (future effective date)
medium effective date changed; retirement date changed or cleared
medium new document after the source's baseline run
medium criteria text changed with requirement language ("must", "required", "not covered" …)
low    criteria text changed otherwise (wording only); title changed; notice-period dates
"""

from __future__ import annotations

import re

from diffing.model import ChangeKind, CodeRef, CodeSystem, CoverageFlag, Severity

REQUIREMENT_LANGUAGE = re.compile(
    r"\b(must|shall|required?|requires|requirement|not (?:be )?covered|non-?covered|"
    r"not (?:considered )?reasonable and necessary|limited to|only (?:when|if)|prior "
    r"authori[sz]ation|contraindicat\w*|at least|no more than|minimum|maximum)\b",
    re.IGNORECASE,
)


def code_change_severity(kind: ChangeKind, code: CodeRef) -> Severity:
    if code.system is CodeSystem.HCPCS_MODIFIER:
        return Severity.MEDIUM
    restricts = (kind is ChangeKind.CODE_REMOVED and code.flag is CoverageFlag.COVERED) or (
        kind is ChangeKind.CODE_ADDED and code.flag is CoverageFlag.NONCOVERED
    )
    return Severity.HIGH if restricts else Severity.MEDIUM


def date_change_severity(field: str, before: object, after: object) -> Severity:
    if field == "retirement_date":
        return Severity.HIGH if before is None and after is not None else Severity.MEDIUM
    if field == "effective_date":
        return Severity.MEDIUM
    return Severity.LOW


def text_change_severity(removed: list[str], added: list[str]) -> Severity:
    changed = removed + added
    if any(REQUIREMENT_LANGUAGE.search(sentence) for sentence in changed):
        return Severity.MEDIUM
    return Severity.LOW
