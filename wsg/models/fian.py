"""FIAN: Fine-grained Iterative Attention Network (Qu et al., ACM MM 2020) -- *fully* supervised.

FIAN is the book's reference point: it trains with the temporal labels (``batch["moment"]``)
that the four weakly-supervised methods never see, so on the same data it shows what
those labels buy.

Pipeline (one module per box; every numbered equation has one home):

====================  ==========================================  =====================================
equation              what                                        home
====================  ==========================================  =====================================
FIAN Eqs. 1-3         word embeddings -> BiGRU                    :class:`QueryEncoder`
(Sec. 3.2, no eq.)    clips -> FC -> self-attention -> BiGRU      :class:`VideoEncoder`
FIAN Eqs. 4-5         cross-modal multi-head attention (CMA)      :class:`CrossModalAttention`
FIAN Eq. 6            information gate -> guided attention (CGA)  :class:`GuidedAttention`
FIAN Eq. 7            position-wise feed-forward network          :class:`FeedForward`
FIAN Eq. 8            cross-modal encoder FFN(CGA(Q, V))          :class:`CrossModalEncoder`
FIAN Eq. 9            query->video then video->query branch       :meth:`SymmetricIterativeAttention.query_video_branch`
FIAN Eq. 10           video->query then query->video branch       :meth:`SymmetricIterativeAttention.video_query_branch`
FIAN Eq. 11           project each query to the video length      :meth:`VideoEnhancedIntegration.project`
FIAN Eqs. 12-14       concatenate, gate with r, add + LayerNorm   :meth:`VideoEnhancedIntegration.forward`
(Sec. 3.4, no eq.)    BiGRU + one Conv1d per window size          :class:`ContentOrientedLocalizer`
FIAN Eqs. 15-16       IoU-soft alignment loss, pos/neg averaged   :func:`alignment_loss`
FIAN Eq. 17           smooth-L1 boundary loss on positives        :func:`boundary_loss`
FIAN Eq. 18           joint loss L_align + alpha L_b              :meth:`FIAN.loss`
====================  ==========================================  =====================================

Choices where the paper is silent, ambiguous or inconsistent (each is tested):

* **Fixed query length (Eq. 11).** ``W_1 in R^{n_v x n_q}`` needs a fixed ``n_q``; we pad
  (with zeros, after Eqs. 9-10) or cut the words to ``max_words = 30`` inside the model,
  the same cut :mod:`wsg.data` applies, so no word of a batch is ever lost. Padded rows
  are zeroed before the projection, so padding never changes the result. The paper
  gives the bias as ``b_1 in R^{n_q}``, which does not fit an ``n_v x d_h`` result; we
  use ``b_1 in R^{n_v}`` (one bias per clip, broadcast over features), i.e. an
  ``nn.Linear(n_q, n_v)`` applied along the word axis.
* **Eq. 2** prints ``h^b_{i-1}``; a backward GRU reads from the end, so its previous state is
  ``h^b_{i+1}`` (what ``nn.GRU(bidirectional=True)`` computes).
* **Shared gate projections (Eq. 6).** With ``W_q^g = W_q^i`` and ``W_v^g = W_v^i`` the gate
  and the information differ only by their biases: ``z = W_q Q + W_v CMA``,
  ``CGA = sigmoid(z + b^g) * (z + b^i)``.
* **Residuals and LayerNorm (Eqs. 7-8).** The paper prints ``FFN(CGA(Q, V))`` but says it
  omits the shortcuts and LayerNorm of Fig. 4(b); we use the post-LN Transformer form
  ``X = LN(Q + CGA(Q, V))``, ``Encoder = LN(X + FFN(X))``.
* **Four encoders.** The two iterative branches "share the same architecture but reverse
  input"; we read that as the same *structure* with separate weights (four encoders).
* **Widths.** "Hidden dimension of all bi-directional GRUs is 512": we take 512 as the
  concatenated width ``d_h`` (256 per direction), matching the 512-d video FC. The FFN
  width (not given) is ``4 d_h`` as in the Transformer. The video self-attention (not
  specified beyond "self-attention [32]") is one multi-head layer with a residual and
  LayerNorm.
* **Windows on 32 clips.** The paper uses windows of 16/24/32/40 of 64 clips on
  Charades-STA, i.e. fractions 1/4, 3/8, 1/2, 5/8 of the video; we keep the fractions,
  ``round(f * n_v)`` -> 8/12/16/20 clips on our 32, with stride ``round(w / 8)`` (rounding
  half up, at least 1 clip) -> 1/2/2/3 clips: 25 + 11 + 9 + 5 = 50 candidates (the paper
  has 53 on 64 clips). "Two distinct convolutions" for score and offsets: two Conv1d per
  window size.
* **Offsets** are in clip units (the paper's coordinates run from 1 to ``n_v``); smooth-L1
  uses ``beta = 1`` clip. Positives are candidates with IoU *strictly* above ``tau``
  ("larger than"); ``N_pos`` and ``N_neg`` are counted over the whole batch ("in total");
  an empty group contributes zero.
* **Inference.** Candidates are shifted by their offsets, clamped to [0, 1]; where the
  shift gives ``end <= start`` the unshifted window is kept. Ranked by confidence;
  NMS is the evaluation protocol's job.
* **Padded clips.** Eq. 11 fixes ``n_v``, so the video must have exactly ``num_clips``
  clips (the benchmarks resample to it). If a ``video_mask`` marks trailing clips as
  padding, time is normalised by the real length, candidates that reach into the padding
  are invalid (excluded from the losses, ranked last), and padded clips are masked out of
  every attention and packed out of every GRU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from wsg.metrics import temporal_iou
from wsg.models.base import GroundingModel
from wsg.text import GRUEncoder, check_pretrained

__all__ = [
    "FIANConfig", "FIAN", "QueryEncoder", "VideoEncoder", "CrossModalAttention", "SoftAttention",
    "GuidedAttention", "FeedForward", "CrossModalEncoder", "SymmetricIterativeAttention",
    "VideoEnhancedIntegration", "ContentOrientedLocalizer", "alignment_loss", "boundary_loss",
    "window_layout",
]

ATTENTIONS = ("cga", "cma", "soft")
BRANCHES = ("both", "qv", "vq")


@dataclass
class FIANConfig:
    """Settings of :class:`FIAN` (paper values for Charades-STA where the paper gives them).

    Attributes:
        vocab_size / video_dim / num_clips: from the data (``bench.model_kwargs()``).
        max_words: fixed query length ``n_q`` of Eq. 11 (words padded or cut to it).
        word_dim: word-embedding width (the paper embeds words with GloVe and gives no width; 300 is
            the common GloVe release's, ours).
        hidden: ``d_h``, the model width (paper: 512); must be divisible by ``heads`` and even.
        heads: attention heads (paper: 4 on Charades-STA, 8 on ActivityNet/TACoS).
        ffn_dim: inner width of the FFN of Eq. 7 (``None``: ``4 * hidden``).
        window_fractions: window lengths as fractions of the video (paper: 16/24/32/40 of 64).
        window_sizes: explicit window lengths in clips (overrides ``window_fractions``).
        stride_fraction: stride as a fraction of the window (paper: 1/8 on Charades/TACoS,
            1/4 on ActivityNet); ``None`` means a stride of 1 clip for every window.
        tau: IoU above which a candidate is positive (paper: 0.55).
        alpha: weight of the boundary loss in Eq. 18 (paper: 0.005 on Charades-STA).
        attention: ``"cga"`` (the paper), ``"cma"`` (no gate) or ``"soft"`` (single-head
            dot-product attention without projections) -- the Table 4 variants.
        branches: ``"both"`` (the paper), ``"qv"`` (Eq. 9 only) or ``"vq"`` (Eq. 10 only).
        dropout: dropout inside the encoders (the paper states none; 0 by default).
        pretrained_embeddings / freeze_embeddings: optional GloVe matrix
            ``[vocab_size, word_dim]`` for the query encoder (the paper uses GloVe, width not stated);
            build both with :func:`wsg.text.word_vector_config`.
    """

    vocab_size: int
    video_dim: int
    num_clips: int
    max_words: int = 30
    word_dim: int = 300
    hidden: int = 512
    heads: int = 4
    ffn_dim: int | None = None
    window_fractions: tuple[float, ...] = (0.25, 0.375, 0.5, 0.625)
    window_sizes: tuple[int, ...] | None = None
    stride_fraction: float | None = 0.125
    tau: float = 0.55
    alpha: float = 0.005
    attention: str = "cga"
    branches: str = "both"
    dropout: float = 0.0
    pretrained_embeddings: Any = None
    freeze_embeddings: bool = False

    def __post_init__(self) -> None:
        check_pretrained(self.pretrained_embeddings, self.vocab_size, self.word_dim, "FIANConfig")
        if self.hidden % 2 or self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be even and divisible by heads ({self.heads})")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if self.branches not in BRANCHES:
            raise ValueError(f"branches must be one of {BRANCHES}, got {self.branches!r}")
        if not 0.0 <= self.tau < 1.0:
            raise ValueError(f"tau must be in [0, 1), got {self.tau}")
        if self.max_words < 1 or self.num_clips < 1:
            raise ValueError("max_words and num_clips must be positive")
        sizes, _ = window_layout(self.num_clips, self.window_fractions, self.window_sizes, self.stride_fraction)
        if not sizes:
            raise ValueError(f"no window fits in {self.num_clips} clips")


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def window_layout(num_clips: int, fractions: Sequence[float] = (0.25, 0.375, 0.5, 0.625),
                  sizes: Sequence[int] | None = None,
                  stride_fraction: float | None = 0.125) -> tuple[list[int], list[int]]:
    """Window lengths and strides in clips (the Conv1d kernel and stride of each window).

    ``sizes`` wins over ``fractions`` (each fraction ``f`` gives ``round(f * num_clips)``
    clips, half up). The stride of a window of ``w`` clips is ``max(1, round(w *
    stride_fraction))``, or 1 when ``stride_fraction`` is ``None``. Windows longer than
    the video are dropped; duplicates are removed keeping the first.
    """
    if sizes is None:
        sizes = [max(1, _round_half_up(f * num_clips)) for f in fractions]
    out: list[int] = []
    for w in sizes:
        w = int(w)
        if 1 <= w <= num_clips and w not in out:
            out.append(w)
    if stride_fraction is None:
        strides = [1 for _ in out]
    else:
        if stride_fraction <= 0:
            raise ValueError(f"stride_fraction must be positive or None, got {stride_fraction}")
        strides = [max(1, _round_half_up(w * stride_fraction)) for w in out]
    return out, strides


def _candidate_windows(num_clips: int, sizes: Sequence[int], strides: Sequence[int]) -> Tensor:
    """``[K, 2]`` (start, end) in clip units, grouped by window size as the Conv1d outputs are."""
    out = []
    for w, s in zip(sizes, strides):  # a handful of window sizes
        starts = torch.arange(0, num_clips - w + 1, s, dtype=torch.float32)
        out.append(torch.stack([starts, starts + w], dim=-1))
    return torch.cat(out)


def _bigru(gru: nn.GRU, x: Tensor, mask: Tensor) -> Tensor:
    """Run a batch-first GRU over the unpadded prefix of each row; padded outputs are zero."""
    if bool(mask.all()):  # nothing to pack (the usual case: videos resampled to num_clips)
        return gru(x)[0]
    lengths = mask.sum(1).clamp(min=1).cpu()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = gru(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


# --------------------------------------------------------------------------- encoders


class QueryEncoder(nn.Module):
    """FIAN Eqs. 1-3: word embeddings through a bidirectional GRU, ``h_i^q = [h_i^f; h_i^b]``.

    ``forward(words [B, L], mask [B, L]) -> [B, L, hidden]`` (zeros at padded words).
    The BiGRU runs over the real words only (packed), so padding cannot leak backwards.
    """

    def __init__(self, vocab_size: int, word_dim: int, hidden: int, pretrained: Tensor | None = None,
                 freeze: bool = False):
        super().__init__()
        self.encoder = GRUEncoder(vocab_size, word_dim, hidden // 2, bidirectional=True,
                                  pretrained=pretrained, freeze=freeze)

    def forward(self, words: Tensor, mask: Tensor) -> Tensor:
        states, _ = self.encoder(words, mask)
        return states


class CrossModalAttention(nn.Module):
    """FIAN Eqs. 4-5: multi-head scaled dot-product attention from one sequence to another.

    ``Att_i(Q, V) = softmax(Q W_i^Q (V W_i^K)^T / sqrt(d_k)) V W_i^V`` for each of ``n``
    heads (``d_k = d_h / n``), then ``CMA = Concat(head_1..head_n) W^O``. Keys and values
    both come from ``V`` (the other modality).

    ``forward(q [B, Lq, d], v [B, Lk, d], key_mask [B, Lk]) -> (out [B, Lq, d],
    attn [B, n, Lq, Lk])``; masked keys get zero weight.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} not divisible by heads {heads}")
        self.heads, self.d_k = heads, dim // heads
        self.w_q = nn.Linear(dim, dim, bias=False)
        self.w_k = nn.Linear(dim, dim, bias=False)
        self.w_v = nn.Linear(dim, dim, bias=False)
        self.w_o = nn.Linear(dim, dim, bias=False)

    def _split(self, x: Tensor) -> Tensor:  # [B, L, d] -> [B, n, L, d_k]
        return x.view(x.shape[0], x.shape[1], self.heads, self.d_k).transpose(1, 2)

    def forward(self, q: Tensor, v: Tensor, key_mask: Tensor) -> tuple[Tensor, Tensor]:
        Q, K, V = self._split(self.w_q(q)), self._split(self.w_k(v)), self._split(self.w_v(v))
        logits = Q @ K.transpose(-1, -2) / math.sqrt(self.d_k)  # [B, n, Lq, Lk]
        logits = logits.masked_fill(~key_mask[:, None, None, :], torch.finfo(logits.dtype).min)
        attn = logits.softmax(-1)
        heads = (attn @ V).transpose(1, 2).reshape(q.shape[0], q.shape[1], -1)  # Concat(head_i)
        return self.w_o(heads), attn


class SoftAttention(nn.Module):
    """Plain soft attention (the FIAN-Soft row of Table 4): one head, no projections.

    ``softmax(q v^T / sqrt(d)) v``; same call signature as :class:`CrossModalAttention`.
    """

    def forward(self, q: Tensor, v: Tensor, key_mask: Tensor) -> tuple[Tensor, Tensor]:
        logits = q @ v.transpose(-1, -2) / math.sqrt(q.shape[-1])
        logits = logits.masked_fill(~key_mask[:, None, :], torch.finfo(logits.dtype).min)
        attn = logits.softmax(-1)
        return attn @ v, attn[:, None]


class GuidedAttention(nn.Module):
    """FIAN Eq. 6: cross-modal guided attention, an information gate on CMA.

    ``CGA(Q, V) = sigmoid(W_q Q + W_v CMA(Q, V) + b^g) * (W_q Q + W_v CMA(Q, V) + b^i)``
    with the projections *shared* between gate and information (``W_q^g = W_q^i``,
    ``W_v^g = W_v^i``, as the paper does); only the biases ``b^g``, ``b^i`` differ.
    The gate is driven by the attending sequence ``Q``: what ``Q`` asked for decides
    which of the attended channels pass.

    ``forward(q, v, key_mask) -> (out [B, Lq, d], attn [B, n, Lq, Lk])``.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.cma = CrossModalAttention(dim, heads)
        self.w_q = nn.Linear(dim, dim, bias=False)
        self.w_v = nn.Linear(dim, dim, bias=False)
        self.b_g = nn.Parameter(torch.zeros(dim))
        self.b_i = nn.Parameter(torch.zeros(dim))

    def forward(self, q: Tensor, v: Tensor, key_mask: Tensor) -> tuple[Tensor, Tensor]:
        att, attn = self.cma(q, v, key_mask)
        z = self.w_q(q) + self.w_v(att)
        return torch.sigmoid(z + self.b_g) * (z + self.b_i), attn


class FeedForward(nn.Module):
    """FIAN Eq. 7: ``FFN(X) = max(0, X W^(1) + b^(1)) W^(2) + b^(2)``, position-wise."""

    def __init__(self, dim: int, inner: int, dropout: float = 0.0):
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(dim, inner), nn.Linear(inner, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(self.drop(F.relu(self.lin1(x))))


def _make_attention(kind: str, dim: int, heads: int) -> nn.Module:
    if kind == "cga":
        return GuidedAttention(dim, heads)
    if kind == "cma":
        return CrossModalAttention(dim, heads)
    return SoftAttention()


class CrossModalEncoder(nn.Module):
    """FIAN Eq. 8: the cross-modal (Q-V) encoder ``Encoder(Q, V) = FFN(CGA(Q, V))``.

    With the shortcuts and LayerNorm that Fig. 4(b) draws and Eq. 8 omits (post-LN,
    as the Transformer encoder): ``X = LN(Q + CGA(Q, V))``, ``out = LN(X + FFN(X))``.
    The output is a "V-aware Q": one row per element of ``Q``.

    ``forward(q [B, Lq, d], v [B, Lk, d], key_mask [B, Lk]) -> (out [B, Lq, d], attn)``.
    """

    def __init__(self, dim: int, heads: int, ffn_dim: int, attention: str = "cga", dropout: float = 0.0):
        super().__init__()
        self.attention = _make_attention(attention, dim, heads)
        self.ffn = FeedForward(dim, ffn_dim, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, q: Tensor, v: Tensor, key_mask: Tensor) -> tuple[Tensor, Tensor]:
        att, attn = self.attention(q, v, key_mask)
        x = self.norm1(q + self.drop(att))
        return self.norm2(x + self.drop(self.ffn(x))), attn


class VideoEncoder(nn.Module):
    """Video representation (FIAN Sec. 3.2, no equation): FC -> self-attention -> BiGRU.

    ``x = FC(video)``; ``x = LN(x + MHA(x, x))`` (the same multi-head attention as
    Eqs. 4-5, used within one modality); ``h_v = BiGRU(x)`` over the real clips.
    ``forward(video [B, T, D], mask [B, T]) -> [B, T, hidden]``.
    """

    def __init__(self, video_dim: int, hidden: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(video_dim, hidden)
        self.self_attn = CrossModalAttention(hidden, heads)
        self.norm = nn.LayerNorm(hidden)
        self.gru = nn.GRU(hidden, hidden // 2, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, video: Tensor, mask: Tensor) -> Tensor:
        x = self.drop(self.fc(video))
        att, _ = self.self_attn(x, x, mask)
        x = self.norm(x + self.drop(att))
        return _bigru(self.gru, x, mask)


class SymmetricIterativeAttention(nn.Module):
    """The two iterative attention branches of FIAN (Eqs. 9 and 10), four encoders in all.

    ``forward(q, v, q_mask, v_mask) -> dict`` with ``Q1, V1`` (Eq. 9) and/or ``V2, Q2``
    (Eq. 10) as ``branches`` asks, and the attention maps ``attn_Q1`` ([B, n, L, T]:
    words over clips), ``attn_V1`` ([B, n, T, L]: clips over words), ``attn_V2``, ``attn_Q2``.
    """

    def __init__(self, dim: int, heads: int, ffn_dim: int, attention: str = "cga", branches: str = "both",
                 dropout: float = 0.0):
        super().__init__()
        self.branches = branches
        make = lambda: CrossModalEncoder(dim, heads, ffn_dim, attention, dropout)  # noqa: E731
        if branches in ("both", "qv"):
            self.qv_query, self.qv_video = make(), make()
        if branches in ("both", "vq"):
            self.vq_video, self.vq_query = make(), make()

    def query_video_branch(self, q: Tensor, v: Tensor, q_mask: Tensor, v_mask: Tensor) -> dict[str, Tensor]:
        """FIAN Eq. 9: ``Q^(1) = Encoder(Q, V)``, then ``V^(1) = Encoder(V, Q^(1))``."""
        q1, a_q1 = self.qv_query(q, v, v_mask)
        v1, a_v1 = self.qv_video(v, q1, q_mask)
        return {"Q1": q1, "V1": v1, "attn_Q1": a_q1, "attn_V1": a_v1}

    def video_query_branch(self, q: Tensor, v: Tensor, q_mask: Tensor, v_mask: Tensor) -> dict[str, Tensor]:
        """FIAN Eq. 10: ``V^(2) = Encoder(V, Q)``, then ``Q^(2) = Encoder(Q, V^(2))``."""
        v2, a_v2 = self.vq_video(v, q, q_mask)
        q2, a_q2 = self.vq_query(q, v2, v_mask)
        return {"V2": v2, "Q2": q2, "attn_V2": a_v2, "attn_Q2": a_q2}

    def forward(self, q: Tensor, v: Tensor, q_mask: Tensor, v_mask: Tensor) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        if self.branches in ("both", "qv"):
            out.update(self.query_video_branch(q, v, q_mask, v_mask))
        if self.branches in ("both", "vq"):
            out.update(self.video_query_branch(q, v, q_mask, v_mask))
        return out


class VideoEnhancedIntegration(nn.Module):
    """Fuse the sentence-aware videos with the video-aware queries (FIAN Eqs. 11-14).

    ``forward(videos, queries, q_mask) -> (M [B, T, n_b * d], r [B, T, n_b * d])`` where
    ``videos``/``queries`` are lists with one ``V^(k)`` ``[B, T, d]`` / ``Q^(k)`` ``[B, L, d]``
    per branch (``n_b`` branches: 2 in the paper).
    """

    def __init__(self, dim: int, num_clips: int, max_words: int, num_branches: int = 2):
        super().__init__()
        self.max_words = max_words
        self.proj = nn.ModuleList(nn.Linear(max_words, num_clips) for _ in range(num_branches))
        width = num_branches * dim
        self.gate = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)

    def project(self, q: Tensor, q_mask: Tensor, k: int) -> Tensor:
        """FIAN Eq. 11: ``Q_hat^(k) = W_k Q^(k) + b_k`` maps ``n_q`` word rows to ``n_v`` clip rows.

        Rows of padded words are zeroed and the word axis is zero-padded (or cut) to
        ``max_words``, so ``W_k in R^{n_v x n_q}`` sees a fixed ``n_q``; ``b_k in R^{n_v}``.
        ``q [B, L, d] -> [B, n_v, d]``.
        """
        q = q * q_mask[..., None].to(q.dtype)
        L = q.shape[1]
        if L < self.max_words:
            q = F.pad(q, (0, 0, 0, self.max_words - L))
        else:
            q = q[:, : self.max_words]
        lin = self.proj[k]
        return torch.einsum("vl,bld->bvd", lin.weight, q) + lin.bias[None, :, None]

    def forward(self, videos: Sequence[Tensor], queries: Sequence[Tensor], q_mask: Tensor) -> tuple[Tensor, Tensor]:
        """FIAN Eqs. 12-14: ``V_hat = [V^(1), V^(2)]``, ``Q_hat = [Q_hat^(1), Q_hat^(2)]`` (Eq. 12),
        ``r = sigmoid(Q_hat W^r + b^r)`` (Eq. 13), ``M = LayerNorm(V_hat + r * Q_hat)`` (Eq. 14)."""
        v_hat = torch.cat(list(videos), dim=-1)
        q_hat = torch.cat([self.project(q, q_mask, k) for k, q in enumerate(queries)], dim=-1)
        r = torch.sigmoid(self.gate(q_hat))
        return self.norm(v_hat + r * q_hat), r


class ContentOrientedLocalizer(nn.Module):
    """Content-oriented localisation (FIAN Sec. 3.4, no equation).

    A BiGRU over the fused sequence ``M`` gives ``M_hat``; for each window size ``w`` (with
    stride ``s``) one ``Conv1d(1, w, s)`` scores and one ``Conv1d(2, w, s)`` regresses the
    (start, end) offsets of every window ``[i s, i s + w)``: each candidate is judged on
    *all* the features inside it, not on one anchor point.

    ``forward(m [B, T, C], mask [B, T]) -> (logits [B, K], offsets [B, K, 2])``, candidates
    ordered as :func:`_candidate_windows` (by size, then start); offsets in clips.
    """

    def __init__(self, in_dim: int, hidden: int, sizes: Sequence[int], strides: Sequence[int]):
        super().__init__()
        self.gru = nn.GRU(in_dim, hidden // 2, batch_first=True, bidirectional=True)
        self.score = nn.ModuleList(nn.Conv1d(hidden, 1, w, s) for w, s in zip(sizes, strides))
        self.offset = nn.ModuleList(nn.Conv1d(hidden, 2, w, s) for w, s in zip(sizes, strides))

    def forward(self, m: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        f = _bigru(self.gru, m, mask).transpose(1, 2)  # [B, C, T]
        logits = torch.cat([conv(f)[:, 0] for conv in self.score], dim=1)  # a few window sizes
        offsets = torch.cat([conv(f) for conv in self.offset], dim=2).transpose(1, 2)
        return logits, offsets


# --------------------------------------------------------------------------- losses


def alignment_loss(logits: Tensor, iou: Tensor, valid: Tensor, tau: float = 0.55) -> Tensor:
    """FIAN Eqs. 15-16: IoU-soft-target cross-entropy averaged separately over positives and negatives.

    ``L_j = o_j log cs_j + (1 - o_j) log(1 - cs_j)`` with ``cs_j = sigmoid(logit_j)`` (Eq. 15);
    ``L_align = -(1/N_pos) sum_pos L_j - (1/N_neg) sum_neg L_j`` (Eq. 16), positives being
    valid candidates with ``o_j > tau``, counted over the whole batch. An empty group adds 0.
    Computed from logits (``binary_cross_entropy_with_logits``) for stability.
    """
    ce = F.binary_cross_entropy_with_logits(logits, iou.to(logits.dtype), reduction="none")  # = -L_j
    pos = valid & (iou > tau)
    neg = valid & ~(iou > tau)
    pos_term = (ce * pos).sum() / pos.sum().clamp(min=1)
    neg_term = (ce * neg).sum() / neg.sum().clamp(min=1)
    return pos_term + neg_term


def boundary_loss(offsets: Tensor, target: Tensor, positive: Tensor, beta: float = 1.0) -> Tensor:
    """FIAN Eq. 17: ``L_b = (1/N_pos) sum_pos R1(d_hat^s - d^s) + R1(d_hat^e - d^e)``, R1 = smooth L1.

    ``offsets``/``target`` ``[B, K, 2]`` (predicted / ground-truth start and end offsets),
    ``positive`` ``[B, K]`` bool; zero when there is no positive.
    """
    r1 = F.smooth_l1_loss(offsets, target.to(offsets.dtype), reduction="none", beta=beta).sum(-1)
    return (r1 * positive).sum() / positive.sum().clamp(min=1)


# --------------------------------------------------------------------------- model


class FIAN(GroundingModel):
    """Fine-grained Iterative Attention Network: the fully-supervised reference of the book.

    ``forward(batch)`` returns ``logits``/``scores`` ``[B, K]`` per candidate window,
    ``offsets`` ``[B, K, 2]`` (clips), ``valid`` ``[B, K]``, ``lengths`` ``[B]`` (real clips),
    the fused ``M``, the gate ``r`` and the attention maps of both branches
    (``attn_Q1``, ``attn_V1``, ``attn_V2``, ``attn_Q2``).
    """

    supervision: ClassVar[str] = "full"

    def __init__(self, config: FIANConfig):
        super().__init__()
        self.config = c = config
        ffn = c.ffn_dim or 4 * c.hidden
        self.query_encoder = QueryEncoder(c.vocab_size, c.word_dim, c.hidden, c.pretrained_embeddings,
                                          c.freeze_embeddings)
        self.video_encoder = VideoEncoder(c.video_dim, c.hidden, c.heads, c.dropout)
        self.iterative = SymmetricIterativeAttention(c.hidden, c.heads, ffn, c.attention, c.branches, c.dropout)
        nb = 2 if c.branches == "both" else 1
        self.integration = VideoEnhancedIntegration(c.hidden, c.num_clips, c.max_words, nb)
        self.sizes, self.strides = window_layout(c.num_clips, c.window_fractions, c.window_sizes, c.stride_fraction)
        self.localizer = ContentOrientedLocalizer(nb * c.hidden, c.hidden, self.sizes, self.strides)
        self.register_buffer("windows", _candidate_windows(c.num_clips, self.sizes, self.strides), persistent=False)

    @property
    def num_candidates(self) -> int:
        return self.windows.shape[0]

    def _inputs(self, batch: dict) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        video, words = batch["video"], batch["words"]
        if video.ndim != 3 or video.shape[1] != self.config.num_clips:
            raise ValueError(f"FIAN needs video [B, {self.config.num_clips}, D] (Eq. 11 fixes n_v); "
                             f"got {tuple(video.shape)}: resample to num_clips")
        v_mask = batch.get("video_mask")
        v_mask = torch.ones(video.shape[:2], dtype=torch.bool, device=video.device) if v_mask is None else v_mask
        w_mask = batch.get("words_mask")
        w_mask = words != 0 if w_mask is None else w_mask
        L = self.config.max_words  # cut to the fixed query length of Eq. 11
        return video, v_mask.bool(), words[:, :L], w_mask[:, :L].bool()

    def forward(self, batch: dict) -> dict[str, Tensor]:
        video, v_mask, words, w_mask = self._inputs(batch)
        q = self.query_encoder(words, w_mask)
        v = self.video_encoder(video, v_mask)
        it = self.iterative(q, v, w_mask, v_mask)
        videos = [it[k] for k in ("V1", "V2") if k in it]
        queries = [it[k] for k in ("Q1", "Q2") if k in it]
        m, r = self.integration(videos, queries, w_mask)
        logits, offsets = self.localizer(m, v_mask)
        lengths = v_mask.sum(1)
        valid = self.windows[None, :, 1] <= lengths[:, None]
        out = {"logits": logits, "scores": torch.sigmoid(logits), "offsets": offsets, "valid": valid,
               "lengths": lengths, "M": m, "r": r}
        out.update({k: val for k, val in it.items() if k.startswith("attn_")})
        return out

    def targets(self, batch: dict, out: dict) -> tuple[Tensor, Tensor]:
        """IoU ``o_j`` of every candidate with the ground truth ``[B, K]`` and the ground-truth
        offsets ``(delta^s, delta^e)`` ``[B, K, 2]`` in clips (uses the label ``moment``)."""
        gt = batch["moment"].to(out["logits"].dtype) * out["lengths"][:, None].to(out["logits"].dtype)
        win = self.windows.to(gt.dtype)
        iou = temporal_iou(win[None], gt[:, None, :])
        return iou, gt[:, None, :] - win[None]

    def loss(self, batch: dict, out: dict) -> tuple[Tensor, dict[str, Tensor]]:
        """FIAN Eq. 18: ``L = L_align + alpha * L_b`` (Eqs. 15-16 and 17)."""
        if "moment" not in batch:
            raise KeyError("FIAN is fully supervised: its loss needs batch['moment']")
        iou, delta = self.targets(batch, out)
        valid = out["valid"]
        l_align = alignment_loss(out["logits"], iou, valid, self.config.tau)
        positive = valid & (iou > self.config.tau)
        l_b = boundary_loss(out["offsets"], delta, positive)
        total = l_align + self.config.alpha * l_b
        return total, {"align": l_align.detach(), "boundary": l_b.detach(),
                       "positives": positive.sum(1).float().mean()}

    def regressed(self, out: dict) -> Tensor:
        """Candidates shifted by their offsets, normalised to [0, 1] ``[B, K, 2]``.

        Clamped to [0, 1]; where the shifted window is empty or reversed (``end <= start``)
        the unshifted window is kept.
        """
        n = out["lengths"][:, None, None].to(out["offsets"].dtype)
        base = self.windows[None].to(n.dtype) / n
        shifted = ((self.windows[None] + out["offsets"]) / n).clamp(0.0, 1.0)
        ok = (shifted[..., 1] > shifted[..., 0])[..., None]
        return torch.where(ok, shifted, base.expand_as(shifted))

    def candidates(self) -> Tensor:
        """The multi-window candidates ``[K, 2]`` normalised by ``num_clips``, before the offsets shift them."""
        return self.windows.float() / self.config.num_clips

    @torch.no_grad()
    def predict(self, batch: dict, top_k: int = 10) -> tuple[Tensor, Tensor]:
        """Regressed candidates ranked by confidence (before NMS): ``[B, K', 2]``, ``[B, K']``.

        Invalid candidates (reaching into padded clips) are ranked last with score -1.
        """
        out = self.forward(batch)
        moments = self.regressed(out)
        scores = torch.where(out["valid"], out["scores"], torch.full_like(out["scores"], -1.0))
        k = min(int(top_k), scores.shape[1])
        top, idx = scores.topk(k, dim=1)
        return moments.gather(1, idx[..., None].expand(-1, -1, 2)), top
