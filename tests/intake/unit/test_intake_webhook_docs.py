"""Issue 9: integrators can sign a webhook from the docs alone, and the AsyncAPI of the canonical input
topic describes its payload. The worked example in the README is checked against the real signing."""

from __future__ import annotations

import json
import re

from services.intake.entrypoints.http import sign
from tests.paths import REPO as REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
ASYNCAPI = json.loads((REPO_ROOT / "docs" / "contracts" / "asyncapi-intake.json").read_text())


def test_the_readme_worked_example_is_the_real_signature() -> None:
    section = README[README.index("### Signing a webhook request"):]
    secret = re.search(r"secret `([^`]+)`", section).group(1)
    timestamp = re.search(r"timestamp `(\d+)`", section).group(1)
    body = re.search(r"body \(exact bytes\): `([^`]+)`", section).group(1).encode()
    signed = re.search(r"X-EHC-Signature: (sha256=[0-9a-f]{64})", section).group(1)
    assert sign(secret, timestamp, body) == signed
    for header in ("X-EHC-Source", "X-EHC-Timestamp", "X-EHC-Signature"):
        assert header in section
    assert "curl" in section and "hmac.new" in section


def test_the_canonical_input_topic_documents_its_payload() -> None:
    message = ASYNCAPI["components"]["messages"]["on_canonical:SubscribeMessage"]
    assert message["payload"] != {"$ref": "#/components/schemas/EmptyPayload"}
    assert message["payload"] == {"$ref": "#/components/schemas/to_case_events:Message:Payload"}
    assert "case_id" in ASYNCAPI["channels"]["on_canonical"]["description"]


def test_the_openapi_of_the_webhook_shows_the_signing() -> None:
    from services.intake.entrypoints.http import build_webhook_app
    from shared.settings import IntakeSettings

    app = build_webhook_app(IntakeSettings(), None, None, None, lambda: None)  # type: ignore[arg-type]
    operation = app.openapi()["paths"]["/v1/events"]["post"]
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers >= {"X-EHC-Source", "X-EHC-Timestamp", "X-EHC-Signature"}
    assert 'timestamp + "." + body' in operation["description"] and "curl" in operation["description"]
