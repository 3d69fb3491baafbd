"""FHIR R4 views of what the store holds, built and validated with `fhir.resources` (R4B models):
a PA checklist version as a Questionnaire shaped after Da Vinci DTR, rule rows as coverage answers
and as Da Vinci CRD's `coverage-information` extension. The builders are pure (records in,
resources out); `questionnaire_for` and `find_coverage` read what they need from the store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.questionnaire import Questionnaire

from diffing.checklist import Checklist, ChecklistItem
from monitor.store.checklists import (
    ChecklistRecord,
    ChecklistVersionRecord,
    checklist_versions,
    find_checklists,
)
from monitor.store.core import Store
from monitor.store.rules import MAX_LIMIT, RuleRecord, query_rules

ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
UCUM = "http://unitsofmeasure.org"
USAGE_CONTEXT = "http://terminology.hl7.org/CodeSystem/usage-context-type"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
QUESTIONNAIRE_UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
CRD_COVERAGE_INFORMATION = (
    "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
)
FHIR_JSON = "application/fhir+json"

# Which answer a checklist item asks for. Attestations (documentation, prescriber, exclusion,
# response …) are booleans; numbers are asked for where the policy states a limit.
_NUMBER_CATEGORIES = {"threshold", "age"}
_DURATION_CATEGORIES = {"step_therapy", "on_therapy"}
_INFORMATION_CATEGORIES = {"approval", "renewal"}
_BRANCH_TEXT = {
    "initial": "Initial authorization",
    "continuation": "Continuation (reauthorization)",
    "dosing": "Dosing",
    "exclusion": "Exclusions",
}


def code_system_uri(code_system: str | None, code: str) -> str:
    """The FHIR system URI of a stored code: ICD-10-CM, CPT (five digits) or HCPCS Level II."""
    if code_system == "icd10":
        return ICD10_CM
    return CPT if re.fullmatch(r"\d{4}[0-9A-Z]", code) else HCPCS


def extension_base(public_url: str) -> str:
    """Where this service's own StructureDefinitions and CodeSystems are named."""
    return f"{public_url.rstrip('/')}/fhir"


def questionnaire_url(public_url: str, checklist_id: int) -> str:
    """The canonical URL of a checklist's Questionnaire (every version shares it)."""
    return f"{extension_base(public_url)}/Questionnaire/checklist-{checklist_id}"


# -- Questionnaire ----------------------------------------------------------------------------


def _evidence_extension(base: str, item: ChecklistItem) -> list[dict[str, Any]]:
    if item.evidence is None:
        return []
    parts: list[dict[str, Any]] = [{"url": "sentence", "valueString": item.evidence.sentence}]
    if item.evidence.page is not None:
        parts.append({"url": "page", "valueInteger": item.evidence.page})
    if item.evidence.section:
        parts.append({"url": "section", "valueString": item.evidence.section})
    return [{"url": f"{base}/StructureDefinition/evidence", "extension": parts}]


def _limit_extensions(
    base: str,
    op: str | None,
    value: float,
    unit: str | None,
    integer: bool,
    *,
    answer_limit: bool = True,
) -> list[dict[str, Any]]:
    """The limit as this service's `criterion-limit` (comparator, value, unit), which also says
    strict `>` / `<`, and, for a question (`answer_limit`), as the standard min/maxValue the
    answer must meet (inclusive limits only)."""
    key = "valueInteger" if integer else "valueDecimal"
    number: int | float = int(value) if integer else value
    out: list[dict[str, Any]] = []
    if answer_limit and op == ">=":
        out.append({"url": MIN_VALUE, key: number})
    elif answer_limit and op == "<=":
        out.append({"url": MAX_VALUE, key: number})
    parts: list[dict[str, Any]] = [{"url": "value", key: number}]
    if op:
        parts.insert(0, {"url": "comparator", "valueCode": op})
    if unit:
        parts.append({"url": "unit", "valueString": unit})
    out.append({"url": f"{base}/StructureDefinition/criterion-limit", "extension": parts})
    return out


def _unit(item: ChecklistItem) -> tuple[str, str] | None:
    """(UCUM code, shown) of the number asked for, where the item says it."""
    if item.category == "age":
        return ("a", "years")
    if item.category in _DURATION_CATEGORIES:
        return ("d", "days")
    if "%" in item.requirement:
        return ("%", "%")
    return None


def _question(base: str, number: int, item: ChecklistItem) -> dict[str, Any]:
    """One checklist item as one Questionnaire item (linkId `item-N`, N its checklist number)."""
    out: dict[str, Any] = {
        "linkId": f"item-{number}",
        "prefix": f"{number}.",
        "text": item.text,
        "code": [{"system": f"{base}/CodeSystem/criterion-kind", "code": item.category}],
    }
    extensions = _evidence_extension(base, item)
    if item.category == "diagnosis" and item.codes:
        out.update(
            type="choice",
            required=True,
            answerOption=[
                {"valueCoding": {"system": ICD10_CM, "code": code}} for code in item.codes
            ],
        )
    elif item.alternatives:
        out.update(
            type="choice",
            required=True,
            answerOption=[{"valueString": alternative} for alternative in item.alternatives],
        )
    elif item.category in _INFORMATION_CATEGORIES:
        out["type"] = "display"  # what the payer grants, not something to answer
        if item.days is not None:
            extensions += _limit_extensions(base, "<=", item.days, "days", True, answer_limit=False)
    elif item.category in _DURATION_CATEGORIES and item.days:
        out.update(type="integer", required=True, text=f"{item.text}: days of trial")
        extensions += _limit_extensions(base, ">=", item.days, "days", True)
    elif item.category in _NUMBER_CATEGORIES and item.value is not None:
        integer = float(item.value).is_integer()
        out.update(type="integer" if integer else "decimal", required=True)
        extensions += _limit_extensions(base, item.op, item.value, None, integer)
    else:
        out.update(type="boolean", required=True)
    unit = _unit(item)
    if unit and out["type"] in ("integer", "decimal"):
        extensions.append(
            {"url": QUESTIONNAIRE_UNIT, "valueCoding": {"system": UCUM, "code": unit[0]}}
        )
        for part in extensions:
            if part["url"].endswith("/criterion-limit") and not any(
                p["url"] == "unit" for p in part["extension"]
            ):
                part["extension"].append({"url": "unit", "valueString": unit[1]})
    if extensions:
        out["extension"] = extensions
    return out


def _items(base: str, checklist: Checklist) -> list[dict[str, Any]]:
    """Top-level items: the diagnosis, then one group per indication, inside it one group per
    branch (initial, continuation …), inside that nested all-of groups (item depth > 0)."""
    top: list[dict[str, Any]] = []
    indications: dict[str, dict[str, Any]] = {}
    branches: dict[tuple[str, str], dict[str, Any]] = {}
    nested: dict[str, dict[str, Any]] = {}
    for number, item in enumerate(checklist.items, 1):
        question = _question(base, number, item)
        if item.branch is None and item.indication is None:
            top.append(question)
            continue
        name = item.indication or "All indications"
        if name not in indications:
            indications[name] = {
                "linkId": f"indication-{len(indications) + 1}",
                "type": "group",
                "text": name,
                "item": [],
            }
            top.append(indications[name])
        block = indications[name]
        branch = item.branch or "general"
        if (name, branch) not in branches:
            branches[name, branch] = {
                "linkId": f"{block['linkId']}.{branch}",
                "type": "group",
                "text": _BRANCH_TEXT.get(branch, branch.capitalize()),
                "item": [],
            }
            block["item"].append(branches[name, branch])
        parent = branches[name, branch]
        if item.depth > 0 and item.group:
            if item.group not in nested:
                nested[item.group] = {
                    "linkId": f"{parent['linkId']}.group-{len(nested) + 1}",
                    "type": "group",
                    "text": "All of the following",
                    "item": [],
                }
                parent["item"].append(nested[item.group])
            parent = nested[item.group]
        parent["item"].append(question)
    return top


@dataclass(frozen=True, kw_only=True)
class QuestionnaireStatus:
    """What the caller knows about the version's place among its checklist's versions."""

    retired: bool = False  # a later version supersedes it
    ends: dt.date | None = None  # the later version's effective date


def checklist_questionnaire(
    record: ChecklistRecord,
    *,
    public_url: str,
    status: QuestionnaireStatus = QuestionnaireStatus(),
    procedure_codes: Iterable[tuple[str | None, str]] = (),
) -> Questionnaire:
    """One checklist version as a validated Questionnaire (DTR-style). `procedure_codes` are
    (stored code system, code) pairs the policy covers, shown in `useContext`."""
    checklist = record.checklist
    if checklist is None:
        raise ValueError(f"checklist {record.id} version {record.version.number} is withdrawn")
    base = extension_base(public_url)
    url = questionnaire_url(public_url, record.id)
    use_context: list[dict[str, Any]] = [
        {
            "code": {"system": USAGE_CONTEXT, "code": "focus"},
            "valueCodeableConcept": {
                "text": f"{checklist.subject} ({checklist.label})"
                if checklist.subject_kind == "drug" and checklist.label != checklist.subject
                else checklist.subject
            },
        }
    ]
    diagnoses = sorted({code for item in checklist.items if item.category == "diagnosis"
                        for code in item.codes})  # fmt: skip
    procedures = sorted({(code_system_uri(s, c), c) for s, c in procedure_codes if s != "icd10"})
    if diagnoses or procedures:
        codings = [{"system": ICD10_CM, "code": code} for code in diagnoses] + [
            {"system": system, "code": code} for system, code in procedures
        ]
        use_context.append(
            {
                "code": {"system": USAGE_CONTEXT, "code": "focus"},
                "valueCodeableConcept": {"coding": codings, "text": "Codes the policy covers"},
            }
        )
    period: dict[str, str] = {}
    if record.version.effective_date:
        period["start"] = record.version.effective_date.isoformat()
    if status.ends:
        period["end"] = status.ends.isoformat()
    body: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": f"checklist-{record.id}",
        "meta": {"versionId": str(record.version.number)},
        "url": url,
        "version": str(record.version.number),
        "name": re.sub(r"[^A-Za-z0-9]", "", f"PA{checklist.label}{checklist.payer}")[:200],
        "title": f"PA checklist: {checklist.heading}",
        "status": "retired" if status.retired else "active",
        "subjectType": ["Patient"],
        "date": record.version.published_at.isoformat(),
        "publisher": checklist.payer,
        "description": (
            f"Prior-authorization requirements of {checklist.payer} for {checklist.label}, from "
            f"{checklist.title} (document version {record.version.document_version}): "
            f"{record.url}"
        ),
        "useContext": use_context,
        "extension": [
            {"url": f"{base}/StructureDefinition/source-document", "valueUri": record.url},
            {
                "url": f"{base}/StructureDefinition/prior-auth-required",
                "valueBoolean": checklist.prior_auth_required,
            },
        ]
        if checklist.prior_auth_required is not None
        else [{"url": f"{base}/StructureDefinition/source-document", "valueUri": record.url}],
        "item": _items(base, checklist),
    }
    if period:
        body["effectivePeriod"] = period
    return Questionnaire.model_validate(body)


def questionnaire_bundle(questionnaires: Sequence[Questionnaire]) -> Bundle:
    """A `collection` Bundle, one entry per Questionnaire (fullUrl: canonical URL + version)."""
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            "entry": [
                {
                    "fullUrl": f"{q.url}/_history/{q.version}",
                    "resource": q.model_dump(mode="json", exclude_none=True),
                }
                for q in questionnaires
            ],
        }
    )


def fhir_json(resource: Questionnaire | Bundle) -> str:
    return resource.model_dump_json(exclude_none=True)


def questionnaire_status(
    record: ChecklistRecord, versions: Sequence[ChecklistVersionRecord]
) -> QuestionnaireStatus:
    """Retired when a later version of the checklist exists; it ends when that one takes effect."""
    later = [v for v in versions if v.number > record.version.number]
    starts = [v.effective_date for v in later if v.effective_date is not None]
    return QuestionnaireStatus(retired=bool(later), ends=min(starts) if starts else None)


def questionnaire_for(store: Store, record: ChecklistRecord, *, public_url: str) -> Questionnaire:
    """`checklist_questionnaire` with what the store knows: the later versions (status, end of
    the effective period) and the procedure codes the same document version covers."""
    checklist = record.checklist
    assert checklist is not None
    rows = query_rules(
        store,
        document=checklist.document,
        kind="covered_code",
        as_of=record.version.effective_date,
        limit=MAX_LIMIT,
    )
    codes = [
        (row.code_system, row.code)
        for row in rows
        if row.code and row.version_id == record.version.version_id
        and (checklist.subject_kind != "drug" or row.drug in (checklist.subject, None))
    ]  # fmt: skip
    return checklist_questionnaire(
        record,
        public_url=public_url,
        status=questionnaire_status(record, checklist_versions(store, record.id)),
        procedure_codes=codes,
    )


# -- coverage answers ---------------------------------------------------------------------------

_NOT_COVERED_KINDS = {"noncovered_code", "exclusion"}
_COVERED_KINDS = {"covered_code", "code_pair"}


@dataclass(frozen=True, kw_only=True)
class CoverageAnswer:
    """What one rule row says about a code or drug, in CRD's terms."""

    rule_id: int
    kind: str
    payer: str
    document: str
    title: str
    version: str
    document_url: str
    effective_from: dt.date | None
    effective_to: dt.date | None
    drug: str | None
    code_system: str | None  # the FHIR system URI of `code`
    code: str | None
    covered: str  # covered | not-covered | conditional
    pa_needed: str | None  # auth-needed | no-auth (None: the policy does not say)
    doc_needed: str | None  # clinical (a PA checklist applies) or None
    info_needed: str | None  # performer | OTH, only when coverage is conditional (crd-ci-q3)
    reason: str
    questionnaire: str | None  # canonical URL|version of the PA checklist's Questionnaire
    evidence: str | None
    evidence_page: int | None
    days: int | None
    value: float | None
    as_of: dt.date


def coverage_answer(
    rule: RuleRecord,
    *,
    context: Sequence[RuleRecord],
    questionnaire: str | None,
    as_of: dt.date,
) -> CoverageAnswer:
    """`rule` as a coverage answer; `context` are the rows of the same document version (its
    prior-authorization and prescriber rows), `questionnaire` the checklist's canonical URL."""
    if rule.kind in _NOT_COVERED_KINDS:
        covered = "not-covered"
    elif rule.kind in _COVERED_KINDS and questionnaire is None:
        covered = "covered"
    else:  # criteria, or a covered code whose policy sets PA criteria
        covered = "conditional"
    prior_auth = [
        row.required
        for row in context
        if row.kind == "prior_auth" and row.required is not None
        and (rule.drug is None or row.drug in (rule.drug, None))
    ]  # fmt: skip
    pa_needed = None
    if covered != "not-covered" and prior_auth:
        pa_needed = "auth-needed" if any(prior_auth) else "no-auth"
    doc_needed = "clinical" if questionnaire and covered != "not-covered" else None
    info_needed = None
    if covered == "conditional":
        prescriber = any(row.kind == "prescriber_specialty" for row in context)
        info_needed = "performer" if prescriber else "OTH"
    return CoverageAnswer(
        rule_id=rule.id,
        kind=rule.kind,
        payer=rule.payer,
        document=rule.document,
        title=rule.title,
        version=rule.version,
        document_url=rule.url,
        effective_from=rule.effective_from,
        effective_to=rule.effective_to,
        drug=rule.drug,
        code_system=code_system_uri(rule.code_system, rule.code) if rule.code else None,
        code=rule.code,
        covered=covered,
        pa_needed=pa_needed,
        doc_needed=doc_needed,
        info_needed=info_needed,
        reason=rule.text,
        questionnaire=questionnaire if doc_needed else None,
        evidence=rule.evidence,
        evidence_page=rule.evidence_page,
        days=rule.days,
        value=rule.value,
        as_of=as_of,
    )


def coverage_json(answer: CoverageAnswer) -> dict[str, Any]:
    body = dataclasses.asdict(answer)
    for name in ("effective_from", "effective_to", "as_of"):
        body[name] = body[name].isoformat() if body[name] else None
    return body


def coverage_information(answer: CoverageAnswer) -> Extension:
    """The answer as CRD's `coverage-information` extension (validated). `coverage`, a
    reference to the patient's Coverage, is the caller's to add: a policy knows no patient."""
    parts: list[dict[str, Any]] = [{"url": "covered", "valueCode": answer.covered}]
    if answer.pa_needed:
        parts.append({"url": "pa-needed", "valueCode": answer.pa_needed})
    if answer.doc_needed:
        parts.append({"url": "doc-needed", "valueCode": answer.doc_needed})
    if answer.info_needed:
        parts.append({"url": "info-needed", "valueCode": answer.info_needed})
    if answer.code and answer.code_system:
        parts.append(
            {
                "url": "billingCode",
                "valueCoding": {"system": answer.code_system, "code": answer.code},
            }
        )
    parts.append({"url": "reason", "valueCodeableConcept": {"text": answer.reason}})
    detail_value: dict[str, Any] | None = None
    if answer.days is not None:
        days = {"value": answer.days, "unit": "days", "system": UCUM, "code": "d"}
        detail_value = {"url": "value", "valueQuantity": days}
    elif answer.value is not None:
        detail_value = {"url": "value", "valueDecimal": answer.value}
    if detail_value is not None:
        parts.append(
            {
                "url": "detail",
                "extension": [
                    {"url": "code", "valueCodeableConcept": {"text": answer.kind}},
                    detail_value,
                ],
            }
        )
    if answer.questionnaire:
        parts.append({"url": "questionnaire", "valueCanonical": answer.questionnaire})
    parts.append({"url": "date", "valueDate": answer.as_of.isoformat()})
    parts.append(
        {
            "url": "coverage-assertion-id",
            "valueString": f"rule-{answer.rule_id}-{answer.as_of.isoformat()}",
        }
    )
    return Extension.model_validate({"url": CRD_COVERAGE_INFORMATION, "extension": parts})


class CoverageQueryError(ValueError):
    """The coverage question is malformed: neither or both of code and drug."""


def find_coverage(
    store: Store,
    *,
    payer: str,
    code: str | None,
    drug: str | None,
    as_of: dt.date,
    public_url: str,
) -> list[CoverageAnswer]:
    """Coverage answers of `payer` for one billing code or one drug (generic or brand name) on
    `as_of`: one per matching rule row of the document versions that apply that day."""
    if (code is None) == (drug is None):
        raise CoverageQueryError("give exactly one of code and drug")
    checklists = find_checklists(store, payer=payer, as_of=as_of)
    drugs: list[str | None] = [drug.strip().lower()] if drug else [None]
    documents: dict[str, str | None] = {}  # policies about the drug: document -> its generic
    if drug:  # a brand name ("Dupixent") stands for its checklists' generic names
        wanted = re.compile(rf"\b{re.escape(drug.strip())}\b", re.IGNORECASE)
        for record in checklists:
            c = record.checklist
            if c is None or not any(wanted.search(t) for t in (c.subject, c.label, c.title)):
                continue
            generic = c.subject if c.subject_kind == "drug" else None
            documents[c.document] = generic
            if generic:
                drugs.append(generic)
    rules: dict[int, RuleRecord] = {}
    for name in dict.fromkeys(drugs):
        for row in query_rules(
            store, payer=payer, code=code, drug=name, as_of=as_of, limit=MAX_LIMIT
        ):
            rules.setdefault(row.id, row)
    # A policy titled for the drug whose rows name no drug (the drug was not recognised as
    # one, or the rows are general): its rows answer too.
    for document, generic in documents.items():
        for row in query_rules(store, payer=payer, document=document, as_of=as_of, limit=MAX_LIMIT):
            if row.drug in (None, generic):
                rules.setdefault(row.id, row)
    rules = dict(sorted(rules.items()))
    contexts: dict[int, list[RuleRecord]] = {}
    answers = []
    for rule in rules.values():
        if rule.version_id not in contexts:
            contexts[rule.version_id] = [
                row
                for row in query_rules(
                    store, payer=payer, document=rule.document, as_of=as_of, limit=MAX_LIMIT
                )
                if row.version_id == rule.version_id
            ]
        answers.append(
            coverage_answer(
                rule,
                context=contexts[rule.version_id],
                questionnaire=_questionnaire_of(rule, checklists, public_url),
                as_of=as_of,
            )
        )
    return answers


def _questionnaire_of(
    rule: RuleRecord, checklists: Sequence[ChecklistRecord], public_url: str
) -> str | None:
    """The canonical URL|version of the checklist of the rule's document (and drug)."""
    mine = [r for r in checklists if r.checklist and r.checklist.document == rule.document]
    matching = [r for r in mine if r.checklist and r.checklist.subject == rule.drug] or mine
    if not matching:
        return None
    record = matching[0]
    return f"{questionnaire_url(public_url, record.id)}|{record.version.number}"


def coverage_crd(answers: Sequence[CoverageAnswer]) -> dict[str, Any]:
    """The answers as the `extension` array CRD puts on the ordered resource, one validated
    `coverage-information` extension per answer."""
    return {
        "extension": [
            coverage_information(a).model_dump(mode="json", exclude_none=True) for a in answers
        ]
    }
