"""What channels may add to a message: a wording for the assistant, an edit of an earlier
message, or an answer of their own. The stored text is always what the citizen typed."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.conversation import Conversation
from bot.core.inbound import InboundMessage
from bot.core.turns import METADATA_KEY
from bot.settings import Settings
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory
from bot.store.messages import record_handling, record_inbound
from bot.store.models import Message
from bot.tickets.models import TicketEvent
from bot.tickets.service import open_or_join_ticket


class EchoRasa:
    """Answers every text with what it read, recording the turn as an action would."""

    def __init__(self, db_url: str) -> None:
        self.sessions = session_factory(db_url)
        self.seen: list[str] = []

    def send(self, *, sender: str, text: str, metadata: dict) -> list[dict]:
        self.seen.append(text)
        with self.sessions.begin() as session:
            record_handling(session.get(Message, metadata[METADATA_KEY]), intent="greet", confidence=1.0,
                            handling="small_talk")
        return [{"text": f"echo: {text}"}]


def _settings(db_url: str) -> Settings:
    return Settings(api_keys="k" * 20, database_url=db_url, privacy_notice_channels="")  # the first-contact notice: tests/privacy


def _conversation(db_url: str) -> tuple[Conversation, EchoRasa]:
    rasa = EchoRasa(db_url)
    return Conversation(_settings(db_url), session_factory(db_url), rasa), rasa


def _msg(text: str, external_id: str, **kw) -> InboundMessage:
    return InboundMessage(channel="telegram", sender="501", text=text, external_id=external_id, **kw)


def test_assistant_reads_its_own_wording_but_the_typed_text_is_stored(db_url: str) -> None:
    conversation, rasa = _conversation(db_url)
    handled = conversation.handle_inbound(
        _msg("/status K7M-39Q-XD2", "501:1", text_for_assistant="what is the status of K7M-39Q-XD2?")
    )
    assert rasa.seen == ["what is the status of K7M-39Q-XD2?"]
    with session_factory(db_url)() as session:
        assert session.get(Message, handled.message_id).text == "/status K7M-39Q-XD2"


def test_caption_that_was_only_a_mention_is_an_attachment_without_words(db_url: str) -> None:
    conversation, rasa = _conversation(db_url)
    handled = conversation.handle_inbound(
        _msg("@citybot", "501:2", kind="photo", text_for_assistant="", metadata={"attachment": {"file_id": "x"}})
    )
    assert rasa.seen == [] and handled.handling == "attachment_unhandled"


def test_channel_answers_directly_and_both_sides_are_stored_once(db_url: str) -> None:
    conversation, rasa = _conversation(db_url)
    first = conversation.answer_directly(_msg("/start", "501:3"), "Hello! We store ...", replies_in_response=False)
    again = conversation.answer_directly(_msg("/start", "501:3"), "Hello! We store ...", replies_in_response=False)
    assert rasa.seen == [] and first.handling == "channel_command" and first.replies == ["Hello! We store ..."]
    assert again.duplicate and again.reply_ids == first.reply_ids


def test_edit_of_an_answered_message_is_kept_not_answered_again(db_url: str) -> None:
    conversation, rasa = _conversation(db_url)
    original = conversation.handle_inbound(_msg("when is my bin colected?", "501:4"))
    first_edit = conversation.handle_inbound(_msg("when is my bin collected?", "501:4:e1", edit_of="501:4"))
    second_edit = conversation.handle_inbound(_msg("when is my bin collected??", "501:4:e2", edit_of="501:4"))
    assert rasa.seen == ["when is my bin colected?"]
    assert first_edit.handling == "edit_recorded" and "new message" in first_edit.replies[0]
    assert second_edit.replies == []  # told once per message, not on every keystroke fixed
    with session_factory(db_url)() as session:
        assert session.get(Message, original.message_id).meta["edits"] == 2
        assert session.get(Message, second_edit.message_id).text == "when is my bin collected??"


def test_edit_of_a_message_on_a_ticket_joins_the_ticket(db_url: str) -> None:
    with session_factory(db_url).begin() as session:
        identity = get_or_create_identity(session, "telegram", "501")
        report, _ = record_inbound(session, identity, "Pothole on Mil Road", external_id="501:9")
        ticket, _ = open_or_join_ticket(session, inbound=report, reason="report_problem", department="roads",
                                        settings=_settings(db_url))
        public_id = ticket.public_id
    conversation, rasa = _conversation(db_url)
    edit = conversation.handle_inbound(_msg("Pothole on Mill Road", "501:9:e1", edit_of="501:9"))
    assert rasa.seen == [] and edit.ticket.id == public_id and public_id in edit.replies[0]
    with session_factory(db_url)() as session:
        bodies = list(session.scalars(select(TicketEvent.body).where(TicketEvent.kind == "citizen_message")))
        assert bodies == ["Pothole on Mill Road"]


def test_edit_of_a_message_never_seen_is_handled_as_a_new_message(db_url: str) -> None:
    conversation, rasa = _conversation(db_url)
    handled = conversation.handle_inbound(_msg("hello there", "501:7:e1", edit_of="501:7"))
    assert rasa.seen == ["hello there"] and handled.handling == "small_talk"
