"""Code tables of real policies (shared/realdata, when present): `document_codes` finds within
2 % of the codes the text lists, wherever the layout puts them (issue 13).

"The codes the text lists" is counted independently of the extractor: a strict pattern for the
code shapes these molecular policies use (CPT 8xxxx, PLA/MAAA 0xxxU/0xxxM/0xxxT, HCPCS G/S),
over every section but the revision history (which names removed codes) and every table cell.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from realdata_support import parse_real

from diffing.extract.codes import document_codes
from diffing.model import PolicyDocument

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
PAIRS = REALDATA / "payer-pairs-2025"
OPENONCO = REALDATA / "openonco-payer-artifacts"

_STRICT = re.compile(r"(?<![0-9A-Za-z.\-/$#,])(8\d{4}|0\d{3}[UMT]|[GS]\d{4})(?![0-9]|\.\d|,\d)")
_SHAPE = re.compile(r"8\d{4}|0\d{3}[UMT]|[GS]\d{4}")

DOCUMENTS = {
    "uhc-solid-2025": PAIRS
    / "UHC_molecular_oncology_solid_tumor_eff20250401_vs_eff20260101__before.pdf",
    "uhc-solid-2026": PAIRS
    / "UHC_molecular_oncology_solid_tumor_eff20250401_vs_eff20260101__after.txt",
    "uhc-heme-2025": PAIRS
    / "UHC_molecular_oncology_hematologic_eff20250101_vs_eff20260101__before.pdf",
    "uhc-heme-2026": PAIRS
    / "UHC_molecular_oncology_hematologic_eff20250101_vs_eff20260101__after.txt",
    "molina-2025": PAIRS / "MOLINA_mcp051_genetic_testing_appr20250212_vs_appr20260211__before.pdf",
    "molina-2026": PAIRS / "MOLINA_mcp051_genetic_testing_appr20250212_vs_appr20260211__after.txt",
    "molina-2026-02": OPENONCO
    / "molina"
    / "molina_molina-genetic-testing-051_2026-02-05_043afefa80a8.pdf",
    "kaiser-2026-02": OPENONCO
    / "kaiser"
    / "kaiser_kaiser-wa-genetic-screening_2026-02-05_d4661e52e8db.pdf",
    "kaiser-2026-03": OPENONCO
    / "kaiser"
    / "kaiser_kaiser-wa-genetic-screening_2026-03-22_ab205ac0ecc8.pdf",
}


def listed_codes(document: PolicyDocument) -> set[str]:
    texts = [s.text for s in document.sections if "history" not in s.name.lower()]
    texts += [" | ".join(row) for table in document.tables for row in table.rows]
    return set(_STRICT.findall("\n".join(texts)))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_code_tables_extracted_within_two_percent(name: str) -> None:
    path = DOCUMENTS[name]
    if not path.exists():
        pytest.skip(f"real payer documents not present at {path.parent}")
    document = parse_real(path.read_bytes(), "application/octet-stream", document_id=name)
    listed = listed_codes(document)
    found = {row.ref.code for row in document_codes(document)}
    found_in_shape = {code for code in found if _SHAPE.fullmatch(code)}
    assert len(listed) >= 18, name
    missing, extra = listed - found_in_shape, found_in_shape - listed
    assert len(missing) <= 0.02 * len(listed), (name, sorted(missing))
    assert len(extra) <= 0.02 * len(listed), (name, sorted(extra))
