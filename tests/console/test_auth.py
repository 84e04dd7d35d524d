"""Sign-in, sessions, rate limiting and CSRF, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.console.auth import COOKIE
from bot.console.models import SignInAttempt, StaffSession
from bot.console.passwords import WeakPassword, check_policy, hash_password, verify_password
from bot.staff.models import AuditLog, StaffUser
from bot.store.db import session_scope
from bot.store.types import utcnow
from tests.console.conftest import PASSWORD, build_app, login_form_token, make_settings, sign_in


def _post_login(client, username: str, password: str):
    return client.post(
        "/console/login",
        data={"username": username, "password": password, "login_token": login_form_token(client)},
        follow_redirects=False,
    )


def test_sign_in_sets_a_strict_httponly_cookie_and_stores_only_the_token_hash(client, make_staff, db_url) -> None:
    make_staff("ana")
    response = _post_login(client, "Ana ", PASSWORD)  # usernames are case- and space-insensitive
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/console" in lowered
    assert "secure" not in lowered.replace("samesite", "")
    token = cookie.split(";")[0].split("=", 1)[1]
    with session_scope(db_url) as session:
        row = session.scalars(select(StaffSession)).one()
        assert row.token_hash != token and len(row.token_hash) == 64
        assert [a.action for a in session.scalars(select(AuditLog))] == ["staff.create", "auth.sign_in"]
    assert client.get("/console/").status_code == 200


def test_secure_cookie_when_configured(db_url, make_staff) -> None:
    from fastapi.testclient import TestClient

    make_staff("ana")
    app = build_app(make_settings(db_url, console_cookie_secure=True))
    with TestClient(app, base_url="https://testserver") as client:
        response = _post_login(client, "ana", PASSWORD)
        cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
        assert "; secure" in cookie.lower()


def test_wrong_password_and_unknown_user_get_the_same_answer(client, make_staff) -> None:
    make_staff("ana")
    wrong = _post_login(client, "ana", "not the password at all")
    unknown = _post_login(client, "nobody", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong username or password." in wrong.text and "Wrong username or password." in unknown.text
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_deactivated_account_cannot_sign_in(client, make_staff, db_url) -> None:
    make_staff("ana")
    with session_scope(db_url) as session:
        session.execute(update(StaffUser).values(active=False))
    assert _post_login(client, "ana", PASSWORD).status_code == 401


def test_sign_in_is_blocked_after_repeated_failures_even_with_the_right_password(client, make_staff, db_url) -> None:
    make_staff("ana")
    for _ in range(5):
        assert _post_login(client, "ana", "wrong password number x").status_code == 401
    blocked = _post_login(client, "ana", PASSWORD)
    assert blocked.status_code == 429
    assert "Too many failed sign-in attempts" in blocked.text and "minutes" in blocked.text
    # Another account from the same address is not blocked by ana's failures.
    make_staff("ben")
    assert _post_login(client, "ben", PASSWORD).status_code == 303
    client.cookies.clear()
    # The window passes: ana may try again.
    with session_scope(db_url) as session:
        session.execute(update(SignInAttempt).values(at=utcnow() - timedelta(minutes=16)))
    assert _post_login(client, "ana", PASSWORD).status_code == 303
    with session_scope(db_url) as session:
        assert "auth.sign_in_blocked" in [a.action for a in session.scalars(select(AuditLog))]


def test_one_address_trying_many_usernames_is_blocked(client, make_staff) -> None:
    make_staff("ana")
    for number in range(20):
        assert _post_login(client, f"guess{number}", "wrong password number x").status_code == 401
    assert _post_login(client, "ana", PASSWORD).status_code == 429


def test_session_expires_when_idle_and_after_the_absolute_limit(client, make_staff, db_url) -> None:
    make_staff("ana")
    sign_in(client, "ana")
    with session_scope(db_url) as session:
        session.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=61)))
    response = client.get("/console/queue/waste", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Fqueue%2Fwaste"
    with session_scope(db_url) as session:
        assert session.scalars(select(StaffSession)).all() == []  # the expired session is gone

    sign_in(client, "ana")
    with session_scope(db_url) as session:
        session.execute(update(StaffSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_fetch_calls_get_401_instead_of_a_redirect(client) -> None:
    response = client.get("/console/api/queue/waste")
    assert response.status_code == 401 and response.json()["error"] == "not_signed_in"


def test_sign_out_ends_the_session_on_the_server(client, make_staff, db_url) -> None:
    make_staff("ana")
    csrf = sign_in(client, "ana")
    token = client.cookies.get(COOKIE)
    assert client.post("/console/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, token, path="/console")  # a copied cookie is worthless after sign-out
    assert client.get("/console/", follow_redirects=False).status_code == 303
    with session_scope(db_url) as session:
        assert session.scalars(select(StaffSession)).all() == []
        assert "auth.sign_out" in [a.action for a in session.scalars(select(AuditLog))]


def test_login_form_needs_its_own_token(client, make_staff) -> None:
    make_staff("ana")
    response = client.post(
        "/console/login", data={"username": "ana", "password": PASSWORD, "login_token": "forged"},
        follow_redirects=False,
    )
    assert response.status_code == 403 and "expired" in response.text


@pytest.mark.parametrize("next_url", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_no_open_redirect_after_sign_in(client, make_staff, next_url: str) -> None:
    make_staff("ana")
    response = client.post(
        "/console/login",
        data={"username": "ana", "password": PASSWORD, "login_token": login_form_token(client), "next": next_url},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/console/"


def test_state_changing_requests_need_the_csrf_token(client, make_staff, make_ticket, db_url) -> None:
    make_staff("ana")
    public_id = make_ticket("The bin was not emptied")
    csrf = sign_in(client, "ana")
    url = f"/console/tickets/{public_id}/note"
    assert client.post(url, data={"text": "no token"}).status_code == 403
    assert client.post(url, data={"text": "wrong token", "csrf_token": "x" * 43}).status_code == 403
    # A header token is accepted (fetch calls), but not from another origin.
    assert client.post(url, data={"text": "evil"}, headers={"X-CSRF-Token": csrf,
                                                             "Origin": "https://evil.example"}).status_code == 403
    assert client.post(url, data={"text": "by header"}, headers={"X-CSRF-Token": csrf},
                       follow_redirects=False).status_code == 303
    assert client.post(url, data={"text": "by form", "csrf_token": csrf}, follow_redirects=False).status_code == 303
    from bot.tickets.models import TicketEvent

    with session_scope(db_url) as session:
        notes = [e.body for e in session.scalars(select(TicketEvent).where(TicketEvent.kind == "note"))]
    assert notes == ["by header", "by form"]


def test_each_session_has_its_own_csrf_token(console_app, make_staff) -> None:
    from fastapi.testclient import TestClient

    make_staff("ana")
    with TestClient(console_app) as one, TestClient(console_app) as two:
        assert sign_in(one, "ana") != sign_in(two, "ana")


def test_changing_ones_password_signs_out_everywhere(client, make_staff, db_url) -> None:
    make_staff("ana")
    csrf = sign_in(client, "ana")
    new = "a completely different passphrase"
    response = client.post(
        "/console/account/password",
        data={"current_password": PASSWORD, "new_password": new, "repeat_password": new, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert client.get("/console/", follow_redirects=False).status_code == 303
    sign_in(client, "ana", new)
    with session_scope(db_url) as session:
        user = session.scalars(select(StaffUser)).one()
        assert verify_password(user.password_hash, new)


@pytest.mark.parametrize(
    "password",
    ["short", "password1234", "aaaaaaaaaaaaaaa", "abcdefghijklmnop", "my name is ana-maria ok", "123456789012"],
)
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_policy(password, username="ana-maria")


def test_argon2_hashes() -> None:
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$") and verify_password(hashed, PASSWORD)
    assert not verify_password(hashed, PASSWORD + "!") and not verify_password("not a hash", PASSWORD)
