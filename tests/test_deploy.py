"""deploy/: the compose file is valid for the compose client (when one is installed; no container engine
runs here, so nothing is built or started), and the files agree with the code they point at."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.slack.runner import EVENTS_PATH

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def compose_command() -> list[str] | None:
    """``docker compose`` (the plugin) or the standalone ``docker-compose``, whichever is installed."""
    docker = shutil.which("docker")
    if docker is not None:
        found = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if found.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone is not None else None


def test_the_compose_file_is_valid_and_runs_workers_postgres_redis_and_nginx(tmp_path: Path) -> None:
    command = compose_command()
    if command is None:
        pytest.skip("no compose client (docker compose or docker-compose) is installed to check deploy/")
    # a copy, beside an empty .env (the file names ../.env, which a checkout does not have)
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    (tmp_path / ".env").write_text("")
    result = subprocess.run(
        [*command, "-f", "deploy/docker-compose.yml", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {"worker", "discord-0", "discord-1", "nginx", "postgres", "redis"}
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("worker", "discord-0", "discord-1"):
        environment = services[name]["environment"]
        assert environment["CHATBOT_REDIS_URL"] == "redis://redis:6379/0"
        assert environment["CHATBOT_DATABASE_URL"].startswith("postgresql://")
        assert environment["CHATBOT_QUEUE_URL"].startswith("postgresql://")
    shards = [services[f"discord-{n}"]["environment"] for n in (0, 1)]
    assert [(s["DISCORD_SHARD_IDS"], s["DISCORD_SHARD_COUNT"]) for s in shards] == [("0", "2"), ("1", "2")]


def test_the_image_runs_the_bot_as_a_non_root_user() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    assert "FROM python:3.11-slim" in lines
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert 'ENTRYPOINT ["chatbot"]' in lines and 'CMD ["run"]' in lines


def test_nginx_routes_each_platforms_webhook_path_and_retries_on_the_next_worker() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    worker = compose["services"]["worker"]["environment"]
    assert f"location = {EVENTS_PATH}" in conf
    assert f"server worker:{worker['SLACK_PORT']}" in conf
    assert f"server worker:{worker['TELEGRAM_WEBHOOK_PORT']}" in conf
    assert "proxy_next_upstream error timeout" in conf


def test_the_systemd_unit_is_a_template_running_one_worker_per_instance() -> None:
    unit = (DEPLOY / "chatbot@.service").read_text()
    assert "ExecStart=/opt/chatbot/venv/bin/chatbot run" in unit
    assert "EnvironmentFile=-/etc/chatbot/worker-%i.env" in unit
    assert "User=chatbot" in unit and "Restart=always" in unit
