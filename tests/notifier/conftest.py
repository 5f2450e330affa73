"""Fixtures for the notifier's channel tests: a GOV.UK Notify stand-in, a recording HTTP server
(SMS gateway, callback receiver), a real aiosmtpd SMTP server, and a self-signed certificate."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.notifier.adapters.notify import NotifyClient
from tests.notifier.notify_stub import NotifyStub, RecordingHttpServer, ServerThread, StubTemplate, free_port

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"

SMS_TEMPLATE = StubTemplate(
    id="f33517ff-2a88-4f6e-b855-c550268ce08a",
    type="sms",
    body="((council_name)) has received the request. The council must tell you by ((due_on)). ((link))",
)
SMS_TEMPLATE_CY = StubTemplate(
    id="0b5bfd5b-6d23-4c8b-9d3a-0e4b2c1f2a11",
    type="sms",
    body="Mae ((council_name)) wedi cael y cais. Erbyn ((due_on)). ((link))",
)
EMAIL_TEMPLATE = StubTemplate(
    id="a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d",
    type="email",
    subject="((subject))",
    body="((body))",
)
STUB_TEMPLATES = (SMS_TEMPLATE, SMS_TEMPLATE_CY, EMAIL_TEMPLATE)
#: our template names -> the stand-in's template ids, as EHC_NOTIFIER__NOTIFY_TEMPLATES would say
NOTIFY_TEMPLATE_IDS = {
    "family_request_received.sms": SMS_TEMPLATE.id,
    "family_request_received.sms.cy": SMS_TEMPLATE_CY.id,
    "caseworker_reminder.email": EMAIL_TEMPLATE.id,
}


# --- GOV.UK Notify stand-in --------------------------------------------------------------------


@pytest.fixture(scope="session")
def notify_stub_server() -> Iterator[tuple[NotifyStub, ServerThread]]:
    stub = NotifyStub(SERVICE_ID, [SECRET], STUB_TEMPLATES)
    server = ServerThread(stub.app).start()
    yield stub, server
    server.stop()


@pytest.fixture
def notify_stub(notify_stub_server: tuple[NotifyStub, ServerThread]) -> NotifyStub:
    """The stand-in, emptied of earlier tests' requests, messages and scripted failures."""
    stub, _ = notify_stub_server
    stub.reset()
    return stub


@pytest.fixture
def notify_url(notify_stub_server: tuple[NotifyStub, ServerThread]) -> str:
    return notify_stub_server[1].url


@pytest.fixture
async def notify_client(notify_stub: NotifyStub, notify_url: str) -> AsyncIterator[NotifyClient]:
    client = NotifyClient(notify_stub.api_key(), NOTIFY_TEMPLATE_IDS, notify_url)
    yield client
    await client.aclose()


# --- recording HTTP server ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def recording_server_thread() -> Iterator[tuple[RecordingHttpServer, ServerThread]]:
    recorder = RecordingHttpServer()
    server = ServerThread(recorder.app).start()
    yield recorder, server
    server.stop()


@dataclass
class Recorder:
    server: RecordingHttpServer
    url: str


@pytest.fixture
def http_recorder(recording_server_thread: tuple[RecordingHttpServer, ServerThread]) -> Recorder:
    recorder, server = recording_server_thread
    recorder.reset()
    return Recorder(recorder, server.url)


# --- certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for localhost and 127.0.0.1, made with `cryptography`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return TlsFiles(cert_path, key_path)


# --- SMTP -----------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: str | None


class CollectingHandler:
    """An aiosmtpd handler that keeps every message, or answers with scripted replies."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []
        self.rcpt_replies: list[str] = []  # e.g. "450 4.2.1 Mailbox busy"
        self.data_replies: list[str] = []

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_replies:
            return self.data_replies.pop(0)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        # STARTTLS sets session.ssl; implicit TLS shows on the transport
        tls = bool(session.ssl) or server.transport.get_extra_info("ssl_object") is not None
        self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, tls, login))
        return "250 Message accepted for delivery"


SMTP_USER, SMTP_PASSWORD = "notifier", "correct horse battery staple"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == SMTP_USER
        and auth_data.password.decode() == SMTP_PASSWORD
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@dataclass
class SmtpServer:
    handler: CollectingHandler
    host: str
    port: int


@pytest.fixture
def mail_server_factory() -> Iterator[Callable[..., SmtpServer]]:
    """Start a real aiosmtpd Controller on a free port; keyword arguments go to aiosmtpd's SMTP
    (tls_context, require_starttls, auth_required, ...) or to Controller (ssl_context)."""
    controllers: list[Controller] = []

    def start(*, with_auth: bool = False, **kwargs: Any) -> SmtpServer:
        handler = CollectingHandler()
        port = free_port()
        if with_auth:
            kwargs.update(authenticator=_authenticator, auth_required=True)
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        controllers.append(controller)
        return SmtpServer(handler, "127.0.0.1", port)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def mail_server(mail_server_factory: Callable[..., SmtpServer]) -> SmtpServer:
    return mail_server_factory()
