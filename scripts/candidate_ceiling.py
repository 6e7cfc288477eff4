"""Can each weak method's candidate set express the moments of a world? The candidate ceiling.

For development worlds only (:func:`wsg.worlds.dev_worlds`, inside
:func:`wsg.worlds.development`, so a held-out world is refused), and for each weakly-supervised
method with its recipe (:func:`wsg.worlds.recipe_dataset` picks the preset whose recipe a
world uses), this builds the model untrained, takes its candidates (``model.candidates()``) and
computes, on the world's **validation** split:

- the *candidate ceiling*: the R@1,IoU=m of an oracle that always picks the best candidate
  (:func:`wsg.metrics.best_candidate_iou`), m = 0.3, 0.5, 0.7;
- chance among events at the same thresholds (:func:`wsg.baselines.blind_baselines`, row
  ``events``), and the ratio of the ceiling to it;
- the world's moment lengths (median and 10th/90th percentiles, as fractions of the video).

No training: a ceiling below chance among events says the extent fails in the candidate set,
whatever the scores. Rows go to ``results/candidate_ceiling_dev.csv``::

    python scripts/candidate_ceiling.py --worlds 20
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

import wsg
from wsg.baselines import blind_baselines
from wsg.data.synthetic import GENERATOR_VERSION
from wsg.metrics import best_candidate_iou, recall_at, temporal_iou
from wsg.models import build, supervision_of
from wsg.provenance import code_digest, data_digest, git_commit
from wsg.recipes import METHODS, get, model_config
from wsg.worlds import dev_worlds, development, load_dev_world

IOUS = (0.3, 0.5, 0.7)


def ceiling_rows(world: int, profile: str = "tiny") -> list[dict]:
    bench = load_dev_world(world, profile)
    dataset = bench.recipe_dataset
    gt = bench.moments("val")
    lengths = (gt[:, 1] - gt[:, 0]).double()
    rows = []
    for key in (k for k in METHODS if supervision_of(k) != "full"):
        recipe = get(key, dataset, profile)
        torch.manual_seed(0)
        model = build(key, **model_config(recipe, bench))
        cands = model.candidates().to(gt.dtype)
        best = best_candidate_iou(cands, gt)
        oracle = recall_at(cands[temporal_iou(cands[None], gt[:, None]).argmax(dim=1)][:, None], gt, ns=(1,),
                           ious=IOUS, protocol=recipe["protocol"])  # the best candidate, scored as the method is
        events = blind_baselines(bench, "val", protocol=recipe["protocol"]).loc["events"]
        row = {"world": world, "method": key, "recipe_dataset": dataset, "num_clips": bench.num_clips,
               "candidates": len(cands), "split": "val", "queries": len(gt),
               "length median": float(lengths.median()), "length p10": float(lengths.quantile(0.1)),
               "length p90": float(lengths.quantile(0.9))}
        row["ceiling mean IoU"] = 100 * float(best.double().mean())
        for m in IOUS:
            row[f"ceiling R@1,IoU={m}"] = oracle[f"R@1,IoU={m}"]
            row[f"events R@1,IoU={m}"] = float(events[f"R@1,IoU={m}"])
        rows.append(row)
    return [{**r, "data": data_digest(bench)} for r in rows]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", type=int, default=20, help="the first K development worlds")
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--out", default="results/candidate_ceiling_dev.csv")
    args = ap.parse_args(argv)
    rows = []
    with development():
        for world in dev_worlds(args.worlds):
            rows += ceiling_rows(world, args.profile)
            last = rows[-1]
            print(f"world {world} ({last['recipe_dataset']}, median length {last['length median']:.2f}): "
                  + ", ".join(f"{r['method']} {r['ceiling R@1,IoU=0.5']:.0f}" for r in rows[-4:])
                  + f" vs events {last['events R@1,IoU=0.5']:.0f}", flush=True)
    df = pd.DataFrame(rows).assign(profile=args.profile, wsg_version=wsg.__version__, commit=git_commit() or "unknown",
                                   code=code_digest(), generator=GENERATOR_VERSION,
                                   command=f"python scripts/candidate_ceiling.py --worlds {args.worlds}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(df.groupby("method")[["ceiling R@1,IoU=0.5", "events R@1,IoU=0.5"]].mean().round(1).to_string())


if __name__ == "__main__":
    main()
