"""Warning tasks (预警劝阻): raise, list, contact, close, escalate (also each minute in the background)."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from fanzha.api.deps import SessionDep, in_region, region_prefix, require
from fanzha.cases.warnings import (
    CONTACT_METHODS,
    OUTCOMES,
    SOURCES,
    InvalidWarning,
    WarningRequest,
    masked_person,
)
from fanzha.privacy import mask_text
from fanzha.store import repo_warnings
from fanzha.store.db import transaction
from fanzha.store.models import ContactAttempt, Warning, utcnow
from fanzha.store.repo_users import Principal

router = APIRouter(prefix="/v1/warnings", tags=["warnings 预警劝阻"])
log = logging.getLogger("fanzha.api.warnings")
ESCALATION_INTERVAL_SECONDS = 60.0
MAX_STATS_DAYS = 366
# Roles that act on the person and so see their phone and name; everyone else sees them masked.
RAW_ROLES = ("admin", "analyst")
WarningId = Annotated[int, Path(ge=1, le=2**31 - 1)]
RegionCode = Annotated[str | None, Query(pattern=r"^\d{6}$")]


class WarningIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    person_phone: str | None = Field(default=None, max_length=32)
    person_account: str | None = Field(default=None, max_length=64)
    person_name: str | None = Field(default=None, max_length=64)
    region_code: str = Field(pattern=r"^\d{6}$", description="the person's 行政区划代码 (routes the task)")
    source: Literal["detection", "watchlist", "partner"] | None = Field(
        default=None, description=f"one of {', '.join(SOURCES)}; bank and telecom default to partner"
    )
    fraud_type: str | None = Field(default=None, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    risk: int = Field(ge=0, le=100)
    amount_at_stake: float = Field(default=0.0, ge=0, le=1e15)
    detail: dict[str, Any] = Field(default_factory=dict)


class WarningCreated(BaseModel):
    id: int
    merged: bool
    priority: int
    due_at: datetime
    assigned: bool


class ContactOut(BaseModel):
    id: int
    at: datetime
    user_id: int
    method: str
    reached: bool
    note: str


class WarningOut(BaseModel):
    id: int
    person_phone: str | None
    person_account: str | None
    person_name: str | None
    region_code: str
    source: str
    fraud_type: str | None
    risk: int
    amount_at_stake: float
    priority: int
    status: str
    assignee_id: int | None
    outcome: str | None
    merged_count: int
    escalated: bool
    created_at: datetime
    due_at: datetime
    first_contact_at: datetime | None
    closed_at: datetime | None
    case_id: int | None
    overdue: bool


class WarningDetailOut(WarningOut):
    detail: dict[str, Any] | None
    contacts: list[ContactOut]


class WarningPage(BaseModel):
    items: list[WarningOut]
    total: int
    limit: int
    offset: int


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["phone", "visit", "sms", "video"] = Field(description=", ".join(CONTACT_METHODS))
    reached: bool
    note: str = Field(default="", max_length=4000)


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["dissuaded", "already_defrauded", "unreachable", "false_alarm"] = Field(
        description=", ".join(OUTCOMES)
    )
    note: str = Field(default="", max_length=4000)


class OutcomeOut(BaseModel):
    warning: WarningOut
    case_id: int | None


class EscalationOut(BaseModel):
    escalated: int
    ids: list[int]


def _sees_raw(principal: Principal, w: Warning) -> bool:
    return principal.role in RAW_ROLES or (principal.role == "grid" and w.assignee_id == principal.id)


def _out(w: Warning, principal: Principal) -> dict[str, Any]:
    raw = _sees_raw(principal, w)
    data = {name: getattr(w, name) for name in WarningOut.model_fields if name != "overdue"}
    data["overdue"] = w.status == "open" and w.first_contact_at is None and w.due_at < utcnow()
    if not raw:
        data.update(masked_person(w.person_phone, w.person_account, w.person_name))
    return data


def _detail_out(w: Warning, contacts: list[ContactAttempt], principal: Principal) -> WarningDetailOut:
    raw = _sees_raw(principal, w)
    items = [ContactOut.model_validate(c, from_attributes=True) for c in contacts]
    if not raw:
        for c in items:
            c.note = mask_text(c.note)
    detail = w.detail if raw else _mask_tree(w.detail)
    return WarningDetailOut(**_out(w, principal), detail=detail, contacts=items)


def _mask_tree(value: Any) -> Any:
    """Mask personal data in every string of a free-form detail object."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_tree(v) for v in value]
    return value


def _visible(session: Session, warning_id: int, principal: Principal) -> Warning:
    """The task if the caller may see it; a grid user of another region gets the same 404 as a missing id."""
    w = repo_warnings.get(session, warning_id)
    if w is None or not in_region(principal, w.region_code):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no warning {warning_id}")
    return w


def _actionable(session: Session, warning_id: int, principal: Principal) -> Warning:
    w = _visible(session, warning_id, principal)
    if principal.role == "grid" and w.assignee_id != principal.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the assigned grid worker may act on this task")
    return w


@router.post("", response_model=WarningCreated, status_code=201)
def raise_warning(
    body: WarningIn,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst", "bank", "telecom"))],
) -> WarningCreated:
    """Raise a warning about a person being targeted now; a repeat within the merge window is merged."""
    source = body.source or ("partner" if principal.role in ("bank", "telecom") else "detection")
    try:
        req = WarningRequest(**body.model_dump(exclude={"source"}), source=source)
    except InvalidWarning as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    w, merged = repo_warnings.raise_warning(session, req, request.app.state.settings, principal.username)
    session.commit()
    return WarningCreated(
        id=w.id, merged=merged, priority=w.priority, due_at=w.due_at, assigned=w.assignee_id is not None
    )


@router.get("", response_model=WarningPage)
def list_warnings(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst", "grid", "auditor", "bank", "telecom"))],
    status_: Annotated[Literal["open", "closed"] | None, Query(alias="status")] = None,
    region: RegionCode = None,
    escalated: bool | None = None,
    mine: Annotated[bool, Query(description="only tasks assigned to me")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> WarningPage:
    """Tasks, most urgent first; a grid user sees only their own region."""
    prefix = _scope(principal, region)
    if prefix is None:
        return WarningPage(items=[], total=0, limit=limit, offset=offset)
    rows, total = repo_warnings.list_warnings(
        session,
        status=status_,
        region_prefix=prefix or None,
        escalated=escalated,
        assignee_id=principal.id if mine else None,
        limit=limit,
        offset=offset,
    )
    return WarningPage(
        items=[WarningOut(**_out(w, principal)) for w in rows], total=total, limit=limit, offset=offset
    )


def _scope(principal: Principal, region: str | None) -> str | None:
    """The region prefix to filter on ("" = everywhere), or None when the caller may see nothing asked."""
    asked = region_prefix(region) if region else ""
    if principal.role != "grid":
        return asked
    if principal.region_code is None:
        return None
    own = region_prefix(principal.region_code)
    if asked.startswith(own):
        return asked
    return own if own.startswith(asked) else None


@router.get("/stats")
def warning_stats(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst", "auditor", "grid"))],
    date_from: date | None = None,
    date_to: date | None = None,
    region: RegionCode = None,
) -> dict[str, Any]:
    """Volume per day and region, median minutes to first contact, dissuasion rate, outcomes."""
    date_to = date_to or utcnow().date()
    date_from = date_from or date_to - timedelta(days=29)
    if date_from > date_to or (date_to - date_from).days >= MAX_STATS_DAYS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"date_from must be on or before date_to, at most {MAX_STATS_DAYS} days apart",
        )
    prefix = _scope(principal, region)
    if prefix is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "that region is outside yours")
    return repo_warnings.stats(session, date_from, date_to, prefix or None).to_dict()


@router.post("/escalate", response_model=EscalationOut)
def escalate(
    request: Request, session: SessionDep, principal: Annotated[Principal, Depends(require("analyst"))]
) -> EscalationOut:
    """Escalate every open task nobody contacted by its deadline (the background job does so each minute)."""
    done = repo_warnings.escalate_overdue(session, utcnow(), request.app.state.settings, principal.username)
    session.commit()
    return EscalationOut(escalated=len(done), ids=[e.warning_id for e in done])


@router.get("/{warning_id}", response_model=WarningDetailOut)
def get_warning(
    warning_id: WarningId,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst", "grid", "auditor", "bank", "telecom"))],
) -> WarningDetailOut:
    w = _visible(session, warning_id, principal)
    return _detail_out(w, repo_warnings.contacts(session, w.id), principal)


@router.post("/{warning_id}/contacts", response_model=ContactOut, status_code=201)
def add_contact(
    warning_id: WarningId,
    body: ContactIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst", "grid"))],
) -> ContactOut:
    """Log an attempt to reach the person (phone call, visit, SMS, video call)."""
    w = _actionable(session, warning_id, principal)
    try:
        attempt = repo_warnings.record_contact(
            session, w, principal.id, principal.username, body.method, body.reached, body.note
        )
    except repo_warnings.WarningStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    session.commit()
    return ContactOut.model_validate(attempt, from_attributes=True)


@router.post("/{warning_id}/outcome", response_model=OutcomeOut)
def set_outcome(
    warning_id: WarningId,
    body: OutcomeIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst", "grid"))],
) -> OutcomeOut:
    """Close: dissuaded 劝阻成功, already_defrauded 已被骗 (opens a case), unreachable, false_alarm."""
    w = _actionable(session, warning_id, principal)
    try:
        case = repo_warnings.set_outcome(session, w, body.outcome, principal.username, body.note)
    except repo_warnings.WarningStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    session.commit()
    return OutcomeOut(warning=WarningOut(**_out(w, principal)), case_id=case.id if case else None)


def load_state(app: FastAPI) -> None:
    """Start the escalation job; it ends with the application's lifespan (runs inside it, at start-up)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        log.warning("no event loop at start-up: overdue warnings escalate only on request")
        return
    interval = float(getattr(app.state, "warning_escalation_interval", ESCALATION_INTERVAL_SECONDS))
    job = loop.create_task(_escalation_job(app, interval), name="fanzha-warning-escalation")
    app.state.warning_escalation_job = job
    # The start-up code runs in the task that later runs the shutdown: when it ends, the job ends too.
    lifespan = asyncio.current_task()
    if lifespan is not None:
        lifespan.add_done_callback(lambda _: job.cancel())


async def _escalation_job(app: FastAPI, interval: float) -> None:
    while True:
        try:
            await asyncio.to_thread(_escalate_once, app)
        except Exception:
            # A failed round (database down, lock timeout) must not end the job or the app: retry later.
            log.exception("background escalation failed; retrying in %s s", interval)
        await asyncio.sleep(interval)


def _escalate_once(app: FastAPI) -> int:
    with transaction(app.state.sessions) as session:
        done = repo_warnings.escalate_overdue(session, utcnow(), app.state.settings)
    if done:
        log.info("escalated %d overdue warnings", len(done))
    return len(done)
