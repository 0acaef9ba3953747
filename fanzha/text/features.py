"""Hashed character n-gram features, computed for a whole batch at once with NumPy.

The same function builds the training matrix and scores messages at run time, so the two can never drift.
Each message is padded with a boundary mark on both sides, so n-grams also capture how a message starts and
ends. A feature value is the n-gram count divided by sqrt(number of n-gram positions), which keeps long
dialogues and short SMS on one scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

BOUNDARY = "\x00"
_MULT = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))
_ORDER_SALT = (np.uint64(0x27D4EB2F165667C5), np.uint64(0x94D049BB133111EB), np.uint64(0xBF58476D1CE4E5B9))


def _codepoints(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All texts joined as [B t1 B][B t2 B]… as uint64 code points, plus each position's message index."""
    padded = BOUNDARY + (BOUNDARY * 2).join(t.replace(BOUNDARY, " ") for t in texts) + BOUNDARY
    cps = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    lengths = np.fromiter((len(t) + 2 for t in texts), dtype=np.int64, count=len(texts))
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    return cps, owner


def hashed_ngrams(texts: Sequence[str], bits: int, max_order: int = 3) -> sp.csr_matrix:
    """Return a CSR matrix (len(texts) x 2**bits) of scaled hashed n-gram counts, n = 1..max_order."""
    n_docs = len(texts)
    width = 1 << bits
    if n_docs == 0:
        return sp.csr_matrix((0, width), dtype=np.float32)
    cps, owner = _codepoints(texts)
    total = cps.shape[0]
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
        valid = owner[:starts] == owner[order:]
        if order == 0:
            # a lone boundary mark carries no information
            valid &= cps[:starts] != 0
        cols[:starts, order] = np.where(valid, h.astype(np.int64), -1)
    flat = cols.ravel()
    keep = flat >= 0
    indices = flat[keep]
    doc_of_entry = np.repeat(owner, max_order)[keep]
    counts = np.bincount(doc_of_entry, minlength=n_docs)
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    scale = 1.0 / np.sqrt(np.maximum(counts, 1)).astype(np.float32)
    data = np.repeat(scale, counts)
    return sp.csr_matrix((data, indices.astype(np.int32), indptr), shape=(n_docs, width))
