"""The webhook: handshake, signatures, every message type, duplicates, statuses, bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.channels.whatsapp.models import WhatsAppWebhook
from bot.outbox.delivery import FAILED, SENT, record_success
from bot.outbox.outbound import SendResult
from bot.store.db import session_factory
from bot.store.models import Message
from bot.tickets.models import Ticket
from tests.channels.whatsapp.conftest import (
    ACCESS_TOKEN,
    APP_SECRET,
    FAQ_ANSWER,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    message,
    new_wamid,
    status,
    webhook,
)

WA_ID = "34600000001"


def _messages(db_url: str, direction: str | None = None) -> list[Message]:
    with session_factory(db_url)() as session:
        query = select(Message).order_by(Message.id)
        if direction:
            query = query.where(Message.direction == direction)
        return list(session.scalars(query))


def _inbox_size(db_url: str) -> int:
    with session_factory(db_url)() as session:
        return session.scalar(select(func.count()).select_from(WhatsAppWebhook))


# --- the verification handshake -----------------------------------------------------------


def test_handshake_with_the_right_token_echoes_the_challenge(wa) -> None:
    response = wa.verify(**{"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"})
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN[:-1], "hub.challenge": "1"},
    ],
)
def test_handshake_with_a_wrong_token_or_mode_is_refused(wa, params) -> None:
    response = wa.verify(**params)
    assert response.status_code == 403
    assert "1" not in response.text.replace("403", "")


# --- signatures -----------------------------------------------------------------------------


def test_unsigned_post_is_refused_and_nothing_is_stored(wa, db_url, graph) -> None:
    response = wa.post(webhook([message(WA_ID)]), secret=None)
    assert response.status_code == 401
    assert _messages(db_url) == [] and _inbox_size(db_url) == 0 and graph.requests == []


@pytest.mark.parametrize(
    "forgery",
    ["wrong-secret", "garbage", "sha256=", "sha1=abc", "tampered", "uppercase-other"],
)
def test_forged_post_is_refused_and_nothing_is_stored(wa, db_url, graph, forgery) -> None:
    payload = webhook([message(WA_ID)])
    if forgery == "wrong-secret":
        response = wa.post(payload, secret="not-the-app-secret")
    elif forgery == "tampered":
        # Signed for one body, sent with another (a different citizen slipped in).
        import json

        from bot.channels.whatsapp.signature import sign

        good = json.dumps(payload).encode()
        response = wa.post(raw=good.replace(WA_ID.encode(), b"34999999999"), signature=sign(good, APP_SECRET))
    elif forgery == "uppercase-other":
        response = wa.post(payload, signature="SHA256=" + "A" * 64)
    else:
        response = wa.post(payload, signature=forgery)
    assert response.status_code == 403
    assert _messages(db_url) == [] and _inbox_size(db_url) == 0 and graph.requests == []


def test_signature_in_upper_case_hex_is_accepted(wa, db_url) -> None:
    import json

    from bot.channels.whatsapp.signature import sign

    body = json.dumps(webhook([message(WA_ID)])).encode()
    header = sign(body, APP_SECRET)
    response = wa.post(raw=body, signature="sha256=" + header[7:].upper())
    assert response.status_code == 200


def test_oversized_body_is_refused(wa, db_url) -> None:
    huge = webhook([message(WA_ID, text="x" * 1_100_000)])
    assert wa.post(huge).status_code == 413
    assert _messages(db_url) == []


# --- text messages, the reply, duplicates -------------------------------------------------


def test_faq_question_is_stored_answered_and_the_reply_sent_through_the_graph_api(wa, db_url, graph) -> None:
    wamid = new_wamid()
    response = wa.post(webhook([message(WA_ID, text="When is my bin collected?", wamid=wamid)]))
    assert response.status_code == 200
    inbound, reply = _messages(db_url)
    assert (inbound.direction, inbound.channel, inbound.external_id) == ("in", "whatsapp", wamid)
    assert inbound.text == "When is my bin collected?" and inbound.handling == "kb_answer"
    assert inbound.meta["whatsapp"]["profile_name"] == "Ana"
    [sent] = graph.requests
    assert sent.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert sent.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert sent.body == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": WA_ID,
                         "type": "text", "text": {"preview_url": False, "body": FAQ_ANSWER}}
    assert (reply.direction, reply.delivery_status, reply.external_id) == ("out", SENT, "wamid.standin.1")
    assert reply.meta["whatsapp"]["sent_as"] == "text"
    assert _inbox_size(db_url) == 0  # handled deliveries leave the inbox


def test_redelivered_message_is_not_answered_twice(wa, db_url, graph, rasa) -> None:
    payload = webhook([message(WA_ID, wamid=new_wamid())])
    assert wa.post(payload).status_code == 200
    assert wa.post(payload).status_code == 200
    assert len(_messages(db_url, "in")) == 1 and len(_messages(db_url, "out")) == 1
    assert len(graph.requests) == 1 and len(rasa.seen) == 1


def test_complaint_gets_a_ticket_id(wa, db_url, graph) -> None:
    wa.post(webhook([message(WA_ID, text="The clerk was rude to me")]))
    with session_factory(db_url)() as session:
        ticket = session.scalars(select(Ticket)).one()
    assert ticket.public_id in graph.requests[0].text


def test_several_messages_in_one_delivery_are_answered_in_order(wa, db_url, graph, rasa) -> None:
    first, second = message(WA_ID, text="bin day?"), message(WA_ID, text="and the recycling bin?")
    wa.post(webhook([first, second]))
    assert rasa.seen == ["bin day?", "and the recycling bin?"]
    assert len(graph.requests) == 2


def test_a_reply_that_could_not_be_sent_stays_queued_for_the_worker(wa, db_url, graph) -> None:
    graph.fail_next(503, code=2, message="Service temporarily unavailable")
    assert wa.post(webhook([message(WA_ID)])).status_code == 200
    reply = _messages(db_url, "out")[0]
    assert reply.delivery_status == "pending" and "HTTP 503" in reply.delivery_error


# --- every message type -----------------------------------------------------------------


MEDIA = {"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "29ed500fa64eb55fc19dc4124acb300e5dcc54"}

NON_TEXT = [
    ("image", MEDIA, "photo", {"type": "image", "media_id": MEDIA["id"], "mime_type": "image/jpeg",
                               "sha256": MEDIA["sha256"]}),
    ("document", {**MEDIA, "mime_type": "application/pdf", "filename": "form.pdf"}, "document",
     {"type": "document", "media_id": MEDIA["id"], "mime_type": "application/pdf", "sha256": MEDIA["sha256"],
      "filename": "form.pdf"}),
    ("audio", {**MEDIA, "mime_type": "audio/ogg; codecs=opus", "voice": True}, "voice",
     {"type": "audio", "media_id": MEDIA["id"], "mime_type": "audio/ogg; codecs=opus", "sha256": MEDIA["sha256"],
      "voice": True}),
    ("audio", {**MEDIA, "mime_type": "audio/mpeg"}, "audio",
     {"type": "audio", "media_id": MEDIA["id"], "mime_type": "audio/mpeg", "sha256": MEDIA["sha256"]}),
    ("video", {**MEDIA, "mime_type": "video/mp4"}, "video",
     {"type": "video", "media_id": MEDIA["id"], "mime_type": "video/mp4", "sha256": MEDIA["sha256"]}),
    ("sticker", {**MEDIA, "mime_type": "image/webp", "animated": False}, "sticker",
     {"type": "sticker", "media_id": MEDIA["id"], "mime_type": "image/webp", "sha256": MEDIA["sha256"],
      "animated": False}),
    ("location", {"latitude": 40.4168, "longitude": -3.7038, "name": "Plaza Mayor", "address": "Madrid"},
     "location", {"type": "location", "latitude": 40.4168, "longitude": -3.7038, "name": "Plaza Mayor",
                  "address": "Madrid"}),
    ("unsupported", None, "other", {"type": "unsupported", "errors": ["131051: Message type unknown"]}),
]


@pytest.mark.parametrize(("kind_of", "body", "kind", "attachment"), NON_TEXT,
                         ids=[f"{case[0]}-{case[2]}" for case in NON_TEXT])
def test_non_text_message_is_stored_with_its_metadata_and_the_citizen_asked_for_text(
    wa, db_url, graph, rasa, kind_of, body, kind, attachment
) -> None:
    extra = {"errors": [{"code": 131051, "title": "Message type unknown"}]} if kind_of == "unsupported" else {}
    assert wa.post(webhook([message(WA_ID, kind_of, body, **extra)])).status_code == 200
    inbound, reply = _messages(db_url)
    assert inbound.meta["kind"] == kind and inbound.meta["attachment"] == attachment
    assert inbound.text == "" and inbound.handling == "attachment_unhandled"
    assert rasa.seen == []  # nothing to understand, and media is never downloaded
    assert "describe" in graph.requests[0].text and reply.delivery_status == SENT


def test_shared_contact_card_is_kept_for_the_agent(wa, db_url) -> None:
    card = {"name": {"formatted_name": "Luis Pérez", "first_name": "Luis"},
            "phones": [{"phone": "+34 600 000 002", "wa_id": "34600000002", "type": "CELL"}]}
    raw = message(WA_ID, "contacts", None, contacts=[card])
    wa.post(webhook([raw]))
    inbound = _messages(db_url, "in")[0]
    assert inbound.meta["kind"] == "contact"
    assert inbound.meta["attachment"]["contacts"] == [{"name": "Luis Pérez", "phones": ["+34 600 000 002"], "emails": []}]


def test_photo_with_a_caption_is_understood_by_its_caption(wa, db_url, graph, rasa) -> None:
    wa.post(webhook([message(WA_ID, "image", {**MEDIA, "caption": "is this bin collected on Tuesday?"})]))
    inbound = _messages(db_url, "in")[0]
    assert rasa.seen == ["is this bin collected on Tuesday?"]
    assert inbound.meta["attachment"]["caption"] == "is this bin collected on Tuesday?"
    assert graph.requests[0].text == FAQ_ANSWER


def test_photo_after_a_problem_report_joins_the_ticket(wa, db_url, graph) -> None:
    wa.post(webhook([message(WA_ID, text="Broken street light on Elm Street")]))
    wa.post(webhook([message(WA_ID, "image", MEDIA)]))
    with session_factory(db_url)() as session:
        ticket = session.scalars(select(Ticket)).one()
        photo = session.scalars(select(Message).where(Message.direction == "in").order_by(Message.id.desc())).first()
        assert photo.ticket_id == ticket.id and photo.handling == "attachment_added"
    assert ticket.public_id in graph.requests[1].text


@pytest.mark.parametrize(
    ("kind_of", "body", "text", "extra_key"),
    [
        ("interactive", {"type": "button_reply", "button_reply": {"id": "b1", "title": "bin collection"}},
         "bin collection", "interactive"),
        ("interactive", {"type": "list_reply", "list_reply": {"id": "l2", "title": "Bin days", "description": "d"}},
         "Bin days", "interactive"),
        ("button", {"payload": "MORE", "text": "Which bin goes out?"}, "Which bin goes out?", "button"),
    ],
)
def test_button_and_list_replies_are_understood_by_their_text(wa, db_url, rasa, kind_of, body, text, extra_key) -> None:
    wa.post(webhook([message(WA_ID, kind_of, body)]))
    inbound = _messages(db_url, "in")[0]
    assert rasa.seen == [text] and inbound.text == text
    assert extra_key in inbound.meta and "kind" not in inbound.meta


def test_reaction_is_stored_but_not_answered(wa, db_url, graph) -> None:
    wa.post(webhook([message(WA_ID, "reaction", {"message_id": "wamid.OUT1", "emoji": "👍"})]))
    [inbound] = _messages(db_url)
    assert inbound.meta["kind"] == "reaction" and inbound.meta["attachment"]["emoji"] == "👍"
    assert graph.requests == []


def test_message_in_reply_to_one_of_ours_keeps_the_context(wa, db_url) -> None:
    wa.post(webhook([message(WA_ID, context={"from": "15550001111", "id": "wamid.OURS"})]))
    assert _messages(db_url, "in")[0].meta["whatsapp"]["in_reply_to"] == "wamid.OURS"


# --- malformed input from a correctly signed request ---------------------------------------


def test_signed_but_invalid_json_is_refused_with_400(wa, db_url) -> None:
    for raw in (b"{not json", b"\xff\xfe\x00", b"", b"[" * 200_000 + b"]" * 200_000):
        response = wa.post(raw=raw)
        assert response.status_code == 400, raw
    assert _inbox_size(db_url) == 0


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"object": "page", "entry": []},
        {"object": "whatsapp_business_account"},
        {"object": "whatsapp_business_account", "entry": "nope"},
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": None}]}]},
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "account_update", "value": {}}]}]},
        webhook([{"from": WA_ID, "type": "text"}]),  # no id
        webhook([{"id": "wamid.x", "type": "text", "text": {"body": "hi"}}]),  # no sender
        webhook([{"from": ["list"], "id": 5, "type": "text"}]),
        webhook(statuses=[{"status": "read"}, {"id": None}]),
        webhook([message(WA_ID)], phone_number_id="999"),  # another business number
    ],
)
def test_signed_payload_of_the_wrong_shape_is_acknowledged_and_handled_without_crashing(wa, db_url, graph, payload) -> None:
    assert wa.post(payload).status_code == 200
    assert _messages(db_url) == [] and graph.requests == [] and _inbox_size(db_url) == 0


def test_one_bad_item_does_not_cost_the_good_ones(wa, db_url, graph) -> None:
    good = message(WA_ID, text="bin?")
    payload = webhook([{"from": WA_ID, "type": "text"}, good, message(WA_ID, "text", {"body": None})])
    assert wa.post(payload).status_code == 200
    texts = [m.text for m in _messages(db_url, "in")]
    assert texts == ["bin?", ""]  # the body-less text message is kept and the citizen asked for words
    assert len(graph.requests) == 2


# --- statuses ------------------------------------------------------------------------------


def test_statuses_are_recorded_on_the_sent_message(wa, db_url) -> None:
    wa.post(webhook([message(WA_ID)]))
    reply = _messages(db_url, "out")[0]
    for state in ("sent", "delivered", "read"):
        assert wa.post(webhook(statuses=[status(reply.external_id, state)])).status_code == 200
    reply = _messages(db_url, "out")[0]
    assert set(reply.meta["whatsapp"]["statuses"]) == {"sent", "delivered", "read"}
    assert reply.delivery_status == SENT


def test_failed_status_fails_the_delivery_with_metas_reason(wa, db_url) -> None:
    wa.post(webhook([message(WA_ID)]))
    reply = _messages(db_url, "out")[0]
    error = {"code": 131026, "title": "Message undeliverable",
             "error_data": {"details": "Receiver is incapable of receiving this message"}}
    wa.post(webhook(statuses=[status(reply.external_id, "failed", errors=[error])]))
    reply = _messages(db_url, "out")[0]
    assert reply.delivery_status == FAILED
    assert "131026" in reply.delivery_error and "incapable" in reply.delivery_error
    assert reply.meta["whatsapp"]["statuses"]["failed"]


def test_statuses_of_a_long_replys_later_part_are_kept_and_its_failure_counts(wa, db_url) -> None:
    wa.post(webhook([message(WA_ID)]))
    reply = _messages(db_url, "out")[0]
    # As the delivery worker records a reply the Graph sender had to send in two parts
    # (tests/channels/whatsapp/test_graph.py).
    second = "wamid.part_2"
    with session_factory(db_url).begin() as session:
        stored = session.get(Message, reply.id)
        record_success(stored, SendResult(external_id=reply.external_id, part_ids=[second]))
    wa.post(webhook(statuses=[status(reply.external_id, "delivered"), status(second, "delivered")]))
    reply = _messages(db_url, "out")[0]
    assert set(reply.meta["whatsapp"]["statuses"]) == {"delivered"}
    assert set(reply.meta["whatsapp"]["part_statuses"][second]) == {"delivered"}
    assert reply.delivery_status == SENT

    wa.post(webhook(statuses=[status(second, "failed", errors=[{"code": 131049, "title": "Not delivered"}])]))
    reply = _messages(db_url, "out")[0]
    assert reply.delivery_status == FAILED and "131049" in reply.delivery_error
    # A wamid that only looks like a part (a prefix of one) matches nothing.
    assert wa.post(webhook(statuses=[status("wamid.part_", "read")])).status_code == 200
    reply = _messages(db_url, "out")[0]
    assert set(reply.meta["whatsapp"]["part_statuses"]) == {second}
    assert "read" not in reply.meta["whatsapp"]["part_statuses"][second]


def test_status_for_a_message_we_did_not_send_is_ignored(wa, db_url) -> None:
    assert wa.post(webhook(statuses=[status("wamid.unknown", "delivered")])).status_code == 200
    assert _messages(db_url) == [] and _inbox_size(db_url) == 0
