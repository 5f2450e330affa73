"""An import is all or nothing per file, or says exactly what was skipped (issue 13): an SEN2 return
with one bad byte, or cut short, publishes nothing and exits non-zero naming the line; with
``--skip-bad`` the good records are published and the summary says what was not read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.intake.domain.sen2_synthetic import write_sen2_xml
from shared import topics
from shared.settings import Settings
from tests.e2e.harness import service_env
from tests.intake.e2e.test_intake_imports import KEY, ehc
from tests.intake.e2e.topics_helper import all_records, sizes

pytestmark = pytest.mark.infra


def damaged(tmp_path: Path, how: str) -> tuple[Path, int]:
    generated = write_sen2_xml(tmp_path / "return.xml", 2000, 2025, seed=11)
    data = generated.path.read_bytes()
    at = data.index(b"<Person>", len(data) * 99 // 100)  # a bad byte in the last 1% of the people
    if how == "bad byte":
        data = data[:at + 10] + b"\xff" + data[at + 11:]
    else:
        data = data[:at + 10]
    generated.path.write_bytes(data)
    return generated.path, sum(generated.expected_events.values())


@pytest.mark.parametrize("how", ["bad byte", "cut short"])
async def test_a_damaged_sen2_file_publishes_nothing_and_exits_non_zero(isolated: Settings, tmp_path: Path,
                                                                        how: str) -> None:
    path, _ = damaged(tmp_path, how)
    env = service_env(isolated, EHC_INTAKE__CASE_ID_KEY=KEY)
    code, out, err = await ehc("intake", "import", str(path), "--format", "sen2", env=env)
    assert code == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("ehc intake import: return.xml: malformed XML") and "line " in last, last
    assert "nothing was published" in last and "--skip-bad" in last
    found = await sizes(isolated, [isolated.kafka.topic(topics.CASE_EVENTS),
                                   isolated.kafka.topic(topics.INTAKE_DEAD_LETTER)])
    assert set(found.values()) == {0}


async def test_skip_bad_publishes_the_good_records_and_says_what_was_skipped(isolated: Settings,
                                                                           tmp_path: Path) -> None:
    path, _ = damaged(tmp_path, "bad byte")
    env = service_env(isolated, EHC_INTAKE__CASE_ID_KEY=KEY)
    code, out, err = await ehc("intake", "import", str(path), "--format", "sen2", "--skip-bad", env=env)
    assert code == 0, err[-2000:]
    assert "records rejected, in ehc.intake.dead-letter" in out
    assert "1  malformed XML: not well-formed (invalid token); the rest of the file was not read" in out
    assert "The file stopped being readable: malformed XML: not well-formed (invalid token) at line " in out
    dead = await all_records(isolated, isolated.kafka.topic(topics.INTAKE_DEAD_LETTER), 1)
    reasons = [json.loads(r.value)["data"]["reason"] for r in dead]
    assert sum("the rest of the file was not read" in reason for reason in reasons) == 1
    published = (await sizes(isolated, [isolated.kafka.topic(topics.CASE_EVENTS)]))[
        isolated.kafka.topic(topics.CASE_EVENTS)]
    assert published > 0
