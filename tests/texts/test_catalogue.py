"""The text catalogues: complete in every language, strict placeholders, domain.yml in line."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot import texts
from bot.settings import PROJECT_ROOT
from bot.texts import DEFAULT_LANGUAGE, TextError, catalogue, languages, placeholders, text
from bot.texts.domain import DOMAIN_LANGUAGES, DomainLayoutError, domain_languages, render_domain, responses

DOMAIN = PROJECT_ROOT / "domain.yml"


@pytest.fixture
def catalogue_dir(tmp_path, monkeypatch):
    """A catalogue directory of the test's own; the caches are emptied before and after."""
    def clear() -> None:
        languages.cache_clear()
        catalogue.cache_clear()

    clear()
    monkeypatch.setattr(texts, "CATALOGUE_DIR", tmp_path)
    yield tmp_path
    clear()


def write(directory: Path, language: str, body: str) -> None:
    (directory / f"{language}.yml").write_text(body, "utf-8")


@pytest.mark.parametrize("language", languages())
def test_every_catalogue_has_every_key_with_the_same_placeholders(language):
    default = catalogue(DEFAULT_LANGUAGE)
    other = catalogue(language)
    assert sorted(set(default) - set(other)) == [], f"missing in {language}.yml"
    assert sorted(set(other) - set(default)) == [], f"in {language}.yml but not in {DEFAULT_LANGUAGE}.yml"
    differing = {key: (sorted(placeholders(default[key])), sorted(placeholders(other[key])))
                 for key in default if placeholders(default[key]) != placeholders(other[key])}
    assert differing == {}


@pytest.mark.parametrize("language", languages())
def test_texts_are_non_empty_and_use_named_placeholders_only(language):
    for key, value in catalogue(language).items():
        assert value.strip(), key
        assert "language" not in placeholders(value), key  # raises on {0}, {}, {x!r}, {x:>3}
        assert value == value.strip(), f"{key}: leading or trailing white space"


def test_the_default_language_comes_first():
    assert languages()[0] == DEFAULT_LANGUAGE == "en"


def test_text_fills_named_placeholders():
    assert text("ticket.saved", ticket_id="K7M-39Q-XD2", commitment="24 hours") == (
        "Thank you. Your message has been saved as ticket K7M-39Q-XD2, and a member of staff will reply within "
        "24 hours.")
    assert text("commitment.hours", hours=1.5) == "1.5 hours"


def test_missing_key_missing_value_and_unexpected_value_fail_loudly():
    with pytest.raises(TextError, match="no text 'ticket.nonexistent'"):
        text("ticket.nonexistent")
    with pytest.raises(TextError, match=r"missing values \['commitment'\]"):
        text("ticket.saved", ticket_id="K7M-39Q-XD2")
    with pytest.raises(TextError, match=r"unexpected values \['extra'\]"):
        text("edit.already_answered", extra="x")


def test_placeholders_reject_anything_but_names():
    assert placeholders("a {b} and {c} and {b}") == {"b", "c"}
    for bad in ("{0}", "{}", "{x!r}", "{x:>3}", "{x.y}", "{x[0]}"):
        with pytest.raises(TextError):
            placeholders(bad)


def test_an_unknown_language_falls_back_to_the_default():
    assert text("edit.already_answered", "xx") == text("edit.already_answered")
    assert text("edit.already_answered", None) == text("edit.already_answered", DEFAULT_LANGUAGE)
    assert text("ticket.latest_update", language="xx", update="u") == "Latest update: u"


def test_a_second_language_is_used_and_a_missing_key_falls_back(catalogue_dir, caplog):
    write(catalogue_dir, "en", "greeting: 'Hello {name}'\nbye: Goodbye\n")
    write(catalogue_dir, "es", "greeting: 'Hola {name}'\n")
    assert languages() == ("en", "es")
    assert text("greeting", "es", name="Ana") == "Hola Ana"
    assert text("greeting", "fr", name="Ana") == "Hello Ana"
    assert text("bye", "es") == "Goodbye"
    assert "missing in the 'es' catalogue" in caplog.text


def test_a_catalogue_leaf_must_be_text(catalogue_dir):
    write(catalogue_dir, "en", "count: 3\n")
    with pytest.raises(TextError, match="count is int"):
        catalogue("en")


def test_a_key_twice_is_refused(catalogue_dir):
    write(catalogue_dir, "en", "ticket:\n  saved: One\n  other: Two\n  saved: Three\n")
    with pytest.raises(TextError, match="en.yml: line 4: 'saved' appears twice"):
        catalogue("en")


def test_catalogues_are_read_on_first_use_not_at_import():
    probe = ("import bot.texts, bot.core.conversation, bot.channels.email.worker, bot.identity.linking, "
             "bot.channels.telegram.handlers, bot.channels.whatsapp.processing, bot.channels.whatsapp.graph, "
             "bot.console.routes_insights, bot.kb.commands, bot.training; "
             "print(bot.texts.catalogue.cache_info().currsize, bot.texts.languages.cache_info().currsize)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["0", "0"]


# domain.yml: its responses are generated from the catalogue's "rasa" section.

def test_committed_domain_equals_what_the_catalogue_generates():
    committed = DOMAIN.read_text("utf-8")
    assert render_domain(committed) == committed, "run `python -m bot kb compile` after editing the catalogue"


def test_domain_responses_are_the_catalogue_texts_in_rasa_syntax():
    domain = yaml.safe_load(DOMAIN.read_text("utf-8"))
    expected = {name: [{"text": by_language[DEFAULT_LANGUAGE]}] for name, by_language in responses().items()}
    assert domain["responses"] == expected
    assert domain["responses"]["utter_ticket_joined"][0]["text"] == (
        "I've added this to your open ticket {ticket_id} with our {department} team. "
        "They will reply within {commitment}.")
    assert domain["slots"]["language"]["values"] == list(domain_languages())


def test_only_the_domain_languages_are_generated_into_the_domain():
    assert DOMAIN_LANGUAGES == (DEFAULT_LANGUAGE,)  # the other catalogues join when the slot is set
    assert domain_languages() == (DEFAULT_LANGUAGE,)
    assert domain_languages(["es", "xx"]) == tuple(lang for lang in languages() if lang in {"en", "es"})
    assert all(set(by_language) == {DEFAULT_LANGUAGE} for by_language in responses().values())


def test_every_response_the_actions_send_is_in_the_catalogue():
    source = "\n".join(p.read_text("utf-8") for p in (PROJECT_ROOT / "bot" / "core").glob("*.py"))
    # Two are prefixes, completed with _created or _joined in code.
    used = set(re.findall(r'"(utter_[a-z_]+)"', source)) - {"utter_ticket", "utter_kb_offer_expired_ticket"}
    used |= {"utter_ticket_created", "utter_ticket_joined",
             "utter_kb_offer_expired_ticket_created", "utter_kb_offer_expired_ticket_joined"}
    assert used <= set(responses())


def test_a_second_language_becomes_conditioned_variations(catalogue_dir):
    write(catalogue_dir, "en", 'rasa:\n  utter_greet: "Hello!"\n  utter_status: "Ticket {ticket_id} is \\"{status}\\"."\n')
    write(catalogue_dir, "es", 'rasa:\n  utter_greet: "¡Hola!"\n  utter_status: "El ticket {ticket_id} está {status}."\n')
    domain = (
        "version: \"3.1\"\n\nslots:\n  language:\n    type: categorical\n    values: [en]\n\n"
        "responses:\n  utter_old:\n    - text: \"gone\"\n\n# kept\nsession_config:\n  session_expiration_time: 60\n"
    )
    assert "¡Hola!" not in render_domain(domain)  # the default domain languages: English only
    rendered = render_domain(domain, languages())
    assert render_domain(rendered, languages()) == rendered
    assert rendered.endswith("# kept\nsession_config:\n  session_expiration_time: 60\n")
    parsed = yaml.safe_load(rendered)
    assert parsed["slots"]["language"]["values"] == ["en", "es"]
    condition = [{"type": "slot", "name": "language", "value": "es"}]
    assert parsed["responses"] == {
        "utter_greet": [{"text": "Hello!"}, {"text": "¡Hola!", "condition": condition}],
        "utter_status": [{"text": 'Ticket {ticket_id} is "{status}".'},
                         {"text": "El ticket {ticket_id} está {status}.", "condition": condition}],
    }


def test_a_domain_without_the_generated_parts_is_refused():
    with pytest.raises(DomainLayoutError):
        render_domain("version: \"3.1\"\nslots:\n  language:\n    values: [en]\n")
    with pytest.raises(DomainLayoutError):
        render_domain("version: \"3.1\"\nresponses:\n  utter_greet:\n    - text: hi\n")


@pytest.mark.parametrize("language", languages())
def test_channel_labels_fit_the_channels_limits(language):
    from bot.channels.whatsapp.graph import BUTTON_TITLE_LIMIT, LIST_BUTTON_LIMIT, SECTION_TITLE_LIMIT

    texts_of = catalogue(language)
    assert len(texts_of["whatsapp.none_button"]) <= BUTTON_TITLE_LIMIT
    assert len(texts_of["whatsapp.option"].format(n=3)) <= BUTTON_TITLE_LIMIT
    assert len(texts_of["whatsapp.list_button"]) <= LIST_BUTTON_LIMIT
    assert len(texts_of["whatsapp.section_title"]) <= SECTION_TITLE_LIMIT


def _lookups() -> list[tuple[str, ast.Call]]:
    """Every call of the catalogue lookup in the application code, with its file."""
    found = []
    for path in sorted((PROJECT_ROOT / "bot").rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        aliases = {"text"} if path.parent.name == "texts" else set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "bot.texts":
                aliases |= {a.asname or a.name for a in node.names if a.name == "text"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in aliases:
                found.append((str(path.relative_to(PROJECT_ROOT)), node))
    return found


def test_every_lookup_in_the_code_names_a_key_and_fills_exactly_its_placeholders():
    default = catalogue(DEFAULT_LANGUAGE)
    checked = 0
    for where, call in _lookups():
        if not call.args:
            continue
        key = call.args[0]
        names = {k.arg for k in call.keywords}
        if None in names:
            continue  # **values: checked where they are built
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            keys = [key.value]
        elif isinstance(key, ast.JoinedStr):  # f"link.bad_address.{channel}": every key it can name
            pattern = "".join(re.escape(p.value) if isinstance(p, ast.Constant) else r"[a-z_]+" for p in key.values)
            keys = [k for k in default if re.fullmatch(pattern, k)]
            assert keys, f"{where}:{call.lineno}: no key matches {pattern}"
        else:
            continue  # a key held in a constant, e.g. choices.STALE_BUTTON: resolved below
        for found in keys:
            assert found in default, f"{where}:{call.lineno}: no text {found!r}"
            assert placeholders(default[found]) == names - {None}, f"{where}:{call.lineno}: {found}"
            checked += 1
    assert checked > 50


def test_keys_held_in_constants_exist():
    from bot.channels.telegram import choices
    from bot.channels.whatsapp import processing

    default = catalogue(DEFAULT_LANGUAGE)
    for key in [choices.STALE_BUTTON, choices.MALFORMED_REPLY, *choices.ANSWER_TEXTS.values(),
                processing.MALFORMED_CHOICE_REPLY]:
        assert key in default and not placeholders(default[key]), key


def test_the_chat_page_names_existing_keys():
    page = (PROJECT_ROOT / "bot" / "channels" / "web" / "templates" / "chat.html").read_text("utf-8")
    keys = re.findall(r't\("([a-z_.]+)"', page)
    assert len(keys) > 10 and set(keys) <= set(catalogue(DEFAULT_LANGUAGE))


@pytest.mark.parametrize("language", [lang for lang in languages() if lang != DEFAULT_LANGUAGE])
def test_translations_keep_the_english_commands_a_citizen_is_told_to_type(language):
    """The parsers read the English words in every language, so a translated text names its own
    word and the English one ("privacidad" (o "privacy")): a citizen who types either is served."""
    default, other = catalogue(DEFAULT_LANGUAGE), catalogue(language)
    dropped = {}
    for key, english in default.items():
        wanted = {f'"{quoted}"' for quoted in re.findall(r'"([^"]+)"', english)}
        wanted |= set(re.findall(r"/[a-z]+\b", english))
        missing = sorted(word for word in wanted if word not in other[key])
        if missing:
            dropped[key] = missing
    assert dropped == {}
