"""PNG charts for /report (matplotlib, Agg backend). Chinese labels only when a CJK font exists."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.services.reports import Stats

SIZE = (8.0, 5.0)
DPI = 100  # 800 x 500 pixels
# File names of the four charts, in the order render_charts returns them: what each one shows.
CHART_NAMES = ("tasks-per-day", "minutes-to-first-claim", "top-categories", "points-per-organisation")

_LABELS = {
    "tasks": ("Tasks per day, by state", "每日任务（按状态）"),
    "open": ("open", "待领取"), "full": ("full", "已满"), "in_progress": ("in progress", "进行中"),
    "awaiting_confirmation": ("awaiting confirmation", "待确认"), "pending_review": ("pending review", "待审核"),
    "draft": ("draft", "草稿"),
    "claim": ("Minutes to first claim", "发布到领取的时间（分钟）"),
    "cats": ("Top categories", "热门类别"),
    "orgs": ("Points per organisation", "各单位积分"),
    "requested": ("requested", "求助"), "published": ("published", "发布"), "claimed": ("claimed", "领取"),
    "completed": ("completed", "已完成"), "cancelled": ("cancelled", "取消"), "expired": ("expired", "过期"),
    "none": ("no data", "暂无数据"),
}


def cjk_font() -> str | None:
    """The name of an installed CJK font, or None."""
    for f in font_manager.fontManager.ttflist:
        if "CJK" in f.name or f.name in ("WenQuanYi Zen Hei", "Source Han Sans SC", "SimHei"):
            return str(f.name)
    return None


def render_charts(stats: Stats, *, chinese: bool = True, allow_cjk: bool = True) -> list[bytes]:
    """Four PNGs of SIZE*DPI pixels. Falls back to English labels when no CJK font is usable."""
    font = cjk_font() if (chinese and allow_cjk) else None
    zh = font is not None

    def lab(key: str) -> str:
        return _LABELS[key][1] if zh else _LABELS[key][0]

    def new() -> tuple[Figure, Any]:
        fig = Figure(figsize=SIZE, dpi=DPI)
        if font:
            fig.set_layout_engine("tight")
        return fig, fig.add_subplot()

    def png(fig: Figure, ax: Any, title: str, labels: list[str], values: list[float], barh: bool = True) -> bytes:
        kw = {"fontfamily": font} if font else {}
        a = ax
        if any(values) if barh else values:
            if barh:
                a.barh(range(len(values)), values)
                a.set_yticks(range(len(values)), labels, **kw)
                a.invert_yaxis()
                a.set_xlim(left=0)
                a.xaxis.set_major_locator(MaxNLocator(integer=True))
            else:
                a.hist(values, bins=min(10, max(1, len(values))))
                a.yaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            # Nothing to draw (or only zeros): say so, on an empty frame without a meaningless scale.
            a.text(0.5, 0.5, lab("none"), ha="center", va="center", fontsize=16, transform=a.transAxes, **kw)
            a.set_xlim(0, 1)
            a.set_ylim(0, 1)
            a.set_xticks([])
            a.set_yticks([])
        a.set_title(title, **kw)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
        return buf.getvalue()

    def safe(name: str) -> str:
        return name if zh or name.isascii() else "?" + name.encode("ascii", "ignore").decode()[:20]

    out = []
    keys = ["requested", "published", "claimed", "completed", "cancelled", "expired"]
    fig, ax = new()
    out.append(_daily(fig, ax, stats, lab, font) if stats.daily_states
               else png(fig, ax, lab("tasks"), [lab(k) for k in keys], [stats.counts.get(k, 0) for k in keys]))
    fig, ax = new()
    out.append(png(fig, ax, lab("claim"), [], stats.claim_minutes, barh=False) if stats.claim_minutes
               else png(fig, ax, lab("claim"), [], []))
    fig, ax = new()
    out.append(png(fig, ax, lab("cats"), [safe(c) for c, _ in stats.top_categories], [n for _, n in stats.top_categories]))
    fig, ax = new()
    out.append(png(fig, ax, lab("orgs"), [safe(c) for c, _ in stats.top_organisations], [n for _, n in stats.top_organisations]))
    return out


def _daily(fig: Figure, ax: Any, stats: Stats, lab: Any, font: str | None) -> bytes:
    """Stacked bars: tasks created each day, coloured by the state they are in now."""
    kw = {"fontfamily": font} if font else {}
    days = sorted(stats.daily_states)
    order = ["completed", "awaiting_confirmation", "in_progress", "full", "open", "pending_review",
             "cancelled", "expired", "draft"]
    bottom = [0] * len(days)
    for state in order:
        values = [stats.daily_states[d].get(state, 0) for d in days]
        if any(values):
            ax.bar(range(len(days)), values, bottom=bottom, label=lab(state) if state in _LABELS else state)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(range(len(days)), [d[5:] for d in days], rotation=45 if len(days) > 10 else 0, fontsize=8)
    legend = ax.legend(fontsize=8)
    if font:
        for text in legend.get_texts():
            text.set_fontfamily(font)
    ax.set_title(lab("tasks"), **kw)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()
