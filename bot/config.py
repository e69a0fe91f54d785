"""Configuration: one pydantic-settings class read from the environment and ``.env``.

Nothing here runs at import time; ``load_settings()`` turns every problem into one clear line
(``ConfigError``) that names the setting and never shows the token's value.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.i18n import normalise_language
from storage.timeutil import DEFAULT_TIMEZONE

if TYPE_CHECKING:
    from bot.clock import Clock

DEFAULT_API_URL = "https://api.telegram.org/bot"
# @BotFather's tokens are "<bot id>:<35 characters>"; any length after the colon is accepted here
# (local stand-ins use short ones), but not spaces, quotes, slashes or a missing colon.
TOKEN_SHAPE = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{1,128}")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; ``str()`` is one line for the operator."""


_T = TypeVar("_T")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
POOL_MAX = 1000


def _stand_in_only(value: _T, info: ValidationInfo) -> _T:
    """A setting that replays a story (a fixed clock, seeded codes) is refused unless the Bot API
    is a stand-in on this machine: a real bot never runs on them."""
    api = info.data.get("bot_api_url")
    if value is not None and api is not None and urlsplit(api).hostname not in LOOPBACK:
        raise ValueError("only for `linli demo` and tests (a Bot API on 127.0.0.1): remove it from the settings")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = Field(default=None, alias="BOT_TOKEN")
    bot_api_url: str = Field(default=DEFAULT_API_URL, alias="BOT_API_URL")
    bot_api_file_url: str | None = Field(default=None, alias="BOT_API_FILE_URL")
    database_url: str = Field(default="sqlite:///data/linli.db", alias="DATABASE_URL")
    # PostgreSQL only: the most connections one instance keeps to the server (SQLite has two).
    database_pool_size: int = Field(default=10, alias="DATABASE_POOL_SIZE")
    admin_ids: Annotated[frozenset[int], NoDecode] = Field(default=frozenset(), alias="BOT_ADMIN_IDS")
    timezone: str = Field(default=DEFAULT_TIMEZONE, alias="BOT_TIMEZONE")
    default_language: Literal["zh", "en"] = Field(default="zh", alias="BOT_DEFAULT_LANGUAGE")
    self_service_setup: bool = Field(default=False, alias="BOT_SELF_SERVICE_SETUP")
    webhook_url: str | None = Field(default=None, alias="BOT_WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(default=None, alias="BOT_WEBHOOK_SECRET")
    webhook_listen: str = Field(default="127.0.0.1:8443", alias="BOT_WEBHOOK_LISTEN")
    log_level: str = Field(default="INFO", alias="BOT_LOG_LEVEL")
    # Long polling is one process's job (bot/poll_lease.py): the poller renews its lease every
    # poll_lease_renew seconds; a standing-by process takes over once it is poll_lease_ttl seconds old.
    poll_lease_ttl: float = Field(default=30.0, gt=0, alias="BOT_POLL_LEASE_TTL")
    poll_lease_renew: float = Field(default=10.0, gt=0, alias="BOT_POLL_LEASE_RENEW")
    # Several instances on one database (bot/instance.py): each process's name (default host:pid),
    # and the leases of the timed jobs (outbox and cards; sweeps), renewed every job_lease_renew
    # seconds; another instance takes a job over once its lease is job_lease_ttl seconds old.
    instance_name: str | None = Field(default=None, alias="BOT_INSTANCE_NAME")
    job_lease_ttl: float = Field(default=30.0, gt=0, alias="BOT_JOB_LEASE_TTL")
    job_lease_renew: float = Field(default=10.0, gt=0, alias="BOT_JOB_LEASE_RENEW")
    # How often the outbox and the sweeps run (seconds); tests and the demo shorten them.
    outbox_interval: float = Field(default=0.5, gt=0, alias="BOT_OUTBOX_INTERVAL")
    sweep_interval: float = Field(default=30.0, gt=0, alias="BOT_SWEEP_INTERVAL")
    # Messages per second the outbox may send (Telegram allows about 30 overall).
    send_rate: float = Field(default=28.0, gt=0, le=30, alias="BOT_SEND_RATE")
    # Pace outgoing messages to Telegram's flood limits. Off only against a local stand-in whose
    # own flood limits are off (bench/throughput.py measures processing capacity that way).
    flood_control: bool = Field(default=True, alias="BOT_FLOOD_CONTROL")
    # Run the bot's clock from this moment (ISO 8601 with a UTC offset) instead of the real time;
    # time then runs on as usual. Only for ``linli demo`` and tests, which replay a story on fixed dates.
    clock_start: datetime | None = Field(default=None, alias="BOT_CLOCK_START")
    # Draw invite and voucher codes from a source seeded with this (bot/codes.py), so that a
    # replayed story shows the same codes. Only for ``linli demo`` and tests, like the clock.
    random_seed: str | None = Field(default=None, alias="BOT_RANDOM_SEED")

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admins(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError:
                raise ValueError("must be comma-separated Telegram user ids, e.g. 12345,67890") from None
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}, e.g. {DEFAULT_TIMEZONE}") from None
        return value

    @field_validator("bot_api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, value: str) -> str:
        from storage.db import DatabaseError, sqlite_path_from_url
        from storage.pg import is_postgres_url

        if is_postgres_url(value):  # storage/db_pg.py (the runtime), bot/cli_pg.py (migrate, doctor, backup)
            return value
        try:
            sqlite_path_from_url(value)
        except DatabaseError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("database_pool_size", mode="before")
    @classmethod
    def _check_pool(cls, value: object) -> int:
        """A whole number of connections; every instance's pool must fit the server's max_connections."""
        text = str(value).strip()
        if not text.isdigit() or not 1 <= int(text) <= POOL_MAX:
            raise ValueError(f"must be a whole number from 1 to {POOL_MAX} (connections each instance keeps to"
                             " PostgreSQL; all instances together must stay under the server's max_connections)")
        return int(text)

    @field_validator("webhook_listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("must be host:port, e.g. 127.0.0.1:8443")
        return value

    @field_validator("poll_lease_renew", "job_lease_renew")
    @classmethod
    def _check_renew(cls, value: float, info: ValidationInfo) -> float:
        """A lease is renewed at most half-way through its time to live (``poll_lease_ttl``, ``job_lease_ttl``)."""
        ttl_field = str(info.field_name).replace("_renew", "_ttl")
        ttl = info.data.get(ttl_field)
        if ttl is not None and value * 2 > ttl:
            raise ValueError(f"must be at most half of BOT_{ttl_field.upper()} ({ttl:g} s), so one late renewal does"
                             " not lose the lease")
        return value

    @field_validator("instance_name")
    @classmethod
    def _check_instance(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if len(value) > 64 or not value.isprintable():
            raise ValueError("must be at most 64 printable characters, e.g. the host and the port: web1:8443")
        return value.strip()

    @field_validator("clock_start")
    @classmethod
    def _check_clock(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-06-06T07:30:00+08:00")
        return _stand_in_only(value, info)

    @field_validator("random_seed")
    @classmethod
    def _check_seed(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _stand_in_only(value or None, info)

    @field_validator("default_language", mode="before")
    @classmethod
    def _norm_lang(cls, value: object) -> object:
        return normalise_language(value, default=value) if isinstance(value, str) else value

    # -- derived -------------------------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def file_url(self) -> str:
        if self.bot_api_file_url:
            return self.bot_api_file_url
        base = self.bot_api_url
        # https://api.telegram.org/bot → https://api.telegram.org/file/bot
        if base.endswith("/bot"):
            return base[: -len("bot")] + "file/bot"
        return base.rstrip("/") + "/file/bot"

    def make_clock(self) -> Clock:
        from bot.clock import Clock, OffsetClock

        if self.clock_start is None:
            return Clock()
        return OffsetClock(self.clock_start - datetime.now(self.clock_start.tzinfo))

    def token(self) -> str:
        """The token, checked for its shape before any network call (never shown in the error)."""
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise ConfigError("BOT_TOKEN is not set: get a token from @BotFather (or run `linli demo`)")
        token = self.bot_token.get_secret_value().strip()
        if not TOKEN_SHAPE.fullmatch(token):
            raise ConfigError(
                "BOT_TOKEN is not a bot token (expected the bot's number, a colon and letters, digits, - or _,"
                " like 123456789:AAE…): copy it again from @BotFather"
            )
        return token

    def is_admin(self, tg_user_id: int | None) -> bool:
        return tg_user_id is not None and tg_user_id in self.admin_ids


def load_settings(**overrides: object) -> Settings:
    """Read the settings; raise ``ConfigError`` with one line naming the bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ("?",)
        name = str(loc[0])
        field = Settings.model_fields.get(name)
        env_name = field.alias if field is not None and field.alias else name.upper()
        msg = first.get("msg", "is invalid")
        msg = msg.removeprefix("Value error, ")
        # Never echo the input: for BOT_TOKEN it would be the secret.
        raise ConfigError(f"{env_name}: {msg}") from None
