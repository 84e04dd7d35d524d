"""A language's intent examples: ``knowledge_base/languages/<lang>.yml``.

The Rasa model is trained in the KB's main language only. For another language the
lexical understanding (bot.nlu.lexical) needs, besides the KB's questions in that language,
examples of the messages that are not FAQ questions (complaints, problem reports, personal
cases, requests for a person, ticket status, out of scope, small talk). Staff write them in
one file per language::

    language: es
    intents:
      complaint:
        - quiero poner una queja
      greet:
        - hola

The file is checked on reading and every mistake is reported at once with its line, as
``LanguageFileError``: a wrong file must stop the start-up with a message staff can act on,
not silently understand less.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

LANGUAGES_DIR = "languages"
ESCALATION_INTENTS = ("complaint", "report_problem", "personal_case", "request_human", "out_of_scope")
SMALL_TALK_INTENTS = ("greet", "goodbye", "thanks")
STATUS_INTENT = "ticket_status"
INTENTS = (*ESCALATION_INTENTS, STATUS_INTENT, *SMALL_TALK_INTENTS)
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")


class LanguageFileError(ValueError):
    """The language file is missing or wrong; ``problems`` lists every mistake, one a line."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class LanguageIntents:
    language: str
    # intent name -> its examples, in file order (only intents the file gives).
    intents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source_file: str = field(default="", compare=False)

    def examples(self, intent: str) -> tuple[str, ...]:
        return self.intents.get(intent, ())


def language_file(kb_dir: str | Path, language: str) -> Path:
    return Path(kb_dir) / LANGUAGES_DIR / f"{language}.yml"


def available_languages(kb_dir: str | Path) -> list[str]:
    """The languages that have a file, sorted: the ones the lexical understanding can serve."""
    directory = Path(kb_dir) / LANGUAGES_DIR
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.yml") if _LANGUAGE_CODE.fullmatch(p.stem))


def load_language(kb_dir: str | Path, language: str) -> LanguageIntents:
    """Read and check ``<kb_dir>/languages/<language>.yml``; raises ``LanguageFileError``."""
    path = language_file(kb_dir, language)
    if not path.is_file():
        raise LanguageFileError(path, [f"no intents file for language `{language}`: create {path.name}"])
    return parse_language(path.read_bytes(), path, language)


def parse_language(raw: bytes, path: Path, language: str) -> LanguageIntents:
    """Check one file's content; every problem is collected before raising."""
    problems: list[str] = []
    try:
        root = yaml.compose(raw.decode("utf-8-sig"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        raise LanguageFileError(path, ["the file is not UTF-8 text; save it with UTF-8 encoding"]) from None
    except yaml.YAMLError as exc:
        raise LanguageFileError(path, [f"the file is not valid YAML: {exc}"]) from None
    if not isinstance(root, MappingNode):
        raise LanguageFileError(path, ["the file must start with `language:` and `intents:`"])
    top = _mapping(root)
    for key, (key_node, _) in top.items():
        if key not in ("language", "intents"):
            problems.append(f"line {_line(key_node)}: unknown key `{key}`; expected `language` and `intents`")
    declared = _scalar(top.get("language", (None, None))[1])
    if declared is None:
        problems.append("`language:` is missing")
    elif declared != language:
        problems.append(f"line {_line(top['language'][1])}: `language: {declared}` but the file is {path.name}")
    intents: dict[str, tuple[str, ...]] = {}
    intents_node = top.get("intents", (None, None))[1]
    if not isinstance(intents_node, MappingNode):
        problems.append("`intents:` must list the intents, each with its examples")
    else:
        for name, (key_node, value) in _mapping(intents_node).items():
            examples = _examples(name, key_node, value, problems)
            if examples:
                intents[name] = examples
    if not intents and not problems:
        problems.append("`intents:` gives no examples")
    if problems:
        raise LanguageFileError(path, problems)
    return LanguageIntents(language, intents, str(path))


def _examples(name: str, key_node: Node, value: Node, problems: list[str]) -> tuple[str, ...]:
    where = f"line {_line(key_node)}"
    if name not in INTENTS:
        problems.append(f"{where}: unknown intent `{name}`; expected one of: {', '.join(INTENTS)}")
        return ()
    if not isinstance(value, SequenceNode):
        problems.append(f"{where}: `{name}` must be a list of examples (lines starting with `- `)")
        return ()
    examples = []
    for item in value.value:
        text = _scalar(item)
        if not text:
            problems.append(f"line {_line(item)}: an example of `{name}` must be a non-empty text")
        else:
            examples.append(text)
    return tuple(dict.fromkeys(examples))


def _mapping(node: MappingNode) -> dict[str, tuple[Node, Node]]:
    return {k.value: (k, v) for k, v in node.value if isinstance(k, ScalarNode)}


def _scalar(node: Node | None) -> str | None:
    if not isinstance(node, ScalarNode) or node.tag == "tag:yaml.org,2002:null":
        return None
    return node.value.strip() or None


def _line(node: Node | None) -> int:
    return 0 if node is None else node.start_mark.line + 1


def rasa_intents(nlu_file: str | Path, language: str) -> LanguageIntents:
    """The main language has no ``languages/<code>.yml``: its intent examples are Rasa's own
    (``data/nlu/intents.yml``), read here for what needs them outside Rasa (the language
    detector's vocabulary, the evaluation tools)."""
    path = Path(nlu_file)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    intents = {}
    for block in data.get("nlu", []):
        if isinstance(block, dict) and block.get("intent") in INTENTS and isinstance(block.get("examples"), str):
            lines = [line.strip()[2:].strip() for line in block["examples"].splitlines() if line.strip().startswith("- ")]
            intents[block["intent"]] = tuple(line for line in lines if line)
    return LanguageIntents(language, intents, str(path))
