"""Multi-seed FSAN experiments for Chapter 5, too slow for the chapter's CI run.

Every number in ``results/fsan_*.csv`` is written by this script (never typed). Each run
seeds with :func:`wsg.train.set_seed` *before* building the model and trains with the
chapter's tiny-profile settings (``SIZES``, ``LR``, batch 32). Choices are made on the
validation split; the test split is read once per run, at the end, for the report.

Studies (``--study``):

* ``decode``: which span score ranks at inference (``FSANConfig.decode``) and how the span
  weights of Eqs. 10/12 are normalised (``FSANConfig.weight_norm``), on both synthetic
  presets. Each training variant is trained once per (preset, seed); after every epoch the
  *same* weights are evaluated on validation under every decode rule, and each rule keeps
  its own best epoch (selected on validation with that rule). Outputs:

  - ``results/fsan_decode.csv``: one row per (preset, training variant, seed, decode rule):
    the selected epoch, its validation metrics, the test metrics of those weights, the
    epoch-to-epoch swing of the validation R@1,IoU=0.5 (epochs 3..E), seconds, version,
    commit, device, command;
  - ``results/fsan_decode_history.csv``: per epoch, the training loss terms, the validation
    metrics under every rule, the median top-1 length, the share of queries whose best
    clip (column mean of P) lies inside the ground truth, and the mean per-video sum of the
    span weights (both normalisations) on validation.

* ``ablation``: the chapter's reduced Table 4 (full model, w/o SAP losses, w/o cross-modal,
  w/o inner-modal attention) at the chapter's ablation schedule, 3 seeds, Charades-like
  preset, with the model's default decode rule -> ``results/fsan_ablation.csv``.

Rows are appended run by run and a run already in the file is skipped, so an interrupted
study resumes where it stopped. Regenerate from scratch (2 CPU cores, one thread; about
1 minute per Charades-like run and 2 per ActivityNet-like run on an idle machine)::

    WSG_DATA=.cache/wsg python scripts/fsan_experiments.py --study decode --fresh
    WSG_DATA=.cache/wsg python scripts/fsan_experiments.py --study ablation
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import wsg
import wsg.data
import wsg.provenance
from wsg.models import build, strip_labels
from wsg.models.fsan import DECODE_RULES, span_weights
from wsg.train import Trainer, TrainConfig, evaluate, set_seed

ROOT = Path(__file__).resolve().parents[1]
SIZES = dict(word_dim=64, d_model=64, heads=4, layers=1)  # the chapter's tiny sizes
LR = 1e-3
EPOCHS = {"charades": 10, "activitynet": 6}  # the chapter's Charades schedule; ActivityNet (64 clips) shorter
ABL_EPOCHS = 4
SEEDS = (0, 1, 2)
PROTOCOL = "2d-tan"
TRAIN_VARIANTS = {
    "weights / n_spans": dict(weight_norm="spans"),
    "weights sum to 1": dict(weight_norm="sum"),
}
#: runs of the decode study, in the order they are done (the cheap, decisive ones first)
DECODE_RUNS = [("charades", "weights / n_spans"), ("activitynet", "weights / n_spans"),
               ("charades", "weights sum to 1"), ("activitynet", "weights sum to 1")]
ABLATION = {
    "full model": {},
    "w/o SAP losses (lambda = 1, 0, 0)": dict(lambdas=(1.0, 0.0, 0.0)),
    "w/o cross-modal attention": dict(cross_attention=False),
    "w/o inner-modal attention": dict(inner_attention=False),
}


def provenance() -> dict:
    """wsg version, git commit, device and the command line, for every row."""
    return {"wsg_version": wsg.__version__, "git_commit": wsg.provenance.git_commit() or "unknown", "device": "cpu",
            "machine": wsg.provenance.fingerprint_id(),
            "command": " ".join([Path(sys.executable).name, *sys.argv])}


@torch.no_grad()
def diagnose(model, loader) -> dict:
    """Validation diagnostics of the map: median top-1 length (fraction of the video) per decode
    rule, the share of queries whose best clip (column mean of P) lies inside the ground truth,
    and the mean per-video sum of the centred span weights under both normalisations."""
    model.eval()
    lengths = {r: [] for r in DECODE_RULES}
    inside, wsum_spans, wsum_sum = [], [], []
    for batch in loader:
        gt = batch["moment"]
        out = model(strip_labels(batch), negatives=False)
        n = out["clip_mask"].sum(1)
        N = out["SC"].shape[1]
        for r in DECODE_RULES:
            flat = model.decode_scores(out, r).flatten(1).argmax(1)
            s, e = flat // N, flat % N
            lengths[r].append(((e - s + 1) / n).float())
        col = (out["P"] * out["token_mask"][:, :, None]).sum(1) / out["token_mask"].sum(1, keepdim=True)
        col = col.masked_fill(~out["clip_mask"], float("-inf"))
        centre = (col.argmax(1).float() + 0.5) / n
        inside.append(((centre >= gt[:, 0]) & (centre <= gt[:, 1])).float())
        wsum_spans.append(span_weights(out["SC"], out["valid"], norm="spans").flatten(1).sum(1))
        wsum_sum.append(span_weights(out["SC"], out["valid"], norm="sum").flatten(1).sum(1))
    row = {f"val_top1_length_{r}": torch.cat(v).median().item() for r, v in lengths.items()}
    row["val_best_clip_inside_gt"] = 100 * torch.cat(inside).mean().item()
    row["val_weight_sum_spans"] = torch.cat(wsum_spans).mean().item()
    row["val_weight_sum_sum"] = torch.cat(wsum_sum).mean().item()
    return row


def evaluate_rule(model, loader, rule: str) -> dict:
    """Metrics of ``model`` on ``loader`` when ranking by the decode ``rule``."""
    keep = model.config.decode
    model.config.decode = rule
    try:
        return evaluate(model, loader, protocol=PROTOCOL)
    finally:
        model.config.decode = keep


def swing(values: list[float]) -> dict:
    """Epoch-to-epoch swing of a validation curve from epoch 3 on."""
    v = np.asarray(values[2:] if len(values) > 3 else values, dtype=float)
    return {"swing_range": float(v.max() - v.min()), "swing_mean_abs_step": float(np.abs(np.diff(v)).mean()),
            "swing_std": float(v.std())}


def run_decode(preset: str, variant: str, change: dict, seed: int, prov: dict) -> tuple[list[dict], list[dict]]:
    """Train one (preset, variant, seed); every decode rule selects its own epoch on validation."""
    profile = wsg.get_profile("tiny")
    bench = wsg.data.load_synthetic(preset, profile)
    set_seed(seed)
    model = build("fsan", **bench.model_kwargs(), **SIZES, **change)
    trainer = Trainer(model, TrainConfig(epochs=EPOCHS[preset], lr=LR, seed=seed, progress=False, device="cpu"))
    val = bench.loader("val", 64)
    best = {r: (-np.inf, None, 0, None) for r in DECODE_RULES}  # score, state, epoch, metrics
    curves = {r: [] for r in DECODE_RULES}

    def hook(tr, row):
        extra = {}
        for r in DECODE_RULES:
            m = evaluate_rule(tr.model, val, r)
            curves[r].append(m["R@1,IoU=0.5"])
            extra.update({f"val_{r}_{k}": v for k, v in m.items()})
            if m["R@1,IoU=0.5"] > best[r][0]:
                state = {k: v.detach().clone() for k, v in tr.model.state_dict().items()}
                best[r] = (m["R@1,IoU=0.5"], state, tr.epoch + 1, m)
        extra.update(diagnose(tr.model, val))
        return extra

    t0 = time.perf_counter()
    hist = trainer.fit(bench.loader("train", profile.batch_size, seed=seed), None, on_epoch_end=hook)
    seconds = time.perf_counter() - t0
    rows = []
    for r in DECODE_RULES:
        _, state, epoch, vm = best[r]
        model.load_state_dict(state)
        tm = evaluate_rule(model, bench.loader("test", 64), r)  # read once, for the report
        rows.append({"preset": preset, "variant": variant, "seed": seed, "decode": r, "epoch": epoch,
                     **{f"val_{k}": v for k, v in vm.items()}, **{f"test_{k}": v for k, v in tm.items()},
                     **swing(curves[r]), "seconds": seconds, **prov})
    hist = hist.assign(preset=preset, variant=variant, seed=seed)
    return rows, hist.to_dict("records")


def run_ablation(variant: str, change: dict, seed: int, prov: dict) -> dict:
    """One ablation run: the trainer selects the epoch on validation (default decode rule)."""
    profile = wsg.get_profile("tiny")
    bench = wsg.data.load_synthetic("charades", profile)
    set_seed(seed)
    model = build("fsan", **bench.model_kwargs(), **SIZES, **change)
    trainer = Trainer(model, TrainConfig(epochs=ABL_EPOCHS, lr=LR, seed=seed, progress=False, device="cpu"))
    t0 = time.perf_counter()
    trainer.fit(bench.loader("train", profile.batch_size, seed=seed), bench.loader("val", 64))
    seconds = time.perf_counter() - t0
    vm = evaluate(model, bench.loader("val", 64), protocol=PROTOCOL)
    tm = evaluate(model, bench.loader("test", 64), protocol=PROTOCOL)
    return {"preset": "charades", "variant": variant, "seed": seed, "decode": model.config.decode,
            "epoch": trainer.best_epoch, **{f"val_{k}": v for k, v in vm.items()},
            **{f"test_{k}": v for k, v in tm.items()}, "seconds": seconds, **prov}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", choices=("decode", "ablation"), required=True)
    parser.add_argument("--presets", default="charades,activitynet")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--fresh", action="store_true", help="decode study: discard rows already written")
    parser.add_argument("--out", default=str(ROOT / "results"), help="results folder (default results/)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    if not seeds:
        raise SystemExit("--seeds is empty")
    prov = provenance()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.study == "decode":
        # rows are appended run by run; a run already in the file is skipped (--fresh starts over)
        table, history = out / "fsan_decode.csv", out / "fsan_decode_history.csv"
        if args.fresh:
            table.unlink(missing_ok=True)
            history.unlink(missing_ok=True)
        done = set()
        if table.exists():
            old = pd.read_csv(table)
            done = set(zip(old["preset"], old["variant"], old["seed"]))
        presets = args.presets.split(",")
        for preset, variant in DECODE_RUNS:
            if preset not in presets:
                continue
            for seed in seeds:
                if (preset, variant, seed) in done:
                    continue
                r, h = run_decode(preset, variant, TRAIN_VARIANTS[variant], seed, prov)
                for frame, path in ((pd.DataFrame(r), table), (pd.DataFrame(h), history)):
                    frame.to_csv(path, mode="a", header=not path.exists(), index=False)
                print(pd.DataFrame(r)[["preset", "variant", "seed", "decode", "epoch", "val_R@1,IoU=0.5",
                                       "swing_range"]].to_string(header=False, index=False), flush=True)
    else:
        rows = []
        for variant, change in ABLATION.items():
            for seed in seeds:
                rows.append(run_ablation(variant, change, seed, prov))
                print(variant, seed, round(rows[-1]["val_R@1,IoU=0.5"], 1), flush=True)
        pd.DataFrame(rows).to_csv(out / "fsan_ablation.csv", index=False)


if __name__ == "__main__":
    main()
