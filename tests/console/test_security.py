"""Headers, templates that the CSP can enforce, escaping, and the console inside the real API app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.api.app import create_app
from bot.console.context import STATIC_DIR, TEMPLATES_DIR
from bot.http_security import CONTENT_SECURITY_POLICY
from bot.runtime import Runtime
from bot.staff.audit import audit
from bot.staff.models import AuditLog
from bot.store.db import session_scope
from tests.console.conftest import make_settings, sign_in


@pytest.mark.parametrize("path", ["/console/login", "/console/static/console.css", "/console/", "/console/nope"])
def test_security_headers_on_every_console_response(client, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] in ("no-store", "no-cache")


def _templates() -> list[Path]:
    return sorted(TEMPLATES_DIR.glob("*.html"))


@pytest.mark.parametrize("template", _templates(), ids=lambda p: p.name)
def test_templates_have_nothing_the_csp_would_block_or_that_bypasses_escaping(template: Path) -> None:
    text = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script> (CSP blocks it)"
    assert not re.search(r"\sstyle\s*=", text), "style attribute (CSP blocks it)"
    assert not re.search(r"<style", text), "<style> element (CSP blocks it)"
    assert not re.search(r"\son[a-z]+\s*=", text), "inline event handler"
    assert "|safe" not in text.replace(" ", "") and "autoescape false" not in text
    assert "javascript:" not in text.lower()


def test_scripts_never_write_html() -> None:
    for script in STATIC_DIR.glob("*.js"):
        text = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{script.name} uses {sink}"


def test_citizen_text_is_escaped_on_the_ticket_page(client, make_staff, make_ticket) -> None:
    make_staff("ana")
    sign_in(client, "ana")
    attack = '<script>window.pwned=1</script><img src=x onerror="alert(1)">'
    public_id = make_ticket(attack)
    page = client.get(f"/console/tickets/{public_id}").text
    assert "<script>window.pwned" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page


def test_audit_never_stores_secrets(db_url) -> None:
    with session_scope(db_url) as session:
        audit(session, "system", "staff.password_reset", "staff:ana", {"password": "hunter2hunter2", "ok": 1})
    with session_scope(db_url) as session:
        detail = session.query(AuditLog).one().detail
    assert detail == {"password": "[withheld]", "ok": 1}


def test_the_api_app_serves_the_console(db_url) -> None:
    app = create_app(Runtime(make_settings(db_url)))
    with TestClient(app) as client:
        login = client.get("/console/login")
        assert login.status_code == 200 and "Sign in" in login.text
        assert login.headers["x-frame-options"] == "DENY"
        # The API itself keeps its own behaviour (no console headers on /health).
        health = client.get("/health")
        assert health.status_code == 200 and "content-security-policy" not in health.headers
