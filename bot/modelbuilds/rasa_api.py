"""Rasa's own HTTP API, for the model only: ``GET /status`` and ``PUT /model``.

Rasa 3.6 checks its ``--auth-token`` as a ``?token=`` query parameter, so the token is part
of every URL this client requests. httpx logs each request's URL at INFO; a filter on
httpx's logger, put there by this client, blanks the token out of those records, and no
message of ours carries a URL with its query.

What ``PUT /model`` does (rasa/server.py, ``load_model``): it builds a new agent from the
file and only then replaces ``app.ctx.agent``; a file that cannot be loaded raises before
the replacement, so the old model keeps answering. The load itself is synchronous inside
the handler, so that Rasa process's event loop is blocked for the whole load (seconds):
webhook requests arriving meanwhile wait in the socket's backlog and are answered by the
new model afterwards; requests already inside ``handle_message`` finish with the old
agent they hold. Nothing is dropped as long as a load takes less than the API's Rasa
timeout (CRM_RASA_TIMEOUT_SECONDS), which is why the processes are loaded one at a time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx


class RasaApiError(RuntimeError):
    """A Rasa process did not answer, refused the token, or could not load the model."""


class _HideToken(logging.Filter):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "***"), None
        return True


def _hide_token_in_httpx_logs(token: str) -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HideToken) and f.token == token for f in logger.filters):
            logger.addFilter(_HideToken(token))


class RasaModels:
    """The model in each of the Rasa processes at ``urls``."""

    def __init__(self, urls: list[str], token: str | None, *, timeout_seconds: float,
                 load_timeout_seconds: float, transport: httpx.BaseTransport | None = None) -> None:
        """``transport`` replaces the network (tests)."""
        self.urls = [u.rstrip("/") for u in urls]
        self._params = {"token": token} if token else {}
        if token:
            _hide_token_in_httpx_logs(token)
        self._timeout = httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds))
        self._load_timeout = httpx.Timeout(load_timeout_seconds, connect=min(5.0, timeout_seconds))
        self._client = httpx.Client(transport=transport)

    def _request(self, method: str, url: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            response = self._client.request(method, f"{url}{path}", params=self._params, **kwargs)
        except httpx.HTTPError as exc:
            raise RasaApiError(f"Rasa at {url} did not answer {method} {path}: {type(exc).__name__}") from None
        if response.status_code == 401:
            raise RasaApiError(
                f"Rasa at {url} refused the token on {method} {path}: CRM_RASA_TOKEN must be the token "
                "Rasa was started with (bot run passes it; scripts/setup.sh writes one to .env)"
            )
        if response.status_code == 404:
            raise RasaApiError(f"Rasa at {url} has no {path}: it must run with --enable-api (bot run starts it so)")
        return response

    def current(self, url: str) -> str | None:
        """The file name of the model the process at ``url`` runs, None when it has none loaded."""
        response = self._request("GET", url, "/status", timeout=self._timeout)
        if response.status_code == 409:  # ensure_loaded_agent: no model loaded
            return None
        if response.status_code != 200:
            raise RasaApiError(f"Rasa at {url} answered GET /status with HTTP {response.status_code}")
        try:
            return str(response.json()["model_file"])
        except (ValueError, KeyError, TypeError):
            raise RasaApiError(f"Rasa at {url} answered GET /status with an unexpected body") from None

    def running(self) -> dict[str, str | None]:
        return {url: self.current(url) for url in self.urls}

    def load(self, url: str, model: Path) -> None:
        """Returns once the process at ``url`` answers with ``model`` (PUT /model waits for the load)."""
        response = self._request("PUT", url, "/model", json={"model_file": str(model)}, timeout=self._load_timeout)
        if response.status_code not in (200, 204):
            try:
                detail = str(response.json().get("message", ""))[:500]
            except ValueError:
                detail = ""
            raise RasaApiError(f"Rasa at {url} could not load {model.name}: HTTP {response.status_code} {detail}".rstrip())

    def close(self) -> None:
        self._client.close()
