"""The channel contract: messages, results, errors and their sorting."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from services.notifier.adapters.channels import (
    Channel,
    OutgoingMessage,
    PermanentSendError,
    RetryableSendError,
    error_for_http_status,
    parse_retry_after,
)
from services.notifier.adapters.file_sink import FileSinkChannel
from services.notifier.adapters.notify import NotifyClient
from services.notifier.adapters.sms_gateway import SmsGatewayChannel
from services.notifier.adapters.smtp import SmtpChannel
from tests.notifier.conftest import SECRET, SERVICE_ID

MESSAGE = OutgoingMessage(
    notification_id="4f1c9a52-0000-4000-8000-000000000001", channel="notify_sms", to="+447900900123",
    template="family_review_due", personalisation={"council_name": "Herts"}, body="secret body text",
)


def test_the_reference_defaults_to_the_notification_id() -> None:
    assert MESSAGE.reference == MESSAGE.notification_id
    assert dataclasses.replace(MESSAGE, reference="batch-7").reference == "batch-7"


def test_personal_data_stays_out_of_repr() -> None:
    text = repr(MESSAGE)
    assert MESSAGE.notification_id in text
    assert "+447900900123" not in text and "secret body text" not in text and "Herts" not in text


def test_messages_are_immutable_and_channels_closed() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        MESSAGE.to = "+447900900999"  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown channel 'pigeon'"):
        dataclasses.replace(MESSAGE, channel="pigeon")  # type: ignore[arg-type]


def test_errors_say_whether_to_retry() -> None:
    retry = RetryableSendError("GOV.UK Notify answered 503", retry_after=12)
    final = PermanentSendError("GOV.UK Notify answered 400")
    assert retry.retryable and retry.retry_after == 12 and retry.reason == "GOV.UK Notify answered 503"
    assert not final.retryable and str(final) == "GOV.UK Notify answered 400"


@pytest.mark.parametrize(
    ("status_code", "retryable"),
    [(400, False), (401, False), (403, False), (404, False), (409, False), (429, True), (500, True), (503, True)],
)
def test_http_statuses_are_sorted(status_code: int, retryable: bool) -> None:
    assert error_for_http_status(status_code, "x").retryable is retryable


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("120") == 120.0
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None and parse_retry_after(" ") is None


async def test_every_adapter_is_a_channel(tmp_path: Path) -> None:
    notify = NotifyClient(f"key-{SERVICE_ID}-{SECRET}", {})
    gateway = SmsGatewayChannel("http://127.0.0.1:9/sms")
    smtp = SmtpChannel("127.0.0.1", 25, "x@council.example")
    channels: list[Channel] = [notify, gateway, smtp, FileSinkChannel(tmp_path)]
    try:
        assert all(isinstance(c, Channel) for c in channels)
    finally:
        for channel in channels:
            await channel.aclose()
