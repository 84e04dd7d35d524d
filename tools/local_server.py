"""Serve an ASGI app on a free loopback port in a background thread.

For the browser tests and the console screenshots: the pages go through real HTTP
and a real browser without starting Rasa and the rest of the stack.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bot.stack import free_port


@contextmanager
def serve_in_thread(
    app: Any, *, port: int | None = None, name: str = "local-server", startup_timeout: float = 30.0
) -> Iterator[str]:
    """Yield the server's base URL; the server stops when the block ends. ``port``: when the app must
    know its own address beforehand (a webhook URL in its settings); a free one otherwise."""
    import uvicorn

    port = port or free_port()
    # lifespan "on": an app whose start-up fails must fail here, not serve half started.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{name}: the server did not start on 127.0.0.1:{port}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
