"""A real OpenID Connect provider for the sign-in tests: no.nav.security mock-oauth2-server (from
Maven Central, resolved by infra/oidc/pom.xml into the cache beside the Kafka jars), run with the
machine's Java 17. Its interactive login page takes a user name and the claims (JSON) to sign."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from shared.local_infra import cache_root, locked
from tests.conftest import free_port

POM = Path(__file__).resolve().parents[2] / "infra" / "oidc" / "pom.xml"
VERSION = "6.0.2"
MAIN = "no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt"


def ensure_jars() -> Path:
    libs = cache_root() / f"mock-oauth2-server-{VERSION}" / "libs"
    jar = libs / f"mock-oauth2-server-{VERSION}.jar"
    if jar.is_file():
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    with locked(libs.parent / ".lock"):
        if jar.is_file():
            return libs
        tmp = Path(tempfile.mkdtemp(prefix=".libs-", dir=libs.parent))
        try:
            subprocess.run(["mvn", "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={tmp}",
                            "-DincludeScope=runtime", "-f", str(POM)], check=True, capture_output=True,
                           stdin=subprocess.DEVNULL, cwd=tmp)
            if libs.exists():
                shutil.rmtree(libs)
            tmp.rename(libs)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return libs


class OidcProvider:
    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/default"
        self.metadata_url = f"{self.issuer}/.well-known/openid-configuration"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        libs = ensure_jars()
        env = {**os.environ, "SERVER_PORT": str(self.port), "JSON_CONFIG": '{"interactiveLogin": true}'}
        self.proc = subprocess.Popen([shutil.which("java") or "java", "-cp", f"{libs}/*", MAIN], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the OIDC provider exited with {self.proc.returncode}")
            try:
                if httpx.get(self.metadata_url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the OIDC provider did not answer within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
