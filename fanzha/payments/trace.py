"""Emergency tracing (资金穿透): follow a victim's money forward through the ledger and attribute it in fen.

Attribution rule (docs/payments_trace.md): per account, the victim's ("tainted") money is tracked as lots in
time order. An outflow takes tainted money first (污染资金优先转出), oldest lot first among tainted lots
(先进先出); clean money the account held before is assumed to stay. Money that left before the tainted money
arrived is never attributed, and no account is ever attributed more than it received from the traced chain.
"""

from __future__ import annotations

import gc
import heapq
import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson

from fanzha.payments.graph import CASH, LedgerGraph, UnknownTransfer

MAX_HOPS_LIMIT = 20
MAX_WINDOW_HOURS = 24 * 90
MAX_OTHER_VICTIMS = 200
EXTERNAL_BANK = "EXT"  # schema: accounts at another bank carry this bank code
RULE = "tainted_first_fifo"
_EPOCH = datetime(1970, 1, 1)


class TraceError(ValueError):
    """The trace request cannot be honoured (bad parameters, victim transfer that moves no money …)."""


def fmt_ts(ms: int) -> str:
    """ms since epoch (naive CST) → 'YYYY-MM-DD HH:MM:SS' in the same local time."""
    return (_EPOCH + timedelta(milliseconds=int(ms))).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class VictimTransfer:
    transfer_id: str
    from_account: str
    to_account: str
    ts: str
    amount_fen: int


@dataclass
class OtherCaseShare:
    case_id: str
    received_fen: int
    held_fen: int


@dataclass
class TracedAccount:
    """One account the victim's money reached; `held_fen` > 0 makes it a freeze (止付) candidate."""

    account: str
    bank: str
    hop: int
    first_arrival: str
    received_fen: int
    passed_on_fen: int
    held_fen: int
    parents: list[str]
    path: list[str]
    other_cases: list[OtherCaseShare] = field(default_factory=list)
    warning: str | None = None


@dataclass
class Exit:
    """Victim money that left what this ledger can follow."""

    kind: str  # cash 取现 | external 转出他行 | beyond_hops 超出追踪层级
    from_account: str
    to_account: str | None
    transfer_id: str
    ts: str
    amount_fen: int
    hop: int


@dataclass
class OtherVictim:
    case_id: str
    transfer_ids: list[str]
    shared_accounts: list[str]
    held_fen: int  # that case's money still held in the accounts shared with this trace


@dataclass
class TraceResult:
    """The answer to "where is this victim's money now", shared by the CLI, the API and the exports."""

    victim_transfers: list[VictimTransfer]
    max_hops: int
    window_hours: int
    window_start: str
    window_end: str  # amounts held are as of this time
    rule: str
    total_fen: int
    held_fen: int
    cash_fen: int
    external_fen: int
    beyond_hops_fen: int
    accounts: list[TracedAccount]
    exits: list[Exit]
    other_victims: list[OtherVictim]
    warnings: list[str]

    def freeze_list(self) -> list[TracedAccount]:
        """Accounts still holding the victim's money, largest first (the 止付 request)."""
        return sorted((a for a in self.accounts if a.held_fen > 0), key=lambda a: (-a.held_fen, a.hop))

    def to_json(self, indent: bool = False) -> bytes:
        return orjson.dumps(self, option=orjson.OPT_INDENT_2 if indent else 0)


class KnownVictims:
    """Victim payments of registered (or labelled) cases, indexed by time for "other victims" look-ups."""

    def __init__(self, graph: LedgerGraph, transfer_cases: Mapping[str, str]) -> None:
        pairs = [(graph.edge_of(t), c) for t, c in transfer_cases.items()]
        self.unknown = sum(1 for e, _ in pairs if e is None)
        known = sorted((int(graph.ts[e]), e, c) for e, c in pairs if e is not None)
        self.ts = np.array([k[0] for k in known], dtype=np.int64)
        self.edges = [k[1] for k in known]
        self.cases = [k[2] for k in known]
        self.case_of_edge = dict(zip(self.edges, self.cases, strict=True))

    def between(self, start: int, end: int) -> list[tuple[int, str]]:
        lo, hi = np.searchsorted(self.ts, [start, end], side="left")
        return [(self.edges[i], self.cases[i]) for i in range(lo, hi)]


def known_victims_from_labels(path: Path) -> dict[str, str]:
    """Victim payments of a simulated ledger: labelled transfers whose payer is a victim account.

    labels_transfers.parquet marks the laundering hops with the case too; only the payment out of the
    victim's own account (labels_accounts.parquet beside it: role = victim) is the victim's transfer.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    labels = pq.read_table(path, columns=["transfer_id", "case_id"])
    labels = labels.filter(pc.is_valid(labels.column("case_id")))
    roles_path, transfers_path = path.parent / "labels_accounts.parquet", path.parent / "transfers.parquet"
    if roles_path.is_file() and transfers_path.is_file():
        roles = pq.read_table(roles_path, columns=["account_id", "role"])
        victims = roles.filter(pc.equal(roles.column("role"), "victim")).column("account_id")
        rows = pq.read_table(transfers_path, columns=["transfer_id", "from_account"])
        rows = rows.filter(pc.is_in(rows.column("from_account"), value_set=victims))
        paid = pc.is_in(labels.column("transfer_id"), value_set=rows.column("transfer_id").combine_chunks())
        labels = labels.filter(paid)
    ids, cases = labels.column("transfer_id").to_pylist(), labels.column("case_id").to_pylist()
    return dict(zip(ids, cases, strict=True))


class _Share:
    """One case's money at one account."""

    __slots__ = ("first_ts", "held", "hop", "parents", "passed", "received", "via")

    def __init__(self, ts: int, hop: int, via: int) -> None:
        self.first_ts, self.hop, self.via = ts, hop, via
        self.received = self.passed = self.held = 0
        self.parents: set[int] = set()


class _Account:
    """Tainted lots of one account and its cursor over its outgoing edges (`next_edge` … `hi`)."""

    __slots__ = ("balance", "hi", "lots", "next_edge", "pending", "shares")

    def __init__(self, lo: int, hi: int) -> None:
        self.lots: deque[list[int]] = deque()  # [colour, hop, amount], oldest first
        self.balance = 0
        self.next_edge = lo
        self.hi = hi
        self.pending = False
        self.shares: dict[int, _Share] = {}


def trace(
    graph: LedgerGraph,
    victim_transfer_ids: Iterable[str],
    max_hops: int = 6,
    window_hours: int = 72,
    known_victims: Mapping[str, str] | KnownVictims | None = None,
) -> TraceResult:
    """Trace the money of one victim (one or more of their transfers) forward; see the module docstring."""
    ids = list(dict.fromkeys(victim_transfer_ids))
    if not ids:
        raise TraceError("至少需要一笔受害人转账 (give at least one victim transfer id)")
    if not 1 <= max_hops <= MAX_HOPS_LIMIT:
        raise TraceError(f"追踪层级须在 1–{MAX_HOPS_LIMIT} 之间 (max_hops out of range)")
    if not 1 <= window_hours <= MAX_WINDOW_HOURS:
        raise TraceError(f"时间窗须在 1–{MAX_WINDOW_HOURS} 小时之间 (window_hours out of range)")
    edges = graph.edges_of(ids)
    for tid, e in zip(ids, edges, strict=True):
        if int(graph.dst[e]) == CASH:
            raise TraceError(f"转账 {tid} 是取现，没有收款账户可追踪 (a cash withdrawal cannot be traced)")
    start = int(graph.ts[edges].min())
    end = int(graph.ts[edges].max()) + window_hours * 3_600_000

    seeds = [(int(e), 0) for e in edges]
    colours = {0: ""}
    other_ids: dict[int, list[str]] = {}
    warnings: list[str] = []
    if known_victims is not None:
        known = (
            known_victims if isinstance(known_victims, KnownVictims) else KnownVictims(graph, known_victims)
        )
        own_cases = {known.case_of_edge[int(e)] for e in edges if int(e) in known.case_of_edge}
        own_edges = {int(e) for e in edges}
        candidates = [
            (e, c)
            for e, c in known.between(start - window_hours * 3_600_000, end + 1)
            if e not in own_edges and c not in own_cases and int(graph.dst[e]) != CASH
        ]
        if len(candidates) > MAX_OTHER_VICTIMS:
            # The closest in time to this victim's payment are the likeliest to share its accounts.
            candidates.sort(key=lambda ec: abs(int(graph.ts[ec[0]]) - start))
            candidates = candidates[:MAX_OTHER_VICTIMS]
            warnings.append(f"同期其他受害人过多，仅核对时间最接近的 {MAX_OTHER_VICTIMS} 笔")
        colour_of: dict[str, int] = {}
        for e, case in candidates:
            colour = colour_of.setdefault(case, len(colour_of) + 1)
            colours[colour] = case
            seeds.append((e, colour))
            other_ids.setdefault(colour, []).append(graph.transfer_id(e))

    with _gc_paused():
        state, exits = _run(graph, seeds, max_hops, end)
        result = _result(
            graph, ids, edges, state, exits, colours, other_ids, max_hops, window_hours, start, end, warnings
        )
        del state, exits
    return result


@contextmanager
def _gc_paused() -> Iterator[None]:
    """A trace allocates ~10^5 small containers that form no cycles and die when it returns: the cyclic
    collector's passes over them cost a quarter of a trace with other victims on a large ledger, and they
    must be freed (by reference counting) before it runs again, or its next pass meets them all at once."""
    # Traces may overlap in a threaded server: the first one in pauses the collector, the last one out
    # restores it (a per-call save/restore could leave it off for good when traces interleave).
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = True


def _run(
    graph: LedgerGraph, seeds: list[tuple[int, int]], max_hops: int, end: int
) -> tuple[dict[int, _Account], list[tuple[int, int, int, int, int]]]:
    """Process tainted outflows in global time order; every edge is handled at most once, so cycles end.

    Only colour 0's exits are returned (the only ones reported).

    One loop iteration per tainted transfer is the whole cost of a trace with other victims (~16,000 of them
    at 50 M transfers), hence the inlined style and Python ints (`ndarray.item`) rather than NumPy scalars.
    """
    seed_edges = {e for e, _ in seeds}
    ptr_at, ts_at, dst_at, amt_at = graph.ptr.item, graph.ts.item, graph.dst.item, graph.amt.item
    ts_arr = graph.ts
    external = graph.bank_flags(EXTERNAL_BANK)
    state: dict[int, _Account] = {}
    exits: list[tuple[int, int, int, int, int]] = []  # (edge, colour, hop, amount, kind), colour 0 only
    # (ts, 0 = victim payment arriving / 1 = outflow, edge, colour or account): a payment is credited before
    # an outflow of the same millisecond, so a same-millisecond onward transfer may carry it.
    heap: list[tuple[int, int, int, int]] = [(ts_at(e), 0, e, c) for e, c in seeds]
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop
    pieces: list[tuple[int, int, int]] = []
    while heap:
        t, kind, edge, src = pop(heap)
        if kind:
            acc = state[src]
            dst = dst_at(edge)
            # A victim payment is wholly that victim's money (seeded below); it carries no other taint.
            want = 0 if edge in seed_edges else amt_at(edge)
            balance = acc.balance
            if want > balance:
                want = balance
            pieces.clear()
            if want:
                # Tainted first, oldest lot first.
                acc.balance = balance - want
                lots, shares = acc.lots, acc.shares
                while want:
                    lot = lots[0]
                    colour, hop, amount = lot
                    if amount <= want:
                        lots.popleft()
                        take = amount
                    else:
                        lot[2] = amount - want
                        take = want
                    want -= take
                    share = shares[colour]
                    share.passed += take
                    share.held -= take
                    pieces.append((colour, hop, take))
            acc.next_edge = nxt = edge + 1
            if acc.balance > 0 and nxt < acc.hi and (tn := ts_at(nxt)) <= end:
                push(heap, (tn, 1, nxt, src))
            else:
                acc.pending = False
            if not pieces:
                continue
        else:
            pieces.clear()
            pieces.append((src, 0, amt_at(edge)))  # a seed: src holds its colour
            src, dst = graph.source_of(edge), dst_at(edge)
        if dst == CASH:
            for colour, hop, amount in pieces:
                if not colour:
                    exits.append((edge, 0, hop, amount, 0))
            continue
        into = None
        for colour, hop, amount in pieces:
            if hop >= max_hops:
                if not colour:
                    exits.append((edge, 0, hop, amount, 2))
            elif external[dst]:
                if not colour:
                    exits.append((edge, 0, hop, amount, 1))
            else:
                if into is None:
                    into = state.get(dst)
                    if into is None:
                        into = state[dst] = _Account(ptr_at(dst), ptr_at(dst + 1))
                share = into.shares.get(colour)
                if share is None:
                    share = into.shares[colour] = _Share(t, hop + 1, src)
                elif hop + 1 < share.hop:
                    share.hop = hop + 1
                share.received += amount
                share.held += amount
                share.parents.add(src)
                into.lots.append([colour, hop + 1, amount])
                into.balance += amount
        if into is not None and not into.pending:
            # The first edge from the cursor on at or after t: money never leaves before it arrived.
            nxt = bisect_left(ts_arr, t, into.next_edge, into.hi)
            if nxt < into.hi and (tn := ts_at(nxt)) <= end:
                into.pending = True
                into.next_edge = nxt
                push(heap, (tn, 1, nxt, dst))
    return state, exits


_EXIT_KINDS = ("cash", "external", "beyond_hops")


def _result(
    graph: LedgerGraph,
    ids: list[str],
    edges: np.ndarray,
    state: dict[int, _Account],
    raw_exits: list[tuple[int, int, int, int, int]],
    colours: dict[int, str],
    other_ids: dict[int, list[str]],
    max_hops: int,
    window_hours: int,
    start: int,
    end: int,
    warnings: list[str],
) -> TraceResult:
    name = graph.account_id
    victims = [
        VictimTransfer(
            tid,
            name(graph.source_of(int(e))),
            name(int(graph.dst[e])),
            fmt_ts(int(graph.ts[e])),
            int(graph.amt[e]),
        )
        for tid, e in zip(ids, edges, strict=True)
    ]
    total = sum(v.amount_fen for v in victims)
    broken = set(graph.meta.get("broken_accounts", []))

    def path_to(acct: int) -> list[str]:
        # Follow each account's first tainted arrival back to the victim (arrival order makes it a tree).
        path, seen, node = [acct], {acct}, acct
        while True:
            via = state[node].shares[0].via
            path.append(via)
            if via in seen or via not in state or 0 not in state[via].shares:
                return [name(a) for a in reversed(path)]
            seen.add(via)
            node = via

    accounts: list[TracedAccount] = []
    shared: dict[int, list[tuple[str, int]]] = {}
    for acct, acc in state.items():
        mine = acc.shares.get(0)
        if mine is None:
            continue
        others = [
            OtherCaseShare(colours[c], s.received, s.held) for c, s in sorted(acc.shares.items()) if c != 0
        ]
        for c, s in acc.shares.items():
            if c:
                shared.setdefault(c, []).append((name(acct), s.held))
        accounts.append(
            TracedAccount(
                account=name(acct),
                bank=graph.bank(acct),
                hop=mine.hop,
                first_arrival=fmt_ts(mine.first_ts),
                received_fen=mine.received,
                passed_on_fen=mine.passed,
                held_fen=mine.held,
                parents=sorted(name(p) for p in mine.parents),
                path=path_to(acct),
                other_cases=others,
                warning="该账户有无效流水被排除，金额需人工核对" if acct in broken else None,
            )
        )
    accounts.sort(key=lambda a: (a.hop, a.first_arrival, a.account))

    exits = [
        Exit(
            kind=_EXIT_KINDS[kind],
            from_account=name(graph.source_of(e)),
            to_account=None if int(graph.dst[e]) == CASH else name(int(graph.dst[e])),
            transfer_id=graph.transfer_id(e),
            ts=fmt_ts(int(graph.ts[e])),
            amount_fen=amount,
            hop=hop,
        )
        for e, colour, hop, amount, kind in raw_exits
        if colour == 0
    ]
    by_kind = {k: sum(x.amount_fen for x in exits if x.kind == k) for k in _EXIT_KINDS}
    held = sum(a.held_fen for a in accounts)
    if held + sum(by_kind.values()) != total:
        # Never hand out a freeze list whose amounts do not add up.
        raise RuntimeError(f"trace does not conserve money: {held} + {by_kind} != {total}")

    others = [
        OtherVictim(colours[c], other_ids[c], sorted(a for a, _ in rows), sum(h for _, h in rows))
        for c, rows in sorted(shared.items())
    ]
    if graph.broken_rows:
        warnings.append(f"账本中有 {graph.broken_rows} 行无效记录未参与追踪（见索引 meta.json）")
    if any(a.warning for a in accounts):
        warnings.append("部分账户有被排除的无效流水，其金额需人工核对")
    return TraceResult(
        victim_transfers=victims,
        max_hops=max_hops,
        window_hours=window_hours,
        window_start=fmt_ts(start),
        window_end=fmt_ts(end),
        rule=RULE,
        total_fen=total,
        held_fen=held,
        cash_fen=by_kind["cash"],
        external_fen=by_kind["external"],
        beyond_hops_fen=by_kind["beyond_hops"],
        accounts=accounts,
        exits=exits,
        other_victims=others,
        warnings=warnings,
    )


__all__ = [
    "KnownVictims",
    "TraceError",
    "TraceResult",
    "UnknownTransfer",
    "known_victims_from_labels",
    "trace",
]
