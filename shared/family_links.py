"""A family's secure link to their child's timeline: signed, dated, and nothing else.

The token carries the opaque case id and the family's language, signed with HMAC
(itsdangerous, salt ``family-link``) under ``EHC_WEB__FAMILY_LINK_SECRET`` with the time it was
made. The web front refuses a token whose signature does not match, that is older than its
lifetime, or that was made before the case's links were revoked. The notifier makes the links it
puts in families' messages with the same secret; no login is needed, and the link shows that one
case's timeline only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "family-link"


class FamilyLinkRefused(ValueError):
    """The link is tampered with, expired or malformed (``reason`` says which, for logs and tests)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FamilyLink:
    case_id: str
    language: str
    issued_at: datetime


DEV_SECRET = "local-development-family-link-secret-not-for-use"


def secret_from_settings(secret: Any, environment: str) -> str | None:
    """``EHC_WEB__FAMILY_LINK_SECRET``; outside production a fixed development secret when unset."""
    if secret is not None:
        return str(secret.get_secret_value())
    return None if environment == "production" else DEV_SECRET


def _serializer(secret: str) -> URLSafeTimedSerializer:
    if len(secret) < 32:
        raise ValueError("the family link secret must have at least 32 characters")
    return URLSafeTimedSerializer(secret, salt=SALT)


def make_token(secret: str, case_id: str, language: str = "en") -> str:
    return _serializer(secret).dumps({"c": case_id, "l": language if language in ("en", "cy") else "en"})


def link_url(base_url: str, secret: str, case_id: str, language: str = "en") -> str:
    return f"{base_url.rstrip('/')}/family/{make_token(secret, case_id, language)}"


def read_token(secret: str, token: str, max_age_seconds: int) -> FamilyLink:
    try:
        payload, issued = _serializer(secret).loads(token, max_age=max_age_seconds, return_timestamp=True)
    except SignatureExpired:
        raise FamilyLinkRefused("expired") from None
    except BadSignature:
        raise FamilyLinkRefused("bad signature") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("c"), str):
        raise FamilyLinkRefused("malformed")
    return FamilyLink(payload["c"], payload.get("l") or "en", issued.astimezone(UTC))
