"""`ehc docs`: the JSON Schema of every contract and the AsyncAPI document of each service.

Written to docs/contracts/ and checked by a test, so the committed documents never go stale.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI
from pydantic import TypeAdapter

from shared.contracts import ContactsUpdated, DeadlineEvent, IntakeRejected, NotificationEvent, RecordParked
from shared.contracts.case_events import CaseEvent
from shared.settings import Settings


def contract_schemas() -> dict[str, Any]:
    return {
        "case-event.schema.json": TypeAdapter(CaseEvent).json_schema(),
        "deadline-event.schema.json": DeadlineEvent.model_json_schema(),
        "contacts.schema.json": ContactsUpdated.model_json_schema(),
        "dead-letter.schema.json": IntakeRejected.model_json_schema(),
        "parked-record.schema.json": RecordParked.model_json_schema(),
        "notification-event.schema.json": NotificationEvent.model_json_schema(),
    }


def asyncapi_documents() -> dict[str, Any]:
    return asyncio.run(_asyncapi_documents())


async def _asyncapi_documents() -> dict[str, Any]:  # Kafka clients are built inside an event loop
    from services.deadlines.bootstrap import bootstrap as deadlines
    from services.intake.bootstrap import bootstrap as intake
    from services.notifier.bootstrap import bootstrap as notifier

    settings = Settings(database_url="sqlite+aiosqlite:///:memory:")
    docs = {}
    for name, build in (("intake", intake), ("deadlines", deadlines), ("notifier", notifier)):
        service = build(settings)
        spec = AsyncAPI(service.broker, title=f"EHC {name}", version="1",
                        description=(service.__doc__ or "").strip().splitlines()[0] if service.__doc__ else None)
        docs[f"asyncapi-{name}.json"] = _with_input_payloads(spec.to_specification().to_jsonable())
    return docs


def _with_input_payloads(doc: dict[str, Any]) -> dict[str, Any]:
    """Subscribers that read raw records (to dead-letter bad bytes) show no payload: give the canonical
    input topic the canonical event's schema, as the case-events publisher declares it."""
    components = doc.get("components", {})
    message = components.get("messages", {}).get("on_canonical:SubscribeMessage")
    if message is not None and "to_case_events:Message:Payload" in components.get("schemas", {}):
        message["payload"] = {"$ref": "#/components/schemas/to_case_events:Message:Payload"}
        if "#/components/schemas/EmptyPayload" not in json.dumps(doc):
            components["schemas"].pop("EmptyPayload", None)
    return doc


def render_all() -> dict[str, str]:
    return {name: json.dumps(doc, indent=2, sort_keys=True) + "\n"
            for name, doc in {**contract_schemas(), **asyncapi_documents()}.items()}


def write_docs(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written
