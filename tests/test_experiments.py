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


def test_a_stored_row_reproduces_exactly():
    """The store is generated, never typed: re-run one stored row (tiny, CPU) and compare."""
    from wsg.controls import query_blind
    from wsg.data import load_synthetic

    path = store_path("charades", "tiny", STORE)
    df = load_results(path, method="wsra", variant="words")
    assert len(df) >= 3, f"{path}: expected >= 3 seeds of wsra"
    stored = df.iloc[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the store's command ran
    try:
        bench = load_synthetic("charades", profile="tiny")
        again = per_seed(run("wsra", bench, seeds=[int(stored["seed"])], profile="tiny")).iloc[0]
    finally:
        torch.set_num_threads(threads)
    metrics = [c for c in df.columns if c.startswith(("R@", "mIoU", "swapped", "event hit"))]
    assert len(metrics) >= 15
    for c in metrics + ["best_epoch"]:
        assert again[c] == pytest.approx(stored[c], abs=1e-9), c
