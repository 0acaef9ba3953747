"""Emergency tracing of a case's money (资金穿透/止付): `POST /v1/cases/{case_id}/trace`.

Roles analyst, bank and admin. Grid users are not admitted, and bank users are not region-scoped: money
crosses regions within minutes, and a freeze list cut at a region border would silently miss accounts.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fanzha.api.deps import SessionDep, require
from fanzha.payments.graph import INDEX_DIR, LedgerError, LedgerGraph, UnknownTransfer, open_graph
from fanzha.payments.trace import (
    MAX_HOPS_LIMIT,
    MAX_WINDOW_HOURS,
    KnownVictims,
    TraceError,
    known_victims_from_labels,
    trace,
)
from fanzha.store import repo_audit, repo_cases
from fanzha.store.models import Case
from fanzha.store.repo_users import Principal

router = APIRouter(prefix="/v1/cases", tags=["trace 资金追踪"])
log = logging.getLogger("fanzha.api.trace")


class TraceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transfer_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=100, description="the victim's transfer ids in the ledger"
    )
    max_hops: int = Field(default=6, ge=1, le=MAX_HOPS_LIMIT)
    window_hours: int = Field(default=72, ge=1, le=MAX_WINDOW_HOURS)
    format: Literal["json", "csv"] = "json"


class Ledger:
    """The configured ledger graph, opened once (memory-mapped if indexed, else built on first use), and the
    known victim payments: those labelled in the ledger (a simulated one) and those registered to cases."""

    def __init__(self, ledger_dir: Path) -> None:
        self.ledger_dir = ledger_dir
        self._lock = threading.Lock()
        self._graph: LedgerGraph | None = None
        self._labelled: dict[str, str] = {}
        self._known: KnownVictims | None = None
        self._known_version: tuple[int, int] | None = None

    def graph(self) -> LedgerGraph:
        with self._lock:  # one build at a time; later requests wait for it rather than build again
            if self._graph is None:
                graph = open_graph(self.ledger_dir)
                labels = self.ledger_dir / "labels_transfers.parquet"
                if labels.is_file():
                    self._labelled = known_victims_from_labels(labels)
                self._graph = graph
            return self._graph

    def known_victims(self, session: Session) -> KnownVictims | None:
        """Labelled and registered victim payments, rebuilt only when a registration was added."""
        graph = self.graph()
        version = repo_cases.victim_transfers_version(session)
        with self._lock:
            if self._known_version != version:
                registered = repo_cases.victim_transfers(session) if version[0] else {}
                # A registered case wins over a label for the same payment: it is what the service knows.
                victims = {**self._labelled, **registered}
                self._known = KnownVictims(graph, victims) if victims else None
                self._known_version = version
            return self._known


def load_state(app: FastAPI) -> None:
    """Open a ledger whose index is already built now (milliseconds); an unindexed one on first use."""
    ledger_dir = app.state.settings.ledger_dir
    app.state.trace_ledger = Ledger(ledger_dir) if ledger_dir is not None else None
    if ledger_dir is not None and (ledger_dir / INDEX_DIR / "meta.json").is_file():
        try:
            app.state.trace_ledger.graph()
        except (LedgerError, OSError) as exc:
            log.warning("ledger index not loaded at start-up: %s", exc)


def _ledger(request: Request) -> Ledger:
    ledger: Ledger | None = getattr(request.app.state, "trace_ledger", None)
    configured = request.app.state.settings.ledger_dir
    if configured is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "未配置交易账本，无法追踪（设置 FANZHA_LEDGER_DIR）"
        )
    if ledger is None or ledger.ledger_dir != configured:
        ledger = request.app.state.trace_ledger = Ledger(configured)
    return ledger


@router.post(
    "/{case_id}/trace",
    responses={
        200: {"content": {"text/csv": {}}, "description": "TraceResult JSON, or the freeze list as CSV"},
        404: {"description": "no such case"},
        422: {"description": "unknown transfer ids or parameters out of range"},
        503: {"description": "no ledger configured or readable"},
    },
)
def trace_case(
    body: TraceIn,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst", "bank"))],
    case_id: Annotated[int, PathParam(ge=1)],
) -> Response:
    """Follow the victim's money forward and return the accounts to stop-pay, with amounts (in fen).

    The traced payments are registered to the case: later traces of other cases follow this money too
    and name this case among the other victims whose money sits in the same accounts (and vice versa).
    A plain `def`: FastAPI runs it in its thread pool, so a trace or a first index build never blocks
    the event loop.
    """
    if session.get(Case, case_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"案件 {case_id} 不存在")
    ledger = _ledger(request)
    try:
        graph, known = ledger.graph(), ledger.known_victims(session)
    except (LedgerError, OSError) as exc:
        log.error("ledger unreadable: %s", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "交易账本无法读取，请联系管理员") from exc
    try:
        result = trace(graph, body.transfer_ids, body.max_hops, body.window_hours, known)
    except UnknownTransfer as exc:
        detail = {"message": "账本中没有这些转账", "unknown_transfer_ids": exc.ids}
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from exc
    except TraceError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc

    freeze = result.freeze_list()
    audit = {
        "transfer_ids": body.transfer_ids,
        "max_hops": body.max_hops,
        "window_hours": body.window_hours,
        "format": body.format,
        "accounts": len(result.accounts),
        "freeze_accounts": len(freeze),
        "total_fen": result.total_fen,
        "held_fen": result.held_fen,
    }
    elsewhere = _register(session, principal.username, case_id, body.transfer_ids, audit)
    for tid, other in sorted(elsewhere.items()):
        result.warnings.append(f"转账 {tid} 已登记在案件 {other}，可能重复立案，请串并核实")
    if body.format == "csv":
        from fanzha.payments.freeze_export import to_csv

        return Response(
            to_csv(result),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="case-{case_id}-freeze.csv"'},
        )
    return Response(result.to_json(), media_type="application/json")


def _register(
    session: Session, actor: str, case_id: int, transfer_ids: list[str], audit: dict[str, object]
) -> dict[str, int]:
    """Register the traced payments to the case and audit the trace, in one commit; a payment registered
    to another case at the same moment (unique key) is retried once, and then reported as such."""

    def once() -> dict[str, int]:
        elsewhere = repo_cases.register_victim_transfers(session, case_id, transfer_ids, actor)
        repo_audit.record(session, actor, "trace", "case", case_id,
                          after={**audit, "registered_elsewhere": elsewhere})
        session.commit()
        return elsewhere

    try:
        return once()
    except IntegrityError:
        session.rollback()
        return once()
