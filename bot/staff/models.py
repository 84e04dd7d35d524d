"""Staff, the departments they work, the commitments the city promises per department, and the audit log.

Below the console and the tickets: the action server creates tickets with a
department's deadline and may assign them without ever loading the console.
Passwords are stored only as argon2 hashes (``bot.console.passwords``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.store.db import Base
from bot.store.types import UTCDateTime, utcnow

AGENT, SUPERVISOR, ADMIN = "agent", "supervisor", "admin"
# Lowest to highest; a role has every right of the roles before it.
ROLES: tuple[str, ...] = (AGENT, SUPERVISOR, ADMIN)


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = (CheckConstraint("role IN ('agent', 'supervisor', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # Where commitment alerts for the tickets assigned to them are e-mailed; NULL: console only.
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=AGENT)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    memberships: Mapped[list[StaffDepartment]] = relationship(
        back_populates="staff", cascade="all, delete-orphan", order_by="StaffDepartment.department"
    )

    @property
    def departments(self) -> list[str]:
        return [m.department for m in self.memberships]


class StaffDepartment(Base):
    """Which department queues an agent works (supervisors and admins see all of them)."""

    __tablename__ = "staff_departments"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True)
    department: Mapped[str] = mapped_column(String(64), primary_key=True)

    staff: Mapped[StaffUser] = relationship(back_populates="memberships")


class DepartmentSetting(Base):
    """A department from the KB's list, with the commitment an admin set for it (None: the default)."""

    __tablename__ = "department_settings"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    response_commitment_hours: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditLog(Base):
    """Who did what to which ticket, user or KB entry; written in the same unit of work as the change."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index(None, "at"),
        Index(None, "target", "at"),
        Index(None, "actor", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Kept as text too: the log must still say who it was after a user is renamed or removed.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))
