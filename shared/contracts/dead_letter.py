"""Rejected input on ``ehc.intake.dead-letter``: the original bytes, the source, the reason, the time."""

from __future__ import annotations

import base64
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
    original_base64: str = Field(description="The original bytes, base64-encoded.")
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    original_key_sha256: str | None = Field(default=None, description="The original key, hashed: never the key itself.")
    location: str | None = Field(default=None, description="File and record number, for files.")

    def original(self) -> bytes:
        return base64.b64decode(self.original_base64)


class IntakeRejected(Envelope):
    type: Literal["ehc.intake.rejected"] = "ehc.intake.rejected"
    data: RejectedData
