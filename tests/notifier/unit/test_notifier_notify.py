"""The GOV.UK Notify client against the local stand-in, which checks requests as Notify does (the
JWT with the official notifications-python-client's own functions)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from notifications_python_client.authentication import decode_jwt_token, get_token_issuer
from notifications_python_client.notifications import NotificationsAPIClient

from services.notifier.adapters.channels import OutgoingMessage, PermanentSendError, RetryableSendError
from services.notifier.adapters.notify import (
    NOTIFY_STATUSES,
    NotifyApiKey,
    NotifyClient,
    callback_token_matches,
    notify_status_to_ours,
    parse_delivery_receipt,
)
from services.notifier.domain.messages import render
from services.notifier.domain.policy import NotificationStatus
from tests.notifier.conftest import (
    EMAIL_TEMPLATE,
    NOTIFY_TEMPLATE_IDS,
    SECRET,
    SERVICE_ID,
    SMS_TEMPLATE,
    SMS_TEMPLATE_CY,
    Recorder,
)
from tests.notifier.notify_stub import NotifyStub, free_port

FAMILY = {"council_name": "Hertfordshire County Council", "info_url": "https://www.hertfordshire.gov.uk/send",
          "link": "https://herts.gov.uk/ehc",
          "due_on": "2026-03-27"}


def sms(language: str = "en", **changes: object) -> OutgoingMessage:
    rendered = render("family_request_received", language, "sms", FAMILY)
    fields: dict = {
        "notification_id": str(uuid.uuid4()), "channel": "notify_sms", "to": "+447900900123",
        "template": "family_request_received", "personalisation": dict(rendered.personalisation),
        "body": rendered.body, "language": language,
    }
    fields.update(changes)
    return OutgoingMessage(**fields)


def email() -> OutgoingMessage:
    context = {"case_id": "case-1", "rule_id": "plan.final", "due_on": "2026-03-27", "case_url": "https://x/c/1",
               "working_days_left": 3, "legal_source": "Regs 13(2)"}
    rendered = render("caseworker_reminder", "en", "email", context)
    return OutgoingMessage(
        notification_id=str(uuid.uuid4()), channel="notify_email", to="sam.patel@council.example",
        template="caseworker_reminder", personalisation=dict(rendered.personalisation), subject=rendered.subject,
        body=rendered.body,
    )


# --- API keys and tokens -------------------------------------------------------------------------


def test_api_key_is_read_as_notify_documents_it() -> None:
    key = NotifyApiKey.parse(f"my_test-key-{SERVICE_ID}-{SECRET}")
    assert (key.name, key.service_id, key.secret) == ("my_test-key", SERVICE_ID, SECRET)
    assert SECRET not in repr(key)
    assert NotifyApiKey.parse(f"{SERVICE_ID}-{SECRET}").name == ""


@pytest.mark.parametrize("bad", ["", "not-a-key", f"name-{SERVICE_ID}", f"name-{SERVICE_ID}_{SECRET}",
                                 f"name-{SERVICE_ID}-{SECRET[:-1]}z"])
def test_a_malformed_api_key_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        NotifyApiKey.parse(bad)
    assert SECRET not in str(info.value) and (not bad or bad not in str(info.value))


async def test_the_token_passes_the_official_clients_checks(
    notify_client: NotifyClient, notify_stub: NotifyStub
) -> None:
    await notify_client.send(sms())
    header = notify_stub.received[0].headers["authorization"]
    scheme, token = header.split(" ", 1)
    assert scheme == "Bearer"
    assert get_token_issuer(token) == SERVICE_ID
    assert decode_jwt_token(token, SECRET) is True  # signature, and iat within 30 s


# --- sending -------------------------------------------------------------------------------------


async def test_send_a_text(notify_client: NotifyClient, notify_stub: NotifyStub) -> None:
    msg = sms()
    result = await notify_client.send(msg)
    assert result.status is NotificationStatus.SENT
    [request] = notify_stub.received
    assert (request.method, request.path, request.status_code) == ("POST", "/v2/notifications/sms", 201)
    assert request.json["phone_number"] == "+447900900123"
    assert request.json["template_id"] == SMS_TEMPLATE.id
    assert request.json["reference"] == msg.notification_id  # no personal data in the reference
    assert request.json["personalisation"]["due_on"] == "27 March 2026"
    stored = notify_stub.notifications[result.provider_reference or ""]
    assert stored.body == (
        "Hertfordshire County Council has received the request. The council must tell you by 27 March 2026. "
        "https://herts.gov.uk/ehc"
    )


async def test_the_most_specific_template_is_chosen(notify_client: NotifyClient, notify_stub: NotifyStub) -> None:
    await notify_client.send(sms("cy"))
    assert notify_stub.received[0].json["template_id"] == SMS_TEMPLATE_CY.id


async def test_send_an_email(notify_client: NotifyClient, notify_stub: NotifyStub) -> None:
    msg = email()
    result = await notify_client.send(msg)
    assert result.status is NotificationStatus.SENT
    [request] = notify_stub.received
    assert request.path == "/v2/notifications/email" and request.json["email_address"] == msg.to
    assert request.json["template_id"] == EMAIL_TEMPLATE.id
    stored = notify_stub.notifications[result.provider_reference or ""]
    assert stored.subject == msg.subject and stored.body == msg.body  # a ((subject)) / ((body)) template


async def test_no_template_configured_is_final_and_sends_nothing(
    notify_client: NotifyClient, notify_stub: NotifyStub
) -> None:
    with pytest.raises(PermanentSendError, match="no GOV.UK Notify template is configured for family_review_due"):
        await notify_client.send(sms(template="family_review_due"))
    with pytest.raises(PermanentSendError, match="not a GOV.UK Notify channel"):
        await notify_client.send(sms(channel="smtp"))
    assert notify_stub.received == []


async def test_missing_personalisation_is_a_permanent_400(notify_client: NotifyClient, notify_stub: NotifyStub) -> None:
    with pytest.raises(PermanentSendError) as info:
        await notify_client.send(sms(personalisation={"council_name": "Herts"}))
    assert "400" in info.value.reason
    assert "BadRequestError: Missing personalisation: due_on, link" in info.value.reason
    assert not info.value.retryable
    assert len(notify_stub.received) == 1  # sent once, not retried


async def test_a_number_notify_refuses_is_a_permanent_validation_error(
    notify_client: NotifyClient, notify_stub: NotifyStub
) -> None:
    with pytest.raises(PermanentSendError, match="ValidationError: phone_number Not a UK mobile number"):
        await notify_client.send(sms(to="+442079460018"))


async def test_a_wrong_secret_is_refused_with_403_and_logged_without_the_key(
    notify_stub: NotifyStub, notify_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = str(uuid.uuid4())
    client = NotifyClient(notify_stub.api_key(secret=wrong), NOTIFY_TEMPLATE_IDS, notify_url)
    try:
        with pytest.raises(PermanentSendError) as info:
            await client.send(sms())
    finally:
        await client.aclose()
    assert notify_stub.received[0].status_code == 403
    assert "403" in info.value.reason and "AuthError" in info.value.reason
    logged = capsys.readouterr()
    output = logged.out + logged.err
    assert "notify.auth_failed" in output
    assert wrong not in output and wrong not in info.value.reason


async def test_a_stale_token_is_refused(notify_stub: NotifyStub, notify_url: str) -> None:
    client = NotifyClient(notify_stub.api_key(), NOTIFY_TEMPLATE_IDS, notify_url, clock=lambda: time.time() - 300)
    try:
        with pytest.raises(PermanentSendError, match="system clock must be accurate to within 30 seconds"):
            await client.send(sms())
    finally:
        await client.aclose()


async def test_429_is_retryable_and_retry_after_is_honoured(
    notify_client: NotifyClient, notify_stub: NotifyStub
) -> None:
    notify_stub.fail_next(1, 429, retry_after="7")
    with pytest.raises(RetryableSendError) as info:
        await notify_client.send(sms())
    assert info.value.retry_after == 7.0 and "RateLimitError" in info.value.reason
    notify_stub.fail_next(1, 429, error="TooManyRequestsError", message="Exceeded send limits (250000) for today")
    with pytest.raises(RetryableSendError) as info:
        await notify_client.send(sms())
    assert info.value.retry_after is None and "TooManyRequestsError" in info.value.reason
    result = await notify_client.send(sms())  # the limit has passed
    assert result.status is NotificationStatus.SENT
    assert [r.status_code for r in notify_stub.received] == [429, 429, 201]


@pytest.mark.parametrize("status_code", [500, 502, 503])
async def test_5xx_is_retryable(notify_client: NotifyClient, notify_stub: NotifyStub, status_code: int) -> None:
    notify_stub.fail_next(1, status_code)
    with pytest.raises(RetryableSendError, match=str(status_code)):
        await notify_client.send(sms())


async def test_a_timeout_is_retryable(notify_stub: NotifyStub, notify_url: str) -> None:
    client = NotifyClient(notify_stub.api_key(), NOTIFY_TEMPLATE_IDS, notify_url, timeout=httpx.Timeout(0.2))
    notify_stub.delay_next(1, seconds=1.0)
    try:
        with pytest.raises(RetryableSendError, match="did not answer in time"):
            await client.send(sms())
    finally:
        await client.aclose()


async def test_a_refused_connection_is_retryable(notify_stub: NotifyStub) -> None:
    client = NotifyClient(notify_stub.api_key(), NOTIFY_TEMPLATE_IDS, f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(RetryableSendError, match="could not reach GOV.UK Notify"):
            await client.send(sms())
    finally:
        await client.aclose()


def test_the_default_timeouts() -> None:
    from services.notifier.adapters.notify import DEFAULT_TIMEOUT

    assert (DEFAULT_TIMEOUT.connect, DEFAULT_TIMEOUT.read) == (5.0, 10.0)


# --- status and receipts -------------------------------------------------------------------------


@pytest.mark.parametrize(("notify_status", "ours"), sorted(NOTIFY_STATUSES.items()))
async def test_get_notification_status(
    notify_client: NotifyClient, notify_stub: NotifyStub, notify_status: str, ours: NotificationStatus
) -> None:
    result = await notify_client.send(sms())
    assert result.provider_reference is not None
    assert await notify_client.get_notification_status(result.provider_reference) is NotificationStatus.SENT
    notify_stub.set_status(result.provider_reference, notify_status)
    assert await notify_client.get_notification_status(result.provider_reference) is ours


async def test_status_of_an_unknown_message(notify_client: NotifyClient) -> None:
    with pytest.raises(PermanentSendError, match="404"):
        await notify_client.get_notification_status(str(uuid.uuid4()))


def test_notify_statuses_outside_the_documented_set_are_refused() -> None:
    assert set(NOTIFY_STATUSES) == {"created", "sending", "pending", "sent", "delivered", "permanent-failure",
                                    "temporary-failure", "technical-failure"}
    with pytest.raises(ValueError, match="unknown GOV.UK Notify status 'accepted'"):
        notify_status_to_ours("accepted")


async def test_delivery_receipts_as_notify_posts_them(
    notify_client: NotifyClient, notify_stub: NotifyStub, http_recorder: Recorder
) -> None:
    msg = sms()
    result = await notify_client.send(msg)
    assert result.provider_reference is not None
    response = await notify_stub.send_delivery_receipt(
        result.provider_reference, f"{http_recorder.url}/notify/callbacks", "callback-token-123456", "delivered"
    )
    assert response.status_code == 200
    [callback] = http_recorder.server.received
    assert callback.path == "/notify/callbacks"
    assert callback_token_matches(callback.headers["authorization"], "callback-token-123456")
    assert not callback_token_matches(callback.headers["authorization"], "another-token")
    assert not callback_token_matches(None, "callback-token-123456")
    assert set(callback.json) >= {"id", "reference", "to", "status", "created_at", "completed_at", "sent_at",
                                  "notification_type"}
    receipt = parse_delivery_receipt(callback.json)
    assert receipt.provider_reference == result.provider_reference
    assert receipt.reference == msg.notification_id
    assert receipt.status is NotificationStatus.DELIVERED and receipt.notification_type == "sms"
    assert not hasattr(receipt, "to")  # the address is not kept


def test_a_receipt_without_an_id_is_refused() -> None:
    with pytest.raises(ValueError, match="needs 'id'"):
        parse_delivery_receipt({"status": "delivered"})


# --- the stand-in itself behaves like Notify ---------------------------------------------------


async def test_the_stand_in_refuses_missing_or_non_bearer_authorisation(
    notify_stub: NotifyStub, notify_url: str
) -> None:
    async with httpx.AsyncClient(base_url=notify_url) as client:
        missing = await client.post("/v2/notifications/sms", json={})
        basic = await client.post("/v2/notifications/sms", json={}, headers={"Authorization": "Basic abc"})
        garbage = await client.post("/v2/notifications/sms", json={}, headers={"Authorization": "Bearer abc"})
    assert missing.status_code == 401 and basic.status_code == 401
    assert missing.json() == {
        "status_code": 401,
        "errors": [{"error": "AuthError", "message": "Unauthorized: authentication token must be provided"}],
    }
    assert garbage.status_code == 403 and garbage.json()["errors"][0]["error"] == "AuthError"


async def test_the_official_python_client_works_against_the_stand_in(notify_stub: NotifyStub, notify_url: str) -> None:
    official = NotificationsAPIClient(notify_stub.api_key(), base_url=notify_url)
    response = await asyncio.to_thread(
        official.send_sms_notification,
        phone_number="07900 900123",
        template_id=SMS_TEMPLATE.id,
        personalisation={"council_name": "Herts", "due_on": "27 March 2026", "link": "https://x"},
        reference="ref-1",
    )
    assert response["reference"] == "ref-1" and response["template"]["id"] == SMS_TEMPLATE.id
    assert response["content"]["body"].startswith("Herts has received the request.")
    status = await asyncio.to_thread(official.get_notification_by_id, response["id"])
    assert status["status"] == "created" and status["phone_number"] == "07900 900123"
