"""`fanzha simulate`: generate a synthetic bank ledger with embedded fraud flows and ground-truth labels."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

NAME = "simulate"


def command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the ledger into.")],
    accounts: Annotated[int, typer.Option(min=1_000, help="Number of accounts.")] = 100_000,
    transfers: Annotated[int, typer.Option(min=1_000, help="Approximate number of transfers.")] = 1_000_000,
    days: Annotated[int, typer.Option(min=1, max=3_650, help="Length of the period in days.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives identical files.")] = 1,
    fraud_rate: Annotated[
        float,
        typer.Option(min=0.0, max=0.2, help="Share of the bank's personal accounts that become victims."),
    ] = 0.002,
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD, China Standard Time).")] = "2026-09-01",
    format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """生成模拟银行流水（含诈骗资金链路和标注）/ Generate a simulated ledger with fraud flows and labels.

    Writes accounts, transfers, labels_accounts, labels_transfers (.parquet or .csv) and manifest.json.
    """
    from fanzha.payments.simulate import SimConfig, simulate

    try:
        first = datetime.strptime(start, "%Y-%m-%d")
        cfg = SimConfig(
            accounts=accounts,
            transfers=transfers,
            days=days,
            seed=seed,
            fraud_rate=fraud_rate,
            start=first,
            fmt=format,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    if out.exists() and not out.is_dir():
        typer.secho(f"error: {out} 不是目录 / is not a folder", fg="red", err=True)
        raise typer.Exit(2)

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            typer.echo(f"\r  已生成 / generated {done:,} / ~{total:,}", err=True, nl=False)

    try:
        result = simulate(cfg, out, progress)
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    if sys.stderr.isatty():
        typer.echo("", err=True)
    roles = ", ".join(f"{k} {v:,}" for k, v in result.roles.items())
    typer.echo(f"模拟账本已写入 / ledger written to {out}")
    typer.echo(f"  账户 / accounts: {result.accounts:,}  ({roles})")
    typer.echo(
        f"  交易 / transfers: {result.transfers:,}  其中涉诈 / fraud: {result.fraud_transfers:,}"
        f"  案件 / cases: {result.cases:,}"
    )
    typer.echo(f"  文件 / files: {', '.join(result.files)}, manifest.json")
    typer.echo(f"  用时 / time: {result.seconds:.1f} s  ({result.per_minute / 1e6:.1f} M transfers/min)")
