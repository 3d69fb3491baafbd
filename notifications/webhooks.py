"""Webhooks: one JSON POST per change batch, signed with HMAC-SHA256 over the exact body.

Header ``X-Policy-Monitor-Signature: sha256=HEX`` where HEX = HMAC-SHA256(secret, body); the
secret comes from the environment variable the webhook's `secret_env` names. Receivers should
compare with `hmac.compare_digest` and de-duplicate on ``X-Policy-Monitor-Delivery`` (the same
on every retry of a batch).
"""

from __future__ import annotations

import hashlib
import hmac
import os

import httpx

from monitor.config import WebhookConfig
from monitor.store.outbox import Delivery
from notifications.errors import DeliveryError, PermanentDeliveryError

SIGNATURE_HEADER = "X-Policy-Monitor-Signature"
DELIVERY_HEADER = "X-Policy-Monitor-Delivery"


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookTransport:
    def __init__(self, client: httpx.Client | None = None) -> None:
        # No redirects: a signed body must go where it was configured to, nowhere else.
        self._client = client or httpx.Client(follow_redirects=False, trust_env=False)

    def send(self, delivery: Delivery, hook: WebhookConfig | None) -> str:
        url = delivery.recipient
        if hook is None:
            raise PermanentDeliveryError(
                "webhook", url, f"webhook {delivery.target!r} is no longer configured"
            )
        if not url.startswith(("http://", "https://")):
            raise PermanentDeliveryError("webhook", url, "only http(s) URLs are allowed")
        secret = os.environ.get(hook.secret_env, "")
        if not secret:
            raise DeliveryError(
                "webhook", url, f"environment variable {hook.secret_env} (the secret) is empty"
            )
        body = (delivery.payload or "").encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "policy-monitor-webhook/1",
            SIGNATURE_HEADER: signature(secret.encode(), body),
            DELIVERY_HEADER: delivery.rfc_message_id.strip("<>"),
        }
        try:
            response = self._client.post(
                url, content=body, headers=headers, timeout=hook.timeout_seconds
            )
        except httpx.HTTPError as exc:
            raise DeliveryError("webhook", url, f"{type(exc).__name__}: {exc}") from exc
        if 200 <= response.status_code < 300:
            return f"HTTP {response.status_code}"
        detail = f"HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code in (408, 425, 429) or response.status_code >= 500:
            raise DeliveryError("webhook", url, detail)
        raise PermanentDeliveryError("webhook", url, detail)

    def close(self) -> None:
        self._client.close()
