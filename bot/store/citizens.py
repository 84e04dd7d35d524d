"""Citizens and the channel addresses they write from."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.store.models import ChannelIdentity, Citizen


def _find_identity(session: Session, channel: str, address: str) -> ChannelIdentity | None:
    return session.scalars(
        select(ChannelIdentity).where(ChannelIdentity.channel == channel, ChannelIdentity.address == address)
    ).one_or_none()


def find_identity(session: Session, channel: str, address: str) -> ChannelIdentity | None:
    """The identity for ``(channel, address)`` if there is one: for questions that must not
    make a citizen out of an address that merely wrote to us."""
    return _find_identity(session, channel, address)


def get_or_create_identity(session: Session, channel: str, address: str) -> ChannelIdentity:
    """The identity for ``(channel, address)``, created with a new Citizen on first contact.

    Addresses are stored as given: the channel adapter owns normalisation (an
    e-mail adapter lowercases, an SMS adapter formats E.164), because only it
    knows which spellings are the same person.

    A citizen's first messages often arrive in parallel (a burst of SMS, a
    webhook retry). The insert runs in a SAVEPOINT so that losing the race on
    the unique (channel, address) constraint only undoes our insert, and the
    winner's row is then read back instead of failing the whole unit of work.
    """
    identity = _find_identity(session, channel, address)
    if identity is not None:
        return identity
    try:
        with session.begin_nested():
            identity = ChannelIdentity(channel=channel, address=address, citizen=Citizen())
            session.add(identity)
    except IntegrityError:
        identity = _find_identity(session, channel, address)
        if identity is None:
            # Not the race we expected (e.g. an over-long address): let the caller see it.
            raise
    return identity
