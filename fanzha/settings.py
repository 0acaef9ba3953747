"""One settings object for the whole application (environment prefix FANZHA_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = PACKAGE_DIR / "knowledge" / "model" / "text_model.npz"


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as FANZHA_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="FANZHA_")

    model_path: Path = DEFAULT_MODEL
    typology_dir: Path | None = None
    max_text_chars: int = 1_000_000
    batch_size: int = 2048
