from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.channels.telegram.support import TOKEN
from tools.standins.telegram import BotApiStandIn


@pytest.fixture
def standin() -> Iterator[BotApiStandIn]:
    with BotApiStandIn(TOKEN) as api:
        yield api
