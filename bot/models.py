"""The small family of domain errors (and the typed member row, re-exported from storage).

Nothing here imports telegram. Services raise these errors; the
Telegram layer renders them. Error messages are gettext message ids marked with ``N_`` and are
translated only when rendered, in the reader's language.
"""

from __future__ import annotations

from typing import Any

from storage.members import Member as Member  # the member row, typed (storage/members.py)


def N_(message: str) -> str:
    """Mark a string for translation without translating it now."""
    return message


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
