"""The hashed n-gram featuriser: the one feature path shared by training and scoring."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fanzha.text.features import hashed_ngrams, presence_log_ratio


def test_batch_rows_equal_single_rows_so_batching_never_changes_a_score():
    texts = ["你好，请回电", "", "a", "安全账户转账", "x\x00y"]
    batch = hashed_ngrams(texts, bits=12).toarray()
    for i, t in enumerate(texts):
        single = hashed_ngrams([t], bits=12).toarray()[0]
        np.testing.assert_allclose(batch[i], single, rtol=1e-6)


def test_ngrams_do_not_cross_message_boundaries():
    joined = hashed_ngrams(["ab", "cd"], bits=16)
    # "ab" padded as ^ab$: unigrams a b, bigrams ^a ab b$, trigrams ^ab ab$ -- nothing from "cd"
    assert joined[0].nnz == 7
    assert joined[1].nnz == 7


def test_feature_count_matches_ngram_positions():
    # "abc" padded as ^abc$: 3 unigrams, 4 bigrams, 3 trigrams
    x = hashed_ngrams(["abc"], bits=20)
    assert x.nnz == 10


def test_empty_batch_gives_empty_matrix():
    assert hashed_ngrams([], bits=10).shape == (0, 1024)


@given(st.lists(st.text(max_size=40), max_size=8))
def test_any_text_gives_positive_in_range_features(texts):
    x = hashed_ngrams(texts, bits=14)
    assert x.shape[0] == len(texts)
    assert np.all(x.data > 0)
    assert np.all(x.indices < 1 << 14)


def test_presence_log_ratio_is_large_for_class_specific_columns_and_counts_presence_once():
    import scipy.sparse as sp

    # column 0: only in positive rows (once with a big value); column 1: everywhere; column 2: only negative
    x = sp.csr_matrix(np.array([[5.0, 1, 0], [1, 1, 0], [0, 1, 1], [0, 1, 1]], dtype=np.float32))
    r = presence_log_ratio(x, np.array([True, True, False, False]), alpha=1.0)
    # p = (3, 3, 1) / 7, q = (1, 3, 3) / 7: |log 3|, 0, |log 1/3|
    np.testing.assert_allclose(r, [np.log(3), 0.0, np.log(3)], rtol=1e-6)
