"""Login (OAuth2 password flow), the current user, and API keys for machine clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from fanzha.api.deps import SessionDep, current_principal, require
from fanzha.store import repo_audit
from fanzha.store.repo_users import Principal, authenticate, get_user, issue_api_key, issue_token

router = APIRouter(prefix="/v1/auth", tags=["auth 认证"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    id: int
    username: str
    role: str
    region_code: str | None


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    username: str | None = Field(default=None, max_length=64, description="admin only: key for another user")


class ApiKeyOut(BaseModel):
    api_key: str
    username: str


@router.post("/token", response_model=TokenOut)
def login(
    request: Request, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenOut:
    principal = authenticate(session, form.username, form.password)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    ttl = request.app.state.settings.token_ttl_minutes
    token = issue_token(session, principal.id, ttl)
    session.commit()
    return TokenOut(access_token=token, expires_in=ttl * 60)


@router.get("/me", response_model=MeOut)
def me(principal: Annotated[Principal, Depends(current_principal)]) -> MeOut:
    return MeOut(
        id=principal.id, username=principal.username, role=principal.role, region_code=principal.region_code
    )


@router.post("/api-keys", response_model=ApiKeyOut, status_code=201)
def create_api_key(
    body: ApiKeyIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("bank", "telecom", "analyst"))],
) -> ApiKeyOut:
    owner_name = body.username or principal.username
    if owner_name != principal.username and principal.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only admin may create keys for other users")
    owner = get_user(session, owner_name)
    if owner is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {owner_name!r}")
    key = issue_api_key(session, owner.id, body.name)
    repo_audit.record(
        session, principal.username, "create_api_key", "user", owner.id, after={"name": body.name}
    )
    session.commit()
    return ApiKeyOut(api_key=key, username=owner.username)
