"""The API's part of observability: the request id of every HTTP request, and ``GET /metrics``.

``/metrics`` shows what every process recorded (bot.observability.metrics) plus what is
read at scrape time: open and overdue tickets per department (one grouped query), whether
each Rasa process and the action server answer (probed with a short timeout, all at once)
and which model Rasa has loaded. Prometheus scrapes it every 15 to 60 seconds, so the
query and the probes cost little; their time is bounded by ``PROBE_TIMEOUT_SECONDS``.

Access: with CRM_METRICS_TOKEN set, only ``Authorization: Bearer <token>``; without it,
only a peer on a loopback or private address whose request was not relayed by a proxy
(a proxy on the same host would otherwise make every visitor look local).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePath

import httpx
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.api.errors import ApiError
from bot.core.routing import known_departments
from bot.observability.logs import REQUEST_ID_HEADER, accept_request_id, bound_request_id
from bot.observability.metrics import scrape
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store.types import utcnow
from bot.tickets.models import Ticket
from bot.tickets.status import OPEN_STATUSES

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 1.0
# The networks of a city's own machines: loopback aside, RFC 1918 and IPv6 unique local
# addresses. Not ``ipaddress``'s is_private, which also counts documentation and other
# reserved ranges that a request from outside may come from.
_PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
# Headers a proxy adds when it relays a request: the peer's address is then the proxy's.
_RELAY_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")


class RequestIdMiddleware:
    """Binds the request id (the caller's ``X-Request-ID`` when sane, else a new one) for the
    whole request and sends it back in the response's ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = next((value.decode("latin-1") for name, value in scope["headers"]
                         if name == REQUEST_ID_HEADER.lower().encode()), None)
        with bound_request_id(accept_request_id(supplied)) as request_id:

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
                await send(message)

            await self.app(scope, receive, send_with_id)


def metrics_allowed(request: Request, settings: Settings) -> bool:
    """Whether ``request`` may read /metrics (the module's docstring says who may)."""
    if settings.metrics_token is not None:
        auth = request.headers.get("authorization") or ""
        if not auth.lower().startswith("bearer "):
            return False
        supplied = auth[7:].strip().encode("utf-8", "surrogateescape")
        return secrets.compare_digest(supplied, settings.metrics_token.get_secret_value().strip().encode())
    if any(name in _RELAY_HEADERS for name, _value in request.scope.get("headers", [])):
        return False
    try:
        address = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:  # a Unix socket, a test client's name: not an address we can vouch for
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or any(address in network for network in _PRIVATE_NETWORKS)


class TicketsCollector:
    """Open and overdue tickets per department, read from the store when scraped.

    Every department of the KB (and "general") is reported, with 0 when it has no open
    ticket, so a queue that empties shows 0 instead of vanishing from the graphs.
    Overdue is what the console's queue calls overdue: open (new, open, pending_citizen)
    and past its due time."""

    def __init__(self, sessions: sessionmaker[Session], departments: Callable[[], Iterable[str]] = tuple) -> None:
        """``departments``: those reported even without open tickets (read on each scrape: cached by the KB)."""
        self._sessions = sessions
        self._departments = departments

    def counts(self) -> dict[str, tuple[int, int]]:
        """{department: (open, overdue)} in one grouped query."""
        now = utcnow()
        query = (
            select(Ticket.department, func.count(), func.sum(case((Ticket.due_at < now, 1), else_=0)))
            .where(Ticket.status.in_(sorted(OPEN_STATUSES)))
            .group_by(Ticket.department)
        )
        with self._sessions() as session:
            rows = session.execute(query).all()
        found = {department: (int(open_), int(overdue or 0)) for department, open_, overdue in rows}
        return {**{d: (0, 0) for d in self._departments()}, **found}

    def collect(self) -> Iterator[Metric]:
        open_tickets = GaugeMetricFamily("crm_tickets_open", "Open tickets (new, open, pending_citizen) per department.",
                                         labels=["department"])
        overdue = GaugeMetricFamily("crm_tickets_overdue", "Open tickets past their due time per department.",
                                    labels=["department"])
        try:
            counts = self.counts()
        except Exception:  # the store is away: the rest of the scrape is still worth having
            logger.warning("tickets per department not read for /metrics", exc_info=True)
            return
        for department, (n_open, n_overdue) in sorted(counts.items()):
            open_tickets.add_metric([department], n_open)
            overdue.add_metric([department], n_overdue)
        yield open_tickets
        yield overdue


@dataclass(frozen=True)
class Probe:
    url: str
    up: bool
    model: str | None = None


class HealthCollector:
    """The probes of one scrape, as gauges."""

    def __init__(self, rasa: list[Probe], actions: list[Probe], configured_model: str | None) -> None:
        self._rasa, self._actions, self._configured_model = rasa, actions, configured_model

    def collect(self) -> Iterator[Metric]:
        rasa_up = GaugeMetricFamily("crm_rasa_up", "1 when the Rasa process at url answers, else 0.", labels=["url"])
        actions_up = GaugeMetricFamily("crm_action_server_up", "1 when the action server at url answers /health, else 0.",
                                       labels=["url"])
        model = GaugeMetricFamily(
            "crm_model_info", "The model file each Rasa process has loaded (from its /status when its HTTP API "
            "is on, else the model bot run started it with); always 1.", labels=["url", "model"])
        for probe in self._rasa:
            rasa_up.add_metric([probe.url], 1.0 if probe.up else 0.0)
            name = probe.model or self._configured_model
            if probe.up and name:  # a process that is down has no model loaded
                model.add_metric([probe.url, name], 1.0)
        for probe in self._actions:
            actions_up.add_metric([probe.url], 1.0 if probe.up else 0.0)
        yield rasa_up
        yield actions_up
        yield model


def action_server_urls(settings: Settings) -> list[str]:
    """The action servers the Rasa processes call (bot.settings.Settings.action_server_url_list)."""
    return settings.action_server_url_list


def _model_name(path: object) -> str | None:
    return PurePath(path).name if isinstance(path, str) and path else None


async def _probe_rasa(client: httpx.AsyncClient, url: str, token: str | None = None) -> Probe:
    """Rasa listens only once its model is loaded, so any answer means up. ``/status`` names the
    model when Rasa's HTTP API is on (behind CRM_RASA_TOKEN); otherwise it answers 401 or 404,
    which still means up. (httpx's request log, which would show the token, is off: bot.observability.logs.)"""
    try:
        response = await client.get(f"{url}/status", params={"token": token} if token else None)
    except httpx.HTTPError:
        return Probe(url, False)
    model = None
    if response.status_code == 200:
        try:
            model = _model_name(response.json().get("model_file"))
        except (ValueError, AttributeError):
            model = None
    return Probe(url, response.status_code < 500, model)


async def _probe_actions(client: httpx.AsyncClient, url: str) -> Probe:
    try:
        response = await client.get(f"{url}/health")
    except httpx.HTTPError:
        return Probe(url, False)
    return Probe(url, response.status_code == 200)


async def probe_health(
    settings: Settings, timeout: float = PROBE_TIMEOUT_SECONDS, *, transport: httpx.AsyncBaseTransport | None = None
) -> HealthCollector:
    """Every Rasa process and action server at once, each given ``timeout`` at most.

    ``transport``: a stand-in for the network (tests)."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), transport=transport) as client:
        token = settings.rasa_token.get_secret_value() if settings.rasa_token is not None else None
        rasa = [_probe_rasa(client, url, token) for url in settings.rasa_url_list]
        actions = [_probe_actions(client, url) for url in action_server_urls(settings)]
        results = await asyncio.gather(*rasa, *actions)
    n = len(settings.rasa_url_list)
    return HealthCollector(list(results[:n]), list(results[n:]), _model_name(settings.rasa_model))


def build_router(runtime: Runtime) -> APIRouter:
    settings = runtime.settings
    tickets = TicketsCollector(runtime.sessions, lambda: known_departments(settings.kb_dir))
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus text format; see the module's docstring for who may read it."""
        if not metrics_allowed(request, settings):
            if settings.metrics_token is not None:
                raise ApiError(401, "unauthorized", "send the metrics token as Authorization: Bearer <token>",
                               {"WWW-Authenticate": "Bearer"})
            raise ApiError(403, "forbidden", "/metrics answers loopback and private addresses only, "
                           "unless CRM_METRICS_TOKEN is set")
        health = await probe_health(settings)
        body = await run_in_threadpool(scrape, [tickets, health])
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
