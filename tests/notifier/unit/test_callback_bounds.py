"""GOV.UK Notify delivery receipts are typed and bounded (issue 13): a nested, non-string, oversized
or NUL-carrying field is a 400 with the field's name, never a 5xx and never handed to the database."""

from __future__ import annotations

import pytest

from tests.notifier.unit.test_notifier_http import RECEIPT, TOKEN, FakeService, client

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(("change", "field"), [
    ({"id": {"nested": "object"}}, "id"),
    ({"id": 12345}, "id"),
    ({"reference": ["n-1"]}, "reference"),
    ({"reference": {"$gt": ""}}, "reference"),
    ({"status": ["delivered"]}, "status"),
    ({"id": "7" * 900_000}, "id"),
    ({"reference": "n-\x00-1"}, "reference"),
    ({"created_at": {"x": 1}}, "created_at"),
    ({"notification_type": 3}, "notification_type"),
])
async def test_a_receipt_with_a_badly_typed_field_is_a_400_naming_it(change: dict, field: str) -> None:
    service = FakeService()
    async with client(service) as http:
        answer = await http.post("/v1/notify/callbacks", json=RECEIPT | change, headers=HEADERS)
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["detail"] and len(answer.text) < 1000
    assert service.receipts == []


async def test_a_receipt_with_extra_fields_of_any_shape_is_still_accepted() -> None:
    # Notify adds fields over time: unknown ones are ignored, whatever their shape
    service = FakeService()
    async with client(service) as http:
        answer = await http.post("/v1/notify/callbacks", json=RECEIPT | {"template": {"id": "x", "version": 3}},
                                 headers=HEADERS)
    assert answer.status_code == 200 and len(service.receipts) == 1


def test_the_callback_documents_401_and_400() -> None:
    from fastapi import FastAPI
    from pydantic import SecretStr

    from services.notifier.entrypoints.http import build_router

    app = FastAPI()
    app.include_router(build_router(FakeService(), [SecretStr("admin-token-1234567890")], None))  # type: ignore[arg-type]
    paths = app.openapi()["paths"]
    assert {"400", "401"} <= set(paths["/v1/notify/callbacks"]["post"]["responses"])
    assert "401" in paths["/v1/subscriptions"]["get"]["responses"]


