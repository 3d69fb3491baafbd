"""The README's fault table, generated from the fault suite's own results (not hand-written).

Runs ``pytest tests/test_faults_cms.py tests/test_faults_payer.py`` (slow tests included) with a
JUnit XML report, reads the properties each fault test records (fault, source, message, data
lost, false changes) and prints one Markdown row per fault:

    python bench/fault_table.py            # runs the suite (about 1.5 minutes here)
    python bench/fault_table.py --xml F    # only read an existing report

"Survived" means the test passed: the run finished with an outcome, the failure was recorded
with a clear message, nothing false was published and the next clean run caught up.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from fixtures.faults import FAULT_CASES

SUITE = ("tests/test_faults_cms.py", "tests/test_faults_payer.py")
# Faults tested elsewhere, by the helpers who own those sources.
ELSEWHERE = (
    (
        "zip bomb (MCD export)",
        "tests/test_mcd_integration.py::test_zip_bomb_is_refused_with_a_clear_error_and_nothing_published",
        "refused with a clear error, nothing published",
    ),
)


@dataclass(kw_only=True)
class Row:
    description: str
    sources: dict[str, bool]  # source -> passed
    data_lost: int = 0
    false_changes: int = 0
    message: str = ""


def read_report(path: Path) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") or "" for p in case.iter("property")}
        if "fault" not in props:
            continue
        passed = case.find("failure") is None and case.find("error") is None
        if case.find("skipped") is not None:
            continue
        row = rows.setdefault(
            props["fault"], Row(description=props.get("description", ""), sources={})
        )
        row.sources[props["source"]] = passed
        row.data_lost += int(props.get("data_lost") or 0)
        row.false_changes += int(props.get("false_changes") or 0)
        if props.get("message") and (not row.message or props["source"] == "payer"):
            row.message = props["message"]
    return rows


def _short(message: str) -> str:
    # Drop the "source 'x': GET http://127.0.0.1:port/…:" / "cannot parse /path:" prefixes.
    for marker in (".pdf: ", ".html: ", "ver=32: ", "57520: "):
        if marker in message:
            message = message.rsplit(marker, 1)[1]
    message = re.sub(r"https?://127\.0\.0\.\d+:\d+[^\s)>]*", "<url>", message)
    message = message.replace("|", "\\|")
    return message if len(message) <= 90 else message[:87] + "…"


def table(rows: dict[str, Row]) -> str:
    lines = [
        "| fault | where | survived | data lost | false changes | recorded as |",
        "|---|---|---|---|---|---|",
    ]
    order = [c.name for c in FAULT_CASES]
    for name in sorted(rows, key=lambda n: order.index(n) if n in order else len(order)):
        row = rows[name]
        where = ", ".join(sorted(row.sources))
        survived = "yes" if all(row.sources.values()) else "**NO**"
        recorded = _short(row.message) if row.message else "(absorbed: retried or sniffed)"
        lines.append(
            f"| {row.description} | {where} | {survived} | {row.data_lost} | "
            f"{row.false_changes} | {recorded} |"
        )
    for description, test, note in ELSEWHERE:
        if Path(test.split("::")[0]).exists():
            lines.append(f"| {description} | MCD | see `{test}` | - | - | {note} |")
    total = len(rows)
    survived = sum(all(r.sources.values()) for r in rows.values())
    lost = sum(r.data_lost for r in rows.values())
    false = sum(r.false_changes for r in rows.values())
    lines.append("")
    lines.append(
        f"{total} faults tried, {survived} survived, {lost} documents lost, {false} false changes."
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xml", type=Path, help="read this JUnit XML instead of running")
    args = parser.parse_args()
    if args.xml is None:
        with tempfile.TemporaryDirectory(prefix="fault-table-") as scratch:
            report = Path(scratch) / "faults.xml"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    f"--junitxml={report}",
                    "-o",
                    "junit_family=xunit1",  # keeps record_property in the report
                    *SUITE,
                ],
                check=False,
                stdout=sys.stderr,
            )
            rows = read_report(report)
    else:
        rows = read_report(args.xml)
    if not rows:
        print("no fault results found", file=sys.stderr)
        return 1
    print(table(rows))
    return 0 if all(all(r.sources.values()) for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
