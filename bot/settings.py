"""One typed settings object for the whole application.

Values come from the environment (prefix ``CRM_``) or a ``.env`` file in the
project root. Secrets are validated when the settings are built so that a
misconfigured deployment fails at start-up instead of on the first citizen
message.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Values that people copy from examples and forget to change.
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "placeholder", "xxx", "todo", "your-api-key"}


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

    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout_seconds: float = 30.0
    action_server_port: int = 5055

    # Channel names the generic API accepts; adapters for some of them arrive later.
    channels: str = "web,sms,api,telegram,whatsapp,email"

    # Response commitment told to the citizen when a ticket is opened.
    response_commitment_hours: float = 24.0
    # Faster commitment for urgent tickets (vulnerable citizens, safety hazards).
    urgent_commitment_hours: float = 4.0
    # Messages from the same identity within this window belong to one conversation;
    # they form the transcript attached to a new ticket.
    conversation_window_minutes: int = 30
    # Longer texts are stored whole but escalated without classification.
    max_classified_chars: int = 2000
    # Requests whose body is larger than this are refused with 413.
    max_body_bytes: int = 1_000_000

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

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]

    @property
    def channel_list(self) -> list[str]:
        return [c.strip() for c in self.channels.split(",") if c.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
