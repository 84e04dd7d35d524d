"""Chart geometry: bars proportional to the numbers, axes with round ticks, data tables."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.console import stats_charts
from bot.console.stats_charts import daily_columns, horizontal_bars, nice_ticks


@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [(0, [0, 1]), (1, [0, 0.2, 0.4, 0.6, 0.8, 1]), (7, [0, 2, 4, 6, 8]), (10, [0, 2, 4, 6, 8, 10]),
     (23, [0, 5, 10, 15, 20, 25]), (480, [0, 100, 200, 300, 400, 500])],
)
def test_nice_ticks(maximum, ticks) -> None:
    assert nice_ticks(maximum) == ticks


def test_daily_columns_stack_series_in_proportion() -> None:
    days = [date(2026, 3, 1) + timedelta(days=i) for i in range(3)]
    chart = daily_columns("d", "Per day", days, ["web", "telegram"],
                          [{"web": 2, "telegram": 2}, {}, {"web": 4}], y_label="Messages")
    heights = {r.tooltip: r.height for r in chart.rects}
    assert heights["2026-03-01 web: 2"] == pytest.approx(heights["2026-03-01 telegram: 2"])
    assert heights["2026-03-03 web: 4"] == pytest.approx(2 * heights["2026-03-01 web: 2"])
    # Stacked: the second series sits on top of the first.
    web, telegram = [r for r in chart.rects if r.tooltip.startswith("2026-03-01")]
    assert telegram.y + telegram.height == pytest.approx(web.y)
    assert chart.legend == [("series-0", "web"), ("series-1", "telegram")]
    assert chart.table_rows[0] == ["2026-03-01", "2", "2", "4"]
    assert {label.text for label in chart.labels} >= {"Day (UTC)", "Messages", "01 Mar", "0", "4"}
    assert "8 in total over 3 days" in chart.description


def test_horizontal_bars_with_two_series_and_value_text() -> None:
    chart = horizontal_bars("h", "Load", [("Waste", [4, 1]), ("Parking", [2, 0])], series=["Open", "Overdue"],
                            x_label="Tickets")
    widths = {r.tooltip: r.width for r in chart.rects}
    assert widths["Waste (Open): 4"] == pytest.approx(2 * widths["Parking (Open): 2"])
    assert "Parking (Overdue): 0" not in widths  # zero draws no bar, but its value is written
    assert [l.text for l in chart.labels if l.kind == "value"] == ["4", "1", "2", "0"]
    assert chart.table_head == ["", "Open", "Overdue"]


def test_long_labels_are_shortened_but_kept_in_the_table() -> None:
    name = "a-very-long-knowledge-base-entry-identifier"
    chart = horizontal_bars("h", "Entries", [(name, [3])], series=["Answers"], x_label="Answers")
    category = [l.text for l in chart.labels if l.kind == "category"]
    assert len(category[0]) == stats_charts.LABEL_CHARS and category[0].endswith("\u2026")
    assert chart.table_rows == [[name, "3"]]


def test_empty_chart_has_no_bars() -> None:
    chart = horizontal_bars("h", "Reasons", [], series=["Tickets"], x_label="Tickets")
    assert chart.empty and "no data" in chart.description
