"""The console's own tables: staff sign-in sessions and sign-in attempts (staff themselves are ``bot.staff``).

Session tokens are never stored: a session row holds the SHA-256 of its token
(a stolen database dump cannot be replayed as a cookie). Sign-in attempts are rows rather than an in-memory counter
so that the limit holds across API workers and restarts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base
from bot.store.types import UTCDateTime, utcnow


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
