"""Team and area names are one setting shared by the services (EHC_TEAM_NAMES, EHC_AREA_NAMES): the
notifier's messages and the web front's pages name a team alike. The notifier's earlier variables
(EHC_NOTIFIER__TEAM_NAMES, _AREA_NAMES) still work, and reach the web front too; the shared one wins
where both name a team."""

from __future__ import annotations

import pytest

from shared.settings import Settings


def test_shared_names_reach_the_notifier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHC_TEAM_NAMES", '{"team-n": "North SEN team"}')
    monkeypatch.setenv("EHC_AREA_NAMES", '{"east": "East Herts"}')
    settings = Settings(_env_file=None)
    assert settings.team_names == settings.notifier.team_names == {"team-n": "North SEN team"}
    assert settings.area_names == settings.notifier.area_names == {"east": "East Herts"}


def test_the_notifiers_earlier_variables_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHC_NOTIFIER__TEAM_NAMES", '{"team-n": "North (old name)", "team-s": "South SEN team"}')
    monkeypatch.setenv("EHC_TEAM_NAMES", '{"team-n": "North SEN team"}')
    settings = Settings(_env_file=None)
    assert settings.team_names == settings.notifier.team_names == {"team-n": "North SEN team",
                                                                   "team-s": "South SEN team"}
