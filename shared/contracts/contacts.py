"""Contact details on ``ehc.contacts`` (compacted, key = case_id). The only home of personal data.

Read only by the notifier, which stores them encrypted. A tombstone (null value) erases them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import EmailStr, Field, field_validator

from shared.contracts.envelope import Contract, Envelope


class Contact(Contract):
    role: Literal["parent", "carer", "young_person"] = "parent"
    name: Annotated[str, Field(max_length=200)] = Field(default="", description="How to address them.")
    email: EmailStr | None = None
    phone: Annotated[str, Field(max_length=32)] | None = Field(
        default=None, description="UK mobile number; normalised to E.164 by the notifier."
    )
    channel: Literal["sms", "email", "none"] = Field(default="email", description="Preferred channel.")
    language: Literal["en", "cy"] = "en"
    consent: bool = Field(description="Recorded consent to be told about deadlines by this service.")

    @field_validator("phone")
    @classmethod
    def _digits(cls, v: str | None) -> str | None:
        if v is not None and not any(ch.isdigit() for ch in v):
            raise ValueError("phone has no digits")
        return v


class ContactsData(Contract):
    contacts: list[Contact] = Field(default_factory=list, max_length=10)
    local_offer_url: str | None = Field(default=None, description="The council's SEND local offer page.")
    sendiass_contact: str | None = Field(
        default=None, description="The local SEND information, advice and support service (name and phone)."
    )
    case_reference: Annotated[str, Field(max_length=50)] | None = Field(
        default=None,
        description="The council's own reference for the case (its CMS or SEN2 id), so staff can tell cases apart. "
        "Personal data: only on this topic, shown to staff only, never to families or in logs.",
        examples=["HRT-2025-0142"],
    )
    child_first_name: Annotated[str, Field(max_length=50)] | None = Field(
        default=None, description="The child's or young person's first name, where the council allows messages to "
        "families to use it (never texts).",
    )


class ContactsUpdated(Envelope):
    type: Literal["ehc.contacts.updated"] = "ehc.contacts.updated"
    data: ContactsData


def parse_contacts(raw: bytes | str | dict[str, Any]) -> ContactsUpdated:
    if isinstance(raw, dict):
        return ContactsUpdated.model_validate(raw)
    return ContactsUpdated.model_validate_json(raw)
