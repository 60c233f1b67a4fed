"""Service settings, read from ``NARRATIVES_*`` environment variables by pydantic-settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL_URI = "models:/narrative-classifier@champion"
# The same fallback as the training side, so `narratives train` and `narratives serve` run from
# one folder find the same store without any configuration.
DEFAULT_STORE_FILE = "mlflow.db"
MIB = 1024 * 1024


def _split_csv(value: Any) -> Any:
    """Accept ``"a,b"`` (environment style) as well as a list for list settings."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything an operator can change about the prediction service.

    Every field can be set through an environment variable named ``NARRATIVES_<FIELD>`` (for
    example ``NARRATIVES_MAX_TEXTS=64``); list fields take comma-separated values
    (``NARRATIVES_API_KEYS=key1,key2``). Reading the environment happens when an instance is
    created, never at import time.
    """

    model_config = SettingsConfigDict(env_prefix="NARRATIVES_", extra="ignore")

    model_uri: str = Field(
        default=DEFAULT_MODEL_URI,
        description=(
            "Model to serve: 'models:/<name>@<alias>' or 'models:/<name>/<version>' in the MLflow"
            " registry, or a local folder (or file:// URI) written by classifier.save_model"
            " (manifest.json, pipeline.joblib, scorer.npz)."
        ),
    )
    tracking_uri: str | None = Field(
        default=None,
        description=(
            "MLflow tracking store; when unset, MLFLOW_TRACKING_URI, then mlflow.db (SQLite) in"
            " the working directory."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port to listen on.")
    workers: int = Field(
        default=1, ge=1, description="Worker processes; each loads its own model copy."
    )
    scoring_threads: int = Field(
        default=1,
        ge=1,
        description=(
            "Threads that score requests too large to score on the event loop. Scoring holds"
            " the GIL, so more threads only take turns (and lose time handing it over); add"
            " workers to use more cores."
        ),
    )
    max_texts: int = Field(default=256, ge=1, description="Most texts accepted in one request.")
    max_chars: int = Field(
        default=20_000, ge=1, description="Most characters accepted in one text."
    )
    max_body_bytes: int = Field(
        default=8 * MIB, ge=1, description="Largest request body in bytes, checked before parsing."
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Keys accepted on /v1 routes; when empty, those routes are open.",
    )
    admin_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Keys accepted on admin routes (and on /v1 routes); when empty, admin is off.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Browser origins allowed to call the API (CORS)."
    )
    cache_dir: Path = Field(
        default=Path(".narratives/cache"), description="Where registry models are cached locally."
    )
    require_model: bool = Field(
        default=False,
        description=(
            "Refuse to start when the model cannot be loaded; otherwise start unready (503) and"
            " wait for a reload."
        ),
    )

    fast_start: bool = Field(
        default=False,
        description=(
            "Start from the last good local copy of the registry model (checksum verified, same"
            " store and alias) without waiting for MLflow, then check the registry in the"
            " background and swap in the champion if it has changed. `narratives serve` turns"
            " it on."
        ),
    )

    @field_validator("api_keys", "admin_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("api_keys", "admin_keys")
    @classmethod
    def _no_blank_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        # An empty key would let an empty header through.
        if any(not key.get_secret_value() for key in keys):
            raise ValueError("API keys must not be empty")
        return keys

    def resolved_tracking_uri(self) -> str:
        """The MLflow tracking URI: this setting, else MLFLOW_TRACKING_URI, else the default.

        The default is ``sqlite:///<working directory>/mlflow.db``, as on the training side.
        """
        explicit = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if explicit:
            return explicit
        return f"sqlite:///{Path.cwd().resolve() / DEFAULT_STORE_FILE}"
