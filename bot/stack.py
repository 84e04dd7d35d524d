"""Start and stop the three processes that make up the running assistant.

The action server and the API run in the application environment, Rasa in its
own; all three get their configuration through environment variables so the
same code serves `make run`, the test suite, the evaluation and the benchmark
(each with its own database, model, knowledge base and ports).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tenacity import Retrying, retry_if_result, stop_before_delay, wait_fixed

from bot.settings import PROJECT_ROOT
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
    api_port: int = 8000
    rasa_port: int = 5005
    action_port: int = 5055
    host: str = "127.0.0.1"
    # /model/parse and friends; only for tuning and evaluation, never in production.
    rasa_http_api: bool = False
    log_dir: Path = PROJECT_ROOT / "var" / "log"
    # Channels with a process of their own (`python -m bot channel <name>`).
    channel_workers: list[str] = field(default_factory=list)
    # Run `python -m bot deliveries` (needed as soon as any channel can send).
    deliveries: bool = False
    # Run `python -m bot trainer` (the KB learning loop: approved KB changes trained and loaded).
    trainer: bool = False
    # Rasa's --auth-token for its model API; None: a random one per run (Stack.rasa_token).
    rasa_token: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # Only for the Rasa process (e.g. CRM_ENCODER_BACKEND for the benchmark's baseline).
    rasa_extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def throwaway(cls, model: Path, work: Path, **overrides: Any) -> "StackConfig":
        """A stack for a test or a measurement: a migrated SQLite store, Rasa's tracker and the logs
        in ``work``, free loopback ports and a random API key, so it never touches the city's data
        or collides with a running assistant."""
        from bot.store.db import upgrade_database

        database_url = f"sqlite:///{work / 'crm.db'}"
        upgrade_database(database_url)
        fields: dict[str, Any] = dict(
            model=model, database_url=database_url, api_key=secrets.token_hex(32), tracker_db=work / "tracker.db",
            api_port=free_port(), rasa_port=free_port(), action_port=free_port(), log_dir=work / "log",
        )
        return cls(**{**fields, **overrides})

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://{self.host}:{self.action_port}"


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
                "CRM_RASA_URL": c.rasa_url,
                "CRM_API_HOST": c.host,
                "CRM_API_PORT": str(c.api_port),
                "CRM_ACTION_SERVER_PORT": str(c.action_port),
            }
        )
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
        try:
            self._spawn(
                "actions",
                [str(APP_PYTHON), "-m", "rasa_sdk", "--actions", "actions", "--port", str(c.action_port), "--quiet"],
                # rasa-sdk listens on all interfaces unless told otherwise; the action server
                # has no authentication, so it must stay on loopback.
                {**self._app_env(), "SANIC_HOST": c.host},
            )
            rasa_cmd = [
                str(RASA_BIN), "run", "--model", str(c.model), "--endpoints", "endpoints.yml",
                "--credentials", "credentials.yml", "--interface", c.host, "--port", str(c.rasa_port),
                "--log-file", str(c.log_dir / "rasa-debug.log"),
            ]
            # --- Rasa's HTTP API: the trainer's PUT /model and GET /status, behind the token ---
            if c.rasa_http_api:
                rasa_cmd.append("--enable-api")  # open, with /model/parse: tuning and evaluation only
                rasa_token_env: dict[str, str] = {}
            else:
                rasa_cmd, rasa_token_env = with_auth_token(rasa_cmd, self.rasa_token)
            # --- end of Rasa's HTTP API ---
            self._spawn(
                "rasa",
                rasa_cmd,
                rasa_env(
                    {
                        "RASA_ACTION_ENDPOINT": f"{c.action_url}/webhook",
                        "RASA_TRACKER_DB": str(c.tracker_db),
                        **rasa_token_env,
                        **c.rasa_extra_env,
                    }
                ),
            )
            self._spawn(
                "api",
                [str(APP_PYTHON), "-m", "uvicorn", "bot.api.main:create", "--factory", "--host", c.host, "--port", str(c.api_port),
                 "--no-access-log", "--log-level", "warning"],
                self._app_env(),
            )
            for name in c.channel_workers:
                self._spawn(f"channel-{name}", [str(APP_PYTHON), "-m", "bot", "channel", name], self._app_env())
            if c.deliveries:
                self._spawn("deliveries", [str(APP_PYTHON), "-m", "bot", "deliveries"], self._app_env())
            if c.trainer:
                self._spawn("trainer", [str(APP_PYTHON), "-m", "bot", "trainer"],
                            {**self._app_env(), "CRM_RASA_TOKEN": self.rasa_token})
            deadline = time.monotonic() + timeout
            self._wait(f"{c.action_url}/health", deadline)
            self._wait(f"{c.rasa_url}/", deadline)
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
