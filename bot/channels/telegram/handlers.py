"""python-telegram-bot handlers: each update meant for us becomes an InboundMessage,
goes through the one Conversation, and its replies are delivered through the
durable outbound queue (so a failed sendMessage is retried, not lost)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from telegram import CallbackQuery, Message, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, wait_exponential

from bot.channels.telegram import choices, texts
from bot.channels.telegram.unstored import mark_unstored
from bot.channels.telegram.updates import command_and_argument, for_us, to_inbound
from bot.core.conversation import Conversation, HandledMessage
from bot.core.inbound import InboundMessage
from bot.outbox.delivery import DeliveryService
from bot.texts import text as catalogue_text
from bot.tickets.ids import extract_ticket_ids

logger = logging.getLogger(__name__)

# The update types we ask Telegram for (getUpdates / setWebhook ``allowed_updates``).
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]

# Attempts at storing and answering a message within one delivery of its update (the
# database restarting, a deadlock): the message id makes a retry safe. After the last
# one the update is reported unstored (bot.channels.telegram.unstored).
HANDLE_ATTEMPTS = 3


class ForUs(filters.MessageFilter):
    """Private chats, and group messages that address the bot (see updates.addressed_by)."""

    def filter(self, message: Message) -> bool:
        return for_us(message, message.get_bot())


ATTACHMENTS = (
    filters.PHOTO | filters.Document.ALL | filters.VOICE | filters.AUDIO | filters.VIDEO | filters.VIDEO_NOTE
    | filters.ANIMATION | filters.Sticker.ALL | filters.LOCATION | filters.CONTACT | filters.VENUE
    | filters.POLL | filters.Dice.ALL | filters.GAME | filters.STORY
)


class TelegramHandlers:
    def __init__(self, conversation: Conversation, delivery: DeliveryService, sessions: sessionmaker[Session], *,
                 retry_pause: float = 0.5, settle_seconds: float = 30.0, answer_timeout: float = 10.0) -> None:
        self._conversation = conversation
        self._delivery = delivery
        self._sessions = sessions
        self._retry_pause = retry_pause
        self._settle_seconds = settle_seconds
        # answerCallbackQuery / editMessageReplyMarkup: courtesies, never worth holding the chat up for.
        self._answer_timeout = answer_timeout

    def install(self, application: Application) -> None:
        new = filters.UpdateType.MESSAGE & ForUs()
        edited = filters.UpdateType.EDITED_MESSAGE & ForUs()
        application.add_handlers(
            [
                CommandHandler(["start", "help"], self.start, filters=new),
                CommandHandler("status", self.status, filters=new),
                CommandHandler("human", self.human, filters=new),
                # Linking this chat to the citizen's other channels is the core's (bot.identity):
                # it reads "/link ..." exactly as typed, like on every channel.
                CommandHandler("link", self.as_typed, filters=new),
                # "/privacy", "/stop", "/notify": read by the core like "privacy", "stop" and "notify me"
                # on every channel (bot.privacy.notice).
                CommandHandler(["privacy", "stop", "notify"], self.as_typed, filters=new),
                # So are /mydata and /erase (bot.privacy: a copy of the citizen's data, its erasure).
                CommandHandler(["mydata", "erase"], self.as_typed, filters=new),
                MessageHandler(new & filters.COMMAND, self.unknown_command),
                MessageHandler(new & filters.TEXT, self.text),
                MessageHandler(new & ATTACHMENTS, self.text),
                MessageHandler(edited, self.text),
                # Taps on "Do you mean ...?" buttons, whatever their data (a tampered one too).
                CallbackQueryHandler(self.choice),
                # Anything else (service messages, group talk not meant for us, other update
                # types): logged and left alone.
                TypeHandler(object, self.ignore),
            ]
        )
        application.add_error_handler(self.error)

    # --- handlers -------------------------------------------------------------------------
    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        # On first contact the core ends the welcome with the privacy notice (bot.privacy.notice).
        await self._answer_directly(to_inbound(update, context.bot), functools.partial(catalogue_text, "telegram.welcome"))

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        _command, argument = command_and_argument(update.effective_message.text or "")
        if not extract_ticket_ids(argument, expecting_id=True):
            await self._answer_directly(to_inbound(update, context.bot), functools.partial(catalogue_text, "telegram.ask_ticket_id"))
            return
        wording = texts.STATUS_FOR_ASSISTANT.format(argument=argument)
        await self._handle(to_inbound(update, context.bot, text_for_assistant=wording))

    async def human(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._handle(to_inbound(update, context.bot, text_for_assistant=texts.HUMAN_FOR_ASSISTANT))

    async def as_typed(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._handle(to_inbound(update, context.bot))

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._answer_directly(to_inbound(update, context.bot), functools.partial(catalogue_text, "telegram.unknown_command"))

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Text, captioned or bare attachments, and edits: the core decides what each needs."""
        inbound = to_inbound(update, context.bot)
        if inbound.kind == "text" and not inbound.assistant_text.strip() and inbound.edit_of is None:
            # "@our_bot" and nothing else
            await self._answer_directly(inbound, functools.partial(catalogue_text, "telegram.empty_mention"))
            return
        await self._handle(inbound)

    async def choice(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A tap on a "Do you mean ...?" button: stored like a message (its id is the callback
        query's, so a redelivered update is not handled twice) and settled by the core against
        the stored offer. The query is always answered, and the keyboard goes once settled."""
        query = update.callback_query
        if query.message is None:
            # A button of an inline-mode message: we send none, so it is not a citizen's pick.
            logger.debug("ignored callback query of update %s without a message", update.update_id)
            await self._answer_query(query, catalogue_text(choices.STALE_BUTTON))
            return
        inbound = choices.callback_to_inbound(update, context.bot)
        handled: HandledMessage | None = None
        try:
            if inbound.choice is None:
                # Not a choice at all: nothing for the assistant, but the tap is kept and answered.
                direct = functools.partial(self._conversation.answer_directly, handling="choice_invalid")
                handled = await self._store_and_answer(direct, inbound, catalogue_text(choices.MALFORMED_REPLY))
            else:
                handled = await self._store_and_answer(self._conversation.handle_inbound, inbound)
        finally:
            # Even when storing failed (the update comes again, and is answered then too):
            # the citizen's button must stop spinning.
            # Worded in the language of the turn, like the core's replies (None: before handling).
            language = handled.language if handled is not None else None
            text = catalogue_text(choices.STALE_BUTTON, language) if inbound.choice is None else (
                choices.answer_text(handled.handling, language)
                if handled is not None and not handled.duplicate else None)
            await self._answer_query(query, text)
        if (handled is not None and inbound.choice is not None and handled.handling in choices.SETTLED_HANDLINGS
                and choices.is_own_button(query)):
            await self._remove_keyboard(context, query)
        await self._deliver(handled)

    async def _answer_query(self, query: CallbackQuery, text: str | None) -> None:
        try:
            await asyncio.wait_for(query.answer(text=text), timeout=self._answer_timeout)
        except (TelegramError, asyncio.TimeoutError) as exc:
            # Too old (Telegram waits ~15 s), already answered by a first delivery of this update...
            logger.info("answerCallbackQuery failed: %s", type(exc).__name__)

    async def _remove_keyboard(self, context: ContextTypes.DEFAULT_TYPE, query: CallbackQuery) -> None:
        """The question is settled: its buttons go, so they cannot be tapped again. Best effort:
        a later tap is still refused by the core."""
        message = query.message
        if message is None:
            return
        try:
            await asyncio.wait_for(
                context.bot.edit_message_reply_markup(chat_id=message.chat.id, message_id=message.message_id,
                                                      reply_markup=None),
                timeout=self._answer_timeout,
            )
        except (TelegramError, asyncio.TimeoutError) as exc:
            # "message is not modified" (a double tap removed it already), "message to edit not found"...
            logger.info("removing the keyboard of message %s failed: %s", message.message_id, type(exc).__name__)

    async def ignore(self, update: object, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(update, Update):
            message = update.effective_message
            where = f" in {message.chat.type} chat" if message is not None else ""
            logger.debug("ignored update %s%s (not for us, or nothing to handle)", update.update_id, where)
        else:
            logger.debug("ignored %s", type(update).__name__)

    async def error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        logger.error("handling Telegram update %s failed", update_id, exc_info=context.error)
        if update_id is not None:
            # Handling again is safe (the store keeps one copy, answers once): Telegram is
            # asked for the update again rather than told to forget it.
            mark_unstored(context.application, update_id)

    # --- the one path every message takes -----------------------------------------------
    async def _handle(self, inbound: InboundMessage) -> None:
        handled = await self._store_and_answer(self._conversation.handle_inbound, inbound)
        await self._deliver(handled)

    async def _answer_directly(self, inbound: InboundMessage, reply: Callable[[], str]) -> None:
        """``reply`` words the answer once the core knows the message's language."""
        handled = await self._store_and_answer(self._conversation.answer_directly, inbound, reply)
        await self._deliver(handled)

    async def _store_and_answer(self, call: Any, *args: Any) -> HandledMessage:
        def log(state: RetryCallState) -> None:
            logger.warning("storing Telegram message %s failed (attempt %s); retrying",
                           args[0].external_id, state.attempt_number, exc_info=state.outcome.exception())

        # Pauses of retry_pause, then twice that; the last attempt's error is raised as it is.
        async for attempt in AsyncRetrying(stop=stop_after_attempt(HANDLE_ATTEMPTS),
                                           wait=wait_exponential(multiplier=self._retry_pause),
                                           reraise=True, before_sleep=log):
            with attempt:
                options: dict[str, Any] = {"replies_in_response": False}
                if attempt.retry_state.attempt_number > 1 and call == self._conversation.handle_inbound:
                    # The failed attempt may have stored the message before dying: answer it now.
                    options["resume_unanswered"] = True
                return await asyncio.to_thread(call, *args, **options)
        raise AssertionError("unreachable")

    async def _deliver(self, handled: HandledMessage) -> None:
        """Send the replies now, in order. A redelivered update is not answered again, but its
        replies still pending from a crash are sent now (deliver() skips what was sent)."""
        await self._delivery.deliver_many(handled.reply_ids, settle_seconds=self._settle_seconds)
