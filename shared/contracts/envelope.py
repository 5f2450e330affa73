"""The CloudEvents 1.0 envelope (JSON structured mode) every message of the project travels in.

DESIGN §2: key = ``case_id`` (opaque, never a name); ``subject`` = ``case_id``; ``data`` always
carries ``occurred_on`` for case events. ``dataversion`` (a CloudEvents extension attribute) is the
version of the ``data`` schema, so a consumer can upcast older payloads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

SPECVERSION = "1.0"

# Opaque identifiers: printable, no whitespace, bounded. They end up in message keys and logs,
# so their shape is checked everywhere they enter.
OpaqueId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]*$"),
]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("time must carry a UTC offset (RFC 3339), e.g. 2026-01-05T10:00:00Z")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class Contract(BaseModel):
    """Base of every message body: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class EventData(Contract):
    """Base of case-event data: the legally effective date."""

    occurred_on: date = Field(
        description="The legally effective date of what happened (may be earlier than `time`).",
        examples=["2026-01-05"],
    )


class Envelope(Contract):
    """CloudEvents 1.0 attributes shared by every event of the project."""

    specversion: Literal["1.0"] = Field(
        default="1.0", description="CloudEvents specification version.", examples=["1.0"]
    )
    id: OpaqueId = Field(
        description="Unique per `source`; producers use globally unique ids (a UUID, or a "
        "deterministic id derived from the source record so re-imports de-duplicate).",
        examples=["5b7c0e9e-1f2a-4c3d-9e8f-0a1b2c3d4e5f"],
    )
    source: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="Who produced the event, e.g. the council's case-management system.",
        examples=["cms/capita-one/herts"],
    )
    subject: OpaqueId = Field(
        description="The case_id: an opaque case identifier, never a name or a UPN.",
        examples=["case-7f3a9c"],
    )
    time: AwareDatetime = Field(
        description="When the event was recorded (RFC 3339 with offset).",
        examples=["2026-01-05T10:00:00Z"],
    )
    datacontenttype: Literal["application/json"] = Field(
        default="application/json", description="Always JSON."
    )
    dataversion: Literal["1"] = Field(
        default="1", description="Version of the `data` schema (CloudEvents extension attribute)."
    )

    @property
    def case_id(self) -> str:
        return self.subject

    def key(self) -> bytes:
        """Kafka message key: the opaque case_id."""
        return self.subject.encode()

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def utcnow() -> datetime:
    return datetime.now(UTC)
