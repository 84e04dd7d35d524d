"""Several questions in one mail are split only when the mail's structure makes it clear."""

from __future__ import annotations

import pytest

from bot.channels.email.splitting import MAX_PARTS, asks_several, split_questions


def test_single_question_is_one_item_unchanged():
    text = "Hello,\n\nWhen is the bin collected in Elm Street?\n\nThanks,\nAnna"
    assert split_questions(text) == [text]


def test_blank_text_is_no_item():
    assert split_questions("") == []
    assert split_questions(" \n\n ") == []


def test_statement_without_question_is_one_item():
    assert split_questions("The streetlight in front of number 7 is broken.") == [
        "The streetlight in front of number 7 is broken."
    ]


def test_numbered_list_with_lead_in_greeting_and_sign_off():
    text = (
        "Hi,\n\nI have a few questions:\n"
        "1. When is the recycling collected?\n"
        "2. How do I get a resident parking permit?\n"
        "3. Where do I pay my property tax?\n\n"
        "Kind regards,\nAnna Smith"
    )
    assert split_questions(text) == [
        "When is the recycling collected?",
        "How do I get a resident parking permit?",
        "Where do I pay my property tax?",
    ]


@pytest.mark.parametrize("marker", ["-", "*", "•", "1)", "(1)", "a)"])
def test_bulleted_lists(marker):
    def item(n: int) -> str:
        label = marker.replace("1", str(n)).replace("a", "abc"[n - 1])
        return label

    text = f"{item(1)} When does the pool open?\n{item(2)} How much is a library card?"
    assert split_questions(text) == ["When does the pool open?", "How much is a library card?"]


def test_list_items_continued_on_the_next_line():
    text = (
        "My questions:\n\n"
        "1. Can I register my new address online, or do I\n   have to come to the town hall?\n\n"
        "2. How long does a new passport take?\n"
    )
    assert split_questions(text) == [
        "Can I register my new address online, or do I have to come to the town hall?",
        "How long does a new passport take?",
    ]


def test_list_of_topics_without_questions_is_not_split():
    text = "- bins\n- parking"
    assert split_questions(text) == [text]


def test_list_with_contextual_intro_is_not_split():
    text = (
        "About my building permit for the garage at 12 Main St:\n"
        "- how long does it take?\n- what does it cost?"
    )
    assert split_questions(text) == [text]


def test_list_interrupted_by_a_paragraph_is_not_split():
    text = "1. When is the market?\n\nI ask because I sell vegetables.\n\n2. Where do I apply for a stall?"
    assert split_questions(text) == [text]


def test_line_under_an_item_belongs_to_it():
    text = "1. When is the market?\nI sell vegetables.\n2. Where do I apply for a stall?"
    assert split_questions(text) == ["When is the market? I sell vegetables.", "Where do I apply for a stall?"]


def test_paragraphs_that_each_ask_something():
    text = (
        "Dear Sir or Madam,\n\n"
        "My daughter starts school in September. How do I register her?\n\n"
        "Also, the streetlight on Elm Street is broken. Who should I tell?\n\n"
        "Best regards\nJohn"
    )
    assert split_questions(text) == [
        "My daughter starts school in September. How do I register her?",
        "Also, the streetlight on Elm Street is broken. Who should I tell?",
    ]


def test_context_paragraph_joins_the_question_after_it():
    text = "I moved to Oak Lane last month.\n\nHow do I register my new address?\n\nWhen is bulky waste collected?"
    assert split_questions(text) == [
        "I moved to Oak Lane last month. How do I register my new address?",
        "When is bulky waste collected?",
    ]


def test_sentences_in_one_paragraph():
    text = "I moved last month. How do I register my new address? Also, when is the bulk waste collection?"
    assert split_questions(text) == [
        "I moved last month. How do I register my new address?",
        "Also, when is the bulk waste collection?",
    ]


def test_lowercase_sentence_after_a_question_mark_still_splits():
    text = "how do I get a parking permit? and where do I pay a parking fine?"
    assert split_questions(text) == ["how do I get a parking permit?", "and where do I pay a parking fine?"]


def test_follow_up_that_refers_back_is_not_torn_off():
    text = "What are the opening hours of the central library? Is it open on Sundays?"
    assert split_questions(text) == [text]


def test_existential_there_is_not_a_reference():
    text = "Is there a fee for a parking permit? Is there a fee for bulky waste pickup?"
    assert split_questions(text) == ["Is there a fee for a parking permit?", "Is there a fee for bulky waste pickup?"]


def test_short_follow_ups_stay_with_their_question():
    text = "Can I pay my water bill by card? Or cash?"
    assert split_questions(text) == [text]


def test_trailing_statement_joins_the_last_question():
    text = "When is the recycling collected? Where can I get a parking permit? I live in the old town."
    assert split_questions(text) == [
        "When is the recycling collected?",
        "Where can I get a parking permit? I live in the old town.",
    ]


def test_question_mark_in_a_url_is_not_a_question():
    text = "I read https://city.example/page?id=3 today. When does the pool open?"
    assert split_questions(text) == [text]


def test_too_many_parts_stay_whole():
    text = "\n".join(f"{n}. Question number {n} about topic {n}?" for n in range(1, MAX_PARTS + 2))
    assert split_questions(text) == [text]


def test_asks_several():
    assert asks_several("What are the opening hours? Is it open on Sundays?")
    assert asks_several("1. When?\n2. Where?")
    assert not asks_several("When is the bin collected?")
    assert not asks_several("See https://city.example/?a=1 please.")
    assert not asks_several("")
