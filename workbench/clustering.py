"""Group failed runs so a review meeting discusses a handful of failure kinds, not hundreds of runs.

`FailureClusterer` is a scikit-learn style estimator over failure documents (`load_failures` builds them from
a store; a plain list of error texts works too). Store-level functions (cluster the failures of a selection,
keep a clustering, compare two periods) live in `workbench.clustering_results`.

Example:
    >>> from workbench.clustering_features import load_failures       # doctest: +SKIP
    >>> docs = load_failures(store, RunFilter(agent="support-agent"))   # doctest: +SKIP
    >>> model = FailureClusterer().fit(docs)                           # doctest: +SKIP
    >>> model.n_clusters_, model.cluster_names_[0]                     # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.cluster.hierarchy import fcluster, linkage, to_tree
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import normalize

from workbench.clustering_features import describe_shape, mask_numbers, readable_signature
from workbench.clustering_vectors import BLOCKS, TERM_BLOCKS, FailureVectorizer, _sample

METHODS = ("kmeans-merge", "kmeans", "hdbscan")
DOC_COLUMNS = ("errors", "output_text", "signature", "shape")
NOISE = -1
"""Cluster id of runs HDBSCAN leaves unclustered."""
PROFILE_TERMS = 40
"""Terms kept per cluster profile (what matches clusters of two clusterings)."""


def as_documents(X) -> pd.DataFrame:
    """The estimator's input as a frame of `DOC_COLUMNS`: a `load_failures` frame as it is, or a sequence of
    texts (taken as error texts, with no output, signature or shape)."""
    if isinstance(X, pd.DataFrame):
        missing = [c for c in DOC_COLUMNS if c not in X]
        if missing:
            raise ValueError(f"the frame lacks columns {missing}; build it with load_failures()")
        return X[list(DOC_COLUMNS)].fillna("").astype(str).reset_index(drop=True)
    texts = [mask_numbers("" if t is None else str(t)) for t in X]
    return pd.DataFrame({"errors": texts, "output_text": "", "signature": "no_tools", "shape": ""})


class FailureClusterer(ClusterMixin, BaseEstimator):
    """Cluster failure documents: TF-IDF blocks + TruncatedSVD, then k-means (merged), k-means or HDBSCAN.

    Methods, measured on the demo fleet (failed runs of two agents with 10 injected failure modes; adjusted
    Rand index against that ground truth for the fleets of seed 7 (691 failures, the test fixture) and seed 11;
    `tests/test_clustering.py` prints the first, `bench/clustering.py` the figures at 50k and 100k failures):

    * ``"kmeans-merge"`` (default): k-means into many small groups (`n_micro`, about 2 sqrt(n), at most 150),
      then the groups' merge tree (average linkage, cosine) is cut where groups are on average further apart
      than `merge_threshold`, and a group holding more than `max_share` of the runs is split further unless
      its parts are closer than `split_floor`. ARI 0.84 / 0.83 (24 clusters each, 0.4 s). About twice as
      many clusters as causes: each agent's runs fail in their own words, and only failures whose course
      looks alike (a loop, a blocked action, an ignored tool error) meet across agents. 50k and 100k
      failures (the fleet's failures copied with varied words): ARI 0.76 / 0.75, 5.6 / 8.7 CPU seconds end
      to end, peak 0.77 / 1.0 GiB.
    * ``"kmeans"``: k chosen by the silhouette over `k_range` on a sample. ARI 0.58 / 0.57: the silhouette
      picks k = 26 / 30 and k-means then splits large, loose groups instead of separating small, tight ones.
    * ``"hdbscan"`` (scikit-learn's HDBSCAN): ARI 0.29 / 0.26 with `min_cluster_size` 5 (about 60 clusters
      plus noise), 0.49 / 0.56 with 15; the issue measured about 4 minutes for 50k runs.
    * the plain baseline (one TF-IDF over errors, output and signature; k-means told the true k = 10):
      ARI 0.42; at 50k / 100k (TF-IDF + SVD + k-means with k = 20): 0.49 / 0.46.

    The same input and `random_state` give the same labels. Identical documents are vectorized and clustered
    once, weighted by their count (k-means and the SVD take weights; HDBSCAN sees every run).

    Args:
        method: one of `METHODS`.
        n_clusters: "auto", or a fixed number of clusters (k-means: k; kmeans-merge: clusters after merging).
        k_range: the k the silhouette chooses from (method "kmeans").
        merge_threshold: largest average cosine distance of two groups that are merged ("kmeans-merge").
        max_share: largest share of the runs one cluster may hold before it is split along the merge tree.
        split_floor: groups closer than this are never split, whatever their share (one failure, many runs).
        n_micro: "auto" or the number of small k-means groups before merging.
        min_cluster_size: HDBSCAN's smallest cluster.
        n_components: SVD dimensions.
        weights: feature block -> weight, overriding `clustering_vectors.DEFAULT_WEIGHTS`.
        sample_size: the SVD and k-means learn from at most this many distinct documents (a seeded sample),
            then every document is projected and assigned.
        n_terms: distinctive terms in a cluster's name.
        random_state: seed of the SVD, the samples and k-means.

    Attributes:
        labels_: cluster per input row (0 = largest cluster; -1 = HDBSCAN noise).
        n_clusters_: clusters found (noise not counted).
        cluster_centers_: (n_clusters_, n_components) L2-normalized centres, row i for cluster i.
        embedding_: the SVD vectors of the rows; distances_: cosine distance of each row to its centre.
        cluster_names_, cluster_terms_, cluster_signatures_, cluster_shapes_: per cluster id.
        profiles_: per cluster id, its most weighted terms -> weight (comparable across clusterings).
        k_scores_: silhouette per candidate k (method "kmeans" with n_clusters="auto").
    """

    def __init__(self, method: str = "kmeans-merge", n_clusters: int | str = "auto",
                 k_range: tuple[int, int] = (4, 30), merge_threshold: float = 0.45, max_share: float = 0.25,
                 split_floor: float = 0.1, n_micro: int | str = "auto",
                 min_cluster_size: int = 5, n_components: int = 64, weights: dict[str, float] | None = None,
                 sample_size: int = 10_000, n_terms: int = 3, random_state: int = 0) -> None:
        self.method = method
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.merge_threshold = merge_threshold
        self.max_share = max_share
        self.split_floor = split_floor
        self.n_micro = n_micro
        self.min_cluster_size = min_cluster_size
        self.n_components = n_components
        self.weights = weights
        self.sample_size = sample_size
        self.n_terms = n_terms
        self.random_state = random_state

    # -- fitting ------------------------------------------------------------------------------------------
    def fit(self, X, y=None) -> FailureClusterer:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        docs = as_documents(X)
        if len(docs) == 0:
            raise ValueError("there are no failed runs to cluster")
        key = docs["errors"] + "\x1f" + docs["output_text"] + "\x1f" + docs["signature"] + "\x1f" + docs["shape"]
        inverse, _ = pd.factorize(key, sort=False)
        first = pd.Series(np.arange(len(docs))).groupby(inverse).first().to_numpy()
        weight = np.bincount(inverse).astype(float)
        if self.method == "hdbscan":  # density needs every run, not one row per distinct document
            first, inverse, weight = np.arange(len(docs)), np.arange(len(docs)), np.ones(len(docs))
        unique = docs.iloc[first].reset_index(drop=True)
        self.vectorizer_ = FailureVectorizer(self.n_components, self.weights, self.random_state, self.sample_size)
        emb = self.vectorizer_.fit_transform(unique, weight)
        self.k_scores_: dict[int, float] = {}
        labels = self._renumber(self._cluster(emb, weight), weight)
        self.n_clusters_ = int(labels.max()) + 1 if (labels >= 0).any() else 0
        centers = _centers(emb, labels, weight, self.n_clusters_)
        self.labels_ = labels[inverse]
        self.embedding_ = emb[inverse]
        self.cluster_centers_ = centers
        self.distances_ = _distances(self.embedding_, self.labels_, centers)
        self._describe(unique, labels, weight)
        return self

    def _cluster(self, emb: np.ndarray, weight: np.ndarray) -> np.ndarray:
        n = len(emb)
        if n < 3:
            return np.arange(n)
        if self.method == "hdbscan":
            size = max(2, min(self.min_cluster_size, n - 1))
            return HDBSCAN(min_cluster_size=size, copy=True).fit(emb).labels_
        if self.method == "kmeans":
            k = self.n_clusters if self.n_clusters != "auto" else self._choose_k(emb, weight)
            return self._kmeans(emb, weight, int(k))
        n_micro = self.n_micro if self.n_micro != "auto" else int(np.clip(round(2 * np.sqrt(weight.sum())), 2, 150))
        micro = self._kmeans(emb, weight, min(int(n_micro), n))
        used = np.unique(micro)
        centers = _centers(emb, np.searchsorted(used, micro), weight, len(used))
        if len(used) < 2:
            return np.zeros(n, dtype=int)
        tree = linkage(centers.astype(np.float64), method="average", metric="cosine")
        tree[:, 2] = np.maximum(tree[:, 2], 0)  # rounding can make a distance of 0 slightly negative
        micro_idx = np.searchsorted(used, micro)
        if self.n_clusters != "auto":
            return fcluster(tree, t=int(self.n_clusters), criterion="maxclust")[micro_idx] - 1
        sizes = np.bincount(micro_idx, weights=weight, minlength=len(used))
        return _cut(tree, sizes, self.merge_threshold, self.max_share, self.split_floor)[micro_idx]

    def _kmeans(self, emb: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
        k = max(1, min(k, len(emb)))
        idx = _sample(len(emb), self.sample_size, self.random_state)
        model = KMeans(n_clusters=k, n_init=1, random_state=self.random_state)
        model.fit(emb[idx], sample_weight=weight[idx])
        return model.predict(emb)

    def _choose_k(self, emb: np.ndarray, weight: np.ndarray) -> int:
        lo, hi = self.k_range
        idx = _sample(len(emb), min(self.sample_size, 4000), self.random_state)
        sample, w = emb[idx], weight[idx]
        hi = min(hi, len(idx) - 1)
        best, best_score = max(2, min(lo, hi)), -2.0
        for k in range(max(2, lo), hi + 1):
            labels = KMeans(n_clusters=k, n_init=2, random_state=self.random_state).fit_predict(
                sample, sample_weight=w)
            if len(set(labels)) < 2:
                continue
            score = float(silhouette_score(sample, labels, metric="cosine"))
            self.k_scores_[k] = score
            if score > best_score:
                best, best_score = k, score
        return best

    @staticmethod
    def _renumber(labels: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Cluster 0 is the largest; ties go to the cluster whose first run comes first. Noise stays -1."""
        ids = [c for c in dict.fromkeys(labels.tolist()) if c != NOISE]
        size = {c: weight[labels == c].sum() for c in ids}
        order = sorted(ids, key=lambda c: -size[c])  # stable: first appearance breaks ties
        mapping = {c: i for i, c in enumerate(order)}
        return np.array([mapping.get(c, NOISE) for c in labels.tolist()], dtype=int)

    # -- describing ---------------------------------------------------------------------------------------
    def _describe(self, unique: pd.DataFrame, labels: np.ndarray, weight: np.ndarray) -> None:
        ids = list(range(self.n_clusters_)) + ([NOISE] if (labels == NOISE).any() else [])
        member = sp.csr_matrix((weight, (_index(ids, labels), np.arange(len(labels)))), shape=(len(ids), len(labels)))
        sizes = np.asarray(member.sum(axis=1)).ravel()
        total = weight.sum()
        scores: dict[str, np.ndarray] = {}
        means: dict[str, np.ndarray] = {}
        vec = self.vectorizer_
        for name, matrix in vec.matrices_.items():
            if matrix.shape[1] == 0:
                continue
            m = np.asarray((member @ matrix).todense()) / sizes[:, None]
            g = np.asarray(weight @ matrix).ravel() / total
            means[name] = m
            if name in TERM_BLOCKS:
                scores[name] = m - g
        self.cluster_terms_, self.cluster_signatures_, self.cluster_shapes_ = {}, {}, {}
        self.cluster_names_, self.profiles_ = {}, {}
        for row, c in enumerate(ids):
            in_c = labels == c
            terms = _top_terms({b: (vec.blocks_[b].terms_, s[row]) for b, s in scores.items()}, self.n_terms)
            sig = _most_common(unique["signature"][in_c], weight[in_c])
            shape = _common_tokens(unique["shape"][in_c], weight[in_c])
            self.cluster_terms_[c] = terms
            self.cluster_signatures_[c] = readable_signature(sig, limit=4)
            self.cluster_shapes_[c] = describe_shape(shape) or "no error signal"
            self.cluster_names_[c] = _name(c, terms, self.cluster_signatures_[c], self.cluster_shapes_[c])
            self.profiles_[c] = _profile({b: (vec.blocks_[b].terms_, m[row]) for b, m in means.items()})


def _cut(tree: np.ndarray, sizes: np.ndarray, threshold: float, max_share: float, floor: float) -> np.ndarray:
    """Groups of the merge tree, top down: a subtree is one cluster when its groups are on average closer
    than `threshold` and it holds at most `max_share` of the runs (or its groups are closer than `floor`,
    too alike to be worth splitting); otherwise its two branches are looked at in turn."""
    root = to_tree(tree)
    total = sizes.sum()
    labels = np.zeros(len(sizes), dtype=int)
    stack, next_id = [root], 0
    while stack:
        node = stack.pop()
        members = node.pre_order()
        share = sizes[members].sum() / total
        if node.is_leaf() or (node.dist <= threshold and (share <= max_share or node.dist <= floor)):
            labels[members] = next_id
            next_id += 1
        else:
            stack.extend([node.get_right(), node.get_left()])
    return labels


def _index(ids: list[int], labels: np.ndarray) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(ids)}
    return np.array([lookup[c] for c in labels.tolist()], dtype=int)


def _centers(emb: np.ndarray, labels: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    centers = np.zeros((k, emb.shape[1]), dtype=np.float64)
    ok = labels >= 0
    np.add.at(centers, labels[ok], emb[ok] * weight[ok, None])
    return normalize(centers + 1e-12).astype(np.float32)


def _distances(emb: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
    out = np.full(len(emb), np.nan, dtype=np.float32)
    ok = labels >= 0
    out[ok] = 1 - np.einsum("ij,ij->i", emb[ok], centers[labels[ok]])
    return out


def _top_terms(blocks: dict[str, tuple[np.ndarray, np.ndarray]], n: int) -> list[str]:
    """The n most distinctive terms over the blocks; a term sharing a word with a chosen one is skipped."""
    # a two-word term reads better than either word alone; give it a little more weight
    ranked = sorted(((float(s) * (1.5 if " " in t else 1.0), str(t)) for terms, score in blocks.values()
                     for t, s in zip(terms, score, strict=True) if s > 0), key=lambda p: (-p[0], p[1]))
    chosen: list[str] = []
    words: set[str] = set()
    for _, term in ranked:
        if words & set(term.split()):
            continue
        chosen.append(term)
        words |= set(term.split())
        if len(chosen) == n:
            break
    return chosen


def _most_common(values: pd.Series, weight: np.ndarray) -> str:
    totals: Counter[str] = Counter()
    for v, w in zip(values, weight, strict=True):
        totals[v] += w
    return max(sorted(totals), key=lambda v: totals[v]) if totals else ""


def _common_tokens(values: pd.Series, weight: np.ndarray, share: float = 0.5) -> list[str]:
    """Tokens found in at least `share` of the (weighted) documents, in the order they first appear."""
    counts: Counter[str] = Counter()
    order: dict[str, None] = {}
    for v, w in zip(values, weight, strict=True):
        for t in set(v.split()):
            counts[t] += w
        order.update(dict.fromkeys(v.split()))
    total = weight.sum()
    return [t for t in order if counts[t] >= share * total]


def _name(cluster: int, terms: Sequence[str], signature: str, shape: str) -> str:
    """`run failed, model call failed: provider, rate limit | search_code > llm (error)`."""
    head = f"{shape}: {', '.join(terms)}" if terms else shape
    if cluster == NOISE:
        head = "unclustered - " + head
    return f"{head} | {signature}" if signature else head


def _profile(blocks: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    pairs = [(f"{b}:{t}", float(v)) for b, (terms, values) in blocks.items()
             for t, v in zip(terms, values, strict=True) if v > 0]
    pairs.sort(key=lambda p: (-p[1], p[0]))
    return dict(pairs[:PROFILE_TERMS * max(1, len(blocks))])


def layout_2d(embedding: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """2-D map coordinates: cluster centres placed by classical MDS of their cosine distances, each run
    around its centre along the two main directions of the runs' offsets from their centres.

    A projection of all runs at once (PCA) piles clusters on top of each other, and t-SNE/UMAP take minutes
    at 100k runs; this keeps clusters apart, runs near similar runs, and costs one small eigenproblem."""
    n = len(embedding)
    if n == 0:
        return np.zeros((0, 2))
    ids = sorted(set(labels.tolist()))
    full = np.vstack([centers] + ([normalize(embedding[labels == NOISE].mean(0, keepdims=True) + 1e-12)]
                                  if NOISE in ids else []))
    row = {c: (c if c >= 0 else len(centers)) for c in ids}
    k = len(full)
    if k >= 2:
        dist = np.clip(1 - full @ full.T, 0, 2) ** 2
        j = np.eye(k) - 1 / k
        vals, vecs = np.linalg.eigh(-0.5 * j @ dist @ j)
        top = np.argsort(vals)[::-1][:2]
        pos = vecs[:, top] * np.sqrt(np.clip(vals[top], 0, None))
        pos = pos * np.sign(pos[np.abs(pos).argmax(axis=0), [0, 1]] + 1e-12)  # fixed orientation
        if pos.shape[1] < 2:
            pos = np.hstack([pos, np.zeros((k, 2 - pos.shape[1]))])
    else:
        pos = np.zeros((1, 2))
    at = np.array([row[c] for c in labels.tolist()])
    offsets = embedding - full[at]
    _, _, vt = np.linalg.svd(offsets[:: max(1, n // 20_000)], full_matrices=False)
    axes = vt[:2] * np.sign(vt[:2, :1] + 1e-12)
    local = offsets @ axes.T if len(axes) == 2 else np.zeros((n, 2))
    if k >= 2:
        gaps = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1)) + np.eye(k) * 1e9
        room = float(np.median(gaps.min(axis=1)))
    else:
        room = 1.0
    spread = float(np.quantile(np.sqrt((local ** 2).sum(1)), 0.95)) or 1.0
    return pos[at] + local * (0.35 * (room or 1.0) / spread)


__all__ = ["BLOCKS", "METHODS", "FailureClusterer", "as_documents", "layout_2d"]
