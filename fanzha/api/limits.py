"""Request limits: bodies over the configured size get 413 (ASGI middleware), and per-client rate limits
(token buckets) give 429 with Retry-After."""

from __future__ import annotations

import math
import threading
import time

from fastapi import HTTPException, Request, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fanzha.store.repo_users import Principal


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = f'{{"detail":"request body over the limit of {self.max_bytes} bytes"}}'.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """Token bucket per client: `rate` requests a minute, in bursts of at most `rate`."""

    def __init__(self, rate_per_minute: int) -> None:
        self.rate = max(1, rate_per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str, factor: int = 1) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        capacity = float(self.rate * factor)
        per_second = capacity / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(client, (capacity, now))
            tokens = min(capacity, tokens + (now - at) * per_second)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                return (1.0 - tokens) / per_second
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > 100_000:
                self._forget_idle(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        # A client idle for a minute has a full bucket again: forgetting it changes nothing.
        self._buckets = {c: (t, at) for c, (t, at) in self._buckets.items() if now - at < 60.0}


def enforce(limiter: RateLimiter, request: Request, principal: Principal | None, partner_factor: int,
            message: str) -> None:
    """Take one request from the client's bucket (per user when logged in, else per IP) or answer 429."""
    if principal is not None:
        wait = limiter.take(f"user:{principal.id}", partner_factor)
    else:
        wait = limiter.take(f"ip:{request.client.host if request.client else 'unknown'}")
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, message,
                            headers={"Retry-After": str(math.ceil(wait))})
