"""Trajectory alignment: edit distance over step signatures, with a numpy DP fast enough for long runs.

Costs (integers, so the DP stays in int32): the same signature costs 0; the same kind and key (same tool,
other arguments) costs `NEAR`; a step only in one run costs `GAP`; anything else costs `FAR`, more than two
gaps, so unrelated steps are shown as one step missing on each side rather than paired.

The DP fills one row at a time with numpy. Within a row, D[i, j] = min(T[j], D[i, j-1] + GAP) where T holds
the deletion and diagonal moves; unrolled, that is GAP*j + cummin(T[k] - GAP*k), one
`np.minimum.accumulate` per row. Common prefixes and suffixes are matched before the DP (always optimal with
a zero match cost). Past `max_cells` the DP is restricted to a diagonal band, an approximation that only
matters when the two runs differ in length by more than the band.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NEAR = 1
GAP = 2
FAR = 5
MAX_CELLS = 16_000_000
"""Cells of the full DP matrix (int32, 64 MB) before the band kicks in; two 4,000-step runs fit."""


@dataclass(frozen=True)
class Ops:
    """An alignment: index pairs into the two sequences (-1 where a step has no partner) and its cost."""

    a: np.ndarray
    b: np.ndarray
    cost: int
    banded: bool = False


def _codes(sigs_a: Sequence[str], sigs_b: Sequence[str], keys_a: Sequence[str],
           keys_b: Sequence[str]) -> tuple[np.ndarray, ...]:
    fine: dict[str, int] = {}
    coarse: dict[str, int] = {}
    fa = np.array([fine.setdefault(s, len(fine)) for s in sigs_a], dtype=np.int64)
    fb = np.array([fine.setdefault(s, len(fine)) for s in sigs_b], dtype=np.int64)
    ca = np.array([coarse.setdefault(s, len(coarse)) for s in keys_a], dtype=np.int64)
    cb = np.array([coarse.setdefault(s, len(coarse)) for s in keys_b], dtype=np.int64)
    return fa, fb, ca, cb


def align(sigs_a: Sequence[str], sigs_b: Sequence[str], keys_a: Sequence[str] | None = None,
          keys_b: Sequence[str] | None = None, *, max_cells: int = MAX_CELLS) -> Ops:
    """Align two signature sequences with minimal edit cost.

    Args:
        sigs_a, sigs_b: one signature per step (equal signatures match for free).
        keys_a, keys_b: a coarser key per step (kind + tool); equal keys substitute at `NEAR`. Defaults to
            the signatures themselves (then every substitution costs `FAR`).
        max_cells: above this many DP cells, restrict the DP to a diagonal band.

    Example:
        >>> ops = align(["a", "b", "c"], ["a", "c"])
        >>> list(zip(ops.a.tolist(), ops.b.tolist())), ops.cost
        ([(0, 0), (1, -1), (2, 1)], 2)
    """
    fa, fb, ca, cb = _codes(sigs_a, sigs_b, keys_a if keys_a is not None else sigs_a,
                            keys_b if keys_b is not None else sigs_b)
    n, m = len(fa), len(fb)
    pre = 0
    while pre < min(n, m) and fa[pre] == fb[pre]:
        pre += 1
    suf = 0
    while suf < min(n, m) - pre and fa[n - 1 - suf] == fb[m - 1 - suf]:
        suf += 1
    mid_a, mid_b, cost, banded = _dp(fa[pre:n - suf], fb[pre:m - suf], ca[pre:n - suf], cb[pre:m - suf],
                                     max_cells)
    head = np.arange(pre, dtype=np.int64)
    tail_a = np.arange(n - suf, n, dtype=np.int64)
    tail_b = np.arange(m - suf, m, dtype=np.int64)
    a = np.concatenate([head, np.where(mid_a >= 0, mid_a + pre, -1), tail_a])
    b = np.concatenate([head, np.where(mid_b >= 0, mid_b + pre, -1), tail_b])
    return Ops(a=a, b=b, cost=int(cost), banded=banded)


def _dp(fa, fb, ca, cb, max_cells: int) -> tuple[np.ndarray, np.ndarray, int, bool]:
    n, m = len(fa), len(fb)
    if n == 0 or m == 0:
        a = np.concatenate([np.arange(n), np.full(m, -1)]).astype(np.int64)
        b = np.concatenate([np.full(n, -1), np.arange(m)]).astype(np.int64)
        return a, b, GAP * (n + m), False
    banded = (n + 1) * (m + 1) > max_cells
    # columns [lo[i], hi[i]) of row i are computed; a band follows the diagonal from (0, 0) to (n, m)
    if banded:
        width = max(abs(n - m) + 8, max_cells // (2 * (n + 1)))
        centre = np.arange(n + 1) * m // n
        lo = np.clip(centre - width, 0, m)
        hi = np.clip(centre + width + 1, 0, m + 1)
        lo[0], hi[n] = 0, m + 1
        lo = np.minimum.accumulate(lo[::-1])[::-1]  # monotone, so every row's band touches the previous one
        hi = np.maximum.accumulate(hi)
    else:
        lo = np.zeros(n + 1, dtype=np.int64)
        hi = np.full(n + 1, m + 1, dtype=np.int64)
    big = np.int32(np.iinfo(np.int32).max // 4)
    cols = np.arange(m + 1, dtype=np.int32)
    rows = [(GAP * cols[lo[0]:hi[0]]).astype(np.int32)]
    prev_full = np.full(m + 1, big, dtype=np.int32)
    prev_full[lo[0]:hi[0]] = rows[0]
    for i in range(1, n + 1):
        left, h = int(lo[i]), int(hi[i])
        sub = np.where(fb == fa[i - 1], 0, np.where(cb == ca[i - 1], NEAR, FAR)).astype(np.int32)
        t = prev_full[left:h] + GAP  # from above: a step only in A
        j0 = max(left, 1)
        diag = prev_full[j0 - 1:h - 1] + sub[j0 - 1:h - 1]
        t[j0 - left:] = np.minimum(t[j0 - left:], diag)
        c = cols[left:h] * GAP
        row = np.minimum.accumulate(t - c) + c  # from the left: a step only in B
        rows.append(row.astype(np.int32))
        prev_full = np.full(m + 1, big, dtype=np.int32)
        prev_full[left:h] = row
    a_idx, b_idx = _trace(rows, lo, fa, fb, ca, cb, big)
    return a_idx, b_idx, int(rows[n][m - lo[n]]), banded


def _trace(rows, lo, fa, fb, ca, cb, big) -> tuple[np.ndarray, np.ndarray]:
    def at(i: int, j: int) -> int:
        k = j - int(lo[i])
        return int(rows[i][k]) if 0 <= k < len(rows[i]) else int(big)

    i, j = len(fa), len(fb)
    a_out: list[int] = []
    b_out: list[int] = []
    while i > 0 or j > 0:
        here = at(i, j)
        if i > 0 and j > 0:
            sub = 0 if fa[i - 1] == fb[j - 1] else (NEAR if ca[i - 1] == cb[j - 1] else FAR)
            if at(i - 1, j - 1) + sub == here:
                i, j = i - 1, j - 1
                a_out.append(i)
                b_out.append(j)
                continue
        if i > 0 and at(i - 1, j) + GAP == here:
            i -= 1
            a_out.append(i)
            b_out.append(-1)
        else:
            j -= 1
            a_out.append(-1)
            b_out.append(j)
    return np.array(a_out[::-1], dtype=np.int64), np.array(b_out[::-1], dtype=np.int64)


def edit_distance_reference(sigs_a: Sequence[str], sigs_b: Sequence[str], keys_a: Sequence[str],
                            keys_b: Sequence[str]) -> int:
    """The same cost with a plain two-loop Python DP: the reference the tests and the benchmark use."""
    n, m = len(sigs_a), len(sigs_b)
    prev = [GAP * j for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [GAP * i] + [0] * m
        sa, ka = sigs_a[i - 1], keys_a[i - 1]
        for j in range(1, m + 1):
            sub = 0 if sa == sigs_b[j - 1] else (NEAR if ka == keys_b[j - 1] else FAR)
            cur[j] = min(prev[j] + GAP, cur[j - 1] + GAP, prev[j - 1] + sub)
        prev = cur
    return prev[m]
