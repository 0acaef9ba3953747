"""Detection for partners: one message or call, a batch, and a live call over WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response, WebSocket, status
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from fanzha.api.deps import PartnerDep, principal_for
from fanzha.api.schemas import MAX_TURNS, BatchIn, BatchOut, DetectIn, DetectOut, Recipient, WatchlistHit
from fanzha.cases.warnings import InvalidWarning, WarningRequest, warning_from_detection
from fanzha.intel.matcher import Match, WatchlistIndex
from fanzha.intel.watchlist import InvalidIndicator, normalize_value
from fanzha.store import repo_warnings
from fanzha.store.repo_users import Principal
from fanzha.text import batch
from fanzha.text.detector import Detector, InvalidInput
from fanzha.text.dialogue import (
    SPEAKERS,
    TURN_SEPARATOR,
    DialogueSession,
    Turn,
    detect_dialogue,
    transcript,
)
from fanzha.text.result import Detection, Indicator

router = APIRouter(prefix="/v1/detect", tags=["detect 识别"])

# Scoring ~1,000 characters takes about a millisecond: cheaper inline than a hop to the thread pool.
# Longer inputs go to the pool so one big text never stalls the other requests on this worker.
INLINE_MAX_CHARS = 1_000
# Bounds the work one dialogue can ask for (about two seconds of scoring); a longer call goes as `text`.
MAX_DIALOGUE_CHARS_SCORED = 2_000_000
LIVE_AUTH_TIMEOUT_SECONDS = 10.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_AUTH_TIMEOUT = 4408
_DETECTION_FIELDS = tuple(f.name for f in fields(Detection))
_MATCH_FIELDS = tuple(f.name for f in fields(Match))
# Naming a recipient raises a warning task: the roles that may raise one through POST /v1/warnings.
WARNING_ROLES = ("admin", "analyst", "bank", "telecom")




def watchlist_hits(app: FastAPI, detection: Detection, text: str) -> list[WatchlistHit]:
    """Watchlist and allow-list entries for every indicator of the detection, plus listed IM IDs and app
    names anywhere in the text (which no recogniser may have picked out); each entry once."""
    return _hits(app, detection.indicators, text)


def _hits(app: FastAPI, indicators: Sequence[Indicator], text: str) -> list[WatchlistHit]:
    index: WatchlistIndex | None = getattr(app.state, "watchlist", None)
    if index is None:
        return []
    found = [(ind.value, m) for ind in indicators for m in index.match_indicator(ind)]
    found += [(m.value, m) for m in index.scan_text(text)]
    hits: dict[tuple[str, str, bool], WatchlistHit] = {}
    for indicator, m in found:
        key = (m.kind, m.value, m.allowlisted)
        if key not in hits:
            hits[key] = WatchlistHit(**{f: getattr(m, f) for f in _MATCH_FIELDS}, indicator=indicator)
    return list(hits.values())


def detect_out(detection: Detection, hits: list[WatchlistHit]) -> DetectOut:
    return DetectOut(**{f: getattr(detection, f) for f in _DETECTION_FIELDS}, watchlist_hits=hits)


def _json(obj: object) -> Response:
    return Response(orjson.dumps(obj), media_type="application/json")


def _dialogue_cost(turns: Sequence[Turn]) -> int:
    """Characters scored for a dialogue: every turn re-scores the transcript so far."""
    total = cost = 0
    for t in turns:
        total += len(t.text) + len(TURN_SEPARATOR)
        cost += total
    return cost


def _dialogue_error(turns: Sequence[Turn]) -> str | None:
    if len(turns) > MAX_TURNS:
        return f"{len(turns)} turns; at most {MAX_TURNS} per dialogue"
    if _dialogue_cost(turns) > MAX_DIALOGUE_CHARS_SCORED:
        return "the call is too long to score turn by turn; send its transcript as `text`"
    return None


async def _run(cost: int, func: Callable[..., Any], *args: Any) -> Any:
    if cost <= INLINE_MAX_CHARS:
        return func(*args)
    return await run_in_threadpool(func, *args)


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


@router.post("", response_model=DetectOut, summary="Examine one message or call transcript")
async def detect(body: DetectIn, request: Request, principal: PartnerDep) -> Response:
    """识别一条短信/聊天消息（`text`）或一段通话（`turns`）。With a `recipient` (roles admin, analyst,
    bank, telecom), a fraud verdict or a watchlist hit raises a warning task (预警) whose id is returned."""
    if body.recipient is not None:
        _check_recipient(body.recipient, principal)
    detector: Detector = request.app.state.detector
    try:
        if body.turns is not None:
            turns = [Turn(t.speaker, t.text) for t in body.turns]
            error = _dialogue_error(turns)
            if error is not None:
                raise InvalidInput(error)
            text = transcript(turns)
            detection = await _run(_dialogue_cost(turns), detect_dialogue, detector, turns)
        else:
            text = detector.check(body.text)
            detection = await _run(len(text), detector.detect, text)
    except InvalidInput as exc:
        raise _unprocessable(str(exc)) from exc
    out = detect_out(detection, watchlist_hits(request.app, detection, text))
    if body.recipient is not None:
        req = _warning_request(out, body)
        if req is not None:
            out.warning_id, out.warning_merged = await run_in_threadpool(
                _raise_warning, request.app, req, principal
            )
    return _json(out)


def _check_recipient(recipient: Recipient, principal: Principal) -> None:
    """Refuse a recipient up front, not only when the verdict happens to warrant a warning."""
    if principal.role not in WARNING_ROLES:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"role {principal.role!r} may not raise warnings: leave out the recipient",
        )
    try:
        normalize_value("phone", recipient.phone)
    except InvalidIndicator as exc:
        raise _unprocessable(f"recipient.phone: {exc}") from exc


def _warning_request(out: DetectOut, body: DetectIn) -> WarningRequest | None:
    assert body.recipient is not None
    # Allow-listed entries (official numbers, bank domains) are reassurance, not a reason to warn.
    listed = [h for h in out.watchlist_hits if not h.allowlisted]
    try:
        return warning_from_detection(
            replace(out, watchlist_hits=listed), body.recipient.phone, body.recipient.region_code, body.amount
        )
    except InvalidWarning as exc:
        raise _unprocessable(str(exc)) from exc


def _raise_warning(app: FastAPI, req: WarningRequest, principal: Principal) -> tuple[int, bool]:
    with app.state.sessions() as session:
        warning, merged = repo_warnings.raise_warning(session, req, app.state.settings, principal.username)
        session.commit()
        return warning.id, merged


@router.post("/batch", response_model=BatchOut, summary="Examine many messages or transcripts")
def detect_batch(body: BatchIn, request: Request, _: PartnerDep) -> Response:
    """批量识别：results come back in the order of `items`, one per item (the lines of
    `fanzha detect --input` plus `watchlist_hits`, as for one message); an item that cannot be examined gets
    an `error`, never fails the batch."""
    limit = request.app.state.settings.max_batch_items
    if len(body.items) > limit:
        raise _unprocessable(f"{len(body.items)} items; at most {limit} per batch")
    records = [batch._from_mapping(i, item) for i, item in enumerate(body.items, 1)]
    for rec in records:
        if rec.turns is not None and (error := _dialogue_error(rec.turns)) is not None:
            rec.turns, rec.error = None, error
    lines = batch.process(request.app.state.detector, records)
    results = [_with_hits(request.app, line, rec) for line, rec in zip(lines, records, strict=True)]
    return Response(b'{"results":[' + b",".join(results) + b"]}", media_type="application/json")


def _with_hits(app: FastAPI, line: bytes, rec: batch.Record) -> bytes:
    """A batch result line with the watchlist hits of its indicators and text added."""
    result = orjson.loads(line)
    if "error" in result:
        return line.rstrip(b"\n")
    indicators = [Indicator(**ind) for ind in result["indicators"]]
    text = transcript(rec.turns) if rec.turns is not None else (rec.text or "")
    result["watchlist_hits"] = _hits(app, indicators, text)
    return orjson.dumps(result)


async def _send(ws: WebSocket, payload: dict[str, Any]) -> None:
    await ws.send_text(orjson.dumps(payload).decode())


async def _live_principal(ws: WebSocket, token: str | None) -> Principal | None:
    """From the `token` query parameter, or else from a first message {"token": "…"}."""
    if token is None:
        try:
            message = await asyncio.wait_for(ws.receive(), LIVE_AUTH_TIMEOUT_SECONDS)
        except TimeoutError:
            await ws.close(CLOSE_AUTH_TIMEOUT, "no token message in time")
            return None
        if message["type"] == "websocket.disconnect":
            return None
        first = _parse(message)
        token = first.get("token") if isinstance(first, dict) else None
        if not isinstance(token, str) or not token:
            await ws.close(CLOSE_UNAUTHORIZED, 'login required: ?token=… or a first message {"token": "…"}')
            return None
    principal, reason = await principal_for(ws.app, token)
    if principal is None:
        await ws.close(CLOSE_UNAUTHORIZED, reason)
    return principal


def _parse(message: dict[str, Any]) -> object:
    raw = message.get("text") if message.get("text") is not None else message.get("bytes")
    try:
        return orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None


def _turn_error(session: DialogueSession, msg: object, max_chars: int) -> str | None:
    """Why a message cannot be the next turn (checked before the session keeps it), or None."""
    if not isinstance(msg, dict):
        return 'each message must be a JSON object {"speaker": "caller"|"callee", "text": "…"}'
    speaker, text = msg.get("speaker"), msg.get("text")
    if speaker not in SPEAKERS:
        return f"speaker must be 'caller' or 'callee', got {speaker!r}"
    if not isinstance(text, str):
        return "text must be a string"
    if not text.strip():
        return "text is empty"
    size = sum(len(t.text) + len(TURN_SEPARATOR) for t in session.turns) + len(text)
    if size > max_chars:
        return f"the call would have {size} characters; the limit is {max_chars}"
    return None


@router.websocket("/live")
async def live(ws: WebSocket, token: str | None = None) -> None:
    """A call in progress: send each turn, receive the updated detection (protocol in docs/api.md)."""
    await ws.accept()
    try:
        principal = await _live_principal(ws, token)
        if principal is not None:
            await _serve_call(ws, principal)
    except WebSocketDisconnect:
        pass


async def _serve_call(ws: WebSocket, principal: Principal) -> None:
    detector: Detector = ws.app.state.detector
    max_message = ws.app.state.settings.max_body_bytes
    session = DialogueSession(detector)
    await _send(ws, {"type": "ready", "username": principal.username, "max_turns": MAX_TURNS})
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        if len(message.get("text") or message.get("bytes") or "") > max_message:
            await ws.close(status.WS_1009_MESSAGE_TOO_BIG, f"message longer than {max_message}")
            return
        msg = _parse(message)
        error = _turn_error(session, msg, detector.max_text_chars)
        if error is not None:
            await _send(ws, {"type": "error", "detail": error})
            continue
        assert isinstance(msg, dict)
        cost = sum(len(t.text) for t in session.turns) + len(msg["text"])
        try:
            detection = await _run(cost, session.add_turn, msg["speaker"], msg["text"])
        except InvalidInput as exc:
            await _send(ws, {"type": "error", "detail": str(exc)})
            continue
        out = detect_out(detection, watchlist_hits(ws.app, detection, transcript(session.turns)))
        await ws.send_text('{"type":"detection",' + orjson.dumps(out).decode()[1:])
        if len(session.turns) >= MAX_TURNS:
            await ws.close(status.WS_1008_POLICY_VIOLATION, f"the call reached {MAX_TURNS} turns")
            return
