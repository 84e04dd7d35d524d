"""One email, several questions: split them so each is answered (or escalated) on its own.

A chat message usually asks one thing; an email often asks three. Classifying
the whole mail would answer one of them with a guess and drop the rest, so a
mail whose structure clearly shows separate questions (a numbered or bulleted
list, paragraphs that each ask something, several self-contained questions)
is split. Everything else stays whole: a wrong split (a follow-up question
torn from the question it refers to) is worse than no split, because the
whole mail then still reaches a person when it is not confidently answered.
"""

from __future__ import annotations

import re

MAX_PARTS = 6

_GREETING = re.compile(
    r"^\s*(hi|hello|hey|dear|good (morning|afternoon|evening)|greetings|to whom it may concern"
    r"|hola|bonjour|hallo|olá|ola|buongiorno|buenos días|guten tag)\b[^.?!\n]{0,60}[,.!:]?\s*$",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^\s*(thanks?( you)?( (so|very) much)?( in advance)?|many thanks|thx|cheers|regards|best( regards| wishes)?"
    r"|kind regards|warm regards|best wishes|sincerely( yours)?|yours (sincerely|faithfully|truly)"
    r"|with (kind |best )?regards|all the best|have a (nice|good|great) day|looking forward to (your|hearing).*"
    r"|gracias|merci|danke|obrigad[oa]|grazie)\b[^?\n]{0,40}[,.!]?\s*$",
    re.IGNORECASE,
)
_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[a-h][.)]|\(\d{1,2}\)|\(?[a-h]\)|[-*•·–])\s+(?=\S)")
_LEAD_IN = re.compile(r":\s*$")
# "I have a few questions:" and the like: an intro that carries no context of its own.
_GENERIC_LEAD_IN = re.compile(
    r"\b(question|questions|ask|know|following|wonder|wondering|inquir\w*|enquir\w*|information|help|queries)\b",
    re.IGNORECASE,
)
# A sentence ends at "?" followed by a space, or at "." / "!" followed by a space and a capital.
_SENTENCE_END = re.compile(r"(?<=\?)\s+|(?<=[.!])\s+(?=[\"'(¿¡A-Z0-9À-Ý])")
# Words that make a question lean on the one before it ("Is it open on Sunday?").
_ANAPHORA = re.compile(r"\b(it|its|they|them|their|there|this|these|those|he|she|him|her|one|same)\b", re.IGNORECASE)
_QUESTION_MARK = re.compile(r"\?(?=[\s)\"'»]|$)")  # not the "?" of a URL's query string
_EXISTENTIAL = re.compile(r"\b(is|are|was|were|be)\s+there\b", re.IGNORECASE)
_NAME_LINE = re.compile(r"^\s*[A-Z][\w.'-]*(\s+[A-Z][\w.'-]*){0,3}\s*$")


def _strip_courtesies(lines: list[str]) -> list[str]:
    """Drop a greeting at the top and a sign-off (with the name under it) at the bottom."""
    lines = list(lines)
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and _GREETING.match(lines[0]):
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    # "Thanks,\nAnna Smith" / "Kind regards\n\nAnna": the sign-off within the last three lines.
    tail = [index for index in range(max(0, len(lines) - 3), len(lines)) if _SIGN_OFF.match(lines[index])]
    if tail:
        rest = lines[tail[0] + 1 :]
        if all(not line.strip() or _NAME_LINE.match(line) for line in rest):
            lines = lines[: tail[0]]
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines


def _paragraphs(lines: list[str]) -> list[str]:
    paragraphs, current = [], []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def _list_items(lines: list[str]) -> tuple[list[str], list[str], list[str]] | None:
    """(lines before the list, the items, lines after) when the text holds one clear list."""
    starts = [index for index, line in enumerate(lines) if _LIST_ITEM.match(line)]
    if len(starts) < 2:
        return None
    items: list[str] = []
    end = starts[0]
    for position, start in enumerate(starts):
        stop = starts[position + 1] if position + 1 < len(starts) else len(lines)
        body = [_LIST_ITEM.sub("", lines[start], count=1).strip()]
        for line in lines[start + 1 : stop]:
            if not line.strip():
                break  # a blank line ends the item (and, after the last one, the list)
            body.append(line.strip())
        end = start + len(body)
        # Items must be one run: a blank-separated list is fine, prose between items is not.
        if position + 1 < len(starts) and any(line.strip() for line in lines[end:stop]):
            return None
        items.append(" ".join(body))
    return lines[: starts[0]], items, lines[end:]


def _sentences(paragraph: str) -> list[str]:
    return [found.strip() for found in _SENTENCE_END.split(paragraph) if found.strip()]


def _is_question(text: str) -> bool:
    return bool(_QUESTION_MARK.search(text))


def _group_questions(units: list[str], check_anaphora: bool) -> list[str] | None:
    """Attach context to the question after it and follow-ups to the question before them."""
    parts: list[str] = []
    pending: list[str] = []
    for unit in units:
        if not _is_question(unit):
            pending.append(unit)
            continue
        follows_up = check_anaphora and parts and not pending and _ANAPHORA.search(_EXISTENTIAL.sub("", unit))
        if follows_up or (parts and len(unit.split()) < 3):
            parts[-1] = f"{parts[-1]} {unit}"
        else:
            parts.append(" ".join([*pending, unit]))
        pending = []
    if pending:
        if not parts:
            return None
        parts[-1] = " ".join([parts[-1], *pending])  # trailing context belongs to the last question
    return parts


def split_questions(text: str) -> list[str]:
    """The separate questions of ``text``; ``[text.strip()]`` when it asks one thing or it is unclear."""
    whole = text.strip()
    if not whole:
        return []
    lines = _strip_courtesies(whole.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    if not lines:
        return [whole]

    parts: list[str] | None = None
    listed = _list_items(lines)
    if listed:
        before, items, after = listed
        intro = " ".join(line.strip() for line in before if line.strip())
        outro = " ".join(line.strip() for line in after if line.strip())
        asking = sum(_is_question(item) for item in items) >= 2
        if intro and not (_LEAD_IN.search(intro) and _GENERIC_LEAD_IN.search(intro) and len(intro.split()) <= 15):
            parts = None  # context that belongs to every item, or a question of its own: unclear
        elif outro and _is_question(outro):
            parts = None
        elif not asking and not intro:
            parts = None  # a list of things, not of questions
        else:
            parts = items
    elif sum(bool(_LIST_ITEM.match(line)) for line in lines) >= 2:
        parts = None  # list markers, but not one clean list: unclear
    else:
        paragraphs = _paragraphs(lines)
        if sum(_is_question(p) for p in paragraphs) >= 2:
            parts = _group_questions(paragraphs, check_anaphora=False)
        else:
            sentences = [sentence for paragraph in paragraphs for sentence in _sentences(paragraph)]
            if sum(_is_question(s) for s in sentences) >= 2:
                parts = _group_questions(sentences, check_anaphora=True)

    if not parts or len(parts) < 2 or len(parts) > MAX_PARTS:
        return [whole]
    return parts


def asks_several(text: str) -> bool:
    """Whether ``text`` holds two or more questions, split or not.

    When ``split_questions`` kept such a text whole (the questions lean on each
    other, or the structure was unclear), one confident answer may still leave
    a question unanswered: the caller should not auto-answer it with a guess.
    """
    lines = _strip_courtesies(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    sentences = [sentence for paragraph in _paragraphs(lines) for sentence in _sentences(paragraph)]
    return sum(_is_question(sentence) for sentence in sentences) >= 2
