"""The web front's clients of the other services: the deadlines read API and the notifier's API
(bearer tokens) and intake's webhook (HMAC-signed, like any source system). Nothing else."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx


class ServiceUnavailable(RuntimeError):
    """Another service did not answer as expected (the page says so; nothing is half done)."""


class NotFound(LookupError):
    pass


def _check(response: httpx.Response) -> Any:
    if response.status_code == 404:
        raise NotFound(response.request.url.path)
    if response.status_code >= 400:
        raise ServiceUnavailable(f"{response.request.method} {response.request.url.path}: {response.status_code}")
    return response.json() if response.content else None


class DeadlinesApi:
    def __init__(self, client: httpx.AsyncClient, aggregate_seconds: float = 0.0) -> None:
        self.client = client
        self.aggregate_seconds = aggregate_seconds
        self._aggregates: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    async def _aggregate(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """Council-wide counts are the same for every manager for a minute: kept that long (each
        answer says when it was computed), so a dashboard does not recount 20,000 cases per view."""
        query = {k: v for k, v in params.items() if v}
        key = (path, json.dumps(query, sort_keys=True, default=str))
        now = time.monotonic()
        kept = self._aggregates.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        value = dict(_check(await self.client.get(path, params=query)))
        value["computed_at"] = time.time()
        if self.aggregate_seconds > 0:
            if len(self._aggregates) > 1000:
                self._aggregates.clear()
            self._aggregates[key] = (now + self.aggregate_seconds, value)
        return value

    async def cases(self, **params: Any) -> list[dict[str, Any]]:
        data = _check(await self.client.get("/v1/cases", params={k: v for k, v in params.items() if v}))
        return list(data["items"])

    async def case_deadlines(self, case_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            data = _check(await self.client.get(f"/v1/cases/{case_id}/deadlines",
                                                params={"page": page, "page_size": 500}))
            items += data["items"]
            if len(items) >= data["total"] or not data["items"]:
                return items
            page += 1

    async def case_history(self, case_id: str) -> dict[str, Any]:
        return dict(_check(await self.client.get(f"/v1/cases/{case_id}/events")))

    async def summary(self, **params: Any) -> dict[str, Any]:
        return await self._aggregate("/v1/summary", params)

    async def timeliness(self, **params: Any) -> dict[str, Any]:
        return await self._aggregate("/v1/timeliness", params)

    async def deadlines(self, **params: Any) -> list[dict[str, Any]]:
        """Every deadline matching the filters (all pages)."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            query = {k: v for k, v in params.items() if v} | {"page": page, "page_size": 500}
            data = _check(await self.client.get("/v1/deadlines", params=query))
            items += data["items"]
            if len(items) >= data["total"] or not data["items"]:
                return items
            page += 1


class NotifierApi:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def case_notifications(self, case_id: str) -> list[dict[str, Any]]:
        return list(_check(await self.client.get(f"/v1/cases/{case_id}/notifications"))["items"])

    async def family_message(self, case_id: str, topic: str, text: str) -> dict[str, Any]:
        """Hand a family's message to the notifier (stored encrypted there, the caseworker told at once)."""
        return dict(_check(await self.client.post(f"/v1/cases/{case_id}/family-messages",
                                                  json={"topic": topic, "text": text})))

    async def family_messages(self, case_id: str) -> list[dict[str, Any]]:
        return list(_check(await self.client.get(f"/v1/cases/{case_id}/family-messages"))["items"])

    async def resolve_short_link(self, code: str) -> dict[str, Any] | None:
        """What a text's short link stands for (case, language, when made), or None: unknown, expired or
        revoked alike. The code goes in the body, never in a path a log would keep."""
        try:
            return dict(_check(await self.client.post("/v1/family-links/resolve", json={"code": code})))
        except NotFound:
            return None

    async def revoke_short_links(self, case_id: str) -> None:
        _check(await self.client.post(f"/v1/cases/{case_id}/family-links/revoke"))

    async def subscriptions(self) -> list[dict[str, Any]]:
        return list(_check(await self.client.get("/v1/subscriptions"))["items"])

    async def add_subscription(self, spec: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post("/v1/subscriptions", json=spec)
        if response.status_code == 422:
            raise ValueError(str(response.json().get("detail")))
        return dict(_check(response))

    async def remove_subscription(self, subscription_id: str) -> None:
        _check(await self.client.delete(f"/v1/subscriptions/{subscription_id}"))


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Intake's webhook signature: HMAC-SHA256 over ``timestamp + "." + body``."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class IntakeWebhook:
    def __init__(self, client: httpx.AsyncClient, url: str, source: str, secret: str) -> None:
        self.client, self.url, self.source, self.secret = client, url, source, secret

    async def publish(self, events: list[dict[str, Any]]) -> None:
        body = json.dumps(events).encode()
        timestamp = str(int(time.time()))
        response = await self.client.post(self.url, content=body, headers={
            "Content-Type": "application/json", "X-EHC-Source": self.source, "X-EHC-Timestamp": timestamp,
            "X-EHC-Signature": sign(self.secret, timestamp, body)})
        if response.status_code != 202:
            raise ServiceUnavailable(f"intake answered {response.status_code}: {response.text[:300]}")
