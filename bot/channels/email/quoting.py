"""The citizen's new text, without the quoted mail and the signature below it.

Replies carry the whole previous conversation; the assistant must classify
only what the citizen wrote now. Clients mark quotes in different ways: "> "
lines (most clients), an attribution line ("On ... wrote:", in the client's
language, often wrapped over two or three lines), Outlook's "-----Original
Message-----" or its "From: / Sent: / To: / Subject:" header block, forward
markers. Signatures start at "-- " (RFC 3676) or are a client's "Sent from my
iPhone". The rules are conservative: a line is only cut when it clearly
belongs to one of those, and the kept text is not rewrapped.
"""

from __future__ import annotations

import re

# "On <date>, <name> wrote:" in the languages of common clients. Matched on the attribution
# joined over up to three lines, so Gmail's wrapped "On Mon, ... <\nanna@x.org> wrote:" counts.
_ATTRIBUTION = re.compile(
    r"^\s*("
    r"on\b.{3,}\bwrote"  # English
    r"|le\b.{3,}\ba écrit"  # French
    r"|am\b.{3,}\bschrieb"  # German
    r"|el\b.{3,}\bescribió"  # Spanish
    r"|em\b.{3,}\bescreveu"  # Portuguese
    r"|il\b.{3,}\bha scritto"  # Italian
    r"|op\b.{3,}\bschreef"  # Dutch
    r"|den\b.{3,}\bskrev"  # Danish, Norwegian, Swedish
    r"|(w dniu\b)?.{3,}\b(napisał|napisała|napisał\(a\)|pisze)"  # Polish
    r"|.{3,}\b(написал|написала|написал\(а\))"  # Russian
    r"|.{3,}\bkirjoitti"  # Finnish
    r"|.{3,}\byazdı"  # Turkish
    r"|.{3,}\bva escriure"  # Catalan
    r")(\s*:?|\s+.{1,150}:)\s*$",  # German, Dutch, Scandinavian put the name after the verb
    re.IGNORECASE,
)
# Attribution-like line that is surely a quote header (a date, time or address in it).
_ATTRIBUTION_EVIDENCE = re.compile(r"\d|@")

_ORIGINAL_MESSAGE = re.compile(
    r"^\s*[-_=*]{2,}\s*("
    r"original message|forwarded message|ursprüngliche nachricht|weitergeleitete nachricht"
    r"|message d'origine|message original|message transféré|mensaje original|mensaje reenviado"
    r"|mensagem original|mensagem encaminhada|messaggio originale|messaggio inoltrato"
    r"|oorspronkelijk bericht|doorgestuurd bericht|originalmeddelande|original meddelelse"
    r"|opprinnelig melding|oryginalna wiadomość|исходное сообщение|пересылаемое сообщение"
    r")\s*[-_=*]*\s*$",
    re.IGNORECASE,
)
_FORWARD_MARKER = re.compile(
    r"^\s*(begin forwarded message|début du message réexpédié|anfang der weitergeleiteten nachricht"
    r"|inicio del mensaje reenviado|início da mensagem reencaminhada)\s*:\s*$"
    r"|^\s*[-_=*]{2,}\s*(forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado"
    r"|mensagem encaminhada|messaggio inoltrato|doorgestuurd bericht|пересылаемое сообщение)",
    re.IGNORECASE,
)
# Outlook-style header block: "From:" followed by "Sent:"/"Date:" and "To:"/"Subject:".
_HEADER_FROM = re.compile(r"^\s*\*?(from|von|de|van|da|från|fra|od|от)\s*\*?\s*:", re.IGNORECASE)
_HEADER_OTHER = re.compile(
    r"^\s*\*?(sent|date|to|cc|subject|gesendet|datum|an|betreff|envoyé|date|à|objet|enviado|fecha|para|asunto"
    r"|assunto|inviato|data|a|oggetto|verzonden|aan|onderwerp|skickat|ämne|till|sendt|emne|til|wysłano"
    r"|temat|do|отправлено|кому|тема)\s*\*?\s*:",
    re.IGNORECASE,
)
_OUTLOOK_RULE = re.compile(r"^\s*_{10,}\s*$")
_SIG_DELIMITER = re.compile(r"^--\s?$")
_MOBILE_SIGNATURE = re.compile(
    r"^\s*("
    r"sent from my \S.*|sent from (mail|outlook) for .*|sent from outlook|sent from yahoo mail.*"
    r"|sent from samsung.*|sent from my samsung.*|sent via .*(mobile|blackberry|android|iphone).*"
    r"|get outlook for (ios|android).*|sent with proton mail.*|sent from proton mail.*"
    r"|enviado desde mi .*|enviado do meu .*|enviado de meu .*|envoyé de mon .*|envoyé depuis mon .*"
    r"|von meinem .* gesendet|gesendet von meinem .*|inviato da .*|verzonden (vanaf|met) mijn .*"
    r"|skickat från min .*|sendt fra min .*|wysłane z mojego .*|отправлено с .*"
    r")\s*$",
    re.IGNORECASE,
)
_QUOTE = re.compile(r"^\s*>")


def _attribution_at(lines: list[str], index: int) -> int:
    """Number of lines (1-3) of a reply attribution starting at ``index``, or 0."""
    for span in (1, 2, 3):
        if index + span > len(lines):
            break
        chunk = [line.strip() for line in lines[index : index + span]]
        if span > 1 and any(not part for part in chunk):
            break
        joined = " ".join(chunk)
        if len(joined) > 300 or not _ATTRIBUTION.match(joined):
            continue
        following = next((line for line in lines[index + span :] if line.strip()), None)
        # "On Monday I wrote:" followed by the citizen's own text is not an attribution;
        # with a date/address in it, or quoted lines after it, it is.
        if _ATTRIBUTION_EVIDENCE.search(joined) or following is None or _QUOTE.match(following):
            return span
    return 0


def _header_block_at(lines: list[str], index: int) -> bool:
    """An Outlook "From: ... / Sent: ... / To: ... / Subject: ..." block starts here."""
    if not _HEADER_FROM.match(lines[index]):
        return False
    others = 0
    for line in lines[index + 1 : index + 8]:
        if not line.strip():
            if others:
                break
            continue
        if _HEADER_OTHER.match(line):
            others += 1
        else:
            # Outlook wraps a long To:/Cc: list onto continuation lines.
            continue
    return others >= 2


def _cut_index(lines: list[str]) -> tuple[int, str, int]:
    """(line where the quoted mail starts, what starts it, its length in lines).

    Kind is "forward", "attribution", "header" or "none" (index = len(lines)).
    """
    for index, line in enumerate(lines):
        if _FORWARD_MARKER.match(line):
            return index, "forward", 1
        if _ORIGINAL_MESSAGE.match(line):
            return index, "header", 1
        if _OUTLOOK_RULE.match(line) and index + 1 < len(lines) and _header_block_at(lines, index + 1):
            return index, "header", 1
        if _header_block_at(lines, index):
            return index, "header", 1
        span = _attribution_at(lines, index)
        if span:
            return index, "attribution", span
    return len(lines), "none", 0


def _forwarded_body(lines: list[str]) -> list[str]:
    """The forwarded mail's own text: after the marker and its header block."""
    body = lines[1:]
    index = 0
    while index < len(body) and not body[index].strip():
        index += 1
    if index < len(body) and (_HEADER_FROM.match(body[index]) or _HEADER_OTHER.match(body[index])):
        while index < len(body) and body[index].strip():
            index += 1
    return body[index:]


def _drop_signature(lines: list[str]) -> list[str]:
    for index, line in enumerate(lines):
        # "-- " is the standard delimiter; a bare "--" (trailing space eaten by a client) only
        # when what follows is signature-sized.
        if _SIG_DELIMITER.match(line) and (line == "-- " or len(lines) - index <= 10):
            lines = lines[:index]
            break
    while lines and (not lines[-1].strip() or _MOBILE_SIGNATURE.match(lines[-1])):
        lines = lines[:-1]
    return lines


def _has_text(lines: list[str]) -> bool:
    return any(line.strip() for line in _drop_signature([line for line in lines if not _QUOTE.match(line)]))


def strip_quoted(text: str) -> str:
    """The new text of a reply: no quoted mail, no signature. "" when nothing new is left."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut, kind, span = _cut_index(lines)
    if kind == "forward":
        # A forwarded mail is what the citizen brings to us: keep its text (without the
        # marker and header block) after whatever the citizen wrote above it.
        above = strip_quoted("\n".join(lines[:cut]))
        forwarded = strip_quoted("\n".join(_forwarded_body(lines[cut:])))
        return "\n\n".join(part for part in (above, forwarded) if part)
    if kind == "attribution" and not _has_text(lines[:cut]):
        # Nothing above the attribution: maybe an interleaved reply ("> question", answer).
        return strip_quoted("\n".join(lines[cut + span :]))
    if kind == "header" and not _has_text(lines[:cut]):
        # Nothing above an Outlook header block: Outlook forwards look exactly like this (no
        # "Forwarded message" marker), so keep the mail below it rather than lose it.
        return strip_quoted("\n".join(_forwarded_body(lines[cut:])))
    lines = _drop_signature([line for line in lines[:cut] if not _QUOTE.match(line)])
    while lines and not lines[0].strip():
        lines = lines[1:]
    return "\n".join(line.rstrip() for line in lines)
