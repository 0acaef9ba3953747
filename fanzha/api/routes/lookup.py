"""Public look-up (查号/查网址): is this number, site or account known for fraud?

Answers with verdict, fraud types, report count and advice; never with who reported it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from pydantic import BaseModel

from fanzha.api.deps import SessionDep, optional_principal
from fanzha.api.limits import RateLimiter, enforce
from fanzha.api.routes.watchlist import index_of
from fanzha.intel.matcher import verdict
from fanzha.intel.watchlist import KINDS, InvalidIndicator, normalize_value
from fanzha.store import repo_watchlist
from fanzha.store.repo_users import Principal

router = APIRouter(prefix="/v1", tags=["lookup 公众查询"])
PARTNER_FACTOR = 10  # logged-in clients (banks, carriers, apps with an API key) may ask this many times more
ADVICE = {
    "unknown": "暂无该信息的涉诈记录，但这不代表一定安全。凡是要求转账汇款、提供验证码、"
               "下载陌生App或屏幕共享的，都请先挂断并核实；如有疑问请拨打96110反诈专线，"
               "遇到诈骗请立即拨打110报警。",
    "allowlisted": "这是官方号码或网站。但骗子可以伪造来电显示、仿冒页面，"
                   "请通过官方App或官网公布的渠道回拨核实，"
                   "任何情况下都不要向他人透露验证码，不要向“安全账户”转账。",
    "fraud": "该信息已被列入涉诈库，请立即停止联系，不要转账、不要透露验证码或银行卡信息。"
             "如已转账，请立即拨打110报警并联系银行止付。",
}


class LookupOut(BaseModel):
    kind: str
    value: str
    verdict: Literal["fraud", "allowlisted", "unknown"]
    fraud_types: list[str]
    fraud_type_names: list[str]
    report_count: int
    last_seen: datetime | None
    official_name: str | None
    advice: str


def load_state(app: FastAPI) -> None:
    app.state.lookup_limiter = RateLimiter(app.state.settings.lookup_rate_per_minute)


def _limit(request: Request, principal: Principal | None) -> None:
    if getattr(request.app.state, "lookup_limiter", None) is None:
        load_state(request.app)
    enforce(request.app.state.lookup_limiter, request, principal, PARTNER_FACTOR,
            "查询过于频繁，请稍后再试 (too many look-ups; retry later)")


def _typology(request: Request) -> object | None:
    return getattr(getattr(request.app.state, "detector", None), "typology", None)


def _names_and_advice(request: Request, codes: list[str]) -> tuple[list[str], str | None]:
    typology = _typology(request)
    names: list[str] = []
    advice: str | None = None
    for code in codes:
        try:
            names.append(typology.name(code))  # type: ignore[union-attr]
            advice = advice or typology.advice(code)  # type: ignore[union-attr]
        except (AttributeError, KeyError):
            continue
    return names, advice


@router.get("/lookup", response_model=LookupOut)
def lookup(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal | None, Depends(optional_principal)],
    kind: Annotated[str, Query(max_length=16, description=f"one of {', '.join(KINDS)}")],
    value: Annotated[str, Query(min_length=1, max_length=1024)],
) -> LookupOut:
    """Verdict for one phone number, URL, domain, account, IM ID, app or wallet: `fraud` (listed),
    `allowlisted` (official) or `unknown`, with fraud types, report count, last seen and advice.
    No login needed; logged-in partners get a higher rate limit."""
    _limit(request, principal)
    try:
        normalized = normalize_value(kind, value)
    except InvalidIndicator as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    matches = index_of(request).match_normalized(kind, normalized)
    result = verdict(matches)
    listed = [m for m in matches if not m.allowlisted]
    rows = repo_watchlist.get_by_keys(session, [(m.kind, m.value) for m in listed])
    codes = list(dict.fromkeys(m.fraud_type for m in listed if m.fraud_type))
    names, advice = _names_and_advice(request, codes)
    official = next((m.label for m in matches if m.allowlisted and m.label), None)
    return LookupOut(
        kind=kind,
        value=normalized,
        verdict=result,
        fraud_types=codes,
        fraud_type_names=names,
        report_count=sum(r.report_count for r in rows),
        last_seen=max((r.last_seen for r in rows), default=None),
        official_name=official,
        advice=(advice if result == "fraud" and advice else ADVICE[result]),
    )
