"""The privacy notice, once per identity, and the small commands about it: "privacy", "stop", "notify me".

The notice is the city's text (``CRM_PRIVACY_NOTICE``) or the catalogue's ``privacy.notice``,
with the retention periods filled in from the settings, so that what a citizen is told is what
the retention job does. Each identity (a channel address) gets it once, with its first answer:
the claim is one conditional UPDATE, so two messages racing on first contact send it once.

The commands are recognised before Rasa, like ``/link``, and only as the whole message, so a
question that merely contains "stop" ("the bus stop is broken") goes to the assistant.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.identity.consent import cancel_without_consent, current_consents, give_consent, withdraw_consent
from bot.settings import Settings
from bot.store.models import ChannelIdentity, Message
from bot.texts import template
from bot.texts import text as catalogue_text
from bot.texts.words import fold, fold_table

NOTICE_HANDLING = "privacy_notice"
# Set in the metadata of the reply that carries the notice on first contact.
NOTICE_META_KEY = "privacy_notice"
# The purpose "notify me" gives; "stop" withdraws every purpose in force.
NOTIFICATIONS = "notifications"

# Exactly these, as the whole message, in any configured language whatever the message's
# language; case, accents, surrounding spaces, an opening "¡" and a final "." or "!" do not
# matter (bot.texts.words.fold). Telegram adds "@CityBot" to a command in a group. Adding a
# language is adding its words here. "unsubscribe" alone, like "darme de baja", is "stop";
# with a topic it is bot.notices.commands'.
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "privacy": "privacy", "/privacy": "privacy",
        "stop": "stop", "/stop": "stop", "unsubscribe": "stop",
        "notify me": "give", "start": "give", "/notify": "give",
    },
    "es": {
        "privacidad": "privacy", "/privacidad": "privacy", "aviso de privacidad": "privacy",
        "baja": "stop", "/baja": "stop", "darme de baja": "stop", "dame de baja": "stop",
        "parar": "stop", "desuscribir": "stop", "desuscribirme": "stop", "no quiero mas avisos": "stop",
        "avisarme": "give", "avisame": "give", "notificarme": "give", "notificame": "give",
        "/avisar": "give", "/notificar": "give",
    },
}
_BOT_SUFFIX = re.compile(r"^(/\w+)@\w+$")


@functools.cache
def _words() -> dict[str, str]:
    return fold_table(WORDS)


@dataclass(frozen=True)
class PrivacyCommand:
    kind: str  # "privacy", "stop" or "give"
    word: str  # as recognised, normalised ("notify me"): recorded as the consent's source


def parse_privacy_command(text: str) -> PrivacyCommand | None:
    """The command a whole message is, or None (the message is for the assistant)."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    word = _BOT_SUFFIX.sub(r"\1", fold(text))
    kind = _words().get(word)
    return PrivacyCommand(kind, word) if kind is not None else None


def period_words(days: int) -> str:
    """A retention period as a citizen reads it: "2 years", "1 year", "90 days"."""
    if days % 365 == 0:
        years = days // 365
        return catalogue_text("privacy.period.year" if years == 1 else "privacy.period.years", count=years)
    return catalogue_text("privacy.period.day" if days == 1 else "privacy.period.days", count=days)


def notice_text(settings: Settings) -> str:
    """The notice as sent: the city's text or the default, periods filled in."""
    raw = settings.privacy_notice or template("privacy.notice")
    periods = {
        "conversations": period_words(settings.retention_conversation_days),
        "tickets": period_words(settings.retention_ticket_days),
        "email": period_words(settings.retention_email_days),
        "trackers": period_words(settings.retention_tracker_days),
        "audit": period_words(settings.retention_audit_days),
    }
    return raw.format_map(periods)


def notice_due(settings: Settings, identity: ChannelIdentity) -> bool:
    """Cheap check, on the identity already loaded: has this address still to get the notice?"""
    return identity.notice_sent_at is None and identity.channel in settings.privacy_notice_channel_list


def claim_notice(session: Session, identity_id: int, now: datetime) -> bool:
    """Mark the identity's notice sent; False when another message got there first."""
    claimed = session.execute(
        update(ChannelIdentity)
        .where(ChannelIdentity.id == identity_id, ChannelIdentity.notice_sent_at.is_(None))
        .values(notice_sent_at=now)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def answer_command(
    session: Session, message: Message, command: PrivacyCommand, settings: Settings, now: datetime
) -> tuple[str, str]:
    """(the reply, the message's handling) for a privacy command; consent changes in ``session``.

    "privacy" also counts as the identity's notice, so it is not sent a second time beside it."""
    if command.kind == "privacy":
        session.execute(
            update(ChannelIdentity)
            .where(ChannelIdentity.id == message.identity_id, ChannelIdentity.notice_sent_at.is_(None))
            .values(notice_sent_at=now)
            .execution_options(synchronize_session=False)
        )
        return notice_text(settings), NOTICE_HANDLING
    source = f"command:{command.word}"
    if command.kind == "give":
        _consent, given = give_consent(
            session, message.citizen_id, NOTIFICATIONS, channel=message.channel, source=source, now=now
        )
        key = "privacy.consent.given" if given else "privacy.consent.already_given"
        return catalogue_text(key), "consent_given" if given else "consent_unchanged"
    in_force = sorted(current_consents(session, message.citizen_id))
    if not in_force:
        # An unknown sender, or one who never agreed to anything: nothing to stop, nothing changes.
        return catalogue_text("privacy.consent.not_subscribed"), "consent_unchanged"
    for purpose in in_force:
        withdraw_consent(session, message.citizen_id, purpose, channel=message.channel, source=source, now=now)
    # Notices and announcements already queued for them are not sent either (bot.notices).
    cancel_without_consent(session, message.citizen_id)
    return catalogue_text("privacy.consent.withdrawn"), "consent_withdrawn"
