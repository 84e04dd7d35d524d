"""The matcher's lexical signal, run in the Rasa env (the matcher module imports Rasa)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RASA_PY = REPO / ".venv-rasa" / "bin" / "python"

PROBE = r"""
import sys
sys.path.insert(0, sys.argv[1])
from bot.nlu.kb_matcher import _lexical_vectorizer
docs = ["How do I cancel my direct debit? Send the cancellation form to the tax office.",
        "When is the recycling centre open? Tuesday to Friday."]
for analyzer in ("char_wb", "word"):
    v = _lexical_vectorizer(analyzer)
    m = v.fit_transform(docs)
    overlap = (v.transform(["how do i cancell my dirct debbit"]) @ m.T).toarray()[0]
    print(analyzer, round(float(overlap[0]), 3), round(float(overlap[1]), 3))
try:
    _lexical_vectorizer("chars")
except ValueError as error:
    print("error", error)
"""


def test_character_ngrams_see_through_misspellings_that_word_overlap_misses():
    out = subprocess.run(
        [str(RASA_PY), "-c", PROBE, str(REPO)], capture_output=True, text=True, timeout=120, check=True
    ).stdout.splitlines()
    char = out[0].split()
    word = out[1].split()
    assert char[0] == "char_wb" and float(char[1]) > 0.2 and float(char[1]) > 3 * float(char[2])
    # Word TF-IDF (English stop words removed) finds no word in common with either entry.
    assert word[0] == "word" and float(word[1]) == 0.0
    assert out[2].startswith("error") and "'chars'" in out[2]
