"""The production settings pass Django's deployment checklist (`check --deploy`) with no warning, and
refuse to start without the secrets they need. Runs `manage.py` in a subprocess with a production
environment, exactly as a deployment would."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def _production_env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_", "APP_TESTING"))}
    env.update(
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="example.com",
        DATABASE_URL="postgresql://app_runtime:pw@db.example.com:5432/sellerpilot",
        REDIS_URL="redis://redis.example.com:6379/0",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_in_production() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_catches_a_weak_secret_key() -> None:
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", env=_production_env(DJANGO_SECRET_KEY="too-short")
    )
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS"])
def test_production_refuses_to_start_without_its_secrets(missing: str) -> None:
    result = _manage("check", env=_production_env(**{missing: None}))
    assert result.returncode != 0
    assert missing in result.stderr
