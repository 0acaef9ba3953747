"""Request dependencies: the database session, the current user and role checks."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from fanzha.store.repo_users import Principal, resolve_token

oauth2 = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
PRINCIPAL_TTL_SECONDS = 30.0


def get_session(request: Request) -> Iterator[Session]:
    """A session per request; routes commit explicitly so a failed request writes nothing."""
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def optional_principal(
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal | None:
    secret = api_key or token
    if not secret:
        return None
    principal, reason = resolve_token(session, secret)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"})
    return principal


def current_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "login required (Bearer token or X-API-Key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def require(*roles: str) -> Callable[[Principal], Principal]:
    """Dependency that admits only the given roles (admin is always admitted)."""
    allowed = {*roles, "admin"}

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        return _admit(principal, allowed)

    return check


def _admit(principal: Principal, allowed: set[str]) -> Principal:
    if principal.role not in allowed:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"role {principal.role!r} may not do this; allowed: {', '.join(sorted(allowed))}",
        )
    return principal


def in_region(principal: Principal, region_code: str | None) -> bool:
    """A region-scoped user (grid) sees only records of their region and its sub-regions."""
    if principal.role != "grid":
        return True
    if region_code is None or principal.region_code is None:
        return False
    return region_code.startswith(region_prefix(principal.region_code))


def region_prefix(code: str) -> str:
    """GB/T 2260 roll-up: 330000 → "33", 330100 → "3301", 330106 → "330106"."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


class PrincipalCache:
    """Token → principal for a few seconds, which saves a database query per request.

    The price: a revoked or expired token keeps working for at most `ttl` seconds in each worker.
    """

    def __init__(
        self,
        ttl: float = PRINCIPAL_TTL_SECONDS,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[bytes, tuple[float, Principal]] = {}

    @staticmethod
    def _key(secret: str) -> bytes:
        # A memory dump of a long-lived process should not hand out usable tokens.
        return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()

    def get(self, secret: str) -> Principal | None:
        key = self._key(secret)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, secret: str, principal: Principal) -> None:
        now = self.clock()
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
        self._entries[self._key(secret)] = (now + self.ttl, principal)


def principal_cache(app: FastAPI) -> PrincipalCache:
    cache: PrincipalCache | None = getattr(app.state, "principal_cache", None)
    if cache is None:
        cache = app.state.principal_cache = PrincipalCache()
    return cache


def _resolve(app: FastAPI, secret: str) -> tuple[Principal | None, str]:
    with app.state.sessions() as session:
        return resolve_token(session, secret)


async def principal_for(app: FastAPI, secret: str) -> tuple[Principal | None, str]:
    """The principal behind a login token or API key, from the cache or (off the event loop) the database."""
    cache = principal_cache(app)
    principal = cache.get(secret)
    if principal is not None:
        return principal, ""
    principal, reason = await run_in_threadpool(_resolve, app, secret)
    if principal is not None:
        cache.put(secret, principal)
    return principal, reason


def request_secret(request: Request) -> str | None:
    """The API key or Bearer token of a request, read from its headers as `partner` gets it through the
    security dependencies (for hot routes that take no dependencies at all)."""
    api_key = request.headers.get("x-api-key")
    if api_key:
        return api_key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


async def caller(request: Request, allowed: set[str]) -> Principal:
    """`require_partner(...)` as a plain call: the cached principal of the request, admitted by role."""
    return _admit(await _authenticated(request, request_secret(request)), allowed)


async def partner(
    request: Request,
    token: Annotated[str | None, Depends(oauth2)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    """Any logged-in user or API key; `deps.current_principal` with a cache and no per-request session."""
    return await _authenticated(request, api_key or token)


async def _authenticated(request: Request, secret: str | None) -> Principal:
    if not secret:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "login required (Bearer token or X-API-Key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal, reason = await principal_for(request.app, secret)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"})
    return principal


PartnerDep = Annotated[Principal, Depends(partner)]


def require_partner(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """`require()` for hot async routes: the principal comes from the cache, no session per request."""
    allowed = {*roles, "admin"}

    async def check(principal: PartnerDep) -> Principal:
        return _admit(principal, allowed)

    return check
