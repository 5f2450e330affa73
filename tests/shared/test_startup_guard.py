"""The environment is one of a fixed set, whatever its case, and a production start without its
secrets (or with unusable settings) stops with one line and exit status 2 in every service, never a
traceback and never a start with the public development key (issue 13)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.settings import Settings

EHC = Path(sys.executable).parent / "ehc"


@pytest.mark.parametrize(("given", "normalised"), [("Production", "production"), (" PRODUCTION ", "production"),
                                                   ("Local", "local"), ("test", "test"), ("Staging", "staging")])
def test_the_environment_is_normalised(given: str, normalised: str) -> None:
    assert Settings(environment=given).environment == normalised


@pytest.mark.parametrize("given", ["prod", "live", "", "production2"])
def test_an_unknown_environment_is_refused(given: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(environment=given)
    assert "local, test, staging, production" in str(raised.value)


def start(tmp_path: Path, service: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("EHC_")}
    base.update({"EHC_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9",  # nothing there: a wrong start fails fast
                 "EHC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ehc-{{service}}.db",
                 "EHC_INTAKE__HTTP_PORT": "0", "EHC_DEADLINES__HTTP_PORT": "0", "EHC_NOTIFIER__HTTP_PORT": "0"})
    base.update(env)
    try:
        return subprocess.run([str(EHC), service, "serve"], env=base, cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
    except subprocess.TimeoutExpired as exc:  # it started: the guard let it through
        raise AssertionError(f"ehc {service} serve started with {env}") from exc


@pytest.mark.parametrize(("service", "environment", "named"), [
    ("intake", "Production", "EHC_INTAKE__CASE_ID_KEY"),
    ("intake", "production", "EHC_INTAKE__CASE_ID_KEY"),
    ("notifier", "production", "EHC_NOTIFIER__ENCRYPTION_KEY"),
    ("notifier", "PRODUCTION", "EHC_NOTIFIER__ENCRYPTION_KEY"),
    ("intake", "prod", "EHC_ENVIRONMENT"),
    ("deadlines", "prod", "EHC_ENVIRONMENT"),
    ("notifier", "prod", "EHC_ENVIRONMENT"),
])
def test_a_production_start_without_its_secrets_stops_with_one_line(tmp_path: Path, service: str, environment: str,
                                                                    named: str) -> None:
    result = start(tmp_path, service, EHC_ENVIRONMENT=environment)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and named in lines[0], lines


def test_a_bad_read_api_token_setting_stops_the_deadlines_service_with_one_line(tmp_path: Path) -> None:
    result = start(tmp_path, "deadlines", EHC_ENVIRONMENT="test", EHC_DEADLINES__API_TOKENS='{"tok-1": "caseworker"}')
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "EHC_DEADLINES__API_TOKENS" in lines[0], lines
