"""Changes are checked against both versions' text before they are published (pipeline side).

A claim the texts contradict is stored as `unverified` (never alerted, counted apart); a new
version whose text still lists the old codes while extraction found few is an extraction
failure of the run, not a change and not a quarantine.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import func, select

from diffing.model import CodeRef, CodeSystem, CoverageFlag, Criteria, RawDocument, Section
from diffing.parse import PARSER_VERSION
from monitor.config import QuarantineConfig
from monitor.pipeline import verification
from monitor.pipeline.publish import Outcome, PublishContext, PublishResult, publish
from monitor.pipeline.verification import remember_text
from monitor.store.core import Store
from monitor.store.models.core import ChangeRow, DocumentVersion, Payload
from monitor.store.models.notify import OutboxEvent
from monitor.store.publishing import load_payload_text
from sources.base import ListedDocument

TODAY = dt.date(2026, 11, 12)
CODES = [f"8{1400 + n}" for n in range(14)]


def policy_text(codes: list[str], *, note: str) -> bytes:
    lines = [
        "Genetic Testing: Hereditary Cancer Panels",
        "Policy Number: GT-0042",
        "Effective Date: 11/01/2026",
        "",
        "Coverage Criteria",
        "Panels are covered when the member meets the criteria below. " + note,
        "",
        "Applicable Codes",
        "The following CPT codes are covered when criteria are met:",
        *codes,
    ]
    return "\n".join(lines).encode()


def cpt(code: str) -> CodeRef:
    return CodeRef(system=CodeSystem.HCPCS, flag=CoverageFlag.COVERED, code=code, group=0)


def criteria(codes: list[str]) -> Criteria:
    return Criteria(
        document_id="/policies/gt-0042.txt",
        doc_type="payer_policy",
        title="Genetic Testing: Hereditary Cancer Panels",
        version=None,
        status="active",
        payer="Acme Health",
        codes=frozenset(cpt(c) for c in codes),
        sections=(Section(name="coverage criteria", text="Panels are covered."),),
    )


class Publisher:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.version = 0

    def __call__(self, content: bytes, found: Criteria) -> PublishResult:
        self.version += 1
        source = self.store.ensure_source("acme", "payer_policies")
        run_id = self.store.start_run(source.id, baseline=self.version == 1)
        url = "https://acme.example/policies/gt-0042.txt"
        raw = RawDocument(
            source="acme",
            key=found.document_id,
            url=url,
            content=content,
            content_type="text/plain",
            fetched_at=dt.datetime.now(dt.UTC),
            title=found.title,
            doc_type=found.doc_type,
        )
        listed = ListedDocument(
            key=found.document_id,
            source_version="",
            version_number=None,
            fingerprint=hashlib.sha256(content).hexdigest(),
            doc_type=found.doc_type,
            title=found.title,
            url=url,
        )
        ctx = PublishContext(
            source_id=source.id,
            run_id=run_id,
            baseline=self.version == 1,
            today=TODAY,
            extract=lambda _raw: found,
            extractor_name="test/1",
            quarantine=QuarantineConfig(),
        )
        return publish(self.store, ctx, raw, listed, criteria=found)


def rows(store: Store) -> list[tuple[str, str, str | None, str | None]]:
    with store.session() as session:
        return [
            (r.kind, r.severity, r.before, r.after)
            for r in session.scalars(select(ChangeRow).order_by(ChangeRow.id))
        ]


def events(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


def test_a_removal_the_new_text_contradicts_is_unverified_and_never_alerted(store: Store) -> None:
    publish_version = Publisher(store)
    publish_version(policy_text(CODES, note="v1"), criteria(CODES))
    # The new text still lists 81413; extraction missed it (the Kaiser 81458 case).
    result = publish_version(
        policy_text(CODES, note="v2"), criteria([c for c in CODES if c != "81413"])
    )
    assert result.outcome is Outcome.CHANGED
    assert result.unverified == 1
    changes = [r for r in rows(store) if r[0] == "code_removed"]
    assert len(changes) == 1
    _kind, severity, before, _after = changes[0]
    assert severity == "unverified" and "81413" in (before or "")
    assert events(store) == 1  # for the digests' unverified section; never alerted


def test_a_removal_the_texts_confirm_is_published_as_usual(store: Store) -> None:
    publish_version = Publisher(store)
    publish_version(policy_text(CODES, note="v1"), criteria(CODES))
    kept = [c for c in CODES if c != "81413"]
    result = publish_version(policy_text(kept, note="v2"), criteria(kept))
    assert result.unverified == 0
    [change] = [r for r in rows(store) if r[0] == "code_removed"]
    assert change[1] == "high"
    assert events(store) >= 1


def test_an_extraction_collapse_is_a_run_error_not_a_change_or_a_hold(store: Store) -> None:
    publish_version = Publisher(store)
    publish_version(policy_text(CODES, note="v1"), criteria(CODES))
    # A rewrite whose text still lists every code, but extraction found two.
    result = publish_version(policy_text(CODES, note="rewritten"), criteria(CODES[:2]))
    assert result.outcome is Outcome.ERROR
    assert result.error is not None and "extraction collapsed" in result.error
    assert "14 old codes" in result.error
    assert not [r for r in rows(store) if r[0] == "code_removed"]


def test_a_coverage_change_alone_is_checked_against_the_texts(store: Store) -> None:
    """A diff whose only claim is a coverage change is still verified (CHECKED_KINDS)."""
    publish_version = Publisher(store)
    moved = "81413"
    listed = [c for c in CODES if c != moved]

    def with_moved(flag: CoverageFlag) -> Criteria:
        found = criteria(listed)
        code = CodeRef(system=CodeSystem.HCPCS, flag=flag, code=moved, group=0)
        return Criteria(**{**_fields(found), "codes": found.codes | {code}})

    publish_version(policy_text(CODES, note="v1"), with_moved(CoverageFlag.NONCOVERED))
    # The new text no longer lists 81413 at all: "now covered" is a claim it contradicts.
    result = publish_version(policy_text(listed, note="v2"), with_moved(CoverageFlag.COVERED))
    [change] = [r for r in rows(store) if r[0] == "code_coverage_changed"]
    assert change[1] == "unverified"
    assert result.unverified == 1


def _fields(found: Criteria) -> dict[str, object]:
    return {name: getattr(found, name) for name in found.__dataclass_fields__}


def test_the_previous_versions_text_is_kept_with_its_payload_and_verified_against(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a worker parsed is stored with the payload; the next version's claims are checked
    against it without parsing the previous bytes again (and parsed when none was kept)."""
    publish_version = Publisher(store)
    first = policy_text(CODES, note="v1")
    remember_text(first, first.decode())  # as the extraction worker sends it back
    publish_version(first, criteria(CODES))
    with store.session() as session:
        kept = session.scalars(select(Payload.text_parser).where(Payload.text.is_not(None)))
        assert list(kept) == [PARSER_VERSION]

    def no_parse(content: bytes, content_type: str, key: str) -> str:
        raise AssertionError("the previous version was parsed again")

    monkeypatch.setattr(verification, "_parsed_text", no_parse)
    second = policy_text(CODES, note="v2")
    remember_text(second, second.decode())
    result = publish_version(second, criteria([c for c in CODES if c != "81413"]))
    assert result.unverified == 1  # 81413 is still in the new text: checked, from stored texts


def test_a_text_from_another_parser_version_is_not_used(store: Store) -> None:
    publish_version = Publisher(store)
    first = policy_text(CODES, note="v1")
    remember_text(first, "a text that lists no codes at all")
    publish_version(first, criteria(CODES))
    with store.session() as session:
        version_id = session.scalar(select(DocumentVersion.id))
        assert version_id is not None
        assert load_payload_text(session, version_id, PARSER_VERSION) is not None
        assert load_payload_text(session, version_id, "an older parser") is None
