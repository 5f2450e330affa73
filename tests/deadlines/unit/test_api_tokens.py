"""Read API tokens are checked at start and compared in constant time (issue 13): every token has a
known role and, where the role needs one, a scope; a bad token setting refuses to start."""

from __future__ import annotations

import pytest

from services.deadlines.entrypoints.http import build_api
from shared.settings import SettingsError


async def _ready() -> dict[str, bool]:
    return {"database": True}


@pytest.mark.parametrize(("tokens", "problem"), [
    ({"tok-1": "caseworker"}, "caseworker:<id>"),
    ({"tok-1": "caseworker:"}, "caseworker:<id>"),
    ({"tok-1": "manager:"}, "manager"),
    ({"tok-1": "manager: "}, "manager"),
    ({"tok-1": "intern"}, "role"),
    ({"tok-1": "admin:team-a"}, "admin"),
    ({"": "admin"}, "empty"),
])
def test_a_bad_token_setting_refuses_to_start(tokens: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError) as raised:
        build_api(None, tokens, _ready, None, None)  # type: ignore[arg-type]
    message = str(raised.value)
    assert "EHC_DEADLINES__API_TOKENS" in message and problem in message and "\n" not in message
    for token in tokens:
        if token.strip():
            assert token not in message  # a secret is never repeated


def test_good_tokens_start_and_the_api_documents_401_and_403() -> None:
    app = build_api(None, {"tok-admin-0123456789": "admin", "tok-mgr-0123456789ab": "manager",  # type: ignore[arg-type]
                           "tok-team-0123456789a": "manager:team-a", "tok-cw-0123456789abc": "caseworker:cw-1"},
                    _ready, None, None)
    paths = app.openapi()["paths"]
    for path in ("/v1/deadlines", "/v1/at-risk", "/v1/breaches", "/v1/cases/{case_id}/deadlines"):
        assert {"401", "403"} <= set(paths[path]["get"]["responses"]), path
