"""Multi-seed MARN experiments for Chapter 2, too slow for the chapter's CI run.

Every number in ``results/marn_*.csv`` is written by this script (never typed). Each run
seeds with :func:`wsg.train.set_seed` *before* building the model, trains with the
chapter's recipe (``wsg.recipes.get("marn", preset, "tiny")``) for 30 epochs, selects its epoch on the validation split, and is then
evaluated once on validation and once on test (2d-tan protocol), with every
``epsilon`` of Eq. 15 in ``EPS_GRID`` on the same weights (Eq. 15 changes only the ranking).

Two outputs per study (``--study``):

* ``results/marn_<study>.csv``: one row per (variant, preset, seed, eps): every metric on
  val and test, the selected epoch, seconds, wsg version, git commit, device, command;
* ``results/marn_<study>_history.csv``: the validation curve of every run, per epoch.

Studies:

* ``scales``: which scale set (chosen on validation), on the Charades-like preset;
* ``scales-activitynet``: the same choice checked on the ActivityNet-like preset (12 epochs);
* ``ablation``: the paper's Tables 3-5 in reduced form, at the chapter's scale set (the
  reference is the ``scales`` study's 25th-95th percentile runs: same settings, same seeds);
* ``lr``: the reference with a three times smaller learning rate (is the seed noise a step-size effect?).

Regenerate (2 CPU cores, one thread per process)::

    WSG_DATA=.cache/wsg python scripts/marn_experiments.py --study scales
    WSG_DATA=.cache/wsg python scripts/marn_experiments.py --study scales-activitynet
    WSG_DATA=.cache/wsg python scripts/marn_experiments.py --study ablation
    WSG_DATA=.cache/wsg python scripts/marn_experiments.py --study lr
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch

import wsg
import wsg.data
import wsg.provenance
import wsg.recipes
from wsg.models import build
from wsg.models.marn import PAPER_CHARADES_SCALES, scales_from_lengths
from wsg.train import Trainer, TrainConfig, evaluate, set_seed

ROOT = Path(__file__).resolve().parents[1]
EPS_GRID = (0.0, 0.1, 0.3, 1.0)
PAPER_EPS = {"charades": 0.1, "activitynet": 0.3}


def paper_scales(T: int) -> tuple[int, ...]:
    """The paper's Charades range (6..11 clips of 32, i.e. 19-34 % of the video), scaled to ``T`` clips."""
    lo, hi = round(min(PAPER_CHARADES_SCALES) * T / 32), round(max(PAPER_CHARADES_SCALES) * T / 32)
    return tuple(range(lo, hi + 1))


def scale_rule(bench, rule: str) -> tuple[int, ...]:
    """A scale set by name: ``"paper"`` or ``"qLO-qHI"`` (percentiles of the training lengths)."""
    if rule == "paper":
        return paper_scales(bench.num_clips)
    lo, hi = (float(x[1:]) / 100 for x in rule.split("-"))
    return scales_from_lengths(bench.train_moments(), bench.num_clips, lo, hi)


def studies(study: str) -> tuple[list[str], dict[str, dict]]:
    """Presets and variants of a study: name -> {"scales": rule, "model": {...}, "lr", "epochs"}."""
    base = dict(scales="q25-q95", model={}, epochs=30)  # everything else: the chapter's recipe
    if study == "scales":
        return ["charades"], {
            "paper 6..11 (scaled)": dict(base, scales="paper"),
            "5th-95th percentile": dict(base, scales="q05-q95"),
            "25th-95th percentile": dict(base, scales="q25-q95"),
        }
    if study == "scales-activitynet":  # the check of the choice on the other preset (4x the cost per epoch)
        short = dict(base, epochs=12)
        return ["activitynet"], {
            "5th-95th percentile": dict(short, scales="q05-q95"),
            "25th-95th percentile": dict(short, scales="q25-q95"),
        }
    if study == "ablation":
        return ["charades"], {
            "multi-level off": dict(base, model=dict(clip_branch=False)),
            "AvgPool instead of sampling + Conv3d": dict(base, model=dict(proposal_pool="avg")),
            "Conv2d_2 1 x 1 instead of 3 x 3": dict(base, model=dict(attention_kernel=1)),
        }
    if study == "lr":  # seed noise: does a smaller step size make the seeds agree?
        return ["charades"], {"lr 1e-3": dict(base, lr=1e-3)}
    raise ValueError(f"unknown study {study!r}; expected scales, scales-activitynet, ablation or lr")


def git_commit() -> str:
    return wsg.provenance.git_commit() or "unknown"


def run_one(bench, preset: str, variant: str, spec: dict, seed: int, profile: str, command: str):
    """Train one (variant, seed); return (rows per eps, history rows)."""
    scales = scale_rule(bench, spec["scales"])
    recipe = wsg.recipes.get("marn", preset, profile)  # the chapter's widths, lr, batch size and eps
    config = wsg.recipes.model_config(recipe, bench, scales=scales, **spec["model"])
    lr = spec.get("lr", recipe["lr"])
    set_seed(seed)  # before the model is built: its initial weights depend only on the seed
    model = build("marn", **config)
    trainer = Trainer(model, TrainConfig(epochs=spec["epochs"], lr=lr, seed=seed, protocol="2d-tan",
                                         progress=False, device="cpu"))
    t0 = time.perf_counter()
    history = trainer.fit(bench.loader("train", batch_size=recipe["batch_size"], seed=seed),
                          bench.loader("val", batch_size=64))
    seconds = time.perf_counter() - t0
    common = dict(method="marn", variant=variant, preset=preset, profile=profile, seed=seed,
                  scales=f"{min(scales)}..{max(scales)}", num_scales=len(scales), lr=lr,
                  epochs=spec["epochs"], best_epoch=trainer.best_epoch)
    rows = []
    for eps in EPS_GRID:
        if eps and not model.config.clip_branch:
            continue
        model.config.epsilon = eps
        row = dict(common, epsilon=eps)
        for split in ("val", "test"):
            metrics = evaluate(model, bench.loader(split, batch_size=64), protocol="2d-tan", device="cpu")
            row.update({f"{split}_{k}": v for k, v in metrics.items()})
        rows.append(row)
    for row in rows:
        row.update(seconds=round(seconds, 1), wsg_version=wsg.__version__, git_commit=git_commit(),
                   machine=wsg.provenance.fingerprint_id(),
                   device="cpu", command=command)
    hist = history[["epoch", "loss", "val_R@1,IoU=0.5", "val_R@1,IoU=0.7", "val_R@5,IoU=0.5", "val_mIoU"]]
    hist = hist.assign(**{k: common[k] for k in ("method", "variant", "preset", "seed", "scales")})
    return rows, hist


_BENCH: dict = {}


def _task(task: tuple) -> tuple[list[dict], pd.DataFrame]:
    """One (preset, variant, spec, seed, command) run, in a worker process (one thread)."""
    preset, variant, spec, seed, command = task
    torch.set_num_threads(1)
    if preset not in _BENCH:
        _BENCH[preset] = wsg.data.load_synthetic(preset, "tiny")
    rows, hist = run_one(_BENCH[preset], preset, variant, spec, seed, "tiny", command)
    best = [x for x in rows if x["epsilon"] in (PAPER_EPS[preset], 0.0)][-1]
    print(f"{preset:11s} {variant:40s} seed {seed}: val R@1,IoU=0.5 {best['val_R@1,IoU=0.5']:5.1f} "
          f"(epoch {best['best_epoch']}, {best['seconds']:.0f} s)", flush=True)
    return rows, hist


class _Serial:
    """Stand-in for a one-process pool."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def imap(f, tasks):
        return map(f, tasks)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", required=True, choices=["scales", "scales-activitynet", "ablation", "lr"])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--presets", default=None, help="comma-separated subset of the study's presets")
    parser.add_argument("--variants", default=None, help="comma-separated substrings selecting variants")
    parser.add_argument("--epochs", type=int, default=None, help="override every variant's epochs (smoke tests)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes (one thread each)")
    parser.add_argument("--out", default=None, help="CSV path (default results/marn_<study>.csv)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds:
        raise ValueError("--seeds is empty")
    presets, variants = studies(args.study)
    if args.presets:
        presets = [p for p in presets if p in args.presets.split(",")]
    if args.variants:
        keep = args.variants.split(",")
        variants = {k: v for k, v in variants.items() if any(s in k for s in keep)}
    if args.epochs:
        variants = {k: dict(v, epochs=args.epochs) for k, v in variants.items()}
    out = Path(args.out or ROOT / "results" / f"marn_{args.study}.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])
    tasks = [(preset, variant, spec, seed, command) for preset in presets for variant, spec in variants.items()
             for seed in seeds]
    rows, hists = [], []
    with multiprocessing.get_context("spawn").Pool(args.jobs) if args.jobs > 1 else _Serial() as pool:
        for r, h in pool.imap(_task, tasks):
            rows += r
            hists.append(h)
            pd.DataFrame(rows).to_csv(out, index=False)
            pd.concat(hists).to_csv(out.with_name(out.stem + "_history.csv"), index=False)
    print("wrote", out)


if __name__ == "__main__":
    main()
