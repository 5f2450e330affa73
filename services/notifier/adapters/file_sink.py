"""A local stand-in for every channel: each message becomes a JSON file (and an .eml for an email).

For ``ehc run`` on one machine and for demos: nothing leaves the machine, and a person can open the
folder and read exactly what families and staff would have received. The files hold personal data
(addresses, numbers, bodies): point ``EHC_NOTIFIER__FILE_SINK_DIR`` at a private folder.

Files are named after the notification id only, written to a temporary name and renamed, so a
message sent twice (at-least-once delivery) is one file, and a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.notifier.adapters.channels import OutgoingMessage, PermanentSendError, SendResult
from services.notifier.adapters.smtp import build_email_message
from services.notifier.domain.policy import NotificationStatus
from shared.logging import get_logger
from shared.settings import NotifierSettings

log = get_logger(__name__)


def _safe_name(notification_id: str) -> str:
    name = "".join(ch for ch in notification_id if ch.isalnum() or ch in "-_")
    if not name or name != notification_id:
        raise PermanentSendError("a notification id for the file sink may hold letters, digits, - and _ only")
    return name


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FileSinkChannel:
    """A Channel that writes messages into ``directory``; every message counts as delivered."""

    def __init__(self, directory: Path | str, mail_from: str = "ehc-deadlines@council.example") -> None:
        self.directory = Path(directory)
        self.mail_from = mail_from

    @classmethod
    def from_settings(cls, settings: NotifierSettings) -> FileSinkChannel:
        return cls(settings.file_sink_dir, settings.mail_from)

    def paths_for(self, notification_id: str) -> tuple[Path, Path]:
        name = _safe_name(notification_id)
        return self.directory / f"{name}.json", self.directory / f"{name}.eml"

    def _write(self, msg: OutgoingMessage, now: datetime) -> None:
        json_path, eml_path = self.paths_for(msg.notification_id)
        self.directory.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = asdict(msg)
        record["personalisation"] = dict(msg.personalisation)
        record["kind"] = "email" if msg.is_email else "sms"
        record["written_at"] = now.isoformat()
        if msg.is_email:
            email = build_email_message(msg, self.mail_from, now)
            _write_atomically(eml_path, bytes(email))
            record["eml"] = eml_path.name
        _write_atomically(json_path, json.dumps(record, ensure_ascii=False, indent=2).encode())

    async def send(self, msg: OutgoingMessage) -> SendResult:
        try:
            await asyncio.to_thread(self._write, msg, datetime.now(UTC))
        except OSError as exc:
            raise PermanentSendError(f"could not write to the file sink ({type(exc).__name__})") from None
        log.info("file_sink.written", notification_id=msg.notification_id, channel=msg.channel)
        return SendResult(provider_reference=f"file:{msg.notification_id}", status=NotificationStatus.DELIVERED)

    async def aclose(self) -> None:
        """Nothing to close."""


__all__ = ["FileSinkChannel"]
