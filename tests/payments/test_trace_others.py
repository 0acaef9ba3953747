"""The optimised trace gives exactly the answer of the straightforward one, other victims included.

`reference_run` below is the event loop as first written (NumPy scalars, one routing call per lot, exits of
every colour kept); trace.py's `_run` is the same rule made fast. Both are run on small simulated ledgers
where several victims' money shares a mule pool, goes round cycles, is cashed out, leaves for another bank,
moves in the same millisecond as it arrives and crosses the hop limit, and the whole results must be equal.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from fanzha.payments import trace as trace_mod
from fanzha.payments.graph import CASH, LedgerGraph, build
from fanzha.payments.trace import TraceResult, trace
from tests.payments.test_trace import Row, write_ledger


def reference_run(
    graph: LedgerGraph, seeds: list[tuple[int, int]], max_hops: int, end: int
) -> tuple[dict[int, trace_mod._Account], list[tuple[int, int, int, int, int]]]:
    """The straightforward loop: tainted outflows in global time order, each lot routed on its own."""
    ptr, dst_of, ts_of, amt_of, banks = graph.ptr, graph.dst, graph.ts, graph.amt, graph.banks
    state: dict[int, trace_mod._Account] = {}
    exits: list[tuple[int, int, int, int, int]] = []
    seed_edges = {e for e, _ in seeds}
    heap: list[tuple[int, int, int, int]] = [(int(ts_of[e]), 0, e, c) for e, c in seeds]
    heapq.heapify(heap)

    def credit(acct: int, colour: int, hop: int, amount: int, t: int, via: int) -> None:
        acc = state.get(acct)
        if acc is None:
            acc = state[acct] = trace_mod._Account(int(ptr[acct]), int(ptr[acct + 1]))
            acc.lots = deque()
        share = acc.shares.get(colour)
        if share is None:
            share = acc.shares[colour] = trace_mod._Share(t, hop, via)
        share.hop = min(share.hop, hop)
        share.received += amount
        share.held += amount
        share.parents.add(via)
        acc.lots.append([colour, hop, amount])
        acc.balance += amount
        if not acc.pending:
            lo, hi = int(ptr[acct]), int(ptr[acct + 1])
            nxt = max(acc.next_edge, lo + int(np.searchsorted(ts_of[lo:hi], t, side="left")))
            if nxt < hi and int(ts_of[nxt]) <= end:
                acc.pending = True
                acc.next_edge = nxt
                heapq.heappush(heap, (int(ts_of[nxt]), 1, nxt, acct))

    def route(src: int, colour: int, hop: int, amount: int, edge: int, t: int) -> None:
        dst = int(dst_of[edge])
        if dst == CASH:
            exits.append((edge, colour, hop, amount, 0))
        elif hop >= max_hops:
            exits.append((edge, colour, hop, amount, 2))
        elif banks[dst].as_py() == trace_mod.EXTERNAL_BANK:
            exits.append((edge, colour, hop, amount, 1))
        else:
            credit(dst, colour, hop + 1, amount, t, src)

    while heap:
        t, kind, edge, tag = heapq.heappop(heap)
        if kind == 0:
            route(graph.source_of(edge), tag, 0, int(amt_of[edge]), edge, t)
            continue
        acc = state[tag]
        want = 0 if edge in seed_edges else min(int(amt_of[edge]), acc.balance)
        while want > 0:
            lot = acc.lots[0]
            take = min(lot[2], want)
            lot[2] -= take
            want -= take
            acc.balance -= take
            share = acc.shares[lot[0]]
            share.passed += take
            share.held -= take
            route(tag, lot[0], lot[1], take, edge, t)
            if lot[2] == 0:
                acc.lots.popleft()
        acc.next_edge = edge + 1
        acc.pending = False
        if acc.balance > 0 and edge + 1 < int(ptr[tag + 1]) and int(ts_of[edge + 1]) <= end:
            acc.pending = True
            heapq.heappush(heap, (int(ts_of[edge + 1]), 1, edge + 1, tag))
    return state, exits


def fraud_ledger(rng: random.Random, cases: int = 10) -> tuple[list[Row], dict[str, str]]:
    """Victims paying into one shared mule pool within hours of each other; chains split, merge, cycle,
    cash out and leave for another bank; everyday transfers and deposits run through the same accounts."""
    mules = [f"M{i}" for i in range(12)]
    others = [f"N{i}" for i in range(15)]
    rows: list[Row] = []
    victims: dict[str, str] = {}
    minute = 1 / 60

    def add(src: str | None, dst: str | None, hours: float, yuan: int) -> str:
        tid = f"t{len(rows)}"
        rows.append((tid, round(hours * 60) * minute, src, dst, yuan))
        return tid

    for k in range(cases):
        t0 = rng.randint(0, 36)
        first = rng.choice(mules)
        for p in range(rng.choice([1, 1, 2])):  # some victims pay twice
            victims[add(f"V{k}", first, t0 + p, rng.randint(2_000, 50_000))] = f"K{k}"
        frontier = [(first, t0)]
        for _ in range(rng.randint(3, 8)):
            acct, t = frontier.pop(0) if len(frontier) > 1 else frontier[0]
            for _ in range(rng.randint(1, 3)):
                # Same minute as the arrival now and then: the same-millisecond rule is exercised.
                t1 = t + rng.choice([0, 0, 1, 2, 5, 30]) * minute
                kind = rng.random()
                if kind < 0.15:
                    add(acct, None, t1, rng.randint(500, 20_000))  # cash out
                elif kind < 0.25:
                    add(acct, rng.choice(["E0", "E1"]), t1, rng.randint(500, 20_000))  # another bank
                else:
                    nxt = rng.choice(mules)  # may be an earlier hop: cycles
                    if nxt != acct:
                        add(acct, nxt, t1, rng.randint(500, 30_000))
                        frontier.append((nxt, t1))
    for _ in range(120):  # everyday money through the same accounts
        src = rng.choice([*mules, *others, None])
        dst = rng.choice([*mules, *others, None])
        if src != dst and (src or dst):
            add(src, dst, rng.uniform(-10, 90), rng.randint(10, 8_000))
    rng.shuffle(rows)
    return rows, victims


def both(graph: LedgerGraph, monkeypatch: pytest.MonkeyPatch, *args: object, **kw: object) -> tuple:
    with monkeypatch.context() as m:
        m.setattr(trace_mod, "_run", reference_run)
        expected = trace(graph, *args, **kw)  # type: ignore[arg-type]
    return expected, trace(graph, *args, **kw)  # type: ignore[arg-type]


def assert_same(expected: TraceResult, actual: TraceResult) -> None:
    assert actual == expected
    assert actual.to_json() == expected.to_json()


@pytest.mark.parametrize("seed", range(12))
def test_other_victims_match_the_straightforward_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    rows, victims = fraud_ledger(rng)
    graph = build(write_ledger(tmp_path / "ledger", rows, external=("E0", "E1")))
    shared = 0
    for tid in sorted(victims):
        hops, hours = rng.choice([1, 2, 3, 6, 20]), rng.choice([1, 6, 24, 72])
        expected, actual = both(
            graph, monkeypatch, [tid], max_hops=hops, window_hours=hours, known_victims=victims
        )
        assert_same(expected, actual)
        shared += len(actual.other_victims)
    assert shared > 0  # the ledger really makes victims share accounts


def test_several_payments_of_one_case_and_the_other_victims_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, victims = fraud_ledger(random.Random(99), cases=14)
    graph = build(write_ledger(tmp_path / "ledger", rows, external=("E0",)))
    by_case: dict[str, list[str]] = {}
    for tid, case in victims.items():
        by_case.setdefault(case, []).append(tid)
    monkeypatch.setattr(trace_mod, "MAX_OTHER_VICTIMS", 4)  # the "closest in time" cut and its warning
    for ids in by_case.values():
        expected, actual = both(graph, monkeypatch, ids, known_victims=victims)
        assert_same(expected, actual)
    assert any("同期其他受害人过多" in w for w in actual.warnings)


def test_busy_accounts_and_cycles_in_the_same_millisecond(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows: list[Row] = [("v1", 0, "V", "A", 1000), ("k1", 0, "W", "A", 700)]
    # A and B pass money back and forth, many transfers in the same millisecond, plus a busy account C.
    rows += [(f"ab{i}", 1 + (i // 4), "A" if i % 2 else "B", "B" if i % 2 else "A", 300) for i in range(40)]
    rows += [(f"c{i}", 0.5 + i / 1000, "C", f"D{i % 7}", 50) for i in range(3000)]
    rows += [("ac", 2, "A", "C", 900), ("cash", 3, "B", None, 200)]
    # W holds tainted money when it makes its own victim payment k2: that payment carries none of it.
    rows += [("aw", 0.25, "A", "W", 400), ("k2", 0.5, "W", "B", 600)]
    graph = build(write_ledger(tmp_path / "ledger", rows))
    for hops in (2, 6, 20):
        known = {"k1": "K", "k2": "K2"}
        expected, actual = both(graph, monkeypatch, ["v1"], max_hops=hops, known_victims=known)
        assert_same(expected, actual)


def test_overlapping_traces_leave_the_garbage_collector_as_they_found_it():
    import gc

    from fanzha.payments.trace import _gc_paused

    assert gc.isenabled()
    first, second = _gc_paused(), _gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first trace ends while the second still runs
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()
