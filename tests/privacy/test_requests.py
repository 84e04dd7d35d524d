"""A citizen's own "my data" and "erase my data" over the generic API (the web chat's path): a
code to a verified identity, typed where they asked; and the bad input that must change nothing."""

from __future__ import annotations

import io
import re
import zipfile

import sqlalchemy as sa

from bot.privacy.jobs import job
from bot.privacy.models import PrivacyRequest
from bot.privacy.requests import MAX_WRONG_CODES
from bot.settings import Settings
from bot.store.db import session_factory
from bot.store.models import ChannelIdentity, Citizen, Message
from tests.api.api_client import AUTH, api_client, post
from tests.privacy.helpers import EMAIL, NEEDLES, TEXTS, WEB_SENDER, build_citizen, find_in_database


def _say(client, text: str, sender: str = WEB_SENDER) -> dict:
    response = post(client, {"channel": "web", "sender": sender, "text": text})
    assert response.status_code == 200, response.text
    body = response.json()
    return {**body, "replies": [r["text"] for r in body["replies"]]}


def _fetched(client, sender: str = WEB_SENDER) -> list[str]:
    response = client.get(f"/api/v1/conversations/web/{sender}/replies", headers=AUTH)
    assert response.status_code == 200
    return [r["text"] for r in response.json()["replies"]]


def _code(texts: list[str]) -> str:
    return next(re.search(r"\b(\d{6})\b", t)[1] for t in reversed(texts) if re.search(r"\b\d{6}\b", t))


def _outbound_count(db_url: str) -> int:
    with session_factory(db_url)() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "out"))


def test_my_data_code_link_download_once(db_url: str) -> None:
    with api_client(db_url, public_url="https://assist.city.example") as client:
        build_citizen(client, db_url)
        asked = _say(client, "My data")
        assert "send this code back here" in asked["replies"][0]
        assert asked["handling"]["kind"] == "privacy_request"
        code = _code(asked["replies"])
        (link,) = _say(client, f"{code[:3]} {code[3:]}")["replies"]
        url = re.search(r"https://assist\.city\.example(/privacy/download/\S+)", link)[1]
        page = client.get(url)
        assert page.status_code == 200 and "<form" in page.text and "no-store" in page.headers["cache-control"]
        assert client.get(url).status_code == 200  # a link preview spends nothing
        download = client.post(url)
        assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
        data = zipfile.ZipFile(io.BytesIO(download.content)).read("data.json").decode()
        assert TEXTS[0] in data and EMAIL in data
        again = client.post(url)  # single use
        assert again.status_code == 404 and "expired or has already been used" in again.text
        forged = client.post(url[:-4] + "AAAA")
        assert forged.status_code == 404 and forged.text == again.text
    with session_factory(db_url)() as session:
        # Neither the code nor the link is left usable in the store.
        texts = " ".join(session.scalars(sa.select(Message.text)))
        assert code not in texts and url.rsplit("/", 1)[1] not in texts


def test_a_named_address_not_theirs_gets_the_same_reply_and_nothing_is_sent(db_url: str) -> None:
    with api_client(db_url) as client:
        build_citizen(client, db_url)  # EMAIL belongs to this citizen
        _say(client, "hello", sender="intruder")
        before = _outbound_count(db_url)
        theirs = _say(client, f"my data email {EMAIL}", sender="intruder")["replies"][0]
        unknown = _say(client, "my data email nobody@example.net", sender="intruder")["replies"][0]
        assert theirs.replace(EMAIL, "X") == unknown.replace("nobody@example.net", "X")
        # Only the two replies in the response: no code went to anyone.
        assert _outbound_count(db_url) == before + 2
        # Guessed codes on the intruder's chat confirm nothing.
        for _ in range(MAX_WRONG_CODES + 1):
            reply = _say(client, "123456", sender="intruder")
            assert "/privacy/download/" not in reply["replies"][0]


def test_wrong_codes_then_dead_and_a_replayed_code_does_nothing(db_url: str) -> None:
    with api_client(db_url) as client:
        build_citizen(client, db_url)
        code = _code(_say(client, "/mydata")["replies"])
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        replies = [_say(client, wrong)["replies"][0] for _ in range(MAX_WRONG_CODES)]
        assert "4 tries left" in replies[0] and "no longer works" in replies[-1]
        late = _say(client, code)  # the right code, after the request died: not an export
        assert "already been used, or no longer works" in late["replies"][0]
        assert not [t for t in _fetched(client) if "/privacy/download/" in t]
        # A fresh request; its code confirmed once, then replayed.
        code = _code(_say(client, "send me my data")["replies"])
        assert "/privacy/download/" in _say(client, code)["replies"][0]
        replay = _say(client, code)
        assert replay["replies"] == ["That code has already been used, or no longer works. A code works once; "
                                     "please ask again if you need to."]
    with session_factory(db_url)() as session:
        statuses = list(session.scalars(sa.select(PrivacyRequest.status).order_by(PrivacyRequest.id)))
    assert statuses == ["exhausted", "confirmed"]


def test_erase_my_data_over_the_chat(db_url: str) -> None:
    settings = Settings(_env_file=None, api_keys="test-key-0123456789abcdef", database_url=db_url)
    with api_client(db_url) as client:
        built = build_citizen(client, db_url)
        asked = _say(client, "erase my data")
        assert "erases your data for good" in asked["replies"][0]
        code = _code(asked["replies"])
        done = _say(client, code)
        assert done["replies"][0].startswith("Done: your data has been erased")
        job(session_factory(db_url), settings)
    assert find_in_database(db_url, NEEDLES) == []
    with session_factory(db_url)() as session:
        assert session.get(Citizen, built.citizen_id).erased_at is not None


def test_a_named_address_of_theirs_gets_the_code_and_the_link(db_url: str) -> None:
    with api_client(db_url) as client:
        build_citizen(client, db_url)  # EMAIL is linked to WEB_SENDER
        asked = _say(client, f"my data email {EMAIL.upper()}")["replies"][0]
        assert EMAIL in asked and not re.search(r"\b\d{6}\b", asked)  # the code went to the e-mail, not here
        with session_factory(db_url)() as session:
            (code_mail,) = session.scalars(sa.select(Message).join(ChannelIdentity).where(
                ChannelIdentity.address == EMAIL, Message.direction == "out"))
            code = _code([code_mail.text])
        done = _say(client, code)["replies"][0]
        assert f"sent the download link to {EMAIL}" in done
        with session_factory(db_url)() as session:
            mails = list(session.scalars(sa.select(Message.text).join(ChannelIdentity).where(
                ChannelIdentity.address == EMAIL, Message.direction == "out").order_by(Message.id)))
        assert mails[0] == "[spent]" and "/privacy/download/" in mails[1]


def test_rate_limit_and_an_expired_code(session) -> None:
    from datetime import timedelta

    from bot.privacy.requests import CODE_TTL, REQUESTS_PER_HOUR, handle_rights_message
    from bot.store.citizens import get_or_create_identity
    from bot.store.messages import record_inbound
    from bot.store.types import utcnow

    settings = Settings(_env_file=None, api_keys="test-key-0123456789abcdef")
    identity = get_or_create_identity(session, "telegram", "555000111")
    now = utcnow()

    def say(text: str, at=now):
        message, _ = record_inbound(session, identity, text)
        return handle_rights_message(session, message, settings=settings, now=at)

    first = say("my data")
    assert first.kind == "code_sent"
    code = _code([first.reply])
    late = say(code, at=now + CODE_TTL + timedelta(seconds=1))
    assert late.kind == "expired" and "expired" in late.reply
    assert say(code, at=now + CODE_TTL + timedelta(seconds=2)).kind == "code_spent"
    assert say("999999" if code != "999999" else "000000") is None  # other digits: for the assistant
    for _ in range(REQUESTS_PER_HOUR - 1):
        assert say("erase my data").kind == "code_sent"
    limited = say("erase my data")
    assert limited.kind == "rate_limited" and "limit" in limited.reply
    assert say("my data", at=now + timedelta(hours=1, seconds=1)).kind == "code_sent"
