"""Signing staff in and out, server-side sessions, CSRF, and the ``require_staff`` dependency.

A session is a random token in an HttpOnly, SameSite=Strict cookie; the
database keeps only its SHA-256, so the session table is worthless to a thief.
Sessions end after an idle period and after an absolute lifetime, and at once
when the account is deactivated or its password reset. Each session has its own
CSRF token: every request that changes something must carry it (form field or
header), and a cross-origin ``Origin`` is refused outright.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.console.models import SignInAttempt, StaffSession
from bot.console.passwords import burn_time, hash_password, needs_rehash, verify_password
from bot.http_security import client_ip
from bot.settings import Settings
from bot.staff.audit import audit
from bot.staff.models import ADMIN, AGENT, ROLES, SUPERVISOR, StaffUser
from bot.store.types import utcnow

COOKIE = "crm_console"
LOGIN_COOKIE = "crm_console_login"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Writing last_seen_at on every request would make every page view a write.
_TOUCH_EVERY = timedelta(seconds=60)


class ConsoleError(Exception):
    """An error page (or JSON error for fetch calls) with a status and a message for staff."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NotSignedIn(Exception):
    """No valid session: pages redirect to the sign-in form, fetch calls get 401."""


def role_rank(role: str) -> int:
    return ROLES.index(role)


@dataclass(frozen=True)
class CurrentStaff:
    """The signed-in member of staff, detached from any database session."""

    user_id: int
    username: str
    display_name: str
    role: str
    departments: frozenset[str]
    csrf_token: str
    session_id: int
    ip: str = ""

    @property
    def actor(self) -> str:
        """How tickets and messages name this person ("agent:<username>")."""
        return f"agent:{self.username}"

    @property
    def is_supervisor(self) -> bool:
        return role_rank(self.role) >= role_rank(SUPERVISOR)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def sees_all_departments(self) -> bool:
        return self.is_supervisor

    def can_see(self, department: str) -> bool:
        return self.sees_all_departments or department in self.departments

    def visible_departments(self, all_codes: list[str]) -> list[str]:
        return [code for code in all_codes if self.can_see(code)]

    def has_role(self, role: str) -> bool:
        return role_rank(self.role) >= role_rank(role)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def normalise_username(username: str) -> str:
    return username.strip().lower()[:64]


# --- signing in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    token: str
    user_id: int
    username: str


class SignInRefused(Exception):
    def __init__(self, message: str, *, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.rate_limited = rate_limited


WRONG_CREDENTIALS = "Wrong username or password."


def _recent_failures(session: Session, column, value: str, since: datetime) -> tuple[int, datetime | None]:
    count, oldest = session.execute(
        select(func.count(), func.min(SignInAttempt.at)).where(
            column == value, SignInAttempt.at >= since, SignInAttempt.succeeded.is_(False)
        )
    ).one()
    return int(count), oldest


def _rate_limit_message(oldest: datetime, window: timedelta, now: datetime) -> str:
    wait = max(1, int(((oldest + window) - now).total_seconds() // 60) + 1)
    return (
        f"Too many failed sign-in attempts. Sign-in is blocked for {wait} minute{'s' if wait != 1 else ''}; "
        "try again later or ask an administrator to reset your password."
    )


def sign_in(
    session: Session,
    settings: Settings,
    *,
    username: str,
    password: str,
    ip: str,
    user_agent: str = "",
    now: datetime | None = None,
) -> SignedIn:
    """Check the password and open a session; raises SignInRefused.

    While too many recent attempts failed for this username or from this
    address, even the right password is refused (otherwise the limit would
    only slow guessing down, not stop it). Unknown usernames cost the same
    time as known ones and get the same message.
    """
    now = now or utcnow()
    name = normalise_username(username)
    window = timedelta(minutes=settings.console_signin_window_minutes)
    since = now - window
    for column, value, limit in (
        (SignInAttempt.username, name, settings.console_signin_max_failures),
        (SignInAttempt.ip, ip, settings.console_signin_max_failures_per_ip),
    ):
        count, oldest = _recent_failures(session, column, value, since)
        if count >= limit:
            audit(session, "anonymous", "auth.sign_in_blocked", f"staff:{name}", {"failures": count}, ip=ip, now=now)
            raise SignInRefused(_rate_limit_message(oldest, window, now), rate_limited=True)

    user = session.scalars(select(StaffUser).where(StaffUser.username == name)).one_or_none()
    if user is None or not user.active:
        burn_time(password)
        ok = False
    else:
        ok = verify_password(user.password_hash, password)
    session.add(SignInAttempt(username=name, ip=ip[:64], at=now, succeeded=ok))
    if not ok:
        session.flush()
        raise SignInRefused(WRONG_CREDENTIALS)

    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    token = create_session(session, user, settings, ip=ip, user_agent=user_agent, now=now)
    audit(session, user, "auth.sign_in", f"staff:{user.username}", ip=ip, now=now)
    _forget_old_rows(session, now, window)
    session.flush()
    return SignedIn(token=token, user_id=user.id, username=user.username)


def _forget_old_rows(session: Session, now: datetime, window: timedelta) -> None:
    """Expired sessions and attempts older than any window are dead weight (and personal data)."""
    session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
    session.execute(delete(SignInAttempt).where(SignInAttempt.at < now - max(window, timedelta(days=1))))


# --- sessions --------------------------------------------------------------------------------


def create_session(
    session: Session, user: StaffUser, settings: Settings, *, ip: str = "", user_agent: str = "",
    now: datetime | None = None,
) -> str:
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_hash=hash_token(token),
            staff_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.console_session_max_hours),
            csrf_token=secrets.token_urlsafe(32),
            ip=ip[:64] or None,
            user_agent=user_agent[:300] or None,
        )
    )
    return token


def load_session(
    session: Session, settings: Settings, token: str, *, ip: str = "", now: datetime | None = None
) -> CurrentStaff | None:
    """The staff member of a live session, or None (and the session removed) if it expired."""
    now = now or utcnow()
    row = session.scalars(select(StaffSession).where(StaffSession.token_hash == hash_token(token))).one_or_none()
    if row is None:
        return None
    user = session.get(StaffUser, row.staff_id)
    idle = timedelta(minutes=settings.console_session_idle_minutes)
    if user is None or not user.active or now >= row.expires_at or now - row.last_seen_at >= idle:
        session.delete(row)
        return None
    if now - row.last_seen_at >= _TOUCH_EVERY:
        row.last_seen_at = now
    return CurrentStaff(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        departments=frozenset(user.departments),
        csrf_token=row.csrf_token,
        session_id=row.id,
        ip=ip,
    )


def end_session(session: Session, token: str) -> None:
    session.execute(delete(StaffSession).where(StaffSession.token_hash == hash_token(token)))


def end_all_sessions(session: Session, staff_id: int) -> None:
    """After a deactivation or password reset, nobody may stay signed in with the old account."""
    session.execute(delete(StaffSession).where(StaffSession.staff_id == staff_id))


def set_session_cookie(response, token: str, settings: Settings) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(settings.console_session_max_hours * 3600),
        path=COOKIE_PATH,
        httponly=True,
        secure=settings.console_cookie_secure,
        samesite="strict",
    )


def clear_session_cookie(response, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, httponly=True, secure=settings.console_cookie_secure, samesite="strict"
    )


# --- CSRF ------------------------------------------------------------------------------------


def _same_origin(origin: str, request: Request) -> bool:
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc.lower() == (request.headers.get("host") or "").lower()


async def submitted_csrf_token(request: Request) -> str | None:
    token = request.headers.get(CSRF_HEADER)
    if token:
        return token
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # cached by Starlette: the route reads the same form
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_request_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None and not _same_origin(origin, request):
        raise ConsoleError(403, "Cross-site request refused.")


async def check_csrf(request: Request, expected: str) -> None:
    await check_request_origin(request)
    token = await submitted_csrf_token(request)
    if not token or not secrets.compare_digest(token.encode(), expected.encode()):
        raise ConsoleError(
            403, "This form has expired or did not come from the console. Reload the page and try again."
        )


# --- the dependency --------------------------------------------------------------------------


def require_staff(role: str = AGENT):
    """Dependency factory: the signed-in staff member with at least ``role``; checks CSRF on writes."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")

    async def dependency(request: Request) -> CurrentStaff:
        ctx = request.app.state.console
        token = request.cookies.get(COOKIE)
        staff = None
        if token:
            ip = client_ip(request)

            def load() -> CurrentStaff | None:
                with ctx.sessions.begin() as session:
                    return load_session(session, ctx.settings, token, ip=ip)

            staff = await run_in_threadpool(load)
        if staff is None:
            raise NotSignedIn()
        request.state.staff = staff
        if request.method not in SAFE_METHODS:
            await check_csrf(request, staff.csrf_token)
        if not staff.has_role(role):
            raise ConsoleError(403, f"This page is for the {role} role and above.")
        return staff

    dependency.__name__ = f"require_staff_{role}"
    return dependency
