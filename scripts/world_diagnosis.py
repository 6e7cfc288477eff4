"""Where does a weak method's extent go wrong beyond the presets? Predictions on development worlds.

For development worlds only (inside :func:`wsg.worlds.development`, so a held-out world is
refused) and each weakly-supervised method with the recipe its world takes
(:func:`wsg.worlds.recipe_dataset`), this trains seeds 0, 1, 2 exactly as
:func:`wsg.experiments.run` does (:func:`wsg.experiments.train_one`) and keeps, on the world's
**validation** split:

- ``<out>``: one row per query and training seed: the true moment, the top-1 prediction, its
  IoU, and the top-1 prediction when the query is swapped for another query of the same video
  (:func:`wsg.controls.swapped_queries`; NaN for videos with one query). All times are
  fractions of the video.
- ``<out stem>_history.csv``: the validation curve of every run (epoch, loss, R@1, ...), to see
  when a seed collapses and which epoch the trainer kept.

With ``--windows validation`` VLANet and WSRA take windows (FSAN span lengths) read off each world's validation
moments (:func:`wsg.recipes.validation_windows`, ours); the ``windows`` column says which rule
made a row. ``--epochs`` replaces the recipe's budget (a run's history then also holds every
shorter budget: the best validation epoch up to E is what a budget of E would keep). Resumable: a (world, method, seed, windows) already in ``<out>`` is skipped. ::

    python scripts/world_diagnosis.py --worlds 0,3,5 --out results/world_diagnosis_dev.csv
    python scripts/world_diagnosis.py --worlds 0,3,5 --methods wsra,vlanet --windows validation,recipe \
        --out results/world_windows_dev.csv
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import wsg
from wsg.controls import swapped_queries
from wsg.data.synthetic import GENERATOR_VERSION
from wsg.experiments import train_one
from wsg.metrics import temporal_iou
from wsg.models import supervision_of
from wsg.provenance import code_digest, data_digest, git_commit
from wsg.recipes import METHODS, WINDOW_RULES, get
from wsg.train import predict_all
from wsg.worlds import check_dev_seed, development, load_dev_world


def diagnose(key: str, world: int, seed: int, profile: str = "tiny", windows: str = "recipe",
             epochs: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train ``key`` on development world ``world`` with ``seed`` (and the recipe's ``windows`` rule,
    :func:`wsg.recipes.model_config`; ``epochs`` in place of the recipe's); per-query validation rows
    and its history."""
    bench = load_dev_world(world, profile)
    recipe = {**get(key, bench.recipe_dataset, profile), "windows": windows}
    recipe["epochs"] = epochs or recipe["epochs"]
    model, trainer, seconds = train_one(key, bench, recipe, seed)
    pred = predict_all(model, bench.loader("val"), device=trainer.device)
    top1, gt = pred["moments"][:, 0], pred["gt"]
    table = bench.splits["val"].reset_index(drop=True)
    rows = pd.DataFrame({"world": world, "method": key, "seed": seed, "windows": windows,
                         "recipe_dataset": bench.recipe_dataset,
                         "video_id": table["video_id"], "true start": gt[:, 0].numpy(), "true end": gt[:, 1].numpy(),
                         "pred start": top1[:, 0].numpy(), "pred end": top1[:, 1].numpy(),
                         "iou": temporal_iou(top1, gt).numpy(), "best_epoch": trainer.best_epoch,
                         "epochs": recipe["epochs"], "seconds": round(seconds, 1)})
    swapped = swapped_queries(bench, "val")
    sw = predict_all(model, swapped.loader("val"), device=trainer.device)["moments"][:, 0].numpy()
    # the swapped split keeps the videos with two or more queries, in table order
    multi = table.groupby("video_id")["video_id"].transform("size").to_numpy() > 1
    rows["swapped start"], rows["swapped end"] = np.nan, np.nan
    rows.loc[multi, "swapped start"], rows.loc[multi, "swapped end"] = sw[:, 0], sw[:, 1]
    history = trainer.history_frame().assign(world=world, method=key, seed=seed, windows=windows)
    return rows, history


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", default="0,3,5", help="development world seeds, comma-separated")
    ap.add_argument("--methods", default=",".join(k for k in METHODS if supervision_of(k) != "full"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--epochs", type=int, default=None, help="a longer (or shorter) budget than the recipe's")
    ap.add_argument("--windows", default="recipe",
                    help="VLANet's and WSRA's windows, FSAN's span lengths (wsg.recipes.model_config): "
                         f"comma-separated rules of {WINDOW_RULES}, each a run of its own")
    ap.add_argument("--out", default="results/world_diagnosis_dev.csv")
    args = ap.parse_args(argv)
    rules = args.windows.split(",")
    if not set(rules) <= set(WINDOW_RULES):
        ap.error(f"--windows: rules must be among {WINDOW_RULES}, got {args.windows}")
    torch.set_num_threads(1)
    out = Path(args.out)
    hist = out.with_name(out.stem + "_history.csv")
    done = pd.read_csv(out) if out.exists() else pd.DataFrame(columns=["world", "method", "seed", "windows"])
    done["windows"] = done.get("windows", pd.Series("recipe", index=done.index)).fillna("recipe")
    keys = set(zip(done["world"], done["method"], done["seed"], done["windows"]))
    provenance = {"profile": args.profile, "wsg_version": wsg.__version__, "commit": git_commit() or "unknown",
                  "code": code_digest(), "generator": GENERATOR_VERSION,
                  "command": "python scripts/world_diagnosis.py " + f"--worlds {args.worlds} --methods {args.methods}"
                  + (f" --windows {args.windows}" if args.windows != "recipe" else "")
                  + (f" --epochs {args.epochs}" if args.epochs else "")}
    todo = [(w, key, rule, seed) for w in (check_dev_seed(int(w)) for w in args.worlds.split(","))
            for key in args.methods.split(",") for rule in rules for seed in (int(s) for s in args.seeds.split(","))]
    with development():
        for world, key, rule, seed in todo:
            if (world, key, seed, rule) in keys:
                continue
            rows, history = diagnose(key, world, seed, args.profile, rule, args.epochs)
            data = data_digest(load_dev_world(world, args.profile))
            rows = rows.assign(data=data, **provenance)
            # each method's history has its own loss columns: the files are rewritten whole
            for frame, path in ((rows, out), (history.assign(data=data, **provenance), hist)):
                if path.exists():
                    frame = pd.concat([pd.read_csv(path), frame], ignore_index=True)
                frame.to_csv(path, index=False)
            hit = (rows["iou"] > 0.5).mean() * 100  # the 2D-TAN protocol's strict hit
            print(f"world {world} {key} ({rule} windows) seed {seed}: R@1,IoU=0.5 {hit:.1f} (val), best epoch "
                  f"{rows['best_epoch'].iloc[0]}, {rows['seconds'].iloc[0]:.0f} s", flush=True)


if __name__ == "__main__":
    main()
