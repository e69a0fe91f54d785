"""The deployment kit in deploy/: every setting listed in .env.example with its default, and
unit files that systemd accepts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = ("linli.service", "linli@.service", "linli-backup.service", "linli-backup.timer")


def _example() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def test_env_example_lists_every_setting_with_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = _example()
    names = {field.alias or name.upper(): name for name, field in Settings.model_fields.items()}
    missing = sorted(set(names) - set(listed))
    assert not missing, f"deploy/.env.example does not list {missing}"
    unknown = sorted(set(listed) - set(names))
    assert not unknown, f"deploy/.env.example lists settings bot/config.py does not have: {unknown}"
    for alias, name in names.items():
        default = Settings.model_fields[name].default
        value = listed[alias]
        if value == "":
            assert default in (None, frozenset()), f"{alias}: the example leaves it empty, the default is {default!r}"
            continue
        for other in names:
            monkeypatch.delenv(other, raising=False)
        monkeypatch.setenv(alias, value)
        parsed = getattr(Settings(_env_file=None), name)  # type: ignore[call-arg]
        assert parsed == default, f"{alias}: the example says {value!r}, the default is {default!r}"


def test_the_services_run_the_installed_command_with_their_state_and_settings() -> None:
    service = (DEPLOY / "linli.service").read_text(encoding="utf-8")
    for line in ("ExecStart=/opt/linli/.venv/bin/linli run", "Restart=on-failure", "StateDirectory=linli",
                 "EnvironmentFile=/etc/linli/linli.env", "Environment=DATABASE_URL=sqlite:////var/lib/linli/linli.db",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes"):
        assert line in service.splitlines(), line
    backup = (DEPLOY / "linli-backup.service").read_text(encoding="utf-8")
    assert "linli backup" in backup and "LINLI_BACKUP_KEEP" in backup
    assert "OnCalendar=" in (DEPLOY / "linli-backup.timer").read_text(encoding="utf-8")


def test_the_template_unit_gives_each_instance_its_own_port() -> None:
    """linli@8441 listens on 127.0.0.1:8441 whatever linli.env says: the port is set after the file is read."""
    lines = (DEPLOY / "linli@.service").read_text(encoding="utf-8").splitlines()
    assert "ExecStart=/usr/bin/env BOT_WEBHOOK_LISTEN=127.0.0.1:%i /opt/linli/.venv/bin/linli run" in lines
    for line in ("EnvironmentFile=/etc/linli/linli.env", "StateDirectory=linli", "Restart=on-failure",
                 "Environment=DATABASE_URL=sqlite:////var/lib/linli/linli.db", "ProtectSystem=strict"):
        assert line in lines, line


VERIFY = DEPLOY.parent / ".ci" / "verify-units"


def _verify(linli: Path, folder: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    """.ci/verify-units, the check .ci/run makes: ``systemd-analyze verify`` on a copy whose
    ExecStart points at an installed linli, failing on any message about our units."""
    return subprocess.run([str(VERIFY), str(linli), str(folder)], capture_output=True, text=True, timeout=120)


@pytest.fixture
def linli() -> Path:
    """The installed linli that the units' ExecStart is pointed at, where systemd-analyze exists
    (else the test is skipped, saying why)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here (it comes with systemd)")
    found = Path(sys.executable).with_name("linli")
    if not found.exists():
        pytest.skip(f"{found} is not installed (pip install -e .)")
    return found


def test_unit_files_pass_systemd_analyze_verify(linli: Path, tmp_path: Path) -> None:
    result = _verify(linli)
    assert result.returncode == 0 and result.stderr == "", result.stdout + result.stderr
    assert "linli@.service" in result.stdout
    # and it catches a misspelt option (which verify itself only warns about), in the plain unit and
    # in the template, and a missing program
    for name in ("linli.service", "linli@.service"):
        for unit in UNITS:
            (tmp_path / unit).write_text((DEPLOY / unit).read_text(encoding="utf-8"), encoding="utf-8")
        service = tmp_path / name
        service.write_text(service.read_text(encoding="utf-8").replace("ProtectSystem=strict", "ProtectSytem=strict"),
                           encoding="utf-8")
        broken = _verify(linli, tmp_path)
        assert broken.returncode == 1 and "ProtectSytem" in broken.stderr, name + broken.stdout + broken.stderr
    missing = _verify(tmp_path / "no-linli-here")
    assert missing.returncode == 2 and "is not an installed linli" in missing.stderr


def test_the_services_are_sandboxed(linli: Path, tmp_path: Path) -> None:
    """systemd's own exposure score (0 safe … 10 exposed) stays at 3 or below for both services."""
    for unit, instance in (("linli.service", "linli.service"), ("linli@.service", "linli@8441.service"),
                           ("linli-backup.service", "linli-backup.service")):
        text = (DEPLOY / unit).read_text(encoding="utf-8").replace("/opt/linli/.venv/bin/linli", str(linli))
        (tmp_path / unit).write_text(text, encoding="utf-8")
        result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=30", instance],
                                capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def _exec(unit: str, key: str) -> str:
    """The command line of ``key`` in a unit, as the shell gets it ($$ and %% unescaped)."""
    for line in (DEPLOY / unit).read_text(encoding="utf-8").splitlines():
        if line.startswith(key + "="):
            return line.split("=", 1)[1].replace("$$", "$").replace("%%", "%")
    raise AssertionError(f"no {key} in {unit}")


def test_the_nightly_backup_writes_todays_copy_and_keeps_the_newest(tmp_path: Path) -> None:
    import os
    import sqlite3
    import time
    from datetime import date

    root = Path(__file__).resolve().parents[2]
    folder = tmp_path / "backups"
    folder.mkdir()
    live = tmp_path / "linli.db"
    con = sqlite3.connect(live)
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (42)")
    con.commit()
    con.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(DATABASE_URL=f"sqlite:///{live}", LINLI_BACKUP_KEEP="3",
               PYTHONPATH=str(root) + os.pathsep + env.get("PYTHONPATH", ""))

    def run(key: str) -> None:
        command = _exec("linli-backup.service", key).replace("/var/lib/linli-backups", str(folder))
        command = command.replace("/opt/linli/.venv/bin/linli", f"{sys.executable} -m bot")
        assert command.startswith("/bin/sh -c '") and command.endswith("'")
        result = subprocess.run(["/bin/sh", "-c", command[len("/bin/sh -c '"):-1]], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr

    run("ExecStart")
    today = folder / f"linli-{date.today().isoformat()}.db"
    copy = sqlite3.connect(today)
    try:
        assert copy.execute("SELECT x FROM t").fetchall() == [(42,)]
    finally:
        copy.close()
    old = time.time() - 86_400
    for i in range(1, 5):   # four older nights
        night = folder / f"linli-2026-01-0{i}.db"
        night.write_bytes(b"old")
        os.utime(night, (old + i * 60, old + i * 60))
    run("ExecStartPost")
    assert sorted(p.name for p in folder.iterdir()) == ["linli-2026-01-03.db", "linli-2026-01-04.db", today.name]
