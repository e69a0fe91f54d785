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
    c = _Painter(cjk_font() if (chinese and allow_cjk) else None)
    lab = c.lab
    keys = ["requested", "published", "claimed", "completed", "cancelled", "expired"]
    out = []
    fig, ax = c.new()
    out.append(_daily(fig, ax, stats, lab, c.font) if stats.daily_states
               else c.png(fig, ax, lab("tasks"), [lab(k) for k in keys], [stats.counts.get(k, 0) for k in keys]))
    fig, ax = c.new()
    out.append(c.png(fig, ax, lab("claim"), [], stats.claim_minutes, barh=False) if stats.claim_minutes
               else c.png(fig, ax, lab("claim"), [], []))
    fig, ax = c.new()
    out.append(c.png(fig, ax, lab("cats"), [c.safe(n) for n, _ in stats.top_categories],
                     [n for _, n in stats.top_categories]))
    fig, ax = c.new()
    out.append(c.png(fig, ax, lab("orgs"), [c.safe(n) for n, _ in stats.top_organisations],
                     [n for _, n in stats.top_organisations]))
    return out


class _Painter:
    """One set of charts: Chinese labels in ``font`` when there is one, English ones otherwise."""

    def __init__(self, font: str | None) -> None:
        self.font = font
        self.zh = font is not None
        self.kw: dict[str, Any] = {"fontfamily": font} if font else {}

    def lab(self, key: str) -> str:
        return _LABELS[key][1] if self.zh else _LABELS[key][0]

    def safe(self, name: str) -> str:
        return name if self.zh or name.isascii() else "?" + name.encode("ascii", "ignore").decode()[:20]

    def new(self) -> tuple[Figure, Any]:
        fig = Figure(figsize=SIZE, dpi=DPI)
        if self.font:
            fig.set_layout_engine("tight")
        return fig, fig.add_subplot()

    def png(self, fig: Figure, ax: Any, title: str, labels: list[str], values: list[float], barh: bool = True) -> bytes:
        if not (any(values) if barh else values):
            self._nothing(ax)
        elif barh:
            self._bars(ax, labels, values)
        else:
            ax.hist(values, bins=min(10, max(1, len(values))))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, **self.kw)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
        return buf.getvalue()

    def _bars(self, ax: Any, labels: list[str], values: list[float]) -> None:
        ax.barh(range(len(values)), values)
        ax.set_yticks(range(len(values)), labels, **self.kw)
        ax.invert_yaxis()
        ax.set_xlim(left=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    def _nothing(self, ax: Any) -> None:
        """Nothing to draw (or only zeros): say so, on an empty frame without a meaningless scale."""
        ax.text(0.5, 0.5, self.lab("none"), ha="center", va="center", fontsize=16, transform=ax.transAxes, **self.kw)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xticks([])
        ax.set_yticks([])


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
