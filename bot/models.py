"""Domain models (pydantic), enums and the small family of domain errors.

Nothing here imports telegram. Services return these models and raise these errors; the
Telegram layer renders them. Error messages are gettext message ids marked with ``N_`` and are
translated only when rendered, in the reader's language.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from storage.db import Row
from storage.timeutil import opt_from_db


def N_(message: str) -> str:
    """Mark a string for translation without translating it now."""
    return message


# -- enums --------------------------------------------------------------------------------
class Lang(StrEnum):
    ZH = "zh"
    EN = "en"


# -- errors -------------------------------------------------------------------------------
class DomainError(Exception):
    """A rule said no. ``message`` is an untranslated message id, ``params`` fill it in."""

    message = N_("Sorry, that cannot be done right now.")

    def __init__(self, message: str | None = None, **params: Any) -> None:
        if message is not None:
            self.message = message
        self.params = params
        super().__init__(self.message.format(**params) if params else self.message)


class NotFound(DomainError):
    message = N_("Sorry, I could not find that. It may have been removed.")


class NotAllowed(DomainError):
    message = N_("Sorry, you are not allowed to do that.")


class NotRegistered(DomainError):
    message = N_("Please register first: send /start to me in a private chat.")


class InvalidState(DomainError):
    message = N_("This can no longer be done: it has changed in the meantime.")


class InvalidInput(DomainError):
    message = N_("Sorry, I did not understand that. Please try again.")


class TaskFull(DomainError):
    message = N_("Sorry, all places are taken already. Thank you for offering!")


class AlreadyClaimed(DomainError):
    message = N_("You have already claimed this task.")


class AlreadyDone(DomainError):
    message = N_("This has already been done. Nothing more is needed.")


class InsufficientPoints(DomainError):
    message = N_("Sorry, you do not have enough points for that.")


class OutOfStock(DomainError):
    message = N_("Sorry, this reward is out of stock.")


class RateLimited(DomainError):
    message = N_("Too many attempts. Please wait a little and try again.")


# -- models -------------------------------------------------------------------------------
class Model(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    @classmethod
    def from_row(cls, row: Row | dict[str, Any]) -> Any:
        data = dict(row)
        for name, field in cls.model_fields.items():
            value = data.get(name)
            if isinstance(value, str) and field.annotation in (datetime, datetime | None):
                data[name] = opt_from_db(value)
        return cls.model_validate(data)


class Community(Model):
    id: int
    name: str
    group_chat_id: int | None
    join_code: str
    timezone: str
    language: Lang
    digest_time: str
    review_required: bool
    settings: dict[str, Any]
    welcome_message_id: int | None = None
    active: bool

    @classmethod
    def from_row(cls, row: Row | dict[str, Any]) -> Community:
        data = dict(row)
        data["settings"] = json.loads(data.get("settings") or "{}")
        return cls.model_validate(data)


class Member(Model):
    id: int
    tg_user_id: int | None
    community_id: int | None
    language: Lang | None
    display_name: str | None
    phone: str | None
    area_id: int | None
    address: str | None
    is_resident: bool
    is_volunteer: bool
    is_staff: bool
    organisation_id: int | None
    skills: list[str]
    on_duty: bool
    quiet_start: str
    quiet_end: str
    digest_enabled: bool
    digest_hour: int | None
    leaderboard_opt_out: bool
    announce_consent: bool
    registered_at: datetime | None
    started_bot: bool
    reachable: bool
    balance: int
    deleted_at: datetime | None
    is_merchant: bool = False  # linked to an active merchant (only menu.load_member fills this in)

    @classmethod
    def from_row(cls, row: Row | dict[str, Any]) -> Member:
        data = dict(row)
        data["skills"] = json.loads(data.get("skills") or "[]")
        for key in ("registered_at", "deleted_at"):
            data[key] = opt_from_db(data.get(key))
        return cls.model_validate(data)

    @property
    def registered(self) -> bool:
        return self.registered_at is not None and self.deleted_at is None

    @property
    def name(self) -> str:
        return self.display_name or "?"
