"""Runs every recogniser over a text and resolves overlapping results into one sorted list."""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterable

from fanzha.text.normalize import NormalizedText
from fanzha.text.recognizers.amount import AmountRecognizer
from fanzha.text.recognizers.apps import AppRecognizer
from fanzha.text.recognizers.bankcard import BankCardRecognizer
from fanzha.text.recognizers.base import Gate, Recognizer
from fanzha.text.recognizers.idcard import IdCardRecognizer
from fanzha.text.recognizers.im import ImRecognizer
from fanzha.text.recognizers.ip import IpRecognizer
from fanzha.text.recognizers.phone import PhoneRecognizer
from fanzha.text.recognizers.url import EmailRecognizer, UrlRecognizer
from fanzha.text.recognizers.vcode import VerificationCodeRequestRecognizer
from fanzha.text.recognizers.wallet import WalletRecognizer
from fanzha.text.result import Indicator

_Found = tuple[Indicator, int]  # (indicator, priority of its recogniser)
# (gate or None, gate shared with another recogniser, bound scan, exclusive, priority)
_Step = tuple[Gate | None, bool, Callable[[NormalizedText], list[Indicator]], bool, int]


def resolve_overlaps(found: list[_Found]) -> list[Indicator]:
    """Keep, among overlapping results, the longest span, then the higher score, then the more specific
    recogniser: digits inside a URL are not a phone, a card number is not also a phone."""
    ranked = sorted(found, key=lambda f: (f[0].start - f[0].end, -f[0].score, -f[1], f[0].start))
    # Kept spans are disjoint, so sorted starts and ends let bisect find the only possible clashes.
    starts: list[int] = []
    ends: list[int] = []
    kept: list[Indicator] = []
    for ind, _ in ranked:
        i = bisect.bisect_right(starts, ind.start)
        if (i and ends[i - 1] > ind.start) or (i < len(starts) and starts[i] < ind.end):
            continue
        starts.insert(i, ind.start)
        ends.insert(i, ind.end)
        kept.append(ind)
    return kept


class RecognizerRegistry:
    """Holds the recognisers; `analyze` evaluates each distinct gate once per text."""

    def __init__(self, recognizers: Iterable[Recognizer] = ()) -> None:
        self.recognizers: list[Recognizer] = []
        # Distinct gates; and per recogniser, looked up once (the loop in analyze() runs for every
        # message): its gate (None: none), whether another recogniser shares that gate, its bound scan
        # and flags.
        self._gates: list[Gate] = []
        self._plan: list[_Step] = []
        for rec in recognizers:
            self.add(rec)

    def add(self, recognizer: Recognizer) -> None:
        self.recognizers.append(recognizer)
        gate = recognizer.gate
        if gate is not None and gate not in self._gates:
            self._gates.append(gate)
        gates = [r.gate for r in self.recognizers]
        self._plan = [
            (r.gate, r.gate is not None and gates.count(r.gate) > 1, r.scan, r.exclusive, r.priority)
            for r in self.recognizers
        ]

    def analyze(self, norm: NormalizedText) -> list[Indicator]:
        text = norm.text
        # Gates are pure functions of the text, evaluated when their recogniser's turn comes; a gate that
        # several recognisers share (bank card and ID number) is evaluated once and its answer kept.
        shared_gates: dict[Gate, bool] = {}
        exclusive: list[_Found] = []
        shared: list[Indicator] = []
        for gate, is_shared, scan, is_exclusive, priority in self._plan:
            if gate is not None:
                if is_shared:
                    passed = shared_gates.get(gate)
                    if passed is None:
                        passed = shared_gates[gate] = gate(text)
                else:
                    passed = gate(text)
                if not passed:
                    continue
            results = scan(norm)
            if not results:
                continue
            if is_exclusive:
                exclusive.extend([(ind, priority) for ind in results])
            else:
                shared.extend(results)
        if not exclusive and not shared:
            return []
        out = resolve_overlaps(exclusive) if len(exclusive) > 1 else [ind for ind, _ in exclusive]
        out.extend(shared)
        out.sort(key=lambda i: (i.start, i.end))
        return out


@functools.cache
def default_registry() -> RecognizerRegistry:
    """All built-in recognisers, built once (loads tldextract's bundled suffix list and the data files)."""
    return RecognizerRegistry([
        PhoneRecognizer(),
        UrlRecognizer(),
        EmailRecognizer(),
        IpRecognizer(),
        BankCardRecognizer(),
        IdCardRecognizer(),
        ImRecognizer(),
        AppRecognizer(),
        AmountRecognizer(),
        WalletRecognizer(),
        VerificationCodeRequestRecognizer(),
    ])
