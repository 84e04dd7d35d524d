"""Property-based fuzzing of the generic API and the ticket endpoints (issue 24).

Whatever the body (random JSON shapes, sizes around every limit, any Unicode category, deep
nesting, duplicate keys, bytes that are not UTF-8): never a 5xx, every error in the documented
``{"error", "detail"}`` shape, every accepted message stored once with its exact text, and no
response that shows one sender another sender's text or ticket. Each example is a short
conversation of three senders who share ``message_id`` values on purpose.

Seeded (``derandomize``) and bounded, so a failure reproduces and the suite stays fast.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.api.app import MAX_INT_DIGITS, MAX_JSON_DEPTH
from bot.api.schemas import MAX_MESSAGE_ID_CHARS
from bot.store.db import session_factory
from bot.store.models import ChannelIdentity, Message
from tests.api.api_client import API_KEY, AUTH, OTHER_API_KEY, api_client, error_of, post_raw

MAX_BODY = 20_000  # the app under test takes bodies up to this size, so the 413 edge is cheap to reach
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

# Every Unicode category, surrogates and control characters included (the default leaves out surrogates).
chars = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Co"]),
    st.sampled_from("\x00\ufeff\u202e\U0010ffff\U0001f600é"),
)
texts = st.one_of(
    st.text(chars, max_size=40),
    st.sampled_from([1999, 2000, 2001]).map(lambda n: "x" * n),  # the classification limit
    st.sampled_from(["", " ", "\n\t", "\x00"]),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(chars, max_size=12),
    st.sampled_from([10**60, -(10**30)]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(chars, max_size=6), inner, max_size=4)),
    max_leaves=12,
)
message_ids = st.one_of(
    st.none(),
    st.sampled_from(["m1", "m2"]),  # shared by the senders: the keys that leaked in issue 24
    st.text(chars, max_size=12),
    st.sampled_from([MAX_MESSAGE_ID_CHARS - 1, MAX_MESSAGE_ID_CHARS, MAX_MESSAGE_ID_CHARS + 1, 255, 256]).map(lambda n: "k" * n),
)


@st.composite
def message_posts(draw, hostile: bool):
    """``hostile``: every field may be anything; otherwise a message the API should take, mostly."""
    if hostile:
        channel = draw(st.one_of(st.sampled_from(["web", "sms", "api"]), st.text(chars, max_size=8)))
        # Prefixed per example (see ``_sender``); 320 and 321 are lengths around the limit.
        sender = draw(st.one_of(st.sampled_from(["A", "B", "C", "", " ", 320, 321]), st.text(chars, max_size=10)))
        text = draw(texts)
        metadata = st.one_of(st.dictionaries(st.text(chars, max_size=6), json_values, max_size=4), json_values)
    else:
        channel = draw(st.sampled_from(["web", "sms", "api"]))
        sender = draw(st.one_of(st.sampled_from(["A", "B", "C"]), st.text(min_size=1, max_size=10)))
        text = draw(st.one_of(st.sampled_from(["hello", "I want to complain", "When is the bin collected?"]),
                              st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                                      min_size=1, max_size=30)))
        metadata = st.dictionaries(st.text(max_size=6), st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=8)),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
            max_leaves=6), max_size=3)
    payload: dict = {"channel": channel, "sender": sender, "text": text}
    if draw(st.booleans()):  # a marker only this sender's messages carry: seen elsewhere, it leaked
        payload["text"] += " [mark]"
    if (message_id := draw(message_ids if hostile else st.sampled_from([None, "m1", "m2"]))) is not None:
        payload["message_id"] = message_id
    if draw(st.booleans()):
        payload["metadata"] = draw(metadata)
    if hostile and draw(st.integers(0, 4)) == 0:
        payload[draw(st.text(chars, min_size=1, max_size=6))] = draw(json_scalars)
    if hostile:
        for key in draw(st.lists(st.sampled_from(sorted(payload)), max_size=1)):
            del payload[key]
    return ("message", payload, draw(st.booleans()), draw(st.sampled_from([API_KEY, API_KEY, OTHER_API_KEY])))


@st.composite
def raw_bodies(draw):
    kind = draw(st.sampled_from(["nested", "bigint", "duplicate", "bytes", "size", "truncated"]))
    if kind == "nested":
        depth = draw(st.one_of(st.integers(0, 1200), st.sampled_from(range(MAX_JSON_DEPTH - 3, MAX_JSON_DEPTH + 2))))
        inner = draw(st.sampled_from(["[", '{"k":']))
        close = "]" if inner == "[" else "}"
        return f'{{"channel": "web", "sender": "R", "text": "deep", "metadata": {{"x": {inner * depth}1{close * depth}}}}}'.encode()
    if kind == "bigint":
        digits = draw(st.sampled_from([MAX_INT_DIGITS - 1, MAX_INT_DIGITS, MAX_INT_DIGITS + 1, 5000]))
        return f'{{"channel": "web", "sender": "R", "text": "n", "metadata": {{"n": {"7" * digits}}}}}'.encode()
    if kind == "duplicate":
        key = draw(st.sampled_from(["channel", "sender", "text", "message_id", "metadata"]))
        return ('{"channel": "web", "sender": "R", "text": "one", "message_id": "d", "metadata": {}, "%s": %s}'
                % (key, json.dumps(draw(json_scalars)))).encode()
    if kind == "size":
        overhead = len(b'{"channel": "web", "sender": "R", "text": ""}')
        return b'{"channel": "web", "sender": "R", "text": "%s"}' % (b"y" * (MAX_BODY - overhead + draw(st.integers(-1, 1))))
    if kind == "truncated":
        whole = json.dumps({"channel": "web", "sender": "R", "text": draw(texts)}).encode("utf-8", "surrogatepass")
        return whole[: draw(st.integers(0, len(whole)))]
    return draw(st.binary(max_size=64))


ticket_ops = st.one_of(
    st.tuples(st.just("get_ticket"), st.one_of(st.integers(0, 5), st.text(chars, max_size=14))),
    st.tuples(st.just("reply"), st.one_of(st.integers(0, 5), st.text(chars, max_size=14)),
              st.one_of(st.just({"text": "We are on it [staff]", "author": "ana"}),
                        st.fixed_dictionaries({"text": texts, "author": st.text(chars, max_size=51)}), json_values)),
    st.tuples(st.just("pull"), st.sampled_from(["web", "sms", "api", "telegram", "pigeon"]),
              st.one_of(st.sampled_from(["A", "B", "C"]), st.text(chars, min_size=1, max_size=10)),
              st.one_of(st.none(), st.integers(-1, 10**6))),
)
# Messages first, then anything: the ticket operations then mostly find tickets to work on.
operations = st.tuples(
    st.lists(message_posts(hostile=False), min_size=1, max_size=3),
    st.lists(st.one_of(message_posts(hostile=False), message_posts(hostile=True), message_posts(hostile=True), ticket_ops), max_size=8),
).map(lambda parts: parts[0] + parts[1])


# Always tried, whatever the generator draws on a given machine (its draws differed between
# machines even derandomized): one sender reusing a message_id for another text (a 409), and
# the ticket endpoints on the ticket its message opened.
REUSED_KEY = [
    ("message", {"channel": "web", "sender": "A", "text": "hello", "message_id": "m1"}, True, API_KEY),
    ("message", {"channel": "web", "sender": "A", "text": "I want to complain", "message_id": "m1"}, True, API_KEY),
    ("message", {"channel": "web", "sender": "A", "text": "hello", "message_id": "m1"}, True, API_KEY),
    *[("get_ticket", 0)] * 3,
    ("reply", 0, {"text": "We are on it [staff]", "author": "ana"}),
    ("pull", "web", "A", None),
]


@dataclass
class World:
    """What the API has accepted in one example, to check every later answer against."""

    db_url: str
    prefix: str
    owners_of_marks: dict[str, tuple[str, str]] = field(default_factory=dict)  # mark -> (channel, sender)
    owners_of_tickets: dict[str, tuple[str, str]] = field(default_factory=dict)
    keys: dict[tuple, tuple[str, int]] = field(default_factory=dict)  # (channel, sender, api key, id) -> (text, row)
    stored: Counter = field(default_factory=Counter)  # (channel, sender) -> inbound rows expected
    marks: itertools.count = field(default_factory=itertools.count)

    def foreign(self, owner: tuple[str, str] | None) -> list[str]:
        """Marks and ticket IDs of everybody but ``owner``: none may appear in its answers."""
        return [m for m, o in self.owners_of_marks.items() if o != owner] + [
            t for t, o in self.owners_of_tickets.items() if o != owner
        ]


def _check_error(response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error_of(response)


def _encode(payload: dict, ascii_only: bool) -> bytes:
    return json.dumps(payload, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _post_message(client, world: World, payload: dict, ascii_only: bool, api_key: str, stats: Counter) -> None:
    payload = dict(payload)
    if "sender" in payload:
        payload["sender"] = _sender(world, payload["sender"])
    if isinstance(payload.get("text"), str) and payload["text"].endswith(" [mark]"):
        mark = f"[mark-{world.prefix}{next(world.marks)}]"
        payload["text"] = payload["text"][: -len(" [mark]")] + " " + mark
    response = post_raw(client, _encode(payload, ascii_only), api_key)
    stats[response.status_code] += 1
    _check_error(response)
    if response.status_code not in (200, 409):
        return
    owner = (payload["channel"], payload["sender"])
    key = (payload["channel"], payload["sender"], api_key, payload.get("message_id"))
    earlier = world.keys.get(key) if key[3] is not None else None
    if response.status_code == 409:
        assert earlier is not None and earlier[0] != payload["text"], "409 without an earlier, different message"
        assert error_of(response)["error"] == "message_id_reused"
        return
    body = response.json()
    for other in world.foreign(owner):
        assert other not in response.text, f"{owner} was shown {other!r}"
    if earlier is not None:
        assert earlier[0] == payload["text"], "a reused key with a different text was not refused"
        assert body["duplicate"] is True and body["message_id"] == earlier[1]
    else:
        assert body["duplicate"] is False
        world.stored[owner] += 1
        if key[3] is not None:
            world.keys[key] = (payload["text"], body["message_id"])
    with session_factory(world.db_url)() as session:
        message = session.get(Message, body["message_id"])
        assert message.direction == "in" and message.text == payload["text"]
        assert (message.identity.channel, message.identity.address) == owner
        if key[3] is not None:
            assert message.external_id.endswith(":" + key[3])
            assert session.scalar(select(func.count()).select_from(Message).where(
                Message.identity_id == message.identity_id, Message.direction == "in",
                Message.external_id == message.external_id)) == 1
    if " [mark-" in payload["text"]:
        world.owners_of_marks[payload["text"].rsplit(" ", 1)[1]] = owner
    if body["handling"]["ticket"] is not None:
        world.owners_of_tickets.setdefault(body["handling"]["ticket"]["id"], owner)
        assert world.owners_of_tickets[body["handling"]["ticket"]["id"]] == owner


def _sender(world: World, drawn: str | int) -> str:
    """Senders of one example are its own: nothing stored by an earlier example can answer them."""
    if isinstance(drawn, int):
        return world.prefix + "s" * (drawn - len(world.prefix))
    return drawn if drawn in ("", " ") else world.prefix + drawn


def _segment(value: str) -> str:
    """Every byte percent-encoded: control characters, slashes and broken UTF-8 reach the app as sent."""
    return "".join(f"%{byte:02X}" for byte in value.encode("utf-8", "surrogatepass"))


def _ticket_op(client, world: World, op: tuple, stats: Counter) -> None:
    tickets = list(world.owners_of_tickets)
    if op[0] in ("get_ticket", "reply"):
        raw = op[1]
        ticket_id = tickets[raw % len(tickets)] if isinstance(raw, int) and tickets else str(raw)
        path = f"/api/v1/tickets/{_segment(ticket_id)}"
        owner = world.owners_of_tickets.get(ticket_id)
        if op[0] == "get_ticket":
            response = client.get(path, headers=AUTH)
        else:
            reply, mark = op[2], None
            if isinstance(reply, dict) and str(reply.get("text")).endswith("[staff]"):
                mark = f"[mark-{world.prefix}{next(world.marks)}]"
                reply = {**reply, "text": f"We are on it {mark}"}
            body = json.dumps(reply, ensure_ascii=False).encode("utf-8", "surrogatepass")
            response = client.post(path + "/replies", content=body, headers={**AUTH, "Content-Type": "application/json"})
            if response.status_code == 202 and mark is not None:
                world.owners_of_marks[mark] = owner
    else:
        _, channel, sender, after = op
        sender = _sender(world, sender)
        path = f"/api/v1/conversations/{channel}/{_segment(sender)}/replies"
        response = client.get(path, headers=AUTH, params={} if after is None else {"after": after})
        owner = (channel, sender)
    stats[f"{op[0]} {response.status_code}"] += 1
    _check_error(response)
    if response.status_code < 400 and op[0] != "reply":
        for other in world.foreign(owner):
            assert other not in response.text, f"{op[0]} for {owner} showed {other!r}"


def _stored_counts(db_url: str, prefix: str) -> Counter:
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(ChannelIdentity.channel, ChannelIdentity.address, func.count(Message.id))
            .join(Message, Message.identity_id == ChannelIdentity.id)
            .where(Message.direction == "in", ChannelIdentity.address.startswith(prefix))
            .group_by(ChannelIdentity.channel, ChannelIdentity.address)
        ).all()
    return Counter({(channel, address): count for channel, address, count in rows})


def test_conversations_of_hostile_senders(db_url):
    stats: Counter = Counter()
    examples = itertools.count()
    with api_client(db_url, max_body_bytes=MAX_BODY) as client:

        @FUZZ
        @given(operations)
        @example(REUSED_KEY)
        def run(ops):
            world = World(db_url=db_url, prefix=f"x{next(examples)}-")
            for op in ops:
                if op[0] == "message":
                    _post_message(client, world, op[1], op[2], op[3], stats)
                else:
                    _ticket_op(client, world, op, stats)
            assert _stored_counts(db_url, world.prefix) == +world.stored

        run()
    # The generator must reach both sides: accepted messages and each kind of refusal.

    assert stats[200] >= 30 and stats[409] >= 1 and stats[422] >= 5, stats
    assert stats["get_ticket 200"] >= 3 and stats["reply 202"] >= 1 and stats["pull 200"] >= 1, stats


def test_raw_bodies(db_url):
    stats: Counter = Counter()
    with api_client(db_url, max_body_bytes=MAX_BODY) as client:

        @settings(FUZZ, max_examples=120)
        @given(raw_bodies())
        def run(body):
            response = post_raw(client, body)
            stats[response.status_code] += 1
            _check_error(response)
            if response.status_code == 200:
                sent = json.loads(body)
                with session_factory(db_url)() as session:
                    assert session.get(Message, response.json()["message_id"]).text == sent["text"]

        run()
    assert {200, 400, 413, 422} <= set(stats), stats
