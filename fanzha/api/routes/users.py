"""User administration (admin) and the audit log (auditor, admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from fanzha.api.deps import SessionDep, require
from fanzha.store import repo_audit
from fanzha.store.repo_users import ROLES, Principal, UserError, create_user, list_users

router = APIRouter(prefix="/v1", tags=["users 用户与审计"])


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=256)
    role: str = Field(description=f"one of {', '.join(ROLES)}")
    region_code: str | None = Field(default=None, pattern=r"^\d{6}$")
    display_name: str = Field(default="", max_length=128)


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    region_code: str | None
    display_name: str
    active: bool


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@router.post("/users", response_model=UserOut, status_code=201)
def add_user(
    body: UserIn, session: SessionDep, principal: Annotated[Principal, Depends(require())]
) -> UserOut:
    try:
        user = create_user(
            session, body.username, body.password, body.role, body.region_code, body.display_name
        )
    except UserError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    out = UserOut.model_validate(user, from_attributes=True)
    repo_audit.record(session, principal.username, "create", "user", user.id, after=out.model_dump())
    session.commit()
    return out


@router.get("/users", response_model=list[UserOut])
def users(session: SessionDep, _: Annotated[Principal, Depends(require("auditor"))]) -> list[UserOut]:
    return [UserOut.model_validate(u, from_attributes=True) for u in list_users(session)]


@router.get("/audit", response_model=list[AuditOut])
def audit(
    session: SessionDep,
    _: Annotated[Principal, Depends(require("auditor"))],
    entity: Annotated[str | None, Query(max_length=32)] = None,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    return [
        AuditOut.model_validate(e, from_attributes=True)
        for e in repo_audit.entries(session, limit, entity, after_id)
    ]
