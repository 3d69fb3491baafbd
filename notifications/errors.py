"""Errors of the notification channels (a `MonitorError` family, so callers catch one tree).

MonitorError
└── DeliveryError        one send failed (SMTP refused or unreachable, webhook not 2xx)
    └── PermanentDeliveryError   retrying cannot help (recipient refused, bad URL)
"""

from __future__ import annotations

from monitor.errors import MonitorError


class DeliveryError(MonitorError):
    """One attempt to deliver a message to one recipient failed; it may be retried."""

    def __init__(self, channel: str, recipient: str, reason: str) -> None:
        self.channel = channel
        self.recipient = recipient
        self.reason = reason
        super().__init__(f"{channel} to {recipient}: {reason}")


class PermanentDeliveryError(DeliveryError):
    """The server refused for good (5xx recipient refusal, 4xx webhook answer): no retry."""
