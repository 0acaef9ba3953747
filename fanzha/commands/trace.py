"""`fanzha trace`: follow a victim's money through a ledger and write the freeze (止付) list."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

NAME = "trace"


def _fail(message: str) -> typer.Exit:
    typer.secho(f"错误 / error: {message}", fg="red", err=True)
    return typer.Exit(2)


def command(
    ledger: Annotated[
        Path, typer.Option(help="Ledger folder (transfers.parquet|csv, accounts.parquet|csv).")
    ],
    transfer: Annotated[
        list[str], typer.Option("--transfer", "-t", help="The victim's transfer id (repeat for several).")
    ],
    hops: Annotated[int, typer.Option(min=1, max=20, help="How many transfers to follow.")] = 6,
    window_hours: Annotated[int, typer.Option(min=1, max=24 * 90, help="Follow money for this long.")] = 72,
    out: Annotated[
        str | None, typer.Option(help="Write the freeze list: PATH.csv, PATH.xlsx, or - for JSON on stdout.")
    ] = None,
    victims: Annotated[
        Path | None,
        typer.Option(help="labels_transfers.parquet (transfer_id → case_id): report other victims' money."),
    ] = None,
    no_save_index: Annotated[
        bool, typer.Option("--no-save-index", help="Do not write the graph index beside the ledger.")
    ] = False,
) -> None:
    """Trace a victim's transfer(s) forward and list the accounts to stop-pay (止付), with amounts.

    Example: fanzha trace --ledger data/ledger -t T000000042 --out 止付清单.xlsx
    """
    from fanzha.payments import freeze_export
    from fanzha.payments.graph import LedgerError, UnknownTransfer, open_graph
    from fanzha.payments.trace import TraceError, known_victims_from_labels, trace

    if not ledger.is_dir():
        raise _fail(f"账本目录不存在 (no ledger folder): {ledger}")
    started = time.perf_counter()
    try:
        graph = open_graph(ledger, write=not no_save_index)
    except (LedgerError, OSError) as exc:
        raise _fail(f"无法读取账本 (cannot read the ledger): {exc}") from exc
    known = None
    if victims is not None:
        try:
            known = known_victims_from_labels(victims)
        except (OSError, ValueError, KeyError) as exc:
            raise _fail(f"无法读取受害人标注 (cannot read {victims}): {exc}") from exc
    loaded = time.perf_counter()
    try:
        result = trace(graph, transfer, max_hops=hops, window_hours=window_hours, known_victims=known)
    except (UnknownTransfer, TraceError) as exc:
        raise _fail(str(exc)) from exc
    traced = time.perf_counter()

    if out == "-":
        sys.stdout.buffer.write(result.to_json(indent=True) + b"\n")
        return
    _print_summary(result)
    typer.echo(f"（载入 {loaded - started:.2f} 秒，追踪 {(traced - loaded) * 1000:.0f} 毫秒）", err=True)
    if out:
        try:
            freeze_export.write(result, Path(out))
        except (ValueError, OSError) as exc:
            raise _fail(str(exc)) from exc
        typer.echo(f"止付清单已写入 {out}")


def _print_summary(result: object) -> None:
    from fanzha.payments.freeze_export import summary_lines, yuan
    from fanzha.payments.trace import TraceResult

    assert isinstance(result, TraceResult)
    for key, value in summary_lines(result):
        typer.echo(f"{key}：{value}")
    freeze = result.freeze_list()
    if freeze:
        typer.echo("\n止付/冻结候选账户：")
        head = f"{'层级':>4}  {'账户':<20} {'开户行':<8} {'可归属金额(元)':>14}"
        typer.echo(f"{head}  首次入账时间         其他受害人")
        for a in freeze[:50]:
            others = ",".join(o.case_id for o in a.other_cases if o.held_fen > 0) or "-"
            cells = f"{a.hop:>4}  {a.account:<20} {a.bank:<8} {yuan(a.held_fen):>14}"
            typer.echo(f"{cells}  {a.first_arrival}  {others}")
        if len(freeze) > 50:
            typer.echo(f"… 共 {len(freeze)} 个账户，完整清单请用 --out 导出")
    if result.exits:
        typer.echo("\n资金去向（已离开本行可追踪范围）：")
        names = {"cash": "取现", "external": "转出他行", "beyond_hops": "超出层级"}
        for x in result.exits[:20]:
            to = x.to_account or "现金"
            typer.echo(f"  {names[x.kind]:<6} {x.from_account} → {to}  {x.ts}  {yuan(x.amount_fen)} 元")
    if result.other_victims:
        typer.echo("\n同一账户中的其他受害人资金：")
        for o in result.other_victims:
            held = yuan(o.held_fen)
            typer.echo(f"  案件 {o.case_id}：{len(o.shared_accounts)} 个共同账户，仍在账 {held} 元")
