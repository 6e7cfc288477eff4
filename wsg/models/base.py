"""The interface every grounding model implements, so one trainer and one evaluator serve all.

A batch is a ``dict`` produced by :func:`wsg.data.collate`:

=============== ===================== ===============================================
key             shape / type          meaning
=============== ===================== ===============================================
``video``       float ``[B, T, D]``   clip features (resampled to T clips, or padded)
``video_mask``  bool ``[B, T]``       True on real clips
``words``       long ``[B, L]``       word ids (``0`` = ``<pad>``), no ``<bos>``/``<eos>``
``words_mask``  bool ``[B, L]``       True on real words
``duration``    float ``[B]``         video duration in seconds
``video_idx``   long ``[B]``          index of the video within its split: queries with
                                      the same value describe the *same* video, so they
                                      are not negatives of each other
``query_idx``   long ``[B]``          **bookkeeping**: row of the query in the split's
                                      annotation table (the evaluator keeps it to itself)
``video_id``    list[str]             ids, for plots and error messages
``sentence``    list[str]             the raw queries
``moment``      float ``[B, 2]``      **label**: ground truth (start, end) in [0, 1]
``times``       list                  **label**: DiDeMo annotators' chunk pairs (DiDeMo only)
=============== ===================== ===============================================

The label keys (:data:`LABEL_KEYS`) are removed by the trainer before a
weakly-supervised model sees a batch (:func:`strip_labels`), and before *any* model's
``predict`` is called. ``query_idx`` is among them although it is no temporal label:
on real data (ActivityNet Captions paragraphs are chronological) and on any table
written in time order, a query's row number tells where its moment is, so nothing a
model sees may carry it. The evaluator also feeds queries in a seeded random order
(:func:`wsg.train.predict_all`), so a query's position in its batch carries nothing.
"""
from __future__ import annotations

from typing import ClassVar, Mapping

import torch
from torch import nn

LABEL_KEYS: tuple[str, ...] = ("moment", "times", "query_idx")


def strip_labels(batch: Mapping) -> dict:
    """A shallow copy of ``batch`` without the temporal labels (:data:`LABEL_KEYS`)."""
    return {k: v for k, v in batch.items() if k not in LABEL_KEYS}


class GroundingModel(nn.Module):
    """Base class of the five methods.

    Subclasses set :attr:`supervision` (``"weak"`` or ``"full"``) and implement:

    - ``forward(batch) -> dict`` of named tensors (scores, attentions, ...);
    - ``loss(batch, out) -> (total, parts)``: the scalar to minimise and a dict of its
      named terms as detached 0-d tensors (for the history table: the trainer sums them on
      the device and reads them once per logged interval; a ``.item()`` here would make
      every step wait for the GPU);
    - ``predict(batch, top_k) -> (moments [B, K, 2] in [0, 1], scores [B, K])``: candidates
      ranked best-first, *before* any NMS (the evaluation protocol applies NMS).
    """

    supervision: ClassVar[str] = "weak"

    def loss(self, batch: dict, out: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must implement loss()")

    def predict(self, batch: dict, top_k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must implement predict()")

    def candidates(self) -> torch.Tensor:  # pragma: no cover
        """The candidate moments ``[K, 2]`` (normalised, in [0, 1]) that :meth:`predict` ranks.

        For a video of the configured ``num_clips``, before any learned boundary
        regression. Blind baselines ranked over the same set
        (``wsg.baselines.blind_baselines(..., candidates=model.candidates())``) are the
        candidate-matched controls of the evidence standard.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement candidates()")
