"""Tests of the blind baselines in wsg.baselines."""
from __future__ import annotations

import pytest
import torch

from wsg.baselines import MomentPrior, random_ranking
from wsg.metrics import didemo_scores, recall_at
from wsg.proposals import didemo_candidates, sliding_windows


def test_random_ranking_is_seeded_permutation():
    cands = sliding_windows(10, [2, 4], stride=1)
    r = random_ranking(50, cands, seed=3)
    assert r.shape == (50, len(cands), 2)
    key = lambda x: (x[:, 0] * 100 + x[:, 1]).sort().values  # noqa: E731
    for q in range(50):
        assert torch.equal(key(r[q]), key(cands))  # every row holds each candidate once
    assert torch.equal(r, random_ranking(50, cands, seed=3))
    assert not torch.equal(r, random_ranking(50, cands, seed=4))
    assert len({tuple(r[q, 0].tolist()) for q in range(50)}) > 1  # rows differ


def test_moment_prior_picks_most_frequent_moment():
    cands = torch.tensor([[0.0, 0.5], [0.5, 1.0], [0.0, 0.3], [0.25, 0.75]])
    train = torch.tensor([[0.0, 0.28]] * 5 + [[0.5, 0.95]] * 3 + [[0.27, 0.73]])
    prior = MomentPrior().fit(train, cands)
    assert prior.counts.tolist() == [0, 3, 5, 1]
    assert prior.order.tolist() == [2, 1, 3, 0]
    ranked = prior.rank(3)
    assert ranked.shape == (3, 4, 2)
    assert torch.equal(ranked[2, 0], torch.tensor([0.0, 0.3]))
    # scored on a test set drawn like training, the prior beats chance at R@1
    gt = torch.tensor([[0.0, 0.28], [0.02, 0.3]])
    assert recall_at(prior.rank(2), gt, ns=(1,), ious=(0.7,))["R@1,IoU=0.7"] == 100.0


def test_moment_prior_tie_break_by_mean_iou_then_index():
    cands = torch.tensor([[0.0, 0.5], [0.5, 1.0], [0.4, 0.6], [0.9, 1.0]])
    train = torch.tensor([[0.5, 1.0], [0.5, 1.0]])
    prior = MomentPrior().fit(train, cands)
    # counts [0, 2, 0, 0]; the zero-count tie is broken by mean IoU: c3 0.2 > c2 1/6 > c0 0
    assert prior.counts.tolist() == [0, 2, 0, 0]
    assert torch.allclose(prior.mean_iou, torch.tensor([0.0, 1.0, 1 / 6, 0.2], dtype=torch.float64))
    assert prior.order.tolist() == [1, 3, 2, 0]
    # identical candidates: the earliest collects every count
    twin = MomentPrior().fit(torch.tensor([[0.0, 0.5]]), torch.tensor([[0.0, 0.5], [0.0, 0.5]]))
    assert twin.counts.tolist() == [1, 0] and twin.order.tolist() == [0, 1]


def test_didemo_prior():
    c = didemo_candidates()
    train_times = [[(1, 1), (1, 1), (0, 0), (1, 2)], [(1, 1), (0, 0)], [(4, 5)]]
    ranking = MomentPrior.didemo(train_times)
    assert sorted(ranking) == list(range(21))
    assert ranking[:4] == [c.index((1, 1)), c.index((0, 0)), c.index((1, 2)), c.index((4, 5))]
    assert ranking[4:] == [i for i in range(21) if i not in ranking[:4]]  # zero counts: index order
    out = didemo_scores([ranking], [[(1, 1), (1, 1), (1, 1), (0, 0)]])
    assert out["R@1"] == 100.0 and out["mIoU"] == 100.0


def test_blind_baselines_table_on_a_benchmark(small_bench):
    """The prior ranks every query the same way, fitted on training moments only."""
    from wsg.baselines import MomentPrior, blind_baselines
    from wsg.metrics import recall_at
    from wsg.proposals import all_spans

    table = blind_baselines(small_bench, "test", protocol="plain")
    assert list(table.index) == ["random", "prior", "events"]
    spans, valid = all_spans(small_bench.num_clips)
    gt = small_bench.dataset("test").moments
    expected = recall_at(MomentPrior().fit(small_bench.train_moments(), spans[valid]).rank(len(gt)), gt)
    assert table.loc["prior", "R@1,IoU=0.5"] == pytest.approx(expected["R@1,IoU=0.5"])
    # chance: with ~528 candidates, random R@1 at IoU 0.7 is tiny
    assert table.loc["random", "R@1,IoU=0.7"] < 10
