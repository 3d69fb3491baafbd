"""Whole documents through `extract_criteria`: context tracking (drug, indication, phase, list
leads), code lists and tables, header facts, revision history and evidence.

The documents are written here by hand in the layout of real payer policies (UHC drug policy,
Aetna CPB, Cigna coverage policy); no payer text is copied.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from diffing.extract import EXTRACTOR_VERSION, extract_criteria
from diffing.extract.dates import parse_date
from diffing.model import (
    AgeLimit,
    ApprovalPeriod,
    CodeRef,
    CodeSystem,
    CoverageFlag,
    PolicyDocument,
    PriorAuth,
    RevisionEntry,
    Section,
    StepTherapy,
    Table,
    Threshold,
)
from diffing.parse import parse_document
from fixtures.payer_site import render_document
from fixtures.payer_site.uhc_dupixent import URL_PATH

AD = "atopic dermatitis"
PN = "prurigo nodularis"
HEADER = """UnitedHealthcare Commercial Medical Benefit Drug Policy
Dupixent (Dupilumab)
Policy Number: 2026D0042A   Effective Date: March 1, 2026"""
COVERAGE = "\n".join(
    (
        "Dupixent (dupilumab) is proven and medically necessary when the following "
        "criteria are met:",
        "Atopic Dermatitis",
        "Initial Authorization",
        "1. Diagnosis of moderate-to-severe atopic dermatitis; AND",
        "2. Patient is 6 months of age or older; AND",
        "3. Body surface area (BSA) involvement of at least 10% or EASI score ≥ 16; AND",
        "4. History of failure, contraindication, or intolerance to ONE of the following,"
        " each used for at least 4 weeks (14-day supply for topical corticosteroids):",
        "a. Medium-potency or higher topical corticosteroid",
        "b. Topical calcineurin inhibitor (e.g., pimecrolimus, tacrolimus)",
        "c. Crisaborole ointment",
        "5. Prescribed by or in consultation with a dermatologist or allergist; AND",
        "6. Patient is not receiving Dupixent in combination with another biologic or a "
        "JAK inhibitor (e.g., Rinvoq, Cibinqo).",
        "Authorization will be issued for 6 months.",
        "Reauthorization",
        "1. Documentation of positive clinical response to Dupixent therapy; AND",
        "2. Patient continues to use emollients.",
        "Authorization will be issued for 12 months.",
        "Prurigo Nodularis",
        "Initial Authorization",
        "1. Patient is 18 years of age or older; AND",
        "2. Worst-itch NRS score of at least 7; AND",
        "3. At least 20 nodular lesions; AND",
        "4. Inadequate response to a high-potency topical corticosteroid for at least 3 weeks.",
        "Initial approval: 6 months; reauthorization 12 months.",
        "Asthma",
        "1. Patient is 6 years of age or older; AND",
        "2. Inadequate control despite a medium-dose inhaled corticosteroid for at least 3 months.",
        "Authorization will be issued for 12 months.",
        "Dupixent requires prior authorization.",
    )
)
CODES = "\n".join(
    (
        "The following list(s) of procedure and/or diagnosis codes is provided for "
        "reference purposes only.",
        "HCPCS Code Description",
        "J3590 Unclassified biologics",
        "ICD-10 Code Description",
        "L20.81 Atopic neurodermatitis",
        "L20.9 Atopic dermatitis, unspecified",
        "L28.1 Prurigo nodularis",
    )
)
BACKGROUND = """In two 16-week trials, patients with EASI ≥ 16 and BSA ≥ 10% were randomized.
Patients had failed topical corticosteroids for at least 1 month. Age 12 years and older."""
HISTORY = """Date
Summary of Changes
03/01/2026
Coverage Rationale: Changed the topical corticosteroid trial from 8 weeks to 4 weeks.
Added prurigo nodularis.
09/01/2025
Annual review; no change to criteria.
Instructions for Use
This policy provides assistance in interpreting standard benefit plans."""
PAGE_TWO_AT = COVERAGE.index("Reauthorization")


def uhc_document(meta: tuple[tuple[str, str], ...] = ()) -> PolicyDocument:
    return PolicyDocument(
        title="Dupixent (Dupilumab)",
        content_type="pdf",
        sections=(
            Section(name="", text=HEADER, page_offsets=((0, 1),)),
            Section(
                name="Coverage Rationale",
                text=COVERAGE,
                page_offsets=((0, 1), (PAGE_TWO_AT, 2)),
            ),
            Section(name="Applicable Codes", text=CODES, page_offsets=((0, 3),)),
            Section(name="Background", text=BACKGROUND, page_offsets=((0, 4),)),
            Section(
                name="Policy History/Revision Information", text=HISTORY, page_offsets=((0, 5),)
            ),
        ),
        tables=(
            Table(
                rows=(
                    ("Code", "Description"),
                    ("CPT codes not covered for indications listed in the CPB:",),
                    ("96910", "Photochemotherapy; tar and ultraviolet B"),
                    ("CPT codes covered if selection criteria are met:",),
                    ("96920 - 96922", "Laser treatment for inflammatory skin disease"),
                ),
                page=3,
                section="Applicable Codes",
            ),
        ),
        meta=meta,
        pages=5,
    )


@pytest.fixture(scope="module")
def uhc() -> object:
    return extract_criteria(uhc_document(), document_id="uhc-dupixent", payer="uhc", version="v3")


def test_identity_and_header_facts(uhc) -> None:
    assert (uhc.document_id, uhc.payer, uhc.version) == ("uhc-dupixent", "uhc", "v3")
    assert (uhc.doc_type, uhc.status, uhc.title) == (
        "payer_policy",
        "active",
        "Dupixent (Dupilumab)",
    )
    assert uhc.policy_number == "2026D0042A"
    assert uhc.effective_date == dt.date(2026, 3, 1)
    assert uhc.sections == uhc_document().sections
    assert EXTRACTOR_VERSION


def test_meta_wins_over_header_text() -> None:
    document = uhc_document(
        meta=(("policy_number", "CG-DRUG-99"), ("effective_date", "2026-04-15"))
    )
    criteria = extract_criteria(document, document_id="x")
    assert criteria.policy_number == "CG-DRUG-99"
    assert criteria.effective_date == dt.date(2026, 4, 15)


def test_step_therapy_inherits_indication_drug_and_lead(uhc) -> None:
    assert uhc.step_therapy == (
        StepTherapy(
            prerequisite="topical corticosteroid",
            drug="dupilumab",
            indication=AD,
            count_required=1,
            min_duration_days=14,
        ),
        StepTherapy(
            prerequisite="topical calcineurin inhibitor",
            drug="dupilumab",
            indication=AD,
            min_duration_days=28,
        ),
        StepTherapy(
            prerequisite="crisaborole", drug="dupilumab", indication=AD, min_duration_days=28
        ),
        StepTherapy(
            prerequisite="topical corticosteroid",
            drug="dupilumab",
            indication=PN,
            min_duration_days=21,
        ),
    )


def test_approval_periods_follow_phase_headings(uhc) -> None:
    assert uhc.approval_periods == (
        ApprovalPeriod(phase="initial", days=183, drug="dupilumab", indication=AD),
        ApprovalPeriod(phase="reauthorization", days=365, drug="dupilumab", indication=AD),
        ApprovalPeriod(phase="initial", days=183, drug="dupilumab", indication=PN),
        ApprovalPeriod(phase="reauthorization", days=365, drug="dupilumab", indication=PN),
        ApprovalPeriod(phase="initial", days=365, drug="dupilumab", indication="asthma"),
    )


def test_thresholds_ages_specialties_and_prior_auth(uhc) -> None:
    assert uhc.thresholds == (
        Threshold(measure="BSA", op=">=", value=10, unit="%", indication=AD),
        Threshold(measure="EASI", op=">=", value=16, indication=AD),
        Threshold(measure="itch NRS", op=">=", value=7, indication=PN),
    )
    assert uhc.age_limits == (
        AgeLimit(op=">=", years=0, indication=AD),
        AgeLimit(op=">=", years=18, indication=PN),
        AgeLimit(op=">=", years=6, indication="asthma"),
    )
    assert uhc.prescriber_specialties == ("allergist", "dermatologist")
    assert uhc.prior_auth == (PriorAuth(required=True, drug="dupilumab"),)


def test_drugs_include_combination_mentions_once(uhc) -> None:
    assert [(d.name, d.drug_class) for d in uhc.drugs] == [
        ("dupilumab", "IL-4 receptor antagonist"),
        ("upadacitinib", "JAK inhibitor"),
        ("abrocitinib", "JAK inhibitor"),
    ]
    assert uhc.drugs[0].evidence is not None
    assert uhc.drugs[0].evidence.sentence == "Dupixent (Dupilumab)"


def test_background_section_is_not_criteria(uhc) -> None:
    for item in (*uhc.step_therapy, *uhc.thresholds, *uhc.age_limits):
        assert item.evidence is not None
        assert item.evidence.section == "Coverage Rationale"


def test_codes_from_code_section_and_table(uhc) -> None:
    assert uhc.codes == {
        CodeRef(system=CodeSystem.HCPCS, flag=CoverageFlag.COVERED, code="J3590"),
        CodeRef(system=CodeSystem.ICD10, flag=CoverageFlag.COVERED, code="L20.81"),
        CodeRef(system=CodeSystem.ICD10, flag=CoverageFlag.COVERED, code="L20.9"),
        CodeRef(system=CodeSystem.ICD10, flag=CoverageFlag.COVERED, code="L28.1"),
        CodeRef(system=CodeSystem.HCPCS, flag=CoverageFlag.NONCOVERED, code="96910"),
        CodeRef(system=CodeSystem.HCPCS, flag=CoverageFlag.COVERED, code="96920"),
        CodeRef(system=CodeSystem.HCPCS, flag=CoverageFlag.COVERED, code="96921"),
        CodeRef(system=CodeSystem.HCPCS, flag=CoverageFlag.COVERED, code="96922"),
    }
    described = {c.code: c.description for c in uhc.codes}
    assert described["J3590"] == "Unclassified biologics"
    assert described["96921"] == "Laser treatment for inflammatory skin disease"


def test_revision_history_stops_at_instructions_for_use(uhc) -> None:
    assert uhc.revision_history == (
        RevisionEntry(
            date=dt.date(2026, 3, 1),
            text="Coverage Rationale: Changed the topical corticosteroid trial from 8 weeks to "
            "4 weeks. Added prurigo nodularis.",
        ),
        RevisionEntry(date=dt.date(2025, 9, 1), text="Annual review; no change to criteria."),
    )


def test_evidence_carries_sentence_page_and_section(uhc) -> None:
    initial, reauthorization = uhc.approval_periods[:2]
    assert initial.evidence is not None and reauthorization.evidence is not None
    assert initial.evidence.sentence == "Authorization will be issued for 6 months."
    assert (initial.evidence.page, initial.evidence.section) == (1, "Coverage Rationale")
    assert reauthorization.evidence.page == 2
    tcs = uhc.step_therapy[0]
    assert tcs.evidence is not None
    assert tcs.evidence.sentence == "a. Medium-potency or higher topical corticosteroid"


# --- context tracking --------------------------------------------------------------------------


def test_drug_headings_switch_the_governed_drug() -> None:
    text = """Adbry (tralokinumab)
Atopic Dermatitis
1. Trial and failure of a topical calcineurin inhibitor for at least 6 weeks.
Ebglyss (lebrikizumab)
Atopic Dermatitis
1. Trial and failure of a topical calcineurin inhibitor for at least 8 weeks.
2. Patient has tried Adbry for at least 16 weeks with inadequate response."""
    document = PolicyDocument(
        title="IL-13 Antagonists for Atopic Dermatitis",
        content_type="html",
        sections=(Section(name="Policy", text=text),),
    )
    steps = extract_criteria(document, document_id="x").step_therapy
    assert [(s.drug, s.prerequisite, s.min_duration_days) for s in steps] == [
        ("tralokinumab", "topical calcineurin inhibitor", 42),
        ("lebrikizumab", "topical calcineurin inhibitor", 56),
        ("lebrikizumab", "tralokinumab", 112),
    ]
    assert {s.indication for s in steps} == {AD}


def test_sections_named_by_indication_and_phase() -> None:
    document = PolicyDocument(
        title="Taltz (ixekizumab)",
        content_type="html",
        sections=(
            Section(name="Plaque Psoriasis (PsO)", text="PASI ≥ 12 at baseline."),
            Section(name="Initial Approval", text="Approve for 4 months."),
            Section(name="Continuation of Therapy", text="Approve for 12 months."),
            Section(name="Psoriatic Arthritis", text="Approve for 6 months."),
            Section(name="Coverage Summary", text="Authorization will be issued for 3 months."),
        ),
    )
    criteria = extract_criteria(document, document_id="x")
    assert [(a.indication, a.phase, a.days) for a in criteria.approval_periods] == [
        ("plaque psoriasis", "initial", 122),
        ("plaque psoriasis", "reauthorization", 365),
        ("psoriatic arthritis", "initial", 183),
        (None, "initial", 91),
    ]
    assert criteria.thresholds == (
        Threshold(measure="PASI", op=">=", value=12, indication="plaque psoriasis"),
    )


def test_criteria_lines_naming_the_indication_do_not_reset_the_phase() -> None:
    text = """Atopic Dermatitis
Reauthorization
1. Diagnosis of atopic dermatitis; AND
2. Atopic dermatitis
3. Documented response to therapy.
Authorization will be issued for 12 months.
Prurigo Nodularis
Authorization will be issued for 6 months."""
    document = PolicyDocument(
        title="Dupixent (dupilumab)",
        content_type="pdf",
        sections=(Section(name="Criteria", text=text),),
    )
    periods = extract_criteria(document, document_id="x").approval_periods
    assert [(p.indication, p.phase, p.days) for p in periods] == [
        (AD, "reauthorization", 365),
        (PN, "initial", 183),
    ]


def test_all_of_the_following_counts_the_items() -> None:
    text = """Patient has tried and failed ALL of the following:
i. Methotrexate for at least 12 weeks
ii. Cyclosporine
iii. Narrowband UVB phototherapy for at least 3 months
Authorization will be issued for 12 months."""
    document = PolicyDocument(
        title="Siliq (brodalumab)",
        content_type="pdf",
        sections=(Section(name="Plaque Psoriasis", text=text),),
    )
    steps = extract_criteria(document, document_id="x").step_therapy
    assert [(s.prerequisite, s.count_required, s.min_duration_days) for s in steps] == [
        ("methotrexate", 3, 84),
        ("cyclosporine", 3, None),
        ("phototherapy", 3, 91),
    ]
    assert {(s.drug, s.indication) for s in steps} == {("brodalumab", "plaque psoriasis")}


def test_a_lead_ends_at_its_next_sibling() -> None:
    text = """1. Trial and failure of a 30-day supply of ONE of the following:
a. Crisaborole
b. Topical calcineurin inhibitor
2. Patient will continue topical therapy and a topical corticosteroid as needed."""
    document = PolicyDocument(
        title="Adbry (tralokinumab)",
        content_type="pdf",
        sections=(Section(name="Atopic Dermatitis", text=text),),
    )
    steps = extract_criteria(document, document_id="x").step_therapy
    assert [(s.prerequisite, s.min_duration_days) for s in steps] == [
        ("crisaborole", 30),
        ("topical calcineurin inhibitor", 30),
    ]


def test_two_sentences_about_one_prerequisite_merge() -> None:
    text = """a) Patient has tried at least one high-potency topical corticosteroid; AND
b) This topical corticosteroid was applied daily for at least 28 consecutive days; AND
c) Patient has tried at least one topical calcineurin inhibitor."""
    document = PolicyDocument(
        title="Adbry (tralokinumab)",
        content_type="pdf",
        sections=(Section(name="Atopic Dermatitis", text=text),),
    )
    steps = extract_criteria(document, document_id="x").step_therapy
    assert [(s.prerequisite, s.min_duration_days) for s in steps] == [
        ("topical corticosteroid", 28),
        ("topical calcineurin inhibitor", None),
    ]


def test_abbreviations_and_list_markers_stay_in_their_sentence() -> None:
    text = "a. Trial of a topical calcineurin inhibitor (e.g. Protopic) for at least 6 weeks."
    document = PolicyDocument(
        title="Dupixent", content_type="text", sections=(Section(name="Policy", text=text),)
    )
    (step,) = extract_criteria(document, document_id="x").step_therapy
    assert step.min_duration_days == 42
    assert step.evidence is not None and step.evidence.sentence == text


# --- codes -------------------------------------------------------------------------------------


def test_code_table_flags_follow_headings_and_section() -> None:
    document = PolicyDocument(
        title="Phototherapy",
        content_type="html",
        sections=(),
        tables=(
            Table(
                rows=(
                    ("CPT Codes / HCPCS Codes / ICD-10 Codes",),
                    ("Code", "Code Description"),
                    ("ICD-10 codes covered if selection criteria are met:",),
                    ("L40.0", "Psoriasis vulgaris"),
                    ("L30", "Other and unspecified dermatitis (category)"),
                    ("L80", "Vitiligo"),
                    ("Other HCPCS codes related to the CPB:",),
                    ("J7500 - J7599", "Immunosuppressive drugs, wide range"),
                ),
                section="Codes",
            ),
            Table(
                rows=(("Code", "Description"), ("96900", "Actinotherapy (ultraviolet light)")),
                section="Experimental, Investigational, or Unproven",
            ),
        ),
    )
    codes = {(c.system, c.flag, c.code) for c in extract_criteria(document, document_id="x").codes}
    covered, noncovered = CoverageFlag.COVERED, CoverageFlag.NONCOVERED
    assert codes == {
        (CodeSystem.ICD10, covered, "L40.0"),
        (CodeSystem.ICD10, covered, "L30"),
        (CodeSystem.ICD10, covered, "L80"),
        (CodeSystem.HCPCS, covered, "J7500"),  # 100 codes wide: only the ends
        (CodeSystem.HCPCS, covered, "J7599"),
        (CodeSystem.HCPCS, noncovered, "96900"),
    }


def test_no_codes_from_numbers_that_are_not_codes() -> None:
    text = """Policy Number: 2026D0042A. Effective 03/01/2026. Call 1-800-555-0147.
Dupixent 300 mg every 2 weeks; 2026 annual review; Vitamin B12 deficiency excluded."""
    document = PolicyDocument(
        title="Dupixent", content_type="text", sections=(Section(name="Coverage", text=text),)
    )
    assert extract_criteria(document, document_id="x").codes == frozenset()


def test_codes_named_in_criteria_prose() -> None:
    text = "Mohs surgery (CPT 17311-17315) is not covered for lesions under 6 mm."
    document = PolicyDocument(
        title="Mohs Micrographic Surgery",
        content_type="html",
        sections=(Section(name="Clinical Indications", text=text),),
    )
    criteria = extract_criteria(document, document_id="x")
    assert {c.code for c in criteria.codes} == {"17311", "17312", "17313", "17314", "17315"}
    assert {c.flag for c in criteria.codes} == {CoverageFlag.NONCOVERED}
    assert criteria.thresholds == (Threshold(measure="lesion size", op="<", value=6, unit="mm"),)


# --- header facts and history -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("March 1, 2026", dt.date(2026, 3, 1)),
        ("Mar. 1, 2026", dt.date(2026, 3, 1)),
        ("1 March 2026", dt.date(2026, 3, 1)),
        ("03/01/2026", dt.date(2026, 3, 1)),
        ("3/1/2026", dt.date(2026, 3, 1)),
        ("03.01.2026", dt.date(2026, 3, 1)),
        ("2026-03-01", dt.date(2026, 3, 1)),
        ("20260301", dt.date(2026, 3, 1)),
        ("September 31, 2026", None),
        ("N/A", None),
    ],
)
def test_dates_in_mixed_formats(text: str, expected: dt.date | None) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("header", "number", "effective"),
    [
        (
            "Subject: Mohs Micrographic Surgery\nGuideline #: CG-SURG-90  Publish Date: 04/10/2024",
            "CG-SURG-90",
            None,
        ),
        ("Number: 0325\nEffective: 09/16/2005", "0325", dt.date(2005, 9, 16)),
        (
            "Coverage Policy Number: IP0404\nEffective Date: 11/15/2025",
            "IP0404",
            dt.date(2025, 11, 15),
        ),
        ("Effective Date: 05.01.2017 – This policy addresses ablation.", None, dt.date(2017, 5, 1)),
    ],
)
def test_header_facts_from_text(header: str, number: str | None, effective: dt.date | None) -> None:
    document = PolicyDocument(
        title="Policy", content_type="text", sections=(Section(name="", text=header),)
    )
    criteria = extract_criteria(document, document_id="x")
    assert (criteria.policy_number, criteria.effective_date) == (number, effective)


def test_revision_history_from_a_table_and_a_history_block() -> None:
    document = PolicyDocument(
        title="Policy",
        content_type="pdf",
        sections=(
            Section(
                name="History",
                text="9/1/2026 Policy implemented by the plan\n6/1/2026 Policy published",
            ),
        ),
        tables=(
            Table(
                rows=(
                    ("Date", "Action"),
                    ("02/15/2024", "Reviewed; updated references."),
                    ("", "Clarified the prescriber requirement."),
                ),
                section="Policy History",
            ),
        ),
    )
    assert extract_criteria(document, document_id="x").revision_history == (
        RevisionEntry(date=dt.date(2026, 9, 1), text="Policy implemented by the plan"),
        RevisionEntry(date=dt.date(2026, 6, 1), text="Policy published"),
        RevisionEntry(
            date=dt.date(2024, 2, 15),
            text="Reviewed; updated references. Clarified the prescriber requirement.",
        ),
    )


# --- real data ---------------------------------------------------------------------------------

AETNA_CPB = (
    Path(__file__).resolve().parents[2]
    / "shared/realdata/openonco-payer-artifacts/aetna"
    / "aetna_aetna-cpb-0715_2026-02-05_2e7fb25dd026.html"
)


@pytest.mark.skipif(not AETNA_CPB.exists(), reason=f"real data not present: {AETNA_CPB}")
def test_real_aetna_code_list() -> None:
    """A real CPB's visible text, split at its own headings: codes and flags from the code list,
    none from the policy prose or background."""
    lines = AETNA_CPB.read_text("utf-8").split("\n")
    table_at = lines.index("Table:")
    background_at = lines.index("Background")
    document = PolicyDocument(
        title="Pharmacogenetic and Pharmacodynamic Testing",
        content_type="html",
        sections=(
            Section(name="Policy", text="\n".join(lines[:table_at])),
            Section(name="Codes", text="\n".join(lines[table_at:background_at])),
            Section(name="Background", text="\n".join(lines[background_at:])),
        ),
    )
    criteria = extract_criteria(document, document_id="aetna-0715")
    by_code = {(c.code, c.flag) for c in criteria.codes}
    assert ("82726", CoverageFlag.COVERED) in by_code
    assert ("81227", CoverageFlag.NONCOVERED) in by_code
    assert ("0028U", CoverageFlag.COVERED) in by_code
    assert ("G9143", CoverageFlag.NONCOVERED) in by_code
    assert ("E71.520", CoverageFlag.COVERED) in by_code
    assert {"81400", "81404", "81408"} <= {c.code for c in criteria.codes}
    assert len(criteria.codes) > 500
    assert criteria.policy_number == "0715"
    without_code_list = PolicyDocument(
        title=document.title,
        content_type="html",
        sections=(document.sections[0], document.sections[2]),
    )
    assert extract_criteria(without_code_list, document_id="aetna-0715").codes == frozenset()


# --- the pipeline: fixture payer PDF -> parser -> extractor --------------------------------------


def test_fixture_dupixent_pdf_week1_to_week2() -> None:
    """The fixture site's Dupixent policy lengthens the atopic dermatitis topical corticosteroid
    trial from "at least 8 weeks" to "a minimum of 12 weeks" in week 2."""

    def tcs_days(scenario: str) -> list[int | None]:
        pdf = render_document(URL_PATH, scenario)
        document = parse_document(pdf, "application/pdf", document_id="uhc-dupixent")
        criteria = extract_criteria(document, document_id="uhc-dupixent", payer="uhc")
        return [
            step.min_duration_days
            for step in criteria.step_therapy
            if (step.drug, step.indication, step.prerequisite)
            == ("dupilumab", AD, "topical corticosteroid")
        ]

    assert tcs_days("week1") == [56]
    assert tcs_days("week2") == [84]
