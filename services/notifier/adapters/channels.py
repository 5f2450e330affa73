"""The channel contract: what every sender (Notify, SMTP, SMS gateway, file sink) takes and answers.

A channel sends one message and either returns a SendResult or raises one of two errors: the
failure is sorted once, where the protocol is known, into "try again later" (network errors,
timeouts, 5xx, 429, SMTP 4xx) and "never try again" (everything else). The outbox worker only
reads that verdict; it never inspects HTTP status codes or SMTP replies itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar, Literal, Protocol, runtime_checkable

from services.notifier.domain.policy import NotificationStatus

ChannelName = Literal["notify_sms", "notify_email", "smtp", "sms_gateway", "file"]
CHANNEL_NAMES: tuple[ChannelName, ...] = ("notify_sms", "notify_email", "smtp", "sms_gateway", "file")


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one recipient, rendered and ready to go.

    ``to``, ``personalisation``, ``subject`` and ``body`` hold personal data and are left out of
    ``repr`` so that a traceback or a careless log line cannot leak them. ``reference`` is what the
    provider stores with the message: never personal data; it defaults to the notification_id.
    """

    notification_id: str
    channel: ChannelName
    to: str = field(repr=False)
    template: str
    personalisation: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)
    subject: str = field(default="", repr=False)
    body: str = field(default="", repr=False)
    reference: str = ""
    language: Literal["en", "cy"] = "en"

    def __post_init__(self) -> None:
        if self.channel not in CHANNEL_NAMES:
            raise ValueError(f"unknown channel {self.channel!r}; one of {', '.join(CHANNEL_NAMES)}")
        if not self.reference:
            object.__setattr__(self, "reference", self.notification_id)

    @property
    def is_email(self) -> bool:
        return "@" in self.to


@dataclass(frozen=True)
class SendResult:
    """What the provider said: its id for the message (for receipts and status polls) and our status."""

    provider_reference: str | None
    status: NotificationStatus


class SendError(Exception):
    """A send that did not happen. ``reason`` is safe to log and to store: no personal data."""

    retryable: ClassVar[bool] = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryableSendError(SendError):
    """Try again later: the provider or the network failed, or asked us to slow down.

    ``retry_after`` is the provider's wish in seconds (a Retry-After header), if it said one.
    """

    retryable: ClassVar[bool] = True

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Never try again as it is: the request is wrong (bad number, unknown template, bad credentials)."""


@runtime_checkable
class Channel(Protocol):
    async def send(self, msg: OutgoingMessage) -> SendResult:
        """Send one message; raise RetryableSendError or PermanentSendError when it was not sent."""
        ...

    async def aclose(self) -> None:
        """Release connections; the channel is not used afterwards."""
        ...


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_for_http_status(status_code: int, reason: str, retry_after: str | None = None) -> SendError:
    """Sort a failed HTTP answer: 429 and 5xx are worth another try later; any other is final."""
    if status_code == 429:
        return RetryableSendError(reason, retry_after=parse_retry_after(retry_after))
    if status_code >= 500:
        return RetryableSendError(reason, retry_after=parse_retry_after(retry_after))
    return PermanentSendError(reason)


__all__ = [
    "CHANNEL_NAMES",
    "Channel",
    "ChannelName",
    "OutgoingMessage",
    "PermanentSendError",
    "RetryableSendError",
    "SendError",
    "SendResult",
    "error_for_http_status",
    "parse_retry_after",
]
