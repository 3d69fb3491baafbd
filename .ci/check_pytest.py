"""Read pytest's JUnit XML after the CI run and fail on what a green run may not hide.

- A skipped test whose reason is not in .ci/allowed-skips: in CI the PostgreSQL server, Chromium
  and ../shared/realdata are all there, so a PostgreSQL, browser or real-data test that skips has
  lost its peer, and any other skip is untested code too.
- Fewer passed tests than the floor in .ci/pass-floor: tests that silently stopped being
  collected (a bad marker expression, an import guard, a renamed file) fail nothing otherwise.

Expected failures (xfail) are neither skips nor passes. Standard library only.
Usage: python .ci/check_pytest.py RESULTS.xml
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLOOR_FILE = HERE / "pass-floor"
ALLOWED_FILE = HERE / "allowed-skips"
RAISE_HINT = 50  # passes above the floor that make it worth raising


def _lines(path: Path) -> list[str]:
    """Non-empty lines of a CI data file, without `#` comments."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _reason(skipped: ET.Element) -> str:
    message = skipped.get("message") or (skipped.text or "")
    return message.removeprefix("Skipped: ").strip()


def main(results: Path) -> int:
    floor = int(_lines(FLOOR_FILE)[0])
    allowed = [re.compile(pattern) for pattern in _lines(ALLOWED_FILE)]
    passed = xfailed = failed = 0
    skips: list[tuple[str, str]] = []  # (test id, reason)
    for case in ET.parse(results).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif (skipped := case.find("skipped")) is not None:
            if skipped.get("type") == "pytest.xfail":
                xfailed += 1
            else:
                skips.append((test_id, _reason(skipped)))
        else:
            passed += 1
    forbidden = [(t, r) for t, r in skips if not any(p.fullmatch(r) for p in allowed)]
    print(
        f"ci: {passed} passed, {len(skips)} skipped ({len(skips) - len(forbidden)} allowed), "
        f"{xfailed} xfailed, {failed} failed or errors; pass floor {floor}"
    )
    problems: list[str] = []
    for test_id, reason in forbidden:
        problems.append(f"skipped in CI: {test_id}: {reason}")
    if passed < floor:
        problems.append(
            f"{passed} tests passed, fewer than the floor of {floor} in {FLOOR_FILE.name}: "
            "tests stopped running (collection, markers, import guards?)"
        )
    elif passed - floor > RAISE_HINT:
        print(f"ci: {passed} passed; consider raising .ci/{FLOOR_FILE.name} (now {floor})")
    for problem in problems:
        print(f"ci: FAIL {problem}", file=sys.stderr)
    if forbidden:
        print(
            "ci: a skip is allowed only for data absent from the corpus on purpose; "
            f"see .ci/{ALLOWED_FILE.name}",
            file=sys.stderr,
        )
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = Path(sys.argv[1])
    if not path.is_file():
        sys.exit(f"ci: FAIL no pytest results at {path} (pytest did not finish?)")
    sys.exit(main(path))
