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
        # Distinct gates, and per recogniser the index of its gate (-1: none) with its bound scan and
        # flags, looked up once: the loop in analyze() runs for every message.
        self._gates: list[Gate] = []
        self._plan: list[tuple[int, Callable[[NormalizedText], list[Indicator]], bool, int]] = []
        for rec in recognizers:
            self.add(rec)

    def add(self, recognizer: Recognizer) -> None:
        self.recognizers.append(recognizer)
        gate = recognizer.gate
        if gate is None:
            index = -1
        elif gate in self._gates:
            index = self._gates.index(gate)
        else:
            index = len(self._gates)
            self._gates.append(gate)
        self._plan.append((index, recognizer.scan, recognizer.exclusive, recognizer.priority))

    def analyze(self, norm: NormalizedText) -> list[Indicator]:
        text = norm.text
        # Each distinct gate once per text, in order of first use (gates are pure functions of the text).
        passed = [gate(text) for gate in self._gates]
        passed.append(True)  # index -1: recognisers without a gate
        exclusive: list[_Found] = []
        shared: list[Indicator] = []
        for gate_index, scan, is_exclusive, priority in self._plan:
            if not passed[gate_index]:
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
