"""The committed JSON Schemas and AsyncAPI documents (docs/contracts/, written by `ehc docs`) are
what the code generates now: they never go stale."""

from __future__ import annotations

from pathlib import Path

from services.docs import render_all

DOCS = Path(__file__).resolve().parents[1] / "docs" / "contracts"


def test_committed_contract_documents_are_current() -> None:
    rendered = render_all()
    committed = {p.name: p.read_text() for p in DOCS.glob("*.json")}
    assert set(committed) == set(rendered), "run `ehc docs` and commit docs/contracts/"
    stale = [name for name, text in rendered.items() if committed[name] != text]
    assert not stale, f"stale documents (run `ehc docs`): {stale}"


def test_asyncapi_documents_name_every_topic_of_each_service() -> None:
    rendered = render_all()
    assert "ehc.case-events" in rendered["asyncapi-deadlines.json"]
    assert "ehc.deadline-events" in rendered["asyncapi-notifier.json"]
    assert "ehc.intake.canonical" in rendered["asyncapi-intake.json"]
    assert "ehc.request.received" in rendered["case-event.schema.json"]
