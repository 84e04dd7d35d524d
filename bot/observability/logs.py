"""One logging set-up for every process, and the request id that ties a message's records together.

A request id is accepted from the caller (``X-Request-ID``) when it is sane, else made
here; it is held in a context variable, so it follows the work into threads started with
``asyncio.to_thread`` or Starlette's thread pool, and every record logged meanwhile carries
it. The core sends it to Rasa in the message metadata and the action server binds it
again, so one grep finds the API's, the core's and the action's records of one message.

Records carry ids, vocabularies and durations, never citizen text or secrets: events are
logged with ``log_event`` and named fields, and the JSON output (CRM_LOG_FORMAT=json, for
production) keeps each field separate for the log store to index.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"

_request_id: ContextVar[str | None] = ContextVar("crm_request_id", default=None)

# What a request id from outside may look like: enough for UUIDs, trace ids and base64, never
# a space, a quote or a line break that could forge a log line.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"

# Libraries that configure handlers of their own; with JSON their records go through ours.
_SELF_CONFIGURED = ("uvicorn", "uvicorn.error", "uvicorn.access", "rasa_sdk")
# Libraries that log every request at info (httpx: each call to Rasa, to a channel's
# provider): heard from at warning unless the level is DEBUG.
_CHATTY = ("httpx", "httpcore")


def current_request_id() -> str | None:
    return _request_id.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: object) -> str:
    """``value`` when it is a sane request id (from a header, Rasa's metadata), else a new one."""
    if isinstance(value, str) and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


@contextmanager
def bound_request_id(value: str | None = None) -> Iterator[str]:
    """Run the block under ``value`` (a new id when None); yields the id."""
    request_id = value or new_request_id()
    token = _request_id.set(request_id)
    try:
        yield request_id
    finally:
        _request_id.reset(token)


class _RequestIdFilter(logging.Filter):
    """On the handler, so that records of every logger that propagates to it get the id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get() or "-"
        return True


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        JSON_FIELDS,
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        # uvicorn's copy of its message with terminal colours: noise in a log store.
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
    )


def setup_logging(log_format: str = "text", level: str = "INFO", *, stream: Any = None) -> logging.Handler:
    """Configure the root logger for this process: one handler on stderr (or ``stream``) in
    ``log_format`` ("text" or "json") at ``level``. Called once by every entry point; calling
    it again replaces the handler (a test, a worker re-reading its settings).

    Returns the handler, so a caller (a test) can take it away again."""
    if log_format not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', not {log_format!r}")
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(_json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING)
    if log_format == "json":
        for name in _SELF_CONFIGURED:
            library = logging.getLogger(name)
            library.handlers.clear()
            library.propagate = True
    return handler


def log_event(logger: logging.Logger, event: str, **fields: Any) -> None:
    """One info record named ``event`` with ``fields``: separate keys in JSON, ``key=value``
    after the event in text. Callers pass ids, vocabularies and numbers only; the request id
    is added to every record anyway."""
    described = " ".join(f"{key}={value}" for key, value in fields.items())
    logger.info("%s %s", event, described, extra={"event": event, **fields})
