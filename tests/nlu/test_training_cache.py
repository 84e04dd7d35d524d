"""Rasa's training cache must not outlive the custom NLU code that filled it."""

from __future__ import annotations

from bot import training


def test_a_change_to_the_nlu_code_gets_a_fresh_cache_and_the_old_one_goes(tmp_path, monkeypatch) -> None:
    code = tmp_path / "bot" / "nlu"
    code.mkdir(parents=True)
    (code / "calibration.py").write_text("offer_coverage = 0.95\n")
    monkeypatch.setattr(training, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(training, "CACHE_ROOT", tmp_path / ".rasa" / "cache")
    before = training.cache_directory()
    assert training.cache_directory() == before and before.parent == tmp_path / ".rasa" / "cache"
    before.mkdir(parents=True)
    (before.parent / "cache.db").write_text("the one cache of before")
    (code / "calibration.py").write_text("offer_coverage = 0.97\n")
    after = training.cache_directory()
    assert after != before
    training._prune_caches(keep=after)
    assert not before.exists() and not (before.parent / "cache.db").exists()
    assert training.rasa_env()["RASA_CACHE_DIRECTORY"] == str(after)
