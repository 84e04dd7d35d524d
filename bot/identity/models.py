"""Tables of the identity-linking flow: the one-time codes, and the record of every merge.

A code is never stored, only its keyed hash (``bot.identity.linking``): a copy
of the database does not let anyone finish someone else's link.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.store.db import Base
from bot.store.models import ChannelIdentity
from bot.store.types import UTCDateTime, utcnow

# pending: may still be typed; used: linked; exhausted: too many wrong tries;
# expired: typed too late; superseded: the citizen asked for a newer code.
LINK_CODE_STATUSES: tuple[str, ...] = ("pending", "used", "exhausted", "expired", "superseded")


class LinkCode(Base):
    __tablename__ = "link_codes"
    __table_args__ = (
        CheckConstraint(
            f"status IN ({', '.join(repr(s) for s in LINK_CODE_STATUSES)})", name="status"
        ),
        # The requester's latest code, and how many they asked for in the last hour.
        Index(None, "identity_id", "created_at"),
        # How many codes an address received in the last hour (no mail-bombing through us).
        Index(None, "target_identity_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The identity that asked; the code works only when typed there.
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"))
    # The channel and address the code was sent to (created unlinked if it was new).
    target_identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Wrong codes typed against this one.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The outbound message that carried the code.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))

    identity: Mapped[ChannelIdentity] = relationship(foreign_keys=[identity_id])
    target_identity: Mapped[ChannelIdentity] = relationship(foreign_keys=[target_identity_id])


class CitizenMerge(Base):
    """Two citizen records became one; enough is kept to split them again by hand."""

    __tablename__ = "citizen_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kept_citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    # Left in place with no identities, messages or tickets.
    merged_citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    # "citizen" when proven by a code; a staff actor for a future manual merge.
    actor: Mapped[str] = mapped_column(String(64))
    link_code_id: Mapped[int | None] = mapped_column(ForeignKey("link_codes.id"))
    # Ids of the identities that moved; their messages and tickets are found by identity_id.
    moved_identity_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    identities_moved: Mapped[int] = mapped_column(Integer, default=0)
    messages_moved: Mapped[int] = mapped_column(Integer, default=0)
    tickets_moved: Mapped[int] = mapped_column(Integer, default=0)


# What a citizen may agree to; the law needs consent for these, not for answering their messages.
# A purpose may name a topic after a colon ("announcements:waste") for subscriptions by topic.
# "vulnerability_record": the city may keep on the citizen's record that they are vulnerable, so
# that their new tickets get the shorter commitment (health data: explicit consent).
CONSENT_PURPOSES: tuple[str, ...] = ("notifications", "announcements", "vulnerability_record")


class Consent(Base):
    """One consent to one purpose: given at a time on a channel, maybe withdrawn later.

    Rows are never updated except to set the withdrawal, and never deleted by the assistant:
    they are the city's evidence of what the citizen agreed to, and when. Giving again after a
    withdrawal adds a new row."""

    __tablename__ = "consents"
    __table_args__ = (
        # "Does this citizen currently agree to this purpose?"
        Index(None, "citizen_id", "purpose", "withdrawn_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"))
    purpose: Mapped[str] = mapped_column(String(64))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The channel it was given on and how ("command:notify me", "console:<username>").
    channel: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(200))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_channel: Mapped[str | None] = mapped_column(String(32))
    withdrawn_source: Mapped[str | None] = mapped_column(String(200))
