"""A local stand-in for Telegram's Bot API, for the tests and the benchmark.

python-telegram-bot talks to it over real HTTP (its ``base_url`` points here),
so the library's own request building, error mapping and polling loop are
exercised. It implements what the channel uses: ``getMe``, ``getUpdates``
(long polling over a queue the caller fills), ``sendMessage`` (recorded, with its
inline keyboard, whose limits it checks as Telegram does), taps on those buttons
(``tap``: a callback query), ``answerCallbackQuery`` and ``editMessageReplyMarkup``,
``setWebhook``/``deleteWebhook``/``getWebhookInfo``, and failures injected on
demand (429 with ``retry_after``, 500, 403 for a blocked chat, 400 for an
unknown chat). It binds a free loopback port and never reaches the internet.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

BOT_ID = 7000001
BOT_USERNAME = "eastbrook_city_bot"


@dataclass(frozen=True)
class SentMessage:
    chat_id: int
    text: str
    message_id: int
    params: dict[str, Any]
    at: float  # time.perf_counter() when the stand-in received it

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        markup = self.params.get("reply_markup")
        return markup if isinstance(markup, dict) else None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data) of the inline keyboard it was sent with, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [(b.get("text"), b.get("callback_data")) for row in rows for b in row]


# Bot API limits the stand-in enforces, with the errors Telegram gives.
CALLBACK_DATA_BYTES = 64
ANSWER_TEXT_CHARS = 200
MESSAGE_TEXT_CHARS = 4096


def keyboard_problem(markup: Any) -> str | None:
    """Why Telegram would refuse this reply_markup (None: it would take it)."""
    if markup is None:
        return None
    if not isinstance(markup, dict) or not isinstance(markup.get("inline_keyboard"), list):
        return "Bad Request: can't parse reply keyboard markup JSON object"
    for row in markup["inline_keyboard"]:
        if not isinstance(row, list):
            return "Bad Request: can't parse inline keyboard button: field \"inline_keyboard\" must be an Array of Arrays"
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str) or not button["text"]:
                return "Bad Request: BUTTON_TEXT_EMPTY"
            data = button.get("callback_data")
            if data is not None and not (1 <= len(str(data).encode("utf-8")) <= CALLBACK_DATA_BYTES):
                return "Bad Request: BUTTON_DATA_INVALID"
            if data is None and not any(k in button for k in ("url", "switch_inline_query", "web_app")):
                return "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
    return None


@dataclass
class Failure:
    status: int
    description: str
    parameters: dict[str, Any] | None = None
    # Only for this chat (None: any call of the method).
    chat_id: int | None = None


def _parse_params(raw: dict[str, str]) -> dict[str, Any]:
    """python-telegram-bot posts form fields; lists and objects arrive JSON-encoded."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and value[:1] in "[{":
            try:
                params[key] = json.loads(value)
                continue
            except ValueError:
                pass
        params[key] = value
    return params


class UpdateFactory:
    """Builds Bot API updates as Telegram sends them (dicts), with increasing ids."""

    def __init__(self) -> None:
        self._update_ids = itertools.count(100001)
        self._message_ids = itertools.count(1)
        self._query_ids = itertools.count(4_200_000_000_000_001)
        self.bot_user = {"id": BOT_ID, "is_bot": True, "first_name": "City of Eastbrook", "username": BOT_USERNAME}

    @staticmethod
    def user(user_id: int, first_name: str = "Alex", language_code: str = "en") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code}

    @staticmethod
    def chat(chat_id: int, chat_type: str | None = None) -> dict[str, Any]:
        chat_type = chat_type or ("private" if chat_id > 0 else "supergroup")
        if chat_type == "private":
            return {"id": chat_id, "type": "private", "first_name": "Alex"}
        return {"id": chat_id, "type": chat_type, "title": "Mill Road neighbours"}

    def message(self, chat_id: int, text: str | None = None, *, from_id: int | None = None,
                chat_type: str | None = None, message_id: int | None = None, entities: list[dict] | None = None,
                reply_to: dict | None = None, **content: Any) -> dict[str, Any]:
        """A ``message`` object; ``content`` holds the non-text parts (photo=..., location=...)."""
        message: dict[str, Any] = {
            "message_id": message_id if message_id is not None else next(self._message_ids),
            "date": int(time.time()),
            "chat": self.chat(chat_id, chat_type),
            "from": self.user(from_id if from_id is not None else abs(chat_id)),
        }
        if text is not None:
            message["text"] = text
            command = text.split(maxsplit=1)[0] if text.startswith("/") else None
            if command and entities is None:
                entities = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if entities:
            message["caption_entities" if "caption" in content else "entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        message.update(content)
        return message

    def callback(self, chat_id: int, message: dict[str, Any], data: str | None, *, from_id: int | None = None,
                 query_id: str | None = None) -> dict[str, Any]:
        """A ``callback_query`` update: someone in ``chat_id`` tapped a button of ``message``."""
        query: dict[str, Any] = {
            "id": query_id or str(next(self._query_ids)),
            "from": self.user(from_id if from_id is not None else abs(chat_id)),
            "chat_instance": f"-{abs(chat_id)}0042",
            "message": message,
        }
        if data is not None:
            query["data"] = data
        return {"update_id": next(self._update_ids), "callback_query": query}

    def update(self, message: dict[str, Any], *, kind: str = "message") -> dict[str, Any]:
        return {"update_id": next(self._update_ids), kind: message}

    def text(self, chat_id: int, text: str, **kw: Any) -> dict[str, Any]:
        return self.update(self.message(chat_id, text, **kw))

    def edited(self, original: dict[str, Any], new_text: str) -> dict[str, Any]:
        message = {**original["message"], "text": new_text, "edit_date": int(time.time()) + 1}
        message.pop("entities", None)
        return self.update(message, kind="edited_message")

    def mention(self, username: str = BOT_USERNAME) -> tuple[str, Callable[[str], list[dict]]]:
        """``(@name, entities_for(text))``: a mention entity where ``@name`` occurs in ``text``."""
        handle = "@" + username

        def entities_for(text: str) -> list[dict]:
            units = text.encode("utf-16-le")
            target = handle.encode("utf-16-le")
            return [{"type": "mention", "offset": units.index(target) // 2, "length": len(target) // 2}]

        return handle, entities_for

    @staticmethod
    def photo_sizes(file_id: str = "AgACAgQAAxkBAAIB") -> list[dict[str, Any]]:
        return [
            {"file_id": file_id + "-s", "file_unique_id": "AQADs", "width": 90, "height": 67, "file_size": 1200},
            {"file_id": file_id, "file_unique_id": "AQADm", "width": 1280, "height": 960, "file_size": 181234},
        ]


class BotApiStandIn:
    """``with BotApiStandIn(token) as api:`` point python-telegram-bot at ``api.base_url``."""

    def __init__(self, token: str, *, host: str = "127.0.0.1") -> None:
        self.token = token
        self.host = host
        self.updates = UpdateFactory()
        self.sent: list[SentMessage] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.webhook: dict[str, Any] = {}
        self.blocked_chats: set[int] = set()
        # Callback queries Telegram would accept an answer for, and the answers it got.
        self.open_queries: set[str] = set()
        self.answers: list[dict[str, Any]] = []
        # (chat id, message id) -> the message as Telegram now shows it (its keyboard edited away...).
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.unknown_chats: set[int] = set()
        self._failures: dict[str, list[Failure]] = {}
        self._queue: list[dict[str, Any]] = []
        self._confirmed_offset = 0
        self._cond = threading.Condition()
        self._closing = False
        self._sent_ids: dict[int, itertools.count] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> "BotApiStandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle's algorithm the body then waits
            # for the client's delayed ACK (~40 ms), a delay Telegram's servers do not add.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                standin._serve(self)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="bot-api-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "BotApiStandIn":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """For ``Settings.telegram_base_url`` / ``ApplicationBuilder.base_url``."""
        return f"http://{self.host}:{self.port}/bot"

    # --- what tests do ------------------------------------------------------------------
    def push(self, *updates: dict[str, Any]) -> None:
        """Queue updates for the bot's next getUpdates (as Telegram would)."""
        with self._cond:
            self._queue.extend(updates)
            self._cond.notify_all()

    def fail_next(self, method: str, status: int, description: str | None = None, *, times: int = 1,
                  retry_after: int | None = None, chat_id: int | None = None) -> None:
        """The next ``times`` calls of ``method`` get this error instead of succeeding."""
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        description = description or {
            429: f"Too Many Requests: retry after {retry_after}",
            500: "Internal Server Error",
            502: "Bad Gateway",
            403: "Forbidden: bot was blocked by the user",
            400: "Bad Request: chat not found",
        }.get(status, "Error")
        with self._cond:
            self._failures.setdefault(method, []).extend(
                Failure(status, description, parameters, chat_id) for _ in range(times)
            )

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        with self._cond:
            return [m for m in self.sent if m.chat_id == chat_id]

    def wait_for_sent(self, chat_id: int, count: int = 1, timeout: float = 30.0) -> list[SentMessage]:
        """The first ``count`` messages sent to ``chat_id``; AssertionError if they do not come."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self.sent if m.chat_id == chat_id]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} message(s) to chat {chat_id}, got {len(found)}: "
                                         f"{[m.text for m in found]}")
                self._cond.wait(remaining)

    def wait_until_fetched(self, update_id: int, timeout: float = 30.0) -> None:
        """Until the bot has confirmed ``update_id`` (asked for a later offset)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._confirmed_offset <= update_id:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"update {update_id} was not fetched")
                self._cond.wait(remaining)

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        with self._cond:
            return [params for name, params in self.calls if name == method]

    def tap(self, sent: SentMessage, button: int = 0, *, data: str | None = None, chat_id: int | None = None,
            from_id: int | None = None, query_id: str | None = None) -> dict[str, Any]:
        """The update Telegram sends when a citizen taps button number ``button`` (0-based) of
        ``sent``'s keyboard, as the message shows now; ``data`` overrides the button's data (a
        tampered client), ``chat_id`` makes it another chat's tap. Push or post it."""
        with self._cond:
            shown = dict(self.messages.get((sent.chat_id, sent.message_id)) or {})
        if data is None:
            data = sent.buttons[button][1]
        chat = chat_id if chat_id is not None else sent.chat_id
        if chat != sent.chat_id:
            shown["chat"] = UpdateFactory.chat(chat)
        update = self.updates.callback(chat, shown, data, from_id=from_id, query_id=query_id)
        with self._cond:
            self.open_queries.add(update["callback_query"]["id"])
        return update

    def answers_to(self, query_id: str) -> list[dict[str, Any]]:
        with self._cond:
            return [a for a in self.answers if str(a.get("callback_query_id")) == query_id]

    def wait_for_answer(self, query_id: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [a for a in self.answers if str(a.get("callback_query_id")) == query_id]
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"callback query {query_id} was never answered")
                self._cond.wait(remaining)

    def keyboard_of(self, sent: SentMessage) -> dict[str, Any] | None:
        """The message's keyboard as Telegram shows it now (None once edited away)."""
        with self._cond:
            return (self.messages.get((sent.chat_id, sent.message_id)) or {}).get("reply_markup")

    def post_to_webhook(self, update: dict[str, Any], *, secret: str | None = "registered",
                        url: str | None = None, timeout: float = 30.0) -> httpx.Response:
        """POST an update as Telegram does: to the registered URL with the registered secret
        header (``secret="registered"``), another secret, or none (``secret=None``)."""
        headers = {}
        secret_value = self.webhook.get("secret_token") if secret == "registered" else secret
        if secret_value is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret_value
        return httpx.post(url or self.webhook["url"], json=update, headers=headers, timeout=timeout)

    # --- the Bot API --------------------------------------------------------------------
    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        raw: dict[str, Any] = dict(parse_qsl(parts.query))
        content_type = request.headers.get("Content-Type", "")
        if body and content_type.startswith("application/json"):
            raw.update(json.loads(body))
        elif body:
            raw.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        params = _parse_params(raw)
        prefix = f"/bot{self.token}/"
        if not parts.path.startswith(prefix):
            return self._reply(request, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        method = parts.path[len(prefix):]
        status, payload = self._call(method, params)
        self._reply(request, status, payload)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the bot gave up on a long poll (it is stopping); Telegram shrugs too

    def _failure_for(self, method: str, params: dict[str, Any]) -> Failure | None:
        chat_id = params.get("chat_id")
        with self._cond:
            queue = self._failures.get(method) or []
            for index, failure in enumerate(queue):
                if failure.chat_id is None or str(failure.chat_id) == str(chat_id):
                    return queue.pop(index)
        if method == "sendMessage" and chat_id is not None:
            if int(chat_id) in self.blocked_chats:
                return Failure(403, "Forbidden: bot was blocked by the user")
            if int(chat_id) in self.unknown_chats:
                return Failure(400, "Bad Request: chat not found")
        return None

    def _call(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._cond:
            self.calls.append((method, params))
        failure = self._failure_for(method, params)
        if failure is not None:
            payload: dict[str, Any] = {"ok": False, "error_code": failure.status, "description": failure.description}
            if failure.parameters:
                payload["parameters"] = failure.parameters
            return failure.status, payload
        if method == "getMe":
            return 200, {"ok": True, "result": {**self.updates.bot_user, "can_join_groups": True,
                                                "can_read_all_group_messages": False,
                                                "supports_inline_queries": False}}
        if method == "getUpdates":
            if self.webhook.get("url"):
                return 409, {"ok": False, "error_code": 409,
                             "description": "Conflict: can't use getUpdates method while webhook is active"}
            return 200, {"ok": True, "result": self._get_updates(params)}
        if method == "sendMessage":
            problem = keyboard_problem(params.get("reply_markup"))
            if problem is None and len(str(params.get("text", ""))) > MESSAGE_TEXT_CHARS:
                problem = "Bad Request: message is too long"
            if problem is not None:
                return 400, {"ok": False, "error_code": 400, "description": problem}
            return 200, {"ok": True, "result": self._send_message(params)}
        if method == "answerCallbackQuery":
            return self._answer_callback_query(params)
        if method == "editMessageReplyMarkup":
            return self._edit_reply_markup(params)
        if method == "setWebhook":
            with self._cond:
                self.webhook = {"url": params.get("url", ""), "secret_token": params.get("secret_token"),
                                "allowed_updates": params.get("allowed_updates")}
                if str(params.get("drop_pending_updates", "")).lower() == "true":
                    self._queue.clear()
            return 200, {"ok": True, "result": True, "description": "Webhook was set"}
        if method == "deleteWebhook":
            with self._cond:
                self.webhook = {}
                if str(params.get("drop_pending_updates", "")).lower() == "true":
                    self._queue.clear()
            return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}
        if method == "getWebhookInfo":
            with self._cond:
                info = {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                        "pending_update_count": len(self._queue)}
            return 200, {"ok": True, "result": info}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 50.0)
        with self._cond:
            if offset:
                # Asking for ``offset`` confirms every earlier update: Telegram forgets them.
                self._queue = [u for u in self._queue if u["update_id"] >= offset]
                self._confirmed_offset = max(self._confirmed_offset, offset)
                self._cond.notify_all()
            while True:
                ready = self._queue[:limit]
                remaining = deadline - time.monotonic()
                if ready or self._closing or remaining <= 0:
                    return ready
                self._cond.wait(remaining)

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        text = str(params.get("text", ""))
        with self._cond:
            # Like Telegram, message ids count per chat: two chats get the same ids.
            message_id = next(self._sent_ids.setdefault(chat_id, itertools.count(1)))
            self.sent.append(SentMessage(chat_id, text, message_id, params, time.perf_counter()))
            message = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": UpdateFactory.chat(chat_id),
                "from": self.updates.bot_user,
                "text": text,
            }
            if isinstance(params.get("reply_markup"), dict):
                message["reply_markup"] = params["reply_markup"]
            self.messages[(chat_id, message_id)] = message
            self._cond.notify_all()
        return dict(message)

    def _answer_callback_query(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        query_id = str(params.get("callback_query_id", ""))
        if len(str(params.get("text") or "")) > ANSWER_TEXT_CHARS:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: MESSAGE_TOO_LONG"}
        with self._cond:
            if query_id not in self.open_queries:  # unknown, or answered already: Telegram says the same
                return 400, {"ok": False, "error_code": 400, "description":
                             "Bad Request: query is too old and response timeout expired or query ID is invalid"}
            self.open_queries.discard(query_id)
            self.answers.append(params)
            self._cond.notify_all()
        return 200, {"ok": True, "result": True}

    def _edit_reply_markup(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        markup = params.get("reply_markup")
        problem = keyboard_problem(markup) if markup not in (None, "") else None
        if problem is not None:
            return 400, {"ok": False, "error_code": 400, "description": problem}
        key = (int(params.get("chat_id") or 0), int(params.get("message_id") or 0))
        with self._cond:
            message = self.messages.get(key)
            if message is None:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"}
            new = markup if isinstance(markup, dict) and markup.get("inline_keyboard") else None
            if new == message.get("reply_markup"):
                return 400, {"ok": False, "error_code": 400, "description":
                             "Bad Request: message is not modified: specified new message content and reply "
                             "markup are exactly the same as a current content and reply markup of the message"}
            if new is None:
                message.pop("reply_markup", None)
            else:
                message["reply_markup"] = new
            self._cond.notify_all()
            return 200, {"ok": True, "result": dict(message)}
