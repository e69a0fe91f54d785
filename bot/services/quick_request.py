"""The quick request: a resident's voice note becomes a request with sensible defaults, so the
common case takes one or two taps instead of six (issue #20).

A registered resident who sends a voice note in private outside any dialog, or presses 🆘 and
answers the first question with one, gets one summary: the voice note as the description, as soon
as possible, at their registered address (or area), one helper, and the category they used last
(else "other"). Submitting it creates the task exactly as the full dialog does
(``tasks.create_task``: review, masking, the group card; the voice goes only to the volunteer).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.models import N_, Member, NotAllowed, NotRegistered
from storage import tasks as task_store
from storage.db import Database

FALLBACK_CATEGORY = "other"


class NotAResident(NotAllowed):
    message = N_("Thank you for your voice message. Asking for help is for residents, and you are registered as a "
                 "volunteer. If you need help yourself too: 👤 My profile, then ✏ Change my details, and choose “both”.")


NOT_IN_THE_SCHEME = N_("Thank you for your voice message. Asking for help is for residents. "
                       "If you need help, please call the community staff.")


@dataclass(frozen=True)
class QuickDefaults:
    """What a quick request assumes until the resident changes it."""

    category: str
    when: str = "asap"   # as soon as possible
    slots: int = 1       # one helper
    # the place: the registered address (or area), which the task takes when none is given


def may_ask(member: Member | None) -> Member:
    """The member a voice note starts a request for: registered in a community, and a resident."""
    if member is None or not member.registered or member.community_id is None:
        raise NotRegistered()
    if not member.is_resident:
        raise NotAResident() if member.is_volunteer else NotAResident(NOT_IN_THE_SCHEME)
    return member


def pick_category(active: Sequence[str], last: str | None) -> str:
    """The category the member used last if it is still offered, else "other" (else the last one offered)."""
    if last is not None and last in active:
        return last
    if FALLBACK_CATEGORY in active or not active:
        return FALLBACK_CATEGORY
    return active[-1]


async def defaults(db: Database, member_id: int, active_categories: Sequence[str]) -> QuickDefaults:
    """The defaults of a quick request by ``member_id``, given the community's active category codes."""
    return QuickDefaults(category=pick_category(active_categories, await task_store.last_category(db, member_id)))


# What a resident may type outside any dialog that asks for nothing: thanks, yes and no, greetings,
# goodbyes, and the little words around them (compared as ``_plain`` leaves them: no spaces,
# punctuation or emoji, lower case). A message made only of these is chatter ("是的，谢谢").
CHATTER = frozenset({
    "谢谢", "谢谢你", "谢谢您", "谢谢你们", "谢谢了", "多谢", "感谢", "非常感谢", "太感谢了", "辛苦了", "辛苦", "麻烦了",
    "谢谢帮忙", "帮忙了", "好", "好的", "好吧", "好啊", "好了", "嗯", "哦", "噢", "是", "是的", "对", "对的", "行", "可以",
    "收到", "知道了", "明白", "明白了", "没问题", "不用", "不用了", "没事", "没事了", "没有", "不", "不是", "不要", "再见",
    "拜拜", "你好", "您好", "早", "早上好", "中午好", "下午好", "晚上好", "在吗", "在不在", "哈哈", "取消", "算了", "菜单",
    "开始", "啦", "呀", "啊", "吧", "呢", "们", "了", "很", "非常", "真", "太",
    "ok", "okay", "thanks", "thank", "thankyou", "you", "thx", "yes", "no", "hi", "hello", "hey", "bye", "goodbye",
    "good", "fine", "great", "cancel", "menu", "start", "very", "much", "so", "alot", "lot", "a", "all", "sure",
})
_CHATTER_LONGEST_FIRST = sorted(CHATTER, key=len, reverse=True)
# Asking for help without saying what: the usual first question (what kind of help) follows.
HELP_WORDS = frozenset({
    "帮助", "求助", "帮忙", "我要求助", "我需要帮助", "需要帮助", "我要帮助", "请帮忙", "请帮帮我", "帮帮我", "帮我",
    "help", "helpme", "ineedhelp", "pleasehelp", "pleasehelpme", "sos",
})


def _plain(text: str) -> str:
    """Letters and digits only, full-width folded, lower case."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


def typed_intent(text: str | None) -> Literal["chatter", "help", "request"]:
    """What a resident's message typed outside any dialog is: "chatter" (thanks, ok, an emoji: it
    asks for nothing), "help" (asking for help without saying what), or a "request" (what they need,
    in their words)."""
    plain = _plain(text or "")
    if plain in HELP_WORDS:
        return "help"
    if len(_without_chatter(plain)) < 2:
        return "chatter"
    return "request"


def _without_chatter(plain: str) -> str:
    """What is left once the chatter words are taken from the start of ``plain``, one after another
    (longest first): "是的谢谢" leaves nothing, "谢谢能帮我取个快递吗" leaves the request."""
    rest = plain
    while rest:
        word = next((w for w in _CHATTER_LONGEST_FIRST if rest.startswith(w)), None)
        if word is None:
            return rest
        rest = rest[len(word):]
    return rest
