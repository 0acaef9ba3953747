"""Labelled examples for training and evaluation: the project's message corpus and call dialogues.

Splits are decided by a hash of each example's id, so they are stable across runs and machines and a
held-out example can never leak into training.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson

from fanzha.text.dialogue import Turn, parse_turns, transcript

Split = Literal["train", "calibration", "heldout"]
LABELS = ("normal", "spam", "fraud")
# Project corpus ids start with f (fraud file) or l (legitimate file), the batch name and an optional
# file number: `fa-…`, `lc-…`, `fg2-…`. A batch is one writing round by its own writers. Batches are named
# a … z, then za … zz (`fza1-…`), so that the names sort in the order the batches were written.
_BATCH_ID = re.compile(r"^[fl](z?[a-z])\d*-")


@dataclass(slots=True)
class Example:
    id: str
    label: str
    fraud_type: str | None
    type_clear: bool
    source: str
    text: str | None = None
    turns: list[Turn] | None = None
    category: str | None = None

    @property
    def content(self) -> str:
        return self.text if self.text is not None else transcript(self.turns or [])

    def to_record(self) -> dict[str, object]:
        rec: dict[str, object] = {
            "id": self.id,
            "label": self.label,
            "fraud_type": self.fraud_type,
            "type_clear": self.type_clear,
            "source": self.source,
        }
        if self.category:
            rec["category"] = self.category
        if self.turns is not None:
            rec["turns"] = [{"speaker": t.speaker, "text": t.text} for t in self.turns]
        else:
            rec["text"] = self.text
        return rec


def batch_of(example_id: str) -> str | None:
    """The corpus batch of a project corpus id (`fa-…` → "a", `lg2-…` → "g", `fzb1-…` → "zb"), else None."""
    m = _BATCH_ID.match(example_id)
    return m.group(1) if m else None


BATCH_KINDS_FILE = "batches.yaml"


def read_batch_kinds(corpus_dir: Path) -> dict[str, str]:
    """Batch letter -> kind (`test_set` / `training`) from the corpus folder's `batches.yaml`, or {}."""
    import yaml

    path = corpus_dir / BATCH_KINDS_FILE
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of batch kind to a list of batch letters")
    kinds: dict[str, str] = {}
    for kind, letters in data.items():
        for letter in letters or []:
            if letter in kinds:
                raise ValueError(f"{path}: batch {letter!r} is listed as {kinds[letter]!r} and {kind!r}")
            kinds[str(letter)] = str(kind)
    return kinds


def split_of(example_id: str, heldout_pct: int = 25, calibration_pct: int = 15) -> Split:
    bucket = int(hashlib.sha1(example_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < heldout_pct:
        return "heldout"
    if bucket < heldout_pct + calibration_pct:
        return "calibration"
    return "train"


def example_from_record(rec: Mapping[str, object], source: str) -> Example:
    """Build an Example from a labelled JSONL record; raise ValueError naming what is wrong."""
    ex_id = rec.get("id")
    label = rec.get("label")
    if not isinstance(ex_id, str) or not ex_id:
        raise ValueError("missing id")
    if label not in LABELS:
        raise ValueError(f"{ex_id}: label must be one of {LABELS}, got {label!r}")
    fraud_type = rec.get("fraud_type")
    if fraud_type is not None and not isinstance(fraud_type, str):
        raise ValueError(f"{ex_id}: fraud_type must be a string or null")
    clear = bool(rec.get("type_clear", fraud_type is not None))
    category = rec.get("category")
    common = {
        "id": ex_id,
        "label": str(label),
        "fraud_type": fraud_type,
        "type_clear": clear,
        "source": source,
        "category": category if isinstance(category, str) else None,
    }
    if "turns" in rec:
        return Example(turns=parse_turns(rec["turns"]), **common)  # type: ignore[arg-type]
    text = rec.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{ex_id}: text must be a non-empty string")
    return Example(text=text, **common)  # type: ignore[arg-type]


def read_labelled(path: Path, source: str | None = None) -> Iterator[Example]:
    source = source or path.stem
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield example_from_record(orjson.loads(line), source)
            except (orjson.JSONDecodeError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from exc


def read_teleantifraud(path: Path, label_map: Mapping[str, str]) -> Iterator[Example]:
    """TeleAntiFraud call dialogues; labels without a clear fraud type stay fraud with type unknown."""
    with path.open("rb") as fh:
        for line in fh:
            rec = orjson.loads(line)
            label = rec["label"]
            turns = parse_turns(rec["turns"])
            if label == "normal":
                yield Example(
                    rec["id"], "normal", None, False, "teleantifraud", turns=turns, category=rec["scene"]
                )
            else:
                code = label_map.get(label)
                yield Example(
                    rec["id"], "fraud", code, code is not None, "teleantifraud", turns=turns, category=label
                )
