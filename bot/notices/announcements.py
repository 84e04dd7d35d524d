"""The city's announcements to the citizens subscribed to a topic or a department.

A supervisor composes the text, sees it as citizens will read it and how many will get it,
and confirms; then one message per citizen is queued in the outbox, to the identity they
last wrote from on a channel that can push (the web chat has no address to write to), and
spread over time at ``CRM_ANNOUNCEMENT_RATE_PER_MINUTE`` so channels' rate limits are kept.

Who: citizens holding ``announcements:<topic>`` (or, for a department, any of its topics'),
or ``announcements`` (every topic). Each message carries those purposes as its delivery
condition (bot.identity.consent), so a citizen who says "stop" before their turn gets nothing.
An announcement nobody would receive is refused and nothing is stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.identity.consent import needs_consent
from bot.identity.models import Consent
from bot.kb.loader import load_departments
from bot.kb.topics import Topic, topics
from bot.notices.commands import ANNOUNCEMENTS, purpose_of
from bot.notices.models import DEPARTMENT, TOPIC, Announcement
from bot.outbox.delivery import queue_outbound
from bot.privacy.erase import is_erased_address
from bot.settings import Settings
from bot.store.models import ChannelIdentity, Citizen, Message
from bot.store.types import utcnow
from bot.texts import resolve_language
from bot.texts import text as catalogue_text

AUTHOR = "announcement"
MAX_TEXT = 2000
# In each message's meta: the announcement it belongs to.
META_KEY = "announcement"


class AnnouncementRefused(ValueError):
    """An announcement that cannot go out as asked; the message is for the supervisor."""


@dataclass(frozen=True)
class Audience:
    kind: str  # TOPIC or DEPARTMENT
    id: str
    name: str
    # The topics it covers: a citizen subscribed to one of them (or to all) receives it.
    topics: tuple[Topic, ...]

    @property
    def purposes(self) -> list[str]:
        return [*(purpose_of(t) for t in self.topics), ANNOUNCEMENTS]


@dataclass(frozen=True)
class Recipient:
    citizen_id: int
    identity: ChannelIdentity
    # What the citizen writes to stop it: the topic they subscribed to, or "all".
    word: str
    # Citizen.language: the footer is worded in it (the supervisor's text is as written).
    language: str | None = None


@dataclass
class Preview:
    audience: Audience
    text: str
    # As the citizen reads it (with the footer telling how to stop).
    rendered: str
    recipients: list[Recipient]
    # Subscribers we cannot write to: they only used channels without push (the web chat).
    unreachable: int
    by_channel: dict[str, int] = field(default_factory=dict)
    # How long the throttled queue takes, from the first message to the last.
    spread: timedelta = timedelta(0)

    @property
    def count(self) -> int:
        return len(self.recipients)


def audiences(settings: Settings) -> list[Audience]:
    """What a supervisor can announce to: every topic, then every department that has topics."""
    found = topics(settings.kb_dir)
    departments = load_departments(settings.kb_dir).departments
    result = [Audience(TOPIC, t.id, t.name, (t,)) for t in found]
    for department_id, department in departments.items():
        own = tuple(t for t in found if t.department == department_id)
        if own:
            result.append(Audience(DEPARTMENT, department_id, department.name, own))
    return result


def find_audience(settings: Settings, kind: str, audience_id: str) -> Audience:
    for audience in audiences(settings):
        if audience.kind == kind and audience.id == audience_id:
            return audience
    raise AnnouncementRefused("Choose a topic or a department to announce to.")


def _clean_text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise AnnouncementRefused("The announcement is empty.")
    if len(text) > MAX_TEXT:
        raise AnnouncementRefused(f"The announcement is longer than {MAX_TEXT} characters.")
    return text


def render(audience: Audience, text: str, word: str, language: str | None = None) -> str:
    """The message as a citizen reads it (``language``: theirs; None: the active language)."""
    return catalogue_text("notices.announcement", language, text=text, topic=audience.name, word=word)


def recipients(session: Session, audience: Audience, channels: Collection[str]) -> tuple[list[Recipient], int]:
    """(one recipient per subscribed citizen, on the identity they last wrote from among
    ``channels``; how many subscribers have no identity on those channels)."""
    purposes = audience.purposes
    held: dict[int, set[str]] = {}
    languages: dict[int, str | None] = {}
    for citizen_id, purpose, language in session.execute(
        select(Consent.citizen_id, Consent.purpose, Citizen.language)
        .join(Citizen, Citizen.id == Consent.citizen_id)
        .where(Consent.purpose.in_(purposes), Consent.withdrawn_at.is_(None), Citizen.erased_at.is_(None))
    ):
        held.setdefault(citizen_id, set()).add(purpose)
        languages[citizen_id] = language
    if not held:
        return [], 0
    last_in = (
        select(Message.identity_id, func.max(Message.created_at).label("last_in"))
        .where(Message.direction == "in", Message.citizen_id.in_(list(held)))
        .group_by(Message.identity_id)
        .subquery()
    )
    rows = session.execute(
        select(ChannelIdentity, last_in.c.last_in)
        .outerjoin(last_in, last_in.c.identity_id == ChannelIdentity.id)
        .where(ChannelIdentity.citizen_id.in_(list(held)), ChannelIdentity.channel.in_(list(channels)))
    ).all()
    best: dict[int, tuple[tuple, ChannelIdentity]] = {}
    for identity, last in rows:
        if is_erased_address(identity.address):
            continue
        # Latest written from first; never-written-from identities last, newest first.
        key = (last is not None, last or datetime.min.replace(tzinfo=identity.created_at.tzinfo), identity.id)
        if identity.citizen_id not in best or key > best[identity.citizen_id][0]:
            best[identity.citizen_id] = (key, identity)
    topic_words = {purpose_of(t): t.id for t in audience.topics}
    found = []
    for citizen_id in sorted(best):
        word = next((topic_words[p] for p in purposes if p in held[citizen_id] and p in topic_words), "all")
        found.append(Recipient(citizen_id, best[citizen_id][1], word, languages[citizen_id]))
    return found, len(held) - len(found)


def _interval(settings: Settings) -> timedelta:
    return timedelta(seconds=60 / settings.announcement_rate_per_minute)


def preview(
    session: Session, settings: Settings, kind: str, audience_id: str, text: str, channels: Collection[str]
) -> Preview:
    audience = find_audience(settings, kind, audience_id)
    text = _clean_text(text)
    found, unreachable = recipients(session, audience, channels)
    word = audience.id if audience.kind == TOPIC else "all"
    return Preview(
        audience=audience, text=text, rendered=render(audience, text, word), recipients=found,
        unreachable=unreachable, by_channel=dict(sorted(Counter(r.identity.channel for r in found).items())),
        spread=_interval(settings) * max(0, len(found) - 1),
    )


def send(
    session: Session, settings: Settings, kind: str, audience_id: str, text: str, channels: Collection[str], *,
    created_by: str, now: datetime | None = None,
) -> tuple[Announcement, Preview]:
    """Store the announcement and queue its messages, throttled; refused when nobody would get it."""
    now = now or utcnow()
    shown = preview(session, settings, kind, audience_id, text, channels)
    if not shown.recipients:
        raise AnnouncementRefused(
            "Nobody would receive this announcement: no citizen we can write to is subscribed to "
            f"{shown.audience.name}. Nothing was sent or stored."
        )
    interval = _interval(settings)
    announcement = Announcement(
        created_at=now, created_by=created_by[:100], audience_kind=shown.audience.kind, audience=shown.audience.id,
        text=shown.text, recipients=shown.count, first_due_at=now, last_due_at=now + shown.spread,
    )
    session.add(announcement)
    session.flush()
    condition = needs_consent(shown.audience.purposes)
    for position, recipient in enumerate(shown.recipients):
        # Each citizen's footer in their language: a supervisor's send is no citizen's turn.
        language = resolve_language(recipient.language)
        message = queue_outbound(
            session, identity=recipient.identity, text=render(shown.audience, shown.text, recipient.word, language),
            author=AUTHOR, meta={META_KEY: announcement.id, **condition}, now=now,
        )
        message.language = language
        message.next_attempt_at = now + interval * position
    session.flush()
    return announcement, shown
