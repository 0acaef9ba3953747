"""Batch text scanning on Spark: same results as the in-process detector, broken records become error rows."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fanzha.jobs.spark_detect import run_detect
from fanzha.text import batch
from fanzha.text.detector import Detector

TEXTS = [
    "【中国银行】您的账户存在异常，请点击 http://boc-verify.top 填写验证码解除冻结",
    "妈，我换手机号了，这是我新微信，急用钱先转我 5000",
    "明天下午三点开会，记得带上季度报表。",
    "恭喜您获得刷单返利资格，日赚 300 元，加QQ 12345678 领取任务",
]


def _read_lines(out: Path) -> list[dict]:
    rows = []
    for part in sorted(out.glob("part-*")):
        rows += [orjson.loads(line) for line in part.read_bytes().splitlines() if line.strip()]
    return rows


@pytest.fixture(scope="module")
def expected() -> dict[object, dict]:
    detector = Detector.from_settings()
    src = b"".join(orjson.dumps({"id": i, "text": t}) + b"\n" for i, t in enumerate(TEXTS))
    return {
        r["id"]: r
        for r in (orjson.loads(x) for x in batch.process(detector, batch.read_jsonl(io.BytesIO(src))))
    }


def test_spark_results_equal_in_process_detector_for_parquet(tmp_path: Path, spark, expected) -> None:
    pq.write_table(pa.table({"id": list(range(len(TEXTS))), "text": TEXTS}), tmp_path / "in.parquet")
    summary = run_detect(str(tmp_path / "in.parquet"), str(tmp_path / "out"))
    assert summary["records"] == len(TEXTS) and summary["errors"] == 0
    got = {r["id"]: r for r in _read_lines(tmp_path / "out")}
    assert got == expected


def test_broken_jsonl_record_gives_error_row_and_job_continues(tmp_path: Path, spark, expected) -> None:
    lines = [
        orjson.dumps({"id": 0, "text": TEXTS[0]}),
        b"{not json",
        orjson.dumps({"id": 2, "text": 42}),
        orjson.dumps({"id": 3, "text": TEXTS[3]}),
    ]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    summary = run_detect(str(tmp_path / "in.jsonl"), str(tmp_path / "out"))
    assert summary == {"records": 4, "errors": 2, "output": str(tmp_path / "out")}
    rows = sorted(
        _read_lines(tmp_path / "out"), key=lambda r: r.get("line", 0) if r["id"] is None else r["id"]
    )
    errors = [r for r in rows if "error" in r]
    assert {r["line"] for r in errors} == {2, 3}
    assert "malformed JSON" in next(r["error"] for r in errors if r["line"] == 2)
    ok = {r["id"]: r for r in rows if "error" not in r}
    assert ok == {0: expected[0], 3: expected[3]}


def test_custom_columns_and_parquet_output(tmp_path: Path, spark, expected) -> None:
    pq.write_table(pa.table({"msg_id": [1], "body": [TEXTS[1]]}), tmp_path / "in.parquet")
    run_detect(
        str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"), text_column="body", id_column="msg_id"
    )
    got = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert len(got) == 1 and got[0]["id"] == 1 and got[0]["verdict"] == expected[1]["verdict"]
