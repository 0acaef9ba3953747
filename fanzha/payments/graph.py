"""`LedgerGraph`: a memory-mappable index of a ledger's transfers for forward (money-flow) traversal.

Accounts are interned to int32 (their position in the sorted list of ids, so a look-up is a binary search);
each account's outgoing transfers are contiguous and sorted by time (CSR arrays). Cash deposits hang off a
pseudo-account (index `n_accounts`) so every valid row is an edge; a cash withdrawal has destination -1.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fanzha.payments.ledger import find_table
from fanzha.payments.schema import MAX_AMOUNT_FEN

INDEX_VERSION = 1
INDEX_DIR = "graph_index"
CASH = -1  # destination of a cash withdrawal
_ARRAYS = ("ptr", "dst", "ts", "amt", "edge_pos", "sorted_edge")
_BROKEN_SAMPLE = 20


class LedgerError(ValueError):
    """The ledger cannot be read or indexed (missing file, wrong columns)."""


class UnknownTransfer(KeyError):
    """Transfer ids that are not in the ledger (or were excluded as broken rows)."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(ids)
        self.ids = ids

    def __str__(self) -> str:
        shown = ", ".join(self.ids[:10]) + (" …" if len(self.ids) > 10 else "")
        return f"账本中没有这些转账 (unknown transfer ids): {shown}"


@dataclass
class LedgerGraph:
    """CSR arrays over valid transfers; see the module docstring for the layout."""

    accounts: pa.Array  # sorted, unique account ids; position = interned id
    banks: pa.Array  # bank code per account ("" when the account is not in accounts.parquet)
    tids: pa.Array  # transfer ids, sorted
    ptr: np.ndarray  # int64 [n_accounts + 2]: edges of account a are ptr[a]:ptr[a+1]
    dst: np.ndarray  # int32 [E]: destination account, CASH for a withdrawal
    ts: np.ndarray  # int64 [E]: ms since epoch, naive CST
    amt: np.ndarray  # int64 [E]: fen
    edge_pos: np.ndarray  # int32 [E]: position of the edge's transfer id in `tids`
    sorted_edge: np.ndarray  # int32 [len(tids)]: edge of each sorted transfer id, -1 for a broken row
    meta: dict[str, Any] = field(default_factory=dict)
    _bank_flags: dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_accounts(self) -> int:
        return len(self.accounts)

    @property
    def n_edges(self) -> int:
        return len(self.dst)

    @property
    def cash_node(self) -> int:
        return self.n_accounts

    @property
    def broken_rows(self) -> int:
        return int(self.meta.get("broken_rows", 0))

    def account_id(self, index: int) -> str:
        return "现金" if index in (CASH, self.cash_node) else self.accounts[index].as_py()

    def bank(self, index: int) -> str:
        return "" if index in (CASH, self.cash_node) else self.banks[index].as_py()

    def bank_flags(self, code: str) -> bytes:
        """One byte per account, 1 when it is held at bank `code` (computed once per code, then cached).

        bytes rather than a NumPy array: indexing gives a plain int, which the trace loop tests per transfer.
        """
        flags = self._bank_flags.get(code)
        if flags is None:
            mask = _np(pc.equal(self.banks, code), fill=False).astype(np.uint8)
            flags = self._bank_flags[code] = mask.tobytes()
        return flags

    def account_index(self, account_id: str) -> int | None:
        i = _bisect(self.accounts, account_id)
        return i if i < len(self.accounts) and self.accounts[i].as_py() == account_id else None

    def transfer_id(self, edge: int) -> str:
        return self.tids[int(self.edge_pos[edge])].as_py()

    def edge_of(self, transfer_id: str) -> int | None:
        """The edge of a transfer id, None when unknown or excluded as broken."""
        i = _bisect(self.tids, transfer_id)
        if i >= len(self.tids) or self.tids[i].as_py() != transfer_id:
            return None
        edge = int(self.sorted_edge[i])
        return edge if edge >= 0 else None

    def edges_of(self, transfer_ids: list[str]) -> np.ndarray:
        """Edges of the given ids, in order; raises UnknownTransfer naming every missing one."""
        edges = [self.edge_of(t) for t in transfer_ids]
        missing = [t for t, e in zip(transfer_ids, edges, strict=True) if e is None]
        if missing:
            raise UnknownTransfer(missing)
        return np.asarray(edges, dtype=np.int64)

    def source_of(self, edge: int) -> int:
        return int(np.searchsorted(self.ptr, edge, side="right")) - 1

    def save(self, directory: Path) -> None:
        """Write the index (`.npy` arrays + Arrow IPC string columns) so `load` can memory-map it."""
        directory.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            np.save(directory / f"{name}.npy", getattr(self, name))
        table = pa.table({"accounts": self.accounts, "banks": self.banks})
        _write_ipc(directory / "accounts.arrow", table)
        _write_ipc(directory / "tids.arrow", pa.table({"tids": self.tids}))
        (directory / "meta.json").write_text(json.dumps(self.meta, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, directory: Path) -> LedgerGraph:
        """Memory-map a saved index: start-up costs milliseconds whatever the ledger size."""
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("version") != INDEX_VERSION:
            raise LedgerError(f"index {directory} is version {meta.get('version')}, not {INDEX_VERSION}")
        # Plain ndarray views of the maps: still memory-mapped, but indexing skips np.memmap's Python layer.
        arrays = {name: np.asarray(np.load(directory / f"{name}.npy", mmap_mode="r")) for name in _ARRAYS}
        accounts = _read_ipc(directory / "accounts.arrow")
        tids = _read_ipc(directory / "tids.arrow")
        return cls(
            accounts=_single(accounts.column("accounts")),
            banks=_single(accounts.column("banks")),
            tids=_single(tids.column("tids")),
            meta=meta,
            **arrays,
        )


def _single(column: pa.ChunkedArray) -> pa.Array:
    # save() writes one chunk: take it as is (zero-copy over the memory map) instead of concatenating.
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _bisect(values: pa.Array, key: str) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid].as_py() < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _write_ipc(path: Path, table: pa.Table) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read_ipc(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()


def _read(path: Path, columns: list[str]) -> pa.Table:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path, columns=columns)
        except (pa.ArrowInvalid, KeyError) as exc:
            raise LedgerError(f"{path}: {exc}") from exc
    from pyarrow import csv

    from fanzha.payments.schema import LEDGER_FILES

    schema = LEDGER_FILES[path.stem]
    types = {f.name: f.type for f in schema if f.name in columns}
    try:
        # Bad values in a CSV become nulls (then broken rows) rather than aborting the whole ledger.
        table = csv.read_csv(
            path,
            convert_options=csv.ConvertOptions(
                column_types={k: pa.string() for k in types}, include_columns=columns
            ),
        )
    except (pa.ArrowInvalid, KeyError) as exc:
        raise LedgerError(f"{path}: {exc}") from exc
    out = {}
    for name, typ in types.items():
        col = table.column(name)
        if typ == pa.string():
            out[name] = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
        elif pa.types.is_timestamp(typ):
            out[name] = pc.strptime(col, format="%Y-%m-%d %H:%M:%S", unit="ms", error_is_null=True)
        else:
            out[name] = _to_int(col)
    return pa.table(out)


def _to_int(col: pa.ChunkedArray) -> pa.ChunkedArray:
    ok = pc.match_substring_regex(col, r"^-?\d{1,18}$")
    return pc.cast(pc.if_else(ok, col, pa.scalar(None, pa.string())), pa.int64())


def source_stamp(ledger_dir: Path) -> dict[str, int]:
    """Size and mtime of the files the index was built from, to notice a replaced ledger."""
    stamp = {}
    for name in ("transfers", "accounts"):
        path = find_table(ledger_dir, name)
        if path is not None:
            st = path.stat()
            stamp[path.name] = st.st_mtime_ns ^ st.st_size
    return stamp


class _Transfers:
    """The transfers table read a few columns at a time, so the whole ledger is never in memory at once.

    Parquet is read per column group (numeric columns row group by row group straight into NumPy); a CSV
    is parsed once and its columns are handed out (and released) one group at a time.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._csv: dict[str, pa.ChunkedArray] | None = None
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            try:
                self._file: Any = pq.ParquetFile(path)
            except (pa.ArrowInvalid, OSError) as exc:
                raise LedgerError(f"{path}: {exc}") from exc
            missing = [c for c in _TRANSFER_COLUMNS if c not in self._file.schema_arrow.names]
            if missing:
                raise LedgerError(f"{path}: missing columns {missing}")
            self.rows = self._file.metadata.num_rows
        else:
            table = _read(path, list(_TRANSFER_COLUMNS))
            self._csv = {name: table.column(name) for name in _TRANSFER_COLUMNS}
            self.rows = table.num_rows

    def strings(self, name: str) -> pa.ChunkedArray:
        if self._csv is not None:
            return self._csv.pop(name)
        return _read(self.path, [name]).column(name)

    def integers(self, name: str, fill: int) -> np.ndarray:
        """An int64 column (timestamps as ms) with nulls replaced by `fill`."""
        if self._csv is not None:
            return _np(pc.cast(self._csv.pop(name), pa.int64()), fill=fill)
        out = np.empty(self.rows, dtype=np.int64)
        at = 0
        try:
            for batch in self._file.iter_batches(batch_size=_BATCH_ROWS, columns=[name]):
                col = batch.column(0)
                out[at : at + len(col)] = _np(pc.cast(col, pa.int64()), fill=fill)
                at += len(col)
        except pa.ArrowInvalid as exc:
            raise LedgerError(f"{self.path}: {exc}") from exc
        if at != self.rows:
            raise LedgerError(f"{self.path}: read {at} rows of {name}, expected {self.rows}")
        return out


_TRANSFER_COLUMNS = ("transfer_id", "ts", "from_account", "to_account", "amount_fen")
_BATCH_ROWS = 1 << 20


def build(ledger_dir: Path) -> LedgerGraph:
    """Index the ledger's transfers; invalid rows are excluded and counted (see `meta['broken_rows']`).

    Peak memory matters at tens of millions of rows: each column is turned into its compact NumPy form and
    released before the next is read, and the large temporaries are dropped as soon as they are used.
    """
    transfers_path = find_table(ledger_dir, "transfers")
    if transfers_path is None:
        raise LedgerError(f"{ledger_dir}: no transfers.parquet or transfers.csv")
    transfers = _Transfers(transfers_path)
    accounts_path = find_table(ledger_dir, "accounts")
    acc = _read(accounts_path, ["account_id", "bank"]) if accounts_path else None

    # Accounts: intern the ids (sorted, so a look-up is a binary search), then drop the id strings.
    src, dst = transfers.strings("from_account"), transfers.strings("to_account")
    parts = [*src.chunks, *dst.chunks] + (list(acc.column("account_id").chunks) if acc else [])
    names = pc.unique(pa.chunked_array(parts, type=pa.string())).drop_null()
    del parts
    names = names.take(pc.sort_indices(names))
    n = len(names)
    src_i = _np(pc.index_in(src, value_set=names), fill=n).astype(np.int32)
    dst_i = _np(pc.index_in(dst, value_set=names), fill=CASH).astype(np.int32)
    del src, dst
    banks = _banks(acc, names)
    del acc

    ts = transfers.integers("ts", fill=_NO_TIME)
    amount = transfers.integers("amount_fen", fill=0)
    tid = transfers.strings("transfer_id")
    tid_null = _np(pc.is_null(tid), fill=True) | _np(pc.equal(tid, ""), fill=True)

    # One bit per reason rather than a bool array each: eight times less memory at 50 M rows.
    reason_masks = {
        "无转账编号 (missing transfer_id)": tid_null,
        "无时间 (missing ts)": ts == _NO_TIME,
        "金额无效 (amount ≤ 0, missing or absurd)": (amount <= 0) | (amount > MAX_AMOUNT_FEN),
        "付款方与收款方均为空 (no from and no to)": (src_i == n) & (dst_i == CASH),
        "自己转给自己 (from = to)": src_i == dst_i,
    }
    why = np.zeros(len(ts), dtype=np.uint8)
    for bit, mask in enumerate(reason_masks.values()):
        why |= mask.astype(np.uint8) << bit
    reasons = list(reason_masks)
    del reason_masks

    # Sort ids (nulls last) to intern them and to find duplicates: an id used twice is ambiguous.
    order = pc.array_sort_indices(tid, null_placement="at_end").to_numpy()
    # large_string: tens of millions of ids can pass the 2 GiB a plain string array can address.
    sorted_tids = pc.cast(tid.take(pa.array(order)), pa.large_string()).combine_chunks()
    del tid
    n_ids = len(order) - int(tid_null.sum())
    del tid_null
    dup = np.zeros(len(order), dtype=bool)
    if n_ids > 1:
        same = _np(pc.equal(sorted_tids[1:n_ids], sorted_tids[: n_ids - 1]), fill=False)
        dup_sorted = np.zeros(len(order), dtype=bool)
        dup_sorted[1:n_ids] |= same
        dup_sorted[: n_ids - 1] |= same
        del same
        dup[order[dup_sorted]] = True
        del dup_sorted
    reasons.append("转账编号重复 (duplicate transfer_id)")
    why |= dup.astype(np.uint8) << (len(reasons) - 1)
    del dup
    pos_of_row = np.empty(len(order), dtype=np.int64)
    pos_of_row[order] = np.arange(len(order))
    del order

    valid = np.flatnonzero(why == 0)
    edge_order = valid[np.lexsort((ts[valid], src_i[valid]))]
    del valid
    row_edge = np.full(len(ts), -1, dtype=np.int32)
    row_edge[edge_order] = np.arange(len(edge_order), dtype=np.int32)
    sorted_edge = np.empty(len(ts), dtype=np.int32)
    sorted_edge[pos_of_row] = row_edge
    del row_edge

    counts = np.bincount(src_i[edge_order], minlength=n + 1)
    ptr = np.zeros(n + 2, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])

    broken_rows = np.flatnonzero(why)
    sample = []
    for row in broken_rows[:_BROKEN_SAMPLE]:
        bits = int(why[row])
        sample.append(
            {
                "row": int(row),
                "transfer_id": sorted_tids[int(pos_of_row[row])].as_py(),
                "reasons": [k for bit, k in enumerate(reasons) if bits >> bit & 1],
            }
        )
    broken_src = np.unique(src_i[broken_rows][src_i[broken_rows] < n])
    meta = {
        "version": INDEX_VERSION,
        "ledger_dir": str(ledger_dir),
        "source": source_stamp(ledger_dir),
        "rows": len(ts),
        "edges": len(edge_order),
        "accounts": n,
        "broken_rows": len(broken_rows),
        "broken_by_reason": {
            k: count
            for bit, k in enumerate(reasons)
            if (count := int(np.count_nonzero(why & np.uint8(1 << bit))))
        },
        "broken_sample": sample,
        # Accounts whose own outgoing rows were excluded: a trace through them may miss an outflow.
        "broken_accounts": [int(a) for a in broken_src[:100_000]],
    }
    del why, broken_rows
    return LedgerGraph(
        accounts=names,
        banks=banks,
        tids=sorted_tids,
        ptr=ptr,
        dst=dst_i[edge_order],
        ts=ts[edge_order],
        amt=amount[edge_order],
        edge_pos=pos_of_row[edge_order].astype(np.int32),
        sorted_edge=sorted_edge,
        meta=meta,
    )


_NO_TIME = int(np.iinfo(np.int64).min)


def _banks(acc: pa.Table | None, names: pa.Array) -> pa.Array:
    """Bank code per interned account ("" when the account is not in accounts.parquet)."""
    n = len(names)
    if acc is None:
        return pa.array([""] * n, type=pa.string())
    idx = _np(pc.index_in(acc.column("account_id"), value_set=names), fill=-1)
    bank_col = acc.column("bank").to_numpy(zero_copy_only=False)
    values = np.full(n, "", dtype=object)
    keep = idx >= 0
    values[idx[keep]] = [b or "" for b in bank_col[keep]]
    return pa.array(values, type=pa.string())


def _np(values: pa.ChunkedArray | pa.Array, fill: object) -> np.ndarray:
    """A column as NumPy with nulls replaced (fill_null first: to_numpy of ints with nulls gives floats)."""
    filled = pc.fill_null(values, fill)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks() if filled.num_chunks else pa.array([], filled.type)
    return filled.to_numpy(zero_copy_only=False)


def open_graph(ledger_dir: Path, *, write: bool = True) -> LedgerGraph:
    """The ledger's saved index if it is current, else a fresh build (saved beside the ledger if possible)."""
    index = ledger_dir / INDEX_DIR
    if (index / "meta.json").is_file():
        try:
            graph = LedgerGraph.load(index)
        except (OSError, ValueError):
            graph = None  # unreadable or older index: rebuilt below
        if graph is not None and graph.meta.get("source") == source_stamp(ledger_dir):
            return graph
    graph = build(ledger_dir)
    if write and os.access(ledger_dir, os.W_OK):
        graph.save(index)
    return graph
