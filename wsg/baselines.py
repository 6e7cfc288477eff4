"""Blind baselines: rankings that never look at the query.

They tell how much of a score a dataset gives away for free. The random ranking is
chance level; the moment-frequency prior exploits where ground-truth moments tend to
lie (LocalizingMoments evaluates the same idea on DiDeMo). The prior sees only the
*positions* of the training labels, never a query, a sentence or a video feature,
so it ranks every test query the same way. *Chance among events* knows more: every
ground-truth moment of the query's video, but not which query asks for which
(:func:`events_chance`); it is the yardstick a weakly-supervised method must beat
to show that it reads the words.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from wsg.metrics import temporal_iou
from wsg.proposals import didemo_candidate_index

__all__ = ["random_ranking", "MomentPrior", "events_chance", "blind_rankings", "blind_baselines"]


def random_ranking(num_queries: int, candidates, seed: int = 0) -> Tensor:
    """An independent uniformly random order of ``candidates [K, 2]`` for each query.

    Each row is the argsort of i.i.d. uniform numbers drawn from a seeded
    ``torch.Generator``, so the result depends only on ``seed``.

    Returns:
        ``[Q, K, 2]`` ranked moments (each row a permutation of ``candidates``).
    """
    cands = torch.as_tensor(candidates)
    if cands.ndim != 2 or cands.shape[-1] != 2:
        raise ValueError(f"candidates must be [K, 2], got {tuple(cands.shape)}")
    g = torch.Generator().manual_seed(int(seed))
    order = torch.rand(int(num_queries), cands.shape[0], generator=g).argsort(dim=1)
    return cands[order.to(cands.device)]


class MomentPrior:
    """The moment-frequency prior: rank candidates by how often training moments fall on them.

    :meth:`fit` assigns every training moment to its best-IoU candidate (ties: the
    earliest candidate) and scores each candidate by that count; equal counts are
    broken by the mean IoU of the candidate with all training moments, then by
    candidate index. :meth:`rank` returns that single order for every query.
    Only the positions of training labels are used: no query, no video.
    """

    def __init__(self) -> None:
        self.candidates: Tensor | None = None
        self.counts: Tensor | None = None  # [K] training moments whose best candidate is k
        self.mean_iou: Tensor | None = None  # [K] mean IoU with the training moments
        self.order: Tensor | None = None  # [K] candidate indices, best first

    def fit(self, train_moments, candidates, chunk: int = 4096) -> "MomentPrior":
        """Count best-IoU assignments of ``train_moments [N, 2]`` to ``candidates [K, 2]``.

        Both in the same (normalised) units. Work is done in blocks of ``chunk``
        training moments so memory stays ``O(chunk * K)``.
        """
        cands = torch.as_tensor(candidates).double()
        train = torch.as_tensor(train_moments, device=cands.device).double()
        if cands.ndim != 2 or cands.shape[-1] != 2 or train.ndim != 2 or train.shape[-1] != 2:
            raise ValueError("train_moments must be [N, 2] and candidates [K, 2]")
        if train.shape[0] == 0:
            raise ValueError("no training moments to fit the prior on")
        K = cands.shape[0]
        counts = torch.zeros(K, dtype=torch.long, device=cands.device)
        iou_sum = torch.zeros(K, dtype=torch.float64, device=cands.device)
        for block in train.split(chunk):  # blocks of moments, not single moments
            iou = temporal_iou(block[:, None, :], cands[None, :, :])  # [n, K]
            counts += torch.bincount(iou.argmax(dim=1), minlength=K)  # argmax: first maximum
            iou_sum += iou.sum(dim=0)
        self.candidates = torch.as_tensor(candidates)
        self.counts = counts
        self.mean_iou = iou_sum / train.shape[0]
        # stable sorts, least significant key first: index, then mean IoU, then count
        by_iou = torch.sort(self.mean_iou, descending=True, stable=True).indices
        self.order = by_iou[torch.sort(counts[by_iou], descending=True, stable=True).indices]
        return self

    def rank(self, num_queries: int) -> Tensor:
        """``[Q, K, 2]``: the same best-first candidate list for every query.

        A broadcast view (no copy); ``.clone()`` it before writing into it.
        """
        if self.order is None:
            raise RuntimeError("call fit() first")
        return self.candidates[self.order].expand(int(num_queries), -1, -1)

    @staticmethod
    def didemo(train_times: Sequence[Sequence[Sequence[int]]]) -> list[int]:
        """The DiDeMo moment-frequency prior of LocalizingMoments, as one ranking.

        Counts how often each of the 21 candidates (:func:`wsg.proposals.didemo_candidates`)
        occurs among all training annotators' (i, j) pairs, and returns the candidate
        indices by descending count (ties: lower index first). Use the same list for
        every query with :func:`wsg.metrics.didemo_scores`.
        """
        pairs = [tuple(p) for t in train_times for p in t]
        if not pairs:
            raise ValueError("no training annotations")
        counts = torch.bincount(didemo_candidate_index(pairs), minlength=21)
        return torch.sort(counts, descending=True, stable=True).indices.tolist()


def events_chance(table, seed: int = 0) -> Tensor:
    """Chance among events: each video's own ground-truth moments, in one random order per video.

    The rule knows every event of a video (the moments of all its queries) but not
    which query asks for which, so it gives all queries of a video the same ranking.
    With ``k`` non-overlapping events it is right at R@1 for exactly one of the video's
    ``k`` queries: over a split, R@1 = #videos / #queries at every IoU, and R@k = 100
    (the events themselves are a perfect top-k). This is the yardstick of weak
    grounding on the synthetic benchmark, where every event of a video looks alike; a
    blind rule can still beat it at loose IoU or large n (e.g. by merging events).

    Args:
        table: an annotation table (``video_id``, ``duration``, ``start``, ``end``).
        seed: seeds the per-video orders.

    Returns:
        ``[Q, K, 2]`` normalised moments, ``K`` = the most queries of any video; a
        video with fewer repeats its last event (which changes no recall).
    """
    import numpy as np

    from wsg.data.dataset import normalised_moments

    if len(table) == 0:
        raise ValueError("events_chance: the table is empty")
    moments = normalised_moments(table)
    video = table["video_id"].to_numpy()
    codes = np.unique(video, return_inverse=True)[1]
    g = torch.Generator().manual_seed(int(seed))
    # one random key per *video* and query: sorting by (video, key) shuffles within each video
    key = torch.rand(len(table), generator=g).numpy()
    order = np.lexsort((key, codes))  # rows grouped by video, random within
    counts = np.bincount(codes)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])  # first sorted row of each video
    K = int(counts.max())
    slot = np.minimum(np.arange(K)[None, :], counts[codes][:, None] - 1)  # [Q, K], repeats the last
    ranked_rows = order[first[codes][:, None] + slot]
    return moments[torch.as_tensor(ranked_rows)]


def blind_rankings(bench, split: str = "test", candidates=None, seed: int = 0) -> dict[str, Tensor]:
    """The ranked moments ``[Q, K, 2]`` of the blind rows of :func:`blind_baselines`.

    Keys ``random`` and ``prior`` (over ``candidates``, default every span of the
    benchmark's clip grid) and ``events`` (:func:`events_chance`). The prior is fitted
    on the *training* moments only.
    """
    from wsg.proposals import all_spans

    if candidates is None:
        spans, valid = all_spans(bench.num_clips)
        candidates = spans[valid]
    n = len(bench.splits[split])
    return {"random": random_ranking(n, candidates, seed),
            "prior": MomentPrior().fit(bench.train_moments(), candidates).rank(n),
            "events": events_chance(bench.splits[split], seed)}


def blind_baselines(bench, split: str = "test", protocol: str = "2d-tan", candidates=None, seed: int = 0,
                    ns=(1, 5), ious=(0.3, 0.5, 0.7)):
    """The blind rows of one split of a benchmark, as a table: random, prior and events.

    Args:
        bench: a :class:`wsg.data.Benchmark`; the prior is fitted on its *training* moments.
        split: the split to score (the ground truth is used only to score).
        protocol: evaluation protocol (see :func:`wsg.metrics.recall_at`).
        candidates: ``[K, 2]`` normalised candidate moments; default every span of the
            benchmark's clip grid (:func:`wsg.proposals.all_spans`), the candidate set of
            a 2D-TAN-style map.
        seed: seeds the random ranking and the events' order.

    Returns:
        ``pandas.DataFrame`` with rows ``random`` and ``prior`` (over ``candidates``:
        pass a model's :meth:`~wsg.models.GroundingModel.candidates` for the
        candidate-matched controls) and ``events`` (:func:`events_chance`, which needs no
        candidates), and the metric columns.
    """
    import pandas as pd

    from wsg.metrics import recall_at

    gt = bench.moments(split)
    rows = {name: recall_at(ranked, gt, ns=ns, ious=ious, protocol=protocol)
            for name, ranked in blind_rankings(bench, split, candidates, seed).items()}
    return pd.DataFrame(rows).T
