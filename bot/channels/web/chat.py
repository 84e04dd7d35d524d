"""The citizens' web chat (``/chat``): who is writing, what they may send, what they get back.

A visitor is identified by a random value in an HttpOnly cookie and nothing else: no
account, no personal data asked. The store never sees the cookie itself, only a hash of
it as the channel address, so a copy of the database cannot be used to read someone's
chat. The CSRF token on the page is another one-way function of the same cookie: a page
on another site can neither read the cookie nor compute the token.

Messages go through the same ``Conversation`` as ``POST /api/v1/messages`` on the
generic channel ``web``. The assistant's replies come back in the response; replies an
agent writes later are stored ``pending`` on the web channel (which has no push) and the
page polls for them; handing them to the page marks them sent.

A reply that asks "Do you mean ...?" carries its options (``ChatChoices``), in the POST
response and in the history, so the page shows them as buttons, also after a reload. A
button sends its title as the text and ``KbChoice(offer, n).encode()`` as the choice; the
core checks the choice against the stored offer, so the page is trusted with nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.clarification import CHOICES_KEY, none_option_title
from bot.core.inbound import KbChoice, language_tag
from bot.outbox.delivery import PENDING, mark_sent_in_response
from bot.store.models import ChannelIdentity, Message
from bot.store.types import utcnow

CHANNEL = "web"
COOKIE = "crm_chat"
COOKIE_PATH = "/chat"
# The chat works for a citizen who comes back the next day for an agent's reply.
COOKIE_MAX_AGE_DAYS = 30
TOKEN_HEADER = "x-chat-token"

MAX_TEXT_CHARS = 4000
# The page's ``navigator.language``: a BCP 47 tag, which RFC 5646 (4.4.1) asks be kept up to 35
# characters; a longer one is no browser's.
MAX_LANGUAGE_CHARS = 35
MAX_BODY_BYTES = 16_000
HISTORY_LIMIT = 50

logger = logging.getLogger(__name__)

# Per visitor (cookie) and per IP address; an office behind one IP gets the larger budget.
PER_COOKIE_PER_MINUTE = 12
PER_IP_PER_MINUTE = 60

_COOKIE_PATTERN = re.compile(r"[A-Za-z0-9_-]{32,64}")
_CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9-]{8,64}")


def new_visitor() -> str:
    return secrets.token_urlsafe(32)


def valid_visitor(cookie: str | None) -> bool:
    return bool(cookie) and _COOKIE_PATTERN.fullmatch(cookie) is not None


def _derive(label: str, cookie: str) -> str:
    return hashlib.sha256(f"{label}:{cookie}".encode()).hexdigest()


def sender_address(cookie: str) -> str:
    """The channel address stored for a visitor: a hash, never the cookie itself."""
    return "chat-" + _derive("crm-chat-sender", cookie)[:40]


def csrf_token(cookie: str) -> str:
    return _derive("crm-chat-csrf", cookie)


def token_matches(cookie: str, token: str | None) -> bool:
    return bool(token) and secrets.compare_digest(csrf_token(cookie).encode(), token.encode("utf-8", "replace"))


def valid_client_id(value: object) -> bool:
    return isinstance(value, str) and _CLIENT_ID_PATTERN.fullmatch(value) is not None


def valid_language(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_LANGUAGE_CHARS


def language_hint(browser_language: str | None, accept_language: str | None) -> str | None:
    """The browser's language as the page reports it, else the first of its Accept-Language
    (a page cached from before the field, a script that posts without it)."""
    return language_tag(browser_language) or language_tag(accept_language)


def external_id(address: str, client_id: str) -> str:
    """Idempotency key of one message typed in the page: a retried POST is not answered twice."""
    return f"{address}:{client_id}"


class RateLimiter:
    """Sliding one-minute windows per key, in this process (one API worker; see SharedRateLimiter).

    The number of keys is bounded: the least recently seen are forgotten first, so a
    flood of new cookies cannot grow memory without limit.
    """

    def __init__(self, per_minute: int, *, max_keys: int = 10_000, clock=time.monotonic) -> None:
        self.per_minute = per_minute
        self._max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """0 and the hit is counted, or the seconds to wait (nothing counted)."""
        now = self._clock()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and hits[0] <= now - 60:
                hits.popleft()
            if len(hits) >= self.per_minute:
                self._hits[key] = hits
                return max(1, int(hits[0] + 60 - now) + 1)
            hits.append(now)
            self._hits[key] = hits
            while len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
            return 0


# A sliding one-minute window in one sorted set per key, on Redis's clock: atomic, so two
# workers counting the same visitor at the same moment cannot both let the 13th message in.
_WINDOW_SCRIPT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - 60)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, math.floor(tonumber(oldest[2]) + 60 - t) + 1)
end
redis.call('ZADD', KEYS[1], t, ARGV[2])
redis.call('EXPIRE', KEYS[1], 61)
return 0
"""


class SharedRateLimiter:
    """The same window in Redis (``CRM_REDIS_URL``), shared by every API worker.

    With several workers a window per process would give a visitor as many budgets as there
    are workers, depending on which one took the request. Keys are hashed: Redis never holds
    a cookie or an address. Redis unreachable: this worker's own window takes over, so a
    citizen is never refused because the limiter is down.
    """

    def __init__(self, client, name: str, per_minute: int) -> None:
        self.per_minute = per_minute
        self._name = name
        self._script = client.register_script(_WINDOW_SCRIPT)
        self._fallback = RateLimiter(per_minute)

    def retry_after(self, key: str) -> int:
        import redis

        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        try:
            return int(self._script(keys=[f"crm:chat:rate:{self._name}:{digest}"],
                                    args=[self.per_minute, secrets.token_hex(8)]))
        except redis.RedisError as exc:
            logger.warning("web chat rate limit: Redis unavailable (%s); this worker counts alone",
                           type(exc).__name__)
            return self._fallback.retry_after(key)


def rate_limiters(redis_client=None) -> tuple[RateLimiter | SharedRateLimiter, RateLimiter | SharedRateLimiter]:
    """Per visitor and per address: in Redis when there is one, else in this process."""
    if redis_client is None:
        return RateLimiter(PER_COOKIE_PER_MINUTE), RateLimiter(PER_IP_PER_MINUTE)
    return (SharedRateLimiter(redis_client, "cookie", PER_COOKIE_PER_MINUTE),
            SharedRateLimiter(redis_client, "ip", PER_IP_PER_MINUTE))


@dataclass(frozen=True)
class ChatOption:
    n: int  # 0: "None of these / talk to a person"
    title: str
    choice: str  # what the page sends back: ``KbChoice(offer, n).encode()``


@dataclass(frozen=True)
class ChatChoices:
    """The buttons of a "Do you mean ...?" reply; the "none" option comes last."""

    offer: str
    options: tuple[ChatOption, ...]

    def as_json(self) -> dict:
        return {"offer": self.offer,
                "options": [{"n": o.n, "title": o.title, "choice": o.choice} for o in self.options]}


def chat_choices(raw: object, language: str | None = None) -> ChatChoices | None:
    """The buttons for a stored ``meta[CHOICES_KEY]`` (bot.core.clarification), or None;
    ``language`` is the asking reply's, for a "none" title the stored shape lacks.

    Read defensively: a malformed or older shape shows no buttons, and the reply's text
    still lists the numbered options, so the citizen can type the number instead."""
    if not isinstance(raw, dict) or not isinstance(raw.get("offer"), str):
        return None
    offer = raw["offer"]
    entries = [o for o in raw.get("options") or [] if isinstance(o, dict)]
    # ``"none": None``: a question without "None of these" ("Was it solved?", bot.feedback).
    if "none" in raw and raw["none"] is None:
        extra = []
    else:
        extra = [raw.get("none") if isinstance(raw.get("none"), dict) else {"n": 0, "title": none_option_title(language)}]
    options = []
    for item in [*entries, *extra]:
        n, title = item.get("n"), item.get("title")
        if isinstance(n, bool) or not isinstance(n, int) or not isinstance(title, str) or not title.strip():
            return None
        encoded = KbChoice(offer, n).encode()
        if KbChoice.decode(encoded) is None:
            return None
        options.append(ChatOption(n, title, encoded))
    if len(options) < 2:
        return None
    return ChatChoices(offer, tuple(options))


@dataclass(frozen=True)
class ChatLine:
    id: int
    direction: str  # "in": the citizen, "out": the city
    text: str
    created_at: datetime
    # "assistant" or "agent": who at the city wrote an outbound line.
    author: str | None
    # The page's own id of a line it sent, so it recognises the line when a poll returns it.
    client_id: str | None = None
    # The buttons of an assistant's "Do you mean ...?" reply.
    choices: ChatChoices | None = None


def _author(message: Message) -> str | None:
    if message.direction == "in":
        return None
    return "agent" if (message.author or "").startswith("agent:") else "assistant"


def _identity(session: Session, address: str) -> ChannelIdentity | None:
    return session.scalars(
        select(ChannelIdentity).where(ChannelIdentity.channel == CHANNEL, ChannelIdentity.address == address)
    ).one_or_none()


def fetch_lines(session: Session, address: str, *, after: int = 0, limit: int = HISTORY_LIMIT,
                now: datetime | None = None) -> list[ChatLine]:
    """The visitor's chat after message id ``after`` (``0``: the latest ``limit`` lines).

    Pending outbound lines (an agent's reply) are marked sent: the page that asked shows
    them. Asking again with the same ``after`` returns the same lines, so a poll lost on
    the way is repeated without losing a reply.
    """
    identity = _identity(session, address)
    if identity is None:
        return []
    query = select(Message).where(Message.identity_id == identity.id)
    if after > 0:
        rows = list(session.scalars(query.where(Message.id > after).order_by(Message.id).limit(limit)))
    else:
        rows = list(reversed(list(session.scalars(query.order_by(Message.id.desc()).limit(limit)))))
    now = now or utcnow()
    for message in rows:
        if message.direction == "out" and message.delivery_status == PENDING:
            mark_sent_in_response(message, now)
    session.flush()
    prefix = f"{address}:"
    return [
        ChatLine(
            m.id, m.direction, m.text, m.created_at, _author(m),
            m.external_id[len(prefix):] if m.direction == "in" and (m.external_id or "").startswith(prefix) else None,
            chat_choices(m.meta.get(CHOICES_KEY), m.language)
            if m.direction == "out" and isinstance(m.meta, dict) else None,
        )
        for m in rows
    ]
