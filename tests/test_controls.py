"""The controls of the evidence standard, on hand-made cases whose values are known."""
import pandas as pd
import pytest
import torch

from wsg.baselines import blind_baselines, events_chance
from wsg.controls import BLIND_TOKEN, query_blind, swapped_queries, table
from wsg.data.dataset import normalised_moments
from wsg.models import GroundingModel
from wsg.proposals import all_spans
from wsg.metrics import bootstrap_interval, event_hit, per_query_scores, recall_at


def _events_table():
    # video a: 2 events, b: 3 events, c: 1 event -> 3 videos, 6 queries
    return pd.DataFrame({"video_id": ["a", "b", "a", "b", "c", "b"], "duration": [10.0] * 6,
                         "start": [0, 0, 5, 3, 1, 6], "end": [4, 2, 9, 5, 8, 9],
                         "sentence": ["a1", "b1", "a2", "b2", "c1", "b3"]})


def test_events_chance_is_videos_over_queries_at_r1_and_perfect_at_rk():
    t = _events_table()
    gt = normalised_moments(t)
    for seed in range(5):
        ranked = events_chance(t, seed)
        assert ranked.shape == (6, 3, 2)
        r = recall_at(ranked, gt, ns=(1, 3), protocol="plain")
        assert r["R@1,IoU=0.5"] == pytest.approx(100 * 3 / 6)
        assert r["R@1,IoU=0.3"] == r["R@1,IoU=0.7"] == pytest.approx(50.0)
        assert r["R@3,IoU=0.7"] == 100.0
        # a query-blind rule: every query of a video gets the same ranking
        for v in "abc":
            rows = torch.tensor((t.video_id == v).to_numpy())
            assert (ranked[rows] == ranked[rows][0]).all()
            # ... made of the video's own moments only
            assert set(map(tuple, ranked[rows][0].tolist())) == set(map(tuple, gt[rows].tolist()))


def test_blind_baselines_has_the_events_row(small_bench):
    df = blind_baselines(small_bench, "test")
    assert list(df.index) == ["random", "prior", "events"]
    t = small_bench.splits["test"]
    assert df.loc["events", "R@1,IoU=0.5"] == pytest.approx(100 * t.video_id.nunique() / len(t))


def test_event_hit_counts_centres_inside_the_ground_truth():
    gt = torch.tensor([[0.2, 0.6], [0.2, 0.6], [0.0, 0.1], [0.5, 1.0]])
    top1 = torch.tensor([[0.3, 0.5], [0.5, 0.9], [0.2, 0.4], [0.0, 1.0]])  # centres .4, .7, .3, .5
    assert event_hit(top1, gt) == pytest.approx(50.0)
    assert event_hit(top1[:, None].expand(-1, 3, -1), gt) == pytest.approx(50.0)
    with pytest.raises(ValueError):
        event_hit(top1[:3], gt)


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_more_queries():
    small = torch.tensor([1.0, 0.0] * 20)
    large = torch.tensor([1.0, 0.0] * 2000)
    lo, hi = bootstrap_interval(small)
    assert lo < 50.0 < hi and hi - lo > 20  # 40 queries: about ±15 points
    lo2, hi2 = bootstrap_interval(large)
    assert lo2 < 50.0 < hi2 and hi2 - lo2 < 5
    assert bootstrap_interval(small, seed=1) == bootstrap_interval(small, seed=1)
    # the width is about 2 * 1.96 * sqrt(p (1 - p) / n)
    assert hi2 - lo2 == pytest.approx(2 * 1.96 * 100 * (0.25 / 4000) ** 0.5, rel=0.15)
    with pytest.raises(ValueError):
        bootstrap_interval(torch.tensor([]))


def test_per_query_scores_average_to_recall_at():
    g = torch.Generator().manual_seed(0)
    ranked = torch.rand(30, 8, 2, generator=g).sort(-1).values
    gt = torch.rand(30, 2, generator=g).sort(-1).values
    for protocol in ("plain", "tall", "2d-tan"):
        per = per_query_scores(ranked, gt, protocol=protocol)
        agg = recall_at(ranked, gt, protocol=protocol)
        assert {k: 100 * v.mean().item() for k, v in per.items()} == pytest.approx(agg)


def test_swapped_queries_rotates_sentences_within_each_video():
    from wsg.data.benchmark import Benchmark

    class Store:
        def get(self, vid, record=None):
            return torch.zeros(4, 3).numpy()

    t = _events_table()
    bench = Benchmark("toy", {"train": t, "test": t}, Store(), num_clips=4)
    swapped = swapped_queries(bench, "test").splits["test"]
    assert swapped.attrs["dropped_single_query"] == 1  # video c
    assert list(swapped.video_id) == ["a", "b", "a", "b", "b"]
    assert list(swapped.sentence) == ["a2", "b2", "a1", "b3", "b1"]  # the next query of the same video
    assert (swapped[["start", "end"]].to_numpy() == t[t.video_id != "c"][["start", "end"]].to_numpy()).all()
    single = t[t.video_id == "c"]
    with pytest.raises(ValueError, match="no video has two or more queries"):
        swapped_queries(Benchmark("toy", {"train": t, "test": single}, Store(), num_clips=4), "test")


def test_query_blind_replaces_every_sentence_with_one_token(small_bench):
    blind = query_blind(small_bench)
    assert BLIND_TOKEN in blind.vocab and len(blind.vocab) <= 5  # the token + special symbols
    for split, t in blind.splits.items():
        assert (t["sentence"] == BLIND_TOKEN).all()
        pd.testing.assert_frame_equal(t.drop(columns="sentence"), small_bench.splits[split].drop(columns="sentence"))
    words = next(iter(blind.loader("test")))["words"]
    assert (words[:, 0] == words[0, 0]).all() and (words[:, 1:] == 0).all()


def test_table_puts_the_model_next_to_every_control(small_bench):
    """A model that reads the words perfectly (an oracle over the sentence) vs its swapped row."""
    sentences = {(r.video_id, r.sentence): (r.start / r.duration, r.end / r.duration)
                 for r in small_bench.splits["test"].itertuples()}

    class Oracle(GroundingModel):
        def candidates(self):
            spans, valid = all_spans(small_bench.num_clips)
            return spans[valid]

        def predict(self, batch, top_k=10):
            m = torch.tensor([sentences[k] for k in zip(batch["video_id"], batch["sentence"])])
            return m[:, None].expand(-1, top_k, -1), torch.ones(len(m), top_k)

    df = table(Oracle(), small_bench, "test", "2d-tan", name="oracle")
    assert list(df.index) == ["oracle", "swapped query", "events", "random (own candidates)",
                              "prior (own candidates)"]
    assert df.loc["oracle", "R@1,IoU=0.7"] == 100.0 and df.loc["oracle", "event hit"] == 100.0
    # asked another query of the same (non-overlapping) video, the oracle is always wrong
    assert df.loc["swapped query", "R@1,IoU=0.3"] == 0.0
    assert df.attrs["protocol"] == "2d-tan" and df.attrs["words gain R@1,IoU=0.5"] == 100.0


def test_query_blind_variant_of_real_data_trains_with_the_real_recipe(tmp_path):
    from fixtures_real import write_real

    from wsg.data import load_benchmark
    from wsg.experiments import per_seed, run

    fx = write_real("charades-sta", tmp_path)
    bench = load_benchmark("charades-sta", fx.root, fx.features, "tiny")
    row = per_seed(run("wsra", query_blind(bench), seeds=[0], epochs=1, controls=False)).iloc[0]
    assert row["dataset"] == "charades-sta" and row["variant"] == "query-blind"
