"""The one-page text summary of a Stats object, in the reader's language (HTML, ≤ 4096 chars)."""

from __future__ import annotations

from bot.fit import fit
from bot.i18n import Translator
from bot.services.reports import Stats
from bot.ui import esc


def _top(t: Translator, items: list[tuple[str, int]]) -> str:
    return t.join(f"{esc(name)} ({n})" for name, n in items) or "—"


def summary_text(t: Translator, st: Stats, *, title: str) -> str:
    c = st.counts
    lines = [
        f"<b>{esc(title)}</b>",
        t("Tasks requested: {n}", n=c.get("requested", 0)),
        t("Published: {n} · claimed: {c} · completed: {d}", n=c.get("published", 0), c=c.get("claimed", 0),
          d=c.get("completed", 0)),
        t("Cancelled: {n} · expired: {e}", n=c.get("cancelled", 0), e=c.get("expired", 0)),
        t("Median time to first claim: {m}",
          m="—" if st.median_claim_minutes is None else t("{n} min", n=round(st.median_claim_minutes))),
        t("Median time to completion: {m}",
          m="—" if st.median_complete_minutes is None else t("{n} min", n=round(st.median_complete_minutes))),
        t("Active volunteers: {n} · new members: {m}", n=st.active_volunteers, m=st.new_members),
        t("No-show rate: {r}", r="—" if st.no_show_rate is None else str(round(st.no_show_rate * 100)) + "%"),
        t("Most no-shows: {x}", x=_top(t, st.no_shows)),
        t("Points credited: {a} · redeemed: {b}", a=st.points_credited, b=st.points_redeemed),
        *([t("Points expired (not used in time): {n}", n=st.points_expired)] if st.points_expired else []),
        t("Top categories: {x}", x=_top(t, st.top_categories)),
        t("Top areas: {x}", x=_top(t, st.top_areas)),
        t("Top volunteers: {x}", x=_top(t, st.top_volunteers)),
        t("Top organisations: {x}", x=_top(t, st.top_organisations)),
        t("Members who cannot be reached by the bot: {n}", n=st.unreachable_members),
    ]
    return fit("\n".join(lines), t)
