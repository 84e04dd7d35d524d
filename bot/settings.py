"""One typed settings object for the whole application.

Values come from the environment (prefix ``CRM_``) or a ``.env`` file in the
project root. Secrets are validated when the settings are built so that a
misconfigured deployment fails at start-up instead of on the first citizen
message.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Values that people copy from examples and forget to change.
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "placeholder", "xxx", "todo", "your-api-key"}


# (channel, the setting that turns it on, settings it then requires)
_CHANNEL_REQUIREMENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Telegram", "telegram_bot_token", ("telegram_bot_token",)),
    (
        "WhatsApp",
        "whatsapp_access_token",
        ("whatsapp_access_token", "whatsapp_app_secret", "whatsapp_verify_token", "whatsapp_phone_number_id"),
    ),
    (
        "email",
        "imap_host",
        ("email_address", "imap_user", "imap_password", "smtp_host"),
    ),
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CRM_",
        env_file=PROJECT_ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'crm.db'}"
    kb_dir: Path = PROJECT_ROOT / "knowledge_base"

    # Comma-separated API keys accepted by the generic channel API.
    api_keys: SecretStr = Field(default=SecretStr(""))
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    # One or more Rasa base URLs, comma-separated. The API sends a conversation's turns to one of
    # them, chosen by the sender so that a conversation stays on one process while it is up, and
    # moves on to the next when that one does not answer (bot.core.rasa_client).
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout_seconds: float = 30.0
    action_server_port: int = 5055

    # --- Scale-out (docs/operations.md) ---------------------------------------------------
    # Redis: Rasa's lock store, which keeps one conversation's turns in order across several
    # Rasa processes, and the limits that several API workers must share. Without it, locks
    # and limits live in each process, which is right for one process and wrong for several.
    redis_url: str | None = None
    # How many of each process `bot run` starts on this machine. More than one Rasa process
    # needs Redis (above); on two cores one of each is fastest (results/scale.md).
    rasa_processes: int = Field(default=1, ge=1, le=16)
    action_servers: int = Field(default=1, ge=1, le=16)
    api_workers: int = Field(default=1, ge=1, le=32)

    # --- The KB learning loop (bot/modelbuilds, docs/knowledge-base.md) -----------------------
    # Rasa's --auth-token, for its model API (PUT /model, GET /status) that the trainer uses.
    # scripts/setup.sh writes a random one to .env; without it `bot run` makes one per run
    # (then `python -m bot model rollback` cannot reach Rasa from another terminal).
    rasa_token: SecretStr | None = None
    # Where trained models are written and kept (a rollback needs the older files).
    models_dir: Path = PROJECT_ROOT / "models"
    # How long one Rasa process may take to load a model (PUT /model answers when it is loaded).
    model_load_timeout_seconds: float = Field(default=300.0, gt=0)
    # How often the trainer looks for approved KB changes to train.
    trainer_poll_seconds: float = Field(default=2.0, gt=0, le=3600)

    # Channel names the generic API accepts; adapters for some of them arrive later.
    channels: str = "web,sms,api,telegram,whatsapp,email"

    # Response commitment told to the citizen when a ticket is opened.
    response_commitment_hours: float = 24.0
    # Faster commitment for urgent tickets (vulnerable citizens, safety hazards).
    urgent_commitment_hours: float = 4.0
    # When the assistant is unsure it asks "Do you mean ...?" (bot.core.clarification). An offer
    # the citizen neither picks from nor declines within this time becomes a ticket.
    clarification_timeout_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    # Messages from the same identity within this window belong to one conversation;
    # they form the transcript attached to a new ticket.
    conversation_window_minutes: int = 30
    # Longer texts are stored whole but escalated without classification.
    max_classified_chars: int = 2000
    # Requests whose body is larger than this are refused with 413.
    max_body_bytes: int = 1_000_000

    # Every outbound network call (channel APIs, SMTP, IMAP) uses this timeout unless a
    # channel needs its own.
    network_timeout_seconds: float = 15.0
    # Outbound messages that fail are retried with exponential backoff up to this many attempts.
    delivery_max_attempts: int = 8
    delivery_backoff_seconds: float = 5.0
    delivery_backoff_max_seconds: float = 3600.0

    # --- Telegram (off unless a token is set) -----------------------------------------
    telegram_bot_token: SecretStr | None = None
    # python-telegram-bot's base_url: tests point it at a local stand-in for the Bot API.
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_mode: Literal["polling", "webhook"] = "polling"
    # Public HTTPS URL Telegram posts updates to in webhook mode (served by the API).
    telegram_webhook_url: str | None = None
    # Checked against X-Telegram-Bot-Api-Secret-Token on every webhook request.
    telegram_webhook_secret: SecretStr | None = None
    # Polling mode: pause between two getUpdates calls. 0 asks again at once; Telegram holds
    # each call open until an update arrives, so 0 costs nothing and answers fastest.
    telegram_poll_interval_seconds: float = Field(default=0.0, ge=0.0)
    # How long Telegram is asked again for an update whose message cannot be stored (the
    # database is down) before it is given up as lost: one message that can never be stored
    # must not hold back the others for the 24 hours Telegram keeps updates.
    telegram_retry_unstored_seconds: float = Field(default=900.0, ge=0.0)

    # --- WhatsApp Cloud API (off unless an access token is set) -------------------------
    whatsapp_access_token: SecretStr | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_graph_url: str = "https://graph.facebook.com/v21.0"
    # Approved message template used outside the 24-hour customer-service window.
    whatsapp_template_name: str | None = None
    whatsapp_template_language: str = "en"
    # What fills the template's body variables {{1}}, {{2}}...: comma-separated, each "ticket"
    # (the ticket ID, or "your message") or "text" (the reply on one line). Without "text" the
    # reply itself is sent when the citizen writes again and the window reopens.
    whatsapp_template_parameters: str = Field(default="ticket", pattern=r"^\s*((ticket|text)\s*(,\s*(ticket|text)\s*)*)?$")

    # --- Email (off unless an IMAP host is set) ------------------------------------------
    email_address: str | None = None
    imap_host: str | None = None
    imap_port: int = 993
    imap_security: Literal["tls", "starttls", "none"] = "tls"
    imap_user: str | None = None
    imap_password: SecretStr | None = None
    imap_mailbox: str = "INBOX"
    imap_poll_seconds: float = 30.0
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: Literal["tls", "starttls", "none"] = "starttls"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    # Automatic replies per sender per hour; more is a mail loop or abuse.
    email_replies_per_sender_per_hour: int = 5
    # CA certificates (PEM) to trust for IMAP/SMTP TLS besides the system's, e.g. a city's own CA.
    email_tls_ca_file: Path | None = None
    # Our replies are also sent to our own address; the worker files that copy here. It is the
    # evidence, after a crash in mid-send, that a reply already went out (docs/channel-email.md).
    email_sent_mailbox: str = "Sent"
    # Display name on replies ("City Hall <info@city.example>").
    email_from_name: str | None = None

    # --- Linking a citizen's identities (bot/identity) -----------------------------------
    # Key for the hashes of one-time link codes; defaults to one derived from CRM_API_KEYS
    # (then rotating the API keys only voids codes of the last 15 minutes).
    link_code_secret: SecretStr | None = None

    # --- Agent console (/console) ----------------------------------------------------------
    # Send the session cookie only over HTTPS: turn on when the console is served behind TLS.
    console_cookie_secure: bool = False
    # A session ends after this long without a request, and after the absolute limit in any case.
    console_session_idle_minutes: int = 60
    console_session_max_hours: int = 12
    # Sign-in is refused for a while after this many failures in the window (per username, per address).
    console_signin_max_failures: int = 5
    console_signin_max_failures_per_ip: int = 20
    console_signin_window_minutes: int = 15
    # How often an open queue page asks for new escalations.
    console_poll_seconds: float = 10.0
    # Times in the console are shown in this zone (IANA name); the store keeps UTC.
    console_timezone: str = "UTC"

    @field_validator("api_keys")
    @classmethod
    def _no_placeholder_keys(cls, value: SecretStr) -> SecretStr:
        keys = [k.strip() for k in value.get_secret_value().split(",")]
        if not any(keys) or any(k.lower() in _PLACEHOLDERS for k in keys):
            raise ValueError(
                "CRM_API_KEYS must hold at least one real API key (comma-separated); "
                "`make setup` writes a random one to .env"
            )
        if any(len(k) < 16 for k in keys):
            raise ValueError("every key in CRM_API_KEYS must be at least 16 characters long")
        return value

    @field_validator("rasa_token")
    @classmethod
    def _real_rasa_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value().strip()
        if token.lower() in _PLACEHOLDERS or len(token) < 16 or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
            raise ValueError(
                "CRM_RASA_TOKEN must be at least 16 characters from A-Z, a-z, 0-9, _ and - (it goes into URLs); "
                "`make setup` writes a random one to .env"
            )
        return SecretStr(token)

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret_format(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram accepts 1-256 of these characters; a short secret could be guessed.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", value.get_secret_value()):
            raise ValueError("CRM_TELEGRAM_WEBHOOK_SECRET must be 16 to 256 characters from A-Z, a-z, 0-9, _ and -")
        return value

    @model_validator(mode="after")
    def _complete_channels(self) -> "Settings":
        """A channel is off until its first setting is given; then all it needs must be there."""
        problems: list[str] = []
        for channel, switch, required in _CHANNEL_REQUIREMENTS:
            if getattr(self, switch) is None:
                continue
            for name in required:
                value = getattr(self, name)
                raw = value.get_secret_value() if isinstance(value, SecretStr) else value
                if raw is None or str(raw).strip().lower() in _PLACEHOLDERS:
                    problems.append(f"CRM_{name.upper()} (needed by the {channel} channel)")
        if self.telegram_bot_token is not None and self.telegram_mode == "webhook":
            for name in ("telegram_webhook_url", "telegram_webhook_secret"):
                value = getattr(self, name)
                raw = value.get_secret_value() if isinstance(value, SecretStr) else value
                if raw is None or str(raw).strip().lower() in _PLACEHOLDERS:
                    problems.append(f"CRM_{name.upper()} (needed by Telegram webhook mode)")
        if self.rasa_processes > 1 and not self.redis_url:
            problems.append("CRM_REDIS_URL (needed by CRM_RASA_PROCESSES > 1: Rasa's lock store)")
        if problems:
            raise ValueError("missing or placeholder settings: " + "; ".join(problems))
        return self

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_bot_token is not None

    @property
    def whatsapp_enabled(self) -> bool:
        return self.whatsapp_access_token is not None

    @property
    def email_enabled(self) -> bool:
        return self.imap_host is not None

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]

    @property
    def rasa_url_list(self) -> list[str]:
        return [u.strip().rstrip("/") for u in self.rasa_url.split(",") if u.strip()]

    @property
    def channel_list(self) -> list[str]:
        return [c.strip() for c in self.channels.split(",") if c.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
