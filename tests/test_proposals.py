"""Tests of wsg.proposals: windows, spans, DiDeMo candidates, MARN's proposal map (MARN Eqs. 2, 4-5)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wsg.proposals import (
    all_spans,
    apply_sampling,
    didemo_candidate_index,
    didemo_candidates,
    didemo_moments,
    proportional_windows,
    proposal_map,
    sampling_matrix,
    sampling_matrix_nbytes,
    sliding_windows,
    span_index,
)


def test_sliding_windows_stride_and_overlap():
    w = sliding_windows(8, [4], stride=2)
    assert torch.allclose(w * 8, torch.tensor([[0.0, 4.0], [2.0, 6.0], [4.0, 8.0]]))
    # overlap 0.75 on a 4-clip window -> stride 1; on a 2-clip window -> round(0.5) = 1
    w = sliding_windows(5, [2, 4], overlap=0.75)
    expect = [[0, 2], [1, 3], [2, 4], [3, 5], [0, 4], [1, 5]]
    assert torch.allclose(w * 5, torch.tensor(expect, dtype=torch.float))
    # last window need not be flush with the end; sizes larger than T give nothing
    w = sliding_windows(7, [3, 9], stride=3)
    assert torch.allclose(w * 7, torch.tensor([[0.0, 3.0], [3.0, 6.0]]))
    assert float(w.max()) <= 1.0
    with pytest.raises(ValueError):
        sliding_windows(8, [4], stride=2, overlap=0.5)


def test_proportional_windows():
    w = proportional_windows((0.5,), overlap=0.5)
    assert torch.allclose(w, torch.tensor([[0.0, 0.5], [0.25, 0.75], [0.5, 1.0]]))
    w = proportional_windows((0.4,), overlap=0.5)  # stride 0.2: ..., [0.4, 0.8], then flush [0.6, 1.0]
    assert torch.allclose(w, torch.tensor([[0.0, 0.4], [0.2, 0.6], [0.4, 0.8], [0.6, 1.0]]))
    w = proportional_windows()  # defaults: 0.2..0.5, 80 % overlap
    assert float(w[:, 1].max()) == 1.0 and float(w[:, 0].min()) == 0.0
    lengths = (w[:, 1] - w[:, 0]).numpy()
    for f in (0.2, 0.3, 0.4, 0.5):
        starts = w[np.isclose(lengths, f, atol=1e-6), 0].numpy()
        d = f * 0.2
        grid = np.arange(0, 1 - f + 1e-9, d)
        expect = grid if math.isclose(grid[-1] + f, 1.0) else np.append(grid, 1 - f)
        assert np.allclose(starts, expect, atol=1e-6)


def test_all_spans_and_index():
    spans, valid = all_spans(4)
    assert torch.allclose(spans[1, 2], torch.tensor([0.25, 0.75]))
    assert valid.sum().item() == 10 and not valid[2, 1] and valid[2, 2]
    idx = span_index(4)
    assert idx.tolist() == [0, 1, 2, 3, 5, 6, 7, 10, 11, 15]
    assert torch.allclose(spans.reshape(-1, 2)[idx][4], torch.tensor([0.25, 0.5]))


def test_didemo_candidates_order_and_moments():
    c = didemo_candidates()
    assert len(c) == 21 and len(set(c)) == 21
    assert c[:6] == [(i, i) for i in range(6)]
    assert c[6:11] == [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)]
    assert c[11] == (1, 2) and c[-1] == (4, 5)
    assert didemo_candidate_index([(0, 0), (4, 5), (1, 2)]).tolist() == [0, 20, 11]
    with pytest.raises(ValueError):
        didemo_candidate_index([(2, 1)])
    m = didemo_moments(27.0)
    assert torch.allclose(m[5] * 27, torch.tensor([25.0, 27.0]))  # last chunk truncated
    assert torch.allclose(m[7] * 27, torch.tensor([0.0, 15.0]))  # (0, 2)
    m = didemo_moments(30.0)
    assert torch.allclose(m[10], torch.tensor([0.0, 1.0]))
    m = didemo_moments(30.0, num_segments=5)  # chunk 5 has no footage
    assert torch.allclose(m[5] * 30, torch.tensor([25.0, 25.0]))


def test_proposal_map_valid_mask_with_quarter_stride():
    pm = proposal_map(16, [4, 8, 6], stride_fraction=0.25)
    assert pm.moments.shape == (16, 3, 2) and pm.valid.shape == (16, 3)
    assert torch.allclose(pm.moments[3, 2] * 16, torch.tensor([3.0, 9.0]))
    # scale 4: stride 1, starts 0..12; scale 8: stride 2, starts 0,2,..,8; scale 6: stride round(1.5) = 2
    assert pm.valid[:, 0].nonzero().squeeze(1).tolist() == list(range(13))
    assert pm.valid[:, 1].nonzero().squeeze(1).tolist() == [0, 2, 4, 6, 8]
    assert pm.valid[:, 2].nonzero().squeeze(1).tolist() == [0, 2, 4, 6, 8, 10]
    dense = proposal_map(16, [8]).valid[:, 0]
    assert dense.nonzero().squeeze(1).tolist() == list(range(9))


def _reference_point(t, L, n, N, endpoints):
    if endpoints == "inclusive":
        return t + (L - 1) / 2 if N == 1 else t + n * (L - 1) / (N - 1)
    return t + (n + 0.5) * L / N - 0.5


def _reference_W(T, scales, N, endpoints, stride_fraction=None):
    W = np.zeros((T, len(scales), N, T))
    for t in range(T):
        for k, L in enumerate(scales):
            if t + L > T:
                continue
            if stride_fraction is not None:
                step = max(1, int(L * stride_fraction + 0.5))
                if t % step:
                    continue
            for n in range(N):
                x = min(max(_reference_point(t, L, n, N, endpoints), 0.0), T - 1.0)
                i = int(math.floor(x))
                d = x - i
                W[t, k, n, i] += 1 - d
                if d > 0:
                    W[t, k, n, i + 1] += d
    return W


@pytest.mark.parametrize("endpoints", ["inclusive", "bins"])
@pytest.mark.parametrize("N", [1, 3, 4])
def test_sampling_matrix_matches_loop(endpoints, N):
    T, scales = 12, [1, 3, 5, 12]
    W = sampling_matrix(T, scales, N, endpoints=endpoints, stride_fraction=0.5)
    assert W.dtype == torch.float32 and W.shape == (T, 4, N, T)
    ref = _reference_W(T, scales, N, endpoints, stride_fraction=0.5)
    np.testing.assert_allclose(W.numpy(), ref, atol=1e-6)
    valid = proposal_map(T, scales, stride_fraction=0.5).valid
    sums = W.sum(-1)
    assert torch.allclose(sums[valid], torch.ones(()))
    assert (sums[~valid] == 0).all()


def test_sampling_matrix_hand_worked():
    W = sampling_matrix(4, [2], 3, endpoints="inclusive")
    # proposal starting at clip 1 of length 2: points 1, 1.5, 2
    assert torch.allclose(W[1, 0], torch.tensor([[0, 1, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 1, 0]], dtype=torch.float))
    assert (W[3, 0] == 0).all()  # [3, 5) runs past the end
    W = sampling_matrix(4, [2], 3, endpoints="bins")
    # points 1 + (n + .5) * 2/3 - .5 = 5/6, 1.5, 13/6
    expect = torch.tensor([[1 / 6, 5 / 6, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 5 / 6, 1 / 6]])
    assert torch.allclose(W[1, 0], expect, atol=1e-6)
    assert torch.allclose(W[0, 0, 0], torch.tensor([1.0, 0, 0, 0]))  # point -1/6 clamps to clip 0
    with pytest.raises(ValueError):
        sampling_matrix(4, [2], 3, endpoints="edges")


def test_sampling_matrix_memory():
    assert sampling_matrix_nbytes(128, 64, 4) == 128 * 64 * 4 * 128 * 4 == 16_777_216
    W = sampling_matrix(16, [2, 4], 4)
    assert W.numel() * W.element_size() == sampling_matrix_nbytes(16, 2, 4)


@pytest.mark.parametrize("endpoints", ["inclusive", "bins"])
def test_apply_sampling_matches_np_interp(endpoints):
    T, scales, N, B, C = 10, [2, 3, 7], 4, 2, 3
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    W = sampling_matrix(T, scales, N, endpoints=endpoints)
    out = apply_sampling(feats, W)
    assert out.shape == (B, C, N, T, len(scales))
    grid = np.arange(T)
    for b in range(B):
        for t in range(T):
            for k, L in enumerate(scales):
                for n in range(N):
                    if t + L > T:
                        expect = np.zeros(C)
                    else:
                        x = _reference_point(t, L, n, N, endpoints)
                        expect = [np.interp(x, grid, feats[b, :, c].numpy()) for c in range(C)]
                    np.testing.assert_allclose(out[b, :, n, t, k].numpy(), expect, atol=1e-5)
