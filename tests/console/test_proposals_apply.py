"""Approved proposals written into the KB files: validated first, then loadable and trainable."""

from __future__ import annotations

import shutil
import threading
from datetime import date
from pathlib import Path

import pytest

from bot.kb.compile import compile_kb
from bot.kb.loader import load_kb
from bot.kb.proposals_apply import ProposalRefused, add_entry, add_phrasing, suggest_entry_id
from bot.kb.validate import check_kb
from bot.settings import PROJECT_ROOT
from tests.console.kb_snapshot import kb_snapshot

TODAY = date(2026, 3, 10)


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge_base"
    shutil.copytree(PROJECT_ROOT / "knowledge_base", target)
    return target


def _errors(kb_dir: Path) -> list[str]:
    return [p.format() for p in check_kb(kb_dir, today=TODAY)[1] if p.is_error]


def test_new_entry_is_written_to_its_department_file_with_a_stable_id(kb_dir: Path) -> None:
    before = (kb_dir / "parking.yml").read_text()
    untouched = kb_snapshot(kb_dir, skip="waste.yml")
    change = add_entry(
        kb_dir, department="waste", question="Can I put pizza boxes in the paper bin?",
        answer="Yes, if they are not greasy.\nGreasy boxes go in the general waste.", today=TODAY,
    )
    assert change.entry_id == "waste-put-pizza-boxes-paper"
    assert change.file.name == "waste.yml"
    assert {p.name for p in change.written} == {"waste.yml"}
    assert kb_snapshot(kb_dir, skip="waste.yml") == untouched
    assert (kb_dir / "parking.yml").read_text() == before

    kb, _ = load_kb(kb_dir)
    entry = kb.entry(change.entry_id)
    assert entry.department == "waste"
    assert entry.questions == {"en": ["Can I put pizza boxes in the paper bin?"]}
    assert entry.answer["en"].strip() == "Yes, if they are not greasy.\nGreasy boxes go in the general waste."
    assert entry.last_reviewed == TODAY
    assert _errors(kb_dir) == []


def test_next_training_data_includes_the_new_entry(kb_dir: Path, tmp_path: Path) -> None:
    change = add_entry(kb_dir, department="parking", question="Where can I charge my electric car?",
                       answer="There are public chargers at the town hall car park.", today=TODAY)
    kb, _ = load_kb(kb_dir)
    out = tmp_path / "faq.yml"
    compile_kb(kb, out)
    text = out.read_text()
    assert f"faq/{change.entry_id}" in text
    assert "Where can I charge my electric car?" in text


def test_new_phrasing_is_appended_and_the_entry_marked_reviewed(kb_dir: Path) -> None:
    kb, _ = load_kb(kb_dir)
    target = kb.entries_for("waste")[0]
    change = add_phrasing(kb_dir, entry_id=target.id, question="my old couch, how do I get rid of it", today=TODAY)
    assert change.entry_id == target.id
    reloaded, _ = load_kb(kb_dir)
    entry = reloaded.entry(target.id)
    assert entry.questions["en"] == [*target.questions["en"], "my old couch, how do I get rid of it"]
    assert entry.answer == target.answer
    assert entry.last_reviewed == TODAY
    assert _errors(kb_dir) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"department": "waste", "question": "Is there a bulky waste pickup?", "answer": "Yes."},
         "is also in entry"),
        ({"department": "waste", "question": "When is the compost fair?", "answer": "   "}, "is empty"),
        ({"department": "spaceport", "question": "Can I launch a rocket?", "answer": "No."},
         "not listed in departments.yml"),
        ({"department": "waste", "question": "", "answer": "An answer."}, "no question"),
        ({"department": "waste", "question": "Fees {amount}?", "answer": "It costs {amount}."}, "placeholder"),
    ],
)
def test_invalid_entries_are_refused_with_the_validators_message(kb_dir: Path, kwargs, message) -> None:
    before = kb_snapshot(kb_dir)
    with pytest.raises(ProposalRefused) as refused:
        add_entry(kb_dir, today=TODAY, **kwargs)
    assert any(message in problem for problem in refused.value.problems), refused.value.problems
    assert kb_snapshot(kb_dir) == before


def test_phrasing_refusals(kb_dir: Path) -> None:
    kb, _ = load_kb(kb_dir)
    waste, parking = kb.entries_for("waste")[0], kb.entries_for("parking")[0]
    with pytest.raises(ProposalRefused, match="already a question"):
        add_phrasing(kb_dir, entry_id=waste.id, question=waste.questions["en"][0].upper() + "  ", today=TODAY)
    with pytest.raises(ProposalRefused, match="is also in entry"):
        add_phrasing(kb_dir, entry_id=waste.id, question=parking.questions["en"][0], today=TODAY)
    with pytest.raises(ProposalRefused, match="no entry `nope`"):
        add_phrasing(kb_dir, entry_id="nope", question="Anything?", today=TODAY)
    with pytest.raises(ProposalRefused, match="no answer in `de`"):
        add_phrasing(kb_dir, entry_id=waste.id, question="Wohin mit dem Sofa?", language="de", today=TODAY)


def test_chosen_ids_must_be_new_and_well_formed(kb_dir: Path) -> None:
    kb, _ = load_kb(kb_dir)
    with pytest.raises(ProposalRefused, match="already exists"):
        add_entry(kb_dir, department="waste", question="New?", answer="Yes.", entry_id=kb.entries[0].id)
    with pytest.raises(ProposalRefused, match="lowercase"):
        add_entry(kb_dir, department="waste", question="New?", answer="Yes.", entry_id="Bad Id!")


def test_suggested_ids_are_unique_and_readable(kb_dir: Path) -> None:
    kb, _ = load_kb(kb_dir)
    assert suggest_entry_id(kb, "civil_registry", "Où est la mairie?") == "civil-registry-ou-est-la-mairie"
    assert suggest_entry_id(kb, "waste", "???") == "waste-question"
    first = add_entry(kb_dir, department="waste", question="Compost bins?", answer="Free.", today=TODAY)
    kb, _ = load_kb(kb_dir)
    assert suggest_entry_id(kb, "waste", "compost bins") == f"{first.entry_id}-2"


def test_concurrent_approvals_keep_both_changes(kb_dir: Path) -> None:
    errors: list[BaseException] = []

    def approve(i: int) -> None:
        try:
            add_entry(kb_dir, department="waste", question=f"Question number {i} about batteries?",
                      answer=f"Answer {i}.", today=TODAY)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    kb, _ = load_kb(kb_dir)
    assert sum("about batteries" in q for e in kb.entries for q in e.questions.get("en", [])) == 4
