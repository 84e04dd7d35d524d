"""The bytes of every file of a KB folder, to show which files a change touched."""

from __future__ import annotations

from pathlib import Path


def kb_snapshot(kb_dir: Path, *, skip: str = "") -> dict[str, bytes]:
    """Files by path relative to the folder, sub-folders (languages/) included; ``skip``: a file name left out."""
    return {
        str(p.relative_to(kb_dir)): p.read_bytes()
        for p in sorted(kb_dir.rglob("*"))
        if p.is_file() and p.name != skip
    }
