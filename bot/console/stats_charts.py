"""Chart geometry for the statistics page, drawn by the template as inline SVG.

The console loads nothing from the internet and its Content-Security-Policy allows no
inline scripts or styles, so charts are computed here (rectangles, tick marks, labels)
and the template only writes them out as SVG elements; colours come from CSS classes.
Every chart also carries its numbers as a table, for screen readers and for checking.
Labels are plain strings: the template escapes them like any other text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from bot.console.languages import language_label

# Series colours are CSS classes series-0 .. series-(SERIES_CLASSES-1), reused cyclically.
SERIES_CLASSES = 6
# Drawn at these widths and never scaled up (CSS max-width), so text stays at its font size.
WIDE = 1280
NARROW = 560
LABEL_CHARS = 24


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    series: int
    tooltip: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"  # SVG text-anchor: start, middle, end
    kind: str = "tick"  # CSS class suffix: tick, value, axis


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    kind: str = "grid"  # grid, axis


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    description: str
    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css class, series name)
    table_head: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.rects


def nice_ticks(maximum: float, *, count: int = 5) -> list[float]:
    """Round axis steps (1, 2, 5 x 10^n) from 0 to at least ``maximum``."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    top = math.ceil(maximum / step - 1e-9) * step
    steps = round(top / step)
    return [round(i * step, 10) for i in range(steps + 1)]


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else f"{int(value)}"


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"


def series_class(index: int) -> str:
    return f"series-{index % SERIES_CLASSES}"


def daily_columns(
    chart_id: str,
    title: str,
    days: list[date],
    series: list[str],
    values: list[dict[str, int]],
    *,
    y_label: str,
    height: int = 300,
    width: int = WIDE,
) -> Chart:
    """Stacked columns, one per day, one colour per series (e.g. channels)."""
    left, right, top, bottom = 56, 12, 16, 62
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(v.values()) for v in values]
    ticks = nice_ticks(max(totals, default=0))
    scale = plot_h / ticks[-1]
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.7, 1.0)

    chart = Chart(
        chart_id, title,
        f"{title}: {sum(totals)} in total over {len(days)} days, at most {max(totals, default=0)} on one day.",
        width, height,
    )
    for tick in ticks:
        y = top + plot_h - tick * scale
        chart.lines.append(Line(left, y, left + plot_w, y, "grid"))
        chart.labels.append(Label(left - 6, y + 4, _number(tick), "end"))
    chart.lines.append(Line(left, top + plot_h, left + plot_w, top + plot_h, "axis"))
    chart.lines.append(Line(left, top, left, top + plot_h, "axis"))

    every = max(1, math.ceil(len(days) / (width // 90)))
    for i, (day, counts) in enumerate(zip(days, values, strict=True)):
        x = left + i * slot + (slot - bar_w) / 2
        base = top + plot_h
        for s, name in enumerate(series):
            count = counts.get(name, 0)
            if not count:
                continue
            h = count * scale
            base -= h
            chart.rects.append(Rect(x, base, bar_w, h, s, f"{day.isoformat()} {name}: {count}"))
        if i % every == 0:
            chart.labels.append(Label(x + bar_w / 2, top + plot_h + 16, day.strftime("%d %b"), "middle"))
    chart.labels.append(Label(left + plot_w / 2, height - 8, "Day (UTC)", "middle", "axis"))
    chart.labels.append(Label(14, top + plot_h / 2, y_label, "middle", "axis-y"))
    chart.legend.extend((series_class(s), name) for s, name in enumerate(series))
    chart.table_head.extend(["Day", *series, "Total"])
    for day, counts, total in zip(days, values, totals, strict=True):
        chart.table_rows.append([day.isoformat(), *(str(counts.get(n, 0)) for n in series), str(total)])
    return chart


def horizontal_bars(
    chart_id: str,
    title: str,
    items: list[tuple[str, list[float]]],
    *,
    series: list[str],
    x_label: str,
    value_text=None,
    width: int = NARROW,
) -> Chart:
    """One row per item (a label on the left), one bar per series in the row.

    ``value_text(series_index, value)`` formats the number written after each bar
    (default: the number itself, e.g. a count; pass one that adds a percentage).
    """
    value_text = value_text or (lambda _s, v: _number(v))
    left, right, top, bottom = 185, 72, 12, 46
    bar_h, gap = 18, 10
    row_h = bar_h * len(series) + gap
    plot_w = width - left - right
    plot_h = max(len(items), 1) * row_h
    height = top + plot_h + bottom
    ticks = nice_ticks(max((v for _, vs in items for v in vs), default=0))
    scale = plot_w / ticks[-1]

    chart = Chart(chart_id, title, _describe(title, items, series, value_text), width, height)
    for tick in ticks:
        x = left + tick * scale
        chart.lines.append(Line(x, top, x, top + plot_h, "grid"))
        chart.labels.append(Label(x, top + plot_h + 16, _number(tick), "middle"))
    chart.lines.append(Line(left, top, left, top + plot_h, "axis"))
    chart.lines.append(Line(left, top + plot_h, left + plot_w, top + plot_h, "axis"))
    for i, (name, values) in enumerate(items):
        row_top = top + i * row_h + gap / 2
        chart.labels.append(Label(left - 8, row_top + bar_h * len(series) / 2 + 4, _short(name), "end", "category"))
        for s, value in enumerate(values):
            y = row_top + s * bar_h
            w = value * scale
            label = f"{name}" + (f" ({series[s]})" if len(series) > 1 else "") + f": {value_text(s, value)}"
            if value:
                chart.rects.append(Rect(left, y + 2, w, bar_h - 4, s, label))
            chart.labels.append(Label(left + w + 4, y + bar_h / 2 + 4, value_text(s, value), "start", "value"))
    chart.labels.append(Label(left + plot_w / 2, height - 8, x_label, "middle", "axis"))
    if len(series) > 1:
        chart.legend.extend((series_class(s), name) for s, name in enumerate(series))
    chart.table_head.extend(["", *series] if len(series) > 1 else ["", x_label])
    for name, values in items:
        chart.table_rows.append([name, *(value_text(s, v) for s, v in enumerate(values))])
    return chart


def _describe(title: str, items: list[tuple[str, list[float]]], series: list[str], value_text) -> str:
    if not items:
        return f"{title}: no data in this period."
    parts = []
    for name, values in items[:5]:
        shown = ", ".join(
            (f"{series[s]} " if len(series) > 1 else "") + value_text(s, v) for s, v in enumerate(values)
        )
        parts.append(f"{name} {shown}")
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return f"{title}: " + "; ".join(parts) + more + "."


def _percent(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "n/a"


def report_charts(report, *, department_names: dict[str, str] | None = None) -> list[Chart]:
    """The charts of the statistics page for a ``bot.console.stats.StatsReport``."""
    names = department_names or {}
    split = report.handling
    compliance = report.compliance
    handling_items = [
        ("Answered automatically", [split.automatic]),
        ("Escalated to people", [split.escalated]),
        ("Other", [split.other]),
    ]
    compliance_items = [
        ("Answered in time", [compliance.met]),
        ("Answered late or overdue", [compliance.missed]),
        ("Not due yet", [compliance.pending]),
        ("Closed without reply", [compliance.closed_unanswered]),
    ]
    return [
        daily_columns(
            "per-day", "Citizen messages per day", [d.day for d in report.per_day], report.channels,
            [d.by_channel for d in report.per_day], y_label="Messages",
        ),
        horizontal_bars(
            "per-channel", "Citizen messages per channel",
            [(channel, [n]) for channel, n in report.per_channel], series=["Messages"], x_label="Messages",
        ),
        horizontal_bars(
            "handling", "Answered automatically vs escalated", handling_items, series=["Messages"],
            x_label="Messages", value_text=lambda _s, v: f"{_number(v)} ({_percent(v, split.total)})",
        ),
        horizontal_bars(
            "top-entries", "Most asked knowledge-base entries",
            [(entry, [n]) for entry, n in report.top_entries], series=["Answers"], x_label="Answers given",
        ),
        horizontal_bars(
            "reasons", "Why tickets were opened", [(reason.replace("_", " "), [n]) for reason, n in report.reasons],
            series=["Tickets"], x_label="Tickets opened",
        ),
        horizontal_bars(
            "languages", "Languages tickets were opened in",
            [(language_label(language), [n]) for language, n in report.languages],
            series=["Tickets"], x_label="Tickets opened",
        ),
        horizontal_bars(
            "departments", "Open and overdue tickets per department (now)",
            [(names.get(d.department, d.department), [d.open, d.overdue]) for d in report.departments],
            series=["Open", "Overdue"], x_label="Tickets",
        ),
        horizontal_bars(
            "compliance", "Response commitment", compliance_items, series=["Tickets"], x_label="Tickets opened",
            value_text=lambda _s, v: _number(v),
        ),
        _satisfaction_chart("satisfaction-departments", "Was it solved? Per department",
                            report.satisfaction_departments, names),
        _satisfaction_chart("satisfaction-channels", "Was it solved? Per channel", report.satisfaction_channels, {}),
    ]


def _satisfaction_chart(chart_id: str, title: str, groups, names: dict[str, str]) -> Chart:
    """Solved (% of answers) and the average rating (1-5, drawn as % of 5) per group; the
    label says how many answered, so 100 % of one answer reads as what it is."""
    items = [
        (f"{names.get(g.group, g.group)} ({g.answered} of {g.asked})",
         [round((g.solved_share or 0) * 100, 1), round((g.average_rating or 0) * 20, 1)])
        for g in groups
    ]

    def value_text(series: int, value: float) -> str:
        if series == 0:
            return f"{_number(round(value, 1))}%"
        # Ratings are 1 to 5: an average of 0 means no rating was given.
        return f"{_number(round(value / 20, 2))} / 5" if value else "n/a"

    return horizontal_bars(chart_id, title, items, series=["Solved", "Average rating"],
                           x_label="Solved (% of answers); rating (% of 5)", value_text=value_text)
