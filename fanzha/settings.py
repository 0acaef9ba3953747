"""One settings object for the whole application (environment prefix FANZHA_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = PACKAGE_DIR / "knowledge" / "model" / "text_model.npz"


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as FANZHA_<NAME> (e.g. FANZHA_DATABASE_URL)."""

    model_config = SettingsConfigDict(env_prefix="FANZHA_")

    model_path: Path = DEFAULT_MODEL
    typology_dir: Path | None = None
    max_text_chars: int = 1_000_000
    batch_size: int = 2048

    # service
    data_dir: Path = Path("fanzha-data")
    database_url: str | None = None  # default: SQLite file in data_dir
    token_ttl_minutes: int = 12 * 60
    max_body_bytes: int = 2 * 1024 * 1024
    max_batch_items: int = 1000
    lookup_rate_per_minute: int = 60
    report_rate_per_minute: int = 10  # public report submissions per client (IP) and minute
    warning_due_minutes: int = 30
    warning_merge_hours: int = 24
    log_json: bool = True

    # money interception (payments/): the bank's ledger (directory of Parquet/CSV files, see
    # fanzha/payments/schema.py) that transfer checks and traces read, and mule scores from `fanzha mules`
    ledger_dir: Path | None = None
    mule_scores_path: Path | None = None
    transfer_rules_path: Path | None = None  # default: the rules bundled in fanzha/knowledge/
    # transfer checks see a warning (预警) raised in another worker process at most this many seconds late
    warning_refresh_seconds: float = 1.0
    # How long a thread may hold the GIL while another waits (Python's default is 5 ms). Request handlers
    # and the group-commit writer take turns at the GIL many times per request; at 5 ms a turn they queue
    # behind each other (a convoy), so the server shortens it. 0 keeps the interpreter's setting.
    gil_switch_interval_ms: float = Field(default=0.5, ge=0, le=100)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        from fanzha.store.db import sqlite_url

        self.data_dir.mkdir(parents=True, exist_ok=True)
        return sqlite_url(self.data_dir)
