"""The statistics page and its CSV export through the console (roles, period, escaping)."""

from __future__ import annotations

import csv
import io
import re

from bot.store.db import session_scope
from tests.console.conftest import sign_in
from tests.console.insights_seed import at, message, seed_known, ticket

QUERY = "start=2026-03-01&end=2026-03-07"


def _seed(db_url: str) -> None:
    with session_scope(db_url) as session:
        seed_known(session)


def test_only_supervisors_see_statistics(client, make_staff, db_url) -> None:
    make_staff("ana", role="agent")
    sign_in(client, "ana")
    assert client.get(f"/console/stats?{QUERY}").status_code == 403
    assert client.get(f"/console/stats.csv?{QUERY}").status_code == 403


def test_signed_out_is_sent_to_sign_in(client) -> None:
    response = client.get("/console/stats", follow_redirects=False)
    assert response.status_code == 303 and "/console/login" in response.headers["location"]
    assert client.get("/console/stats.csv", follow_redirects=False).status_code == 303


def test_stats_page_shows_figures_and_svg_charts(client, make_staff, db_url) -> None:
    _seed(db_url)
    make_staff("sam", role="supervisor")
    sign_in(client, "sam")
    page = client.get(f"/console/stats?{QUERY}")
    assert page.status_code == 200, page.text
    html = page.text
    assert re.search(r'data-stat="messages">9<', html)
    assert re.search(r'data-stat="automatic">67%<', html)
    assert re.search(r'data-stat="tickets">6<', html)
    assert re.search(r'data-stat="first-response">4 h 00 min<', html)
    assert re.search(r'data-stat="resolution">1 d 0 h<', html)
    assert html.count("<svg viewBox") == 8
    assert "Languages tickets were opened in" in html and "English (en)" in html  # no language recorded: the KB's
    assert 'role="img"' in html and "<desc id=" in html
    assert "Citizen messages per day" in html and "Day (UTC)" in html
    assert f'href="/console/stats.csv?{QUERY.replace("&", "&amp;")}"' in html
    assert 'style="' not in html  # the CSP forbids inline styles


def test_bad_dates_fall_back_with_a_message(client, make_staff) -> None:
    make_staff("sam", role="supervisor")
    sign_in(client, "sam")
    page = client.get("/console/stats?start=yesterday&end=2026-03-07")
    assert page.status_code == 400 and "YYYY-MM-DD" in page.text
    page = client.get("/console/stats?start=2026-03-07&end=2026-03-01")
    assert page.status_code == 400 and "before the start" in page.text
    assert client.get("/console/stats.csv?start=2020-01-01&end=2026-01-01").status_code == 400


def test_csv_download(client, make_staff, db_url) -> None:
    _seed(db_url)
    make_staff("sam", role="supervisor")
    sign_in(client, "sam")
    response = client.get(f"/console/stats.csv?{QUERY}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="statistics-2026-03-01-2026-03-07.csv"'
    rows = list(csv.reader(io.StringIO(response.text)))
    assert ["messages_per_channel", "telegram", "", "4"] in rows


def test_store_values_are_escaped_in_the_page(client, make_staff, db_url) -> None:
    """Entry ids, departments and reasons come from data; none may become markup."""
    evil = '<img src=x onerror="alert(1)">'
    with session_scope(db_url) as session:
        from bot.store.citizens import get_or_create_identity

        web = get_or_create_identity(session, "web", "mallory")
        message(session, web, at(2, 9), "kb_answer", kb_entry_id=evil)
        ticket(session, web, "TX", department=evil, reason="complaint", created=at(2, 9), status="new")
    make_staff("sam", role="supervisor")
    sign_in(client, "sam")
    html = client.get(f"/console/stats?{QUERY}").text
    assert evil not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
