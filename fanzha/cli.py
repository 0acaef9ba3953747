"""The `fanzha` command line: detect, evaluate, train, and show the demo."""

from __future__ import annotations

import contextlib
import gc
import importlib
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import orjson
import typer
from typer.core import TyperGroup

import fanzha.commands

# fanzha.settings (pydantic-settings, ~70 ms of imports) is imported where it is used, not here: `fanzha
# detect` without FANZHA_ variables never needs it (see fanzha.text.detector._settings).
PACKAGE_DIR = Path(__file__).resolve().parent


class LazyCommandGroup(TyperGroup):
    """The root command group; the service command groups in `fanzha.commands` are imported only when used.

    Importing them eagerly pulled FastAPI and SQLAlchemy into every `fanzha detect` run (≈0.5 s of a
    1.4 s start-up). A command module is imported when it is invoked, or when `--help` lists it (for its
    one-line help). Its command name is its module name, which must equal the module's `NAME`.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return names + [n for n in _command_module_names() if n not in self.commands]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if (cmd is None or isinstance(cmd, _LazyPlaceholder)) and cmd_name in _command_module_names():
            cmd = self.commands[cmd_name] = _load_command_module(cmd_name)
        return cmd

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        for name in _command_module_names():  # so typo suggestions ("Did you mean …") see them
            self.commands.setdefault(name, _LazyPlaceholder(name))
        try:
            return super().resolve_command(ctx, args)
        finally:
            for name in _command_module_names():
                if isinstance(self.commands.get(name), _LazyPlaceholder):
                    del self.commands[name]


class _LazyPlaceholder:
    """Stands for a not-yet-imported command module while a command name is resolved."""

    def __init__(self, name: str) -> None:
        self.name = name


def _command_module_names() -> list[str]:
    modules = pkgutil.iter_modules(fanzha.commands.__path__)
    return sorted(m.name for m in modules if not m.name.startswith("_"))


def _load_command_module(name: str) -> Any:
    module = importlib.import_module(f"fanzha.commands.{name}")
    if name != module.NAME:
        raise RuntimeError(f"fanzha.commands.{name} declares NAME={module.NAME!r}; it must be {name!r}")
    if hasattr(module, "app"):
        cmd = typer.main.get_group(module.app)
    else:
        holder = typer.Typer(add_completion=False)
        holder.command(name)(module.command)
        cmd = typer.main.get_command(holder)
    cmd.name = name
    return cmd


app = typer.Typer(
    cls=LazyCommandGroup,
    help="fanzha 反诈: recognise telecom and online fraud.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
corpus_app = typer.Typer(help="Inspect and export the labelled corpus.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")

SAMPLE = PACKAGE_DIR / "knowledge" / "samples" / "sample_messages.jsonl"
DEFAULT_CORPUS = Path("data/corpus")
DEFAULT_TELEANTIFRAUD = Path("../shared/datasets/teleantifraud/dialogues.jsonl")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(2)


def _detector():
    from fanzha.text.detector import Detector

    try:
        return Detector.from_settings()
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot load the model: {exc}") from exc


@contextlib.contextmanager
def _open_in(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror}") from exc
    with fh:
        yield fh


@contextlib.contextmanager
def _open_out(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        fh = open(path, "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror}") from exc
    with fh:
        yield fh


@app.command()
def detect(
    text: Annotated[str | None, typer.Argument(help="Text to examine (or use --input).")] = None,
    input: Annotated[
        str | None, typer.Option("--input", "-i", help="JSONL or CSV file, or - for stdin.")
    ] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Where to write JSONL results (- = stdout).")
    ] = "-",
    text_column: Annotated[
        str | None, typer.Option(help="Read CSV and take the text from this column.")
    ] = None,
    id_column: Annotated[str, typer.Option(help="CSV column holding the record id.")] = "id",
    engine: Annotated[
        str,
        typer.Option(
            help="local: in this process. spark: a Spark job (fanzha.jobs.spark_detect) for large "
            "archives, e.g. Parquet; --input and --output must then be paths."
        ),
    ] = "local",
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master URL for --engine spark (default: the job's own).")
    ] = None,
) -> None:
    """Examine one text, or every record of a JSONL/CSV file (one JSON result line per record, in order).

    JSONL records look like {"id": 1, "text": "…"} or
    {"id": 2, "turns": [{"speaker": "caller", "text": "…"}]}.
    """
    if engine not in ("local", "spark"):
        raise _fail(f"--engine must be local or spark, got {engine!r}")
    if (text is None) == (input is None):
        raise _fail("give either a TEXT argument or --input PATH")
    if engine == "spark":
        _detect_spark(input, output, text_column or "text", id_column, spark_master)
        return
    if spark_master is not None:
        raise _fail("--spark-master applies only to --engine spark")

    from fanzha.text import batch
    from fanzha.text.detector import InvalidInput

    detector = _detector()
    if text is not None:
        try:
            result = detector.detect(text)
        except InvalidInput as exc:
            raise _fail(str(exc)) from exc
        sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        return
    assert input is not None
    use_csv = text_column is not None or input.lower().endswith(".csv")
    with _open_in(input) as src, _open_out(output) as dst, _batch_gc():
        try:
            records = (
                batch.read_csv(src, text_column or "text", id_column) if use_csv else batch.read_jsonl(src)
            )
            lines = _refreeze(batch.process(detector, records))
            for line in _progress(lines, input):
                dst.write(line)
        except InvalidInput as exc:
            raise _fail(str(exc)) from exc


def _detect_spark(
    input: str | None, output: str, text_column: str, id_column: str, master: str | None
) -> None:
    """`detect --engine spark`: hand the files to the Spark job and print its summary on stderr."""
    if input is None or input == "-":
        raise _fail("--engine spark needs --input PATH (a file or folder, not '-' or a TEXT argument)")
    if output == "-":
        raise _fail("--engine spark needs --output PATH (Spark writes files, not stdout)")
    if "://" not in input and not Path(input).exists():  # fail before starting a JVM; URLs are Spark's
        raise _fail(f"cannot read {input}: No such file or directory")
    try:
        from fanzha.jobs import spark_detect
    except ImportError as exc:
        raise _fail(f"the Spark engine is not available: {exc}") from exc
    summary = spark_detect.run_detect(
        input, output, text_column=text_column, id_column=id_column, master=master
    )
    sys.stderr.buffer.write(orjson.dumps(summary, default=str, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stderr.flush()


# Young-generation size for batch mode; batch.process keeps one chunk of results alive at a time.
_BATCH_GC_THRESHOLD = 100_000


@contextlib.contextmanager
def _batch_gc() -> Iterator[None]:
    """Keep the cyclic garbage collector out of the way of a batch run.

    A chunk of 2,048 results keeps tens of thousands of objects alive at once. With the default
    thresholds they set off dozens of young collections per chunk and, every chunk or so, a full
    collection that also walks the detector's tables: about 12 µs a message, 15% of the run. The
    detection path creates no reference cycles (a batch leaves no cyclic garbage), so the objects
    built while loading are frozen (never traversed again) and the young generation may grow large;
    cycles, should some input create them, are still collected. Both settings are restored after.
    """
    threshold = gc.get_threshold()
    already_frozen = gc.get_freeze_count() > 0
    gc.freeze()
    gc.set_threshold(_BATCH_GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if not already_frozen:  # unfreeze() cannot tell our objects from those someone else froze
            gc.unfreeze()


def _refreeze(lines: Iterator[bytes], every: int = 2048) -> Iterator[bytes]:
    """Within `_batch_gc`: freeze again every `every` lines (one chunk of `batch.process`).

    What the first messages load on first use (scipy.sparse for batch scoring, tldextract, the rule regexes
    compiled lazily) is created after the freeze at the start; left in the collected generations, it was
    traversed by every later collection (~1 % of the per-message instructions). gc.freeze() is O(1), and
    the live results it also freezes are freed by reference counting as before (no cycles).
    """
    for n, line in enumerate(lines, 1):
        if n % every == 0:
            gc.freeze()
        yield line


def _progress(lines: Iterator[bytes], source: str) -> Iterator[bytes]:
    """Show a progress counter on stderr only when a person is watching."""
    if not sys.stderr.isatty():
        yield from lines
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} records"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True, console=_stderr_console()) as bar:
        task = bar.add_task(f"检测 {source}", total=None)
        for line in lines:
            bar.advance(task)
            yield line


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


@app.command("eval")
def eval_cmd(
    input: Annotated[
        Path, typer.Option("--input", "-i", help="Labelled JSONL (id, text|turns, label, fraud_type).")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Precision, recall, false-positive rate, per-type confusion and speed on labelled data."""
    from fanzha.text.corpus import read_labelled
    from fanzha.text.evaluation import evaluate
    from fanzha.text.report import print_eval

    try:
        examples = list(read_labelled(input))
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    report = evaluate(_detector(), examples)
    if json_out:
        sys.stdout.buffer.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print_eval(report)


@app.command()
def train(
    corpus: Annotated[Path, typer.Option(help="Folder of labelled JSONL files.")] = DEFAULT_CORPUS,
    teleantifraud: Annotated[Path | None, typer.Option(help="TeleAntiFraud dialogues.jsonl (optional).")] = (
        DEFAULT_TELEANTIFRAUD
    ),
    out: Annotated[Path | None, typer.Option(help="Where to write the model.")] = None,
) -> None:
    """Train the text model from the corpus (held-out split excluded) and write it."""
    from fanzha.settings import Settings
    from fanzha.text.detector import Detector
    from fanzha.text.training import train as run_train

    settings = Settings()
    target = out or settings.model_path
    if not corpus.is_dir():
        raise _fail(f"corpus folder {corpus} not found")
    tele = teleantifraud if teleantifraud is not None and teleantifraud.exists() else None
    if teleantifraud is not None and tele is None:
        typer.secho(f"note: {teleantifraud} not found; training without dialogues", err=True)
    report = run_train(Detector.from_settings(settings, with_model=False), corpus, tele, target)
    typer.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    typer.echo(f"model written to {target}")


@corpus_app.command("export")
def corpus_export(
    out: Annotated[str, typer.Option("--out", "-o", help="JSONL file to write (- = stdout).")] = "-",
    split: Annotated[str, typer.Option(help="train, calibration or heldout.")] = "heldout",
    corpus: Annotated[Path, typer.Option(help="Folder of labelled JSONL files.")] = DEFAULT_CORPUS,
    teleantifraud: Annotated[Path | None, typer.Option(help="TeleAntiFraud dialogues.jsonl.")] = None,
    obfuscated: Annotated[
        bool, typer.Option(help="Write obfuscated variants of the fraud messages only.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for --obfuscated.")] = 7,
) -> None:
    """Write one split of the labelled data, e.g. the held-out set for `fanzha eval`."""
    import random

    from fanzha.knowledge.loader import load_typology
    from fanzha.text.corpus import split_of
    from fanzha.text.obfuscate import obfuscate
    from fanzha.text.training import load_examples

    if split not in ("train", "calibration", "heldout"):
        raise _fail("--split must be train, calibration or heldout")
    try:
        examples = load_examples(corpus, teleantifraud, load_typology().label_map())
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    rng = random.Random(seed)
    with _open_out(out) as dst:
        for e in examples:
            if split_of(e.id) != split:
                continue
            rec = e.to_record()
            if obfuscated:
                if e.label != "fraud" or e.text is None:
                    continue
                rec["text"] = obfuscate(e.text, rng)
                rec["id"] = f"{e.id}~obf"
            dst.write(orjson.dumps(rec) + b"\n")


@app.command()
def demo(
    input: Annotated[Path, typer.Option("--input", "-i", help="JSONL of {id, text}.")] = SAMPLE,
) -> None:
    """Scan the bundled sample messages and print a readable table (what `make run` shows)."""
    from fanzha.text import batch
    from fanzha.text.report import print_demo

    detector = _detector()
    with _open_in(str(input)) as src:
        records = list(batch.read_jsonl(src))
    print_demo(detector, records)


if __name__ == "__main__":
    app()
