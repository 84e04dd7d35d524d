"""The security headers of every page the city serves to a browser (the console and the web chat), and who is asking.

One policy for both, so a page added to either cannot forget it: no inline
scripts or styles anywhere (citizen text that slipped through escaping still
could not run), no framing, and pages that hold citizens' personal data are
never kept in a shared cache. Each surface mounts the middleware for its own
path prefixes; static files get ``no-cache`` instead of ``no-store``.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class SecurityHeadersMiddleware:
    """Adds ``SECURITY_HEADERS`` to every response under ``prefixes`` (static files too)."""

    def __init__(self, app: ASGIApp, *, prefixes: tuple[str, ...], static_prefix: str) -> None:
        self.app = app
        self.prefixes = prefixes
        self.static_prefix = static_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not any(_under(scope["path"], p) for p in self.prefixes):
            await self.app(scope, receive, send)
            return
        static = _under(scope["path"], self.static_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                headers["cache-control"] = "no-cache" if static else "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def client_ip(request: Request) -> str:
    """The peer's address, for per-address limits (sign-in attempts, the chat's rate limit)."""
    return request.client.host if request.client else "unknown"
