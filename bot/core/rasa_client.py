"""Client for Rasa's REST webhook, the only way the application talks to Rasa."""

from __future__ import annotations

from typing import Any

import httpx

# A readiness probe must answer quickly, whatever the (long) timeout for classifying is.
READY_TIMEOUT_SECONDS = 2.0


class RasaUnavailable(Exception):
    """Rasa did not answer usably; the caller escalates so nothing is lost."""


class RasaClient:
    def __init__(self, base_url: str, timeout_seconds: float) -> None:
        self._root = base_url.rstrip("/") + "/"
        self._url = self._root + "webhooks/rest/webhook"
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds)),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    def send(self, *, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            response = self._client.post(
                self._url, json={"sender": sender, "message": text, "metadata": metadata}
            )
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"Rasa request failed: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise RasaUnavailable("Rasa answered with invalid JSON") from exc
        if not isinstance(payload, list):
            raise RasaUnavailable("Rasa answered with an unexpected payload")
        return payload

    def ready(self) -> bool:
        """Rasa listens only once its model is loaded, so an answer on ``/`` means it can classify."""
        try:
            return self._client.get(self._root, timeout=READY_TIMEOUT_SECONDS).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._client.close()
