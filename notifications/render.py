"""Digest and alert emails: changes grouped by payer/contractor then severity, rendered with
Jinja2 into HTML (autoescaped: document text is untrusted) and plain text.

Every piece of document text is clipped before it reaches a template, so a 10,000-character
title cannot blow up a message; links are only made from http(s) URLs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.config import ApiConfig
from monitor.links import change_page_url
from monitor.report import field_label, kind_label
from monitor.store.outbox import PendingChange
from monitor.templating import template_environment
from notifications.select import CHECKLIST_KIND, group_label, rank

SEVERITIES = ("high", "medium", "low")
UNVERIFIED = "unverified"  # diffing.model.Severity.UNVERIFIED: shown apart, never an alert
TITLE_CHARS = 160
VALUE_CHARS = 300
EVIDENCE_CHARS = 500
SUBJECT_CHARS = 180
_SEVERITY_COLOURS = {"high": "#b42318", "medium": "#b54708", "low": "#475467"}


def clip(text: str | None, width: int) -> str:
    """Whitespace (newlines included) collapsed, at most `width` characters."""
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _safe_url(url: str | None) -> str | None:
    """Only http(s) URLs become links (a document could carry `javascript:`)."""
    if url and url.lower().startswith(("http://", "https://")) and len(url) < 2000:
        return url
    return None


def effective_note(effective: dt.date | None, today: dt.date) -> str:
    if effective is None:
        return ""
    days = (effective - today).days
    if days == 0:
        return "effective today"
    if days == 1:
        return "effective tomorrow"
    if days > 1:
        return f"effective in {days} days"
    if days == -1:
        return "in effect since yesterday"
    return f"in effect since {-days} days ago"


@dataclass(frozen=True, kw_only=True)
class ChangeView:
    id: int
    document_id: str
    title: str
    version: str
    previous_version: str
    kind_label: str
    field: str
    before: str
    after: str
    severity: str
    effective_date: str
    effective_note: str  # "in effect since …", or "effective date not stated; first seen …"
    flags: tuple[str, ...]  # "short notice: effective 13 days after first seen", "retroactive: …"
    evidence: str
    change_url: str
    source_url: str | None
    # For an unverified claim (`diffing.verify`): the severity it claimed, and why the two
    # texts contradict it with each text's evidence, when the record carries them.
    claimed_severity: str = ""
    contradiction: str = ""


@dataclass(frozen=True, kw_only=True)
class SeverityGroup:
    severity: str
    colour: str
    changes: tuple[ChangeView, ...]


@dataclass(frozen=True, kw_only=True)
class IssuerGroup:
    label: str
    count: int
    severities: tuple[SeverityGroup, ...]


@dataclass(frozen=True, kw_only=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _view(pending: PendingChange, api: ApiConfig, now: dt.datetime) -> ChangeView:
    change = pending.change
    effective = change.effective_date
    return ChangeView(
        id=change.id,
        document_id=clip(change.document_id, 60),
        title=clip(change.title, TITLE_CHARS),
        version=clip(change.version, 40),
        previous_version=clip(change.previous_version, 40),
        kind_label=kind_label(change.kind),
        field=clip(field_label(change.field), 60),
        # Durations as the policy wrote them ("8 weeks", "6 months"), not the stored days.
        before=clip(change.before_text or change.before, VALUE_CHARS),
        after=clip(change.after_text or change.after, VALUE_CHARS),
        severity=change.severity,
        effective_date=effective.isoformat() if effective else "",
        effective_note=(
            effective_note(effective, now.date()) if effective else change.effective_note
        ),
        flags=change.flag_notes,
        evidence=clip(change.evidence, EVIDENCE_CHARS),
        change_url=change_page_url(api, change.id, now=now),
        source_url=_safe_url(change.url),
        claimed_severity=(change.claimed_severity or "") if change.severity == UNVERIFIED else "",
        contradiction=clip(change.contradiction, EVIDENCE_CHARS),
    )


def split_unverified(
    changes: Sequence[PendingChange],
) -> tuple[list[PendingChange], list[PendingChange]]:
    """(changes to report, unverified claims): claims the two versions' texts contradict are
    an extraction error, not a policy change, so they never count as changes."""
    return (
        [p for p in changes if p.change.severity != UNVERIFIED],
        [p for p in changes if p.change.severity == UNVERIFIED],
    )


def group(changes: Sequence[PendingChange], api: ApiConfig, now: dt.datetime) -> list[IssuerGroup]:
    """By issuer (payer or contractor), most severe issuers first, then by severity."""
    by_issuer: dict[str, list[PendingChange]] = {}
    for pending in changes:
        by_issuer.setdefault(group_label(pending), []).append(pending)

    def order(item: tuple[str, list[PendingChange]]) -> tuple[int, int, str]:
        label, items = item
        return (-max(rank(p.change.severity) for p in items), -len(items), label.lower())

    groups = []
    for label, items in sorted(by_issuer.items(), key=order):
        severities = []
        for severity in SEVERITIES:
            chosen = [p for p in items if p.change.severity == severity]
            if chosen:
                chosen.sort(key=lambda p: (p.change.document_id, p.change.id))
                severities.append(
                    SeverityGroup(
                        severity=severity,
                        colour=_SEVERITY_COLOURS[severity],
                        changes=tuple(_view(p, api, now) for p in chosen),
                    )
                )
        groups.append(
            IssuerGroup(label=clip(label, 80), count=len(items), severities=tuple(severities))
        )
    return groups


def split_facts(
    changes: Sequence[PendingChange],
) -> tuple[list[PendingChange], list[PendingChange]]:
    """(one entry per fact, checklist changes): a checklist change that restates a change of
    `changes` (`same_fact_as`) is no fact of its own; one that restates none is."""
    ids = {p.change.id for p in changes}
    facts = [
        p
        for p in changes
        if p.change.kind != CHECKLIST_KIND
        or p.change.same_fact_as is None
        or p.change.same_fact_as not in ids
    ]
    checklists = [p for p in changes if p.change.kind == CHECKLIST_KIND]
    return facts, checklists


def subject_for(changes: Sequence[PendingChange], *, alert: bool, today: dt.date) -> str:
    """ "3 high, 5 medium changes — Acme Health, Novitas" (issuers by weight, three at most).
    Counts facts: a checklist change restating a listed change is not counted again."""
    changes, unverified = split_unverified(changes)
    changes, _ = split_facts(changes)
    claims = f"{len(unverified)} unverified claim{'' if len(unverified) == 1 else 's'}"
    if not changes:
        if unverified:
            return clip(f"No policy changes, {claims} — digest of {today.isoformat()}", 180)
        return f"No policy changes — digest of {today.isoformat()}"
    counts = {s: sum(1 for p in changes if p.change.severity == s) for s in SEVERITIES}
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    noun = "change" if len(changes) == 1 else "changes"
    labels: dict[str, tuple[int, int]] = {}
    for p in changes:
        weight, count = labels.get(group_label(p), (-9, 0))
        labels[group_label(p)] = (max(weight, rank(p.change.severity)), count + 1)
    ordered = sorted(labels, key=lambda label: (-labels[label][0], -labels[label][1], label))
    issuers = ", ".join(clip(label, 40) for label in ordered[:3])
    if len(ordered) > 3:
        issuers += f" +{len(ordered) - 3} more"
    prefix = "Alert: " if alert else ""
    apart = f" (+{claims})" if unverified else ""
    return clip(f"{prefix}{', '.join(parts)} {noun}{apart} — {issuers}", SUBJECT_CHARS)


def render_email(name: str, context: Mapping[str, object]) -> tuple[str, str]:
    """The text and the HTML of email `name` (``<name>.txt``, ``<name>.html``)."""
    templates = template_environment("notifications")
    return (
        templates.get_template(f"{name}.txt").render(context),
        templates.get_template(f"{name}.html").render(context),
    )


def render_changes(
    changes: Sequence[PendingChange],
    *,
    kind: str,
    profile: str,
    api: ApiConfig,
    now: dt.datetime,
    max_changes: int = 200,
) -> RenderedEmail:
    """The digest (kind "digest") or alert (kind "alert") email for `changes`."""
    # One entry per fact in the severity groups; every checklist change also in its own section;
    # unverified claims in theirs, after the changes and never in an issuer's count.
    reported, unverified = split_unverified(changes)
    regular, checklists = split_facts(reported)
    regular.sort(key=lambda p: (-rank(p.change.severity), p.event_id))
    shown, hidden = regular[:max_changes], len(regular) - min(len(regular), max_changes)
    context = {
        "kind": kind,
        "profile": clip(profile, 100),
        "today": now.date().isoformat(),
        "subject": subject_for(changes, alert=kind == "alert", today=now.date()),
        "groups": group(shown, api, now),
        "checklists": [_view(p, api, now) for p in checklists],
        "unverified": [
            _view(p, api, now)
            for p in sorted(unverified, key=lambda p: (p.change.document_id, p.change.id))
        ][:max_changes],
        "hidden": hidden,
        "total": len(reported),
        "feed_url": api.public_url.rstrip("/") + "/changes",
    }
    text, html = render_email("changes", context)
    return RenderedEmail(subject=str(context["subject"]), text=text, html=html)


MAX_FAILURES = 20  # listed in a health alert; the rest are counted


def render_health(
    *,
    source: str,
    state: str,
    reason: str,
    now: dt.datetime,
    failures: Sequence[str] = (),
) -> RenderedEmail:
    """A source broke (state "broken") or recovered ("ok"); `failures` are the last run's
    errors ("document key: reason"), listed so the operator need not look them up."""
    verb = "is failing" if state == "broken" else "has recovered"
    context = {
        "source": clip(source, 100),
        "state": state,
        "verb": verb,
        "reason": clip(reason, 1000),
        "when": now.isoformat(timespec="seconds"),
        "failures": [clip(f, 400) for f in failures[:MAX_FAILURES]],
        "more_failures": max(0, len(failures) - MAX_FAILURES),
    }
    text, html = render_email("health", context)
    return RenderedEmail(
        subject=clip(f"Source {source} {verb}: {reason}", SUBJECT_CHARS), text=text, html=html
    )
