"""Code lists as real payer documents lay them out, and the words that only look like codes.

Each case is a line shape met in the real pairs (tests/realdata/pairs.toml) where extraction
made a claim the texts contradict: a code-list heading inside a test's own section (Aetna CPB
0715 as HTML), a history table run into the codes section (Carelon), a count inside a
description (UHC "30000 DNA methylation loci"), variant names (CFTR "G1244 E"), marker lists
inside a procedure's description (Molina "HER-2, K20"), a PDL captured as one line (Florida).
"""

from __future__ import annotations

from diffing.extract.codes import codes_in_prose, document_codes, leading_codes
from diffing.model import CoverageFlag, PolicyDocument, Section


def _codes(*sections: tuple[str, str]) -> dict[str, CoverageFlag]:
    document = PolicyDocument(
        title="Policy",
        content_type="html",
        sections=tuple(Section(name=name, text=text) for name, text in sections),
    )
    return {row.ref.code: row.ref.flag for row in document_codes(document)}


def test_a_code_set_heading_makes_a_code_list_in_any_section() -> None:
    text = (
        "Aegis Drug-Drug Interaction Test:\n"
        "CPT codes not covered for indications listed in the CPB:\n"
        "0006U Prescription drug monitoring, 120 or more drugs and substances\n"
        "ICD-10 codes not covered for indications listed in the CPB (not all inclusive):\n"
        "G89.21 - G89.29 Chronic pain, not elsewhere classified"
    )
    assert _codes(("aegis drug-drug interaction test", text)) == {
        "0006U": CoverageFlag.NONCOVERED,
        "G89.21": CoverageFlag.NONCOVERED,
        "G89.29": CoverageFlag.NONCOVERED,
    }


def test_without_a_code_set_heading_a_lone_code_line_is_no_list() -> None:
    text = "Background\n0006U Prescription drug monitoring, 120 or more drugs and substances"
    assert _codes(("background", text)) == {}


def test_a_sibling_code_run_into_the_description_is_found() -> None:
    text = (
        "CPT codes covered if selection criteria are met:\n"
        "88360 Morphometric analysis, tumor immunohistochemistry, per specimen, each single "
        "antibody stain procedure; manual 88361 using computer-assisted technology"
    )
    assert set(_codes(("foundationone liquid cdx", text))) == {"88360", "88361"}


def test_a_history_table_in_the_codes_section_lists_no_codes() -> None:
    text = (
        "Code Not Medically Necessary\n"
        "0006M Oncology (hepatic), mRNA expression levels of 161 genes\n"
        "History\n"
        "Status Review Date Effective Date Action\n"
        "Updated codes 04/01/2025 n/a Unchanged CPT code update: added 81504, 0019U;\n"
        "0543U (NMN); removed 0013M, 0332U (NMN)."
    )
    assert _codes(("cpt/hcpcs", text)) == {"0006M": CoverageFlag.NONCOVERED}


def test_a_count_in_a_description_is_no_code() -> None:
    line = (
        "0020M Oncology (central nervous system), analysis of 30000 DNA methylation loci by "
        "methylation array 0022U Targeted genomic sequence analysis panel"
    )
    found = _codes(("applicable codes", "\n".join([line, line, line])))
    assert "30000" not in found
    assert {"0020M", "0022U"} <= set(found)


def test_variant_names_are_no_codes() -> None:
    assert leading_codes("G1244 E") is None
    assert [m.code for m in codes_in_prose("A1555 G genotyping", in_code_list=True)] == []
    assert [m.code for m in codes_in_prose("J9055 Injection, cetuximab", in_code_list=True)] == [
        "J9055"
    ]


def test_markers_in_a_procedure_description_are_no_diagnoses() -> None:
    text = (
        "0108U Gastroenterology (Barrett's esophagus), immunolabeling of 9 protein biomarkers "
        "(p16, AMACR, p53, CD68, COX-2, CD45RO, HIF1a, HER-2, K20) and morphology"
    )
    assert set(_codes(("coding & billing information", text))) == {"0108U"}


def test_a_page_long_clause_needs_its_code_word_near_the_code() -> None:
    pdl_row = "DIGOXIN 0.125 MG TABLET DIGOXIN 0 999 No "
    text = (
        "Drug codes and diagnosis requirements are on the PA form "
        + pdl_row * 20
        + "H20 ANTI-ANXIETY - BENZODIAZEPINES KLOR-CON M10 TABLET"
    )
    assert _codes(("preferred drug list", text)) == {}
    near = "Drug codes and diagnosis requirements are listed: H20.9 applies " + pdl_row * 20
    assert "H20.9" in _codes(("preferred drug list", near))


def test_an_icd10_code_split_after_its_dot_is_joined() -> None:
    text = "ICD-10 codes not covered for indications listed in the CPB:\nG30. 0 - G30.9 Alzheimer's"
    assert set(_codes(("genotyping for cyp2d6", text))) == {"G30.0", "G30.9"}


def test_a_navigation_line_naming_the_revision_history_does_not_end_the_list() -> None:
    text = (
        "Criteria | Codes | Revision History microsatellite instability 81458\n"
        "Solid organ neoplasm, genomic sequence analysis panel; DNA analysis 81458\n"
        "Solid organ neoplasm, genomic sequence analysis panel; DNA and RNA analysis 81459\n"
        "Solid organ neoplasm, genomic sequence analysis panel; copy number variants 81462"
    )
    assert {"81458", "81459", "81462"} <= set(_codes(("symgene 79 ngs cancer panel", text)))
