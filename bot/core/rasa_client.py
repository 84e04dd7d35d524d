"""Client for Rasa's REST webhook, the only way the application talks to Rasa.

Several Rasa processes may serve one assistant (CRM_RASA_URL lists them). A
conversation goes to the process its sender hashes to, so that its turns usually
meet the same process; Redis's lock store keeps them in order when they do not.
A process that refuses the connection is skipped for a while and the turn goes to
the next one: it never reached Rasa, so sending it elsewhere cannot answer it twice.
A failure after the request went out (a reset, a timeout, an error status) is not
retried, because Rasa and its actions may already have acted on the message; the
caller escalates it instead.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

# A readiness probe must answer quickly, whatever the (long) timeout for classifying is.
READY_TIMEOUT_SECONDS = 2.0
# How long a process that refused a connection is left out before it is tried again.
DOWN_SECONDS = 5.0


class RasaUnavailable(Exception):
    """Rasa did not answer usably; the caller escalates so nothing is lost."""


def _urls(base_url: str | Sequence[str]) -> list[str]:
    raw = base_url.split(",") if isinstance(base_url, str) else list(base_url)
    urls = [u.strip().rstrip("/") + "/" for u in raw if u.strip()]
    if not urls:
        raise ValueError("at least one Rasa URL is needed")
    return urls


class RasaClient:
    def __init__(self, base_url: str | Sequence[str], timeout_seconds: float) -> None:
        self._roots = _urls(base_url)
        self._down_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds)),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    @property
    def urls(self) -> list[str]:
        return [root.rstrip("/") for root in self._roots]

    def _order(self, sender: str) -> list[str]:
        """The sender's own process first, then the others; those recently down last."""
        start = int.from_bytes(hashlib.blake2b(sender.encode("utf-8"), digest_size=4).digest(), "big")
        n = len(self._roots)
        ring = [self._roots[(start + i) % n] for i in range(n)]
        now = time.monotonic()
        with self._lock:
            down = {root for root, until in self._down_until.items() if until > now}
        return [r for r in ring if r not in down] + [r for r in ring if r in down]

    def _mark_down(self, root: str) -> None:
        with self._lock:
            self._down_until[root] = time.monotonic() + DOWN_SECONDS

    def send(self, *, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        body = {"sender": sender, "message": text, "metadata": metadata}
        refused = []
        for root in self._order(sender):
            try:
                response = self._client.post(root + "webhooks/rest/webhook", json=body)
            except httpx.ConnectError:
                # Nothing was sent: the next process may have it.
                self._mark_down(root)
                refused.append(root)
                continue
            except httpx.HTTPError as exc:
                raise RasaUnavailable(f"Rasa request failed: {type(exc).__name__}") from exc
            return self._replies(response)
        raise RasaUnavailable(f"no Rasa process accepted the connection ({len(refused)} tried)")

    @staticmethod
    def _replies(response: httpx.Response) -> list[dict[str, Any]]:
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
        """Rasa listens only once its model is loaded, so an answer on ``/`` means it can classify.

        With several processes the assistant is ready while any one of them is.
        """
        return any(self.process_ready(root) for root in self._roots)

    def process_ready(self, url: str) -> bool:
        root = url.rstrip("/") + "/"
        try:
            return self._client.get(root, timeout=READY_TIMEOUT_SECONDS).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._client.close()
