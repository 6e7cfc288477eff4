"""FSAN: Fine-grained Semantic Alignment Network (Wang, Zhou and Li, EMNLP 2021).

A *candidate-free* weakly-supervised grounder. Words and clips are encoded, made to
interact in a stack of cross-modal and inner-modal attention layers (the ICIM), and
compared token by clip in a Semantic Alignment Map ``P`` (``N_s x N_v`` cosines). Every
span ``[s, e]`` of clips is scored directly from ``P`` (mean alignment inside minus the
mean of each outside clip's weakest token), the best span gives the video-sentence
matching score, and that score is trained with a hinge loss against a sentence of
another video. Two span-weighted losses on ``P`` sharpen it temporally.

Where each numbered equation of the paper lives (one home each):

=========== ===================================================================
equation    home
=========== ===================================================================
Eqs. 1-2    :class:`MultiHeadAttention` (heads, scaled dot product, output map)
Eqs. 3-4    :class:`AttentionBlock` (MA + residual + LN, FFN + residual + LN);
            :class:`ICIMLayer` applies it across modalities, then within each
Eq. 5       :class:`SemanticAlignmentMap`
Eq. 6       :func:`matching_loss` (hinge); the shared-token mask of ``P^-`` is
            :func:`shared_token_mask`, the random negative :func:`negative_index`
Eq. 7       :func:`video_score`
Eq. 8       :func:`span_scores` (all spans by prefix sums); the rule inference ranks
            by is :meth:`FSAN.decode_scores` (``FSANConfig.decode``)
Eqs. 9-10   :func:`inner_loss`
Eqs. 11-12  :func:`outer_loss`
Eq. 13      :meth:`FSAN.loss`
=========== ===================================================================

Section 3.1 (encoders) has no number: the language side is
:class:`wsg.text.TransformerTextEncoder` (embeddings -> linear -> learnable positions
-> transformer encoder), the video side :func:`temporal_pool` + a linear projection
+ learnable positions (:meth:`FSAN.encode_video`).

Choices where the paper is ambiguous or wrong (tested in ``tests/test_fsan.py``):

* Eq. 1 scales by ``sqrt(d)``; we use the per-head width ``sqrt(d / m)`` as in the
  transformer the paper builds on (and :class:`torch.nn.MultiheadAttention`).
  Projections have no bias, as printed.
* Eqs. 3-4 update both modalities from the *same* inputs (in parallel), as printed.
* Eq. 8 with an empty outside (the whole-video span) divides 0 by 0; we set the
  outside term to 0 there. Padded words never enter the means or minima, padded
  clips are neither inside nor outside any span.
* Eq. 8 rewards a *negative* weakest response outside the span as much as a positive
  response inside it. Trained weakly through the hinge, the model then learns
  "anti-detectors" (a word strongly negative on its own event, so that the complement
  span scores high). With ``rectify=True`` (default) the *training* score (the hinge's
  ``S(V, S)`` and the span weights) reads the outside term as ``max(min_i P_ij, 0)``: a
  negative cosine counts as "unrelated" (0), not as evidence.
* Inference is a separate choice (``decode``). On a trained map the weakest word of
  almost every clip is negative, inside the event as well as outside, so under the floor
  the outside term is ~0 for every span and the best span is the single clip with the
  highest column mean (a mean over a longer span cannot exceed its best clip): the top-1
  collapses to one clip. Eq. 8 as printed keeps the *relative* weakest responses
  (an event clip's weakest word is less negative than a background clip's) and ranks
  whole events. ``decode="printed"`` (default) was chosen on the validation split, 3
  seeds, both synthetic presets (``scripts/fsan_experiments.py --study decode``,
  ``results/fsan_decode.csv``); ``decode="floored"`` ranks by the training score.
* Eq. 6's negative is a sentence of a *different* video drawn at random from the
  batch (``video_idx`` differs). Masking the shared tokens in ``P^-`` alone (as
  printed, ``mask_shared_tokens="negative"``) lets the model separate positives from
  negatives by the *text alone* (shared function words aligned with everything,
  distinctive words with nothing). By default (``"both"``) the shared tokens are
  masked in both maps for the hinge, which compares only the words that differ. A
  pair with no token left, or a batch with no other video, contributes no matching loss.
* Eq. 11 as printed is broken: ``P`` is a cosine in [-1, 1] but Eq. 11 takes
  ``log(min P)`` (undefined for the negative values an outside clip normally has), and
  where it is defined, minimising it *raises* the outside response it means to
  suppress. The weights ``SC`` of Eqs. 10/12 can be negative, which flips a term's
  direction and makes a log-loss unbounded below. Eq. 9 as printed,
  ``-(1/N_s) sum_i sigma(sum_{j in [s,e]} P_ij)``, is well defined and points the right
  way (descent raises ``P`` inside); its only weakness is that ``sigma`` of a *sum* of up
  to ``N_v`` cosines saturates on long spans. For symmetry with our Eq. 11 and to avoid
  that saturation we read it as a log-likelihood of the span *mean* (a choice, not a
  repair). Our reading maps ``P`` to a probability ``p = (P + 1) / 2`` and uses

  - inner (Eq. 9):  ``L^i_{s,e} = -(1/N_s) sum_i log(mean_{j in [s,e]} p_ij)``
  - outer (Eq. 11): ``L^o_{s,e} = -(1/|out|) sum_{j outside} log(1 - min_i p_ij)``
  - weights (Eqs. 10, 12): ``w = [SC - mean SC]_+ / n_spans`` (non-negative, zero for
    a flat map, gradient stopped: they are the model's current confidence, a
    pseudo-label); ``weighting="softmax"`` gives ``softmax(SC / tau)`` instead.
    A video's centred weights sum to ``mean_spans [SC - mean SC]_+`` (~0.02-0.15 over
    training), not 1, which scales the map losses down against the hinge: an effective
    ``lambda_2, lambda_3`` several times below the nominal 1/3. ``weight_norm="sum"``
    makes them sum to 1; it loses on validation (3 seeds, both presets, by far more than the
    seed spread: the map losses then swamp the hinge), so the default stays ``"spans"``
    (``results/fsan_decode.csv``).

  Minimising the inner loss raises ``P`` inside spans, minimising the outer loss
  lowers each outside clip's weakest token: the directions of the paper's text.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsg.models.base import GroundingModel
from wsg.text import TransformerTextEncoder, check_pretrained

__all__ = [
    "FSANConfig", "FSAN", "MultiHeadAttention", "AttentionBlock", "ICIMLayer", "SemanticAlignmentMap",
    "temporal_pool", "span_scores", "video_score", "negative_index", "shared_token_mask", "matching_loss",
    "span_weights", "inner_loss", "outer_loss", "to_probability", "spans_to_moments",
]

_EPS = 1e-6

#: The outside floor of FSAN Eq. 8 for each inference rule (``FSANConfig.decode``):
#: ``"printed"`` ranks by Eq. 8 as printed, ``"floored"`` by the training score (floor at 0).
DECODE_RULES: dict[str, float | None] = {"printed": None, "floored": 0.0}


@dataclass
class FSANConfig:
    """Hyper-parameters of FSAN.

    Attributes:
        vocab_size / video_dim / num_clips: from the data (``Benchmark.model_kwargs()``).
        word_dim: word-embedding width (the paper embeds tokens with GloVe, Sec. 3.1, width not
            stated; learned here by default).
        pretrained_embeddings / freeze_embeddings: optional GloVe matrix ``[vocab_size, word_dim]``
            for the language encoder's embedding table; build both with
            :func:`wsg.text.word_vector_config`.
        d_model: width ``d_s = d_v`` of both modalities (paper: 512).
        heads: attention heads ``m`` (not given in the paper; 8, as in the transformer).
        text_layers: depth of the language transformer encoder (not given; 1).
        layers: ICIM layers (paper: 6).
        ffn_dim: hidden width of the feed-forward layers (not given; ``4 * d_model``).
        align_dim: width ``d_i`` of the alignment projections ``W^s``, ``W^v`` (not given; ``d_model``).
        dropout: dropout rate (paper: 0.1).
        max_words: longest query (size of the text positional table).
        pool_clips: ``N_v``, the clips after temporal pooling (``None``: ``num_clips``).
        margin: ``delta`` of the hinge in Eq. 6 (not given; 1.0, on scores in [-2, 1]).
        lambdas: ``(lambda_1, lambda_2, lambda_3)`` of Eq. 13 (paper: 1/3 each).
        weighting: ``"centred"`` or ``"softmax"`` span weights for Eqs. 10/12 (:func:`span_weights`).
        weight_temperature: ``tau`` of ``weighting="softmax"``.
        rectify: in *training*, read the outside term of Eq. 8 as ``max(min_i P_ij, 0)`` (the
            hinge's video score and the span weights; see the module docstring).
        decode: the span score :meth:`FSAN.predict` ranks by: ``"printed"`` (Eq. 8 as printed, no
            floor; the default, chosen on the validation split) or ``"floored"`` (the training
            score, floor at 0).
        span_lengths: ``(shortest, longest)`` span, in pooled clips, that inference may return
            (ours; ``None``, the default, ranks every span as the paper does). Training is
            unchanged. :func:`wsg.recipes.model_config` reads it off the validation moments with
            the recipe's ``windows="validation"``.
        weight_norm: how the centred span weights of Eqs. 10/12 are normalised: ``"spans"``
            (divide by the number of spans, default) or ``"sum"`` (divide by their sum, so a
            video's weights sum to 1; see :func:`span_weights`).
        cross_attention / inner_attention: switch the two halves of an ICIM layer
            (the ablations of Table 4).
        mask_shared_tokens: ``"both"`` (default), ``"negative"`` (as printed) or ``"none"``: where the
            tokens shared by the two sentences are masked for the hinge of Eq. 6.
    """

    vocab_size: int
    video_dim: int
    num_clips: int
    word_dim: int = 300
    d_model: int = 512
    heads: int = 8
    text_layers: int = 1
    layers: int = 6
    ffn_dim: int | None = None
    align_dim: int | None = None
    dropout: float = 0.1
    max_words: int = 64
    pool_clips: int | None = None
    margin: float = 1.0
    lambdas: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    weighting: str = "centred"
    weight_temperature: float = 0.1
    cross_attention: bool = True
    inner_attention: bool = True
    mask_shared_tokens: str = "both"
    rectify: bool = True
    decode: str = "printed"
    span_lengths: tuple[int, int] | None = None
    weight_norm: str = "spans"
    pretrained_embeddings: Any = None
    freeze_embeddings: bool = False

    def __post_init__(self):
        check_pretrained(self.pretrained_embeddings, self.vocab_size, self.word_dim, "FSANConfig")
        for name in ("vocab_size", "video_dim", "num_clips", "word_dim", "d_model", "heads", "max_words"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"FSANConfig.{name} must be positive, got {getattr(self, name)}")
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        if self.layers < 0 or self.text_layers < 1:
            raise ValueError("layers must be >= 0 and text_layers >= 1")
        if self.layers > 0 and not (self.cross_attention or self.inner_attention):
            raise ValueError("an ICIM layer needs cross_attention or inner_attention (or set layers=0)")
        if len(self.lambdas) != 3 or any(l < 0 for l in self.lambdas):
            raise ValueError(f"lambdas must be three non-negative weights, got {self.lambdas}")
        if self.mask_shared_tokens not in ("none", "negative", "both"):
            raise ValueError(f"mask_shared_tokens must be 'none', 'negative' or 'both', got {self.mask_shared_tokens!r}")
        if self.weighting not in ("centred", "softmax"):
            raise ValueError(f"weighting must be 'centred' or 'softmax', got {self.weighting!r}")
        if self.decode not in DECODE_RULES:
            raise ValueError(f"decode must be one of {sorted(DECODE_RULES)}, got {self.decode!r}")
        if self.span_lengths is not None:
            lo, hi = (int(v) for v in self.span_lengths)
            if not 1 <= lo <= hi:
                raise ValueError(f"span_lengths must be (shortest, longest) with 1 <= shortest <= longest, "
                                 f"got {self.span_lengths}")
            self.span_lengths = (lo, hi)
        if self.weight_norm not in ("spans", "sum"):
            raise ValueError(f"weight_norm must be 'spans' or 'sum', got {self.weight_norm!r}")
        if self.weight_temperature <= 0:
            raise ValueError("weight_temperature must be positive")
        self.lambdas = tuple(float(l) for l in self.lambdas)

    @property
    def clips(self) -> int:
        """``N_v``: clips after temporal pooling."""
        return int(self.pool_clips or self.num_clips)


# --------------------------------------------------------------------------- encoders

def temporal_pool(video: Tensor, mask: Tensor, num_bins: int) -> tuple[Tensor, Tensor]:
    """Average the real clips of each video into ``num_bins`` contiguous bins (section 3.1).

    Clip ``j`` of a video with ``T_b`` real clips goes to bin ``floor(j * n_b / T_b)``
    with ``n_b = min(num_bins, T_b)``, so bins are never empty and padding stays at
    the end. With ``T_b == num_bins`` this is the identity.

    Returns:
        pooled ``[B, num_bins, D]`` (zeros on padding) and its mask ``[B, num_bins]``.
    """
    B, T, _ = video.shape
    lengths = mask.sum(1)  # [B]
    nb = lengths.clamp(max=num_bins)
    j = torch.arange(T, device=video.device)
    bins = torch.div(j[None, :] * nb[:, None], lengths.clamp(min=1)[:, None], rounding_mode="floor")  # [B, T]
    assign = (bins[:, :, None] == torch.arange(num_bins, device=video.device)) & mask[:, :, None]  # [B, T, n]
    assign = assign.to(video.dtype)
    counts = assign.sum(1)  # [B, n]
    pooled = torch.einsum("btn,btd->bnd", assign, video) / counts.clamp(min=1)[..., None]
    return pooled, counts > 0


class MultiHeadAttention(nn.Module):
    """Multi-head attention ``MA(X, Y)``: queries from ``X``, keys and values from ``Y``.

    FSAN Eqs. 1-2: per head ``A_i = softmax(Q_i K_i^T / sqrt(d_h)) V_i`` with
    ``Q_i = X W_i^Q``, ``K_i = Y W_i^K``, ``V_i = Y W_i^V``; the heads are concatenated
    and mapped by ``W^M``. Keys where ``y_mask`` is False get no weight. Our choice:
    the scale uses the head width ``d_h = d / m`` (the paper writes ``d``).
    """

    def __init__(self, d: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if d % heads:
            raise ValueError(f"d ({d}) must be divisible by heads ({heads})")
        self.heads, self.d_head = heads, d // heads
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.out = nn.Linear(d, d, bias=False)  # W^M
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, y: Tensor, y_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x [B, Nx, d]``, ``y [B, Ny, d]`` -> (output ``[B, Nx, d]``, weights ``[B, m, Nx, Ny]``)."""
        B, Nx, d = x.shape
        Ny = y.shape[1]
        q = self.q(x).view(B, Nx, self.heads, self.d_head)
        k = self.k(y).view(B, Ny, self.heads, self.d_head)
        v = self.v(y).view(B, Ny, self.heads, self.d_head)
        logits = torch.einsum("bxhc,byhc->bhxy", q, k) / math.sqrt(self.d_head)
        if y_mask is not None:
            logits = logits.masked_fill(~y_mask[:, None, None, :], float("-inf"))
        att = logits.softmax(-1)
        heads = torch.einsum("bhxy,byhc->bxhc", self.drop(att), v).reshape(B, Nx, d)  # A_1 || ... || A_m
        return self.out(heads), att


class AttentionBlock(nn.Module):
    """One attention sub-layer of the ICIM.

    FSAN Eqs. 3-4: ``X' = LN(MA(X, Y) + X)``, ``X'' = LN(FFN(X') + X')``. With
    ``Y`` the other modality it is cross-modal attention (Eq. 3 for the sentence,
    Eq. 4 for the video); with ``Y = X`` it is the inner-modal (self-) attention
    that the paper defines "of the same form". Dropout acts on the two residual
    branches, as in the transformer.
    """

    def __init__(self, d: int, heads: int, ffn_dim: int, dropout: float = 0.1):
        super().__init__()
        self.attn = MultiHeadAttention(d, heads, dropout)
        self.norm1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d))
        self.norm2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, y: Tensor, y_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        a, att = self.attn(x, y, y_mask)
        x1 = self.norm1(self.drop(a) + x)
        return self.norm2(self.drop(self.ffn(x1)) + x1), att


class ICIMLayer(nn.Module):
    """One layer of the Iterative Cross-modal Interaction Module (section 3.2).

    Cross-modal attention in both directions from the same inputs (words attend to
    clips, clips attend to words; :class:`AttentionBlock`), then inner-modal
    self-attention within each modality. Either half can be switched off for the
    Table 4 ablations.
    """

    def __init__(self, d: int, heads: int, ffn_dim: int, dropout: float = 0.1, cross: bool = True,
                 inner: bool = True):
        super().__init__()
        self.cross_s = AttentionBlock(d, heads, ffn_dim, dropout) if cross else None
        self.cross_v = AttentionBlock(d, heads, ffn_dim, dropout) if cross else None
        self.inner_s = AttentionBlock(d, heads, ffn_dim, dropout) if inner else None
        self.inner_v = AttentionBlock(d, heads, ffn_dim, dropout) if inner else None

    def forward(self, s: Tensor, v: Tensor, s_mask: Tensor, v_mask: Tensor) -> tuple[Tensor, Tensor, dict]:
        att = {}
        if self.cross_s is not None:
            s_new, att["s2v"] = self.cross_s(s, v, v_mask)  # words attend to clips
            v_new, att["v2s"] = self.cross_v(v, s, s_mask)  # clips attend to words
            s, v = s_new, v_new
        if self.inner_s is not None:
            s, _ = self.inner_s(s, s, s_mask)
            v, _ = self.inner_v(v, v, v_mask)
        return s, v, att


class SemanticAlignmentMap(nn.Module):
    """The token-by-clip Semantic Alignment Map.

    FSAN Eq. 5: ``P = Norm(W^s S'') . Norm(W^v V'')^T``, the cosine between each
    projected word and each projected clip, so ``P`` lies in [-1, 1].
    """

    def __init__(self, d_s: int, d_v: int, d_i: int):
        super().__init__()
        self.ws = nn.Linear(d_s, d_i, bias=False)
        self.wv = nn.Linear(d_v, d_i, bias=False)

    def forward(self, s: Tensor, v: Tensor) -> Tensor:
        """``s [B, N_s, d_s]``, ``v [B, N_v, d_v]`` -> ``P [B, N_s, N_v]``."""
        a = F.normalize(self.ws(s), dim=-1)
        b = F.normalize(self.wv(v), dim=-1)
        return torch.einsum("bik,bjk->bij", a, b)


# --------------------------------------------------------------------------- grounding

def span_scores(P: Tensor, token_mask: Tensor, clip_mask: Tensor,
                outside_floor: float | None = None) -> tuple[Tensor, Tensor]:
    """Score every span ``[s, e]`` of clips from the alignment map, in ``O(N_s N_v + N_v^2)``.

    FSAN Eq. 8: ``SC_{s,e} = mean_{i, j in [s,e]} P_ij - mean_{j outside [s,e]} min_i P_ij``.
    Both terms are per-clip quantities summed over a contiguous range, so with the
    column means ``c_j = mean_i P_ij``, the column minima ``m_j = min_i P_ij`` and
    their prefix sums ``C_k = sum_{j<k} c_j``, ``M_k = sum_{j<k} m_j``::

        inside(s, e)  = (C_{e+1} - C_s) / (e - s + 1)
        outside(s, e) = (M_N - M_{e+1} + M_s) / (N - (e - s + 1))

    Means and minima run over real tokens only; a video with ``N`` real clips has spans
    with ``0 <= s <= e < N``. The whole-video span has no outside: its outside term is 0.

    Args:
        P: ``[B, N_s, N_v]`` alignment map.
        token_mask: ``[B, N_s]`` True on tokens that count (at least one per row).
        clip_mask: ``[B, N_v]`` True on real clips (a prefix of the clips).
        outside_floor: if set, each outside clip's weakest response is floored there
            (``0.0`` is our ``rectify`` reading; ``None`` is Eq. 8 as printed).

    Returns:
        ``SC [B, N_v, N_v]`` (``-inf`` off the valid spans) and ``valid [B, N_v, N_v]``.
    """
    B, Ns, Nv = P.shape
    tm = token_mask[:, :, None]
    ntok = token_mask.sum(1).clamp(min=1).to(P.dtype)  # [B]
    col_mean = (P * tm).sum(1) / ntok[:, None]  # [B, N_v]
    col_min = P.masked_fill(~tm, float("inf")).amin(1)
    if outside_floor is not None:
        col_min = col_min.clamp(min=outside_floor)
    col_min = torch.where(clip_mask & token_mask.any(1, keepdim=True), col_min, torch.zeros_like(col_min))
    col_mean = col_mean * clip_mask
    zero = P.new_zeros(B, 1)
    C = torch.cat([zero, col_mean.cumsum(1)], 1)  # [B, N_v + 1]
    M = torch.cat([zero, col_min.cumsum(1)], 1)
    n = clip_mask.sum(1).to(P.dtype)  # real clips per video
    idx = torch.arange(Nv, device=P.device)
    s, e = idx[:, None], idx[None, :]  # [N_v, 1], [1, N_v]
    length = (e - s + 1).to(P.dtype)  # [N_v, N_v]
    inside = (C[:, 1:][:, None, :] - C[:, :-1][:, :, None]) / length.clamp(min=1)
    out_sum = M[:, -1][:, None, None] - (M[:, 1:][:, None, :] - M[:, :-1][:, :, None])
    out_len = n[:, None, None] - length
    outside = torch.where(out_len > 0, out_sum / out_len.clamp(min=1), torch.zeros_like(out_sum))
    valid = (s <= e) & (e < clip_mask.sum(1)[:, None, None])
    SC = (inside - outside).masked_fill(~valid, float("-inf"))
    return SC, valid


def video_score(SC: Tensor) -> Tensor:
    """FSAN Eq. 7: the video-sentence matching score ``S(V, S) = max_{s,e} SC_{s,e}`` -> ``[B]``."""
    return SC.flatten(1).amax(1)


def negative_index(video_idx: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """For each query, a random query of the batch that describes a *different* video.

    Returns ``(index [B], has_negative [B])``; where no other video is in the batch,
    ``has_negative`` is False (and ``index`` points at the query itself).
    """
    B = video_idx.shape[0]
    other = video_idx[:, None] != video_idx[None, :]  # [B, B]
    noise = torch.rand(B, B, generator=generator).to(video_idx.device)  # CPU draws: reproducible anywhere
    noise = noise.masked_fill(~other, -1.0)
    idx = noise.argmax(1)
    has = other.any(1)
    return torch.where(has, idx, torch.arange(B, device=video_idx.device)), has


def shared_token_mask(words: Tensor, words_mask: Tensor, neg_words: Tensor, neg_mask: Tensor) -> Tensor:
    """``[B, L_neg]``: True on the real tokens of the negative sentence that also occur in
    the positive one (they are masked out of ``P^-`` in the matching loss, section 3.3)."""
    same = (neg_words[:, :, None] == words[:, None, :]) & words_mask[:, None, :]
    return same.any(-1) & neg_mask


def matching_loss(pos: Tensor, neg: Tensor, margin: float, has_negative: Tensor | None = None) -> Tensor:
    """FSAN Eq. 6: ``L^t = max(0, delta - S(V, S) + S(V, S^-))``, averaged over the pairs
    that have a negative (0 when none has)."""
    hinge = (margin - pos + neg).clamp(min=0)
    if has_negative is None:
        return hinge.mean()
    w = has_negative.to(hinge.dtype)
    hinge = torch.where(has_negative, hinge, torch.zeros_like(hinge))  # a -inf score never leaks in
    return (hinge * w).sum() / w.sum().clamp(min=1)


def to_probability(P: Tensor) -> Tensor:
    """Our reading of ``P`` as an alignment probability: ``p = (P + 1) / 2`` in [0, 1]."""
    return (P + 1) / 2


def span_weights(SC: Tensor, valid: Tensor, mode: str = "centred", temperature: float = 0.1,
                 norm: str = "spans") -> Tensor:
    """Non-negative weights of the spans in Eqs. 10 and 12 (our reading), gradient stopped.

    ``"centred"`` (default): ``w = [SC - mean SC]_+ / Z``, the printed weights ``SC`` made
    non-negative by subtracting their mean over the valid spans and rectifying. A flat
    ``SC`` (an untrained map) gives zero weight, a confident one weights its best spans:
    the behaviour the paper describes. ``norm`` sets ``Z``: ``"spans"`` (default) the
    number of valid spans, a mean over spans; a video's weights then sum to
    ``mean_spans [SC - mean SC]_+``, typically ~0.1 on a trained map, which scales the map
    losses of Eq. 13 down against the hinge (an effective change of ``lambda_2, lambda_3``).
    ``"sum"``: ``Z = sum_spans [SC - mean SC]_+``, so a video's weights sum to 1 (0 for a
    flat map), the scale of the softmax weights.
    ``"softmax"``: ``w = softmax(SC / tau)`` over the valid spans (sums to 1; ``norm`` unused).
    """
    SC = SC.detach()
    if mode == "softmax":
        logits = (SC / temperature).masked_fill(~valid, float("-inf"))
        return logits.flatten(1).softmax(1).view_as(SC)
    if mode != "centred":
        raise ValueError(f"weighting must be 'centred' or 'softmax', got {mode!r}")
    if norm not in ("spans", "sum"):
        raise ValueError(f"norm must be 'spans' or 'sum', got {norm!r}")
    n = valid.flatten(1).sum(1).clamp(min=1).to(SC.dtype)[:, None, None]
    filled = torch.where(valid, SC, torch.zeros_like(SC))
    mean = filled.flatten(1).sum(1)[:, None, None] / n
    w = torch.where(valid, (filled - mean).clamp(min=0), torch.zeros_like(SC))
    if norm == "sum":
        z = w.flatten(1).sum(1)[:, None, None]
        return torch.where(z > 0, w / z.clamp(min=torch.finfo(SC.dtype).tiny), torch.zeros_like(w))
    return w / n


def inner_loss(P: Tensor, token_mask: Tensor, weights: Tensor) -> Tensor:
    """Inner-sample loss: promote the alignment inside the spans, weighted by their confidence.

    FSAN Eqs. 9-10 in our reading: ``L^i_{s,e} = -(1/N_s) sum_i log(mean_{j in [s,e]} p_ij)``
    with ``p = (P + 1) / 2``, and ``L^i = sum_{s,e} w_{s,e} L^i_{s,e}`` (mean over the
    batch). The per-token span means come from prefix sums over clips.

    Args:
        P: ``[B, N_s, N_v]``; token_mask: ``[B, N_s]``; weights: ``[B, N_v, N_v]`` (0 off
            the valid spans, e.g. :func:`span_weights`).
    """
    p = to_probability(P)
    B, Ns, Nv = p.shape
    cum = torch.cat([p.new_zeros(B, Ns, 1), p.cumsum(2)], 2)  # [B, N_s, N_v + 1]
    idx = torch.arange(Nv, device=P.device)
    length = (idx[None, :] - idx[:, None] + 1).clamp(min=1).to(p.dtype)  # [N_v(s), N_v(e)]
    mean = (cum[:, :, None, 1:] - cum[:, :, :-1, None]) / length  # [B, N_s, s, e]
    nll = -torch.log(mean.clamp(min=_EPS))
    tm = token_mask.to(p.dtype)
    per_span = (nll * tm[:, :, None, None]).sum(1) / tm.sum(1).clamp(min=1)[:, None, None]  # [B, s, e]
    per_span = torch.where(weights > 0, per_span, torch.zeros_like(per_span))
    return (weights * per_span).flatten(1).sum(1).mean()


def outer_loss(P: Tensor, token_mask: Tensor, clip_mask: Tensor, weights: Tensor) -> Tensor:
    """Outer-sample loss: suppress the weakest token response of the clips outside the spans.

    FSAN Eqs. 11-12 in our reading: ``L^o_{s,e} = -(1/|out|) sum_{j outside} log(1 - min_i p_ij)``
    with ``p = (P + 1) / 2`` (0 for the whole-video span, which has no outside), and
    ``L^o = sum_{s,e} w_{s,e} L^o_{s,e}`` (mean over the batch), by prefix sums over clips.
    """
    p = to_probability(P)
    B, Ns, Nv = p.shape
    m = p.masked_fill(~token_mask[:, :, None], float("inf")).amin(1)  # [B, N_v] weakest token per clip
    ell = -torch.log((1 - m).clamp(min=_EPS))
    ell = torch.where(clip_mask, ell, torch.zeros_like(ell))
    L = torch.cat([p.new_zeros(B, 1), ell.cumsum(1)], 1)  # [B, N_v + 1]
    idx = torch.arange(Nv, device=P.device)
    length = (idx[None, :] - idx[:, None] + 1).to(p.dtype)
    out_sum = L[:, -1][:, None, None] - (L[:, 1:][:, None, :] - L[:, :-1][:, :, None])
    out_len = clip_mask.sum(1).to(p.dtype)[:, None, None] - length
    per_span = torch.where(out_len > 0, out_sum / out_len.clamp(min=1), torch.zeros_like(out_sum))
    per_span = torch.where(weights > 0, per_span, torch.zeros_like(per_span))
    return (weights * per_span).flatten(1).sum(1).mean()


def spans_to_moments(flat_index: Tensor, num_clips: int, real_clips: Tensor) -> Tensor:
    """Flat span indices ``s * N_v + e`` ``[B, K]`` -> normalised moments ``[B, K, 2]``:
    ``[s / n, (e + 1) / n]`` with ``n`` the video's real clip count."""
    s = torch.div(flat_index, num_clips, rounding_mode="floor")
    e = flat_index % num_clips
    n = real_clips.to(torch.float32)[:, None]
    return torch.stack([s / n, (e + 1) / n], -1).clamp(0, 1)


# --------------------------------------------------------------------------- the model

class FSAN(GroundingModel):
    """Fine-grained Semantic Alignment Network (weakly supervised).

    ``forward(batch)`` returns the alignment map ``P``, the span scores ``SC``, the
    matching score and (in training, or with ``negatives=True``) the same for a
    sentence of another video. ``loss`` is Eq. 13; ``predict`` ranks all spans by ``SC``.
    """

    supervision = "weak"

    def __init__(self, config: FSANConfig):
        super().__init__()
        self.config = c = config
        d = c.d_model
        ffn = c.ffn_dim or 4 * d
        self.text = TransformerTextEncoder(c.vocab_size, c.word_dim, d, c.heads, c.text_layers, c.max_words,
                                           c.dropout, pretrained=c.pretrained_embeddings,
                                           freeze=c.freeze_embeddings)
        self.video_proj = nn.Linear(c.video_dim, d)
        self.video_pos = nn.Parameter(torch.zeros(c.clips, d))
        nn.init.normal_(self.video_pos, std=0.02)
        self.drop = nn.Dropout(c.dropout)
        self.icim = nn.ModuleList(ICIMLayer(d, c.heads, ffn, c.dropout, c.cross_attention, c.inner_attention)
                                  for _ in range(c.layers))
        self.sap = SemanticAlignmentMap(d, d, c.align_dim or d)

    # ------------------------------------------------------------- encoders
    def encode_text(self, words: Tensor, words_mask: Tensor) -> Tensor:
        """Context-aware token features ``S [B, N_s, d]`` (section 3.1)."""
        states, _ = self.text(words, words_mask)
        return states

    def encode_video(self, video: Tensor, video_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Temporal pooling to ``N_v`` clips, projection to ``d``, learnable positions (3.1-3.2)."""
        if video.shape[-1] != self.config.video_dim:
            raise ValueError(f"video features have width {video.shape[-1]}, expected {self.config.video_dim}")
        n = self.config.clips
        if video.shape[1] != n or not bool(video_mask.all()):
            video, video_mask = temporal_pool(video, video_mask, n)
        v = self.video_proj(video) + self.video_pos[: video.shape[1]]
        return self.drop(v) * video_mask[..., None], video_mask

    def interact(self, s: Tensor, v: Tensor, s_mask: Tensor, v_mask: Tensor) -> tuple[Tensor, Tensor, dict]:
        """The ICIM stack; returns ``S''``, ``V''`` and the last layer's cross-modal attention."""
        att: dict = {}
        for layer in self.icim:
            s, v, a = layer(s, v, s_mask, v_mask)
            att = a or att
        return s, v, att

    # ------------------------------------------------------------- interface
    def forward(self, batch: dict, negatives: bool | None = None) -> dict:
        """Alignment maps and span scores (see the class docstring for the keys).

        ``negatives`` (default: ``self.training``) also scores each video against a
        sentence of another video of the batch (Eq. 6's ``S^-``), in the same pass.
        """
        words, words_mask = batch["words"], batch["words_mask"].bool()
        if words.shape[1] > self.config.max_words:
            raise ValueError(f"queries of {words.shape[1]} tokens exceed max_words={self.config.max_words}")
        s = self.encode_text(words, words_mask)
        v, v_mask = self.encode_video(batch["video"], batch["video_mask"].bool())
        B = s.shape[0]
        negatives = self.training if negatives is None else negatives
        s_mask = words_mask
        if negatives:
            neg, has_neg = negative_index(batch["video_idx"].to(s.device))
            s = torch.cat([s, s[neg]])
            s_mask = torch.cat([words_mask, words_mask[neg]])
            v, v_mask = torch.cat([v, v]), torch.cat([v_mask, v_mask])
        s2, v2, att = self.interact(s, v, s_mask, v_mask)
        P_all = self.sap(s2, v2)
        P_all = P_all * s_mask[:, :, None] * v_mask[:, None, :]
        P, clip_mask = P_all[:B], v_mask[:B]
        floor = 0.0 if self.config.rectify else None
        SC, valid = span_scores(P, words_mask, clip_mask, floor)
        out = {"P": P, "SC": SC, "valid": valid, "score": video_score(SC), "token_mask": words_mask,
               "clip_mask": clip_mask}
        if att:
            out["attention"] = att["s2v"][:B].mean(1)  # words -> clips, mean over heads [B, N_s, N_v]
        if negatives:
            neg_mask, pos_mask = words_mask[neg], words_mask
            mode = self.config.mask_shared_tokens
            if mode in ("negative", "both"):
                neg_mask = neg_mask & ~shared_token_mask(words, words_mask, words[neg], neg_mask)
            if mode == "both":
                pos_mask = pos_mask & ~shared_token_mask(words[neg], words_mask[neg], words, words_mask)
            has_neg = has_neg & neg_mask.any(1) & pos_mask.any(1)
            P_neg = P_all[B:]
            SC_neg, _ = span_scores(P_neg, neg_mask, clip_mask, floor)
            SC_pos = SC if mode != "both" else span_scores(P, pos_mask, clip_mask, floor)[0]
            out.update({"P_neg": P_neg, "SC_neg": SC_neg, "score_neg": video_score(SC_neg),
                        "score_pos": video_score(SC_pos), "neg_index": neg, "has_negative": has_neg,
                        "neg_token_mask": neg_mask, "pos_token_mask": pos_mask})
        return out

    def loss(self, batch: dict, out: dict) -> tuple[Tensor, dict[str, Tensor]]:
        """FSAN Eq. 13: ``L = lambda_1 L^t + lambda_2 L^i + lambda_3 L^o``.

        Recomputes the forward pass with negatives when ``out`` has none.
        """
        if "score_neg" not in out:
            out = self(batch, negatives=True)
        c = self.config
        l_t = matching_loss(out["score_pos"], out["score_neg"], c.margin, out["has_negative"])
        w = span_weights(out["SC"], out["valid"], c.weighting, c.weight_temperature, c.weight_norm)
        l_i = inner_loss(out["P"], out["token_mask"], w)
        l_o = outer_loss(out["P"], out["token_mask"], out["clip_mask"], w)
        total = c.lambdas[0] * l_t + c.lambdas[1] * l_i + c.lambdas[2] * l_o
        return total, {"matching": l_t.detach(), "inner": l_i.detach(), "outer": l_o.detach()}

    def decode_scores(self, out: dict, rule: str | None = None) -> Tensor:
        """The span scores that inference ranks, ``[B, N_v, N_v]`` (``-inf`` off the valid spans).

        FSAN Eq. 8 on the map of ``out`` with the outside floor of ``rule`` (default
        ``config.decode``; see :data:`DECODE_RULES`), spans outside ``config.span_lengths``
        (when set) at ``-inf``. Training keeps its own floor (``config.rectify``) in ``out["SC"]``.
        """
        rule = self.config.decode if rule is None else rule
        if rule not in DECODE_RULES:
            raise ValueError(f"decode must be one of {sorted(DECODE_RULES)}, got {rule!r}")
        SC = span_scores(out["P"], out["token_mask"], out["clip_mask"], DECODE_RULES[rule])[0]
        if self.config.span_lengths is None:
            return SC
        idx = torch.arange(SC.shape[-1], device=SC.device)
        length = (idx[None, :] - idx[:, None] + 1)[None]  # [1, N_v, N_v]: e - s + 1
        lo, hi = self.config.span_lengths
        lo = out["clip_mask"].sum(1).clamp(max=lo)[:, None, None]  # a video shorter than lo: its whole length
        return SC.masked_fill((length < lo) | (length > hi), float("-inf"))

    def candidates(self) -> Tensor:
        """All spans of a video of ``num_clips`` clips (of ``config.span_lengths`` when set) as
        normalised moments ``[K, 2]``.

        ``[s / n, (e + 1) / n]`` for ``0 <= s <= e < n`` in the order of the flat index
        ``s * n + e`` (``n`` = clips after pooling): exactly the set :meth:`predict` ranks.
        FSAN has no boundary regression.
        """
        c = self.config
        n = min(c.clips, c.num_clips)
        s, e = torch.triu_indices(n, n)
        if c.span_lengths is not None:
            keep = (e - s + 1 >= c.span_lengths[0]) & (e - s + 1 <= c.span_lengths[1])
            s, e = s[keep], e[keep]
        return spans_to_moments((s * n + e)[None], n, torch.tensor([n]))[0]

    @torch.no_grad()
    def predict(self, batch: dict, top_k: int = 10) -> tuple[Tensor, Tensor]:
        """All spans ranked by the decode score (best first, before NMS): moments ``[B, K, 2]``,
        scores ``[B, K]``. The score is FSAN Eq. 8 with the outside rule ``config.decode``
        (:meth:`decode_scores`): the paper ranks by ``SC`` ("the moment with the highest
        score ``SC_{s,e}`` is selected")."""
        out = self(batch, negatives=False)
        SC = self.decode_scores(out)
        B, N, _ = SC.shape
        real = out["clip_mask"].sum(1)
        k = int(min(top_k, int(torch.isfinite(SC).flatten(1).sum(1).min())))
        scores, idx = SC.flatten(1).topk(k, dim=1)
        return spans_to_moments(idx, N, real), scores
