"""Evaluation: temporal IoU, 1-D NMS, R@n,IoU=m and mIoU, and the DiDeMo protocol.

Reference codebases disagree on details that move numbers, so every such choice is
an explicit argument here (see ``book/`` "evaluation protocols" and
``EVAL-PROTOCOLS.md``):

- ``recall_at(..., protocol="plain")``: no NMS, a hit is IoU >= m.
- ``protocol="tall"``: the TALL/CTRL script (Gao et al., 2017): greedy NMS at
  threshold m - 0.05 for each IoU level m, a hit is IoU >= m.
- ``protocol="2d-tan"``: the 2D-TAN script (Zhang et al., 2020): greedy NMS at 0.5
  keeping max(ns) moments, a hit is IoU > m (strict).
- :func:`didemo_scores`: the LocalizingMoments protocol (Hendricks et al., 2017)
  over 21 fixed chunk candidates and several annotators per query.

Dropping queries whose end exceeds the video is a data concern (``wsg.data``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from wsg.proposals import didemo_candidate_index, didemo_candidates

__all__ = [
    "temporal_iou",
    "best_candidate_iou",
    "nms",
    "recall_at",
    "protocol_table",
    "per_query_scores",
    "event_hit",
    "bootstrap_interval",
    "didemo_iou",
    "didemo_scores",
    "PROTOCOLS",
]

PROTOCOLS = ("plain", "tall", "2d-tan")


def _as_float(x, device: torch.device | None = None) -> Tensor:
    if isinstance(x, np.ndarray) and not x.flags.writeable:  # e.g. from pandas; torch warns on these
        x = x.copy()
    t = torch.as_tensor(x, device=device)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    return t


def temporal_iou(a, b) -> Tensor:
    """Intersection over union of intervals ``a [..., 2]`` and ``b [..., 2]`` (broadcasting).

    Accepts tensors or array-likes; returns a float tensor on ``a``'s device with the
    broadcast batch shape. The intersection is clamped at 0 (TALL's original formula
    is not, which only matters for negative thresholds); a zero-length union (two
    identical points) gives 0. For overlapping intervals the span
    ``max(ends) - min(starts)`` equals the union, and for disjoint ones the
    intersection is 0 anyway, so the span is used as denominator, as in 2D-TAN.
    """
    a = _as_float(a)
    b = _as_float(b, device=a.device)
    dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = a.to(dtype), b.to(dtype)
    if a.shape[-1:] != (2,) or b.shape[-1:] != (2,):
        raise ValueError(f"intervals need a last dimension of 2, got {tuple(a.shape)} and {tuple(b.shape)}")
    inter = (torch.minimum(a[..., 1], b[..., 1]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    union = torch.maximum(a[..., 1], b[..., 1]) - torch.minimum(a[..., 0], b[..., 0])
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(dtype).tiny), torch.zeros_like(inter))


def best_candidate_iou(candidates, gt, chunk: int = 4096) -> Tensor:
    """For each ground-truth moment, the best IoU any of a method's candidates reaches.

    ``candidates [K, 2]`` (normalised, the method's own: ``model.candidates()``) and
    ``gt [N, 2]``; returns ``[N]``. Its mean share above ``m`` is the *candidate ceiling*:
    the R@1,IoU=m of an oracle that always picks the best candidate. A method cannot
    beat it, so where the ceiling sits below chance among events, the extent fails in the
    candidate set, not in the scores. Computed in chunks of queries (``[chunk, K]`` at a time).
    """
    candidates, gt = _as_float(candidates), _as_float(gt)
    gt = gt.to(candidates.device)
    if candidates.ndim != 2 or gt.ndim != 2:
        raise ValueError(f"candidates [K, 2] and gt [N, 2] expected, got {tuple(candidates.shape)}, {tuple(gt.shape)}")
    return torch.cat([temporal_iou(candidates[None], part[:, None]).max(dim=1).values
                      for part in gt.split(chunk)]) if len(gt) else gt.new_zeros(0)


def _greedy_nms_sorted(moments: Tensor, threshold: float, top_k: int) -> Tensor:
    """Greedy NMS on best-first lists ``moments [Q, K, 2]``, all queries at once.

    Returns ``[Q, top_k]`` positions into each list (-1 where fewer survive). The
    Python loop runs over kept ranks only; each step is vectorised over queries and
    candidates. Greedy picks depend only on the candidates before them, so a short
    prefix of each list is tried first and only queries that exhaust it are redone
    on the full list.
    """
    Q, K = moments.shape[:2]
    prefix = max(64, 16 * top_k)
    if K <= prefix:
        return _greedy_nms_block(moments, threshold, top_k)
    keep = _greedy_nms_block(moments[:, :prefix], threshold, top_k)
    redo = (keep < 0).any(dim=1).nonzero().squeeze(1)
    if redo.numel():
        keep[redo] = _greedy_nms_block(moments[redo], threshold, top_k)
    return keep


def _greedy_nms_block(moments: Tensor, threshold: float, top_k: int) -> Tensor:
    Q, K = moments.shape[:2]
    keep = torch.full((Q, top_k), -1, dtype=torch.long, device=moments.device)
    alive = torch.ones(Q, K, dtype=torch.bool, device=moments.device)
    rows = torch.arange(Q, device=moments.device)
    for r in range(min(top_k, K)):
        has = alive.any(dim=1)
        if not bool(has.any()):
            break
        first = alive.to(torch.uint8).argmax(dim=1)  # earliest alive candidate
        keep[:, r] = torch.where(has, first, torch.full_like(first, -1))
        picked = moments[rows, first]  # [Q, 2]
        alive &= ~(temporal_iou(picked[:, None, :], moments) > threshold)
        alive[rows, first] = False
    return keep


def nms(moments, scores, threshold: float, top_k: int | None = None) -> Tensor:
    """Greedy 1-D non-maximum suppression (as in TALL and 2D-TAN).

    Candidates are visited by descending score (ties: lower index first). Each
    visited candidate that survives is kept, and every later candidate whose IoU
    with it is strictly greater than ``threshold`` is suppressed (IoU equal to the
    threshold survives). Stops once ``top_k`` are kept.

    Args:
        moments: ``[K, 2]`` intervals.
        scores: ``[K]`` scores, higher is better.

    Returns:
        LongTensor of kept indices into ``moments``, best first.
    """
    moments = _as_float(moments)
    scores = torch.as_tensor(scores, device=moments.device)
    if moments.ndim != 2 or moments.shape[-1] != 2 or scores.shape != moments.shape[:1]:
        raise ValueError(f"need moments [K, 2] and scores [K], got {tuple(moments.shape)} and {tuple(scores.shape)}")
    K = moments.shape[0]
    if K == 0:
        return torch.zeros(0, dtype=torch.long, device=moments.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    k = K if top_k is None else max(0, min(int(top_k), K))
    keep = _greedy_nms_sorted(moments[order][None], float(threshold), k)[0]
    return order[keep[keep >= 0]]


def _check_ranked(ranked, gt) -> tuple[Tensor, Tensor]:
    ranked = _as_float(ranked)
    if ranked.device.type == "mps":  # no float64 there
        ranked = ranked.cpu()
    ranked = ranked.double()
    gt = _as_float(gt, device=ranked.device).double()
    if ranked.ndim != 3 or ranked.shape[-1] != 2:
        raise ValueError(f"ranked must be [Q, K, 2], got {tuple(ranked.shape)}")
    if gt.shape != (ranked.shape[0], 2):
        raise ValueError(f"gt must be [Q, 2] with Q = {ranked.shape[0]}, got {tuple(gt.shape)}")
    if ranked.shape[0] == 0 or ranked.shape[1] == 0:
        raise ValueError("need at least one query and one candidate")
    return ranked, gt


def per_query_scores(
    ranked,
    gt,
    ns: Sequence[int] = (1, 5),
    ious: Sequence[float] = (0.3, 0.5, 0.7),
    protocol: str = "plain",
    nms_threshold: float | None = None,
) -> dict[str, Tensor]:
    """The per-query values behind :func:`recall_at`: 0/1 hits per R@n,IoU=m key and the top-1 IoU.

    Same arguments as :func:`recall_at`. Returns ``{key: Tensor [Q] float64}`` with the
    keys of :func:`recall_at` (``"mIoU"`` holds each query's top-1 IoU in [0, 1]).
    :func:`bootstrap_interval` resamples these.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if nms_threshold is not None and protocol != "2d-tan":
        raise ValueError("nms_threshold only applies to protocol '2d-tan'")
    ns = [int(n) for n in ns]
    if any(n < 1 for n in ns):
        raise ValueError(f"ns must be positive, got {ns}")
    ranked, gt = _check_ranked(ranked, gt)
    Q, K = ranked.shape[:2]
    top = max(ns)
    rows = torch.arange(Q, device=ranked.device)[:, None]
    iou = temporal_iou(ranked[:, :top], gt[:, None, :])  # [Q, min(K, top)]

    def kept_iou(threshold: float) -> Tensor:  # [Q, top] IoUs of NMS survivors, -1 if none
        keep = _greedy_nms_sorted(ranked, threshold, top)
        vals = temporal_iou(ranked[rows, keep.clamp(min=0)], gt[:, None, :])
        return torch.where(keep >= 0, vals, torch.full_like(vals, -1.0))

    shared = kept_iou(0.5 if nms_threshold is None else float(nms_threshold)) if protocol == "2d-tan" else None
    out: dict[str, Tensor] = {}
    for n in ns:
        for m in ious:  # a handful of thresholds
            m = float(m)
            if protocol == "plain":
                ok = iou >= m
            elif protocol == "tall":
                ok = kept_iou(m - 0.05) >= m
            else:
                ok = shared > m
            out[f"R@{n},IoU={m:g}"] = ok[:, :n].any(dim=1).double()
    out["mIoU"] = iou[:, 0].double()
    return out


def recall_at(
    ranked,
    gt,
    ns: Sequence[int] = (1, 5),
    ious: Sequence[float] = (0.3, 0.5, 0.7),
    protocol: str = "plain",
    nms_threshold: float | None = None,
) -> dict[str, float]:
    """R@n,IoU=m and mIoU in %, under a named protocol.

    Args:
        ranked: ``[Q, K, 2]`` predicted moments per query, best first (seconds or
            normalised, the same unit as ``gt``).
        gt: ``[Q, 2]`` one ground-truth moment per query.
        ns: the n of R@n. A query with fewer than n candidates (after NMS) is judged
            on those it has.
        ious: the IoU thresholds m.
        protocol: ``"plain"`` (no NMS; hit if IoU >= m), ``"tall"`` (TALL: greedy NMS
            at ``m - 0.05`` separately for each m; hit if IoU >= m) or ``"2d-tan"``
            (2D-TAN: one greedy NMS at 0.5 keeping ``max(ns)``; hit if IoU > m).
        nms_threshold: replaces 2D-TAN's 0.5 (its code default is 0.4; every
            released 2D-TAN config uses 0.5). Only valid with ``"2d-tan"``.

    Returns:
        ``{"R@1,IoU=0.3": ..., ..., "mIoU": ...}`` as Python floats in %, keys in
        the order ``ns`` x ``ious``. mIoU is the IoU of the top-1 moment (which NMS
        never removes) averaged over queries. IoUs are computed in float64, and
        ``m - 0.05`` with Python floats, as the reference scripts do.
    """
    per_query = per_query_scores(ranked, gt, ns=ns, ious=ious, protocol=protocol, nms_threshold=nms_threshold)
    return {k: 100.0 * v.mean().item() for k, v in per_query.items()}


def event_hit(ranked, gt) -> float:
    """Share (%) of queries whose top-1 moment has its centre inside the ground truth.

    Next to R@1 it separates finding the right *event* from drawing its *boundaries*:
    a method with a high event hit and a low R@1,IoU=0.7 finds the moment but not its
    extent. ``ranked`` ``[Q, K, 2]`` (or ``[Q, 2]`` top-1 moments), ``gt`` ``[Q, 2]``.
    """
    ranked = _as_float(ranked)
    top1 = ranked[:, 0] if ranked.ndim == 3 else ranked
    gt = _as_float(gt, top1.device)
    if top1.ndim != 2 or top1.shape != gt.shape or top1.shape[-1] != 2:
        raise ValueError(f"need [Q, K, 2] or [Q, 2] predictions and [Q, 2] ground truth, got "
                         f"{tuple(ranked.shape)} and {tuple(gt.shape)}")
    centre = top1.mean(dim=-1)
    return 100.0 * ((centre >= gt[:, 0]) & (centre <= gt[:, 1])).double().mean().item()


def bootstrap_interval(values, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of a mean over queries (for one run).

    Args:
        values: ``[Q]`` per-query values, e.g. ``per_query_scores(...)["R@1,IoU=0.5"]``
            (0/1 hits) or top-1 IoUs.
        level: coverage of the interval (0.95: the 2.5th and 97.5th percentiles of the
            resampled means).
        n_boot: resamples of the Q queries, drawn with replacement, all at once.
        seed: seeds the resampling, so the interval is reproducible.

    Returns:
        ``(low, high)`` in the units of ``values`` times 100 (i.e. % for hits), matching
        :func:`recall_at`. The interval covers query sampling noise only: the spread over
        training seeds is a separate, usually larger, source (report both).
    """
    v = _as_float(values).double().flatten()
    if v.numel() == 0:
        raise ValueError("bootstrap_interval needs at least one value")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(0, v.numel(), (int(n_boot), v.numel()), generator=g)
    means = v.cpu()[idx].mean(dim=1)
    lo, hi = torch.quantile(means, torch.tensor([(1 - level) / 2, 1 - (1 - level) / 2], dtype=torch.float64))
    return 100.0 * lo.item(), 100.0 * hi.item()


def protocol_table(ranked, gt, protocols: Sequence[str] = PROTOCOLS, **kw):
    """The same predictions scored under several protocols, one row each (pandas DataFrame).

    ``kw`` goes to :func:`recall_at` (``ns``, ``ious``); ``nms_threshold`` is passed
    to the ``"2d-tan"`` row only. Columns are the metric keys, values in %.
    """
    import pandas as pd

    nms_threshold = kw.pop("nms_threshold", None)
    rows = {}
    for p in protocols:
        extra = {"nms_threshold": nms_threshold} if p == "2d-tan" else {}
        rows[p] = recall_at(ranked, gt, protocol=p, **kw, **extra)
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "protocol"
    return df


# --------------------------------------------------------------------------- DiDeMo


def didemo_iou(p, g) -> Tensor:
    """IoU of DiDeMo chunk pairs ``p [..., 2]`` and ``g [..., 2]`` (broadcasting).

    Chunk ends are inclusive, hence the +1 (LocalizingMoments):
    ``max(0, min(pe, ge) + 1 - max(ps, gs)) / (max(pe, ge) + 1 - min(ps, gs))``.
    """
    p = torch.as_tensor(p).double()
    g = torch.as_tensor(g, device=p.device).double()
    inter = (torch.minimum(p[..., 1], g[..., 1]) + 1 - torch.maximum(p[..., 0], g[..., 0])).clamp(min=0)
    span = torch.maximum(p[..., 1], g[..., 1]) + 1 - torch.minimum(p[..., 0], g[..., 0])
    return inter / span


def didemo_scores(rankings, times) -> dict[str, float]:
    """Rank@1, Rank@5 and mIoU in % under the official DiDeMo protocol (LocalizingMoments).

    Args:
        rankings: per query, a permutation of the 21 candidate indices, best first
            (indices into :func:`wsg.proposals.didemo_candidates`); a ``[Q, 21]``
            array/tensor or a list of lists.
        times: per query, the annotators' (i, j) chunk pairs (usually 4; any number >= 1).

    Per query, the 1-based rank of every annotator's moment is computed and the
    mean of the 3 smallest is the query's rank; the query counts for Rank@n when
    that mean is <= n. Hence Rank@1 needs three annotators to agree on the top-1
    moment. The query's IoU is the mean of the 3 largest IoUs between the top-1
    candidate and the annotators' moments (:func:`didemo_iou`). With fewer than 3
    annotators, all are averaged. Duplicated annotations count once each.
    """
    r = torch.as_tensor(rankings, dtype=torch.long)
    if r.ndim != 2 or r.shape[1] != 21:
        raise ValueError(f"rankings must be [Q, 21] permutations, got shape {tuple(r.shape)}")
    Q = r.shape[0]
    if Q == 0 or len(times) != Q:
        raise ValueError(f"need one list of times per query: {Q} rankings, {len(times)} times")
    if not torch.equal(r.sort(dim=1).values, torch.arange(21).expand(Q, 21)):
        bad = int((r.sort(dim=1).values != torch.arange(21)).any(dim=1).nonzero()[0])
        raise ValueError(f"ranking of query {bad} is not a permutation of the 21 candidates")
    counts = torch.tensor([len(t) for t in times])
    if (counts == 0).any():
        raise ValueError(f"query {int((counts == 0).nonzero()[0])} has no annotator times")
    A = int(counts.max())
    flat = didemo_candidate_index([tuple(p) for t in times for p in t])  # [sum A_q]
    mask = torch.arange(A)[None, :] < counts[:, None]  # [Q, A]
    gt = torch.zeros(Q, A, dtype=torch.long)
    gt[mask] = flat
    # 1-based rank of each candidate: inverse permutation
    inv = torch.empty_like(r)
    inv.scatter_(1, r, torch.arange(1, 22).expand(Q, 21))
    ranks = inv.gather(1, gt).double().masked_fill(~mask, float("inf"))
    cands = torch.tensor(didemo_candidates())
    ious = didemo_iou(cands[r[:, 0]][:, None, :], cands[gt]).masked_fill(~mask, -float("inf"))
    k = counts.clamp(max=3).double()
    best_ranks = ranks.sort(dim=1).values[:, :3]
    best_ious = ious.sort(dim=1, descending=True).values[:, :3]
    finite = torch.isfinite(best_ranks)
    rank_q = torch.where(finite, best_ranks, 0.0).sum(1) / k
    iou_q = torch.where(finite, best_ious, 0.0).sum(1) / k
    return {
        "R@1": 100.0 * (rank_q <= 1).double().mean().item(),
        "R@5": 100.0 * (rank_q <= 5).double().mean().item(),
        "mIoU": 100.0 * iou_q.mean().item(),
    }
