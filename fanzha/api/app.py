"""The FastAPI application: wiring of settings, database, detector and routes."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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
        yield
        engine.dispose()

    app = FastAPI(
        title="fanzha 反诈 API",
        version="0.1.0",
        lifespan=lifespan,
        description="识别、预警、封堵、止付与研判的统一接口。",
    )
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    @app.middleware("http")
    async def access_log(request: Request, call_next):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        response = await call_next(request)
        log.info(
            "request",
            extra={
                "event": "request",
                "path": request.url.path,
                "status": response.status_code,
                "ms": round((time.perf_counter() - start) * 1000, 2),
            },
        )
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    from fanzha.api.routes import include_all

    include_all(app)
    return app
