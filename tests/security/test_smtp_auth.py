"""SMTP AUTH only over TLS (issue 16, finding 6): with ``security = "none"`` a username is a
configuration error unless ``allow_plaintext_auth = true``, and the transport never sends the
password over a plain connection, even when its settings were built in code."""

from __future__ import annotations

from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from fixtures.smtp import Inbox, smtp_server
from monitor.config import EmailConfig, parse_config
from monitor.errors import ConfigError
from notifications.smtp import SmtpTransport

PASSWORD = "clear-text-would-leak-this-Pa55"


def _recording(seen: list[str]) -> Any:
    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            seen.append(data.password.decode())
        return AuthResult(success=True)

    return authenticate


def test_auth_without_tls_is_a_config_error_that_says_what_to_do() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config({"email": {"username": "monitor"}})
    message = str(refused.value)
    assert "email" in message and "starttls" in message and "allow_plaintext_auth" in message
    allowed = parse_config({"email": {"username": "monitor", "allow_plaintext_auth": True}})
    assert allowed.email.allow_plaintext_auth
    assert parse_config({"email": {"username": "monitor", "security": "starttls"}})


def test_the_transport_never_sends_the_password_in_clear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    seen: list[str] = []
    with smtp_server(Inbox(), authenticator=_recording(seen), auth_require_tls=False) as server:
        config = EmailConfig(
            host="127.0.0.1",
            port=server.port,
            username="monitor",
            password_env="TEST_SMTP_PASSWORD",
        )
        transport = SmtpTransport(config)
        with pytest.raises(ConfigError, match="allow_plaintext_auth"):
            transport._connect()
        transport.close()
        assert seen == []  # the server never saw the password
        # Explicitly allowed (a relay on a trusted link): it logs in.
        allowed = SmtpTransport(
            EmailConfig(
                host="127.0.0.1",
                port=server.port,
                username="monitor",
                password_env="TEST_SMTP_PASSWORD",
                allow_plaintext_auth=True,
            )
        )
        allowed._connect().quit()
        assert seen == [PASSWORD]
