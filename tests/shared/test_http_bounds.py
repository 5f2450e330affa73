"""Every HTTP endpoint of the three services does bounded work and answers bad input with a 4xx
and a reason, never a 5xx (issue 13): body size limits (413), NUL in a path or query (400), page
numbers out of range (422)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared.db import migrate
from shared.settings import Settings

pytestmark = pytest.mark.infra
ADMIN = "admin-token-0123456789"
CALLBACK = "callback-token-0123456789"
LIMIT = 100_000


@pytest.fixture
async def apps(isolated: Settings) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    from services.deadlines import bootstrap as deadlines
    from services.intake import bootstrap as intake
    from services.notifier import bootstrap as notifier

    settings = isolated.model_copy(update={
        "http_max_body_bytes": LIMIT,
        "intake": isolated.intake.model_copy(update={"webhook_secrets": {"cms-a": SecretStr("s" * 20)},
                                                     "webhook_max_body_bytes": LIMIT}),
        "deadlines": isolated.deadlines.model_copy(update={"api_tokens": {"tok-admin": "admin"}}),
        "notifier": isolated.notifier.model_copy(update={
            "admin_tokens": [SecretStr(ADMIN)], "notify_callback_token": SecretStr(CALLBACK),
            "encryption_key": SecretStr(Fernet.generate_key().decode())}),
    })
    built = {"intake": intake.bootstrap(settings), "deadlines": deadlines.bootstrap(settings),
             "notifier": notifier.bootstrap(settings)}
    clients = {}
    for name, module in (("intake", intake), ("deadlines", deadlines), ("notifier", notifier)):
        service = built[name]
        await migrate(service.engine, module.SERVICE, module.MIGRATIONS, settings.schema_for(module.SERVICE))
        app = getattr(service, "webhook", None) or service.api
        clients[name] = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
    yield clients
    for name, client in clients.items():
        await client.aclose()
        await built[name].engine.dispose()


ROUTES = {"intake": ("POST", "/v1/events", {}),
          "deadlines": ("POST", "/v1/deadlines", {"Authorization": "Bearer tok-admin"}),
          "notifier": ("POST", "/v1/notify/callbacks", {"Authorization": f"Bearer {CALLBACK}"})}


async def test_every_service_refuses_a_body_over_the_limit(apps: dict[str, httpx.AsyncClient]) -> None:
    big = b'{"id": "' + b"7" * (20 * LIMIT) + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"7" * (LIMIT // 10)

    for name, (method, path, headers) in ROUTES.items():
        declared = await apps[name].request(method, path, content=big, headers=headers)
        assert declared.status_code == 413, (name, declared.status_code, declared.text[:200])
        assert "bytes" in declared.json()["message"]
        streamed = await apps[name].request(method, path, content=chunks(), headers=headers)
        # without a Content-Length the limit holds while reading (the deadlines API reads no body at all)
        assert streamed.status_code == (405 if name == "deadlines" else 413), (name, streamed.status_code)
        assert (await apps[name].get("/healthz")).status_code == 200


async def test_a_nul_in_a_path_or_query_is_a_400(apps: dict[str, httpx.AsyncClient]) -> None:
    admin = {"Authorization": "Bearer tok-admin"}
    for url in ("/v1/cases/case%00x/deadlines", "/v1/deadlines?team_id=a%00b", "/v1/deadlines?rule_id=%00"):
        answer = await apps["deadlines"].get(url, headers=admin)
        assert answer.status_code == 400, (url, answer.status_code)
        assert "NUL" in answer.json()["message"]
    removed = await apps["notifier"].delete("/v1/subscriptions/sub%00x", headers={"Authorization": f"Bearer {ADMIN}"})
    assert removed.status_code == 400


@pytest.mark.parametrize("query", [{"page": str(2 ** 63)}, {"page": str(2 ** 40)}, {"page": "9" * 5000},
                                   {"page_size": str(2 ** 63)}])
async def test_page_numbers_out_of_range_are_a_422(apps: dict[str, httpx.AsyncClient], query: dict) -> None:
    for path in ("/v1/deadlines", "/v1/breaches", "/v1/at-risk", "/v1/cases/c-1/deadlines"):
        answer = await apps["deadlines"].get(path, params=query, headers={"Authorization": "Bearer tok-admin"})
        assert answer.status_code == 422, (path, answer.status_code, answer.text[:200])
    at_risk = await apps["deadlines"].get("/v1/at-risk", params={"working_days": str(2 ** 63)},
                                          headers={"Authorization": "Bearer tok-admin"})
    assert at_risk.status_code == 422


async def test_a_nul_inside_a_json_body_is_a_4xx_not_a_5xx(apps: dict[str, httpx.AsyncClient]) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    spec = {"manager_ref": "mgr\u00001", "scope": "all", "kind": "breach", "channel": "email",
            "address": "manager@council.example"}
    answer = await apps["notifier"].post("/v1/subscriptions", json=spec, headers=admin)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert "manager@council.example" not in answer.text
