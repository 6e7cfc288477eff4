"""Candidate moments: sliding windows, all (s, e) spans, the 21 DiDeMo moments and
MARN's 2D start x scale proposal map with its sampling-weight matrix.

Conventions. A video of ``T`` clips covers normalised time [0, 1]; clip ``i`` covers
[i/T, (i+1)/T]. Every function returns torch tensors of moments ``[..., 2]`` as
(start, end) normalised to [0, 1] unless its docstring says otherwise. Multiply by
the video duration to get seconds.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import Tensor

__all__ = [
    "sliding_windows",
    "proportional_windows",
    "all_spans",
    "span_index",
    "didemo_candidates",
    "didemo_candidate_index",
    "didemo_moments",
    "ProposalMap",
    "proposal_map",
    "sampling_matrix",
    "sampling_matrix_nbytes",
    "apply_sampling",
]


def _check_clips(num_clips: int) -> int:
    if int(num_clips) != num_clips or num_clips < 1:
        raise ValueError(f"num_clips must be a positive integer, got {num_clips!r}")
    return int(num_clips)


def _check_scales(scales: Sequence[int]) -> Tensor:
    s = torch.as_tensor(list(scales))
    if s.ndim != 1 or s.numel() == 0:
        raise ValueError("scales must be a non-empty sequence of clip counts")
    if s.is_floating_point():
        if not torch.equal(s, s.round()):
            raise ValueError(f"scales are clip counts and must be integers, got {list(scales)}")
    s = s.long()
    if (s < 1).any():
        raise ValueError(f"scales must be >= 1 clip, got {list(scales)}")
    return s


# --------------------------------------------------------------------------- windows


def sliding_windows(
    num_clips: int,
    sizes: Sequence[int],
    stride: int | None = None,
    overlap: float | None = None,
) -> Tensor:
    """Sliding windows over a video of ``num_clips`` clips, as TALL's candidates.

    A window of ``w`` clips starting at clip ``i`` is the moment [i/T, (i+w)/T].
    ``sizes`` are absolute window lengths in clips. Give at most one of ``stride``
    (in clips, shared by all sizes) or ``overlap`` (a fraction in [0, 1): each size
    ``w`` then slides by ``max(1, round(w * (1 - overlap)))`` clips, which is how
    TALL's "80 % overlap" windows are defined; rounding half up); with neither,
    the stride is 1.
    Windows always lie inside the video: starts run 0, stride, 2*stride, ... while
    ``start + w <= T``, so the last window need not be flush with the video end
    (as in TALL). Sizes larger than ``T`` give no window.

    Returns:
        ``[K, 2]`` float32, grouped by size (in the order given), then by start.
    """
    T = _check_clips(num_clips)
    if stride is not None and overlap is not None:
        raise ValueError("give either stride or overlap, not both")
    if overlap is not None and not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if stride is not None and (int(stride) != stride or stride < 1):
        raise ValueError(f"stride must be a positive integer number of clips, got {stride}")
    out = []
    for w in _check_scales(sizes).tolist():  # loop over the (few) sizes only
        if w > T:
            continue
        step = int(stride) if stride is not None else 1
        if overlap is not None:
            step = max(1, int(math.floor(w * (1.0 - overlap) + 0.5)))
        starts = torch.arange(0, T - w + 1, step, dtype=torch.float64)
        out.append(torch.stack([starts, starts + w], dim=-1))
    if not out:
        return torch.zeros(0, 2)
    return (torch.cat(out) / T).float()


def proportional_windows(
    fractions: Sequence[float] = (0.2, 0.3, 0.4, 0.5), overlap: float = 0.8
) -> Tensor:
    """Duration-proportional windows in normalised time (lengths are fractions of the video).

    For each fraction ``f`` the windows are [k*d, k*d + f] with stride
    ``d = f * (1 - overlap)``, k = 0, 1, ..., kept while the end is <= 1 (+1e-9 for
    round-off). Our choice: when the last such window stops short of 1, the window
    flush with the end, [1 - f, 1], is added too, so the end of every video is
    covered at every scale. Ends are clipped to 1.

    Returns:
        ``[K, 2]`` float32, grouped by fraction, then by start.
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    out = []
    for f in fractions:  # loop over the (few) fractions only
        f = float(f)
        if not 0.0 < f <= 1.0:
            raise ValueError(f"fractions must lie in (0, 1], got {f}")
        d = f * (1.0 - overlap)
        n = int(math.floor((1.0 - f) / d + 1e-9)) + 1
        starts = torch.arange(n, dtype=torch.float64) * d
        win = torch.stack([starts, starts + f], dim=-1)
        win = win[win[:, 1] <= 1.0 + 1e-9]
        if win[-1, 1] < 1.0 - 1e-9:
            win = torch.cat([win, torch.tensor([[1.0 - f, 1.0]], dtype=torch.float64)])
        out.append(win)
    return torch.cat(out).clamp(0.0, 1.0).float()


def all_spans(num_clips: int) -> tuple[Tensor, Tensor]:
    """Every (start clip s, end clip e) span, as in 2D-TAN's T x T map.

    Returns:
        spans ``[T, T, 2]`` float32 with ``spans[s, e] = [s/T, (e+1)/T]`` (end clip
        included), and valid ``[T, T]`` bool, True where ``s <= e``.
    """
    T = _check_clips(num_clips)
    idx = torch.arange(T, dtype=torch.float64)
    s, e = torch.meshgrid(idx, idx, indexing="ij")
    spans = torch.stack([s / T, (e + 1) / T], dim=-1).float()
    return spans, s <= e


def span_index(num_clips: int) -> Tensor:
    """Flat indices ``s * T + e`` of the valid spans (``s <= e``) in row-major order.

    ``all_spans(T)[0].reshape(-1, 2)[span_index(T)]`` lists the ``T(T+1)/2`` valid
    moments; use the same index on a flattened ``[..., T, T]`` score map.
    """
    _, valid = all_spans(num_clips)
    return valid.reshape(-1).nonzero().squeeze(1)


# --------------------------------------------------------------------------- DiDeMo


def didemo_candidates() -> list[tuple[int, int]]:
    """The 21 DiDeMo candidate moments as (first chunk, last chunk) pairs, official order.

    The order of the LocalizingMoments data loader: the six single chunks
    (0,0), (1,1), ..., (5,5), then the multi-chunk pairs (0,1), (0,2), ..., (0,5),
    (1,2), ..., (4,5). Rankings in :func:`wsg.metrics.didemo_scores` index this list.
    """
    singles = [(i, i) for i in range(6)]
    multi = [(i, j) for i in range(6) for j in range(i + 1, 6)]
    return singles + multi


def _didemo_lookup() -> Tensor:
    table = torch.full((6, 6), -1, dtype=torch.long)
    ij = torch.tensor(didemo_candidates())
    table[ij[:, 0], ij[:, 1]] = torch.arange(len(ij))
    return table


_DIDEMO_LOOKUP = _didemo_lookup()


def didemo_candidate_index(pairs) -> Tensor:
    """Index into :func:`didemo_candidates` of each (i, j) chunk pair in ``pairs [..., 2]``.

    Raises:
        ValueError: for a pair that is not one of the 21 candidates.
    """
    p = torch.as_tensor(pairs, dtype=torch.long)
    if p.shape[-1:] != (2,):
        raise ValueError(f"chunk pairs must have a last dimension of 2, got shape {tuple(p.shape)}")
    ok = (p >= 0).all(-1) & (p <= 5).all(-1) & (p[..., 0] <= p[..., 1])
    if not bool(ok.all()):
        bad = p[~ok][0].tolist()
        raise ValueError(f"{bad} is not a DiDeMo candidate (need 0 <= i <= j <= 5)")
    return _DIDEMO_LOOKUP[p[..., 0], p[..., 1]]


def didemo_moments(
    duration: float = 30.0, num_segments: int = 6, chunk_seconds: float = 5.0
) -> Tensor:
    """The 21 DiDeMo candidates as normalised moments ``[21, 2]`` (official order).

    Candidate (i, j) spans seconds [5i, 5(j+1)] (LocalizingMoments). The video's
    footage ends at ``min(duration, chunk_seconds * num_segments)``; both ends are
    clipped there, so the last chunk is truncated at the video end, and chunks that
    lie wholly past it (e.g. chunk 5 when ``num_segments == 5``) collapse to a
    zero-length moment at the end. Seconds are divided by ``duration``.
    """
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    end = min(float(duration), chunk_seconds * num_segments)
    ij = torch.tensor(didemo_candidates(), dtype=torch.float64)
    sec = torch.stack([ij[:, 0] * chunk_seconds, (ij[:, 1] + 1) * chunk_seconds], dim=-1)
    return (sec.clamp(max=end) / duration).float()


# --------------------------------------------------------------------------- MARN map


class ProposalMap(NamedTuple):
    """MARN's proposal location map: ``moments [T, S, 2]`` normalised, ``valid [T, S]`` bool."""

    moments: Tensor
    valid: Tensor


def _scale_strides(scales: Tensor, stride_fraction: float | None) -> Tensor:
    if stride_fraction is None:
        return torch.ones_like(scales)
    if stride_fraction <= 0:
        raise ValueError(f"stride_fraction must be positive, got {stride_fraction}")
    # round half up (not Python's half-to-even): scale 6 at 1/4 -> stride 2
    return torch.floor(scales.double() * stride_fraction + 0.5).long().clamp(min=1)


def proposal_map(
    num_clips: int, scales: Sequence[int], stride_fraction: float | None = None
) -> ProposalMap:
    """The T x S proposal location map of MARN (Sec. 3.1: T start clips x S scales).

    Proposal (t, k) starts at clip ``t`` and lasts ``s_k = scales[k]`` clips:
    [t/T, (t + s_k)/T]. It is invalid when it runs past the video end
    (``t + s_k > T``) and, with ``stride_fraction``, when its start is skipped by
    sparse sampling: scale ``s`` keeps only starts with ``t % stride == 0`` where
    ``stride = max(1, round(s * stride_fraction))`` (rounding half up).
    ``stride_fraction=0.25`` is MARN's ActivityNet setting ("a dynamic stride of
    s/4", Sec. 4.2); ``None`` keeps every start (stride 1, MARN's Charades setting).
    """
    T = _check_clips(num_clips)
    s = _check_scales(scales)
    t = torch.arange(T)[:, None]  # [T, 1]
    valid = (t + s[None, :] <= T) & (t % _scale_strides(s, stride_fraction)[None, :] == 0)
    start = t.double().expand(T, s.numel())
    moments = torch.stack([start / T, (start + s[None, :]) / T], dim=-1).float()
    return ProposalMap(moments, valid)


def sampling_matrix(
    num_clips: int,
    scales: Sequence[int],
    num_points: int,
    endpoints: str = "inclusive",
    stride_fraction: float | None = None,
) -> Tensor:
    """MARN's pre-computed sampling-weight matrix ``W [T, S, N, T]`` (MARN Eqs. 4-5).

    Proposal (t, k) (start clip ``t``, ``L = scales[k]`` clips, see
    :func:`proposal_map`) is read at ``N`` points ``t_n`` given in clip-index
    coordinates (clip ``i``'s feature sits at position ``i``). MARN borrows the
    scheme from BMN, where two placements are in circulation:

    - ``"inclusive"``: ``t_n = linspace(t, t + L - 1, N)``, from the first to the
      last covered clip (both included); with ``N == 1`` the single point is the
      middle, ``t + (L - 1) / 2``.
    - ``"bins"``: [t, t + L) is cut into ``N`` equal bins and each point is its bin's
      centre shifted into clip-index coordinates, ``t_n = t + (n + 0.5) * L / N - 0.5``.

    Each point interpolates linearly between clips ``floor(t_n)`` and
    ``floor(t_n) + 1`` with weights ``1 - dec(t_n)`` and ``dec(t_n)`` (MARN Eq. 5).
    Points at or beyond ``T - 1`` take the last clip alone, points at or before 0
    the first clip alone. Every point of a valid proposal therefore has weights
    summing to 1 over the last axis; invalid proposals (past the end, or skipped by
    ``stride_fraction``) are all zeros.

    Memory: ``T * S * N * T`` float32 values. MARN's ActivityNet setting
    ``W in R^{128 x 64 x 4 x 128}`` is 128 * 64 * 4 * 128 = 4,194,304 values
    * 4 bytes = 16,777,216 bytes, i.e. 16.8 MB (16 MiB); see
    :func:`sampling_matrix_nbytes`.
    """
    T = _check_clips(num_clips)
    s = _check_scales(scales).double()
    N = int(num_points)
    if N < 1:
        raise ValueError(f"num_points must be >= 1, got {num_points}")
    t = torch.arange(T, dtype=torch.float64)[:, None, None]  # [T, 1, 1]
    L = s[None, :, None]  # [1, S, 1]
    n = torch.arange(N, dtype=torch.float64)[None, None, :]  # [1, 1, N]
    if endpoints == "inclusive":
        if N == 1:
            pts = t + (L - 1) / 2 + 0 * n
        else:
            pts = t + n * (L - 1) / (N - 1)
    elif endpoints == "bins":
        pts = t + (n + 0.5) * L / N - 0.5
    else:
        raise ValueError(f"unknown endpoints {endpoints!r}; known: 'inclusive', 'bins'")
    pts = pts.clamp(0.0, T - 1.0)  # [T, S, N]
    lo = pts.floor()
    frac = pts - lo
    lo = lo.long()
    hi = (lo + 1).clamp(max=T - 1)
    W = torch.zeros(T, s.numel(), N, T, dtype=torch.float64)
    W.scatter_add_(-1, lo[..., None], (1.0 - frac)[..., None])
    W.scatter_add_(-1, hi[..., None], frac[..., None])
    valid = proposal_map(T, s.long().tolist(), stride_fraction).valid
    return (W * valid[:, :, None, None]).float()


def sampling_matrix_nbytes(
    num_clips: int, num_scales: int, num_points: int, bytes_per_value: int = 4
) -> int:
    """Bytes of a ``[T, S, N, T]`` sampling matrix: ``T * S * N * T * bytes_per_value``.

    ``sampling_matrix_nbytes(128, 64, 4) == 16_777_216`` (16.8 MB, MARN's ActivityNet map).
    """
    return int(num_clips) ** 2 * int(num_scales) * int(num_points) * int(bytes_per_value)


def apply_sampling(features: Tensor, W: Tensor) -> Tensor:
    """Sample proposal features with a sampling matrix in one contraction (MARN Eq. 2).

    Args:
        features: ``[B, T, C]`` clip features (MARN's reduced ``F_v hat``).
        W: ``[T, S, N, T]`` from :func:`sampling_matrix`.

    Returns:
        ``[B, C, N, T, S]``: channels first, then the ``N`` sampled points, then the
        ``T x S`` proposal map, ready for MARN's Conv3d with kernel ``(N, 1, 1)``
        (the model's next step), which collapses the point axis.
    """
    if features.ndim != 3 or W.ndim != 4 or features.shape[1] != W.shape[-1]:
        raise ValueError(
            f"need features [B, T, C] and W [T, S, N, T] with the same T, got "
            f"{tuple(features.shape)} and {tuple(W.shape)}"
        )
    return torch.einsum("btc,xsnt->bcnxs", features, W.to(features.dtype))
