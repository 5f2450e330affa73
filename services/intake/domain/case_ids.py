"""Opaque case ids and deterministic event ids.

A case id is a keyed hash (HMAC-SHA256) of the source and the council's own reference: the same
reference always gives the same case id, and without the key nothing personal (a UPN, a name)
can be read back from it or confirmed by guessing. Keep the key secret and stable: changing it
changes every case id.

Event ids are UUIDv5 over a fixed namespace, so re-importing the same record gives the same ids
and downstream de-duplication by (source, event id) drops the repeat. A UUIDv5 is not keyed:
build event ids from the (opaque) case id and non-personal parts such as dates and event types,
never from names or pupil numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid

# Fixed for ever: changing it would change every deterministic event id already published.
EVENT_ID_NAMESPACE = uuid.UUID("dd0439ec-8bd4-4960-9e00-71930ee20fdf")

CASE_ID_PREFIX = "c-"
CASE_ID_HEX_CHARS = 24  # 96 bits: no collision in practice for any council's caseload
_SEPARATOR = "\x1f"  # ASCII unit separator: cannot occur in a reference typed by a person

# A UPN (letter, 11 digits, check character) or a ULN (10 digits): never allowed as a case id.
_LOOKS_PERSONAL = re.compile(r"^(?:[A-Za-z][0-9]{11}[0-9A-Za-z]|[0-9]{10})$")


def opaque_case_id(key: bytes, source: str, reference: str) -> str:
    """``"c-"`` + the first 24 hex characters of HMAC-SHA256(key, source US reference)."""
    if not key:
        raise ValueError("the case id key is empty: configure a secret key of at least 16 random bytes")
    message = f"{source}{_SEPARATOR}{reference}".encode("utf-8", errors="surrogatepass")
    digest = hmac.new(key, message, hashlib.sha256).hexdigest()
    return CASE_ID_PREFIX + digest[:CASE_ID_HEX_CHARS]


def deterministic_event_id(source: str, *parts: object) -> str:
    """A UUIDv5 (as text) over the source and the given parts, joined by a unit separator."""
    name = _SEPARATOR.join([source, *(str(part) for part in parts)])
    # uuid.uuid5 by hand so that any text (even with lone surrogates) hashes: SHA-1 of the
    # namespace and the UTF-8 name, version 5 (RFC 4122 section 4.3).
    digest = hashlib.sha1(EVENT_ID_NAMESPACE.bytes + name.encode("utf-8", errors="surrogatepass")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def looks_personal(identifier: str) -> bool:
    """True when an identifier has the shape of a UPN or a ULN (so it must not be a case id)."""
    return bool(_LOOKS_PERSONAL.match(identifier.strip()))
