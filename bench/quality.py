"""Quality of the bundled (or a given) text model on one split, by corpus batch.

    .venv/bin/python bench/quality.py                      # held-out split (look at it sparingly)
    .venv/bin/python bench/quality.py --split calibration  # for choices: never use the held-out split
    FANZHA_MODEL_PATH=/tmp/m.npz .venv/bin/python bench/quality.py --split calibration
    .venv/bin/python bench/quality.py --testsets           # data/testsets/*.jsonl: never trained on
    .venv/bin/python bench/quality.py --testsets --glob "*_n*.jsonl"   # one test set (n)

Prints one Markdown row per set: messages of the corpus batches a–e, then each later batch (by id
prefix: `fa-`/`la-`, `fg2-` …), all messages, obfuscated copies of the fraud messages
(`fanzha.text.obfuscate`, seed 7, as `fanzha corpus export --obfuscated`), and messages + TeleAntiFraud
dialogues of the split. Then the risk the model gives to a fixed list of lone words (a probe of the
lone-word weakness, not a metric). With `--testsets`, the rows are the files of `data/testsets/` (written
after the model, never used by `fanzha train`, all rows evaluated), their union, and the union restricted
to rows with no near-duplicate in the corpus (character-trigram Jaccard similarity to every corpus line
below NOVEL_BELOW): writers given the same brief sometimes write nearly the same line, and such a line in
the training corpus would flatter the test-set figure.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fanzha.knowledge.loader import load_typology  # noqa: E402
from fanzha.text.corpus import Example, batch_of, read_labelled, split_of  # noqa: E402
from fanzha.text.detector import Detector  # noqa: E402
from fanzha.text.evaluation import EvalReport, evaluate  # noqa: E402
from fanzha.text.obfuscate import obfuscate  # noqa: E402
from fanzha.text.training import load_examples  # noqa: E402

LONE_WORDS = (
    "押金", "定金", "保证金", "手续费", "USDT", "资金核查", "解冻", "房租", "货款", "验证码",
    "退款", "理财", "转账", "投资", "客服",
)  # fmt: skip


NOVEL_BELOW = 0.4


def _trigrams(text: str) -> set[str]:
    t = "".join(ch for ch in text if not ch.isspace())
    return {t[i : i + 3] for i in range(len(t) - 2)} or {t}


def nearest_similarity(texts: Sequence[str], corpus: Sequence[str]) -> list[float]:
    """For each text, the highest character-trigram Jaccard similarity to any corpus text."""
    grams = [_trigrams(t) for t in corpus]
    index: defaultdict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(grams):
        for x in g:
            index[x].append(i)
    out = []
    for text in texts:
        g = _trigrams(text)
        shared: defaultdict[int, int] = defaultdict(int)
        for x in g:
            for i in index.get(x, ()):
                shared[i] += 1
        out.append(max((c / (len(g) + len(grams[i]) - c) for i, c in shared.items()), default=0.0))
    return out


def row(name: str, r: EvalReport) -> str:
    return (
        f"| {name} | {r.n} ({r.n_fraud} fraud / {r.n_legit} legit) | {r.recall:.3f} | "
        f"{r.false_positive_rate:.4f} | {r.flagged_rate_legit:.3f} | {r.precision:.3f} | "
        f"{r.type_accuracy:.3f} |"
    )


def header() -> None:
    print(
        "| set | examples | fraud recall | FPR (legit → fraud) | legit flagged | precision "
        "| type accuracy (clear) |"
    )
    print("|---|---|---|---|---|---|---|")


def test_sets(detector: Detector, folder: Path, pattern: str = "*.jsonl") -> None:
    print(f"model {detector.version}, test sets {folder / pattern}")
    header()
    everything: list[Example] = []
    for path in sorted(folder.glob(pattern)):
        examples = list(read_labelled(path))
        everything.extend(examples)
        print(row(path.stem, evaluate(detector, examples)))
    report = evaluate(detector, everything)
    print(row("all test sets", report))
    corpus = [e.text for p in sorted((ROOT / "data" / "corpus").glob("*.jsonl")) for e in read_labelled(p)]
    sims = nearest_similarity([e.text or "" for e in everything], [t for t in corpus if t])
    novel = [e for e, s in zip(everything, sims, strict=True) if s < NOVEL_BELOW]
    print(row(f"all, no near-duplicate in corpus (< {NOVEL_BELOW})", evaluate(detector, novel)))
    for t, (hit, total) in sorted(report.recall_by_type.items()):
        print(f"  {t}: {hit}/{total}")
    flagged = {k: f"{a}/{b}" for k, (a, b) in sorted(report.fpr_by_category.items()) if a}
    print(f"legitimate categories with fraud verdicts: {flagged}")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="heldout", choices=("train", "calibration", "heldout"))
    ap.add_argument("--corpus", type=Path, default=ROOT / "data" / "corpus")
    ap.add_argument(
        "--teleantifraud",
        type=Path,
        default=ROOT.parent / "shared" / "datasets" / "teleantifraud" / "dialogues.jsonl",
    )
    ap.add_argument("--by-type", action="store_true", help="Also print recall by fraud type of the messages.")
    ap.add_argument("--testsets", action="store_true", help="Evaluate data/testsets/*.jsonl instead.")
    ap.add_argument(
        "--glob", default="*.jsonl", help="With --testsets: only these files (e.g. '*_n*.jsonl': one set)."
    )
    args = ap.parse_args(argv)

    detector = Detector.from_settings()
    if args.testsets:
        test_sets(detector, ROOT / "data" / "testsets", args.glob)
        return
    tele = args.teleantifraud if args.teleantifraud.exists() else None
    examples = [
        e
        for e in load_examples(args.corpus, tele, load_typology().label_map())
        if split_of(e.id) == args.split
    ]
    messages = [e for e in examples if e.turns is None]
    print(f"model {detector.version}, split {args.split}")
    header()
    # batches a–e together (comparable with the figures of models 1.0–1.3), then one row per later batch
    later = sorted({b for e in messages if (b := batch_of(e.id)) is not None and b > "e"})
    for name, letters in [("a–e", {"a", "b", "c", "d", "e"}), *((b, {b}) for b in later)]:
        subset = [e for e in messages if (b := batch_of(e.id)) is not None and b in letters]
        if subset:
            print(row(f"messages {name}", evaluate(detector, subset)))
    all_messages = evaluate(detector, messages)
    print(row("messages, all batches", all_messages))
    rng = random.Random(7)
    obf = [
        Example(e.id + "~obf", e.label, e.fraud_type, e.type_clear, e.source, text=obfuscate(e.text, rng))
        for e in messages
        if e.label == "fraud" and e.text is not None
    ]
    print(row("obfuscated fraud messages", evaluate(detector, obf)))
    if tele is not None:
        print(row("messages + TeleAntiFraud dialogues", evaluate(detector, examples)))
    if args.by_type:
        for t, (hit, total) in sorted(all_messages.recall_by_type.items()):
            print(f"  {t}: {hit}/{total}")
    probe = detector.detect_many(list(LONE_WORDS))
    print("lone words: " + ", ".join(f"{w} {d.risk}" for w, d in zip(LONE_WORDS, probe, strict=True)))


if __name__ == "__main__":
    main()
