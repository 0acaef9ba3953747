"""The FastAPI application: wiring of settings, database, detector and routes."""

from __future__ import annotations

import gc
import json
import logging
import math
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fanzha.api.limits import BodyLimit
from fanzha.settings import Settings
from fanzha.store.db import make_engine, make_sessionmaker, migrate

log = logging.getLogger("fanzha.api")


def create_app(settings: Settings | None = None, detector: object | None = None) -> FastAPI:
    """Build the app; the database is migrated and the detector loaded once, at start-up."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.resolved_database_url()
        migrate(url)
        engine = make_engine(url)
        app.state.engine = engine
        app.state.sessions = make_sessionmaker(engine)
        if detector is None:
            from fanzha.text.detector import Detector

            app.state.detector = Detector.from_settings(settings)
        else:
            app.state.detector = detector
        from fanzha.api.state import load_state

        load_state(app)
        # Start-up objects (model, typology, indexes) never die: keep them out of every GC pass.
        gc.freeze()
        if settings.gil_switch_interval_ms:
            sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
        yield
        from fanzha.api.state import close_state

        close_state(app)
        engine.dispose()

    app = FastAPI(
        title="fanzha 反诈 API",
        version="0.1.0",
        lifespan=lifespan,
        description="识别、预警、封堵、止付与研判的统一接口。",
    )
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    app.add_middleware(AccessLog)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # Echoed input may hold values JSON cannot carry (NaN, 1e400, bytes): make them safe, never 500.
        body = json.dumps({"detail": _json_safe(exc.errors())}, ensure_ascii=True, default=str).encode()
        return Response(body, status_code=422, media_type="application/json")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    from fanzha.api.routes import include_all

    include_all(app)
    return app


class AccessLog:
    """One structured log line per request (a plain ASGI middleware: much cheaper than @app.middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            log.info(
                "request",
                extra={
                    "event": "request",
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - start) * 1000, 2),
                },
            )


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
