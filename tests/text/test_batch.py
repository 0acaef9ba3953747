"""Batch detection: one output line per record, in order; bad records never stop the batch."""

import io

import orjson
import pytest

from fanzha.text import batch


@pytest.fixture(scope="module")
def detector():
    from fanzha.text.detector import Detector

    return Detector.from_settings()


def run_jsonl(detector, data: bytes) -> list[dict]:
    lines = batch.process(detector, batch.read_jsonl(io.BytesIO(data)), batch_size=3)
    return [orjson.loads(line) for line in lines]


def test_every_record_gets_one_result_in_input_order(detector):
    data = b"".join(orjson.dumps({"id": i, "text": f"你好 {i}"}) + b"\n" for i in range(10))
    out = run_jsonl(detector, data)
    assert [r["id"] for r in out] == list(range(10))
    assert all(r["verdict"] in ("fraud", "suspicious", "normal") for r in out)


def test_broken_lines_become_error_results_and_the_rest_survives(detector):
    data = (
        b'{"id": "a", "text": "\xe6\x99\x9a\xe4\xb8\x8a\xe5\x9b\x9e\xe5\xae\xb6\xe5\x90\x83\xe9\xa5\xad"}\n'
        b'{"id": "b", "text": \n'
        b"\xff\xfe not utf-8\n"
        b'{"id": "c"}\n'
        b'{"id": "d", "text": ""}\n'
        b'{"id": "e", "text": 42}\n'
        b"[1, 2]\n"
        b'{"id": "f", "turns": [{"speaker": "robot", "text": "hi"}]}\n'
        b'{"id": "g", "turns": [{"speaker": "caller", "text": "\xe4\xbd\xa0\xe5\xa5\xbd"}]}\n'
    )
    out = run_jsonl(detector, data)
    assert len(out) == 9
    assert out[0]["id"] == "a" and "verdict" in out[0]
    assert "malformed JSON" in out[1]["error"] and out[1]["line"] == 2
    assert "UTF-8" in out[2]["error"]
    assert "neither" in out[3]["error"]
    assert out[4]["error"] == "text is empty"
    assert "string" in out[5]["error"]
    assert "object" in out[6]["error"]
    assert "speaker" in out[7]["error"]
    assert out[8]["id"] == "g" and out[8]["turn"] == 0


def test_control_characters_and_a_megabyte_of_text_are_examined(detector):
    big = "正常的生活消息。" * (1_000_000 // 8)
    data = (
        orjson.dumps({"id": 1, "text": "\x01\x02转账\x7f"})
        + b"\n"
        + orjson.dumps({"id": 2, "text": big})
        + b"\n"
    )
    out = run_jsonl(detector, data)
    assert [r["id"] for r in out] == [1, 2]
    assert "verdict" in out[0] and "verdict" in out[1]


def test_text_over_the_limit_is_a_per_record_error(detector):
    data = orjson.dumps({"id": 1, "text": "a" * (detector.max_text_chars + 1)}) + b"\n"
    assert "limit" in run_jsonl(detector, data)[0]["error"]


def test_csv_rows_with_invalid_utf8_are_rejected_alone(detector):
    data = "id,body\n1,你好\n".encode() + b"2,\xff\xfe\n" + "3,晚上见\n".encode()
    lines = batch.process(detector, batch.read_csv(io.BytesIO(data), "body"))
    out = [orjson.loads(x) for x in lines]
    assert [r["id"] for r in out] == ["1", "2", "3"]
    assert "UTF-8" in out[1]["error"] and "verdict" in out[2]


def test_csv_without_the_text_column_is_a_clear_error():
    from fanzha.text.detector import InvalidInput

    with pytest.raises(InvalidInput, match="no column 'body'"):
        list(batch.read_csv(io.BytesIO(b"id,text\n1,x\n"), "body"))
