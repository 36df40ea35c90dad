"""Service settings, read from the environment (prefix ``BORDER_``) or passed in by tests."""

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service, the CLI and the tests configure. Nothing reads the environment
    except through this class, and nothing builds a resource when it is constructed."""

    model_config = SettingsConfigDict(env_prefix="BORDER_", extra="ignore")

    data_dir: Path = Field(
        default=Path("var"),
        description="Embedded database, master key file and gallery snapshots live here.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL; unset means the embedded server under data_dir/pg.",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description=(
            "Master key ring from a secret store: 'VERSION:BASE64KEY' entries joined by commas,"
            " or one bare base64 key (version 1). Unset means data_dir/master.key."
        ),
    )
    pool_min_size: int = Field(default=2, ge=1)
    pool_max_size: int = Field(default=10, ge=1)
    pool_timeout_s: float = Field(
        default=5.0, gt=0, description="Wait for a free connection before answering 503."
    )
    log_level: str = Field(default="INFO")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level
