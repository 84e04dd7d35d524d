""""Was it solved?" through the conversation, before Rasa: yes -> rating -> comment, no -> what is
still wrong -> reopened, bad ratings asked again, new questions to the assistant as usual."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.conversation import Conversation
from bot.core.inbound import InboundMessage, KbChoice
from bot.feedback import service
from bot.feedback.models import STEP_COMMENT, STEP_DONE, STEP_RATING, STEP_REASON, FeedbackSurvey
from bot.settings import Settings
from bot.store.db import session_factory
from bot.store.models import Message
from bot.tickets.models import Ticket, TicketEvent
from bot.tickets.status import OPEN, RESOLVED
from tests.feedback.helpers import resolved_and_asked


class RecordingRasa:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, *, sender, text, metadata):
        self.sent.append(text)
        return []


def _setup(db_url: str, **kw) -> tuple[Conversation, RecordingRasa, str, str]:
    settings = Settings(api_keys="k" * 20, database_url=db_url, privacy_notice_channels="")
    rasa = RecordingRasa()
    with session_factory(db_url).begin() as session:
        ticket, survey = resolved_and_asked(session, **kw)
        public_id, token = ticket.public_id, survey.token
    return Conversation(settings, session_factory(db_url), rasa), rasa, public_id, token


def _say(conversation: Conversation, text: str, n: int, *, choice: KbChoice | None = None, sender: str = "77"):
    return conversation.handle_inbound(
        InboundMessage(channel="telegram", sender=sender, text=text, external_id=f"u{n}", choice=choice),
        replies_in_response=False)


def _survey(db_url: str) -> FeedbackSurvey:
    with session_factory(db_url)() as session:
        return session.scalars(select(FeedbackSurvey)).one()


def test_yes_then_a_bad_rating_then_a_rating_then_a_comment(db_url: str) -> None:
    conversation, rasa, public_id, token = _setup(db_url)
    handled = _say(conversation, "Yes", 1, choice=KbChoice(token, service.YES))
    assert handled.handling == service.ANSWER
    assert handled.replies == ["Thank you. How would you rate our help from 1 (poor) to 5 (very good)? "
                               "Reply with a number, or \"skip\"."]
    assert [o["n"] for o in handled.choices["options"]] == [1, 2, 3, 4, 5]
    # A redelivered tap is not answered twice.
    again = _say(conversation, "Yes", 1, choice=KbChoice(token, service.YES))
    assert again.duplicate
    for n, bad in enumerate(("11", "0", "abc"), start=2):
        handled = _say(conversation, bad, n)
        assert handled.handling == service.INVALID
        assert handled.replies == ["Please reply with a number from 1 to 5 (1 is poor, 5 is very good), or \"skip\"."]
        survey = _survey(db_url)
        assert survey.rating is None and survey.step == STEP_RATING
    # A stale "Yes" tapped now says it was answered, and records nothing.
    stale = _say(conversation, "Yes", 9, choice=KbChoice(token, service.YES))
    assert stale.handling == "choice_already_answered"
    handled = _say(conversation, "4", 10)
    assert handled.replies == ["Thanks. Anything you want to add? (or \"no\")"]
    assert _survey(db_url).rating == 4 and _survey(db_url).step == STEP_COMMENT
    handled = _say(conversation, "The new light is very bright, thank you", 11)
    assert handled.replies == ["Thank you for your feedback."]
    survey = _survey(db_url)
    assert survey.step == STEP_DONE and survey.comment == "The new light is very bright, thank you"
    assert survey.solved is True and rasa.sent == []
    # Done: a "5" now is an ordinary message for the assistant.
    _say(conversation, "5", 12)
    assert rasa.sent == ["5"]
    with session_factory(db_url)() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == public_id)).one()
        assert ticket.status == RESOLVED
        answers = list(session.scalars(select(Message.ticket_id).where(Message.handling == service.ANSWER)))
        assert answers and set(answers) == {ticket.id}


def test_no_reopens_the_ticket_and_the_next_message_is_what_is_wrong(db_url: str) -> None:
    conversation, rasa, public_id, _token = _setup(db_url)
    handled = _say(conversation, "no", 1)
    assert f"I've reopened ticket {public_id}" in handled.replies[0] and "What is still wrong?" in handled.replies[0]
    assert _survey(db_url).step == STEP_REASON and _survey(db_url).solved is False
    with session_factory(db_url)() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == public_id)).one()
        assert ticket.status == OPEN and ticket.department == "roads"
        event = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                          TicketEvent.to_status == OPEN)).one()
        assert event.actor == "citizen"
    handled = _say(conversation, "The light still flickers every night", 2)
    assert public_id in handled.replies[0] and handled.handling == service.ANSWER
    assert rasa.sent == []
    with session_factory(db_url)() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == public_id)).one()
        notes = list(session.scalars(select(TicketEvent.body).where(TicketEvent.ticket_id == ticket.id,
                                                                    TicketEvent.kind == "note")))
        assert "What the citizen says is still wrong: The light still flickers every night" in notes
        kinds = list(session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)))
        assert "citizen_message" in kinds
    assert _survey(db_url).step == STEP_DONE


def test_a_new_question_goes_to_the_assistant_and_the_survey_keeps_waiting(db_url: str) -> None:
    conversation, rasa, _public_id, _token = _setup(db_url)
    _say(conversation, "When is my bin collected on Mill Road?", 1)
    assert rasa.sent == ["When is my bin collected on Mill Road?"]
    assert _survey(db_url).step == "solved"
    handled = _say(conversation, "yes it was", 2)
    assert handled.handling == service.ANSWER and _survey(db_url).solved is True


def test_another_citizens_button_settles_nothing(db_url: str) -> None:
    conversation, _rasa, _public_id, token = _setup(db_url)
    handled = _say(conversation, "Yes", 1, choice=KbChoice(token, service.YES), sender="99")
    assert handled.handling != service.ANSWER
    assert _survey(db_url).solved is None


def test_after_no_a_reply_in_the_tickets_e_mail_thread_is_the_reason(db_url: str) -> None:
    conversation, _rasa, public_id, _token = _setup(db_url, channel="email", sender="ana@example.org")

    def mail(text: str, n: int, thread: str | None = None):
        return conversation.handle_inbound(InboundMessage(
            channel="email", sender="ana@example.org", text=text, external_id=f"<m{n}@x>", thread_ticket=thread),
            replies_in_response=True)

    assert mail("No", 1).handling == service.ANSWER
    joined = mail("The light still flickers", 2, thread=public_id)
    assert joined.ticket.id == public_id
    survey = _survey(db_url)
    assert survey.step == STEP_DONE and survey.comment == "The light still flickers"
