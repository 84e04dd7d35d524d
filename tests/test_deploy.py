"""The production deployment files (Dockerfile, deploy/) say only what the application can do.

No image is built and no container started here (no registry is reachable from the test
machines); instead every setting the files set must be a field of Settings, every command they
run must parse with the app's own argparse, the Caddyfile must proxy the API and nothing else,
and the Dockerfile may only copy what exists. Where Docker Compose, Caddy or systemd-analyze
are installed they check their own files too; where not, only that part is skipped.
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import build_parser
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
COMPOSE = DEPLOY / "compose.yaml"
CADDYFILE = DEPLOY / "Caddyfile"
ENV_EXAMPLE = DEPLOY / "env.example"
SYSTEMD_ENV_EXAMPLE = SYSTEMD / "crm.env.example"
DOCKERFILE = ROOT / "Dockerfile"

# `python -m bot` commands the deployment runs that other branches add (the lead's scale-out:
# api, rasa, actions; the alerts' scheduler; the model loop's trainer). Empty this when they are
# merged: from then on their full command lines must parse like every other.
PENDING_COMMANDS: set[str] = set()
# Settings the deployment sets that another branch adds (the model loop's Rasa token).
PENDING_SETTINGS: set[str] = set()

APP_IMAGE = "${ASSISTANT_IMAGE:-citizen-assistant:latest}"
LONG_RUNNING = {"actions", "rasa-1", "rasa-2", "api", "deliveries", "scheduler", "trainer",
                "channel-telegram", "channel-email"}
ONE_SHOT = {"migrate", "model"}
# Template instances the docs and units use, for checking templated command lines.
INSTANCES = {"crm-rasa@.service": ["5005", "5006"], "crm-actions@.service": ["5055"],
             "crm-channel@.service": ["telegram", "email"]}


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text("utf-8"))


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _env_lines(path: Path, *, commented: bool) -> dict[str, str]:
    """KEY=value lines of an env file; with ``commented`` also the ``#KEY=value`` options."""
    pattern = re.compile(r"^(#)?([A-Z][A-Z0-9_]*)=(.*)$")
    found = {}
    for line in path.read_text("utf-8").splitlines():
        match = pattern.match(line.strip())
        if match and (commented or not match.group(1)):
            found[match.group(2)] = match.group(3)
    return found


def _interpolate(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)(?::?[-?][^}]*)?\}", lambda m: env.get(m.group(1), ""), value)


def _unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit as sections of (key, value) pairs (keys may repeat, unlike configparser's)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None and "=" in line, f"{path.name}:{number}: not 'Key=value' in a section: {raw!r}"
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return sections


def _units() -> dict[str, dict[str, list[tuple[str, str]]]]:
    return {p.name: _unit(p) for p in sorted(SYSTEMD.iterdir()) if p.suffix in {".service", ".target"}}


def _values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text("utf-8"))
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


# --- the commands ------------------------------------------------------------------------------


def _bot_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after ``python -m bot``) for every app command the deployment runs."""
    commands: list[tuple[str, list[str]]] = []
    for name, service in _services().items():
        if service.get("image") != APP_IMAGE:
            continue
        argv = service["command"]
        assert argv[:3] == ["python", "-m", "bot"], f"compose service {name} does not run a `python -m bot` command"
        commands.append((f"compose service {name}", argv[3:]))
    for name, unit in _units().items():
        for exec_start in _values(unit.get("Service", []), "ExecStart"):
            argv = shlex.split(exec_start)
            assert argv[:3] == ["/opt/crm/.venv/bin/python", "-m", "bot"], f"{name}: {exec_start}"
            for instance in INSTANCES.get(name, ["%i"]):
                commands.append((f"unit {name} ({instance})", [a.replace("%i", instance) for a in argv[3:]]))
    for keyword, rest in _dockerfile_instructions():
        if keyword == "CMD":
            argv = json.loads(rest)
            commands.append(("Dockerfile CMD", argv[argv.index("bot") + 1:]))
        if keyword == "RUN":
            for match in re.finditer(r"python -m bot ((?:[a-z-]+ ?)+)", rest):
                commands.append(("Dockerfile RUN", match.group(1).split()))
    return commands


def test_every_command_is_one_the_app_has() -> None:
    parser = build_parser()
    groups = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    commands = _bot_commands()
    assert len(commands) > 15
    for where, argv in commands:
        if argv[0] in PENDING_COMMANDS:
            assert argv[0] not in groups, f"`bot {argv[0]}` exists now: remove it from PENDING_COMMANDS"
            continue
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{where}: `python -m bot {' '.join(argv)}` is not a command of bot/cli.py")


def test_each_process_command_is_run_somewhere() -> None:
    """Every process the assistant consists of has a compose service and a systemd unit."""
    needed = {"db upgrade", "train", "api", "rasa", "actions", "deliveries", "scheduler", "trainer",
              "channel telegram", "channel email"}
    for source in ("compose service", "unit"):
        ran = {" ".join(a for a in argv if not a.startswith("--") and not a.isdigit())
               for where, argv in _bot_commands() if where.startswith(source)}
        assert needed <= ran, f"{source}s lack {needed - ran}"


# --- the settings ------------------------------------------------------------------------------


def _crm_names(text: str) -> set[str]:
    return set(re.findall(r"\bCRM_[A-Z0-9_]*[A-Z0-9]\b", text))


def test_every_crm_variable_is_a_setting() -> None:
    fields = {f"CRM_{name.upper()}" for name in Settings.model_fields}
    assert not PENDING_SETTINGS & fields, "a pending setting exists now: remove it from PENDING_SETTINGS"
    files = [COMPOSE, ENV_EXAMPLE, SYSTEMD_ENV_EXAMPLE, *sorted(SYSTEMD.iterdir())]
    for path in files:
        unknown = _crm_names(path.read_text("utf-8")) - fields - PENDING_SETTINGS
        assert not unknown, f"{path.relative_to(ROOT)} names settings that bot/settings.py does not have: {unknown}"
    # The compose file's environment, after YAML merges, too (not only the text).
    for name, service in _services().items():
        unknown = {k for k in service.get("environment", {}) if k.startswith("CRM_")} - fields - PENDING_SETTINGS
        assert not unknown, f"compose service {name}: {unknown}"


def _site_env(*, keep: str | None = None) -> dict[str, str]:
    """The environment of the compose API service from env.example with every option on and
    every "change-me" replaced by a random secret, except the one named ``keep``."""
    example = {
        k: (secrets.token_urlsafe(24) if v == "change-me" and k != keep else v)
        for k, v in _env_lines(ENV_EXAMPLE, commented=True).items()
    }
    env = dict(example)
    for key, value in _services()["api"]["environment"].items():
        env[key] = _interpolate(str(value), example)
    return {k: v for k, v in env.items() if k.startswith("CRM_")}


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in os.environ if k.startswith("CRM_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


_PLACEHOLDER_KEYS = sorted(k for k, v in _env_lines(ENV_EXAMPLE, commented=True).items() if v == "change-me")


@pytest.mark.parametrize("key", _PLACEHOLDER_KEYS)
def test_each_env_example_placeholder_is_refused(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if key in PENDING_SETTINGS:
        pytest.skip(f"{key} is not a setting on this branch yet")
    with pytest.raises(ValueError) as raised:
        _settings_from(_site_env(keep=key), monkeypatch)
    setting = "CRM_DATABASE_URL" if key == "POSTGRES_PASSWORD" else key
    assert setting in str(raised.value) or setting.lower().removeprefix("crm_") in str(raised.value)


def test_env_example_with_real_secrets_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings_from(_site_env(), monkeypatch)
    assert settings.database_url.startswith("postgresql+psycopg://crm:")
    assert settings.rasa_url_list == ["http://rasa-1:5005", "http://rasa-2:5005"]
    assert settings.action_server_base_url == "http://actions:5055"
    assert settings.redis_url and settings.telegram_enabled and settings.whatsapp_enabled and settings.email_enabled


def test_systemd_env_example_is_refused_until_filled(monkeypatch: pytest.MonkeyPatch) -> None:
    example = _env_lines(SYSTEMD_ENV_EXAMPLE, commented=False)
    with pytest.raises(ValueError):
        _settings_from({k: v for k, v in example.items() if k.startswith("CRM_")}, monkeypatch)
    filled = {k: v.replace("change-me", secrets.token_urlsafe(24)) for k, v in example.items()}
    settings = _settings_from(filled, monkeypatch)
    assert settings.api_host == "127.0.0.1" and settings.action_server_base_url == "http://127.0.0.1:5055"


def test_action_server_url_defaults_to_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    key = {"CRM_API_KEYS": "k" * 20}
    assert _settings_from(key, monkeypatch).action_server_base_url == "http://127.0.0.1:5055"
    moved = _settings_from({**key, "CRM_ACTION_SERVER_PORT": "5056"}, monkeypatch)
    assert moved.action_server_base_url == "http://127.0.0.1:5056"
    remote = _settings_from({**key, "CRM_ACTION_SERVER_URL": "http://actions:5055/"}, monkeypatch)
    assert remote.action_server_base_url == "http://actions:5055"


@pytest.mark.parametrize("password", ["change-me", "changeme", "secret", "change%2Dme"])
def test_placeholder_database_password_is_refused(password: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="CRM_DATABASE_URL"):
        _settings_from({"CRM_API_KEYS": "k" * 20, "CRM_DATABASE_URL": f"postgresql://crm:{password}@db/crm"},
                       monkeypatch)


# --- compose -----------------------------------------------------------------------------------


def test_compose_services() -> None:
    services = _services()
    assert LONG_RUNNING | ONE_SHOT | {"postgres", "redis", "caddy"} == set(services)
    # Only the TLS proxy is reachable from outside.
    assert [name for name, s in services.items() if s.get("ports")] == ["caddy"]
    for name in LONG_RUNNING | {"postgres", "redis", "caddy"}:
        assert services[name]["restart"] == "unless-stopped", name
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no", name
    for name in ("postgres", "redis", "actions", "rasa-1", "rasa-2", "api"):
        assert services[name]["healthcheck"]["test"], name
    for name in LONG_RUNNING:
        assert "migrate" in services[name]["depends_on"], f"{name} must wait for the migration"
    # Rasa and the action server only on the internal network, which has no way out.
    compose = _compose()
    assert compose["networks"]["backend"]["internal"] is True
    for name in ("rasa-1", "rasa-2", "actions", "postgres", "redis", "trainer", "migrate", "model"):
        assert services[name].get("networks", ["backend"]) == ["backend"], name
    assert services["caddy"]["networks"] == ["edge"] and "edge" in services["api"]["networks"]
    assert {"pgdata", "models", "kb"} <= set(compose["volumes"])
    # Every Rasa service is in CRM_RASA_URL, and only they are.
    rasa_urls = services["api"]["environment"]["CRM_RASA_URL"].split(",")
    assert sorted(rasa_urls) == sorted(f"http://{n}:5005" for n in services if n.startswith("rasa-"))
    # The edge subnet uvicorn trusts for X-Forwarded-For is the one compose gives the edge network.
    subnet = compose["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert services["api"]["environment"]["FORWARDED_ALLOW_IPS"] == subnet
    assert services["channel-telegram"]["profiles"] == ["telegram"]
    assert services["channel-email"]["profiles"] == ["email"]


def _compose_tool() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_validates(tmp_path: Path) -> None:
    tool = _compose_tool()
    if tool is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    text = COMPOSE.read_text("utf-8")
    if tool[-1].endswith("docker-compose"):
        text = re.sub(r"(?m)^name:.*$", "", text)  # Compose v1 predates the top-level name
    (tmp_path / "compose.yaml").write_text(text, "utf-8")
    shutil.copy(CADDYFILE, tmp_path / "Caddyfile")
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    result = subprocess.run([*tool, "-f", str(tmp_path / "compose.yaml"), "config", "-q"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- Caddy -------------------------------------------------------------------------------------

PUBLIC = ["/api/v1/messages", "/api/v1/tickets/K7M-39Q-XD2", "/console", "/console/queue/waste",
          "/console/static/console.css", "/chat", "/chat/messages", "/chat/static/chat.js"]
# The metrics, the API's own documentation, the probes, and what Rasa's HTTP API would answer.
NOT_PUBLIC = ["/metrics", "/docs", "/openapi.json", "/health", "/ready", "/model", "/status", "/"]


def _webhook_paths() -> list[str]:
    from bot.channels.telegram.webhook import WEBHOOK_PATH
    from bot.channels.whatsapp.webhook import PATH

    return [WEBHOOK_PATH, PATH]


def _proxied(patterns: list[str], path: str) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def _caddy_routes(node: Any, found: list[tuple[list[str], list[str]]], paths: list[str]) -> None:
    """(path patterns in force, upstreams) for every reverse_proxy of Caddy's adapted JSON."""
    if isinstance(node, dict):
        here = paths
        for matcher in node.get("match", []):
            if "path" in matcher:
                here = matcher["path"]
        if node.get("handler") == "reverse_proxy":
            found.append((here, [u["dial"] for u in node["upstreams"]]))
        for value in node.values():
            _caddy_routes(value, found, here)
    elif isinstance(node, list):
        for value in node:
            _caddy_routes(value, found, paths)


def _proxies() -> list[tuple[list[str], list[str]]]:
    caddy = shutil.which("caddy")
    if caddy:
        env = {**os.environ, "SITE_ADDRESS": "assistant.city.example", "ACME_EMAIL": "it@city.example"}
        adapted = subprocess.run([caddy, "adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                                 capture_output=True, text=True, env=env, timeout=60, check=True)
        found: list[tuple[list[str], list[str]]] = []
        _caddy_routes(json.loads(adapted.stdout), found, [])
        return found
    # Without Caddy: the Caddyfile as text (one named path matcher, reverse_proxy lines).
    text = CADDYFILE.read_text("utf-8")
    matchers = re.findall(r"^\s*@\w+ path (.+)$", text, re.M)
    upstreams = re.findall(r"^\s*reverse_proxy (\S+)", text, re.M)
    return [(matchers[0].split(), upstreams)]


def test_caddy_proxies_only_the_api() -> None:
    proxies = _proxies()
    assert proxies, "the Caddyfile proxies nothing"
    api_port = _services()["api"]["environment"]["CRM_API_PORT"]
    for patterns, upstreams in proxies:
        assert upstreams == [f"api:{api_port}"], f"Caddy proxies to {upstreams}: only the API may be reachable"
        assert patterns, "a reverse_proxy without a path matcher would expose every route of the API"
    patterns = [p for found, _ in proxies for p in found]
    for path in PUBLIC + _webhook_paths():
        assert _proxied(patterns, path), f"{path} is not reachable through Caddy"
    for path in NOT_PUBLIC:
        assert not _proxied(patterns, path), f"{path} must not be reachable through Caddy"
    text = CADDYFILE.read_text("utf-8")
    assert "5005" not in text and "5055" not in text


# --- systemd -----------------------------------------------------------------------------------


def test_systemd_units() -> None:
    units = _units()
    services = {n: u for n, u in units.items() if n.endswith(".service")}
    assert {"crm-rasa@.service", "crm-actions@.service", "crm-api.service", "crm.target"} <= set(units)
    for name, unit in services.items():
        service = dict(unit["Service"])
        assert _values(unit["Unit"], "Description"), name
        assert service["User"] == "crm" and "/etc/crm/crm.env" in _values(unit["Service"], "EnvironmentFile"), name
        for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                           "PrivateTmp": "yes", "CapabilityBoundingSet": ""}.items():
            assert service.get(key) == value, f"{name}: {key}={value} missing"
        if service["Type"] == "oneshot":
            assert service["RemainAfterExit"] == "yes", name
        else:
            assert service["Restart"] == "on-failure", name
            assert "crm-migrate.service" in " ".join(_values(unit["Unit"], "Requires")), name
        assert _values(unit["Unit"], "PartOf") == ["crm.target"], name
        assert ("WantedBy", "crm.target") in unit.get("Install", []), name
    wanted = _values(units["crm.target"]["Unit"], "Wants")[0].split()
    for name in wanted:
        template = re.sub(r"@[^.]+\.", "@.", name)
        assert template in units, f"crm.target wants {name}, which has no unit file"
    assert ("WantedBy", "multi-user.target") in units["crm.target"]["Install"]
    # configparser reads them too (the format tools such as Ansible's ini module expect).
    for path in (p for p in SYSTEMD.iterdir() if p.suffix in {".service", ".target"}):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(path, encoding="utf-8")
        assert parser.has_section("Unit"), path.name


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify insists that ExecStart's program and the EnvironmentFile's place exist: point the units
    # at a stand-in tree with this checkout's interpreter.
    opt, etc, units = tmp_path / "opt", tmp_path / "etc", tmp_path / "units"
    (opt / ".venv" / "bin").mkdir(parents=True)
    (opt / ".venv" / "bin" / "python").symlink_to(Path(os.path.realpath(ROOT / ".venv" / "bin" / "python")))
    etc.mkdir()
    (etc / "crm.env").write_text("", "utf-8")
    units.mkdir()
    for path in SYSTEMD.iterdir():
        if path.suffix in {".service", ".target"}:
            text = path.read_text("utf-8").replace("/opt/crm", str(opt)).replace("/etc/crm", str(etc))
            (units / path.name).write_text(text, "utf-8")
    names = [n for n in sorted(os.listdir(units)) if "@." not in n]
    names += [n.replace("@.", f"@{i}.") for n, instances in INSTANCES.items() for i in instances]
    result = subprocess.run([analyze, "verify", "--man=no", *[f"./{n}" for n in names]], cwd=units,
                            capture_output=True, text=True, timeout=120)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 0 and not problems, "\n".join(problems)


# --- the Dockerfile ----------------------------------------------------------------------------

BUILD_STAGE_MAKES = {".venv", ".venv-rasa", "var", "models", ".rasa"}


def _dockerignored() -> set[str]:
    lines = (ROOT / ".dockerignore").read_text("utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_dockerfile_copies_only_what_exists() -> None:
    ignored = _dockerignored()
    in_build: set[str] = set()
    stage = 0
    for keyword, rest in _dockerfile_instructions():
        if keyword == "FROM":
            stage += 1
            continue
        if keyword != "COPY":
            continue
        args = [a for a in rest.split() if not a.startswith("--")]
        sources, destination = args[:-1], args[-1]
        if "--from=build" in rest:
            for source in sources:
                top = Path(source).relative_to("/app").parts[0]
                assert top in in_build | BUILD_STAGE_MAKES, f"COPY --from=build {source}: the build stage has no {top}"
            continue
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile: COPY {source}: no such file in the project"
            assert source.split("/")[0] not in ignored, f"Dockerfile: COPY {source}, but .dockerignore leaves it out"
            if stage == 1:
                in_build.add(Path(destination if destination != "./" else source).parts[0])
                in_build.add(source.rstrip("/").split("/")[0])
    assert stage == 2


def test_dockerfile_runs_what_exists_and_installs_what_setup_installs() -> None:
    runs = " ".join(rest for keyword, rest in _dockerfile_instructions() if keyword == "RUN")
    for requirement in re.findall(r"requirements/[\w.-]+\.txt", runs):
        assert (ROOT / requirement).is_file(), requirement
    for module in re.findall(r"python -m (bot[\w.]*)", runs):
        path = ROOT / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), module
    # The same environments as scripts/setup.sh: the same requirement files and the same pins.
    setup = (ROOT / "scripts" / "setup.sh").read_text("utf-8")
    for pinned in re.findall(r"\b[\w-]+==[\d.]+", setup):
        assert pinned in runs, f"scripts/setup.sh installs {pinned}, the Dockerfile does not"
    for requirement in set(re.findall(r"requirements/(?:rasa-lock|rasa-extra)\.txt", setup)):
        assert requirement in runs, requirement
    assert "requirements/app.txt" in runs  # the image needs no test tools (dev.txt)
    for step in ("-m bot.nlu.encoders install", "-m bot.nlu.onnx_encoder export", "-m bot train"):
        assert step in setup and step in runs, step


def test_image_runs_as_a_user_and_carries_no_secrets() -> None:
    instructions = _dockerfile_instructions()
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}
    for keyword, rest in instructions:
        if keyword in {"ENV", "ARG"}:
            assert "CRM_" not in rest and "PASSWORD" not in rest.upper() and "TOKEN" not in rest.upper(), rest
    assert {".env", "**/.env", "var", "models"} <= _dockerignored()


def test_the_image_file_set_runs_the_app(tmp_path: Path) -> None:
    """What the final stage copies is all the app needs: the API imports, the schema migrates, and
    the model trained at build time has the name a training in the checkout gives (no training here)."""
    image = tmp_path / "app"
    image.mkdir()
    for keyword, rest in _dockerfile_instructions():
        if keyword != "COPY" or "--from=build" not in rest:
            continue
        for source in [a for a in rest.split() if not a.startswith("--")][:-1]:
            relative = Path(source).relative_to("/app")
            if relative.parts[0] in BUILD_STAGE_MAKES:
                continue  # environments, encoders, models, caches: made by the build stage itself
            if (ROOT / relative).is_dir():
                shutil.copytree(ROOT / relative, image / relative, ignore=shutil.ignore_patterns("__pycache__", "faq.yml"))
            else:
                shutil.copy2(ROOT / relative, image / relative)
    (image / ".venv").symlink_to(ROOT / ".venv")
    probe = (
        "import sys; from pathlib import Path; import tempfile\n"
        "import bot.api.main, bot.runtime, actions.outcome_action\n"
        "from bot.settings import PROJECT_ROOT\n"
        "from bot.training import stage_training_data, fingerprint\n"
        "from bot.store.db import upgrade_database\n"
        "assert PROJECT_ROOT == Path.cwd(), PROJECT_ROOT\n"
        "upgrade_database(f'sqlite:///{sys.argv[1]}')\n"
        "with tempfile.TemporaryDirectory() as stage:\n"
        "    print(fingerprint(stage_training_data(PROJECT_ROOT / 'knowledge_base', Path(stage))))\n"
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CRM_")}, "CRM_API_KEYS": "k" * 24}
    env.pop("PYTHONPATH", None)
    names = []
    for root in (image, ROOT):
        done = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", probe, str(tmp_path / f"{root.name}.db")],
                              cwd=root, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        names.append(done.stdout.strip())
    assert names[0] == names[1], "the image would train a different model than the checkout"
