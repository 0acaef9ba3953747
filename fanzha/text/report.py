"""Human-readable tables for the terminal (demo scan and evaluation report)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from fanzha.text.batch import Record
from fanzha.text.detector import Detector, InvalidInput
from fanzha.text.dialogue import detect_dialogue
from fanzha.text.evaluation import EvalReport

VERDICT_STYLE = {"fraud": "bold red", "suspicious": "yellow", "normal": "green"}
VERDICT_ZH = {"fraud": "诈骗", "suspicious": "可疑", "normal": "正常"}


def _short(text: str, width: int = 46) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_demo(detector: Detector, records: Sequence[Record], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"fanzha 识骗 — 示例信息扫描 (model {detector.version})", show_lines=False)
    for col in ("id", "信息", "结论", "风险", "诈骗类型", "涉诈要素"):
        table.add_column(col)
    for rec in records:
        if rec.error:
            table.add_row(str(rec.id), f"[red]{rec.error}[/]", "", "", "", "")
            continue
        try:
            if rec.turns is not None:
                d = detect_dialogue(detector, rec.turns)
                shown = " / ".join(t.text for t in rec.turns)
            else:
                d = detector.detect(rec.text or "")
                shown = rec.text or ""
        except InvalidInput as exc:
            table.add_row(str(rec.id), f"[red]{exc}[/]", "", "", "", "")
            continue
        inds = ", ".join(f"{i.kind}:{i.value}" for i in d.indicators[:3])
        table.add_row(
            str(rec.id),
            _short(shown),
            f"[{VERDICT_STYLE[d.verdict]}]{VERDICT_ZH[d.verdict]}[/]",
            str(d.risk),
            d.fraud_type_name or "",
            _short(inds, 40),
        )
    console.print(table)


def print_eval(r: EvalReport, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"examples: {r.n} (fraud {r.n_fraud}, legitimate {r.n_legit})")
    console.print(
        f"precision {r.precision:.4f}  recall {r.recall:.4f}  false-positive rate {r.false_positive_rate:.4f}"
        f"  flagged(legit) {r.flagged_rate_legit:.4f}  spam→fraud {r.spam_as_fraud_rate:.4f}"
    )
    console.print(
        f"fraud-type accuracy {r.type_accuracy:.4f} on {r.n_type_clear} clear-type fraud"
        f" ({r.type_accuracy_detected:.4f} among detected)"
    )
    if r.median_alert_turn_fraction is not None:
        console.print(
            f"dialogues: median share of the call heard before the alert {r.median_alert_turn_fraction:.2f}"
        )
    console.print(f"speed: {r.per_second:,.0f} examples/s ({r.seconds:.2f} s)")
    types = Table(title="recall by fraud type")
    types.add_column("type")
    types.add_column("detected/total")
    for k, (hit, n) in r.recall_by_type.items():
        types.add_row(k, f"{hit}/{n}")
    console.print(types)
    cats = Table(title="false positives by legitimate category")
    cats.add_column("category")
    cats.add_column("fraud verdicts/total")
    for k, (hit, n) in r.fpr_by_category.items():
        cats.add_row(k, f"{hit}/{n}")
    console.print(cats)
    conf = Table(title="fraud-type confusion (true → predicted)")
    conf.add_column("true type")
    conf.add_column("predicted")
    for k, row in r.type_confusion.items():
        conf.add_row(k, ", ".join(f"{p}:{n}" for p, n in row.items()))
    console.print(conf)
