"""The main flows, end to end through the API, Rasa, the action server and the store."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core.conversation import Conversation
from bot.core.rasa_client import RasaClient
from bot.settings import Settings
from bot.store.models import KbOffer, Message
from bot.store.types import utcnow
from bot.tickets.ids import is_valid, new_ticket_id
from bot.tickets.models import Ticket, TicketEvent

pytestmark = pytest.mark.e2e

TICKET_ID = re.compile(r"\b[0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{2}[0-9A-Z*~$=](?![\w*~$=])")  # the last is a check symbol


def test_faq_question_is_answered_from_the_knowledge_base(assistant, sender):
    result = assistant.say(sender, "When is my bin collected?")
    assert result["handling"]["kind"] == "kb_answer"
    assert result["handling"]["kb_entry_id"] == "waste-collection-days"
    assert result["handling"]["ticket"] is None
    assert result["replies"] and "collect" in result["replies"][0]["text"].lower()


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("we've got an old couch to throw out, can the city pick it up?", "waste-bulky-items"),
        ("what does a new passport cost and how long does it take?", "civil-registry-passport"),
        ("where do I pay a parking ticket?", "parking-fine-payment"),
    ],
)
def test_paraphrased_question_gets_the_right_answer_a_question_or_a_person_never_a_wrong_answer(assistant, sender, text, entry):
    """How often paraphrases are answered is measured by `make eval`; here: never a wrong entry,
    and when the assistant asks, the right entry is among the options."""
    handling = assistant.say(sender, text)["handling"]
    assert handling["kind"] in {"kb_answer", "asked", "escalated"}
    if handling["kind"] == "kb_answer":
        assert handling["kb_entry_id"] == entry
    if handling["kind"] == "asked":
        assert entry in handling["offered_kb_entries"]


def test_complaint_is_escalated_with_ticket_id_and_commitment(assistant, sender):
    result = assistant.say(sender, "The woman at the registry counter was extremely rude to me this morning. Unacceptable.")
    handling = result["handling"]
    assert handling["kind"] == "escalated"
    ticket = handling["ticket"]
    assert ticket["created"] is True and ticket["status"] == "new"
    assert is_valid(ticket["id"])
    reply = result["replies"][0]["text"]
    assert ticket["id"] in reply and "24 hours" in reply


def test_problem_report_is_routed_to_the_roads_department(assistant, sender):
    result = assistant.say(sender, "There's a deep pothole on Mill Road outside number 14, a cyclist nearly fell")
    assert result["handling"]["kind"] == "escalated"
    assert result["handling"]["ticket"]["department"] == "roads"


def test_request_for_a_person_is_escalated(assistant, sender):
    result = assistant.say(sender, "I'd like to speak to a real person please")
    assert result["handling"]["kind"] == "escalated"
    with assistant.sessions()() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == result["handling"]["ticket"]["id"]))
        assert ticket.reason == "request_human"


def test_question_the_kb_does_not_cover_is_escalated(assistant, sender):
    result = assistant.say(sender, "Can I fly a drone over the football stadium on Saturday?")
    assert result["handling"]["kind"] == "escalated"
    with assistant.sessions()() as session:
        message = session.get(Message, result["message_id"])
    # For the agent: the entries the assistant found closest (bot.core.escalation.remember_kb_suggestions).
    assert len(message.meta["kb_suggestions"]) == 3


def test_unsure_question_is_asked_about_and_the_picked_number_is_answered_without_a_ticket(assistant, sender):
    result = assistant.say(sender, "visitor permits?")
    assert result["handling"]["kind"] == "asked" and result["handling"]["ticket"] is None
    options = result["replies"][-1]["options"]
    offered = result["handling"]["offered_kb_entries"]
    assert 1 <= len(offered) <= 3 and "parking-visitor-permit" in offered
    assert [o["kb_entry_id"] for o in options] == offered + [None] and options[-1]["number"] == 0
    for option in options:
        assert f"{option['number']}. {option['title']}" in result["replies"][-1]["text"]
    number = next(o["number"] for o in options if o["kb_entry_id"] == "parking-visitor-permit")
    picked = assistant.say(sender, str(number))
    assert (picked["handling"]["kind"], picked["handling"]["kb_entry_id"]) == ("kb_answer", "parking-visitor-permit")
    assert picked["handling"]["ticket"] is None


def test_question_near_an_entry_but_not_covered_is_never_answered(assistant, sender):
    """Chickens in the garden sits next to the garden-shed entry: asked about, or handed over,
    never answered; "none of these" then opens the ticket."""
    result = assistant.say(sender, "Can I keep chickens in my back garden in Eastbrook?")
    assert result["handling"]["kind"] in {"asked", "escalated"}
    if result["handling"]["kind"] == "asked":
        result = assistant.say(sender, "0")
    assert result["handling"]["kind"] == "escalated" and result["handling"]["ticket"]["created"] is True


def test_unsure_question_then_silence_opens_the_ticket_through_rasas_rule(assistant, sender):
    """The expiry loop's work, run here with the clock 31 minutes on: the time-out reaches the
    real Rasa as EXTERNAL_kb_offer_expired and its action opens the ticket."""
    asked = assistant.say(sender, "visitor permits?")
    assert asked["handling"]["kind"] == "asked"
    settings = Settings(api_keys="k" * 24, database_url=assistant.database_url)
    rasa = RasaClient(assistant.config.rasa_url, timeout_seconds=30)
    try:
        reply_ids = Conversation(settings, assistant.sessions(), rasa).expire_offers(now=utcnow() + timedelta(minutes=31))
    finally:
        rasa.close()
    with assistant.sessions()() as session:
        offer = session.scalars(select(KbOffer).where(KbOffer.message_id == asked["message_id"])).one()
        ticket = session.get(Ticket, offer.ticket_id)
        replies = [session.get(Message, i) for i in reply_ids]
        mine = [r for r in replies if r.reply_to_id == asked["message_id"]]
        assert offer.status == "expired" and ticket is not None
        assert len(mine) == 1 and mine[0].text.startswith("I haven't heard back from you, so")
        assert ticket.public_id in mine[0].text and mine[0].ticket_id == ticket.id
    late = assistant.say(sender, "1")  # a pick after the time-out: told where the question went
    assert late["handling"]["ticket"]["id"] == ticket.public_id


def test_unsure_question_then_none_opens_a_ticket(assistant, sender):
    assert assistant.say(sender, "visitor permits?")["handling"]["kind"] == "asked"
    declined = assistant.say(sender, "none of these")
    assert declined["handling"]["kind"] == "escalated"
    assert declined["handling"]["ticket"]["id"] in declined["replies"][0]["text"]


def test_every_question_the_assistant_may_offer_is_answered_with_its_own_entry(assistant, sender):
    from bot.core.routing import entry_questions
    from bot.settings import get_settings

    for entry, question in entry_questions(get_settings().kb_dir).items():
        handling = assistant.say(sender, question)["handling"]
        assert (handling["kind"], handling["kb_entry_id"]) == ("kb_answer", entry), question


def test_complaint_is_never_asked_about(assistant, sender):
    result = assistant.say(sender, "Your bin collection service is a disgrace, third week running nobody came.")
    assert result["handling"]["kind"] == "escalated"
    assert len(result["replies"]) == 1 and result["handling"]["offered_kb_entries"] == []
    assert result["replies"][0]["options"] is None


def test_follow_up_message_joins_the_open_ticket(assistant, sender):
    first = assistant.say(sender, "My housing benefit application from March still has no decision, what is going on?")
    ticket_id = first["handling"]["ticket"]["id"]
    second = assistant.say(sender, "I also want to complain that nobody answers the phone at social services.")
    assert second["handling"]["kind"] == "ticket_joined"
    assert second["handling"]["ticket"]["id"] == ticket_id
    assert ticket_id in second["replies"][0]["text"]
    with assistant.sessions()() as session:
        assert session.scalar(select(func.count()).select_from(Ticket).join(Message, Message.ticket_id == Ticket.id)
                              .where(Ticket.public_id == ticket_id, Message.direction == "in")) == 2


def test_ticket_transcript_includes_the_conversation_before_the_escalation(assistant, sender):
    assistant.say(sender, "When is my bin collected?")
    result = assistant.say(sender, "The bin men skipped our street again and left rubbish everywhere. I'm fed up.")
    with assistant.sessions()() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.public_id == result["handling"]["ticket"]["id"]))
        texts = [m.text for m in session.scalars(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id))]
        created = session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "created"))
    assert "When is my bin collected?" in texts
    assert "When is my bin collected?" in created.body


def test_owner_gets_the_status_of_their_ticket(assistant, sender):
    ticket_id = assistant.say(sender, "I want to talk to a human")["handling"]["ticket"]["id"]
    result = assistant.say(sender, f"what is the status of {ticket_id}?")
    assert result["handling"]["kind"] == "status"
    reply = result["replies"][0]["text"]
    assert ticket_id in reply and "waiting for a member of staff" in reply


def test_status_query_accepts_lowercase_id_without_dashes(assistant, sender):
    ticket_id = assistant.say(sender, "Please put me through to an agent")["handling"]["ticket"]["id"]
    result = assistant.say(sender, f"status {ticket_id.replace('-', '').lower()}")
    assert ticket_id in result["replies"][0]["text"]


def test_someone_else_learns_nothing_about_a_ticket(assistant, sender):
    ticket_id = assistant.say(sender, "I want to talk to a human")["handling"]["ticket"]["id"]
    assistant.say(sender + "-other", "hello")  # the first contact's answer ends with the privacy notice
    other = assistant.say(sender + "-other", f"what is the status of {ticket_id}?")
    unknown = assistant.say(sender + "-other", f"what is the status of {new_ticket_id()}?")
    assert other["replies"] == unknown["replies"]
    assert ticket_id not in other["replies"][0]["text"]
    assert "couldn't find" in other["replies"][0]["text"]


def test_mistyped_ticket_id_is_pointed_out(assistant, sender):
    ticket_id = assistant.say(sender, "Connect me with a member of staff")["handling"]["ticket"]["id"]
    typo = ticket_id[:-1] + ("0" if ticket_id[-1] != "0" else "1")
    result = assistant.say(sender, f"status of {typo}")
    assert "mistyped" in result["replies"][0]["text"]


def test_same_channel_address_is_one_citizen_on_two_channels_kept_apart(assistant, sender):
    web = assistant.say(sender, "I want to talk to a human", channel="web")
    sms = assistant.say(sender, f"status {web['handling']['ticket']['id']}", channel="sms")
    # Same address string on another channel is another identity until the citizen links them.
    assert "couldn't find" in sms["replies"][0]["text"]


def test_greeting_is_small_talk_not_a_ticket(assistant, sender):
    result = assistant.say(sender, "hello")
    assert result["handling"]["kind"] == "small_talk"
    assert result["handling"]["ticket"] is None


def test_every_message_in_and_out_is_stored_with_its_handling(assistant, sender):
    result = assistant.say(sender, "When is my bin collected?")
    with assistant.sessions()() as session:
        inbound = session.get(Message, result["message_id"])
        outbound = session.scalars(select(Message).where(Message.reply_to_id == inbound.id)).all()
    assert inbound.direction == "in" and inbound.text == "When is my bin collected?"
    assert inbound.intent == "faq" and inbound.confidence > 0 and inbound.kb_entry_id == "waste-collection-days"
    assert [m.text for m in outbound] == [r["text"] for r in result["replies"]]
    assert all(m.direction == "out" for m in outbound)
