"""MARN: Multi-Level Attentional Reconstruction Network (Song et al., 2020), weakly supervised.

A query is grounded by *attentional reconstruction*: proposals on a 2D start x scale map
are scored by a query-conditioned attention, the attention-weighted sum of their
(query-free) features must let an LSTM rebuild the query word by word, and at test time
the proposals are ranked by that same attention. A clip-level branch does the same with
single clips and, at inference, adds its attention at each proposal's centre.

Where each equation lives (``MARN Eq. k`` in the docstrings):

======== ============================================================================
Eq. 1    :meth:`ProposalModule.reduce` (Conv1d, kernel 3, ``d_v -> d_v / r``)
Eq. 2    :func:`wsg.proposals.apply_sampling` (one einsum), called in
         :meth:`ProposalModule.forward`
Eq. 3    :meth:`ProposalModule.summarise` (Conv3d with an ``(N, 1, 1)`` kernel)
Eq. 4    :func:`wsg.proposals.proposal_map` (the ``T x S`` location map, validity) and
         :func:`wsg.proposals.sampling_matrix` (``W`` as ``(T x S) x (N x T)``)
Eq. 5    :func:`wsg.proposals.sampling_matrix` (linear-interpolation weights)
Eqs. 6-7 :class:`AttentionModule` (concat with the tiled query, Conv2d_1 -> ReLU ->
         Conv2d_2, softmax over the valid cells); the same class, a second instance,
         is Eq. 11 on the ``T x 1`` clip map
Eq. 8    :func:`attend` (also Eq. 12: the same weighted sum on the clip map)
Eq. 9    :class:`Reconstructor` (LSTM decoder, teacher forcing)
Eq. 10   :func:`caption_loss` (also Eq. 13: the same loss on the clip branch's decoding)
Eq. 11   :class:`AttentionModule` (see Eqs. 6-7)
Eq. 12   :func:`attend` (see Eq. 8)
Eq. 13   :func:`caption_loss` (see Eq. 10)
Eq. 14   :meth:`MARN.loss` (``L = L_p + lambda L_c``)
Eq. 15   :func:`refine_scores` (proposal attention + eps x clip attention at the centre)
======== ============================================================================

Choices where the paper is silent or ambiguous (each is tested):

* **Scales.** The paper's Charades setting, "6-scale proposals in the range of [6, 12]"
  with ``T = 32``, is read as Python's ``range(6, 12)`` = 6, 7, ..., 11 clips (six
  integer scales starting at 6; ``linspace(6, 12, 6)`` would give non-integer lengths
  that do not end on clip boundaries). It is the config default. For data without paper
  scales (the synthetic presets) :func:`scales_from_lengths` takes every integer scale
  from the 25th to the 95th percentile of the training moments' lengths, a rule chosen
  on the validation split over three seeds (Chapter 2; ``scripts/marn_experiments.py``).
  ``stride_fraction=0.25`` gives the ActivityNet sparse map (stride ``s / 4``).
* **Sampling points.** BMN has two placements in circulation; ``endpoints="inclusive"``
  (first to last covered clip) is the default, ``"bins"`` the other (see
  :func:`wsg.proposals.sampling_matrix`). With ``"inclusive"`` a valid proposal never
  reads a clip past the video end.
* **Non-linearities.** ReLU after the Conv1d (Eq. 1) and after the Conv3d (Eq. 3), as in
  BMN; Eq. 7 has its own ReLU between the two Conv2d.
* **Conv2d_1** is 1 x 1 (it fuses each cell); **Conv2d_2** has the ablated kernel
  (3 x 3 by default, ``attention_kernel=1`` for the 1 x 1 variant), zero-padded.
* **Masking.** Invalid cells (past the real end of the video, or skipped by sparse
  sampling) have their proposal features and their fused features set to zero (so
  they look like the convolution's zero padding), get no attention (softmax over valid
  cells only), and are never predicted. Padded clips are zeroed before the Conv1d.
* **Eq. 11 as printed cannot use the query.** One linear Conv2d on
  ``[F_vc; Tile(F_q)]`` adds a query term that is the same for every clip, and the
  softmax cancels it: the clip attention would ignore the query. We use the Eq. 7
  structure (Conv2d -> ReLU -> Conv2d) with separate weights for the clip branch
  (``clip_attention="two-layer"``); ``"one-layer"`` is Eq. 11 as printed (a 1 x 1 Conv2d).
* **Clip branch sampling.** Scale 1 on the same sampling matrix builder, the *shared*
  Conv1d and Conv3d (the paper says the Conv3d and the decoder are shared; sharing the
  Conv1d too is our reading; ``clip_reduce="separate"`` gives the clip branch its own
  Conv1d). With ``"inclusive"`` the N points of a 1-clip proposal
  all sit on the clip itself.
* **Decoder conditioning (Eq. 9).** The global feature is concatenated to every input
  word embedding (the equation's ``Concat(F, h, e)``; the LSTM carries ``h``); the
  initial state is zero. Inputs ``<bos> w_1..w_L``, targets ``w_1..w_L <eos>``, so
  ``M = L + 1``. The decoder's word embeddings are the query encoder's (one table).
* **Eq. 10 normalisation.** Mean over the ``M`` target tokens of a query, then mean over
  the batch. ``lambda`` (Eq. 14) is not given: default 1. Eq. 14 writes ``L_v`` for the
  ``L_p`` of Eq. 10 (a typo).
* **Eq. 15 centre.** ``j = T_i + S_i / 2`` is a time, not always a clip index. We read
  the clip attention at position ``t + (s - 1) / 2`` in clip-index coordinates with the
  linear interpolation of Eq. 5: for odd ``s`` this is exactly the middle clip, for
  even ``s`` the mean of the two middle clips (symmetric; the literal integer
  ``t + s / 2`` would take the clip right of the centre).
* **Scale of the scores.** ``Att_p`` sums to 1 over all valid cells and ``Att_c`` over
  the clips, so ``eps Att_c`` is on a comparable footing only through ``eps``; we keep
  the paper's ``eps = 0.1`` (Charades) and ``0.3`` (ActivityNet).

Ablation switches (paper Tables 3-5): ``proposal_pool="avg"`` (average over all clips
of the proposal + a linear map, instead of sampling + Conv3d), ``attention_kernel=1``,
``clip_branch=False`` (multi-level off) and ``epsilon=0`` (clip branch in training only).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsg.models.base import GroundingModel
from wsg.proposals import apply_sampling, proposal_map, sampling_matrix
from wsg.text import GRUEncoder, Vocabulary, check_pretrained

__all__ = [
    "MARNConfig",
    "MARN",
    "ProposalModule",
    "AttentionModule",
    "Reconstructor",
    "attend",
    "caption_loss",
    "refine_scores",
    "masked_softmax",
    "average_matrix",
    "decoder_io",
    "scales_from_lengths",
]

PAPER_CHARADES_SCALES: tuple[int, ...] = (6, 7, 8, 9, 10, 11)


@dataclass
class MARNConfig:
    """Hyper-parameters of :class:`MARN` (paper values where the paper gives them).

    Attributes:
        vocab_size / video_dim / num_clips: from the data (``Benchmark.model_kwargs()``).
        scales: proposal lengths in clips (paper Charades: six scales in [6, 12], read
            as 6..11; see the module docstring).
        num_points: ``N`` sampling points per proposal (paper: 4).
        endpoints: ``"inclusive"`` or ``"bins"`` (BMN's two placements).
        stride_fraction: sparse starts with stride ``round(s * f)`` (paper ActivityNet:
            0.25); ``None`` keeps every start (paper Charades).
        reduction: ``r`` of Eq. 1 (paper Charades: 8).
        reduce_kernel: Conv1d kernel of Eq. 1 (paper: 3).
        proposal_pool: ``"conv3d"`` (the paper's sampling + Conv3d) or ``"avg"`` (the
            average-pooling ablation).
        proposal_dim: ``d_vp``, width of the proposal features (not given; 512).
        word_dim: word embedding width (the paper: GloVe pre-trained on Common Crawl, width not
            stated; learned here by default).
        query_dim: GRU width of the query feature ``F_q`` (not given; 512).
        attention_dim: ``d_a`` of Conv2d_1 (not given; 512).
        attention_kernel: kernel of Conv2d_2 (paper's best: 3).
        decoder_dim: LSTM width (not given; 512).
        clip_branch: train the clip-level branch (multi-level extension).
        clip_weight: ``lambda`` of Eq. 14 (not given; 1).
        epsilon: ``eps`` of Eq. 15 (paper: 0.1 Charades, 0.3 ActivityNet); 0 = clip branch
            in training only.
        clip_attention: ``"two-layer"`` (ours: Eq. 7's Conv2d -> ReLU -> Conv2d for Eq. 11) or
            ``"one-layer"`` (Eq. 11 as printed: one 1 x 1 Conv2d, which cannot use the query).
        clip_reduce: ``"shared"`` (ours: the clip branch reuses Eq. 1's Conv1d) or
            ``"separate"`` (its own Conv1d; the paper names only the Conv3d and decoder as shared).
        pretrained_embeddings / freeze_embeddings: optional GloVe matrix
            ``[vocab_size, word_dim]`` for the query encoder's embedding table, which the
            reconstruction decoder shares (the paper uses GloVe, width not stated); build both with
            :func:`wsg.text.word_vector_config`.
    """

    vocab_size: int
    video_dim: int
    num_clips: int
    scales: Sequence[int] = PAPER_CHARADES_SCALES
    num_points: int = 4
    endpoints: str = "inclusive"
    stride_fraction: float | None = None
    reduction: int = 8
    reduce_kernel: int = 3
    proposal_pool: str = "conv3d"
    proposal_dim: int = 512
    word_dim: int = 300
    query_dim: int = 512
    attention_dim: int = 512
    attention_kernel: int = 3
    decoder_dim: int = 512
    clip_branch: bool = True
    clip_weight: float = 1.0
    epsilon: float = 0.1
    clip_attention: str = "two-layer"
    clip_reduce: str = "shared"
    pretrained_embeddings: Any = None
    freeze_embeddings: bool = False

    def __post_init__(self):
        check_pretrained(self.pretrained_embeddings, self.vocab_size, self.word_dim, "MARNConfig")
        self.scales = tuple(int(s) for s in self.scales)
        if not self.scales or min(self.scales) < 1:
            raise ValueError(f"scales must be positive clip counts, got {self.scales}")
        if max(self.scales) > self.num_clips:
            raise ValueError(f"scale {max(self.scales)} exceeds num_clips={self.num_clips}")
        if self.proposal_pool not in ("conv3d", "avg"):
            raise ValueError(f"proposal_pool must be 'conv3d' or 'avg', got {self.proposal_pool!r}")
        if self.clip_attention not in ("two-layer", "one-layer"):
            raise ValueError(f"clip_attention must be 'two-layer' or 'one-layer', got {self.clip_attention!r}")
        if self.clip_reduce not in ("shared", "separate"):
            raise ValueError(f"clip_reduce must be 'shared' or 'separate', got {self.clip_reduce!r}")
        if self.video_dim % self.reduction:
            raise ValueError(f"video_dim={self.video_dim} is not divisible by reduction={self.reduction}")
        if self.reduce_kernel % 2 == 0 or self.attention_kernel % 2 == 0:
            raise ValueError("reduce_kernel and attention_kernel must be odd (same-size padding)")


# ----------------------------------------------------------------------------- helpers


def scales_from_lengths(moments: Tensor, num_clips: int, lo: float = 0.25, hi: float = 0.95) -> tuple[int, ...]:
    """Every integer scale between two quantiles of the training moments' lengths, in clips.

    ``moments [N, 2]`` normalised (a dataset statistic: lengths only, never positions or
    queries). Returns ``range(max(1, round(q_lo)), min(T, round(q_hi)) + 1)`` with
    ``q = quantile(T * (end - start))``. The chapter's default, 25th to 95th percentile,
    was chosen on the validation split (``scripts/marn_experiments.py --study scales``).
    """
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"need 0 <= lo <= hi <= 1, got lo={lo}, hi={hi}")
    moments = torch.as_tensor(moments, dtype=torch.float64)
    if moments.ndim != 2 or moments.shape[-1] != 2 or len(moments) == 0:
        raise ValueError(f"moments must be a non-empty [N, 2] tensor, got shape {tuple(moments.shape)}")
    lengths = (moments[:, 1] - moments[:, 0]) * num_clips
    q_lo, q_hi = torch.quantile(lengths, torch.tensor([lo, hi], dtype=torch.float64)).tolist()
    first, last = max(1, round(q_lo)), min(num_clips, round(q_hi))
    return tuple(range(first, max(first, last) + 1))


def masked_softmax(logits: Tensor, valid: Tensor, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` restricted to ``valid`` entries; invalid entries get exactly 0.

    A row with no valid entry is all zeros (never NaN).
    """
    x = logits.masked_fill(~valid, float("-inf"))
    x = x - x.amax(dim, keepdim=True).clamp(min=torch.finfo(x.dtype).min).detach()
    e = torch.exp(x) * valid
    return e / e.sum(dim, keepdim=True).clamp(min=torch.finfo(x.dtype).tiny)


def average_matrix(num_clips: int, scales: Sequence[int]) -> Tensor:
    """Average-pooling weights ``[T, S, T]``: proposal (t, k) averages clips t .. t+s_k-1.

    The ablation's "TempN = All, AvgPool" representation; rows of proposals that run past
    the end are zero.
    """
    pm = proposal_map(num_clips, scales)
    t = torch.arange(num_clips)
    s = torch.as_tensor(list(scales))
    inside = (t[None, None, :] >= t[:, None, None]) & (t[None, None, :] < (t[:, None] + s[None, :])[..., None])
    return (inside.float() / s[None, :, None].float()) * pm.valid[..., None]


def decoder_io(words: Tensor, words_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Teacher-forcing inputs and targets of the reconstruction.

    Returns ``inputs [B, L+1]`` = ``<bos> w_1 .. w_L`` (pad after), ``targets [B, L+1]`` =
    ``w_1 .. w_L <eos>`` (pad after) and ``mask [B, L+1]`` of the ``M = L_b + 1`` real
    targets of each query.
    """
    B = words.shape[0]
    lengths = words_mask.sum(1)
    words = words * words_mask
    bos = torch.full((B, 1), Vocabulary.bos_id, dtype=words.dtype, device=words.device)
    inputs = torch.cat([bos, words], 1)
    targets = torch.cat([words, torch.zeros_like(bos)], 1)
    targets = targets.scatter(1, lengths[:, None], Vocabulary.eos_id)
    mask = torch.arange(inputs.shape[1], device=words.device)[None, :] <= lengths[:, None]
    return inputs, targets * mask, mask


# ----------------------------------------------------------------------------- modules


class ProposalModule(nn.Module):
    """Proposal module (paper Sec. 3.1 and Fig. 2a): clip features -> proposal and clip features.

    ``forward(video [B, T, D], video_mask [B, T])`` returns

    - ``F_vp [B, T, S, d_vp]``: one feature per cell of the start x scale map (zero on
      invalid cells; channels last);
    - ``F_vc [B, T, d_vp]``: one feature per clip (the clip branch: scale 1);
    - ``valid [B, T, S]`` and ``clip_valid [B, T]`` bool masks.
    """

    def __init__(self, cfg: MARNConfig):
        super().__init__()
        self.cfg = cfg
        reduced = cfg.video_dim // cfg.reduction
        self.conv1d = nn.Conv1d(cfg.video_dim, reduced, cfg.reduce_kernel, padding=cfg.reduce_kernel // 2)
        if cfg.clip_reduce == "separate":
            self.clip_conv1d = nn.Conv1d(cfg.video_dim, reduced, cfg.reduce_kernel, padding=cfg.reduce_kernel // 2)
        if cfg.proposal_pool == "conv3d":
            self.conv3d = nn.Conv3d(reduced, cfg.proposal_dim, (cfg.num_points, 1, 1))
        else:  # ablation: average pooling over all clips, then a per-cell linear map
            self.pool_proj = nn.Linear(reduced, cfg.proposal_dim)
        self.register_buffer("scales", torch.tensor(cfg.scales), persistent=False)
        self._cache: dict = {}

    # -- the fixed sampling operator, built once per (T, device)
    def operators(self, T: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``(W, map_valid)``: the sampling operator ``[T, S + 1, N, T]`` and the map's validity ``[T, S]``.

        Columns ``0..S-1`` are the proposal map, from :func:`wsg.proposals.sampling_matrix`
        (MARN Eqs. 4-5); the last column is the clip branch (scale 1, same builder), so
        one contraction (Eq. 2) serves both branches. In the ``"avg"`` ablation the
        proposal columns are :func:`average_matrix` and the clip column the identity (N = 1).
        """
        key = (T, str(device))
        if key not in self._cache:
            c = self.cfg
            if c.proposal_pool == "conv3d":
                Wp = sampling_matrix(T, c.scales, c.num_points, c.endpoints, c.stride_fraction)
                Wc = sampling_matrix(T, [1], c.num_points, c.endpoints)
            else:
                Wp = average_matrix(T, c.scales)[:, :, None, :]
                Wc = torch.eye(T)[:, None, None, :]
            valid = proposal_map(T, c.scales, c.stride_fraction).valid
            self._cache[key] = (torch.cat([Wp, Wc], 1).to(device), valid.to(device))
        return self._cache[key]

    def reduce(self, video: Tensor, video_mask: Tensor, conv: nn.Conv1d | None = None) -> Tensor:
        """MARN Eq. 1: ``F_v hat = ReLU(Conv1d(F_v))``, kernel 3, ``D -> D / r``; ``[B, T, D/r]``.

        Padded clips are zeroed before (so they act as the convolution's zero padding) and
        after the convolution. ``conv`` defaults to Eq. 1's (shared) Conv1d.
        """
        m = video_mask[..., None].to(video.dtype)
        x = (conv or self.conv1d)((video * m).transpose(1, 2)).transpose(1, 2)
        return F.relu(x) * m

    def summarise(self, sampled: Tensor) -> Tensor:
        """MARN Eq. 3: ``F_vp = ReLU(Conv3d(F_v'))`` with an ``(N, 1, 1)`` kernel.

        ``sampled [B, C, N, T, S]`` -> ``[B, T, S, d_vp]`` (channels last): the N sampled
        points of each proposal are summarised into one vector. A kernel that spans the
        whole point axis and one cell is a linear map of the concatenated points, so the
        Conv3d's weights are applied as one einsum (same result as ``nn.Conv3d``, several
        times faster on CPU). In the ``"avg"`` ablation (N = 1, the average) a linear map.
        """
        if self.cfg.proposal_pool == "conv3d":
            w = self.conv3d.weight[:, :, :, 0, 0]  # [d, C, N]
            return F.relu(torch.einsum("bcnts,dcn->btsd", sampled, w) + self.conv3d.bias)
        return F.relu(self.pool_proj(sampled[:, :, 0].permute(0, 2, 3, 1)))

    def forward(self, video: Tensor, video_mask: Tensor) -> dict[str, Tensor]:
        B, T, _ = video.shape
        lengths = video_mask.sum(1)
        prefix = torch.arange(T, device=video.device)[None, :] < lengths[:, None]
        if not torch.equal(prefix, video_mask.bool()):
            raise ValueError("video_mask must mark a prefix of real clips (padding at the end)")
        W, map_valid = self.operators(T, video.device)
        reduced = self.reduce(video, video_mask)  # Eq. 1
        t = torch.arange(T, device=video.device)
        ends = t[:, None] + self.scales[None, :]  # [T, S] end clip (exclusive) of each cell
        valid = map_valid[None] & (ends[None] <= lengths[:, None, None])  # [B, T, S]
        clip_valid = video_mask.bool()
        # MARN Eq. 2 (home: wsg.proposals.apply_sampling): F_v' = W (x) F_v hat, one einsum
        if self.cfg.clip_reduce == "shared":
            feats = self.summarise(apply_sampling(reduced, W))  # Eq. 3: [B, T, S + 1, d]
        else:  # the clip column samples the clip branch's own reduction
            clip_reduced = self.reduce(video, video_mask, self.clip_conv1d)
            feats = torch.cat([self.summarise(apply_sampling(reduced, W[:, :-1])),
                               self.summarise(apply_sampling(clip_reduced, W[:, -1:]))], 2)
        F_vp = feats[:, :, :-1] * valid[..., None].to(feats.dtype)
        F_vc = feats[:, :, -1] * clip_valid[..., None].to(feats.dtype)
        return {"F_vp": F_vp, "F_vc": F_vc, "valid": valid, "clip_valid": clip_valid, "reduced": reduced}


class AttentionModule(nn.Module):
    """MARN Eqs. 6-7 (and Eq. 11 as a second instance on the ``T x 1`` clip map).

    Eq. 6: ``F_a = Concat(F_vp, Tile(F_q))`` over the map. Eq. 7:
    ``Att = Softmax(Conv2d_2(ReLU(Conv2d_1(F_a))))`` with Conv2d_1 a 1 x 1 convolution to
    ``d_a`` channels and Conv2d_2 a ``k x k`` convolution to one channel (zero padding),
    the softmax taken over the valid cells only. Fused features of invalid cells are set
    to zero before Conv2d_2 so they look like padding.

    ``forward(features [B, T, S, d], query [B, d_q], valid [B, T, S])`` returns
    ``(attention [B, T, S], logits [B, T, S])``; attention sums to 1 over valid cells.
    (Conv2d_1, being 1 x 1, is applied as a linear map on channels-last features.)
    ``layers=1`` is Eq. 11 as printed: one 1 x 1 Conv2d of the fused features to a logit.
    """

    def __init__(self, feature_dim: int, query_dim: int, attention_dim: int, kernel: int, layers: int = 2):
        super().__init__()
        if layers not in (1, 2):
            raise ValueError(f"layers must be 1 or 2, got {layers}")
        if layers == 2:
            self.conv1 = nn.Conv2d(feature_dim + query_dim, attention_dim, 1)
            self.conv2 = nn.Conv2d(attention_dim, 1, kernel, padding=kernel // 2)
        else:
            self.conv1 = None
            self.conv2 = nn.Conv2d(feature_dim + query_dim, 1, 1)

    @staticmethod
    def fuse(features: Tensor, query: Tensor) -> Tensor:
        """MARN Eq. 6 (its home): concatenate each cell's feature with the tiled query.

        ``features [B, T, S, d]``, ``query [B, d_q]`` -> ``[B, T, S, d + d_q]``.
        """
        B, T, S, _ = features.shape
        return torch.cat([features, query[:, None, None, :].expand(B, T, S, query.shape[1])], -1)

    def forward(self, features: Tensor, query: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        m = valid[..., None].to(features.dtype)
        hidden = self.fuse(features, query)
        if self.conv1 is not None:
            hidden = F.relu(F.linear(hidden, self.conv1.weight[:, :, 0, 0], self.conv1.bias))
        hidden = hidden * m
        logits = self.conv2(hidden.permute(0, 3, 1, 2))[:, 0]
        B = logits.shape[0]
        att = masked_softmax(logits.reshape(B, -1), valid.reshape(B, -1)).reshape(logits.shape)
        return att, logits


def attend(features: Tensor, attention: Tensor) -> Tensor:
    """MARN Eq. 8 (and Eq. 12): global feature = attention-weighted sum of the map's features.

    ``features [B, T, S, d]`` (or ``[B, T, d]``), ``attention [B, T, S]`` (or ``[B, T]``)
    -> ``[B, d]``. The features are the query-free proposal (clip) features, not the
    fused ones, so the decoder cannot copy the query.
    """
    return torch.einsum("bkd,bk->bd", features.flatten(1, -2), attention.flatten(1))


class Reconstructor(nn.Module):
    """MARN Eq. 9: an LSTM rebuilds the query from a global feature, teacher-forced.

    Step ``m`` reads ``[F_global; e_{m-1}]`` (the LSTM carries ``h_{m-1}``); a linear layer
    gives the logits of word ``m``. ``forward(global_feature [B, d], inputs [B, M])`` ->
    logits ``[B, M, V]``.
    """

    def __init__(self, embedding: nn.Embedding, feature_dim: int, hidden: int, vocab_size: int):
        super().__init__()
        self.embedding = embedding
        self.lstm = nn.LSTM(feature_dim + embedding.embedding_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, global_feature: Tensor, inputs: Tensor) -> Tensor:
        e = self.embedding(inputs)
        g = global_feature[:, None, :].expand(-1, inputs.shape[1], -1)
        h, _ = self.lstm(torch.cat([g, e], -1))
        return self.out(h)


def caption_loss(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """MARN Eq. 10 (and Eq. 13): mean negative log-likelihood of the query's words.

    ``-1/M sum_m log P(w_m | ...)`` over the ``M`` real targets of each query (the words
    and ``<eos>``), then averaged over the batch. Returns a scalar.
    """
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # [B, M]
    m = mask.to(nll.dtype)
    return ((nll * m).sum(1) / m.sum(1).clamp(min=1)).mean()


def refine_scores(att_p: Tensor, att_c: Tensor, scales: Tensor, epsilon: float) -> Tensor:
    """MARN Eq. 15: ``Att'_p(i) = Att_p(i) + eps Att_c(j)`` at the centre ``j`` of proposal i.

    ``att_p [B, T, S]``, ``att_c [B, T]``, ``scales [S]``. The centre of proposal (t, s)
    is position ``t + (s - 1) / 2`` in clip-index coordinates, where ``att_c`` is read by
    linear interpolation (odd ``s``: the middle clip; even ``s``: the mean of the two
    middle clips). Positions are clamped to the last clip (only invalid cells reach it).
    """
    B, T, S = att_p.shape
    starts = torch.arange(T, device=att_p.device, dtype=att_p.dtype)[:, None]
    centre = starts + (scales[None, :].to(att_p.dtype) - 1) / 2
    centre = centre.clamp(max=T - 1)
    lo = centre.floor().long()
    frac = centre - lo.to(att_p.dtype)
    hi = (lo + 1).clamp(max=T - 1)
    a_lo = att_c.gather(1, lo.reshape(1, -1).expand(B, -1)).reshape(B, T, S)
    a_hi = att_c.gather(1, hi.reshape(1, -1).expand(B, -1)).reshape(B, T, S)
    return att_p + epsilon * ((1 - frac) * a_lo + frac * a_hi)


# ----------------------------------------------------------------------------- the model


class MARN(GroundingModel):
    """MARN: proposal map + query-conditioned 2D attention, trained by reconstructing the query.

    ``forward`` returns the proposal attention ``att_p [B, T, S]`` (and logits), the global
    features, the masks and, with the clip branch, ``att_c [B, T]``. ``loss`` decodes the
    query from the global feature(s) (Eqs. 9-10, 13-14). ``predict`` ranks the valid cells
    by the refined attention (Eq. 15).
    """

    supervision = "weak"

    def __init__(self, config: MARNConfig):
        super().__init__()
        self.config = cfg = config
        self.proposals = ProposalModule(cfg)
        self.query_encoder = GRUEncoder(cfg.vocab_size, cfg.word_dim, cfg.query_dim,
                                        pretrained=cfg.pretrained_embeddings, freeze=cfg.freeze_embeddings)
        self.attention = AttentionModule(cfg.proposal_dim, cfg.query_dim, cfg.attention_dim, cfg.attention_kernel)
        if cfg.clip_branch:
            self.clip_attention = AttentionModule(cfg.proposal_dim, cfg.query_dim, cfg.attention_dim,
                                                  cfg.attention_kernel, 2 if cfg.clip_attention == "two-layer" else 1)
        self.reconstructor = Reconstructor(self.query_encoder.embed, cfg.proposal_dim, cfg.decoder_dim,
                                           cfg.vocab_size)

    def forward(self, batch: dict) -> dict[str, Tensor]:
        video, video_mask = batch["video"], batch["video_mask"]
        if video.ndim != 3 or video.shape[-1] != self.config.video_dim:
            raise ValueError(f"video must be [B, T, {self.config.video_dim}], got {tuple(video.shape)}")
        p = self.proposals(video, video_mask)
        _, query = self.query_encoder(batch["words"], batch["words_mask"])
        att_p, logits_p = self.attention(p["F_vp"], query, p["valid"])
        out = {"att_p": att_p, "logits_p": logits_p, "global_p": attend(p["F_vp"], att_p),
               "valid": p["valid"], "clip_valid": p["clip_valid"], "query": query}
        if self.config.clip_branch:
            att_c, logits_c = self.clip_attention(p["F_vc"][:, :, None], query, p["clip_valid"][..., None])
            out.update(att_c=att_c[..., 0], logits_c=logits_c[..., 0], global_c=attend(p["F_vc"], att_c[..., 0]))
        return out

    def loss(self, batch: dict, out: dict) -> tuple[Tensor, dict[str, Tensor]]:
        """MARN Eq. 14: ``L = L_p + lambda L_c`` (``L_c`` only with the clip branch).

        Both branches are decoded in one pass of the shared LSTM (Eqs. 9-10, 13).
        """
        inputs, targets, mask = decoder_io(batch["words"], batch["words_mask"])
        branches = [out["global_p"]] + ([out["global_c"]] if self.config.clip_branch else [])
        n = len(branches)
        logits = self.reconstructor(torch.cat(branches), inputs.repeat(n, 1))
        B = inputs.shape[0]
        l_p = caption_loss(logits[:B], targets, mask)
        parts = {"L_p": l_p.detach()}
        total = l_p
        if self.config.clip_branch:
            l_c = caption_loss(logits[B:], targets, mask)
            total = l_p + self.config.clip_weight * l_c
            parts["L_c"] = l_c.detach()
        return total, parts

    def scores(self, out: dict, epsilon: float | None = None) -> Tensor:
        """Proposal scores ``[B, T, S]`` (Eq. 15 with the clip branch), ``-inf`` on invalid cells."""
        eps = self.config.epsilon if epsilon is None else float(epsilon)
        s = out["att_p"]
        if self.config.clip_branch and eps != 0.0:
            s = refine_scores(s, out["att_c"], self.proposals.scales, eps)
        return s.masked_fill(~out["valid"], float("-inf"))

    def candidates(self) -> Tensor:
        """The valid cells of the proposal map ``[K, 2]``, normalised, for a video of ``num_clips`` clips.

        Proposal ``(t, s)`` is ``[t, t + s] / T``, in the order (start, scale) that
        :meth:`predict` flattens; MARN has no boundary regression, so its top-1 is always
        one of these.
        """
        pm = proposal_map(self.config.num_clips, self.config.scales, self.config.stride_fraction)
        return pm.moments[pm.valid]

    @torch.no_grad()
    def predict(self, batch: dict, top_k: int = 10, epsilon: float | None = None) -> tuple[Tensor, Tensor]:
        """Top-``top_k`` valid proposals by refined attention, best first (before NMS).

        Moments are ``[t, t + s] / n`` with ``n`` the number of real clips of the video.
        ``K = min(top_k, fewest valid cells in the batch)``. ``epsilon`` overrides the
        config's (0 = clip branch used in training only).
        """
        out = self(batch)
        sc = self.scores(out, epsilon)
        B, T, S = sc.shape
        k = int(min(top_k, int(out["valid"].flatten(1).sum(1).min())))
        if k < 1:
            raise ValueError("a video in the batch has no valid proposal (shorter than the smallest scale)")
        vals, idx = sc.flatten(1).topk(k, dim=1)
        t = torch.div(idx, S, rounding_mode="floor").to(sc.dtype)
        s = self.proposals.scales[idx % S].to(sc.dtype)
        n = batch["video_mask"].sum(1, keepdim=True).to(sc.dtype)
        moments = torch.stack([t / n, (t + s) / n], -1).clamp(0, 1)
        return moments, vals
