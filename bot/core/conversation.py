"""The path every citizen message takes, whatever the channel.

Store first, then ask Rasa, then store the replies. The inbound message is
committed before Rasa sees it, so a crash or an unreachable Rasa never loses
it; when Rasa cannot answer the message is escalated here instead.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.core import clarification, threads
from bot.core.escalation import CITIZEN_OFFER_KEY, escalate, ticket_commitment
from bot.core.inbound import InboundMessage, KbChoice
from bot.core.languages import LanguageServices, LazyLanguageServices, lexical_turn
from bot.core.rasa_client import RasaClient, RasaUnavailable
from bot.core.routing import department_names
from bot.core.turns import METADATA_KEY, REQUEST_ID_KEY, SETTLED_KEY
from bot.feedback import service as feedback
from bot.identity.commands import might_be_link_command
from bot.identity.linking import handle_link_message
from bot.notices import commands as subscriptions
from bot.observability.logs import bound_request_id, current_request_id, log_event
from bot.observability.metrics import RASA, STORE, count_message, measuring_turn, timed
from bot.outbox.delivery import PENDING, SENT
from bot.privacy import notice as privacy_notice
from bot.privacy.commands import might_be_rights_command
from bot.privacy.erase import erase_outside_store
from bot.privacy.requests import handle_rights_message, remember_reply
from bot.settings import Settings
from bot.store.citizens import get_or_create_identity
from bot.store.messages import record_handling, record_inbound, record_outbound
from bot.store.models import ChannelIdentity, Citizen, KbOffer, Message
from bot.store.types import utcnow
from bot.texts import activate, active_language, override
from bot.texts import text as catalogue_text
from bot.tickets.models import Ticket
from bot.tickets.service import attach_to_ticket, open_ticket_of
from bot.tickets.status import OPEN_STATUSES

logger = logging.getLogger(__name__)

# How a stored handling counts in the metrics' outcomes (bot.observability): answered from the
# KB, asked "Do you mean ...?", or with a person (a ticket opened or joined); the rest (small
# talk, status, commands, links, edits) is "other", and a redelivered message "duplicate".
OUTCOME_BY_HANDLING = {
    "kb_answer": "answered",
    clarification.ASKED: "asked",
    "escalated": "escalated",
    threads.JOINED: "escalated",
    "attachment_added": "escalated",
}

# Kinds of attachment with a word of their own (attachment.kind.<kind> in bot.texts).
ATTACHMENT_KINDS = ("photo", "document", "voice", "audio", "video", "sticker", "location", "contact")


@dataclass(frozen=True)
class TicketInfo:
    id: str
    status: str
    department: str
    priority: str
    due_at: datetime
    created: bool
    # What a reply about this ticket promises ("3 days"): channels that word their own
    # replies (e-mail's combined answer) use this, never a commitment of their own.
    commitment: str


@dataclass(frozen=True)
class HandledMessage:
    message_id: int
    replies: list[str]
    handling: str | None
    intent: str | None
    confidence: float | None
    kb_entry_id: str | None
    ticket: TicketInfo | None
    duplicate: bool
    # Stored outbound rows for ``replies``, in order; channels that push replies
    # (Telegram, WhatsApp, e-mail) deliver these through bot.outbox.delivery.
    reply_ids: list[int] = field(default_factory=list)
    # KB entries whose questions the citizen was asked to pick from ("Do you mean ...?").
    offered_entries: list[str] = field(default_factory=list)
    # The asking reply's choices (bot.core.clarification.CHOICES_KEY), for channels that show buttons.
    choices: dict | None = None
    # The privacy notice, when this message was the identity's first contact: then it also ends the
    # last of ``replies`` as a footer (the number of replies, and which one carries the "Do you mean
    # ...?" options, stay as they are); channels that compose one reply (e-mail) place it themselves.
    notice: str | None = None
    # The language the message was read in and the replies are worded in (bot.nlu.language);
    # channels that word their own reply (e-mail) word it in this one (bot.texts.override).
    language: str | None = None
    # Internal: the identity has not had the notice yet (read by ``_result``, consumed by the
    # conversation before the result leaves it).
    notice_due: bool = False

    @property
    def outcome(self) -> str:
        if self.duplicate:
            return "duplicate"
        return OUTCOME_BY_HANDLING.get(self.handling or "", "other")


def text_for_understanding(text: str) -> str:
    """What Rasa sees: control characters become spaces; the stored text stays exact."""
    cleaned = "".join(" " if unicodedata.category(ch) == "Cc" and ch not in "\n\t" else ch for ch in text)
    return " ".join(cleaned.split())


class Conversation:
    """Holds the long-lived collaborators: the session factory, the Rasa client, and the
    languages (the detector and the other languages' understanding, bot.core.languages)."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], rasa: RasaClient,
                 languages: LanguageServices | None = None) -> None:
        self._settings = settings
        self._sessions = sessions
        self._rasa = rasa
        self._languages = languages
        self._lazy_languages = LazyLanguageServices(settings) if languages is None else None

    @property
    def languages(self) -> LanguageServices:
        return self._languages if self._languages is not None else self._lazy_languages.get()

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    # --- observed entry points: one metric and one log event per message ------------------
    def handle_inbound(
        self,
        inbound: InboundMessage,
        *,
        replies_in_response: bool = True,
        resume_unanswered: bool = False,
        hand_over_unanswered: bool = False,
    ) -> HandledMessage:
        """Store, understand, answer. ``replies_in_response``: the caller hands the replies
        over itself (the generic API's HTTP response), so they are stored as sent; otherwise
        they are stored pending and the channel delivers them by ``reply_ids``.

        ``resume_unanswered``: the caller knows an earlier attempt at this very message died
        after storing it (a retried webhook delivery, a restarted mail reader); a stored
        message without replies is then answered now instead of being skipped as a duplicate.

        ``hand_over_unanswered``: the same, but such a message goes to a person instead of the
        assistant: the caller cannot tell whether the assistant had already acted on it (opened
        a ticket, asked a question), and a second guess could contradict the first.

        A message whose ``thread_ticket`` holds joins that ticket, in the unit of work that
        stores it, and is not read by the assistant: it is the citizen's next word on the case.
        On an identity's first contact the privacy notice ends the answer (bot.privacy.notice).
        """
        return self._observed(inbound, lambda: self._with_notice(self._handle_inbound(
            inbound, replies_in_response=replies_in_response, resume_unanswered=resume_unanswered,
            hand_over_unanswered=hand_over_unanswered), replies_in_response))

    def answer_directly(
        self, inbound: InboundMessage, reply: str | Callable[[], str], *, handling: str = "channel_command",
        replies_in_response: bool = True,
    ) -> HandledMessage:
        """A message the channel answers itself (Telegram's /start): the assistant is not
        asked, but both the message and the answer are stored like any other. ``reply`` may be
        a function that words it (``functools.partial(text, key)``): it is called once the
        message's language is decided, so the answer is in the citizen's language."""
        return self._observed(inbound, lambda: self._with_notice(self._answer_directly(
            inbound, reply, handling=handling, replies_in_response=replies_in_response), replies_in_response))

    def _observed(self, inbound: InboundMessage, handle: Callable[[], HandledMessage]) -> HandledMessage:
        """Count the message by outcome, time its stages and log its one event, under the
        request id of the caller (the API's X-Request-ID) or a new one (a channel's worker).
        The event has ids, vocabularies and durations only, never the citizen's text."""
        # Each turn words its texts in the message's language, decided once it is stored
        # (``_decide_language``); the block ends that language with the turn.
        with bound_request_id(current_request_id()), measuring_turn() as timings, override(None):
            start = time.perf_counter()
            try:
                handled = handle()
            except Exception:
                count_message(inbound.channel, "error", None)
                raise
            count_message(inbound.channel, handled.outcome, handled.handling)
            log_event(
                logger, "message_handled", message_id=handled.message_id,
                channel=inbound.channel, outcome=handled.outcome, handling=handled.handling,
                ticket=handled.ticket.id if handled.ticket is not None else None, duplicate=handled.duplicate,
                durations_ms={stage: round(seconds * 1000, 1) for stage, seconds in
                              {**timings, "total": time.perf_counter() - start}.items()},
            )
        return handled

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """A unit of work on a message's path, timed as the store stage."""
        with timed(STORE), self._sessions.begin() as session:
            yield session
    # --- end of observed entry points -----------------------------------------------------

    def _handle_inbound(
        self,
        inbound: InboundMessage,
        *,
        replies_in_response: bool,
        resume_unanswered: bool,
        hand_over_unanswered: bool,
    ) -> HandledMessage:
        if resume_unanswered and hand_over_unanswered:
            raise ValueError("an unanswered message is either resumed or handed over, not both")
        with self._transaction() as session:
            identity = get_or_create_identity(session, inbound.channel, inbound.sender)
            message, created = record_inbound(
                session,
                identity,
                inbound.text,
                external_id=inbound.external_id,
                meta=inbound.metadata if inbound.kind == "text" else {**inbound.metadata, "kind": inbound.kind},
            )
            message_id, sender_id = message.id, identity.public_id
            activate(self._decide_language(session, message, inbound) if created else message.language)
            # Read here, in the unit of work that stores the message, so that a message from a
            # citizen with no open "Do you mean ...?" question costs no second transaction.
            asked_before = clarification.recent_offer(session, message.citizen_id, self._settings) is not None
            # The same for "Was it solved?": only a citizen with a survey waiting (or a button) costs more.
            survey_waiting = inbound.choice is not None or (
                created and feedback.open_survey(session, message.identity_id, self._settings) is not None)
            unanswered = (
                not created
                and (resume_unanswered or hand_over_unanswered)
                and session.scalar(select(Message.id).where(Message.reply_to_id == message_id).limit(1)) is None
            )
            settled = None
            if created or unanswered:
                settled = self._join_thread(session, message, inbound.thread_ticket, replies_in_response)
            if settled is None and unanswered and hand_over_unanswered:
                settled = self._hand_over(session, message, replies_in_response)
            created = created or (unanswered and resume_unanswered)
        if settled is not None:
            return self._result(message_id, replies=settled[0], reply_ids=settled[1])
        if not created:
            return self._result(message_id, duplicate=True)
        # --- privacy commands ("privacy", "stop", "notify me"): answered here, never by Rasa ---
        if inbound.kind == "text" and inbound.edit_of is None:
            privacy = privacy_notice.parse_privacy_command(inbound.text)
            if privacy is not None:
                return self._handle_privacy(message_id, privacy, replies_in_response)
        # --- end of privacy commands ---
        # --- subscriptions to the city's news ("subscribe waste", bot.notices) ---
        if inbound.kind == "text" and inbound.edit_of is None:
            subscription = subscriptions.parse_subscription_command(inbound.text)
            if subscription is not None:
                return self._handle_subscription(message_id, subscription, replies_in_response)
        # --- end of subscriptions ---
        if inbound.kind == "text" and might_be_link_command(inbound.text):
            linked = self._handle_link(message_id, replies_in_response)
            if linked is not None:
                return linked
        # --- citizens' data rights (bot.privacy): "my data", "erase my data" and their codes ---
        if inbound.kind == "text" and might_be_rights_command(inbound.text):
            rights = self._handle_rights(message_id, replies_in_response)
            if rights is not None:
                return rights
        # --- end of data rights ---
        # --- "Was it solved?" (bot.feedback): an answer to a resolved ticket's survey ---
        if survey_waiting and inbound.kind == "text" and inbound.edit_of is None and inbound.needs_person is None:
            answered = self._feedback_turn(message_id, inbound, replies_in_response)
            if answered is not None:
                return answered
        # --- end of "Was it solved?" ---
        if inbound.edit_of is not None:
            edited = self._handle_edit(message_id, inbound.edit_of, replies_in_response)
            if edited is not None:
                return edited
        if inbound.kind != "text" and not inbound.assistant_text.strip():
            return self._handle_attachment(message_id, inbound.kind, replies_in_response)

        understood = text_for_understanding(inbound.assistant_text)
        language = active_language()
        lexical = self.languages.lexical(language)
        reason = None
        replies: list[str] = []
        lead_replies: list[tuple[str, int | None]] = []
        pick = None
        if inbound.needs_person is None and (asked_before or inbound.choice is not None):
            pick, lead_replies = self._clarification_turn(message_id, inbound)
        if pick is not None:
            understood = clarification.rasa_payload(pick)
        elif inbound.needs_person is not None:
            reason = inbound.needs_person
        elif len(understood) > self._settings.max_classified_chars:
            reason = "long_message"
        elif not understood:
            reason = "low_confidence"
        if reason is None and lexical is not None:
            # Not the main language: read by that language's model, acted on and worded as
            # Rasa's actions would (bot.core.languages); Rasa never sees the message.
            try:
                replies = lexical_turn(self, self.languages, language, sender_id=sender_id, message_id=message_id,
                                       text_understood=text_for_understanding(inbound.assistant_text), choice=pick,
                                       request_id=current_request_id())
            except Exception:
                # As when Rasa's action server fails: the turn below finds no handling and hands
                # the message to a person, so it is never lost or left unanswered.
                logger.exception("the %s understanding failed on message %s", language, message_id)
                replies = []
        elif reason is None:
            try:
                with timed(RASA):
                    bot_messages = self._rasa.send(sender=sender_id, text=understood, metadata={
                        METADATA_KEY: message_id, REQUEST_ID_KEY: current_request_id()})
                replies = [m["text"] for m in bot_messages if isinstance(m.get("text"), str)]
            except RasaUnavailable as exc:
                logger.error("escalating message %s: %s", message_id, exc)
                reason = "assistant_unavailable"

        with self._transaction() as session:
            message = session.get(Message, message_id, with_for_update=True)
            if reason is None and message.handling is None:
                # Rasa answered but none of our actions recorded the turn: the action
                # server failed. A person must see the message.
                logger.error("no action handled message %s; escalating", message_id)
                reason = "assistant_unavailable"
            if reason is not None:
                replies = [self._escalate_without_rasa(session, message, reason=reason)]
                if reason == "assistant_unavailable":
                    message.meta = {**(message.meta or {}), SETTLED_KEY: True}
            asking = None
            if message.handling == clarification.ASKED and replies:
                offer = session.scalars(select(KbOffer).where(KbOffer.message_id == message.id)).first()
                asking = clarification.choices_meta(offer, self._settings.kb_dir) if offer is not None else None
            reply_ids = []
            for text, ticket_id in lead_replies:
                reply = record_outbound(session, inbound=message, text=text)
                reply.ticket_id = ticket_id
                self._mark_reply(reply, replies_in_response)
                reply_ids.append(reply.id)
            for position, text in enumerate(replies):
                reply = record_outbound(session, inbound=message, text=text)
                if asking is not None and position == len(replies) - 1:
                    reply.meta = {**(reply.meta or {}), clarification.CHOICES_KEY: asking}
                self._mark_reply(reply, replies_in_response)
                reply_ids.append(reply.id)
        return self._result(message_id, replies=[text for text, _ in lead_replies] + replies, reply_ids=reply_ids)

    def joins_thread(self, inbound: InboundMessage) -> bool:
        """Whether ``inbound`` would join the ticket its thread hint names, asked before it is
        handed over by channels that split messages: a follow-up in a ticket's thread is one
        message for that ticket, not several questions to answer one by one."""
        with self._sessions() as session:
            return threads.hinted_ticket(session, inbound) is not None

    def _join_thread(
        self, session: Session, message: Message, hint: str | None, replies_in_response: bool
    ) -> tuple[list[str], list[int]] | None:
        """(replies, their rows) when the hint holds and the message joined its ticket; else None."""
        ticket = threads.thread_ticket(session, message.citizen_id, hint)
        if ticket is None:
            return None
        threads.join_thread(session, message, ticket, self._settings)
        # After a "no" to "Was it solved?", a reply in the reopened ticket's thread is what is still wrong.
        feedback.reason_in_thread(session, message, ticket, self._settings)
        text = catalogue_text("ticket.joined_thread", ticket_id=ticket.public_id,
                              commitment=ticket_commitment(session, ticket, self._settings))
        reply = record_outbound(session, inbound=message, text=text)
        self._mark_reply(reply, replies_in_response)
        return [text], [reply.id]

    def _hand_over(self, session: Session, message: Message, replies_in_response: bool) -> tuple[list[str], list[int]]:
        """A message stored by an attempt that died before its answer: to a person, never a guess.

        What the assistant understood before the attempt died is kept for the agent."""
        text = self._escalate_without_rasa(
            session, message, reason="assistant_unavailable", apologise=False,
            intent=message.intent, confidence=message.confidence,
        )
        reply = record_outbound(session, inbound=message, text=text)
        self._mark_reply(reply, replies_in_response)
        return [text], [reply.id]

    def _clarification_turn(self, message_id: int, inbound: InboundMessage) -> tuple[KbChoice | None, list[tuple[str, int | None]]]:
        """Before Rasa: a pick of a "Do you mean ...?" question is settled as a pick (Rasa is sent
        its intent payload); any other message from a citizen with an open question first hands
        that question to a person.

        Returns (the pick, or None; replies to send first, with their ticket)."""
        with self._transaction() as session:
            message = session.get(Message, message_id)
            choice = inbound.choice
            offer = clarification.pending_offer(session, message.citizen_id)
            if choice is None and offer is not None and offer.identity_id == message.identity_id:
                choice = clarification.pick_from_text(offer, inbound.assistant_text, self._settings.kb_dir)
            if choice is None and offer is None:
                late = clarification.timed_out_offer(session, message.citizen_id, self._settings)
                if late is not None and late.identity_id == message.identity_id:
                    # Only a plain pick ("2", "0", the question itself): anything else is a new message.
                    choice = clarification.pick_from_text(late, inbound.assistant_text, self._settings.kb_dir)
            if choice is not None:
                message.meta = {**(message.meta or {}), "kb_choice": choice.encode()}
                return choice, []
            if offer is None:
                return None, []
            escalation = clarification.supersede_pending(session, message, self._settings)
            if escalation is None:
                return None, []
            department = department_names(self._settings.kb_dir).get(escalation.ticket.department,
                                                                     escalation.ticket.department)
            text = clarification.handed_over_text(escalation, department, situation="earlier_question")
            return None, [(text, escalation.ticket.id)]

    def expire_offers(self, *, now: datetime | None = None, limit: int = 50) -> list[int]:
        """Hand "Do you mean ...?" questions left unanswered past their time to a person, and tell
        the citizen. Returns the stored replies, pending delivery (or a pull client's fetch).

        The time-out goes through Rasa as an external event (``EXTERNAL_kb_offer_expired``), so
        its dialogue knows the question is closed and its rule runs the hand-over; when Rasa
        cannot be reached the core hands over itself, so a question never waits on Rasa.
        Every process may run this (the API's background loop): an offer is claimed once, so
        two running it together never open two tickets."""
        now = now or utcnow()
        reply_ids = []
        with self._sessions() as session:
            due = clarification.due_offers(session, now=now, limit=limit)
        for offer_id in due:
            with self._sessions() as session:
                offer = session.get(KbOffer, offer_id)
                if offer is None or offer.status != clarification.PENDING:
                    continue
                sender_id = session.get(ChannelIdentity, offer.identity_id).public_id
                payload = clarification.expiry_payload(offer)
                language = session.get(Message, offer.message_id).language
            with override(language):
                reply_ids += self._expire_offer(offer_id, sender_id, payload, language, now)
        return reply_ids

    def _expire_offer(self, offer_id: int, sender_id: str, payload: str, language: str | None,
                      now: datetime) -> list[int]:
        """One due offer; a question asked in another language than the main one never went
        through Rasa, so the core hands it over itself, in that language."""
        reply_ids: list[int] = []
        texts: list[str] = []
        if self.languages.lexical(language) is None:
            try:
                bot_messages = self._rasa.send(sender=sender_id, text=payload, metadata={
                    clarification.EXPIRY_METADATA_KEY: {"offer": offer_id, "now": now.isoformat()}})
                texts = [m["text"] for m in bot_messages if isinstance(m.get("text"), str)]
            except RasaUnavailable as exc:
                logger.warning("offer %s timed out while Rasa is unavailable (%s); handing it over without Rasa",
                               offer_id, exc)
        with self._transaction() as session:
            offer = session.get(KbOffer, offer_id)
            question = session.get(Message, offer.message_id)
            if offer.status == clarification.PENDING:  # Rasa down, or its action did not run
                escalation = clarification.expire_offer(session, offer, self._settings, now=now)
                if escalation is None:
                    return []
                department = department_names(self._settings.kb_dir).get(escalation.ticket.department,
                                                                         escalation.ticket.department)
                texts = [clarification.handed_over_text(escalation, department,
                                                        situation="expired")]
            elif offer.status != clarification.EXPIRED or not texts:
                return []  # settled meanwhile (a pick, another process's expiry): nothing to say
            for text in texts:
                reply = record_outbound(session, inbound=question, text=text)
                reply.ticket_id = offer.ticket_id
                self._mark_reply(reply, replies_in_response=False)
                session.flush()
                reply_ids.append(reply.id)
        return reply_ids

    def _feedback_turn(self, message_id: int, inbound: InboundMessage, replies_in_response: bool) -> HandledMessage | None:
        """An answer to "Was your problem solved?", its rating or comment: recorded here, never by
        Rasa. None when the message is not one (a new question goes to the assistant, and the
        survey keeps waiting), or the button is a "Do you mean ...?" one."""
        with self._transaction() as session:
            message = session.get(Message, message_id)
            option = None
            if inbound.choice is not None:
                survey = feedback.survey_for_token(session, inbound.choice.offer, message.citizen_id)
                option = inbound.choice.option
            else:
                survey = feedback.open_survey(session, message.identity_id, self._settings)
                offer = clarification.pending_offer(session, message.citizen_id) if survey is not None else None
                if offer is not None and offer.created_at > survey.step_at:
                    return None  # "Do you mean ...?" was asked since: a "no" or "2" answers that
            if survey is None:
                return None
            reading = feedback.read_answer(survey, inbound.assistant_text, option)
            if reading is None:
                return None
            ticket = session.get(Ticket, survey.ticket_id)
            department = department_names(self._settings.kb_dir).get(ticket.department, ticket.department)
            outcome = feedback.apply_answer(session, survey, reading, message, self._settings,
                                            department_name=department)
            record_handling(message, intent=None, confidence=None, handling=outcome.handling, ticket=outcome.ticket)
            reply = record_outbound(session, inbound=message, text=outcome.reply)
            reply.ticket_id = outcome.ticket.id
            if outcome.choices is not None:
                reply.meta = {**(reply.meta or {}), clarification.CHOICES_KEY: outcome.choices}
            self._mark_reply(reply, replies_in_response)
            reply_ids = [reply.id]
        return self._result(message_id, replies=[outcome.reply], reply_ids=reply_ids)

    def _handle_attachment(self, message_id: int, kind: str, replies_in_response: bool) -> HandledMessage:
        """A photo, location, voice note... without words: the assistant cannot read it.

        With an open ticket it belongs to that ticket (a photo of the pothole just
        reported); otherwise the citizen is asked to describe it in text.
        """
        label = catalogue_text(f"attachment.kind.{kind if kind in ATTACHMENT_KINDS else 'other'}")
        with self._transaction() as session:
            message = session.get(Message, message_id)
            ticket = open_ticket_of(session, message.citizen_id)
            if ticket is not None:
                attach_to_ticket(session, ticket, message, settings=self._settings)
                record_handling(message, intent=None, confidence=None, handling="attachment_added", ticket=ticket)
                text = catalogue_text("attachment.added", label=label, ticket_id=ticket.public_id)
            else:
                record_handling(message, intent=None, confidence=None, handling="attachment_unhandled")
                text = catalogue_text("attachment.unreadable", label=label)
            reply = record_outbound(session, inbound=message, text=text)
            self._mark_reply(reply, replies_in_response)
            reply_ids = [reply.id]
        return self._result(message_id, replies=[text], reply_ids=reply_ids)

    def _handle_link(self, message_id: int, replies_in_response: bool) -> HandledMessage | None:
        """``/link`` and the code that follows it (bot.identity): answered here, never by Rasa."""
        with self._transaction() as session:
            message = session.get(Message, message_id)
            outcome = handle_link_message(session, message, settings=self._settings)
            if outcome is None:
                return None
            reply = record_outbound(session, inbound=message, text=outcome.reply)
            self._mark_reply(reply, replies_in_response)
            reply_ids = [reply.id]
        return self._result(message_id, replies=[outcome.reply], reply_ids=reply_ids)

    def _handle_rights(self, message_id: int, replies_in_response: bool) -> HandledMessage | None:
        """"my data", "erase my data" and the code that confirms them: answered here, never by Rasa.

        An erasure also reaches Rasa's tracker store and compacts SQLite files, which only
        works after the store's commit, so it runs after the unit of work."""
        with self._transaction() as session:
            message = session.get(Message, message_id)
            outcome = handle_rights_message(session, message, settings=self._settings)
            if outcome is None:
                return None
            reply = record_outbound(session, inbound=message, text=outcome.reply)
            self._mark_reply(reply, replies_in_response)
            remember_reply(outcome, reply)
            reply_ids = [reply.id]
        if outcome.erasure is not None:
            erase_outside_store(self._settings, outcome.erasure)
        return self._result(message_id, replies=[outcome.reply], reply_ids=reply_ids)

    def _handle_privacy(
        self, message_id: int, command: privacy_notice.PrivacyCommand, replies_in_response: bool
    ) -> HandledMessage:
        """"privacy", "stop", "notify me": the notice again, or consent withdrawn or given."""
        with self._transaction() as session:
            message = session.get(Message, message_id)
            text, handling = privacy_notice.answer_command(session, message, command, self._settings, utcnow())
            record_handling(message, intent=None, confidence=None, handling=handling)
            reply = record_outbound(session, inbound=message, text=text)
            self._mark_reply(reply, replies_in_response)
            reply_ids = [reply.id]
        return self._result(message_id, replies=[text], reply_ids=reply_ids)

    def _handle_subscription(
        self, message_id: int, command: subscriptions.SubscriptionCommand, replies_in_response: bool
    ) -> HandledMessage:
        """"subscribe waste", "unsubscribe waste", "subscribe": consent to news by topic (bot.notices)."""
        with self._transaction() as session:
            message = session.get(Message, message_id)
            text, handling = subscriptions.answer_subscription(session, message, command, self._settings, utcnow())
            record_handling(message, intent=None, confidence=None, handling=handling)
            reply = record_outbound(session, inbound=message, text=text)
            self._mark_reply(reply, replies_in_response)
            reply_ids = [reply.id]
        return self._result(message_id, replies=[text], reply_ids=reply_ids)

    def _with_notice(self, handled: HandledMessage, replies_in_response: bool) -> HandledMessage:
        """End a first contact's last reply with the privacy notice, once per identity (bot.privacy).

        A footer rather than a message of its own: it goes out with the first answer, in order,
        and the replies a channel or an API client counts on stay where they were. A first
        message that gets no reply at all gets the notice alone."""
        if not handled.notice_due:
            return handled
        handled = replace(handled, notice_due=False)
        text = privacy_notice.notice_text(self._settings)
        with self._transaction() as session:
            message = session.get(Message, handled.message_id)
            if not privacy_notice.claim_notice(session, message.identity_id, utcnow()):
                return handled  # another message of the same first contact carries it
            if handled.reply_ids:
                last = session.get(Message, handled.reply_ids[-1])
                footed = f"{last.text}\n\n{text}"
                # A pushed reply is changed only while still pending: the delivery worker may have
                # taken it meanwhile, and then the notice goes as a message of its own instead.
                still_pending = replies_in_response or session.execute(
                    update(Message)
                    .where(Message.id == last.id, Message.delivery_status == PENDING)
                    .values(text=footed)
                    .execution_options(synchronize_session=False)
                ).rowcount == 1
                if still_pending:
                    session.refresh(last)
                    last.text = footed
                    last.meta = {**(last.meta or {}), privacy_notice.NOTICE_META_KEY: True}
                    return replace(handled, replies=[*handled.replies[:-1], footed], notice=text)
            reply = record_outbound(session, inbound=message, text=text)
            reply.meta = {**(reply.meta or {}), privacy_notice.NOTICE_META_KEY: True}
            self._mark_reply(reply, replies_in_response)
            session.flush()
            reply_id = reply.id
        return replace(handled, replies=[*handled.replies, text], reply_ids=[*handled.reply_ids, reply_id], notice=text)

    def _answer_directly(
        self, inbound: InboundMessage, reply: str | Callable[[], str], *, handling: str, replies_in_response: bool
    ) -> HandledMessage:
        with self._transaction() as session:
            identity = get_or_create_identity(session, inbound.channel, inbound.sender)
            message, created = record_inbound(
                session, identity, inbound.text, external_id=inbound.external_id, meta=inbound.metadata
            )
            if created:
                activate(self._decide_language(session, message, inbound))
                reply = reply() if callable(reply) else reply
                record_handling(message, intent=None, confidence=None, handling=handling)
                reply_row = record_outbound(session, inbound=message, text=reply)
                self._mark_reply(reply_row, replies_in_response)
                reply_ids = [reply_row.id]
            message_id = message.id
        if not created:
            return self._result(message_id, duplicate=True)
        return self._result(message_id, replies=[reply], reply_ids=reply_ids)

    def _handle_edit(self, message_id: int, edit_of: str, replies_in_response: bool) -> HandledMessage | None:
        """A corrected version of a message already answered: kept next to the original (and on
        its ticket, so staff read the correction), never answered a second time. The citizen is
        told once per message how edits are treated. None when the original is unknown (sent
        while we were not listening): then the edit is the message, and is handled as new."""
        with self._transaction() as session:
            message = session.get(Message, message_id)
            original = session.scalars(
                select(Message).where(
                    Message.channel == message.channel,
                    Message.direction == "in",
                    Message.identity_id == message.identity_id,
                    Message.external_id == edit_of,
                )
            ).one_or_none()
            if original is None:
                return None
            ticket = session.get(Ticket, original.ticket_id) if original.ticket_id else None
            if ticket is not None and ticket.status in OPEN_STATUSES:
                attach_to_ticket(session, ticket, message, settings=self._settings)
            else:
                ticket = None
            record_handling(message, intent=None, confidence=None, handling="edit_recorded", ticket=ticket)
            earlier_edits = int((original.meta or {}).get("edits", 0))
            original.meta = {**(original.meta or {}), "edits": earlier_edits + 1, "last_edit_message_id": message.id}
            replies, reply_ids = [], []
            if earlier_edits == 0:
                if ticket is not None:
                    text = catalogue_text("edit.added_to_ticket", ticket_id=ticket.public_id)
                else:
                    text = catalogue_text("edit.already_answered")
                reply = record_outbound(session, inbound=message, text=text)
                self._mark_reply(reply, replies_in_response)
                replies, reply_ids = [text], [reply.id]
        return self._result(message_id, replies=replies, reply_ids=reply_ids)

    def _decide_language(self, session: Session, message: Message, inbound: InboundMessage) -> str:
        """The message's language (bot.nlu.language), stored on it and, when its own words said
        so (or nothing was known), on the citizen: what their next short "ok" is read in."""
        citizen = session.get(Citizen, message.citizen_id)
        said = inbound.assistant_text if inbound.kind == "text" and inbound.choice is None else ""
        decided = self.languages.detector.choose(said, previous=citizen.language, hint=inbound.language_hint)
        message.language = decided.language
        if decided.source == "text" or citizen.language is None:
            citizen.language = decided.language
        return decided.language

    @staticmethod
    def _mark_reply(reply: Message, replies_in_response: bool) -> None:
        reply.author = "assistant"
        reply.language = active_language()
        if replies_in_response:
            reply.delivery_status, reply.sent_at = SENT, reply.created_at
        else:
            reply.delivery_status, reply.next_attempt_at = PENDING, reply.created_at

    def _escalate_without_rasa(
        self,
        session: Session,
        message: Message,
        *,
        reason: str,
        apologise: bool = True,
        intent: str | None = None,
        confidence: float | None = None,
    ) -> str:
        """``apologise``: say the assistant cannot process the message; not when it could, but an
        earlier attempt was cut short (the citizen was never told anything went wrong)."""
        outcome = escalate(session, message, reason=reason, kb_ranking=[], settings=self._settings)
        record_handling(
            message,
            intent=intent,
            confidence=confidence,
            handling="escalated" if outcome.created else "ticket_joined",
            ticket=outcome.ticket,
        )
        key = "ticket.saved_unavailable" if reason == "assistant_unavailable" and apologise else "ticket.saved"
        return catalogue_text(key, ticket_id=outcome.ticket.public_id, commitment=outcome.commitment)

    def _result(
        self,
        message_id: int,
        *,
        replies: list[str] | None = None,
        reply_ids: list[int] | None = None,
        duplicate: bool = False,
    ) -> HandledMessage:
        with timed(STORE), self._sessions() as session:
            message = session.get(Message, message_id)
            rows = session.execute(
                select(Message.id, Message.text, Message.meta)
                .where(Message.reply_to_id == message_id, Message.author == "assistant")
                .order_by(Message.id)
            ).all()
            if replies is None:
                reply_ids = [row.id for row in rows]
                replies = [row.text for row in rows]
            choices = next((row.meta[clarification.CHOICES_KEY] for row in rows
                            if isinstance(row.meta, dict) and clarification.CHOICES_KEY in row.meta), None)
            ticket = session.get(Ticket, message.ticket_id) if message.ticket_id else None
            notice_due = not duplicate and privacy_notice.notice_due(
                self._settings, session.get(ChannelIdentity, message.identity_id))
            info = None
            if ticket is not None:
                info = TicketInfo(
                    id=ticket.public_id,
                    status=ticket.status,
                    department=ticket.department,
                    priority=ticket.priority,
                    due_at=ticket.due_at,
                    created=message.handling == "escalated",
                    commitment=ticket_commitment(session, ticket, self._settings),
                )
            return HandledMessage(
                message_id=message_id,
                replies=replies,
                handling=message.handling,
                intent=message.intent,
                confidence=message.confidence,
                kb_entry_id=message.kb_entry_id,
                ticket=info,
                duplicate=duplicate,
                reply_ids=list(reply_ids or []),
                offered_entries=[e for e in (message.meta or {}).get(CITIZEN_OFFER_KEY) or [] if isinstance(e, str)],
                choices=choices,
                notice_due=notice_due,
                language=message.language,
            )
