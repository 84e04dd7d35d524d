"""Tests here set up the process's logging as an entry point does; this puts it back."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.observability import logs


@pytest.fixture
def restored_logging() -> Iterator[None]:
    names = ["", *logs._SELF_CONFIGURED, *logs._CHATTY]
    saved = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level,
                    logging.getLogger(name).propagate) for name in names}
    try:
        yield
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
