"""Batch text scanning on Apache Spark: one Detector per partition, same result lines as `fanzha detect`.

Input is Parquet (columns `id_column`, `text_column`) or JSONL (read as text lines so that a broken line
becomes an error row instead of failing the job). Output is a directory of JSONL part files, or Parquet
when `output_path` ends in `.parquet`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from fanzha.jobs.spark_session import spark_session
from fanzha.text import batch
from fanzha.text.batch import Record


def _jsonl_record(lineno: int, raw: str, text_column: str, id_column: str) -> Record | None:
    """Parse one JSONL line exactly as `fanzha detect` does (None for a blank line)."""
    data = raw.encode("utf-8", "surrogateescape")
    if (text_column, id_column) != ("text", "id"):
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            mapped = {k: v for k, v in obj.items() if k not in {"id", "text"}}
            mapped |= {"id": obj.get(id_column), "text": obj.get(text_column)}
            data = orjson.dumps({k: v for k, v in mapped.items() if v is not None or k == "id"})
    rec = next(batch.read_jsonl(io.BytesIO(data)), None)
    if rec is not None:
        rec.line = lineno
    return rec


def _row_record(lineno: int, rec_id: object, text: object) -> Record:
    if text is None:
        return Record(lineno, rec_id, error="record has no text")
    if not isinstance(text, str):
        return Record(lineno, rec_id, error="'text' must be a string")
    return Record(lineno, rec_id, text=text)


def _detect_partition(records: Iterable[Record]) -> Iterator[str]:
    from fanzha.text.detector import Detector

    # Built once per partition (executors cannot share the driver's object); loading takes under a second.
    detector = Detector.from_settings()
    for line in batch.process(detector, records):
        yield line.decode("utf-8").rstrip("\n")


def run_detect(
    input_path: str,
    output_path: str,
    *,
    text_column: str = "text",
    id_column: str = "id",
    master: str | None = None,
) -> dict[str, Any]:
    """Scan every record of `input_path` with the text Detector on Spark and write the result lines."""
    spark = spark_session(master, app_name="fanzha-detect")
    if input_path.endswith(".parquet") or not input_path.endswith((".jsonl", ".json", ".ndjson")):
        df = spark.read.parquet(input_path).select(id_column, text_column)
        records = df.rdd.zipWithIndex().map(lambda p: _row_record(p[1] + 1, p[0][0], p[0][1]))
    else:
        lines = spark.read.text(input_path).rdd.map(lambda r: r[0]).zipWithIndex()
        records = lines.map(lambda p: _jsonl_record(p[1] + 1, p[0], text_column, id_column)).filter(
            lambda r: r is not None
        )
    results = records.mapPartitions(_detect_partition).cache()
    total = results.count()
    errors = results.filter(lambda s: orjson.loads(s).get("error") is not None).count()
    if output_path.endswith(".parquet"):
        spark.read.json(results).write.mode("overwrite").parquet(output_path)
    else:
        spark.createDataFrame(results.map(lambda s: (s,)), "value string").write.mode("overwrite").text(
            output_path
        )
    results.unpersist()
    return {"records": total, "errors": errors, "output": output_path}
