"""The console in a real browser (Debian's Chromium via Playwright) against a live server.

Sign in, open a queue, open a ticket, reply, add a note, resolve; new escalations
appearing without a reload; a citizen's <script>/<img onerror> shown as text and
never run; an agent of one department unable to read or change another's ticket.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from bot.store.db import session_scope
from bot.store.models import Message
from bot.tickets.models import Ticket, TicketEvent
from tests.console.conftest import login

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2; alert(\'xss\')">'


@pytest.fixture(scope="module")
def people(live_console):
    live_console.make_staff("wanda", departments=("waste",), display_name="Wanda Waste")
    live_console.make_staff("terry", departments=("taxes",), display_name="Terry Taxes")
    return live_console


def _no_script_ran(page) -> None:
    assert page.evaluate("window.__xss") is None
    assert page.dialogs == []


def test_sign_in_open_queue_and_ticket_reply_note_resolve(page, people) -> None:
    console = people
    public_id = console.make_ticket("The recycling bin at Elm Street 4 was not emptied on Monday.",
                                    sender="elm-street-4")
    login(page, console.url, "wanda")
    page.click("a.card[data-department=waste]")
    page.wait_for_url(re.compile(r".*/console/queue/waste"))
    row = page.locator(f'tr[data-ticket="{public_id}"]')
    assert "Elm Street 4" in row.inner_text()
    row.locator("td.subject a").click()
    # The check character may be one of Crockford's `*~$=U`: match it literally, as sent or percent-encoded.
    ticket_url = "|".join(re.escape(form) for form in {public_id, quote(public_id, safe="-")})
    page.wait_for_url(re.compile(rf".*/console/tickets/({ticket_url})$"))
    assert "led to this ticket" in page.inner_text(".timeline")

    page.fill("#reply-text", "Sorry about that: the crew will come back tomorrow morning.")
    page.click("#reply-form button[type=submit]")
    page.wait_for_selector(".flash.ok")
    assert "Reply queued" in page.inner_text(".flash.ok")
    reply = page.locator(".timeline li.msg-out").last
    assert "crew will come back tomorrow" in reply.inner_text()
    assert reply.locator("[data-delivery-for]").inner_text() == "pending"
    assert page.inner_text("[data-ticket-status]") == "open"

    page.fill("#note-form textarea", "Crew 3 skipped Elm Street; told the depot.")
    page.click("#note-form button[type=submit]")
    page.wait_for_selector(".timeline li.event.note")
    assert "told the depot" in page.inner_text(".timeline li.event.note")

    page.select_option("#status-select", "resolved")
    assert page.is_visible("#resolution-message")
    page.fill("#resolution-message", "The bin was emptied this morning. Thank you for telling us.")
    page.click("#status-form button[type=submit]")
    page.wait_for_selector(".flash.ok")
    assert page.inner_text("[data-ticket-status]") == "resolved"
    # The agent's resolution message, then the assistant's "Was it solved?" (bot.feedback).
    sent_out = page.locator(".timeline li.msg-out")
    assert "emptied this morning" in sent_out.nth(sent_out.count() - 2).inner_text()
    assert "Was your problem solved?" in sent_out.last.inner_text()
    assert page.console_errors == []  # nothing blocked by the CSP, no script errors

    with session_scope(console.db_url) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == public_id)).one()
        outbound = session.scalars(select(Message.author).where(Message.ticket_id == ticket.id,
                                                                Message.direction == "out",
                                                                Message.author != "assistant")).all()
        assert ticket.status == "resolved" and outbound == ["agent:wanda", "agent:wanda"]


def test_canned_kb_answer_is_inserted_into_the_reply(page, people) -> None:
    console = people
    public_id = console.make_ticket("How do I get rid of an old sofa? Nobody answers the phone.")
    login(page, console.url, "wanda")
    page.goto(f"{console.url}/console/tickets/{public_id}")
    page.click("details.canned-box summary")
    page.fill("#kb-search", "sofa")
    page.wait_for_selector("#kb-results .canned-item .id:has-text('waste-bulky-items')")
    page.locator("#kb-results .canned-item", has_text="waste-bulky-items").locator("button").click()
    assert "bulky waste pickups" in page.input_value("#reply-text")
    assert page.console_errors == []


def test_new_escalations_appear_without_reloading(page, people) -> None:
    console = people
    login(page, console.url, "wanda")
    page.goto(f"{console.url}/console/queue/waste")
    page.evaluate("window.__sameDocument = true")
    before = int(page.inner_text('[data-count="active"]'))
    public_id = console.make_ticket("Broken glass all over the bottle bank on Station Road " + XSS)
    row = page.wait_for_selector(f'tr[data-ticket="{public_id}"]', timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    assert "new-row" in (row.get_attribute("class") or "")
    assert XSS[:20] in row.inner_text()  # the citizen's markup is shown as text...
    _no_script_ran(page)  # ...and never runs
    # Its language, in the same column as on a freshly loaded page (none recorded: the KB's main language).
    language = row.query_selector("abbr[data-language]")
    assert language.inner_text() == "en" and language.get_attribute("title") == "English"
    page.wait_for_function(f"document.querySelector('[data-count=active]').textContent === '{before + 1}'")
    assert "new ticket" in page.inner_text("#live-status")


def test_citizen_markup_never_runs_in_queue_or_ticket(page, people) -> None:
    console = people
    public_id = console.make_ticket(XSS + " my bin is broken")
    login(page, console.url, "wanda")
    page.goto(f"{console.url}/console/queue/waste")
    assert XSS in page.locator(f'tr[data-ticket="{public_id}"] td.subject a').inner_text()
    page.wait_for_timeout(2500)  # let the live update re-render the rows from JSON at least once
    assert XSS in page.locator(f'tr[data-ticket="{public_id}"] td.subject a').inner_text()
    _no_script_ran(page)
    page.goto(f"{console.url}/console/tickets/{public_id}")
    assert XSS in page.inner_text(".timeline")
    assert page.locator(".timeline img").count() == 0 and page.locator("main script").count() == 0
    _no_script_ran(page)


def test_a_vulnerable_ticket_is_first_with_its_reason_as_text(page, people) -> None:
    from bot.tickets.service import set_vulnerable

    console = people
    public_id = console.make_ticket("My bin was taken away")
    with session_scope(console.db_url) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == public_id)).one()
        set_vulnerable(session, ticket, True, reason="agent wanda: " + XSS, actor="agent:wanda",
                       settings=console.settings)
    login(page, console.url, "wanda")
    page.goto(f"{console.url}/console/queue/waste")
    first = page.locator("table.queue tbody tr").first
    assert first.get_attribute("data-ticket") == public_id
    assert XSS in first.locator("[data-vulnerable]").inner_text()
    page.wait_for_timeout(2500)  # the live update re-renders the rows from JSON
    first = page.locator("table.queue tbody tr").first
    assert first.get_attribute("data-ticket") == public_id and XSS in first.locator("[data-vulnerable]").inner_text()
    _no_script_ran(page)
    page.goto(f"{console.url}/console/tickets/{public_id}")
    assert XSS in page.inner_text("[data-vulnerable]")
    _no_script_ran(page)


def test_agent_cannot_open_or_change_another_departments_ticket(page, people) -> None:
    console = people
    taxes = console.make_ticket("My property tax bill is wrong, reference TX-99", department="taxes")
    waste = console.make_ticket("Bin lid broken", department="waste")
    with session_scope(console.db_url) as session:
        ticket_id = session.scalars(select(Ticket.id).where(Ticket.public_id == taxes)).one()
        events_before = session.scalar(select(func.count()).where(TicketEvent.ticket_id == ticket_id))
    login(page, console.url, "wanda")

    response = page.goto(f"{console.url}/console/tickets/{taxes}")
    assert response.status == 404
    assert "TX-99" not in page.content() and "no such ticket" in page.inner_text("main")

    # Her own ticket's forms, pointed at the taxes ticket by editing the ID in the form.
    for form, field, value in (("#reply-form", "#reply-text", "Hello from waste"),
                               ("#note-form", "#note-form textarea", "peek")):
        page.goto(f"{console.url}/console/tickets/{waste}")
        page.evaluate(
            "([form, id]) => { const f = document.querySelector(form); f.action = f.action.replace(/[A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{2}[A-Z0-9*~$=]/, id); }",
            [form, taxes],
        )
        page.fill(field, value)
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.click(f"{form} button[type=submit]")
        assert posted.value.status == 404
        assert "TX-99" not in page.content()

    with session_scope(console.db_url) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket.status == "new" and ticket.assignee_id is None
        assert session.scalar(select(func.count()).where(TicketEvent.ticket_id == ticket_id)) == events_before
        assert session.scalars(select(Message).where(Message.ticket_id == ticket_id,
                                                     Message.direction == "out",
                                                     Message.author != "assistant")).all() == []
    _no_script_ran(page)
