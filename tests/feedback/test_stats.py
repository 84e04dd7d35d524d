"""Satisfaction per department and channel, in the statistics report, its charts and its CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from bot.console import stats
from bot.console.stats_charts import report_charts
from bot.feedback.models import EXPIRED
from bot.store.types import utcnow
from tests.feedback.helpers import resolved_and_asked


def _seed(session) -> None:
    answers = [  # (channel, sender, department, solved, rating)
        ("telegram", "1", "roads", True, 5),
        ("telegram", "2", "roads", True, 3),
        ("whatsapp", "3", "roads", False, None),
        ("email", "a@example.org", "waste", True, None),
        ("email", "b@example.org", "waste", None, None),  # asked, never answered
    ]
    for channel, sender, department, solved, rating in answers:
        _ticket, survey = resolved_and_asked(session, channel=channel, sender=sender, department=department)
        if solved is None:
            survey.state = EXPIRED
        else:
            survey.state, survey.solved, survey.rating = "answered", solved, rating
    # Outside the period: not counted.
    _ticket, old = resolved_and_asked(session, channel="telegram", sender="9", department="roads",
                                      now=utcnow() - timedelta(days=60))
    old.state, old.solved = "answered", False
    session.flush()


def test_satisfaction_in_the_report_the_charts_and_the_csv(session) -> None:
    _seed(session)
    report = stats.build_report(session, stats.Period.last_days(7))
    roads, waste = report.satisfaction_departments
    assert (roads.group, roads.asked, roads.answered, roads.solved, roads.ratings) == ("roads", 3, 3, 2, 2)
    assert roads.solved_share == 2 / 3 and roads.average_rating == 4
    assert (waste.group, waste.asked, waste.answered, waste.solved) == ("waste", 2, 1, 1)
    assert waste.average_rating is None and waste.answered_share == 0.5
    channels = {s.group: s for s in report.satisfaction_channels}
    assert channels["telegram"].asked == 2 and channels["telegram"].average_rating == 4
    assert channels["whatsapp"].solved_share == 0 and channels["email"].asked == 2

    charts = {c.id: c for c in report_charts(report, department_names={"roads": "Roads & streets"})}
    by_department = charts["satisfaction-departments"]
    assert by_department.table_rows[0] == ["Roads & streets (3 of 3)", "66.7%", "4 / 5"]
    assert by_department.table_rows[1] == ["waste (1 of 2)", "100%", "n/a"]
    assert not charts["satisfaction-channels"].empty

    rows = list(csv.reader(io.StringIO(stats.report_csv(report))))
    found = {(s, i, d): v for s, i, d, v in rows[1:]}
    assert found[("satisfaction_department", "roads", "solved_share")] == "0.6667"
    assert found[("satisfaction_department", "roads", "average_rating")] == "4.0"
    assert found[("satisfaction_department", "waste", "average_rating")] == ""
    assert found[("satisfaction_channel", "email", "asked")] == "2"
    assert found[("satisfaction_channel", "telegram", "ratings")] == "2"
