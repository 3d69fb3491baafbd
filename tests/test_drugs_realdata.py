"""Drug names found by `diffing.extract.drugs.drug_names` in real documents of the corpus: an FEP
oncology policy (brand (generic) pairs, glued table cells) and Ohio Medicaid PDL pages (generic
names by their USAN stems). Skips when ../shared/realdata is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffing.extract.drugs import drug_names

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
FEP_CTDNA = (
    REALDATA
    / "openonco-payer-artifacts"
    / "fepblue"
    / "fepblue_fep-ctdna-204141_2026-03-22_1fd443453cb7.pdf"  # extracted text, named .pdf
)
OHIO = REALDATA / "payer-pairs-2025"


def _text(path: Path) -> str:
    if not path.exists():
        pytest.skip(f"real data not present: {path}")
    return path.read_text(errors="replace")


def test_an_fep_oncology_policy_names_its_targeted_drugs_with_their_brands() -> None:
    found = {d.name: d for d in drug_names(_text(FEP_CTDNA))}
    brands = {name: d.brand for name, d in found.items()}
    assert brands["osimertinib"] == "Tagrisso"
    assert brands["olaparib"] == "Lynparza"
    # Brands a table cell glued to the cell before it ("NSCLCMETTabrecta").
    assert brands["capmatinib"] == "Tabrecta"
    assert brands["alpelisib"] == "Piqray"
    assert found["rucaparib"].drug_class == "PARP inhibitor"
    assert {"gefitinib", "erlotinib", "afatinib", "entrectinib", "alectinib"} <= set(found)
    # Every name found is a drug: no gene, test or ordinary word ends like a stem here.
    assert all(d.drug_class for d in found.values())


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("osteoporosis_2023-06-15_vs_2023-07-20", {"alendronate", "risedronate", "ibandronate"}),
        ("oral_anticoagulants_2023-12-20_vs_2024-01-25", {"dabigatran", "rivaroxaban"}),
        ("glaucoma_agents_2023-12-20_vs_2024-01-25", {"timolol", "betaxolol", "carteolol"}),
        ("diabetes_non-insulin_2023-12-20_vs_2024-01-25", {"semaglutide", "liraglutide"}),
    ],
)
def test_medicaid_pdl_pages_name_their_generics(page: str, expected: set[str]) -> None:
    found = {d.name for d in drug_names(_text(OHIO / f"OH_updl_{page}__after.md"))}
    assert expected <= found
