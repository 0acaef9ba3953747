"""`fanzha serve`: run the HTTP API (uvicorn) on a migrated database, with demo accounts by default."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from pathlib import Path
from typing import Annotated

import typer
from fastapi import FastAPI

from fanzha.settings import Settings

NAME = "serve"
FACTORY = "fanzha.commands.serve:app_factory"
_QUERY_SECRET = re.compile(r"((?:token|api_key)=)[^&\s\"]+")


class RedactQuerySecrets(logging.Filter):
    """uvicorn logs each WebSocket URL, and /v1/detect/live may carry the login token in its query."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _QUERY_SECRET.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _setup_logging(settings: Settings) -> None:
    from fanzha.logs import setup_logging

    setup_logging(settings.log_json)
    # Alembic announces each of its plugins at INFO on every start; only the migrations themselves matter.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, RedactQuerySecrets) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(RedactQuerySecrets())


def app_factory() -> FastAPI:
    """What each uvicorn worker runs: settings from the environment, JSON logs with personal data masked."""
    from fanzha.api.app import create_app

    settings = Settings()
    _setup_logging(settings)
    app = create_app(settings)
    return app


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _prepare(settings: Settings, demo: bool) -> tuple[bool, bool]:
    """Migrate the database and seed the demo users; returns (seeded now, demo logins usable)."""
    from fanzha.store.db import make_engine, make_sessionmaker, migrate
    from fanzha.store.demo import DEMO_USERS, seed_demo
    from fanzha.store.repo_users import get_user

    url = settings.resolved_database_url()
    migrate(url)
    if not demo:
        return False, False
    engine = make_engine(url)
    try:
        sessions = make_sessionmaker(engine)
        seeded = seed_demo(sessions)
        with sessions() as session:
            present = get_user(session, DEMO_USERS[0][0]) is not None
    finally:
        engine.dispose()
    return seeded, present


def command(
    host: Annotated[str, typer.Option(help="Address to listen on; keep 127.0.0.1 unless behind a proxy.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for the SQLite database (default: FANZHA_DATA_DIR or ./fanzha-data)."),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (one per core is a good start).")
    ] = 1,
    demo: Annotated[
        bool, typer.Option("--demo/--no-demo", help="Create the demo accounts in an empty database.")
    ] = True,
) -> None:
    """Start the API (识别、预警、研判接口), with interactive docs at /docs.

    Database: FANZHA_DATABASE_URL when set (PostgreSQL in production), else SQLite in the data folder.

    It is migrated on every start; demo users are created only while it has no user at all.
    """
    import uvicorn

    from fanzha.store.demo import DEMO_PASSWORD, DEMO_USERS

    if data_dir is not None:
        # Workers are separate processes that read their settings from the environment.
        os.environ["FANZHA_DATA_DIR"] = str(data_dir.resolve())
    settings = Settings()
    _setup_logging(settings)
    if not Path(settings.model_path).is_file():
        typer.secho(f"error: no text model at {settings.model_path}; run `fanzha train`", fg="red", err=True)
        raise typer.Exit(2)
    seeded, demo_ready = _prepare(settings, demo)

    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    where = "FANZHA_DATABASE_URL" if settings.database_url else f"{settings.data_dir.resolve()} (SQLite)"
    typer.echo(f"fanzha 反诈 API 服务 / API server: {base}")
    typer.echo(f"  接口文档 / API docs: {base}/docs")
    typer.echo(f"  数据库 / database: {where}")
    if demo_ready:
        users = ", ".join(u[0] for u in DEMO_USERS)
        note = "（已创建 / created）" if seeded else ""
        typer.echo(f"  演示账号 / demo logins{note}: {users}  密码 / password: {DEMO_PASSWORD}")
        if not _is_loopback(host):
            typer.secho(
                "  注意：演示账号的密码是公开的，对外服务请用 --no-demo / "
                "warning: the demo password is public; use --no-demo on a reachable address",
                fg="yellow",
            )
    typer.echo("按 Ctrl+C 停止 / press Ctrl+C to stop")
    uvicorn.run(
        FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,  # keep the JSON handler set up above (and by each worker)
        access_log=False,  # the app logs every request itself, with timing
        server_header=False,
    )
