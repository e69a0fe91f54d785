"""Configuration and the command line: one clear line for a bad setting, the token never shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from bot.logs import RedactToken

SECRET = "987654:AAHsecretSECRETsecretSECRET12345"
ROOT = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") and k != "DATABASE_URL"}
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(env)
    return subprocess.run([sys.executable, "-m", "bot", *args], env=clean, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_missing_token_is_one_line(tmp_path: Path) -> None:
    result = run_cli(["run"], {}, tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "BOT_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"DATABASE_URL": "postgres://user:pw@host/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:////proc/definitely/not/here.db"}, "DATABASE_URL"),
        ({"BOT_ADMIN_IDS": "12,abc"}, "BOT_ADMIN_IDS"),
        ({"BOT_TIMEZONE": "Mars/Olympus"}, "BOT_TIMEZONE"),
        ({"BOT_API_URL": "ftp://example"}, "BOT_API_URL"),
        ({"BOT_DEFAULT_LANGUAGE": "fr"}, "BOT_DEFAULT_LANGUAGE"),
        ({"BOT_POLL_LEASE_TTL": "20", "BOT_POLL_LEASE_RENEW": "15"}, "BOT_POLL_LEASE_RENEW"),
        ({"BOT_POLL_LEASE_TTL": "0"}, "BOT_POLL_LEASE_TTL"),
    ],
)
def test_bad_setting_names_itself_and_hides_the_token(tmp_path: Path, env: dict[str, str], name: str) -> None:
    result = run_cli(["run"], {"BOT_TOKEN": SECRET, **env}, tmp_path)
    assert result.returncode != 0
    assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert SECRET not in result.stderr + result.stdout
    assert SECRET.split(":")[1] not in result.stderr + result.stdout


def test_unreachable_api_is_one_line(tmp_path: Path) -> None:
    result = run_cli(["run"], {"BOT_TOKEN": SECRET, "BOT_API_URL": "http://127.0.0.1:9/bot",
                               "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, tmp_path)
    assert result.returncode != 0
    assert "BOT_API_URL" in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_migrate_and_backup(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/data/l.db"}
    first = run_cli(["migrate"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "schema version" in first.stdout
    again = run_cli(["migrate"], env, tmp_path)
    assert again.stdout == first.stdout
    backup = run_cli(["backup", str(tmp_path / "b" / "copy.db")], env, tmp_path)
    assert backup.returncode == 0, backup.stderr
    assert (tmp_path / "b" / "copy.db").stat().st_size > 0


def test_settings_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_ADMIN_IDS", "1, 2 ,3")
    monkeypatch.setenv("BOT_API_URL", "http://127.0.0.1:8081/bot")
    monkeypatch.setenv("BOT_DEFAULT_LANGUAGE", "en-US")
    s = load_settings()
    assert s.admin_ids == frozenset({1, 2, 3})
    assert s.file_url == "http://127.0.0.1:8081/file/bot"
    assert s.default_language == "en"
    with pytest.raises(ConfigError, match="BOT_TOKEN"):
        s.token()


@pytest.mark.parametrize("lease", ["POLL", "JOB"])
def test_a_lease_is_renewed_at_most_half_way(monkeypatch: pytest.MonkeyPatch, lease: str) -> None:
    monkeypatch.setenv(f"BOT_{lease}_LEASE_TTL", "20")
    monkeypatch.setenv(f"BOT_{lease}_LEASE_RENEW", "10")
    assert load_settings()
    monkeypatch.setenv(f"BOT_{lease}_LEASE_RENEW", "11")
    with pytest.raises(ConfigError, match=f"^BOT_{lease}_LEASE_RENEW: must be at most half of BOT_{lease}_LEASE_TTL"):
        load_settings()


def test_database_pool_size_defaults_to_ten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_POOL_SIZE", raising=False)
    assert load_settings().database_pool_size == 10
    monkeypatch.setenv("DATABASE_POOL_SIZE", "25")
    assert load_settings().database_pool_size == 25


@pytest.mark.parametrize("value", ["0", "-3", "abc", "2.5", "1001"])
def test_a_bad_database_pool_size_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DATABASE_POOL_SIZE", value)
    with pytest.raises(ConfigError, match=r"^DATABASE_POOL_SIZE: must be a whole number from 1 to 1000"):
        load_settings()


def test_log_filter_redacts_token() -> None:
    import logging

    record = logging.LogRecord("x", logging.INFO, "f", 1, "POST https://api/bot%s/getMe", (SECRET,), None)
    RedactToken(SECRET).filter(record)
    assert SECRET not in record.getMessage()
