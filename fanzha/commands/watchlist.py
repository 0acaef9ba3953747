"""`fanzha watchlist import|export|check`: the watchlist from the command line, on the configured database."""

from __future__ import annotations

import getpass
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer

from fanzha.settings import Settings

NAME = "watchlist"
app = typer.Typer(help="Import, export and check the watchlist (涉诈库).", no_args_is_help=True)
Format = Literal["csv", "stix"]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(2)


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _engine():  # type: ignore[no-untyped-def]
    from fanzha.store.db import make_engine, migrate

    url = Settings().resolved_database_url()
    migrate(url)
    return make_engine(url)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(help="CSV file or STIX 2.1 bundle (- = stdin).")],
    format: Annotated[
        Format | None, typer.Option("--format", "-f", help="csv or stix (default: from the file name).")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Source of rows that name none (default partner).")
    ] = None,
) -> None:
    """Import entries in one transaction; bad rows are listed on stderr and skipped (exit code 1)."""
    from fanzha.intel import csvio, stix
    from fanzha.intel.watchlist import SOURCES
    from fanzha.store.repo_watchlist import upsert

    if source is not None and source not in SOURCES:
        raise _fail(f"unknown source {source!r}; sources are {', '.join(SOURCES)}")
    fmt = format or ("stix" if file.endswith(".json") else "csv")
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror}") from exc
    start = time.perf_counter()
    try:
        if fmt == "csv":
            parsed = csvio.read_csv(csvio.decode(data), source)
        else:
            parsed = stix.read_bundle(data, source)
    except ValueError as exc:
        raise _fail(f"{file}: {exc}") from exc
    for err in parsed.errors[:20]:
        _say(f"{file}: row {err.row}: {err.error}")
    bad = len(parsed.errors) + parsed.truncated_errors
    if bad > 20:
        _say(f"… and {bad - 20} more rejected rows")
    took = time.perf_counter() - start
    _say(f"read {parsed.rows} rows ({len(parsed.items)} valid) in {took:.1f}s; writing …")
    engine = _engine()
    try:
        stats = upsert(engine, parsed.items, _actor(), source_label=source)
    finally:
        engine.dispose()
    summary = {**stats.summary(), "rows": parsed.rows, "rejected": bad}
    _say(f"imported: {stats.inserted} new, {stats.updated} updated, {bad} rejected "
         f"({stats.unique / max(stats.seconds, 1e-9):,.0f} entries/s)")
    typer.echo(orjson.dumps(summary).decode())
    if bad:
        raise typer.Exit(1)


@app.command()
def export(
    format: Annotated[Format, typer.Option("--format", "-f", help="csv or stix.")] = "csv",
    output: Annotated[str, typer.Option("--output", "-o", help="File to write (- = stdout).")] = "-",
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only this status (active, whitelisted, expired).")
    ] = None,
) -> None:
    """Write every entry as CSV or a STIX 2.1 bundle."""
    from sqlalchemy.orm import Session

    from fanzha.intel import csvio, stix
    from fanzha.intel.watchlist import KINDS, STATUSES
    from fanzha.store import repo_audit
    from fanzha.store.repo_watchlist import ENTITY, iter_entries

    if kind is not None and kind not in KINDS:
        raise _fail(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
    if status is not None and status not in STATUSES:
        raise _fail(f"unknown status {status!r}; statuses are {', '.join(STATUSES)}")
    try:
        out = sys.stdout.buffer if output == "-" else open(output, "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror}") from exc
    engine = _engine()
    n = 0
    try:
        with Session(engine) as session:
            with session.begin():
                repo_audit.record(session, _actor(), "export", ENTITY, format,
                                  after={"format": format, "kind": kind, "status": status})

            def counted():  # type: ignore[no-untyped-def]
                nonlocal n
                for entry in iter_entries(session, kind=kind, status=status):
                    n += 1
                    yield entry

            if format == "stix":
                for chunk in stix.write_bundle(counted()):
                    out.write(chunk)
            else:
                for text in csvio.write_csv(counted()):
                    out.write(text.encode())
    finally:
        engine.dispose()
        if out is not sys.stdout.buffer:
            out.close()
        else:
            out.flush()
    _say(f"exported {n} entries as {format}")


@app.command()
def check(
    kind: Annotated[str, typer.Argument(help="phone, url, domain, bank_card, qq, wechat, …")],
    value: Annotated[str, typer.Argument(help="The value, in any spelling.")],
) -> None:
    """Check one value against the watchlist and the allow-list; prints the verdict and matches as JSON."""
    from fanzha.intel.matcher import verdict
    from fanzha.intel.watchlist import InvalidIndicator, normalize_value
    from fanzha.store.repo_watchlist import load_index

    try:
        normalized = normalize_value(kind, value)
    except InvalidIndicator as exc:
        raise _fail(str(exc)) from exc
    engine = _engine()
    try:
        start = time.perf_counter()
        index = load_index(engine)
        _say(f"loaded {len(index)} entries in {time.perf_counter() - start:.1f}s")
    finally:
        engine.dispose()
    matches = index.match_normalized(kind, normalized)
    out = {
        "kind": kind,
        "value": normalized,
        "verdict": verdict(matches),
        "matches": [asdict(m) for m in matches],
    }
    typer.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
