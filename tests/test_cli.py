"""The command line ``python -m wsg train|evaluate`` (wsg.cli) on synthetic data and real-format fixtures."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

from fixtures_real import write_real
from wsg import cli

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def run_cli(*argv) -> tuple[int, str, str]:
    """``main(argv)`` in this process: (exit status, stdout, stderr); argparse errors give status 2."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            rc = cli.main([str(a) for a in argv])
        except SystemExit as exc:
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def check_run(out: Path, key: str, dataset: str, seeds: list[int]) -> dict:
    """The run folder has what ``train`` promises; ``evaluate`` on each checkpoint gives the stored test metrics."""
    results = json.loads((out / "results.json").read_text())
    assert (results["method"], results["dataset"], results["split"]) == (key, dataset, "test")
    assert results["seeds"] == seeds and len(results["runs"]) == len(seeds)
    for field in ("protocol", "settings", "seconds", "versions", "device", "command", "queries"):
        assert results[field], field
    assert results["versions"]["wsg"] and "git_commit" in results["versions"]
    assert results["command"].startswith("python -m wsg train " + key)
    assert results["settings"]["sources"]["epochs"] == "command line"
    history = pd.read_csv(out / "history.csv")
    assert sorted(history["seed"].unique()) == seeds and "val_R@1,IoU=0.5" in history
    for run, seed in zip(results["runs"], seeds):
        ckpt = out / f"seed{seed}" / "model.pt"
        assert run["checkpoint"] == str(ckpt) and (out / f"seed{seed}" / "best.pt").exists()
        rc, stdout, err = run_cli("evaluate", "--checkpoint", ckpt, "--split", "test")
        assert rc == 0, err
        again = json.loads(stdout)
        assert again["queries"] == results["queries"]["test"]
        for metric, value in again["metrics"].items():  # same weights, same data, same protocol
            assert value == pytest.approx(run[metric], abs=1e-9), metric
        if len(seeds) > 1:
            values = [r["R@1,IoU=0.5"] for r in results["runs"]]
            mean = sum(values) / len(values)
            assert results["test"]["R@1,IoU=0.5"]["mean"] == pytest.approx(mean)
    return results


def test_help_explains_every_option():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"train", "evaluate", "bench"} <= set(sub.choices)
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help and action.help.strip(), (name, action.dest)
    done = subprocess.run([sys.executable, "-m", "wsg", "train", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0 and "--features" in done.stdout and "--seeds" in done.stdout


def test_train_and_evaluate_synthetic(tmp_path, monkeypatch):
    monkeypatch.setenv("WSG_DATA", str(tmp_path / "cache"))
    out = tmp_path / "run"
    rc, stdout, err = run_cli("train", "fsan", "--dataset", "charades", "--profile", "tiny", "--videos", "10,4,4",
                              "--epochs", "1", "--seeds", "0,1", "--quiet", "--out", out)
    assert rc == 0, err
    results = check_run(out, "fsan", "charades", [0, 1])
    assert results["settings"]["model"]["d_model"] == 64  # the tiny recipe
    assert results["controls"] and "swapped R@1,IoU=0.5" in results["runs"][0]
    # the two seeds start from different weights (the seed is set before the model is built)
    a = torch.load(out / "seed0" / "model.pt", weights_only=False)["state_dict"]
    b = torch.load(out / "seed1" / "model.pt", weights_only=False)["state_dict"]
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert json.loads(stdout)["test"]["R@1,IoU=0.5"]["std"] is not None


# one method per real dataset, so that every method and every dataset runs through the command line
REAL_RUNS = [("charades-sta", "marn"), ("activitynet-captions", "fian"), ("tacos", "vlanet"), ("didemo", "wsra"),
             ("charades-sta", "fsan")]


@pytest.mark.parametrize("dataset, key", REAL_RUNS)
def test_train_and_evaluate_real_format_fixture(tmp_path, dataset, key):
    fx = write_real(dataset, tmp_path / "data")
    out = tmp_path / "run"
    rc, _, err = run_cli("train", key, "--dataset", dataset, "--root", fx.root, "--features", fx.features,
                         "--profile", "tiny", "--epochs", "1", "--quiet", "--out", out)
    assert rc == 0, err
    results = check_run(out, key, dataset, [0])
    assert results["settings"]["data"]["features"] == str(Path(fx.features).resolve())
    assert results["settings"]["num_clips"] == {"charades-sta": 32 if key != "fian" else 64,
                                                "activitynet-captions": 200, "tacos": 128, "didemo": 6}[dataset]
    if dataset == "charades-sta":  # val held out of train by video
        q = results["queries"]
        assert q["val"] > 0 and q["train"] + q["val"] == fx.queries["train"]


def test_evaluate_after_the_data_moved(tmp_path):
    fx = write_real("didemo", tmp_path / "data")
    out = tmp_path / "run"
    rc, _, err = run_cli("train", "vlanet", "--dataset", "didemo", "--root", fx.root, "--features", fx.features,
                         "--epochs", "1", "--profile", "tiny", "--quiet", "--out", out)
    assert rc == 0, err
    moved = tmp_path / "moved"
    (tmp_path / "data").rename(moved)
    rc, _, err = run_cli("evaluate", "--checkpoint", out / "seed0" / "model.pt")
    assert rc == 1 and "pass --root" in err
    rc, stdout, err = run_cli("evaluate", "--checkpoint", out / "seed0" / "best.pt", "--split", "val",
                              "--root", moved, "--features", moved / Path(fx.features).name)
    assert rc == 0, err
    assert json.loads(stdout)["split"] == "val"


@pytest.mark.parametrize("argv, status, message", [
    (["train", "marn", "--dataset", "charades-sta", "--root", ".", "--out", "x"], 2, "needs --features"),
    (["train", "marn", "--dataset", "tacos", "--out", "x"], 2, "needs --root ROOT .* and --features"),
    (["train", "marn", "--dataset", "tacos", "--root", "/no/such/dir", "--features", ".", "--out", "x"], 2,
     "--root /no/such/dir: no such file"),
    (["train", "marn", "--dataset", "charades", "--features", ".", "--out", "x"], 2, "for real datasets"),
    (["train", "nope", "--out", "x"], 2, "invalid choice: 'nope'"),
    (["train", "fian", "--dataset", "kinetics", "--out", "x"], 2, "invalid choice: 'kinetics'"),
    (["train", "fian", "--seeds", "0,a", "--out", "x"], 2, "--seeds must be integers"),
    (["train", "fian", "--epochs", "0", "--out", "x"], 2, "--epochs must be >= 1"),
    (["train", "fian", "--videos", "1,2", "--out", "x"], 2, "--videos needs three counts"),
    (["train", "fian"], 2, "--out"),
    (["evaluate", "--checkpoint", "/no/such.pt"], 1, "no such file"),
    (["bench", "wsra", "--epochs", "1"], 1, "at least 2"),
    (["bench", "nope"], 1, "unknown method"),
])
def test_bad_input_is_named(argv, status, message):
    rc, _, err = run_cli(*argv)
    assert rc == status
    assert re.search(message, err), err


def test_evaluate_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    rc, _, err = run_cli("evaluate", "--checkpoint", path)
    assert rc == 1 and "is not a checkpoint written by wsg" in err
