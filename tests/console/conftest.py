"""Fixtures for the agent console: an app with the console on the test databases, staff,
tickets seeded through the store services, and a real browser against a live server.

Route tests use ``client`` on the ``db_url`` fixture (SQLite and PostgreSQL).
Browser tests use ``live_console`` (uvicorn in a thread on a free port, its own
SQLite file) and ``page`` (Debian's Chromium driven by Playwright; scripts/install-browser.sh
installs it). A missing browser fails the tests: a skipped XSS test is no test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.channels.web.routes import mount as mount_web_chat
from bot.console.app import register
from bot.runtime import Runtime
from bot.settings import PROJECT_ROOT, Settings
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_scope, upgrade_database
from bot.store.messages import record_inbound
from bot.tickets.service import open_or_join_ticket
from tools.local_server import serve_in_thread

PASSWORD = "correct horse battery staple"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_keys": "console-tests-api-key-0123456789",
        "database_url": db_url,
        "kb_dir": PROJECT_ROOT / "knowledge_base",
        # Fast polling so browser tests see new tickets quickly.
        "console_poll_seconds": 1.0,
        "privacy_notice_channels": "",  # the first-contact notice has its own tests (tests/privacy)
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def build_app(settings: Settings, rasa=None) -> FastAPI:  # noqa: ANN001 - a FakeRasa or a RasaClient
    app = FastAPI()
    runtime = Runtime(settings, rasa=rasa)
    mount_web_chat(app, runtime)
    register(app, runtime)
    return app


def staff_factory(db_url: str) -> Callable[..., Any]:
    def make_staff(
        username: str,
        role: str = "agent",
        departments: tuple[str, ...] | list[str] = ("waste",),
        password: str = PASSWORD,
        display_name: str | None = None,
    ):
        from bot.console.staff import create_staff

        with session_scope(db_url) as session:
            return create_staff(
                session, "test", username=username, display_name=display_name or username.title(),
                password=password, role=role, departments=departments, known_departments=departments,
            )

    return make_staff


def ticket_factory(db_url: str, settings: Settings) -> Callable[..., str]:
    def make_ticket(
        text: str,
        department: str = "waste",
        channel: str = "web",
        sender: str | None = None,
        priority: str = "normal",
        reason: str = "complaint",
    ) -> str:
        with session_scope(db_url) as session:
            identity = get_or_create_identity(session, channel, sender or f"citizen-{uuid.uuid4().hex[:10]}")
            inbound, _ = record_inbound(session, identity, text)
            ticket, _ = open_or_join_ticket(
                session, inbound=inbound, reason=reason, department=department, priority=priority, settings=settings
            )
            return ticket.public_id

    return make_ticket


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing() -> Iterator[None]:
    """argon2's production cost (about a second per hash on a busy CI machine) would make
    these tests take minutes; the same code path with cheap parameters proves the same things."""
    from argon2 import PasswordHasher

    from bot.console import passwords

    original = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    passwords._dummy_hash = None
    yield
    passwords._hasher = original
    passwords._dummy_hash = None


@pytest.fixture
def console_settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def console_app(console_settings: Settings) -> FastAPI:
    return build_app(console_settings)


@pytest.fixture
def client(console_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(console_app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def make_staff(db_url: str) -> Callable[..., Any]:
    return staff_factory(db_url)


@pytest.fixture
def make_ticket(db_url: str, console_settings: Settings) -> Callable[..., str]:
    return ticket_factory(db_url, console_settings)


_LOGIN_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)"')


def login_form_token(client: TestClient) -> str:
    page = client.get("/console/login")
    assert page.status_code == 200, page.text
    return _LOGIN_TOKEN.search(page.text).group(1)


def csrf_of(client: TestClient) -> str:
    page = client.get("/console/account")
    assert page.status_code == 200, page.text
    return _CSRF_META.search(page.text).group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign ``client`` in; returns the session's CSRF token."""
    response = client.post(
        "/console/login",
        data={"username": username, "password": password, "login_token": login_form_token(client)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client)


# --- the browser ---------------------------------------------------------------------------------


@dataclass
class LiveConsole:
    url: str
    db_url: str
    settings: Settings
    make_staff: Callable[..., Any]
    make_ticket: Callable[..., str]


@pytest.fixture(scope="session")
def live_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveConsole]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('live-console') / 'console.db'}"
    upgrade_database(db_url)
    settings = make_settings(db_url)
    with serve_in_thread(build_app(settings), name="live-console") as url:
        yield LiveConsole(
            url=url,
            db_url=db_url,
            settings=settings,
            make_staff=staff_factory(db_url),
            make_ticket=ticket_factory(db_url, settings),
        )


# Package scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is open, and any later test that calls asyncio.run() would fail behind it.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/install-browser.sh (scripts/test.sh does) to install Debian's Chromium",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context; ``page.dialogs`` collects every JS dialog (XSS tests expect none),
    ``page.console_errors`` every console error (a CSP violation shows up there)."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    new_page = context.new_page()
    new_page.set_default_timeout(10_000)
    dialogs: list[str] = []
    errors: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    new_page.on("dialog", on_dialog)
    new_page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    new_page.on("pageerror", lambda exc: errors.append(str(exc)))
    new_page.dialogs = dialogs
    new_page.console_errors = errors
    try:
        yield new_page
    finally:
        context.close()


def login(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/console/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/(?!login).*"))
