"""Every departure from a paper, measured: the paper's setting next to ours, three seeds, on validation.

For each weakly-supervised method, on the Charades-like preset with its tiny recipe, this
trains the recipe as it is (arm ``ours``) and once per departure with the paper's reading
restored (or, where the paper gives nothing, the other natural value), seeds 0, 1, 2
(:func:`wsg.experiments.train_one`: seeded before the model is built, best epoch chosen on
validation). Every arm is scored on the **validation** split, where the choices were made;
the test split plays no part. A chapter compares an arm with ``ours`` by
:func:`wsg.experiments.difference` on the per-seed rows. ::

    python scripts/departures.py --out results/departures.csv            # every method
    python scripts/departures.py --methods wsra --out results/departures.csv

Resumable: an (method, arm, seed) already in ``--out`` is skipped.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

import wsg
from wsg.data import load_synthetic
from wsg.data.synthetic import GENERATOR_VERSION
from wsg.experiments import train_one
from wsg.provenance import code_digest, data_digest, git_commit
from wsg.recipes import TRAIN_FIELDS, get
from wsg.train import evaluate

#: method -> departure -> (what the arm restores, its settings); ``ours`` is the recipe itself
DEPARTURES: dict[str, dict[str, tuple[str, dict]]] = {
    "wsra": {
        "learning rate": ("the paper's Adam 1e-4 (Sec. 3.4)", {"lr": 1e-4}),
        "LayerNorm": ("no LayerNorm on the snippet embedding", {"norm": False}),
        "dropout": ("dropout 0.1 on the snippet embedding", {"dropout": 0.1}),
        "width": ("snippet width 256 (the full profile's)", {"hidden": 256}),
        "window score": ("windows ranked by the mean attention inside", {"window_score": "inside"}),
        "phi": ("phi as printed: one FC layer", {"phi_hidden": 0}),
    },
    "vlanet": {
        "Eq. 7 reduce": ("Eq. 7 as printed: a sum over Y", {"vla_reduce": "sum"}),
        "Eq. 8 scale": ("Eq. 8 as printed: the weights without x N", {"attention_scale": "none"}),
    },
    "fsan": {
        "training floor": ("no floor on Eq. 8's outside term in training", {"rectify": False}),
        "shared-word masking": ("shared words masked in the negative only (as printed)",
                                {"mask_shared_tokens": "negative"}),
    },
    "marn": {
        "Eq. 11 layers": ("Eq. 11 as printed: one 1 x 1 Conv2d", {"clip_attention": "one-layer"}),
        "clip Conv1d": ("a Conv1d of the clip branch's own", {"clip_reduce": "separate"}),
    },
}


def arm_rows(key: str, arm: str, settings: dict, seeds, bench, profile: str = "tiny") -> list[dict]:
    """Train ``key`` with ``settings`` once per seed; one validation row per seed."""
    recipe = get(key, "charades", profile)
    recipe.update({k: v for k, v in settings.items() if k in TRAIN_FIELDS})
    model_settings = {k: v for k, v in settings.items() if k not in TRAIN_FIELDS}
    rows = []
    for seed in seeds:
        model, trainer, seconds = train_one(key, bench, recipe, seed, **model_settings)
        val = evaluate(model, bench.loader("val"), protocol=recipe["protocol"], device=trainer.device)
        rows.append({"method": key, "arm": arm, "settings": repr(settings) if settings else "", "seed": seed,
                     "split": "val", **val, "best_epoch": trainer.best_epoch, "epochs": recipe["epochs"],
                     "seconds": round(seconds, 1)})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(DEPARTURES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--out", default="results/departures.csv")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    done = pd.read_csv(out) if out.exists() else pd.DataFrame(columns=["method", "arm", "seed"])
    made = set(zip(done["method"], done["arm"], done["seed"]))
    bench = load_synthetic("charades", args.profile)
    provenance = {"dataset": "charades", "profile": args.profile, "wsg_version": wsg.__version__,
                  "commit": git_commit() or "unknown", "code": code_digest(), "data": data_digest(bench),
                  "generator": GENERATOR_VERSION, "command": f"python scripts/departures.py --methods {args.methods}"}
    for key in args.methods.split(","):
        arms = {"ours": ("the recipe", {}), **DEPARTURES[key]}
        for arm, (what, settings) in arms.items():
            seeds = [s for s in (int(x) for x in args.seeds.split(",")) if (key, arm, s) not in made]
            if not seeds:
                continue
            rows = pd.DataFrame(arm_rows(key, arm, settings, seeds, bench, args.profile)).assign(restores=what,
                                                                                                 **provenance)
            rows.to_csv(out, mode="a", header=not out.exists(), index=False)
            print(f"{key} {arm}: val R@1,IoU=0.5 " + ", ".join(f"{v:.1f}" for v in rows["R@1,IoU=0.5"]), flush=True)


if __name__ == "__main__":
    main()
