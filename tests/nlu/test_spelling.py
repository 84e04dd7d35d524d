"""Typos and text-speak: bot/nlu/speller.py (pure, in this env) and its Rasa wrapper
bot/nlu/spelling.py (in the Rasa env, through a subprocess), and that the store keeps
the message as sent whatever Rasa reads."""

from __future__ import annotations

import json
import pickle
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.core.conversation import Conversation
from bot.core.inbound import InboundMessage
from bot.core.turn_outcomes import Turn, escalate_turn
from bot.nlu.speller import TEXT_SPEAK, Speller, training_names, training_words
from bot.runtime import Runtime
from bot.settings import Settings, get_settings
from bot.store.db import session_factory
from bot.store.models import Message
from bot.tickets.ids import extract_ticket_ids
from bot.tickets.models import Ticket
from tests.tickets.strategies import ticket_ids

REPO = Path(__file__).resolve().parents[2]
RASA_PY = REPO / ".venv-rasa" / "bin" / "python"

KB_TEXT = [
    "When is the library open?",
    "Is there a bulky waste pickup in Eastbrook?",
    "How do I pay council tax by direct debit?",
    "Road works on Northgate Road",
]


@pytest.fixture(scope="module")
def speller() -> Speller:
    return Speller.build(training_words(KB_TEXT), known_words=["custmer"], kb_names=training_names(KB_TEXT))


@pytest.mark.parametrize("typed, meant", [
    ("wen is the libary open", "when is the library open"),
    ("pasport renewall documents needed", "passport renewal documents needed"),
    ("can u tell me abt the recyling centre pls", "can you tell me about the recycling centre please"),
    ("wen r u open 2moro", "when are you open tomorrow"),
    ("Wen is it open?", "When is it open?"),
    ("bin day??", "bin day?"),
    # A rare English word one slip from a KB word is taken for the slip.
    ("is there a bulky wast pickup", "is there a bulky waste pickup"),
    ("DBS chek needed!!", "DBS check needed!"),
])
def test_typos_and_text_speak_are_corrected(speller: Speller, typed: str, meant: str) -> None:
    assert speller.correct(typed)[0] == meant


def test_kb_words_are_kept_and_preferred(speller: Speller) -> None:
    # "Eastbrook" is no English word: never changed, and the correction of a misspelling of it.
    assert speller.correct("bulky pickup in Eastbrook")[0] == "bulky pickup in Eastbrook"
    assert speller.correct("bulky pickup in Eastbrok")[0] == "bulky pickup in Eastbrook"
    # As close to "debbie" as to "debit": the KB word wins the tie that English frequency would lose.
    assert speller.correct("pay by dirct debbit")[0] == "pay by direct debit"
    without_kb = Speller.build()
    assert without_kb.correct("pay by dirct debbit")[0] == "pay by direct debbie"


def test_known_words_of_other_examples_are_kept_but_not_preferred(speller: Speller) -> None:
    assert speller.correct("custmer service")[0] == "custmer service"
    # One edit from both: the known misspelling is no correction target.
    assert speller.correct("custemer service")[0] == "customer service"


def test_names_inside_a_sentence_are_corrected_only_to_kb_words(speller: Speller) -> None:
    # "Brakley" could be a street the KB does not know: no English word replaces it, nor a KB
    # word that is no name ("Merrow" is one edit from "borrow").
    assert training_names(KB_TEXT) == ["eastbrook", "northgate", "road"]
    assert speller.correct("I live on Brakley Raod")[0] == "I live on Brakley Road"
    assert Speller.build(["borrow"]).correct("leak on Merrow Street")[0] == "leak on Merrow Street"
    assert speller.correct("works on Northgat Road")[0] == "works on Northgate Road"
    # At the start of a sentence a capital says nothing: corrected like any word.
    assert speller.correct("Libary hours. Pasport office")[0] == "Library hours. Passport office"


def test_codes_numbers_addresses_and_short_words_are_left_alone(speller: Speller) -> None:
    for text in (
        "email jon.smyth@exmaple.com or see https://www.eastbrook.example/wast",
        "flat 12b, 3rd floor, call 0151 555 2290",
        "the ABC-K7M-39Q-XD2 code and the xq form",
        "drop-of point",  # hyphenated tokens are not split and guessed at
        "/choose_kb_entry{\"kb_entry\": \"waste-bulky-items\"}",
    ):
        assert speller.correct(text) == (text, [])


# A letters-only ID here has a letter for its check symbol too.
@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(raw=st.one_of(ticket_ids(), ticket_ids(letters_only=True).filter(lambda i: i[-1].isalpha())))
def test_ticket_ids_reach_the_status_action_unchanged(speller: Speller, raw: str) -> None:
    for typed in (raw, raw.replace("-", " "), raw.lower(), raw.lower().replace("-", " "), raw.replace("-", "")):
        text = f"wat is the statsu of {typed} pls"
        corrected, _ = speller.correct(text)
        assert typed in corrected
        assert [f.canonical for f in extract_ticket_ids(corrected, expecting_id=True)] == \
            [f.canonical for f in extract_ticket_ids(text, expecting_id=True)]


def test_shouted_messages_are_corrected_but_acronyms_are_not(speller: Speller) -> None:
    assert speller.correct("WEN IS TEH LIBARY OPEN")[0] == "When IS the library OPEN"
    assert speller.correct("my ABCD form")[0] == "my ABCD form"


def test_corrections_are_reported_and_text_speak_is_a_small_table(speller: Speller) -> None:
    corrected, corrections = speller.correct("wen is the libary open")
    assert [(c.original, c.corrected) for c in corrections] == [("wen", "when"), ("libary", "library")]
    assert len(TEXT_SPEAK) < 40


def test_pickle_round_trip_and_a_foreign_pickle(speller: Speller) -> None:
    again = Speller.from_pickle(speller.to_pickle(), training_words(KB_TEXT), training_names(KB_TEXT))
    assert again is not None
    assert again.correct("bulky pickup in Eastbrok wen libary")[0] == "bulky pickup in Eastbrook when library"
    foreign = pickle.dumps({"data_version": -1})
    assert Speller.from_pickle(foreign, []) is None


# -- the Rasa component ------------------------------------------------------------

PROBE = r"""
import json, sys, tempfile, time, uuid
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import INTENT, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from bot.nlu.spelling import SpellingNormalizer

examples = [
    Message(data={TEXT: "Is there a bulky waste pickup in Eastbrook?", INTENT: "faq",
                  INTENT_RESPONSE_KEY: "faq/waste-bulky-items"}),
    Message(data={TEXT: "the custmer service was rude", INTENT: "complaint"}),
]
data = TrainingData(training_examples=examples, responses={
    "utter_faq/waste-bulky-items": [{"text": "Book a pickup at the Greenway depot."}]})
with tempfile.TemporaryDirectory() as tmp:
    storage = LocalModelStorage(Path(tmp))
    resource = Resource("spelling")
    context = ExecutionContext(GraphSchema({}), uuid.uuid4().hex)
    config = SpellingNormalizer.get_default_config()
    trained = SpellingNormalizer.create(config, storage, resource, context)
    trained.train(data)
    processed = trained.process_training_data(data)
    print(json.dumps([m.get(TEXT) for m in processed.training_examples]))
    started = time.perf_counter()
    loaded = SpellingNormalizer.load(config, storage, resource, context)
    print(json.dumps({"load_seconds": time.perf_counter() - started}))
    messages = [Message(data={TEXT: "wen is the bulky wast pikcup at Greenwy depot"}),
                Message(data={TEXT: "the custmer service"}),
                Message(data={TEXT: "status of K7M-39Q-XD2"})]
    for message in loaded.process(messages):
        print(json.dumps(message.as_dict(only_output_properties=True)))
    untrained = SpellingNormalizer.load(config, storage, Resource("never-trained"), context)
    print(json.dumps(untrained.process([Message(data={TEXT: "wen libary"})])[0].as_dict()))
"""


def test_rasa_component_corrects_text_and_keeps_the_original() -> None:
    out = subprocess.run(
        [str(RASA_PY), "-c", PROBE, str(REPO)], capture_output=True, text=True, timeout=300, check=True
    ).stdout.splitlines()
    assert json.loads(out[0]) == ["Is there a bulky waste pickup in Eastbrook?", "the custmer service was rude"]
    load_seconds = json.loads(out[1])["load_seconds"]
    print(f"SpellingNormalizer.load: {load_seconds:.2f} s")
    assert load_seconds < 3.0
    first, second, third = (json.loads(line) for line in out[2:5])
    assert first["text"] == "when is the bulky waste pickup at Greenway depot"
    assert first["text_original"] == "wen is the bulky wast pikcup at Greenwy depot"
    assert ["Greenwy", "Greenway"] in first["spelling_corrections"]
    assert (second["text"], second["spelling_corrections"]) == ("the custmer service", [])
    assert third["text"] == third["text_original"] == "status of K7M-39Q-XD2"
    assert json.loads(out[5]) == {"text": "wen libary"}


# -- the store keeps what was sent -------------------------------------------------

class CorrectingRasa:
    """Rasa's part for one complaint: the real speller's text in the parse output, as Rasa 3.6
    puts it in ``latest_message`` (corrected ``text``, ``text_original`` beside it)."""

    def __init__(self, speller: Speller) -> None:
        self.speller = speller
        self.seen: list[Turn] = []

    def send(self, *, sender: str, text: str, metadata: dict) -> list[dict]:
        corrected, _ = self.speller.correct(text)
        latest = {"text": corrected, "text_original": text, "intent": {"name": "complaint", "confidence": 0.9},
                  "metadata": metadata, "kb_match": {"ranking": []}, "entities": []}
        turn = Turn.from_latest_message(sender, latest)
        self.seen.append(turn)
        return [{"text": reply.response} for reply in escalate_turn(turn, Runtime(get_settings()))]


def test_the_stored_message_and_ticket_keep_the_text_as_sent(db_url: str, speller: Speller,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", db_url)
    monkeypatch.setenv("CRM_API_KEYS", "k" * 24)
    get_settings.cache_clear()
    rasa = CorrectingRasa(speller)
    conversation = Conversation(Settings(api_keys="k" * 24, database_url=db_url), session_factory(db_url), rasa)
    sent = "the custmr service at the libary was rude to me pls call"
    try:
        result = conversation.handle_inbound(InboundMessage(channel="web", sender="c1", text=sent))
    finally:
        get_settings.cache_clear()
    assert rasa.seen[0].text != sent  # Rasa did read the corrected text ...
    assert result.handling == "escalated"
    with session_factory(db_url)() as session:
        stored = session.get(Message, result.message_id)
        assert stored.text == sent  # ... and the store has what the citizen typed
        ticket = session.scalars(select(Ticket)).one()
        assert stored.ticket_id == ticket.id
        assert "libary" in ticket.subject and "library" not in ticket.subject
