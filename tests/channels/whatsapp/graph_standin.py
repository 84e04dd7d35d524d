"""A local stand-in for the Graph API's ``POST /{phone_number_id}/messages``.

A real HTTP server on a free loopback port, in a thread: the sender makes its
real httpx calls against it. It records every request and answers like Meta
(a wamid per message), or with the errors a test queues (500, 429, 400...).
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


@dataclass
class Scripted:
    status: int
    body: dict[str, Any] | str = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class GraphStandIn:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
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
