"""The 止付 export: Chinese headers, exact yuan amounts, only accounts still holding money, safe cells."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from fanzha.payments import freeze_export
from fanzha.payments.graph import build
from fanzha.payments.trace import trace
from tests.payments.test_trace import Row, write_ledger

ROWS: list[Row] = [
    ("v1", 0, "V", "A", 10000),
    ("t1", 1, "A", "B", 3333),
    ("t2", 2, "A", "=cmd|x", 1),  # a hostile account id must not become an Excel formula
    ("w1", 3, "A", None, 1000),
]


def _result(tmp_path: Path):
    return trace(build(write_ledger(tmp_path / "l", ROWS)), ["v1"])


@pytest.mark.parametrize(("fen", "text"), [(0, "0.00"), (5, "0.05"), (123456, "1234.56"), (-7, "-0.07")])
def test_yuan_is_exact(fen: int, text: str) -> None:
    assert freeze_export.yuan(fen) == text


def test_csv_has_chinese_headers_and_only_accounts_holding_money(tmp_path: Path) -> None:
    data = freeze_export.to_csv(_result(tmp_path))
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0][:5] == ["序号", "账户", "开户行", "层级", "可归属金额(元)"]
    assert "关联其他受害人" in table[0]
    body = {r[1]: r for r in table[1:]}
    assert set(body) == {"A", "B", "'=cmd|x"}
    assert body["A"][4] == "5666.00"  # 10000 − 3333 − 1 − 1000
    assert body["B"][4] == "3333.00"
    assert body["B"][3] == "2"
    assert table[1][1] == "A"  # largest amount first


def test_xlsx_has_list_exits_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "止付.xlsx"
    freeze_export.write(_result(tmp_path), out)
    wb = load_workbook(out)
    assert wb.sheetnames == ["止付清单", "资金去向", "说明"]
    sheet = wb["止付清单"]
    assert sheet["B1"].value == "账户" and sheet["E1"].value == "可归属金额(元)"
    assert [sheet.cell(r, 2).value for r in range(2, sheet.max_row + 1)] == ["A", "B", "'=cmd|x"]
    exits = list(wb["资金去向"].iter_rows(min_row=2, values_only=True))
    assert exits == [("取现", "A", "现金", "w1", "2026-11-01 12:00:00", "1000.00", 1)]
    about = dict(wb["说明"].iter_rows(values_only=True))
    assert about["被骗总额(元)"] == "10000.00" and about["已取现(元)"] == "1000.00"


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="xlsx"):
        freeze_export.write(_result(tmp_path), tmp_path / "x.pdf")
