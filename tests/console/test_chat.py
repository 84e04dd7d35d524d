"""The citizens' web chat: the real Conversation with a stand-in for Rasa, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.channels.web import chat
from bot.core.clarification import CHOICES_KEY, none_option_title
from bot.core.conversation import Conversation
from bot.core.inbound import KbChoice
from bot.store.db import session_factory, session_scope
from bot.store.models import ChannelIdentity, KbOffer, Message
from bot.tickets.models import Ticket
from bot.tickets.replies import reply_to_ticket
from tests.console.chat_asking import BULKY, GARDEN, UNSURE, AskingRasa, answer_text, asking_environment
from tests.console.conftest import build_app, make_settings, sign_in, staff_factory
from tests.console.insights_seed import ANSWER, FakeRasa


@pytest.fixture
def rasa(db_url: str) -> FakeRasa:
    return FakeRasa(db_url, answer_everything=True)


@pytest.fixture
def chat_client(db_url: str, rasa: FakeRasa):
    settings = make_settings(db_url)
    app = build_app(settings, rasa=rasa)
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def _open(client: TestClient) -> str:
    page = client.get("/chat")
    assert page.status_code == 200
    return re.search(r'<meta name="chat-token" content="([0-9a-f]+)">', page.text).group(1)


def _send(client: TestClient, token: str, text: str, **extra) -> Any:
    return client.post("/chat/messages", json={"text": text, **extra}, headers={"X-Chat-Token": token})


def test_page_is_public_mobile_ready_and_sets_an_anonymous_cookie(chat_client) -> None:
    page = chat_client.get("/chat")
    assert page.status_code == 200
    html = page.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1' in html
    assert "Privacy: what we store and why" in html
    assert "<script>" not in html and 'style="' not in html and "<script src=\"/chat/static/chat.js\">" in html
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{chat.COOKIE}=")
    for part in ("HttpOnly", "Path=/chat", "SameSite=strict", f"Max-Age={30 * 86400}"):
        assert part.lower() in cookie.lower()
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["cache-control"] == "no-store"
    # A second visit keeps the same visitor.
    again = chat_client.get("/chat")
    assert "set-cookie" not in again.headers


def test_a_message_goes_through_the_conversation_and_gets_the_reply(chat_client, db_url, rasa) -> None:
    token = _open(chat_client)
    response = _send(chat_client, token, "How do I get rid of an old sofa?", client_id="abcdef12-0001")
    assert response.status_code == 200, response.text
    data = response.json()
    assert [r["text"] for r in data["replies"]] == [ANSWER]
    assert data["duplicate"] is False and data["ticket"] is None
    with session_scope(db_url) as session:
        identity = session.scalars(select(ChannelIdentity).where(ChannelIdentity.channel == "web")).one()
        cookie = chat_client.cookies[chat.COOKIE]
        assert identity.address == chat.sender_address(cookie) and cookie not in identity.address
        messages = list(session.scalars(select(Message).order_by(Message.id)))
        assert [(m.direction, m.text, m.delivery_status) for m in messages] == [
            ("in", "How do I get rid of an old sofa?", None), ("out", ANSWER, "sent")]
        assert messages[0].handling == "kb_answer" and messages[0].meta == {"source": "web_chat"}


def test_a_retried_post_is_not_answered_twice(chat_client, rasa, db_url) -> None:
    token = _open(chat_client)
    first = _send(chat_client, token, "Bulky waste?", client_id="retry-0000001")
    second = _send(chat_client, token, "Bulky waste?", client_id="retry-0000001")
    assert second.status_code == 200 and second.json()["duplicate"] is True
    assert first.json()["message_id"] == second.json()["message_id"]
    assert rasa.calls == ["Bulky waste?"]


def test_escalation_then_an_agents_reply_arrives_by_polling(chat_client, rasa, db_url) -> None:
    token = _open(chat_client)
    rasa.down = True
    data = _send(chat_client, token, "My street light has been broken for a week").json()
    assert data["ticket"] and data["ticket"] in data["replies"][0]["text"]

    history = chat_client.get("/chat/messages", headers={"X-Chat-Token": token}).json()["messages"]
    assert [(m["direction"], m["author"]) for m in history] == [("in", None), ("out", "assistant")]
    after = history[-1]["id"]

    with session_scope(db_url) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.public_id == data["ticket"])).one()
        reply = reply_to_ticket(session, ticket, "We will repair it on Monday.", author="agent:ana")
        assert reply.channel == "web" and reply.delivery_status == "pending"
        reply_id = reply.id

    polled = chat_client.get(f"/chat/messages?after={after}", headers={"X-Chat-Token": token}).json()["messages"]
    assert [(m["id"], m["text"], m["author"]) for m in polled] == [(reply_id, "We will repair it on Monday.", "agent")]
    with session_scope(db_url) as session:
        assert session.get(Message, reply_id).delivery_status == "sent"
    # A lost poll is repeated with the same cursor and returns the same line.
    again = chat_client.get(f"/chat/messages?after={after}", headers={"X-Chat-Token": token}).json()["messages"]
    assert [m["id"] for m in again] == [reply_id]


def test_visitors_see_only_their_own_chat(chat_client, db_url) -> None:
    token = _open(chat_client)
    _send(chat_client, token, "my private question")
    with TestClient(chat_client.app, base_url="http://testserver") as stranger:
        other = _open(stranger)
        assert stranger.get("/chat/messages", headers={"X-Chat-Token": other}).json() == {"messages": []}
        # The first visitor's token is useless without their cookie.
        assert stranger.get("/chat/messages", headers={"X-Chat-Token": token}).status_code == 403


def test_requests_without_cookie_token_or_from_another_site_are_refused(chat_client, rasa) -> None:
    with TestClient(chat_client.app, base_url="http://testserver") as fresh:
        assert fresh.post("/chat/messages", json={"text": "hi"}, headers={"X-Chat-Token": "x"}).status_code == 403
    token = _open(chat_client)
    assert chat_client.post("/chat/messages", json={"text": "hi"}).json()["error"] == "bad_token"
    assert _send(chat_client, "0" * 64, "hi").status_code == 403
    cross = chat_client.post("/chat/messages", json={"text": "hi"},
                             headers={"X-Chat-Token": token, "Origin": "https://evil.example"})
    assert cross.status_code == 403 and cross.json()["error"] == "cross_site"
    form = chat_client.post("/chat/messages", data={"text": "hi"}, headers={"X-Chat-Token": token})
    assert form.status_code == 415
    assert rasa.calls == []


def test_bad_input_gets_a_clear_answer(chat_client, rasa) -> None:
    token = _open(chat_client)
    assert _send(chat_client, token, "   ").status_code == 422
    assert _send(chat_client, token, "x" * (chat.MAX_TEXT_CHARS + 1)).status_code == 413
    assert _send(chat_client, token, "hi", client_id="<bad>").status_code == 422
    broken = chat_client.post("/chat/messages", content=b"{not json",
                              headers={"X-Chat-Token": token, "Content-Type": "application/json"})
    assert broken.status_code == 400
    assert rasa.calls == []


def test_rate_limit_per_visitor(chat_client, rasa) -> None:
    token = _open(chat_client)
    for i in range(chat.PER_COOKIE_PER_MINUTE):
        assert _send(chat_client, token, f"question {i}").status_code == 200
    limited = _send(chat_client, token, "one too many")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "wait" in limited.json()["detail"]
    assert len(rasa.calls) == chat.PER_COOKIE_PER_MINUTE


def test_rate_limiter_windows_and_memory_bound() -> None:
    now = [1000.0]
    limiter = chat.RateLimiter(2, max_keys=3, clock=lambda: now[0])
    assert limiter.retry_after("a") == 0 and limiter.retry_after("a") == 0
    assert limiter.retry_after("a") == 61
    now[0] += 30
    assert limiter.retry_after("a") == 31
    now[0] += 31
    assert limiter.retry_after("a") == 0
    for key in "bcde":
        limiter.retry_after(key)
    assert "a" not in limiter._hits and len(limiter._hits) == 3


def test_api_workers_share_one_budget_per_visitor_through_redis(redis_url: str) -> None:
    """Two workers (two limiters on one Redis) count one visitor together; the key is hashed."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        first, _ = chat.rate_limiters(client)
        second, _ = chat.rate_limiters(client)
        cookie = chat.new_visitor()
        allowed = [(first if i % 2 else second).retry_after(cookie) == 0 for i in range(chat.PER_COOKIE_PER_MINUTE)]
        assert all(allowed)
        assert 1 <= first.retry_after(cookie) <= 61 and second.retry_after(cookie) >= 1
        assert first.retry_after(chat.new_visitor()) == 0  # another visitor has a budget of its own
        assert not [key for key in client.scan_iter("crm:chat:rate:*") if cookie.encode() in key]
    finally:
        for key in client.scan_iter("crm:chat:rate:*"):
            client.delete(key)
        client.close()


def test_an_unreachable_redis_does_not_refuse_citizens() -> None:
    import redis

    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    client = redis.Redis(host="127.0.0.1", port=9, socket_timeout=0.2, socket_connect_timeout=0.2)
    per_cookie, _ = chat.rate_limiters(client)
    cookie = chat.new_visitor()
    assert [per_cookie.retry_after(cookie) for _ in range(chat.PER_COOKIE_PER_MINUTE)] == [0] * chat.PER_COOKIE_PER_MINUTE
    assert per_cookie.retry_after(cookie) >= 1  # the worker's own window still limits


def test_visitor_helpers() -> None:
    cookie = chat.new_visitor()
    assert chat.valid_visitor(cookie) and not chat.valid_visitor("short") and not chat.valid_visitor(None)
    assert chat.token_matches(cookie, chat.csrf_token(cookie))
    assert not chat.token_matches(cookie, chat.csrf_token(chat.new_visitor()))
    assert chat.csrf_token(cookie) not in chat.sender_address(cookie)


# --- "Do you mean ...?" buttons -----------------------------------------------------------------


class RecordingConversation:
    """The real Conversation; keeps what the chat handed it."""

    def __init__(self, inner: Conversation) -> None:
        self.inner = inner
        self.seen: list[Any] = []

    def handle_inbound(self, inbound, **kwargs):
        self.seen.append(inbound)
        return self.inner.handle_inbound(inbound, **kwargs)


@pytest.fixture
def asking(db_url: str):
    settings = make_settings(db_url)
    rasa = AskingRasa()
    app = build_app(settings)
    conversation = RecordingConversation(Conversation(settings, session_factory(db_url), rasa))
    app.state.web_chat.conversation = conversation
    with asking_environment(db_url, settings.kb_dir, settings.api_keys.get_secret_value()):
        with TestClient(app, base_url="http://testserver") as client:
            yield client, conversation, rasa


def _ask(client: TestClient, token: str) -> dict:
    response = _send(client, token, UNSURE, client_id="ask-00000001")
    assert response.status_code == 200, response.text
    return response.json()["replies"][-1]


def test_an_asking_reply_carries_its_buttons_in_the_response_and_the_history(asking, db_url) -> None:
    client, _, _ = asking
    token = _open(client)
    reply = _ask(client, token)
    assert "Reply with the number." in reply["text"]
    choices = reply["choices"]
    offer = choices["offer"]
    assert [o["n"] for o in choices["options"]] == [1, 2, 0]
    assert choices["options"][-1]["title"] == none_option_title()
    assert [o["choice"] for o in choices["options"]] == [f"kb:{offer}:1", f"kb:{offer}:2", f"kb:{offer}:0"]
    # Entry ids stay in the store: the page needs titles and choices only.
    assert set(choices["options"][0]) == {"n", "title", "choice"}
    with session_scope(db_url) as session:
        stored = session.get(Message, reply["id"])
        assert [o["entry"] for o in stored.meta[CHOICES_KEY]["options"]] == [BULKY, GARDEN]
        assert [o["title"] for o in stored.meta[CHOICES_KEY]["options"]] == [o["title"] for o in choices["options"][:2]]
        lines = chat.fetch_lines(session, chat.sender_address(client.cookies[chat.COOKIE]))
        assert [line.choices is not None for line in lines] == [False, True]
        assert lines[-1].choices.as_json() == choices

    history = client.get("/chat/messages", headers={"X-Chat-Token": token}).json()["messages"]
    assert [m["choices"] for m in history] == [None, choices]


def test_a_button_sends_the_choice_and_its_title_and_gets_the_picked_answer(asking, db_url) -> None:
    client, conversation, rasa = asking
    token = _open(client)
    choices = _ask(client, token)["choices"]
    garden = choices["options"][1]
    response = _send(client, token, garden["title"], client_id="pick-0000001", choice=garden["choice"])
    assert response.status_code == 200, response.text
    data = response.json()
    assert [r["text"] for r in data["replies"]] == [answer_text(GARDEN)]
    assert data["replies"][0]["choices"] is None and data["ticket"] is None

    inbound = conversation.seen[-1]
    assert inbound.choice == KbChoice(choices["offer"], 2) and inbound.text == garden["title"]
    assert inbound.external_id == chat.external_id(chat.sender_address(client.cookies[chat.COOKIE]), "pick-0000001")
    assert rasa.calls[-1].startswith("/choose_kb_entry")
    with session_scope(db_url) as session:
        picked = session.get(Message, data["message_id"])
        assert (picked.text, picked.handling, picked.kb_entry_id) == (garden["title"], "kb_answer", GARDEN)
        assert session.scalars(select(KbOffer)).one().status == "answered"
        assert session.scalars(select(Ticket)).all() == []

    # A second tap on the same button is not answered again.
    again = _send(client, token, garden["title"], client_id="pick-0000002", choice=garden["choice"]).json()
    assert answer_text(GARDEN) not in [r["text"] for r in again["replies"]]
    assert "already answered" in again["replies"][0]["text"]


def test_a_malformed_choice_is_refused_before_the_conversation(asking, db_url) -> None:
    client, conversation, rasa = asking
    token = _open(client)
    for bad in ("kb:abc", "kb:abc:x", "tg:abc:1", "kb:" + "a" * 17 + ":1", "kb:ab-c:1", "kb:abc:-1", 3, ["kb:abc:1"], ""):
        response = _send(client, token, "How do I get rid of an old sofa?", choice=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.json() == {"error": "invalid_choice", "detail": response.json()["detail"]}
    assert conversation.seen == [] and rasa.calls == []
    with session_scope(db_url) as session:
        assert session.scalars(select(Message)).all() == []
    # The choice needs the button's title as its text, like any message.
    assert _send(client, token, " ", choice="kb:abc:1").json()["error"] == "empty"


def test_a_well_formed_choice_of_an_unknown_offer_gets_no_answer(asking, db_url) -> None:
    client, _, _ = asking
    token = _open(client)
    data = _send(client, token, "How do I get rid of an old sofa?", choice="kb:zzzzzzzzzzzz:1").json()
    assert data["replies"] and all(not r["text"].startswith("ANSWER") for r in data["replies"])


def test_none_of_these_leaves_a_readable_trace_on_the_ticket_page(asking, db_url) -> None:
    client, _, _ = asking
    token = _open(client)
    choices = _ask(client, token)["choices"]
    none = choices["options"][-1]
    data = _send(client, token, none["title"], client_id="none-0000001", choice=none["choice"]).json()
    assert data["ticket"] and data["ticket"] in data["replies"][0]["text"]

    staff_factory(db_url)("sam", role="supervisor", departments=())
    with TestClient(client.app, base_url="http://testserver") as agent:
        sign_in(agent, "sam")
        page = agent.get(f"/console/tickets/{data['ticket']}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "asked: Do you mean …?" in html
    offered = re.search(r'<ul class="small asked-offer"[^>]*>(.*?)</ul>', html, re.S).group(1)
    assert f"({BULKY})" in offered and f"({GARDEN})" in offered
    assert choices["options"][0]["title"].replace("'", "&#39;") in offered
    note = re.search(r'<div class="note-body">(.*?)</div>', html, re.S).group(1)
    assert "asked the citizen whether they meant" in note and "\n" in note and BULKY in note
    assert "none of these" in note


def test_chat_choices_read_only_the_documented_shape() -> None:
    good = {"offer": "abc234", "options": [{"n": 1, "entry": BULKY, "title": "Sofa?"}],
            "none": {"n": 0, "title": none_option_title()}}
    parsed = chat.chat_choices(good)
    assert parsed.as_json() == {"offer": "abc234", "options": [
        {"n": 1, "title": "Sofa?", "choice": "kb:abc234:1"}, {"n": 0, "title": none_option_title(), "choice": "kb:abc234:0"}]}
    for bad in (None, [], {"offer": 5}, {**good, "offer": "a:b"}, {**good, "options": [{"n": "1", "title": "x"}]},
                {**good, "options": [{"n": True, "title": "x"}]}, {**good, "options": [{"n": 1, "title": " "}]},
                {**good, "options": [{"n": 100, "title": "x"}]}, {**good, "options": []}):
        assert chat.chat_choices(bad) is None, bad
