"""The assistant learns from its escalations: KB gaps, proposals, and their review.

An escalation "caused by a missing KB answer" is a citizen message the assistant could
not match to an entry: its intent was an FAQ it was unsure of (``faq``,
``nlu_fallback``), or out of scope, or the ticket it opened was for one of those
reasons. Those messages are the KB's gaps; grouped by the words they share they show
which questions citizens keep asking without an answer.

An agent turns a gap (or the answer they just wrote on a ticket) into a proposal; a
supervisor edits and approves it, which writes the KB files through
``bot.kb.proposals_apply``. Service functions here take a session and never commit:
the route's unit of work commits the proposal's new state together with its audit row and,
for an approval, the training request that makes the assistant answer with the change.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from bot.console.insights_models import (
    APPROVED,
    NEW_ENTRY,
    NEW_PHRASING,
    PROPOSAL_KINDS,
    PROPOSAL_STATUSES,
    PROPOSED,
    REJECTED,
    KbProposal,
)
from bot.kb.proposals_apply import KbChange, ProposalRefused, add_entry, add_phrasing
from bot.modelbuilds.service import request_training
from bot.store.models import Message
from bot.store.types import utcnow
from bot.tickets.models import Ticket

__all__ = [
    "GapGroup",
    "ProposalError",
    "ProposalRefused",
    "approve",
    "edit",
    "gap_messages",
    "kb_gaps",
    "list_proposals",
    "propose",
    "reject",
]

# Intents that mean "a question the KB should have answered".
GAP_INTENTS: tuple[str, ...] = ("faq", "nlu_fallback", "out_of_scope")
GAP_REASONS: tuple[str, ...] = ("low_confidence", "out_of_scope")
ESCALATED = ("escalated", "ticket_joined")

MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 5000
MAX_COMMENT_CHARS = 2000


class ProposalError(ValueError):
    """A proposal that cannot be stored or changed as asked; the message says why."""


# --- Proposals ---------------------------------------------------------------------------


def _text(value: str | None, *, limit: int, what: str, required: bool) -> str | None:
    value = (value or "").replace("\r\n", "\n").strip()
    if not value:
        if required:
            raise ProposalError(f"the {what} is empty")
        return None
    if len(value) > limit:
        raise ProposalError(f"the {what} is longer than {limit} characters")
    return value


def propose(
    session: Session,
    *,
    kind: str,
    question: str,
    proposed_by: str,
    answer: str | None = None,
    department: str | None = None,
    target_entry_id: str | None = None,
    language: str = "en",
    ticket: Ticket | None = None,
    source_message_id: int | None = None,
    now: datetime | None = None,
) -> KbProposal:
    """Store an agent's proposal; what the KB would say about it is judged at approval."""
    if kind not in PROPOSAL_KINDS:
        raise ProposalError(f"unknown kind {kind!r}; choose a new entry or a new phrasing")
    proposal = KbProposal(
        kind=kind,
        question=_text(question, limit=MAX_QUESTION_CHARS, what="question", required=True),
        answer=_text(answer, limit=MAX_ANSWER_CHARS, what="answer", required=kind == NEW_ENTRY),
        department=(department or "").strip() or None,
        target_entry_id=(target_entry_id or "").strip() or None,
        language=(language or "en").strip() or "en",
        ticket_id=ticket.id if ticket is not None else None,
        source_message_id=source_message_id,
        proposed_by=proposed_by,
        created_at=now or utcnow(),
        status=PROPOSED,
    )
    if kind == NEW_PHRASING:
        if not proposal.target_entry_id:
            raise ProposalError("choose the entry this is a new phrasing of")
        proposal.answer = None
    elif not proposal.department:
        raise ProposalError("choose the department the new entry belongs to")
    session.add(proposal)
    session.flush()
    return proposal


def _check_open(proposal: KbProposal) -> None:
    if proposal.status != PROPOSED:
        raise ProposalError(f"proposal {proposal.id} was already {proposal.status}")


def edit(
    session: Session,
    proposal: KbProposal,
    *,
    kind: str | None = None,
    question: str | None = None,
    answer: str | None = None,
    department: str | None = None,
    target_entry_id: str | None = None,
) -> dict[str, list[str | None]]:
    """A supervisor's corrections before deciding (None: leave as is); returns what changed."""
    _check_open(proposal)
    if kind is not None and kind not in PROPOSAL_KINDS:
        raise ProposalError(f"unknown kind {kind!r}")
    cleaned: dict[str, str | None] = {}
    if kind is not None:
        cleaned["kind"] = kind
    if question is not None:
        cleaned["question"] = _text(question, limit=MAX_QUESTION_CHARS, what="question", required=True)
    if answer is not None:
        cleaned["answer"] = _text(answer, limit=MAX_ANSWER_CHARS, what="answer", required=False)
    if department is not None:
        cleaned["department"] = department.strip() or None
    if target_entry_id is not None:
        cleaned["target_entry_id"] = target_entry_id.strip() or None
    changes: dict[str, list[str | None]] = {}
    for name, value in cleaned.items():
        old = getattr(proposal, name)
        if value != old:
            changes[name] = [old, value]
            setattr(proposal, name, value)
    session.flush()
    return changes


def _claim(session: Session, proposal: KbProposal, status: str) -> None:
    """Move out of ``proposed`` with a conditional UPDATE: of two supervisors deciding at
    once, the second waits for the first and then finds nothing left to decide."""
    result = session.execute(
        update(KbProposal)
        .where(KbProposal.id == proposal.id, KbProposal.status == PROPOSED)
        .values(status=status)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.refresh(proposal)
        raise ProposalError(f"proposal {proposal.id} was already {proposal.status}")
    proposal.status = status


def approve(
    session: Session,
    proposal: KbProposal,
    *,
    kb_dir: str | Path,
    reviewer: str,
    comment: str | None = None,
    entry_id: str | None = None,
    now: datetime | None = None,
    today: date | None = None,
) -> KbChange:
    """Write the proposal into the KB and mark it approved.

    The KB is written last, after the proposal row was claimed, so a refusal
    (``ProposalRefused``, with the validator's messages) changes no file and
    the caller's rollback leaves the proposal open for another try.
    """
    _check_open(proposal)
    now = now or utcnow()
    _claim(session, proposal, APPROVED)
    proposal.reviewer = reviewer
    proposal.reviewed_at = now
    proposal.review_comment = _text(comment, limit=MAX_COMMENT_CHARS, what="comment", required=False)
    session.flush()
    if proposal.kind == NEW_ENTRY:
        change = add_entry(
            kb_dir,
            department=proposal.department or "",
            question=proposal.question,
            answer=proposal.answer or "",
            language=proposal.language,
            entry_id=entry_id,
            today=today or now.date(),
        )
    else:
        change = add_phrasing(
            kb_dir,
            entry_id=proposal.target_entry_id or "",
            question=proposal.question,
            language=proposal.language,
            today=today or now.date(),
        )
    proposal.entry_id = change.entry_id
    # The learning loop: the trainer (`python -m bot trainer`) trains the changed KB and loads
    # the model; asked here, in the approval's own unit of work, so it commits with it or not at all.
    request_training(session, reason=f"proposal {proposal.id} approved ({proposal.kind} {change.entry_id})",
                     requested_by=reviewer, proposal_id=proposal.id, now=now)
    session.flush()
    return change


def reject(session: Session, proposal: KbProposal, *, reviewer: str, comment: str | None = None,
           now: datetime | None = None) -> None:
    _check_open(proposal)
    _claim(session, proposal, REJECTED)
    proposal.reviewer = reviewer
    proposal.reviewed_at = now or utcnow()
    proposal.review_comment = _text(comment, limit=MAX_COMMENT_CHARS, what="comment", required=False)
    session.flush()


def list_proposals(
    session: Session,
    *,
    status: str | None = PROPOSED,
    proposed_by: str | None = None,
    limit: int = 200,
) -> list[KbProposal]:
    """Open proposals oldest first (the review order); decided ones newest first."""
    query = select(KbProposal)
    if status is not None:
        if status not in PROPOSAL_STATUSES:
            raise ProposalError(f"unknown status {status!r}")
        query = query.where(KbProposal.status == status)
    if proposed_by is not None:
        query = query.where(KbProposal.proposed_by == proposed_by)
    order = (KbProposal.created_at, KbProposal.id) if status == PROPOSED else (
        KbProposal.created_at.desc(), KbProposal.id.desc())
    return list(session.scalars(query.order_by(*order).limit(limit)))


def count_open(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(KbProposal).where(KbProposal.status == PROPOSED)) or 0


# --- KB gaps -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GapMessage:
    id: int
    text: str
    created_at: datetime
    channel: str
    intent: str | None
    confidence: float | None
    ticket_public_id: str | None
    department: str | None
    reason: str | None


def gap_messages(
    session: Session,
    *,
    since: datetime,
    until: datetime | None = None,
    departments: list[str] | None = None,
    limit: int = 2000,
) -> list[GapMessage]:
    """Escalated citizen messages the KB had no answer for, newest first.

    ``departments`` limits them to tickets of those departments (an agent's own);
    None means all (supervisors).
    """
    query = (
        select(
            Message.id, Message.text, Message.created_at, Message.channel, Message.intent, Message.confidence,
            Ticket.public_id, Ticket.department, Ticket.reason,
        )
        .join(Ticket, Ticket.id == Message.ticket_id, isouter=True)
        .where(
            Message.direction == "in",
            Message.handling.in_(ESCALATED),
            Message.created_at >= since,
            or_(
                Message.intent.in_(GAP_INTENTS),
                (Message.handling == "escalated") & Ticket.reason.in_(GAP_REASONS),
            ),
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )
    if until is not None:
        query = query.where(Message.created_at < until)
    if departments is not None:
        query = query.where(Ticket.department.in_(departments))
    return [GapMessage(*row) for row in session.execute(query).all() if row[1].strip()]


_STOPWORDS = frozenset(
    "a an and are at be can could do does for from get have hello hi how i im in is it its me my of on or "
    "our please so that the there this to was we what when where which who why will with would you your".split()
)


def _words(text: str) -> frozenset[str]:
    folded = unicodedata.normalize("NFKC", text).casefold()
    words = set()
    for word in re.findall(r"\w+", folded):
        if word in _STOPWORDS or len(word) < 2:
            continue
        # A crude plural fold, enough to put "bins" and "bin" together.
        words.add(word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word)
    return frozenset(words)


@dataclass
class GapGroup:
    messages: list[GapMessage] = field(default_factory=list)
    words: frozenset[str] = frozenset()

    @property
    def count(self) -> int:
        return len(self.messages)

    @property
    def example(self) -> GapMessage:
        """The most recent message: what the group is shown as."""
        return self.messages[0]

    @property
    def last_seen(self) -> datetime:
        return self.messages[0].created_at

    @property
    def first_seen(self) -> datetime:
        return self.messages[-1].created_at

    @property
    def departments(self) -> list[str]:
        counts: dict[str, int] = {}
        for message in self.messages:
            if message.department:
                counts[message.department] = counts.get(message.department, 0) + 1
        return sorted(counts, key=lambda d: (-counts[d], d))

    @property
    def department(self) -> str | None:
        return self.departments[0] if self.departments else None


def _similar(a: frozenset[str], b: frozenset[str], threshold: float) -> bool:
    if not a or not b:
        return a == b
    return len(a & b) / len(a | b) >= threshold


def group_gaps(messages: list[GapMessage], *, threshold: float = 0.4) -> list[GapGroup]:
    """Group messages sharing most of their words, most asked first (then most recent).

    Greedy single pass over the messages, newest first: each joins the first group
    whose words it shares at least ``threshold`` of (Jaccard), or starts a new one.
    Cheap and predictable, good enough to show that twenty people asked the same thing.
    """
    groups: list[GapGroup] = []
    for message in messages:
        words = _words(message.text)
        for group in groups:
            if _similar(words, group.words, threshold):
                group.messages.append(message)
                break
        else:
            groups.append(GapGroup([message], words))
    return sorted(groups, key=lambda g: (-g.count, -g.last_seen.timestamp(), g.example.id))


def kb_gaps(
    session: Session,
    *,
    since: datetime,
    until: datetime | None = None,
    departments: list[str] | None = None,
    limit: int = 100,
) -> list[GapGroup]:
    return group_gaps(gap_messages(session, since=since, until=until, departments=departments))[:limit]


def proposed_message_ids(session: Session, message_ids: list[int]) -> dict[int, str]:
    """Which of these messages already have a proposal, and its status."""
    if not message_ids:
        return {}
    rows = session.execute(
        select(KbProposal.source_message_id, KbProposal.status).where(
            KbProposal.source_message_id.in_(message_ids)
        )
    ).all()
    return {message_id: status for message_id, status in rows}
