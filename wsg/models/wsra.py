"""WSRA: weak supervision and referring attention (Fang et al., 2020).

A query ``t`` and a video's snippets ``v_1..v_T`` are scored by a small cross-modal
network ``phi(v, t)``; a softmax of those scores over the snippets is the *referring
attention* ``alpha``, which splits the video into a foreground feature ``v_f`` and a
background feature ``v_b``. Four losses train it with video-level sentences only:
a fore/background loss (foreground must match the query better than background), a
video-to-text loss (VAS: the foreground must match its own query better than other
queries of the batch, sampled by top/last-K), an instance-level VAS (the same per
snippet, scaled by referring weights) and a cross-video loss (foregrounds of two
videos whose queries say the same thing should look alike). At test time candidate
windows are ranked by the attention they contain.

Where each numbered equation of the paper lives (one home each):

========================= ==========================================================
WSRA Eq. 1                :func:`fore_background` (``v_f``, ``v_b``)
WSRA Eq. 2                :func:`referring_attention` (``alpha``; the scorer ``phi``
                          itself is :class:`CrossModalScorer`)
WSRA Eq. 3                :func:`video_level_loss` (``L_bg`` = ``L_video``)
WSRA Eq. 4                :func:`referring_weights` (``beta``, softmax over queries)
WSRA Eq. 5                :func:`vas_loss`; its indicator ``1(t^i, t^j)`` is
                          :func:`top_last_k_mask` (paper Sec. 3.2.1)
WSRA Eq. 6                :func:`instance_vas_loss`
WSRA Eqs. 7-8             :func:`cross_video_pooling` (``u_f``; ``u_b`` by complement weights)
WSRA Eq. 9                :func:`cross_video_loss` (direction corrected, see below)
WSRA Eq. 10               :func:`pseudo_positive_gate` (``lambda``, threshold ``tau``)
WSRA Eq. 11               :meth:`WSRA.loss` (weighted sum of the four losses)
========================= ==========================================================

Choices where the paper is ambiguous or wrong (each is a config field, tested):

* **The scorer.** ``phi(v, t) = sigmoid(FC([v; t]))``. A *single* linear layer on a
  concatenation is ``w_v.v + w_t.t + b``: the query only shifts every snippet's
  logit by the same amount, so the ranking of snippets (and the softmax over them, up
  to the sigmoid's slope) cannot depend on the query. We read "FC" as a two-layer
  perceptron (``phi_hidden`` units, ReLU); ``phi_hidden=0`` gives the literal single
  layer (a test shows it is query-blind in its ranking).
* **Sharpness of Eq. 2.** A softmax of sigmoid outputs in [0, 1] is at most e : 1
  sharp. ``attention="sigmoid"`` (printed) softmaxes ``phi / temperature``;
  ``attention="logit"`` softmaxes the pre-sigmoid logit ``/ temperature``. Defaults
  are the printed form (``sigmoid``, temperature 1).
* **psi** in Eqs. 5-6 is undefined; we use ``phi``.
* **Sums vs means.** Eq. 3 is implemented as printed (log of 1 + a sum over the batch).
  Eq. 5 and Eq. 6 sum over all selected (query, negative query) pairs as printed, but
  we divide by the number of pairs so the loss does not grow with the batch; Eq. 6
  keeps its sum over snippets. Eq. 9 is averaged over the gated pairs.
* **Negatives.** Every other query of the batch is a candidate negative of query ``i``
  except queries of the same video (same ``video_idx``), which may describe the same
  video. Top/last-K then drops, per anchor, the ``K`` most and ``K'`` least similar
  candidates; the paper's K = 3, K' = 2 are for a batch of 42, and with ``k_batch=42``
  we scale them to ``round(K * n / 41)`` where ``n`` is the anchor's number of
  candidates (``k_batch=None``: use K, K' as given).
* **Text similarity** for sampling (Eq. 5) and gating (Eq. 10). The paper uses one
  *frozen* feature (averaged GPT-2 states) for both. Our sentence encoder is learned
  from scratch, so its vectors mean nothing at the first step, and they are
  anisotropic: on the Charades-like synthetic data a cosine above 0.9 holds for most
  pairs of a batch, few of which describe the same event. The default is therefore
  the closest frozen, parameter-free representation: bag-of-words counts of the query
  (``text_similarity="bow"``), whose cosine above 0.9 picks near-paraphrases only.
  ``"sentence"`` uses the detached GRU sentence vectors ``t`` instead.
* **Eq. 4 in training.** Eq. 6 speaks of "referring weights" of the positive and the
  negative query at a snippet, and its text says they come from Eq. 2.
  ``ins_weights="alpha"`` (default, as printed) uses Eq. 2's ``alpha``; ``"beta"``
  uses Eq. 4's ``beta`` (softmax over the batch's queries at that snippet). With
  ``"alpha"``, ``beta`` is computed and returned for inspection only.
* **Eq. 3 is off by default (``w_bg = 0``; the paper's 0.1 is one argument away).**
  Chosen on the validation split, three seeds, both synthetic presets
  (``scripts/wsra_words_gain.py``, ``results/wsra_words_gain.csv``). With the paper's
  DiDeMo weights (Sec. 4.1, used here on every dataset), the fore/background loss drove the attention *off* the events for
  every query on the ActivityNet-like preset (64 clips, long videos) in 2 of 3 seeds:
  the mean attention density on event snippets fell below uniform within two epochs,
  R@1 fell below the untrained model's and true- and swapped-query R@1 were equal.
  Training without Eq. 3 grounded in 3 of 3 seeds there; a short diagnostic run that
  dropped Eq. 5 instead still failed. On the Charades-like preset the two settings tie
  on validation.
* **Eq. 6 never clips under the printed Eq. 2.** ``alpha_t <= e / (e + T - 1)`` (0.08 at
  T = 32) and ``phi < 1``, so ``alpha * phi < m = 0.2``: every hinge argument is positive
  and the loss is exactly ``T m + sum alpha_- phi_- - sum alpha_+ phi_+`` per pair. It
  can clip only under a sharper attention (``temperature < 1`` or ``"logit"``).
* **Eq. 6's negative** "t_-" is one sampled negative; we use *every* negative kept by
  top/last-K and average (lower variance, no randomness).
* **Eq. 9's direction.** As printed, ``max(0, m + cos(u_f, v_f) - cos(u_b, v_f))`` is
  minimised by pushing ``u_f`` *away* from ``v_f``, the opposite of the text ("making
  their foreground representations closer"). ``crov_direction="intended"`` (default)
  swaps the two cosines; ``"printed"`` keeps the paper's form for the demonstration.
* **u_b** is undefined; by analogy with Eq. 1 it uses complement weights
  ``(1 - gamma_i) / (M - 1)``.
* **Video embedding.** The paper scores pretrained features directly; we embed clip
  features with a linear layer + ReLU (optionally a temporal convolution of
  ``context_kernel`` clips) and a LayerNorm (``norm=True``), so that the cross-video
  loss shapes a learned space. Without the LayerNorm, training was bistable in our
  runs: depending on the seed or the data order, the scorer sometimes learned to
  score strongly-activated (event) snippets *low* for every query, because the many
  negative queries push them down harder than the one positive pushes them up, and
  grounding never took off. Equalising the snippet norms removed that failure
  (4 of 4 seeds instead of 2-3 of 4).
* **Inference.** Candidates are duration-proportional windows (20/30/40/50 % of the
  video, 80 % overlap) or the 21 DiDeMo moments (``candidates="didemo"``). A window is
  scored by the mean attention density inside it minus the mean outside it
  (``window_score="contrast"``, default); ``"inside"`` uses the mean inside only,
  which ties every window that lies within a high-attention region and so favours
  short windows. A window with no outside (the whole video) scores a contrast of 0
  (see :func:`window_scores`).
* **DiDeMo is not scored as the paper scores it.** The paper's DiDeMo "snippets" are
  the 21 proposals themselves, each a feature (the proposal's pooled feature
  concatenated with the video's global one), and it keeps the top-5 proposals by their
  own attention weight. We keep one model for every dataset: Eq. 2 attends over the
  resampled clips, and each of the 21 moments is ranked by the same window contrast
  as any other window (:meth:`WSRA.rank_didemo`). No proposal feature is built.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsg.models.base import GroundingModel
from wsg.proposals import didemo_candidates, proportional_windows
from wsg.text import GRUEncoder

__all__ = [
    "WSRAConfig",
    "WSRA",
    "CrossModalScorer",
    "referring_attention",
    "fore_background",
    "video_level_loss",
    "referring_weights",
    "top_last_k_mask",
    "vas_loss",
    "instance_vas_loss",
    "cross_video_pooling",
    "pseudo_positive_gate",
    "cross_video_loss",
    "window_scores",
    "didemo_windows",
    "text_similarity",
]

_NEG = -1e9  # a finite "minus infinity" for masked logits (keeps softmax NaN-free)
_NO_OUTSIDE = 1e-6  # a window leaving less than this (normalised) time outside has no outside


@dataclass
class WSRAConfig:
    """Settings of :class:`WSRA`.

    Data fields come first (``bench.model_kwargs()``); paper values are defaults where
    the paper gives them (loss weights, for DiDeMo; ``tau``, K and K', windows), our documented
    choices elsewhere (widths, margins, scale).

    Attributes:
        vocab_size / video_dim / num_clips: from the data.
        word_dim / text_hidden / bidirectional: the GRU sentence encoder (``t``).
        hidden: width of the embedded snippets ``v_t``.
        context_kernel: temporal Conv1d width over snippets (1 = none).
        norm: LayerNorm on the snippet embeddings (our addition; see the module docstring).
        phi_hidden: hidden units of the scorer ``phi`` (0 = literal single FC layer).
        dropout: on the embedded snippets during training (default 0: dropout noise on
            the snippets made training unstable across seeds in our runs).
        attention / temperature: Eq. 2's softmax input (``"sigmoid"`` = printed, or
            ``"logit"``) and its temperature (1 = printed).
        margin: ``m`` of Eqs. 3, 5, 6 and 9 (the paper uses one symbol; no value given).
        scale: ``gamma`` of Eq. 3 (not given in the paper).
        top_k / last_k / k_batch: top/last-K sampling (paper: 3, 2 at batch 42).
        tau: Eq. 10's threshold on query cosine (paper: 0.9).
        crov_temperature: temperature of Eq. 8's softmax over cosines (1 = printed).
        crov_direction: ``"intended"`` (pull ``u_f`` to ``v_f``) or ``"printed"``.
        text_similarity: ``"bow"`` (bag-of-words counts) or ``"sentence"`` (detached GRU vectors).
        ins_weights: ``"alpha"`` (Eq. 2, printed) or ``"beta"`` (Eq. 4) in Eq. 6.
        w_bg / w_crov / w_vas / w_ins: Eq. 11's alpha, beta, gamma, delta. The paper gives values
            for DiDeMo only (Sec. 4.1: delta = 1 and "alpha = lambda = gamma = 0.1", its lambda
            being Eq. 11's beta); we use them on every dataset. Default ``w_bg = 0``: chosen on
            validation (module docstring, "Eq. 3 is off by default"); ``w_bg=0.1`` restores them.
        candidates: ``"proportional"`` windows or the 21 ``"didemo"`` moments.
        window_fractions / window_overlap: the proportional windows (paper: 20-50 %, 80 %).
        window_score: ``"contrast"`` (inside minus outside) or ``"inside"``.
        didemo_chunk / didemo_max_seconds: DiDeMo chunks (5 s, videos cut at 30 s).
        pretrained_embeddings / freeze_embeddings: optional GloVe matrix for the GRU.
    """

    vocab_size: int
    video_dim: int
    num_clips: int
    word_dim: int = 300
    text_hidden: int = 256
    bidirectional: bool = False
    hidden: int = 256
    context_kernel: int = 1
    norm: bool = True
    phi_hidden: int = 256
    dropout: float = 0.0
    attention: str = "sigmoid"
    temperature: float = 1.0
    margin: float = 0.2
    scale: float = 10.0
    top_k: int = 3
    last_k: int = 2
    k_batch: int | None = 42
    tau: float = 0.9
    crov_temperature: float = 1.0
    crov_direction: str = "intended"
    text_similarity: str = "bow"
    ins_weights: str = "alpha"
    w_bg: float = 0.0
    w_crov: float = 0.1
    w_vas: float = 0.1
    w_ins: float = 1.0
    candidates: str = "proportional"
    window_fractions: Sequence[float] = (0.2, 0.3, 0.4, 0.5)
    window_overlap: float = 0.8
    window_score: str = "contrast"
    didemo_chunk: float = 5.0
    didemo_max_seconds: float = 30.0
    pretrained_embeddings: Any = None
    freeze_embeddings: bool = False

    def __post_init__(self):
        choices = {"attention": ("sigmoid", "logit"), "crov_direction": ("intended", "printed"),
                   "text_similarity": ("sentence", "bow"), "ins_weights": ("alpha", "beta"),
                   "candidates": ("proportional", "didemo"), "window_score": ("contrast", "inside")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"WSRAConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("temperature", "crov_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"WSRAConfig.{name} must be positive, got {getattr(self, name)}")
        if self.top_k < 0 or self.last_k < 0:
            raise ValueError("top_k and last_k must be >= 0")
        if self.context_kernel < 1 or self.context_kernel % 2 == 0:
            raise ValueError(f"context_kernel must be a positive odd number, got {self.context_kernel}")


# --------------------------------------------------------------------------- modules


class CrossModalScorer(nn.Module):
    """The scorer ``phi(v, t) = sigmoid(FC([v; t]))`` of WSRA Sec. 3.1.

    ``FC`` is ``Linear(d_v + d_t, h) -> ReLU -> Linear(h, 1)`` (``hidden=h``), or the
    literal single ``Linear(d_v + d_t, 1)`` when ``hidden == 0``. The first layer is
    applied to ``v`` and ``t`` separately (``W [v; t] = W_v v + W_t t``) so that all
    (snippet, query) pairs of a batch are scored by broadcasting, without building
    the concatenations. :meth:`logits` returns the pre-sigmoid value.
    """

    def __init__(self, video_dim: int, text_dim: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        out = hidden if hidden > 0 else 1
        self.fc_v = nn.Linear(video_dim, out)
        self.fc_t = nn.Linear(text_dim, out, bias=False)
        self.fc_out = nn.Linear(hidden, 1) if hidden > 0 else None

    def logits(self, v: Tensor, t: Tensor) -> Tensor:
        """Pre-sigmoid scores of ``v [..., d_v]`` against ``t [..., d_t]`` (broadcasting)."""
        h = self.fc_v(v) + self.fc_t(t)
        if self.fc_out is None:
            return h.squeeze(-1)
        return self.fc_out(torch.relu(h)).squeeze(-1)

    def forward(self, v: Tensor, t: Tensor) -> Tensor:
        """``phi(v, t)`` in (0, 1), broadcasting over leading dimensions."""
        return torch.sigmoid(self.logits(v, t))


class VideoEmbedding(nn.Module):
    """Clip features -> snippet embeddings ``v_t``: Linear + ReLU, optional temporal Conv1d, LayerNorm.

    Padded clips are zeroed before the convolution and in the output.
    """

    def __init__(self, video_dim: int, hidden: int, context_kernel: int = 1, dropout: float = 0.0,
                 norm: bool = False):
        super().__init__()
        self.proj = nn.Linear(video_dim, hidden)
        self.norm = nn.LayerNorm(hidden) if norm else None
        self.conv = (nn.Conv1d(hidden, hidden, context_kernel, padding=context_kernel // 2)
                     if context_kernel > 1 else None)
        self.drop = nn.Dropout(dropout)

    def forward(self, video: Tensor, mask: Tensor) -> Tensor:
        m = mask.unsqueeze(-1).to(video.dtype)
        x = torch.relu(self.proj(video)) * m
        if self.conv is not None:
            x = torch.relu(self.conv(x.transpose(1, 2)).transpose(1, 2)) * m
        if self.norm is not None:
            x = self.norm(x) * m
        return self.drop(x) * m


# --------------------------------------------------------------------------- equations


def referring_attention(scores: Tensor, mask: Tensor, temperature: float = 1.0) -> Tensor:
    """WSRA Eq. 2: ``alpha_t = exp(s_t / T) / sum_i exp(s_i / T)`` over the valid snippets.

    ``scores [..., T]`` are ``phi(v_t, t)`` (the printed form) or its logits; ``mask
    [..., T]`` (broadcastable) is True on real snippets; padded snippets get weight 0.
    """
    s = (scores / temperature).masked_fill(~mask, _NEG)
    return torch.softmax(s, dim=-1) * mask


def fore_background(v: Tensor, alpha: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """WSRA Eq. 1: ``v_f = sum_t alpha_t v_t`` and ``v_b = sum_t (1 - alpha_t) v_t / (T - 1)``.

    ``v [..., T, d]``, ``alpha [..., T]`` summing to 1 over valid snippets, ``mask [..., T]``.
    ``T`` is the number of *valid* snippets of each video, so the background weights
    ``(1 - alpha_t) / (T - 1)`` also sum to 1 and padding never enters.
    """
    m = mask.to(v.dtype)
    n = m.sum(-1, keepdim=True)
    v_f = torch.einsum("...t,...td->...d", alpha, v)
    w_b = (1.0 - alpha) * m / (n - 1.0).clamp(min=1.0)
    v_b = torch.einsum("...t,...td->...d", w_b, v)
    return v_f, v_b


def video_level_loss(s_p: Tensor, s_n: Tensor, margin: float, scale: float) -> Tensor:
    """WSRA Eq. 3: ``log(1 + sum_i exp(gamma (s_n^i - s_p^i + m)))`` over the batch.

    The pair-weighted logistic form: the gradient on pair ``i`` is
    ``gamma * w_i`` with ``w_i = exp(gamma x_i) / (1 + sum_j exp(gamma x_j))``,
    ``x_i = s_n^i - s_p^i + m``, so the worst-violating pairs of the batch get the
    largest weights (a hinge gives every violating pair the same weight).
    Computed stably as ``logaddexp(0, logsumexp(gamma x))``.
    """
    x = scale * (s_n - s_p + margin)
    return torch.logaddexp(torch.zeros((), dtype=x.dtype, device=x.device), torch.logsumexp(x, dim=-1))


def referring_weights(scores: Tensor, query_mask: Tensor | None = None) -> Tensor:
    """WSRA Eq. 4: ``beta^j_t(i) = exp(phi(v^j_t, t_i)) / sum_i' exp(phi(v^j_t, t_i'))``.

    ``scores [B_video, B_query, T]`` hold ``phi(v^j_t, t_i)`` for every video ``j``,
    query ``i`` and snippet ``t``; the softmax runs over the *queries* (dim 1) of the
    batch, so each snippet distributes one unit of weight over the queries.
    ``query_mask [B_video, B_query]`` (optional) removes queries from the softmax.
    """
    if query_mask is not None:
        scores = scores.masked_fill(~query_mask.unsqueeze(-1), _NEG)
    return torch.softmax(scores, dim=1)


def text_similarity(t: Tensor) -> Tensor:
    """Cosine similarity matrix ``[B, B]`` of text representations ``t [B, d]``."""
    z = F.normalize(t, dim=-1, eps=1e-8)
    return z @ z.transpose(0, 1)


def bag_of_words(words: Tensor, words_mask: Tensor, vocab_size: int) -> Tensor:
    """Word-count vectors ``[B, vocab_size]`` of padded word ids (padding ignored)."""
    counts = torch.zeros(words.shape[0], vocab_size, device=words.device)
    return counts.scatter_add_(1, words, words_mask.to(counts.dtype))


def top_last_k_mask(sim: Tensor, video_idx: Tensor, top_k: int, last_k: int,
                    k_batch: int | None = 42) -> Tensor:
    """The negative indicator ``1(t^i, t^j)`` of the VAS loss: top/last-K sampling (WSRA Sec. 3.2.1).

    For anchor query ``i`` the candidate negatives are the batch's queries of *other*
    videos (``video_idx`` differs; the anchor itself and its video's other queries are
    never negatives). Candidates are sorted by text similarity ``sim[i, j]``; the
    ``K`` most similar (likely paraphrases: "pseudo-positives") and the ``K'`` least
    similar ("easy negatives") are dropped. With ``k_batch`` set, ``K`` and ``K'`` are
    the values for a batch of ``k_batch`` queries and are rescaled per anchor to
    ``round(K * n_i / (k_batch - 1))`` where ``n_i`` is the anchor's candidate count.
    Ties in similarity are broken by position (stable sort).

    Returns:
        bool ``[B, B]``: True where ``j`` is a kept negative of anchor ``i``.
    """
    B = sim.shape[0]
    cand = video_idx[:, None] != video_idx[None, :]
    n = cand.sum(1)  # [B]
    if k_batch is not None:
        ratio = n.to(sim.dtype) / max(k_batch - 1, 1)
        k_top = torch.floor(top_k * ratio + 0.5).long()
        k_last = torch.floor(last_k * ratio + 0.5).long()
    else:
        k_top = torch.full_like(n, top_k)
        k_last = torch.full_like(n, last_k)
    # rank of each candidate within its row, most similar first (non-candidates last)
    keyed = sim.masked_fill(~cand, -math.inf)
    order = torch.sort(keyed, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(B, device=sim.device).expand(B, B))
    return cand & (rank >= k_top[:, None]) & (rank < (n - k_last)[:, None])


def vas_loss(scores: Tensor, negatives: Tensor, margin: float) -> Tensor:
    """WSRA Eq. 5: ``sum_{i,j} 1(t^i, t^j) max(0, m + psi(t^j, v_f^i) - psi(t^i, v_f^i))``.

    ``scores [B, B]``: ``scores[i, j] = phi(v_f^i, t^j)`` (``psi`` read as ``phi``), so the
    positive is the diagonal. ``negatives [B, B]`` is the indicator from
    :func:`top_last_k_mask`. Averaged over the kept pairs (0 when there are none).
    """
    pos = scores.diagonal().unsqueeze(1)
    hinge = torch.relu(margin + scores - pos) * negatives
    return hinge.sum() / negatives.sum().clamp(min=1)


def instance_vas_loss(weights: Tensor, scores: Tensor, negatives: Tensor, snippet_mask: Tensor,
                      margin: float) -> Tensor:
    """WSRA Eq. 6: ``sum_i sum_t max(0, m + w_t(t_-) psi(t_-, v_t^i) - w_t(t_+) psi(t_+, v_t^i))``.

    ``scores [B, B, T]``: ``scores[i, j, t] = phi(v^i_t, t^j)`` (snippet ``t`` of video ``i``
    against query ``j``; the positive query of video ``i`` is ``j = i``). ``weights``
    (same shape) are the referring weights that scale them: Eq. 2's ``alpha`` of video
    ``i`` attended by query ``j`` (printed) or Eq. 4's ``beta``. Every kept negative
    ``j`` of ``negatives [B, B]`` plays ``t_-``; the hinge is summed over the valid
    snippets (``snippet_mask [B, T]``) as printed and averaged over the (i, j) pairs.
    """
    ws = weights * scores
    pos = ws.diagonal(dim1=0, dim2=1).transpose(0, 1).unsqueeze(1)  # [B, 1, T]
    hinge = torch.relu(margin + ws - pos) * snippet_mask.unsqueeze(1)
    per_pair = hinge.sum(-1)  # [B, B]
    return (per_pair * negatives).sum() / negatives.sum().clamp(min=1)


def cross_video_pooling(u: Tensor, u_mask: Tensor, v_f: Tensor,
                        temperature: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """WSRA Eqs. 7-8: aggregate other videos by cosine attention to each anchor's foreground.

    For anchor ``i`` (foreground ``v_f [B, d]``) and video ``k`` (snippets ``u [B, M, d]``,
    ``u_mask [B, M]``): ``gamma_{ik,m} = softmax_m cos(u^k_m, v_f^i) / T`` (Eq. 8, printed
    with ``T = 1``), ``u_f^{ik} = sum_m gamma_{ik,m} u^k_m`` (Eq. 7) and, by the
    complement weights of Eq. 1, ``u_b^{ik} = sum_m (1 - gamma_{ik,m}) u^k_m / (M_k - 1)``.

    Returns:
        ``u_f [B, B, d]``, ``u_b [B, B, d]`` and ``gamma [B, B, M]`` (anchor, video, snippet).
    """
    cos = torch.einsum("id,kmd->ikm", F.normalize(v_f, dim=-1, eps=1e-8), F.normalize(u, dim=-1, eps=1e-8))
    mask = u_mask.unsqueeze(0).expand_as(cos)
    gamma = referring_attention(cos, mask, temperature)
    m = u_mask.to(u.dtype)  # [K, M]
    w_b = (1.0 - gamma) * m / (m.sum(-1, keepdim=True) - 1.0).clamp(min=1.0)  # Eq. 1's complement weights
    u_f = torch.einsum("ikm,kmd->ikd", gamma, u)
    u_b = torch.einsum("ikm,kmd->ikd", w_b, u)
    return u_f, u_b, gamma


def pseudo_positive_gate(sim: Tensor, video_idx: Tensor, tau: float = 0.9) -> Tensor:
    """WSRA Eq. 10: ``lambda_{ik} = 1`` iff ``cos(t_i, t_k) > tau`` (and ``k`` is another video).

    ``sim [B, B]`` is the query cosine matrix; pairs from the same video are excluded
    (a video is not its own pseudo-positive). Returns a float ``[B, B]`` mask.
    """
    other = video_idx[:, None] != video_idx[None, :]
    return ((sim > tau) & other).to(sim.dtype)


def cross_video_loss(u_f: Tensor, u_b: Tensor, v_f: Tensor, gate: Tensor, margin: float,
                     direction: str = "intended") -> Tensor:
    """WSRA Eq. 9 with the sign the text intends: ``lambda max(0, m + cos(u_b, v_f) - cos(u_f, v_f))``.

    ``u_f, u_b [B, B, d]`` from :func:`cross_video_pooling`, ``v_f [B, d]``, ``gate
    [B, B]`` from :func:`pseudo_positive_gate`. ``direction="printed"`` evaluates the
    paper's literal ``max(0, m + cos(u_f, v_f) - cos(u_b, v_f))``, whose gradient pushes
    ``u_f`` *away* from ``v_f``. Averaged over the gated pairs (0 when none).
    """
    cos_f = F.cosine_similarity(u_f, v_f.unsqueeze(1), dim=-1, eps=1e-8)
    cos_b = F.cosine_similarity(u_b, v_f.unsqueeze(1), dim=-1, eps=1e-8)
    if direction == "intended":
        hinge = torch.relu(margin + cos_b - cos_f)
    elif direction == "printed":
        hinge = torch.relu(margin + cos_f - cos_b)
    else:
        raise ValueError(f"direction must be 'intended' or 'printed', got {direction!r}")
    return (hinge * gate).sum() / gate.sum().clamp(min=1)


# --------------------------------------------------------------------------- inference helpers


def window_scores(alpha: Tensor, mask: Tensor, windows: Tensor, mode: str = "contrast") -> Tensor:
    """Score candidate windows by the attention they contain (prefix sums, no loops).

    The attention is a density over normalised time: valid snippet ``i`` of a video
    with ``n`` valid snippets covers ``[i/n, (i+1)/n]`` and carries mass ``alpha_i``
    spread uniformly (density ``n alpha_i``; uniform attention has density 1). For a
    window ``[s, e]`` the mass inside is ``A = F(e) - F(s)`` with ``F`` the cumulative
    mass, interpolated linearly inside a snippet. ``mode="inside"`` scores
    ``A / (e - s)`` (mean density inside); ``mode="contrast"`` scores
    ``A / (e - s) - B / (s + 1 - e)`` (mean inside minus mean outside), where the mass
    outside, ``B = F(s) + F(1) - F(e)``, and the length outside, ``s + (1 - e)``, are
    computed directly rather than as ``1 - A`` and ``1 - (e - s)``.

    **A window with no outside** (``s + 1 - e < 1e-6``, e.g. the whole video, or the
    DiDeMo candidate (0, 5) of a video of at most 30 s) has no mean outside: ``1 - A``
    over ``1 - (e - s)`` is then rounding error over rounding error (scores of +-100 in
    float32). We define its mean outside to equal its mean inside, so its contrast is
    exactly 0, the score of *every* window under uniform attention: the whole video is
    no evidence for or against itself. Windows of zero length score ``-1e9``.

    Args:
        alpha: ``[B, T]`` attention summing to 1 over the valid snippets.
        mask: ``[B, T]`` valid snippets (a prefix of each row).
        windows: ``[K, 2]`` or ``[B, K, 2]`` normalised (start, end).
    Returns:
        ``[B, K]`` scores.
    """
    B, T = alpha.shape
    if windows.ndim == 2:
        windows = windows.unsqueeze(0).expand(B, -1, -1)
    windows = windows.to(alpha)
    n = mask.sum(1, keepdim=True).clamp(min=1).to(alpha.dtype)  # [B, 1]
    cum = torch.cat([torch.zeros_like(alpha[:, :1]), alpha.cumsum(1)], dim=1)  # [B, T+1]

    def mass_before(x: Tensor) -> Tensor:
        pos = x * n
        idx = torch.minimum(pos.floor(), n - 1).clamp(min=0)
        frac = (pos - idx).clamp(0.0, 1.0)
        i = idx.long()
        return cum.gather(1, i) + frac * alpha.gather(1, i)

    if mode not in ("contrast", "inside"):
        raise ValueError(f"mode must be 'contrast' or 'inside', got {mode!r}")
    s, e = windows[..., 0], windows[..., 1]
    length = e - s
    f_s, f_e = mass_before(s), mass_before(e)
    inside = f_e - f_s
    ok = length > 1e-9
    mean_in = inside / length.clamp(min=1e-9)
    if mode == "inside":
        return torch.where(ok, mean_in, torch.full_like(mean_in, -1e9))
    total = cum[:, -1:]  # F(1): the whole mass (1 up to rounding)
    out_len = s + (1.0 - e)
    outside = f_s + (total - f_e)
    empty = out_len < _NO_OUTSIDE
    mean_out = torch.where(empty, mean_in, outside / out_len.clamp(min=_NO_OUTSIDE))
    score = mean_in - mean_out
    return torch.where(ok, score, torch.full_like(score, -1e9))


def didemo_windows(duration: Tensor, chunk: float = 5.0, max_seconds: float = 30.0) -> Tensor:
    """The 21 DiDeMo candidates for each video, normalised: ``[B, 21, 2]`` (official order).

    Candidate (i, j) is [chunk*i, chunk*(j+1)] seconds, clipped to the annotated footage
    ``min(duration, max_seconds)`` and divided by the duration; the same as
    :func:`wsg.proposals.didemo_moments` for every video of the batch at once.
    """
    ij = torch.tensor(didemo_candidates(), dtype=duration.dtype, device=duration.device)
    sec = torch.stack([ij[:, 0] * chunk, (ij[:, 1] + 1) * chunk], dim=-1)  # [21, 2]
    end = duration.clamp(max=max_seconds)[:, None, None]
    return torch.minimum(sec.unsqueeze(0), end) / duration[:, None, None]


# --------------------------------------------------------------------------- the model


class WSRA(GroundingModel):
    """Weakly-supervised grounding with referring attention (see the module docstring)."""

    supervision = "weak"

    def __init__(self, config: WSRAConfig):
        super().__init__()
        self.config = c = config
        self.text = GRUEncoder(c.vocab_size, c.word_dim, c.text_hidden, c.bidirectional,
                               pretrained=c.pretrained_embeddings, freeze=c.freeze_embeddings)
        self.video = VideoEmbedding(c.video_dim, c.hidden, c.context_kernel, c.dropout, c.norm)
        self.phi = CrossModalScorer(c.hidden, self.text.out_dim, c.phi_hidden)
        self.register_buffer("windows", proportional_windows(tuple(c.window_fractions), c.window_overlap),
                             persistent=False)

    # ------------------------------------------------------------------ pieces
    def _check(self, batch: dict) -> None:
        for key in ("video", "video_mask", "words", "words_mask"):
            if key not in batch:
                raise KeyError(f"WSRA needs batch[{key!r}]")
        v = batch["video"]
        if v.ndim != 3 or v.shape[-1] != self.config.video_dim:
            raise ValueError(f"video must be [B, T, {self.config.video_dim}], got {tuple(v.shape)}")

    def encode(self, batch: dict) -> tuple[Tensor, Tensor, Tensor]:
        """Snippet embeddings ``v [B, T, d]``, sentence vectors ``t [B, d_t]``, snippet mask ``[B, T]``."""
        self._check(batch)
        mask = batch["video_mask"].bool()
        v = self.video(batch["video"], mask)
        _, t = self.text(batch["words"], batch["words_mask"].bool())
        return v, t, mask

    def attention_input(self, logits: Tensor) -> Tensor:
        """What Eq. 2 softmaxes: ``phi`` (printed) or the logit, per ``config.attention``."""
        return torch.sigmoid(logits) if self.config.attention == "sigmoid" else logits

    def attend(self, batch: dict) -> dict[str, Tensor]:
        """Each video attended by its own query: ``logits``, ``phi``, ``alpha`` ``[B, T]``."""
        v, t, mask = self.encode(batch)
        logits = self.phi.logits(v, t.unsqueeze(1))
        alpha = referring_attention(self.attention_input(logits), mask, self.config.temperature)
        return {"v": v, "t": t, "mask": mask, "logits": logits, "phi": torch.sigmoid(logits), "alpha": alpha}

    # ------------------------------------------------------------------ interface
    def forward(self, batch: dict, cross: bool = True) -> dict[str, Tensor]:
        """Attention, fore/background and (with ``cross``) every (video, query) pairing of the batch.

        Returns ``v [B,T,d]``, ``t [B,d_t]``, ``mask``, ``logits``/``phi``/``alpha`` ``[B,T]``
        (each video with its own query), ``v_f``/``v_b`` ``[B,d]`` (Eq. 1), and with
        ``cross``: ``logits_cross``/``phi_cross``/``alpha_cross`` ``[B,B,T]`` (video i,
        query j, snippet t) and ``beta [B,B,T]`` (Eq. 4).
        """
        c = self.config
        v, t, mask = self.encode(batch)
        out: dict[str, Tensor] = {"v": v, "t": t, "mask": mask}
        if cross:
            lc = self.phi.logits(v.unsqueeze(1), t[None, :, None, :])  # [B_v, B_q, T]
            m3 = mask.unsqueeze(1).expand_as(lc)
            alpha_c = referring_attention(self.attention_input(lc), m3, c.temperature)
            out.update(logits_cross=lc, phi_cross=torch.sigmoid(lc), alpha_cross=alpha_c,
                       beta=referring_weights(torch.sigmoid(lc)))
            logits = lc.diagonal(dim1=0, dim2=1).transpose(0, 1)
            alpha = alpha_c.diagonal(dim1=0, dim2=1).transpose(0, 1)
        else:
            logits = self.phi.logits(v, t.unsqueeze(1))
            alpha = referring_attention(self.attention_input(logits), mask, c.temperature)
        v_f, v_b = fore_background(v, alpha, mask)
        out.update(logits=logits, phi=torch.sigmoid(logits), alpha=alpha, v_f=v_f, v_b=v_b)
        return out

    def similarity(self, batch: dict, out: dict) -> Tensor:
        """Query-query cosine ``[B, B]`` that drives top/last-K sampling and the Eq. 10 gate."""
        if self.config.text_similarity == "bow":
            bow = bag_of_words(batch["words"], batch["words_mask"].bool(), self.config.vocab_size)
            return text_similarity(bow)
        return text_similarity(out["t"].detach())

    def loss(self, batch: dict, out: dict) -> tuple[Tensor, dict[str, Tensor]]:
        """WSRA Eq. 11: ``w_bg L_bg + w_crov L_crov + w_vas L_vas + w_ins L_ins-vas``.

        A term whose weight is 0 is not computed (its entry in ``parts`` is 0).
        """
        c = self.config
        if "phi_cross" not in out:
            raise ValueError("WSRA.loss needs forward(batch, cross=True)")
        v_f, v_b, t, mask = out["v_f"], out["v_b"], out["t"], out["mask"]
        vid = batch["video_idx"]
        sim = self.similarity(batch, out)
        zero = v_f.new_zeros(())
        parts: dict[str, Tensor] = {}
        if c.w_bg:
            s_p = self.phi(v_f, t)
            s_n = self.phi(v_b, t)
            parts["bg"] = video_level_loss(s_p, s_n, c.margin, c.scale)
        negatives = top_last_k_mask(sim, vid, c.top_k, c.last_k, c.k_batch)
        if c.w_vas:
            scores = self.phi(v_f.unsqueeze(1), t.unsqueeze(0))  # [i, j] = phi(v_f^i, t^j)
            parts["vas"] = vas_loss(scores, negatives, c.margin)
        if c.w_ins:
            weights = out["alpha_cross"] if c.ins_weights == "alpha" else out["beta"]
            parts["ins_vas"] = instance_vas_loss(weights, out["phi_cross"], negatives, mask, c.margin)
        if c.w_crov:
            gate = pseudo_positive_gate(sim, vid, c.tau)
            u_f, u_b, _ = cross_video_pooling(out["v"], mask, v_f, c.crov_temperature)
            parts["crov"] = cross_video_loss(u_f, u_b, v_f, gate, c.margin, c.crov_direction)
        weight = {"bg": c.w_bg, "vas": c.w_vas, "ins_vas": c.w_ins, "crov": c.w_crov}
        total = sum((weight[k] * v for k, v in parts.items()), zero)
        report = {k: parts[k].detach() if k in parts else zero.detach() for k in weight}
        return total, report

    @torch.no_grad()
    def candidate_windows(self, batch: dict) -> Tensor:
        """``[K, 2]`` proportional windows, or ``[B, 21, 2]`` DiDeMo moments."""
        c = self.config
        if c.candidates == "didemo":
            return didemo_windows(batch["duration"].double(), c.didemo_chunk, c.didemo_max_seconds).float()
        return self.windows

    @torch.no_grad()
    def candidates(self) -> Tensor:
        """The candidate moments ``[K, 2]`` (normalised) that :meth:`predict` ranks.

        The proportional windows (independent of the video), or, with
        ``candidates="didemo"``, the 21 DiDeMo moments of a video of
        ``didemo_max_seconds`` (30 s: six whole 5-s chunks); shorter videos clip the
        later chunks (see :func:`didemo_windows`). WSRA has no boundary regression.
        """
        c = self.config
        if c.candidates == "didemo":
            full = torch.tensor([c.didemo_max_seconds], dtype=torch.float64)
            return didemo_windows(full, c.didemo_chunk, c.didemo_max_seconds)[0].float().to(self.windows.device)
        return self.windows.clone()

    @torch.no_grad()
    def rank_didemo(self, batch: dict) -> Tensor:
        """``[B, 21]`` indices into :func:`wsg.proposals.didemo_candidates`, best first.

        The ranking :func:`wsg.metrics.didemo_scores` expects, scored like :meth:`predict`
        on the 21 DiDeMo moments (whatever ``config.candidates`` says).
        """
        att = self.attend(batch)
        windows = didemo_windows(batch["duration"].double(), self.config.didemo_chunk,
                                 self.config.didemo_max_seconds).to(att["alpha"])
        scores = window_scores(att["alpha"], att["mask"], windows, self.config.window_score)
        return torch.sort(scores, dim=1, descending=True, stable=True).indices

    @torch.no_grad()
    def predict(self, batch: dict, top_k: int = 10) -> tuple[Tensor, Tensor]:
        """Candidates ranked by :func:`window_scores` of each video's attention to its query.

        Returns ``moments [B, K, 2]`` in [0, 1] and ``scores [B, K]`` best first (no NMS;
        the evaluation protocol applies it), with ``K = min(top_k, #candidates)``.
        """
        att = self.attend(batch)
        windows = self.candidate_windows(batch)
        scores = window_scores(att["alpha"], att["mask"], windows, self.config.window_score)
        B = scores.shape[0]
        if windows.ndim == 2:
            windows = windows.unsqueeze(0).expand(B, -1, -1)
        k = min(int(top_k), scores.shape[1])
        idx = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]  # ties: candidate order
        moments = windows.gather(1, idx.unsqueeze(-1).expand(B, k, 2))
        return moments, scores.gather(1, idx)
