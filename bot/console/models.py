"""The console's tables: staff, their sessions and sign-in attempts, the audit log, departments' commitments.

Session tokens and passwords are never stored: a session row holds the SHA-256
of its token (a stolen database dump cannot be replayed as a cookie), a staff
row an argon2 hash. Sign-in attempts are rows rather than an in-memory counter
so that the limit holds across API workers and restarts.
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


class StaffSession(Base):
    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SHA-256 (hex) of the cookie's token.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Absolute end, however active the session is.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    csrf_token: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class SignInAttempt(Base):
    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        Index(None, "username", "at"),
        Index(None, "ip", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # As typed (lowercased), whether or not such a user exists.
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)


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


class DepartmentSetting(Base):
    """A department from the KB's list, with the commitment an admin set for it (None: the default)."""

    __tablename__ = "department_settings"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    response_commitment_hours: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
