"""Managing staff accounts: create, change role and departments, deactivate, reset a password.

Shared by the admin pages and ``python -m bot console create-admin``. Each
change is audited. The last active admin cannot be demoted or deactivated, so
the console can never lock out everyone able to manage it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.console.auth import end_all_sessions, normalise_username
from bot.console.passwords import check_policy, hash_password
from bot.staff.audit import audit
from bot.staff.models import ADMIN, ROLES, StaffDepartment, StaffUser
from bot.store.types import utcnow

if TYPE_CHECKING:
    from bot.console.auth import CurrentStaff

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# Enough to catch a typo; the mail server is the judge of the rest.
EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


class StaffError(ValueError):
    """A change the rules refuse; the message is for the admin."""


def _departments(departments: Iterable[str], known: Iterable[str]) -> list[str]:
    known_set = set(known)
    chosen = sorted(set(departments))
    unknown = [d for d in chosen if d not in known_set]
    if unknown:
        raise StaffError(f"unknown department(s): {', '.join(unknown)}")
    return chosen


def _active_admins(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(StaffUser.role == ADMIN, StaffUser.active.is_(True))) or 0)


def create_staff(
    session: Session,
    actor: CurrentStaff | str,
    *,
    username: str,
    display_name: str,
    password: str,
    role: str,
    departments: Iterable[str] = (),
    known_departments: Iterable[str] = (),
) -> StaffUser:
    name = normalise_username(username)
    if not USERNAME.match(name):
        raise StaffError(
            "the username must be 2 to 64 characters: lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if role not in ROLES:
        raise StaffError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if session.scalar(select(StaffUser.id).where(StaffUser.username == name)) is not None:
        raise StaffError(f"the username {name!r} is taken")
    check_policy(password, username=name)  # WeakPassword is a ValueError with its own message
    chosen = _departments(departments, known_departments)
    user = StaffUser(
        username=name,
        display_name=(display_name.strip() or name)[:200],
        password_hash=hash_password(password),
        role=role,
        active=True,
        created_at=utcnow(),
        password_changed_at=utcnow(),
        memberships=[StaffDepartment(department=d) for d in chosen],
    )
    session.add(user)
    session.flush()
    audit(session, actor, "staff.create", f"staff:{name}", {"role": role, "departments": chosen})
    return user


def update_staff(
    session: Session,
    actor: CurrentStaff,
    user: StaffUser,
    *,
    display_name: str,
    role: str,
    departments: Iterable[str],
    active: bool,
    known_departments: Iterable[str],
    email: str | None = None,
) -> dict[str, object]:
    """Apply the admin form; returns what changed (also written to the audit log).

    ``email`` (where their commitment alerts go): None leaves it as it is, "" removes it.
    """
    if role not in ROLES:
        raise StaffError(f"unknown role {role!r}")
    new_email = user.email
    if email is not None:
        new_email = email.strip() or None
        if new_email is not None and (len(new_email) > 254 or not EMAIL.match(new_email)):
            raise StaffError(f"{new_email!r} does not look like an e-mail address")
    chosen = _departments(departments, known_departments)
    losing_admin = user.role == ADMIN and user.active and (role != ADMIN or not active)
    if losing_admin and _active_admins(session) <= 1:
        raise StaffError("this is the last active admin; make someone else an admin first")
    changes: dict[str, object] = {}
    display_name = (display_name.strip() or user.username)[:200]
    if display_name != user.display_name:
        changes["display_name"] = [user.display_name, display_name]
        user.display_name = display_name
    if new_email != user.email:
        changes["email"] = [user.email, new_email]
        user.email = new_email
    if role != user.role:
        changes["role"] = [user.role, role]
        user.role = role
    if chosen != user.departments:
        changes["departments"] = [user.departments, chosen]
        keep = [m for m in user.memberships if m.department in chosen]
        have = {m.department for m in keep}
        user.memberships = keep + [StaffDepartment(department=d) for d in chosen if d not in have]
    if active != user.active:
        changes["active"] = [user.active, active]
        user.active = active
        if not active:
            end_all_sessions(session, user.id)
    if changes:
        action = "staff.deactivate" if changes.get("active") == [True, False] else "staff.update"
        audit(session, actor, action, f"staff:{user.username}", changes)
    session.flush()
    return changes


def reset_password(session: Session, actor: CurrentStaff | str, user: StaffUser, password: str) -> None:
    check_policy(password, username=user.username)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    end_all_sessions(session, user.id)
    audit(session, actor, "staff.password_reset", f"staff:{user.username}")
    session.flush()


def all_staff(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.username)))
