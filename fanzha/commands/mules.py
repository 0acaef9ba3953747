"""`fanzha mules`: score every account of a ledger as a possible mule (两卡/跑分), evaluate, train."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table

NAME = "mules"
app = typer.Typer(
    help="Mule and laundering-platform detection (两卡/跑分账户识别).", invoke_without_command=True
)
Engine = Annotated[str, typer.Option(help="duckdb (embedded, default) or spark.")]
LedgerOpt = Annotated[Path, typer.Option(help="Ledger folder (accounts/transfers .parquet or .csv).")]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"错误 / error: {message}", fg="red", err=True)
    return typer.Exit(2)


ModelOpt = Annotated[
    Path | None, typer.Option(help="Model file (default: the bundled knowledge/mule_model.yaml).")
]


def _model(path: Path | None) -> Any:
    from fanzha.payments import mules

    try:
        return mules.load_model(path or mules.MODEL_PATH)
    except (OSError, ValueError, KeyError) as exc:
        raise _fail(f"模型文件无法读取 (cannot read model): {exc}") from exc


def _score(ledger: Path, engine: str, master: str | None, model: Any = None) -> pa.Table:
    from fanzha.payments import mules

    if not ledger.is_dir() and "://" not in str(ledger):
        raise _fail(f"账本目录不存在 (no ledger folder): {ledger}")
    try:
        if engine == "duckdb":
            return mules.score_ledger(ledger, model)
        if engine == "spark":
            from fanzha.jobs.spark_mules import score_ledger
            from fanzha.jobs.spark_session import spark_session

            return score_ledger(str(ledger), spark_session(master, app_name="fanzha-mules"), model)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from exc
    raise _fail(f"unknown engine {engine!r}: use duckdb or spark")


def _print_top(scores: pa.Table, top: int, console: Console) -> None:
    rows = sorted(scores.to_pylist(), key=lambda r: -r["score"])
    table = Table(title=f"可疑账户 Top {top}")
    for col in ("账户", "分数", "团伙", "理由"):
        table.add_column(col)
    for r in rows[:top]:
        table.add_row(
            r["account_id"], f"{r['score']:.1f}", r["group_id"] or "-", "；".join(orjson.loads(r["reasons"]))
        )
    console.print(table)
    groups: dict[str, list[str]] = {}
    for r in rows:
        if r["group_id"]:
            groups.setdefault(r["group_id"], []).append(r["account_id"])
    if groups:
        gt = Table(title=f"关联团伙 {len(groups)} 个（按账户数）")
        gt.add_column("团伙")
        gt.add_column("账户数")
        gt.add_column("账户（前 8 个）")
        for gid, members in sorted(groups.items(), key=lambda kv: -len(kv[1]))[:top]:
            gt.add_row(gid, str(len(members)), ", ".join(members[:8]))
        console.print(gt)


@app.callback()
def score(
    ctx: typer.Context,
    ledger: Annotated[
        Path | None, typer.Option(help="Ledger folder (accounts/transfers .parquet or .csv).")
    ] = None,
    engine: Engine = "duckdb",
    master: Annotated[
        str | None, typer.Option(help="Spark master URL (default local[2] or $FANZHA_SPARK_MASTER).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write MuleScore rows to this Parquet file.")] = None,
    top: Annotated[int, typer.Option(min=0, help="How many accounts to print.")] = 20,
    model: ModelOpt = None,
) -> None:
    """Score every account (0–100) with reasons, and group connected suspects.

    Example: fanzha mules --ledger data/ledger --out mule_scores.parquet --top 20
    """
    if ctx.invoked_subcommand is not None:
        return
    if ledger is None:
        raise _fail("--ledger is required")
    from fanzha.payments.mules import write_scores

    started = time.perf_counter()
    scores = _score(ledger, engine, master, _model(model))
    if out is not None:
        write_scores(scores, out)
    console = Console()
    _print_top(scores, top, console)
    console.print(
        f"{scores.num_rows} 个账户已评分，用时 {time.perf_counter() - started:.1f} 秒（{engine}）"
        + (f"，结果写入 {out}" if out else "")
    )


def _labels(ledger: Path, scores: pa.Table) -> Any:
    from fanzha.payments import mules

    try:
        return mules.load_labels(ledger, scores.column("account_id").to_pylist())
    except FileNotFoundError as exc:
        raise _fail(f"没有标注 (no labels_accounts in {ledger}): {exc}") from exc


@app.command("eval")
def evaluate(
    ledger: LedgerOpt,
    engine: Engine = "duckdb",
    master: Annotated[str | None, typer.Option()] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    model: ModelOpt = None,
) -> None:
    """Measure against the simulator's labels (positives: mule, platform, cashout; victims are negatives).

    Example: fanzha mules eval --ledger data/heldout
    """
    from fanzha.payments import mules

    the_model = _model(model)
    scores = _score(ledger, engine, master, the_model)
    m = mules.evaluate(scores.column("score").to_numpy(), _labels(ledger, scores))
    m["model_version"] = the_model.version
    m["simulator_version"] = _simulator_version(ledger)
    if json:
        typer.echo(orjson.dumps(m, option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(
        f"账户 {m['accounts']}，阳性（mule/platform/cashout）{m['positives']}，模型 {m['model_version']}，"
        f"模拟器版本 {m['simulator_version'] or '未知'}"
    )
    typer.echo(
        f"PR-AUC {m.get('pr_auc', float('nan')):.4f}；精确率≥80% 时召回率 "
        f"{m.get('recall_at_precision_0.8', 0):.1%}；"
        f"精确率≥90% 时召回率 {m.get('recall_at_precision_0.9', 0):.1%}"
    )
    for k, v in m["at_k"].items():
        typer.echo(f"  top {k:>6}: 精确率 {v['precision']:.1%}  召回率 {v['recall']:.1%}")


def _simulator_version(ledger: Path) -> str | None:
    """The simulator's generator version from a simulated ledger's manifest.json (None for a bank's)."""
    try:
        return str(orjson.loads((ledger / "manifest.json").read_bytes()).get("generator_version"))
    except (OSError, ValueError, AttributeError):
        return None


@app.command("train")
def train(
    ledger: Annotated[
        list[Path], typer.Option(help="A TRAINING ledger (repeat for several simulator seeds).")
    ],
    version: Annotated[str, typer.Option(help="Model version to record.")],
    validate: Annotated[
        list[Path] | None, typer.Option(help="A validation ledger, only scored and printed (repeatable).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Model file (default: the bundled mule_model.yaml).")
    ] = None,
    folds: Annotated[int, typer.Option(min=2, help="Cross-fitting folds of the first pass.")] = 2,
    negatives: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Share of non-mule accounts kept (weighted back).")
    ] = 0.25,
    trees: Annotated[int, typer.Option(min=1, help="Boosting rounds (trees) of each pass.")] = 300,
    depth: Annotated[int, typer.Option(min=1, max=8, help="Maximum tree depth.")] = 4,
    learning_rate: Annotated[float, typer.Option(help="Shrinkage per tree.")] = 0.05,
    min_leaf: Annotated[int, typer.Option(min=1, help="Minimum training accounts per leaf.")] = 20,
) -> None:
    """Fit the two-pass scoring model on TRAINING ledgers' labels; never on a held-out seed.

    Pass 1 scores accounts from their own features; pass 2 adds the money-weighted first-pass scores of
    each account's payers and payees (see docs/payments_mules.md). The seeds and the simulator version
    come from each ledger's manifest.json and are recorded in the model.
    Example: fanzha mules train --ledger s1 --ledger s2 --validate s3 --version 5-local
    """
    from fanzha.payments import mule_train, mules

    validation = validate or []
    for path in [*ledger, *validation]:
        if not path.is_dir():
            raise _fail(f"账本目录不存在 (no ledger folder): {path}")
    clash = mule_train.seeds(ledger) & mule_train.seeds(validation)
    if clash:
        raise _fail(f"种子 {sorted(clash)} 既用于训练又用于验证 (seeds both trained and validated on)")
    hyper = {
        "max_iter": trees, "max_depth": depth, "learning_rate": learning_rate, "min_samples_leaf": min_leaf
    }
    model = mule_train.train(
        ledger, version=version, folds=folds, negatives=negatives, hyper=hyper,
        log=lambda line: typer.echo(line, err=True),
    )
    path = out or mules.MODEL_PATH
    mules.save_model(model, path)
    typer.echo(f"模型已写入 / model written to {path}")
    for line in mule_train.validation_lines(model, validation):
        typer.echo(line)
