"""The citizen's new text survives; the quoted mail and the signature do not."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels.email.html_text import html_to_text
from bot.channels.email.parsing import parse_email
from bot.channels.email.quoting import strip_quoted

MAILS = Path(__file__).parent / "mails"


def new_text(name: str) -> str:
    return strip_quoted(parse_email((MAILS / f"{name}.eml").read_bytes()).text)


def test_gmail_reply():
    assert new_text("gmail_reply") == (
        "Hello,\n\nThe sofa is still on the pavement in front of Lindenstraße 12. Could\n"
        "someone pick it up this week?\n\nThanks,\nAnna"
    )


def test_outlook_reply():
    assert new_text("outlook_reply") == (
        "Thank you. I live at 4 rue du Café, is that street inside the resident zone – and how long does "
        "the permit last?\n\nBest regards,\nJean Dupont"
    )


def test_apple_mail_reply_from_iphone():
    assert new_text("apple_mail_reply") == "Great, and is the pool also open on public holidays?"


def test_gmail_html_only_reply():
    html = (
        '<div dir="ltr">Yes, it is number 12.</div><br><div class="gmail_quote"><div dir="ltr" '
        'class="gmail_attr">On Mon, Feb 5, 2024 at 4:02 PM City Hall &lt;info@city.example&gt; wrote:<br></div>'
        '<blockquote class="gmail_quote">Which house number?<br></blockquote></div>'
    )
    assert strip_quoted(html_to_text(html)) == "Yes, it is number 12."


def test_outlook_html_only_reply():
    html = (
        '<div>Thanks, that helps.</div><div id="appendonsend"></div><hr tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><b>From:</b> City Hall &lt;info@city.example&gt;<br>'
        "<b>Sent:</b> Tuesday, February 6, 2024 3:10 PM<br><b>To:</b> Jean &lt;j@x.example&gt;<br>"
        "<b>Subject:</b> Re: Parking</div><div>Dear Jean, permits are issued by the Parking Office.</div>"
    )
    assert strip_quoted(html_to_text(html)) == "Thanks, that helps."


def test_quoted_lines_and_attribution_in_several_languages():
    for attribution in [
        "On Tue, 6 Feb 2024 at 10:00, City Hall <info@city.example> wrote:",
        "Le mar. 6 févr. 2024 à 10:00, City Hall <info@city.example> a écrit :",
        "Am Di., 6. Feb. 2024 um 10:00 Uhr schrieb City Hall <info@city.example>:",
        "El mar, 6 feb 2024 a las 10:00, City Hall (<info@city.example>) escribió:",
        "Em ter., 6 de fev. de 2024 às 10:00, City Hall <info@city.example> escreveu:",
        "Il giorno mar 6 feb 2024 alle ore 10:00 City Hall <info@city.example> ha scritto:",
        "Op di 6 feb 2024 om 10:00 schreef City Hall <info@city.example>:",
        "Den tis 6 feb. 2024 kl 10:00 skrev City Hall <info@city.example>:",
        "W dniu 6.02.2024 o 10:00, City Hall <info@city.example> pisze:",
        "вт, 6 февр. 2024 г. в 10:00, City Hall <info@city.example>:\nнаписал:",
    ]:
        text = f"My new text.\n\n{attribution}\n\n> quoted line\n> another\n"
        assert strip_quoted(text) == "My new text.", attribution


def test_attribution_wrapped_over_lines():
    text = (
        "Fine, thank you.\n\nOn Mon, Feb 5, 2024 at 4:02 PM City Hall <\ninfo@city.example> wrote:\n\n> old text\n"
    )
    assert strip_quoted(text) == "Fine, thank you."


def test_unquoted_text_after_an_attribution_is_cut():
    # Some clients do not prefix the quote at all: the attribution alone marks where it starts.
    text = "New text.\n\nOn 5 Feb 2024, at 10:00, City Hall <info@city.example> wrote:\n\nDear Anna, old reply.\n"
    assert strip_quoted(text) == "New text."


def test_citizen_prose_that_looks_like_an_attribution_is_kept():
    text = "On Monday I wrote:\nthe streetlight is out again and nobody came."
    assert strip_quoted(text) == text
    text = "On Monday the bin was not emptied, as my neighbour wrote:\nit happens every week."
    assert strip_quoted(text) == text


def test_interleaved_reply_keeps_the_answers():
    text = (
        "On Mon, 5 Feb 2024, City Hall <info@city.example> wrote:\n"
        "> Which street is it?\nElm Street.\n> And the house number?\n12\n"
    )
    assert strip_quoted(text) == "Elm Street.\n12"


def test_original_message_separators():
    for separator in [
        "-----Original Message-----",
        "----- Original Message -----",
        "-----Ursprüngliche Nachricht-----",
        "-----Message d'origine-----",
        "-----Mensaje original-----",
        "-------- Message original --------",
    ]:
        assert strip_quoted(f"Thanks!\n\n{separator}\nFrom: City Hall\nold text") == "Thanks!", separator


def test_outlook_header_block_localised():
    text = (
        "Danke.\n\nVon: City Hall <info@city.example>\nGesendet: Dienstag, 6. Februar 2024 10:00\n"
        "An: Anna <anna@x.example>\nBetreff: Re: Sperrmüll\n\nSehr geehrte Frau...\n"
    )
    assert strip_quoted(text) == "Danke."
    text = (
        "Merci.\n\nDe : City Hall <info@city.example>\nEnvoyé : mardi 6 février 2024 10:00\n"
        "À : Jean <j@x.example>\nObjet : Re: Stationnement\n\nBonjour...\n"
    )
    assert strip_quoted(text) == "Merci."


def test_a_single_from_line_in_prose_is_kept():
    text = "From: my kitchen window I can see the broken lamp.\nPlease fix it."
    assert strip_quoted(text) == text


def test_forward_only_keeps_the_forwarded_text():
    text = (
        "---------- Forwarded message ---------\nFrom: Neighbour <n@x.example>\nDate: Mon, 5 Feb 2024 at 09:00\n"
        "Subject: Tree\nTo: Me <me@x.example>\n\nA tree fell on Oak Lane.\n"
    )
    assert strip_quoted(text) == "A tree fell on Oak Lane."


def test_forward_with_a_note_keeps_both():
    text = (
        "Please see below, this is urgent.\n\nBegin forwarded message:\n\nFrom: Neighbour <n@x.example>\n"
        "Subject: Tree\nDate: 5 February 2024 at 09:00:00 CET\nTo: Me <me@x.example>\n\nA tree fell on Oak Lane.\n"
    )
    assert strip_quoted(text) == "Please see below, this is urgent.\n\nA tree fell on Oak Lane."


@pytest.mark.parametrize(
    "signature",
    [
        "-- \nAnna Schmidt\nLindenstraße 12\n+49 30 1234567",
        "--\nAnna",
        "Sent from my iPhone",
        "Sent from my iPad",
        "Sent from my Samsung Galaxy smartphone.",
        "Get Outlook for Android",
        "Sent from Outlook for iOS",
        "Sent from Mail for Windows",
        "Sent from Yahoo Mail for iPhone",
        "Enviado desde mi iPhone",
        "Envoyé de mon iPhone",
        "Von meinem iPhone gesendet",
        "Inviato da iPhone",
        "Verzonden vanaf mijn iPhone",
    ],
)
def test_signatures(signature):
    assert strip_quoted(f"The bin was not emptied.\n\n{signature}\n") == "The bin was not emptied."


def test_double_dash_in_the_middle_of_long_text_is_kept():
    text = "Point one.\n--\n" + "\n".join(f"line {n}" for n in range(15))
    assert strip_quoted(text) == text


def test_text_without_quotes_is_unchanged_except_trailing_blank_lines():
    text = "  Indented first line\n\nSecond paragraph with > inside.\n\n\n"
    assert strip_quoted(text) == "  Indented first line\n\nSecond paragraph with > inside."


def test_outlook_forward_without_a_note_keeps_the_forwarded_mail():
    text = (
        "________________________________\nFrom: Neighbour <n@x.example>\nSent: Monday, February 5, 2024 9:00 AM\n"
        "To: Me <me@x.example>\nSubject: Tree\n\nA tree fell on Oak Lane.\n"
    )
    assert strip_quoted(text) == "A tree fell on Oak Lane."
    assert strip_quoted("-----Original Message-----\nFrom: N\nSent: today\nTo: me\n\nTree fell.") == "Tree fell."


def test_only_quoted_text_gives_empty():
    assert strip_quoted("> old\n> text\n") == ""
    assert strip_quoted("") == ""


def test_crlf_input():
    assert strip_quoted("New.\r\n\r\n> old\r\n") == "New."
