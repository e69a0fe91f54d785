"""A throwaway PostgreSQL server for the tests: initdb into a temporary folder, a free loopback port,
its own socket folder, stopped and removed at the end.

Found on PATH or in Debian's /usr/lib/postgresql/<version>/bin. initdb refuses to run as root, so
as root (CI, containers) the server runs as the ``postgres`` system user (``runuser``), in a folder
it owns; as anyone else it runs as that user. Connections go over TCP with a password (scram), so
the tests see what a real deployment sees. ``pg_ctl start -w`` waits for the server to accept
connections (it polls; no fixed sleep). A run killed before it could stop its server leaves the
server running: the next run stops it (``reap_orphans``: each folder names the process that started it).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"
PASSWORD = "linli-Test-pw-7"  # nothing secret: a throwaway server on 127.0.0.1; the CLI tests look for it


class Unavailable(RuntimeError):
    """No PostgreSQL server can be started here (the reason is the message)."""


def find_binaries() -> Path:
    """The folder holding initdb and pg_ctl: PATH first, then the newest Debian version."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if versions:
        return Path(versions[-1]).parent
    raise Unavailable("PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin): "
                      "install Debian's postgresql package to run these tests")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    bindir: Path
    root: Path
    port: int = 0
    as_user: str | None = None  # run the server's programs as this system user (when we are root)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sockets(self) -> Path:
        return self.root / "sockets"

    def url(self, database: str = "postgres", *, driver: str = "postgresql") -> str:
        return f"{driver}://{SUPERUSER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root,
                              env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})

    def init(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        self.sockets.mkdir()
        if self.as_user:
            shutil.chown(self.root, self.as_user)
            for path in (pwfile, self.sockets):
                shutil.chown(path, self.as_user)
        done = self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}", "-E", "UTF8",
                         "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
        if done.returncode != 0:
            raise Unavailable(f"initdb failed: {(done.stderr or done.stdout).strip()[-800:]}")

    def start(self, attempts: int = 3, *, same_port: bool = False) -> None:
        """Start on a free port; another process may take the port between our look and the
        server's bind, so a failed start is retried on a new port. ``same_port``: start again where
        it ran (a restart, as clients connected before see it)."""
        for _ in range(attempts):
            self.port = self.port if same_port and self.port else free_port()
            options = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
                       " -c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
            done = self._run("pg_ctl", "start", "-w", "-t", "120", "-D", str(self.data),
                             "-l", str(self.root / "server.log"), "-o", options)
            if done.returncode == 0:
                return
        log = (self.root / "server.log")
        tail = log.read_text(errors="replace")[-800:] if log.exists() else done.stderr
        raise Unavailable(f"the PostgreSQL server did not start: {tail.strip()}")

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data))
        shutil.rmtree(self.root, ignore_errors=True)


def reap_orphans(bindir: Path, as_user: str | None) -> list[Path]:
    """Stop and remove the servers of test runs that died without stopping theirs (killed): each
    folder names the process that started it, and only folders whose process is gone are taken."""
    reaped = []
    for folder in Path(tempfile.gettempdir()).glob("linli-pg-*"):
        try:
            pid = int((folder / "started-by").read_text())
            os.kill(pid, 0)
            continue  # still running: not ours to touch
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # unreadable or another user's: leave it
        PgServer(bindir, folder, as_user=as_user).stop()
        reaped.append(folder)
    return reaped


def start_server() -> PgServer:
    """Start a throwaway server; ``Unavailable`` says why when that cannot be done here."""
    bindir = find_binaries()
    as_user = None
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            raise Unavailable("running as root and runuser is missing: initdb refuses root")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root without a 'postgres' system user: initdb refuses root") from None
        as_user = "postgres"
    reap_orphans(bindir, as_user)
    server = PgServer(bindir, Path(tempfile.mkdtemp(prefix="linli-pg-")), as_user=as_user)
    (server.root / "started-by").write_text(str(os.getpid()))
    try:
        server.init()
        server.start()
    except BaseException:
        server.stop()
        raise
    return server
