"""A local stand-in for the Graph API's ``POST /{phone_number_id}/messages``.

A real HTTP server on a free loopback port, in a thread: the sender makes its
real httpx calls against it. It records every request and answers like Meta
(a wamid per message), or with the errors a test queues (500, 429, 400...).
Like Meta it refuses, with HTTP 400 and code 131009, a text or an interactive
message (reply buttons, list) over the documented size limits.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def to(self) -> str:
        return self.body.get("to", "")

    @property
    def text(self) -> str | None:
        return (self.body.get("text") or {}).get("body")

    @property
    def template(self) -> dict[str, Any] | None:
        return self.body.get("template")

    @property
    def interactive(self) -> dict[str, Any] | None:
        return self.body.get("interactive")

    @property
    def choices(self) -> list[tuple[str, str, str | None]]:
        """(id, title, description) of its reply buttons or list rows, in order."""
        action = (self.interactive or {}).get("action") or {}
        if "buttons" in action:
            return [(b["reply"]["id"], b["reply"]["title"], None) for b in action["buttons"]]
        return [(r["id"], r["title"], r.get("description")) for sec in action.get("sections", []) for r in sec["rows"]]


def _length(value: Any, name: str, low: int, high: int) -> str | None:
    if not isinstance(value, str) or not low <= len(value) <= high:
        return f"{name} length invalid. Min length: {low}, Max length: {high}"
    return None


def limit_problem(body: dict[str, Any]) -> str | None:
    """Why Meta would refuse this message (None: it would take it). Limits: Meta's
    interactive reply buttons and list messages pages, and 4096 for a text body."""
    kind = body.get("type")
    if kind == "text":
        return _length((body.get("text") or {}).get("body"), "Text body", 1, 4096)
    if kind != "interactive":
        return None
    interactive = body.get("interactive") or {}
    problem = _length((interactive.get("body") or {}).get("text"), "Body text", 1, 1024)
    if problem:
        return problem
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        buttons = action.get("buttons") or []
        if not 1 <= len(buttons) <= 3:
            return "Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: 3"
        for button in buttons:
            reply = button.get("reply") or {}
            problem = _length(reply.get("title"), "Button title", 1, 20) or _length(reply.get("id"), "Button id", 1, 256)
            if problem:
                return problem
        if len({b["reply"]["title"] for b in buttons}) != len(buttons) or len({b["reply"]["id"] for b in buttons}) != len(buttons):
            return "Button title and id must be unique"
        return None
    if interactive.get("type") == "list":
        problem = _length(action.get("button"), "Button label", 1, 20)
        if problem:
            return problem
        sections = action.get("sections") or []
        rows = [row for section in sections for row in section.get("rows") or []]
        if not 1 <= len(sections) <= 10 or not 1 <= len(rows) <= 10:
            return "Invalid rows count. Min allowed rows: 1, Max allowed rows: 10"
        for section in sections:
            if "title" in section and _length(section["title"], "Section title", 1, 24):
                return _length(section["title"], "Section title", 1, 24)
        for row in rows:
            problem = (_length(row.get("id"), "Row id", 1, 200) or _length(row.get("title"), "Row title", 1, 24)
                       or ("description" in row and _length(row["description"], "Row description", 0, 72)) or None)
            if problem:
                return problem
        if len({row["id"] for row in rows}) != len(rows):
            return "Row ids must be unique"
        return None
    return f"Unsupported interactive type {interactive.get('type')!r}"


@dataclass
class Scripted:
    status: int
    body: dict[str, Any] | str = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class GraphStandIn:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        # Requests refused for breaking Meta's limits (they are in ``requests`` too).
        self.refused: list[Recorded] = []
        self._script: list[Scripted] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                reply = stand_in._record(Recorded(self.path, dict(self.headers.items()), body))
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                data = payload.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v21.0"

    def start(self) -> "GraphStandIn":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def fail_next(self, status: int, *, code: int | None = None, message: str = "error", headers: dict[str, str] | None = None,
                  delay: float = 0.0) -> None:
        """Queue one error answer (Graph's error body when ``code`` is given)."""
        body: dict[str, Any] | str = {"error": {"message": message, "type": "OAuthException", "code": code,
                                                "fbtrace_id": "AbC"}} if code is not None else message
        with self._lock:
            self._script.append(Scripted(status, body, headers or {}, delay))

    def _record(self, recorded: Recorded) -> Scripted:
        with self._lock:
            self.requests.append(recorded)
            if self._script:
                return self._script.pop(0)
            problem = limit_problem(recorded.body)
            if problem is not None:
                self.refused.append(recorded)
                return Scripted(400, {"error": {"message": "(#131009) Parameter value is not valid",
                                                "type": "OAuthException", "code": 131009,
                                                "error_data": {"messaging_product": "whatsapp", "details": problem},
                                                "fbtrace_id": "AbC"}})
            wamid = f"wamid.standin.{next(self._ids)}"
        return Scripted(200, {"messaging_product": "whatsapp", "contacts": [{"input": recorded.to, "wa_id": recorded.to}],
                              "messages": [{"id": wamid}]})

    def sent_to(self, wa_id: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.to == wa_id]

    def wait_for(self, wa_id: str, count: int = 1, timeout: float = 60.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = self.sent_to(wa_id)
            if len(sent) >= count:
                return sent
            time.sleep(0.1)
        raise AssertionError(f"the Graph stand-in got {len(self.sent_to(wa_id))} messages for {wa_id}, wanted {count}")

    def __enter__(self) -> "GraphStandIn":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
