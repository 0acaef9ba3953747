"""Cases (警情) in the database: the victim payments registered to each case by its traces."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fanzha.store.models import CaseTransfer


def register_victim_transfers(
    session: Session, case_id: int, transfer_ids: Iterable[str], actor: str
) -> dict[str, int]:
    """Register the case's victim payments (idempotent; does not commit). A payment already registered to
    another case keeps that case: the result maps each such transfer id to it, so the caller can say so."""
    ids = list(dict.fromkeys(transfer_ids))
    query = select(CaseTransfer.transfer_id, CaseTransfer.case_id).where(CaseTransfer.transfer_id.in_(ids))
    taken = {tid: case for tid, case in session.execute(query)}
    for tid in ids:
        if tid not in taken:
            session.add(CaseTransfer(case_id=case_id, transfer_id=tid, actor=actor))
    session.flush()
    return {tid: case for tid, case in taken.items() if case != case_id}


def victim_transfers(session: Session) -> dict[str, str]:
    """Every registered victim payment: transfer id → case id (as text, the trace's case label)."""
    rows = session.execute(select(CaseTransfer.transfer_id, CaseTransfer.case_id))
    return {tid: str(case) for tid, case in rows}


def victim_transfers_version(session: Session) -> tuple[int, int]:
    """Changes whenever a payment is registered (rows are never updated): (count, highest id)."""
    count, top = session.execute(select(func.count(), func.max(CaseTransfer.id))).one()
    return int(count), int(top or 0)
