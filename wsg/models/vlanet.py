"""VLANet: Video-Language Alignment Network (Ma et al., ECCV 2020), weakly supervised.

The video is cut into *segment groups*: K groups of windows that share a start time,
L window lengths per group. For each group the *surrogate proposal selection* keeps
the one window whose feature is closest to the query's final GRU state, so only K of
the K*L proposals reach the attention. The *cascaded cross-modal attention* (CCA)
applies a "dense attention" unit first within each modality, then across modalities
several times in series; the attended video elements are pooled into one vector whose
alignment with the words is the video-query similarity ``c``. A hinge contrastive loss
ranks the true query above in-batch queries of other videos. At test time the
surrogate proposals are ranked by a localisation rule chosen on the validation split
(``VLANetConfig.localise``; default ``E(s_k, Q)``, see below).

Where each numbered equation lives (one home each):

=============== ===================================================================
VLANet Eq. 1    :meth:`VLANet.encode_query` (unit-norm GRU states ``Q``, final ``w_M``)
VLANet Eq. 2    :meth:`VLANet.encode_proposals` (unit-norm proposal features ``p_lk``;
                the window grid comes from :func:`segment_groups` or
                :func:`didemo_groups`, the means from :func:`window_means`)
VLANet Eqs. 3-6 :func:`select_surrogates` (similarity matrix, per-group argmax, gather)
VLANet Eq. 7    :class:`VLAFunction` (the alignment function ``E``)
VLANet Eq. 8    :class:`DenseAttention`
VLANet Eqs. 9-12 :class:`CascadedAttention` (self-attention, then the cross cascade)
VLANet Eq. 13   :meth:`VLANet.similarity` (``v_comp`` and ``c``)
VLANet Eq. 14   :func:`contrastive_loss`
=============== ===================================================================

Choices where the paper is silent, ambiguous or (read literally) self-defeating:

* **Windows in our units.** The paper's Charades-STA windows are 176/208/240 frames
  with a stride of 8 frames, on C3D features taken every 16 frames (11, 13 and 15
  features, stride half a feature). Our clips are a fixed number per video, so we
  express windows as *fractions of the video*: ``frames / video_frames`` with
  ``video_frames = 715.2`` (the mean Charades-STA video, 29.8 s, at the 24 fps of the
  released Charades frames). That gives windows of 24.6 %, 29.1 % and 33.6 % of the
  video and a stride of 1.1 %: K = 60 groups, L = 3 scales, 180 proposals per video,
  exactly the count the paper's setting gives on a mean-length video. On 32 clips a
  window is 7.9/9.3/10.7 clips and the stride 0.36 clip; windows are placed in
  continuous time and their means weight partially covered clips by the covered
  fraction (piecewise-constant features, prefix sums with interpolation), so
  sub-clip strides are meaningful. Every window lies inside the video (groups start
  at 0, stride, ... while the longest window fits).
* **Eq. 7 reduction.** Eq. 7 sums ``tanh`` over the M elements of ``Y``. With
  ``vla_reduce="mean"`` (our default) it is averaged instead: ``c`` then lies in
  [-1, 1] like the 0.9/0.15 plateau of the paper's Fig. 4, and a long negative query is
  not favoured by its length. ``"sum"`` is the printed form.
* **Eq. 8 output.** ``Softmax([E(x_1, Y) ... E(x_N, Y)]) X`` multiplies a 1 x N
  row by an N x D matrix, which would give 1 x D, yet A is declared N x D. Our reading:
  the N weights scale the N rows, ``A(X, Y)_n = a_n x_n``. Because the weights sum to
  one, every application shrinks the elements by about 1/N, and the cascade (up to
  four applications on each side) drives every later ``tanh`` argument towards zero.
  With ``attention_scale="count"`` (default) the weights are multiplied by the number
  N of valid elements, so uniform attention is the identity; ``"none"`` is the literal
  form. ``v_comp`` is the sum of the elements as printed, divided by the same N under
  ``"count"`` so that a single attention step gives exactly the attention-weighted sum.
* **The cascade.** The paper's introduction describes the cross-modal part as
  Q2V, V2Q, Q2V; we apply ``cross_steps`` alternating updates starting with Eq. 11
  (default 3, i.e. that sequence). Every application of the dense attention (and the
  ``E`` of Eq. 13) has its own ``W_1, W_2``.
* **Negatives.** Eq. 14 pairs the video with a negative query; since the surrogate
  selection and the attention depend on the query, the negative similarity is the
  whole network run on the (video, negative query) pair. ``negatives="random"``
  (default, the paper's "randomly sampled in a batch") draws one in-batch query of
  *another* video per positive (same ``video_idx`` is never a negative);
  ``"all"`` averages the hinge over all of them (B - 1 full network passes per
  video instead of one: about eight times the CPU time of a step at B = 32).
* **Gradient of the selection.** The argmax is not differentiable; gradients flow
  only into the selected proposal features (a gather), as the paper says.
* **Localisation.** The paper says only that "the learned attention weights" localise.
  A video element's share of ``v_comp`` is the product of the weights it received in
  every video-side dense attention (Eq. 9 and every Eq. 11; ``video_attention``, rule
  ``"product"``); its Eq. 9 factor never reads the query and drags the ranking towards
  a query-blind one. On the validation split (3 seeds x 2 synthetic presets,
  ``scripts/vlanet_rules.py``, ``results/vlanet_rules_val.csv``) ``"align"`` ranked best:
  ``E(s_k, Q)`` of Eq. 7 with the ``W_1, W_2`` of Eq. 13, between each surrogate and the
  attended query. It is the default; every rule of :data:`LOCALISE_RULES` stays
  available (:meth:`VLANet.localisation_scores`). Ties with the NMS of the protocol are left to the
  evaluator: :meth:`VLANet.predict` returns the ranked list before NMS.
* **DiDeMo.** ``candidates="didemo"`` uses the 21 fixed moments: 6 groups (start
  chunk) with up to 6 lengths (invalid when past the last chunk). The 6 surrogates are
  ranked by attention, then the 15 other candidates by their Eq. 3 similarity, so
  every query gets a full permutation (:meth:`VLANet.rank_didemo`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsg.models.base import GroundingModel
from wsg.proposals import didemo_candidates, didemo_moments
from wsg.text import GRUEncoder, check_pretrained

__all__ = [
    "LOCALISE_RULES", "VLANetConfig", "VLANet", "segment_groups", "didemo_groups", "window_means", "select_surrogates",
    "VLAFunction", "DenseAttention", "CascadedAttention", "contrastive_loss",
]

#: mean Charades-STA video (29.8 s) in frames at 24 fps, to turn the paper's frame counts into fractions
CHARADES_VIDEO_FRAMES = 29.8 * 24.0

#: test-time rules that rank the surrogates (:meth:`VLANet.localisation_scores`):
#: ``"product"`` every video-side attention weight multiplied (Eq. 9 x each Eq. 11: an element's
#: share of ``v_comp``); ``"cross"`` the Eq. 11 weights only; ``"self"`` the Eq. 9 weights only
#: (they never read the query); ``"align"`` ``E(s_k, Q)`` of Eq. 7 with Eq. 13's ``W_1, W_2``: the
#: similarity ``c`` the surrogate alone would get against the attended query; ``"align-attended"``
#: the same on the attended element ``V_k`` instead of ``s_k``; ``"select"`` the Eq. 3 cosine
#: ``s_k . w_M`` of the selection.
LOCALISE_RULES: tuple[str, ...] = ("product", "cross", "self", "align", "align-attended", "select")


@dataclass
class VLANetConfig:
    """VLANet settings; the paper gives only the windows, the stride and the use of GloVe + GRU.

    Attributes:
        vocab_size / video_dim / num_clips: from the data (``bench.model_kwargs()``).
        word_dim: word embedding width (the paper uses GloVe, width not stated; 300 is ours).
        pretrained_embeddings / freeze_embeddings: optional GloVe matrix ``[vocab_size, word_dim]``
            for the GRU's embedding table; build both with :func:`wsg.text.word_vector_config`.
        hidden: GRU width (not given in the paper).
        dim: D, the joint width of the query and proposal features (not given).
        attn_dim: width of ``W_1 x`` and ``W_2 y`` in Eq. 7 (``None``: ``dim``).
        window_frames: window lengths in frames (paper: 176, 208, 240).
        stride_frames: start stride of the segment groups in frames (paper: 8).
        video_frames: frames of the reference video the frame counts are relative to
            (mean Charades-STA video at 24 fps); windows are ``frames / video_frames``
            of every video.
        candidates: ``"groups"`` (sliding segment groups) or ``"didemo"`` (21 moments).
        surrogate: Eqs. 3-6 on; ``False`` feeds all K*L proposals to the attention.
        self_attention: Eqs. 9-10 on.
        cross_steps: alternating cross-modal updates (Eq. 11, Eq. 12, Eq. 11, ...).
        attention_scale: ``"count"`` (x N, uniform attention = identity) or ``"none"``.
        vla_reduce: ``"mean"`` or ``"sum"`` (as printed) over Y in Eq. 7.
        margin: Delta of Eq. 14 (not given in the paper).
        negatives: one ``"random"`` in-batch query of another video per positive, or ``"all"``.
        localise: which score ranks the surrogate proposals at test time (the paper says only
            "the learned attention weights"; see :data:`LOCALISE_RULES` and
            :meth:`VLANet.localisation_scores`). Chosen on the validation split.
    """

    vocab_size: int
    video_dim: int
    num_clips: int
    word_dim: int = 300
    hidden: int = 256
    dim: int = 256
    attn_dim: int | None = None
    window_frames: tuple[float, ...] = (176.0, 208.0, 240.0)
    stride_frames: float = 8.0
    video_frames: float = CHARADES_VIDEO_FRAMES
    candidates: str = "groups"
    surrogate: bool = True
    self_attention: bool = True
    cross_steps: int = 3
    attention_scale: str = "count"
    vla_reduce: str = "mean"
    margin: float = 0.5
    negatives: str = "random"
    localise: str = "align"
    pretrained_embeddings: Any = None
    freeze_embeddings: bool = False

    def __post_init__(self):
        check_pretrained(self.pretrained_embeddings, self.vocab_size, self.word_dim, "VLANetConfig")
        for name in ("vocab_size", "video_dim", "num_clips", "word_dim", "hidden", "dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"VLANetConfig.{name} must be positive, got {getattr(self, name)}")
        if self.candidates not in ("groups", "didemo"):
            raise ValueError(f"candidates must be 'groups' or 'didemo', got {self.candidates!r}")
        if self.attention_scale not in ("count", "none"):
            raise ValueError(f"attention_scale must be 'count' or 'none', got {self.attention_scale!r}")
        if self.vla_reduce not in ("mean", "sum"):
            raise ValueError(f"vla_reduce must be 'mean' or 'sum', got {self.vla_reduce!r}")
        if self.negatives not in ("all", "random"):
            raise ValueError(f"negatives must be 'all' or 'random', got {self.negatives!r}")
        if self.localise not in LOCALISE_RULES:
            raise ValueError(f"localise must be one of {LOCALISE_RULES}, got {self.localise!r}")
        if self.cross_steps < 0:
            raise ValueError(f"cross_steps must be >= 0, got {self.cross_steps}")
        self.window_frames = tuple(float(w) for w in self.window_frames)


# ----------------------------------------------------------------------------- proposals


def segment_groups(window_frames: Sequence[float] = (176.0, 208.0, 240.0), stride_frames: float = 8.0,
                   video_frames: float = CHARADES_VIDEO_FRAMES) -> Tensor:
    """Window geometry of the K segment groups x L scales, normalised (the grid behind ``p_lk``).

    Window ``(l, k)`` starts at ``k * stride`` and lasts ``window[l]`` (both as
    fractions ``frames / video_frames`` of the video). Groups start at 0, stride, ...
    while the longest window still ends inside the video (1e-9 tolerance).

    Returns:
        ``[L, K, 2]`` float32 (start, end) in [0, 1]; row ``l`` follows ``window_frames``.

    Raises:
        ValueError: for non-positive sizes or a window longer than the video.
    """
    w = torch.tensor([float(x) for x in window_frames], dtype=torch.float64)
    if w.numel() == 0 or (w <= 0).any() or stride_frames <= 0 or video_frames <= 0:
        raise ValueError("window_frames, stride_frames and video_frames must be positive")
    w = w / float(video_frames)
    stride = float(stride_frames) / float(video_frames)
    if w.max() > 1.0 + 1e-9:
        raise ValueError(f"the longest window ({w.max().item():.3f} of the video) exceeds the video")
    K = int(torch.floor((1.0 - w.max()) / stride + 1e-9).item()) + 1
    starts = torch.arange(K, dtype=torch.float64) * stride  # [K]
    win = torch.stack([starts[None, :].expand(w.numel(), K), starts[None, :] + w[:, None]], dim=-1)
    return win.clamp(0.0, 1.0).float()


#: [6 lengths, 6 start chunks] -> index into wsg.proposals.didemo_candidates() (-1: invalid)
def _didemo_index() -> Tensor:
    table = torch.full((6, 6), -1, dtype=torch.long)
    for idx, (i, j) in enumerate(didemo_candidates()):  # 21 constants, built once at import
        table[j - i, i] = idx
    return table


DIDEMO_INDEX = _didemo_index()


def didemo_groups(duration: Tensor, chunk_seconds: float = 5.0, num_chunks: int = 6) -> tuple[Tensor, Tensor]:
    """The 21 DiDeMo moments as segment groups: group = start chunk ``k``, scale = length ``l + 1`` chunks.

    Moment (l, k) spans seconds [5k, 5(k + l + 1)], clipped to the footage end
    ``min(duration, 30)`` and divided by the duration. It is valid when it is one of the
    21 candidates (``k + l <= 5``) and keeps a positive length after clipping.

    Returns:
        windows ``[B, 6, 6, 2]`` normalised and valid ``[B, 6, 6]`` bool.
    """
    duration = torch.as_tensor(duration, dtype=torch.float32)
    if duration.ndim != 1 or (duration <= 0).any():
        raise ValueError("duration must be a [B] tensor of positive seconds")
    n = torch.arange(num_chunks, dtype=torch.float32, device=duration.device)
    l, k = n[:, None], n[None, :]
    sec = torch.stack([k.expand(num_chunks, num_chunks), (k + l + 1)], dim=-1) * chunk_seconds  # [6, 6, 2]
    end = duration.clamp(max=chunk_seconds * num_chunks)[:, None, None, None]
    win = torch.minimum(sec[None], end) / duration[:, None, None, None]
    valid = (DIDEMO_INDEX.to(duration.device) >= 0)[None] & (win[..., 1] > win[..., 0])
    return win, valid


def window_means(video: Tensor, video_mask: Tensor | None, windows: Tensor) -> Tensor:
    """Mean clip feature inside each window, all windows at once with prefix sums.

    Video ``b`` has ``T_b`` real clips (its mask); clip ``i`` covers [i/T_b, (i+1)/T_b]
    and its feature is constant there. A window [s, e] (normalised) covers clip time
    [s T_b, e T_b]; its mean weights each clip by the covered length, read off the
    cumulative sum ``C(x) = P[floor x] + (x - floor x) f[floor x]``. Padded clips are
    never read.

    Args:
        video: ``[B, T, D]``.
        video_mask: ``[B, T]`` bool (real clips first) or ``None``.
        windows: ``[B or 1, ..., 2]`` normalised windows of positive length.

    Returns:
        ``[B, ..., D]``; zero-length windows give zeros.
    """
    B, T, D = video.shape
    mask = torch.ones(B, T, dtype=torch.bool, device=video.device) if video_mask is None else video_mask
    length = mask.sum(1).clamp(min=1).to(video.dtype)  # [B]
    feats = video * mask[..., None]
    prefix = torch.cat([feats.new_zeros(B, 1, D), feats.cumsum(1)], dim=1)  # [B, T + 1, D]
    shape = windows.shape[1:-1]
    w = windows.to(video.dtype).expand(B, *windows.shape[1:]).reshape(B, -1)  # [B, 2W]
    x = w * length[:, None]  # clip coordinates
    i = x.floor().clamp(min=0)
    i = torch.minimum(i, (length - 1)[:, None])
    frac = (x - i)[..., None]
    idx = i.long()[..., None].expand(-1, -1, D)
    cum = prefix.gather(1, idx) + frac * feats.gather(1, idx)  # [B, 2W, D]
    cum = cum.reshape(B, -1, 2, D)
    span = (x.reshape(B, -1, 2)[..., 1] - x.reshape(B, -1, 2)[..., 0])[..., None]
    mean = (cum[:, :, 1] - cum[:, :, 0]) / span.clamp(min=1e-6)
    mean = torch.where(span > 1e-6, mean, torch.zeros_like(mean))
    return mean.reshape(B, *shape, D)


def select_surrogates(proposals: Tensor, query_last: Tensor, valid: Tensor,
                      video_index: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Surrogate proposal selection (VLANet Eqs. 3-6).

    Eq. 3: the similarity ``p_lk . w_M`` of every proposal with the final query state
    (a cosine, both being unit vectors). Eq. 4: per group ``k`` the scale
    ``l' = argmax_l``. Eq. 5: ``s_k = p_{l'k}``. Eq. 6: the video becomes
    ``[s_1 ... s_K]``. The argmax carries no gradient; the gather passes gradient to the
    selected ``p_{l'k}`` only.

    Args:
        proposals: ``[B, L, K, D]`` unit proposal features of B videos.
        query_last: ``[N, D]`` unit final query states ``w_M``.
        valid: ``[B or 1, L, K]`` bool; invalid proposals are never selected.
        video_index: ``[N]``: pair ``n`` is (video ``video_index[n]``, query ``n``);
            ``None`` pairs video ``n`` with query ``n`` (N = B).

    Returns:
        surrogates ``[N, K, D]``, chosen scale ``[N, K]`` (long), similarity ``[N, L, K]``
        (``-inf`` at invalid proposals).
    """
    B, L, K, D = proposals.shape
    if video_index is None:
        video_index = torch.arange(B, device=proposals.device)
    val = valid.expand(B, L, K)[video_index]  # [N, L, K]
    sim = torch.einsum("nlkd,nd->nlk", proposals[video_index], query_last)  # Eq. 3
    sim = sim.masked_fill(~val, float("-inf"))
    choice = sim.detach().argmax(dim=1)  # [N, K]  (Eq. 4)
    groups = torch.arange(K, device=proposals.device)
    surrogates = proposals[video_index[:, None], choice, groups[None, :]]  # [N, K, D]  (Eqs. 5-6)
    return surrogates, choice, sim


# ----------------------------------------------------------------------------- attention


class VLAFunction(nn.Module):
    """The video-language alignment function ``E`` (VLANet Eq. 7).

    ``E(x_n, Y) = sum_m tanh(W_1 x_n . W_2 y_m)`` over the valid elements of ``Y``
    (``reduce="sum"``, as printed) or their mean (``reduce="mean"``). No bias.
    """

    def __init__(self, dim: int, attn_dim: int | None = None, reduce: str = "mean"):
        super().__init__()
        if reduce not in ("mean", "sum"):
            raise ValueError(f"reduce must be 'mean' or 'sum', got {reduce!r}")
        self.w1 = nn.Linear(dim, attn_dim or dim, bias=False)
        self.w2 = nn.Linear(dim, attn_dim or dim, bias=False)
        self.reduce = reduce

    def forward(self, x: Tensor, y: Tensor, y_mask: Tensor | None = None) -> Tensor:
        """``x [B, N, D]``, ``y [B, M, D]``, ``y_mask [B, M]`` -> ``E [B, N]``."""
        t = torch.tanh(torch.einsum("bnd,bmd->bnm", self.w1(x), self.w2(y)))
        if y_mask is None:
            y_mask = torch.ones(y.shape[:2], dtype=torch.bool, device=y.device)
        m = y_mask[:, None, :].to(t.dtype)
        total = (t * m).sum(-1)
        if self.reduce == "sum":
            return total
        return total / m.sum(-1).clamp(min=1.0)


class DenseAttention(nn.Module):
    """Dense attention ``A(X, Y)``: X attended by Y (VLANet Eq. 8).

    ``a = softmax_n(E(x_n, Y))`` over the valid elements of X, and the output keeps X's
    shape: row ``n`` is ``a_n x_n`` (our reading of the N x D output), times the number
    of valid elements of X when ``scale="count"``. Padded rows come out as zeros.
    """

    def __init__(self, dim: int, attn_dim: int | None = None, reduce: str = "mean", scale: str = "count"):
        super().__init__()
        if scale not in ("count", "none"):
            raise ValueError(f"scale must be 'count' or 'none', got {scale!r}")
        self.vla = VLAFunction(dim, attn_dim, reduce)
        self.scale = scale

    def forward(self, x: Tensor, y: Tensor, x_mask: Tensor, y_mask: Tensor) -> tuple[Tensor, Tensor]:
        """``x [B, N, D]``, ``y [B, M, D]``, masks ``[B, N]``, ``[B, M]`` -> (``[B, N, D]``, weights ``[B, N]``)."""
        e = self.vla(x, y, y_mask).masked_fill(~x_mask, float("-inf"))
        a = torch.softmax(e, dim=-1)
        a = torch.where(x_mask, a, torch.zeros_like(a))  # rows with no valid element: all zeros, no NaN
        gain = a * x_mask.sum(-1, keepdim=True).to(a.dtype) if self.scale == "count" else a
        return gain[..., None] * x, a


class CascadedAttention(nn.Module):
    """Cascaded cross-modal attention (VLANet Eqs. 9-12).

    Self-attention within each modality, ``V <- A(V, V)`` (Eq. 9) and ``Q <- A(Q, Q)``
    (Eq. 10), then ``steps`` cross-modal updates in series, alternating
    ``V <- A(V, Q)`` (Eq. 11) and ``Q <- A(Q, V)`` (Eq. 12), starting with Eq. 11.
    Each application has its own parameters. Returns the attended ``V``, ``Q`` and the
    weights of every video-side attention (the ones that decide each element's share
    of the pooled video vector).
    """

    def __init__(self, dim: int, attn_dim: int | None = None, reduce: str = "mean", scale: str = "count",
                 self_attention: bool = True, steps: int = 3):
        super().__init__()
        make = lambda: DenseAttention(dim, attn_dim, reduce, scale)  # noqa: E731
        self.self_attention = self_attention
        self.v2v = make() if self_attention else None
        self.q2q = make() if self_attention else None
        self.cross = nn.ModuleList(make() for _ in range(steps))

    def forward(self, v: Tensor, q: Tensor, v_mask: Tensor, q_mask: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        video_weights: list[Tensor] = []
        if self.self_attention:
            v_new, a = self.v2v(v, v, v_mask, v_mask)  # Eq. 9
            q, _ = self.q2q(q, q, q_mask, q_mask)  # Eq. 10 (uses the Q before Eq. 9; they are independent)
            v = v_new
            video_weights.append(a)
        for step, att in enumerate(self.cross):
            if step % 2 == 0:
                v, a = att(v, q, v_mask, q_mask)  # Eq. 11: video attended by the query
                video_weights.append(a)
            else:
                q, _ = att(q, v, q_mask, v_mask)  # Eq. 12: query attended by the video
        return v, q, video_weights


def contrastive_loss(c_pos: Tensor, c_neg: Tensor, neg_mask: Tensor, margin: float) -> Tensor:
    """Hinge contrastive loss (VLANet Eq. 14), averaged over the valid (positive, negative) pairs.

    ``max(0, margin - c(V, Q+) + c(V, Q-))`` for every valid negative.

    Args:
        c_pos: ``[B]`` similarity of each video with its own query.
        c_neg: ``[B, J]`` similarity of video ``i`` with negative query ``j``.
        neg_mask: ``[B, J]`` bool, True where ``(i, j)`` is a valid negative pair.

    Returns:
        scalar; 0 (with a graph) when there is no valid negative.
    """
    hinge = (margin - c_pos[:, None] + c_neg).clamp(min=0.0)
    m = neg_mask.to(hinge.dtype)
    return (hinge * m).sum() / m.sum().clamp(min=1.0)


# ----------------------------------------------------------------------------- the model


class VLANet(GroundingModel):
    """VLANet behind the common ``forward`` / ``loss`` / ``predict`` interface (weak supervision)."""

    supervision = "weak"

    def __init__(self, config: VLANetConfig):
        super().__init__()
        self.config = c = config
        self.text = GRUEncoder(c.vocab_size, c.word_dim, c.hidden, pretrained=c.pretrained_embeddings,
                               freeze=c.freeze_embeddings)
        self.query_proj = nn.Linear(c.hidden, c.dim)
        self.video_proj = nn.Linear(c.video_dim, c.dim)
        self.cca = CascadedAttention(c.dim, c.attn_dim, c.vla_reduce, c.attention_scale, c.self_attention,
                                     c.cross_steps)
        self.vla_out = VLAFunction(c.dim, c.attn_dim, c.vla_reduce)
        if c.candidates == "groups":
            self.register_buffer("windows", segment_groups(c.window_frames, c.stride_frames, c.video_frames),
                                 persistent=False)

    # ------------------------------------------------------------------ sizes
    @property
    def num_groups(self) -> int:
        """K: segment groups per video."""
        return 6 if self.config.candidates == "didemo" else self.windows.shape[1]

    @property
    def num_scales(self) -> int:
        """L: window scales per group."""
        return 6 if self.config.candidates == "didemo" else self.windows.shape[0]

    # ------------------------------------------------------------------ encoders
    def encode_query(self, words: Tensor, words_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Word-level query ``Q = [w_1 ... w_M]`` and the final state ``w_M`` (VLANet Eq. 1).

        GRU states -> linear to D -> L2 normalisation, each state separately; padded
        positions are zero. Returns ``(Q [B, M, D], w_M [B, D])``.
        """
        states, last = self.text(words, words_mask)
        q = F.normalize(self.query_proj(states), dim=-1) * words_mask[..., None]
        return q, F.normalize(self.query_proj(last), dim=-1)

    def proposal_windows(self, batch: dict) -> tuple[Tensor, Tensor]:
        """Windows ``[B or 1, L, K, 2]`` (normalised) and validity ``[B or 1, L, K]`` of the candidates."""
        if self.config.candidates == "didemo":
            return didemo_groups(batch["duration"].to(self.query_proj.weight.device))
        return self.windows[None], torch.ones(self.windows.shape[:2], dtype=torch.bool,
                                              device=self.windows.device)[None]

    def encode_proposals(self, video: Tensor, video_mask: Tensor | None, windows: Tensor) -> Tensor:
        """Unit proposal features ``p_lk`` ``[B, L, K, D]`` (VLANet Eq. 2).

        The mean of the clips each window covers (:func:`window_means`) through the
        linear layer to D, then L2-normalised. The linear layer is applied to the clips
        first: the window weights sum to one, so this equals projecting the mean.
        """
        return F.normalize(window_means(self.video_proj(video), video_mask, windows), dim=-1)

    # ------------------------------------------------------------------ pairs
    def similarity(self, v: Tensor, q: Tensor, v_mask: Tensor, q_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Compact video vector and video-query similarity (VLANet Eq. 13).

        ``v_comp = sum_k V_k`` (divided by the number of valid elements under
        ``attention_scale="count"``, which multiplied each by it), ``c = E(v_comp, Q)``.
        Returns ``(v_comp [B, D], c [B])``.
        """
        v_comp = (v * v_mask[..., None]).sum(1)
        if self.config.attention_scale == "count":
            v_comp = v_comp / v_mask.sum(-1, keepdim=True).clamp(min=1).to(v.dtype)
        return v_comp, self.vla_out(v_comp[:, None, :], q, q_mask)[:, 0]

    def _pairs(self, props: Tensor, valid: Tensor, q: Tensor, q_last: Tensor, q_mask: Tensor,
               vi: Tensor, qj: Tensor) -> dict:
        """Run selection + CCA + Eq. 13 on the (video ``vi[n]``, query ``qj[n]``) pairs."""
        L, K = props.shape[1:3]
        val = valid.expand(props.shape[0], L, K)[vi]  # [N, L, K]
        group_valid = val.any(1)  # [N, K]
        if self.config.surrogate:
            v, choice, sim = select_surrogates(props, q_last[qj], valid, vi)
            v_mask = group_valid
        else:
            P = props[vi]  # [N, L, K, D]: every proposal goes on
            v = P.reshape(P.shape[0], L * K, -1)
            sim = torch.einsum("nlkd,nd->nlk", P, q_last[qj]).masked_fill(~val, float("-inf"))
            choice = None
            v_mask = val.reshape(val.shape[0], L * K)
        v = v * v_mask[..., None]
        qq, qm = q[qj], q_mask[qj]
        v_att, q_att, weights = self.cca(v, qq, v_mask, qm)
        v_comp, c = self.similarity(v_att, q_att, v_mask, qm)
        if weights:
            log_w = torch.stack([w.clamp(min=1e-30).log() for w in weights]).sum(0)
            attention = torch.softmax(log_w.masked_fill(~v_mask, float("-inf")), dim=-1)
        else:
            attention = v_mask.to(v.dtype) / v_mask.sum(-1, keepdim=True).clamp(min=1)
        attention = torch.where(v_mask, attention, torch.zeros_like(attention))
        return {"c": c, "choice": choice, "similarity": sim, "video_attention": attention, "v_mask": v_mask,
                "q_mask": qm, "surrogates": v, "v_att": v_att, "q_att": q_att, "v_comp": v_comp, "video_weights": weights}

    def localisation_scores(self, out: dict, rule: str | None = None) -> Tensor:
        """Scores ``[B, K']`` that rank the surrogate proposals (higher first; ``-inf`` where invalid).

        ``rule`` (default ``config.localise``) is one of :data:`LOCALISE_RULES`:

        * ``"product"``: the renormalised product of every video-side attention weight (Eq. 9
          and each Eq. 11) = each element's share of ``v_comp`` (``out["video_attention"]``);
        * ``"cross"``: the product of the Eq. 11 weights only (renormalised);
        * ``"self"``: the Eq. 9 weights only (query-blind: they never read the words);
        * ``"align"``: ``E(s_k, Q)`` (VLANet Eq. 7 with the ``W_1, W_2`` of Eq. 13) between the
          surrogate feature and the attended query: the ``c`` the surrogate alone would get;
        * ``"align-attended"``: ``E(V_k, Q)`` on the attended element after the cascade;
        * ``"select"``: the Eq. 3 cosine ``s_k . w_M`` that chose the surrogate.

        A rule whose weights do not exist (``"self"`` without Eqs. 9-10, ``"cross"`` with
        ``cross_steps=0``) gives uniform scores, like the product of no weights.
        """
        rule = self.config.localise if rule is None else rule
        if rule not in LOCALISE_RULES:
            raise ValueError(f"rule must be one of {LOCALISE_RULES}, got {rule!r}")
        v_mask = out["v_mask"]
        weights = list(out["video_weights"])
        n_self = 1 if self.config.self_attention else 0
        if rule in ("product", "cross", "self"):
            chosen = {"product": weights, "cross": weights[n_self:], "self": weights[:n_self]}[rule]
            if chosen:
                score = torch.stack([w.clamp(min=1e-30).log() for w in chosen]).sum(0)
            else:
                score = torch.zeros(v_mask.shape, dtype=out["c"].dtype, device=v_mask.device)
            score = torch.softmax(score.masked_fill(~v_mask, float("-inf")), dim=-1)
        elif rule == "align":
            score = self.vla_out(out["surrogates"], out["q_att"], out["q_mask"])
        elif rule == "align-attended":
            score = self.vla_out(out["v_att"], out["q_att"], out["q_mask"])
        else:  # "select": the Eq. 3 cosine of each element
            sim = out["similarity"]
            if out["choice"] is not None:
                score = sim.gather(1, out["choice"][:, None, :]).squeeze(1)
            else:
                score = sim.reshape(sim.shape[0], -1)
        return score.masked_fill(~v_mask, float("-inf"))

    # ------------------------------------------------------------------ interface
    def _check(self, batch: dict) -> None:
        v, w = batch["video"], batch["words"]
        if v.ndim != 3 or v.shape[-1] != self.config.video_dim:
            raise ValueError(f"VLANet: video must be [B, T, {self.config.video_dim}], got {tuple(v.shape)}")
        if w.ndim != 2 or w.shape[0] != v.shape[0]:
            raise ValueError(f"VLANet: words must be [B, L] with B = {v.shape[0]}, got {tuple(w.shape)}")

    def forward(self, batch: dict) -> dict:
        """Positive pairs only. Returns the similarity ``c``, the surrogate windows and choice,
        the ranking attention ``video_attention [B, K']`` with its ``moments [B, K', 2]``,
        the word x time map ``V Q^T`` after the cascade (Fig. 5), and the encodings the
        loss reuses for negative pairs."""
        self._check(batch)
        words_mask = batch.get("words_mask", batch["words"] != 0)
        q, q_last = self.encode_query(batch["words"], words_mask)
        windows, valid = self.proposal_windows(batch)
        props = self.encode_proposals(batch["video"], batch.get("video_mask"), windows)
        B = props.shape[0]
        idx = torch.arange(B, device=props.device)
        out = self._pairs(props, valid, q, q_last, words_mask, idx, idx)
        win = windows.expand(B, *windows.shape[1:])
        if out["choice"] is not None:
            moments = win.gather(1, out["choice"][:, None, :, None].expand(-1, 1, -1, 2)).squeeze(1)
        else:
            moments = win.reshape(B, -1, 2)
        out.update(props=props, valid=valid, windows=win, moments=moments, q=q, q_last=q_last,
                   words_mask=words_mask,
                   word_time=torch.einsum("bkd,bmd->bkm", out["v_att"], out["q_att"]))
        return out

    def negative_pairs(self, batch: dict, out: dict) -> tuple[Tensor, Tensor]:
        """Similarity of each video with in-batch queries of *other* videos.

        Returns ``c_neg [B, J]`` and ``mask [B, J]``: with ``negatives="all"`` J = B and
        every query of another video; with ``"random"`` J = 1, one sampled uniformly.
        """
        vid = batch["video_idx"]
        B = vid.shape[0]
        allowed = vid[:, None] != vid[None, :]  # [B, B]
        dev = vid.device
        if self.config.negatives == "all":
            vi, qj = allowed.nonzero(as_tuple=True)
            c = out["props"].new_zeros(B, B)
            if len(vi):
                pairs = self._pairs(out["props"], out["valid"], out["q"], out["q_last"], out["words_mask"], vi, qj)
                c = c.index_put((vi, qj), pairs["c"])
            return c, allowed
        has = allowed.any(1)
        probs = torch.where(has[:, None], allowed.to(torch.float32), torch.ones(B, B, device=dev))
        qj = torch.multinomial(probs, 1).squeeze(1)
        pairs = self._pairs(out["props"], out["valid"], out["q"], out["q_last"], out["words_mask"],
                            torch.arange(B, device=dev), qj)
        return pairs["c"][:, None], has[:, None]

    def loss(self, batch: dict, out: dict) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 14 over in-batch negatives; parts: the loss and the mean positive/negative ``c``."""
        c_neg, mask = self.negative_pairs(batch, out)
        total = contrastive_loss(out["c"], c_neg, mask, self.config.margin)
        m = mask.to(c_neg.dtype)
        neg_mean = (c_neg * m).sum() / m.sum().clamp(min=1)
        return total, {"contrastive": total.detach(), "c_pos": out["c"].mean().detach(), "c_neg": neg_mean.detach()}

    @torch.no_grad()
    def predict(self, batch: dict, top_k: int = 10) -> tuple[Tensor, Tensor]:
        """Surrogate proposals ranked by :meth:`localisation_scores` (rule ``config.localise``), best first,
        before NMS.

        With ``candidates="didemo"`` all 21 moments are returned in :meth:`rank_didemo` order.
        Returns ``(moments [B, k, 2] in [0, 1], scores [B, k])``, ``k = min(top_k, candidates)``.
        """
        out = self.forward(batch)
        if self.config.candidates == "didemo":
            order, score = self._didemo_order(out)
            cand = out["windows"].reshape(out["windows"].shape[0], -1, 2)
            moments = cand.gather(1, order[..., None].expand(-1, -1, 2))
            k = min(int(top_k), moments.shape[1])
            return moments[:, :k], score[:, :k]
        score = self.localisation_scores(out)
        k = min(int(top_k), score.shape[1])
        top, idx = score.topk(k, dim=1)
        moments = out["moments"].gather(1, idx[..., None].expand(-1, -1, 2))
        return moments.clamp(0.0, 1.0), top

    def candidates(self) -> Tensor:
        """Every window ``predict`` can return, ``[K, 2]`` normalised (before the selection).

        ``candidates="groups"``: all L x K windows of the segment groups (180 with the paper's
        setting), scale-major; the selection picks one per group *per query*, so the set a
        query-blind ranking must be matched with is all of them. ``"didemo"``: the 21 moments
        of a 30-s video in :func:`wsg.proposals.didemo_candidates` order.
        """
        if self.config.candidates == "didemo":
            return didemo_moments(30.0).to(self.query_proj.weight.device)
        return self.windows.reshape(-1, 2).clone()

    def _didemo_order(self, out: dict) -> tuple[Tensor, Tensor]:
        """Flat (l, k) positions of all 21 valid candidates, best first, and a sortable score."""
        B, L, K = out["similarity"].shape
        sim = out["similarity"]  # [B, L, K], -inf where invalid
        # the rule's scores as within-query ranks in [0, 1): any rule's scale sorts the same way
        rank = self.localisation_scores(out).argsort(-1).argsort(-1).to(sim.dtype) / sim.new_tensor(K * L)
        if out["choice"] is not None:
            chosen = F.one_hot(out["choice"], L).transpose(1, 2).bool()  # [B, L, K]
            att = rank[:, None, :].expand(B, L, K)
        else:
            chosen = out["valid"].expand(B, L, K)
            att = rank.reshape(B, L, K)
        # selected surrogates first (by the localisation rule), then the others by their Eq. 3 similarity
        score = torch.where(chosen, 3.0 + att, sim.clamp(min=-1.0, max=1.0))
        score = score.masked_fill(~out["valid"].expand(B, L, K) | (DIDEMO_INDEX.to(sim.device) < 0)[None],
                                  float("-inf"))
        flat = score.reshape(B, -1)
        top, order = flat.topk(21, dim=1)
        return order, top

    @torch.no_grad()
    def rank_didemo(self, batch: dict) -> Tensor:
        """``[B, 21]`` permutations of the DiDeMo candidate indices (:func:`wsg.proposals.didemo_candidates`).

        For :func:`wsg.metrics.didemo_scores`. Needs ``candidates="didemo"``. Candidates
        that collapse to zero length in short videos are ranked last, in index order.
        """
        if self.config.candidates != "didemo":
            raise ValueError("rank_didemo needs VLANetConfig(candidates='didemo')")
        out = self.forward(batch)
        order, score = self._didemo_order(out)
        table = DIDEMO_INDEX.to(order.device).reshape(-1)
        ranked = table[order]  # [B, 21], -1 where the slot holds an invalid (collapsed) candidate
        # fill the invalid tail with the missing candidate indices, in index order
        ok = torch.isfinite(score) & (ranked >= 0)
        present = torch.zeros(ranked.shape[0], 22, dtype=torch.bool, device=ranked.device)
        present.scatter_(1, torch.where(ok, ranked, torch.full_like(ranked, 21)), True)  # column 21: a bin
        present = present[:, :21]
        missing_rank = torch.where(present, torch.full_like(ranked, 99), torch.arange(21, device=ranked.device))
        missing = missing_rank.sort(dim=1).values  # missing indices first, ascending
        n_ok = ok.sum(1, keepdim=True)
        pos = torch.arange(21, device=ranked.device)[None]
        tail = missing.gather(1, (pos - n_ok).clamp(min=0))
        return torch.where(pos < n_ok, ranked, tail)
