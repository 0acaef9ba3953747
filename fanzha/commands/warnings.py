"""`fanzha warnings …`: list warning tasks (预警劝阻), escalate overdue ones, and show statistics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from fanzha.api.deps import region_prefix
from fanzha.cases.warnings import OUTCOME_NAMES, masked_person
from fanzha.settings import Settings
from fanzha.store import repo_warnings
from fanzha.store.db import make_engine, make_sessionmaker, migrate, transaction
from fanzha.store.models import utcnow

NAME = "warnings"
app = typer.Typer(help="Warning tasks (预警劝阻): list, escalate, statistics.", no_args_is_help=True)
STATUS_NAMES = {"open": "待处置", "closed": "已办结"}


def _sessions() -> sessionmaker[Session]:
    settings = Settings()
    url = settings.resolved_database_url()
    migrate(url)
    return make_sessionmaker(make_engine(url))


def _region(code: str | None) -> str | None:
    if code is not None and not (len(code) == 6 and code.isdigit()):
        raise typer.BadParameter("a region is 6 digits (行政区划代码), e.g. 330106 or 330100")
    return code


def _type_names() -> Callable[[str | None], str]:
    """Chinese names of fraud type codes for people; the code itself if the typology cannot tell."""
    from fanzha.knowledge.loader import load_typology

    typology = load_typology(Settings().typology_dir)

    def name(code: str | None) -> str:
        if not code:
            return "-"
        try:
            return typology.name(code)
        except KeyError:
            return code

    return name


@app.command("list")
def list_cmd(
    region: Annotated[
        str | None, typer.Option(help="Region code; a city or province includes its parts.")
    ] = None,
    status: Annotated[str | None, typer.Option(help="open or closed (default: both).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many rows.")] = 50,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per line instead of a table.")
    ] = False,
) -> None:
    """Tasks, most urgent first, with the person's phone and name masked."""
    if status not in (None, "open", "closed"):
        raise typer.BadParameter("--status is open or closed")
    code = _region(region)
    with _sessions()() as session:
        rows, total = repo_warnings.list_warnings(
            session, status=status, region_prefix=region_prefix(code) if code else None, limit=limit
        )
        names = repo_warnings.usernames(session, [w.assignee_id for w in rows])
    now = utcnow()
    records = [
        {
            "id": w.id,
            "priority": w.priority,
            "status": w.status,
            "region_code": w.region_code,
            **masked_person(w.person_phone, w.person_account, w.person_name),
            "fraud_type": w.fraud_type,
            "risk": w.risk,
            "amount_at_stake": w.amount_at_stake,
            "assignee": names.get(w.assignee_id) if w.assignee_id else None,
            "merged_count": w.merged_count,
            "escalated": w.escalated,
            "due_at": w.due_at.isoformat(timespec="minutes"),
            "overdue": w.status == "open" and w.first_contact_at is None and w.due_at < now,
            "outcome": w.outcome,
        }
        for w in rows
    ]
    if json_out:
        for r in records:
            typer.echo(orjson.dumps(r).decode())
        return
    type_name = _type_names()
    table = Table(title=f"预警任务 {len(records)} / {total}", title_justify="left")
    for col in ("#", "优先级", "状态", "地区", "对象", "诈骗类型", "风险", "金额(元)", "处置人", "时限"):
        table.add_column(col, overflow="fold")
    for r in records:
        person = " ".join(str(x) for x in (r["person_name"], r["person_phone"] or r["person_account"]) if x)
        state = OUTCOME_NAMES.get(r["outcome"] or "") or STATUS_NAMES.get(r["status"], r["status"])
        due = r["due_at"][5:].replace("T", " ") + (" 超时" if r["overdue"] else "")
        table.add_row(
            str(r["id"]),
            f"P{r['priority']}" + ("↑" if r["escalated"] else ""),
            state,
            r["region_code"],
            person,
            type_name(r["fraud_type"]),
            str(r["risk"]),
            f"{r['amount_at_stake']:,.0f}",
            r["assignee"] or "未分派",
            due,
        )
    Console().print(table)


@app.command()
def escalate() -> None:
    """Escalate every open task nobody contacted by its deadline (the API does this every minute)."""
    with transaction(_sessions()) as session:
        done = repo_warnings.escalate_overdue(session, utcnow(), Settings(), actor="cli")
        names = repo_warnings.usernames(session, [a for e in done for a in (e.from_assignee, e.to_assignee)])
    for e in done:
        typer.echo(
            f"#{e.warning_id} → P{e.priority}, "
            f"{names.get(e.from_assignee) or '未分派'} → {names.get(e.to_assignee) or '未分派'}"
        )
    typer.echo(f"escalated {len(done)} task(s)")


@app.command()
def stats(
    date_from: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (default: 30 days ago).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (default: today, UTC).")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Region code; a city or province includes its parts.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
) -> None:
    """Volume, median minutes to first contact, dissuasion rate and outcomes of a period."""
    try:
        last = date.fromisoformat(date_to) if date_to else utcnow().date()
        first = date.fromisoformat(date_from) if date_from else last - timedelta(days=29)
    except ValueError as exc:
        raise typer.BadParameter(f"dates are YYYY-MM-DD: {exc}") from exc
    if first > last:
        raise typer.BadParameter("--from must not be after --to")
    code = _region(region)
    with _sessions()() as session:
        result = repo_warnings.stats(session, first, last, region_prefix(code) if code else None)
    if json_out:
        typer.echo(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    rate = f"{result.dissuasion_rate:.1%}" if result.dissuasion_rate is not None else "-"
    median = result.median_minutes_to_first_contact
    console = Console()
    console.print(f"预警统计 {first} … {last}" + (f"  地区 {code}" if code else ""))
    console.print(
        f"总数 {result.total}  待处置 {result.open}  已办结 {result.closed}  升级 {result.escalated}\n"
        f"首次联系中位时长 {median if median is not None else '-'} 分钟  "
        f"劝阻成功率 {rate}（{result.reached_closed} 起已联系到本人）"
    )
    outcomes = Table(title="处置结果", title_justify="left")
    outcomes.add_column("结果")
    outcomes.add_column("数量", justify="right")
    for outcome, n in result.by_outcome.items():
        outcomes.add_row(f"{OUTCOME_NAMES[outcome]} ({outcome})", str(n))
    console.print(outcomes)
    volume = Table(title="每日数量", title_justify="left")
    for col in ("日期", "地区", "数量"):
        volume.add_column(col)
    for row in result.by_day_region:
        volume.add_row(row["day"], row["region_code"], str(row["count"]))
    console.print(volume)
