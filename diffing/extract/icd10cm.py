"""The ICD-10-CM code set as a frozen set, loaded from a compact file shipped with the package.

`simple_icd_10_cm` (the maintained source of the code set) parses its XML when imported: about
2 s of CPU in every extraction worker, and again in the parent when it verifies changes. The
same items (chapters, blocks, categories and codes, with their dots) are kept in
`data/icd10cm.txt.xz`, written from that package by `python -m diffing.extract.icd10cm --write`;
`tests/test_icd10cm_set.py` checks the file holds exactly the installed package's items, so an
upgrade of the package that changes the code set fails the tests until the file is written again.
"""

from __future__ import annotations

import argparse
import functools
import lzma
import warnings
from importlib import resources
from pathlib import Path

DATA = "icd10cm.txt.xz"


@functools.cache
def items() -> frozenset[str]:
    """Every item of ICD-10-CM as the code set spells it ("L40", "L40.0", "A00-A09", "1")."""
    packed = resources.files(__package__).joinpath("data", DATA).read_bytes()
    return frozenset(lzma.decompress(packed).decode("ascii").split("\n"))


def is_valid_item(code: str) -> bool:
    """`simple_icd_10_cm.is_valid_item`'s rule: the item as written, or with the dot after its
    third character when it was written without one ("L400" is "L40.0")."""
    known = items()
    return code in known or (len(code) >= 4 and f"{code[:3]}.{code[3:]}" in known)


def package_items() -> frozenset[str]:
    """The items of the installed `simple_icd_10_cm` (slow: it parses the XML)."""
    with warnings.catch_warnings():
        # The package reads its data with importlib.resources' legacy API at import.
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm

    return frozenset(simple_icd_10_cm.get_all_codes(with_dots=True))


def write(path: Path) -> int:
    found = sorted(package_items())
    path.write_bytes(lzma.compress("\n".join(found).encode("ascii"), preset=9))
    return len(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help=f"write data/{DATA} from the package")
    args = parser.parse_args(argv)
    target = Path(__file__).with_name("data") / DATA
    if args.write:
        print(f"wrote {write(target)} items to {target}")
        return 0
    print(f"{len(items())} items in {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
