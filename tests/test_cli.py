"""The `fanzha` command-line contract, exercised through the installed console script."""

import subprocess
import sys
from pathlib import Path

import orjson

FANZHA = str(Path(sys.executable).with_name("fanzha"))


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([FANZHA, *args], input=stdin, capture_output=True, timeout=120)


def test_detect_text_prints_one_result_with_the_documented_fields():
    res = run("detect", "您的账户涉嫌洗钱，请立即转账到安全账户配合调查")
    assert res.returncode == 0, res.stderr
    out = orjson.loads(res.stdout)
    assert set(out) >= {"verdict", "risk", "fraud_type", "evidence", "indicators", "advice"}
    assert 0 <= out["risk"] <= 100


def test_detect_jsonl_from_stdin_writes_one_line_per_record_with_ids(tmp_path):
    src = (
        '{"id":"x1","text":"你好"}\nnot json\n{"id":"x3","turns":[{"speaker":"caller","text":"hi"}]}\n'
    ).encode()
    res = run("detect", "--input", "-", "--output", "-", stdin=src)
    assert res.returncode == 0, res.stderr
    lines = [orjson.loads(x) for x in res.stdout.splitlines()]
    assert [r["id"] for r in lines] == ["x1", None, "x3"]
    assert "error" in lines[1] and lines[1]["line"] == 2


def test_detect_csv_with_text_column_to_file(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,msg\n1,晚上回家吃饭\n2,点赞关注一单3元日结\n", encoding="utf-8")
    dst = tmp_path / "out.jsonl"
    res = run("detect", "--input", str(src), "--text-column", "msg", "--output", str(dst))
    assert res.returncode == 0, res.stderr
    rows = [orjson.loads(x) for x in dst.read_bytes().splitlines()]
    assert [r["id"] for r in rows] == ["1", "2"]


def test_unusable_arguments_exit_nonzero_with_a_message(tmp_path):
    assert run("detect").returncode == 2
    missing = run("detect", "--input", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and b"cannot read" in missing.stderr
    empty = run("detect", "   ")
    assert empty.returncode == 2 and b"empty" in empty.stderr


def test_eval_reports_precision_recall_and_false_positive_rate(tmp_path):
    data = tmp_path / "labelled.jsonl"
    data.write_bytes(
        orjson.dumps(
            {
                "id": "1",
                "text": "公安局通知您涉嫌洗钱，请把钱转到安全账户",
                "label": "fraud",
                "fraud_type": "impersonate_police",
            }
        )
        + b"\n"
        + orjson.dumps({"id": "2", "text": "晚上回家吃饭吗", "label": "normal"})
        + b"\n"
    )
    res = run("eval", "--input", str(data), "--json")
    assert res.returncode == 0, res.stderr
    report = orjson.loads(res.stdout)
    assert report["n"] == 2 and report["n_fraud"] == 1 and report["n_legit"] == 1
    for key in ("precision", "recall", "false_positive_rate", "type_confusion", "per_second"):
        assert key in report


def test_eval_rejects_a_malformed_labelled_file_clearly(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"id": "1", "text": "x", "label": "maybe"}\n', encoding="utf-8")
    res = run("eval", "--input", str(data))
    assert res.returncode == 2 and b"label must be one of" in res.stderr


def test_demo_scans_the_bundled_sample():
    res = run("demo")
    assert res.returncode == 0, res.stderr
    assert "s02" in res.stdout.decode()


def test_service_command_groups_are_listed_but_imported_only_when_used():
    code = "import sys, fanzha.cli; print(sorted(m for m in ('fastapi', 'sqlalchemy') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
    help_out = run("--help").stdout.decode()
    for name in ("detect", "serve", "warnings", "watchlist"):
        assert name in help_out
    sub = run("watchlist", "--help")
    assert sub.returncode == 0 and b"check" in sub.stdout


# --- detect --engine spark: argument handling only (the Spark job has its own tests) -----------------


def _cli(*args: str):
    from typer.testing import CliRunner

    from fanzha.cli import app

    return CliRunner().invoke(app, list(args))


def test_engine_must_be_local_or_spark(tmp_path):
    res = _cli("detect", "--engine", "flink", "--input", str(tmp_path / "x.jsonl"))
    assert res.exit_code == 2 and "--engine must be local or spark" in res.output


def test_spark_engine_needs_file_paths_not_text_or_stdio(tmp_path):
    src = tmp_path / "in.parquet"
    src.write_bytes(b"")
    no_input = _cli("detect", "--engine", "spark", "你好")
    assert no_input.exit_code == 2 and "--input PATH" in no_input.output
    stdin = _cli("detect", "--engine", "spark", "--input", "-", "--output", str(tmp_path / "out"))
    assert stdin.exit_code == 2 and "--input PATH" in stdin.output
    stdout = _cli("detect", "--engine", "spark", "--input", str(src))
    assert stdout.exit_code == 2 and "--output PATH" in stdout.output
    missing = _cli("detect", "--engine", "spark", "--input", str(tmp_path / "nope"), "--output", "o")
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_spark_master_only_with_the_spark_engine(tmp_path):
    res = _cli("detect", "--input", str(tmp_path / "x.jsonl"), "--spark-master", "local[2]")
    assert res.exit_code == 2 and "--spark-master applies only to --engine spark" in res.output


def test_spark_engine_passes_the_arguments_and_prints_the_summary(tmp_path, monkeypatch):
    import types

    import fanzha.jobs

    calls = []

    def run_detect(input_path, output_path, *, text_column="text", id_column="id", master=None):
        calls.append((input_path, output_path, text_column, id_column, master))
        return {"records": 3, "errors": 0}

    fake = types.ModuleType("fanzha.jobs.spark_detect")
    fake.run_detect = run_detect
    monkeypatch.setitem(sys.modules, "fanzha.jobs.spark_detect", fake)
    monkeypatch.setattr(fanzha.jobs, "spark_detect", fake, raising=False)
    src = tmp_path / "in.parquet"
    src.write_bytes(b"")
    out = str(tmp_path / "out")
    res = _cli(
        "detect",
        "--engine",
        "spark",
        "--input",
        str(src),
        "--output",
        out,
        "--text-column",
        "msg",
        "--id-column",
        "key",
        "--spark-master",
        "local[2]",
    )
    assert res.exit_code == 0, res.output
    assert calls == [(str(src), out, "msg", "key", "local[2]")]
    assert orjson.loads(res.output) == {"records": 3, "errors": 0}  # CliRunner mixes stderr into output
    res = _cli("detect", "--engine", "spark", "--input", str(src), "--output", out)
    assert res.exit_code == 0 and calls[-1] == (str(src), out, "text", "id", None)


def test_spark_engine_unavailable_is_a_clear_error(tmp_path, monkeypatch):
    import fanzha.jobs

    monkeypatch.setitem(sys.modules, "fanzha.jobs.spark_detect", None)  # makes the import fail
    monkeypatch.delattr(fanzha.jobs, "spark_detect", raising=False)
    src = tmp_path / "in.parquet"
    src.write_bytes(b"")
    res = _cli("detect", "--engine", "spark", "--input", str(src), "--output", str(tmp_path / "out"))
    assert res.exit_code == 2 and "Spark engine is not available" in res.output
