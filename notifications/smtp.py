"""Email over real SMTP: plain, STARTTLS or implicit TLS, optional AUTH (only over TLS unless
``allow_plaintext_auth``), one connection reused for a batch of deliveries. The password comes
from the environment only and is never logged or put in an error message.
"""

from __future__ import annotations

import email.utils
import os
import smtplib
import ssl
from email.message import EmailMessage

from monitor.config import EmailConfig
from monitor.errors import ConfigError
from monitor.store.outbox import Delivery
from notifications.errors import DeliveryError, PermanentDeliveryError


class SmtpUnavailable(DeliveryError):
    """The server could not be reached or dropped the connection: the other emails of this
    round would fail the same way, so the sender stops trying until the next round."""


def build_email(delivery: Delivery, *, from_address: str) -> EmailMessage:
    """The same bytes on every attempt: headers and bodies all come from the stored message."""
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = delivery.recipient
    message["Subject"] = delivery.subject
    message["Date"] = email.utils.format_datetime(delivery.created_at)
    message["Message-ID"] = delivery.rfc_message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message["X-Policy-Monitor-Kind"] = delivery.kind
    # quoted-printable keeps every line 7-bit and short, which old relays and clients need.
    message.set_content(delivery.body_text, cte="quoted-printable")
    if delivery.body_html:
        message.add_alternative(delivery.body_html, subtype="html", cte="quoted-printable")
    return message


def _tls_context(config: EmailConfig) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=config.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise SmtpUnavailable("email", config.host, f"cannot load ca_file: {exc}") from exc


class SmtpTransport:
    """Sends one message to one recipient at a time over a kept-open connection."""

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self._connection: smtplib.SMTP | None = None

    def _password(self) -> str:
        password = os.environ.get(self.config.password_env, "")
        if not password:
            raise SmtpUnavailable(
                "email",
                self.config.host,
                f"username is set but environment variable {self.config.password_env} is empty",
            )
        return password

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        where = f"{config.host}:{config.port}"
        if config.username and config.security == "none" and not config.allow_plaintext_auth:
            # Checked when the config loads too; this guards settings built in code.
            raise ConfigError(
                'username is set but security is "none": the password would cross the '
                "network in clear text; use starttls or tls, or allow_plaintext_auth = true",
                key="email.security",
            )
        try:
            connection: smtplib.SMTP
            if config.security == "tls":
                connection = smtplib.SMTP_SSL(
                    config.host,
                    config.port,
                    timeout=config.timeout_seconds,
                    context=_tls_context(config),
                )
            else:
                connection = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
            try:
                connection.ehlo()
                if config.security == "starttls":
                    connection.starttls(context=_tls_context(config))
                    connection.ehlo()
                if config.username:
                    connection.login(config.username, self._password())
            except BaseException:
                connection.close()
                raise
        except smtplib.SMTPAuthenticationError as exc:
            # The server's reply only: smtplib never puts the credentials in it.
            raise SmtpUnavailable(
                "email", where, f"authentication refused ({exc.smtp_code})"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise SmtpUnavailable("email", where, f"{type(exc).__name__}: {exc}") from exc
        return connection

    def send(self, message: EmailMessage, recipient: str) -> str:
        """Deliver `message` to `recipient`; returns the server's acceptance reply."""
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = self._connect()
            try:
                return self._transaction(self._connection, message, recipient)
            except smtplib.SMTPServerDisconnected as exc:
                # A kept-open connection the server closed meanwhile: reconnect once.
                self._connection = None
                if attempt == 2:
                    raise SmtpUnavailable("email", recipient, f"disconnected: {exc}") from exc
            except OSError as exc:
                self.close()
                raise SmtpUnavailable("email", recipient, f"{type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    def _transaction(self, conn: smtplib.SMTP, message: EmailMessage, recipient: str) -> str:
        sender = self.config.from_address
        code, reply = conn.mail(sender)
        if code != 250:
            conn.rset()
            self._refused(recipient, "MAIL FROM", code, reply)
        code, reply = conn.rcpt(recipient)
        if code not in (250, 251):
            conn.rset()
            self._refused(recipient, "RCPT TO", code, reply)
        # CRLF line ends: smtplib sends bytes as they are, and SMTP lines end in CRLF.
        code, reply = conn.data(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))
        if code != 250:
            self._refused(recipient, "DATA", code, reply)
        return f"{code} {reply.decode(errors='replace')}"

    @staticmethod
    def _refused(recipient: str, step: str, code: int, reply: bytes) -> None:
        text = f"{step} refused: {code} {reply.decode(errors='replace')}"
        if 500 <= code < 600:
            raise PermanentDeliveryError("email", recipient, text)
        raise DeliveryError("email", recipient, text)

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                self._connection.close()
            self._connection = None
