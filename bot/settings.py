"""One typed settings object for the whole application.

Values come from the environment (prefix ``CRM_``) or a ``.env`` file in the
project root. Secrets are validated when the settings are built so that a
misconfigured deployment fails at start-up instead of on the first citizen
message.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Values that people copy from examples and forget to change.
# What a city's privacy notice (CRM_PRIVACY_NOTICE) may name: the retention periods, as words.
PRIVACY_NOTICE_PLACEHOLDERS: tuple[str, ...] = ("conversations", "tickets", "email", "trackers", "audit")

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


def _url_password(url: str) -> str | None:
    """The password of a database URL, or None when it has none (or is no URL: the store says so)."""
    try:
        password = urlsplit(url.strip()).password
    except ValueError:
        return None
    return unquote(password) if password is not None else None


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
    # Where Rasa finds the action server (`python -m bot rasa` hands the first to Rasa as its action
    # endpoint; the API's health probe asks all of them). Comma-separated. Unset: the action
    # servers of this machine, http://127.0.0.1:<action_server_port> on (CRM_ACTION_SERVERS of
    # them); in a container deployment another host, e.g. http://actions:5055 (deploy/compose.yaml).
    action_server_url: str | None = None

    # --- Scale-out (docs/operations.md) ---------------------------------------------------
    # Redis: Rasa's lock store, which keeps one conversation's turns in order across several
    # Rasa processes. Without it the locks live in the one Rasa process. (The API's limits and
    # claims are in the database already, shared by every worker.)
    redis_url: str | None = Field(default=None, pattern=r"^redis://")
    # Where Rasa keeps its conversation trackers. Unset: next to the interaction store, in
    # var/rasa_tracker.db with SQLite, in the same database with PostgreSQL (one backup, one
    # place for erasure).
    tracker_database_url: str | None = None
    # How long a Rasa process may hold a conversation's lock. A process that dies holding one
    # (SIGKILL, a crashed host) blocks that conversation's next turns until it expires, so it must
    # be shorter than CRM_RASA_TIMEOUT_SECONDS: the turns waiting behind it are answered instead of
    # timing out. A turn never legitimately takes this long.
    rasa_lock_lifetime_seconds: int = Field(default=20, ge=5)
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
    # The languages citizens are served in (ISO 639-1, comma-separated). Empty: the KB's main
    # language and every language with a ``knowledge_base/languages/<code>.yml`` file. The main
    # language is understood by Rasa, the others by bot.nlu.lexical (docs/knowledge-base.md).
    languages: str = ""
    # A KB entry without an answer in the citizen's language: "main_language" says so in their
    # language and gives the answer in the KB's main language; "hand_over" opens a ticket.
    untranslated_answer: Literal["main_language", "hand_over"] = "main_language"
    # Requests whose body is larger than this are refused with 413.
    max_body_bytes: int = 1_000_000

    # Every outbound network call (channel APIs, SMTP, IMAP) uses this timeout unless a
    # channel needs its own.
    network_timeout_seconds: float = 15.0
    # Outbound messages that fail are retried with exponential backoff up to this many attempts.
    delivery_max_attempts: int = 8
    delivery_backoff_seconds: float = 5.0
    delivery_backoff_max_seconds: float = 3600.0

    # --- Observability (docs/observability.md) ---------------------------------------------
    # Log records as text lines (for a terminal) or one JSON object per line (for production's
    # log store); every process started by `bot run` uses the same.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Bearer token for GET /metrics. Unset, /metrics answers only loopback and private
    # addresses that are not relayed by a proxy; set, it answers whoever sends the token.
    metrics_token: SecretStr | None = None
    # The model file Rasa was started with (`bot run` sets it), reported by /metrics when Rasa's
    # own /status is not enabled.
    rasa_model: str | None = None

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

    # --- Citizens' data rights (bot/privacy) -----------------------------------------------
    # The address citizens reach the API at, for the one-time download link of their data
    # ("https://assist.city.example"); unset: http://CRM_API_HOST:CRM_API_PORT.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    # How long such a link works (it works once in any case).
    export_link_hours: float = Field(default=24.0, gt=0, le=24 * 7)

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

    # --- Commitment alerts and the scheduler (bot/alerts, bot/scheduler; README "Commitment alerts") ---
    # A ticket is "near due" when this share of its commitment has run (business time, pauses excluded).
    alert_near_due_percent: float = Field(default=80.0, gt=0, lt=100)
    # How often `python -m bot scheduler` runs its jobs (alerts, staff e-mail).
    scheduler_interval_seconds: float = Field(default=60.0, ge=1, le=24 * 3600)
    # When a department with `alerts: digest` gets its daily e-mail, in the department's time zone.
    alert_digest_time: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    # Sender of staff alerts; defaults to CRM_EMAIL_ADDRESS. Alerts are e-mailed only when
    # CRM_SMTP_HOST and a sender are set; they are always shown in the console.
    alert_from_address: str | None = None
    # Where the links in alert e-mails point (the console as staff reach it), e.g. https://crm.city.example
    console_public_url: str | None = None
    # Failed alert e-mails are retried with exponential backoff up to this many attempts.
    alert_mail_max_attempts: int = Field(default=10, ge=1)

    # --- Privacy: notice, consent, retention (docs/privacy.md) -----------------------------
    # The privacy notice every identity gets once, with its first answer, and again on "privacy".
    # Unset: the catalogue's text (privacy.notice). Placeholders, all optional, are filled from the
    # retention periods below: {conversations}, {tickets}, {email}, {trackers}, {audit} ("2 years").
    privacy_notice: str | None = None
    # Channels on which the notice is sent as a message on first contact (comma-separated).
    privacy_notice_channels: str = "web,sms,api,telegram,whatsapp,email"
    # Retention, in days (bot.privacy.retention, `python -m bot privacy retention`). Messages of
    # a resolved or closed ticket, counted from the ticket's last change; the ticket itself is then
    # anonymised (texts replaced), so statistics keep their counts. Open tickets are never touched.
    retention_ticket_days: int = Field(default=730, ge=1)
    # Messages that belong to no ticket (answered questions, small talk), from when they were written.
    retention_conversation_days: int = Field(default=365, ge=1)
    # The e-mail channel's copy of each mail (sender, subject, headers, body, attachment names).
    retention_email_days: int = Field(default=90, ge=1)
    # Rasa's conversation trackers (the events table at the tracker store).
    retention_tracker_days: int = Field(default=90, ge=1)
    # The staff audit log.
    retention_audit_days: int = Field(default=1825, ge=1)
    # Console sign-in attempts (username and IP address).
    retention_signin_days: int = Field(default=90, ge=1)
    # Link codes, counted from their expiry; codes that linked two records stay (the merge cites them).
    retention_link_code_days: int = Field(default=7, ge=1)
    # Rows changed per transaction: no huge transaction, no long lock.
    retention_batch_size: int = Field(default=500, ge=1, le=100_000)
    # "Was it solved?" (bot.feedback): a question sent when a ticket is resolved stops waiting for
    # an answer after this many days; a later "yes" or "3" is then an ordinary message.
    feedback_expiry_days: int = Field(default=7, ge=1, le=365)

    # --- Notices and announcements (bot.notices, docs/privacy.md) --------------------------
    # An announcement's messages are spread over time so that the channels' rate limits (and the
    # citizens' phones at 8:00) are not hit at once: at most this many are due per minute.
    announcement_rate_per_minute: int = Field(default=60, ge=1, le=10_000)

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

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("metrics_token")
    @classmethod
    def _real_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            token = value.get_secret_value().strip()
            if token.lower() in _PLACEHOLDERS or len(token) < 16:
                raise ValueError("CRM_METRICS_TOKEN must be a real token of at least 16 characters (or unset)")
        return value

    @field_validator("database_url")
    @classmethod
    def _no_placeholder_database_password(cls, value: str) -> str:
        # deploy/env.example ships "change-me" passwords; a deployment must not run on them.
        password = _url_password(value)
        if password is not None and password.strip().lower() in _PLACEHOLDERS:
            raise ValueError("the password in CRM_DATABASE_URL is a placeholder; set a real one")
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

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, value: str) -> str:
        bad = [c.strip() for c in value.split(",") if c.strip() and not re.fullmatch(r"[a-z]{2}", c.strip().lower())]
        if bad:
            raise ValueError(f"CRM_LANGUAGES takes two-letter ISO 639-1 codes such as en,es; not {', '.join(bad)}")
        return value

    @field_validator("privacy_notice")
    @classmethod
    def _notice_placeholders(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("CRM_PRIVACY_NOTICE is empty: unset it to use the default notice")
        try:
            fields = {field for _lit, field, _spec, _conv in string.Formatter().parse(value) if field is not None}
        except ValueError as exc:
            raise ValueError(f"CRM_PRIVACY_NOTICE cannot be read ({exc}); write a literal brace as {{{{ or }}}}") from None
        unknown = sorted(fields - set(PRIVACY_NOTICE_PLACEHOLDERS))
        if unknown:
            raise ValueError(
                f"CRM_PRIVACY_NOTICE has unknown placeholders {unknown}; "
                f"known: {', '.join('{' + name + '}' for name in PRIVACY_NOTICE_PLACEHOLDERS)}"
            )
        return value

    @model_validator(mode="after")
    def _complete_channels(self) -> "Settings":
        """A channel is off until its first setting is given; then all it needs must be there.
        No secret may keep an example's placeholder, and several Rasa processes need Redis."""
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
        # Any other secret given with an example's value (deploy/env.example ships "change-me").
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value().strip().lower() in _PLACEHOLDERS - {""}:
                problem = f"CRM_{name.upper()} (a placeholder)"
                if not any(p.startswith(f"CRM_{name.upper()} ") for p in problems):
                    problems.append(problem)
        # Only a lock in Redis outlives the process that took it.
        if self.redis_url and self.rasa_lock_lifetime_seconds >= self.rasa_timeout_seconds:
            problems.append("CRM_RASA_LOCK_LIFETIME_SECONDS (must be shorter than CRM_RASA_TIMEOUT_SECONDS)")
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
    def alert_sender(self) -> str | None:
        """The From address of staff alerts, when alerts can be e-mailed at all."""
        sender = (self.alert_from_address or self.email_address or "").strip()
        return sender if self.smtp_host and sender else None

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]

    @property
    def tracker_url(self) -> str:
        """Rasa's tracker store as a URL for Rasa's own SQLAlchemy (1.4, psycopg2)."""
        from sqlalchemy.engine import make_url

        if self.tracker_database_url:
            url = make_url(self.tracker_database_url)
        else:
            url = make_url(self.database_url)
            if url.get_backend_name() == "sqlite":
                store = Path(url.database or "var/crm.db")
                url = url.set(database=str(store.with_name("rasa_tracker.db")))
        if url.get_backend_name() == "postgresql":
            url = url.set(drivername="postgresql")  # Rasa's environment has psycopg2, not psycopg 3
        return url.render_as_string(hide_password=False)

    @property
    def action_server_url_list(self) -> list[str]:
        if self.action_server_url:
            return [u.strip().rstrip("/") for u in self.action_server_url.split(",") if u.strip()]
        return [f"http://127.0.0.1:{self.action_server_port + i}" for i in range(self.action_servers)]

    @property
    def public_base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def rasa_url_list(self) -> list[str]:
        return [u.strip().rstrip("/") for u in self.rasa_url.split(",") if u.strip()]

    @property
    def action_server_base_url(self) -> str:
        """The action server a Rasa process calls."""
        return self.action_server_url_list[0]

    @property
    def privacy_notice_channel_list(self) -> list[str]:
        return [c.strip() for c in self.privacy_notice_channels.split(",") if c.strip()]

    @property
    def language_list(self) -> list[str]:
        """The configured languages as written (empty: decided from the KB, bot.nlu.language)."""
        return [code.strip().lower() for code in self.languages.split(",") if code.strip()]

    @property
    def channel_list(self) -> list[str]:
        return [c.strip() for c in self.channels.split(",") if c.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
