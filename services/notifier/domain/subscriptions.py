"""Managers' subscriptions (pure): what one may ask for, and how it is named and shown.

A subscription is (manager, scope, kind, channel, address): scope ``team`` or ``area`` (with its
id) or ``all``; kind ``breach`` (an alert at once in working hours; breaches of the manager's quiet
hours come as one message at the start of the working day), ``breach_immediate`` (an alert at once,
at any hour), ``daily_digest`` (the at-risk list at 08:00 on
working days) or ``weekly_summary``; channel ``email`` or ``sms`` (texts for breach alerts only:
a digest does not fit in a text). The address is personal data: stored encrypted, shown masked.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, TypeAdapter, model_validator

from services.notifier.domain.policy import normalise_uk_mobile

Scope = Literal["team", "area", "all"]
Kind = Literal["breach", "breach_immediate", "daily_digest", "weekly_summary"]
ChannelKind = Literal["email", "sms"]
KINDS: tuple[str, ...] = ("breach", "breach_immediate", "daily_digest", "weekly_summary")
BREACH_KINDS: tuple[str, ...] = ("breach", "breach_immediate")
SCOPES: tuple[str, ...] = ("team", "area", "all")
ManagerRef = Annotated[str, StringConstraints(min_length=1, max_length=200,
                                              pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]*$")]
ScopeId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]*$")]

_email = TypeAdapter(EmailStr)


class SubscriptionSpec(BaseModel):
    """What an administrator asks for (API body, CLI options, an entry of the YAML file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    manager_ref: ManagerRef = Field(description="Who the manager is, as the council refers to them (no address).",
                                    examples=["mgr-north-1"])
    scope: Scope = Field(description="team, area or all.")
    scope_id: ScopeId | None = Field(default=None, description="The team or area id (none for all).",
                                     examples=["team-north"])
    kind: Kind = Field(description="breach: an alert at once, or in the morning's roll-up when it happens in the "
                       "manager's quiet hours; breach_immediate: an alert at once at any hour; daily_digest: the "
                       "at-risk list on working days at 08:00; weekly_summary: on the first working day of the week.")
    channel: ChannelKind = Field(default="email", description="email, or sms (breach alerts only).")
    address: str = Field(repr=False, min_length=3, max_length=320,
                         description="Email address or UK mobile number; stored encrypted, never shown in full.")

    @model_validator(mode="after")
    def _consistent(self) -> SubscriptionSpec:
        if self.scope == "all" and self.scope_id is not None:
            raise ValueError("a subscription to all has no scope_id")
        if self.scope != "all" and self.scope_id is None:
            raise ValueError(f"a {self.scope} subscription needs scope_id")
        if self.channel == "sms" and self.kind not in BREACH_KINDS:
            raise ValueError("only breach alerts go by text message; digests and summaries go by email")
        if self.channel == "sms":
            object.__setattr__(self, "address", normalise_uk_mobile(self.address))  # ValueError with a reason
        else:
            try:
                object.__setattr__(self, "address", str(_email.validate_python(self.address.strip())))
            except ValueError:
                raise ValueError("address is not a valid email address") from None
        return self

    @property
    def subscription_id(self) -> str:
        """Deterministic, so the same subscription from the YAML file, the CLI or the API is one row."""
        parts = (self.manager_ref, self.scope, self.scope_id or "", self.kind, self.channel)
        return "sub-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def mask_address(address: str, channel: str) -> str:
    """Enough to recognise an address, not to use it: ``j***@council.example``, ``+44*******123``."""
    if channel == "sms":
        return address[:3] + "*" * max(len(address) - 6, 0) + address[-3:]
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def scope_label(scope: str, scope_id: str | None) -> str:
    return "all" if scope == "all" else f"{scope} {scope_id}"


__all__ = ["BREACH_KINDS", "KINDS", "SCOPES", "SubscriptionSpec", "mask_address", "scope_label"]
