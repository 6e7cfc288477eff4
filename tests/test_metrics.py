"""Tests of wsg.metrics against hand-worked cases and naive reference loops."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wsg.metrics import didemo_iou, didemo_scores, nms, protocol_table, recall_at, temporal_iou
from wsg.proposals import didemo_candidates


# ------------------------------------------------------------------ temporal IoU


def test_iou_identical_disjoint_touching_nested():
    assert temporal_iou([0.0, 1.0], [0.0, 1.0]).item() == 1.0
    assert temporal_iou([0.0, 1.0], [2.0, 3.0]).item() == 0.0  # disjoint: clamped, not negative
    assert temporal_iou([0.0, 1.0], [1.0, 2.0]).item() == 0.0  # touching
    assert temporal_iou([0.0, 10.0], [2.0, 4.0]).item() == pytest.approx(0.2)  # nested
    assert temporal_iou([2.0, 6.0], [4.0, 8.0]).item() == pytest.approx(2 / 6)
    assert temporal_iou([3.0, 3.0], [3.0, 3.0]).item() == 0.0  # zero-length union
    assert temporal_iou([0, 2], [1, 2]).dtype.is_floating_point  # ints are accepted


def test_iou_broadcasting_matches_pairwise_loop():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 1, 2, generator=g).sort(-1).values
    b = torch.rand(1, 5, 2, generator=g).sort(-1).values
    out = temporal_iou(a, b)
    assert out.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            s1, e1 = a[i, 0].tolist()
            s2, e2 = b[0, j].tolist()
            inter = max(0.0, min(e1, e2) - max(s1, s2))
            assert out[i, j].item() == pytest.approx(inter / (max(e1, e2) - min(s1, s2)), abs=1e-6)
    assert isinstance(temporal_iou(np.array([[0.0, 1.0]]), [[0.5, 1.5]]), torch.Tensor)


# ------------------------------------------------------------------ NMS


def _naive_nms(moments, scores, thr, top_k=None):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        s1, e1 = moments[i]
        ok = True
        for k in kept:
            s2, e2 = moments[k]
            inter = max(0.0, min(e1, e2) - max(s1, s2))
            union = (e1 - s1) + (e2 - s2) - inter
            if union > 0 and inter / union > thr:
                ok = False
                break
        if ok:
            kept.append(i)
            if top_k is not None and len(kept) == top_k:
                break
    return kept


@pytest.mark.parametrize("seed", range(6))
def test_nms_matches_naive_reference(seed):
    rng = np.random.default_rng(seed)
    K = 40
    moments = np.sort(rng.uniform(0, 10, size=(K, 2)), axis=1)
    scores = rng.integers(0, 8, size=K).astype(float)  # many ties: stability matters
    for thr in (0.0, 0.3, 0.5, 0.9):
        for top_k in (None, 3):
            got = nms(torch.tensor(moments), torch.tensor(scores), thr, top_k).tolist()
            assert got == _naive_nms(moments.tolist(), scores.tolist(), thr, top_k)


def test_nms_long_list_past_the_prefix():
    # 100 near-duplicates on top exhaust the short prefix tried first; the result must
    # still equal the full greedy pass
    rng = np.random.default_rng(7)
    dups = np.stack([np.linspace(0, 0.01, 100), np.linspace(0.5, 0.51, 100)], axis=1)
    rest = np.sort(rng.uniform(0, 1, size=(30, 2)), axis=1)
    moments = np.concatenate([dups, rest])
    scores = -np.arange(len(moments), dtype=float)
    got = nms(torch.tensor(moments), torch.tensor(scores), 0.3, top_k=5).tolist()
    assert got == _naive_nms(moments.tolist(), scores.tolist(), 0.3, 5)
    assert got[0] == 0 and min(got[1:]) >= 100


def test_nms_strictly_greater_suppresses():
    moments = torch.tensor([[0.0, 2.0], [1.0, 2.0], [5.0, 6.0]])  # IoU(0, 1) = 0.5 exactly
    scores = torch.tensor([0.9, 0.8, 0.1])
    assert nms(moments, scores, 0.5).tolist() == [0, 1, 2]  # 0.5 is not > 0.5: kept
    assert nms(moments, scores, 0.49).tolist() == [0, 2]
    assert nms(moments, scores, 0.49, top_k=1).tolist() == [0]
    # equal scores: earlier index first
    assert nms(moments, torch.tensor([0.5, 0.5, 0.5]), 0.49).tolist() == [0, 2]


# ------------------------------------------------------------------ recall_at


def test_recall_iou_exactly_half_ge_vs_gt():
    gt = torch.tensor([[2.0, 6.0]])
    ranked = torch.tensor([[[2.0, 4.0], [10.0, 12.0]]])  # top-1 IoU = 2 / 4 = 0.5 exactly
    kw = dict(ns=(1,), ious=(0.5,))
    assert recall_at(ranked, gt, protocol="plain", **kw)["R@1,IoU=0.5"] == 100.0
    assert recall_at(ranked, gt, protocol="tall", **kw)["R@1,IoU=0.5"] == 100.0
    assert recall_at(ranked, gt, protocol="2d-tan", **kw)["R@1,IoU=0.5"] == 0.0
    assert recall_at(ranked, gt, protocol="2d-tan", **kw)["mIoU"] == pytest.approx(50.0)


def _tall_case():
    # query 0: ranks 1-5 miss, the exact answer is 6th; candidate 2 overlaps candidate 1
    # with IoU 7/13 = 0.538, i.e. between TALL's NMS thresholds 0.45 (m=0.5) and 0.65 (m=0.7).
    q0 = [[20, 30], [23, 33], [40, 50], [60, 70], [80, 90], [0, 10]]
    # query 1: top-1 is the answer.
    q1 = [[0, 10], [20, 30], [40, 50], [60, 70], [80, 90], [95, 99]]
    return torch.tensor([q0, q1], dtype=torch.float), torch.tensor([[0.0, 10.0], [0.0, 10.0]])


def test_tall_threshold_moves_r5_not_r1():
    ranked, gt = _tall_case()
    tall = recall_at(ranked, gt, ious=(0.5, 0.7), protocol="tall")
    plain = recall_at(ranked, gt, ious=(0.5, 0.7), protocol="plain")
    tan = recall_at(ranked, gt, ious=(0.5, 0.7), protocol="2d-tan")
    assert tall["R@5,IoU=0.5"] == 100.0  # NMS at 0.45 drops candidate 2, the answer enters the top 5
    assert tall["R@5,IoU=0.7"] == 50.0  # NMS at 0.65 keeps it, the answer stays 6th
    assert plain["R@5,IoU=0.5"] == plain["R@5,IoU=0.7"] == 50.0
    assert tan["R@5,IoU=0.5"] == tan["R@5,IoU=0.7"] == 100.0  # fixed 0.5 < 0.538
    for d in (tall, plain, tan):
        assert d["R@1,IoU=0.5"] == d["R@1,IoU=0.7"] == 50.0
        assert d["mIoU"] == pytest.approx(50.0)
    # overriding 2D-TAN's NMS threshold above 0.538 brings back the plain R@5
    assert recall_at(ranked, gt, ious=(0.5,), protocol="2d-tan", nms_threshold=0.6)["R@5,IoU=0.5"] == 50.0


def test_recall_keys_values_and_few_candidates():
    ranked = torch.tensor([[[0.0, 0.5], [0.5, 1.0]], [[0.6, 1.0], [0.0, 0.3]]])  # K = 2 < 5
    gt = torch.tensor([[0.0, 0.4], [0.0, 0.3]])
    out = recall_at(ranked, gt, ns=(1, 5), ious=(0.3, 0.7))
    assert list(out) == ["R@1,IoU=0.3", "R@1,IoU=0.7", "R@5,IoU=0.3", "R@5,IoU=0.7", "mIoU"]
    assert out["R@1,IoU=0.3"] == 50.0 and out["R@1,IoU=0.7"] == 50.0  # 0.8, then 0
    assert out["R@5,IoU=0.3"] == 100.0 and out["R@5,IoU=0.7"] == 100.0
    assert out["mIoU"] == pytest.approx(40.0)
    assert isinstance(out["mIoU"], float)
    for p in ("tall", "2d-tan"):
        assert recall_at(ranked, gt, protocol=p)["R@5,IoU=0.7"] == 100.0


def test_recall_matches_naive_loop_random():
    rng = np.random.default_rng(3)
    Q, K = 20, 12
    ranked = np.sort(rng.uniform(0, 1, size=(Q, K, 2)), axis=-1)
    gt = np.sort(rng.uniform(0, 1, size=(Q, 2)), axis=-1)
    got = recall_at(torch.tensor(ranked), torch.tensor(gt), protocol="tall", ious=(0.3, 0.5))
    for m in (0.3, 0.5):
        for n in (1, 5):
            hits = 0
            for q in range(Q):
                kept = _naive_nms(ranked[q].tolist(), [-i for i in range(K)], m - 0.05, n)
                hits += any(float(temporal_iou(ranked[q, k], gt[q])) >= m for k in kept)
            assert got[f"R@{n},IoU={m}"] == pytest.approx(100 * hits / Q)


def test_unknown_protocol_and_bad_override():
    ranked, gt = _tall_case()
    with pytest.raises(ValueError, match="plain, tall, 2d-tan"):
        recall_at(ranked, gt, protocol="charades")
    with pytest.raises(ValueError):
        recall_at(ranked, gt, protocol="tall", nms_threshold=0.5)


def test_protocol_table():
    ranked, gt = _tall_case()
    df = protocol_table(ranked, gt, ious=(0.5, 0.7))
    assert list(df.index) == ["plain", "tall", "2d-tan"]
    assert df.loc["tall", "R@5,IoU=0.7"] == 50.0
    assert df.loc["2d-tan", "R@5,IoU=0.7"] == 100.0
    assert list(df.columns)[-1] == "mIoU"


# ------------------------------------------------------------------ DiDeMo


def test_didemo_iou_chunks():
    assert didemo_iou((0, 0), (0, 1)).item() == 0.5
    assert didemo_iou((2, 4), (2, 4)).item() == 1.0
    assert didemo_iou((0, 1), (3, 5)).item() == 0.0
    assert didemo_iou((1, 3), (2, 5)).item() == pytest.approx(2 / 5)
    assert didemo_iou(torch.tensor([[0, 0], [0, 5]]), torch.tensor([0, 2])).tolist() == pytest.approx([1 / 3, 0.5])


def test_didemo_scores_hand_worked():
    cands = didemo_candidates()
    ident = list(range(21))
    r_c = [cands.index((3, 4))] + [i for i in ident if i != cands.index((3, 4))]
    rankings = [ident, ident, r_c, ident]
    times = [
        [(0, 0), (0, 0), (0, 0), (1, 1)],  # ranks 1,1,1,2 -> 1;  IoUs 1,1,1,0 -> 1
        [(0, 1), (1, 1), (2, 2), (1, 2)],  # ranks 7,2,3,12 -> (2+3+7)/3 = 4;  IoUs .5,0,0,0 -> 1/6
        [(3, 4), (3, 4)],  # two annotators: ranks 1,1 -> 1;  IoUs 1,1 -> 1
        [(5, 5), (4, 5), (3, 5), (2, 5)],  # ranks 6,21,20,18 -> 44/3;  IoUs all 0
    ]
    out = didemo_scores(rankings, times)
    assert out["R@1"] == pytest.approx(50.0)
    assert out["R@5"] == pytest.approx(75.0)
    assert out["mIoU"] == pytest.approx(100 * (1 + 1 / 6 + 1 + 0) / 4)
    assert didemo_scores(torch.tensor(rankings), times) == out


def test_didemo_oracle_r1_needs_consensus():
    cands = didemo_candidates()
    times = [[(0, 0), (1, 1), (2, 2), (3, 3)]]  # four different moments
    for target in times[0]:
        t = cands.index(target)
        ranking = [t] + [cands.index(p) for p in times[0] if p != target]
        ranking += [i for i in range(21) if i not in ranking]
        out = didemo_scores([ranking], times)
        assert out["R@1"] == 0.0  # best 3 ranks are 1, 2, 3 -> mean 2
        assert out["R@5"] == 100.0
        assert out["mIoU"] == pytest.approx(100 / 3)  # IoUs 1, 0, 0
    # with three agreeing annotators the oracle does count
    assert didemo_scores([list(range(21))], [[(0, 0), (0, 0), (0, 0), (4, 5)]])["R@1"] == 100.0


def test_didemo_scores_rejects_bad_input():
    with pytest.raises(ValueError):
        didemo_scores([[0] * 21], [[(0, 0)]])  # not a permutation
    with pytest.raises(ValueError):
        didemo_scores([list(range(21))], [[(3, 2)]])  # not a candidate
    assert math.isclose(didemo_scores([list(range(21))], [[(0, 0)]])["mIoU"], 100.0)


def test_read_only_numpy_input_gives_no_warning():
    import warnings

    import numpy as np

    a = np.array([[0.0, 1.0]])
    a.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(temporal_iou(a, a)[0]) == 1.0


def test_best_candidate_iou_against_a_loop():
    from wsg.metrics import best_candidate_iou, temporal_iou

    g = torch.Generator().manual_seed(0)
    s = torch.rand(30, generator=g) * 0.7
    gt = torch.stack([s, s + 0.05 + 0.25 * torch.rand(30, generator=g)], 1)
    c = torch.rand(12, generator=g) * 0.8
    cands = torch.stack([c, c + 0.2], 1)
    loop = torch.tensor([max(float(temporal_iou(k, m)) for k in cands) for m in gt])
    assert torch.allclose(best_candidate_iou(cands, gt, chunk=7), loop.to(best_candidate_iou(cands, gt).dtype))
    assert best_candidate_iou(torch.tensor([[0.2, 0.4]]), torch.tensor([[0.2, 0.4], [0.5, 0.6]])).tolist() == [1.0, 0.0]
