"""`Criteria.drugs` holds the drugs a policy names (not only the dermatology dictionary), and the
diff's drug claims are checked against both texts (`diffing.verify.verify_drug_claim`).

The policies here are invented (made-up drug names with real USAN stems); no payer text."""

from __future__ import annotations

import datetime as dt

from diffing.diff import diff_criteria
from diffing.extract import extract_criteria
from diffing.model import (
    Change,
    ChangeKind,
    PolicyDocument,
    Section,
    Severity,
    StepTherapy,
    Table,
)
from diffing.verify import verify_diff, verify_drug_claim

TODAY = dt.date(2026, 3, 1)


def _policy(
    *,
    title: str,
    criteria: str,
    regulatory: str = "",
    references: str = "",
    rows: tuple[tuple[str, ...], ...] = (),
) -> PolicyDocument:
    sections = [Section(name="coverage criteria", text=criteria)]
    if regulatory:
        sections.append(Section(name="fda regulatory status", text=regulatory))
    if references:
        sections.append(Section(name="references", text=references))
    tables: tuple[Table, ...] = ()
    if rows:
        header = ("Drug name", "Status")
        tables = (Table(rows=(header, *rows), section="coverage criteria"),)
    return PolicyDocument(title=title, content_type="text", sections=tuple(sections), tables=tables)


OLD = _policy(
    title="Quelvora (quelratinib) Prior Authorization",
    criteria=(
        "1. Diagnosis of metastatic widget cancer; AND\n"
        "2. Trial of a topical corticosteroid for at least 4 weeks; AND\n"
        "3. Not used with plonzumab or fendraciclib."
    ),
    regulatory="Companion test for Quelvora (quelratinib) and Trevlyn (trevanparib).",
    references="Smith J. A study of zabrotinib in widget cancer. J Widgets. 2020.",
)


def _names(document: PolicyDocument) -> dict[str, str | None]:
    criteria = extract_criteria(document, document_id="d")
    return {drug.name: drug.drug_class for drug in criteria.drugs}


def test_title_criteria_product_pairs_and_references_name_drugs() -> None:
    names = _names(OLD)
    assert names["quelratinib"] == "tyrosine kinase inhibitor"  # title, Brand (generic)
    assert names["plonzumab"] == "humanized monoclonal antibody"  # a criteria line
    assert names["fendraciclib"] == "CDK inhibitor"
    assert names["trevanparib"] == "PARP inhibitor"  # a regulatory-status pair
    # Named only by a reference, and still named: a drug claim is checked against the whole
    # text, so the set read is the whole text's.
    assert names["zabrotinib"] == "tyrosine kinase inhibitor"


def test_prerequisite_classes_are_read_as_before() -> None:
    criteria = extract_criteria(OLD, document_id="d")
    assert [s.prerequisite for s in criteria.step_therapy] == ["topical corticosteroid"]
    assert isinstance(criteria.step_therapy[0], StepTherapy)


def test_pdl_rows_name_their_generics() -> None:
    pdl = _policy(
        title="Widget agents",
        criteria="Preferred agents need no PA.",
        rows=(("Zorbatinib tab", "Preferred"), ("Mirvastatin", "Non-Preferred")),
    )
    names = _names(pdl)
    assert names["zorbatinib"] == "tyrosine kinase inhibitor"
    assert names["mirvastatin"] == "statin"


def _diff(old: PolicyDocument, new: PolicyDocument) -> list[Change]:
    diff = diff_criteria(
        extract_criteria(old, document_id="d"), extract_criteria(new, document_id="d"), today=TODAY
    )
    text = {id(d): "\n".join([d.title, *(s.text for s in d.sections)]) for d in (old, new)}
    verified = verify_diff(diff, text[id(old)], text[id(new)])
    return [
        c for c in verified.changes if c.kind in (ChangeKind.DRUG_ADDED, ChangeKind.DRUG_REMOVED)
    ]


def test_a_drug_dropped_from_the_criteria_is_a_verified_removal() -> None:
    new = _policy(
        title=OLD.title,
        criteria=OLD.sections[0].text.replace(" or fendraciclib", ""),
        regulatory=OLD.sections[1].text,
        references=OLD.sections[2].text,
    )
    changes = _diff(OLD, new)
    assert [(c.kind, c.before, c.severity) for c in changes] == [
        (ChangeKind.DRUG_REMOVED, "fendraciclib", Severity.MEDIUM)
    ]


def test_a_reformatted_policy_reports_no_drug_change() -> None:
    new = _policy(
        title=OLD.title,
        criteria=OLD.sections[0].text.replace("\n", "\n\n"),
        regulatory=OLD.sections[1].text,
        references=OLD.sections[2].text,
    )
    assert _diff(OLD, new) == []


def _removed(name: str, evidence: str | None = None) -> Change:
    return Change(
        kind=ChangeKind.DRUG_REMOVED, severity=Severity.MEDIUM, before=name, evidence=evidence
    )


def _added(name: str) -> Change:
    return Change(kind=ChangeKind.DRUG_ADDED, severity=Severity.MEDIUM, after=name)


def test_a_removed_drug_still_named_by_its_brand_is_unverified() -> None:
    old = "Trevlyn (trevanparib) after one prior line."
    new = "Trevlyn after one prior line."
    verdict = verify_drug_claim(_removed("trevanparib"), old, new)
    assert not verdict.verified
    assert "Trevlyn" in verdict.reason and verdict.new_evidence


def test_a_removed_drug_still_named_as_a_biosimilar_or_conjugate_is_unverified() -> None:
    assert not verify_drug_claim(_removed("plonzumab"), "plonzumab", "plonzumab-xwqa").verified
    assert not verify_drug_claim(
        _removed("plonzumab"), "plonzumab", "fam-plonzumab deruxtecan"
    ).verified


def test_the_dictionary_knows_brands_the_texts_do_not_pair() -> None:
    # dupilumab is in the extractor's dictionary with its brand
    assert not verify_drug_claim(_removed("dupilumab"), "dupilumab", "Dupixent only").verified


def test_a_drug_really_gone_or_really_new_is_verified() -> None:
    assert verify_drug_claim(_removed("trevanparib"), "Trevlyn (trevanparib)", "nothing").verified
    assert verify_drug_claim(_added("trevanparib"), "nothing", "Trevlyn (trevanparib)").verified
    # a lower-case word before a parenthesis is no brand: "with (trevanparib)" pairs nothing
    assert verify_drug_claim(
        _removed("trevanparib"), "treated with (trevanparib)", "treated with care"
    ).verified


def test_an_added_drug_the_old_text_already_named_is_unverified() -> None:
    verdict = verify_drug_claim(
        _added("quelratinib"), "Quelvora is preferred", "Quelvora (quelratinib)"
    )
    assert not verdict.verified
    assert verdict.old_evidence and "Quelvora" in verdict.reason


def test_biochemistry_words_and_glued_words_name_no_drug() -> None:
    document = _policy(
        title="Widget testing",
        criteria=(
            "Testing is covered before quelratinib therapy.\n"
            "Widget propeptide assay, plasma; after fendrambucilplonzuzumab."
        ),
    )
    assert set(_names(document)) == {"quelratinib"}


def test_a_drug_is_found_whichever_section_a_capture_puts_it_in() -> None:
    # The same paragraph under a criteria heading in one capture and under a background
    # heading in another (PDF and text captures split sections differently).
    paragraph = "Regimens such as fendraciclib plus trevanparib are approved."
    in_criteria = _policy(title="T", criteria=paragraph)
    in_background = PolicyDocument(
        title="T",
        content_type="text",
        sections=(
            Section(name="coverage criteria", text="Covered when medically necessary."),
            Section(name="background", text=paragraph),
        ),
    )
    assert (
        set(_names(in_criteria))
        == set(_names(in_background))
        == {
            "fendraciclib",
            "trevanparib",
        }
    )


def test_a_pa_form_link_names_no_drug() -> None:
    pdl = _policy(
        title="Widget agents",
        criteria="Preferred agents need no PA.",
        rows=(("Trevlyn", "Preferred", "https://pdl.example.org/forms/Trevanparib-abcd%20PA.pdf"),),
    )
    assert "trevanparib" not in _names(pdl)
