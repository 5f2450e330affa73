"""docker-compose.yml is checked statically (no Docker engine on our machines): it parses, every
service runs an `ehc` command that exists, every environment variable it sets is a known setting,
and the topics it creates are the project's topic constants with the right configuration."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer.main
import yaml

from services.cli import app
from shared.settings import known_env_vars
from shared.topics import topic_specs

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _is_group(command: object) -> bool:
    return isinstance(getattr(command, "commands", None), dict)  # typer ships its own click


def _ehc_command_exists(args: list[str]) -> bool:
    command = typer.main.get_command(app)
    for arg in args:
        if not _is_group(command):
            return False  # more words than the command takes
        sub = command.commands.get(arg)  # type: ignore[attr-defined]
        if sub is None:
            return False
        command = sub
    return not _is_group(command)


def test_every_service_runs_an_existing_ehc_command() -> None:
    built = {name: svc for name, svc in COMPOSE["services"].items() if "build" in svc}
    assert set(built) == {"intake", "deadlines", "notifier", "web"}
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["ehc"]' in dockerfile
    for name, svc in built.items():
        assert svc["command"] == [name, "serve"]
        assert _ehc_command_exists(svc["command"]), f"{name}: ehc {' '.join(svc['command'])} does not exist"
        assert "healthcheck" in svc and "/readyz" in " ".join(svc["healthcheck"]["test"])


def test_unknown_commands_are_detected() -> None:
    assert not _ehc_command_exists(["intake", "nonsense"])
    assert not _ehc_command_exists(["deadlines"])  # a group, not a command


def test_every_environment_variable_is_a_known_setting() -> None:
    known = known_env_vars()
    for name, svc in COMPOSE["services"].items():
        for var in (svc.get("environment") or {}):
            if var.startswith("EHC_"):
                assert var in known, f"{name}: {var} is not a setting of shared.settings.Settings"


def test_known_env_vars_rejects_a_typo() -> None:
    assert "EHC_KAFKA__BOOTSTRAP_SERVERS" in known_env_vars()
    assert "EHC_KAFKA__BOOTSTRAP_SERVER" not in known_env_vars()


def test_created_topics_match_the_constants() -> None:
    script = "\n".join(COMPOSE["services"]["kafka-topics"]["command"])
    created = {}
    for line in script.splitlines():
        line = line.strip()
        if line.startswith("create ") and not line.startswith("create()"):
            parts = shlex.split(line)
            configs = dict(re.findall(r"--config (\S+)=(\S+)", line))
            created[parts[1]] = configs
    expected = {spec.name: spec.config() for spec in topic_specs()}
    assert created == expected


# --- replicas (issue 12): the consumers can run as several replicas of one consumer group -------

CONSUMERS = ("intake", "deadlines", "notifier")


def _fixed_host_ports(entry: object) -> list[str]:
    """The host ports a `ports:` entry pins (short or long syntax); none when Docker picks them."""
    if isinstance(entry, dict):
        published = entry.get("published")
        return [str(published)] if published not in (None, "") else []
    parts = str(entry).split("/", 1)[0].rsplit(":", 2)
    return [parts[-2]] if len(parts) >= 2 and parts[-2] else []


def _topic_partitions() -> set[int]:
    script = "\n".join(COMPOSE["services"]["kafka-topics"]["command"])
    return {int(n) for n in re.findall(r"--partitions (\d+)", script)}


def test_consumers_run_as_replicas_without_fixed_host_ports() -> None:
    for name in CONSUMERS:
        svc = COMPOSE["services"][name]
        replicas = (svc.get("deploy") or {}).get("replicas")
        assert isinstance(replicas, int) and replicas >= 2, f"{name}: deploy.replicas of at least 2"
        pinned = [p for entry in svc.get("ports") or [] for p in _fixed_host_ports(entry)]
        assert not pinned, f"{name}: replicas cannot share the fixed host port(s) {pinned}"
        assert "container_name" not in svc, f"{name}: a fixed container name allows one replica only"


def test_every_replica_gets_partitions() -> None:
    """Replicas beyond the partitions of their topic would sit idle: 6 partitions, as many replicas at most."""
    (partitions,) = _topic_partitions()
    assert str(partitions) == COMPOSE["x-service-env"]["EHC_KAFKA__PARTITIONS"]
    for name in CONSUMERS:
        assert COMPOSE["services"][name]["deploy"]["replicas"] <= partitions


def test_replicas_start_after_the_topics_are_made() -> None:
    """Every replica of a consumer waits for the topics job: its replicas do not race each other (and the
    job) to create the topics, and it joins its group on topics that have their partitions."""
    for name in CONSUMERS:
        depends = COMPOSE["services"][name].get("depends_on") or {}
        assert depends.get("kafka-topics") == {"condition": "service_completed_successfully"}, name


def test_services_reach_scaled_services_by_name() -> None:
    """The web front calls the APIs by service name (Docker's DNS spreads calls over the replicas),
    never through a host port."""
    env = COMPOSE["services"]["web"]["environment"]
    for var in ("EHC_WEB__DEADLINES_API_URL", "EHC_WEB__NOTIFIER_API_URL", "EHC_WEB__INTAKE_WEBHOOK_URL"):
        host = re.match(r"https?://([^:/]+)", env[var]).group(1)  # type: ignore[union-attr]
        assert host in CONSUMERS, f"{var} points at {host}, not a service name"


def test_fixed_host_ports_are_recognised() -> None:
    assert _fixed_host_ports("8001:8001") == ["8001"]
    assert _fixed_host_ports("127.0.0.1:8001:8001/tcp") == ["8001"]
    assert _fixed_host_ports("8001") == []
    assert _fixed_host_ports("127.0.0.1::8001") == []
    assert _fixed_host_ports({"target": 8001, "published": "8001"}) == ["8001"]
    assert _fixed_host_ports({"target": 8001}) == []
