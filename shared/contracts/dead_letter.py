"""Dead letters: rejected input on ``ehc.intake.dead-letter`` (the original bytes, the source, the
reason, the time) and records any service parked on its own dead-letter topic. Originals are
encrypted (``EHC_DEAD_LETTERS__ENCRYPTION_KEY``) and kept ``EHC_DEAD_LETTERS__RETENTION_DAYS``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.contracts.envelope import Contract, Envelope


class RejectedData(Contract):
    channel: Literal["kafka", "webhook", "file"] = Field(description="How the input arrived.")
    input_source: str = Field(description="The configured source (system or file) it came from.")
    reason: str = Field(description="Why it was rejected, in one line.",
                        examples=["line 3: data.occurred_on: invalid date"])
    received_at: datetime
    original_base64: str | None = Field(default=None, description="The original bytes, base64-encoded: only in "
                                        "dead letters written before originals were encrypted.")
    original_encrypted: str | None = Field(default=None, description="Fernet token of the original record (JSON: "
                                           "key, value and headers, base64): it may hold personal data. "
                                           "`ehc intake dead-letters show --original` decrypts it.")
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    original_key_sha256: str | None = Field(default=None, description="The original key, hashed: never the key itself.")
    location: str | None = Field(default=None, description="File and record number, for files.")



class IntakeRejected(Envelope):
    type: Literal["ehc.intake.rejected"] = "ehc.intake.rejected"
    data: RejectedData


class ParkedData(Contract):
    """A record a service's consumer could not decode or handle after bounded retries, or one held
    behind such a record of the same case (so a case's events are never applied out of order).

    The original record (key, value, headers) is encrypted (Fernet, ``EHC_DEAD_LETTERS__ENCRYPTION_KEY``):
    it may hold personal data. ``ehc <service> dead-letters replay`` decrypts it and republishes the
    original bytes to the original topic."""

    service: Literal["intake", "deadlines", "notifier"] = Field(description="The service that parked it.")
    consumer: str = Field(description="The consumer (one per subscribed topic) that parked it.",
                          examples=["deadlines", "notifier-contacts"])
    reason: str = Field(description="Why, in one line: the error's kind and where, never the content.",
                        examples=["undecodable: JSON nested deeper than 64 levels"])
    parked_at: datetime
    attempts: int = Field(description="How many times handling was tried (0: parked without trying).")
    held_behind: str | None = Field(default=None, description="When set, the record was not tried: its case "
                                    "was held behind this earlier dead letter.")
    case_key_sha256: str | None = Field(default=None, description="The original key (the case), hashed.")
    original_topic: str
    original_partition: int
    original_offset: int
    original_size: int = Field(description="Bytes of the original value.")
    original_encrypted: str = Field(description="Fernet token of the original record: JSON with key, value "
                                    "(base64) and headers ([name, base64 value] pairs).")


class RecordParked(Envelope):
    """On ``ehc.<service>.dead-letter``; key = the hashed case key; subject ``parked``."""

    type: Literal["ehc.record.parked"] = "ehc.record.parked"
    data: ParkedData
