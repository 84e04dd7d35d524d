"""PostgreSQL and Redis for the tests, on any machine.

A fresh machine may run neither, so ``TestServices`` finds them in this order:
TEST_POSTGRES_URL / TEST_REDIS_URL when set (a server someone chose is never
silently replaced), else the usual servers on 127.0.0.1:5432 / :6379 when they
answer, else a throw-away server of Debian's packages (installed by
``scripts/install-test-services.sh``), started in a temporary directory on a
free loopback port, the way ``tools/standins/email.py`` runs Dovecot.
TEST_SERVICES=throwaway skips the first two steps, to test that path on a
machine where the usual servers run.

A throw-away server dies with the test process even when that is killed
(PR_SET_PDEATHSIG), and ``close()`` removes its directory.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bot.stack import free_port

INSTALLER = "scripts/install-test-services.sh"
USUAL_POSTGRES = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)
USUAL_REDIS = "redis://127.0.0.1:6379/0"
MODES = ("auto", "throwaway")
CONNECT_TIMEOUT = 2  # seconds; a server on loopback answers at once or not at all


class ServiceUnavailable(RuntimeError):
    """No usable server and none could be started; the message says what was tried."""


def _die_with_parent(sig: signal.Signals) -> None:
    """Runs in the child before exec (after the switch to the unprivileged user, which would reset it)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig))


def _unprivileged() -> pwd.struct_passwd | None:
    """initdb and postgres refuse to run as root; as root, run them as nobody."""
    return pwd.getpwnam("nobody") if os.geteuid() == 0 else None


def _temporary_directory(prefix: str, owner: pwd.struct_passwd | None) -> Path:
    base = Path(tempfile.gettempdir())
    if owner is not None and not base.stat().st_mode & 0o001:
        base = Path("/tmp")  # the unprivileged server could not reach a root-only TMPDIR
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    if owner is not None:
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    return directory


def _stop_process(process: subprocess.Popen | None, sig: signal.Signals, timeout: float = 15.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def postgres_bin_dir() -> Path:
    """Debian keeps the server programs off PATH, one directory per major version; the newest wins."""
    found = sorted(
        (path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")),
        key=lambda path: int(re.sub(r"\D", "", path.parent.name) or 0),
    )
    if found:
        return found[-1]
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise ServiceUnavailable(f"PostgreSQL's server programs (initdb) are not installed; run `bash {INSTALLER}`")


@dataclass
class ThrowawayPostgres:
    """initdb into a temporary directory, trust auth for user postgres, TCP on 127.0.0.1 and a unix socket there.

    Durability is off (fsync, full-page writes, synchronous commit): the data lives for one test session.
    """

    directory: Path | None = None
    port: int = 0
    process: subprocess.Popen | None = None
    owner: pwd.struct_passwd | None = field(default_factory=_unprivileged)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run_as_owner(self) -> dict:
        if self.owner is None:
            return {}
        return {"user": self.owner.pw_uid, "group": self.owner.pw_gid, "extra_groups": []}

    def start(self, timeout: float = 60.0) -> ThrowawayPostgres:
        bin_dir = postgres_bin_dir()
        self.directory = _temporary_directory("crm-test-pg-", self.owner)
        data = self.directory / "data"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "TZ": "UTC"}
        try:
            initdb = subprocess.run(
                [
                    str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions",
                ],
                check=False, cwd=self.directory, env=env, capture_output=True, text=True, timeout=timeout,
                **self._run_as_owner(),
            )
            if initdb.returncode != 0:
                raise ServiceUnavailable(f"initdb failed: {initdb.stderr.strip()[-2000:]}")
            log = self.directory / "postgres.log"
            for _attempt in range(3):  # the free port may be taken between choosing and binding it
                self.port = free_port()
                with open(log, "ab") as log_file:
                    self.process = subprocess.Popen(
                        [
                            str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.port),
                            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.directory}",
                            "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
                        ],
                        cwd=self.directory, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                        start_new_session=True, preexec_fn=lambda: _die_with_parent(signal.SIGQUIT),
                        **self._run_as_owner(),
                    )
                if self._wait_until_ready(timeout):
                    return self
                if "could not bind" not in _tail(log):
                    break
            raise ServiceUnavailable(f"the throw-away PostgreSQL did not start:\n{_tail(log)}")
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, timeout: float) -> bool:
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with psycopg.connect(
                    host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=1
                ):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        _stop_process(self.process, signal.SIGQUIT)
        return False

    def stop(self) -> None:
        """Fast shutdown (SIGINT ends open sessions instead of waiting for them), then the directory goes."""
        _stop_process(self.process, signal.SIGINT)
        self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class ThrowawayRedis:
    """redis-server on a free loopback port, nothing persisted, its working directory temporary."""

    directory: Path | None = None
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> ThrowawayRedis:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(server).exists():
            raise ServiceUnavailable(f"redis-server is not installed; run `bash {INSTALLER}`")
        self.directory = _temporary_directory("crm-test-redis-", None)
        log = self.directory / "redis.log"
        try:
            for _attempt in range(3):  # the free port may be taken between choosing and binding it
                self.port = free_port()
                self.process = subprocess.Popen(
                    [
                        server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                        "--dir", str(self.directory), "--logfile", str(log), "--daemonize", "no",
                    ],
                    cwd=self.directory, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True,
                    preexec_fn=lambda: _die_with_parent(signal.SIGTERM),
                )
                if self._wait_until_ready(timeout):
                    return self
                if "Address already in use" not in _tail(log):
                    break
            raise ServiceUnavailable(f"the throw-away Redis did not start:\n{_tail(log)}")
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, timeout: float) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1, socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        _stop_process(self.process, signal.SIGKILL)
        return False

    def stop(self) -> None:
        _stop_process(self.process, signal.SIGTERM)
        self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> ThrowawayRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _postgres_answers(url: str) -> str | None:
    """None when the server takes the connection, else why not (password hidden)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT})
    try:
        with engine.connect():
            return None
    except sa.exc.OperationalError as exc:
        return f"{make_url(url).render_as_string(hide_password=True)}: {str(exc.orig).strip()}"
    finally:
        engine.dispose()


def _redis_answers(url: str) -> str | None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT)
    try:
        client.ping()
        return None
    except redis.RedisError as exc:
        return f"{_hide_password(url)}: {exc}"
    finally:
        client.close()


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class TestServices:
    """One per test session: each server is looked up (or started) on first use, and stopped by ``close()``."""

    __test__ = False  # a helper, not a pytest test class

    def __init__(self, mode: str | None = None, environ: dict[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        mode = (mode if mode is not None else self.environ.get("TEST_SERVICES", "")).strip().lower() or "auto"
        if mode not in MODES:
            raise ValueError(f"TEST_SERVICES must be one of {', '.join(MODES)} (or unset), not {mode!r}")
        self.mode = mode
        self._postgres_url: str | None = None
        self._redis_url: str | None = None
        self.started: list[ThrowawayPostgres | ThrowawayRedis] = []

    def postgres_admin_url(self) -> str:
        """A URL for a PostgreSQL user that may create and drop databases."""
        if self._postgres_url is None:
            self._postgres_url = self._find(
                "PostgreSQL", "TEST_POSTGRES_URL", USUAL_POSTGRES, _postgres_answers, ThrowawayPostgres,
                lambda server: server.admin_url,
            )
        return self._postgres_url

    def redis_url(self) -> str:
        """A URL of a Redis server (database 0); tests take a database of their own with ``redis_database``."""
        if self._redis_url is None:
            self._redis_url = self._find(
                "Redis", "TEST_REDIS_URL", (USUAL_REDIS,), _redis_answers, ThrowawayRedis, lambda server: server.url
            )
        return self._redis_url

    def _find(self, name, variable, usual, answers, throwaway, url_of) -> str:
        errors: list[str] = []
        if self.mode == "auto":
            chosen = self.environ.get(variable)
            if chosen:
                error = answers(chosen)
                if error:
                    raise ServiceUnavailable(f"{name} at {variable} is not reachable: {error}")
                return chosen
            for url in usual:
                error = answers(url)
                if error is None:
                    return url
                errors.append(error)
        try:
            server = throwaway().start()
        except (ServiceUnavailable, OSError, subprocess.SubprocessError) as exc:
            tried = "".join(f"\n  {error}" for error in errors)
            raise ServiceUnavailable(
                f"{name} is required by the tests. Tried:{tried}\n  a throw-away server: {exc}\n"
                f"Install the packages with `bash {INSTALLER}`, start {name} on its usual port or set {variable}."
            ) from exc
        self.started.append(server)
        return url_of(server)

    def close(self) -> None:
        while self.started:
            self.started.pop().stop()


CLAIM_SECONDS = 6 * 3600  # a crashed session's claim lapses; no test session runs this long


@contextmanager
def redis_database(server_url: str, databases: range = range(1, 16)) -> Iterator[str]:
    """The URL of a Redis database no one else uses, flushed at the end.

    Several test sessions may share one Redis (six checkouts on one machine): each claims a
    database number with a key in the server URL's own database (SET NX, expiring) and takes
    only an empty one, so flushing it at the end never deletes anyone else's keys.
    """
    import redis

    options = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": 10}
    claims = redis.Redis.from_url(server_url, **options)
    token = uuid.uuid4().hex
    chosen: int | None = None
    busy: list[int] = []
    def url_of(number: int) -> str:  # the URL's own database would win over a db= argument
        return urlunsplit(urlsplit(server_url)._replace(path=f"/{number}"))

    try:
        for number in databases:
            key = f"crm-test:claim:{number}"
            if not claims.set(key, token, nx=True, ex=CLAIM_SECONDS):
                busy.append(number)
                continue
            try:
                with redis.Redis.from_url(url_of(number), **options) as database:
                    empty = database.dbsize() == 0
            except redis.ResponseError:  # the server has fewer databases
                claims.delete(key)
                break
            if empty:
                chosen = number
                break
            claims.delete(key)
            busy.append(number)
        if chosen is None:
            raise ServiceUnavailable(
                f"no free Redis database on {_hide_password(server_url)}: databases {busy} are claimed or hold keys"
            )
        url = url_of(chosen)
        try:
            yield url
        finally:
            with redis.Redis.from_url(url, **options) as database:
                database.flushdb()
            key = f"crm-test:claim:{chosen}"
            if claims.get(key) == token.encode():
                claims.delete(key)
    finally:
        claims.close()
