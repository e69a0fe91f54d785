"""A typed context: handlers and jobs reach the database, settings and clock through it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.clock import Clock
from bot.config import Settings
from storage.db import Database

if TYPE_CHECKING:
    from bot.services.members import SeenLanguage
    from storage.members import Member
    from storage.tasks import ClaimGlance


@dataclass
class Runtime:
    """Everything a handler needs besides the update; kept in ``bot_data['runtime']``."""

    settings: Settings
    clock: Clock
    db: Database | None = None
    bot_username: str = ""

    @property
    def database(self) -> Database:
        if self.db is None:
            raise RuntimeError("the database is not open yet")
        return self.db


class LinliContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    # python-telegram-bot builds one context per update and hands it to every handler group, so
    # what an early handler learnt about the update can save a later one a read.
    # The task whose recorded card the pressed group message is (bot/buttons.py's gate reads it
    # before any handler); None: not known as a card, or not looked up.
    pressed_card: int | None = None
    # The sender's language as read with the private-chat note (bot/conversations/core.py), for
    # bot.ui.member_language while no language was written since.
    seen_language: SeenLanguage | None = None
    # The sender's member row (None: none, or erased) as read earlier in this update, by the private-chat
    # note or, for a press on a group card, by the gate with the card: the first handler that needs it
    # takes it instead of reading it again (bot.ui.member_of). Nothing before the handlers writes it.
    seen_member: tuple[int, Member | None] | None = None
    # For a press on a group card: the presser's claim on the card's task as the gate read it with the
    # card (bot.jobs.cards.PressedCard), so a Claim tap needs no read of its own before the writer's.
    pressed_glance: ClaimGlance | None = None

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.bot_data["runtime"]
        return runtime

    @property
    def db(self) -> Database:
        return self.runtime.database

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def clock(self) -> Clock:
        return self.runtime.clock

    def now(self) -> datetime:
        return self.runtime.clock.now()


LinliApp = Application[ExtBot[None], LinliContext, dict[Any, Any], dict[Any, Any], dict[Any, Any], Any]
