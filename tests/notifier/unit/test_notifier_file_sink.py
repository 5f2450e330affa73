"""The file sink: one JSON file per message (and an .eml for an email), written whole."""

from __future__ import annotations

import json
import uuid
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from services.notifier.adapters.channels import OutgoingMessage, PermanentSendError
from services.notifier.adapters.file_sink import FileSinkChannel
from services.notifier.adapters.smtp import NOTIFICATION_ID_HEADER
from services.notifier.domain.policy import NotificationStatus


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def msg(**changes: object) -> OutgoingMessage:
    fields: dict = {"notification_id": str(uuid.uuid4()), "channel": "file", "to": "+447900900123",
                    "template": "family_review_due", "personalisation": {"due_on": "2 July 2027"},
                    "body": "The EHC plan must be reviewed by 2 July 2027.", "language": "cy"}
    fields.update(changes)
    return OutgoingMessage(**fields)


async def test_a_text_becomes_one_json_file(tmp_path: Path) -> None:
    sink = FileSinkChannel(tmp_path / "outbox")
    message = msg()
    result = await sink.send(message)
    assert result.status is NotificationStatus.DELIVERED
    assert result.provider_reference == f"file:{message.notification_id}"
    files = names(tmp_path / "outbox")
    assert files == [f"{message.notification_id}.json"]
    record = json.loads((tmp_path / "outbox" / files[0]).read_text())
    assert record["kind"] == "sms" and record["to"] == "+447900900123" and record["language"] == "cy"
    assert record["body"] == message.body and record["personalisation"] == {"due_on": "2 July 2027"}


async def test_an_email_also_becomes_an_eml(tmp_path: Path) -> None:
    sink = FileSinkChannel(tmp_path, mail_from="ehc@council.example")
    message = msg(to="parent@example.org", subject="The EHC plan must be reviewed", language="en")
    await sink.send(message)
    record = json.loads((tmp_path / f"{message.notification_id}.json").read_text())
    assert record["kind"] == "email" and record["eml"] == f"{message.notification_id}.eml"
    email = message_from_bytes((tmp_path / record["eml"]).read_bytes(), policy=policy.default)
    assert email[NOTIFICATION_ID_HEADER] == message.notification_id
    assert email["Subject"] == "The EHC plan must be reviewed" and email["From"] == "ehc@council.example"


async def test_sending_twice_leaves_one_file_and_no_temporary_files(tmp_path: Path) -> None:
    sink = FileSinkChannel(tmp_path)
    message = msg()
    await sink.send(message)
    await sink.send(message)
    assert names(tmp_path) == [f"{message.notification_id}.json"]


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "", "x.json"])
async def test_an_id_that_is_not_a_plain_name_is_refused(tmp_path: Path, bad_id: str) -> None:
    with pytest.raises(PermanentSendError):
        await FileSinkChannel(tmp_path).send(msg(notification_id=bad_id))
    assert names(tmp_path) == []


async def test_an_unwritable_folder_is_a_send_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(PermanentSendError, match="could not write"):
        await FileSinkChannel(blocker / "outbox").send(msg())
