"""deploy/nginx-linli.conf passes ``nginx -t`` as shipped (three instances) and as the one-instance
variant, with its paths under a temporary prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.nginx import CONF, check, free_port, nginx_binary, render


@pytest.mark.parametrize("upstreams", [None, [8443]], ids=["three-instances", "one-instance"])
def test_the_nginx_configuration_passes_nginx_t(tmp_path: Path, upstreams: list[int] | None) -> None:
    binary = nginx_binary()
    conf = render(tmp_path, listen=free_port(), upstreams=upstreams)
    result = check(binary, conf)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
    text = (tmp_path / "linli.conf").read_text(encoding="utf-8")
    assert text.count("server 127.0.0.1:") == (3 if upstreams is None else 1) + 1   # + the commented one


def test_the_configuration_keeps_the_secret_header_and_limits() -> None:
    text = CONF.read_text(encoding="utf-8")
    for line in ("proxy_set_header X-Telegram-Bot-Api-Secret-Token $http_x_telegram_bot_api_secret_token;",
                 "client_max_body_size 1m;", "location = /telegram {", "proxy_read_timeout 30s;"):
        assert line in text, line
    for port in (8441, 8442, 8443):
        assert f"server 127.0.0.1:{port} " in text


def test_a_broken_configuration_fails_nginx_t(tmp_path: Path) -> None:
    binary = nginx_binary()
    conf = render(tmp_path, listen=free_port())
    broken = tmp_path / "linli.conf"
    broken.write_text(broken.read_text(encoding="utf-8").replace("proxy_read_timeout 30s;", "proxy_read_timeout;"),
                      encoding="utf-8")
    assert check(binary, conf).returncode != 0
