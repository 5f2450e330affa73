"""A family's secure link to their child's timeline: signed, dated, and nothing else.

The token carries the opaque case id and the family's language, signed with HMAC
(itsdangerous, salt ``family-link``) under ``EHC_WEB__FAMILY_LINK_SECRET`` with the time it was
made. The web front refuses a token whose signature does not match, that is older than its
lifetime, or that was made before the case's links were revoked. The notifier makes the links it
puts in families' messages with the same secret; no login is needed, and the link shows that one
case's timeline only.

A text to a family has no room for a signed token, so it carries a **short link** instead:
``<web base url>/f/<code>``, a code of 12 letters and digits (62 symbols: over 71 bits, chosen by
``secrets``) that the notifier makes for each text it sends and keeps only as an HMAC-SHA256 under
the same secret (a read of its tables reveals no live link), with the case, the family's language,
when it was made and when it expires. The web front asks the notifier's API what a code stands for
and then treats it exactly as a signed link (the same lifetime and revocation, the same pages).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
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


# --- short links (texts) -----------------------------------------------------------------------

SHORT_CODE_ALPHABET = string.ascii_letters + string.digits  # no punctuation a phone might cut off a link
SHORT_CODE_LENGTH = 12
SHORT_CODE_PATTERN = re.compile(rf"^[A-Za-z0-9]{{{SHORT_CODE_LENGTH}}}$")
SHORT_PATH = "/f/"


def new_short_code() -> str:
    return "".join(secrets.choice(SHORT_CODE_ALPHABET) for _ in range(SHORT_CODE_LENGTH))


def short_code_digest(secret: str, code: str) -> str:
    """What is stored of a code: HMAC-SHA256 under the family link secret (hex)."""
    return hmac.new(secret.encode(), b"family-short-link:" + code.encode(), hashlib.sha256).hexdigest()


def is_short_code(code: str) -> bool:
    return bool(SHORT_CODE_PATTERN.match(code))


def short_link_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}{SHORT_PATH}{code}"


def short_link_length(base_url: str) -> int:
    """The characters a short link to a web front at ``base_url`` takes in a text."""
    return len(base_url.rstrip("/")) + len(SHORT_PATH) + SHORT_CODE_LENGTH
