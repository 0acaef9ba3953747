"""Real-time transfer checks (实时转账核验): `POST /v1/transfers/check`, 三问一确认 answers, and look-up.

Roles bank, analyst and admin (banks call with API keys). Every check is stored with who asked and written
to the audit log; an idempotency key (header `Idempotency-Key` or field) makes a retry return the stored
decision.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from fanzha.api.deps import SessionDep, caller, require_partner
from fanzha.cases.warnings import InvalidWarning, normalize_account
from fanzha.payments.check import CheckError, Decision, MuleScores, TransferCheck, TransferChecker
from fanzha.payments.ledger import LedgerError
from fanzha.payments.rules import load_questions, load_rules
from fanzha.payments.state import AccountState, account_hash, build_state
from fanzha.store import repo_transfer_checks as repo
from fanzha.store.db import write_lock_path
from fanzha.store.group_commit import GroupCommitter
from fanzha.store.models import TransferCheckRecord
from fanzha.store.recent_warnings import RecentWarnings
from fanzha.store.repo_users import Principal

router = APIRouter(prefix="/v1/transfers", tags=["transfers 转账核验"])
log = logging.getLogger("fanzha.api.transfers")
WARNING_DAYS = 30  # a warning (预警) this recent makes the payer's transfers a rule feature
CST = timedelta(hours=8)
# Callers come from the principal cache (≤ 30 s stale) on all transfer routes: counters call them often.
Checker = Annotated[Principal, Depends(require_partner("bank", "analyst"))]
CHECK_ROLES = {"bank", "analyst", "admin"}
KEY_HEADER_MAX = 128


class TransferCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payer: str = Field(min_length=1, max_length=64, description="付款账户（本行）")
    payee: str = Field(min_length=1, max_length=64, description="收款账户（本行或他行）")
    amount_fen: int = Field(description="金额，单位：分（正整数）")
    ts: datetime | None = Field(default=None, description="交易时间；无时区视为北京时间；缺省为现在")
    channel: str = Field(default="mobile", max_length=16)
    remark: str | None = Field(default=None, max_length=500, description="转账附言")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)


class AnswersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[str, str] = Field(min_length=1, max_length=10, description="问题 id → 选项 id")


def load_state(app: FastAPI) -> None:
    """Build the account state from the configured ledger (empty without one), load the rules and start
    the writer that stores checks in groups."""
    settings = app.state.settings
    app.state.recent_warnings = RecentWarnings(
        app.state.engine, days=WARNING_DAYS, max_age=settings.warning_refresh_seconds
    )
    app.state.recent_warnings.refresh()  # the first full read at start-up, not in the first check
    app.state.check_committer = GroupCommitter(
        app.state.sessions, name="fanzha-transfer-checks", write_lock=write_lock_path(app.state.engine)
    )
    state = AccountState.empty()
    if settings.ledger_dir is not None:
        try:
            state = build_state(settings.ledger_dir)
        except (LedgerError, OSError) as exc:
            log.error("ledger not loaded for transfer checks: %s", exc)
    scores = None
    if settings.mule_scores_path is not None:
        try:
            scores = MuleScores.load(settings.mule_scores_path)
        except (OSError, KeyError, ValueError) as exc:
            log.error("mule scores not loaded: %s", exc)
    app.state.transfer_checker = TransferChecker(
        state, load_rules(settings.transfer_rules_path), load_questions()[1],
        mule_scores=scores, detector=getattr(app.state, "detector", None),
    )


def close_state(app: FastAPI) -> None:
    committer: GroupCommitter | None = getattr(app.state, "check_committer", None)
    if committer is not None:
        committer.close()


def _checker(request: Request) -> TransferChecker:
    checker: TransferChecker = request.app.state.transfer_checker
    # The watchlist route loads its index after this module; it is read here so updates are seen.
    checker.watchlist = getattr(request.app.state, "watchlist", None)
    return checker


def _fail(exc: CheckError) -> HTTPException:
    return HTTPException(exc.status, {"code": exc.code, "message": exc.message})


def _json(body: bytes, code: int = 200) -> Response:
    return Response(body, status_code=code, media_type="application/json")


def _warning_key(account: str) -> str:
    # Warnings store the person's account normalised (no separators, lower case): look it up the same way.
    try:
        return normalize_account(account)
    except InvalidWarning:
        return account


def _ts_ms(ts: datetime | None) -> int | None:
    if ts is None:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None) + CST
    return int((ts - datetime(1970, 1, 1)).total_seconds() * 1000)


# The check is the hot path, so it takes no FastAPI dependencies or body parameter (their resolution cost
# as much as the check itself): the caller comes from the principal cache (≤ 30 s stale) and the body is
# validated by pydantic straight from the bytes. OpenAPI still documents both, from the same models.
_CHECK_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": TransferCheckIn.model_json_schema()}},
    },
    "parameters": [{
        "name": "Idempotency-Key", "in": "header", "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": KEY_HEADER_MAX},
    }],
    "security": [{"OAuth2PasswordBearer": []}, {"APIKeyHeader": []}],
}


def _body(raw: bytes) -> TransferCheckIn:
    try:
        return TransferCheckIn.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def _header_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= KEY_HEADER_MAX:
        raise RequestValidationError([{
            "type": "string_too_long" if key else "string_too_short",
            "loc": ("header", "idempotency-key"),
            "msg": f"Idempotency-Key must have 1 to {KEY_HEADER_MAX} characters",
            "input": key[:KEY_HEADER_MAX],
        }])
    return key


@router.post(
    "/check",
    responses={401: {"description": "login required"}, 403: {"description": "role not allowed"},
               404: {"description": "unknown payer account"}, 409: {"description": "key reused"},
               422: {"description": "bad amount, time, channel or accounts"}},
    openapi_extra=_CHECK_OPENAPI,
)
async def check_transfer(request: Request) -> Response:
    """Decide a transfer before it is made: allow, confirm (三问一确认), hold (人工) or block.

    Body: `TransferCheckIn`; roles bank, analyst, admin. The decision is answered only once it is stored:
    writes of concurrent checks share one commit (`store/group_commit.py`), so a busy counter does not
    wait for a disk sync per transfer."""
    principal = await caller(request, CHECK_ROLES)
    body = _body(await request.body())
    idempotency_key = _header_key(request)
    key = idempotency_key or body.idempotency_key
    if idempotency_key and body.idempotency_key and idempotency_key != body.idempotency_key:
        raise HTTPException(
            422, "请求头与请求体的幂等键不一致 / Idempotency-Key header and field differ"
        )
    req = TransferCheck(
        body.payer, body.payee, body.amount_fen, _ts_ms(body.ts), body.channel, body.remark, key
    )
    app = request.app
    checker = _checker(request)
    try:
        checker.validate(req, checker.clock())
        warned: RecentWarnings = app.state.recent_warnings
        decision = checker.check(req, recent_warning=warned.warned(_warning_key(req.payer)))
    except CheckError as exc:
        raise _fail(exc) from None
    # A retry is not looked up first: its row collides with the stored one on (actor, key), the committer
    # retries it alone, and save() answers with the decision stored first (or KeyConflict: other content).
    committer: GroupCommitter = app.state.check_committer
    actor = principal.username
    try:
        saved = await asyncio.wrap_future(committer.submit(
            lambda b: repo.add(b, actor, req, decision), lambda s: repo.save(s, actor, req, decision)
        ))
    except repo.KeyConflict:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "幂等键已用于另一笔请求 / idempotency key reused for another request"
        ) from None
    if saved.check_id == decision.check_id and decision.decision == "allow":
        _record(checker, req)  # only the first of several retries makes history
    return _json(saved.to_json())


def _record(checker: TransferChecker, req: TransferCheck) -> None:
    # An allowed transfer is assumed to go through: later checks see it as history (first payee, burst …).
    ts = req.ts_ms if req.ts_ms is not None else checker.clock()
    checker.state.record(account_hash(req.payer), account_hash(req.payee), req.amount_fen, ts)


def _stored(session: Session, check_id: str) -> TransferCheckRecord:
    rec = repo.get(session, check_id)
    if rec is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"核验 {check_id} 不存在 / no such check")
    return rec


@router.post(
    "/checks/{check_id}/answers",
    responses={404: {"description": "no such check"}, 409: {"description": "answered meanwhile"}},
)
def answer_check(
    body: AnswersIn,
    request: Request,
    session: SessionDep,
    principal: Checker,
    check_id: Annotated[str, PathParam(min_length=1, max_length=32)],
) -> Response:
    """Record 三问一确认 answers; the strictest answer decides, all benign answers allow the transfer."""
    rec = _stored(session, check_id)
    checker = _checker(request)
    try:
        decision = checker.answer(Decision.from_dict(rec.result), body.answers)
    except CheckError as exc:
        raise _fail(exc) from None
    payer, payee, amount = rec.payer, rec.payee, rec.amount_fen
    try:
        repo.save_answers(session, rec, principal.username, decision)
    except repo.AnswerConflict:
        session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "该核验刚被他人回答，请刷新后重试 / the check was answered meanwhile; reload it and retry",
        ) from None
    session.commit()
    if decision.decision == "allow":
        _record(checker, TransferCheck(payer, payee, amount))
    return _json(decision.to_json())


@router.get("/checks/{check_id}", responses={404: {"description": "no such check"}})
def get_check(
    session: SessionDep,
    principal: Checker,
    check_id: Annotated[str, PathParam(min_length=1, max_length=32)],
) -> Response:
    """A stored check as last decided, with its answers and who answered (the counter sees why)."""
    rec = _stored(session, check_id)
    body = {**rec.result, "checked_by": rec.actor, "answered_by": rec.answered_by,
            "created_at": rec.created_at.isoformat(), "updated_at": rec.updated_at.isoformat()}
    return _json(orjson.dumps(body))

