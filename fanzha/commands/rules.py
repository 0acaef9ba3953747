"""`fanzha rules`: show the transfer-check rules and backtest them on a labelled ledger."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import orjson
import typer

NAME = "rules"
app = typer.Typer(help="Transfer-check rules (转账核验规则): show and backtest.", no_args_is_help=True)


@app.command()
def show(
    rules: Annotated[Path | None, typer.Option(help="Rules YAML (default: the bundled rules).")] = None,
) -> None:
    """Print the rules, their version and the risk bands as JSON."""
    from fanzha.payments.rules import load_rules

    sys.stdout.buffer.write(orjson.dumps(load_rules(rules).to_dict(), option=orjson.OPT_INDENT_2) + b"\n")


@app.command()
def backtest(
    ledger: Annotated[Path, typer.Option(help="Labelled ledger folder (with labels_transfers.parquet).")],
    rules: Annotated[Path | None, typer.Option(help="Rules YAML (default: the bundled rules).")] = None,
    warmup: Annotated[
        float, typer.Option(min=0.0, max=0.95, help="Share of the time span used only to build history.")
    ] = 0.5,
    limit: Annotated[int | None, typer.Option(min=1, help="Check at most this many transfers.")] = None,
    mule_scores: Annotated[
        Path | None,
        typer.Option(help="Parquet: account_id, score — computed on data before the warm-up cut only."),
    ] = None,
    watchlist: Annotated[
        Path | None, typer.Option(help="Watchlist file (CSV, or STIX 2.1 bundle .json) for the payee rules.")
    ] = None,
    text: Annotated[
        bool, typer.Option("--text/--no-text", help="Score remarks with the text engine (as the service).")
    ] = True,
) -> None:
    """Replay the ledger in time order through the checker; report hit rate and false alarms per rule."""
    from fanzha.payments.backtest import backtest as run
    from fanzha.payments.check import MuleScores
    from fanzha.payments.ledger import LedgerError
    from fanzha.payments.rules import RulesError, load_rules

    started = time.perf_counter()
    detector = None
    if text:
        from fanzha.text.detector import Detector

        detector = Detector.from_settings()
    try:
        index = None
        if watchlist is not None:
            from fanzha.payments.backtest import load_watchlist

            index, entries, rejected = load_watchlist(watchlist)
            typer.echo(f"watchlist: {entries} entries, {rejected} rows rejected", err=True)
        report = run(ledger, load_rules(rules), warmup, limit,
                     MuleScores.load(mule_scores) if mule_scores else None, detector, index)
    except (LedgerError, RulesError, OSError, ValueError) as exc:
        typer.secho(f"错误 / error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    sys.stdout.buffer.write(report.to_json() + b"\n")
    typer.echo(f"checked {report.checked} transfers in {time.perf_counter() - started:.1f} s", err=True)
