"""Unverified claims in digests: their own section after the changes, with the claim, why the
texts contradict it and its evidence; counted apart in the subject, never among the changes.
The rendered email goes through a real SMTP server (aiosmtpd) as the digest tests do."""

from __future__ import annotations

import datetime as dt
import smtplib
from dataclasses import replace
from email.message import EmailMessage

from notify_support import NOVITAS, Inbox, body_html, body_text, config_for, smtp_server

from monitor.store.core import ChangeRecord
from monitor.store.outbox import ChangeFacets, PendingChange
from notifications.render import RenderedEmail, render_changes, subject_for

NOW = dt.datetime(2026, 11, 12, 9, 0, tzinfo=dt.UTC)


def _pending(
    change_id: int, *, severity: str, before: str | None, after: str | None, evidence: str
) -> PendingChange:
    change = ChangeRecord(
        id=change_id,
        source="cms",
        document_id="A57520",
        title="Billing and Coding: Genetic Testing",
        kind="code_removed" if before else "code_added",
        field="hcpcs",
        before=before,
        after=after,
        severity=severity,
        effective_date=None,
        detected_at=NOW,
        url="https://www.example.org/a57520",
        version="2",
        previous_version="1",
        evidence=evidence,
        baseline=False,
    )
    return PendingChange(
        event_id=change_id,
        created_at=NOW,
        change=change,
        facets=ChangeFacets(contractors=(NOVITAS,)),
    )


REAL = _pending(1, severity="high", before="81479", after=None, evidence="81479 Unlisted")
CLAIMS = [
    _pending(2, severity="unverified", before="81458", after=None, evidence="81458 Solid organ"),
    _pending(3, severity="unverified", before=None, after="0006M", evidence="0006M Oncology"),
]


def _sent(rendered: RenderedEmail) -> EmailMessage:
    inbox = Inbox()
    with smtp_server(inbox) as server:
        message = EmailMessage()
        message["From"] = "monitor@example.org"
        message["To"] = "billing@example.org"
        message["Subject"] = rendered.subject
        message.set_content(rendered.text, cte="quoted-printable")
        message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as connection:
            connection.send_message(message)
    (received,) = inbox.messages()
    return received


def test_unverified_claims_have_their_own_section_and_count_apart() -> None:
    config = config_for("sqlite://", 25)
    rendered = render_changes(
        [REAL, *CLAIMS], kind="digest", profile="billing", api=config.api, now=NOW
    )
    message = _sent(rendered)
    assert str(message["Subject"]) == "1 high change (+2 unverified claims) — Novitas"
    text = body_text(message)
    changes, claims = text.split("== Unverified: 2 claims the two versions' texts contradict ==")
    assert "== Novitas (1 change) ==" in changes and "81479 -> -" in changes
    assert "81458" not in changes and "0006M" not in changes
    assert "Claimed: 81458 -> -" in claims and "Claimed: - -> 0006M" in claims
    assert '"81458 Solid organ"' in claims and '"0006M Oncology"' in claims
    assert "81479" not in claims
    html = body_html(message)
    assert "Unverified: 2 claims the two versions&rsquo; texts contradict" in html
    assert html.index("81479") < html.index("Unverified:") < html.index("81458")


def test_the_contradiction_is_shown_when_the_record_carries_it() -> None:
    config = config_for("sqlite://", 25)
    claim = CLAIMS[0]
    record = claim.change
    object.__setattr__(
        record, "contradiction", "81458 is still listed in the new text (new text: …81458 Solid…)"
    )
    rendered = render_changes([claim], kind="digest", profile="billing", api=config.api, now=NOW)
    assert "Contradicted: 81458 is still listed in the new text" in rendered.text
    assert "Contradicted: 81458 is still listed in the new text" in rendered.html


def test_a_digest_of_unverified_claims_only_says_no_policy_changes() -> None:
    today = NOW.date()
    assert subject_for(CLAIMS, alert=False, today=today) == (
        "No policy changes, 2 unverified claims — digest of 2026-11-12"
    )
    assert subject_for([REAL], alert=False, today=today) == "1 high change — Novitas"
    one = [replace(CLAIMS[0])]
    assert "(+1 unverified claim)" in subject_for([REAL, *one], alert=False, today=today)
