"""deploy/nginx-linli.conf run by the real nginx (Debian's package) under a temporary prefix:
the log paths, the listening port and the upstream servers are rewritten, nothing else."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[1] / "deploy" / "nginx-linli.conf"


def nginx_binary() -> str:
    """The nginx program, or the test is skipped saying why (.ci/run installs Debian's nginx)."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found is None:
        pytest.skip("nginx is not installed here (.ci/run installs Debian's nginx)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render(prefix: Path, *, listen: int, upstreams: list[int] | None = None) -> Path:
    """A main nginx.conf in ``prefix`` that includes deploy/nginx-linli.conf with its paths under
    ``prefix``, listening on 127.0.0.1:``listen`` and (if given) balancing over ``upstreams``."""
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    text = CONF.read_text(encoding="utf-8").replace("/var/log/nginx/", f"{prefix}/logs/")
    text, n = re.subn(r"^(\s*)listen 127\.0\.0\.1:8080;", rf"\g<1>listen 127.0.0.1:{listen};", text, flags=re.M)
    assert n == 1, "deploy/nginx-linli.conf: the plain listen line changed"
    if upstreams is not None:
        servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+[^;]*;\n", text, flags=re.M)
        assert servers, "deploy/nginx-linli.conf: no upstream server lines"
        text = text.replace(servers[0], "".join(f"    server 127.0.0.1:{p};\n" for p in upstreams), 1)
        for line in servers[1:]:
            text = text.replace(line, "", 1)
    (prefix / "linli.conf").write_text(text, encoding="utf-8")
    user = "user root;\n" if os.geteuid() == 0 else ""   # workers may then write under a root-only tmp_path
    temp = "\n".join(f"    {kind}_temp_path {prefix}/tmp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = (f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
            f"events {{ worker_connections 256; }}\nhttp {{\n{temp}\n    include {prefix}/linli.conf;\n}}\n")
    (prefix / "nginx.conf").write_text(main, encoding="utf-8")
    return prefix / "nginx.conf"


def check(binary: str, conf: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on the rendered configuration."""
    return subprocess.run([binary, "-t", "-p", str(conf.parent), "-e", str(conf.parent / "logs" / "error.log"),
                           "-c", str(conf)], capture_output=True, text=True, timeout=60)


class Nginx:
    """The real nginx in the foreground; ``start()`` returns once it accepts connections."""

    def __init__(self, binary: str, conf: Path, port: int) -> None:
        self.binary, self.conf, self.port = binary, conf, port
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen([self.binary, "-p", str(self.conf.parent), "-e",
                                      str(self.conf.parent / "logs" / "error.log"), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                if loop.time() > deadline:
                    raise RuntimeError("nginx did not accept connections") from None
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()   # SIGTERM: nginx's fast shutdown
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
