"""Start-up state shared by requests (loaded once, after the database is migrated)."""

from __future__ import annotations

from fastapi import FastAPI

from fanzha.api.routes import route_modules


def load_state(app: FastAPI) -> None:
    for module in route_modules():
        loader = getattr(module, "load_state", None)
        if loader is not None:
            loader(app)


def close_state(app: FastAPI) -> None:
    """Let every route module finish its background work (e.g. commit queued writes) before shutdown."""
    for module in route_modules():
        closer = getattr(module, "close_state", None)
        if closer is not None:
            closer(app)
