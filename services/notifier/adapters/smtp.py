"""Email over SMTP with aiosmtplib: plain, STARTTLS or implicit TLS, optional login, 10 s timeout.

Each message is a multipart/alternative email (the plain text we rendered, and a simple HTML
version of it) with a Message-ID and our notification id in ``X-EHC-Notification-Id``, so a bounce
or a support question can be traced to the notification without any personal data.

Failures: a 4xx reply, a refused or dropped connection and a timeout may pass (retryable); a 5xx
reply is final (unknown mailbox, refused sender, bad credentials, TLS not offered). Connections
may be reused through a small pool (``pool_size``); see SmtpChannel.
"""

from __future__ import annotations

import asyncio
import html
import re
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import Any, Literal

import aiosmtplib

from services.notifier.adapters.channels import (
    OutgoingMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
    SendResult,
)
from services.notifier.domain.policy import NotificationStatus
from shared.logging import get_logger, scrub
from shared.settings import NotifierSettings

log = get_logger(__name__)

NOTIFICATION_ID_HEADER = "X-EHC-Notification-Id"
DEFAULT_TIMEOUT_SECONDS = 10.0
TlsMode = Literal["none", "starttls", "tls"]

_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]")


def text_to_html(text: str, language: str = "en") -> str:
    """A plain, accessible HTML rendering of our text emails: paragraphs, bullet lists, live links."""
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    parts: list[str] = []
    for block in blocks:
        lines = [line.rstrip() for line in block.splitlines()]
        if all(line.lstrip().startswith(("- ", "* ")) for line in lines):
            items = "".join(f"<li>{_inline(line.lstrip()[2:])}</li>" for line in lines)
            parts.append(f"<ul>{items}</ul>")
        else:
            parts.append("<p>" + "<br>\n".join(_inline(line) for line in lines) + "</p>")
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="{html.escape(language)}">\n<head><meta charset="utf-8"></head>\n'
        f'<body style="font-family: Arial, sans-serif; font-size: 16px; line-height: 1.5;">\n{body}\n'
        "</body>\n</html>\n"
    )


def _inline(line: str) -> str:
    out: list[str] = []
    last = 0
    for match in _URL.finditer(line):
        out.append(html.escape(line[last : match.start()]))
        url = html.escape(match.group(0))
        out.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    out.append(html.escape(line[last:]))
    return "".join(out)


_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP  # readable in any mail client's "show original", unlike base64


def _header_text(text: str) -> str | Header:
    return text if text.isascii() else Header(text, "utf-8")


def build_email_message(msg: OutgoingMessage, mail_from: str, now: datetime | None = None) -> Message:
    """The email for ``msg``: text and HTML alternatives, Message-ID, Date and our id header.

    Built with the classic (compat32) MIME classes: the same RFC 5322 message as EmailMessage makes,
    for a fifth of the CPU (its header objects parse every value again), which counts when a
    digest morning or a breach wave sends hundreds of emails a second.
    """
    email = MIMEMultipart("alternative")
    email["From"] = mail_from
    email["To"] = msg.to
    email["Subject"] = _header_text(msg.subject)  # type: ignore[assignment]
    email["Date"] = format_datetime(now or datetime.now(UTC))
    # one id per notification: a retry of the same notification is the same message (receivers may
    # de-duplicate it), and the id fits on one header line
    email["Message-ID"] = f"<{msg.notification_id}@{mail_from.rpartition('@')[2] or 'ehc.invalid'}>"
    email[NOTIFICATION_ID_HEADER] = msg.notification_id
    # automated mail: ask auto-responders to stay quiet (RFC 3834)
    email["Auto-Submitted"] = "auto-generated"
    email["Content-Language"] = msg.language
    email.attach(MIMEText(msg.body, "plain", _UTF8_QP))  # type: ignore[arg-type]
    email.attach(MIMEText(text_to_html(msg.body, msg.language), "html", _UTF8_QP))  # type: ignore[arg-type]
    return email


def _refusal_codes(exc: aiosmtplib.SMTPRecipientsRefused) -> Iterable[int]:
    return (r.code for r in exc.recipients)


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind ``exc`` (aiosmtplib wraps a failed implicit-TLS handshake), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) and not isinstance(seen, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def classify_smtp_error(exc: Exception) -> SendError:
    """4xx, connection problems and timeouts: retryable; 5xx and everything else: permanent.

    A TLS failure (untrusted certificate, protocol mismatch) is a configuration problem: permanent.
    """
    if (tls_error := _tls_failure(exc)) is not None:
        return PermanentSendError(f"TLS with the mail server failed ({type(tls_error).__name__})")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = list(_refusal_codes(exc))
        temporary = bool(codes) and all(400 <= c < 500 for c in codes)
        reason = f"the mail server refused the recipient ({', '.join(map(str, codes))})"
        return RetryableSendError(reason) if temporary else PermanentSendError(reason)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        # the reply text may quote the address: scrub it, and keep the code first
        reason = scrub(f"the mail server answered {exc.code}: {exc.message}")[:300]
        if 400 <= exc.code < 500:
            return RetryableSendError(reason)
        return PermanentSendError(reason)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return RetryableSendError(f"the mail server did not answer in time ({type(exc).__name__})")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError | ConnectionError):
        return RetryableSendError(f"could not talk to the mail server ({type(exc).__name__})")
    if isinstance(exc, aiosmtplib.SMTPException):
        # e.g. "STARTTLS extension not supported by server", no AUTH offered
        return PermanentSendError(scrub(f"the mail server cannot do what we need: {exc.message}")[:300])
    if isinstance(exc, OSError):  # DNS failure, network unreachable
        return RetryableSendError(f"could not reach the mail server ({type(exc).__name__})")
    return PermanentSendError(f"sending the email failed ({type(exc).__name__})")


@dataclass
class _Connection:
    client: aiosmtplib.SMTP
    last_used: float


class SmtpChannel:
    """A Channel for ``smtp`` messages.

    ``pool_size`` 0: one connection per message. Otherwise up to ``pool_size`` connections are kept
    open and reused, one message at a time each (a digest morning or a breach wave is hundreds of
    emails; a new TCP, TLS and login handshake for each costs more than the email). A connection
    idle for longer than ``max_idle_seconds`` is closed rather than reused, and one idle for more
    than a few seconds is checked with NOOP first, so a connection the server dropped is never
    discovered half-way through a message (which could send it twice). After a reply error (4xx,
    5xx) aiosmtplib resets the envelope and the connection stays usable; after any other error it
    is closed. Errors are sorted exactly as without the pool.
    """

    def __init__(
        self,
        host: str,
        port: int,
        mail_from: str,
        *,
        tls: TlsMode = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        tls_context: ssl.SSLContext | None = None,
        pool_size: int = 0,
        max_idle_seconds: float = 30.0,
        check_after_idle_seconds: float = 5.0,
    ) -> None:
        if tls not in ("none", "starttls", "tls"):
            raise ValueError(f"unknown SMTP TLS mode {tls!r}: none, starttls or tls")
        if (username is None) != (password is None):
            raise ValueError("an SMTP login needs both a username and a password")
        if pool_size < 0:
            raise ValueError("pool_size must be 0 (no pool) or more")
        self.host, self.port, self.mail_from, self.tls = host, port, mail_from, tls
        self._username, self._password = username, password
        self._timeout = timeout
        self._tls_context = tls_context
        self.pool_size = pool_size
        self._max_idle = max_idle_seconds
        self._check_after = check_after_idle_seconds
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(pool_size) if pool_size else None
        self.connections_opened = 0

    @classmethod
    def from_settings(cls, settings: NotifierSettings, **kwargs: Any) -> SmtpChannel:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.mail_from,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=password,
            **kwargs,
        )

    async def send(self, msg: OutgoingMessage) -> SendResult:
        if "@" not in msg.to:
            raise PermanentSendError("an email needs an email address")
        email = build_email_message(msg, self.mail_from)
        try:
            if self._slots is None:
                await aiosmtplib.send(email, **self._client_options())
            else:
                await self._send_pooled(email)
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            error = classify_smtp_error(exc)
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                log.error("smtp.auth_failed", notification_id=msg.notification_id, host=self.host,
                          error=error.reason, hint="check EHC_NOTIFIER__SMTP_USERNAME and SMTP_PASSWORD")
            else:
                log.warning("smtp.failed", notification_id=msg.notification_id, host=self.host,
                            retryable=error.retryable, error=error.reason)
            raise error from None
        message_id = str(email["Message-ID"])
        log.debug("smtp.accepted", notification_id=msg.notification_id, provider_reference=message_id)
        return SendResult(provider_reference=message_id, status=NotificationStatus.SENT)

    def _client_options(self) -> dict[str, Any]:
        return {
            "hostname": self.host,
            "port": self.port,
            "username": self._username,
            "password": self._password,
            "use_tls": self.tls == "tls",
            # False, not None: "none" must not upgrade opportunistically to a certificate we
            # cannot check, and "starttls" must fail when the server does not offer it
            "start_tls": self.tls == "starttls",
            "tls_context": self._tls_context,
            "timeout": self._timeout,
        }

    async def _send_pooled(self, email: Message) -> None:
        assert self._slots is not None
        async with self._slots:
            conn = await self._checkout()
            try:
                await conn.client.send_message(email)
            except aiosmtplib.SMTPServerDisconnected:
                await self._discard(conn)
                raise
            except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException):
                # a reply error: aiosmtplib sent RSET, the connection is fine for the next message
                self._checkin(conn)
                raise
            except BaseException:
                await self._discard(conn)
                raise
            self._checkin(conn)

    async def _checkout(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            idle_for = now - conn.last_used
            if not conn.client.is_connected or idle_for > self._max_idle:
                await self._discard(conn)
                continue
            if idle_for > self._check_after:
                try:
                    await conn.client.noop()
                except (aiosmtplib.SMTPException, OSError):
                    await self._discard(conn)
                    continue
            return conn
        client = aiosmtplib.SMTP(**self._client_options())
        await client.connect()  # STARTTLS and login as configured; errors sorted by the caller
        self.connections_opened += 1
        return _Connection(client, now)

    def _checkin(self, conn: _Connection) -> None:
        if conn.client.is_connected:
            conn.last_used = time.monotonic()
            self._idle.append(conn)

    @staticmethod
    async def _discard(conn: _Connection) -> None:
        try:
            if conn.client.is_connected:
                conn.client.close()
        except Exception:  # closing a broken connection: nothing more to do
            pass

    async def aclose(self) -> None:
        """Say QUIT on the idle connections (none without a pool)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            try:
                await asyncio.wait_for(conn.client.quit(), timeout=2)
            except Exception:
                await self._discard(conn)


__all__ = [
    "NOTIFICATION_ID_HEADER",
    "SmtpChannel",
    "build_email_message",
    "classify_smtp_error",
    "text_to_html",
]
