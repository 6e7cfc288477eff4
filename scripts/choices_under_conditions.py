"""Do the chapters' validation choices hold on the start-biased and compositional worlds?

Each chapter chose a setting on the validation split of the uniform synthetic presets:
VLANet's localisation rule (``VLANetConfig.localise``), FSAN's decode rule
(``FSANConfig.decode``), WSRA's fore/background weight (``w_bg = 0`` against the
paper's 0.1) and MARN's scale rule (25th-95th percentile of the training lengths, against
the 5th-95th and the paper's 6..11). This script repeats each choice, on the **validation** split only, on the
two other worlds the results store knows (:data:`wsg.experiments.CONDITIONS`), 3 seeds,
with each method's recipe:

* VLANet and FSAN: one training run per (condition, seed); after every epoch the same
  weights are scored on validation under every rule, and each rule keeps its best epoch;
* WSRA and MARN: one run per (condition, seed, setting), best validation epoch.

Writes ``results/choices_under_conditions.csv`` (method, condition, choice, seed, best
validation R@1,IoU=0.5 and its epoch, seconds, commit, command) and prints, per method and
condition, the mean ± std of each choice and whether the recipe's choice is still the
validation's::

    WSG_DATA=.cache/wsg python scripts/choices_under_conditions.py --jobs 2                  # ~5 min on 2 free cores
    WSG_DATA=.cache/wsg python scripts/choices_under_conditions.py --methods marn --jobs 2   # ~12 min

Rows of the methods run replace their old rows in the file; the others are kept.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import torch

import wsg.data
import wsg.recipes
from wsg.provenance import git_commit
from wsg.experiments import CONDITIONS, difference
from wsg.models import build
from wsg.models.fsan import DECODE_RULES
from wsg.models.marn import PAPER_CHARADES_SCALES, scales_from_lengths
from wsg.models.vlanet import LOCALISE_RULES
from wsg.train import Trainer, evaluate, set_seed

KEY = "R@1,IoU=0.5"
RECIPE_CHOICE = {"vlanet": "align", "fsan": "printed", "wsra": "w_bg=0.0", "marn": "q25-q95"}
MARN_SCALES = {"q25-q95": (0.25, 0.95), "q05-q95": (0.05, 0.95), "paper": None}


def marn_scales(bench, rule: str) -> tuple[int, ...]:
    """MARN's scales under a rule: quantiles of the training lengths, or the paper's 6..11 (32 clips)."""
    if MARN_SCALES[rule] is None:
        return tuple(PAPER_CHARADES_SCALES)
    return scales_from_lengths(bench.train_moments(), bench.num_clips, *MARN_SCALES[rule])


def _switch(key: str) -> tuple[str, tuple]:
    """The config field a rule lives in, and the rules to try."""
    return ("localise", tuple(LOCALISE_RULES)) if key == "vlanet" else ("decode", tuple(DECODE_RULES))


def run_one(task: tuple[str, str, int, str]) -> list[dict]:
    """Train one (method, condition, seed[, w_bg]) and return its per-choice best validation rows."""
    torch.set_num_threads(1)
    key, condition, seed, choice = task
    bench = wsg.data.load_synthetic("charades", "tiny", **CONDITIONS[condition])
    recipe = wsg.recipes.get(key, "charades", "tiny")
    changes = {"w_bg": float(choice.split("=")[1])} if key == "wsra" else {}
    if key == "marn":
        changes = {"scales": marn_scales(bench, choice)}
    set_seed(seed)
    model = build(key, **wsg.recipes.model_config(recipe, bench, **changes))
    val = bench.loader("val", 64)
    best: dict[str, tuple[float, int]] = {}

    def score_rules(trainer, row):
        field, rules = _switch(key)
        before = getattr(model.config, field)
        for rule in rules:
            setattr(model.config, field, rule)
            r1 = evaluate(model, val, protocol=recipe["protocol"])[KEY]
            if rule not in best or r1 > best[rule][0]:
                best[rule] = (r1, row["epoch"])
        setattr(model.config, field, before)
        model.train()

    t0 = time.perf_counter()
    trainer = Trainer(model, wsg.recipes.train_config(recipe, seed=seed, progress=False))
    history = trainer.fit(bench.loader("train", recipe["batch_size"], seed=seed), val,
                          on_epoch_end=score_rules if key in ("vlanet", "fsan") else None)
    if key in ("wsra", "marn"):
        best[choice] = (float(history[f"val_{KEY}"].max()), trainer.best_epoch)
    seconds = time.perf_counter() - t0
    print(f"{key} {condition} seed {seed} {choice}: {seconds:.0f} s", flush=True)
    return [{"method": key, "condition": condition, "choice": c, "seed": seed, f"val {KEY}": v, "epoch": e,
             "seconds": round(seconds, 1)} for c, (v, e) in best.items()]


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per (method, condition): each choice's mean ± std, the validation's pick and the recipe's."""
    rows = []
    for (key, condition), part in df.groupby(["method", "condition"]):
        means = part.groupby("choice")[f"val {KEY}"].agg(["mean", "std"])
        pick = means["mean"].idxmax()
        ours = RECIPE_CHOICE[key]
        d = difference(part[part.choice == pick][f"val {KEY}"], part[part.choice == ours][f"val {KEY}"])
        rows.append({"method": key, "condition": condition,
                     **{c: f"{m:.1f} ± {s:.1f}" for c, (m, s) in means.iterrows()},
                     "validation picks": pick, "recipe": ours,
                     "recipe holds": pick == ours or not d["separated"]})
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--methods", default="fsan,vlanet,wsra", help="comma-separated, of fsan, vlanet, wsra, marn")
    ap.add_argument("--out", default="results/choices_under_conditions.csv")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    conditions = ("start", "compositional")
    tasks = [(k, c, s, "rules") for k in ("fsan", "vlanet") if k in methods for c in conditions for s in seeds]
    if "wsra" in methods:
        tasks += [("wsra", c, s, f"w_bg={w}") for c in conditions for s in seeds for w in (0.0, 0.1)]
    if "marn" in methods:
        tasks += [("marn", c, s, rule) for c in conditions for s in seeds for rule in MARN_SCALES]
    for c in ("start", "compositional"):  # generate each world once, before the workers race for it
        wsg.data.load_synthetic("charades", "tiny", **CONDITIONS[c])
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = [r for result in pool.map(run_one, tasks) for r in result]
    df = pd.DataFrame(rows)
    df["commit"] = git_commit() or "unknown"
    df["command"] = "python scripts/choices_under_conditions.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():  # keep the rows of the methods not run now
        old = pd.read_csv(out)
        df = pd.concat([old[~old.method.isin(methods)], df], ignore_index=True)
    df.to_csv(out, index=False)
    with pd.option_context("display.width", 200):
        print(summarise(df).to_string(index=False))


if __name__ == "__main__":
    main()
