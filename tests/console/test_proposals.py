"""KB proposals and gaps as services, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.console import proposals
from bot.console.insights_models import APPROVED, NEW_ENTRY, NEW_PHRASING, PROPOSED, REJECTED, KbProposal
from bot.console.proposals import ProposalError, ProposalRefused
from bot.kb.loader import load_kb
from bot.settings import PROJECT_ROOT
from bot.store.citizens import get_or_create_identity
from tests.console.insights_seed import NOW, at, message, ticket
from tests.console.kb_snapshot import kb_snapshot

TODAY = date(2026, 3, 10)


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge_base"
    shutil.copytree(PROJECT_ROOT / "knowledge_base", target)
    return target


def _new_entry(session, **overrides) -> KbProposal:
    fields = dict(kind=NEW_ENTRY, question="When is the compost fair?", answer="Every May at the depot.",
                  department="waste", proposed_by="ana")
    fields.update(overrides)
    return proposals.propose(session, **fields)


def test_propose_checks_what_an_agent_must_give(session) -> None:
    with pytest.raises(ProposalError, match="question is empty"):
        _new_entry(session, question="   ")
    with pytest.raises(ProposalError, match="answer is empty"):
        _new_entry(session, answer="")
    with pytest.raises(ProposalError, match="department"):
        _new_entry(session, department="")
    with pytest.raises(ProposalError, match="entry this is a new phrasing of"):
        proposals.propose(session, kind=NEW_PHRASING, question="sofa?", proposed_by="ana")
    with pytest.raises(ProposalError, match="unknown kind"):
        _new_entry(session, kind="delete_everything")
    with pytest.raises(ProposalError, match="longer than"):
        _new_entry(session, question="x" * 501)
    phrasing = proposals.propose(session, kind=NEW_PHRASING, question=" sofa? ", answer="ignored",
                                 target_entry_id="waste-bulky-items", proposed_by="ana")
    assert (phrasing.question, phrasing.answer, phrasing.status) == ("sofa?", None, PROPOSED)


def test_approve_writes_the_kb_and_records_the_decision(session, kb_dir: Path) -> None:
    web = get_or_create_identity(session, "web", "alice")
    t = ticket(session, web, "T1", department="waste", reason="low_confidence", created=at(1), status="open")
    proposal = _new_entry(session, ticket=t)
    session.commit()
    change = proposals.approve(session, proposal, kb_dir=kb_dir, reviewer="sam", comment="good one",
                               now=NOW, today=TODAY)
    session.commit()
    stored = session.get(KbProposal, proposal.id)
    assert (stored.status, stored.reviewer, stored.review_comment, stored.entry_id) == (
        APPROVED, "sam", "good one", change.entry_id)
    assert stored.reviewed_at == NOW and stored.ticket_id == t.id
    kb, _ = load_kb(kb_dir)
    assert kb.entry(change.entry_id).questions == {"en": ["When is the compost fair?"]}


def test_supervisor_can_choose_the_entry_id(session, kb_dir: Path) -> None:
    proposal = _new_entry(session)
    change = proposals.approve(session, proposal, kb_dir=kb_dir, reviewer="sam", entry_id="waste-compost-fair")
    assert change.entry_id == proposal.entry_id == "waste-compost-fair"


def test_approving_a_phrasing(session, kb_dir: Path) -> None:
    proposal = proposals.propose(session, kind=NEW_PHRASING, question="my couch has to go, who takes it",
                                 target_entry_id="waste-bulky-items", proposed_by="ana")
    proposals.approve(session, proposal, kb_dir=kb_dir, reviewer="sam", today=TODAY)
    kb, _ = load_kb(kb_dir)
    assert "my couch has to go, who takes it" in kb.entry("waste-bulky-items").questions["en"]


def test_a_refused_approval_changes_nothing(session, kb_dir: Path) -> None:
    kb, _ = load_kb(kb_dir)
    proposal = _new_entry(session, question=kb.entries[0].questions["en"][0])
    session.commit()
    files = kb_snapshot(kb_dir)
    with pytest.raises(ProposalRefused, match="is also in entry"):
        proposals.approve(session, proposal, kb_dir=kb_dir, reviewer="sam")
    session.rollback()
    assert session.get(KbProposal, proposal.id).status == PROPOSED
    assert kb_snapshot(kb_dir) == files


def test_edit_then_approve(session, kb_dir: Path) -> None:
    proposal = _new_entry(session, answer="draft")
    changes = proposals.edit(session, proposal, answer="Every May, Saturday 10-16, at the depot.",
                             department="waste", question=None)
    assert changes == {"answer": ["draft", "Every May, Saturday 10-16, at the depot."]}
    with pytest.raises(ProposalError, match="question is empty"):
        proposals.edit(session, proposal, question="")
    change = proposals.approve(session, proposal, kb_dir=kb_dir, reviewer="sam")
    kb, _ = load_kb(kb_dir)
    assert kb.entry(change.entry_id).answer["en"].startswith("Every May, Saturday")


def test_decided_proposals_cannot_be_decided_or_edited_again(session, kb_dir: Path) -> None:
    proposal = _new_entry(session)
    proposals.reject(session, proposal, reviewer="sam", comment="we do not run a compost fair")
    session.commit()
    assert proposal.status == REJECTED and proposal.review_comment == "we do not run a compost fair"
    with pytest.raises(ProposalError, match="already rejected"):
        proposals.approve(session, proposal, kb_dir=kb_dir, reviewer="sam")
    with pytest.raises(ProposalError, match="already rejected"):
        proposals.edit(session, proposal, answer="x")


def test_a_stale_copy_cannot_approve_twice(db_url: str, kb_dir: Path) -> None:
    """Two supervisors open the same proposal; the second click finds it decided."""
    from sqlalchemy.orm.attributes import set_committed_value

    from bot.store.db import session_factory

    factory = session_factory(db_url)
    with factory.begin() as s:
        proposal_id = _new_entry(s).id
    first, second = factory(), factory()
    try:
        b = second.get(KbProposal, proposal_id)
        second.rollback()  # b stays loaded; its transaction ends (SQLite: one writer at a time)
        a = first.get(KbProposal, proposal_id)
        proposals.approve(first, a, kb_dir=kb_dir, reviewer="sam")
        first.commit()
        set_committed_value(b, "status", PROPOSED)  # what the second supervisor's page still shows
        with pytest.raises(ProposalError, match="already approved"):
            proposals.approve(second, b, kb_dir=kb_dir, reviewer="kim")
    finally:
        first.close()
        second.close()
    kb, _ = load_kb(kb_dir)
    assert sum(q == "When is the compost fair?" for e in kb.entries for q in e.questions.get("en", [])) == 1


def test_list_proposals(session) -> None:
    older = _new_entry(session, now=NOW - timedelta(hours=2), question="Older?")
    newer = _new_entry(session, now=NOW, question="Newer?", proposed_by="bo")
    assert [p.id for p in proposals.list_proposals(session)] == [older.id, newer.id]
    assert [p.id for p in proposals.list_proposals(session, proposed_by="bo")] == [newer.id]
    assert [p.id for p in proposals.list_proposals(session, status=None)] == [newer.id, older.id]
    assert proposals.count_open(session) == 2


# --- gaps ---------------------------------------------------------------------------------


def _seed_gaps(session):
    web = get_or_create_identity(session, "web", "g1")
    tg = get_or_create_identity(session, "telegram", "g2")
    mail = get_or_create_identity(session, "email", "g3@example.org")
    t1 = ticket(session, web, "G1", department="waste", reason="low_confidence", created=at(2), status="open")
    t2 = ticket(session, tg, "G2", department="waste", reason="low_confidence", created=at(3), status="open")
    t3 = ticket(session, mail, "G3", department="parking", reason="out_of_scope", created=at(4), status="open")
    t4 = ticket(session, web, "G4", department="roads", reason="complaint", created=at(5), status="open")
    gaps = [
        message(session, web, at(2), "escalated", text="When is the compost fair?", intent="faq", ticket=t1),
        message(session, tg, at(3), "escalated", text="compost fair - when is it??", intent="nlu_fallback",
                ticket=t2),
        message(session, mail, at(4), "escalated", text="Can I park my boat on the street?",
                intent="out_of_scope", ticket=t3),
        # Joined an existing complaint ticket but was itself a question the KB lacked.
        message(session, web, at(5, 1), "ticket_joined", text="And when is the compost fair this year",
                intent="faq", ticket=t1),
    ]
    # Not gaps: a complaint, an answered FAQ, an outbound message, an empty text.
    message(session, web, at(5), "escalated", text="The pothole is still there", intent="complaint", ticket=t4)
    message(session, web, at(5, 2), "kb_answer", text="Bulky waste?", intent="faq", kb_entry_id="waste-bulky-items")
    message(session, web, at(5, 3), None, text="When is the compost fair?", direction="out", ticket=t1)
    message(session, web, at(5, 4), "escalated", text="   ", intent="nlu_fallback", ticket=t1)
    session.commit()
    return gaps


def test_gap_messages_are_escalations_the_kb_could_not_answer(session) -> None:
    gaps = _seed_gaps(session)
    found = proposals.gap_messages(session, since=at(1))
    assert [g.id for g in found] == [gaps[3].id, gaps[2].id, gaps[1].id, gaps[0].id]
    assert found[1].ticket_public_id == "G3" and found[1].reason == "out_of_scope"
    assert [g.id for g in proposals.gap_messages(session, since=at(1), departments=["parking"])] == [gaps[2].id]
    assert proposals.gap_messages(session, since=at(6)) == []


def test_gaps_are_grouped_by_shared_words_and_ranked(session) -> None:
    gaps = _seed_gaps(session)
    groups = proposals.kb_gaps(session, since=at(1))
    assert [g.count for g in groups] == [3, 1]
    compost, boat = groups
    assert compost.example.text == "And when is the compost fair this year"
    assert compost.department == "waste"
    assert compost.first_seen == at(2) and compost.last_seen == at(5, 1)
    assert boat.example.id == gaps[2].id and boat.departments == ["parking"]


def test_proposed_message_ids(session) -> None:
    gaps = _seed_gaps(session)
    _new_entry(session, source_message_id=gaps[0].id)
    assert proposals.proposed_message_ids(session, [gaps[0].id, gaps[1].id]) == {gaps[0].id: PROPOSED}


def test_an_approval_asks_for_a_training_in_its_own_unit_of_work(session, kb_dir: Path) -> None:
    from sqlalchemy import select

    from bot.modelbuilds.models import ModelBuild

    proposal = _new_entry(session)
    session.commit()
    change = proposals.approve(session, proposal, kb_dir=kb_dir, reviewer="sam", now=NOW, today=TODAY)
    session.commit()
    [build] = session.scalars(select(ModelBuild)).all()
    assert (build.status, build.requested_by, build.proposal_id, build.requested_at) == (
        "requested", "sam", proposal.id, NOW)
    assert change.entry_id in build.reason


def test_a_refused_approval_asks_for_no_training(session, kb_dir: Path) -> None:
    from sqlalchemy import func, select

    from bot.modelbuilds.models import ModelBuild

    kb, _ = load_kb(kb_dir)
    proposal = _new_entry(session, question=kb.entries[0].questions["en"][0])
    session.commit()
    with pytest.raises(ProposalRefused):
        proposals.approve(session, proposal, kb_dir=kb_dir, reviewer="sam")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ModelBuild)) == 0
