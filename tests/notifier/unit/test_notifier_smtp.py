"""The SMTP channel against a real aiosmtpd server: plain, STARTTLS with login, implicit TLS."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from services.notifier.adapters.channels import OutgoingMessage, PermanentSendError, RetryableSendError, SendError
from services.notifier.adapters.smtp import NOTIFICATION_ID_HEADER, SmtpChannel, build_email_message, text_to_html
from services.notifier.domain.policy import NotificationStatus
from shared.settings import NotifierSettings
from tests.notifier.conftest import SMTP_PASSWORD, SMTP_USER, CollectingHandler, SmtpServer, TlsFiles
from tests.notifier.notify_stub import free_port

FROM = "ehc-deadlines@council.example"
BODY = (
    "Dear Sam Patel,\n\nThis is a reminder of a statutory deadline on case case-7f3a9c.\n\n"
    "Deadline: Decide whether to assess\nOpen the case: https://ehc.example/cases/case-7f3a9c\n\n"
    "- first <item>\n- second & last"
)


def message(**changes: object) -> OutgoingMessage:
    fields: dict = {
        "notification_id": str(uuid.uuid4()), "channel": "smtp", "to": "sam.patel@council.example",
        "template": "caseworker_reminder", "subject": "Due in 3 working days: Decide whether to assess",
        "body": BODY, "language": "en",
    }
    fields.update(changes)
    return OutgoingMessage(**fields)


def parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_plain_smtp_delivers_a_multipart_email(mail_server: SmtpServer) -> None:
    channel = SmtpChannel(mail_server.host, mail_server.port, FROM)
    msg = message()
    result = await channel.send(msg)
    assert result.status is NotificationStatus.SENT
    [mail] = mail_server.handler.messages
    assert (mail.mail_from, mail.rcpt_tos, mail.tls) == (FROM, ["sam.patel@council.example"], False)
    email = parse(mail.content)
    assert email["Subject"] == msg.subject and email["To"] == msg.to and email["From"] == FROM
    assert email[NOTIFICATION_ID_HEADER] == msg.notification_id
    assert email["Message-ID"] == result.provider_reference
    assert email["Message-ID"].endswith("@council.example>")
    assert email["Content-Language"] == "en" and email["Date"]
    assert email.get_content_type() == "multipart/alternative"
    text = email.get_body(preferencelist=("plain",))
    html = email.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n").strip() == BODY
    html_content = html.get_content()
    assert '<a href="https://ehc.example/cases/case-7f3a9c">https://ehc.example/cases/case-7f3a9c</a>' in html_content
    assert "<li>first &lt;item&gt;</li>" in html_content and "second &amp; last" in html_content
    assert '<html lang="en">' in html_content


def test_html_rendering_escapes_and_links() -> None:
    html = text_to_html('Go to https://x.example/a?b=1&c=2. <script>alert("x")</script>', "cy")
    assert '<a href="https://x.example/a?b=1&amp;c=2">' in html  # the full stop is not part of the link
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<html lang="cy">' in html


def test_welsh_email_is_marked_welsh() -> None:
    email = build_email_message(message(language="cy", body="Annwyl Sam,\n\nDyma nodyn atgoffa."), FROM)
    assert email["Content-Language"] == "cy"


def test_a_subject_and_body_beyond_ascii_survive_the_trip() -> None:
    subject = "Terfyn amser: adolygiad blynyddol, dŵr a thân – achos case-1, dyddiad ŷd"
    body = "Annwyl Siân,\n\nMae'r cynllun yn ddyledus ddydd Llun – gweler https://ehc.example/cy"
    raw = bytes(build_email_message(message(language="cy", subject=subject, body=body), FROM))
    assert raw.isascii()  # encoded words and quoted-printable: any mail server takes it
    email = parse(raw)
    assert email["Subject"] == subject
    assert email.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n").strip() == body


@pytest.mark.parametrize(
    ("where", "reply", "error"),
    [
        ("rcpt", "450 4.2.1 Mailbox busy, try later", RetryableSendError),
        ("rcpt", "550 5.1.1 No such user here", PermanentSendError),
        ("data", "451 4.3.0 Temporary local problem", RetryableSendError),
        ("data", "554 5.6.0 Message rejected", PermanentSendError),
    ],
)
@pytest.mark.parametrize("pool_size", [0, 2])
async def test_smtp_replies_are_sorted(
    mail_server: SmtpServer, where: str, reply: str, error: type[SendError], pool_size: int
) -> None:
    replies = mail_server.handler.rcpt_replies if where == "rcpt" else mail_server.handler.data_replies
    replies.append(reply)
    channel = SmtpChannel(mail_server.host, mail_server.port, FROM, pool_size=pool_size)
    with pytest.raises(error) as info:
        await channel.send(message())
    assert reply[:3] in info.value.reason
    assert "sam.patel@council.example" not in info.value.reason
    assert mail_server.handler.messages == []
    await channel.send(message())  # the next attempt goes through
    assert len(mail_server.handler.messages) == 1
    if pool_size:
        assert channel.connections_opened == 1  # a reply error leaves the connection usable (RSET)
    await channel.aclose()


async def test_a_refused_connection_is_retryable() -> None:
    channel = SmtpChannel("127.0.0.1", free_port(), FROM)
    with pytest.raises(RetryableSendError):
        await channel.send(message())


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts and never says a word (not even the SMTP greeting)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_a_server_that_does_not_answer_is_retryable_after_the_timeout(silent_server: int) -> None:
    channel = SmtpChannel("127.0.0.1", silent_server, FROM, timeout=0.2)
    with pytest.raises(RetryableSendError, match="did not answer in time"):
        await asyncio.wait_for(channel.send(message()), timeout=5)


async def test_starttls_with_login(mail_server_factory: Callable[..., SmtpServer], tls_files: TlsFiles) -> None:
    server = mail_server_factory(tls_context=tls_files.server_context(), require_starttls=True, with_auth=True)
    channel = SmtpChannel(
        server.host, server.port, FROM, tls="starttls", username=SMTP_USER, password=SMTP_PASSWORD,
        tls_context=tls_files.client_context(),
    )
    await channel.send(message())
    [mail] = server.handler.messages
    assert mail.tls is True and mail.login == SMTP_USER


async def test_a_wrong_password_is_permanent(
    mail_server_factory: Callable[..., SmtpServer], tls_files: TlsFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    server = mail_server_factory(tls_context=tls_files.server_context(), require_starttls=True, with_auth=True)
    channel = SmtpChannel(
        server.host, server.port, FROM, tls="starttls", username=SMTP_USER, password="wrong password",
        tls_context=tls_files.client_context(),
    )
    with pytest.raises(PermanentSendError, match="535"):
        await channel.send(message())
    output = capsys.readouterr()
    assert "smtp.auth_failed" in output.out + output.err
    assert "wrong password" not in output.out + output.err


async def test_starttls_that_the_server_does_not_offer_is_permanent(mail_server: SmtpServer) -> None:
    channel = SmtpChannel(mail_server.host, mail_server.port, FROM, tls="starttls")
    with pytest.raises(PermanentSendError, match="STARTTLS"):
        await channel.send(message())


async def test_an_untrusted_certificate_is_permanent(
    mail_server_factory: Callable[..., SmtpServer], tls_files: TlsFiles
) -> None:
    server = mail_server_factory(tls_context=tls_files.server_context(), require_starttls=True)
    channel = SmtpChannel(server.host, server.port, FROM, tls="starttls")  # the system's CAs only
    with pytest.raises(PermanentSendError, match="TLS with the mail server failed"):
        await channel.send(message())
    assert server.handler.messages == []


async def test_an_untrusted_certificate_with_implicit_tls_is_permanent(
    mail_server_factory: Callable[..., SmtpServer], tls_files: TlsFiles
) -> None:
    server = mail_server_factory(ssl_context=tls_files.server_context())
    channel = SmtpChannel(server.host, server.port, FROM, tls="tls")
    with pytest.raises(PermanentSendError, match="TLS with the mail server failed"):
        await channel.send(message())


async def test_implicit_tls(mail_server_factory: Callable[..., SmtpServer], tls_files: TlsFiles) -> None:
    server = mail_server_factory(ssl_context=tls_files.server_context())
    channel = SmtpChannel(server.host, server.port, FROM, tls="tls", tls_context=tls_files.client_context())
    result = await channel.send(message())
    assert result.status is NotificationStatus.SENT
    [mail] = server.handler.messages
    assert mail.tls is True


async def test_an_address_without_at_is_refused_before_connecting() -> None:
    channel = SmtpChannel("127.0.0.1", free_port(), FROM)
    with pytest.raises(PermanentSendError, match="email address"):
        await channel.send(message(to="+447900900123"))


def test_settings_build_the_channel() -> None:
    settings = NotifierSettings(smtp_host="mail", smtp_port=587, smtp_tls="starttls", smtp_username="u",
                                smtp_password=SecretStr("p"), mail_from="x@council.example")
    channel = SmtpChannel.from_settings(settings)
    assert (channel.host, channel.port, channel.tls) == ("mail", 587, "starttls")
    assert channel.mail_from == "x@council.example"
    with pytest.raises(ValueError, match="both a username and a password"):
        SmtpChannel("mail", 25, FROM, username="only")
    with pytest.raises(ValueError, match="unknown SMTP TLS mode"):
        SmtpChannel("mail", 25, FROM, tls="ssl")  # type: ignore[arg-type]


# --- the connection pool -----------------------------------------------------------------------


async def test_a_pool_reuses_its_connections(mail_server: SmtpServer) -> None:
    channel = SmtpChannel(mail_server.host, mail_server.port, FROM, pool_size=2)
    for _ in range(3):
        await channel.send(message())
    assert channel.connections_opened == 1
    await asyncio.gather(*(channel.send(message()) for _ in range(6)))
    assert channel.connections_opened == 2  # never more than pool_size at once
    assert len(mail_server.handler.messages) == 9
    ids = {parse(m.content)[NOTIFICATION_ID_HEADER] for m in mail_server.handler.messages}
    assert len(ids) == 9
    await channel.aclose()


async def test_a_pooled_starttls_connection_logs_in_once(
    mail_server_factory: Callable[..., SmtpServer], tls_files: TlsFiles
) -> None:
    server = mail_server_factory(tls_context=tls_files.server_context(), require_starttls=True, with_auth=True)
    channel = SmtpChannel(server.host, server.port, FROM, tls="starttls", username=SMTP_USER, password=SMTP_PASSWORD,
                          tls_context=tls_files.client_context(), pool_size=1)
    await channel.send(message())
    await channel.send(message())
    assert channel.connections_opened == 1
    assert [(m.tls, m.login) for m in server.handler.messages] == [(True, SMTP_USER)] * 2
    await channel.aclose()


async def test_a_pooled_wrong_password_is_still_permanent(
    mail_server_factory: Callable[..., SmtpServer], tls_files: TlsFiles
) -> None:
    server = mail_server_factory(tls_context=tls_files.server_context(), require_starttls=True, with_auth=True)
    channel = SmtpChannel(server.host, server.port, FROM, tls="starttls", username=SMTP_USER, password="wrong",
                          tls_context=tls_files.client_context(), pool_size=2)
    with pytest.raises(PermanentSendError, match="535"):
        await channel.send(message())


async def test_a_pooled_send_to_a_silent_server_times_out_as_retryable(silent_server: int) -> None:
    channel = SmtpChannel("127.0.0.1", silent_server, FROM, timeout=0.2, pool_size=2)
    with pytest.raises(RetryableSendError):
        await asyncio.wait_for(channel.send(message()), timeout=5)


async def test_an_idle_connection_is_not_reused_for_ever(mail_server: SmtpServer) -> None:
    channel = SmtpChannel(mail_server.host, mail_server.port, FROM, pool_size=1, max_idle_seconds=0)
    await channel.send(message())
    await channel.send(message())
    assert channel.connections_opened == 2
    await channel.aclose()


async def test_a_connection_the_server_dropped_is_replaced_before_a_message_is_lost() -> None:
    handler, port = CollectingHandler(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    channel = SmtpChannel("127.0.0.1", port, FROM, pool_size=1, check_after_idle_seconds=0)
    await channel.send(message())
    controller.stop()  # the server goes away, and comes back: the pooled connection is dead
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        await channel.send(message())  # NOOP finds the dead connection; a new one carries the message
    finally:
        controller.stop()
    assert channel.connections_opened == 2
    assert len(handler.messages) == 2
