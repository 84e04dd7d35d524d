"""A citizen's own request, on any channel, for a copy of their data or its erasure.

The flow, the same on Telegram, WhatsApp, e-mail and the web chat:

1. "my data" (or "erase my data"), optionally naming another address of theirs
   ("my data email ana@example.org"), where the code should go;
2. a 6-digit code goes to that address, or comes in the reply to the identity that asked:
   on e-mail this is what proves the sender, since a reply goes to the real owner of the
   address whoever forged the From header;
3. the citizen types the code where they asked; it works only there, once, for 15
   minutes, with 5 tries, stored only as a keyed hash (``bot.identity.linking``'s keys);
4. export: a one-time download link (the token stored only as a SHA-256, valid
   ``settings.export_link_hours``) goes to the address that received the code (in the
   reply, when that is where they asked), where a
   button (never the link itself: chat apps open links for previews) downloads the zip;
   erasure: ``erase_citizen`` runs in the same unit of work, and the reply lists the tickets
   a legal hold keeps.

A named address that is not one of this citizen's gets the same reply as one that is, and
nothing is sent: the flow never tells anyone whether an address is known to the city.
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

from bot.identity.addresses import label, normalize_address
from bot.identity.linking import PENDING as LINK_PENDING
from bot.identity.linking import SUPERSEDED as LINK_SUPERSEDED
from bot.identity.linking import hash_code, new_code
from bot.identity.models import LinkCode
from bot.outbox.delivery import queue_outbound
from bot.privacy.commands import RightsCode, RightsRequest, RightsUsage, parse_rights_command
from bot.privacy.erase import ErasureReport, erase_citizen, is_erased_address
from bot.privacy.export import export_citizen, export_zip
from bot.privacy.models import (
    CONFIRMED,
    ERASE,
    EXHAUSTED,
    EXPIRED,
    EXPORT,
    PENDING,
    SUPERSEDED,
    PrivacyRequest,
)
from bot.settings import Settings
from bot.staff.audit import audit
from bot.store.citizens import find_identity
from bot.store.messages import record_handling
from bot.store.models import ChannelIdentity, Citizen, Message
from bot.store.types import utcnow
from bot.texts import DEFAULT_LANGUAGE, active_language, text

CODE_TTL = timedelta(minutes=15)
MAX_WRONG_CODES = 5
REQUESTS_PER_HOUR = 3
# Six bare digits count as a code attempt while the identity's last request is this recent.
BARE_CODE_WINDOW = timedelta(hours=24)
HANDLING = "privacy_request"
SPENT = "[spent]"


@dataclass(frozen=True)
class RightsOutcome:
    # code_sent, usage, rate_limited, code_spent, expired, code_dead, wrong_code, exported, erased
    kind: str
    reply: str
    erasure: ErasureReport | None = None
    request: PrivacyRequest | None = None
    # "code" or "link" when the reply itself carries it (the citizen asked for it here).
    secret: str | None = None


def _code_hash(settings: Settings, identity_id: int, kind: str, code: str) -> str:
    # The link codes' keyed hash, with the kind inside: a link code never confirms an erasure.
    return hash_code(settings, identity_id, f"privacy:{kind}:{code}")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _minutes() -> int:
    return int(CODE_TTL.total_seconds() // 60)


def latest_request(session: Session, identity: ChannelIdentity, *, for_update: bool = False) -> PrivacyRequest | None:
    query = (select(PrivacyRequest).where(PrivacyRequest.identity_id == identity.id)
             .order_by(PrivacyRequest.created_at.desc(), PrivacyRequest.id.desc()).limit(1))
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def _spend(session: Session, message_id: int | None) -> None:
    """The stored copy of a code or link is no use to anyone once it is spent."""
    if message_id is not None:
        message = session.get(Message, message_id)
        if message is not None:
            message.text = SPENT


def request_code(session: Session, requester: ChannelIdentity, command: RightsRequest, *, settings: Settings,
                 now: datetime) -> RightsOutcome:
    target: ChannelIdentity | None = requester
    if command.channel is not None:
        address = normalize_address(command.channel, command.address or "")
        target = find_identity(session, command.channel, address) if address is not None else None
        if target is not None and (target.citizen_id != requester.citizen_id or is_erased_address(target.address)):
            target = None  # not theirs: say the same as when it is, send nothing
        reply = text("rights.code_sent.named", address=(address or command.address or "")[:320], minutes=_minutes())
    session.execute(select(ChannelIdentity.id).where(ChannelIdentity.id == requester.id).with_for_update())
    recent = session.scalar(select(func.count()).select_from(PrivacyRequest).where(
        PrivacyRequest.identity_id == requester.id, PrivacyRequest.created_at > now - timedelta(hours=1)))
    if recent >= REQUESTS_PER_HOUR:
        return RightsOutcome("rate_limited", text("rights.rate_limited", limit=REQUESTS_PER_HOUR))
    # The newest request is the one six digits answer: older codes, link codes included, stop working.
    session.execute(update(PrivacyRequest).where(PrivacyRequest.identity_id == requester.id,
                                                 PrivacyRequest.status == PENDING)
                    .values(status=SUPERSEDED).execution_options(synchronize_session=False))
    session.execute(update(LinkCode).where(LinkCode.identity_id == requester.id, LinkCode.status == LINK_PENDING)
                    .values(status=LINK_SUPERSEDED).execution_options(synchronize_session=False))
    code = new_code()
    request = PrivacyRequest(
        kind=command.kind, citizen_id=requester.citizen_id, identity_id=requester.id,
        target_identity_id=(target or requester).id, code_hash=_code_hash(settings, requester.id, command.kind, code),
        attempts=0, status=PENDING, created_at=now, expires_at=now + CODE_TTL,
    )
    if target is None:
        # Counted against the rate limit like any request, but no code exists that could match.
        request.code_hash, request.status = "-", SUPERSEDED
    session.add(request)
    session.flush()
    if target is not None and target.id == requester.id:
        # The reply carries the code; the core hands the stored reply to remember_reply.
        reply = text("rights.code_sent.here", minutes=_minutes(), code=code)
        if command.kind == ERASE:
            reply = f"{reply}\n{text('rights.erase_warning')}"
        return RightsOutcome("code_sent", reply, request=request, secret="code")
    if command.kind == ERASE:
        reply = f"{reply} {text('rights.erase_warning')}"
    if target is not None:
        message = queue_outbound(
            session, identity=target, author="assistant",
            text=text(f"rights.code.{command.kind}", code=code, requester_label=label(requester.channel),
                      minutes=_minutes()),
            meta={"kind": "privacy_code", "subject": text(f"rights.code_subject.{command.kind}")}, now=now,
        )
        request.code_message_id = message.id
    return RightsOutcome("code_sent", reply, request=request)


def confirm_code(session: Session, requester: ChannelIdentity, code: str, *, settings: Settings,
                 now: datetime) -> RightsOutcome | None:
    request = latest_request(session, requester, for_update=True)
    if request is None:
        return None
    if request.status != PENDING:
        if hmac.compare_digest(request.code_hash, _code_hash(settings, requester.id, request.kind, code)):
            return RightsOutcome("code_spent", text("rights.code_spent"), request=request)  # a replay
        return None  # digits that answer nothing of ours: for the assistant
    if now >= request.expires_at:
        request.status = EXPIRED
        _spend(session, request.code_message_id)
        return RightsOutcome("expired", text("rights.expired", minutes=_minutes()), request=request)
    if not hmac.compare_digest(request.code_hash, _code_hash(settings, requester.id, request.kind, code)):
        request.attempts += 1
        if request.attempts >= MAX_WRONG_CODES:
            request.status = EXHAUSTED
            _spend(session, request.code_message_id)
            return RightsOutcome("code_dead", text("rights.code_dead", max_tries=MAX_WRONG_CODES), request=request)
        return RightsOutcome("wrong_code", text("rights.wrong_code", left=MAX_WRONG_CODES - request.attempts),
                             request=request)
    request.status, request.confirmed_at = CONFIRMED, now
    _spend(session, request.code_message_id)
    target = session.get(ChannelIdentity, request.target_identity_id)
    if request.kind == EXPORT:
        return _send_link(session, request, requester, target, settings=settings, now=now)
    report = erase_citizen(session, requester.citizen_id, actor="citizen",
                           reason=f"the citizen's own request, confirmed by code on {requester.channel}",
                           keep_identity_ids={requester.id}, now=now)
    if report.held:
        reply = text("rights.erased_held", ticket_ids=", ".join(h.id for h in report.held))
    else:
        reply = text("rights.erased")
    return RightsOutcome("erased", reply, erasure=report, request=request)


def _send_link(session: Session, request: PrivacyRequest, requester: ChannelIdentity, target: ChannelIdentity, *,
               settings: Settings, now: datetime) -> RightsOutcome:
    token = secrets.token_urlsafe(32)
    request.download_hash = token_hash(token)
    request.download_expires_at = now + timedelta(hours=settings.export_link_hours)
    hours = f"{settings.export_link_hours:g}"
    url = f"{settings.public_base_url}/privacy/download/{token}"
    if active_language() != DEFAULT_LANGUAGE:  # the download page opens outside the turn: tell it the language
        url = f"{url}?lang={active_language()}"
    link_text = text("rights.link", url=url, hours=hours)
    audit(session, "citizen", "privacy.export_requested", f"citizen:{_public_id(session, request.citizen_id)}",
          {"channel": requester.channel, "delivered_to": target.channel}, now=now)
    if target.id == requester.id:
        return RightsOutcome("exported", link_text, request=request, secret="link")
    link = queue_outbound(session, identity=target, author="assistant", text=link_text,
                          meta={"kind": "privacy_link", "subject": text("rights.link_subject")}, now=now)
    request.link_message_id = link.id
    return RightsOutcome("exported", text("rights.link_sent", address=target.address), request=request)


def remember_reply(outcome: RightsOutcome, reply: Message) -> None:
    """The stored reply that carries a code or a link, so that it is blanked once spent."""
    if outcome.request is not None and outcome.secret == "code":
        outcome.request.code_message_id = reply.id
    elif outcome.request is not None and outcome.secret == "link":
        outcome.request.link_message_id = reply.id


def _public_id(session: Session, citizen_id: int) -> str:
    return session.scalar(select(Citizen.public_id).where(Citizen.id == citizen_id)) or "?"


def handle_rights_message(session: Session, message: Message, *, settings: Settings,
                          now: datetime | None = None) -> RightsOutcome | None:
    """The flow's answer to an inbound message, or None when it is not for the flow.

    Records the message as handled by the flow; its text (which may hold a code) is stored
    like any other and never logged."""
    now = now or utcnow()
    command = parse_rights_command(message.text)
    if command is None:
        return None
    identity = message.identity
    if isinstance(command, RightsCode):
        recent = latest_request(session, identity)
        if recent is None or recent.created_at <= now - BARE_CODE_WINDOW:
            return None
        outcome = confirm_code(session, identity, command.code, settings=settings, now=now)
        if outcome is None:
            return None
    elif isinstance(command, RightsUsage):
        outcome = RightsOutcome("usage", text(f"rights.usage.{command.kind}"))
    else:
        outcome = request_code(session, identity, command, settings=settings, now=now)
    # Only the kind of handling: after an erasure the message's text is already "[erased]".
    record_handling(message, intent=None, confidence=None, handling=HANDLING)
    return outcome


def redeem_download(session: Session, token: str, *, now: datetime | None = None) -> tuple[bytes, str] | None:
    """The zip for a download token, once; None for an unknown, used or expired one (all alike)."""
    now = now or utcnow()
    if not token or len(token) > 200:
        return None
    request = session.scalars(select(PrivacyRequest).where(PrivacyRequest.download_hash == token_hash(token))
                              .with_for_update()).one_or_none()
    if request is None or request.download_expires_at is None or now >= request.download_expires_at:
        return None
    request.download_hash, request.downloaded_at = None, now
    _spend(session, request.link_message_id)
    bundle = export_citizen(session, request.citizen_id, now=now)
    audit(session, "citizen", "privacy.export_downloaded", f"citizen:{bundle['citizen']['id']}",
          {"messages": len(bundle["messages"]), "tickets": len(bundle["tickets"])}, now=now)
    citizen = session.get(Citizen, request.citizen_id)
    return export_zip(bundle, citizen.language if citizen is not None else None), f"my-data-{now:%Y%m%d}.zip"
