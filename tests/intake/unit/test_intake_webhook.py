"""The webhook: a JSON array is split into one input per element, keeping each element's exact bytes
(so a dead letter holds exactly what the council sent); a failure of the database or Kafka is a 503
after which the same signed request may be sent again; the size limit holds without a Content-Length."""

from __future__ import annotations

import time

import httpx
import pytest
from pydantic import SecretStr

from services.intake.entrypoints.http import _split, sign


def test_each_element_keeps_its_exact_bytes():
    body = '\ufeff [ {"name": "Siân",  "n": [1, {"x": null}]} ,\n 2, "three" ]\n'.encode()
    inputs = _split(body, "cms-a")
    assert [i.value for i in inputs] == ['{"name": "Siân",  "n": [1, {"x": null}]}'.encode(), b"2", b'"three"']
    assert [i.location for i in inputs] == ["item 0", "item 1", "item 2"]
    assert {(i.channel, i.input_source) for i in inputs} == {("webhook", "cms-a")}


def test_an_empty_batch_is_no_input():
    assert _split(b" [ ] ", "cms-a") == []


@pytest.mark.parametrize("body", [b'{"id": "one"}', b"[1,]", b"[1 2]", b"[1] trailing", b"[", b"\xff[1]", b"",
                                  b'"just text"'])
def test_anything_else_is_one_input_with_the_whole_body(body):
    [single] = _split(body, "cms-a")
    assert single.value == body and single.location is None


# --- the webhook app on SQLite, with a service that fails (no broker) ----------------------------

SECRET = "unit-webhook-secret"


class FlakyService:
    """Fails the first time (the database or Kafka down), then accepts."""

    def __init__(self) -> None:
        self.calls = 0

    async def accept(self, inputs, convert):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("database down")
        from services.intake.service_layer.handlers import IntakeOutcome

        return IntakeOutcome(published=len(inputs))


class NoRelay:
    async def drain(self) -> int:
        return 0


@pytest.fixture
async def webhook(tmp_path):
    from services.intake.bootstrap import MIGRATIONS, SERVICE
    from services.intake.entrypoints.http import build_webhook_app
    from shared.db import create_engine_for, migrate, session_factory
    from shared.settings import IntakeSettings, Settings

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/intake.db")
    engine = create_engine_for(settings, SERVICE)
    await migrate(engine, SERVICE, MIGRATIONS, None)
    cfg = IntakeSettings(webhook_secrets={"cms-a": SecretStr(SECRET)}, webhook_max_body_bytes=1000)

    async def ready() -> dict[str, bool]:
        return {"database": True}

    service = FlakyService()
    app = build_webhook_app(cfg, service, NoRelay(), session_factory(engine), ready)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as client:
        yield client, service
    await engine.dispose()


def signed(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"X-EHC-Source": "cms-a", "X-EHC-Timestamp": stamp, "X-EHC-Signature": sign(SECRET, stamp, body)}


async def test_when_the_database_or_kafka_is_down_the_same_request_can_be_sent_again(webhook):
    client, service = webhook
    body = b'[{"id": "a"}, {"id": "b"}]'
    headers = signed(body)
    down = await client.post("/v1/events", content=body, headers=headers)
    assert down.status_code == 503 and down.json()["error"] == "unavailable"
    again = await client.post("/v1/events", content=body, headers=headers)  # the very same signed request
    assert again.status_code == 202 and again.json()["accepted"] == 2
    replay = await client.post("/v1/events", content=body, headers=headers)
    assert replay.status_code == 409 and service.calls == 2


async def test_a_body_over_the_limit_is_refused_without_a_content_length(webhook):
    client, service = webhook

    async def chunks():
        for _ in range(20):
            yield b"x" * 100

    refused = await client.post("/v1/events", content=chunks(), headers={"X-EHC-Source": "cms-a"})
    assert refused.status_code == 413 and refused.json()["error"] == "payload_too_large"
    assert service.calls == 0


def test_the_openapi_document_says_how_a_request_can_be_refused():
    from services.intake.entrypoints.http import build_webhook_app
    from shared.settings import IntakeSettings

    app = build_webhook_app(IntakeSettings(), FlakyService(), NoRelay(), None, None)  # type: ignore[arg-type]
    responses = app.openapi()["paths"]["/v1/events"]["post"]["responses"]
    assert {"202", "401", "409", "413", "422", "503"} <= set(responses)
