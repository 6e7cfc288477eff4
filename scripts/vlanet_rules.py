"""VLANet: which test-time rule ranks the surrogates, chosen on the validation split.

Trains VLANet with the chapter's tiny settings for every (preset, variant, seed) and
evaluates, after every epoch, every localisation rule of
:data:`wsg.models.vlanet.LOCALISE_RULES` on the **validation** split. The rules are
inference-only, so all of them are read off the same trained models (one forward pass,
every rule's ranking; :func:`rank_all_rules` is checked against ``model.predict``). Each
rule gets its own epoch, the best by validation R@1,IoU=0.5.

The rule is chosen here, on validation only: the largest mean over presets of the
seed-mean validation R@1,IoU=0.5 of the full model. The test split is then read for two
rules only, ``product`` and the chosen one, for the full model
and the ablation ``cross_steps=0`` (and, with ``--variants``, ``attention_scale="none"``,
the literal Eq. 8), on the Charades-like preset, each at its own validation-selected epoch. The
candidate-matched blind rows (``blind_baselines(..., candidates=model.candidates())``) are
written next to them.

Writes (generated, never edited by hand)::

    WSG_DATA=.cache/wsg python scripts/vlanet_rules.py --jobs 2     # ~6 min on 2 free cores, ~1 h on a crowded one

* ``results/vlanet_rules_val.csv``: preset, variant, seed, epoch, rule, validation metrics;
* ``results/vlanet_rules_test.csv``: preset, variant, seed, rule, selected epoch, test metrics,
  rows ``blind:random`` / ``blind:prior`` (candidate-matched) and the chosen rule.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import torch

import wsg
import wsg.baselines
import wsg.data
import wsg.provenance
import wsg.models
from wsg.metrics import recall_at
from wsg.models import strip_labels
from wsg.models.vlanet import LOCALISE_RULES
from wsg.train import Trainer, TrainConfig, evaluate, set_seed

#: the chapter's tiny settings (notebooks/src/04_vlanet.md)
WIDTHS = dict(word_dim=64, hidden=64, dim=64)
EPOCHS, LR = 10, 1e-3
VARIANTS = {"full": {}, "w/o cross-attn": {"cross_steps": 0}, "literal Eq. 8": {"attention_scale": "none"}}
#: the ablations run on the chapter's preset only (the rule is chosen on both)
VARIANT_PRESETS = {"w/o cross-attn": ("charades",), "literal Eq. 8": ("charades",)}
SELECT = "R@1,IoU=0.5"
PROTOCOL = "2d-tan"


@torch.no_grad()
def rank_all_rules(model, loader, top_k: int = 50) -> dict[str, dict]:
    """Metrics of every rule from one forward pass per batch (the ranking ``predict`` would return)."""
    model.eval()
    ranked = {rule: [] for rule in LOCALISE_RULES}
    gts = []
    for batch in loader:
        out = model(strip_labels(batch))
        for rule in LOCALISE_RULES:
            score = model.localisation_scores(out, rule)
            idx = score.topk(min(top_k, score.shape[1]), dim=1).indices
            ranked[rule].append(out["moments"].gather(1, idx[..., None].expand(-1, -1, 2)).clamp(0.0, 1.0))
        gts.append(batch["moment"])
    gt = torch.cat(gts)
    return {rule: recall_at(torch.cat(r), gt, protocol=PROTOCOL) for rule, r in ranked.items()}


def evaluate_rule(model, loader, rule: str) -> dict:
    """The model's metrics through ``evaluate`` with ``rule`` ranking the surrogates."""
    before = model.config.localise
    model.config.localise = rule
    try:
        return evaluate(model, loader, protocol=PROTOCOL)
    finally:
        model.config.localise = before


def train_one(task: tuple[str, str, int]) -> tuple[tuple, list[dict], dict, float]:
    """Train one (preset, variant, seed); every rule on validation after every epoch.

    Returns the task, the validation rows, ``{rule: (epoch, state_dict)}`` at each rule's
    best validation epoch, and the seconds it took.
    """
    torch.set_num_threads(1)
    preset, variant, seed = task
    t0 = time.perf_counter()
    profile = wsg.get_profile("tiny")
    bench = wsg.data.load_synthetic(preset, profile)
    set_seed(seed)
    model = wsg.models.build("vlanet", **bench.model_kwargs(), **WIDTHS, **VARIANTS[variant])
    val_loader = bench.loader("val", 64)
    rows: list[dict] = []
    best: dict[str, tuple[float, int, dict]] = {}

    def on_epoch_end(trainer, row):
        for rule, metrics in rank_all_rules(model, val_loader).items():
            rows.append({"preset": preset, "variant": variant, "seed": seed, "epoch": row["epoch"], "rule": rule,
                         **metrics})
            if rule not in best or metrics[SELECT] > best[rule][0]:
                best[rule] = (metrics[SELECT], row["epoch"], copy.deepcopy(model.state_dict()))
        model.train()

    trainer = Trainer(model, TrainConfig(epochs=EPOCHS, lr=LR, seed=seed, progress=False, protocol=PROTOCOL))
    trainer.fit(bench.loader("train", profile.batch_size, seed=seed), None, on_epoch_end=on_epoch_end)
    seconds = time.perf_counter() - t0
    print(f"{preset} {variant} seed {seed}: {seconds:.0f} s", flush=True)
    return task, rows, {rule: (ep, state) for rule, (_, ep, state) in best.items()}, seconds


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="charades,activitynet")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=1, help="training processes in parallel (one thread each)")
    ap.add_argument("--variants", default="full,w/o cross-attn", help=f"comma-separated, of {list(VARIANTS)}")
    ap.add_argument("--out", default="results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    profile = wsg.get_profile("tiny")
    seeds = [int(s) for s in args.seeds.split(",")]
    presets = args.presets.split(",")
    if not seeds:
        raise ValueError("--seeds is empty")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"profile": profile.name, "wsg_version": wsg.__version__,
            "git_commit": wsg.provenance.git_commit() or "unknown", "machine": wsg.provenance.fingerprint_id(),
            "command": " ".join(["python", Path(sys.argv[0]).as_posix(), *(sys.argv[1:] if argv is None else argv)])}

    variants = args.variants.split(",")
    if "full" not in variants or not set(variants) <= set(VARIANTS):
        raise ValueError(f"--variants must include 'full' and be among {list(VARIANTS)}, got {variants}")
    tasks = [(p, v, s) for v in variants for p in presets if p in VARIANT_PRESETS.get(v, presets) for s in seeds]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(train_one, tasks))
    else:
        results = [train_one(t) for t in tasks]
    val = pd.DataFrame([r for _, rows, _, _ in results for r in rows])
    val.assign(**meta).to_csv(out / "vlanet_rules_val.csv", index=False)
    seconds = {task: sec for task, _, _, sec in results}

    # the choice, on validation only: each rule at its own best epoch, seed mean, then mean over presets
    at_best = val.groupby(["preset", "variant", "seed", "rule"])[SELECT].max().reset_index()
    full = at_best[at_best["variant"] == "full"]
    score = full.groupby(["preset", "rule"])[SELECT].mean().unstack("preset").mean(axis=1)
    chosen = str(score.idxmax())
    print("validation R@1,IoU=0.5 (seed mean at each rule's best epoch, mean over presets):")
    print(score.sort_values(ascending=False).round(1).to_string())
    print("chosen:", chosen, flush=True)

    test_rows = []
    for preset in presets:
        bench = wsg.data.load_synthetic(preset, profile)
        test_loader = bench.loader("test", 64)
        for (p, variant, seed), _, best, _ in results:
            if p != preset:
                continue
            model = wsg.models.build("vlanet", **bench.model_kwargs(), **WIDTHS, **VARIANTS[variant])
            for rule in dict.fromkeys(("product", chosen)):
                epoch, state = best[rule]
                model.load_state_dict(state)
                test_rows.append({"preset": preset, "variant": variant, "seed": seed, "rule": rule, "epoch": epoch,
                                  **evaluate_rule(model, test_loader, rule), "seconds": seconds[p, variant, seed]})
        cands = wsg.models.build("vlanet", **bench.model_kwargs(), **WIDTHS).candidates()
        blind = wsg.baselines.blind_baselines(bench, "test", PROTOCOL, candidates=cands)
        for name, row in blind.iterrows():
            test_rows.append({"preset": preset, "variant": f"blind:{name}", "rule": f"{len(cands)} windows",
                              **row.to_dict()})
    test = pd.DataFrame(test_rows).assign(chosen_rule=chosen, **meta)
    test.to_csv(out / "vlanet_rules_test.csv", index=False)
    summary = test.groupby(["preset", "variant", "rule"])[[SELECT, "R@5,IoU=0.5", "mIoU"]].agg(["mean", "std"])
    print(summary.round(1).to_string())


if __name__ == "__main__":
    main()
