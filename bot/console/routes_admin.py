"""Admin pages: staff accounts, the departments' response commitments, and the model history."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request

from bot.console.auth import ConsoleError, CurrentStaff, require_staff
from bot.console.context import ConsoleContext, get_context
from bot.console.staff import StaffError, all_staff, create_staff, reset_password, update_staff
from bot.console.web import redirect, render
from bot.modelbuilds import service as model_history
from bot.staff.audit import audit
from bot.staff.departments import list_departments, set_commitment, sync_departments
from bot.staff.models import ROLES, StaffUser

router = APIRouter()
admin = require_staff("admin")

DONE = {
    "created": "Account created.",
    "updated": "Account updated.",
    "password": "Password reset; the account's sessions were ended.",
    "commitment": "Response commitment saved.",
}


def _department_names(ctx: ConsoleContext) -> dict[str, str]:
    return {code: d.name for code, d in ctx.kb().departments.items()}


def _staff_page(request: Request, staff: CurrentStaff, ctx: ConsoleContext, *, error: str | None = None,
                form: dict | None = None, status_code: int = 200):
    with ctx.sessions() as session:
        return render(
            request,
            "admin_staff.html",
            {
                "users": all_staff(session),
                "roles": ROLES,
                "departments": _department_names(ctx),
                "error": error,
                "form": form or {},
                "done": DONE.get(request.query_params.get("done", "")),
            },
            staff=staff,
            status_code=status_code,
        )


@router.get("/console/admin/staff", include_in_schema=False)
def staff_list(request: Request, staff: CurrentStaff = Depends(admin), ctx: ConsoleContext = Depends(get_context)):
    return _staff_page(request, staff, ctx)


@router.post("/console/admin/staff", include_in_schema=False)
def staff_create(
    request: Request,
    username: str = Form(""),
    display_name: str = Form(""),
    password: str = Form(""),
    role: str = Form("agent"),
    departments: list[str] = Form([]),
    staff: CurrentStaff = Depends(admin),
    ctx: ConsoleContext = Depends(get_context),
):
    try:
        with ctx.sessions.begin() as session:
            create_staff(
                session, staff, username=username, display_name=display_name, password=password, role=role,
                departments=departments, known_departments=_department_names(ctx),
            )
    except ValueError as exc:  # StaffError, WeakPassword
        form = {"username": username, "display_name": display_name, "role": role, "departments": departments}
        return _staff_page(request, staff, ctx, error=f"Not created: {exc}.", form=form, status_code=400)
    return redirect("/console/admin/staff?done=created")


def _user(session, user_id: int) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise ConsoleError(404, "There is no such account.")
    return user


def _edit_page(request: Request, staff: CurrentStaff, ctx: ConsoleContext, user_id: int, *,
               error: str | None = None, status_code: int = 200):
    with ctx.sessions() as session:
        user = _user(session, user_id)
        return render(
            request,
            "admin_staff_edit.html",
            {
                "user": user,
                "roles": ROLES,
                "departments": _department_names(ctx),
                "error": error,
                "done": DONE.get(request.query_params.get("done", "")),
            },
            staff=staff,
            status_code=status_code,
        )


@router.get("/console/admin/staff/{user_id}", include_in_schema=False)
def staff_edit(request: Request, user_id: int, staff: CurrentStaff = Depends(admin),
               ctx: ConsoleContext = Depends(get_context)):
    return _edit_page(request, staff, ctx, user_id)


@router.post("/console/admin/staff/{user_id}", include_in_schema=False)
def staff_update(
    request: Request,
    user_id: int,
    display_name: str = Form(""),
    role: str = Form("agent"),
    departments: list[str] = Form([]),
    active: str = Form(""),
    email: str | None = Form(None),
    staff: CurrentStaff = Depends(admin),
    ctx: ConsoleContext = Depends(get_context),
):
    try:
        with ctx.sessions.begin() as session:
            update_staff(
                session, staff, _user(session, user_id), display_name=display_name, role=role,
                departments=departments, active=active in ("1", "on", "true"),
                known_departments=_department_names(ctx), email=email,
            )
    except StaffError as exc:
        return _edit_page(request, staff, ctx, user_id, error=f"Not saved: {exc}.", status_code=400)
    return redirect(f"/console/admin/staff/{user_id}?done=updated")


@router.post("/console/admin/staff/{user_id}/password", include_in_schema=False)
def staff_password(
    request: Request,
    user_id: int,
    password: str = Form(""),
    staff: CurrentStaff = Depends(admin),
    ctx: ConsoleContext = Depends(get_context),
):
    try:
        with ctx.sessions.begin() as session:
            reset_password(session, staff, _user(session, user_id), password)
    except ValueError as exc:
        return _edit_page(request, staff, ctx, user_id, error=f"Password not reset: {exc}.", status_code=400)
    return redirect(f"/console/admin/staff/{user_id}?done=password")


def _departments_page(request: Request, staff: CurrentStaff, ctx: ConsoleContext, *, error: str | None = None,
                      status_code: int = 200):
    kb = ctx.kb()
    with ctx.sessions.begin() as session:
        sync_departments(session, kb)
        departments = list_departments(session, kb, ctx.settings)
    return render(
        request,
        "admin_departments.html",
        {
            "departments": departments,
            "default_hours": ctx.settings.response_commitment_hours,
            "urgent_hours": ctx.settings.urgent_commitment_hours,
            "error": error,
            "done": DONE.get(request.query_params.get("done", "")),
        },
        staff=staff,
        status_code=status_code,
    )


@router.get("/console/admin/departments", include_in_schema=False)
def departments_page(request: Request, staff: CurrentStaff = Depends(admin),
                     ctx: ConsoleContext = Depends(get_context)):
    return _departments_page(request, staff, ctx)


@router.post("/console/admin/departments/{code}", include_in_schema=False)
def department_update(
    request: Request,
    code: str,
    hours: str = Form(""),
    staff: CurrentStaff = Depends(admin),
    ctx: ConsoleContext = Depends(get_context),
):
    kb = ctx.kb()
    if code not in kb.departments:
        raise ConsoleError(404, "There is no such department.")
    try:
        value = float(hours.replace(",", ".")) if hours.strip() else None
        with ctx.sessions.begin() as session:
            previous = set_commitment(session, kb, code, value)
            if previous != value:
                audit(session, staff, "department.commitment", f"department:{code}", {"from": previous, "to": value})
    except ValueError as exc:
        message = str(exc) if "commitment" in str(exc) else "the hours must be a number"
        return _departments_page(request, staff, ctx, error=f"Not saved: {message}.", status_code=400)
    return redirect("/console/admin/departments?done=commitment")


@router.get("/console/admin/model", include_in_schema=False)
def model_page(request: Request, staff: CurrentStaff = Depends(admin), ctx: ConsoleContext = Depends(get_context)):
    """What the learning loop did: the model the assistant runs, its switches, the training requests."""
    with ctx.sessions() as session:
        switches = model_history.history(session, limit=15)
        builds = model_history.recent_builds(session, limit=15)
        return render(request, "admin_model.html",
                      {"active": switches[0] if switches else None, "switches": switches, "builds": builds},
                      staff=staff)
