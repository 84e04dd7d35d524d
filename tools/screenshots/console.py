"""The README's console screenshots, rendered from demo data by a real browser.

``python -m tools screenshots console`` builds a throw-away SQLite store with a
plausible morning in the waste department (tickets from every channel, one
overdue, one urgent, a citizen who first asked a FAQ on the web and then
complained on Telegram), serves the console on a free loopback port and lets
Chromium photograph the queue and a ticket. Nothing touches the configured
database.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from bot.settings import PROJECT_ROOT, Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
DEMO_PASSWORD = "demo passphrase for screenshots"


def _message(session, identity, text: str, at: datetime, **fields):
    from bot.store.messages import record_inbound

    message, _ = record_inbound(session, identity, text)
    message.created_at = at
    for name, value in fields.items():
        setattr(message, name, value)
    session.flush()
    return message


def _answer(session, inbound, text: str, at: datetime, *, author: str = "assistant"):
    from bot.store.messages import record_outbound

    reply = record_outbound(session, inbound=inbound, text=text)
    reply.created_at = at
    reply.author = author
    reply.delivery_status = "sent"
    reply.sent_at = at
    session.flush()
    return reply


def _ticket(session, settings, identity, text: str, *, age: timedelta, now: datetime, priority: str = "normal",
            reason: str = "report_problem", department: str = "waste"):
    from bot.tickets.service import open_or_join_ticket

    at = now - age
    inbound = _message(session, identity, text, at, handling="escalated", intent=reason, confidence=0.93)
    ticket, _ = open_or_join_ticket(session, inbound=inbound, reason=reason, department=department,
                                    priority=priority, now=at, settings=settings)
    _answer(session, inbound, f"Thank you. I've passed this to our waste team as ticket {ticket.public_id}; "
                              f"a member of staff will reply within 24 hours.", at + timedelta(seconds=2))
    return ticket


def seed_demo(db_url: str, settings: Settings) -> str:
    """Demo data; returns the public id of the ticket to photograph."""
    from bot.console.staff import create_staff
    from bot.store.citizens import get_or_create_identity
    from bot.store.db import session_scope
    from bot.store.types import utcnow
    from bot.tickets.service import add_note, change_status

    now = utcnow()
    with session_scope(db_url) as session:
        wanda = create_staff(session, "system", username="wanda", display_name="Wanda Weber", password=DEMO_PASSWORD,
                             role="agent", departments=["waste"], known_departments=["waste"])
        create_staff(session, "system", username="omar", display_name="Omar Osei", password=DEMO_PASSWORD,
                     role="agent", departments=["waste"], known_departments=["waste"])
        session.flush()
        omar_id = wanda.id + 1

        # The citizen whose ticket is shown: a FAQ on the web last week, then a complaint on Telegram.
        web = get_or_create_identity(session, "web", "web-session-5c1e")
        telegram = get_or_create_identity(session, "telegram", "402117733")
        telegram.citizen_id = web.citizen_id
        session.flush()
        faq_at = now - timedelta(days=6, hours=3)
        question = _message(session, web, "When is the brown bin collected in winter?", faq_at,
                            handling="kb_answer", intent="faq", confidence=0.97, kb_entry_id="waste-collection-days")
        _answer(session, question,
                "Organic waste (brown bin) is collected weekly from April to October and every two weeks from "
                "November to March. Enter your address in the online waste calendar to see your dates.",
                faq_at + timedelta(seconds=1))
        first_at = now - timedelta(hours=5, minutes=12)
        first = _message(session, telegram, "Hi, my brown bin on Linden Road 12 has not been emptied for three "
                                            "weeks now.", first_at, handling="small_talk")
        _answer(session, first, "I'm sorry to hear that. Could you tell me a bit more about what happened?",
                first_at + timedelta(seconds=1))
        shown = _ticket(session, settings, telegram,
                        "It's full and smells, the lid doesn't close any more and the crew just drives past. "
                        "I called the hotline twice. I want to complain.",
                        age=timedelta(hours=5, minutes=10), now=now, reason="complaint")
        add_note(session, shown, "Route 7 skipped Linden Road twice (depot log). Asked the depot to add it "
                                 "to tomorrow's round.", actor="agent:wanda", now=now - timedelta(hours=1, minutes=40))
        change_status(session, shown, "open", actor="agent:wanda", now=now - timedelta(hours=1, minutes=39))
        shown.assignee_id = wanda.id

        samples = [
            ("email", "m.keller@example.org", "Bulky waste pickup booked for 14 March never came, the sofa is "
             "still on the pavement and a neighbour complained.", timedelta(hours=27), "normal", "complaint", None),
            ("whatsapp", "+4915550001234", "Broken glass all around the bottle bank at Station Road, children "
             "walk there to school.", timedelta(hours=3, minutes=50), "urgent", "report_problem", None),
            ("web", "web-session-9a2f", "I am 84 and cannot carry the bin to the kerb any more. Is there a "
             "collection service from the garden?", timedelta(hours=9), "high", "personal_case", omar_id),
            ("telegram", "518822001", "The yellow bags were not collected in Birch Lane again.",
             timedelta(hours=20), "normal", "report_problem", None),
            ("email", "j.nowak@example.net", "Why was I charged for a second residual waste bin? I only have one.",
             timedelta(hours=2, minutes=15), "normal", "personal_case", None),
            ("web", "web-session-77d0", "Someone dumped old paint tins and car tyres behind the recycling "
             "containers on Mill Street.", timedelta(minutes=25), "normal", "report_problem", None),
            ("whatsapp", "+4915550004321", "Can I get a bigger paper bin? Ours is always full after a week.",
             timedelta(hours=14), "low", "out_of_scope", None),
        ]
        for channel, address, text, age, priority, reason, assignee in samples:
            identity = get_or_create_identity(session, channel, address)
            ticket = _ticket(session, settings, identity, text, age=age, now=now, priority=priority, reason=reason)
            ticket.assignee_id = assignee
        return shown.public_id


def take_screenshots(out_dir: str | Path) -> list[Path]:
    from fastapi import FastAPI
    from playwright.sync_api import sync_playwright

    from bot.console.app import register
    from bot.runtime import Runtime
    from bot.store.db import dispose_engines, upgrade_database
    from tools.local_server import serve_in_thread

    out = Path(out_dir)
    if not out.is_absolute():
        out = PROJECT_ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="console-shots-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        upgrade_database(db_url)
        settings = Settings(_env_file=None, api_keys="screenshots-demo-key-0123456789", database_url=db_url,
                            kb_dir=PROJECT_ROOT / "knowledge_base")
        ticket_id = seed_demo(db_url, settings)
        app = FastAPI()
        register(app, Runtime(settings))
        written = []
        try:
            with serve_in_thread(app, name="demo-console") as base, sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 860}, device_scale_factor=1)
                page.goto(f"{base}/console/login")
                page.fill("#username", "wanda")
                page.fill("#password", DEMO_PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/console/")
                page.goto(f"{base}/console/queue/waste")
                written.append(out / "queue.png")
                page.screenshot(path=str(written[-1]), full_page=True)
                page.set_viewport_size({"width": 1440, "height": 1300})
                page.goto(f"{base}/console/tickets/{ticket_id}")
                page.fill("#reply-text", "Dear citizen, I'm sorry: the crew missed Linden Road twice. Your bin "
                                         "will be emptied tomorrow morning and the lid replaced free of charge.")
                written.append(out / "ticket.png")
                page.screenshot(path=str(written[-1]), full_page=False)
                browser.close()
        finally:
            dispose_engines()
    for path in written:
        print(f"wrote {path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path}")
    return written
