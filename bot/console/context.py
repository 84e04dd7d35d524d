"""What every console route needs, taken from the runtime once per app by ``bot.console.app.register``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from bot.kb.loader import kb_files, load_kb
from bot.kb.schema import KnowledgeBase
from bot.outbox.delivery import DeliveryService
from bot.settings import Settings

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass
class _KbCache:
    """The KB as last read, with the files' modification times it was read at.

    Approving a KB proposal rewrites a YAML file; comparing mtimes picks that up
    on the next request without re-parsing 94 entries on every page.
    """

    kb_dir: Path
    _stamp: tuple = ()
    _kb: KnowledgeBase | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> KnowledgeBase:
        files = kb_files(self.kb_dir)
        stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        with self._lock:
            if self._kb is None or stamp != self._stamp:
                self._kb, _problems = load_kb(self.kb_dir)
                self._stamp = stamp
            return self._kb


@dataclass
class ConsoleContext:
    settings: Settings
    sessions: sessionmaker[Session]
    templates: Jinja2Templates
    delivery: DeliveryService
    # (label, path, minimum role) entries of the top navigation.
    nav: list[tuple[str, str, str]]
    # Channels that deliver to the citizen (Telegram, WhatsApp, e-mail when on); the generic
    # web/API channel's clients fetch their replies instead.
    push_channels: frozenset[str]
    _kb_cache: _KbCache

    def kb(self) -> KnowledgeBase:
        return self._kb_cache.get()


def get_context(request: Request) -> ConsoleContext:
    """FastAPI dependency: the console's context of this app."""
    return request.app.state.console
