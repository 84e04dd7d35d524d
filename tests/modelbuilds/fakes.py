"""Rasa processes as httpx sees them: GET /status and PUT /model per base URL, with the token checked."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

TOKEN = "test-token-0123456789abcdef"


class FakeRasa:
    def __init__(self, urls: list[str], model: str | None, *, token: str = TOKEN) -> None:
        self.running: dict[str, str | None] = {u: model for u in urls}
        self.token = token
        self.loads: list[tuple[str, str]] = []
        self.refuse: set[str] = set()  # base URLs whose PUT /model fails
        self.down: set[str] = set()

    def handler(self, request: httpx.Request) -> httpx.Response:
        base = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        if base in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.params.get("token") != self.token:
            return httpx.Response(401, json={"message": "User is not authenticated."})
        if request.method == "GET" and request.url.path == "/status":
            if self.running[base] is None:
                return httpx.Response(409, json={"message": "No agent loaded."})
            return httpx.Response(200, json={"model_file": self.running[base], "model_id": "x"})
        if request.method == "PUT" and request.url.path == "/model":
            path = Path(json.loads(request.content)["model_file"])
            if base in self.refuse or not path.is_file():
                return httpx.Response(500, json={"message": f"An unexpected error occurred. Error: {path.name}"})
            self.loads.append((base, path.name))
            self.running[base] = path.name
            return httpx.Response(204)
        return httpx.Response(404)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
