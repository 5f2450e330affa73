"""The notifier's HTTP API: managers' subscriptions (admin bearer token) and GOV.UK Notify's
delivery receipts (the callback bearer token configured in Notify).

Responses never carry an address in full; request bodies with addresses are never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError

from services.notifier.adapters.notify import callback_token_matches, parse_delivery_receipt
from services.notifier.domain.subscriptions import SubscriptionSpec
from services.notifier.service_layer.case_view import case_notifications, family_messages, record_family_message
from services.notifier.service_layer.handlers import NotifierService
from services.notifier.service_layer.short_links import revoke_short_links
from services.notifier.service_layer.subscriptions import describe
from shared.logging import get_logger

log = get_logger(__name__)


class SubscriptionOut(BaseModel):
    subscription_id: str
    manager_ref: str
    scope: str
    scope_id: str | None
    kind: str
    channel: str
    address_hint: str = Field(description="The address, masked (e.g. j***@council.example).")
    active: bool
    created_at: str | None


class FamilyMessageIn(BaseModel):
    topic: Literal["question", "date_wrong", "not_received", "other"]
    text: str = Field(min_length=1, max_length=2000)


class ShortCodeIn(BaseModel):
    code: str = Field(max_length=64)


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


# A receipt's fields as GOV.UK Notify sends them: short strings (or null), nothing else. Checked before
# anything reaches the database or a log line; fields Notify may add later are ignored, whatever their shape.
ReceiptText = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


class NotifyReceiptIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    id: ReceiptText
    status: ReceiptText
    reference: ReceiptText | None = None
    notification_type: ReceiptText | None = None
    created_at: ReceiptText | None = None
    sent_at: ReceiptText | None = None
    completed_at: ReceiptText | None = None


def _receipt_fields(payload: Any) -> dict[str, Any]:
    """The receipt's known fields, typed and bounded; ValueError naming the bad field (never its value)."""
    if not isinstance(payload, dict):
        raise ValueError("a delivery receipt is a JSON object")
    try:
        checked = NotifyReceiptIn.model_validate(payload)
    except ValidationError as exc:
        problems = sorted({f"'{e['loc'][0] if e['loc'] else ''}': {e['msg']}" for e in exc.errors()})
        raise ValueError("a Notify delivery receipt needs short text fields: " + "; ".join(problems)[:300]) from None
    return checked.model_dump(exclude_none=True)


_AUTH_401 = {401: {"description": "No bearer token, or not the configured one"}}


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def admin_guard(tokens: Sequence[SecretStr]) -> Any:
    expected = [t.get_secret_value().encode() for t in tokens if t.get_secret_value()]

    async def check(authorization: Annotated[str | None, Header()] = None) -> None:
        token = _bearer(authorization)
        # compare with every token, always: the time taken says nothing about which one nearly matched
        ok = False
        for candidate in expected:
            ok |= token is not None and hmac.compare_digest(token.encode(), candidate)
        if not ok:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid admin bearer token is needed",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


def build_router(service: NotifierService, admin_tokens: Sequence[SecretStr],
                 callback_token: SecretStr | None) -> APIRouter:
    router = APIRouter(responses=_AUTH_401)
    admin = [Depends(admin_guard(admin_tokens))]
    subs = service.subscriptions

    body_schema = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": SubscriptionSpec.model_json_schema()}}}}

    @router.post("/v1/subscriptions", status_code=201, response_model=SubscriptionOut, dependencies=admin,
                 tags=["subscriptions"], summary="Subscribe a manager (idempotent: the same subscription again "
                 "updates its address)", openapi_extra=body_schema)
    async def add_subscription(request: Request) -> Any:
        try:
            spec = SubscriptionSpec.model_validate_json(await request.body())
        except ValidationError as exc:
            # our own message: FastAPI's default 422 would echo the address back into logs and proxies
            return JSONResponse({"detail": describe(exc)}, status_code=422)
        return (await subs.add(spec)).as_dict()

    @router.get("/v1/subscriptions", response_model=SubscriptionList, dependencies=admin, tags=["subscriptions"],
                summary="Every subscription, addresses masked")
    async def list_subscriptions() -> Any:
        return {"items": [s.as_dict() for s in await subs.list_all()]}

    @router.delete("/v1/subscriptions/{subscription_id}", status_code=204, dependencies=admin,
                   tags=["subscriptions"], summary="Remove a subscription")
    async def remove_subscription(subscription_id: str) -> Response:
        if not await subs.remove(subscription_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such subscription")
        return Response(status_code=204)

    @router.get("/v1/cases/{case_id}/notifications", dependencies=admin, tags=["cases"],
                summary="Notifications of one case: kind, channel, status (never an address)")
    async def list_case_notifications(case_id: str) -> Any:
        return {"items": await case_notifications(service.deps, case_id)}

    @router.post("/v1/cases/{case_id}/family-messages", status_code=201, dependencies=admin, tags=["cases"],
                 summary="A family's message (from the web front): kept encrypted, the caseworker told at once")
    async def add_family_message(case_id: str, body: FamilyMessageIn) -> Any:
        return await record_family_message(service.deps, case_id, body.topic, body.text)

    @router.get("/v1/cases/{case_id}/family-messages", dependencies=admin, tags=["cases"],
                summary="Families' messages of one case, for the caseworker's case page")
    async def list_family_messages(case_id: str) -> Any:
        return {"items": await family_messages(service.deps, case_id)}

    # a short link in a family's text (issue 10): the code travels in the body, never in a logged path
    @router.post("/v1/family-links/resolve", dependencies=admin, tags=["family links"],
                 summary="What a text's short link stands for: the case, the family's language, when it was made",
                 responses={404: {"description": "Unknown, expired or revoked: one answer for all three"}})
    async def resolve_short_link(body: ShortCodeIn) -> Any:
        links = service.sender.short_links
        found = await links.resolve(service.deps.sessions, body.code, service.clock()) if links else None
        if found is None:
            return JSONResponse({"detail": "no such link"}, status_code=404)
        return found

    @router.post("/v1/cases/{case_id}/family-links/revoke", dependencies=admin, tags=["family links"],
                 summary="Every short link already sent for the case stops working")
    async def revoke_case_short_links(case_id: str) -> Any:
        return {"revoked": await revoke_short_links(service.deps.sessions, case_id, service.clock())}

    expected_callback = callback_token.get_secret_value() if callback_token else ""

    @router.post("/v1/notify/callbacks", tags=["GOV.UK Notify"], summary="Delivery receipts from GOV.UK Notify",
                 responses={**_AUTH_401, 400: {"description": "Not a delivery receipt: the field and the problem"}})
    async def notify_callback(request: Request, authorization: Annotated[str | None, Header()] = None) -> Any:
        if not callback_token_matches(authorization, expected_callback):
            log.warning("notifier.callback_refused", reason="bad or missing bearer token"
                        if expected_callback else "EHC_NOTIFIER__NOTIFY_CALLBACK_TOKEN is not set")
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid bearer token is needed",
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            receipt = parse_delivery_receipt(_receipt_fields(await request.json()))
        except ValueError as exc:
            # the message names a missing field or an unknown status, never the recipient ("to")
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        result = await service.handle_delivery_receipt(receipt)
        # 200 also for a receipt we do not know: Notify would only send it again
        return {"outcome": result.outcome, "notification_id": result.notification_id, "status": result.status}

    return router


__all__ = ["SubscriptionList", "SubscriptionOut", "build_router"]
