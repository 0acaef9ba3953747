"""`fanzha ledger validate`: load a ledger folder, report accepted and rejected rows by reason."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

NAME = "ledger"
app = typer.Typer(help="Check ledgers (账户与交易流水).", no_args_is_help=True)


@app.command("validate")
def validate(
    directory: Annotated[Path, typer.Argument(help="Ledger folder (accounts/transfers .parquet or .csv).")],
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Write the rejected rows with reasons to this CSV.")
    ] = None,
    now: Annotated[
        str | None, typer.Option(help="Reject transfers after this time (default: now, CST).")
    ] = None,
) -> None:
    """校验账本：统计通过与拒收的行及原因 / Validate a ledger and count rejected rows by reason.

    Exits 0 even when rows are rejected; 2 when the folder or a table cannot be used at all.
    """
    from fanzha.payments.ledger import REASON_ZH, LedgerError, RejectReason, read_ledger, write_rejects

    try:
        cutoff = datetime.fromisoformat(now) if now else None
        load = read_ledger(directory, now=cutoff, labels=False)
    except (LedgerError, ValueError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    for name in ("accounts", "transfers"):
        kept = load.accounts if name == "accounts" else load.transfers
        read = load.rows_read[name]
        typer.echo(
            f"{load.files[name].name}: 读取 / read {read:,}, 通过 / accepted {kept.num_rows:,},"
            f" 拒收 / rejected {read - kept.num_rows:,}"
        )
    for reason, count in load.reject_counts.items():
        typer.echo(f"  {reason} ({REASON_ZH[RejectReason(reason)]}): {count:,}")
    if rejects is not None:
        try:
            write_rejects(load.rejects, rejects)
        except OSError as exc:
            typer.secho(f"error: cannot write {rejects}: {exc.strerror}", fg="red", err=True)
            raise typer.Exit(2) from exc
        typer.echo(f"拒收明细 / rejected rows written to {rejects}")
