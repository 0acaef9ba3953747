"""Typology rules engine: one Aho-Corasick pass finds keywords and the literals that gate each regex.
Spans refer to the NORMALISED text; the caller maps them back to the original."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from re import _constants as sre_c
from re import _parser as sre_parse

import ahocorasick

from fanzha.knowledge.loader import REGEX_FLAGS, Typology

RISK_FEATURE = "rule_signal:risk"
LEGIT_FEATURE = "rule_signal:legitimacy"
_MAX_EXPANSION = 64  # cap on literal alternatives tracked per regex stretch
# pyahocorasick finds a child by a linear scan of the node's children and looks most characters up at
# the root, so root children are inserted most frequent first (_char_rank), and these frequent
# characters of normalised SMS get a dummy root child even when no key starts with them.
_HEAD_CHARS = ",。.:;!?、“”\"'()[]【】《》-_/ 0123456789abcdefghijklmnopqrstuvwxyz\n"
_NEVER = "\x01"  # removed by normalisation, so a dummy key ending in it never matches


@dataclass(slots=True)
class RuleHit:
    """One matched keyword, pattern or signal. `fraud_type` is None for generic signals."""

    rule: str
    fraud_type: str | None
    start: int
    end: int
    weight: float
    description: str


@dataclass(frozen=True, slots=True)
class _Regex:
    rule: str
    fraud_type: str | None
    pattern: str  # compiled on first use (most never run on a given batch; compiling all costs ~45 ms)
    weight: float
    description: str


# (rule, fraud_type, length, weight, description, shadows) for a keyword or term signal.
_KwEntry = tuple[str, str | None, int, float, str, tuple[tuple[int, str], ...]]


class RuleEngine:
    """Compiled typology rules. Build once, reuse for every message (read-only, thread-safe).

    A regex runs only when the automaton saw a literal of its primary trigger set and, if it has
    one, of its secondary set: both sets are derived from the regex so that every match contains a
    literal of each (or taken from the pattern's `requires`).
    """

    def __init__(self, typology: Typology) -> None:
        self.typology = typology
        codes = typology.codes
        self._feature_names = [f"rule_type:{c}" for c in codes] + [RISK_FEATURE, LEGIT_FEATURE]
        self._feature_index: dict[str, int] = {}
        kw_raw: dict[str, list[tuple[str, str | None, float, str]]] = {}
        kw_groups: dict[str, list[tuple[str, str]]] = {}  # group -> (term, rule), for nesting
        primary: dict[str, set[int]] = {}
        secondary: dict[str, set[int]] = {}
        self._regexes: list[_Regex] = []
        need2: set[int] = set()  # regexes that also wait for a literal of their secondary set
        self._always: frozenset[int] = frozenset()

        # Trigger literals are chosen to be rare, estimated by their count in the typology's own prose
        # (fraud vocabulary such as 账户 or 转账 is common there as in messages); the small constant
        # prefers fewer literals: each occurrence costs an automaton match and a Python iteration.
        prose = _prose(typology)
        costs: dict[str, float] = {}

        def cost(lit: str) -> float:
            # Memoised: the same literals come up for many patterns, and each count scans all the prose.
            c = costs.get(lit)
            if c is None:
                c = costs[lit] = prose.count(lit) + 0.1
            return c

        def add_regex(
            rule: str,
            ftype: str | None,
            pattern: str,
            weight: float,
            desc: str,
            requires: Sequence[str],
            feature: int,
        ) -> None:
            self._feature_index[rule] = feature
            # Top-level alternatives are searched separately: each gets its own triggers, and `re` can
            # skip ahead on a pattern's first character only when the pattern has no top-level "|".
            for part in [pattern] if requires else _split_alternatives(pattern):
                idx = len(self._regexes)
                self._regexes.append(_Regex(rule, ftype, part, weight, desc))
                sets = [tuple(requires)] if requires else trigger_sets(part, 2, cost)
                if len(sets) > 1:
                    need2.add(idx)
                if not sets:
                    self._always = self._always | {idx}
                for target, lits in zip((primary, secondary), sets, strict=False):
                    for lit in lits:
                        target.setdefault(lit, set()).add(idx)

        def add_term(term: str, rule: str, ftype: str | None, weight: float, desc: str, group: str) -> None:
            kw_raw.setdefault(term, []).append((rule, ftype, weight, desc))
            kw_groups.setdefault(group, []).append((term, rule))

        for i, ft in enumerate(typology.types.values()):
            for kw in ft.keywords:
                rule = f"kw:{ft.code}:{kw.term}"
                desc = kw.description or f"出现{ft.name}类诈骗常见用语“{kw.term}”"
                add_term(kw.term, rule, ft.code, kw.weight, desc, ft.code)
                self._feature_index[rule] = i
            for p in ft.patterns:
                add_regex(f"re:{ft.code}:{p.id}", ft.code, p.pattern, p.weight, p.description, p.requires, i)
        n_types = len(codes)
        for s in typology.signals:
            rule = f"sig:{'risk' if s.kind == 'risk' else 'legit'}:{s.id}"
            feature = n_types if s.kind == "risk" else n_types + 1
            if s.term is not None:
                add_term(s.term, rule, None, s.weight, s.description, f"sig:{s.kind}")
                self._feature_index[rule] = feature
            else:
                assert s.pattern is not None
                add_regex(rule, None, s.pattern, s.weight, s.description, s.requires, feature)

        self._need2 = frozenset(need2)
        # Compiled now, so a bad pattern fails here; an engine loaded from the cache compiles lazily.
        self._searches = [re.compile(rx.pattern, REGEX_FLAGS).search for rx in self._regexes]
        shadows = _shadows(kw_groups)
        values: dict[str, tuple[tuple[_KwEntry, ...], frozenset[int], frozenset[int]]] = {}
        for term in set(kw_raw) | set(primary) | set(secondary):
            kws = tuple(
                (rule, ftype, len(term), weight, desc, shadows.get(rule, ()))
                for rule, ftype, weight, desc in kw_raw.get(term, ())
            )
            values[term] = (kws, frozenset(primary.get(term, ())), frozenset(secondary.get(term, ())))

        rank = _char_rank(typology)
        firsts = {t[0] for t in values}
        dummies = {c + _NEVER: ((), frozenset(), frozenset()) for c in _HEAD_CHARS if c not in firsts}
        self._automaton = ahocorasick.Automaton()
        # The same keys spelt as UTF-16 code units, two "characters" (bytes) each: see match().
        self._automaton16 = ahocorasick.Automaton()
        # Children are kept in insertion order, so frequent first characters go first.
        for term, value in sorted({**values, **dummies}.items(), key=lambda kv: (rank(kv[0][0]), kv[0])):
            self._automaton.add_word(term, value)
            if self._automaton16 is not None:
                wide = _utf16_units(term)
                if len(wide) == 2 * len(term):
                    self._automaton16.add_word(wide, value)
                else:  # an astral character in a key: keep to the character automaton
                    self._automaton16 = None
        self._automaton.make_automaton()
        if self._automaton16 is not None:
            self._automaton16.make_automaton()

    def _lazy_searches(self) -> list[Callable[[str], re.Match[str] | None]]:
        """One `search` per regex; each entry compiles its regex on first use and replaces itself."""
        searches: list[Callable[[str], re.Match[str] | None]] = []

        def stub(idx: int) -> Callable[[str], re.Match[str] | None]:
            def first(text: str) -> re.Match[str] | None:
                search = re.compile(self._regexes[idx].pattern, REGEX_FLAGS).search
                searches[idx] = search  # two threads may both compile: same result, no harm
                return search(text)

            return first

        searches.extend(stub(i) for i in range(len(self._regexes)))
        return searches

    def __getstate__(self) -> dict[str, object]:
        # Pickled by fanzha.text.rules_cache; compiled regexes are left out (compiled on first use).
        state = dict(self.__dict__)
        del state["_searches"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        # setattr, not __dict__.update(): touching __dict__ would turn the instance's attribute storage into
        # a plain dict and slow down every self.<attribute> in match().
        for name, value in state.items():
            setattr(self, name, value)
        self._searches = self._lazy_searches()

    @property
    def unanchored_rules(self) -> list[str]:
        """Regex rules without a literal trigger; they cost a regex search on every message."""
        return [self._regexes[i].rule for i in sorted(self._always)]

    def match(self, norm_text: str) -> list[RuleHit]:
        """All hits in `norm_text`: keywords (by end position), then patterns (first match each).

        A keyword nested in a longer keyword of the same group, or covered by an at least as strong
        pattern match of the same group (type, or risk / legitimacy signals), is left out: one
        stretch of text is one piece of evidence and is not counted twice.
        """
        if not norm_text:
            return []
        to_run = set(self._always)
        seen2: set[int] = set()
        found: list[tuple[int, int, _KwEntry]] = []
        suppressed: set[tuple[int, str]] | None = None
        # pyahocorasick finds a node's child by a linear scan, and most characters are looked up at the
        # root, which has one child per distinct first character of a key (~720): ~1,000 instructions
        # a character. Spelt as UTF-16 code units (high byte, low byte), the root has one child per
        # distinct high byte and each of those a few dozen, so a lookup scans ~3x fewer children. A
        # key's spelling has even length, so a match ending on a low byte (odd index) starts on a
        # high byte: exactly the character matches; matches ending on a high byte straddle characters
        # and are skipped. Matches come in the same order (by end, longest first).
        wide = _utf16_units(norm_text)
        if self._automaton16 is not None and len(wide) == 2 * len(norm_text):
            matches = self._automaton16.iter(wide)
        else:  # astral characters take two code units: match characters instead
            matches = ((2 * end + 1, value) for end, value in self._automaton.iter(norm_text))
        # Hot loop: keep it to tuple work; RuleHit objects are built only for what survives.
        for end, (kws, prim, sec) in matches:
            if not end & 1:
                continue
            if prim:
                to_run |= prim
            if sec:
                seen2 |= sec
            if kws:
                stop = (end >> 1) + 1
                for entry in kws:
                    start = stop - entry[2]
                    found.append((start, stop, entry))
                    if entry[5]:
                        if suppressed is None:
                            suppressed = set()
                        suppressed.update((start + off, rule) for off, rule in entry[5])
        # Regexes whose primary trigger occurred, less those still waiting for their secondary one.
        runnable = (to_run - self._need2) | (to_run & seen2) if to_run else to_run
        pattern_hits: list[RuleHit] = []
        # (fraud_type, is_risk) -> spans and |weight| of pattern matches, to drop covered keywords
        covers: dict[tuple[str | None, bool], list[tuple[int, int, float]]] = {}
        searches, regexes = self._searches, self._regexes
        for idx in sorted(runnable):
            # First match only: one piece of evidence per rule, and no second scan after a match.
            m = searches[idx](norm_text)
            if m is not None:
                rx = regexes[idx]
                s, e = m.span()
                pattern_hits.append(RuleHit(rx.rule, rx.fraud_type, s, e, rx.weight, rx.description))
                covers.setdefault((rx.fraud_type, rx.weight > 0), []).append((s, e, abs(rx.weight)))
        hits: list[RuleHit] = []
        for start, stop, (rule, ftype, _len, weight, desc, _shadow) in found:
            if suppressed is not None and (start, rule) in suppressed:
                continue
            spans = covers.get((ftype, weight > 0)) if covers else None
            if spans is not None:
                w = abs(weight)
                for cs, ce, cw in spans:
                    if cs <= start and stop <= ce and w <= cw:
                        break
                else:
                    hits.append(RuleHit(rule, ftype, start, stop, weight, desc))
                continue
            hits.append(RuleHit(rule, ftype, start, stop, weight, desc))
        hits.extend(pattern_hits)
        return hits

    @staticmethod
    def type_scores(hits: Iterable[RuleHit]) -> dict[str, float]:
        """Sum of weights per fraud type; each rule counts once however often it occurs."""
        scores: dict[str, float] = {}
        seen: set[str] = set()
        for h in hits:
            if h.fraud_type is None or h.rule in seen:
                continue
            seen.add(h.rule)
            scores[h.fraud_type] = scores.get(h.fraud_type, 0.0) + h.weight
        return scores

    def feature_names(self) -> list[str]:
        """Names of `features()`: one score per fraud type (canonical order), then risk and legitimacy."""
        return list(self._feature_names)

    def features(self, hits: Iterable[RuleHit]) -> list[float]:
        """Dense vector for the statistical model; legitimacy is a sum of negative weights."""
        vec = [0.0] * len(self._feature_names)
        index = self._feature_index
        seen: set[str] = set()
        for h in hits:
            if h.rule in seen:
                continue
            seen.add(h.rule)
            vec[index[h.rule]] += h.weight
        return vec


def _utf16_units(text: str) -> str:
    """`text` as its big-endian UTF-16 bytes, one latin-1 character per byte (BMP: 2 per character)."""
    return text.encode("utf-16-be", "surrogatepass").decode("latin-1")


def _shadows(groups: dict[str, list[tuple[str, str]]]) -> dict[str, tuple[tuple[int, str], ...]]:
    """rule -> (offset, rule) of shorter keywords of the same group inside its term.

    A keyword inside a longer keyword of the same group ("账户" in "安全账户") is dropped where the
    longer one matches, so one phrase is not counted twice.
    """
    out: dict[str, list[tuple[int, str]]] = {}
    for members in groups.values():
        for term, rule in members:
            for other, other_rule in members:
                if other == term:
                    continue
                pos = term.find(other)
                while pos >= 0:
                    out.setdefault(rule, []).append((pos, other_rule))
                    pos = term.find(other, pos + 1)
    return {rule: tuple(v) for rule, v in out.items()}


def _prose(typology: Typology) -> str:
    """The typology's Chinese prose: a stand-in for message text when estimating frequencies."""
    parts = [ft.description + ft.typical_script + ft.advice for ft in typology.types.values()]
    parts += [p.description for ft in typology.types.values() for p in ft.patterns]
    parts += [s.description for s in typology.signals]
    return "\n".join(parts)


def _char_rank(typology: Typology) -> Callable[[str], int]:
    """Rank characters by expected frequency: punctuation, digits and ASCII first, then by frequency
    in the typology's prose."""
    order = {c: i for i, c in enumerate(_HEAD_CHARS)}
    for c, _ in Counter(_prose(typology)).most_common():
        order.setdefault(c, len(order))
    tail = len(order)
    return lambda c: order.get(c, tail)


# --- literal extraction -------------------------------------------------------------------------
# For a regex we look for sets of literals such that every match contains a literal of each set;
# the automaton then tells us when the regex can possibly match.

_Lits = frozenset[str]


def trigger_sets(
    pattern: str, limit: int = 2, cost: Callable[[str], float] = lambda lit: 1.0
) -> list[tuple[str, ...]]:
    """Up to `limit` literal sets, best first; every match of `pattern` contains a literal of each.

    Sets of literals of two or more characters are preferred (single characters gate almost nothing
    and are used only as the first set, when there is nothing else), then sets of lower total `cost`.
    """
    try:
        parsed = sre_parse.parse(pattern, REGEX_FLAGS)
        if parsed.state.flags & re.IGNORECASE:
            return []
        _, cands = _seq(list(parsed))
    except (re.error, _Unsupported):
        return []

    def score(lits: _Lits) -> tuple[int, float, int, tuple[str, ...]]:
        # fsum: a plain float sum depends on the set's (hash-randomised) iteration order, and rounding
        # differences then flip ties between runs, so the chosen triggers varied from run to run.
        return min(min(map(len, lits)), 2), -math.fsum(map(cost, lits)), -len(lits), tuple(sorted(lits))

    out: list[_Lits] = []
    for cand in sorted(set(cands), key=score, reverse=True):
        if out and min(map(len, cand)) < 2:
            break
        # A set overlapping one already chosen would add no selectivity.
        if any(a in b or b in a for chosen in out for a in cand for b in chosen):
            continue
        out.append(cand)
        if len(out) == limit:
            break
    return [tuple(sorted(c)) for c in out]


def _split_alternatives(pattern: str) -> list[str]:
    """Split `pattern` at its top-level "|" when every part compiles on its own, else [pattern]."""
    parts: list[str] = []
    depth, start, i, in_class = 0, 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":  # "[]...]": a leading "]" is a literal
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    if len(parts) == 1 or (
        pattern.startswith("(?") and not pattern.startswith(("(?:", "(?P<", "(?=", "(?!"))
    ):
        return [pattern]  # global inline flags apply to the whole pattern
    if re.search(r"\\\d|\(\?P=", pattern):
        return [pattern]  # back-references refer to groups of the whole pattern
    try:
        if any(not p or re.compile(p, REGEX_FLAGS).match("") for p in parts):
            return [pattern]
    except re.error:
        return [pattern]
    return parts


def required_literals(pattern: str) -> tuple[str, ...] | None:
    """The most selective literal set of which every match of `pattern` contains one, if any."""
    sets = trigger_sets(pattern, 1)
    return sets[0] if sets else None


class _Unsupported(Exception):
    pass


def _score(lits: _Lits) -> tuple[int, int]:
    return min(min(map(len, lits)), 3), -len(lits)


def _valid(lits: _Lits | None) -> bool:
    return bool(lits) and "" not in lits and len(lits) <= _MAX_EXPANSION  # type: ignore[operator]


def _minimal(lits: Iterable[str]) -> _Lits:
    """Drop literals that contain another one: the shorter is present whenever the longer is."""
    keep: list[str] = []
    for s in sorted(set(lits), key=len):
        if not any(k in s for k in keep):
            keep.append(s)
    return frozenset(keep)


def _concat(a: _Lits, b: _Lits) -> _Lits | None:
    if len(a) * len(b) > _MAX_EXPANSION:
        return None
    return frozenset(x + y for x in a for y in b)


_ZERO_WIDTH = (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT)
_REPEATS = tuple(
    op for op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None)) if op
)


def _seq(items: list[tuple[object, object]]) -> tuple[_Lits | None, list[_Lits]]:
    """(exact, cands): `exact` is the finite set of strings the sequence matches (or None); each of
    `cands` is a literal set of which every match contains one."""
    cands: list[_Lits] = []
    run: _Lits = frozenset({""})  # strings the current contiguous literal stretch can be
    all_exact = True
    for op, av in items:
        if op in _ZERO_WIDTH:
            continue  # neighbours stay adjacent in the text
        exact, sub = _node(op, av)
        cands.extend(sub)
        if exact is not None:
            joined = _concat(run, exact)
            if joined is None:
                all_exact = False
                cands.append(_minimal(run))
                run = exact
            else:
                run = joined
            continue
        all_exact = False
        tail = _repeat_unit(op, av)
        if tail is not None:
            # x+ after a literal stretch: the stretch is followed by at least one x.
            cands.append(_minimal(_concat(run, tail) or run))
            run = tail
        else:
            cands.append(_minimal(run))
            run = frozenset({""})
    cands.append(_minimal(run))
    return (run if all_exact else None), [c for c in cands if _valid(c)]


def _best(cands: list[_Lits]) -> _Lits | None:
    return max(cands, key=_score) if cands else None


def _repeat_unit(op: object, av: object) -> _Lits | None:
    if op in _REPEATS:
        lo, _hi, sub = av  # type: ignore[misc]
        if lo >= 1:
            return _seq(list(sub))[0]
    return None


def _node(op: object, av: object) -> tuple[_Lits | None, list[_Lits]]:
    if op is sre_c.LITERAL:
        s = frozenset({chr(av)})  # type: ignore[arg-type]
        return s, [s]
    if op is sre_c.IN:
        chars: set[str] = set()
        for iop, iav in av:  # type: ignore[attr-defined]
            if iop is sre_c.LITERAL:
                chars.add(chr(iav))
            elif iop is sre_c.RANGE and iav[1] - iav[0] < 16:
                chars.update(chr(c) for c in range(iav[0], iav[1] + 1))
            else:
                return None, []  # negated set, category (\d), big range
        s = frozenset(chars)
        return s, [s]
    if op is sre_c.SUBPATTERN:
        _group, add_flags, _del, sub = av  # type: ignore[misc]
        if add_flags & re.IGNORECASE:
            raise _Unsupported
        return _seq(list(sub))
    if op is sre_c.BRANCH:
        exacts: set[str] = set()
        union: set[str] = set()
        exact_ok = best_ok = True
        for alt in av[1]:  # type: ignore[index]
            e, cands = _seq(list(alt))
            if e is None or len(exacts) + len(e) > _MAX_EXPANSION:
                exact_ok = False
            else:
                exacts |= e
            b = _best(cands)
            if b is None:
                best_ok = False
            else:
                union |= b
        return (frozenset(exacts) if exact_ok else None), ([_minimal(union)] if best_ok else [])
    if op in _REPEATS:
        lo, hi, sub = av  # type: ignore[misc]
        e, cands = _seq(list(sub))
        if e is not None and lo == 0 and hi == 1:
            return e | {""}, []
        if e is not None and 1 <= lo == hi <= 4:
            out: _Lits | None = frozenset({""})
            for _ in range(lo):
                out = _concat(out, e) if out is not None else None
            if out is not None:
                return out, [_minimal(out)]
        return None, (cands if lo >= 1 else [])
    if op is getattr(sre_c, "ATOMIC_GROUP", None):
        return _seq(list(av))  # type: ignore[arg-type]
    return None, []  # ANY, NOT_LITERAL, CATEGORY, GROUPREF, lookarounds ...
