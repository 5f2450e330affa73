"""The GOV.UK Notify callback endpoint: bearer token, payload checks (a fake use case behind it)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.notifier.entrypoints.http import build_router
from services.notifier.service_layer.receipts import ReceiptResult

TOKEN = "callback-token-0123456789"
RECEIPT = {"id": "740e5834-3a29-46b4-9a6f-16142fde533a", "reference": "n-1", "to": "07700900111",
           "status": "delivered", "notification_type": "sms", "created_at": "2026-03-10T10:00:00.000000Z"}


class FakeService:
    subscriptions: Any = None

    def __init__(self) -> None:
        self.receipts: list[Any] = []

    async def handle_delivery_receipt(self, receipt: Any) -> ReceiptResult:
        self.receipts.append(receipt)
        return ReceiptResult("updated", receipt.reference, str(receipt.status))


def client(service: FakeService, token: str | None = TOKEN) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(build_router(service, [], SecretStr(token) if token else None))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifier")


async def test_a_receipt_with_the_right_token_is_handled() -> None:
    service = FakeService()
    async with client(service) as http:
        answer = await http.post("/v1/notify/callbacks", json=RECEIPT, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.json() == {"outcome": "updated", "notification_id": "n-1", "status": "delivered"}
    [receipt] = service.receipts
    assert receipt.provider_reference == RECEIPT["id"] and not hasattr(receipt, "to")


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
async def test_a_receipt_without_the_token_is_refused(authorization: str | None) -> None:
    service = FakeService()
    headers = {"Authorization": authorization} if authorization else {}
    async with client(service) as http:
        answer = await http.post("/v1/notify/callbacks", json=RECEIPT, headers=headers)
    assert answer.status_code == 401 and service.receipts == []


async def test_no_token_configured_refuses_every_receipt() -> None:
    service = FakeService()
    async with client(service, token=None) as http:
        answer = await http.post("/v1/notify/callbacks", json=RECEIPT, headers={"Authorization": "Bearer "})
    assert answer.status_code == 401


@pytest.mark.parametrize(("body", "problem"), [
    (b"{not json", ""),
    (b"[]", "JSON object"),
    (b'{"status": "delivered"}', "'id'"),
    (b'{"id": "x", "status": "lost"}', "unknown GOV.UK Notify status"),
])
async def test_a_bad_receipt_is_a_400_that_echoes_no_recipient(body: bytes, problem: str) -> None:
    async with client(FakeService()) as http:
        answer = await http.post("/v1/notify/callbacks", content=body,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert answer.status_code == 400 and problem in answer.text
