"""One chat's updates one after another, different chats at the same time.

A citizen who sends "There is a pothole on Mill Road" and then a photo of it
must have the photo handled after the report (so it joins the ticket) and
read the answers in the order they asked. Handling a message takes a while
(Rasa, the store, sendMessage), so handling all chats one at a time would
make every citizen wait for everyone else.

python-telegram-bot hands every update to its update processor in the order
it arrived, each in its own task (and its semaphore wakes waiters in FIFO
order), so chaining the tasks of one chat here keeps that order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


def chat_key(update: object) -> int | None:
    if isinstance(update, Update) and update.effective_chat is not None:
        return update.effective_chat.id
    return None


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        # chat id -> set when the chat's latest update so far has been handled
        self._tails: dict[int, asyncio.Event] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = chat_key(update)
        if key is None:
            await coroutine
            return
        previous = self._tails.get(key)
        done = asyncio.Event()
        self._tails[key] = done
        try:
            if previous is not None:
                await previous.wait()
            await coroutine
        finally:
            done.set()
            if self._tails.get(key) is done:
                del self._tails[key]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
