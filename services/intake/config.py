"""Intake's settings made usable: the case id key and the source mappings (light to import, so the
command line loads it without the Kafka and HTTP machinery)."""

from __future__ import annotations

from collections.abc import Callable

from services.intake.domain.mapping import EXAMPLES_DIR, SourceMapping, load_mappings
from shared.logging import get_logger
from shared.settings import Settings, SettingsError

log = get_logger(__name__)

# Only for trying the service out: anyone can recompute case ids made with it.
DEV_CASE_ID_KEY = b"ehc-development-case-id-key-do-not-use-in-production"
MIN_KEY_BYTES = 16


class ConfigError(SettingsError):
    """Intake's settings cannot work; the message says which setting and why (never a secret)."""


DEV_KEY_WARNING = ("EHC_INTAKE__CASE_ID_KEY is not set: case ids are made with the fixed development key, which "
                   "anyone can use to recompute them; set a secret key before importing real data")


def case_id_key(settings: Settings, warn: Callable[[str], None] | None = None) -> bytes:
    """The secret key for opaque case ids: required in production, a fixed dev key (with a warning) otherwise.

    ``warn`` shows the warning (default: a log line)."""
    configured = settings.intake.case_id_key
    if configured is not None:
        key = configured.get_secret_value().encode()
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"EHC_INTAKE__CASE_ID_KEY is shorter than {MIN_KEY_BYTES} characters: "
                              "use a long random secret (e.g. 32 hex digits) and keep it stable")
        return key
    if settings.environment == "production":
        raise ConfigError("EHC_INTAKE__CASE_ID_KEY is required in production: a long random secret, kept stable "
                          "(changing it changes every case id)")
    if warn is not None:
        warn(DEV_KEY_WARNING)
    else:
        log.warning("intake.dev_case_id_key", environment=settings.environment, action=DEV_KEY_WARNING)
    return DEV_CASE_ID_KEY


def available_mappings(settings: Settings) -> dict[str, SourceMapping]:
    """The shipped example mappings, replaced or extended by those in ``mappings_dir``."""
    found = load_mappings(EXAMPLES_DIR)
    folder = settings.intake.mappings_dir
    if folder is not None:
        if not folder.is_dir():
            raise ConfigError(f"EHC_INTAKE__MAPPINGS_DIR {folder}: not a folder")
        found.update(load_mappings(folder))
    return found


def find_mapping(mappings: dict[str, SourceMapping], name: str, used_by: str) -> SourceMapping:
    if name not in mappings:
        raise ConfigError(f"{used_by}: no mapping named {name!r} (known: {', '.join(sorted(mappings))})")
    return mappings[name]
