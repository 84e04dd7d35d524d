"""Sign-in, sign-out and changing one's own password."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from bot.console.auth import (
    COOKIE,
    COOKIE_PATH,
    LOGIN_COOKIE,
    CurrentStaff,
    SignInRefused,
    check_request_origin,
    clear_session_cookie,
    end_all_sessions,
    end_session,
    load_session,
    require_staff,
    set_session_cookie,
    sign_in,
)
from bot.console.context import ConsoleContext, get_context
from bot.console.passwords import WeakPassword, check_policy, hash_password, verify_password
from bot.console.web import redirect, render, safe_next
from bot.http_security import client_ip
from bot.staff.audit import audit
from bot.staff.models import StaffUser
from bot.store.types import utcnow

router = APIRouter()


@router.get("/console", include_in_schema=False)
def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


def _login_page(request: Request, *, next_url: str, error: str | None = None, username: str = "", status: int = 200):
    """The form carries a one-off token that must match a cookie: a login CSRF needs both."""
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"login_token": token, "next_url": next_url, "error": error, "username": username},
        status_code=status,
    )
    ctx = request.app.state.console
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=3600, path=COOKIE_PATH, httponly=True,
        secure=ctx.settings.console_cookie_secure, samesite="strict",
    )
    return response


@router.get("/console/login", include_in_schema=False)
async def login_form(request: Request, next: str = "/console/", ctx: ConsoleContext = Depends(get_context)):
    token = request.cookies.get(COOKIE)
    if token:
        def still_signed_in() -> bool:
            with ctx.sessions.begin() as session:
                return load_session(session, ctx.settings, token) is not None

        if await run_in_threadpool(still_signed_in):
            return redirect(safe_next(next))
    return _login_page(request, next_url=safe_next(next))


@router.post("/console/login", include_in_schema=False)
async def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    login_token: str = Form(""),
    next: str = Form("/console/"),
    ctx: ConsoleContext = Depends(get_context),
):
    await check_request_origin(request)
    next_url = safe_next(next)
    expected = request.cookies.get(LOGIN_COOKIE) or ""
    if not login_token or not expected or not secrets.compare_digest(login_token.encode(), expected.encode()):
        return _login_page(
            request, next_url=next_url, username=username[:64], status=403,
            error="The sign-in form expired. Please try again.",
        )
    ip = client_ip(request)
    user_agent = request.headers.get("user-agent", "")

    def attempt():
        # The attempt row must be committed even when sign-in is refused: it is what the limit counts.
        with ctx.sessions() as session:
            try:
                result = sign_in(
                    session, ctx.settings, username=username, password=password, ip=ip, user_agent=user_agent
                )
            except SignInRefused as refused:
                session.commit()
                return refused
            session.commit()
            return result

    outcome = await run_in_threadpool(attempt)
    if isinstance(outcome, SignInRefused):
        return _login_page(
            request, next_url=next_url, username=username[:64], error=outcome.message,
            status=429 if outcome.rate_limited else 401,
        )
    response = redirect(next_url)
    set_session_cookie(response, outcome.token, ctx.settings)
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/console/logout", include_in_schema=False)
def logout(
    request: Request,
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    token = request.cookies.get(COOKIE, "")
    with ctx.sessions.begin() as session:
        end_session(session, token)
        audit(session, staff, "auth.sign_out", f"staff:{staff.username}")
    response = redirect("/console/login")
    clear_session_cookie(response, ctx.settings)
    return response


@router.get("/console/account", include_in_schema=False)
def account(request: Request, done: str = "", staff: CurrentStaff = Depends(require_staff())):
    return render(request, "account.html", {"error": None, "done": done == "password"}, staff=staff)


@router.post("/console/account/password", include_in_schema=False)
def change_password(
    request: Request,
    current_password: str = Form(""),
    new_password: str = Form(""),
    repeat_password: str = Form(""),
    staff: CurrentStaff = Depends(require_staff()),
    ctx: ConsoleContext = Depends(get_context),
):
    error = None
    with ctx.sessions.begin() as session:
        user = session.get(StaffUser, staff.user_id)
        if not verify_password(user.password_hash, current_password):
            error = "The current password is wrong."
        elif new_password != repeat_password:
            error = "The two new passwords differ."
        else:
            try:
                check_policy(new_password, username=user.username)
            except WeakPassword as exc:
                error = f"Not changed: {exc}."
        if error is None:
            user.password_hash = hash_password(new_password)
            user.password_changed_at = utcnow()
            # Every session ends (another browser, a stolen cookie): sign in again with the new password.
            end_all_sessions(session, user.id)
            audit(session, staff, "staff.password_changed", f"staff:{user.username}")
    if error is not None:
        return render(request, "account.html", {"error": error, "done": False}, staff=staff, status_code=400)
    response = redirect("/console/login?next=/console/account%3Fdone%3Dpassword")
    clear_session_cookie(response, ctx.settings)
    return response
