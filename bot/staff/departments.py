"""Departments (from the KB's list) and the response commitment an admin sets for each.

The KB's ``departments.yml`` stays the one list of departments; the table only
adds what the KB does not know: a department's own response commitment. A
department without a row, or with no hours set, uses the global default
(``CRM_RESPONSE_COMMITMENT_HOURS``). How a priority changes the commitment is
the tickets' rule (``bot.tickets.service.department_commitment``), which asks
this module for the department's own hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.staff.models import DepartmentSetting
from bot.store.types import utcnow

if TYPE_CHECKING:
    from bot.kb.schema import KnowledgeBase
    from bot.settings import Settings

# Longest commitment an admin may set: a year. Anything longer is a typo.
MAX_COMMITMENT_HOURS = 24 * 365


@dataclass(frozen=True)
class DepartmentInfo:
    code: str
    name: str
    # None: the global default applies.
    response_commitment_hours: float | None
    # What actually applies to a normal ticket.
    effective_hours: float


def own_commitment_hours(session: Session, department: str) -> float | None:
    """The hours an admin set for ``department``; None: the global default applies."""
    return session.scalar(
        select(DepartmentSetting.response_commitment_hours).where(DepartmentSetting.code == department)
    )


def sync_departments(session: Session, kb: KnowledgeBase, *, now: datetime | None = None) -> None:
    """Give every department of the KB a row (names follow the KB); rows of removed departments stay."""
    now = now or utcnow()
    rows = {row.code: row for row in session.scalars(select(DepartmentSetting))}
    for code, department in kb.departments.items():
        row = rows.get(code)
        if row is None:
            session.add(DepartmentSetting(code=code, name=department.name, updated_at=now))
        elif row.name != department.name:
            row.name = department.name
            row.updated_at = now
    session.flush()


def list_departments(session: Session, kb: KnowledgeBase, settings: Settings) -> list[DepartmentInfo]:
    """The KB's departments in the KB's order, with their commitments."""
    rows = {row.code: row for row in session.scalars(select(DepartmentSetting))}
    result = []
    for code, department in kb.departments.items():
        own = rows[code].response_commitment_hours if code in rows else None
        result.append(
            DepartmentInfo(
                code=code,
                name=department.name,
                response_commitment_hours=own,
                effective_hours=own if own is not None else settings.response_commitment_hours,
            )
        )
    return result


def set_commitment(session: Session, kb: KnowledgeBase, code: str, hours: float | None) -> float | None:
    """Set (or, with None, clear) a department's commitment; returns the previous value."""
    if code not in kb.departments:
        raise ValueError(f"unknown department {code!r}")
    if hours is not None and not (0 < hours <= MAX_COMMITMENT_HOURS):
        raise ValueError(f"the commitment must be between 0 and {MAX_COMMITMENT_HOURS} hours")
    sync_departments(session, kb)
    row = session.get(DepartmentSetting, code)
    previous = row.response_commitment_hours
    row.response_commitment_hours = hours
    row.updated_at = utcnow()
    session.flush()
    return previous
