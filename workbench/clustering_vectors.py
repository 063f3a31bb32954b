"""Failure documents -> vectors: weighted TF-IDF blocks (words and characters of the errors and the output,
the tool-call signature, the shape of the run's course), stacked and reduced with TruncatedSVD."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize


class WeightedTfidf:
    """TF-IDF over distinct documents, each counted as often as it occurs.

    Failure texts repeat (a template with masked numbers, the same error in a thousand runs): vectorizing
    each distinct text once and weighting it by its count gives exactly what `TfidfVectorizer` (smooth idf,
    l2 norm) gives on the full list, at the cost of the distinct texts only.
    """

    def __init__(self, analyzer: str = "word", ngram_range: tuple[int, int] = (1, 1), min_df: float = 1,
                 max_df: float = 1.0, max_features: int | None = 3_000, sublinear_tf: bool = True,
                 lowercase: bool = True, token_pattern: str | None = r"(?u)\b\w\w+\b",
                 stop_words: str | None = None, max_chars: int | None = None) -> None:
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.lowercase = lowercase
        self.token_pattern = token_pattern
        self.stop_words = stop_words
        self.max_chars = max_chars

    def fit_transform(self, docs: list[str], weights: np.ndarray | None = None) -> sp.csr_matrix:
        codes, uniques = pd.factorize(pd.Series(docs, dtype=object), sort=False)
        weights = np.ones(len(docs)) if weights is None else np.asarray(weights, dtype=float)
        per_doc = np.bincount(codes, weights=weights, minlength=len(uniques))
        total = float(weights.sum())
        counter = CountVectorizer(analyzer=self.analyzer, ngram_range=self.ngram_range, lowercase=self.lowercase,
                                  token_pattern=self.token_pattern if self.analyzer == "word" else None,
                                  stop_words=self.stop_words, dtype=np.float32)
        try:
            counts = counter.fit_transform([str(u)[: self.max_chars] for u in uniques]).tocsc()
        except ValueError:  # no document has a single term
            self.terms_ = np.array([], dtype=object)
            return sp.csr_matrix((len(docs), 0), dtype=np.float32)
        present = counts.copy()
        present.data[:] = 1
        df = present.T @ per_doc
        max_df = self.max_df * total if isinstance(self.max_df, float) else self.max_df
        keep = np.flatnonzero((df >= self.min_df) & (df <= max(max_df, self.min_df)))
        if self.max_features and len(keep) > self.max_features:
            freq = (counts.T @ per_doc)[keep]
            keep = np.sort(keep[np.argsort(-freq, kind="stable")[: self.max_features]])
        self.terms_ = counter.get_feature_names_out()[keep]
        if not len(keep):  # every term is rarer than min_df (a handful of runs)
            return sp.csr_matrix((len(docs), 0), dtype=np.float32)
        counts = counts[:, keep].tocsr()
        if self.sublinear_tf:
            counts.data = 1 + np.log(counts.data)
        self.idf_ = (np.log((1 + total) / (1 + df[keep])) + 1).astype(np.float32)
        matrix = normalize(counts @ sp.diags(self.idf_)).astype(np.float32)
        return matrix[codes].tocsr()


_WORDS = r"(?u)\b[a-zA-Z_][a-zA-Z_']+\b"  # masked numbers carry no meaning: `0` is not a term
_TOKENS = r"\S+"

#: block name -> (document column, TF-IDF parameters)
BLOCKS: dict[str, tuple[str, dict]] = {
    "errors_word": ("errors", {"ngram_range": (1, 2), "min_df": 2, "max_df": 0.9, "token_pattern": _WORDS,
                               "stop_words": "english"}),
    # character n-grams cost the most per character: the start of the errors is enough for them
    "errors_char": ("errors", {"analyzer": "char_wb", "ngram_range": (3, 4), "min_df": 2, "max_chars": 200}),
    "output_word": ("output_text", {"ngram_range": (1, 2), "min_df": 2, "max_df": 0.9, "token_pattern": _WORDS,
                                    "stop_words": "english"}),
    "output_char": ("output_text", {"analyzer": "char_wb", "ngram_range": (3, 4), "min_df": 2, "max_chars": 200}),
    "signature": ("signature", {"ngram_range": (1, 3), "lowercase": False, "token_pattern": _TOKENS}),
    "shape": ("shape", {"lowercase": False, "token_pattern": _TOKENS}),
}
DEFAULT_WEIGHTS: dict[str, float] = {"errors_word": 1.0, "errors_char": 0.5, "output_word": 0.5,
                                     "output_char": 0.0, "signature": 0.3, "shape": 1.5}
"""Chosen on the demo fleet (see `FailureClusterer`): what went wrong and how the run went weigh more than
the final answer's words, which differ by agent and task even when runs failed the same way. Character
n-grams of the output cost the most time and added nothing there, so they are off by default."""
TERM_BLOCKS = ("errors_word", "output_word")
"""Blocks whose terms name a cluster."""


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted indexes of `size` of `n` rows drawn with `seed` (all rows when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


class FailureVectorizer:
    """Failure documents -> dense, L2-normalized SVD vectors.

    Each block (see `BLOCKS`) is a TF-IDF matrix with rows L2-normalized; blocks are weighted, stacked and
    reduced together with TruncatedSVD. Rows may be distinct documents with `sample_weight` counting how
    often each occurs: the SVD then sees rows scaled by the square root of their weight, which has the same
    components as the full, repeated data.
    """

    def __init__(self, n_components: int = 64, weights: dict[str, float] | None = None,
                 random_state: int = 0, svd_sample: int = 10_000) -> None:
        self.n_components = n_components
        self.weights = weights
        self.random_state = random_state
        self.svd_sample = svd_sample

    def fit_transform(self, docs: pd.DataFrame, sample_weight: np.ndarray | None = None) -> np.ndarray:
        weights = {**DEFAULT_WEIGHTS, **(self.weights or {})}
        unknown = set(weights) - set(BLOCKS)
        if unknown:
            raise ValueError(f"unknown feature blocks {sorted(unknown)}; known: {', '.join(BLOCKS)}")
        w = np.ones(len(docs)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.blocks_: dict[str, WeightedTfidf] = {}
        self.matrices_: dict[str, sp.csr_matrix] = {}
        parts = []
        for name, (column, params) in BLOCKS.items():
            if not weights.get(name):
                continue
            tfidf = self.blocks_[name] = WeightedTfidf(**params)
            matrix = self.matrices_[name] = tfidf.fit_transform(list(docs[column]), w)
            parts.append(matrix * weights[name])
        stacked = sp.hstack(parts, format="csr") if parts else sp.csr_matrix((len(docs), 0))
        n = self.n_components
        if min(stacked.shape) <= n:  # fewer distinct runs or terms than dimensions: nothing to reduce
            self.svd_ = None
            return normalize(stacked.toarray()).astype(np.float32)
        self.svd_ = TruncatedSVD(n_components=n, random_state=self.random_state, algorithm="randomized",
                                 n_iter=3)
        # the components are learned from a sample of the distinct rows (weighted), then every row is projected
        fit_rows = _sample(stacked.shape[0], self.svd_sample, self.random_state)
        self.svd_.fit(sp.diags(np.sqrt(w[fit_rows])) @ stacked[fit_rows])
        return normalize(self.svd_.transform(stacked)).astype(np.float32)
