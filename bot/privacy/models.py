"""A citizen's request over a channel ("my data", "erase my data") awaiting its one-time code.

Like a link code (``bot.identity.linking``), the code is stored only as a keyed hash and
works only on the identity that asked; the download token of an export is stored only
as a SHA-256, so a copy of the database gives neither a code nor a download.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base
from bot.store.types import UTCDateTime, in_list, utcnow

EXPORT, ERASE = "export", "erase"
KINDS: tuple[str, ...] = (EXPORT, ERASE)
# pending: the code may still be typed; confirmed: done (exported or erased);
# exhausted: too many wrong codes; expired: typed too late; superseded: a newer request.
PENDING, CONFIRMED, EXHAUSTED, EXPIRED, SUPERSEDED = "pending", "confirmed", "exhausted", "expired", "superseded"
STATUSES: tuple[str, ...] = (PENDING, CONFIRMED, EXHAUSTED, EXPIRED, SUPERSEDED)


class PrivacyRequest(Base):
    __tablename__ = "privacy_requests"
    __table_args__ = (
        CheckConstraint(in_list("kind", KINDS), name="kind"),
        CheckConstraint(in_list("status", STATUSES), name="status"),
        # The requester's latest request, and how many it made in the last hour.
        Index(None, "identity_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    # The identity that asked: the code works only when typed there.
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"))
    # Where the code (and, for an export, the download link) went: an identity of the same citizen.
    target_identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # An export's one-time download: SHA-256 of the token in the link, its deadline, when it was used.
    download_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    download_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The outbound messages that carried the code and the link: their texts are blanked once
    # the code or the link is spent, so the store does not keep a usable copy.
    code_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    link_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
