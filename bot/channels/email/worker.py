"""The IMAP reader: every e-mail in the city's mailbox is stored, handled and answered once.

One pass:

1. fetch the mailbox's new UIDs (above the stored high-water mark, valid for the
   stored UIDVALIDITY) without marking them read (``BODY.PEEK[]``);
2. store each mail in ``email_inbound`` keyed by its Message-ID (a mail already
   there, fetched again after a crash, is recognised and skipped), *then* flag it
   ``\\Seen`` and move the high-water mark: nothing flagged is unstored;
3. handle every stored, unhandled row: loop-safety checks, then the mail goes to the
   core (``Conversation``) as ``InboundMessage``s: whole, with its ticket ID as a
   thread hint, when it is a reply the core will join to that ticket, otherwise one
   per question; the core escalates, joins and stores its replies, and the worker
   queues one combined reply as an outbound row in the same transaction that marks
   the row handled;
4. deliver due e-mail replies through the delivery queue.

Between passes the worker waits in IMAP IDLE when the server offers it,
otherwise it polls every ``imap_poll_seconds``.

Our own replies come back as copies (see ``sender``); they are not citizen mail:
the worker files them in the Sent folder.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.email import imap
from bot.channels.email.compose import (
    compose_combined_reply,
    find_ticket_id,
    outbound_id_from_message_id,
    reply_threading,
)
from bot.channels.email.models import FAILED, HANDLED, RECEIVED, EmailInbound, EmailMailbox
from bot.channels.email.parsing import ParsedEmail, parse_email
from bot.channels.email.quoting import strip_quoted
from bot.channels.email.safety import auto_reply_decision
from bot.channels.email.sender import domain_of
from bot.channels.email.splitting import asks_several, split_questions
from bot.core.conversation import Conversation, HandledMessage
from bot.core.inbound import InboundMessage, language_tag
from bot.outbox.delivery import DeliveryService, queue_outbound
from bot.settings import Settings
from bot.store.models import Message
from bot.store.types import utcnow
from bot.texts import override
from bot.tickets.models import Ticket

logger = logging.getLogger(__name__)

CHANNEL = "email"
SEEN = b"\\Seen"
# Handlings whose reply tells the citizen a ticket ID; everything else is an answer.
TICKET_HANDLINGS = frozenset({"escalated", "ticket_joined", "attachment_added"})
# Fetch at most this much mail per IMAP command (a 25 MB attachment comes alone).
FETCH_BYTES = 8 * 1024 * 1024
FETCH_COUNT = 50
# Message-IDs longer than this are replaced by a hash so that part keys fit the store's columns.
MAX_KEY = 200


def message_key(parsed: ParsedEmail) -> str:
    key = parsed.message_id
    if len(key) > MAX_KEY:
        key = f"<sha256-{hashlib.sha256(key.encode('utf-8', 'replace')).hexdigest()}@long-message-id.invalid>"
    return key


class EmailWorker:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        conversation: Conversation,
        delivery: DeliveryService,
        *,
        run_async: Callable[[Any], Any],
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._conversation = conversation
        self._delivery = delivery
        self._run_async = run_async
        self._address = (settings.email_address or "").strip().lower()
        self._domain = domain_of(self._address)
        self._account = f"{settings.imap_user}@{settings.imap_host}"[:320]

    # --- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: connect, pass, wait; reconnect with backoff when the server goes away."""
        delay = 1.0
        while not stop.is_set():
            try:
                client = imap.connect(self._settings)
            except (IMAPClientError, OSError) as exc:
                logger.warning("cannot open the mailbox (%s: %s); retrying in %.0f s", type(exc).__name__, exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, 60.0)
                continue
            try:
                delay = 1.0
                idle = b"IDLE" in client.capabilities()
                while not stop.is_set():
                    self.poll_once(client)
                    self._wait(client, idle, stop)
            except (IMAPClientError, OSError, OperationalError) as exc:
                logger.warning("mailbox pass interrupted (%s: %s); reconnecting", type(exc).__name__, exc)
                stop.wait(delay)
                delay = min(delay * 2, 60.0)
            except Exception:
                # A bug must not stop the mailbox from being read; whatever was stored stays queued.
                logger.exception("mailbox pass failed; reconnecting")
                stop.wait(delay)
                delay = min(delay * 2, 60.0)
            finally:
                imap.close(client)

    def _wait(self, client: IMAPClient, idle: bool, stop: threading.Event) -> None:
        """Until new mail, the poll interval, or ``stop`` (checked every second)."""
        deadline = time.monotonic() + self._settings.imap_poll_seconds
        if not idle:
            while not stop.is_set() and time.monotonic() < deadline:
                stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))
            return
        client.idle()
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                responses = client.idle_check(timeout=min(1.0, max(0.05, deadline - time.monotonic())))
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    return
        finally:
            client.idle_done()

    def poll_once(self, client: IMAPClient) -> None:
        """Store one batch, answer it, deliver; again while the mailbox has more."""
        while True:
            more = self.fetch_new(client, max_batches=1)
            self.handle_pending()
            self.deliver_due()
            if not more:
                return

    # --- 1 + 2: fetch, store, acknowledge ------------------------------------------------

    def fetch_new(self, client: IMAPClient, max_batches: int | None = None) -> bool:
        """Store new mail; True when UIDs were left for a later call."""
        folder = client.select_folder(self._settings.imap_mailbox)
        uidvalidity = int(folder[b"UIDVALIDITY"])
        mailbox_id, last_uid = self._position(uidvalidity)
        uids = sorted(uid for uid in client.search(["UID", f"{last_uid + 1}:*"]) if uid > last_uid)
        if not uids:
            return False
        sizes = client.fetch(uids[: FETCH_COUNT * (max_batches or len(uids))], ["RFC822.SIZE"])
        batches = _batches([uid for uid in uids if uid in sizes], sizes)
        for batch in batches[:max_batches]:
            bodies = client.fetch(batch, ["BODY.PEEK[]"])
            seen, own_copies = [], []
            for uid in batch:
                raw = bodies.get(uid, {}).get(b"BODY[]")
                if raw is None:  # expunged meanwhile
                    continue
                try:
                    result = self._store(mailbox_id, uidvalidity, uid, raw)
                except OperationalError:
                    raise
                except Exception as exc:
                    # Never a poison mail that blocks the mailbox: keep it as a failed row.
                    logger.exception("e-mail UID %s could not be stored normally", uid)
                    result = self._store_failed(mailbox_id, uidvalidity, uid, raw, exc)
                (own_copies if result == "own_copy" else seen).append(uid)
            if seen:
                client.add_flags(seen, [SEEN], silent=True)
            if own_copies:
                self._file_own_copies(client, own_copies)
            self._advance(mailbox_id, batch[-1])
        done = sum(len(batch) for batch in batches[:max_batches])
        return done < len(uids)

    def _position(self, uidvalidity: int) -> tuple[int, int]:
        with self._sessions.begin() as session:
            mailbox = session.scalars(
                select(EmailMailbox).where(
                    EmailMailbox.account == self._account, EmailMailbox.name == self._settings.imap_mailbox
                )
            ).one_or_none()
            if mailbox is None:
                mailbox = EmailMailbox(account=self._account, name=self._settings.imap_mailbox, last_uid=0)
                session.add(mailbox)
            if mailbox.uidvalidity != uidvalidity:
                # A new mailbox behind the same name: old UIDs mean nothing; Message-IDs still
                # recognise every mail stored before.
                if mailbox.uidvalidity is not None:
                    logger.warning("UIDVALIDITY of %s changed; re-reading it", mailbox.name)
                mailbox.uidvalidity, mailbox.last_uid, mailbox.updated_at = uidvalidity, 0, utcnow()
            session.flush()
            return mailbox.id, mailbox.last_uid

    def _advance(self, mailbox_id: int, uid: int) -> None:
        with self._sessions.begin() as session:
            mailbox = session.get(EmailMailbox, mailbox_id)
            if uid > mailbox.last_uid:
                mailbox.last_uid, mailbox.updated_at = uid, utcnow()

    def _is_own_copy(self, parsed: ParsedEmail) -> bool:
        return (
            parsed.from_address == self._address
            and outbound_id_from_message_id(parsed.message_id, self._domain) is not None
        )

    def _store(self, mailbox_id: int, uidvalidity: int, uid: int, raw: bytes) -> str:
        """"stored", "duplicate" (already in the ledger) or "own_copy"."""
        parsed = parse_email(raw)
        if self._is_own_copy(parsed):
            return "own_copy"
        digest = hashlib.sha256(raw).hexdigest()
        key = message_key(parsed)
        with self._sessions.begin() as session:
            existing = session.scalars(select(EmailInbound).where(EmailInbound.message_key == key)).one_or_none()
            if existing is not None and existing.raw_sha256 != digest and existing.sender != parsed.from_address:
                # Someone else's mail reusing a Message-ID is a different mail, not a repeat.
                key = f"{key[:MAX_KEY - 18]}#{digest[:16]}"
                existing = session.scalars(
                    select(EmailInbound).where(EmailInbound.message_key == key)
                ).one_or_none()
            if existing is not None:
                return "duplicate"
            allowed, reason = auto_reply_decision(parsed, {self._address})
            in_reply_to, references = reply_threading(parsed)
            session.add(
                EmailInbound(
                    message_key=key,
                    mailbox_id=mailbox_id,
                    uidvalidity=uidvalidity,
                    uid=uid,
                    # Longer than any real address (RFC 5321: 254): not one we could answer.
                    sender=parsed.from_address if parsed.from_address and len(parsed.from_address) <= 254 else None,
                    subject=parsed.subject,
                    headers=[list(pair) for pair in parsed.headers],
                    body=parsed.text,
                    attachments=[_attachment(a) for a in parsed.attachments],
                    details={
                        "message_id": parsed.message_id,
                        "message_id_synthetic": parsed.message_id_synthetic,
                        "from_name": parsed.from_name,
                        "to": parsed.to,
                        "cc": parsed.cc,
                        "date": parsed.date.isoformat() if parsed.date else None,
                        "in_reply_to": in_reply_to,
                        "references": references,
                        "text_source": parsed.text_source,
                        "charset": parsed.charset,
                        "content_type": parsed.content_type,
                        "content_language": parsed.content_language,
                        "problems": parsed.problems,
                    },
                    raw_size=len(raw),
                    raw_sha256=digest,
                    reply_blocked=None if allowed else reason[:64],
                    status=RECEIVED,
                )
            )
        return "stored"

    def _store_failed(self, mailbox_id: int, uidvalidity: int, uid: int, raw: bytes, exc: Exception) -> str:
        digest = hashlib.sha256(raw).hexdigest()
        key = f"<sha256-{digest}@unstorable.invalid>"
        with self._sessions.begin() as session:
            if session.scalars(select(EmailInbound.id).where(EmailInbound.message_key == key)).first() is not None:
                return "duplicate"
            session.add(
                EmailInbound(
                    message_key=key, mailbox_id=mailbox_id, uidvalidity=uidvalidity, uid=uid, sender=None,
                    subject="", headers=[], body=raw[:100_000].decode("utf-8", "replace").replace("\x00", ""),
                    attachments=[], details={"problems": ["unstorable"]}, raw_size=len(raw), raw_sha256=digest,
                    reply_blocked="unstorable", status=FAILED, handled_at=utcnow(),
                    outcome=f"error while storing: {type(exc).__name__}: {exc}"[:2000],
                )
            )
        return "stored"

    def _file_own_copies(self, client: IMAPClient, uids: list[int]) -> None:
        client.add_flags(uids, [SEEN], silent=True)
        sent = self._settings.email_sent_mailbox
        try:
            if b"MOVE" in client.capabilities():
                client.move(uids, sent)
            else:
                client.copy(uids, sent)
                client.delete_messages(uids, silent=True)
                client.expunge(uids) if b"UIDPLUS" in client.capabilities() else client.expunge()
        except IMAPClientError:
            # No Sent folder: make it once; the copies stay (read) in the inbox meanwhile.
            try:
                client.create_folder(sent)
            except IMAPClientError:
                pass
            logger.warning("could not file our reply copies in %r; they stay in the inbox", sent)

    # --- 3: handle stored mail -----------------------------------------------------------

    def handle_pending(self, limit: int = 100) -> int:
        with self._sessions() as session:
            ids = list(
                session.scalars(
                    select(EmailInbound.id).where(EmailInbound.status == RECEIVED).order_by(EmailInbound.id).limit(limit)
                )
            )
        for inbound_id in ids:
            try:
                self.handle(inbound_id)
            except OperationalError:
                raise  # the database is away: try again on the next pass
            except Exception as exc:
                logger.exception("e-mail %s could not be handled; marked failed for staff", inbound_id)
                with self._sessions.begin() as session:
                    row = session.get(EmailInbound, inbound_id)
                    row.status, row.handled_at = FAILED, utcnow()
                    row.outcome = f"error: {type(exc).__name__}: {exc}"[:2000]
        return len(ids)

    def handle(self, inbound_id: int) -> None:
        with self._sessions() as session:
            row = session.get(EmailInbound, inbound_id)
            if row is None or row.status != RECEIVED:
                return
            mail = _Mail(row)
        if mail.sender is None:
            self._finish(inbound_id, outcome="no_reply:missing_from")
            return
        if mail.blocked is not None:
            # Auto-replies, bounces, lists, bulk: kept in the ledger, never classified or answered.
            self._finish(inbound_id, outcome=f"no_reply:{mail.blocked}")
            return
        text = strip_quoted(mail.body).strip() or mail.subject_text
        # A reply carrying one of our ticket IDs is the citizen's next word on that ticket: whole,
        # not split into questions, when the core says it may join it (the sender's, still open).
        whole = replace(
            self._inbound(mail, text, mail.key, 0, 1), thread_ticket=find_ticket_id(mail.subject, mail.body)
        )
        if whole.thread_ticket is not None and self._conversation.joins_thread(whole):
            self._reply(inbound_id, mail, [(text, self._handle(whole))])
            return
        parts = split_questions(text) or [text]
        # Several questions that could not be told apart: one confident KB answer would
        # leave the others unanswered, so a person answers the whole e-mail.
        unseparated = len(parts) == 1 and asks_several(text)
        handled: list[tuple[str, HandledMessage]] = []
        for index, part in enumerate(parts):
            external_id = mail.key if len(parts) == 1 else f"{mail.key}#q{index + 1}"
            inbound = self._inbound(mail, part, external_id, index, len(parts))
            if unseparated:
                inbound = replace(inbound, needs_person="low_confidence")
            handled.append((part, self._handle(inbound)))
        self._reply(inbound_id, mail, handled)

    def _handle(self, inbound: InboundMessage) -> HandledMessage:
        # A mail read again after a crash may have a part stored without its answer; whether the
        # assistant had acted on it is unknown, so the core hands it to a person, never guesses.
        return self._conversation.handle_inbound(inbound, replies_in_response=True, hand_over_unanswered=True)

    def _inbound(self, mail: _Mail, part: str, external_id: str, index: int, count: int) -> InboundMessage:
        metadata: dict[str, Any] = {"email_inbound_id": mail.id, "subject": mail.subject[:500]}
        if count > 1:
            metadata.update(part=index + 1, parts=count)
        kind = "text"
        if index == 0 and mail.attachments:
            metadata["attachments"] = mail.attachments[:50]
            if not part.strip():
                kind = "document"
                metadata["attachment"] = mail.attachments[0]
        return InboundMessage(
            channel=CHANNEL, sender=mail.sender, text=part, external_id=external_id, metadata=metadata, kind=kind,
            language_hint=mail.language,
        )

    def _reply(self, inbound_id: int, mail: _Mail, handled: list[tuple[str, HandledMessage]]) -> None:
        # A new address's first mail: the core ended one part's replies with the privacy notice;
        # here it leaves that answer and ends the one combined reply instead.
        notice = next((result.notice for _part, result in handled if result.notice), None)
        handled = [(part, _without_notice(result)) for part, result in handled]
        tickets = [result.ticket for _part, result in handled if result.ticket is not None
                   and result.handling in TICKET_HANDLINGS]
        ticket = tickets[-1] if tickets else None
        # The core words each part's replies in the language it read the part in; the one
        # reply around them speaks the first part's that has one (None: the default).
        language = reply_language(result for _part, result in handled)
        with self._sessions() as session:
            ticket_row = (
                session.scalars(select(Ticket).where(Ticket.public_id == ticket.id)).one() if ticket else None
            )
            ticket_db_id = ticket_row.id if ticket_row else None
            commitment = ticket.commitment if ticket else ""
            acknowledged = ticket_db_id is not None and self._acknowledged(session, ticket_db_id, inbound_id)
        if len(handled) == 1:
            _part, result = handled[0]
            is_ticket_reply = result.handling in TICKET_HANDLINGS
            texts = [] if (is_ticket_reply and acknowledged) else list(result.replies)
        else:
            answers = [" ".join(r.replies) for _p, r in handled if r.handling not in TICKET_HANDLINGS and r.replies]
            escalated = [part for part, r in handled if r.handling in TICKET_HANDLINGS]
            is_ticket_reply = bool(escalated) and not acknowledged
            if acknowledged:
                escalated = []
            with override(language):
                body = compose_combined_reply(answers, escalated, ticket.id if ticket else None, commitment)
            texts = [body] if body.strip() else []
        if notice:
            texts.append(notice)
        self._reply_texts(
            inbound_id,
            mail,
            texts,
            ticket_id=ticket_db_id,
            ticket_reply=is_ticket_reply and not acknowledged,
            first_message_id=handled[0][1].message_id,
            part_reply_ids=[rid for _p, r in handled for rid in r.reply_ids],
            language=language,
        )

    @staticmethod
    def _acknowledged(session: Session, ticket_id: int, inbound_id: int) -> bool:
        return (
            session.scalar(
                select(func.count(EmailInbound.id)).where(
                    EmailInbound.acknowledged_ticket_id == ticket_id, EmailInbound.id != inbound_id
                )
            )
            > 0
        )

    def _reply_texts(
        self,
        inbound_id: int,
        mail: _Mail,
        texts: list[str],
        *,
        ticket_id: int | None,
        ticket_reply: bool,
        first_message_id: int,
        part_reply_ids: list[int],
        language: str | None = None,
    ) -> None:
        """Queue the one reply (or decide on none) and mark the mail handled, in one transaction."""
        body = "\n\n".join(t.strip() for t in texts if t and t.strip())
        now = utcnow()
        reply_id = None
        with self._sessions.begin() as session:
            row = session.get(EmailInbound, inbound_id)
            if row.status != RECEIVED:
                return
            row.ticket_id = ticket_id
            if not body:
                outcome = "no_reply:ticket_already_acknowledged" if ticket_id else "no_reply:nothing_to_say"
            elif self._rate_limited(session, mail.sender, now):
                outcome = "no_reply:rate_limited"
            else:
                inbound = session.get(Message, first_message_id)
                identity = inbound.identity
                ticket = session.get(Ticket, ticket_id) if ticket_id else None
                reply = queue_outbound(
                    session,
                    identity=identity,
                    text=body,
                    author="assistant",
                    ticket=ticket,
                    reply_to=inbound,
                    meta={
                        "email": {
                            "automatic": True,
                            "subject": mail.subject,
                            "in_reply_to": mail.in_reply_to,
                            "references": mail.references,
                            "inbound_id": inbound_id,
                        }
                    },
                    now=now,
                )
                # What it is worded in: the sender words the subject in it too.
                reply.language = language
                reply_id = reply.id
                row.reply_id = reply.id
                if ticket_reply and ticket_id is not None:
                    row.acknowledged_ticket_id = ticket_id
                for part_reply in part_reply_ids:
                    part = session.get(Message, part_reply)
                    part.meta = {**(part.meta or {}), "sent_in_email_reply": reply.id}
                outcome = "replied"
            row.status, row.outcome, row.handled_at = HANDLED, outcome, now
        logger.info("e-mail %s handled: %s", inbound_id, outcome)
        if reply_id is not None:
            self._run_async(self._delivery.deliver(reply_id))

    def _rate_limited(self, session: Session, sender: str, now) -> bool:  # noqa: ANN001
        recent = session.scalar(
            select(func.count(EmailInbound.id)).where(
                EmailInbound.sender == sender,
                EmailInbound.reply_id.is_not(None),
                EmailInbound.handled_at >= now - timedelta(hours=1),
            )
        )
        return recent >= self._settings.email_replies_per_sender_per_hour

    def _finish(self, inbound_id: int, *, outcome: str) -> None:
        with self._sessions.begin() as session:
            row = session.get(EmailInbound, inbound_id)
            if row.status == RECEIVED:
                row.status, row.outcome, row.handled_at = HANDLED, outcome[:2000], utcnow()
        logger.info("e-mail %s handled: %s", inbound_id, outcome)

    # --- 4: deliver ----------------------------------------------------------------------

    def deliver_due(self) -> int:
        return self._run_async(self._delivery.run_once())


class _Mail:
    """What handling needs from a stored row, read once (no session kept open meanwhile)."""

    def __init__(self, row: EmailInbound) -> None:
        self.id = row.id
        self.key = row.message_key
        self.sender = row.sender
        self.subject = row.subject or ""
        self.body = row.body or ""
        self.attachments = list(row.attachments or [])
        self.blocked = row.reply_blocked
        details = row.details or {}
        self.in_reply_to = details.get("in_reply_to")
        self.references = list(details.get("references") or [])
        # The mail's Content-Language as parsed (bot.channels.email.parsing); None for a row
        # stored before it was kept.
        self.language = language_tag(details.get("content_language"))

    @property
    def subject_text(self) -> str:
        """The subject without reply prefixes, for mail whose body has no new text."""
        from bot.channels.email.compose import _REPLY_PREFIX

        return _REPLY_PREFIX.sub("", self.subject).strip()


def reply_language(results: Iterable[HandledMessage]) -> str | None:
    """The language of one reply to several handled parts: the first part's that has one."""
    return next((result.language for result in results if result.language), None)


def _without_notice(result: HandledMessage) -> HandledMessage:
    """``result`` with the privacy notice taken off its replies (a footer, or the only reply)."""
    if not result.notice:
        return result
    replies = [reply for reply in result.replies if reply != result.notice]
    if replies and replies[-1].endswith(result.notice):
        replies[-1] = replies[-1][: -len(result.notice)].rstrip()
    return replace(result, replies=replies)


def _attachment(attachment: Any) -> dict[str, Any]:
    return {
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "disposition": attachment.disposition,
        "part": attachment.part,
    }


def _batches(uids: list[int], sizes: dict) -> list[list[int]]:
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid in uids:
        size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
        if current and (total + size > FETCH_BYTES or len(current) >= FETCH_COUNT):
            batches.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    if current:
        batches.append(current)
    return batches
