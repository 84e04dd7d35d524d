"""Screenshot of the statistics page with realistic data: docs/screenshots/stats.png.

    .venv/bin/python -m tools screenshots stats [--out docs/screenshots/stats.png]

Seeds a throw-away SQLite store with 30 days (up to now) of a mid-sized city's traffic
(fixed random seed, so the figures have the same shape every run), serves the console on a free loopback port,
signs in as a supervisor with Debian's Chromium (scripts/install-browser.sh) and saves the
page. Nothing here touches the project's own database or knowledge base.
"""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.settings import PROJECT_ROOT as ROOT

# The page computes "open now" and "overdue now" from the real clock, so the data ends today.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
END = NOW.date()
DAYS = 30
PASSWORD = "screenshot-password-0123"

CHANNELS = {"web": 0.38, "telegram": 0.27, "whatsapp": 0.22, "email": 0.13}
HANDLINGS = {"kb_answer": 0.57, "small_talk": 0.08, "status": 0.05, "escalated": 0.22, "ticket_joined": 0.06,
             "attachment_added": 0.02}
REASONS = {"report_problem": 0.30, "complaint": 0.21, "personal_case": 0.15, "low_confidence": 0.15,
           "request_human": 0.10, "out_of_scope": 0.07, "assistant_unavailable": 0.02}
DEPARTMENTS = {"roads": 0.20, "waste": 0.19, "taxes": 0.13, "parking": 0.12, "social": 0.10, "civil_registry": 0.09,
               "water": 0.08, "building": 0.05, "general": 0.04}


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def seed(db_url: str, kb_dir: Path) -> None:
    from bot.kb.loader import load_kb
    from bot.store.citizens import get_or_create_identity
    from bot.store.db import session_scope
    from bot.store.models import Message
    from bot.tickets.models import Ticket

    rng = random.Random(20261120)
    kb, _ = load_kb(kb_dir)
    entries = [e.id for e in kb.entries]
    rng.shuffle(entries)
    entry_weights = {entry: 1 / (rank + 1) ** 1.1 for rank, entry in enumerate(entries)}
    start = END - timedelta(days=DAYS - 1)
    with session_scope(db_url) as session:
        identities = {
            channel: [get_or_create_identity(session, channel, f"{channel}-citizen-{i}") for i in range(60)]
            for channel in CHANNELS
        }
        ticket_no = 0
        for offset in range(DAYS):
            day = start + timedelta(days=offset)
            weekend = day.weekday() >= 5
            volume = int(rng.gauss(70 if weekend else 165, 18))
            for _ in range(max(volume, 10)):
                channel = _pick(rng, CHANNELS)
                identity = rng.choice(identities[channel])
                created = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                    seconds=int(min(max(rng.gauss(13.5, 3.5), 0), 23.99) * 3600))
                if created > NOW:
                    continue
                handling = _pick(rng, HANDLINGS)
                message = Message(citizen_id=identity.citizen_id, identity_id=identity.id, channel=channel,
                                  direction="in", text="(seeded)", created_at=created, handling=handling,
                                  kb_entry_id=_pick(rng, entry_weights) if handling == "kb_answer" else None)
                session.add(message)
                if handling != "escalated":
                    continue
                ticket_no += 1
                due = created + timedelta(hours=4 if rng.random() < 0.06 else 24)
                response_hours = rng.lognormvariate(1.6, 0.8)
                first_response = created + timedelta(hours=response_hours)
                status, resolved = "new", None
                if first_response > NOW:
                    first_response = None
                else:
                    status = "open"
                    resolution = first_response + timedelta(hours=rng.lognormvariate(2.8, 0.9))
                    if resolution <= NOW and rng.random() < 0.9:
                        status, resolved = "resolved", resolution
                session.add(Ticket(
                    public_id=f"S{ticket_no:05d}", citizen_id=identity.citizen_id, identity_id=identity.id,
                    department=_pick(rng, DEPARTMENTS), reason=_pick(rng, REASONS), subject="(seeded)",
                    status=status, created_at=created, updated_at=created, due_at=due,
                    first_response_at=first_response, resolved_at=resolved,
                ))
            session.flush()


DEFAULT_OUT = ROOT / "docs" / "screenshots" / "stats.png"


def main(out: Path = DEFAULT_OUT) -> int:
    from fastapi import FastAPI
    from playwright.sync_api import sync_playwright

    from bot.console.app import register
    from bot.console.staff import create_staff
    from bot.runtime import Runtime
    from bot.settings import Settings
    from bot.store.db import session_scope, upgrade_database
    from tools.local_server import serve_in_thread
    from tools.screenshots.console import CHROMIUM, CHROMIUM_ARGS

    with tempfile.TemporaryDirectory(prefix="crm-screenshot-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'crm.db'}"
        upgrade_database(db_url)
        kb_dir = ROOT / "knowledge_base"
        seed(db_url, kb_dir)
        settings = Settings(_env_file=None, api_keys="screenshot-api-key-0123456789", database_url=db_url,
                            kb_dir=kb_dir)
        with session_scope(db_url) as session:
            create_staff(session, "screenshot", username="maria", display_name="Maria Jensen", password=PASSWORD,
                         role="supervisor")
        app = FastAPI()
        register(app, Runtime(settings))
        with serve_in_thread(app, name="stats-screenshot") as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/console/login")
            page.fill("#username", "maria")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/login" not in url)
            start = END - timedelta(days=DAYS - 1)
            page.goto(f"{base}/console/stats?start={start.isoformat()}&end={END.isoformat()}")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    print(f"wrote {out}")
    return 0
