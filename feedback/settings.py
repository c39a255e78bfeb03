"""Every FEEDBACK_* setting, read once from the environment or .env and validated at start-up."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from feedback.errors import FeedbackError

# Anonymity floor: below three answers, a requester who knows who was asked can often
# tell who wrote what. Deployments may raise it, never lower it.
MIN_ANONYMITY_K = 3


class SettingsError(FeedbackError):
    """A missing or bad setting; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FEEDBACK_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = "sqlite:///feedback.db"
    base_url: str = "http://127.0.0.1:8000"
    smtp_url: SecretStr | None = None
    mail_from: str = "feedback@localhost"
    secret_key: SecretStr | None = None
    broker_url: str = "memory://"
    anonymity_k: int = Field(default=MIN_ANONYMITY_K)
    session_days: int = Field(default=14, ge=1, le=365)
    # Live: messages a socket may fall behind by before it is closed (1013) to resume by seq.
    live_queue_size: int = Field(default=256, ge=8, le=65536)
    mail_retry_seconds: int = Field(default=30, ge=1)
    mail_max_attempts: int = Field(default=12, ge=1)
    log_format: str = "auto"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        scheme = value.split(":", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"} and not scheme.startswith(
            ("sqlite+", "postgresql+")
        ):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL such as https://feedback.example.com")
        return value.rstrip("/")

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in {"smtp", "smtps", "smtp+starttls"} or not parts.hostname:
            raise ValueError("must look like smtp://user:password@host:port")
        return value

    @field_validator("anonymity_k")
    @classmethod
    def _anonymity_k(cls, value: int) -> int:
        if value < MIN_ANONYMITY_K:
            raise ValueError(f"must be at least {MIN_ANONYMITY_K}")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        if value.split(":", 1)[0] not in {"memory", "redis", "rediss", "postgresql", "postgres"}:
            raise ValueError(
                "must be memory://, redis://host:port/db, rediss://host:port/db (TLS) "
                "or postgresql://..."
            )
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        return Path(path) if path and path != ":memory:" else None

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def resolved_secret_key(self) -> str:
        """The configured key or, when unset, one generated once and kept beside the database."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.sqlite_path
        if path is None:
            raise SettingsError(
                "FEEDBACK_SECRET_KEY must be set when the database is not a SQLite file."
            )
        key_file = path.with_name(path.name + ".secret")
        if key_file.exists():
            return key_file.read_text().strip()
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        key_file.touch(mode=0o600)
        key_file.write_text(key)
        return key


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning validation errors into one sentence naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "FEEDBACK_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"Bad setting {name}: {message}.") from None
