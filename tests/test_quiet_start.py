"""`make run` (and every service's start) prints no library deprecation notice: Authlib 1.9 warned at
import, on every start of `ehc run`, that it falls back from its httpx2 fork to httpx, the client
this project installs and pins. Nothing for a council to act on, so the web front's import keeps
it out of their logs; any other warning still shows."""

from __future__ import annotations

import subprocess
import sys

from tests.paths import REPO


def test_importing_the_web_sign_in_prints_no_warning() -> None:
    done = subprocess.run([sys.executable, "-c", "import services.web.entrypoints.auth"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stderr == ""
