"""The ICD-10-CM code set the extractor validates against is the maintained package's, shipped as
a compact file (`diffing.extract.icd10cm`) so that no worker parses the package's XML."""

from __future__ import annotations

import warnings

import pytest

from diffing.extract import icd10cm
from diffing.extract.codes import code_system, is_icd10cm
from diffing.model import CodeSystem


def test_the_shipped_file_holds_exactly_the_installed_packages_items() -> None:
    shipped, package = icd10cm.items(), icd10cm.package_items()
    missing, extra = sorted(package - shipped)[:5], sorted(shipped - package)[:5]
    assert shipped == package, (
        f"data/{icd10cm.DATA} is stale (missing {missing}, extra {extra}): "
        "run `python -m diffing.extract.icd10cm --write`"
    )


@pytest.mark.parametrize(
    "code",
    ["L40.0", "L400", "L40", "C18.0", "C180", "Z00", "G30.0", "A00-A09", "E11.65", "E1165"],
)
def test_the_same_answers_as_the_package(code: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm

    assert is_icd10cm(code) is bool(simple_icd_10_cm.is_valid_item(code))


@pytest.mark.parametrize("code", ["L40.9X", "Q99.9Z", "C18.A", "U99", "L4", "L40.00000"])
def test_shapes_the_code_set_does_not_have_are_no_codes(code: str) -> None:
    assert not is_icd10cm(code)


def test_code_system_uses_the_code_set() -> None:
    assert code_system("L40.0") is CodeSystem.ICD10
    assert code_system("L40.9X") is None  # the right shape, not in ICD-10-CM
