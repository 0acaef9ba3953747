"""Request dependencies: the database session, the current user and role checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.orm import Session

from fanzha.store.repo_users import Principal, resolve_token

oauth2 = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


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
        if principal.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {principal.role!r} may not do this; allowed: {', '.join(sorted(allowed))}",
            )
        return principal

    return check


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
