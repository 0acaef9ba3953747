"""Cases (警情): record a reported fraud so its money can be traced (`POST /v1/cases/{id}/trace`); read it.

A minimal record — region, fraud type, status, summary — plus the victim payments its traces registered. A
warning whose person was already defrauded opens a placeholder case the same way. Analysts and admins record
cases; grid users (社区民警/网格员) record and read those of their own region; banks read them (they trace).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from fanzha.api.deps import SessionDep, in_region, require
from fanzha.knowledge.loader import FRAUD_TYPE_CODES
from fanzha.privacy import mask_text
from fanzha.store import repo_audit
from fanzha.store.models import Case, CaseTransfer
from fanzha.store.repo_users import Principal

router = APIRouter(prefix="/v1/cases", tags=["cases 警情"])
CaseId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
Recorder = Annotated[Principal, Depends(require("analyst", "grid"))]
Reader = Annotated[Principal, Depends(require("analyst", "grid", "bank", "auditor"))]


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    region_code: str = Field(pattern=r"^\d{6}$", description="行政区划代码 where the case was reported")
    fraud_type: str | None = Field(default=None, description=f"one of: {', '.join(FRAUD_TYPE_CODES)}")
    summary: str = Field(default="", max_length=2000, description="案情摘要")


class CaseOut(BaseModel):
    id: int
    region_code: str
    status: str
    fraud_type: str | None
    summary: str
    created_at: datetime
    victim_transfer_ids: list[str] = Field(description="payments registered to the case by its traces")


def _out(case: Case, transfer_ids: list[str], principal: Principal) -> CaseOut:
    # The summary is free text that may name people, numbers and cards: only analysts and admins see it raw.
    summary = case.summary if principal.role in ("analyst", "admin") else mask_text(case.summary)
    return CaseOut(
        id=case.id, region_code=case.region_code, status=case.status, fraud_type=case.fraud_type,
        summary=summary, created_at=case.created_at, victim_transfer_ids=transfer_ids,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CaseOut,
             responses={403: {"description": "role not allowed, or another region (grid)"},
                        422: {"description": "unknown fraud type or bad region code"}})
def record_case(body: CaseIn, session: SessionDep, principal: Recorder) -> CaseOut:
    """Record a case (立案登记); trace its victim payments next with `POST /v1/cases/{id}/trace`."""
    if body.fraud_type is not None and body.fraud_type not in FRAUD_TYPE_CODES:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"未知的诈骗类型 (unknown fraud type): {body.fraud_type!r}"
        )
    if not in_region(principal, body.region_code):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "只能登记本辖区的警情 (only cases of your own region)")
    case = Case(region_code=body.region_code, status="open", fraud_type=body.fraud_type, summary=body.summary)
    session.add(case)
    session.flush()
    repo_audit.record(session, principal.username, "create", "case", case.id, after={
        "region_code": case.region_code, "fraud_type": case.fraud_type, "status": case.status,
        "summary": mask_text(case.summary),
    })
    session.commit()
    return _out(case, [], principal)


@router.get("/{case_id}", response_model=CaseOut, responses={404: {"description": "no such case"}})
def get_case(case_id: CaseId, session: SessionDep, principal: Reader) -> CaseOut:
    """A case with the victim payments its traces registered (grid users: their own region only)."""
    case = session.get(Case, case_id)
    if case is None or not in_region(principal, case.region_code):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"案件 {case_id} 不存在 (no such case)")
    ids = session.scalars(
        select(CaseTransfer.transfer_id).where(CaseTransfer.case_id == case_id).order_by(CaseTransfer.id)
    ).all()
    return _out(case, list(ids), principal)
