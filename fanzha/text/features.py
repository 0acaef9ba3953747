"""Hashed character n-gram features, computed for a whole batch at once with NumPy.

The same function builds the training matrix and scores messages at run time, so the two can never drift.
Each message is padded with a boundary mark on both sides, so n-grams also capture how a message starts and
ends. A feature value is the n-gram count divided by sqrt(number of n-gram positions), which keeps long
dialogues and short SMS on one scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

BOUNDARY = "\x00"
_MULT = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))
_ORDER_SALT = (np.uint64(0x27D4EB2F165667C5), np.uint64(0x94D049BB133111EB), np.uint64(0xBF58476D1CE4E5B9))


def _codepoints(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All texts joined as [B t1 B][B t2 B]… as uint64 code points, plus each text's padded length."""
    padded = BOUNDARY + (BOUNDARY * 2).join(t.replace(BOUNDARY, " ") for t in texts) + BOUNDARY
    cps = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 2
    return cps, lengths


def hashed_ngrams(texts: Sequence[str], bits: int, max_order: int = 3) -> sp.csr_matrix:
    """Return a CSR matrix (len(texts) x 2**bits) of scaled hashed n-gram counts, n = 1..max_order."""
    import scipy.sparse as sp  # on first use: ~60 ms of imports that loading the detector can skip

    width = 1 << bits
    if len(texts) == 0:
        return sp.csr_matrix((0, width), dtype=np.float32)
    indices, indptr, data = hashed_ngram_entries(texts, bits, max_order)
    return sp.csr_matrix((data, indices, indptr), shape=(len(texts), width))


def hashed_ngram_entries(
    texts: Sequence[str], bits: int, max_order: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CSR arrays of `hashed_ngrams` (indices int32, indptr int64, data float32), without building
    the matrix (which costs more than the hashing for a single short text). `texts` must not be empty."""
    n_docs = len(texts)
    cps, lengths = _codepoints(texts)
    total = cps.shape[0]
    # Index of each text's last (boundary) position; an n-gram starting at most n-1 positions before the
    # last one of a text that is not the last text runs into the next text.
    joins = np.cumsum(lengths)[:-1] - 1
    shift = np.uint64(64 - bits)
    cols = np.full((total, max_order), -1, dtype=np.int64)
    acc = np.zeros(total, dtype=np.uint64)
    for order in range(max_order):
        span = order + 1
        if total < span:
            break
        starts = total - order
        with np.errstate(over="ignore"):
            acc[:starts] = (acc[:starts] ^ cps[order:]) * _MULT[order]
            h = ((acc[:starts] ^ _ORDER_SALT[order]) * _MULT[2]) >> shift
        col = cols[:starts, order]
        col[:] = h  # < 2**bits: fits int64
        if order == 0:
            # a lone boundary mark carries no information
            col[cps[:starts] == 0] = -1
        else:
            for back in range(order):
                col[joins - back] = -1
    flat = cols.ravel()
    indices = flat[flat >= 0]
    # Entries per text: its characters' unigrams, then every window of 2..max_order of the padded text.
    counts = lengths - 2
    for order in range(1, max_order):
        counts = counts + np.maximum(lengths - order, 0)
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    scale = 1.0 / np.sqrt(np.maximum(counts, 1)).astype(np.float32)
    data = np.repeat(scale, counts)
    return indices.astype(np.int32), indptr, data


def presence_log_ratio(x: sp.csr_matrix, positive: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """|log-count ratio| of each column between positive and other rows (NB-SVM, Wang & Manning 2012).

    Presence (value > 0) is counted per row, smoothed with `alpha`: r_j = |log((p_j/|p|) / (q_j/|q|))|.
    Training multiplies the n-gram columns by r**power before fitting a linear head and folds the same
    factor into the head's weights, so scoring is unchanged.
    """
    present = x.copy()
    present.data = (present.data > 0).astype(np.float64)
    positive = np.asarray(positive, dtype=bool)
    p = np.asarray(present[positive].sum(axis=0)).ravel() + alpha
    q = np.asarray(present[~positive].sum(axis=0)).ravel() + alpha
    return np.abs(np.log((p / p.sum()) / (q / q.sum())))
