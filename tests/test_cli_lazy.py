"""`ehc` imports only what a command uses (issue 12 item 1): help without any service, and every
command still there with the names, options and one-line help it had (tests/fixtures/cli_tree.json,
written from the command line before it became lazy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer._click.core import Context

from services.cli import LIVE_SOURCE, app
from services.intake.entrypoints import report_cli
from shared.lazy_cli import LazyCommand

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pydantic", "faststream", "aiokafka", "sqlalchemy", "fastapi", "orjson", "yaml", "services.deadlines",
         "services.intake", "services.notifier", "services.web", "shared.contracts", "shared.settings",
         # help is click's plain text: typer's Rich panels import rich and markdown-it (half of the CPU)
         "rich", "markdown_it")

PROBE = """
import json, sys
from services.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


@pytest.mark.parametrize("words", [["--help"], *[[group, "--help"] for group in
                                                  ("deadlines", "intake", "notifier", "report", "infra", "web")]])
def test_help_imports_no_service_and_no_heavy_library(words: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, *words], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)
    probe = json.loads(done.stderr.strip().splitlines()[-1])
    assert probe["code"] == 0 and "Usage: " in done.stdout
    loaded = [m for m in probe["modules"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == []


def _first(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def _tree(command: Any, path: list[str], parent: Context | None = None) -> dict[str, Any]:
    """Every command: the help its group lists (without loading it), and its options once loaded."""
    listed = command
    if isinstance(command, LazyCommand):
        command = command.load()
    ctx = Context(command, info_name=path[-1], parent=parent)
    out = {" ".join(path): {"help": _first(listed.short_help or listed.help),
                            "options": sorted("/".join(sorted(p.opts + p.secondary_opts)) for p in command.params)}}
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            out.update(_tree(command.get_command(ctx, name), [*path, name], ctx))
    return out


def test_every_command_keeps_its_name_options_and_help() -> None:
    before = json.loads((ROOT / "tests" / "fixtures" / "cli_tree.json").read_text())
    assert _tree(typer.main.get_command(app), ["ehc"]) == before


def test_the_live_source_key_is_the_report_commands() -> None:
    assert LIVE_SOURCE == report_cli.LIVE_SOURCE


def test_a_lazy_command_runs_through_ehc(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["deadlines", "what-if", "at-risk", "--rule", "review.decision", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)
    bad = CliRunner().invoke(app, ["deadlines", "compute", "--as-of", "2026-13-01"], input="")
    assert bad.exit_code == 2 and "--as-of must be a real date" in bad.stderr


@pytest.mark.parametrize(("group", "target"), [
    (["deadlines"], "services.deadlines.entrypoints.cli:deadlines_app"),
    (["intake"], "services.intake.entrypoints.cli:intake_app"),
    (["report"], "services.intake.entrypoints.report_cli:report_app"),
    (["infra"], "shared.local_infra.cli:infra_app"),
    (["notifier", "subscriptions"], "services.notifier.entrypoints.cli:subscriptions_app"),
])
def test_every_command_of_a_service_app_is_listed_by_ehc(group: list[str], target: str) -> None:
    """A command added to a service's own Typer app must also be listed in services/cli.py."""
    from shared.lazy_cli import load_command

    root = typer.main.get_command(app)
    ctx = Context(root, info_name="ehc")
    listed: Any = root
    for word in group:
        listed = listed.get_command(ctx, word)
        listed = listed.load() if isinstance(listed, LazyCommand) else listed
        ctx = Context(listed, info_name=word, parent=ctx)
    service_app = load_command(group[-1], target)
    assert set(service_app.list_commands(ctx)) <= set(listed.list_commands(ctx))
