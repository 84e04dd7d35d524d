from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from bot.kb import commands
from bot.settings import Settings

from .conftest import FIXTURES

VALID = FIXTURES / "kb_valid"


def run(*argv: str) -> int:
    """Run `python -m bot kb ...` through this module's own parser (no other command groups)."""
    parser = argparse.ArgumentParser(prog="python -m bot")
    commands.add_commands(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(["kb", *argv])
    return int(args.func(args) or 0)


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The KB commands must work without secrets: building Settings is a test failure."""

    def refuse(*args, **kwargs):
        raise AssertionError("kb commands must not build Settings")

    monkeypatch.delenv("CRM_API_KEYS", raising=False)
    monkeypatch.delenv("CRM_KB_DIR", raising=False)
    monkeypatch.setattr(Settings, "__init__", refuse)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge_base"
    shutil.copytree(VALID, target)
    return target


def test_default_kb_dir(monkeypatch: pytest.MonkeyPatch):
    assert commands.default_kb_dir() == commands.PROJECT_ROOT / "knowledge_base"
    monkeypatch.setenv("CRM_KB_DIR", "/srv/kb")
    assert commands.default_kb_dir() == Path("/srv/kb")


def test_validate_ok(kb_copy: Path, capsys: pytest.CaptureFixture[str]):
    assert run("validate", "--kb-dir", str(kb_copy)) == 0
    out = capsys.readouterr().out
    assert out.strip() == "knowledge_base: 4 entries, 0 errors, 0 warnings"


def test_validate_uses_crm_kb_dir(kb_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("CRM_KB_DIR", str(kb_copy))
    assert run("validate") == 0
    assert "4 entries" in capsys.readouterr().out


def test_validate_reports_file_line_severity_and_exits_1(kb_copy: Path, capsys: pytest.CaptureFixture[str]):
    waste = kb_copy / "waste.yml"
    text = waste.read_text(encoding="utf-8")
    waste.write_text(
        text.replace("  - id: waste-bin-day", "  - id: waste-bulky-items").replace(
            "last_reviewed: 2026-09-15", "last_reviewed: someday"
        ),
        encoding="utf-8",
    )
    assert run("validate", "--kb-dir", str(kb_copy)) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "knowledge_base/waste.yml:3: error: id `waste-bulky-items` is used by more than one entry" in lines[0]
    assert lines[0].endswith("[duplicate-id]")
    assert lines[1].startswith("knowledge_base/waste.yml:20: warning: last_reviewed `someday` is not a date")
    assert lines[2].startswith("knowledge_base/waste.yml:22: error: id `waste-bulky-items`")
    assert lines[-1] == "knowledge_base: 4 entries, 2 errors, 1 warning"


def test_warnings_do_not_fail(kb_copy: Path, capsys: pytest.CaptureFixture[str]):
    waste = kb_copy / "waste.yml"
    waste.write_text(waste.read_text(encoding="utf-8").replace("2026-09-15", "2099-01-01"), encoding="utf-8")
    assert run("validate", "--kb-dir", str(kb_copy)) == 0
    assert "warning: last_reviewed 2099-01-01 is in the future" in capsys.readouterr().out


def test_compile(kb_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "data" / "nlu" / "faq.yml"
    assert run("compile", "--kb-dir", str(kb_copy), "--out", str(out)) == 0
    assert capsys.readouterr().out.strip() == "wrote data/nlu/faq.yml (4 entries, 7 phrasings in en)"
    text = out.read_text(encoding="utf-8")
    assert "intent: faq/waste-bulky-items" in text

    assert run("compile", "--kb-dir", str(kb_copy), "--out", str(out)) == 0
    assert capsys.readouterr().out.startswith("unchanged: data/nlu/faq.yml")


def test_compile_regenerates_domain_responses_from_the_text_catalogue(kb_copy: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]):
    domain = tmp_path / "domain.yml"
    committed = (commands.PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8")
    domain.write_text(committed.replace("Goodbye! You can write again at any time.", "Bye."), encoding="utf-8")
    out = tmp_path / "faq.yml"
    assert run("compile", "--kb-dir", str(kb_copy), "--out", str(out), "--domain", str(domain)) == 0
    assert "responses from the text catalogue" in capsys.readouterr().out
    assert domain.read_text(encoding="utf-8") == committed

    assert run("compile", "--kb-dir", str(kb_copy), "--out", str(out), "--domain", str(domain)) == 0
    assert "domain" not in capsys.readouterr().out


def test_compile_refuses_on_errors(kb_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (kb_copy / "parking.yml").write_text("department: parking\nentries:\n  - id: X\n", encoding="utf-8")
    out = tmp_path / "faq.yml"
    assert run("compile", "--kb-dir", str(kb_copy), "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert "knowledge_base/parking.yml:3: error: id `X`" in err
    assert "not compiled: fix the 3 errors above first" in err
    assert not out.exists()


def test_import_and_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "kb"
    source = FIXTURES / "import" / "faq.csv"
    assert run("import", str(source), "--out", str(out), "--department-name", "waste=Waste collection") == 0
    assert capsys.readouterr().out.splitlines() == ["wrote kb/departments.yml", "wrote kb/parking.yml", "wrote kb/waste.yml"]
    assert "name: Waste collection" in (out / "departments.yml").read_text(encoding="utf-8")

    assert run("import", str(source), "--out", str(out)) == 1
    assert "use --merge" in capsys.readouterr().err

    assert run("import", str(FIXTURES / "import" / "faq.jsonl"), "--out", str(out), "--merge") == 0
    assert capsys.readouterr().out.strip() == "nothing to change: the KB already holds this content"


def test_import_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert run("import", str(FIXTURES / "import" / "broken.csv"), "--out", str(tmp_path / "kb")) == 1
    err = capsys.readouterr().err
    assert "broken.csv:3: error: this row has no id; the row was skipped [missing-field]" in err
    assert err.strip().endswith("nothing imported: 5 errors")

    assert run("import", "missing.csv", "--out", "kb") == 2
    assert run("import", str(FIXTURES / "import" / "faq.csv"), "--out", "kb", "--department-name", "waste") == 2


def test_import_format_option(tmp_path: Path):
    source = tmp_path / "export.txt"
    shutil.copy(FIXTURES / "import" / "faq.jsonl", source)
    assert run("import", str(source), "--out", str(tmp_path / "kb"), "--format", "jsonl") == 0
    assert (tmp_path / "kb" / "waste.yml").exists()


def test_stats(kb_copy: Path, capsys: pytest.CaptureFixture[str]):
    assert run("stats", "--kb-dir", str(kb_copy)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["department", "entries", "phrasings"]
    assert out[1].split() == ["waste", "2", "5"]
    assert out[2].split() == ["parking", "2", "4"]
    assert out[3].split() == ["total", "4", "9"]
    assert out[5].split() == ["entry", "en", "de", "fr", "total"]
    assert out[6].split() == ["parking-bin-blocking", "1", "0", "0", "1"]
    assert out[7].split() == ["parking-resident-permit", "2", "0", "1", "3"]


def test_stats_shows_coverage_per_language(kb_copy: Path, capsys: pytest.CaptureFixture[str]):
    waste = kb_copy / "waste.yml"
    waste.write_text(
        waste.read_text(encoding="utf-8")
        + "\n  - id: waste-glass\n    questions:\n      en: [Where does glass go]\n"
        "    answer:\n      en: In the bottle banks.\n      es: En los contenedores de vidrio.\n",
        encoding="utf-8",
    )
    assert run("stats", "--kb-dir", str(kb_copy)) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index(next(line for line in out if line.startswith("language ")))
    assert out[start].split() == ["language", "questions", "answer", "both"]
    assert [line.split() for line in out[start + 1:start + 5]] == [
        ["en", "5", "5", "5"], ["de", "1", "1", "1"], ["es", "0", "1", "0"], ["fr", "1", "1", "1"],
    ]
    assert out[start + 5:] == ["en: 5 of 5 entries", "de: 1 of 5 entries", "es: 0 of 5 entries", "fr: 1 of 5 entries"]
