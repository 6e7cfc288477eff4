"""Does restarting and selecting on validation narrow a method's spread over seeds?

MARN and FSAN are the two weak methods whose three seeds lie more than 5 points apart on the
Charades-like preset, and their seeds part in the first epochs (Chapter 7, "Where the extent
fails"). A standard remedy is to start several runs, keep the one that is best on validation
after a short while, and train only that one to the end. This study measures it, on the
validation split only (the test split plays no part):

* the validation split is cut in two halves by video (alternate videos in sorted order):
  half A selects (the best epoch, and the restart), half B reports;
* arm ``single start``: the recipe as it is (:func:`wsg.experiments.train_one`, seed ``s``),
  its best epoch chosen on half A;
* arm ``best of k restarts``: ``k`` runs seeded ``s``, ``s + 1000``, ... train for a third of
  the recipe's epochs (:data:`FIRST_EPOCHS`); the one with the best half-A R@1,IoU=0.5 so far
  trains on to the recipe's budget, its best epoch chosen on half A over the whole run. It
  costs ``k / 3 + 2 / 3`` of a run more.

Both arms are scored on half B, once per outer seed ``s``. ::

    python scripts/seed_spread.py --out results/seed_spread.csv

Resumable: a (method, arm, seed) already in ``--out`` is skipped.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

import wsg
from wsg.data import load_synthetic
from wsg.data.synthetic import GENERATOR_VERSION
from wsg.experiments import train_one
from wsg.models import build
from wsg.provenance import code_digest, data_digest, git_commit
from wsg.recipes import get, model_config, train_config
from wsg.train import Trainer, evaluate, set_seed

#: epochs each restart trains before one is kept: a third of the tiny recipe's budget
FIRST_EPOCHS = {"marn": 10, "fsan": 3}
SELECT = "R@1,IoU=0.5"


def halves(bench):
    """The benchmark with validation half A as ``val`` and half B as ``test`` (alternate videos)."""
    val = bench.splits["val"]
    videos = sorted(val["video_id"].unique())
    a, b = set(videos[0::2]), set(videos[1::2])
    return (bench.with_split("val", val[val["video_id"].isin(a)].reset_index(drop=True))
                 .with_split("test", val[val["video_id"].isin(b)].reset_index(drop=True)))


def best_of_restarts(key: str, bench, recipe: dict, seed: int, restarts: int):
    """Train ``restarts`` runs for :data:`FIRST_EPOCHS`, then the best on ``val`` to the end."""
    runs = []
    for j in range(restarts):
        r = seed + 1000 * j
        set_seed(r)  # before the model exists
        model = build(key, **model_config(recipe, bench))
        trainer = Trainer(model, train_config(recipe, seed=r, progress=False))
        loader = bench.loader("train", recipe["batch_size"], seed=r)
        trainer.fit(loader, bench.loader("val"), epochs=FIRST_EPOCHS[key])
        runs.append((trainer.best_score, j, model, trainer, loader))
    score, j, model, trainer, loader = max(runs, key=lambda run: run[0])
    trainer.fit(loader, bench.loader("val"), epochs=recipe["epochs"])  # continues from its last epoch
    return model, trainer, j, [round(run[0], 2) for run in runs]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="marn,fsan")
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--out", default="results/seed_spread.csv")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    done = pd.read_csv(out) if out.exists() else pd.DataFrame(columns=["method", "arm", "seed"])
    made = set(zip(done["method"], done["arm"], done["seed"]))
    full = load_synthetic("charades", args.profile)
    bench = halves(full)
    provenance = {"dataset": "charades", "profile": args.profile, "split": "val half B", "wsg_version": wsg.__version__,
                  "commit": git_commit() or "unknown", "code": code_digest(), "data": data_digest(full),
                  "generator": GENERATOR_VERSION,
                  "command": f"python scripts/seed_spread.py --methods {args.methods} --restarts {args.restarts}"}
    single, restarted = "single start", f"best of {args.restarts} restarts"
    for key in args.methods.split(","):
        recipe = get(key, "charades", args.profile)
        for seed in (int(s) for s in args.seeds.split(",")):
            for arm in (single, restarted):
                if (key, arm, seed) in made:
                    continue
                t0 = time.perf_counter()
                if arm == single:
                    model, trainer, _ = train_one(key, bench, recipe, seed)
                    kept, first = 0, ""
                else:
                    model, trainer, kept, first = best_of_restarts(key, bench, recipe, seed, args.restarts)
                report = evaluate(model, bench.loader("test"), protocol=recipe["protocol"], device=trainer.device)
                row = {"method": key, "arm": arm, "seed": seed, **report, "val A " + SELECT: trainer.best_score,
                       "kept restart": kept, "restart scores": str(first), "first epochs": FIRST_EPOCHS[key],
                       "best_epoch": trainer.best_epoch, "epochs": recipe["epochs"],
                       "seconds": round(time.perf_counter() - t0, 1), **provenance}
                pd.DataFrame([row]).to_csv(out, mode="a", header=not out.exists(), index=False)
                print(f"{key} {arm} seed {seed}: half-B {SELECT} {report[SELECT]:.1f}", flush=True)


if __name__ == "__main__":
    main()
