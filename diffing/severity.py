"""How severe a change is for a billing team. The rules, in one place:

high   covered code removed (CPT/HCPCS or ICD-10 covered): claims with it start to deny
high   non-covered code added (ICD-10 non-covered): a diagnosis newly excluded
high   code moved from a covered list to the non-covered list of the same code system
       (`code_coverage_changed`): claims with it start to deny, like a covered code removed
high   document retired, or a retirement date set where there was none
medium covered code added or non-covered code removed: coverage widened
medium code moved from the non-covered list to a covered list (`code_coverage_changed`): coverage
       widened, scored like a covered code added (nothing that was paid starts to deny)
medium modifier added or removed; code moved to another group (changes how to code a claim)
medium status changed (other than retirement); upcoming version (future effective date)
medium effective date changed; retirement date changed or cleared
medium new document after the source's baseline run
medium criteria text changed with requirement language ("must", "required", "not covered" …)
low    criteria text changed otherwise (wording only); title changed; notice-period dates

Payer criteria:
high   step-therapy trial longer or more agents; new step-therapy requirement
high   prior authorization newly required; a new threshold; a stricter threshold
high   prescriber specialty required where none was
medium step therapy shorter or removed; PA dropped; threshold looser or removed
medium approval period changed; age limit changed; specialties changed; drug added/removed
noise  new bytes whose criteria and text are identical (re-print, stamp, layout): kept, not alerted

PA checklists (`checklist_changed`, written by the publisher beside the criteria changes):
high   a new checklist item, or an item made stricter (longer or more trials, a stricter
       threshold or age, fewer qualifying diagnosis codes, fewer specialties, a shorter
       approval): a request assembled from the old checklist is now incomplete
medium an item removed or loosened, or changed in a way that is neither stricter nor looser

MAC bulletins:
medium new bulletin that names an LCD/Article id or a CPT/HCPCS/ICD-10 code (it announces
       something a biller acts on: a coverage or coding change, a billing instruction)
low    new bulletin naming none of them (webinars, office closures, general news); an edited
       bulletin is scored like any text change above
"""

from __future__ import annotations

import re

from diffing.model import ChangeKind, CodeRef, CodeSystem, CoverageFlag, Severity, Threshold

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


def coverage_change_severity(before: CodeRef, after: CodeRef) -> Severity:
    """The same code moved from `before`'s list to `after`'s: high when it is no longer covered,
    medium when it became covered (as for a covered code removed / added)."""
    if after.flag is CoverageFlag.NONCOVERED and before.flag is not CoverageFlag.NONCOVERED:
        return Severity.HIGH
    return Severity.MEDIUM


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


def _restricts(before: float | None, after: float | None, *, higher_is_stricter: bool) -> bool:
    if before is None or after is None:
        return after is not None
    return after > before if higher_is_stricter else after < before


def step_therapy_severity(before: int | None, after: int | None) -> Severity:
    """A longer or larger prerequisite trial is high: PA requests start to fail."""
    return Severity.HIGH if _restricts(before, after, higher_is_stricter=True) else Severity.MEDIUM


def approval_period_severity(before: int | None, after: int | None) -> Severity:
    """A shorter approval means earlier reauthorization; any change moves renewal dates."""
    return Severity.MEDIUM


def threshold_severity(before: Threshold, after: Threshold) -> Severity:
    """Stricter severity thresholds (higher minimums, lower maximums) are high."""
    if before.op[:1] != after.op[:1]:
        return Severity.MEDIUM
    stricter = _restricts(before.value, after.value, higher_is_stricter=before.op.startswith(">"))
    return Severity.HIGH if stricter else Severity.MEDIUM


def bulletin_severity(*, documents: int, codes: int) -> Severity:
    """A new MAC bulletin: medium when it names coverage documents or codes, else low."""
    return Severity.MEDIUM if documents or codes else Severity.LOW


def checklist_change_severity(action: str, stricter: bool | None) -> Severity:
    """`action` is "added", "removed" or "changed"; `stricter` says whether the item now asks
    more of a PA request (None: neither more nor less can be said)."""
    if action == "added" or (action == "changed" and stricter):
        return Severity.HIGH
    return Severity.MEDIUM
