"""Routes, one module per resource. Each module exposes `router`, and optionally `load_state(app)`,
which runs once at start-up after the database is ready (e.g. to load the watchlist index)."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from fastapi import FastAPI


def route_modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"{__name__}.{m.name}")
        for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
    ]


def include_all(app: FastAPI) -> None:
    for module in route_modules():
        app.include_router(module.router)
