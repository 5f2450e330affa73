"""Personal data at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key from settings."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from shared.logging import get_logger
from shared.settings import SettingsError

log = get_logger(__name__)


class Crypto:
    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)
        raw = key.encode() if isinstance(key, str) else key
        # a separate key for fingerprints, derived from the encryption key (never the same bytes)
        self._fingerprint_key = hashlib.sha256(b"ehc-notifier/fingerprint\x00" + raw).digest()

    def fingerprint(self, *parts: str) -> str:
        """A stable, keyed reference for personal data (an address): it identifies a recipient in keys,
        audit events and logs without revealing them; unlike a plain hash, nobody without the key can
        find a phone number from it by trying every number."""
        digest = hmac.new(self._fingerprint_key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()
        return digest[:24]

    def encrypt(self, text: str) -> bytes:
        return self._fernet.encrypt(text.encode())

    def decrypt(self, token: bytes) -> str:
        return self._fernet.decrypt(token).decode()

    def encrypt_json(self, value: Any) -> bytes:
        return self.encrypt(json.dumps(value, separators=(",", ":")))

    def decrypt_json(self, token: bytes) -> Any:
        return json.loads(self.decrypt(token))


def crypto_from_settings(key: str | None, environment: str, local_key_file: Path) -> Crypto:
    """Production must set EHC_NOTIFIER__ENCRYPTION_KEY; a local run keeps a generated key in var/."""
    if key:
        try:
            return Crypto(key)
        except ValueError:
            raise SettingsError("EHC_NOTIFIER__ENCRYPTION_KEY is not a Fernet key (32 url-safe base64-encoded "
                                "bytes, e.g. from cryptography.fernet.Fernet.generate_key())") from None
    if environment == "production":
        raise SettingsError("EHC_NOTIFIER__ENCRYPTION_KEY is required in production (a Fernet key)")
    if local_key_file.exists():
        return Crypto(local_key_file.read_bytes().strip())
    local_key_file.parent.mkdir(parents=True, exist_ok=True)
    generated = Fernet.generate_key()
    local_key_file.write_bytes(generated)
    local_key_file.chmod(0o600)
    log.warning("notifier.generated_local_key", path=str(local_key_file))
    return Crypto(generated)
