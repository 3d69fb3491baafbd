"""Flatten one document version's `Criteria` into rule rows a machine can apply. Pure.

One row per fact: a covered or non-covered code, a code pair (an ICD-10 covered group of an
Article supports a CPT/HCPCS code), a step-therapy trial, a prior-authorization requirement, an
approval period, a severity threshold, an age limit, a prescriber specialty. Each row carries
the payer (or the CMS contractors), the document, its version, the version's own effective
date and retirement date, and its evidence (sentence, page, section).

Rows describe one version and never change. When a version stops applying because a later
one takes effect is a fact about the *set* of versions known at some moment, so it is worked
out when rules are queried (`monitor.rules`), not stored here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from itertools import groupby
from operator import attrgetter
from typing import Any

from diffing.cms_codes import sorted_codes
from diffing.extract.steps import remembered_steps
from diffing.model import CodeRef, CodeSystem, CoverageFlag, Criteria, Evidence
from diffing.tree.nodes import CriteriaTree, CriterionLeaf, tree_of

NATIONAL = "CMS (national)"  # the "payer" of an NCD, which has no contractor


class RuleKind(StrEnum):
    COVERED_CODE = "covered_code"
    NONCOVERED_CODE = "noncovered_code"
    CODE_PAIR = "code_pair"
    STEP_THERAPY = "step_therapy"
    PRIOR_AUTH = "prior_auth"
    APPROVAL_PERIOD = "approval_period"
    THRESHOLD = "threshold"
    AGE_LIMIT = "age_limit"
    PRESCRIBER_SPECIALTY = "prescriber_specialty"
    EXCLUSION = "exclusion"  # from a criteria tree: "must not be receiving …"


@dataclass(frozen=True, kw_only=True, slots=True)
class RuleRow:
    """One applicable fact of one document version.

    Which columns are set depends on `kind`: codes set `code_system`, `code` and `code_group`;
    a code pair sets `code` (the CPT/HCPCS code) and `code_group` (the ICD-10 covered group
    whose codes support it); step therapy sets `subject` (the prerequisite), `days` and
    `count`; thresholds `subject` (the measure), `op`, `value`, `unit`; approval periods
    `subject` (initial or reauthorization) and `days`; age limits `op` and `value` (years);
    a specialty `subject`; prior authorization `required`.
    """

    kind: RuleKind
    payer: str
    document: str
    version: str | None
    effective_from: dt.date | None
    retired_on: dt.date | None
    text: str
    code_system: str | None = None
    code: str | None = None
    code_group: int | None = None
    drug: str | None = None
    indication: str | None = None
    subject: str | None = None
    op: str | None = None
    value: float | None = None
    unit: str | None = None
    days: int | None = None
    count: int | None = None
    required: bool | None = None
    evidence: str | None = None
    evidence_page: int | None = None
    evidence_section: str | None = None
    # From the criteria tree: the branch (initial, continuation, dosing, exclusion) and the
    # leaf's place in the policy's logic ("atopic dermatitis/initial/all[2]/any[1]").
    branch: str | None = None
    tree_path: str | None = None


class _CodeRowBuilder:
    """`RuleRow`'s slots, not frozen: a code's row is built here and becomes a `RuleRow` by
    ``__class__`` assignment (CPython allows it between classes of the same slot layout and
    raises TypeError on any other, so a field added to `RuleRow` fails loudly here). A full CMS
    baseline makes half a million code rows; RuleRow's generated ``__init__`` (one
    ``object.__setattr__`` per field, 24 fields) was most of `flatten`'s time, this is about
    eight times quicker. The fields a code row leaves unset are None, as RuleRow's defaults."""

    __slots__ = RuleRow.__slots__

    def __init__(
        self,
        kind: RuleKind,
        payer: str,
        document: str,
        version: str | None,
        effective_from: dt.date | None,
        retired_on: dt.date | None,
        text: str,
        code_system: str,
        code: str,
        code_group: int | None,
        drug: str | None,
        evidence_section: str,
    ) -> None:
        self.kind = kind
        self.payer = payer
        self.document = document
        self.version = version
        self.effective_from = effective_from
        self.retired_on = retired_on
        self.text = text
        self.code_system = code_system
        self.code = code
        self.code_group = code_group
        self.drug = drug
        self.indication = None
        self.subject = None
        self.op = None
        self.value = None
        self.unit = None
        self.days = None
        self.count = None
        self.required = None
        self.evidence = None
        self.evidence_page = None
        self.evidence_section = evidence_section
        self.branch = None
        self.tree_path = None


def rule_payer(criteria: Criteria) -> str:
    """Who applies the rules: the payer, else the MAC contractors, else CMS itself (NCDs)."""
    if criteria.payer:
        return criteria.payer
    if criteria.contractors:
        return "; ".join(criteria.contractors)
    return NATIONAL


def governed_drugs(criteria: Criteria) -> tuple[str, ...]:
    """The drugs a policy governs (not the ones it names as prerequisites or exclusions): those
    its step therapy, PA and approval periods are about, in order of first appearance; else the
    only drug it mentions."""
    seen: dict[str, None] = {}
    named = [
        *(item.drug for item in criteria.step_therapy),
        *(item.drug for item in criteria.prior_auth),
        *(item.drug for item in criteria.approval_periods),
    ]
    for drug in named:
        if drug:
            seen.setdefault(drug, None)
    if not seen and len(criteria.drugs) == 1:
        seen[criteria.drugs[0].name] = None
    return tuple(seen)


def days_text(days: int) -> str:
    """56 -> "8 weeks", 91 -> "3 months", 365 -> "12 months", 10 -> "10 days" (months as the
    extractor counts them: round(N * 30.4375) days)."""
    months = round(days / 30.4375)
    if months >= 1 and round(months * 30.4375) == days:
        return f"{months} month{'s' if months != 1 else ''}"
    if days % 7 == 0:
        weeks = days // 7
        return f"{weeks} week{'s' if weeks != 1 else ''}"
    return f"{days} day{'s' if days != 1 else ''}"


def number_text(value: float) -> str:
    return f"{value:g}"


def _evidence(evidence: Evidence | None) -> dict[str, object]:
    if evidence is None:
        return {}
    return {
        "evidence": evidence.sentence,
        "evidence_page": evidence.page,
        "evidence_section": evidence.section,
    }


# (system, flag) -> rule kind, code_system column, code table (CodeRef.table), is a modifier
_CODE_SHAPE: dict[tuple[CodeSystem, CoverageFlag], tuple[RuleKind, str, str, bool]] = {
    (system, flag): (
        RuleKind.COVERED_CODE if flag is CoverageFlag.COVERED else RuleKind.NONCOVERED_CODE,
        system.value,
        CodeRef(system=system, flag=flag, code="").table,
        system is CodeSystem.HCPCS_MODIFIER,
    )
    for system in CodeSystem
    for flag in CoverageFlag
}

_SHAPE_OF = attrgetter("system", "flag")


@dataclass(frozen=True, slots=True)
class CodeRun:
    """Consecutive code rows of one version that share a kind, code system, table and drug:
    what a code's row holds beyond the code itself (its `code`, `code_group` and, as `text`,
    its description). Bulk writers build a run's rows from these without a `RuleRow` each."""

    kind: RuleKind
    code_system: str
    table: str  # the row's evidence_section
    drug: str | None
    codes: tuple[CodeRef, ...]


def code_runs(criteria: Criteria) -> list[CodeRun]:
    """The code rows `flatten` starts with, as runs (codes sorted; see `CodeRun`)."""
    drugs = governed_drugs(criteria)
    only_drug = drugs[0] if len(drugs) == 1 else None
    runs: list[CodeRun] = []
    # Grouped in C (the key tuples compare as strings); what depends only on the code's
    # system and flag is looked up once per run.
    for (system_, flag), codes in groupby(sorted_codes(criteria.codes), key=_SHAPE_OF):
        kind, system, table, modifier = _CODE_SHAPE[system_, flag]
        runs.append(CodeRun(kind, system, table, None if modifier else only_drug, tuple(codes)))
    return runs


def flatten(criteria: Criteria) -> tuple[RuleRow, ...]:
    """Every rule row of one version, in a stable order (codes sorted, criteria in order)."""
    payer = rule_payer(criteria)
    rows: list[RuleRow] = []
    # A full CMS baseline flattens half a million codes: their rows are built by
    # _CodeRowBuilder, the codes ordered once per version (`sorted_codes`: the order CodeRef's
    # own comparison gives).
    document, version = criteria.document_id, criteria.version
    effective, retired = criteria.effective_date, criteria.retirement_date
    add = rows.append
    for run in code_runs(criteria):
        kind, system, table, drug = run.kind, run.code_system, run.table, run.drug
        for code in run.codes:
            built = _CodeRowBuilder(
                kind,
                payer,
                document,
                version,
                effective,
                retired,
                code.description,
                system,
                code.code,
                code.group,
                drug,
                table,
            )
            built.__class__ = RuleRow  # type: ignore[assignment]
            add(built)  # type: ignore[arg-type]
    rows.extend(fact_rows(criteria))
    return tuple(rows)


def fact_rows(criteria: Criteria) -> list[RuleRow]:
    """The rows `flatten` gives after the codes: code pairs, then the criteria's facts."""
    payer = rule_payer(criteria)

    def row(kind: RuleKind, text: str, **fields: Any) -> RuleRow:
        return RuleRow(
            kind=kind,
            text=text,
            payer=payer,
            document=criteria.document_id,
            version=criteria.version,
            effective_from=criteria.effective_date,
            retired_on=criteria.retirement_date,
            **fields,
        )

    drugs = governed_drugs(criteria)
    only_drug = drugs[0] if len(drugs) == 1 else None
    rows: list[RuleRow] = []
    for pair in sorted(criteria.code_pairs):
        rows.append(
            row(
                RuleKind.CODE_PAIR,
                code_system=CodeSystem.HCPCS.value,
                code=pair.code,
                code_group=pair.icd10_group,
                text=f"ICD-10 covered group {pair.icd10_group} supports {pair.code}",
                evidence=pair.paragraph,
                evidence_section="icd10_covered_group",
            )
        )
    tree = tree_of(criteria)
    if tree is not None and not tree.is_empty:
        rows.extend(_prior_auth_rows(criteria, row, only_drug))
        rows.extend(_tree_rows(tree, row, only_drug))
        return rows
    for step in criteria.step_therapy:
        duration = (
            f" for at least {days_text(step.min_duration_days)}" if step.min_duration_days else ""
        )
        count = f"{step.count_required} of " if step.count_required > 1 else ""
        rows.append(
            row(
                RuleKind.STEP_THERAPY,
                drug=step.drug or only_drug,
                indication=step.indication,
                subject=step.prerequisite,
                days=step.min_duration_days,
                count=step.count_required,
                text=f"trial of {count}{step.prerequisite}{duration}",
                **_evidence(step.evidence),
            )
        )
    rows.extend(_prior_auth_rows(criteria, row, only_drug))
    for period in criteria.approval_periods:
        rows.append(
            row(
                RuleKind.APPROVAL_PERIOD,
                drug=period.drug or only_drug,
                indication=period.indication,
                subject=period.phase,
                days=period.days,
                text=f"{period.phase} approval up to {days_text(period.days)}",
                **_evidence(period.evidence),
            )
        )
    for threshold in criteria.thresholds:
        rows.append(
            row(
                RuleKind.THRESHOLD,
                drug=only_drug,
                indication=threshold.indication,
                subject=threshold.measure,
                op=threshold.op,
                value=threshold.value,
                unit=threshold.unit,
                text=threshold_text(
                    threshold.measure, threshold.op, threshold.value, threshold.unit
                ),
                **_evidence(threshold.evidence),
            )
        )
    for age in criteria.age_limits:
        rows.append(
            row(
                RuleKind.AGE_LIMIT,
                drug=only_drug,
                indication=age.indication,
                op=age.op,
                value=float(age.years),
                unit="years",
                text=f"age {age.op} {age.shown}",
                **_evidence(age.evidence),
            )
        )
    for specialty in criteria.prescriber_specialties:
        rows.append(
            row(
                RuleKind.PRESCRIBER_SPECIALTY,
                drug=only_drug,
                subject=specialty,
                text=f"prescribed by or in consultation with a {specialty}",
            )
        )
    return rows


def _prior_auth_rows(
    criteria: Criteria, row: Callable[..., RuleRow], only_drug: str | None
) -> list[RuleRow]:
    return [
        row(
            RuleKind.PRIOR_AUTH,
            drug=pa.drug or only_drug,
            required=pa.required,
            text="prior authorization required" if pa.required else "no prior authorization",
            **_evidence(pa.evidence),
        )
        for pa in criteria.prior_auth
    ]


_TREE_KINDS = {
    "step_therapy": RuleKind.STEP_THERAPY,
    "threshold": RuleKind.THRESHOLD,
    "age": RuleKind.AGE_LIMIT,
    "prescriber": RuleKind.PRESCRIBER_SPECIALTY,
    "exclusion": RuleKind.EXCLUSION,
}


def _tree_rows(tree: CriteriaTree, row: Callable[..., RuleRow], drug: str | None) -> list[RuleRow]:
    """Rule rows from the criteria tree: each typed leaf a machine can apply, with its
    indication, branch and place in the policy's logic; each branch's approval duration."""
    from diffing.tree.render import leaf_text

    out: list[RuleRow] = []
    for placed in tree.placed():
        leaf = placed.leaf
        kind = _TREE_KINDS.get(leaf.kind)
        if kind is None:
            continue  # diagnoses and documentation: words for a person, not a rule to apply
        indication = placed.indication if placed.indication != "general" else None
        fields: dict[str, Any] = {"subject": leaf.subject}
        if kind is RuleKind.STEP_THERAPY:
            fields.update(subject=_prerequisite(leaf), days=leaf.days, count=leaf.count or 1)
        elif kind is RuleKind.THRESHOLD:
            fields.update(
                subject=leaf.subject.split("|")[0], op=leaf.op, value=leaf.number, unit=leaf.unit
            )
        elif kind is RuleKind.AGE_LIMIT:
            fields.update(subject=None, op=leaf.op, value=leaf.number, unit=leaf.unit or "years")
        elif kind is RuleKind.PRESCRIBER_SPECIALTY:
            fields.update(subject=leaf.value)
        out.append(
            row(
                kind,
                drug=drug,
                indication=indication,
                text=leaf_text(leaf),
                branch=placed.phase,
                tree_path="/".join(leaf.path),
                **fields,
                **_evidence(leaf.evidence),
            )
        )
    for block in tree.indications:
        for branch in block.branches:
            if branch.approval_days is None:
                continue
            out.append(
                row(
                    RuleKind.APPROVAL_PERIOD,
                    drug=drug,
                    indication=block.name if block.name != "general" else None,
                    subject="initial" if branch.phase == "initial" else "reauthorization",
                    days=branch.approval_days,
                    text=f"{branch.phase} approval up to {branch.approval_text}",
                    branch=branch.phase,
                    tree_path=f"{block.name}/{branch.phase}",
                    **_evidence(branch.evidence),
                )
            )
    return out


def _prerequisite(leaf: CriterionLeaf) -> str:
    """The canonical prerequisite a machine can match ("topical corticosteroid"), else the
    policy's words."""
    findings, _lead = remembered_steps(leaf.text)  # the same leaves recur across policies
    words = set(leaf.subject.split())
    for finding in findings:
        if set(finding.prerequisite.split()) <= words:
            return finding.prerequisite
    return findings[0].prerequisite if len(findings) == 1 else leaf.subject


def threshold_text(measure: str, op: str, value: float, unit: str) -> str:
    return f"{measure} {op} {number_text(value)}{unit}"
