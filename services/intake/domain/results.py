"""What a conversion yields: canonical case events, contact updates, or rejections.

Nothing is ever lost: every input ends as canonical events (``CaseEventEnvelope``), contact
details (``ContactsUpdated``, only ever for ``ehc.contacts``) or a :class:`Rejection` that keeps
the original bytes and says why in one line. A reason names fields, never their values, so it
is safe to log and to show to a council's support team.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

from pydantic import ValidationError

from shared.contracts import CaseEventEnvelope, ContactsUpdated

MAX_REASON_CHARS = 300


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input (or part of one) that could not be converted.

    ``reason``: one line, no personal data (``"field UPN is not 13 characters"``, never the UPN).
    ``original``: the original bytes (a whole message, a CSV row with its header, an XML fragment).
    ``location``: where in a file it was, e.g. ``"person 12 / request 1 (line 340)"`` or ``"line 7"``.
    """

    reason: str
    original: bytes
    location: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", one_line(self.reason))


IntakeItem: TypeAlias = CaseEventEnvelope | ContactsUpdated | Rejection


def one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """Collapse whitespace (a reason is one line) and cap its length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def split_items(
    items: Iterable[IntakeItem],
) -> tuple[list[CaseEventEnvelope], list[ContactsUpdated], list[Rejection]]:
    """Sort converted items into (case events, contact updates, rejections), keeping their order."""
    events: list[CaseEventEnvelope] = []
    contacts: list[ContactsUpdated] = []
    rejections: list[Rejection] = []
    for item in items:
        if isinstance(item, Rejection):
            rejections.append(item)
        elif isinstance(item, ContactsUpdated):
            contacts.append(item)
        else:
            events.append(item)
    return events, contacts, rejections


# Location parts that are field names are safe to show; anything else (a key chosen by the
# sender, which could be anything) is replaced.
_SAFE_LOC_PART = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
# Error types whose pydantic message can quote the input; they get a message of our own.
_OWN_MESSAGES = {
    "union_tag_invalid": "unknown event type",
    "union_tag_not_found": "the event has no type",
    "json_invalid": "not valid JSON",
    "json_type": "not a JSON document",
    "value_error": "invalid value",
    "assertion_error": "invalid value",
}


def describe_safely(exc: ValidationError, *, limit: int = 3, prefix: str = "") -> str:
    """One line naming the fields that failed and why, never echoing a value.

    Stricter than ``shared.contracts.describe_validation_error``: messages that may quote the input
    (unknown event types, e-mail address checks, custom validators) are replaced by our own words,
    and location parts that are not plain field names are masked.
    """
    parts: list[str] = []
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    for err in errors[:limit]:
        loc_parts = []
        for part in err["loc"]:
            text = str(part)
            if text.startswith(("tagged-union", "function-")) or text.startswith("ehc."):
                continue
            loc_parts.append(text if _SAFE_LOC_PART.match(text) else "?")
        loc = ".".join(loc_parts)
        kind = err["type"]
        if kind.startswith("union_tag"):
            loc = "type"
        if kind in _OWN_MESSAGES:
            msg = _OWN_MESSAGES[kind]
            if kind == "value_error" and "email" in err["msg"].lower():
                msg = "not a valid email address"
            elif kind == "value_error" and "UTC offset" in err["msg"]:
                msg = "must carry a UTC offset"
        elif kind.startswith(("string_pattern", "literal", "enum", "missing", "extra", "date", "datetime",
                              "bool", "string_", "list_", "too_", "int", "float", "model", "dict")):
            msg = err["msg"]
        else:
            msg = kind.replace("_", " ")
        if kind == "literal_error" and len(msg) > 120:
            msg = "not one of the allowed values"
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = len(errors) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return one_line(prefix + "; ".join(parts))
