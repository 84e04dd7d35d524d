"""The insight pages and /chat in a real browser (Debian's Chromium driven by Playwright).

The server here has its own SQLite store, its own copy of the KB (approvals write the KB
files) and the real Conversation with a stand-in for Rasa (tests/console/insights_seed.py),
so the chat runs the same path as POST /api/v1/messages without starting Rasa.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.conversation import Conversation
from bot.core.inbound import InboundMessage
from bot.kb.loader import load_kb
from bot.settings import PROJECT_ROOT, Settings
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory, session_scope, upgrade_database
from bot.store.models import Message
from bot.tickets.models import Ticket
from bot.tickets.replies import reply_to_ticket
from tests.console.chat_asking import GARDEN, UNSURE, AskingRasa, answer_text, asking_environment
from tests.console.conftest import build_app, login, make_settings, staff_factory
from tests.console.insights_seed import ANSWER, FakeRasa, at, message, seed_known
from tools.local_server import serve_in_thread

XSS = '<img src=x onerror="alert(document.domain)">'


@dataclass
class LiveInsights:
    url: str
    db_url: str
    kb_dir: Path
    settings: Settings
    rasa: FakeRasa
    make_staff: Any
    app: Any = None


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveInsights]:
    work = tmp_path_factory.mktemp("live-insights")
    db_url = f"sqlite:///{work / 'console.db'}"
    upgrade_database(db_url)
    kb_dir = work / "knowledge_base"
    shutil.copytree(PROJECT_ROOT / "knowledge_base", kb_dir)
    settings = make_settings(db_url, kb_dir=kb_dir)
    rasa = FakeRasa(db_url, settings)
    app = build_app(settings, rasa=rasa)
    with session_scope(db_url) as session:
        seed_known(session)
        # A KB entry id no KB would hold, to prove the stats page escapes what the store says.
        mallory = get_or_create_identity(session, "web", "mallory")
        message(session, mallory, at(3, 9), "kb_answer", kb_entry_id=XSS)
    staff = staff_factory(db_url)
    staff("sam", role="supervisor", departments=())
    staff("ana", role="agent", departments=("waste",))
    with serve_in_thread(app, name="live-insights") as url:
        yield LiveInsights(url, db_url, kb_dir, settings, rasa, staff, app)


def _no_script_ran(page: Any) -> None:
    assert page.dialogs == [], f"a script ran: {page.dialogs}"


def test_stats_page_draws_charts_and_the_csv_downloads(page, live: LiveInsights) -> None:
    login(page, live.url, "sam")
    page.goto(f"{live.url}/console/stats?start=2026-03-01&end=2026-03-07")
    assert page.locator("h1").inner_text() == "Statistics"
    assert page.locator("[data-stat=messages]").inner_text() == "10"
    charts = page.locator("figure.chart svg[role=img]")
    assert charts.count() == 8  # with "Languages tickets were opened in"
    # "Was it solved?": no survey in this seed, so its two charts say there is no data.
    for chart_id in ("satisfaction-departments", "satisfaction-channels"):
        assert page.locator(f"#chart-{chart_id} p.empty").inner_text() == "No data in this period."
    per_day = page.locator("#chart-per-day svg[role=img]")
    assert per_day.bounding_box()["width"] > 300
    assert per_day.locator("rect.bar").count() == 7  # one bar per day and channel with messages
    assert page.locator("#chart-per-day .label-axis").first.text_content() == "Day (UTC)"
    assert page.get_by_text("Citizen messages per day", exact=True).first.is_visible()
    # The stored entry id is shown as text in the chart, never as markup.
    assert XSS[:20] in page.locator("#chart-top-entries").inner_text()
    assert page.locator("#chart-top-entries img").count() == 0
    _no_script_ran(page)
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors

    page.fill("input[name=start]", "2026-03-05")
    page.fill("input[name=end]", "2026-03-07")
    page.click("form[aria-label=Period] button[type=submit]")
    page.wait_for_url(re.compile(r".*start=2026-03-05.*"))
    assert page.locator("[data-stat=messages]").inner_text() == "4"

    with page.expect_download() as download_info:
        page.click("#csv-link")
    download = download_info.value
    assert download.suggested_filename == "statistics-2026-03-05-2026-03-07.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows[0] == ["section", "item", "detail", "value"]
    assert ["messages_per_channel", "telegram", "", "3"] in rows


def _gap_ticket(live: LiveInsights, text: str) -> tuple[str, int]:
    """A citizen asks something the KB lacks, through the real conversation path."""
    conversation = Conversation(live.settings, session_factory(live.db_url), live.rasa)
    handled = conversation.handle_inbound(InboundMessage(channel="telegram", sender=f"gap-{time.time_ns()}", text=text))
    return handled.ticket.id, handled.message_id


def test_agent_proposes_from_a_ticket_and_a_supervisor_approves_it_into_the_kb(page, live: LiveInsights) -> None:
    question = "Is there a repair café, so my broken toaster does not end up in the bin?"
    public_id, _ = _gap_ticket(live, question)
    login(page, live.url, "ana")
    page.goto(f"{live.url}/console/tickets/{public_id}")
    page.click("#propose-entry")
    page.wait_for_url(re.compile(r".*/console/proposals/new.*"))
    assert page.locator("#new-question").input_value() == question
    assert page.locator("#new-department").input_value() == "waste"
    page.fill("#new-answer", "Yes: the repair café meets every second Saturday at the library.")
    page.click("#proposal-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/proposals\?.*done=created.*"))
    assert "sent to the supervisors" in page.locator(".flash.ok").inner_text()
    page.context.clear_cookies()

    login(page, live.url, "sam")
    page.goto(f"{live.url}/console/proposals")
    card = page.locator("article.proposal", has_text=question)
    card.locator("textarea[name=answer]").fill(
        "Yes: the repair café meets every second Saturday, 10:00-13:00, at the central library.")
    card.locator("input[name=entry_id]").fill("waste-repair-cafe")
    card.locator("button[value=approve]").click()
    page.wait_for_url(re.compile(r".*status=approved.*"))
    assert "in the knowledge base files" in page.locator(".flash.ok").inner_text()
    assert page.locator("article.proposal", has_text="waste-repair-cafe").count() == 1

    kb, problems = load_kb(live.kb_dir)
    entry = kb.entry("waste-repair-cafe")
    assert entry.questions == {"en": [question]} and "10:00-13:00" in entry.answer["en"]
    assert not [p for p in problems if p.is_error]
    _no_script_ran(page)


def test_a_phrasing_that_would_break_the_kb_is_refused_in_the_page(page, live: LiveInsights) -> None:
    kb, _ = load_kb(live.kb_dir)
    taken = kb.entry("waste-bulky-items").questions["en"][0]
    login(page, live.url, "sam")
    page.goto(f"{live.url}/console/proposals/new?kind=new_phrasing")
    page.check("input[name=kind][value=new_phrasing]")
    assert page.locator("#new-answer").is_hidden()  # a phrasing has no answer of its own
    page.fill("#new-question", taken)
    page.select_option("#new-target", "parking-resident-permit")
    page.click("#proposal-form button[type=submit]")
    page.wait_for_url(re.compile(r".*done=created.*"))
    page.locator("article.proposal", has_text=taken).locator("button[value=approve]").click()
    alert = page.locator(".flash.error")
    assert "is also in entry" in alert.inner_text() and "waste-bulky-items" in alert.inner_text()
    assert taken not in load_kb(live.kb_dir)[0].entry("parking-resident-permit").questions["en"]


def test_gaps_show_citizen_text_as_text_and_lead_to_a_proposal(page, live: LiveInsights) -> None:
    _gap_ticket(live, XSS)
    _gap_ticket(live, "When does the compost fair at the recycling centre open?")
    login(page, live.url, "sam")
    page.goto(f"{live.url}/console/gaps")
    row = page.locator("tr[data-gap]", has_text="compost fair")
    assert row.count() == 1
    assert page.locator("table.gaps").get_by_text(XSS, exact=True).count() == 1
    assert page.locator("table.gaps img").count() == 0
    _no_script_ran(page)
    row.locator("a.propose").click()
    page.wait_for_url(re.compile(r".*/console/proposals/new\?message=\d+"))
    assert page.locator("#new-question").input_value() == "When does the compost fair at the recycling centre open?"


def test_chat_on_a_phone_sends_a_message_and_shows_replies(browser, live: LiveInsights) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.set_default_timeout(10_000)
    dialogs: list[str] = []
    phone.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        phone.goto(f"{live.url}/chat")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        send = phone.locator("#chat-send").bounding_box()
        assert send["height"] >= 44 and send["width"] >= 44
        assert phone.locator("#chat-text").bounding_box()["height"] >= 44

        phone.fill("#chat-text", "How do I get rid of an old sofa?")
        phone.tap("#chat-send")
        phone.locator(".line.out.assistant .bubble", has_text=ANSWER).wait_for()
        assert phone.locator("#chat-text").input_value() == ""
        assert phone.locator(".line.in").count() == 1

        # The citizen types markup; it is shown as typed and the escalation reply names the ticket.
        phone.fill("#chat-text", XSS)
        phone.locator("#chat-text").press("Enter")
        reply = phone.locator(".line.out .bubble", has_text="ticket")
        reply.wait_for()
        assert phone.locator(".line.in .bubble").nth(1).inner_text() == XSS
        assert phone.locator("#chat-log img").count() == 0
        ticket_id = re.search(r"ticket (\S+?)\.", reply.inner_text()).group(1)

        # An agent answers on the ticket: the page polls and shows it, as text.
        with session_scope(live.db_url) as session:
            ticket = session.scalars(select(Ticket).where(Ticket.public_id == ticket_id)).one()
            reply_to_ticket(session, ticket, f"Staff here. You wrote {XSS}; we will call you.", author="agent:ana")
        agent_line = phone.locator(".line.out.agent .bubble")
        agent_line.wait_for(timeout=15_000)
        assert "City staff" in agent_line.inner_text() and XSS in agent_line.inner_text()
        assert phone.locator("#chat-log img").count() == 0

        # A reload shows the conversation again (the cookie identifies the visitor).
        phone.reload()
        phone.locator(".line.out.agent .bubble").wait_for()
        assert phone.locator(".line.in").count() == 2
        assert dialogs == []
        with session_scope(live.db_url) as session:
            statuses = session.scalars(
                select(Message.delivery_status).where(Message.author == "agent:ana")
            ).all()
            assert statuses and set(statuses) == {"sent"}
    finally:
        context.close()


def test_chat_shows_do_you_mean_buttons_and_a_tap_sends_the_choice(page, live: LiveInsights) -> None:
    """The assistant asks; the options are real buttons (also after a reload), a tap or Enter on
    one sends its choice, and the offer's buttons are then disabled or gone."""
    usual = live.app.state.web_chat.conversation
    live.app.state.web_chat.conversation = Conversation(live.settings, session_factory(live.db_url), AskingRasa())
    try:
        with asking_environment(live.db_url, live.kb_dir, live.settings.api_keys.get_secret_value()):
            page.goto(f"{live.url}/chat")
            page.fill("#chat-text", UNSURE)
            page.locator("#chat-text").press("Enter")
            group = page.get_by_role("group", name="Do you mean one of these? Choose one")
            group.wait_for()
            buttons = group.get_by_role("button")
            assert buttons.count() == 3
            titles = buttons.all_inner_texts()
            assert titles[-1] == "None of these / talk to a person"
            assert all(b.is_enabled() for b in buttons.all())

            # The offer survives a reload: the buttons come back from the history.
            page.reload()
            group.wait_for()
            assert buttons.all_inner_texts() == titles

            # Keyboard: focus the second option and press Enter.
            buttons.nth(1).focus()
            with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/chat/messages")) as sent:
                page.keyboard.press("Enter")
            body = sent.value.post_data_json
            assert body["text"] == titles[1] and re.fullmatch(r"kb:[a-z0-9]+:2", body["choice"])
            assert body["client_id"]
            page.locator(".line.out .bubble", has_text=answer_text(GARDEN)).wait_for()
            assert page.locator(".line.in .bubble").last.inner_text() == titles[1]
            assert [b.is_disabled() for b in buttons.all()] == [True, True, True]
            assert buttons.nth(1).get_attribute("aria-pressed") == "true"
            with session_scope(live.db_url) as session:
                picked = session.scalars(select(Message).where(Message.direction == "in")
                                         .order_by(Message.id.desc()).limit(1)).one()
                assert picked.text == titles[1] and picked.kb_entry_id == GARDEN
                assert picked.meta["kb_choice"].endswith(":2")

            # A newer line ends an offer nobody tapped: its buttons go, the numbers stay in its text.
            page.fill("#chat-text", UNSURE)
            page.locator("#chat-text").press("Enter")
            page.locator(".choices button:enabled").first.wait_for()
            assert page.locator(".choices button:enabled").count() == 3
            page.fill("#chat-text", "something else entirely")
            page.locator("#chat-text").press("Enter")
            page.locator(".line.out .bubble", has_text="ticket").last.wait_for()
            assert page.locator(".choices button:enabled").count() == 0
            page.reload()
            page.locator(".line.out .bubble", has_text="ticket").last.wait_for()
            assert page.locator(".choices button:enabled").count() == 0
            _no_script_ran(page)
            # No script error and nothing blocked by the CSP (the page has no favicon: a 404 may show).
            assert not [e for e in page.console_errors if not e.startswith("Failed to load resource")], page.console_errors
    finally:
        live.app.state.web_chat.conversation = usual
