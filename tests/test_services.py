"""The tests' own PostgreSQL and Redis (tests/services.py): the path a fresh machine takes."""

from __future__ import annotations

import socket

import pytest
import redis
import sqlalchemy as sa

import tests.services as services_module
from bot.stack import free_port
from tests.services import ServiceUnavailable, TestServices, ThrowawayRedis, redis_database


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_throwaway_servers_serve_and_leave_nothing_behind() -> None:
    services = TestServices(mode="throwaway", environ={})
    try:
        postgres_url, redis_server = services.postgres_admin_url(), services.redis_url()
        postgres, redis_process = services.started
        assert postgres.port != 5432 and redis_process.port != 6379

        engine = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE probe (id serial PRIMARY KEY, text varchar NOT NULL)")
            connection.exec_driver_sql("INSERT INTO probe (text) VALUES ('ä€')")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT text FROM probe").scalar_one() == "ä€"
            assert connection.exec_driver_sql("SHOW server_encoding").scalar_one() == "UTF8"
        engine.dispose()

        client = redis.Redis.from_url(redis_server, socket_timeout=5)
        client.set("probe", "1")
        assert client.get("probe") == b"1"
        client.close()
        assert services.postgres_admin_url() == postgres_url  # looked up once per session
    finally:
        directories = [server.directory for server in services.started]
        ports = [server.port for server in services.started]
        services.close()
    assert directories and not any(directory.exists() for directory in directories)
    assert not any(_answers(port) for port in ports)
    assert services.started == []


def test_unusable_usual_server_falls_back_to_a_throwaway_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services_module, "USUAL_REDIS", f"redis://127.0.0.1:{free_port()}/0")
    services = TestServices(environ={})
    try:
        url = services.redis_url()
        assert [type(server) for server in services.started] == [ThrowawayRedis]
        assert redis.Redis.from_url(url, socket_timeout=5).ping()
    finally:
        services.close()


def test_a_chosen_server_that_does_not_answer_is_an_error_not_replaced() -> None:
    chosen = f"postgresql+psycopg://postgres:secret@127.0.0.1:{free_port()}/test"
    services = TestServices(environ={"TEST_POSTGRES_URL": chosen})
    with pytest.raises(ServiceUnavailable, match="TEST_POSTGRES_URL is not reachable") as raised:
        services.postgres_admin_url()
    assert "secret" not in str(raised.value)
    assert services.started == []


def test_an_unknown_mode_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="TEST_SERVICES must be one of auto, throwaway"):
        TestServices(environ={"TEST_SERVICES": "docker"})


def test_each_session_gets_an_empty_redis_database_that_is_flushed_after() -> None:
    with ThrowawayRedis() as server:
        admin = redis.Redis.from_url(server.url, socket_timeout=5)
        redis.Redis.from_url(server.url.replace("/0", "/1"), socket_timeout=5).set("someone-else", "x")
        with redis_database(server.url) as first, redis_database(server.url) as second:
            assert (first.rsplit("/", 1)[1], second.rsplit("/", 1)[1]) == ("2", "3")  # 1 holds keys: skipped
            redis.Redis.from_url(first, socket_timeout=5).set("mine", "1")
        assert redis.Redis.from_url(first, socket_timeout=5).dbsize() == 0
        assert redis.Redis.from_url(server.url.replace("/0", "/1"), socket_timeout=5).get("someone-else") == b"x"
        assert admin.keys("crm-test:claim:*") == []  # claims released
        with pytest.raises(ServiceUnavailable, match="no free Redis database"):
            with redis_database(server.url, databases=range(1, 2)):
                pass
        admin.close()


def test_the_redis_url_fixture_hands_out_a_database_of_its_own(redis_url: str) -> None:
    assert not redis_url.endswith("/0")
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    client.set("test_services:probe", "1")
    assert client.get("test_services:probe") == b"1"
    client.delete("test_services:probe")
    client.close()
