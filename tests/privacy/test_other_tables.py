"""Tables of features beside this package (a consents table) are exported and erased when
installed, by name, and simply skipped when not."""

from __future__ import annotations

import sqlalchemy as sa

from bot.privacy import tables
from bot.privacy.erase import erase_citizen
from bot.privacy.export import export_citizen
from bot.store.db import session_factory
from bot.store.models import Citizen

# Its own name, so that a real consents table (another feature's) is never touched here.
CONSENTS = sa.Table(
    "privacy_test_consents", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("citizen_id", sa.Integer, nullable=False),
    sa.Column("purpose", sa.String(64)),
    sa.Column("channel", sa.String(32)),
)


def test_consents_are_exported_and_erased_when_the_table_exists(db_url: str, monkeypatch) -> None:
    engine = session_factory(db_url).kw["bind"]
    CONSENTS.create(engine, checkfirst=True)
    try:
        real = tables.installed_table
        monkeypatch.setattr(tables, "installed_table", lambda name: CONSENTS if name == "consents" else real(name))
        with session_factory(db_url).begin() as session:
            citizen, other = Citizen(), Citizen()
            session.add_all([citizen, other])
            session.flush()
            session.execute(CONSENTS.insert(), [
                {"citizen_id": citizen.id, "purpose": "notifications", "channel": "telegram"},
                {"citizen_id": other.id, "purpose": "news", "channel": "email"}])
            bundle = export_citizen(session, citizen.id)
            assert bundle["consents"] == [{"purpose": "notifications", "channel": "telegram"}]
            erase_citizen(session, citizen.id, actor="system", reason="test")
            left = session.execute(sa.select(CONSENTS.c.citizen_id)).scalars().all()
            assert left == [other.id]
    finally:
        CONSENTS.drop(engine)


def test_the_real_consents_are_exported_and_erased(db_url: str) -> None:
    from bot.identity.consent import give_consent
    from bot.identity.models import Consent

    with session_factory(db_url).begin() as session:
        citizen, other = Citizen(), Citizen()
        session.add_all([citizen, other])
        session.flush()
        give_consent(session, citizen.id, "notifications", channel="telegram", source="notify me")
        give_consent(session, other.id, "notifications", channel="email", source="notify me")
        consents = export_citizen(session, citizen.id)["consents"]
        assert [(c["purpose"], c["channel"]) for c in consents] == [("notifications", "telegram")]
        erase_citizen(session, citizen.id, actor="system", reason="test")
        left = session.scalars(sa.select(Consent.citizen_id)).all()
        assert left == [other.id]
