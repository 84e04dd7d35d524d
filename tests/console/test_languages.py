"""One KB, many languages, in the console: a ticket's language in the queue, the alerts and the
ticket page, a filter by language, and what staff send a citizen worded in the citizen's language."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.alerts.job import raise_alerts
from bot.console.languages import language_label, language_name
from bot.console.queues import QueueFilters
from bot.kb.loader import load_kb
from bot.settings import PROJECT_ROOT
from bot.store.db import session_scope
from bot.store.models import Citizen, Message
from bot.store.types import utcnow
from bot.texts import text
from bot.tickets.models import Ticket
from tests.console.conftest import sign_in


@pytest.fixture
def agent(client, make_staff):
    make_staff("ana", departments=("waste",), display_name="Ana Agent")
    return sign_in(client, "ana")


def _set(db_url: str, public_id: str, *, ticket: str | None = None, citizen: str | None = None) -> None:
    """The ticket's language and its citizen's (the core sets them from the citizen's messages)."""
    with session_scope(db_url) as session:
        row = session.scalars(select(Ticket).where(Ticket.public_id == public_id)).one()
        row.language = ticket
        session.execute(update(Citizen).where(Citizen.id == row.citizen_id).values(language=citizen))


def _out(db_url: str) -> list[Message]:
    with session_scope(db_url) as session:
        rows = list(session.scalars(select(Message).where(Message.direction == "out").order_by(Message.id)))
        session.expunge_all()
        return rows


def _queue(client, query: str = "") -> dict[str, str]:
    return {t["id"]: t["language"] for t in client.get(f"/console/api/queue/waste{query}").json()["tickets"]}


def test_language_names() -> None:
    assert language_label("es") == "Spanish (es)" and language_name("es-MX") == "Spanish"
    assert language_label("xx") == "xx" and language_label(None) == ""


def test_the_queue_shows_and_filters_by_language(client, agent, make_ticket, db_url) -> None:
    spanish = make_ticket("No han recogido mi basura")
    english = make_ticket("My bin was not emptied")
    _set(db_url, spanish, ticket="es", citizen="es")
    # No language recorded: the KB's main language.
    assert _queue(client) == {spanish: "es", english: "en"}
    assert _queue(client, "?language=es") == {spanish: "es"}
    assert _queue(client, "?language=en") == {english: "en"}
    assert _queue(client, "?language=ES") == {spanish: "es"}
    # A language no ticket has: no tickets; nonsense is ignored. Never an error page.
    assert _queue(client, "?language=fr") == {}
    for nonsense in ("<script>", "' OR 1=1 --", "e" * 300, "%00"):
        response = client.get("/console/api/queue/waste", params={"language": nonsense})
        assert response.status_code == 200 and len(response.json()["tickets"]) == 2
        assert client.get("/console/queue/waste", params={"language": nonsense}).status_code == 200

    page = client.get("/console/queue/waste").text
    options = re.findall(r'<option value="(\w*)"[^>]*>([^<]*)</option>',
                         page.split('name="language"', 1)[1].split("</select>", 1)[0])
    # "any", the main language first, then the others (the KB's and the tickets').
    assert options == [("", "any"), ("en", "English (en)"), ("es", "Spanish (es)")]
    row = page.split(f'data-ticket="{spanish}"', 1)[1].split("</tr>", 1)[0]
    assert '<abbr title="Spanish" data-language="es">es</abbr>' in row
    filtered = client.get("/console/queue/waste?language=es").text
    assert spanish in filtered and english not in filtered
    assert '<option value="es" selected>' in filtered
    assert "language=es" in html.unescape(re.search(r'data-queue-api="([^"]*)"', filtered).group(1))
    # A well-formed code nobody uses stays selected, so the agent sees why the queue is empty.
    assert '<option value="fr" selected>French (fr)</option>' in client.get("/console/queue/waste?language=fr").text


def test_the_filter_offers_configured_languages_and_those_of_tickets(client, agent, make_ticket, db_url) -> None:
    ctx = client.app.state.console
    ctx.settings = ctx.settings.model_copy(update={"languages": "en,es,fr"})
    public_id = make_ticket("Mon bac n'a pas été vidé")
    _set(db_url, public_id, ticket="pt")
    page = client.get("/console/queue/waste").text
    select_box = page.split('name="language"', 1)[1].split("</select>", 1)[0]
    assert re.findall(r'<option value="(\w+)"', select_box) == ["en", "es", "fr", "pt"]


def test_filters_parse_the_language() -> None:
    assert QueueFilters.parse(language=" Es ").language == "es"
    assert QueueFilters.parse(language="pt-br").query_params()["language"] == "pt-br"
    assert QueueFilters.parse(language="<x>").language == "" and "language" not in QueueFilters.parse().query_params()


def test_the_ticket_page_and_the_alerts_show_the_language(client, agent, make_ticket, db_url,
                                                            console_settings) -> None:
    spanish = make_ticket("No han recogido mi basura")
    english = make_ticket("My bin was not emptied")
    _set(db_url, spanish, ticket="es")
    page = client.get(f"/console/tickets/{spanish}").text
    assert '<dt>Language</dt><dd data-language="es">Spanish (es)</dd>' in page
    assert '<dd data-language="en">English (en)</dd>' in client.get(f"/console/tickets/{english}").text
    with session_scope(db_url) as session:
        raise_alerts(session, console_settings, now=utcnow() + timedelta(days=3), mail=False)
    alerts = client.get("/console/alerts").text
    for public_id, language in ((spanish, "es"), (english, "en")):
        row = alerts.split(f'data-ticket="{public_id}"', 1)[1].split("</tr>", 1)[0]
        assert f'data-language="{language}">{language}</abbr>' in row


def test_resolving_tells_a_spanish_citizen_in_spanish(client, agent, make_ticket, db_url) -> None:
    spanish = make_ticket("No han recogido mi basura")
    english = make_ticket("My bin was not emptied")
    _set(db_url, spanish, ticket="es", citizen="es")
    # The message the page proposes is in the citizen's language (the agent may change it).
    page = client.get(f"/console/tickets/{spanish}").text
    proposed = text("notices.resolved", "es", ticket_id=spanish)
    assert f'id="resolution-message">{html.escape(proposed)}</textarea>' in page
    assert html.escape(text("notices.resolved", "en", ticket_id=english)) in client.get(
        f"/console/tickets/{english}").text
    for public_id in (spanish, english):
        # Sent as proposed, and with the box emptied: the same text.
        message = proposed if public_id == spanish else ""
        response = client.post(f"/console/tickets/{public_id}/status", follow_redirects=False, data={
            "status": "resolved", "notify": "1", "message": message, "csrf_token": agent})
        assert response.status_code == 303
    resolved_es, survey_es, resolved_en, survey_en = _out(db_url)
    assert resolved_es.text == text("notices.resolved", "es", ticket_id=spanish)
    assert survey_es.text == text("feedback.ask", "es", ticket_id=spanish) and survey_es.language == "es"
    assert [o["title"] for o in survey_es.meta["choices"]["options"]] == ["Sí", "No"]
    assert resolved_en.text == text("notices.resolved", "en", ticket_id=english)
    assert survey_en.text == text("feedback.ask", "en", ticket_id=english) and survey_en.language == "en"
    assert resolved_es.text != resolved_en.text.replace(english, spanish)


def test_canned_answers_come_in_the_citizens_language(client, agent, make_ticket, db_url) -> None:
    kb, _ = load_kb(PROJECT_ROOT / "knowledge_base")
    entry = kb.entry("waste-collection-days")
    spanish = make_ticket("¿Qué día pasan a recoger la basura?")
    _set(db_url, spanish, ticket="es", citizen="es")
    page = html.unescape(client.get(f"/console/tickets/{spanish}").text)
    assert entry.answer["es"].strip() in page and 'data-language="es"' in page
    # An entry without a Spanish answer: the main language's.
    assert kb.entry("waste-new-bin").answer["en"].strip() in page
    found = client.get("/console/api/kb", params={"q": "collection", "department": "waste",
                                                  "language": "es"}).json()["results"]
    by_id = {item["id"]: item["text"] for item in found}
    assert by_id["waste-collection-days"].startswith(entry.answer["es"].strip())
    english = client.get("/console/api/kb", params={"q": "collection", "department": "waste"}).json()["results"]
    assert {i["id"]: i["text"] for i in english}["waste-collection-days"].startswith(entry.answer["en"].strip())
    # An unknown language: the main language, not an error.
    odd = client.get("/console/api/kb", params={"q": "collection", "language": "<x>" * 10})
    assert odd.status_code == 200 and odd.json()["results"]


def test_a_copy_of_a_spanish_citizens_data_reads_in_spanish(client, make_staff, make_ticket, db_url) -> None:
    import io
    import zipfile

    make_staff("sue", role="supervisor", departments=())
    csrf = sign_in(client, "sue")
    public_id = make_ticket("No han recogido mi basura")
    _set(db_url, public_id, ticket="es", citizen="es")
    response = client.post("/console/privacy/export", data={"citizen": public_id, "reason": "carta 12",
                                                            "csrf_token": csrf})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    page = zipfile.ZipFile(io.BytesIO(response.content)).read("data.html").decode()
    assert '<html lang="es">' in page and html.escape(text("rights.export_page.tickets", "es")) in page
