"""Export: every message in and out on every linked channel, tickets with public updates only,
identities; one zip with JSON and an HTML page where citizen text stays text."""

from __future__ import annotations

import io
import json
import zipfile

from bot.privacy.export import export_citizen, export_zip
from bot.store.db import session_factory
from tests.api.api_client import api_client, post
from tests.privacy.helpers import AGENT_REPLY, EMAIL, NAME, NOTE, TEXTS, WEB_SENDER, WHATSAPP, build_citizen


def test_export_has_everything_the_citizen_may_see_and_nothing_internal(db_url: str) -> None:
    with api_client(db_url) as client:
        built = build_citizen(client, db_url)
        post(client, {"channel": "web", "sender": WEB_SENDER, "text": "<script>alert('x')</script> & more"})
    with session_factory(db_url)() as session:
        bundle = export_citizen(session, built.citizen_id)
    texts = [m["text"] for m in bundle["messages"]]
    assert all(text in texts for text in TEXTS) and AGENT_REPLY in texts
    assert {m["direction"] for m in bundle["messages"]} == {"in", "out"}
    assert next(m for m in bundle["messages"] if m["text"] == AGENT_REPLY)["from"] == "staff"
    assert {(i["channel"], i["address"]) for i in bundle["identities"]} == {
        ("web", WEB_SENDER), ("email", EMAIL), ("whatsapp", WHATSAPP)}
    assert bundle["citizen"]["display_name"] == NAME
    assert {t["id"] for t in bundle["tickets"]} >= set(built.ticket_ids)
    dumped = json.dumps(bundle)
    assert NOTE not in dumped and "ines" not in dumped  # internal notes and staff names stay inside
    assert "Bystander" not in dumped

    archive = zipfile.ZipFile(io.BytesIO(export_zip(bundle)))
    assert sorted(archive.namelist()) == ["data.html", "data.json"]
    assert json.loads(archive.read("data.json")) == bundle
    page = archive.read("data.html").decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert NAME in page and EMAIL in page
