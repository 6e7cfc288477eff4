"""Multi-seed runs and the results store."""
from pathlib import Path

import pandas as pd
import pytest
import torch

from wsg import __version__
from wsg.experiments import load_results, per_seed, run, store_path, summary, write_results

STORE = Path(__file__).resolve().parents[1] / "results"


def test_run_seeds_before_building_so_rows_do_not_depend_on_what_ran_before(small_bench):
    a = run("wsra", small_bench, seeds=[3], epochs=1, controls=False)
    torch.rand(1000)  # anything drawing from the global stream in between
    b = run("wsra", small_bench, seeds=[3], epochs=1, controls=False)
    metrics = [c for c in a.columns if c.startswith(("R@", "mIoU"))]
    pd.testing.assert_frame_equal(per_seed(a)[metrics], per_seed(b)[metrics])
    assert list(a.index) == ["seed 3", "mean", "std"]


def test_run_takes_the_window_rule_and_records_it(small_bench, monkeypatch):
    """``windows="validation"`` reaches model_config (the model gets the validation windows) and the row."""
    from wsg import recipes

    seen = []
    real = recipes.model_config
    monkeypatch.setattr(recipes, "model_config", lambda r, b, **kw: seen.append(r.get("windows")) or real(r, b, **kw))
    row = per_seed(run("vlanet", small_bench, seeds=[0], epochs=1, controls=False, windows="validation")).iloc[0]
    assert seen == ["validation"] and row["settings"] == repr({"epochs": 1, "windows": "validation"})


def test_run_refuses_an_empty_seed_list(small_bench):
    with pytest.raises(ValueError, match="seeds is empty"):
        run("wsra", small_bench, seeds=[])


def test_summary_is_mean_and_sample_std_over_seeds():
    df = pd.DataFrame({"method": ["m"] * 3, "R@1,IoU=0.5": [10.0, 20.0, 30.0], "mIoU": [1.0, 1.0, 1.0]},
                      index=["seed 0", "seed 1", "seed 2"])
    s = summary(df)
    assert s.loc["mean", "R@1,IoU=0.5"] == 20.0 and s.loc["std", "R@1,IoU=0.5"] == pytest.approx(10.0)
    assert s.loc["std", "mIoU"] == 0.0 and s.loc["mean", "method"] == "m"


def _row(**changes):
    row = {"method": "wsra", "dataset": "charades", "profile": "tiny", "seed": 0, "variant": "words",
           "R@1,IoU=0.5": 50.0, "wsg_version": __version__, "commit": "abc", "device": "cpu", "command": "x"}
    return {**row, **changes}


def test_store_merges_rows_by_identity_and_checks_what_it_reads(tmp_path):
    write_results(pd.DataFrame([_row(), _row(seed=1)]), tmp_path)
    write_results(pd.DataFrame([_row(seed=1, **{"R@1,IoU=0.5": 60.0})]), tmp_path)  # replaces seed 1
    path = store_path("charades", "tiny", tmp_path)
    df = load_results(path)
    assert df["seed"].tolist() == [0, 1] and df["R@1,IoU=0.5"].tolist() == [50.0, 60.0]
    df.drop(columns="commit").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad.csv.*missing column.*commit"):
        load_results(tmp_path / "bad.csv")
    pd.DataFrame([_row(wsg_version="0.0.1")]).to_csv(tmp_path / "old.csv", index=False)
    with pytest.raises(ValueError, match=r"old.csv, row 2 \(wsra, seed 0\): written by wsg 0.0.1"):
        load_results(tmp_path / "old.csv")
    with pytest.raises(FileNotFoundError, match="python -m wsg.experiments"):
        load_results(tmp_path / "none.csv")


@pytest.fixture(scope="module")
def stored_wsra_row():
    """The first stored WSRA row (tiny Charades-like, words), the other seeds' rows, and a function
    re-running it as the store's command did (one thread); whether this machine made it."""
    from wsg.data import load_synthetic
    from wsg.provenance import same_machine

    df = load_results(store_path("charades", "tiny", STORE), method="wsra", variant="words")
    assert len(df) >= 3, "expected >= 3 seeds of wsra"
    stored = df.iloc[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the store's command ran

    def again():
        bench = load_synthetic("charades", profile="tiny")
        return per_seed(run("wsra", bench, seeds=[int(stored["seed"])], profile="tiny")).iloc[0]

    try:
        yield df, stored, again, same_machine(stored.get("machine"))
    finally:
        torch.set_num_threads(threads)


def _stored_metrics(df):
    metrics = [c for c in df.columns if c.startswith(("R@", "mIoU", "swapped", "event hit"))]
    assert len(metrics) >= 15
    return metrics


def test_a_stored_row_reproduces_bit_for_bit_on_its_machine(stored_wsra_row):
    """The store is generated, never typed: on the machine that made a row, its command gives it exactly."""
    df, stored, again, mine = stored_wsra_row
    if not mine:
        pytest.skip("another machine than the row's (fingerprints differ): checked within the seed "
                    "spread by test_a_stored_row_reproduces_within_the_seed_spread_elsewhere")
    row = again()
    for c in _stored_metrics(df) + ["best_epoch"]:
        assert row[c] == pytest.approx(stored[c], abs=1e-9), c


def test_a_stored_row_reproduces_within_the_seed_spread_elsewhere(stored_wsra_row):
    """On another machine: the command is deterministic here, and lands within the seed spread of the row."""
    from reproduction import outside, seed_tolerance

    df, stored, again, mine = stored_wsra_row
    if mine:
        pytest.skip("the row's own machine: checked bit for bit by "
                    "test_a_stored_row_reproduces_bit_for_bit_on_its_machine")
    metrics = _stored_metrics(df)
    first, second = again(), again()
    pd.testing.assert_series_equal(first[metrics + ["best_epoch"]], second[metrics + ["best_epoch"]],
                                   check_exact=True, obj="the same command twice on this machine")
    assert not outside(first, stored, seed_tolerance(df[metrics])), "farther from the stored row than seeds are"


def test_strong_bar_reads_the_store_and_applies_both_conditions(small_bench, tmp_path):
    from wsg.baselines import blind_baselines
    from wsg.experiments import strong_bar
    from wsg.proposals import all_spans

    spans, valid = all_spans(small_bench.num_clips)
    events = blind_baselines(small_bench, "test").loc["events", "R@1,IoU=0.5"]
    rows = []
    for seed, (true, swapped, blind) in enumerate([(events + 20, 5.0, events), (events + 24, 6.0, events - 2),
                                                   (events + 22, 7.0, events + 1)]):
        metrics = {"R@1,IoU=0.5": true, "mIoU": 40.0, "swapped R@1,IoU=0.5": swapped, "swapped mIoU": 10.0,
                   "protocol": "2d-tan"}
        rows.append(_row(seed=seed, method="marn", **metrics))
        rows.append(_row(seed=seed, method="marn", variant="query-blind",
                         **{**metrics, "R@1,IoU=0.5": blind}))
    write_results(pd.DataFrame(rows), tmp_path)
    table, verdict = strong_bar("marn", small_bench, spans[valid], path=store_path("charades", "tiny", tmp_path))
    assert list(table.index)[:3] == ["MARN (3 seeds)", "swapped query (3 seeds)", "query-blind MARN (3 seeds)"]
    assert table.iloc[0]["R@1,IoU=0.5"] == pytest.approx(events + 22) and table.iloc[0]["± R@1,IoU=0.5"] == 2.0
    assert verdict["passes"] and verdict["seeds"] == [0, 1, 2]
    assert verdict["swapped_ratio"] == pytest.approx(6.0 / (events + 22))
    # a method whose answer does not move with the query fails the words condition
    for r in rows:
        if r["variant"] == "words":
            r["swapped R@1,IoU=0.5"] = r["R@1,IoU=0.5"] - 1
    write_results(pd.DataFrame(rows), tmp_path)
    _, verdict = strong_bar("marn", small_bench, spans[valid], path=store_path("charades", "tiny", tmp_path))
    assert verdict["beats_blind"] and not verdict["words_read"] and not verdict["passes"]


def test_benchmark_reports_speed_and_memory(small_bench, tmp_path):
    from wsg.bench import benchmark

    df = benchmark(["wsra"], epochs=2, out=tmp_path / "bench.csv", command="test", data=small_bench)
    row = df.iloc[0]
    assert row["s/epoch"] > 0 and row["queries/s"] > 0 and 0 < row["forward %"] < 100
    assert row["peak MiB"] > 0 and row["parameters"] > 1000 and row["eval s"] > 0
    assert len(pd.read_csv(tmp_path / "bench.csv")) == 1
    with pytest.raises(ValueError, match="at least 2"):
        benchmark(["wsra"], epochs=1, out=None)


def test_difference_is_welch_standard_error_by_hand():
    from wsg.experiments import difference

    d = difference([1, 2, 3], [2, 4, 6])  # variances 1 and 4, three runs a side
    assert d["diff"] == -2.0 and abs(d["se"] - (5 / 3) ** 0.5) < 1e-12 and not d["separated"]  # 2 < 2 * 1.29
    assert difference([10, 11, 12], [1, 2, 3])["separated"]
    with pytest.raises(ValueError, match=">= 2 runs"):
        difference([1.0], [1.0, 2.0])


def test_departure_table_compares_each_arm_with_ours_by_hand():
    from wsg.experiments import departure_table
    from wsg.store import StoreMismatchError

    def rows(arm, values, code="c1"):
        return [{"method": "m", "arm": arm, "seed": i, "R@1,IoU=0.5": v, "restores": f"paper {arm}",
                 "code": code, "data": "d"} for i, v in enumerate(values)]

    df = pd.DataFrame(rows("ours", [1, 2, 3]) + rows("a", [2, 4, 6]) + rows("b", [-9, -8, -7]))
    t = departure_table(df, "m")
    assert list(t.index) == ["a", "b"] and (t["seeds"] == 3).all()
    assert t.loc["a", "ours - arm"] == -2.0 and abs(t.loc["a", "se"] - (5 / 3) ** 0.5) < 1e-12
    assert t.loc["a", "verdict"] == "within noise" and t.loc["b", "verdict"] == "separated"
    assert t.loc["b", "arm"] == -8.0 and t.loc["b", "restores"] == "paper b"
    with pytest.raises(StoreMismatchError):  # an arm made by other code is not compared
        departure_table(pd.DataFrame(rows("ours", [1, 2, 3]) + rows("a", [2, 4, 6], code="c2")), "m")
    with pytest.raises(ValueError, match="no rows"):
        departure_table(df, "other")


def test_label_budget_keeps_a_fraction_of_distinct_training_moments(small_bench):
    from wsg.experiments import _variant_of

    n = len(small_bench.splits["train"])
    budget = small_bench.with_labelled_fraction(0.05, seed=3)
    train = budget.splits["train"]
    distinct = train.drop_duplicates(["video_id", "sentence", "start", "end"])
    assert len(train) == n and len(distinct) == -(-5 * n // 100)  # ceil(0.05 n), repeated to n rows
    assert budget.splits["val"] is small_bench.splits["val"] and budget.splits["test"] is small_bench.splits["test"]
    assert budget.vocab is small_bench.vocab
    assert _variant_of(budget) == "labels 5%" and _variant_of(small_bench) == "words"
    again = small_bench.with_labelled_fraction(0.05, seed=3).splits["train"]
    assert again.equals(train)  # the subset is fixed by its seed
    with pytest.raises(ValueError, match="fraction"):
        small_bench.with_labelled_fraction(0.0)


def test_unseen_pairs_are_the_held_out_verb_object_pairs(tmp_path):
    from wsg.data import load_events, load_synthetic
    from wsg.experiments import _store_dataset, unseen_pairs

    bench = load_synthetic("charades", "tiny", cache_dir=tmp_path, num_videos=(40, 10, 20), compositional=0.2)
    mask = unseen_pairs(bench)
    events = load_events(bench)
    train_pairs = {(v, o) for v, o in events.loc[events.split == "train", ["verb", "object"]].values}
    test = bench.splits["test"]
    expected = []
    for vid, sentence in zip(test["video_id"], test["sentence"]):  # the naive loop
        row = events[(events.video_id == vid) & (events.sentence == sentence)].iloc[0]
        expected.append((row["verb"], row["object"]) not in train_pairs)
    assert mask.tolist() == expected and 0 < sum(expected) < len(expected)
    assert _store_dataset("charades", bench) == "charades-compositional"
    assert unseen_pairs(load_synthetic("charades", "tiny", cache_dir=tmp_path, num_videos=(40, 10, 20))) is None


def test_a_compositional_run_reports_seen_and_unseen_recall_that_mix_to_the_total(tmp_path):
    from wsg.data import load_synthetic
    from wsg.experiments import per_seed, run, unseen_pairs

    bench = load_synthetic("charades", "tiny", cache_dir=tmp_path, num_videos=(40, 10, 20), compositional=0.2)
    row = per_seed(run("wsra", bench, seeds=[0], epochs=1, controls=False)).iloc[0]
    assert row["dataset"] == "charades-compositional"
    n_unseen = int(unseen_pairs(bench).sum())
    n = len(bench.splits["test"])
    for metric in ("R@1,IoU=0.5", "R@5,IoU=0.3", "mIoU"):
        mixed = (n_unseen * row[f"unseen {metric}"] + (n - n_unseen) * row[f"seen {metric}"]) / n
        assert abs(mixed - row[metric]) < 1e-9, metric


def test_label_budgets_are_refused_for_weak_methods(capsys):
    from wsg.experiments import main

    with pytest.raises(SystemExit):
        main(["wsra", "--label-fractions", "0.1"])
    assert "never see labels" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fian", "--label-fractions", "0,0.5"])


def test_worlds_flag_writes_one_file_of_worlds(tmp_path, monkeypatch):
    """``--worlds K`` runs the first K held-out worlds one by one into results/<profile>-worlds.csv."""
    import wsg.worlds
    from wsg.experiments import main

    seen = []

    def fake_run_worlds(key, seeds, worlds, profile, **kw):
        seen.append((key, tuple(worlds)))
        return pd.DataFrame([{"world": worlds[0], "method": key, "dataset": f"world{worlds[0]}", "profile": profile,
                              "seed": s, "variant": "words", "R@1,IoU=0.5": 40.0 + s, "events R@1,IoU=0.5": 30.0,
                              "swapped/true": 0.1} for s in seeds])

    monkeypatch.setattr(wsg.worlds, "run_worlds", fake_run_worlds)
    assert main(["wsra", "--worlds", "2", "--seeds", "0,1", "--out", str(tmp_path)]) == 0
    assert seen == [("wsra", (wsg.worlds.held_out_worlds(2)[0],)), ("wsra", (wsg.worlds.held_out_worlds(2)[1],))]
    rows = pd.read_csv(tmp_path / "tiny-worlds.csv")
    assert len(rows) == 4 and rows["dataset"].nunique() == 2
    # another window rule is another recipe: its own file, and run_worlds gets the rule
    kws = []
    monkeypatch.setattr(wsg.worlds, "run_worlds", lambda *a, **kw: kws.append(kw) or fake_run_worlds(*a, **kw))
    assert main(["wsra", "--worlds", "1", "--seeds", "0,1", "--windows", "validation", "--out", str(tmp_path)]) == 0
    assert kws[0]["windows"] == "validation" and len(pd.read_csv(tmp_path / "tiny-worlds-windows.csv")) == 2


def test_plateau_budget_hand_worked():
    """Budget E keeps each seed's best epoch up to E; the smallest E within noise of the longest run wins."""
    from wsg.experiments import plateau_budget

    curves = {0: [10, 30, 50, 51, 50], 1: [12, 28, 49, 52, 52], 2: [11, 33, 51, 50, 53]}
    history = pd.DataFrame([{"seed": s, "epoch": e + 1, "val": v} for s, c in curves.items() for e, v in enumerate(c)])
    out = plateau_budget(history, "val")
    # best-so-far at 3: 50, 49, 51 (mean 50); at 5: 51, 52, 53 (mean 52): diff -2, se sqrt(1/3 + 1/3) = 0.82 -> separated
    # at 4: 51, 52, 51 (mean 51.33) vs 52: diff -0.67, se 0.75 -> within noise
    assert out["budget"] == 4 and out["largest"] == 5
    assert out["best"] == pytest.approx(52.0) and out["at_budget"] == pytest.approx(154 / 3)
    flat = pd.DataFrame([{"seed": s, "epoch": e, "val": 40 + e * 5 + s} for s in range(3) for e in range(1, 6)])
    assert plateau_budget(flat, "val")["budget"] == 5  # still climbing: the longest run is the budget
