"""Linking a citizen's identities on different channels, only when they prove it.

The citizen asks on one channel (``/link email ana@example.org``); a 6-digit
code goes to that address on that channel; typing the code where they asked
proves they hold both, and the two citizen records become one
(``bot.identity.merge``). Nothing is ever linked by matching names or numbers.

What keeps it safe:
- the code is stored only as an HMAC keyed by a server secret, and the key
  also covers the requesting identity, so a code works only where it was asked;
- 15 minutes, 5 wrong tries, single use; a new request voids the older code;
- at most 3 requests per identity and 5 codes per target address an hour, so
  the city's channels cannot be used to flood someone;
- the reply to a request is the same whether or not the address is known to us.

Service functions take a session and never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.identity.addresses import LINKABLE_CHANNELS, label, normalize_address
from bot.identity.commands import EnterCode, LinkUsage, RequestCode, parse_link_command
from bot.identity.merge import merge_citizens
from bot.identity.models import CitizenMerge, LinkCode
from bot.outbox.delivery import queue_outbound
from bot.settings import Settings
from bot.store.citizens import get_or_create_identity
from bot.store.messages import record_handling
from bot.store.models import ChannelIdentity, Message
from bot.store.types import utcnow
from bot.texts import text

CODE_TTL = timedelta(minutes=15)
MAX_WRONG_CODES = 5
REQUESTS_PER_HOUR = 3
CODES_PER_TARGET_PER_HOUR = 5
# Six bare digits count as a code attempt while the citizen's last code is this recent
# (so a late code still gets "expired" instead of going to the assistant).
BARE_CODE_WINDOW = timedelta(hours=24)

HANDLING = "identity_link"

PENDING, USED, EXHAUSTED, EXPIRED, SUPERSEDED = "pending", "used", "exhausted", "expired", "superseded"



@dataclass(frozen=True)
class LinkOutcome:
    # code_sent, already_linked, same_address, rate_limited, target_busy, channel_off, bad_address,
    # usage, linked, wrong_code, code_dead, expired, no_code
    kind: str
    reply: str
    merge: CitizenMerge | None = None
    link_code: LinkCode | None = None


def _key(settings: Settings) -> bytes:
    secret = settings.link_code_secret or settings.api_keys
    return hashlib.sha256(b"crm link code\x00" + secret.get_secret_value().encode()).digest()


def hash_code(settings: Settings, identity_id: int, code: str) -> str:
    return hmac.new(_key(settings), f"{identity_id}:{code}".encode(), hashlib.sha256).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def latest_code(session: Session, identity: ChannelIdentity, *, for_update: bool = False) -> LinkCode | None:
    query = (
        select(LinkCode)
        .where(LinkCode.identity_id == identity.id)
        .order_by(LinkCode.created_at.desc(), LinkCode.id.desc())
        .limit(1)
    )
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def awaits_code(session: Session, identity: ChannelIdentity, *, now: datetime | None = None) -> bool:
    """Whether six bare digits from this identity are an attempt at its code."""
    now = now or utcnow()
    code = latest_code(session, identity)
    return code is not None and code.status == PENDING and code.created_at > now - BARE_CODE_WINDOW


def _count_since(session: Session, column, value: int, since: datetime) -> int:
    return session.scalar(select(func.count()).select_from(LinkCode).where(column == value, LinkCode.created_at > since))


def _usage() -> LinkOutcome:
    return LinkOutcome("usage", text("link.usage"))


def _code_text(code: str, requester: ChannelIdentity, target: ChannelIdentity) -> str:
    minutes = int(CODE_TTL.total_seconds() // 60)
    return text("link.code", code=code, target_label=label(target.channel), requester_label=label(requester.channel),
                minutes=minutes)


def request_code(
    session: Session,
    requester: ChannelIdentity,
    channel: str,
    raw_address: str,
    *,
    settings: Settings,
    now: datetime | None = None,
) -> LinkOutcome:
    """Send a one-time code to ``raw_address`` on ``channel`` for ``requester`` to type."""
    now = now or utcnow()
    if channel not in LINKABLE_CHANNELS:
        return _usage()
    # The settings say which channels are on; identity sits below the channels and never loads them.
    if not getattr(settings, f"{channel}_enabled", False):
        return LinkOutcome(
            "channel_off",
            text("link.channel_off", channel=text(f"link.channel_name.{channel}")),
        )
    address = normalize_address(channel, raw_address)
    if address is None:
        return LinkOutcome("bad_address", text(f"link.bad_address.{channel}", label=label(channel)))
    if (channel, address) == (requester.channel, requester.address):
        return LinkOutcome("same_address", text("link.same_address", label=label(channel)))
    # Serialise one identity's requests so that two at once cannot both slip under the limit.
    session.execute(select(ChannelIdentity.id).where(ChannelIdentity.id == requester.id).with_for_update())
    if _count_since(session, LinkCode.identity_id, requester.id, now - timedelta(hours=1)) >= REQUESTS_PER_HOUR:
        return LinkOutcome(
            "rate_limited",
            text("link.rate_limited", limit=REQUESTS_PER_HOUR),
        )
    target = get_or_create_identity(session, channel, address)
    if target.citizen_id == requester.citizen_id:
        return LinkOutcome("already_linked", text("link.already_linked", address=address))
    if _count_since(session, LinkCode.target_identity_id, target.id, now - timedelta(hours=1)) >= CODES_PER_TARGET_PER_HOUR:
        return LinkOutcome(
            "target_busy", text("link.target_busy", address=address)
        )

    session.execute(
        update(LinkCode)
        .where(LinkCode.identity_id == requester.id, LinkCode.status == PENDING)
        .values(status=SUPERSEDED)
        .execution_options(synchronize_session=False)
    )
    code = new_code()
    link_code = LinkCode(
        identity_id=requester.id,
        target_identity_id=target.id,
        code_hash=hash_code(settings, requester.id, code),
        created_at=now,
        expires_at=now + CODE_TTL,
        attempts=0,
        status=PENDING,
    )
    session.add(link_code)
    session.flush()
    message = queue_outbound(
        session,
        identity=target,
        text=_code_text(code, requester, target),
        author="assistant",
        meta={"kind": "link_code", "subject": text("link.code_subject")},
        now=now,
    )
    link_code.message_id = message.id
    session.flush()
    minutes = int(CODE_TTL.total_seconds() // 60)
    return LinkOutcome(
        "code_sent",
        text("link.code_sent", address=address, label=label(channel), minutes=minutes,
             requester_label=label(requester.channel)),
        link_code=link_code,
    )


def confirm_code(
    session: Session, requester: ChannelIdentity, code: str, *, settings: Settings, now: datetime | None = None
) -> LinkOutcome:
    """Check a typed code against the requester's latest one and link on success."""
    now = now or utcnow()
    link_code = latest_code(session, requester, for_update=True)
    if link_code is None or link_code.status != PENDING:
        return LinkOutcome(
            "no_code",
            text("link.no_code"),
        )
    target = link_code.target_identity
    again = {"channel": target.channel, "address": target.address}
    if now >= link_code.expires_at:
        link_code.status = EXPIRED
        return LinkOutcome("expired", text("link.expired", minutes=int(CODE_TTL.total_seconds() // 60), **again),
                           link_code=link_code)
    if not hmac.compare_digest(link_code.code_hash, hash_code(settings, requester.id, code)):
        link_code.attempts += 1
        left = MAX_WRONG_CODES - link_code.attempts
        if left <= 0:
            link_code.status = EXHAUSTED
            return LinkOutcome(
                "code_dead",
                text("link.code_dead", max_tries=MAX_WRONG_CODES, **again),
                link_code=link_code,
            )
        wrong = text("link.wrong_code_one_left") if left == 1 else text("link.wrong_code", left=left)
        return LinkOutcome("wrong_code", wrong, link_code=link_code)
    link_code.status = USED
    link_code.used_at = now
    done = text("link.linked", target_label=label(target.channel), address=target.address,
                requester_label=label(requester.channel))
    if target.citizen_id == requester.citizen_id:
        return LinkOutcome("linked", done, link_code=link_code)
    merge = merge_citizens(session, requester.citizen_id, target.citizen_id, actor="citizen", link_code=link_code, now=now)
    return LinkOutcome("linked", done, merge=merge, link_code=link_code)


def handle_link_message(
    session: Session, message: Message, *, settings: Settings, now: datetime | None = None
) -> LinkOutcome | None:
    """The linking flow's answer to a citizen's inbound message, or None if it is not about linking.

    Records the message as handled by the flow. The message text (which may hold
    a code) is stored like any other and never logged.
    """
    command = parse_link_command(message.text)
    if command is None:
        return None
    identity = message.identity
    if isinstance(command, EnterCode) and not command.explicit and not awaits_code(session, identity, now=now):
        return None  # six digits that are not a code attempt: a question for the assistant
    if isinstance(command, RequestCode):
        outcome = request_code(session, identity, command.channel, command.address, settings=settings, now=now)
    elif isinstance(command, EnterCode):
        outcome = confirm_code(session, identity, command.code, settings=settings, now=now)
    else:
        assert isinstance(command, LinkUsage)
        outcome = _usage()
    record_handling(message, intent=None, confidence=None, handling=HANDLING)
    return outcome
