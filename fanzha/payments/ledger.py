"""Load, validate and write ledgers (Parquet or CSV): clean Arrow tables plus per-row rejects with reasons.

Validation runs in DuckDB over Arrow data, so a ledger of tens of millions of rows loads in one pass. A bad
row never stops the load: it is set aside with a reason. Only unusable input (a missing file, a missing
column, a file that is not CSV/Parquet at all) raises `LedgerError`.

Cycles in the transfer graph are ordinary data (people pay each other back; rings launder in circles) and
are kept: tracers must guard against revisiting accounts themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fanzha.payments import schema

CST = ZoneInfo("Asia/Shanghai")


class RejectReason(StrEnum):
    UNPARSABLE_ROW = "unparsable_row"  # a CSV line that does not split into the header's columns
    MISSING_FIELD = "missing_field"  # a required field is empty
    BAD_VALUE = "bad_value"  # a timestamp, amount, type or code that does not parse
    NO_ACCOUNT = "no_account"  # neither from_account nor to_account
    BAD_AMOUNT = "bad_amount"  # zero, negative, or above schema.MAX_AMOUNT_FEN
    UNKNOWN_CHANNEL = "unknown_channel"
    UNKNOWN_ACCOUNT = "unknown_account"  # an account id missing from the accounts table
    FUTURE_TIMESTAMP = "future_timestamp"  # later than the load's `now`
    DUPLICATE_ID = "duplicate_id"  # a second row with an id already accepted (the first is kept)


REASON_ZH = {
    RejectReason.UNPARSABLE_ROW: "无法解析的行",
    RejectReason.MISSING_FIELD: "缺少必填字段",
    RejectReason.BAD_VALUE: "字段值无效",
    RejectReason.NO_ACCOUNT: "付款方和收款方均为空",
    RejectReason.BAD_AMOUNT: "金额为零、负数或过大",
    RejectReason.UNKNOWN_CHANNEL: "未知渠道",
    RejectReason.UNKNOWN_ACCOUNT: "未知账户",
    RejectReason.FUTURE_TIMESTAMP: "交易时间晚于当前时间",
    RejectReason.DUPLICATE_ID: "重复编号",
}

REJECTS = pa.schema(
    [
        pa.field("file", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=True),  # data row number (1 = first after the header)
        pa.field("line", pa.int64(), nullable=True),  # CSV line number, for rows that did not parse
        pa.field("reason", pa.string(), nullable=False),  # RejectReason
        pa.field("key", pa.string(), nullable=True),  # transfer_id / account_id of the row, when present
        pa.field("detail", pa.string(), nullable=True),
    ]
)


class LedgerError(Exception):
    """The ledger cannot be loaded at all (as opposed to individual bad rows, which become rejects)."""


@dataclass
class LedgerLoad:
    """A validated ledger: clean tables in the schema's types, transfers sorted by time, and the rejects."""

    accounts: pa.Table
    transfers: pa.Table
    rejects: pa.Table
    rows_read: dict[str, int]
    labels_accounts: pa.Table | None = None
    labels_transfers: pa.Table | None = None
    manifest: dict[str, Any] | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def reject_counts(self) -> dict[str, int]:
        """Rejected rows per reason (only reasons that occurred), most frequent first."""
        if self.rejects.num_rows == 0:
            return {}
        reasons, counts = np.unique(np.asarray(self.rejects.column("reason")), return_counts=True)
        order = np.argsort(-counts, kind="stable")
        return {str(reasons[i]): int(counts[i]) for i in order}

    def summary(self) -> dict[str, Any]:
        return {
            "accounts": {"read": self.rows_read["accounts"], "accepted": self.accounts.num_rows},
            "transfers": {"read": self.rows_read["transfers"], "accepted": self.transfers.num_rows},
            "rejected": self.rejects.num_rows,
            "reject_counts": self.reject_counts,
        }


def find_table(directory: Path, name: str) -> Path | None:
    for suffix in (".parquet", ".csv"):
        path = directory / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def read_ledger(directory: Path | str, now: datetime | None = None, labels: bool = True) -> LedgerLoad:
    """Load and validate `directory`'s accounts and transfers; `now` (CST, naive) bounds timestamps."""
    directory = Path(directory)
    if not directory.is_dir():
        raise LedgerError(f"账本目录不存在 / ledger folder not found: {directory}")
    if now is None:
        now = datetime.now(CST).replace(tzinfo=None)
    files = {}
    for name in ("accounts", "transfers"):
        path = find_table(directory, name)
        if path is None:
            raise LedgerError(f"缺少 {name}.parquet 或 {name}.csv / missing {name} table in {directory}")
        files[name] = path
    raw_acc, acc_bad = _read_raw(files["accounts"], schema.ACCOUNTS)
    raw_tx, tx_bad = _read_raw(files["transfers"], schema.TRANSFERS)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        accounts, acc_rejects = _validate_accounts(con, raw_acc, files["accounts"].name)
        transfers, tx_rejects = _validate_transfers(con, raw_tx, accounts, now, files["transfers"].name)
    finally:
        con.close()
    rejects = pa.concat_tables([acc_bad, acc_rejects, tx_bad, tx_rejects])
    load = LedgerLoad(
        accounts=accounts,
        transfers=transfers,
        rejects=rejects,
        rows_read={
            "accounts": raw_acc.num_rows + acc_bad.num_rows,
            "transfers": raw_tx.num_rows + tx_bad.num_rows,
        },
        files=files,
    )
    if labels:
        for name in ("labels_accounts", "labels_transfers"):
            path = find_table(directory, name)
            if path is not None:
                table, _ = _read_raw(path, schema.LEDGER_FILES[name])
                setattr(
                    load, name, table.select(schema.LEDGER_FILES[name].names).cast(schema.LEDGER_FILES[name])
                )
        manifest = directory / "manifest.json"
        if manifest.is_file():
            load.manifest = json.loads(manifest.read_text())
    return load


def _read_raw(path: Path, expected: pa.Schema) -> tuple[pa.Table, pa.Table]:
    """Read one table as stored (CSV: every column as text), with the CSV lines that did not parse."""
    bad: list[dict[str, Any]] = []
    try:
        if path.suffix == ".parquet":
            table = pq.read_table(path)
        else:

            def on_invalid(row: pacsv.InvalidRow) -> str:
                bad.append(
                    {
                        "file": path.name,
                        "row": None,
                        "line": row.number,
                        "reason": RejectReason.UNPARSABLE_ROW.value,
                        "key": row.text.split(",", 1)[0] or None,
                        "detail": f"{row.actual_columns}/{row.expected_columns} 列: {row.text[:200]}",
                    }
                )
                return "skip"

            with open(path, "rb") as fh:
                header = fh.readline().decode("utf-8", "replace").strip().split(",")
            names = [h.strip().strip('"') for h in header]
            table = pacsv.read_csv(
                path,
                # Single-threaded parsing is what lets Arrow report the line number of a broken row.
                read_options=pacsv.ReadOptions(use_threads=False),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
    except (pa.ArrowInvalid, OSError) as exc:
        raise LedgerError(f"无法读取 / cannot read {path}: {exc}") from exc
    missing = [f.name for f in expected if f.name not in table.column_names]
    if missing:
        raise LedgerError(f"{path.name} 缺少列 / missing columns: {', '.join(missing)}")
    return table, pa.Table.from_pylist(bad, schema=REJECTS)


def _int_expr(table: pa.Table, column: str) -> str:
    """SQL parsing `column` as whole fen; text like '12.5' is invalid, not rounded (DuckDB would round)."""
    if pa.types.is_integer(table.schema.field(column).type):
        return f"CAST({column} AS BIGINT)"
    text = f"trim(CAST({column} AS VARCHAR))"
    return f"CASE WHEN regexp_full_match({text}, '[+-]?[0-9]+') THEN TRY_CAST({text} AS BIGINT) END"


def _ts_expr(table: pa.Table, column: str) -> str:
    if pa.types.is_timestamp(table.schema.field(column).type):
        return f"CAST({column} AS TIMESTAMP)"
    return f"TRY_CAST({column} AS TIMESTAMP)"


def _str(column: str) -> str:
    return f"CAST({column} AS VARCHAR)"


def _numbered(table: pa.Table) -> pa.Table:
    return table.append_column("_row", pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))


def _validate_accounts(con: duckdb.DuckDBPyConnection, raw: pa.Table, name: str) -> tuple[pa.Table, pa.Table]:
    con.register("raw_accounts", _numbered(raw))
    types = ", ".join(f"'{t.value}'" for t in schema.AccountType)
    ages = ", ".join(f"'{a.value}'" for a in schema.AgeBand)
    opened, last = _ts_expr(raw, "opened_at"), _ts_expr(raw, "last_active_at")
    required = ["account_id", "bank", "account_type", "holder_id", "branch", "opened_at", "region"]
    missing = " OR ".join(f"{c} IS NULL" for c in required)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW acc AS
        SELECT _row, {_str("account_id")} AS account_id, {_str("bank")} AS bank,
               {_str("account_type")} AS account_type, {_str("holder_id")} AS holder_id,
               {_str("branch")} AS branch, {opened} AS opened_at, {last} AS last_active_at,
               {_str("region")} AS region, {_str("age_band")} AS age_band,
               coalesce({_str("kyc_flags")}, '') AS kyc_flags,
               CASE
                 WHEN {missing} OR trim({_str("account_id")}) = '' THEN 'missing_field'
                 WHEN {opened} IS NULL THEN 'bad_value'
                 WHEN last_active_at IS NOT NULL AND {last} IS NULL THEN 'bad_value'
                 WHEN {_str("account_type")} NOT IN ({types}) THEN 'bad_value'
                 WHEN age_band IS NOT NULL AND {_str("age_band")} NOT IN ({ages}) THEN 'bad_value'
                 WHEN NOT regexp_full_match({_str("region")}, '[0-9]{{6}}') THEN 'bad_value'
               END AS reason,
               CASE
                 WHEN {opened} IS NULL THEN 'opened_at=' || coalesce({_str("opened_at")}, '')
                 WHEN last_active_at IS NOT NULL AND {last} IS NULL
                      THEN 'last_active_at=' || {_str("last_active_at")}
                 WHEN {_str("account_type")} NOT IN ({types}) THEN 'account_type=' || {_str("account_type")}
                 WHEN age_band IS NOT NULL AND {_str("age_band")} NOT IN ({ages})
                      THEN 'age_band=' || {_str("age_band")}
                 ELSE 'region=' || coalesce({_str("region")}, '')
               END AS detail
        FROM raw_accounts
        """
    )
    clean, rejects = _split(con, "acc", "account_id", raw, schema.ACCOUNTS, name)
    con.unregister("raw_accounts")
    kyc = clean.schema.get_field_index("kyc_flags")
    clean = clean.set_column(kyc, schema.ACCOUNTS.field("kyc_flags"), pc.fill_null(clean.column(kyc), ""))
    return clean.cast(schema.ACCOUNTS), rejects


def _validate_transfers(
    con: duckdb.DuckDBPyConnection, raw: pa.Table, accounts: pa.Table, now: datetime, name: str
) -> tuple[pa.Table, pa.Table]:
    con.register("raw_transfers", _numbered(raw))
    con.register("known", accounts.select(["account_id"]))
    channels = ", ".join(f"'{c.value}'" for c in schema.Channel)
    amount, ts = _int_expr(raw, "amount_fen"), _ts_expr(raw, "ts")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW tx AS
        WITH p AS (
          SELECT _row, {_str("transfer_id")} AS transfer_id, {ts} AS ts, {_str("ts")} AS ts_text,
                 {_str("from_account")} AS from_account, {_str("to_account")} AS to_account,
                 {amount} AS amount_fen, {_str("amount_fen")} AS amount_text,
                 {_str("channel")} AS channel, {_str("remark")} AS remark,
                 {_str("device_id")} AS device_id, {_str("ip")} AS ip
          FROM raw_transfers
        )
        SELECT p.*,
          CASE
            WHEN p.transfer_id IS NULL OR trim(p.transfer_id) = '' OR ts_text IS NULL OR amount_text IS NULL
                 OR p.channel IS NULL THEN 'missing_field'
            WHEN p.ts IS NULL THEN 'bad_value'
            WHEN p.amount_fen IS NULL THEN 'bad_value'
            WHEN p.from_account IS NULL AND p.to_account IS NULL THEN 'no_account'
            WHEN p.amount_fen <= 0 OR p.amount_fen > {schema.MAX_AMOUNT_FEN} THEN 'bad_amount'
            WHEN p.channel NOT IN ({channels}) THEN 'unknown_channel'
            WHEN p.from_account IS NOT NULL AND fa.account_id IS NULL THEN 'unknown_account'
            WHEN p.to_account IS NOT NULL AND ta.account_id IS NULL THEN 'unknown_account'
            WHEN p.ts > TIMESTAMP '{now.isoformat(sep=" ")}' THEN 'future_timestamp'
          END AS reason,
          CASE
            WHEN p.ts IS NULL THEN 'ts=' || coalesce(ts_text, '')
            WHEN p.amount_fen IS NULL OR p.amount_fen <= 0 OR p.amount_fen > {schema.MAX_AMOUNT_FEN}
                 THEN 'amount_fen=' || coalesce(amount_text, '')
            WHEN p.channel NOT IN ({channels}) THEN 'channel=' || p.channel
            WHEN p.from_account IS NOT NULL AND fa.account_id IS NULL THEN 'from_account=' || p.from_account
            WHEN p.to_account IS NOT NULL AND ta.account_id IS NULL THEN 'to_account=' || p.to_account
            ELSE 'ts=' || coalesce(ts_text, '')
          END AS detail
        FROM p
        LEFT JOIN known fa ON p.from_account = fa.account_id
        LEFT JOIN known ta ON p.to_account = ta.account_id
        """
    )
    clean, rejects = _split(con, "tx", "transfer_id", raw, schema.TRANSFERS, name)
    for view in ("raw_transfers", "known"):
        con.unregister(view)
    # Arrow's sort is stable, so transfers at the same millisecond keep their file order.
    return clean.take(pc.sort_indices(clean, [("ts", "ascending")])), rejects


def _split(
    con: duckdb.DuckDBPyConnection, view: str, key: str, raw: pa.Table, target: pa.Schema, name: str
) -> tuple[pa.Table, pa.Table]:
    """Accepted rows in `target`'s types, and the rejects (the view's reasons, then duplicate ids).

    Only the rejected rows leave DuckDB; the accepted ones are filtered from the Arrow table already in
    memory, which keeps a load of tens of millions of rows to about twice the size of the data.
    """
    flagged = con.execute(
        f"SELECT _row AS row, {key} AS key, reason, detail FROM {view} WHERE reason IS NOT NULL"
    ).to_arrow_table()
    keep = np.ones(raw.num_rows, dtype=bool)
    keep[np.asarray(flagged.column("row"), dtype=np.int64) - 1] = False
    ids = raw.column(key).filter(pa.array(keep)) if not keep.all() else raw.column(key)
    parts = [flagged]
    if pc.count_distinct(ids).as_py() < len(ids):
        dups = con.execute(
            f"""
            SELECT _row AS row, {key} AS key, 'duplicate_id' AS reason,
                   '{key} 已出现 / already seen' AS detail
            FROM (SELECT _row, {key}, row_number() OVER (PARTITION BY {key} ORDER BY _row) AS k
                  FROM {view} WHERE reason IS NULL)
            WHERE k > 1
            """
        ).to_arrow_table()
        keep[np.asarray(dups.column("row"), dtype=np.int64) - 1] = False
        parts.append(dups)
    accepted = raw.select(target.names)
    if not keep.all():
        accepted = accepted.filter(pa.array(keep))
    rejects = pa.concat_tables([t.cast(flagged.schema) for t in parts])
    rejects = rejects.take(pc.sort_indices(rejects, [("row", "ascending")]))
    n = rejects.num_rows
    detail = pc.if_else(
        pc.equal(rejects.column("reason"), "missing_field"),
        pa.nulls(n, pa.string()),
        rejects.column("detail"),
    )
    table = pa.Table.from_arrays(
        [
            pa.array([name] * n, pa.string()),
            rejects.column("row"),
            pa.nulls(n, pa.int64()),
            rejects.column("reason"),
            rejects.column("key"),
            detail,
        ],
        schema=REJECTS,
    )
    return _typed(con, accepted, target).cast(target), table


def _typed(con: duckdb.DuckDBPyConnection, table: pa.Table, target: pa.Schema) -> pa.Table:
    """Convert accepted rows to the schema's types (CSV columns arrive as text); typed input passes as is."""
    if all(table.schema.field(f.name).type == f.type for f in target):
        return table
    exprs = []
    for f in target:
        if pa.types.is_timestamp(f.type):
            exprs.append(f"{_ts_expr(table, f.name)} AS {f.name}")
        elif pa.types.is_integer(f.type):
            exprs.append(f"{_int_expr(table, f.name)} AS {f.name}")
        else:
            exprs.append(f"{_str(f.name)} AS {f.name}")
    con.register("accepted", table)
    try:
        return (
            con.execute(f"SELECT {', '.join(exprs)} FROM accepted")
            .to_arrow_table()
            .cast(pa.schema([pa.field(f.name, f.type) for f in target]))
        )
    finally:
        con.unregister("accepted")


def write_table(table: pa.Table, path: Path) -> None:
    """Write one ledger table as Parquet or CSV, chosen by the file suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    elif path.suffix == ".parquet":
        pq.write_table(table, path, compression="zstd")
    else:
        raise LedgerError(f"只支持 .parquet 或 .csv / unsupported file type: {path}")


def write_ledger(directory: Path, accounts: pa.Table, transfers: pa.Table, fmt: str = "parquet") -> None:
    """Write accounts and transfers (in the schema's column order and types) into a ledger folder."""
    write_table(accounts.select(schema.ACCOUNTS.names).cast(schema.ACCOUNTS), directory / f"accounts.{fmt}")
    write_table(
        transfers.select(schema.TRANSFERS.names).cast(schema.TRANSFERS), directory / f"transfers.{fmt}"
    )


def write_rejects(rejects: pa.Table, path: Path) -> None:
    """Write the rejected rows with their reasons as CSV (UTF-8), for the data owner to fix and resend."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(rejects.cast(REJECTS), path)
