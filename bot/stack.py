"""Start and stop the three processes that make up the running assistant.

The action server and the API run in the application environment, Rasa in its
own; all three get their configuration through environment variables so the
same code serves `make run`, the test suite, the evaluation and the benchmark
(each with its own database, model, knowledge base and ports).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from tenacity import Retrying, retry_if_result, stop_before_delay, wait_fixed

from bot.settings import PROJECT_ROOT, Settings
from bot.training import RASA_BIN, rasa_env

APP_PYTHON = Path(sys.executable)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class StackConfig:
    model: Path
    database_url: str
    api_key: str
    kb_dir: Path = PROJECT_ROOT / "knowledge_base"
    tracker_db: Path = PROJECT_ROOT / "var" / "rasa_tracker.db"
    # Rasa's tracker store; unset, the SQLite file ``tracker_db``.
    tracker_url: str | None = None
    # Rasa's lock store: one conversation's turns in order across several Rasa processes.
    redis_url: str | None = None
    api_port: int = 8000
    rasa_port: int = 5005
    action_port: int = 5055
    # Several processes of a kind listen on consecutive ports from the first one, unless given.
    rasa_processes: int = 1
    action_servers: int = 1
    api_workers: int = 1
    rasa_ports: list[int] = field(default_factory=list)
    action_ports: list[int] = field(default_factory=list)
    host: str = "127.0.0.1"
    # /model/parse and friends; only for tuning and evaluation, never in production.
    rasa_http_api: bool = False
    log_dir: Path = PROJECT_ROOT / "var" / "log"
    # Channels with a process of their own (`python -m bot channel <name>`).
    channel_workers: list[str] = field(default_factory=list)
    # Run `python -m bot deliveries` (needed as soon as any channel can send).
    deliveries: bool = False
    # Run `python -m bot scheduler` (commitment alerts, staff e-mail; bot/scheduler).
    scheduler: bool = False
    # Run `python -m bot trainer` (the KB learning loop: approved KB changes trained and loaded).
    trainer: bool = False
    # Rasa's --auth-token for its model API; None: a random one per run (Stack.rasa_token).
    rasa_token: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # Only for the Rasa processes (e.g. CRM_ENCODER_BACKEND for the benchmark's baseline).
    rasa_extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def throwaway(cls, model: Path, work: Path, **overrides: Any) -> "StackConfig":
        """A stack for a test or a measurement: a migrated SQLite store, Rasa's tracker and the logs
        in ``work``, free loopback ports and a random API key, so it never touches the city's data
        or collides with a running assistant."""
        from bot.store.db import upgrade_database

        database_url = overrides.pop("database_url", None) or f"sqlite:///{work / 'crm.db'}"
        upgrade_database(database_url)
        rasa_processes = overrides.get("rasa_processes", 1)
        action_servers = overrides.get("action_servers", 1)
        fields: dict[str, Any] = dict(
            model=model, database_url=database_url, api_key=secrets.token_hex(32), tracker_db=work / "tracker.db",
            api_port=free_port(), rasa_ports=[free_port() for _ in range(rasa_processes)],
            action_ports=[free_port() for _ in range(action_servers)], log_dir=work / "log",
        )
        return cls(**{**fields, **overrides})

    def __post_init__(self) -> None:
        if not self.rasa_ports:
            self.rasa_ports = [self.rasa_port + i for i in range(self.rasa_processes)]
        if not self.action_ports:
            self.action_ports = [self.action_port + i for i in range(self.action_servers)]
        self.rasa_processes, self.action_servers = len(self.rasa_ports), len(self.action_ports)
        self.rasa_port, self.action_port = self.rasa_ports[0], self.action_ports[0]
        if self.rasa_processes > 1 and not self.redis_url:
            raise ValueError("several Rasa processes need a Redis lock store (redis_url)")

    @property
    def metrics_dir(self) -> Path:
        """prometheus-client's multiprocess files of this stack's processes (docs/observability.md)."""
        return self.log_dir / "metrics"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def rasa_urls(self) -> list[str]:
        return [f"http://{self.host}:{port}" for port in self.rasa_ports]

    @property
    def rasa_url(self) -> str:
        return self.rasa_urls[0]

    @property
    def action_urls(self) -> list[str]:
        return [f"http://{self.host}:{port}" for port in self.action_ports]

    @property
    def action_url(self) -> str:
        return self.action_urls[0]


def _numbered(kind: str, index: int) -> str:
    return kind if index == 0 else f"{kind}-{index + 1}"


def rasa_server_command(
    settings: Settings, *, port: int, model: Path, host: str, log_file: Path | None = None, enable_api: bool = False
) -> tuple[list[str], dict[str, str]]:
    """``rasa run`` for one Rasa process and its environment, from the settings: the tracker store
    from CRM_DATABASE_URL (or CRM_TRACKER_DATABASE_URL), the lock store from CRM_REDIS_URL, the
    action server from CRM_ACTION_SERVER_URL. endpoints.yml reads them from the environment."""
    command = [
        str(RASA_BIN), "run", "--model", str(model), "--endpoints", "endpoints.yml",
        "--credentials", "credentials.yml", "--interface", host, "--port", str(port),
    ]
    if log_file is not None:
        command += ["--log-file", str(log_file)]
    token_env: dict[str, str] = {}
    if enable_api:
        command.append("--enable-api")  # open, with /model/parse: tuning and evaluation only
    elif settings.rasa_token is not None:
        # The trainer's PUT /model and GET /status, behind the token (kept off the command line).
        command, token_env = with_auth_token(command, settings.rasa_token.get_secret_value())
    action_url = settings.action_server_base_url
    env = {"RASA_ACTION_ENDPOINT": f"{action_url}/webhook", "RASA_TRACKER_URL": settings.tracker_url,
           "TICKET_LOCK_LIFETIME": str(settings.rasa_lock_lifetime_seconds)}
    env.update(lock_store_env(settings.redis_url))
    env.update(thread_env(settings.rasa_processes))
    env.update(token_env)
    return command, rasa_env(env)


def thread_env(processes: int) -> dict[str, str]:
    """Threads per Rasa process when several share this machine's cores: the encoders' and
    TensorFlow's intra-op pools together no larger than the cores, so the processes do not
    take turns on the same cores. Values already in the environment win."""
    if processes <= 1:
        return {}
    per_process = str(max(1, (os.cpu_count() or 1) // processes))
    wanted = {"CRM_ENCODER_THREADS": per_process, "TF_NUM_INTRAOP_THREADS": per_process,
              "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": per_process}
    return {name: value for name, value in wanted.items() if name not in os.environ}


def lock_store_env(redis_url: str | None) -> dict[str, str]:
    """endpoints.yml's lock store: in memory for one process, Redis for several."""
    if not redis_url:
        return {"RASA_LOCK_STORE": "in_memory", "RASA_REDIS_HOST": "", "RASA_REDIS_PORT": "6379",
                "RASA_REDIS_DB": "0", "RASA_REDIS_PASSWORD": ""}
    url = urlsplit(redis_url)
    database = url.path.strip("/") or "0"
    return {
        "RASA_LOCK_STORE": "redis",
        "RASA_REDIS_HOST": url.hostname or "127.0.0.1",
        "RASA_REDIS_PORT": str(url.port or 6379),
        "RASA_REDIS_DB": database,
        "RASA_REDIS_PASSWORD": unquote(url.password or ""),
    }


# `rasa run` takes its token only as --auth-token; on the command line it would be readable by
# every user of the machine (ps, /proc/<pid>/cmdline). This starts Rasa's own main() in its
# environment with the token added to sys.argv from the environment, which only the process's
# owner can read. Sanic's access log (off at Rasa's default level) would log ?token=: kept off.
_RASA_WITH_TOKEN = (
    "import os, sys; from rasa.__main__ import main; "
    "sys.argv = ['rasa', *sys.argv[1:], '--enable-api', '--auth-token', os.environ.pop('CRM_RASA_TOKEN')]; sys.exit(main())"
)


def with_auth_token(rasa_cmd: list[str], token: str) -> tuple[list[str], dict[str, str]]:
    """``rasa_cmd`` (``[RASA_BIN, "run", ...]``) with the HTTP API on behind ``token``, and the env it needs."""
    python = Path(rasa_cmd[0]).with_name("python")
    return [str(python), "-c", _RASA_WITH_TOKEN, *rasa_cmd[1:]], {"CRM_RASA_TOKEN": token, "SANIC_ACCESS_LOG": "False"}


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self._procs: list[tuple[str, subprocess.Popen]] = []
        # Given to Rasa and the trainer only; never printed or logged.
        self.rasa_token = config.rasa_token or secrets.token_urlsafe(32)

    def _app_env(self) -> dict[str, str]:
        c = self.config
        env = dict(os.environ)
        env.update(
            {
                "PYTHONPATH": str(PROJECT_ROOT),
                "CRM_DATABASE_URL": c.database_url,
                "CRM_API_KEYS": c.api_key,
                "CRM_KB_DIR": str(c.kb_dir),
                "CRM_RASA_URL": ",".join(c.rasa_urls),
                "CRM_API_HOST": c.host,
                "CRM_API_PORT": str(c.api_port),
                "CRM_API_WORKERS": str(c.api_workers),
                "CRM_RASA_PROCESSES": str(c.rasa_processes),
                "CRM_ACTION_SERVERS": str(c.action_servers),
                "CRM_ACTION_SERVER_PORT": str(c.action_port),
                "CRM_ACTION_SERVER_URL": ",".join(c.action_urls),
                "CRM_TRACKER_DATABASE_URL": c.tracker_url or f"sqlite:///{c.tracker_db}",
                # Rasa's model API token: `bot rasa` hands it to Rasa, the trainer and /metrics use it.
                "CRM_RASA_TOKEN": self.rasa_token,
                # One /metrics scrape shows every process's metrics (bot.observability.metrics).
                "PROMETHEUS_MULTIPROC_DIR": str(c.metrics_dir),
                "CRM_RASA_MODEL": str(c.model),
            }
        )
        if c.redis_url:
            env["CRM_REDIS_URL"] = c.redis_url
        env.update(c.extra_env)
        return env

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.config.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._procs.append((name, proc))

    def pid(self, name: str) -> int | None:
        """The process id of one of the stack's processes ("rasa", "api", "actions", ...)."""
        return next((proc.pid for proc_name, proc in self._procs if proc_name == name), None)

    def start(self, timeout: float = 240.0) -> "Stack":
        c = self.config
        c.tracker_db.parent.mkdir(parents=True, exist_ok=True)
        # The files of processes from an earlier start would be added to this start's counts.
        shutil.rmtree(c.metrics_dir, ignore_errors=True)
        c.metrics_dir.mkdir(parents=True)
        try:
            for i, port in enumerate(c.action_ports):
                self._spawn(_numbered("actions", i),
                            [str(APP_PYTHON), "-m", "bot", "actions", "--host", c.host, "--port", str(port)],
                            self._app_env())
            for i, port in enumerate(c.rasa_ports):
                command = [str(APP_PYTHON), "-m", "bot", "rasa", "--host", c.host, "--port", str(port),
                           "--model", str(c.model), "--log-file", str(c.log_dir / f"{_numbered('rasa', i)}-debug.log")]
                if c.rasa_http_api:
                    command.append("--enable-api")
                # Rasa process i calls action server i (mod their number). Its HTTP API (the
                # trainer's PUT /model and GET /status) is on behind the token, unless open for tuning.
                env = {**self._app_env(), "CRM_ACTION_SERVER_URL": c.action_urls[i % len(c.action_urls)],
                       **c.rasa_extra_env}
                self._spawn(_numbered("rasa", i), command, env)
            self._spawn("api", [str(APP_PYTHON), "-m", "bot", "api"], self._app_env())
            for name in c.channel_workers:
                self._spawn(f"channel-{name}", [str(APP_PYTHON), "-m", "bot", "channel", name], self._app_env())
            if c.deliveries:
                self._spawn("deliveries", [str(APP_PYTHON), "-m", "bot", "deliveries"], self._app_env())
            if c.scheduler:
                self._spawn("scheduler", [str(APP_PYTHON), "-m", "bot", "scheduler"], self._app_env())
            if c.trainer:
                self._spawn("trainer", [str(APP_PYTHON), "-m", "bot", "trainer"],
                            {**self._app_env(), "CRM_RASA_TOKEN": self.rasa_token})
            deadline = time.monotonic() + timeout
            for url in c.action_urls:
                self._wait(f"{url}/health", deadline)
            for url in c.rasa_urls:
                self._wait(f"{url}/", deadline)
            self._wait(f"{c.api_url}/health", deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, url: str, deadline: float) -> None:
        """Until ``url`` answers 200, every 0.5 s; a process that exits meanwhile is raised at once."""

        def up() -> bool:
            for name, proc in self._procs:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with code {proc.returncode}; see {self.config.log_dir / (name + '.log')}"
                    )
            try:
                return httpx.get(url, timeout=2.0).status_code == 200
            except httpx.HTTPError:
                return False

        # No probe would start after the deadline; giving up returns False instead of raising RetryError.
        waiting = Retrying(stop=stop_before_delay(deadline - time.monotonic()), wait=wait_fixed(0.5),
                           retry=retry_if_result(lambda ok: not ok), retry_error_callback=lambda _state: False)
        if time.monotonic() >= deadline or not waiting(up):
            raise TimeoutError(f"{url} did not come up in time; logs in {self.config.log_dir}")

    def stop(self) -> None:
        for _name, proc in reversed(self._procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _name, proc in reversed(self._procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._procs.clear()

    def wait(self) -> int:
        """Block until one process dies (then stop the rest) or we are interrupted."""

        def _terminate(_signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        # A service manager stops us with SIGTERM; the children must not outlive us.
        signal.signal(signal.SIGTERM, _terminate)
        try:
            while True:
                for name, proc in self._procs:
                    if proc.poll() is not None:
                        print(f"{name} exited with code {proc.returncode}; stopping", file=sys.stderr)
                        return 1
                time.sleep(1)
        except KeyboardInterrupt:
            return 0
        finally:
            self.stop()

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
