"""The freeze list (止付/冻结清单) of a trace as CSV or Excel, in the form a bank's 止付 desk reads."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fanzha.payments.trace import TracedAccount, TraceResult

HEADERS = (
    "序号",
    "账户",
    "开户行",
    "层级",
    "可归属金额(元)",
    "累计流入(元)",
    "已转出(元)",
    "首次入账时间",
    "上游账户",
    "资金路径",
    "关联其他受害人",
    "备注",
)
EXIT_HEADERS = ("去向", "付款账户", "收款账户", "转账编号", "时间", "金额(元)", "层级")
EXIT_NAMES = {"cash": "取现", "external": "转出他行", "beyond_hops": "超出追踪层级"}


def yuan(fen: int) -> str:
    """Exact fen → yuan text with two decimals (no float rounding)."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def _safe(text: str) -> str:
    # A cell starting with = + - @ is run as a formula by Excel (CSV injection); ids are untrusted input.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _row(i: int, a: TracedAccount) -> list[str]:
    others = "；".join(f"{o.case_id}:{yuan(o.held_fen)}元" for o in a.other_cases if o.held_fen > 0)
    return [
        str(i),
        _safe(a.account),
        _safe(a.bank),
        str(a.hop),
        yuan(a.held_fen),
        yuan(a.received_fen),
        yuan(a.passed_on_fen),
        a.first_arrival,
        _safe("、".join(a.parents)),
        _safe(" → ".join(a.path)),
        _safe(others),
        a.warning or "",
    ]


def rows(result: TraceResult) -> list[list[str]]:
    return [_row(i, a) for i, a in enumerate(result.freeze_list(), start=1)]


def to_csv(result: TraceResult) -> bytes:
    """UTF-8 with BOM so Excel opens the Chinese headers correctly; one row per account to stop-pay."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADERS)
    writer.writerows(rows(result))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(result: TraceResult) -> bytes:
    """Workbook: 止付清单 (accounts holding the money), 资金去向 (exits) and 说明 (what was traced, how)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    sheet = wb.active
    sheet.title = "止付清单"
    sheet.append(HEADERS)
    for r in rows(result):
        r[3] = int(r[3])  # type: ignore[call-overload]
        sheet.append(r)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for col, width in zip("ABCDEFGHIJKL", (6, 24, 10, 6, 16, 16, 16, 20, 24, 48, 30, 30), strict=True):
        sheet.column_dimensions[col].width = width
    sheet.freeze_panes = "A2"

    exits = wb.create_sheet("资金去向")
    exits.append(EXIT_HEADERS)
    for x in result.exits:
        exits.append(
            [
                EXIT_NAMES[x.kind],
                _safe(x.from_account),
                _safe(x.to_account or "现金"),
                _safe(x.transfer_id),
                x.ts,
                yuan(x.amount_fen),
                x.hop,
            ]
        )

    about = wb.create_sheet("说明")
    for key, value in summary_lines(result):
        about.append([key, value])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def summary_lines(result: TraceResult) -> list[tuple[str, str]]:
    """The facts a reader of the list needs: which payments, which window, what the amounts add up to."""
    victims = "；".join(f"{v.transfer_id}（{v.ts}，{yuan(v.amount_fen)}元）" for v in result.victim_transfers)
    return [
        ("受害人转账", victims),
        ("追踪层级", str(result.max_hops)),
        ("时间窗", f"{result.window_start} 至 {result.window_end}（{result.window_hours} 小时）"),
        ("归属规则", "污染资金优先转出、先进先出；到账前已转出的资金不计入"),
        ("被骗总额(元)", yuan(result.total_fen)),
        ("仍在账户(元)", yuan(result.held_fen)),
        ("已取现(元)", yuan(result.cash_fen)),
        ("转出他行(元)", yuan(result.external_fen)),
        ("超出追踪层级(元)", yuan(result.beyond_hops_fen)),
        ("止付账户数", str(len(result.freeze_list()))),
        ("提示", "；".join(result.warnings) or "无"),
    ]


def write(result: TraceResult, path: Path) -> None:
    """Write CSV or Excel by the file's suffix (.csv / .xlsx)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        path.write_bytes(to_csv(result))
    elif suffix == ".xlsx":
        path.write_bytes(to_xlsx(result))
    else:
        raise ValueError(f"不支持的导出格式 {suffix or '(none)'}：请用 .csv 或 .xlsx")
